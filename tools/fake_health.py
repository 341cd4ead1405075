"""A fake AWS Health API for the local stack: moto has none (5.2.5), and keyrotor asks AWS
Health whether a reported exposure is AWS's own (issue 26, M9).

The fault proxy answers the two calls keyrotor makes, DescribeEventDetails and
DescribeAffectedEntities, in the SDK's protocol for Health (Smithy RPC v2 CBOR: POST
/service/AWSHealth_20160804/operation/<Operation>, CBOR bodies, timestamps as CBOR tag 1).
Tests share one stack, so what the fake knows is kept per event ARN, and never reset:
POST /_faults/health {"events": {"<event ARN>": {"eventTypeCode": "...", "startTime": <epoch
seconds>, "exposedUrl": "...", "entities": ["AKIA..."]} | null}} records AWS's own event
under that ARN, or (null) makes AWS Health answer that it has no such event. A call about an
ARN never recorded answers SubscriptionRequiredException, as AWS does in an account without
a Business, Enterprise On-Ramp or Enterprise support plan: the usual case, in which no
report can be confirmed.
"""

import threading

import cbor2

SERVICE = "AWSHealth_20160804"
PATH_PREFIX = f"/service/{SERVICE}/operation/"
LOCK = threading.Lock()
EVENTS: dict = {}


def operation(path: str) -> str | None:
    """The Health operation a request's path names, if it is one."""
    if path.startswith(PATH_PREFIX):
        return path[len(PATH_PREFIX):].split("?")[0]
    return None


def text_of(body: bytes) -> str:
    """A request's body as searchable text (for the proxy's "match")."""
    try:
        return repr(cbor2.loads(body)) if body else ""
    except Exception:  # noqa: BLE001
        return ""


def record(payload: dict) -> None:
    with LOCK:
        EVENTS.update(payload.get("events") or {})


def _reply(status: int, body: dict) -> tuple[int, bytes, dict]:
    headers = {"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor"}
    return status, cbor2.dumps(body), headers


def error(status: int, code: str, message: str) -> tuple[int, bytes, dict]:
    status, body, headers = _reply(status, {"__type": code, "message": message})
    headers["x-amzn-ErrorType"] = code
    return status, body, headers


def answer(op: str, body: bytes) -> tuple[int, bytes, dict]:
    """The reply to one Health call."""
    try:
        request = cbor2.loads(body) if body else {}
    except Exception:  # noqa: BLE001 - any undecodable body is the caller's error
        return error(400, "ValidationException", "the body is not CBOR")
    arns = request.get("eventArns") or (request.get("filter") or {}).get("eventArns") or []
    with LOCK:
        if not arns or any(arn not in EVENTS for arn in arns):
            return error(400, "SubscriptionRequiredException",
                          "The AWS Health API requires a Business, Enterprise On-Ramp, or Enterprise Support plan.")
        events = {arn: EVENTS[arn] for arn in arns}
    if op == "DescribeEventDetails":
        found, failed = [], []
        for arn in arns:
            event = events.get(arn)
            if event is None:
                failed.append({"eventArn": arn, "errorName": "NotFound", "errorMessage": "no such event"})
                continue
            found.append({
                "event": {"arn": arn, "service": "RISK", "eventTypeCode": event["eventTypeCode"],
                          "eventTypeCategory": "issue", "statusCode": "open",
                          "startTime": cbor2.CBORTag(1, float(event["startTime"]))},
                "eventDescription": {"latestDescription": "Your AWS Access Key may be compromised."},
                "eventMetadata": {"exposedUrl": event.get("exposedUrl", "")},
            })
        return _reply(200, {"successfulSet": found, "failedSet": failed})
    if op == "DescribeAffectedEntities":
        entities = [{"entityValue": value, "eventArn": arn, "statusCode": "IMPAIRED"}
                    for arn in arns for value in (events.get(arn) or {}).get("entities", [])]
        return _reply(200, {"entities": entities})
    return error(400, "UnknownOperationException", f"the fake AWS Health has no {op}")
