"""Policy documents as moto keeps and returns them (moto 5.2.5): a dict, JSON, URL-encoded
JSON, or Python's repr of a dict (a policy CloudFormation attached). Shared by
deploy_local.py (reading a deployed role back) and moto_deployed.py (enforcing it)."""

import ast
import json
import urllib.parse


def read_policy(document) -> dict:
    """The document as a dict, whichever of moto's forms it is in."""
    if isinstance(document, dict):
        return document
    text = urllib.parse.unquote(document)
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return ast.literal_eval(text)


def statements(document) -> list:
    """The document's statements, as a list even where it has one."""
    listed = read_policy(document).get("Statement", [])
    return listed if isinstance(listed, list) else [listed]
