#!/usr/bin/env python3
"""Secrets check of the functions' environment (DESIGN section 13).

Usage: .venv/bin/python infra/check_secrets.py [TEMPLATE]   (default: infra/template.yaml)

No function's environment may hold a secret's value: anyone who can read a function's
configuration would read it. A secret reaches a function only as the ARN of a Secrets
Manager secret in `{NAME}_ARN`, read by the function at start. For every function
(and Globals), each environment variable is checked:

  - a secret's own name (SUPPRESSION_SECRET, WHATSAPP_APP_SECRET, WHATSAPP_VERIFY_TOKEN,
    or any name with SECRET, TOKEN or PASSWORD in it) not ending in `_ARN` fails;
  - a dynamic reference (`{{resolve:...}}`) or a Ref to an `AWS::SSM::Parameter::Value`
    parameter fails anywhere (the value would be resolved into the environment);
  - a `{NAME}_ARN` must be a Ref to a parameter whose AllowedPattern admits only Secrets
    Manager ARNs, or to an AWS::SecretsManager::Secret, and the function's role must
    allow secretsmanager:GetSecretValue on exactly the secrets its variables name.

A template with no function fails. The last line is "N passed, M failed".
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

try:
    from cfnlint.decode import cfn_yaml
except ImportError:  # pragma: no cover
    sys.exit("check_secrets.py needs cfn-lint: run it with .venv/bin/python")

SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSWORD")
FUNCTION_TYPES = ("AWS::Serverless::Function", "AWS::Lambda::Function")


def refs(value) -> list[str]:
    """Every name a Ref inside `value` points at (also inside !Sub's ${...})."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                found.append(inner)
            elif key == "Fn::Sub":
                text = inner[0] if isinstance(inner, list) else inner
                if isinstance(text, str):
                    found += re.findall(r"\$\{([A-Za-z0-9]+)\}", text)
                if isinstance(inner, list) and len(inner) > 1:
                    found += refs(inner[1])
            else:
                found += refs(inner)
    elif isinstance(value, list):
        for inner in value:
            found += refs(inner)
    return found


def statements(policy_document: dict) -> list[dict]:
    """A policy's statements, with both branches of each conditional one (Fn::If)."""
    found = []
    for statement in policy_document.get("Statement") or []:
        if isinstance(statement, dict) and "Fn::If" in statement:
            found += [s for s in statement["Fn::If"][1:] if isinstance(s, dict) and "Effect" in s]
        elif isinstance(statement, dict):
            found.append(statement)
    return found


def granted_secrets(role: dict) -> set[str]:
    """The Refs a role's inline policies allow secretsmanager:GetSecretValue on."""
    granted: set[str] = set()
    for policy in (role.get("Properties") or {}).get("Policies") or []:
        for stmt in statements(policy.get("PolicyDocument") or {}):
            actions = stmt.get("Action") or []
            actions = [actions] if isinstance(actions, str) else actions
            if stmt.get("Effect") == "Allow" and "secretsmanager:GetSecretValue" in actions:
                granted.update(refs(stmt.get("Resource")))
    return granted


def role_name(role) -> str | None:
    """The role resource a function's `Role` names (!GetAtt Role.Arn, or !Ref Role)."""
    if isinstance(role, dict):
        attribute = role.get("Fn::GetAtt")
        if isinstance(attribute, list) and attribute:
            return attribute[0]
        if isinstance(attribute, str):
            return attribute.split(".")[0]
        if isinstance(role.get("Ref"), str):
            return role["Ref"]
    return None


def main(argv: list[str]) -> int:
    path = argv[1] if len(argv) > 1 else str(Path(__file__).with_name("template.yaml"))
    template = json.loads(json.dumps(cfn_yaml.load(path)))
    parameters = template.get("Parameters") or {}
    resources = template.get("Resources") or {}
    passed = failed = 0

    def verdict(ok: bool, message: str) -> None:
        nonlocal passed, failed
        print(("ok   " if ok else "FAIL ") + message)
        if ok:
            passed += 1
        else:
            failed += 1

    def is_secret_arn(name: str) -> bool:
        if name in parameters:
            pattern = parameters[name].get("AllowedPattern") or ""
            return parameters[name].get("Type") == "String" and ":secretsmanager:" in pattern
        return (resources.get(name) or {}).get("Type") == "AWS::SecretsManager::Secret"

    environments = []
    globals_env = ((template.get("Globals") or {}).get("Function") or {}).get("Environment")
    if globals_env:
        environments.append(("Globals", globals_env, None))
    for name, resource in resources.items():
        if resource.get("Type") in FUNCTION_TYPES:
            properties = resource.get("Properties") or {}
            environments.append((name, properties.get("Environment") or {}, properties.get("Role")))
    functions = [e for e in environments if e[0] != "Globals"]
    verdict(bool(functions), f"{len(functions)} function(s) in the template")

    for function, environment, role in environments:
        variables = environment.get("Variables") or {}
        named: set[str] = set()
        for variable, value in variables.items():
            where = f"{function} {variable}"
            text = json.dumps(value)
            if "{{resolve:" in text:
                verdict(False, f"{where} resolves a dynamic reference into the environment")
                continue
            ssm = [r for r in refs(value)
                   if str((parameters.get(r) or {}).get("Type", "")).startswith("AWS::SSM::Parameter::Value")]
            if ssm:
                verdict(False, f"{where} holds the value of SSM parameter {ssm[0]}")
                continue
            if variable.endswith("_ARN") and SECRET_NAME.search(variable):
                targets = refs(value)
                ok = bool(targets) and all(is_secret_arn(t) for t in targets)
                verdict(ok, f"{where} names a Secrets Manager secret ({', '.join(targets) or 'no Ref'})")
                named.update(targets)
                continue
            if SECRET_NAME.search(variable):
                verdict(False, f"{where} holds a secret's value (give its ARN in {variable}_ARN)")
                continue
            verdict(True, f"{where} holds no secret")
        if role is None:
            continue
        granted = granted_secrets(resources.get(role_name(role) or "") or {})
        verdict(granted == named,
                f"{function}'s role reads exactly the secrets it names "
                f"(named {sorted(named)}, granted {sorted(granted)})")

    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
