#!/usr/bin/env bash
# Validates the SAM template: cfn-lint, then the least-privilege IAM check
# (check_iam.py), the retention check of the bucket's lifecycle rules
# (check_retention.py, DESIGN section 12) and the check that no secret's value is in a
# function's environment (check_secrets.py, DESIGN section 13), each on the real template (must pass) and on
# the templates in testdata/ (must fail, so the check is known to bite). Exits non-zero
# if any of that does not hold.
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

# check CHECKER TEMPLATE: the checker must pass on the template.
check() {
  echo
  echo "== $1 ${2#"$root"/} (expect pass)"
  if PYTHONDONTWRITEBYTECODE=1 "$py" "$here/$1" "$2"; then
    echo "$1 on $(basename "$2"): ok"
  else
    echo "$1 on $(basename "$2"): FAILED" >&2
    status=1
  fi
}

# refuse CHECKER TEMPLATE...: the checker must fail on each template (so it is known to
# bite), with exit 1 and a verdict line naming a failure: a crash does not count.
refuse() {
  local checker=$1 t out rc
  shift
  if (( $# == 0 )); then
    echo "validate.sh: no template that $checker must refuse" >&2
    status=1
  fi
  for t in "$@"; do
    echo
    echo "== $checker ${t#"$root"/} (expect failure)"
    out="$(PYTHONDONTWRITEBYTECODE=1 "$py" "$here/$checker" "$t" 2>&1)"
    rc=$?
    printf '%s\n' "$out"
    if (( rc == 1 )) && grep -Eq '^[0-9]+ passed, [1-9][0-9]* failed' <<<"$out"; then
      echo "$checker on $(basename "$t"): failed as expected"
    else
      echo "$checker on $(basename "$t"): expected exit 1, got $rc" >&2
      status=1
    fi
  done
}

shopt -s nullglob
check check_iam.py "$here/template.yaml"
refuse check_iam.py "$here"/testdata/*.yaml
check check_retention.py "$here/template.yaml"
refuse check_retention.py "$here"/testdata/retention/*.yaml
check check_secrets.py "$here/template.yaml"
refuse check_secrets.py "$here"/testdata/secrets/*.yaml

echo
if (( status == 0 )); then echo "validate.sh: all checks passed"; else echo "validate.sh: FAILED" >&2; fi
exit "$status"
