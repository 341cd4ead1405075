#!/usr/bin/env python3
"""Thin local Lambda gateway between moto's Step Functions and `cargo lambda watch`.

moto invokes a Task's Lambda at `POST /2015-03-31/functions/<URL-encoded ARN>/invocations`
on localhost:$MOTO_PORT and recognises a function error by a 200 reply with the
`X-Amz-Function-Error` header. `cargo lambda watch` knows functions by bare name and answers
a function error with HTTP 500 and `{"errorType", "errorMessage"}`. This gateway maps the one
onto the other, so the real binaries' error types reach the state machine's Retry and Catch.

With `-- COMMAND...` it also runs the upstream itself (normally `cargo lambda watch -P
{port}`, `{port}` replaced by a free port) in a process group of its own, and stops that
whole group when it exits: when the process that started the gateway goes away, on SIGTERM
or SIGINT. So nothing is left running after a test run or a demo, even one that crashed.

With `--deployed-stack STACK` it serves that deployed stack's functions itself instead, each
with its own deployed environment and role (tools/lambda_host.py). An invocation with
`X-Amz-Invocation-Type: Event` (EventBridge's) is accepted at once (202) and run behind.

It also counts invocations per function (`GET /_gateway/stats`) for reports and benchmarks.
Prints `PORT <n>` once listening and the upstream answers.
"""

import argparse
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from urllib.parse import unquote

from http_handler import QuietHandler, serve
from parent_watch import exit_with_parent

INVOKE = re.compile(r"^/2015-03-31/functions/([^/]+)/invocations$")
STATS_LOCK = threading.Lock()
STATS: dict[str, int] = {}


def function_name(raw: str) -> str:
    """`arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]` or a bare name."""
    name = unquote(raw)
    if name.startswith("arn:"):
        parts = name.split(":")
        if len(parts) >= 7 and parts[5] == "function":
            return parts[6]
    return name


class Gateway(QuietHandler):
    upstream_port = 9000
    timeout_seconds = 900

    def do_GET(self):  # noqa: N802
        if self.path == "/_gateway/stats":
            with STATS_LOCK:
                body = json.dumps({"invocations": STATS}).encode()
            return self.reply(200, body)
        return self.reply(404, b'{"message": "not found"}')

    def do_POST(self):  # noqa: N802
        match = INVOKE.match(self.path.split("?")[0])
        length = int(self.headers.get("Content-Length") or 0)
        payload = self.rfile.read(length) if length else b"{}"
        if not match:
            return self.reply(404, b'{"message": "not an Invoke request"}')
        name = function_name(match.group(1))
        with STATS_LOCK:
            STATS[name] = STATS.get(name, 0) + 1
        invoke = HOST.invoke if HOST is not None else self.invoke_upstream
        if self.headers.get("X-Amz-Invocation-Type") == "Event":
            # Asynchronous, as EventBridge invokes: accepted now, run in the background.
            threading.Thread(target=invoke, args=(name, payload), daemon=True).start()
            return self.reply(202, b"")
        return self.reply(*invoke(name, payload))

    def invoke_upstream(self, name: str, payload: bytes) -> tuple[int, bytes, dict]:
        """The invocation by `cargo lambda watch`, its answer as Lambda's Invoke gives it."""
        conn = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=self.timeout_seconds)
        try:
            conn.request("POST", f"/2015-03-31/functions/{name}/invocations", body=payload,
                         headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            body = response.read()
        except OSError as err:
            message = json.dumps({"Type": "Service", "message": f"cargo lambda watch unreachable: {err}"})
            return 502, message.encode(), {"x-amzn-ErrorType": "ServiceException"}
        finally:
            conn.close()
        if response.status == 200:
            return 200, body, {"X-Amz-Executed-Version": "$LATEST"}
        try:
            error = json.loads(body)
        except ValueError:
            error = None
        if isinstance(error, dict) and "errorType" in error:
            return 200, body, {"X-Amz-Function-Error": "Unhandled", "X-Amz-Executed-Version": "$LATEST"}
        return response.status, body, {}


HOST = None
UPSTREAM: subprocess.Popen | None = None


def stop_upstream() -> None:
    if HOST is not None:
        HOST.stop()
    if UPSTREAM is not None and UPSTREAM.poll() is None:
        try:
            os.killpg(UPSTREAM.pid, signal.SIGTERM)
            UPSTREAM.wait(timeout=5)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(UPSTREAM.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def stop_upstream_and_exit(*_args) -> None:
    stop_upstream()
    os._exit(0)


def watch_upstream() -> None:
    """Exits (with the upstream's failure) if the upstream dies on its own."""
    while True:
        if UPSTREAM is not None and UPSTREAM.poll() is not None:
            print(f"upstream exited with {UPSTREAM.returncode}", file=sys.stderr, flush=True)
            os._exit(1)
        time.sleep(0.5)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if UPSTREAM is not None and UPSTREAM.poll() is not None:
            sys.exit(f"upstream exited with {UPSTREAM.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    sys.exit(f"upstream did not listen on port {port} within {seconds} s")


def main() -> None:
    global UPSTREAM, HOST
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--upstream-port", type=int, default=0, help="port of the upstream (0: pick one)")
    parser.add_argument("--upstream-log", help="file for the upstream's output")
    parser.add_argument("--no-parent-watch", action="store_true")
    parser.add_argument("--deployed-stack", help="serve this deployed stack's functions (tools/lambda_host.py)")
    parser.add_argument("--aws-endpoint", help="with --deployed-stack: where to read the stack (moto)")
    parser.add_argument("--function-endpoint", help="with --deployed-stack: the functions' AWS_ENDPOINT_URL")
    parser.add_argument("--account", default="123456789012", help="with --deployed-stack: the stack's account")
    parser.add_argument("command", nargs="*", help="upstream to run; {port} is replaced by its port")
    args = parser.parse_args()
    upstream_port = args.upstream_port or free_port()
    Gateway.upstream_port = upstream_port
    signal.signal(signal.SIGTERM, stop_upstream_and_exit)
    signal.signal(signal.SIGINT, stop_upstream_and_exit)
    if not args.no_parent_watch:
        exit_with_parent(stop_upstream)
    threading.Thread(target=watch_upstream, daemon=True).start()
    if args.deployed_stack:
        import lambda_host
        HOST = lambda_host.Host(args.deployed_stack, args.aws_endpoint, args.function_endpoint or args.aws_endpoint,
                                args.account, args.upstream_log)
    elif args.command:
        command = [part.replace("{port}", str(upstream_port)) for part in args.command]
        log = open(args.upstream_log, "ab") if args.upstream_log else subprocess.DEVNULL
        UPSTREAM = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        wait_for_port(upstream_port, 300)
    serve(Gateway, args.port, watch_parent=False)


if __name__ == "__main__":
    main()
