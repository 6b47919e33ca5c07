#!/usr/bin/env bash
# Creates .venv (moto server, boto3, cargo-lambda, cfn-lint, psutil, ruff) from
# localstack/requirements.txt, and builds dynoxide (the local DynamoDB, DESIGN.md
# section 11), pinned, from the Rust registry into .venv/bin.
# Idempotent: stamps record the hash of the requirements last installed and the dynoxide
# build last made, so a re-run with nothing changed costs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

req=localstack/requirements.txt
stamp=.venv/.requirements.sha256
want=$(sha256sum "$req" | cut -d' ' -f1)

# dynoxide-rs: a DynamoDB emulator in Rust on SQLite that reports consumed capacity as AWS
# does (moto's DynamoDB does not: ../shared/NOTES.md, "Checked 2026-12-02"). Only what
# `dynoxide serve` needs: the bundled SQLite, the HTTP server and the command line.
# `dynoxide --version` prints its product version, not the crate's: the stamp says which.
dynoxide_version=3.2.0
dynoxide_features=native-sqlite,http-server,cli
dynoxide_stamp=.venv/.dynoxide
dynoxide_want="dynoxide-rs $dynoxide_version --features $dynoxide_features"

python_tools() {
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
}

build_dynoxide() {
  echo "bootstrap: building dynoxide-rs $dynoxide_version into .venv/bin (about 3.5 min on 2 cores, once)" >&2
  # --force: the dynoxide there, if any, is not the one wanted (the stamp said so).
  cargo install dynoxide-rs --version "$dynoxide_version" --locked --no-default-features \
    --features "$dynoxide_features" --root .venv --force
  echo "$dynoxide_want" > "$dynoxide_stamp"
}

[[ -f $stamp && $(cat "$stamp") == "$want" ]] || python_tools
# After the Python tools: a venv made again from nothing has lost its dynoxide too.
[[ -x .venv/bin/dynoxide && -f $dynoxide_stamp && $(cat "$dynoxide_stamp") == "$dynoxide_want" ]] ||
  build_dynoxide
