#!/usr/bin/env python3
"""Deploy infra/template.yaml (or infra/member-account.yaml) on the local emulator, as
`sam deploy` would deploy it on AWS: package, transform, create the stack.

1. **Package**, as `sam package` does: every local `CodeUri` and `DefinitionUri` becomes an
   object in an S3 bucket of the emulator. A function's artifact is its `bootstrap.zip` when
   `make package` built one, else (and always with `--host-build`) its host build
   (`target/debug/<name>`) zipped as `bootstrap`: moto stores the code and never runs it;
   the deploy test runs each package's `bootstrap` itself (tools/lambda_host.py).
2. **Transform** with `aws-sam-translator` (the library behind the SAM transform, pinned in
   tools/requirements.txt), with the stack's parameters.
3. **Create** the stack on moto's CloudFormation and wait for it.

moto 5.2.5's CloudFormation differs from AWS's in ways that would make the stack wrong, not
merely incomplete, so each is done here as CloudFormation itself would do it, in a small
function named for it (never by changing the template):

- `resolve_conditions`: moto leaves `null` for a list item `!If [cond, x, AWS::NoValue]`
  (and then refuses the policy holding it). The template's conditions are evaluated on the
  parameters, every `Fn::If` is replaced by its branch, `AWS::NoValue` drops its element,
  and resources whose condition is false are left out, as CloudFormation does.
- `inline_definitions`: moto ignores `DefinitionS3Location` and `DefinitionSubstitutions`.
  Each state machine's definition is read from its ASL file and given as the
  `DefinitionString` CloudFormation makes of the two: the text with each substituted
  placeholder replaced by its value (as an `Fn::Join`, since moto's `Fn::Sub` turns the ASL's
  `$$` into `$`).
- `string_parameters`: moto passes Number parameters on to a function's environment as
  numbers (which a function's configuration reads as strings, and the SDKs refuse); a
  `!Ref` of a Number parameter is a string in CloudFormation. Number parameters are given
  to moto as String parameters, their bounds already checked here.
- `role_policies`: moto has no `AWS::IAM::RolePolicy`; each becomes the
  `AWS::IAM::Policy` CloudFormation treats alike (an inline policy of the named role).
- `unmodelled_resources`: moto's CloudFormation has no model for some types the template
  uses (UNMODELLED below) and refuses a template that refers to one. They are left out of
  what moto gets (and printed as `SKIPPED <logical> <type>`), and an alarm's `Arn` is
  given as CloudFormation gives it, from its AlarmName.

What moto skips silently (`AWS::CloudWatch::Alarm`, `AWS::SNS::Subscription`,
architectures, tracing and logging settings) is left alone here: the checks of those stay
on the template's text (check_infra.py, the policy tests).

Reading back: `--role-actions` prints, for each function of the stack, the actions its
deployed role's policies allow (`ROLE_ACTIONS {json}`). moto returns a policy document that
CloudFormation gave it as an object in Python's repr, not JSON; it is read with
`ast.literal_eval` (`read_policy`, in policy_documents.py, which moto_deployed.py shares).

Usage: deploy_local.py [--endpoint URL] --stack-name NAME [--template PATH] [--account ID]
       [--parameter KEY=VALUE ...] [--print-resources] [--role-actions]
Without --endpoint it starts a moto server of its own on loopback for the one deployment
(`make deploy-local`). Prints `STACK <stack id>` and, with --print-resources, the stack's
resources as JSON lines. Exits 1 with the stack's failure reasons if it does not reach
CREATE_COMPLETE.
"""

import argparse
import copy
import io
import json
import os
import re
import sys
import time
import zipfile
from pathlib import Path

import boto3
from samtranslator.public.exceptions import InvalidDocumentException
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

from policy_documents import statements

ROOT = Path(__file__).resolve().parent.parent
BUCKET = "keyrotor-local-artifacts"
NO_VALUE = {"Ref": "AWS::NoValue"}


class NoManagedPolicies:
    """The SAM transform's loader of managed policy names: the templates name none."""

    def load(self) -> dict:
        return {}


def client(service: str, endpoint: str, account: str):
    # moto picks the account from the access key ID when it is twelve digits.
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        aws_access_key_id=account,
        aws_secret_access_key="local-not-a-secret",
    )


def artifact(template_dir: Path, code_uri: str, host_build: bool = False) -> bytes:
    """The zip `sam package` would upload for a function's `CodeUri`: the file if it is
    there (`make package`'s), else (or always, with `host_build`) this machine's debug build
    zipped as `bootstrap`, which can run here."""
    path = (template_dir / code_uri).resolve()
    if path.is_file() and not host_build:
        return path.read_bytes()
    binary = ROOT / "target" / "debug" / path.parent.name
    if not binary.is_file():
        raise SystemExit(f"neither {path} nor {binary} exists: build the functions first")
    return host_package(binary)


def host_package(binary: Path) -> bytes:
    """`binary` zipped as `bootstrap`, once per build: a debug build is about 50 MB, and
    deflating the ten of them took 20 s of every deploy (the deploy tests make eleven). The
    zip is kept beside the other local files, named by the binary's size and time, and
    written whole before it is renamed into place, so deploys side by side share it."""
    stat = binary.stat()
    cache = ROOT / "target" / "keyrotor-local" / "packages"
    zipped = cache / f"{binary.name}-{stat.st_size}-{stat.st_mtime_ns}.zip"
    try:
        return zipped.read_bytes()
    except FileNotFoundError:
        pass
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        z.write(binary, "bootstrap")
    body = out.getvalue()
    cache.mkdir(parents=True, exist_ok=True)
    for stale in cache.glob(f"{binary.name}-*.zip"):
        if stale != zipped:
            stale.unlink(missing_ok=True)
    partial = cache / f".{zipped.name}.{os.getpid()}"
    partial.write_bytes(body)
    os.replace(partial, zipped)
    return body


def package(template: dict, template_dir: Path, s3, host_build: bool = False) -> dict:
    """Local CodeUri and DefinitionUri as S3 objects, as `sam package` leaves them."""
    template = copy.deepcopy(template)
    try:
        s3.create_bucket(Bucket=BUCKET)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    for logical, resource in template.get("Resources", {}).items():
        props = resource.get("Properties", {})
        for prop in ("CodeUri", "DefinitionUri"):
            uri = props.get(prop)
            if not isinstance(uri, str) or uri.startswith("s3://"):
                continue
            if prop == "CodeUri":
                body = artifact(template_dir, uri, host_build)
            else:
                body = (template_dir / uri).read_bytes()
            key = f"{logical}/{Path(uri).name}"
            s3.put_object(Bucket=BUCKET, Key=key, Body=body)
            props[prop] = f"s3://{BUCKET}/{key}"
            # Where the definition came from, for inline_definitions.
            if prop == "DefinitionUri":
                resource.setdefault("Metadata", {})["LocalDefinition"] = str((template_dir / uri).resolve())
    return template


def condition_value(expr, conditions: dict, parameters: dict, template: dict) -> bool:
    """A condition's value, as CloudFormation evaluates it."""
    if isinstance(expr, dict) and len(expr) == 1:
        (fn, args), = expr.items()
        if fn == "Condition":
            return evaluate_condition(args, conditions, parameters, template)
        if fn == "Fn::Not":
            return not condition_value(args[0], conditions, parameters, template)
        if fn == "Fn::And":
            return all(condition_value(a, conditions, parameters, template) for a in args)
        if fn == "Fn::Or":
            return any(condition_value(a, conditions, parameters, template) for a in args)
        if fn == "Fn::Equals":
            a, b = (value(v, parameters, template) for v in args)
            return str(a) == str(b)
    raise SystemExit(f"unsupported condition {expr!r}")


def evaluate_condition(name: str, conditions: dict, parameters: dict, template: dict) -> bool:
    if name not in conditions:
        conditions[name] = condition_value(template["Conditions"][name], conditions, parameters, template)
    return conditions[name]


def value(expr, parameters: dict, template: dict):
    """A parameter's value (given, else its default) or a literal, for Fn::Equals."""
    if isinstance(expr, dict) and list(expr) == ["Ref"]:
        name = expr["Ref"]
        if name in parameters:
            return parameters[name]
        default = template.get("Parameters", {}).get(name, {}).get("Default")
        if default is None:
            raise SystemExit(f"parameter {name} has no value")
        return default
    if isinstance(expr, (str, int, float, bool)):
        return expr
    raise SystemExit(f"unsupported value in a condition: {expr!r}")


def resolve_conditions(template: dict, parameters: dict) -> dict:
    """Fn::If replaced by its branch, AWS::NoValue dropped, resources whose condition is
    false left out: what CloudFormation makes of the conditions."""
    conditions: dict = {}
    for name in template.get("Conditions", {}):
        evaluate_condition(name, conditions, parameters, template)

    def walk(node):
        if isinstance(node, dict):
            if list(node) == ["Fn::If"]:
                name, then, otherwise = node["Fn::If"]
                return walk(then if conditions[name] else otherwise)
            out = {}
            for k, v in node.items():
                v = walk(v)
                if v != NO_VALUE:
                    out[k] = v
            return out
        if isinstance(node, list):
            return [w for w in (walk(v) for v in node) if w != NO_VALUE]
        return node

    def kept(section: dict) -> dict:
        # The entries whose condition holds, resolved and without their Condition.
        return {name: walk({k: v for k, v in entry.items() if k != "Condition"})
                for name, entry in section.items()
                if "Condition" not in entry or conditions[entry["Condition"]]}

    out = dict(template)
    out["Resources"] = kept(template["Resources"])
    out["Outputs"] = kept(template.get("Outputs", {}))
    out.pop("Conditions", None)
    out.pop("Rules", None)
    return out


def inline_definitions(template: dict, local: dict) -> dict:
    """Each state machine's definition from its ASL file, substituted as CloudFormation
    substitutes DefinitionSubstitutions: every `${Name}` with a substitution is replaced by
    its value, every other text stays as written (`$$.Execution.Id` included).

    Given to moto as the `Fn::Join` of the text's pieces and the values, which is what the
    substitution amounts to: moto's `Fn::Sub` goes through Python's string.Template, which
    turns the ASL's `$$` (the context object) into `$`, and the machine then fails at run
    time on every `$$.Execution` path."""
    for logical, resource in template["Resources"].items():
        if resource["Type"] != "AWS::StepFunctions::StateMachine":
            continue
        props = resource["Properties"]
        source = local.get(logical)
        if source is None:
            continue
        text = Path(source).read_text()
        substitutions = props.pop("DefinitionSubstitutions", {})
        pieces, at = [], 0
        for m in re.finditer(r"\$\{([^}]+)\}", text):
            if m.group(1) in substitutions:
                pieces += [text[at:m.start()], substitutions[m.group(1)]]
                at = m.end()
        pieces.append(text[at:])
        props.pop("DefinitionS3Location", None)
        props["DefinitionString"] = {"Fn::Join": ["", pieces]} if len(pieces) > 1 else text
    return template


# Types moto's CloudFormation does not create, and what CloudFormation's Fn::GetAtt gives
# for them (None: nothing may refer to one).
UNMODELLED = {
    "AWS::CloudWatch::Alarm": "alarm",
    "AWS::SNS::Subscription": None,
    "AWS::Lambda::CodeSigningConfig": None,
}


def pseudo(text: str, stack_name: str, account: str) -> str:
    """A !Sub text that names only pseudo parameters, substituted."""
    region = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
    for name, v in (("AWS::StackName", stack_name), ("AWS::Region", region),
                    ("AWS::AccountId", account), ("AWS::Partition", "aws")):
        text = text.replace("${" + name + "}", v)
    if "${" in text:
        raise SystemExit(f"cannot resolve {text!r} locally")
    return text


def unmodelled_resources(template: dict, stack_name: str, account: str) -> tuple[dict, list]:
    """The template without the resources moto cannot create, references to an alarm's Arn
    resolved as CloudFormation resolves them; and what was left out."""
    region = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
    skipped, arns = [], {}
    for logical, r in list(template["Resources"].items()):
        if r["Type"] not in UNMODELLED:
            continue
        skipped.append((logical, r["Type"]))
        del template["Resources"][logical]
        if UNMODELLED[r["Type"]] == "alarm":
            name = r["Properties"]["AlarmName"]
            name = pseudo(name["Fn::Sub"], stack_name, account) if isinstance(name, dict) else name
            arns[logical] = f"arn:aws:cloudwatch:{region}:{account}:alarm:{name}"

    def walk(node):
        if isinstance(node, dict):
            if list(node) == ["Fn::GetAtt"]:
                target = node["Fn::GetAtt"]
                logical, attribute = target if isinstance(target, list) else target.split(".", 1)
                if logical in arns and attribute == "Arn":
                    return arns[logical]
                if any(logical == s for s, _ in skipped):
                    raise SystemExit(f"{logical}.{attribute}: not available locally")
            if list(node) == ["Fn::Sub"] and isinstance(node["Fn::Sub"], str):
                text = node["Fn::Sub"]
                for logical, arn in arns.items():
                    text = text.replace("${" + logical + ".Arn}", arn)
                return {"Fn::Sub": text}
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    template["Resources"] = walk(template["Resources"])
    template["Outputs"] = walk(template.get("Outputs", {}))
    return template, skipped


def role_policies(template: dict) -> dict:
    """Each AWS::IAM::RolePolicy as the AWS::IAM::Policy of its one role."""
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::IAM::RolePolicy":
            continue
        props = resource["Properties"]
        resource["Type"] = "AWS::IAM::Policy"
        resource["Properties"] = {"PolicyName": props["PolicyName"],
                                  "PolicyDocument": props["PolicyDocument"],
                                  "Roles": [props["RoleName"]]}
    return template


def role_actions(endpoint: str, account: str, stack_name: str) -> dict:
    """Each function of the stack (named without the stack's prefix): the actions its role's
    policies, inline and attached, allow."""
    lam, iam = client("lambda", endpoint, account), client("iam", endpoint, account)
    out = {}
    for page in lam.get_paginator("list_functions").paginate():
        for function in page["Functions"]:
            name = function["FunctionName"]
            if not name.startswith(stack_name + "-"):
                continue
            role = function["Role"].rsplit("/", 1)[-1]
            documents = [iam.get_role_policy(RoleName=role, PolicyName=p)["PolicyDocument"]
                         for p in iam.list_role_policies(RoleName=role)["PolicyNames"]]
            for attached in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
                policy = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]
                documents.append(iam.get_policy_version(
                    PolicyArn=attached["PolicyArn"], VersionId=policy["DefaultVersionId"]
                )["PolicyVersion"]["Document"])
            actions = set()
            for document in documents:
                for st in statements(document):
                    if st.get("Effect") == "Allow":
                        action = st.get("Action", [])
                        actions |= set(action if isinstance(action, list) else [action])
            out[name[len(stack_name) + 1:]] = sorted(actions)
    return out


def string_parameters(template: dict, parameters: dict) -> list:
    """Number parameters declared as String (their bounds checked first), and every value
    given as the string CloudFormation gives a `!Ref` of it."""
    for name, declared in template.get("Parameters", {}).items():
        if declared.get("Type") != "Number":
            continue
        given = parameters.get(name, declared.get("Default"))
        number = float(given)
        low, high = declared.get("MinValue"), declared.get("MaxValue")
        allowed = declared.get("AllowedValues")
        if (low is not None and number < float(low)) or (high is not None and number > float(high)) \
                or (allowed is not None and number not in [float(a) for a in allowed]):
            raise SystemExit(f"parameter {name}: {given} is out of bounds")
        template["Parameters"][name] = {"Type": "String", "Default": str(declared.get("Default", given))}
    return [{"ParameterKey": k, "ParameterValue": str(v)} for k, v in parameters.items()]


def deploy(template_path: Path, endpoint: str, account: str, stack_name: str, parameters: dict,
           host_build: bool = False) -> dict:
    template = yaml_parse(template_path.read_text())
    s3 = client("s3", endpoint, account)
    packaged = package(template, template_path.parent, s3, host_build)
    local = {k: r.get("Metadata", {}).pop("LocalDefinition")
             for k, r in packaged["Resources"].items()
             if "LocalDefinition" in r.get("Metadata", {})}
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    try:
        transformed = transform(packaged, parameters, NoManagedPolicies()) \
            if "Transform" in packaged else packaged
    except InvalidDocumentException as e:
        raise SystemExit("the SAM transform refused the template: " + "; ".join(str(c) for c in e.causes))
    # The SAM transform names the state machines it makes after the logical ID.
    resolved = resolve_conditions(transformed, parameters)
    resolved = inline_definitions(resolved, local)
    resolved = role_policies(resolved)
    resolved, skipped = unmodelled_resources(resolved, stack_name, account)
    for logical, kind in skipped:
        print(f"SKIPPED {logical} {kind}")
    resolved.pop("Transform", None)
    cfn = client("cloudformation", endpoint, account)
    given = {k: v for k, v in parameters.items() if k in resolved.get("Parameters", {})}
    given = string_parameters(resolved, given)
    stack = cfn.create_stack(
        StackName=stack_name,
        TemplateBody=json.dumps(resolved),
        Parameters=given,
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    for _ in range(600):
        described = cfn.describe_stacks(StackName=stack["StackId"])["Stacks"][0]
        status = described["StackStatus"]
        if not status.endswith("_IN_PROGRESS"):
            break
        time.sleep(0.2)
    if status != "CREATE_COMPLETE":
        events = cfn.describe_stack_events(StackName=stack["StackId"])["StackEvents"]
        reasons = [f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason')}"
                   for e in events if "FAILED" in e.get("ResourceStatus", "")]
        raise SystemExit(f"stack {stack_name}: {status}: " + "; ".join(reasons))
    return described


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint")
    parser.add_argument("--stack-name", required=True)
    parser.add_argument("--template", default=str(ROOT / "infra/template.yaml"))
    parser.add_argument("--account", default="123456789012")
    parser.add_argument("--parameter", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--print-resources", action="store_true")
    parser.add_argument("--role-actions", action="store_true")
    parser.add_argument("--host-build", action="store_true",
                        help="package this machine's debug builds even where make package's zips exist")
    args = parser.parse_args()
    parameters = dict(p.split("=", 1) for p in args.parameter)
    if args.endpoint is None:
        import socket
        from moto.server import ThreadedMotoServer
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        import logging
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        args.endpoint = f"http://127.0.0.1:{port}"
    stack = deploy(Path(args.template), args.endpoint, args.account, args.stack_name, parameters, args.host_build)
    print(f"STACK {stack['StackId']}")
    if args.role_actions:
        print("ROLE_ACTIONS " + json.dumps(role_actions(args.endpoint, args.account, args.stack_name)))
    if args.print_resources:
        cfn = client("cloudformation", args.endpoint, args.account)
        pages = cfn.get_paginator("list_stack_resources").paginate(StackName=stack["StackId"])
        for page in pages:
            for r in page["StackResourceSummaries"]:
                print(json.dumps({"logical": r["LogicalResourceId"], "type": r["ResourceType"],
                                  "physical": r.get("PhysicalResourceId"), "status": r["ResourceStatus"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
