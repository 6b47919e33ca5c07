#!/usr/bin/env bash
# Every test, from a fresh clone: unit tests, then end-to-end tests against the local
# stack (make up), then the contract smoke check when ../shared/conformance has it.
# The stack is stopped at the end whatever happened; any failure fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/bootstrap.sh
trap scripts/down.sh EXIT

.venv/bin/ruff check .  # the Python helpers; rules in ruff.toml
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace --lib --bins
# The patched regex-cache (vendor/, outside the workspace: see vendor/README.md) keeps
# its own tests; the phone rules match through it.
cargo test --manifest-path vendor/regex-cache/Cargo.toml --target-dir target/vendor
# The fuzz targets (fuzz/: its own workspace, so the root never compiles libFuzzer) must
# keep compiling against the library: built here, run by `make fuzz`. The same target
# dir, and a lockfile with the root's versions, so only what differs is compiled again.
cargo build --manifest-path fuzz/Cargo.toml --bins --target-dir target
infra/validate.sh
# Compile the end-to-end tests before the stack runs, so their build does not hold the
# cargo lock while watch starts functions.
cargo test -p integration-tests --no-run
scripts/up.sh

# From here on, run every check even after a failure: the whole picture in one CI run.
# The end-to-end tests are #[ignore]d for runs without the stack; --include-ignored runs
# them with the rest. The ones that inject faults restart watch through the fault proxy
# themselves (each test file is its own process, run one after another).
status=0
# The edge itself, with boto3 and the AWS CLI (the Rust SDK's half is the test file
# edge_clients among the end-to-end tests below).
.venv/bin/python tests/edge_clients.py || status=1
cargo test -p integration-tests --no-fail-fast -- --include-ignored --test-threads 4 || status=1
check=../shared/conformance/check.py
if [[ -f $check ]]; then
  .venv/bin/python "$check" || status=1
else
  # The contract check comes with ../shared; without it the run has not checked the
  # contract, and must not pass as if it had.
  echo "test.sh: $check not found: the contract check did not run" >&2
  status=1
fi
exit $status
