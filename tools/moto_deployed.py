"""What a deployed keyrotor stack needs from moto 5.2.5 beyond what moto does (issue 27).

Enforcement is switched on by the deploy test through moto_launcher's control path; none of
this changes anything for the hand-built local stack.

**State machines from CloudFormation that execute.** moto's CloudFormation creates a state
machine in the Step Functions backend that never runs one, while the API (with
`execute_state_machine` on) serves the backend that does; so a deployed machine is not found.
Here CloudFormation creates it where the API looks, as on AWS there is one service.

**Role sessions under IAM (`POST /_keyrotor/enforce {"on": true}`).** Every request signed
with an assumed role's temporary credentials is checked: its session (access key ID and
token), then its action against the role's policies (inline and attached). moto's own enforcement is all or nothing
for the whole server, and with the resource unknown to most of its services ("*") it never
matches a statement scoped to ARNs, and it denies a statement whose condition it cannot
evaluate; so it would refuse keyrotor's scoped roles everywhere. Here the decision is by
action: allowed when an Allow statement's Action (or NotAction) covers the action, whatever
its Resource and Condition; denied when a Deny statement covers it with Resource "*" and no
Condition. Resources and conditions stay the policy tests' business (tests/tests/it/
policies.rs and member_policies.rs evaluate them). Requests with long-term keys (the
harness's own set-up and reads, a user's new key) are not checked. `GET /_keyrotor/enforce`
returns every decision made: {"decisions": [{"role", "action", "allowed"}]}.

**EventBridge delivering to Lambda.** moto's rules send to logs, SQS, archives and other
buses, and raise NotImplementedError for a Lambda target. Here a Lambda target gets the
event (after the target's InputTransformer, as moto does for the others) as an asynchronous
invocation (`X-Amz-Invocation-Type: Event`) at the Lambda endpoint moto's Step Functions
uses (localhost:$MOTO_PORT, which the tests point at the function gateway). No retries and
no resource policy check: EventBridge's Lambda permission is the template's business. And
as on AWS, a rule that has a schedule and no pattern matches no event (moto's matches
every event, then fails on its Step Functions target), nor does a disabled rule.
"""

import copy
import fnmatch
import json
import threading
import urllib.parse
import urllib.request

from moto.core.authorization import ActionAuthenticatorMixin
from moto.events.models import EventTemplateParser, Rule
from moto.settings import moto_server_port
from moto.stepfunctions.models import StateMachine
from moto.stepfunctions.responses import get_backend as stepfunctions_backend
from moto.stepfunctions.utils import cfn_to_api_tags
from moto.utilities.arns import parse_arn
from policy_documents import statements

ENFORCE_PATH = "/_keyrotor/enforce"
LOCK = threading.Lock()
STATE = {"on": False}
DECISIONS: list[dict] = []
# The SigV4 scope's service name where it is not the IAM action's prefix.
ACTION_PREFIX = {"monitoring": "cloudwatch", "email": "ses"}


def covers(patterns, action: str) -> bool:
    """Whether an Action element (a string or a list, with * and ? wildcards) names `action`,
    ignoring case as IAM does."""
    listed = patterns if isinstance(patterns, list) else [patterns]
    return any(fnmatch.fnmatchcase(action.lower(), p.lower()) for p in listed)


def names(statement: dict, action: str) -> bool:
    if "NotAction" in statement:
        return not covers(statement["NotAction"], action)
    return covers(statement.get("Action", []), action)


def decide(documents: list, action: str) -> bool:
    """By action only (see the module's note): an unconditional Deny on every resource
    refuses, otherwise any Allow naming the action allows."""
    allowed = False
    for statement in (s for d in documents for s in statements(d)):
        if not names(statement, action):
            continue
        if statement.get("Effect") == "Deny":
            if statement.get("Resource") in ("*", ["*"]) and not statement.get("Condition"):
                return False
        elif statement.get("Effect") == "Allow":
            allowed = True
    return allowed


def role_documents(access_key) -> list:
    """Every policy document of the session's role: inline, then attached."""
    backend, role = access_key.backend, access_key._owner_role_name
    documents = [backend.get_role_policy(role, name)[1] for name in backend.list_role_policies(role)]
    attached, _ = backend.list_attached_role_policies(role)
    for policy in attached:
        default = next(v for v in policy.versions if v.is_default)
        documents.append(default.document)
    return documents


def is_role_session(headers) -> bool:
    authorization = headers.get("Authorization", "")
    key = authorization.partition("Credential=")[2].split("/", 1)[0]
    return "X-Amz-Security-Token" in headers and bool(key) and not key.startswith("AKIA")


def enforce_role_sessions() -> None:
    """Checks role sessions' requests by action while enforcement is on (see above)."""
    original = ActionAuthenticatorMixin._authenticate_and_authorize_action

    def authorize(self, iam_request_cls, resource="*"):
        if not (STATE["on"] and is_role_session(self.headers)):
            return original(self, iam_request_cls, resource)
        # Finds the session by its access key ID and checks its token (InvalidClientTokenId
        # otherwise). The signature is not checked: moto has consumed the form body of a
        # query-protocol request (SES's) by now, so it cannot be recomputed.
        request = iam_request_cls(account_id=self.current_account, method=self.method, path=self.raw_path,
                                  data=self.data, body=self.raw_body, headers=self.headers,
                                  action=self._get_action())
        service, _, operation = request._action.partition(":")
        action = f"{ACTION_PREFIX.get(service, service)}:{operation}"
        access_key = request._access_key
        # STS answers GetCallerIdentity to anyone, whatever their policies say.
        allowed = action == "sts:GetCallerIdentity" or decide(role_documents(access_key), action)
        with LOCK:
            DECISIONS.append({"role": f"arn:aws:iam::{access_key.account_id}:role/{access_key._owner_role_name}",
                              "action": action, "allowed": allowed})
        if not allowed:
            request._action = action
            request._raise_access_denied()

    ActionAuthenticatorMixin._authenticate_and_authorize_action = authorize


def control(method: str, body) -> dict:
    """`POST` switches enforcement on or off (and clears the decisions); `GET` reads them."""
    with LOCK:
        if method == "POST":
            STATE["on"] = bool(body["on"])
            DECISIONS.clear()
        return {"on": STATE["on"], "decisions": list(DECISIONS)}


def invoke_async(function_arn: str, event: dict) -> None:
    url = (f"http://localhost:{moto_server_port()}/2015-03-31/functions/"
           f"{urllib.parse.quote(function_arn, safe='')}/invocations")
    request = urllib.request.Request(url, data=json.dumps(event).encode(), method="POST",
                                     headers={"Content-Type": "application/json",
                                              "X-Amz-Invocation-Type": "Event"})
    try:
        urllib.request.urlopen(request, timeout=30).read()
    except OSError as err:
        print(f"EventBridge could not deliver to {function_arn}: {err}", flush=True)


def deliver_to_lambda_targets() -> None:
    """Rules deliver to Lambda targets too (see above); other targets as moto does."""
    original = Rule.send_to_targets

    def send_to_targets(self, original_event, transform_input=True):
        # A rule with a schedule and no pattern matches no event (moto's matches them all),
        # and a disabled rule delivers nothing.
        if not self.event_pattern._pattern or self.state != "ENABLED":
            return
        if not self.event_pattern.matches_event(original_event):
            return
        functions = [t for t in self.targets if parse_arn(t["Arn"]).service == "lambda"]
        for target in functions:
            transformer = target.get("InputTransformer", {})
            event = EventTemplateParser.parse(
                input_template=transformer.get("InputTemplate"),
                input_paths_map=transformer.get("InputPathsMap", {}),
                event=original_event,
            ) if transform_input else copy.deepcopy(original_event)
            threading.Thread(target=invoke_async, args=(target["Arn"], event), daemon=True).start()
        rest = copy.copy(self)
        rest.targets = [t for t in self.targets if t not in functions]
        if rest.targets:
            original(rest, original_event, transform_input)

    Rule.send_to_targets = send_to_targets


def deployed_machines_execute() -> None:
    """CloudFormation's state machines in the backend the API serves (see above)."""

    def create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        properties = cloudformation_json["Properties"]
        return stepfunctions_backend(account_id, region_name).create_state_machine(
            properties.get("StateMachineName", resource_name),
            properties.get("DefinitionString", ""),
            properties.get("RoleArn", ""),
            tags=cfn_to_api_tags(properties.get("Tags", [])),
        )

    StateMachine.create_from_cloudformation_json = classmethod(create)


def install() -> None:
    deployed_machines_execute()
    enforce_role_sessions()
    deliver_to_lambda_targets()
