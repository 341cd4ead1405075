#!/usr/bin/env python3
"""Cross-checks of infra/template.yaml against the code (run by `make test`).

1. Least privilege: for each function, the AWS operations its code calls (read from the
   Rust sources: the adapter methods a handler uses, and the SDK operations inside them)
   equal the actions its role grants. None missing, none extra.
2. No wildcard in any Action of any role or key policy.
3. The ASL's ${placeholders} equal the state machine's DefinitionSubstitutions.
4. Every KEYROTOR_* variable the configuration reads is set for the functions.

Prints one line per check and "check_infra: N passed, N failed"; exits 1 on any failure.
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
    "create-key": "CreateKey",
    "deactivate-key": "DeactivateKey",
    "notify": "Notify",
    "delete-key": "DeleteKey",
}
# Adapter field of Env -> (adapter source, IAM service prefix).
ADAPTERS = {
    "iam": ("aws/iam.rs", "iam"),
    "secrets": ("aws/secrets.rs", "secretsmanager"),
    "mailer": ("aws/ses.rs", "ses"),
    "executions": ("aws/sfn.rs", "states"),
}
# Permissions an operation needs beyond its own name.
IMPLIED = {
    # keyrotor creates secrets with tags, which needs TagResource as well.
    "secretsmanager:CreateSecret": {"secretsmanager:TagResource"},
}
# The role's own log writing, granted to every function.
LOGS = {"logs:CreateLogStream", "logs:PutLogEvents"}


def pascal(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.split("_"))


def methods(source: str) -> dict[str, str]:
    """Method name -> body text, for every `pub async fn` in an adapter file."""
    out = {}
    starts = [(m.start(), m.group(1)) for m in re.finditer(r"pub async fn (\w+)\s*\(", source)]
    for i, (start, name) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else len(source)
        out[name] = source[start:end]
    return out


def adapter_operations() -> dict[tuple[str, str], set[str]]:
    ops = {}
    for field, (path, prefix) in ADAPTERS.items():
        for name, body in methods((CORE / path).read_text()).items():
            calls = {f"{prefix}:{pascal(op)}" for op in re.findall(r"\.client\s*\.\s*(\w+)\s*\(", body)}
            for call in list(calls):
                calls |= IMPLIED.get(call, set())
            ops[(field, name)] = calls
    return ops


def used_adapter_methods(source: str) -> set[tuple[str, str]]:
    return set(re.findall(r"env\s*\.\s*(iam|secrets|mailer|executions)\s*\.\s*(\w+)\s*\(", source))


def code_actions(function: str, ops: dict, load_user_methods: set) -> set[str]:
    # Each file up to its test module: tests call nothing in production.
    files = sorted((ROOT / "functions" / function / "src").glob("*.rs"))
    source = "".join(p.read_text().split("#[cfg(test)]")[0] for p in files)
    used = used_adapter_methods(source)
    if re.search(r"\bload_user\s*\(", source):
        used |= load_user_methods
    actions = set()
    for key in used:
        if key not in ops:
            raise SystemExit(f"{function}: env.{key[0]}.{key[1]} is not an adapter method")
        actions |= ops[key]
    return actions


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


def main() -> int:
    template, errors = decode(str(ROOT / "infra/template.yaml"))
    if errors:
        print("template does not parse:", errors)
        return 1
    resources = template["Resources"]
    ops = adapter_operations()
    state_source = (CORE / "state.rs").read_text()
    load_user_methods = used_adapter_methods(methods_fn(state_source, "load_user"))
    results = []

    for function, name in FUNCTIONS.items():
        role = resources[f"{name}Role"]["Properties"]
        granted = set()
        for policy in role["Policies"]:
            for st in statements(policy["PolicyDocument"]):
                granted |= set(as_list(st["Action"]))
        granted -= LOGS
        needed = code_actions(function, ops, load_user_methods)
        missing, extra = needed - granted, granted - needed
        ok = not missing and not extra
        detail = f"{len(needed)} actions" if ok else f"missing {sorted(missing)}, extra {sorted(extra)}"
        results.append((ok, f"least privilege, {function}: {detail}"))
        fn = resources[f"{name}Function"]["Properties"]
        uses_role = fn.get("Role") == {"Fn::GetAtt": [f"{name}Role", "Arn"]}
        results.append((uses_role, f"{function} runs with its own role"))

    wildcard = []
    for logical, res in resources.items():
        props = res.get("Properties", {})
        docs = [p["PolicyDocument"] for p in props.get("Policies", [])]
        docs += [props[k] for k in ("KeyPolicy", "AssumeRolePolicyDocument") if k in props]
        for doc in docs:
            for st in statements(doc):
                wildcard += [f"{logical}: {a}" for a in as_list(st.get("Action", [])) if "*" in str(a)]
    results.append((not wildcard, f"no wildcard action ({', '.join(wildcard) or 'none found'})"))

    asl = (ROOT / "statemachine/key-rotation.asl.json").read_text()
    placeholders = set(re.findall(r"\$\{(\w+)\}", asl))
    machine = resources["KeyRotationStateMachine"]["Properties"]
    substitutions = set(machine["DefinitionSubstitutions"])
    results.append((placeholders == substitutions,
                    f"ASL placeholders = DefinitionSubstitutions ({sorted(placeholders ^ substitutions) or len(placeholders)})"))
    logging = machine.get("Logging", {})
    results.append((logging.get("IncludeExecutionData") is False, "state machine logs exclude execution data"))

    config = (CORE / "config.rs").read_text()
    wanted = set(re.findall(r'pub const \w+: &str = "(KEYROTOR_\w+)";', config))
    env = set(template["Globals"]["Function"]["Environment"]["Variables"])
    results.append((wanted == env, f"every KEYROTOR_* variable is set ({sorted(wanted ^ env) or len(wanted)})"))

    for ok, line in results:
        print(("ok    " if ok else "FAIL  ") + line)
    failed = sum(1 for ok, _ in results if not ok)
    print(f"check_infra: {len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


def methods_fn(source: str, name: str) -> str:
    match = re.search(rf"pub async fn {name}\s*\(", source)
    if not match:
        raise SystemExit(f"no function {name}")
    rest = source[match.start():]
    nxt = re.search(r"\n(pub )?(async )?fn ", rest[10:])
    return rest[: nxt.start() + 10] if nxt else rest


if __name__ == "__main__":
    sys.exit(main())
