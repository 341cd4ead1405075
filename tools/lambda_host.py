"""The functions of a deployed stack, each run as Lambda runs it (issue 27).

For every function of the stack (`<stack>-<name>`) this reads back what was deployed and
nothing else: GetFunctionConfiguration's environment, timeout, memory and role; the code from
the S3 object its stack resource names (the package `deploy_local.py` uploaded). It assumes
the function's role (sts:AssumeRole, as Lambda does) and starts the package's `bootstrap`
with exactly that environment plus what the Lambda service itself gives every function: the
role session's credentials, AWS_REGION, the AWS_LAMBDA_* variables of the runtime, and
AWS_ENDPOINT_URL (the emulator, which on AWS is the service's default endpoint). It talks to
the binary over the Lambda Runtime API (GET .../invocation/next, POST .../response and
.../error), one API server per instance, INSTANCES instances per function.

`cargo lambda watch` cannot do this: it gives every function one environment and one set of
credentials.
"""

import io
import json
import os
import queue
import signal
import subprocess
import tempfile
import threading
import time
import uuid
import zipfile
from http.server import ThreadingHTTPServer

import boto3

from http_handler import QuietHandler

INSTANCES = 2
RUNTIME = "/2018-06-01/runtime"


def client(service: str, endpoint: str, account: str):
    # moto picks the account from a twelve-digit access key ID.
    return boto3.client(service, endpoint_url=endpoint, region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
                        aws_access_key_id=account, aws_secret_access_key="local-not-a-secret")


class Invocation:
    def __init__(self, payload: bytes, arn: str, timeout: float):
        self.id = str(uuid.uuid4())
        self.payload = payload
        self.arn = arn
        self.deadline_ms = int((time.time() + timeout) * 1000)
        self.done = threading.Event()
        self.ok = False
        self.body = b""

    def finish(self, ok: bool, body: bytes) -> None:
        if not self.done.is_set():
            self.ok, self.body = ok, body
            self.done.set()


def error_body(kind: str, message: str) -> bytes:
    return json.dumps({"errorType": kind, "errorMessage": message}).encode()


class Instance:
    """One process of a function and its Runtime API server."""

    def __init__(self, function: "Function", index: int):
        self.function = function
        self.index = index
        self.current: Invocation | None = None
        self.init_error: bytes | None = None
        handler = type("Handler", (RuntimeApi,), {"instance": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.process: subprocess.Popen | None = None

    def start(self, log) -> None:
        env = dict(self.function.env)
        env["AWS_LAMBDA_RUNTIME_API"] = f"127.0.0.1:{self.server.server_address[1]}"
        env["AWS_LAMBDA_LOG_STREAM_NAME"] = f"local/{self.index}"
        self.process = subprocess.Popen([self.function.binary], env=env, stdin=subprocess.DEVNULL, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)

    def exited(self) -> None:
        """The process ended: what it was handling fails as Lambda's would, and after a
        failed start the next waiting invocation gets the start's error."""
        code = self.process.returncode if self.process else None
        failed = self.current
        if failed is None and self.init_error is not None:
            try:
                failed = self.function.pending.get_nowait()
            except queue.Empty:
                failed = None
        if failed is not None:
            failed.finish(False, self.init_error or error_body("Runtime.ExitError", f"exited with {code}"))
        self.current = None
        self.init_error = None

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


class RuntimeApi(QuietHandler):
    instance: Instance

    def do_GET(self):  # noqa: N802
        if self.path != f"{RUNTIME}/invocation/next":
            return self.reply(404)
        invocation = self.instance.function.pending.get()
        self.instance.current = invocation
        self.reply(200, invocation.payload, {
            "Lambda-Runtime-Aws-Request-Id": invocation.id,
            "Lambda-Runtime-Deadline-Ms": str(invocation.deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": invocation.arn,
            "Lambda-Runtime-Trace-Id": f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Sampled=0",
        })

    def do_POST(self):  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path == f"{RUNTIME}/init/error":
            self.instance.init_error = body or error_body("Runtime.InitError", "init failed")
            return self.reply(202, b'{"status": "OK"}')
        parts = self.path[len(RUNTIME):].strip("/").split("/")
        current = self.instance.current
        if len(parts) == 3 and parts[0] == "invocation" and current is not None and parts[1] == current.id:
            self.instance.current = None
            current.finish(parts[2] == "response", body)
            return self.reply(202, b'{"status": "OK"}')
        return self.reply(404, b'{"message": "no such invocation"}')


class Function:
    def __init__(self, name: str, arn: str, timeout: float, env: dict, binary: str):
        self.name, self.arn, self.timeout, self.env, self.binary = name, arn, timeout, env, binary
        self.pending: queue.Queue[Invocation] = queue.Queue()
        self.instances = [Instance(self, i) for i in range(INSTANCES)]

    def invoke(self, payload: bytes) -> tuple[bool, bytes]:
        """(whether it succeeded, its response or its error's body)."""
        invocation = Invocation(payload, self.arn, self.timeout)
        self.pending.put(invocation)
        if not invocation.done.wait(self.timeout + 5):
            return False, error_body("Sandbox.Timedout", f"Task timed out after {self.timeout} seconds")
        return invocation.ok, invocation.body


def code_of(cfn, s3, stack: str) -> dict:
    """Each function name of the stack: its package's bytes, from the object its resource names."""
    template = cfn.get_template(StackName=stack)["TemplateBody"]
    template = json.loads(template) if isinstance(template, str) else template
    resources = template.get("Resources", {})
    out = {}
    for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack):
        for summary in page["StackResourceSummaries"]:
            if summary["ResourceType"] != "AWS::Lambda::Function":
                continue
            code = resources[summary["LogicalResourceId"]]["Properties"]["Code"]
            obj = s3.get_object(Bucket=code["S3Bucket"], Key=code["S3Key"])
            out[summary["PhysicalResourceId"]] = obj["Body"].read()
    return out


def unpack(package: bytes, into: str, name: str) -> str:
    """The package's `bootstrap`, extracted with its mode, as Lambda runs it."""
    with zipfile.ZipFile(io.BytesIO(package)) as z:
        info = z.getinfo("bootstrap")
        path = os.path.join(into, name)
        with open(path, "wb") as out:
            out.write(z.read(info))
        mode = (info.external_attr >> 16) & 0o777
        if not mode & 0o100:
            raise SystemExit(f"{name}: the package's bootstrap is not executable (mode {mode:o})")
        os.chmod(path, mode)
    return path


class Host:
    """Every function of `stack`, served; `invoke(name, payload)` runs one."""

    def __init__(self, stack: str, aws_endpoint: str, function_endpoint: str, account: str, log_path: str):
        self.functions: dict[str, Function] = {}
        self.workdir = tempfile.mkdtemp(prefix="keyrotor-functions-")
        self.log = open(log_path, "ab") if log_path else subprocess.DEVNULL
        lam, sts = client("lambda", aws_endpoint, account), client("sts", aws_endpoint, account)
        packages = code_of(client("cloudformation", aws_endpoint, account), client("s3", aws_endpoint, account), stack)
        region = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
        for name, package in packages.items():
            config = lam.get_function_configuration(FunctionName=name)
            session = sts.assume_role(RoleArn=config["Role"], RoleSessionName=name)["Credentials"]
            env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TZ")}
            env.update(config.get("Environment", {}).get("Variables", {}))
            env.update({
                "AWS_ENDPOINT_URL": function_endpoint,
                "AWS_REGION": region,
                "AWS_DEFAULT_REGION": region,
                "AWS_ACCESS_KEY_ID": session["AccessKeyId"],
                "AWS_SECRET_ACCESS_KEY": session["SecretAccessKey"],
                "AWS_SESSION_TOKEN": session["SessionToken"],
                "AWS_LAMBDA_FUNCTION_NAME": name,
                "AWS_LAMBDA_FUNCTION_VERSION": config.get("Version", "$LATEST"),
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.get("MemorySize", 128)),
                "AWS_LAMBDA_LOG_GROUP_NAME": config.get("LoggingConfig", {}).get("LogGroup", f"/aws/lambda/{name}"),
                "_HANDLER": config.get("Handler", "bootstrap"),
            })
            binary = unpack(package, self.workdir, name)
            self.functions[name] = Function(name, config["FunctionArn"], float(config.get("Timeout", 3)), env, binary)
        for function in self.functions.values():
            for instance in function.instances:
                instance.start(self.log)
        threading.Thread(target=self.watch, daemon=True).start()

    def watch(self) -> None:
        """Restarts an instance whose process ended, as Lambda starts a new one."""
        while True:
            for function in self.functions.values():
                for instance in function.instances:
                    if instance.process and instance.process.poll() is not None:
                        instance.exited()
                        instance.start(self.log)
            time.sleep(0.2)

    def invoke(self, name: str, payload: bytes) -> tuple[int, bytes, dict]:
        """As Lambda's Invoke answers: (status, body, headers)."""
        function = self.functions.get(name)
        if function is None:
            body = json.dumps({"Type": "User", "message": f"Function not found: {name}"}).encode()
            return 404, body, {"x-amzn-ErrorType": "ResourceNotFoundException"}
        ok, body = function.invoke(payload)
        headers = {"X-Amz-Executed-Version": "$LATEST"}
        if not ok:
            headers["X-Amz-Function-Error"] = "Unhandled"
        return 200, body, headers

    def stop(self) -> None:
        for function in self.functions.values():
            for instance in function.instances:
                instance.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
