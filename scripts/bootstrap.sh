#!/usr/bin/env bash
# Creates .venv (moto server, boto3, cargo-lambda, cfn-lint, psutil, ruff) from
# localstack/requirements.txt.
# Idempotent: a stamp records the hash of the requirements last installed, so a re-run
# with unchanged requirements costs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

req=localstack/requirements.txt
stamp=.venv/.requirements.sha256
want=$(sha256sum "$req" | cut -d' ' -f1)
[[ -f $stamp && $(cat "$stamp") == "$want" ]] && exit 0

if [[ ! -x .venv/bin/pip ]]; then
  # Debian splits ensurepip (needed by `python3 -m venv`) into python3-venv.
  if ! command -v python3 >/dev/null || ! python3 -c 'import ensurepip' 2>/dev/null; then
    echo "bootstrap: installing python3-venv with apt-get" >&2
    sudo=$([[ $(id -u) == 0 ]] || echo sudo)
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3 python3-venv >/dev/null
  fi
  rm -rf .venv  # a half-made venv (no pip) would fail the same way again
  python3 -m venv .venv
fi

echo "bootstrap: installing $req into .venv (cargo-lambda pulls ziglang, ~400 MB, once)" >&2
.venv/bin/pip install --disable-pip-version-check -q -r "$req"
echo "$want" > "$stamp"
