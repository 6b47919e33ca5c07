"""How the Python helpers reach the local stack: read from the environment once, here.

Every script in localstack/ and scripts/ takes its AWS clients, resource names and the
fault proxy's address from this module (scripts/ put localstack/ on sys.path first):

    AWS_ENDPOINT_URL                           the emulator, default http://127.0.0.1:4566
    AWS_REGION or AWS_DEFAULT_REGION           default us-east-1
    AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY   default test / test (the emulator takes any)
    CONTACTS_BUCKET, CONTACTS_TABLE, CONTACTS_QUEUE   what init.py creates
    CONTACTS_WEBHOOK_QUEUE, CONTACTS_WEBHOOK_DLQ      the WhatsApp webhook queue and its dead-letter queue
    CONTACTS_IMPORT_EVENTS_QUEUE               where import completion events arrive (import-events)
    WEBHOOK_MAX_RECEIVE_COUNT                  receives before SQS moves a webhook body to the DLQ (5)
    FAULT_PROXY_URL                            localstack/fault_proxy.py, default http://127.0.0.1:4567
    WATCH_URL                                  cargo lambda watch's invoke API, default http://127.0.0.1:9000
    STALL_SECONDS                              how long a wait tolerates nothing moving (120)

Waits are progress-based (`wait_for`): they give up when nothing in the stack has moved
for STALL_SECONDS, never after a fixed total, so a busy machine only makes them slower.
"""

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

ENDPOINT = os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
REGION = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
ACCESS_KEY_ID = os.environ.get("AWS_ACCESS_KEY_ID", "test")
SECRET_ACCESS_KEY = os.environ.get("AWS_SECRET_ACCESS_KEY", "test")
BUCKET = os.environ.get("CONTACTS_BUCKET", "contact-uploads")
TABLE = os.environ.get("CONTACTS_TABLE", "contacts")
QUEUE = os.environ.get("CONTACTS_QUEUE", "contact-uploads-events")
# contact-events queues each signed WhatsApp webhook body here and answers Meta at once;
# the relay drains it as Lambda's SQS event source mapping would (localstack/relay.py).
WEBHOOK_QUEUE = os.environ.get("CONTACTS_WEBHOOK_QUEUE", "contact-events-webhooks")
WEBHOOK_DLQ = os.environ.get("CONTACTS_WEBHOOK_DLQ", "contact-events-webhooks-dlq")
# DESIGN 15: the emulator's EventBridge forwards every "Contact Import Completed" event
# (default bus, source contact-book) to this queue, as the template does on AWS.
IMPORT_EVENTS_QUEUE = os.environ.get("CONTACTS_IMPORT_EVENTS_QUEUE", "import-events")
IMPORT_EVENTS_RULE = "contact-import-completed"
WEBHOOK_MAX_RECEIVE_COUNT = int(os.environ.get("WEBHOOK_MAX_RECEIVE_COUNT", "5"))  # RedrivePolicy
# Seconds a received record stays hidden: longer than the relay waits for an invoke
# (RELAY_INVOKE_TIMEOUT, 60 under make up), as AWS wants 6x the function's timeout, so
# that a slow batch is never received twice; a record that failed comes back this late.
WEBHOOK_VISIBILITY_TIMEOUT = 90
PROXY = os.environ.get("FAULT_PROXY_URL", "http://127.0.0.1:4567")
WATCH = os.environ.get("WATCH_URL", "http://127.0.0.1:9000")
STALL_SECONDS = float(os.environ.get("STALL_SECONDS", "120"))
ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / ".run"  # pid files and logs of what scripts/up.sh started


def client(service, endpoint_url=None, retries=None, **config):
    """A boto3 client for the local stack.

    botocore retries throttling, 5xx and dropped connections itself (standard mode, 5
    attempts unless `retries` says otherwise); each client has a session of its own,
    so threads can make clients at the same time.
    """
    retries = {"mode": "standard", "max_attempts": 5} if retries is None else retries
    return boto3.session.Session().client(
        service,
        endpoint_url=endpoint_url or ENDPOINT,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
        config=Config(retries=retries, **config),
    )


def cargo_target_dir():
    """Where cargo puts what it builds: `target/` unless CARGO_TARGET_DIR (or a cargo
    config's build.target-dir) says otherwise, as `cargo metadata` reports it."""
    out = subprocess.run(["cargo", "metadata", "--no-deps", "--format-version", "1"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    return Path(json.loads(out)["target_directory"])


def proxy(path, doc=None, timeout=10):
    """The fault proxy's control API: GET without `doc`, POST `doc` as JSON."""
    data = None if doc is None else json.dumps(doc).encode()
    req = urllib.request.Request(f"{PROXY}/__proxy/{path}", data=data, method="GET" if doc is None else "POST")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read() or b"{}")


def invoke(function, payload, timeout=900):
    """Invokes a function synchronously through watch's Lambda invoke API, as
    `aws lambda invoke` would; returns its answer, or the runtime's error document
    (a dict with `errorType` and `errorMessage`)."""
    req = urllib.request.Request(f"{WATCH}/2015-03-31/functions/{function}/invocations",
                                 data=json.dumps(payload).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:  # watch answers a function error with a 4xx/5xx
        return json.loads(e.read() or b"null")


def proxied_requests():
    """Requests the fault proxy has forwarded since its last reset; None when no proxy runs."""
    try:
        return sum(proxy("stats", timeout=2)["requests"].values())
    except (OSError, ValueError, KeyError):
        return None


def function_processes(name="import-contacts"):
    """The processes of one function under this checkout's `cargo lambda watch`
    (descendants of the pid in .run/watch.pid), never another checkout's."""
    import psutil  # only the scripts that measure or watch processes need it

    try:
        watch = psutil.Process(int((RUN / "watch.pid").read_text()))
        children = watch.children(recursive=True)
    except (OSError, ValueError, psutil.Error):
        return []
    found = []
    for p in children:
        try:
            if p.name() == name:
                found.append(p)
        except psutil.Error:
            pass  # exited meanwhile
    return found


def cpu_seconds(processes):
    """User + system CPU seconds of the processes that still run."""
    import psutil

    total = 0.0
    for p in processes:
        try:
            times = p.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total


def stack_progress(ddb):
    """What moves while the stack works, cheap to read: the table's item count (every
    import creates its job item and new contacts), the CPU time of the functions under
    watch, and the fault proxy's request count when it runs. Never a table scan: it
    reads every item, and the tests write thousands."""
    try:
        items = ddb.describe_table(TableName=TABLE)["Table"].get("ItemCount")
    except (BotoCoreError, ClientError):  # a busy emulator is no answer, not a failure
        items = None
    functions = function_processes("import-contacts") + function_processes("contact-events")
    return items, round(cpu_seconds(functions), 1), proxied_requests()


class Stalled(SystemExit):
    """A wait saw nothing move for too long. A SystemExit, so a script that does not
    catch it ends with the message and status 1, without a traceback."""


def wait_for(poll, progress, what, stall_seconds=STALL_SECONDS, interval=1.0):
    """Calls poll() until it returns something truthy, and returns that.

    Gives up (raises Stalled) only when progress() has returned the same value for
    stall_seconds: a slow stack gets all the time it needs, a stuck one fails.
    """
    last, moved = progress(), time.monotonic()
    while True:
        result = poll()
        if result:
            return result
        now = progress()
        if now != last:
            last, moved = now, time.monotonic()
        elif time.monotonic() - moved > stall_seconds:
            raise Stalled(
                f"{what}: nothing moved for {stall_seconds:.0f}s (last seen {now}); "
                f"see {RUN}/relay.log and {RUN}/watch.log"
            )
        time.sleep(interval)
