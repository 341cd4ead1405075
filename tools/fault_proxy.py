#!/usr/bin/env python3
"""Fault-injecting and counting proxy in front of moto, for keyrotor's tests and benchmarks.

Functions reach AWS through it (AWS_ENDPOINT_URL). Every request is attributed to an AWS
operation ("iam:CreateAccessKey", "secretsmanager:PutSecretValue", ...) from its
X-Amz-Target header or its Action parameter and its SigV4 credential scope, and counted.

Rules (POST /_faults {"rules": [...]}, replacing the current ones) inject faults:
  {"operation": "iam:CreateAccessKey",   # which calls
   "match": "some-user",                 # optional: only requests whose body contains this
   "mode": "fail_before" | "lose_response",
   "kind": "500" | "503" | "throttle" | "reject" | "denied" | "drop",
   "times": 1}                            # how many matching calls; -1 for every one
"reject" answers 400 MessageRejected, as SES does for an address it refuses (a request
error, not retried); "denied" answers 403 AccessDenied, as STS does when a role is missing or
its trust policy refuses the caller (moto checks neither). "fail_before" answers without forwarding; "lose_response" forwards (the change is applied)
and then answers with the error instead of moto's reply, the hardest case for a caller.

GET /_faults/stats returns {"calls": {operation: n}, "bytes": {operation: response bytes}, "injected": [{operation, match, mode}],
"issuedSecrets": [...]}: the secret of every key CreateAccessKey returned through the proxy,
delivered or lost, so that leak scans can look for all of them (loopback, tests only);
POST /_faults/reset clears rules, counts and latency.

AWS Health, which moto lacks, is answered here by a fake (tools/fake_health.py; POST
/_faults/health records its events, which no reset clears), counted and faulted like any
other service.

POST /_faults/latency {"ms": 40} delays every AWS call by that much before it is forwarded
(or failed), as real AWS is slower than moto: the benchmark's model of network and service
time. Prints "PORT <n>"; exits with its parent.
"""

import argparse
import http.client
import json
import re
import threading
import time
from urllib.parse import parse_qs, unquote_plus

import fake_health
from http_handler import QuietHandler, serve

LOCK = threading.Lock()
RULES: list[dict] = []
CALLS: dict[str, int] = {}
BYTES: dict[str, int] = {}
INJECTED: list[dict] = []
ISSUED: list[str] = []
LATENCY = {"seconds": 0.0}
SECRET = re.compile(rb"<SecretAccessKey>([^<]+)</SecretAccessKey>")
SCOPE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/aws4_request")
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization", "proxy-authenticate"}


def operation_of(headers, body: bytes, path: str = "") -> tuple[str, str]:
    """Returns ("service:Operation", searchable text of the request)."""
    health = fake_health.operation(path)
    if health:
        return f"health:{health}", fake_health.text_of(body)
    target = headers.get("X-Amz-Target")
    text = body.decode("utf-8", "replace")
    if target and "." in target:
        prefix, op = target.rsplit(".", 1)
        service = {"AWSStepFunctions": "states", "AWSEvents": "events",
                   "AWSOrganizationsV20161128": "organizations"}.get(prefix, prefix.lower())
        return f"{service}:{op}", text
    form = parse_qs(text)
    action = (form.get("Action") or ["?"])[0]
    scope = SCOPE.search(headers.get("Authorization", ""))
    service = scope.group(1) if scope else "?"
    service = {"email": "ses"}.get(service, service)
    return f"{service}:{action}", unquote_plus(text)


def take_rule(operation: str, text: str) -> dict | None:
    with LOCK:
        CALLS[operation] = CALLS.get(operation, 0) + 1
        for rule in RULES:
            if rule["operation"] != operation or rule.get("times", 1) == 0:
                continue
            if rule.get("match") and rule["match"] not in text:
                continue
            if rule.get("times", 1) > 0:
                rule["times"] -= 1
            INJECTED.append({"operation": operation, "match": rule.get("match"), "mode": rule["mode"]})
            return dict(rule)
    return None


def error_reply(operation: str, kind: str) -> tuple[int, bytes, dict]:
    # AWS Health (the fake's CBOR) names its errors as the JSON protocols do.
    json_protocol = operation.split(":")[0] in ("secretsmanager", "states", "organizations", "health")
    if kind == "throttle":
        status, code = 400, "ThrottlingException" if json_protocol else "Throttling"
    elif kind == "503":
        status, code = 503, "ServiceUnavailable"
    elif kind == "reject":
        status, code = 400, "MessageRejected"
    elif kind == "denied":
        status, code = 403, "AccessDeniedException" if json_protocol else "AccessDenied"
    else:
        status, code = 500, "InternalFailure" if json_protocol else "ServiceFailure"
    message = f"injected fault ({kind})"
    if operation.startswith("health:"):
        return fake_health.error(status, code, message)
    if json_protocol:
        body = json.dumps({"__type": code, "message": message}).encode()
        return status, body, {"Content-Type": "application/x-amz-json-1.1", "x-amzn-ErrorType": code}
    sender = "Sender" if status == 400 else "Receiver"
    body = (f"<ErrorResponse><Error><Type>{sender}</Type><Code>{code}</Code><Message>{message}</Message></Error>"
            f"<RequestId>fault</RequestId></ErrorResponse>").encode()
    return status, body, {"Content-Type": "text/xml"}


class Proxy(QuietHandler):
    upstream = ("127.0.0.1", 5000)
    protocol_version = "HTTP/1.1"
    content_type = None

    def control(self) -> bool:
        path = self.path.split("?")[0]
        if not path.startswith("/_faults"):
            return False
        length = int(self.headers.get("Content-Length") or 0)
        payload = json.loads(self.rfile.read(length) or b"{}") if length else {}
        with LOCK:
            if path == "/_faults" and self.command == "POST":
                RULES[:] = [dict(r) for r in payload.get("rules", [])]
            elif path == "/_faults/latency" and self.command == "POST":
                ms = payload.get("ms")
                if not isinstance(ms, (int, float)) or isinstance(ms, bool) or not 0 <= ms <= 10_000:
                    self.reply(400, b'{"error": "ms must be a number from 0 to 10000"}', {"Content-Type": "application/json"})
                    return True
                LATENCY["seconds"] = ms / 1000
            elif path == "/_faults/health" and self.command == "POST":
                fake_health.record(payload)
            elif path == "/_faults/reset":
                LATENCY["seconds"] = 0.0
                RULES.clear()
                CALLS.clear()
                BYTES.clear()
                INJECTED.clear()
                ISSUED.clear()
            body = json.dumps({"calls": CALLS, "bytes": BYTES, "injected": INJECTED, "rules": RULES, "issuedSecrets": ISSUED,
                               "latencyMs": LATENCY["seconds"] * 1000}).encode()
        self.reply(200, body, {"Content-Type": "application/json"})
        return True

    def handle_any(self):
        if self.control():
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        operation, text = operation_of(self.headers, body, self.path)
        if LATENCY["seconds"]:
            time.sleep(LATENCY["seconds"])
        rule = take_rule(operation, text)
        if rule and rule["mode"] == "fail_before":
            return self.fail(operation, rule)
        if operation.startswith("health:"):
            status, data, headers = fake_health.answer(operation.split(":", 1)[1], body)
            with LOCK:
                BYTES[operation] = BYTES.get(operation, 0) + len(data)
            if rule:
                return self.fail(operation, rule)
            return self.reply(status, data, headers)
        conn = http.client.HTTPConnection(*self.upstream, timeout=120)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            conn.request(self.command, self.path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
        finally:
            conn.close()
        with LOCK:
            BYTES[operation] = BYTES.get(operation, 0) + len(data)
            if operation == "iam:CreateAccessKey":
                ISSUED.extend(m.decode() for m in SECRET.findall(data))
        if rule:  # lose_response: applied upstream, but the caller sees a failure
            return self.fail(operation, rule)
        headers = {k: v for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP and k.lower() != "content-length"}
        self.reply(response.status, data, headers)

    def fail(self, operation: str, rule: dict):
        if rule.get("kind") == "drop":
            self.close_connection = True
            try:
                self.connection.shutdown(2)
            except OSError:
                pass
            return
        status, body, headers = error_reply(operation, rule.get("kind", "500"))
        self.reply(status, body, headers)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = handle_any



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--upstream-port", type=int, required=True)
    args = parser.parse_args()
    Proxy.upstream = ("127.0.0.1", args.upstream_port)
    serve(Proxy, args.port)


if __name__ == "__main__":
    main()
