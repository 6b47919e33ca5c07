#!/usr/bin/env bash
# Validates the SAM template: cfn-lint, then the least-privilege IAM check on the
# real template (must pass) and on each template in testdata/ (must fail, so the
# check is known to bite). Exits non-zero if any of that does not hold.
# Run from anywhere: infra/validate.sh   (needs cfn-lint in the repo's .venv)
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
venv="${VENV:-$root/.venv}"
py="$venv/bin/python"
lint="$venv/bin/cfn-lint"
status=0

for tool in "$py" "$lint"; do
  if [[ ! -x "$tool" ]]; then
    echo "validate.sh: $tool not found (create the virtualenv with cfn-lint first)" >&2
    exit 2
  fi
done

echo "== cfn-lint infra/template.yaml"
if "$lint" "$here/template.yaml"; then
  echo "cfn-lint: ok"
else
  echo "cfn-lint: FAILED" >&2
  status=1
fi

echo
echo "== check_iam.py infra/template.yaml (expect pass)"
if PYTHONDONTWRITEBYTECODE=1 "$py" "$here/check_iam.py" "$here/template.yaml"; then
  echo "check_iam on template.yaml: ok"
else
  echo "check_iam on template.yaml: FAILED" >&2
  status=1
fi

shopt -s nullglob
bad=("$here"/testdata/*.yaml)
if (( ${#bad[@]} == 0 )); then
  echo "validate.sh: no templates in infra/testdata/" >&2
  status=1
fi
for t in "${bad[@]}"; do
  echo
  echo "== check_iam.py infra/testdata/$(basename "$t") (expect failure)"
  out="$(PYTHONDONTWRITEBYTECODE=1 "$py" "$here/check_iam.py" "$t" 2>&1)"
  rc=$?
  printf '%s\n' "$out"
  # Exit 1 and a verdict line with at least one failure: a crash does not count.
  if (( rc == 1 )) && grep -Eq '^[0-9]+ passed, [1-9][0-9]* failed' <<<"$out"; then
    echo "check_iam on $(basename "$t"): failed as expected"
  else
    echo "check_iam on $(basename "$t"): expected exit 1, got $rc" >&2
    status=1
  fi
done

echo
echo "== check_retention.py infra/template.yaml (expect pass)"
if PYTHONDONTWRITEBYTECODE=1 "$py" "$here/check_retention.py" "$here/template.yaml"; then
  echo "check_retention on template.yaml: ok"
else
  echo "check_retention on template.yaml: FAILED" >&2
  status=1
fi
for t in "$here"/testdata/retention/*.yaml; do
  echo
  echo "== check_retention.py infra/testdata/retention/$(basename "$t") (expect failure)"
  out="$(PYTHONDONTWRITEBYTECODE=1 "$py" "$here/check_retention.py" "$t" 2>&1)"
  rc=$?
  printf '%s\n' "$out"
  if (( rc == 1 )) && grep -Eq '^[0-9]+ passed, [1-9][0-9]* failed' <<<"$out"; then
    echo "check_retention on $(basename "$t"): failed as expected"
  else
    echo "check_retention on $(basename "$t"): expected exit 1, got $rc" >&2
    status=1
  fi
done

echo
if (( status == 0 )); then echo "validate.sh: all checks passed"; else echo "validate.sh: FAILED" >&2; fi
exit "$status"
