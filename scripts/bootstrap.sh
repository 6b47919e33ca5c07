#!/usr/bin/env bash
# Creates .venv (moto server, boto3, cargo-lambda, cfn-lint, psutil, ruff) from
# localstack/requirements.txt, builds dynoxide (the local DynamoDB, DESIGN.md
# section 11), pinned, from the Rust registry into .venv/bin, and installs Chromium and
# pdftotext (the report.html browser test) with apt-get when they are missing.
# Idempotent: stamps record the hash of the requirements last installed and the dynoxide
# build last made, and the browser tools are looked for first, so a re-run with nothing
# changed costs nothing.
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

# apt-get install, as root (CI) or through sudo.
apt_install() {
  local sudo
  sudo=$([[ $(id -u) == 0 ]] || echo sudo)
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

python_tools() {
  if [[ ! -x .venv/bin/pip ]]; then
    # Debian splits ensurepip (needed by `python3 -m venv`) into python3-venv.
    if ! command -v python3 >/dev/null || ! python3 -c 'import ensurepip' 2>/dev/null; then
      echo "bootstrap: installing python3-venv with apt-get" >&2
      apt_install python3 python3-venv
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

# tests/tests/report_html.rs opens report.html in headless Chromium, prints it to PDF and
# reads what is drawn with pdftotext (poppler-utils); DejaVu has the page's ⚠ marker.
# Without apt-get (macOS), install Chromium (or point CHROMIUM at Chrome) and poppler.
browser_tools() {
  if ! command -v apt-get >/dev/null; then
    echo "bootstrap: install Chromium and poppler (pdftotext) for the report.html test; no apt-get here" >&2
    return
  fi
  echo "bootstrap: installing chromium, poppler-utils and fonts-dejavu-core with apt-get" >&2
  apt_install chromium poppler-utils fonts-dejavu-core
}

# Where Debian's fonts-dejavu-core puts the font (looked for only where apt-get is).
dejavu=/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
browser_ready() {
  command -v "${CHROMIUM:-chromium}" >/dev/null && command -v pdftotext >/dev/null &&
    { [[ -f $dejavu ]] || ! command -v apt-get >/dev/null; }
}
browser_ready || browser_tools
