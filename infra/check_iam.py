#!/usr/bin/env python3
"""Least-privilege check of the IAM policies in a CloudFormation / SAM template.

Usage: .venv/bin/python infra/check_iam.py [TEMPLATE]   (default: infra/template.yaml)

Walks every policy statement of
  - AWS::IAM::Role (Policies), AWS::IAM::Policy, AWS::IAM::ManagedPolicy,
    AWS::IAM::User / AWS::IAM::Group (Policies),
  - AWS::Serverless::Function Policies (and Globals.Function.Policies),
  - and, for a template with the SAM transform, the IAM resources the SAM
    translator generates (e.g. the implicit role of a function without Role),
and fails (exit 1), naming the resource and statement, on
  - an Action (or NotAction) containing "*", or any Allow with NotAction /
    NotResource (an implicit wildcard);
  - a Resource that is "*", or an ARN with a wildcard in its partition,
    service, region or account, or in its resource type or resource name:
    "arn:aws:s3:::*", "arn:aws:dynamodb:r:a:table/*", "arn:aws:logs:r:a:*",
    "arn:aws:sqs:r:a:*". A wildcard *below* a named resource is scoped and
    allowed: "arn:aws:s3:::bucket/imports/*", or the log streams of one named
    log group, "arn:aws:logs:r:a:log-group:/aws/lambda/fn:*" (Lambda cannot
    write logs without it, as stream names are chosen at run time);
  - a managed policy attached by ARN or by name (e.g. AWSLambdaBasicExecutionRole,
    whose logs statements use Resource "*"), or a SAM policy template
    (e.g. S3ReadPolicy): their statements are not in the template, so they
    cannot be verified here.
Resource-based policies (bucket, queue, topic policies) are walked too; there
only Allow statements are checked (a Deny takes access away, so a wide Deny
such as "deny s3:* without TLS" is fine), and an Allow to Principal "*" fails.

Intrinsic functions are followed: both branches of Fn::If are checked,
AWS::NoValue is skipped, ${...} placeholders of Fn::Sub and Ref / Fn::GetAtt
stand for one named resource.

SQS grants must match how each function uses its queues, no more and no less.
For every function whose Role is a role of the template (AWS::Serverless::Function
or AWS::Lambda::Function), the queues it uses are read from the template:
  - it sends to a queue whose URL, ARN or name is in its environment, or that is
    its asynchronous invocations' destination (EventInvokeConfig, SAM or
    AWS::Lambda::EventInvokeConfig) or dead-letter queue: sqs:SendMessage is
    required there, and nothing else is allowed for sending;
  - it consumes a queue that an AWS::Lambda::EventSourceMapping (or a SAM SQS
    event) feeds it from: sqs:ReceiveMessage, sqs:DeleteMessage and
    sqs:GetQueueAttributes are required (what Lambda's poller needs, as
    AWSLambdaSQSQueueExecutionRole grants), and nothing else is allowed.
The check fails, naming the role and the queue, when a required action is missing,
when an SQS action is granted on a queue beyond that (e.g. ReceiveMessage on a
dead-letter queue only ever sent to), or when an SQS statement names no queue of
the template (a wildcard, another stack's queue). Conditions are not evaluated:
both branches of Fn::If count, like above.

It fails too when it finds no identity-policy statement at all, so a template
cannot pass vacuously. The last line is "N passed, M failed".
"""

from __future__ import annotations

import copy
import json
import os
import re
import sys
from pathlib import Path

try:
    from cfnlint.decode import cfn_yaml
except ImportError:  # pragma: no cover
    sys.exit("check_iam.py needs cfn-lint: run it with .venv/bin/python")

SAM_TRANSFORM = "AWS::Serverless-2016-10-31"
IDENTITY_TYPES = {
    "AWS::IAM::Role",
    "AWS::IAM::Policy",
    "AWS::IAM::ManagedPolicy",
    "AWS::IAM::User",
    "AWS::IAM::Group",
}
RESOURCE_POLICY_TYPES = {
    "AWS::S3::BucketPolicy": "PolicyDocument",
    "AWS::SQS::QueuePolicy": "PolicyDocument",
    "AWS::SNS::TopicPolicy": "PolicyDocument",
}
NO_VALUE = object()


# --------------------------------------------------------------- intrinsics


def is_no_value(v) -> bool:
    return isinstance(v, dict) and v == {"Ref": "AWS::NoValue"}


def variants(v):
    """Every value v can take, expanding Fn::If into both branches."""
    if isinstance(v, dict) and len(v) == 1 and "Fn::If" in v:
        args = v["Fn::If"]
        if isinstance(args, list) and len(args) == 3:
            out = []
            for branch in args[1:]:
                out.extend(variants(branch))
            return out
    if is_no_value(v):
        return [NO_VALUE]
    return [v]


def as_list(v):
    """A policy element (string or list, possibly behind Fn::If) as a flat list."""
    out = []
    for var in variants(v):
        if var is NO_VALUE:
            continue
        if isinstance(var, list):
            for item in var:
                for iv in variants(item):
                    if iv is not NO_VALUE:
                        out.append(iv)
        else:
            out.append(var)
    return out


def render(v) -> str | None:
    """A string view of a (possibly intrinsic) value: placeholders stand for one
    concrete name. None when the value cannot be rendered."""
    if isinstance(v, str):
        return re.sub(r"\$\{[^}]*\}", "NAME", v)
    if isinstance(v, dict) and len(v) == 1:
        (fn, args), = v.items()
        if fn == "Fn::Sub":
            tmpl = args[0] if isinstance(args, list) else args
            return render(tmpl) if isinstance(tmpl, str) else None
        if fn in ("Ref", "Fn::GetAtt", "Fn::ImportValue", "Fn::Select", "Fn::FindInMap"):
            return "NAME"
        if fn == "Fn::Join" and isinstance(args, list) and len(args) == 2:
            sep, parts = args
            if isinstance(parts, list):
                rendered = [render(p) for p in parts]
                if all(r is not None for r in rendered):
                    return str(sep).join(rendered)
    return None


# ------------------------------------------------------------------- checks


def action_problem(action) -> str | None:
    s = render(action)
    if s is None:
        return f"action {json.dumps(action)} cannot be checked"
    if "*" in s:
        return f"action {s!r} contains a wildcard"
    return None


def resource_problem(resource) -> str | None:
    s = render(resource)
    if s is None:
        return f"resource {json.dumps(resource)} cannot be checked"
    if s.strip() == "*":
        return "resource is '*'"
    if not s.startswith("arn:"):
        if "*" in s:
            return f"resource {s!r} contains a wildcard"
        return None
    parts = s.split(":", 5)
    if len(parts) < 6:
        return f"resource {s!r} is not a complete ARN"
    _, partition, service, region, account, rest = parts
    for label, field in (("partition", partition), ("service", service),
                         ("region", region), ("account", account)):
        if "*" in field:
            return f"resource {s!r} has a wildcard {label}"
    if rest in ("", "*"):
        return f"resource {s!r} is a bare {service or 'service'} wildcard"
    if service == "s3":
        # arn:aws:s3:::bucket/key: the bucket name must be concrete.
        if "*" in rest.split("/", 1)[0]:
            return f"resource {s!r} has a wildcard bucket name"
        return None
    # Log group names hold slashes; only ':' separates their ARN segments.
    segments = rest.split(":") if service == "logs" else re.split(r"[:/]", rest)
    # Either "name" (sqs, sns) or "type/name/..." / "type:name:...".
    head = segments[:2] if len(segments) > 1 else segments[:1]
    if any("*" in seg for seg in head):
        return f"resource {s!r} has a wildcard resource type or name"
    if len(segments) > 1 and segments[1] == "":
        return f"resource {s!r} has an empty resource name"
    return None


class Checker:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0
        self.identity_statements = 0
        self.skipped = 0

    def fail(self, where: str, message: str) -> None:
        self.failed += 1
        print(f"FAIL {where}: {message}")

    def statement(self, where: str, stmt, identity: bool) -> None:
        if not isinstance(stmt, dict):
            self.fail(where, f"statement is not an object: {json.dumps(stmt)}")
            return
        effect = stmt.get("Effect")
        if not identity and effect == "Deny":
            self.skipped += 1
            print(f"skip {where}: Deny in a resource policy only takes access away")
            return
        if identity:
            self.identity_statements += 1
        problems = []
        if effect == "Allow":
            for key in ("NotAction", "NotResource"):
                if key in stmt:
                    problems.append(f"Allow with {key} grants everything not listed")
            if not identity:
                for principal in as_list(stmt.get("Principal", [])):
                    if principal == "*" or (
                        isinstance(principal, dict)
                        and any(p == "*" for p in as_list(principal.get("AWS", [])))
                    ):
                        problems.append("Allow to Principal '*'")
        actions = as_list(stmt.get("Action", [])) + as_list(stmt.get("NotAction", []))
        if not actions:
            problems.append("no Action")
        for a in actions:
            p = action_problem(a)
            if p:
                problems.append(p)
        if "Resource" in stmt:
            resources = as_list(stmt["Resource"])
            if not resources and identity:
                problems.append("no Resource")
            for r in resources:
                p = resource_problem(r)
                if p:
                    problems.append(p)
        elif identity and "NotResource" not in stmt:
            problems.append("no Resource")
        if problems:
            for p in problems:
                self.fail(where, p)
        else:
            self.passed += 1
            print(f"ok   {where}")

    def document(self, where: str, doc, identity: bool) -> None:
        for dv in variants(doc):
            if dv is NO_VALUE:
                continue
            if not isinstance(dv, dict):
                self.fail(where, "policy document is not an object")
                continue
            statements = as_list(dv.get("Statement", []))
            for i, stmt in enumerate(statements):
                sid = stmt.get("Sid") if isinstance(stmt, dict) else None
                label = f"{where} statement {i}" + (f" ({sid})" if isinstance(sid, str) else "")
                self.statement(label, stmt, identity)

    def managed_policy_arns(self, where: str, arns, own_policies: set[str]) -> None:
        for arn in as_list(arns):
            if isinstance(arn, dict) and set(arn) == {"Ref"} and arn["Ref"] in own_policies:
                continue  # a ManagedPolicy of this template: checked on its own
            self.fail(where, f"managed policy {render(arn) or json.dumps(arn)} "
                             "is not in the template and cannot be verified")


def check_resources(checker: Checker, resources: dict, prefix: str = "",
                    only: set[str] | None = None) -> None:
    own_policies = {n for n, r in resources.items()
                    if isinstance(r, dict) and r.get("Type") == "AWS::IAM::ManagedPolicy"}
    for name, res in resources.items():
        if only is not None and name not in only:
            continue
        if not isinstance(res, dict):
            continue
        rtype = res.get("Type")
        props = res.get("Properties") or {}
        where = f"{prefix}{name} ({rtype})"
        if rtype in IDENTITY_TYPES:
            if rtype in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
                checker.document(where, props.get("PolicyDocument"), identity=True)
            for pol in as_list(props.get("Policies", [])):
                pname = pol.get("PolicyName") if isinstance(pol, dict) else None
                label = f"{where} policy {render(pname) or '?'}"
                if not isinstance(pol, dict):
                    checker.fail(label, "policy is not an object")
                    continue
                checker.document(label, pol.get("PolicyDocument"), identity=True)
            checker.managed_policy_arns(where, props.get("ManagedPolicyArns", []), own_policies)
        elif rtype == "AWS::Serverless::Function":
            check_sam_policies(checker, where, props.get("Policies"))
        elif rtype in RESOURCE_POLICY_TYPES:
            checker.document(where, props.get(RESOURCE_POLICY_TYPES[rtype]), identity=False)


def check_sam_policies(checker: Checker, where: str, policies) -> None:
    """SAM Policies: a managed policy name/ARN, a policy template, or an inline
    document, or a list of these."""
    if policies is None:
        return
    for pol in as_list(policies):
        if isinstance(pol, str) or (isinstance(pol, dict) and set(pol) <= {"Ref", "Fn::Sub", "Fn::GetAtt"}):
            checker.fail(where, f"managed policy {render(pol)} cannot be verified")
        elif isinstance(pol, dict) and "Statement" in pol:
            checker.document(f"{where} inline policy", pol, identity=True)
        elif isinstance(pol, dict):
            checker.fail(where, f"SAM policy template {', '.join(pol)} cannot be verified "
                                "(templates may expand to wildcards)")
        else:
            checker.fail(where, f"unrecognised policy {json.dumps(pol)}")


# ------------------------------------------------------------ SQS wiring

FUNCTION_TYPES = ("AWS::Serverless::Function", "AWS::Lambda::Function")
SEND_REQUIRED = {"sqs:sendmessage"}
SEND_ALLOWED = SEND_REQUIRED
CONSUME_REQUIRED = {"sqs:receivemessage", "sqs:deletemessage", "sqs:getqueueattributes"}
CONSUME_ALLOWED = CONSUME_REQUIRED
# IAM action names are case-insensitive; these are how they are written.
SQS_SPELLING = {a.lower(): a for a in (
    "sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage",
    "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility")}


def logical_refs(v, names: set[str]) -> set[str]:
    """The resources among `names` that a (possibly intrinsic) value refers to:
    Ref, Fn::GetAtt, and ${Name} / ${Name.Attr} placeholders of Fn::Sub."""
    found: set[str] = set()
    if isinstance(v, list):
        for item in v:
            found |= logical_refs(item, names)
    elif isinstance(v, dict):
        if set(v) == {"Ref"} and v["Ref"] in names:
            found.add(v["Ref"])
        elif set(v) == {"Fn::GetAtt"}:
            target = v["Fn::GetAtt"]
            head = target[0] if isinstance(target, list) and target else (
                target.split(".", 1)[0] if isinstance(target, str) else None)
            if head in names:
                found.add(head)
        elif set(v) == {"Fn::Sub"}:
            args = v["Fn::Sub"]
            tmpl, bound = (args[0], args[1] if len(args) > 1 else {}) if isinstance(args, list) else (args, {})
            if isinstance(tmpl, str):
                for ph in re.findall(r"\$\{([^}!]*)\}", tmpl):
                    head = ph.split(".", 1)[0]
                    if head in names and head not in (bound or {}):
                        found.add(head)
            found |= logical_refs(bound, names)
        else:
            for item in v.values():
                found |= logical_refs(item, names)
    return found


def spell(actions) -> str:
    return ", ".join(sorted(SQS_SPELLING.get(a, a) for a in actions))


def role_of(props: dict, roles: set[str]) -> str | None:
    refs = logical_refs(props.get("Role"), roles)
    return next(iter(refs)) if len(refs) == 1 else None


def check_queue_wiring(checker: Checker, resources: dict) -> None:
    def of_type(*types):
        return {n: r for n, r in resources.items()
                if isinstance(r, dict) and r.get("Type") in types}

    queues = set(of_type("AWS::SQS::Queue"))
    roles = set(of_type("AWS::IAM::Role"))
    functions = of_type(*FUNCTION_TYPES)

    # What each role's functions need: role -> queue -> "send" / "consume".
    needs: dict[str, dict[str, set[str]]] = {}
    function_role: dict[str, str] = {}
    for fname, fn in functions.items():
        props = fn.get("Properties") or {}
        role = role_of(props, roles)
        if role is None:
            continue  # an implicit or external role: not this check's business
        function_role[fname] = role
        uses = needs.setdefault(role, {})
        sent = logical_refs(((props.get("Environment") or {}).get("Variables")), queues)
        sent |= logical_refs(props.get("EventInvokeConfig"), queues)
        sent |= logical_refs(props.get("DeadLetterQueue"), queues)       # SAM
        sent |= logical_refs(props.get("DeadLetterConfig"), queues)      # AWS::Lambda::Function
        for q in sent:
            uses.setdefault(q, set()).add("send")
        for event in (props.get("Events") or {}).values():
            if isinstance(event, dict) and event.get("Type") == "SQS":
                for q in logical_refs((event.get("Properties") or {}).get("Queue"), queues):
                    uses.setdefault(q, set()).add("consume")

    def target_function(value) -> str | None:
        refs = logical_refs(value, set(function_role))
        return next(iter(refs)) if len(refs) == 1 else None

    # A mapping consumes the queue it reads; an invoke config sends to its destinations.
    for rtype, prop, need in (("AWS::Lambda::EventSourceMapping", "EventSourceArn", "consume"),
                              ("AWS::Lambda::EventInvokeConfig", "DestinationConfig", "send")):
        for res in of_type(rtype).values():
            props = res.get("Properties") or {}
            fname = target_function(props.get("FunctionName"))
            if fname is None:
                continue
            for q in logical_refs(props.get(prop), queues):
                needs[function_role[fname]].setdefault(q, set()).add(need)

    # What each of those roles grants on SQS: role -> queue -> actions.
    attached = {role: [] for role in needs}
    for role in needs:
        for pol in as_list((resources[role].get("Properties") or {}).get("Policies", [])):
            if isinstance(pol, dict):
                attached[role].append(pol.get("PolicyDocument"))
    for res in of_type("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy").values():
        props = res.get("Properties") or {}
        for role in logical_refs(props.get("Roles"), set(needs)):
            attached[role].append(props.get("PolicyDocument"))

    for role in sorted(needs):
        where = f"{role} (SQS wiring)"
        grants: dict[str, set[str]] = {}
        for doc in attached[role]:
            for dv in variants(doc):
                if not isinstance(dv, dict):
                    continue
                for stmt in as_list(dv.get("Statement", [])):
                    if not isinstance(stmt, dict) or stmt.get("Effect") != "Allow":
                        continue
                    sqs_actions = {a.lower() for a in (render(x) for x in as_list(stmt.get("Action", [])))
                                   if a and a.lower().startswith("sqs:")}
                    if not sqs_actions:
                        continue
                    sid = stmt.get("Sid")
                    for r in as_list(stmt.get("Resource", [])):
                        named = logical_refs(r, queues)
                        if len(named) != 1:
                            checker.fail(where, f"statement {sid or '?'} grants SQS actions on "
                                                f"{render(r) or json.dumps(r)}, which is not one queue "
                                                "of this template")
                            continue
                        grants.setdefault(named.pop(), set()).update(sqs_actions)
        for q in sorted(set(needs[role]) | set(grants)):
            uses = needs[role].get(q, set())
            required = (SEND_REQUIRED if "send" in uses else set()) | (
                CONSUME_REQUIRED if "consume" in uses else set())
            allowed = (SEND_ALLOWED if "send" in uses else set()) | (
                CONSUME_ALLOWED if "consume" in uses else set())
            granted = grants.get(q, set())
            how = " and ".join(v for u, v in (("consume", "consumes"), ("send", "sends to"))
                               if u in uses) or "never uses"
            problems = []
            if required - granted:
                problems.append(f"misses {spell(required - granted)} on {q}, which its function {how}")
            if granted - allowed:
                problems.append(f"grants {spell(granted - allowed)} on {q}, which its function {how}")
            if problems:
                for p in problems:
                    checker.fail(where, p)
            else:
                checker.passed += 1
                print(f"ok   {where}: {q} ({', '.join(sorted(uses))}: {spell(granted)})")


def sam_translate(path: str, template: dict) -> dict:
    """The template as CloudFormation sees it after the SAM transform (cfn-lint's
    wrapper of the SAM translator, which stands in for local CodeUris)."""
    from cfnlint.template.transforms._sam import Transform

    region = os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or "us-east-1"
    transform = Transform(path, copy.deepcopy(template), region)
    errors = transform.transform_template()
    if errors:
        raise RuntimeError("; ".join(str(e) for e in errors))
    return transform.template()


def main(argv: list[str]) -> int:
    path = argv[1] if len(argv) > 1 else str(Path(__file__).with_name("template.yaml"))
    try:
        template = cfn_yaml.load(path)
    except Exception as e:  # noqa: BLE001
        print(f"FAIL cannot load {path}: {e}")
        print("0 passed, 1 failed")
        return 1
    template = json.loads(json.dumps(template))  # plain dicts and lists
    checker = Checker()
    resources = template.get("Resources") or {}

    print(f"checking {path}")
    check_resources(checker, resources)
    check_queue_wiring(checker, resources)
    globals_policies = ((template.get("Globals") or {}).get("Function") or {}).get("Policies")
    check_sam_policies(checker, "Globals.Function", globals_policies)

    transforms = template.get("Transform") or []
    transforms = transforms if isinstance(transforms, list) else [transforms]
    if SAM_TRANSFORM in transforms:
        try:
            translated = sam_translate(path, template)
        except Exception as e:  # noqa: BLE001
            checker.fail("SAM transform", f"cannot translate the template: {e}")
        else:
            generated = {n for n, r in (translated.get("Resources") or {}).items()
                         if n not in resources and isinstance(r, dict)
                         and (r.get("Type") in IDENTITY_TYPES or r.get("Type") in RESOURCE_POLICY_TYPES)}
            if generated:
                print(f"SAM generates: {', '.join(sorted(generated))}")
            check_resources(checker, translated.get("Resources") or {},
                            prefix="[generated by SAM] ", only=generated)

    if checker.identity_statements == 0:
        checker.fail(path, "no IAM identity-policy statement found: nothing was checked")
    print(f"{checker.passed} passed, {checker.failed} failed"
          + (f", {checker.skipped} skipped" if checker.skipped else ""))
    return 1 if checker.failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except Exception as e:  # noqa: BLE001  a crash is not a verdict: exit 2
        print(f"ERROR check_iam.py crashed: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(2)
