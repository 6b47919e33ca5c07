#!/usr/bin/env bash
# Starts the local stack in the background: emulator (moto, unless something already
# answers on 4566, e.g. LocalStack), resources, both functions under `cargo lambda watch`
# and the S3 -> function relay. Idempotent: what already runs is left alone.
# Returns when an upload would be imported: both functions answer an invoke.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh

export PATH="$PWD/.venv/bin:$PATH"  # so `cargo lambda` finds .venv's cargo-lambda
export AWS_ENDPOINT_URL=http://127.0.0.1:4566 AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 \
  AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
export CONTACTS_TABLE=${CONTACTS_TABLE:-contacts} CONTACTS_BUCKET=${CONTACTS_BUCKET:-contact-uploads}
export NO_COLOR=1  # plain text in .run/*.log (tracing-subscriber honours it)
mkdir -p .run

answers() { curl -s -o /dev/null --max-time 2 "$1"; }  # any HTTP answer will do
running() {  # the pid file names a live process that is still ours (pids get reused)
  [[ -f .run/$1.pid && $(ps -o args= -p "$(cat ".run/$1.pid")") == *"$2"* ]]
}
start() {  # own session (setsid), so down.sh can stop the process with all its children
  local name=$1; shift
  setsid "$@" >".run/$name.log" 2>&1 </dev/null &
  echo $! >".run/$name.pid"
  echo "up: started $name (pid $!), log .run/$name.log"
}
fail() { echo "up: $1; see $2:" >&2; tail -n 30 "$2" >&2; exit 1; }

if answers http://127.0.0.1:4566/; then
  echo "up: emulator already answers on 127.0.0.1:4566"
else
  start emulator moto_server -H 127.0.0.1 -p 4566
  for _ in $(seq 100); do answers http://127.0.0.1:4566/ && break; sleep 0.2; done
  answers http://127.0.0.1:4566/ || fail "the emulator did not start" .run/emulator.log
fi
python localstack/init.py

# The functions reach the emulator through the fault proxy (pass-through unless a test
# or benchmark switches faults or latency on); tests and scripts use 4566 directly.
if running proxy fault_proxy.py; then
  echo "up: fault proxy already runs (pid $(cat .run/proxy.pid))"
else
  start proxy python -u localstack/fault_proxy.py
  for _ in $(seq 50); do answers http://127.0.0.1:4567/__proxy/stats && break; sleep 0.2; done
  answers http://127.0.0.1:4567/__proxy/stats || fail "the fault proxy did not start" .run/proxy.log
fi

# Build exactly what watch will `cargo run --bin <name>`, one at a time, so that the first
# invoke finds the binaries fresh instead of compiling for minutes.
# WATCH_RELEASE=1 runs optimised builds (make bench measures CPU per row with them).
profile=(); [[ ${WATCH_RELEASE:-0} == 1 ]] && profile=(--release)
cargo build "${profile[@]}" --bin import-contacts
cargo build "${profile[@]}" --bin contact-events

if running watch "lambda watch"; then
  echo "up: cargo lambda watch already runs (pid $(cat .run/watch.pid))"
elif answers http://127.0.0.1:9000/; then
  echo "up: something else already listens on 127.0.0.1:9000" >&2; exit 1
else
  # Cargo.toml's [workspace.metadata.lambda.watch.env] wins over this environment for
  # the keys it sets; the exports above cover anything it leaves out.
  # --ignore-changes: a reload would kill imports in flight; WATCH_RELOAD=1 make up
  # keeps watch's hot reload for editing sessions.
  reload=--ignore-changes; [[ ${WATCH_RELOAD:-0} == 1 ]] && reload=
  # watch hands functions no usable deadline, so imports get their time limit from this
  # instead (Lambda's maximum by default). Not watch's --timeout: with it, a function
  # idle that long gets an invoke without a request id from watch and exits.
  export IMPORT_TIME_LIMIT_SECONDS=${IMPORT_TIME_LIMIT_SECONDS:-900}
  start watch env AWS_ENDPOINT_URL=http://127.0.0.1:4567 cargo lambda watch $reload "${profile[@]}" --invoke-address 127.0.0.1 --invoke-port 9000 --concurrency 4
fi

# Ready when both functions answer (an error for the empty event is an answer too):
# watch starts each function at its first invoke, so this also spares the first upload.
# A function that exits at start-up leaves the invoke hanging; watch logs the exit.
invoke() {
  curl -s -o /dev/null -w '%{http_code}' --max-time 20 -H 'content-type: application/json' -d '{}' \
    "http://127.0.0.1:9000/2015-03-31/functions/$1/invocations" || true
}
log_from=$(($(stat -c %s .run/watch.log) + 1)) deadline=$((SECONDS + 300))
for fn in import-contacts contact-events; do
  until code=$(invoke "$fn"); [[ $code != 000 ]]; do
    kill -0 "$(cat .run/watch.pid)" 2>/dev/null || fail "cargo lambda watch exited" .run/watch.log
    tail -c "+$log_from" .run/watch.log | grep -q 'command exited' && fail "a function exits at start-up" .run/watch.log
    ((SECONDS < deadline)) || fail "$fn did not answer an invoke within 300s" .run/watch.log
    sleep 1
  done
  [[ $code == 200 || $code == 500 ]] || fail "$fn answers HTTP $code on 127.0.0.1:9000" .run/watch.log
done

if running relay relay.py; then
  echo "up: relay already runs (pid $(cat .run/relay.pid))"
else
  # A function process that dies mid-invoke leaves watch's invoke unanswered: give up
  # after a minute and retry, as Lambda's async invoke would.
  RELAY_INVOKE_TIMEOUT=${RELAY_INVOKE_TIMEOUT:-60} start relay python -u localstack/relay.py
fi
echo "up: ready. Upload to s3://$CONTACTS_BUCKET/imports/{account}/{channel}/... at $AWS_ENDPOINT_URL;" \
  "logs in .run/*.log; stop with make down"
