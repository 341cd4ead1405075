"""A fake GitHub Actions secrets API and a webhook receiver, on loopback, for deliver-key's
tests and the demo (issue 29).

GitHub, as its REST API documents it (X-GitHub-Api-Version 2022-11-28):
  GET  /repos/{owner}/{repo}/actions/secrets/public-key
  GET  /repos/{owner}/{repo}/environments/{env}/secrets/public-key
  GET  .../secrets/{name}   the secret's metadata (name, created_at, updated_at), never its value
  PUT  .../secrets/{name}   {"encrypted_value", "key_id"}: 201 created, 204 updated
Each repository (and environment) has its own key pair, made here. What a PUT carries is
opened with libsodium's crypto_box_seal_open (PyNaCl), so a value sealed any other way than
GitHub documents is refused (422), and the test reads back what GitHub would hold.
Refusals: a token other than --token is 401; a repository whose name contains "missing" is
404; one containing "limited" is 403 with x-ratelimit-remaining 0 and retry-after 3600.

The webhook receiver, POST /hook: checks x-keyrotor-signature (sha256=HMAC-SHA256 of
"<x-keyrotor-timestamp>.<body>" under --webhook-key) and that the timestamp is within five
minutes; 401 otherwise. POST /hook/down answers 503 every time.

For the tests: GET /_state (what was stored, opened; the notices; the request count) and
POST /_reset. Every request (method, path, headers, body) is appended to --log, which the
leak scan reads: the secret must appear there only sealed.
"""

import argparse
import base64
import hashlib
import hmac
import json
import threading
from datetime import datetime, timezone

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, SealedBox

from http_handler import QuietHandler, serve

LOCK = threading.Lock()
STATE: dict = {}


def reset() -> None:
    STATE.clear()
    STATE.update({"keys": {}, "secrets": {}, "notices": [], "requests": 0, "refused": []})


def now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


class Handler(QuietHandler):
    token = ""
    webhook_key = b""
    log_path = None

    def body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def record(self, body: bytes) -> None:
        with LOCK:
            STATE["requests"] += 1
            if self.log_path:
                with open(self.log_path, "a", encoding="utf-8") as log:
                    headers = {k: v for k, v in self.headers.items()}
                    log.write(json.dumps({"method": self.command, "path": self.path,
                                          "headers": headers, "body": body.decode("utf-8", "replace")}) + "\n")

    def json_reply(self, status: int, value, headers: dict | None = None) -> None:
        self.reply(status, b"" if status == 204 else json.dumps(value).encode(), headers)

    def do_GET(self) -> None:  # noqa: N802
        self.record(b"")
        if self.path == "/_state":
            with LOCK:
                state = {k: v for k, v in STATE.items() if k != "keys"}
            return self.json_reply(200, state)
        self.github("GET", b"")

    def do_PUT(self) -> None:  # noqa: N802
        body = self.body()
        self.record(body)
        self.github("PUT", body)

    def do_POST(self) -> None:  # noqa: N802
        body = self.body()
        if self.path == "/_reset":
            with LOCK:
                reset()
            return self.json_reply(200, {})
        self.record(body)
        if self.path.startswith("/hook/down"):
            return self.json_reply(503, {"message": "down"})
        if self.path.split("?")[0] == "/hook":
            return self.hook(body)
        self.json_reply(404, {"message": "Not Found"})

    def hook(self, body: bytes) -> None:
        stamp = self.headers.get("x-keyrotor-timestamp", "")
        signature = self.headers.get("x-keyrotor-signature", "")
        wanted = "sha256=" + hmac.new(self.webhook_key, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        try:
            sent = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
            fresh = abs((datetime.now(timezone.utc) - sent).total_seconds()) < 300
        except ValueError:
            fresh = False
        if not (fresh and hmac.compare_digest(signature, wanted)):
            with LOCK:
                STATE["refused"].append({"path": "/hook", "why": "signature"})
            return self.json_reply(401, {"message": "bad signature"})
        notice = json.loads(body)
        with LOCK:
            STATE["notices"].append({"notice": notice, "delivery": self.headers.get("x-keyrotor-delivery")})
        self.json_reply(204, {})

    def github(self, method: str, body: bytes) -> None:
        if self.headers.get("Authorization") != f"Bearer {self.token}":
            return self.json_reply(401, {"message": "Bad credentials"})
        parts = self.path.split("?")[0].strip("/").split("/")
        if len(parts) < 5 or parts[0] != "repos":
            return self.json_reply(404, {"message": "Not Found"})
        repository = f"{parts[1]}/{parts[2]}"
        if "limited" in repository:
            return self.json_reply(403, {"message": "API rate limit exceeded"},
                                   {"x-ratelimit-remaining": "0", "retry-after": "3600"})
        if "missing" in repository:
            return self.json_reply(404, {"message": "Not Found"})
        if parts[3:5] == ["actions", "secrets"]:
            place, rest = repository, parts[5:]
        elif parts[3] == "environments" and len(parts) >= 6 and parts[5] == "secrets":
            place, rest = f"{repository}/environments/{parts[4]}", parts[6:]
        else:
            return self.json_reply(404, {"message": "Not Found"})
        with LOCK:
            key = STATE["keys"].setdefault(place, PrivateKey.generate())
        key_id = hashlib.sha256(bytes(key.public_key)).hexdigest()[:18]
        if rest == ["public-key"] and method == "GET":
            return self.json_reply(200, {"key_id": key_id, "key": base64.b64encode(bytes(key.public_key)).decode()})
        if len(rest) != 1:
            return self.json_reply(404, {"message": "Not Found"})
        path = f"{place}/{rest[0]}"
        if method == "GET":
            with LOCK:
                held = STATE["secrets"].get(path)
            if held is None:
                return self.json_reply(404, {"message": "Not Found"})
            return self.json_reply(200, {"name": rest[0], "created_at": held["created_at"], "updated_at": held["updated_at"]})
        try:
            sent = json.loads(body)
            if sent.get("key_id") != key_id:
                raise ValueError("key_id")
            value = SealedBox(key).decrypt(base64.b64decode(sent["encrypted_value"])).decode()
        except (ValueError, KeyError, CryptoError, TypeError):
            return self.json_reply(422, {"message": "Bad request: the value is not sealed to this key"})
        with LOCK:
            held = STATE["secrets"].get(path)
            created = held["created_at"] if held else now()
            STATE["secrets"][path] = {"value": value, "created_at": created, "updated_at": now()}
        self.json_reply(204 if held else 201, {})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", required=True)
    parser.add_argument("--webhook-key", required=True)
    parser.add_argument("--log")
    args = parser.parse_args()
    Handler.token = args.token
    Handler.webhook_key = args.webhook_key.encode()
    Handler.log_path = args.log
    reset()
    serve(Handler, args.port)


if __name__ == "__main__":
    main()
