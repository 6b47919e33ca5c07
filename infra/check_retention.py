#!/usr/bin/env python3
"""Retention check of the upload bucket's lifecycle rules (DESIGN section 12).

Usage: .venv/bin/python infra/check_retention.py [TEMPLATE]   (default: infra/template.yaml)

Every prefix that holds personal data (imports/, campaigns/, reports/, exports/) must
expire after at most 30 days, and noncurrent versions after at most 1 day, so that an
erasure is complete everywhere within 31 days. A number of days may be a literal or a
Ref to a parameter: then both its Default and its MaxValue must be within the limit
(an operator cannot raise it past the promise). Each bucket with lifecycle rules is
checked; a template with none fails. The last line is "N passed, M failed".
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

try:
    from cfnlint.decode import cfn_yaml
except ImportError:  # pragma: no cover
    sys.exit("check_retention.py needs cfn-lint: run it with .venv/bin/python")

PERSONAL_PREFIXES = ("imports/", "campaigns/", "reports/", "exports/")
MAX_DAYS = 30
MAX_NONCURRENT_DAYS = 1


def days(value, parameters: dict) -> tuple[int | None, str]:
    """The most days `value` can be, and how it was read."""
    if isinstance(value, int):
        return value, str(value)
    if isinstance(value, str) and value.isdigit():
        return int(value), value
    if isinstance(value, dict) and set(value) == {"Ref"}:
        name = value["Ref"]
        parameter = parameters.get(name) or {}
        default, most = parameter.get("Default"), parameter.get("MaxValue")
        if default is None or most is None:
            return None, f"parameter {name} needs a Default and a MaxValue"
        return max(int(default), int(most)), f"parameter {name} (Default {default}, MaxValue {most})"
    return None, f"unreadable {value!r}"


def main(argv: list[str]) -> int:
    path = argv[1] if len(argv) > 1 else str(Path(__file__).with_name("template.yaml"))
    template = json.loads(json.dumps(cfn_yaml.load(path)))
    parameters = template.get("Parameters") or {}
    passed = failed = 0

    def verdict(ok: bool, message: str) -> None:
        nonlocal passed, failed
        print(("ok   " if ok else "FAIL ") + message)
        if ok:
            passed += 1
        else:
            failed += 1

    buckets = {name: r for name, r in (template.get("Resources") or {}).items()
               if isinstance(r, dict) and r.get("Type") == "AWS::S3::Bucket"
               and ((r.get("Properties") or {}).get("LifecycleConfiguration"))}
    if not buckets:
        verdict(False, f"{path}: no bucket with lifecycle rules")
    for name, bucket in buckets.items():
        rules = [r for r in bucket["Properties"]["LifecycleConfiguration"].get("Rules", [])
                 if r.get("Status") == "Enabled"]
        for prefix in PERSONAL_PREFIXES:
            expiring = [r for r in rules if "ExpirationInDays" in r
                        and prefix.startswith(r.get("Prefix") or (r.get("Filter") or {}).get("Prefix") or "")]
            if not expiring:
                verdict(False, f"{name}: nothing expires {prefix}")
                continue
            most, how = min((days(r["ExpirationInDays"], parameters) for r in expiring),
                            key=lambda d: d[0] if d[0] is not None else 10**9)
            verdict(most is not None and most <= MAX_DAYS,
                    f"{name}: {prefix} expires after at most {most} days ({how}); the limit is {MAX_DAYS}")
        noncurrent = [r["NoncurrentVersionExpiration"] for r in rules
                      if "NoncurrentVersionExpiration" in r
                      and not (r.get("Prefix") or (r.get("Filter") or {}).get("Prefix"))]
        if not noncurrent:
            verdict(False, f"{name}: noncurrent versions never expire (a rule for the whole bucket)")
        else:
            most, how = days(noncurrent[0].get("NoncurrentDays"), parameters)
            verdict(most is not None and most <= MAX_NONCURRENT_DAYS,
                    f"{name}: noncurrent versions expire after at most {most} days ({how}); the limit is {MAX_NONCURRENT_DAYS}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
