#!/usr/bin/env python3
"""Run moto server on loopback, with a clock that tests can move.

keyrotor's tests need IAM keys that are "91 days old" for real: moto stamps CreateDate
from the clock, so this launcher runs moto in-process under time-machine and accepts
`POST /_keyrotor/clock {"offsetSeconds": N}` to shift that clock (0 brings it back). The
functions themselves have no test switch; they see an ordinary emulator.
`POST /_keyrotor/lambda-port {"port": N}` tells moto's Step Functions where Lambda is
(it sends Task invocations to localhost:$MOTO_PORT). `POST /_keyrotor/credential-report/expire`
drops every account's credential report, as if the last one were older than IAM keeps.
`POST /_keyrotor/seed-users` creates many users at once for the benchmark (see seed_users):
only the set-up is faster; everything measured goes through the API.
`GET /_keyrotor/ses-messages` lists the e-mails SES "sent", in every account, as
`/moto-api/data.json` gives them (which fails once a Lambda function exists: it asks Docker).
`/_keyrotor/enforce` switches IAM enforcement of role sessions on and reads its decisions,
and EventBridge rules deliver to Lambda targets: what the deployed stack's test needs
(tools/moto_deployed.py).

Two IAM answers are made faithful to AWS, because the scan's call counts depend on them
(moto 5.2.5 gets both wrong): ListUsers honours MaxItems and Marker (moto returns every
user in one untruncated page), and GetCredentialReport gives the time the report was
generated (moto says 2015-02-02 always), with GenerateCredentialReport making a new one
only when the last is over four hours old, as IAM does. (moto builds the report's content
at each GetCredentialReport, so it always reads like a report generated just then.)

Prints `PORT <n>` on stdout once listening (port 0 picks a free port), and exits when the
process that started it goes away, so a crashed test run leaves nothing behind.
"""

import argparse
import json
import os
import sys
import threading
import time
from datetime import datetime, timedelta, timezone

import time_machine
import moto_deployed
from parent_watch import exit_with_parent
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from moto.core.responses import ActionResult
from moto.iam.exceptions import ValidationError
from moto.iam.models import iam_backends
from moto.iam.responses import IamResponse
from werkzeug.serving import make_server

CLOCK_PATH = "/_keyrotor/clock"
LAMBDA_PATH = "/_keyrotor/lambda-port"
EXPIRE_REPORT_PATH = "/_keyrotor/credential-report/expire"
SEED_PATH = "/_keyrotor/seed-users"
SES_PATH = "/_keyrotor/ses-messages"


class Clock:
    """The process-wide shifted clock (time-machine patches every thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._traveller = None
        self.offset = 0.0

    def set_offset(self, offset: float) -> None:
        with self._lock:
            if self._traveller is not None:
                self._traveller.stop()
                self._traveller = None
            if offset:
                # No traveller is active any more, so this is the real time.
                self._traveller = time_machine.travel(time.time() + offset, tick=True)
                self._traveller.start()
            self.offset = offset


def json_body(environ, empty=None):
    """The request's JSON body (`empty` when it has none)."""
    raw = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    return json.loads(raw) if raw else empty


def answer(start_response, status: str, payload) -> list:
    """A JSON answer with its Content-Length (without one, werkzeug chunks the body)."""
    body = json.dumps(payload).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def with_clock(app, clock: Clock):
    def wsgi(environ, start_response):
        path = environ.get("PATH_INFO")
        post = environ.get("REQUEST_METHOD") == "POST"
        if path == LAMBDA_PATH and post:
            # moto's Step Functions invokes Lambda at localhost:$MOTO_PORT, read per call.
            port = int(json_body(environ)["port"])
            os.environ["MOTO_PORT"] = str(port)
            return answer(start_response, "200 OK", {"port": port})
        if path == moto_deployed.ENFORCE_PATH:
            try:
                return answer(start_response, "200 OK", moto_deployed.control(environ["REQUEST_METHOD"], json_body(environ, {})))
            except (KeyError, TypeError, ValueError) as err:
                return answer(start_response, "400 Bad Request", {"error": f"{type(err).__name__}: {err}"})
        if path == SES_PATH:
            return answer(start_response, "200 OK", {"messages": sent_messages()})
        if path == EXPIRE_REPORT_PATH and post:
            return answer(start_response, "200 OK", {"expired": expire_credential_reports()})
        if path == SEED_PATH and post:
            try:
                return answer(start_response, "200 OK", seed_users(json_body(environ)))
            except (ValueError, KeyError, TypeError, AttributeError) as err:
                return answer(start_response, "400 Bad Request", {"error": f"{type(err).__name__}: {err}"})
            except Exception as err:  # moto's own errors (EntityAlreadyExists, NoSuchEntity)
                return answer(start_response, "409 Conflict", {"error": f"{type(err).__name__}: {err}"})
        if path != CLOCK_PATH:
            return app(environ, start_response)
        if post:
            try:
                clock.set_offset(float(json_body(environ, {})["offsetSeconds"]))
            except (ValueError, KeyError, TypeError) as err:
                return answer(start_response, "400 Bad Request", {"error": str(err)})
        return answer(start_response, "200 OK", {"offsetSeconds": clock.offset})

    return wsgi


REPORT_LIFETIME = timedelta(hours=4)


def list_users_in_pages(self) -> ActionResult:
    """ListUsers as IAM pages it: at most MaxItems (1 to 1,000, default 100) users, then a
    Marker (here the position of the next user; IAM's is opaque)."""
    max_items = int(self._get_param("MaxItems") or 100)
    if not 1 <= max_items <= 1000:
        raise ValidationError(f"MaxItems {max_items} is not between 1 and 1000")
    marker = self._get_param("Marker")
    if marker is not None and not marker.isdigit():
        raise ValidationError("Invalid Marker")
    users = list(self.backend.list_users(self._get_param("PathPrefix"), None, None))
    start = int(marker or 0)
    page = users[start : start + max_items]
    result = {"Users": page, "IsTruncated": start + max_items < len(users)}
    if result["IsTruncated"]:
        result["Marker"] = str(start + max_items)
    return ActionResult(result)


def expire_credential_reports() -> int:
    """Forgets every account's credential report; returns how many there were."""
    expired = 0
    for regions in iam_backends.values():
        for backend in regions.values():
            if backend.report_generated():
                expired += 1
            backend.credential_report = None
            backend.keyrotor_report_time = None
    return expired


def seed_users(body: dict) -> dict:
    """Creates users straight in moto's IAM backend, which is about a hundred times faster
    than CreateUser and CreateAccessKey over HTTP: the benchmark seeds thousands.

    Body: {"account": "123456789012", "users": [{"name": "u1", "tags": {"Email": "..."},
    "keyAgeDays": 95, "groups": ["exempt"]}]}; a user without keyAgeDays gets no key, and
    the groups must exist. Returns {"keys": {"u1": "AKIA..."}}. Stops at the first user
    moto refuses (already exists, no such group), keeping those before it.
    """
    backend = iam_backends[str(body["account"])]["global"]
    keys = {}
    for user in body["users"]:
        name = str(user["name"])
        tags = [{"Key": str(k), "Value": str(v)} for k, v in (user.get("tags") or {}).items()]
        backend.create_user("us-east-1", name, tags=tags)
        age = user.get("keyAgeDays")
        if age is not None:
            key = backend.create_access_key(name)
            key.create_date = key.create_date - timedelta(days=float(age))
            keys[name] = key.access_key_id
        for group in user.get("groups") or []:
            backend.add_user_to_group(str(group), name)
    return {"keys": keys}


def generate_credential_report(self) -> ActionResult:
    now = datetime.now(timezone.utc)
    generated = getattr(self.backend, "keyrotor_report_time", None)
    if generated is not None and now - generated < REPORT_LIFETIME:
        return ActionResult({"State": "COMPLETE"})
    self.backend.generate_report()
    self.backend.keyrotor_report_time = now
    return ActionResult({"State": "STARTED", "Description": "Starting a new report"})


def get_credential_report(self) -> ActionResult:
    content = self.backend.get_credential_report()
    generated = getattr(self.backend, "keyrotor_report_time", None) or datetime.now(timezone.utc)
    return ActionResult(
        {
            "Content": content,
            "ReportFormat": "text/csv",
            "GeneratedTime": generated.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
    )


def sent_messages() -> list:
    """Every plain e-mail moto's SES accepted, oldest first within an account and region."""
    from moto.ses.models import Message, ses_backends
    out = []
    for account, regions in ses_backends.items():
        for region, backend in regions.items():
            for m in backend.sent_messages:
                if isinstance(m, Message):
                    out.append({"source": m.source, "destinations": m.destinations, "subject": m.subject,
                                "body": m.body})
    return out


def make_iam_faithful() -> None:
    IamResponse.list_users = list_users_in_pages
    IamResponse.generate_credential_report = generate_credential_report
    IamResponse.get_credential_report = get_credential_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--no-parent-watch", action="store_true", help="keep running if the parent exits")
    args = parser.parse_args()
    if not args.host.startswith("127.") and args.host not in ("localhost", "::1"):
        sys.exit("moto_launcher serves loopback only")

    make_iam_faithful()
    moto_deployed.install()
    clock = Clock()
    app = with_clock(DomainDispatcherApplication(create_backend_app), clock)
    server = make_server(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)
    if not args.no_parent_watch:
        exit_with_parent()
    print(f"PORT {server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
