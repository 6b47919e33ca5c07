#!/usr/bin/env bash
# Starts the local stack in the background: the emulator (unless something already
# answers on 4566, e.g. LocalStack: dynoxide on 127.0.0.1:4569 for DynamoDB, then the
# edge on 4566, localstack/emulator.py, which serves S3, SQS and EventBridge with moto and
# forwards DynamoDB to dynoxide), resources, both functions under `cargo lambda watch` and
# the relay (S3 notifications -> import-contacts, webhook queue -> contact-events).
# Idempotent: what already runs is left alone.
# Returns when an upload would be imported: both functions answer an invoke.
#
# FAULT_PROXY=1 also starts localstack/fault_proxy.py (127.0.0.1:4567) and runs the
# functions through it, for the tests and benchmarks that inject faults or count
# requests; they restart watch that way (scripts/down.sh watch && FAULT_PROXY=1
# scripts/up.sh) and put it back after. By default the functions reach the emulator
# directly: the edge, and dynoxide itself for DynamoDB (AWS_ENDPOINT_URL_DYNAMODB); through
# the proxy, every request goes to the edge, DynamoDB's included, so faults and counts
# apply to all. Waits here give up only when nothing has moved for UP_STALL_SECONDS (300).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh

export PATH="$PWD/.venv/bin:$PATH"  # so `cargo lambda` finds .venv's cargo-lambda
export AWS_ENDPOINT_URL=http://127.0.0.1:4566 AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 \
  AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
export CONTACTS_TABLE=${CONTACTS_TABLE:-contacts} CONTACTS_BUCKET=${CONTACTS_BUCKET:-contact-uploads}
export NO_COLOR=1  # plain text in .run/*.log (tracing-subscriber honours it)
mkdir -p .run
# A pause of the relay's webhook pollers left by a benchmark that was killed would keep
# the webhook queue unapplied (localstack/relay.py).
rm -f .run/relay.pause-webhooks

fault_proxy=${FAULT_PROXY:-0}
functions_endpoint=$AWS_ENDPOINT_URL  # where the functions send their AWS requests
[[ $fault_proxy == 1 ]] && functions_endpoint=http://127.0.0.1:4567
dynoxide=127.0.0.1:4569  # DynamoDB, behind the edge
functions_dynamodb=  # set below when the functions send DynamoDB's requests to dynoxide itself
stall=${UP_STALL_SECONDS:-300}

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
# Runs "$@" until it succeeds while service $1 (pid file, log) starts: fails when the
# process exits, or when neither its CPU time nor its log has moved for $stall seconds.
until_ready() {
  local name=$1 pid seen= now moved=$SECONDS; shift
  pid=$(cat ".run/$name.pid")
  until "$@"; do
    kill -0 "$pid" 2>/dev/null || fail "$name exited" ".run/$name.log"
    now="$(ps -o times= -p "$pid") $(stat -c %s ".run/$name.log")"
    if [[ $now != "$seen" ]]; then
      seen=$now moved=$SECONDS
    elif ((SECONDS - moved >= stall)); then
      fail "$name: nothing moved for ${stall}s" ".run/$name.log"
    fi
    sleep 0.5
  done
}

# Whether the edge's DynamoDB is dynoxide: dynoxide names itself in every answer (the
# edge passes its headers on), also in the one refusing this unsigned request.
edge_dynamodb_is_dynoxide() {
  local headers
  headers=$(curl -s -o /dev/null -D - --max-time 10 -H 'X-Amz-Target: DynamoDB_20120810.ListTables' \
    -H 'Content-Type: application/x-amz-json-1.0' -d '{}' http://127.0.0.1:4566/) || return 1
  grep -qi '^x-dynoxide-version:' <<<"$headers"
}

if answers http://127.0.0.1:4566/ && ! running emulator localstack/emulator.py; then
  echo "up: an emulator already answers on 127.0.0.1:4566 (not started by up.sh); using it"
else
  # dynoxide first: the edge forwards DynamoDB's requests to it. In memory, like moto:
  # make down forgets the table with the bucket.
  if running dynoxide "dynoxide serve"; then
    echo "up: dynoxide already runs (pid $(cat .run/dynoxide.pid))"
  elif answers "http://$dynoxide/"; then
    echo "up: something else already listens on $dynoxide" >&2; exit 1
  else
    start dynoxide .venv/bin/dynoxide serve --host "${dynoxide%:*}" --port "${dynoxide#*:}"
    until_ready dynoxide answers "http://$dynoxide/"
  fi
  if answers http://127.0.0.1:4566/; then
    echo "up: emulator already answers on 127.0.0.1:4566 (pid $(cat .run/emulator.pid))"
  elif running emulator localstack/emulator.py; then
    # Ours, and busy: moto serves one request at a time, and a slow one (a large upload)
    # can hold a probe past its 2 s. Wait while it works; a second emulator would only
    # find the port taken.
    echo "up: emulator (pid $(cat .run/emulator.pid)) is busy; waiting for it to answer"
    until_ready emulator answers http://127.0.0.1:4566/
  else
    start emulator python -u localstack/emulator.py -H 127.0.0.1 -p 4566 --dynamodb "$dynoxide"
    until_ready emulator answers http://127.0.0.1:4566/
  fi
  # The functions may reach dynoxide directly, unless they go through the fault proxy, or
  # the edge (one started before this version, still running) serves DynamoDB otherwise.
  if [[ $fault_proxy != 1 ]]; then
    if edge_dynamodb_is_dynoxide; then
      functions_dynamodb=http://$dynoxide
    else
      echo "up: the edge on 127.0.0.1:4566 does not send DynamoDB to dynoxide (started before it did?);" \
        "the functions use the edge for DynamoDB; make down && make up starts it anew" >&2
    fi
  fi
fi
python localstack/init.py

# The fault proxy forwards to 4566 and counts; tests and benchmarks switch faults or
# latency on. Tests and scripts themselves always use 4566 directly.
if [[ $fault_proxy == 1 ]]; then
  if running proxy fault_proxy.py; then
    echo "up: fault proxy already runs (pid $(cat .run/proxy.pid))"
  else
    start proxy python -u localstack/fault_proxy.py
    until_ready proxy answers http://127.0.0.1:4567/__proxy/stats
  fi
fi

# Build exactly what watch will `cargo run --bin <name>`, one at a time, so that the first
# invoke finds the binaries fresh instead of compiling for minutes.
# WATCH_RELEASE=1 runs optimised builds (make bench measures CPU per row with them).
profile=(); [[ ${WATCH_RELEASE:-0} == 1 ]] && profile=(--release)
cargo build "${profile[@]}" --bin import-contacts
cargo build "${profile[@]}" --bin contact-events

# Where the functions send their requests, as up.sh says it and notes it for watch.
functions_reach=$functions_endpoint${functions_dynamodb:+ (DynamoDB: $functions_dynamodb)}
if running watch "lambda watch"; then
  current=$(cat .run/watch.endpoint 2>/dev/null || echo unknown)
  echo "up: cargo lambda watch already runs (pid $(cat .run/watch.pid)); its functions reach $current"
  if [[ -n ${FAULT_PROXY:-} && $current != "$functions_reach" ]]; then
    echo "up: FAULT_PROXY=$FAULT_PROXY wants them on $functions_reach:" \
      "scripts/down.sh watch && FAULT_PROXY=$FAULT_PROXY scripts/up.sh" >&2
    exit 1
  fi
elif answers http://127.0.0.1:9000/; then
  echo "up: something else already listens on 127.0.0.1:9000" >&2; exit 1
else
  # Cargo.toml's [workspace.metadata.lambda.watch.env] wins over this environment for
  # the keys it sets, so it must not set AWS_ENDPOINT_URL: the endpoint comes from here.
  # --ignore-changes: a reload would kill imports in flight; WATCH_RELOAD=1 make up
  # keeps watch's hot reload for editing sessions.
  reload=--ignore-changes; [[ ${WATCH_RELOAD:-0} == 1 ]] && reload=
  # watch hands functions no usable deadline, so imports get their time limit from this
  # instead (Lambda's maximum by default). Not watch's --timeout: with it, a function
  # idle that long gets an invoke without a request id from watch and exits.
  export IMPORT_TIME_LIMIT_SECONDS=${IMPORT_TIME_LIMIT_SECONDS:-900}
  # The key of erasure tombstones (contact.erase). Locally a fixed development value;
  # deployed, a Secrets Manager secret the function reads at start from the ARN in
  # SUPPRESSION_SECRET_ARN (infra/template.yaml, SuppressionSecretArn).
  export SUPPRESSION_SECRET=${SUPPRESSION_SECRET:-local-development-suppression-secret}
  # The WhatsApp webhook's secrets (README, "WhatsApp webhooks"): sign a local POST to
  # http://127.0.0.1:9000/lambda-url/contact-events/ with the app secret. Deployed,
  # Secrets Manager secrets named by ARN (WHATSAPP_APP_SECRET_ARN, ...). Set either beforehand to
  # try a real Meta app through a tunnel.
  export WHATSAPP_APP_SECRET=${WHATSAPP_APP_SECRET:-local-development-app-secret}
  export WHATSAPP_VERIFY_TOKEN=${WHATSAPP_VERIFY_TOKEN:-local-development-verify-token}
  # contact-events queues each signed webhook body on the queue init.py created and
  # answers Meta at once; the relay drains it as Lambda's SQS event source mapping does.
  # The URLs as the emulator gives them (moto's and LocalStack's differ); names from
  # CONTACTS_WEBHOOK_QUEUE / CONTACTS_WEBHOOK_DLQ, the count from WEBHOOK_MAX_RECEIVE_COUNT.
  webhook_queues=$(python - <<'PY'
import sys
sys.path.insert(0, "localstack")
from local_aws import WEBHOOK_DLQ, WEBHOOK_MAX_RECEIVE_COUNT, WEBHOOK_QUEUE, client
sqs = client("sqs")
print(*(sqs.get_queue_url(QueueName=name)["QueueUrl"] for name in (WEBHOOK_QUEUE, WEBHOOK_DLQ)),
      WEBHOOK_MAX_RECEIVE_COUNT)
PY
  )
  read -r WEBHOOK_QUEUE_URL WEBHOOK_DEAD_LETTER_QUEUE_URL WEBHOOK_MAX_RECEIVE_COUNT <<<"$webhook_queues"
  export WEBHOOK_QUEUE_URL WEBHOOK_DEAD_LETTER_QUEUE_URL WEBHOOK_MAX_RECEIVE_COUNT
  # An instance of contact-events takes this many invocations at once, as on Lambda
  # Managed Instances (watch itself gives each instance AWS_LAMBDA_MAX_CONCURRENCY=1):
  # webhook POSTs answered at the same time share one SendMessageBatch; events still run
  # one at a time per instance.
  export CONTACT_EVENTS_MAX_CONCURRENCY=${CONTACT_EVENTS_MAX_CONCURRENCY:-16}
  # AWS_ENDPOINT_URL_DYNAMODB: the AWS SDK for Rust takes a service's own endpoint over
  # AWS_ENDPOINT_URL (aws-config 1.13, Cargo.lock). Never inherited: through the proxy,
  # DynamoDB must go through the proxy too.
  endpoints=(-u AWS_ENDPOINT_URL_DYNAMODB AWS_ENDPOINT_URL="$functions_endpoint")
  [[ -n $functions_dynamodb ]] && endpoints+=(AWS_ENDPOINT_URL_DYNAMODB="$functions_dynamodb")
  start watch env "${endpoints[@]}" cargo lambda watch $reload "${profile[@]}" --invoke-address 127.0.0.1 --invoke-port 9000 --concurrency "${WATCH_CONCURRENCY:-4}"
  echo "$functions_reach" > .run/watch.endpoint
fi

# Ready when both functions answer (an error for the empty event is an answer too):
# watch starts each function at its first invoke, so this also spares the first upload.
# A function that exits at start-up leaves the invoke hanging; watch logs the exit.
invoke() {
  curl -s -o /dev/null -w '%{http_code}' --max-time 20 -H 'content-type: application/json' -d '{}' \
    "http://127.0.0.1:9000/2015-03-31/functions/$1/invocations" || true
}
log_from=$(($(stat -c %s .run/watch.log) + 1))
exits_at_start() { tail -c "+$log_from" .run/watch.log | grep -q 'command exited'; }
for fn in import-contacts contact-events; do
  answered() { code=$(invoke "$fn"); [[ $code != 000 ]] || { exits_at_start && fail "a function exits at start-up" .run/watch.log; false; }; }
  until_ready watch answered
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
  "functions reach $functions_reach; logs in .run/*.log; stop with make down"
