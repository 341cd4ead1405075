#!/usr/bin/env python3
"""Cross-checks of infra/template.yaml against the code (run by `make test`).

1. Least privilege: for each function, the AWS actions it declares (`AWS_ACTIONS` in its
   lib.rs, which tests/tests/it/declared_actions.rs holds against the calls the code makes)
   equal the actions its role grants. None missing, none extra.
2. No wildcard in any Action of any role, managed or inline policy, or key policy.
3. For every state machine: the ASL's ${placeholders} equal its DefinitionSubstitutions, and
   its logs exclude execution data; its role may invoke exactly the functions of the
   machines that use it; a scheduled machine never allows force, nor does the
   per-user machine start-rotations starts (KEYROTOR_STATE_MACHINE_ARN, a !Ref), while
   respond-to-exposure starts the one that does; each of the two may start only that
   machine, and respond-to-exposure runs only on events only AWS can send (aws.* sources).
4. Every KEYROTOR_* variable the configuration reads is set for the functions (in Globals
   or on the function).
5. Alarms can notify: every SNS topic an alarm acts on is encrypted with a KMS key of this
   template (not an AWS managed alias/aws/* key, whose policy cannot name CloudWatch) whose
   key policy allows cloudwatch.amazonaws.com kms:Decrypt and kms:GenerateDataKey.
6. Who may force a rotation: no managed policy that may start a scheduled machine may also
   start a machine that allows force, or stop or redrive that machine's executions (a
   stopped leak response leaves the key active, a redriven one finishes a forced rotation),
   and none may invoke a function directly (which would bypass the state machines'
   AllowForce gate).
7. Events: every statement that allows events:PutEvents allows it on the account's default
   bus only, for the source keyrotor only (so no role of this template can put events that
   look like another service's on any bus).
8. Many accounts: a function that works in member accounts (served by serve_in_account or
   serve_with_accounts) may assume exactly its own member role, role/keyrotor/<function>, in
   accounts of the organization (aws:ResourceOrgID), and only with Accounts other than self;
   any other function none; with many accounts its role has the fixed name member trust
   policies give (role/keyrotor/hub/<stack>-<function>). list-accounts may assume
   OrgRoleArn, only when it is set.
9. infra/member-account.yaml: a member role per such function, role/keyrotor/<function>,
   with exactly the IAM and Secrets Manager part of its AWS_ACTIONS and no policy-writing
   IAM action, trusted only by its hub role inside the organization (an external ID when
   set); the read-only role/keyrotor/report with the operator report's reads; and the
   secrets key with keyrotor's key policy.
10. Code signing: every function names the CodeSigning configuration when
   SigningProfileVersionArn is set.
11. The scope: with many accounts, the functions whose Deps set CHECKS_SCOPE (and only they)
   may read exactly SCOPE_ACTIONS of keyrotor-aws's member.rs, and assume OrgRoleArn when it
   is set; every hub role that assumes member roles is held by HubScopeGuard, which only
   denies sts:AssumeRole (outside ExcludeAccounts, ExcludeOus, IncludeOus).

Usage: check_infra.py [template] (default infra/template.yaml; DefinitionUri paths resolve
from infra/). Prints one line per check and "check_infra: N passed, N failed"; exits 1 on
any failure.
"""

import re
import sys
from pathlib import Path

from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "functions/keyrotor-core/src"
FUNCTIONS = {
    "list-users": "ListUsers",
    "assess-key-age": "AssessKeyAge",
    "start-rotations": "StartRotations",
    "respond-to-exposure": "RespondToExposure",
    "create-key": "CreateKey",
    "deliver-key": "DeliverKey",
    "deactivate-key": "DeactivateKey",
    "notify": "Notify",
    "delete-key": "DeleteKey",
    "list-accounts": "ListAccounts",
    "scan-accounts": "ScanAccounts",
}
# The statements by which a role reaches another account, each under its condition: the
# member role of the function itself (functions that work in member accounts), and the
# organization reader (list-accounts). They are checked on their own, not as AWS_ACTIONS.
ASSUME_SIDS = {"AssumeMemberRole": "ManyAccounts", "AssumeOrganizationReader": "ReadOrganizationThroughRole"}
# Calls that need no permission: STS GetCallerIdentity (create-key makes it with the new
# key's own credentials, and AWS documents that it needs none).
NO_PERMISSION = {"sts:GetCallerIdentity"}
# Permissions an operation needs beyond its own name.
IMPLIED = {
    # keyrotor creates secrets with tags, which needs TagResource as well.
    "secretsmanager:CreateSecret": {"secretsmanager:TagResource"},
    # A SecureString under a customer managed key (ParameterKmsKeyArn) is encrypted by SSM
    # with the caller's kms:Encrypt (granted only when that key is set).
    "ssm:PutParameter": {"kms:Encrypt"},
}
# The role's own log writing, granted to every function.
LOGS = {"logs:CreateLogStream", "logs:PutLogEvents"}
# Policy documents that grant or allow actions, by resource type and property.
POLICY_DOCUMENTS = {
    "AWS::IAM::Role": ("AssumeRolePolicyDocument",),
    "AWS::IAM::ManagedPolicy": ("PolicyDocument",),
    "AWS::IAM::Policy": ("PolicyDocument",),
    "AWS::KMS::Key": ("KeyPolicy",),
}
STATE_MACHINES = ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine")
ALARM_ACTIONS = ("AlarmActions", "OKActions", "InsufficientDataActions")
CLOUDWATCH = "cloudwatch.amazonaws.com"


def declared_actions(function: str) -> set[str]:
    """The AWS_ACTIONS list the function's lib.rs declares (a test holds the code's calls to
    it), as the permissions its role needs: calls that need none dropped, implied ones added."""
    source = (ROOT / "functions" / function / "src/lib.rs").read_text()
    match = re.search(r"pub const AWS_ACTIONS: &\[&str\] = &\[(.*?)\];", source, re.S)
    if match is None:
        raise SystemExit(f"{function}: no `pub const AWS_ACTIONS` in src/lib.rs")
    calls = set(re.findall(r'"([a-z0-9]+:[A-Za-z]+)"', match.group(1)))
    needed = set()
    for call in calls - NO_PERMISSION:
        needed |= {call} | IMPLIED.get(call, set())
    return needed


def works_in_member_accounts(function: str) -> bool:
    """Whether the function's main.rs serves it in member accounts (through its member role)."""
    main = (ROOT / "functions" / function / "src/main.rs").read_text()
    return "serve_in_account" in main or "serve_with_accounts" in main


def assume_statements(resources: dict, role: str) -> dict:
    """The role's AssumeRole statements, each in a RolePolicy of its own under a condition:
    {sid: (condition, statement)}."""
    out = {}
    for res in resources.values():
        props = res.get("Properties", {})
        if res.get("Type") != "AWS::IAM::RolePolicy" or props.get("RoleName") != {"Ref": role}:
            continue
        for st in statements(props.get("PolicyDocument", {})):
            if st.get("Sid") in ASSUME_SIDS:
                out[st["Sid"]] = (res.get("Condition"), st)
            else:
                out[f"unexpected {st.get('Sid')}"] = (res.get("Condition"), st)
    return out


def member_role_statement_ok(function: str, found: dict) -> tuple[bool, str]:
    """A hub role may assume only its own function's member role, in the organization."""
    expected = {
        "Sid": "AssumeMemberRole",
        "Effect": "Allow",
        "Action": ["sts:AssumeRole"],
        "Resource": {"Fn::Sub": f"arn:${{AWS::Partition}}:iam::*:role/keyrotor/{function}"},
        "Condition": {"StringEquals": {"aws:ResourceOrgID": {"Ref": "OrganizationId"}}},
    }
    if not works_in_member_accounts(function):
        return not found, "works in its own account only: assumes no member role"
    condition, statement = found.get("AssumeMemberRole", (None, None))
    ok = condition == "ManyAccounts" and statement == expected and len(found) == 1
    return ok, f"assumes only role/keyrotor/{function}, in the organization, with many accounts"


def statements(policy_document) -> list:
    out = []
    for st in policy_document.get("Statement", []):
        if isinstance(st, dict) and "Fn::If" in st:
            st = st["Fn::If"][1]  # the branch where the condition holds
        if isinstance(st, dict) and "Effect" in st:
            out.append(st)
    return out


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def policy_documents(res: dict) -> list:
    props = res.get("Properties", {})
    docs = [p["PolicyDocument"] for p in props.get("Policies", []) if isinstance(p, dict) and "PolicyDocument" in p]
    docs += [props[k] for k in POLICY_DOCUMENTS.get(res.get("Type"), ()) if k in props]
    return docs


def referenced(value, resources: dict) -> str | None:
    """The logical ID a Ref / GetAtt (or an alias resource of this template) points at."""
    if isinstance(value, dict) and "Ref" in value:
        name = value["Ref"]
    elif isinstance(value, dict) and "Fn::GetAtt" in value:
        att = value["Fn::GetAtt"]
        name = att[0] if isinstance(att, list) else str(att).split(".")[0]
    else:
        return None
    res = resources.get(name, {})
    if res.get("Type") == "AWS::KMS::Alias":
        return referenced(res.get("Properties", {}).get("TargetKeyId"), resources)
    return name if name in resources else None


def executions_of(resource, machines: dict) -> set[str]:
    """The machines (logical IDs) whose executions an execution-ARN resource names: a
    `Fn::Sub` of `...:execution:<the machine's Name>:*`."""
    arn = resource.get("Fn::Sub") if isinstance(resource, dict) else resource
    if not isinstance(arn, str):
        return set()
    found = set()
    for logical, res in machines.items():
        name = res.get("Properties", {}).get("Name")
        name = name.get("Fn::Sub") if isinstance(name, dict) else name
        if isinstance(name, str) and f":execution:{name}:" in arn:
            found.add(logical)
    return found


def service_principals(statement: dict) -> set[str]:
    principal = statement.get("Principal", {})
    if not isinstance(principal, dict):
        return set()
    out = set()
    for p in as_list(principal.get("Service", [])):
        if isinstance(p, dict) and "Fn::Sub" in p:
            p = p["Fn::Sub"]
        if isinstance(p, str):
            out.add(p)
    return out


def alarm_topics(resources: dict) -> list[tuple[str, str | None, str]]:
    """(alarm, topic logical ID or None, how the action was written) per alarm action."""
    out = []
    for logical, res in resources.items():
        if res.get("Type") != "AWS::CloudWatch::Alarm":
            continue
        for prop in ALARM_ACTIONS:
            for action in as_list(res.get("Properties", {}).get(prop, [])):
                topic = referenced(action, resources)
                if topic and resources[topic].get("Type") != "AWS::SNS::Topic":
                    continue  # not a topic (e.g. an EC2 or Systems Manager action)
                out.append((logical, topic, str(action)))
    return out


def topic_usable_by_alarms(topic: str, resources: dict) -> tuple[bool, str]:
    key_id = resources[topic].get("Properties", {}).get("KmsMasterKeyId")
    if key_id is None:
        return False, "not encrypted"
    key = referenced(key_id, resources)
    if key is None or resources[key].get("Type") != "AWS::KMS::Key":
        what = "an AWS managed key" if str(key_id).startswith("alias/aws/") else "a key not defined here"
        return False, f"encrypted with {key_id} ({what}: CloudWatch cannot be allowed to use it)"
    allowed = set()
    for st in statements(resources[key].get("Properties", {}).get("KeyPolicy", {})):
        if st.get("Effect") == "Allow" and CLOUDWATCH in service_principals(st):
            allowed |= {str(a) for a in as_list(st.get("Action", []))}
    has_decrypt = "kms:Decrypt" in allowed
    has_data_key = bool({"kms:GenerateDataKey", "kms:GenerateDataKey*"} & allowed)
    if has_decrypt and has_data_key:
        return True, f"encrypted with {key}, which {CLOUDWATCH} may use"
    missing = [a for a, ok in (("kms:Decrypt", has_decrypt), ("kms:GenerateDataKey", has_data_key)) if not ok]
    return False, f"encrypted with {key}, whose policy does not allow {CLOUDWATCH} {', '.join(missing)}"


# The services a function's member role uses in a member account (AWS Health: the account's own
# record of an exposure report); the rest (SES, EventBridge,
# Step Functions) stay in the tooling account.
MEMBER_SERVICES = ("iam:", "secretsmanager:", "health:", "ssm:")
# Calls a function that works in member accounts still makes in the tooling account.
HUB_SIDE = {"deliver-key": {"secretsmanager:GetSecretValue"}}
# Never in a member role: what would let keyrotor (or whoever took its hub roles) grant
# itself more in a member account.
ESCALATION = re.compile(r"^iam:(Put|Attach|Create(Policy|Role|User|LoginProfile)|Update(AssumeRole)?Policy|.*Policy)", re.I)


def member_account_checks(hub_resources: dict) -> list:
    """9. infra/member-account.yaml: one role per function that works in member accounts,
    role/keyrotor/<function>, granting exactly the member-side part of its AWS_ACTIONS and no
    IAM action that writes policy; trusted only by that function's hub role (by ARN, in the
    organization), with the external ID when one is set; the secrets key as keyrotor's own."""
    template, errors = decode(str(ROOT / "infra/member-account.yaml"))
    if errors:
        return [(False, f"member-account.yaml does not parse: {errors}")]
    resources = template["Resources"]
    results = []
    roles = {res["Properties"]["RoleName"]: (logical, res) for logical, res in resources.items()
             if res.get("Type") == "AWS::IAM::Role"}
    members = sorted(f for f in FUNCTIONS if works_in_member_accounts(f))
    expected_roles = sorted(members + ["report"])
    results.append((sorted(roles) == expected_roles, f"member roles for exactly {expected_roles} ({sorted(roles)})"))
    # The operators' read-only role: the reads of the operator policy's report, nothing else.
    if "report" in roles:
        operator = hub_resources["OperatorPolicy"]["Properties"]["PolicyDocument"]
        reads = {a for st in statements(operator) if str(st.get("Sid", "")).startswith("Report")
                 for a in as_list(st["Action"]) if str(a).startswith(MEMBER_SERVICES)}
        granted = set()
        for policy in roles["report"][1]["Properties"].get("Policies", []):
            for st in statements(policy["PolicyDocument"]):
                granted |= set(as_list(st["Action"]))
        results.append((granted == reads and not any(ESCALATION.match(a) for a in granted),
                        f"member role keyrotor/report: the operator report's reads only ({sorted(granted ^ reads) or len(granted)})"))
    for function in members:
        if function not in roles:
            continue
        logical, res = roles[function]
        props = res["Properties"]
        granted = set()
        for policy in props.get("Policies", []):
            for st in statements(policy["PolicyDocument"]):
                granted |= set(as_list(st["Action"]))
        needed = {a for a in declared_actions(function) if a.startswith(MEMBER_SERVICES)}
        needed -= HUB_SIDE.get(function, set())
        escalating = sorted(a for a in granted if ESCALATION.match(a))
        ok = granted == needed and not escalating and props.get("Path") == "/keyrotor/"
        results.append((ok, f"member role keyrotor/{function}: exactly its member-side actions "
                            f"({len(needed)}; missing {sorted(needed - granted)}, extra {sorted(granted - needed)}, "
                            f"policy writes {escalating})"))
        trust = props["AssumeRolePolicyDocument"]["Statement"]
        allow = [st for st in trust if isinstance(st, dict) and st.get("Effect") == "Allow"]
        hub = {"Fn::Sub": f"arn:${{AWS::Partition}}:iam::${{ToolingAccountId}}:role/keyrotor/hub/${{HubStackName}}-{function}"}
        expected = {
            "Sid": "OnlyKeyrotorsHubRole", "Effect": "Allow",
            "Principal": {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${ToolingAccountId}:root"}},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:PrincipalArn": hub, "aws:PrincipalOrgID": {"Ref": "OrganizationId"}}},
        }
        external = [st for st in trust if isinstance(st, dict) and "Fn::If" in st]
        external_ok = len(external) == 1 and external[0]["Fn::If"][0] == "HasExternalId" and \
            external[0]["Fn::If"][1].get("Effect") == "Deny" and \
            external[0]["Fn::If"][1].get("Condition") == {"StringNotEquals": {"sts:ExternalId": {"Ref": "ExternalId"}}}
        results.append((allow == [expected] and external_ok,
                        f"member role keyrotor/{function}: trusted by its hub role only, in the organization, "
                        f"with the external ID if set"))
    key = resources.get("SecretsKey", {}).get("Properties", {}).get("KeyPolicy")
    hub_key = hub_resources["SecretsKey"]["Properties"]["KeyPolicy"]
    same = json_text(key).replace("CreateKeyMemberRole", "CreateKeyRole") == json_text(hub_key)
    alias = resources.get("SecretsKeyAlias", {}).get("Properties", {}).get("AliasName")
    results.append((same and alias == "alias/keyrotor-secrets",
                    "member secrets key: keyrotor's key policy (its own create-key role), alias alias/keyrotor-secrets"))
    return results


def checks_scope(function: str) -> bool:
    """Whether the function's Deps holds accounts to the organization's scope (CHECKS_SCOPE)."""
    source = (ROOT / "functions" / function / "src/lib.rs").read_text()
    return re.search(r"const CHECKS_SCOPE: bool = true;", source) is not None


def scope_actions() -> set[str]:
    """The Organizations actions the scope check calls (SCOPE_ACTIONS in keyrotor-aws)."""
    source = (ROOT / "functions/keyrotor-aws/src/member.rs").read_text()
    match = re.search(r"pub const SCOPE_ACTIONS: &\[&str\] = &\[(.*?)\];", source, re.S)
    if match is None:
        raise SystemExit("keyrotor-aws: no `pub const SCOPE_ACTIONS` in src/member.rs")
    return set(re.findall(r'"([a-z0-9]+:[A-Za-z]+)"', match.group(1)))


def scope_checks(resources: dict) -> list:
    """M5/M6 of the second review: the functions that check the scope read exactly the
    organization's scope (and through OrgRoleArn when it is set); every hub role that
    assumes member roles is held by the IAM guard of the scope, which only denies."""
    results = []
    role_of = {f"{name}Role": function for function, name in FUNCTIONS.items()}

    def roles(logical: str) -> set[str]:
        listed = resources.get(logical, {}).get("Properties", {}).get("Roles", [])
        return {role_of.get(r.get("Ref"), str(r)) if isinstance(r, dict) else str(r) for r in listed}

    checking = {f for f in FUNCTIONS if checks_scope(f)}
    reads = resources.get("OrganizationScopeReads", {})
    granted = set()
    for st in statements(reads.get("Properties", {}).get("PolicyDocument", {})):
        if st.get("Effect") == "Allow":
            granted |= set(as_list(st.get("Action")))
    results.append((reads.get("Condition") == "ManyAccounts" and roles("OrganizationScopeReads") == checking
                    and granted == scope_actions(),
                    f"with many accounts, {sorted(checking)} (CHECKS_SCOPE) read exactly SCOPE_ACTIONS "
                    f"({sorted(granted ^ scope_actions()) or len(granted)} differ/granted)"))
    reader = resources.get("OrganizationScopeReader", {})
    reader_st = statements(reader.get("Properties", {}).get("PolicyDocument", {}))
    results.append((reader.get("Condition") == "ReadOrganizationThroughRole"
                    and roles("OrganizationScopeReader") == checking
                    and reader_st == [{"Sid": "AssumeOrganizationReader", "Effect": "Allow",
                                       "Action": ["sts:AssumeRole"], "Resource": {"Ref": "OrgRoleArn"}}],
                    "the scope checkers assume only OrgRoleArn, and only if it is set"))
    members = {f for f in FUNCTIONS if works_in_member_accounts(f)}
    guard = resources.get("HubScopeGuard", {})
    guard_st = statements(guard.get("Properties", {}).get("PolicyDocument", {}))
    only_deny = bool(guard_st) and all(st.get("Effect") == "Deny" and as_list(st.get("Action")) == ["sts:AssumeRole"]
                                       for st in guard_st)
    results.append((guard.get("Condition") == "ScopeLimited" and roles("HubScopeGuard") == members and only_deny,
                    f"the scope guard denies sts:AssumeRole outside the scope to every hub role ({sorted(members)})"))
    return results


def json_text(value) -> str:
    import json
    return json.dumps(value, sort_keys=True)


def main() -> int:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "infra/template.yaml"
    template, errors = decode(str(path))
    if errors:
        print("template does not parse:", errors)
        return 1
    resources = template["Resources"]
    results = []

    for function, name in FUNCTIONS.items():
        role = resources[f"{name}Role"]["Properties"]
        granted = set()
        for policy in role["Policies"]:
            for st in statements(policy["PolicyDocument"]):
                granted |= set(as_list(st["Action"]))
        assumes = assume_statements(resources, f"{name}Role")
        if function == "list-accounts":
            condition, reader = assumes.pop("AssumeOrganizationReader", (None, {}))
            ok = condition == "ReadOrganizationThroughRole" and reader == {
                "Sid": "AssumeOrganizationReader", "Effect": "Allow",
                "Action": ["sts:AssumeRole"], "Resource": {"Ref": "OrgRoleArn"}}
            results.append((ok, "list-accounts assumes only OrgRoleArn, and only if it is set"))
        ok, detail = member_role_statement_ok(function, assumes)
        results.append((ok, f"{function}: {detail}"))
        if works_in_member_accounts(function):
            # The name the member roles' trust policies give for this function's hub role.
            named = role.get("RoleName") == {"Fn::If": ["ManyAccounts", {"Fn::Sub": f"${{AWS::StackName}}-{function}"}, {"Ref": "AWS::NoValue"}]} \
                and role.get("Path") == {"Fn::If": ["ManyAccounts", "/keyrotor/hub/", {"Ref": "AWS::NoValue"}]}
            results.append((named, f"{function}: with many accounts its role is role/keyrotor/hub/<stack>-{function}, as member trust names it"))
        granted -= LOGS
        needed = declared_actions(function)
        missing, extra = needed - granted, granted - needed
        ok = not missing and not extra
        detail = f"{len(needed)} actions" if ok else f"missing {sorted(missing)}, extra {sorted(extra)}"
        results.append((ok, f"least privilege, {function}: {detail}"))
        fn = resources[f"{name}Function"]["Properties"]
        uses_role = fn.get("Role") == {"Fn::GetAtt": [f"{name}Role", "Arn"]}
        results.append((uses_role, f"{function} runs with its own role"))
        signed = fn.get("CodeSigningConfigArn") == {"Fn::If": [
            "HasCodeSigning", {"Fn::GetAtt": ["CodeSigning", "CodeSigningConfigArn"]}, {"Ref": "AWS::NoValue"}]}
        results.append((signed, f"{function} runs only signed code when SigningProfileVersionArn is set"))

    wildcard = []
    for logical, res in resources.items():
        for doc in policy_documents(res):
            for st in statements(doc):
                wildcard += [f"{logical}: {a}" for a in as_list(st.get("Action", [])) if "*" in str(a)]
    results.append((not wildcard, f"no wildcard action ({', '.join(wildcard) or 'none found'})"))

    machines = {k: r for k, r in resources.items() if r.get("Type") in STATE_MACHINES}
    results.append((bool(machines), f"state machines: {', '.join(machines) or 'none found'}"))
    for logical, res in machines.items():
        machine = res.get("Properties", {})
        uri = machine.get("DefinitionUri")
        asl_path = (ROOT / "infra" / uri).resolve() if isinstance(uri, str) else None
        if asl_path is None or not asl_path.is_file():
            results.append((False, f"{logical}: ASL {uri} not found"))
            continue
        placeholders = set(re.findall(r"\$\{(\w+)\}", asl_path.read_text()))
        substitutions = set(machine.get("DefinitionSubstitutions", {}))
        results.append((placeholders == substitutions,
                        f"{logical}: ASL placeholders = DefinitionSubstitutions ({sorted(placeholders ^ substitutions) or len(placeholders)})"))
        logging = machine.get("Logging", {})
        results.append((logging.get("IncludeExecutionData") is False, f"{logical}: logs exclude execution data"))
        events = machine.get("Events", {}) or {}
        if any(e.get("Type") in ("Schedule", "ScheduleV2") for e in events.values() if isinstance(e, dict)):
            allow_force = machine.get("DefinitionSubstitutions", {}).get("AllowForce")
            results.append((allow_force != "true", f"{logical}: scheduled, so it does not allow force (AllowForce {allow_force!r})"))

    # Each state machine role may invoke exactly the functions of the machines that use it.
    used_by_role = {}
    for logical, res in machines.items():
        props = res.get("Properties", {})
        role = referenced(props.get("Role"), resources)
        functions = {referenced(v, resources) for v in props.get("DefinitionSubstitutions", {}).values()}
        used_by_role.setdefault(role, set()).update(f for f in functions if f and f.endswith("Function"))
    for role, functions in sorted(used_by_role.items(), key=lambda kv: str(kv[0])):
        invokes = set()
        for policy in resources.get(role, {}).get("Properties", {}).get("Policies", []):
            for st in statements(policy["PolicyDocument"]):
                if "lambda:InvokeFunction" in as_list(st.get("Action", [])):
                    invokes |= {referenced(r, resources) for r in as_list(st.get("Resource", []))}
        results.append((invokes == functions,
                        f"{role}: invokes exactly its machines' functions "
                        f"({sorted(str(f) for f in invokes ^ functions) or len(functions)})"))

    for function, wanted_force in (("StartRotations", "false"), ("RespondToExposure", "true")):
        started = resources[f"{function}Function"]["Properties"].get("Environment", {}).get("Variables", {}).get("KEYROTOR_STATE_MACHINE_ARN")
        target = started.get("Ref") if isinstance(started, dict) else None
        target_force = machines.get(target, {}).get("Properties", {}).get("DefinitionSubstitutions", {}).get("AllowForce")
        may_start = set()
        for policy in resources[f"{function}Role"]["Properties"].get("Policies", []):
            for st in statements(policy["PolicyDocument"]):
                if "states:StartExecution" in as_list(st.get("Action", [])):
                    may_start |= {referenced(r, resources) for r in as_list(st.get("Resource", []))}
        ok = target in machines and target_force == wanted_force and may_start == {target}
        results.append((ok, f"{function}Function starts {target or started!r} (AllowForce {target_force!r}, "
                            f"wanted {wanted_force!r}) and may start only that ({sorted(str(m) for m in may_start)})"))

    # The leak response runs on AWS's own events only: customers cannot put an aws.* source.
    events = resources["RespondToExposureFunction"]["Properties"].get("Events", {}) or {}
    sources = [e.get("Properties", {}).get("Pattern", {}).get("source") for e in events.values()]
    only_aws = bool(events) and all(
        isinstance(e, dict) and e.get("Type") == "EventBridgeRule" for e in events.values()
    ) and all(isinstance(src, list) and src and all(str(x).startswith("aws.") for x in src) for src in sources)
    results.append((only_aws, f"respond-to-exposure runs on AWS's events only (sources {sources})"))

    config = (CORE / "config.rs").read_text()
    wanted = set(re.findall(r'pub const \w+: &str = "(KEYROTOR_\w+)";', config))
    env = set(template["Globals"]["Function"]["Environment"]["Variables"])
    for name in FUNCTIONS.values():
        env |= set(resources[f"{name}Function"]["Properties"].get("Environment", {}).get("Variables", {}))
    results.append((wanted == env, f"every KEYROTOR_* variable is set ({sorted(wanted ^ env) or len(wanted)})"))

    actions = alarm_topics(resources)
    alarms = {alarm for alarm, _, _ in actions}
    for topic in sorted({t for _, t, _ in actions if t}):
        ok, why = topic_usable_by_alarms(topic, resources)
        users = sorted(a for a, t, _ in actions if t == topic)
        results.append((ok, f"alarm topic {topic} (used by {', '.join(sorted(set(users)))}): {why}"))
    for alarm, topic, written in actions:
        if topic is None:
            results.append((False, f"{alarm}: alarm action {written} is not a topic of this template"))
    if not alarms:
        results.append((True, "alarm topics: no alarm notifies a topic"))

    forcing = {k for k, r in machines.items()
               if r.get("Properties", {}).get("DefinitionSubstitutions", {}).get("AllowForce") == "true"}
    scheduled = {k for k, r in machines.items()
                 if any(isinstance(e, dict) and e.get("Type") in ("Schedule", "ScheduleV2")
                        for e in (r.get("Properties", {}).get("Events", {}) or {}).values())}
    for logical, res in resources.items():
        if res.get("Type") != "AWS::IAM::ManagedPolicy":
            continue
        starts, recovers, invokes = set(), set(), False
        for st in statements(res["Properties"]["PolicyDocument"]):
            if st.get("Effect") != "Allow":
                continue
            acts = {str(a) for a in as_list(st.get("Action", []))}
            invokes |= "lambda:InvokeFunction" in acts
            if "states:StartExecution" in acts:
                starts |= {referenced(r, resources) for r in as_list(st.get("Resource", []))}
            if acts & {"states:StopExecution", "states:RedriveExecution"}:
                recovers |= {m for r in as_list(st.get("Resource", []))
                             for m in executions_of(r, machines)}
        mixed = bool(starts & forcing) and bool(starts & scheduled)
        stops_forced = bool(starts & scheduled) and bool(recovers & forcing)
        unknown = None in starts
        results.append((not mixed and not invokes and not unknown and not stops_forced,
                        f"{logical}: starts {sorted(s for s in starts if s) or 'no machine'}"
                        f"{' (a scheduled and a forcing machine)' if mixed else ''}"
                        f"{' (and stops or redrives a forcing machine' + chr(39) + 's executions)' if stops_forced else ''}"
                        f"{' (and invokes functions directly)' if invokes else ''}"
                        f"{' (and a machine not of this template)' if unknown else ''}"))

    default_bus = {"Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default"}
    puts = []
    for logical, res in resources.items():
        for doc in policy_documents(res):
            for st in statements(doc):
                if st.get("Effect") == "Allow" and "events:PutEvents" in as_list(st.get("Action", [])):
                    source = st.get("Condition", {}).get("StringEquals", {}).get("events:source")
                    ok = as_list(st.get("Resource")) == [default_bus] and source == "keyrotor"
                    puts.append(logical)
                    results.append((ok, f"{logical}: events:PutEvents on the default bus, source keyrotor only "
                                        f"(resource {st.get('Resource')!r}, source {source!r})"))
    if not puts:
        results.append((False, "events: no role may put keyrotor's events"))

    results += member_account_checks(resources)
    results += scope_checks(resources)

    for ok, line in results:
        print(("ok    " if ok else "FAIL  ") + line)
    failed = sum(1 for ok, _ in results if not ok)
    print(f"check_infra: {len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
