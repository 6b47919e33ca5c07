"""`make bench-webhooks`: signed WhatsApp webhooks through contact-events' function URL.

Against the stack `make up` started: each body is POSTed, signed with the development app
secret, to watch's function URL (http://127.0.0.1:9000/lambda-url/contact-events/),
which stores it on the webhook queue and answers 200; the relay drains the queue into
contact-events in batches of up to 100 (RELAY_WEBHOOK_BATCH_SIZE), as Lambda's SQS event
source mapping would (DESIGN
section 13). The script

1. restarts watch with release builds (what Lambda runs; `--no-restart` keeps the
   running build) and one instance of each function per core (`--concurrency 2`;
   contact-events takes 16 invocations at once in each), and puts make up's default
   debug builds and 4 instances back at the end;
2. sets up a fresh account and business number and seeds `--people` contacts through
   the same path (their first messages; not timed), so that statuses find them;
3. pauses the relay (the apply side), POSTs `--items` items in a realistic mix (70 %
   statuses, 20 % messages, 10 % user_preferences; 1 body in 5 carries 2-5 items
   across 2 entries) from `--concurrency` threads on keep-alive connections, timing
   each acknowledgement and the CPU each part spent on the acks;
4. lets the relay go on and waits (as long as something moves) until every item is
   applied: the EMF lines contact-events writes to .run/watch.log count them, and the
   queue is empty; the CPU each part spent meanwhile is the applies' alone. (Apart,
   because on two cores the acks and the applies would measure their contention with
   each other; on AWS the function URL's instances and the queue's share no CPU);
5. reports ack latency, acks per second, CPU per ack, items applied per second, CPU per
   applied item (contact-events, the target; the relay, the emulator and watch for
   context), capacity per item type (EMF), a batch of statuses that change nothing, and
   20 probes of POST -> contact readable in DynamoDB, one at a time.

The figures go out as one markdown table, also written to .run/bench-webhooks.md.
"""

import argparse
import gc
import hashlib
import hmac
import json
import os
import random
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "localstack"))
from bench import restart_functions
from bench_capacity import APP_SECRET, emf_since, log_size
from local_aws import (
    ROOT,
    RUN,
    TABLE,
    WATCH,
    WEBHOOK_DLQ,
    WEBHOOK_QUEUE,
    client,
    cpu_seconds,
    function_processes,
    wait_for,
)

FUNCTION_URL_PATH = "/lambda-url/contact-events/"
# Function instances watch runs while measuring: one per core of this machine.
BENCH_INSTANCES = 2
# How long one of the relay's receives waits for a message (localstack/relay.py).
RELAY_LONG_POLL_SECONDS = 1
WABA_ID = "102290129340398"
ITEM_TYPES = ("whatsapp.message", "whatsapp.status", "whatsapp.preference")
# The capacity a queue batch's items share (contact-events' EMF EventType).
BATCH_TYPE = "whatsapp.batch"
# Valid UK mobiles (libphonenumber): seeded people, senders new to the book, probes.
SEEDED, NEW_SENDERS, PROBES = "447400{:06d}", "4479110{:05d}", "4479120{:05d}"


# --- bodies ---------------------------------------------------------------------------

def sign(raw):
    """The X-Hub-Signature-256 Meta sends: HMAC-SHA256 of the exact bytes."""
    return "sha256=" + hmac.new(APP_SECRET.encode(), raw, hashlib.sha256).hexdigest()


def item(field, key, obj, contact=None, kind=None):
    """One webhook item: `obj` goes in `value[key]` of a change of `field`; a message
    brings the sender's `contacts[]` entry; `kind` says what it is, for the counts."""
    return {"field": field, "key": key, "obj": obj, "contact": contact, "kind": kind or key}


def message(wa_id, wamid, at, name, kind="message"):
    """A text message from `wa_id` at unix time `at`."""
    return item("messages", "messages",
                {"from": wa_id, "id": wamid, "timestamp": str(at), "type": "text", "text": {"body": "Hi there"}},
                contact={"profile": {"name": name}, "wa_id": wa_id}, kind=kind)


def status(wa_id, wamid, state, at, kind=None):
    """A status of a message the business sent to `wa_id`; `failed` ones carry 131026."""
    obj = {"id": wamid, "status": state, "timestamp": str(at), "recipient_id": wa_id}
    if state == "failed":
        obj["errors"] = [{"code": 131026, "title": "Message undeliverable",
                          "error_data": {"details": "Message Undeliverable."}}]
    else:
        obj["conversation"] = {"id": uuid.uuid4().hex, "origin": {"type": "marketing"}}
        obj["pricing"] = {"billable": True, "pricing_model": "PMP", "category": "marketing"}
    return item("messages", "statuses", obj, kind=kind or f"status {state}")


def preference(wa_id, value, at):
    """A user_preferences item: the person stops or resumes marketing messages."""
    return item("user_preferences", "user_preferences",
                {"wa_id": wa_id, "category": "marketing_messages", "value": value, "timestamp": at},
                kind=f"preference {value}")


def entry(pnid, items):
    """One `entry` holding `items`, a change per field."""
    changes = []
    for field in ("messages", "user_preferences"):
        mine = [i for i in items if i["field"] == field]
        if not mine:
            continue
        value = {"messaging_product": "whatsapp",
                 "metadata": {"display_phone_number": "15550001111", "phone_number_id": pnid}}
        contacts = [i["contact"] for i in mine if i["contact"]]
        if contacts:
            value["contacts"] = contacts
        for key in ("messages", "statuses", "user_preferences"):
            objs = [i["obj"] for i in mine if i["key"] == key]
            if objs:
                value[key] = objs
        changes.append({"field": field, "value": value})
    return {"id": WABA_ID, "changes": changes}


def encode(pnid, groups):
    """A body of one entry per group of items, as the bytes POSTed and signed."""
    body = {"object": "whatsapp_business_account", "entry": [entry(pnid, g) for g in groups if g]}
    return json.dumps(body, separators=(",", ":")).encode()


def bodies_of(items, pnid, rng, multi_share=0.2):
    """(raw body, item count) pairs: most bodies carry one item, `multi_share` of them
    2-5 items split across 2 entries, as Meta batches under load."""
    bodies, i = [], 0
    while i < len(items):
        k = rng.randint(2, 5) if rng.random() < multi_share else 1
        group = items[i:i + k]
        i += len(group)
        half = (len(group) + 1) // 2
        bodies.append((encode(pnid, [group[:half], group[half:]]), len(group)))
    return bodies


def seed_bodies(pnid, people, at, per_body=20):
    """The seeded people's first messages, `per_body` to a body."""
    items = [message(SEEDED.format(p), f"wamid.seed.{p}", at, f"Person {p}") for p in range(people)]
    return [(encode(pnid, [items[i:i + per_body]]), len(items[i:i + per_body]))
            for i in range(0, len(items), per_body)]


def mix(n, people, seeded_at, rng):
    """`n` items in random order: 70 % statuses of seeded people (sent, delivered and read
    later than anything stored; 1 in 10 a delivered older than what is stored, which
    changes nothing; a few failed with 131026), 20 % messages (1 in 4 from a number new
    to the book), 10 % user_preferences of seeded people (a stop, or a resume: always
    after that person's stop, else 3 in 10). Every item is newer than the seed and than
    the items before it."""
    n_status, n_message = round(n * 0.7), round(n * 0.2)
    kinds = ["status"] * n_status + ["message"] * n_message + ["preference"] * (n - n_status - n_message)
    rng.shuffle(kinds)
    stopped, new_senders, out = set(), 0, []
    run = uuid.uuid4().hex[:8]
    for i, kind in enumerate(kinds):
        at = seeded_at + 60 + i
        p = rng.randrange(people)
        wa_id = SEEDED.format(p)
        if kind == "status":
            roll, wamid = rng.random(), f"wamid.out.{run}.{i}"
            if roll < 0.10:
                out.append(status(wa_id, wamid, "delivered", seeded_at - 3600 - i, kind="status delivered, older"))
            elif roll < 0.13:
                out.append(status(wa_id, wamid, "failed", at))
            else:
                out.append(status(wa_id, wamid, rng.choice(("sent", "delivered", "read")), at))
        elif kind == "message":
            if rng.random() < 0.25:
                wa_id, new_senders = NEW_SENDERS.format(new_senders), new_senders + 1
                out.append(message(wa_id, f"wamid.in.{run}.{i}", at, "New Person", kind="message, new number"))
            else:
                out.append(message(wa_id, f"wamid.in.{run}.{i}", at, f"Person {p}"))
        else:
            value = "resume" if wa_id in stopped or rng.random() < 0.3 else "stop"
            (stopped.add if value == "stop" else stopped.discard)(wa_id)
            out.append(preference(wa_id, value, at))
    return out


# --- posting --------------------------------------------------------------------------

def request_bytes(raw, host):
    """The whole HTTP/1.1 request of one signed POST, as sent."""
    head = (f"POST {FUNCTION_URL_PATH} HTTP/1.1\r\nHost: {host}\r\n"
            f"Content-Type: application/json\r\nX-Hub-Signature-256: {sign(raw)}\r\n"
            f"User-Agent: facebookexternalua\r\nContent-Length: {len(raw)}\r\n\r\n")
    return head.encode() + raw


async def read_status(reader):
    """Reads one HTTP/1.1 response (a Content-Length body); its status code."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next((int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:")), 0)
    await reader.readexactly(length)
    return int(lines[0].split()[1])


def post_all(bodies, concurrency):
    """POSTs every body from `concurrency` keep-alive connections at once (asyncio, one
    thread: each request is built and signed before the clock starts, so the client
    spends little of the machine's CPU). Returns (ack latencies in ms of the bodies
    answered 200, status code counts, items in the bodies answered 200, wall time of the
    first POST, seconds spent posting, connections re-opened)."""
    import asyncio

    url = urlsplit(WATCH)
    host = f"{url.hostname}:{url.port}"
    requests = [(request_bytes(raw, host), count) for raw, count in bodies]
    latencies, codes = [], Counter()
    state = {"next": 0, "items": 0, "reconnects": 0}

    async def worker():
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        while state["next"] < len(requests):
            request, count = requests[state["next"]]
            state["next"] += 1
            for attempt in range(3):
                start = time.perf_counter()
                try:
                    writer.write(request)
                    code = await read_status(reader)
                    break
                except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                    writer.close()  # watch dropped the connection: open another, send again
                    reader, writer = await asyncio.open_connection(url.hostname, url.port)
                    state["reconnects"] += 1
                    code = "connection error" if attempt == 2 else None
            elapsed = (time.perf_counter() - start) * 1000
            codes[code] += 1
            if code == 200:
                latencies.append(elapsed)
                state["items"] += count
        writer.close()

    async def run():
        await asyncio.gather(*(worker() for _ in range(concurrency)))

    first_post, start = time.time(), time.monotonic()
    # The client's own garbage collections would stop every connection at once and be
    # timed as the server's.
    gc.disable()
    try:
        asyncio.run(run())
    finally:
        gc.enable()
    return latencies, codes, state["items"], first_post, time.monotonic() - start, state["reconnects"]


# --- what the stack did ---------------------------------------------------------------

class Stack:
    """What the benchmark reads and writes through the emulator: the webhook queues and
    the table; and the wait for items to be applied."""

    def __init__(self):
        self.sqs, self.ddb = client("sqs"), client("dynamodb")
        self.queue = self.sqs.get_queue_url(QueueName=WEBHOOK_QUEUE)["QueueUrl"]
        self.dlq = self.sqs.get_queue_url(QueueName=WEBHOOK_DLQ)["QueueUrl"]

    def depth(self, url=None):
        """Messages on a queue (the webhook queue by default), visible or in flight."""
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=url or self.queue,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])

    def in_flight(self):
        """Messages of the webhook queue received and not yet deleted."""
        return int(self.sqs.get_queue_attributes(
            QueueUrl=self.queue, AttributeNames=["ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]["ApproximateNumberOfMessagesNotVisible"])

    def business_number(self, account):
        """A fresh business number (phone_number_id) of `account`."""
        pnid = str(time.time_ns())
        self.ddb.put_item(TableName=TABLE, Item={
            "pk": {"S": f"WABA#{pnid}"}, "sk": {"S": "ACCOUNT"},
            "account_id": {"S": account}, "channel": {"S": "whatsapp"}})
        return pnid

    def contact_exists(self, account, wa_id):
        key = {"pk": {"S": f"CONTACT#{account}#whatsapp#+{wa_id}"}, "sk": {"S": "PROFILE"}}
        return "Item" in self.ddb.get_item(TableName=TABLE, Key=key, ConsistentRead=True)

    def wait_applied(self, offset, items, what):
        """Waits until the bodies' EMF lines written after `offset` account for `items`
        items and the queue is empty; returns those EMF lines. Gives up only when
        nothing moves (local_aws.wait_for)."""
        seen = {}

        def poll():
            lines = emf_since(offset)
            seen["done"] = accounted(lines)
            return seen["done"] >= items and self.depth() == 0 and lines

        def progress():
            return seen.get("done"), self.depth(), round(cpu_by_process()["contact-events"], 1)

        return wait_for(poll, progress, f"bench-webhooks: waiting for {items} {what} items to be applied",
                        interval=0.5)


def accounted(lines):
    """Items the bodies' EMF lines account for: applied, invalid, or for an unknown number."""
    return sum(line.get("WebhookItemsApplied", 0) + line.get("WebhookInvalidItems", 0)
               + line.get("WebhookUnknownNumberItems", 0) for line in lines)


def own_processes(*names):
    """The processes up.sh started under `names` (pid files in .run/) that still run."""
    import psutil

    found = []
    for name in names:
        try:
            found.append(psutil.Process(int((RUN / f"{name}.pid").read_text())))
        except (OSError, ValueError, psutil.Error):
            pass  # not started by up.sh (e.g. LocalStack), or gone
    return found


def cpu_by_process():
    """CPU seconds (user + system, all threads) of the contact-events processes under
    watch, summed, and of the relay, the emulator (moto's edge and dynoxide) and watch
    itself (its Lambda runtime API); keyed by those names. A function process watch
    starts later counts from zero, so take differences with `cpu_spent`."""
    functions = {p.pid: cpu_seconds([p]) for p in function_processes("contact-events")}
    return {"contact-events": sum(functions.values()), "functions": functions,
            "relay": cpu_seconds(own_processes("relay")), "emulator": cpu_seconds(own_processes("emulator", "dynoxide")),
            "watch": cpu_seconds(own_processes("watch"))}


def cpu_spent(before, after):
    """CPU seconds each part spent between two `cpu_by_process` readings."""
    functions = sum(cpu - before["functions"].get(pid, 0.0) for pid, cpu in after["functions"].items())
    return {"contact-events": functions,
            **{k: after[k] - before[k] for k in ("relay", "emulator", "watch")}}


def build_profile():
    """release or debug: what the running contact-events processes were built as."""
    import psutil

    for p in function_processes("contact-events"):
        try:
            exe = " ".join(p.cmdline())
        except psutil.Error:
            continue
        if "/release/" in exe:
            return "release"
        if "/debug/" in exe:
            return "debug"
    return "unknown"


def stack_shape():
    """How many function instances watch runs at most and how many pollers the relay
    has, from their command line and environment."""
    import psutil

    concurrency, pollers, batch = "?", "2", "100"
    for watch in own_processes("watch"):
        try:
            args = watch.cmdline()
            concurrency = args[args.index("--concurrency") + 1] if "--concurrency" in args else "default"
        except psutil.Error:
            pass
    for relay in own_processes("relay"):
        try:
            env = relay.environ()
            pollers = env.get("RELAY_WEBHOOK_WORKERS", pollers)
            batch = env.get("RELAY_WEBHOOK_BATCH_SIZE", batch)
        except psutil.Error:
            pass
    return f"watch --concurrency {concurrency}, relay {pollers} pollers x up to {batch} records"


def capacity(lines):
    """Per item type: (items, mean write units, mean read units, mean requests) of the
    items' own requests, from contact-events' EMF lines (one per type and body or queue
    batch, `EventItems` items each)."""
    out = {}
    for kind in ITEM_TYPES:
        mine = [line for line in lines if line.get("EventType") == kind and "EventWriteUnits" in line]
        n = sum(m.get("EventItems", 1) for m in mine)
        if n:
            out[kind] = (n, sum(m["EventWriteUnits"] for m in mine) / n, sum(m["EventReadUnits"] for m in mine) / n,
                         sum(m["EventRequests"] for m in mine) / n)
    return out


def shared(lines):
    """What the batches' shared requests spent (reading a batch's people and recording
    its messages ahead, then its held writes and answers sent together; EMF EventType
    `whatsapp.batch`): (write units, read units, requests), summed."""
    mine = [line for line in lines if line.get("EventType") == BATCH_TYPE and "EventWriteUnits" in line]
    return (sum(m["EventWriteUnits"] for m in mine), sum(m["EventReadUnits"] for m in mine),
            sum(m["EventRequests"] for m in mine))


def percentile(values, q):
    """The q-th percentile (nearest rank) of `values`, or nan when there are none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def codes_of(codes):
    """Status code counts as `200: 2999, 500: 1`."""
    return ", ".join(f"{code}: {n}" for code, n in sorted(codes.items(), key=str))


def spread(values, unit="ms"):
    return (f"p50 {percentile(values, 50):.0f} {unit}, p99 {percentile(values, 99):.0f} {unit}, "
            f"max {max(values, default=float('nan')):.0f} {unit} (n = {len(values)})")


def probe(stack, account, pnid, times=20):
    """POSTs one message from a brand-new number `times` times, one after another, and
    polls GetItem (through the edge) until the contact exists: POST -> visible, in ms."""
    delays = []
    for k in range(times):
        wa_id = PROBES.format(k)
        raw = encode(pnid, [[message(wa_id, f"wamid.probe.{uuid.uuid4().hex}", int(time.time()), "Probe")]])
        start = time.monotonic()
        _, codes, *_ = post_all([(raw, 1)], 1)
        if codes.get(200) != 1:
            raise SystemExit(f"bench-webhooks: a probe was answered {dict(codes)}")
        wait_for(lambda wa_id=wa_id: stack.contact_exists(account, wa_id),
                 lambda: round(cpu_by_process()["contact-events"], 2),
                 f"bench-webhooks: waiting for probe contact +{wa_id}", interval=0.005)
        delays.append((time.monotonic() - start) * 1000)
    return delays


# --- the run --------------------------------------------------------------------------

def seed(stack, account, pnid, args, seeded_at):
    """Seeds `args.people` contacts through the function URL and waits until they exist."""
    offset = log_size()
    _, codes, seeded, *_ = post_all(seed_bodies(pnid, args.people, seeded_at), args.concurrency)
    if seeded != args.people:
        raise SystemExit(f"bench-webhooks: seeding was answered {codes_of(codes)}")
    stack.wait_applied(offset, seeded, "seed")
    if not stack.contact_exists(account, SEEDED.format(args.people - 1)):
        raise SystemExit("bench-webhooks: the last seeded contact is not in the table")
    print(f"bench-webhooks: {args.people} contacts seeded", flush=True)


def paused(stack):
    """The relay's webhook pollers paused (localstack/relay.py) until the `with` block
    ends, once nothing they received is still in flight and contact-events is idle."""
    import contextlib

    flag = RUN / "relay.pause-webhooks"

    @contextlib.contextmanager
    def pause():
        flag.touch()
        try:
            # A long poll the relay began before the flag (1 s, relay.py's receive) may
            # still bring a batch, which it then applies: let it end first.
            time.sleep(RELAY_LONG_POLL_SECONDS + 0.5)
            wait_for(lambda: stack.in_flight() == 0, lambda: round(cpu_by_process()["contact-events"], 2),
                     "bench-webhooks: waiting for the relay's last batch", interval=0.1)
            settle()
            yield
        finally:
            flag.unlink(missing_ok=True)

    return pause()


def settle(interval=0.5):
    """Waits until contact-events has finished what it was doing: its CPU time stops
    moving for `interval` seconds."""
    before = None
    while True:
        now = round(cpu_by_process()["contact-events"], 2)
        if now == before:
            return
        before = now
        time.sleep(interval)


def measure_mix(stack, bodies, concurrency):
    """POSTs the mix with the apply side paused, then lets it apply the queue; what was
    measured, by name. The phases are apart because the two cores here would otherwise
    measure the acks' and the applies' contention with each other: on AWS the function
    URL's instances and the queue's never share a CPU."""
    if not own_processes("relay"):
        raise SystemExit("bench-webhooks: the relay (started by make up) does not run")
    offset = log_size()
    with paused(stack):
        cpu0 = cpu_by_process()
        latencies, codes, posted, _, posting, reconnects = post_all(bodies, concurrency)
        cpu1 = cpu_by_process()
        backlog = stack.depth()
    applying = time.time()
    print(f"bench-webhooks: {len(bodies)} bodies ({posted} items) posted in {posting:.1f} s: {codes_of(codes)}; "
          f"{backlog} on the queue; applying them", flush=True)
    lines = stack.wait_applied(offset, posted, "posted")
    last_applied = max(line["_aws"]["Timestamp"] for line in lines if "WebhookItemsApplied" in line) / 1000
    return {"latencies": latencies, "codes": codes, "posted": posted, "posting": posting,
            "reconnects": reconnects, "backlog": backlog, "window": last_applied - applying,
            "ack_cpu": cpu_spent(cpu0, cpu1), "apply_cpu": cpu_spent(cpu1, cpu_by_process()),
            "units": capacity(lines), "shared": shared(lines), "applied": accounted(lines)}


def measure_noop(stack, pnid, people, seeded_at, concurrency):
    """Statuses that change nothing (delivered, older than what each contact holds), one
    per body: (acks' status codes, their capacity line of `capacity`)."""
    noop = [(encode(pnid, [[status(SEEDED.format(p), f"wamid.noop.{p}", "delivered", seeded_at - 7200)]]), 1)
            for p in range(0, people, max(1, people // 200))]
    offset = log_size()
    _, codes, posted, *_ = post_all(noop, concurrency)
    lines = stack.wait_applied(offset, posted, "no-op status")
    return codes, capacity(lines).get("whatsapp.status"), shared(lines)


def run(args):
    """Seeds, measures; returns the table's (measure, value) rows, the build profile
    and the checks that failed."""
    stack, rng = Stack(), random.Random(args.seed)
    account = "bench-webhooks-" + uuid.uuid4().hex[:8]
    pnid = stack.business_number(account)
    seeded_at = int(time.time()) - 86400
    profile, shape = build_profile(), stack_shape()
    dlq_before = stack.depth(stack.dlq)
    print(f"bench-webhooks: account {account}, business number {pnid}, {profile} build", flush=True)
    seed(stack, account, pnid, args, seeded_at)
    items = mix(args.items, args.people, seeded_at, rng)
    bodies = bodies_of(items, pnid, rng)
    m = measure_mix(stack, bodies, args.concurrency)
    noop_codes, noop_units, noop_shared = measure_noop(stack, pnid, args.people, seeded_at, args.concurrency)
    probes = probe(stack, account, pnid)
    dlq_new = stack.depth(stack.dlq) - dlq_before

    posted, kinds, failed = m["posted"], Counter(i["kind"] for i in items), []
    non_200 = sum(n for code, n in {**m["codes"], **noop_codes}.items() if code != 200)
    if non_200:
        failed.append(f"{non_200} POST(s) not answered 200")
    status_codes = codes_of(m["codes"]) + (f" ({m['reconnects']} connections re-opened)" if m["reconnects"] else "")
    multi = sum(1 for _, n in bodies if n > 1)
    build = "restarted in release" if args.restart else "as running, --no-restart"
    rows = [
        ("build", f"{profile} ({build}); {shape}"),
        ("items posted (bodies)",
         f"{posted} ({len(bodies)} bodies, {multi} with 2-5 items across 2 entries); {args.people} contacts seeded"),
        ("mix", "; ".join(f"{kind} {n}" for kind, n in sorted(kinds.items()))),
        (f"ack latency, {args.concurrency} concurrent keep-alive connections (apply side paused)",
         spread(m["latencies"])),
        ("ack status codes", status_codes),
        ("acks per second (bodies)", f"{len(bodies) / m['posting']:.0f} ({posted / m['posting']:.0f} items/s)"),
        ("CPU per ack: contact-events / cargo lambda watch / emulator (moto's SQS)",
         " / ".join(f"{m['ack_cpu'][part] / len(bodies) * 1e6:.0f} us" for part in ("contact-events", "watch", "emulator"))),
        (f"items applied per second (the queue's {m['backlog']} bodies, from resuming the relay)",
         f"{posted / m['window']:.0f} ({m['window']:.1f} s)"),
        ("items applied from the queue (EMF)", f"{m['applied']:.0f} for {m['codes'][200]} bodies acked 200"),
        ("POST -> contact readable, new number, one at a time (GetItem polled)", spread(probes)),
    ]
    for part, label in (("contact-events", "contact-events"), ("relay", "relay (SQS poller)"),
                        ("emulator", "emulator (moto's SQS, dynoxide)"), ("watch", "cargo lambda watch")):
        rows.append((f"CPU per applied item, {label}", f"{m['apply_cpu'][part] / m['applied'] * 1e6:.0f} us"))
    for kind in ITEM_TYPES:
        if kind in m["units"]:
            n, w, r, req = m["units"][kind]
            rows.append((f"capacity per item, {kind} ({n} applied), its own requests",
                         f"{w:.2f} WU, {r:.2f} RU, {req:.3f} requests"))
    w, r, req = m["shared"]
    rows.append(("capacity shared by a batch's items (read ahead, writes and answers sent together), per applied item",
                 f"{w / m['applied']:.2f} WU, {r / m['applied']:.2f} RU, {req / m['applied']:.3f} requests"))
    own = [(n * w, n * r, n * q) for n, w, r, q in m["units"].values()]
    total = [(sum(o[i] for o in own) + extra) / m["applied"] for i, extra in enumerate((w, r, req))]
    rows.append(("capacity per applied item, all told (the items' own + shared)",
                 f"{total[0]:.2f} WU, {total[1]:.2f} RU, {total[2]:.3f} requests"))
    if noop_units:
        n, w, r, req = noop_units
        sw, sr, sreq = noop_shared
        w, r, req = w + sw / n, r + sr / n, req + sreq / n
        if w != 0:
            failed.append(f"statuses that change nothing spent {w:.2f} write units each")
        rows.append((f"statuses that change nothing ({n} delivered, older than stored; own + shared)",
                     f"{w:.2f} WU ({'ok' if w == 0 else 'NOT 0'}), {r:.2f} RU, {req:.3f} requests per item"))
    rows.append(("dead-letter queue", f"{dlq_new} new message(s)"))
    return rows, profile, failed


def restart_watch(release):
    """bench.py's restart of watch (release or debug builds), after building what watch
    will run, as up.sh does: a build that fails leaves the running watch alone."""
    profile = ["--release"] if release else []
    for binary in ("import-contacts", "contact-events"):
        build = subprocess.run(["cargo", "build", *profile, "--bin", binary], cwd=ROOT, check=False,
                               capture_output=True, text=True)
        if build.returncode:
            raise SystemExit(f"bench-webhooks: cargo build {' '.join(profile)} --bin {binary} failed; "
                             f"watch left as it runs:\n{build.stderr[-3000:]}")
    restart_functions(release=release)


def markdown(rows, profile):
    """The table, with its title line."""
    lines = [f"WhatsApp webhooks through the function URL ({profile} build, `make bench-webhooks`)", "",
             "| measure | value |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=3000, help="items to post (default 3000)")
    parser.add_argument("--people", type=int, default=2000, help="contacts to seed first (default 2000)")
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent POSTs (default 32)")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the mix (default 1)")
    parser.add_argument("--no-restart", dest="restart", action="store_false",
                        help="measure the running build; do not restart watch in release")
    args = parser.parse_args()
    if args.restart:
        # CPU per item is what Lambda runs: the release build, not watch's default debug
        # one; and one instance of each function per core (make up's 4 let the tests'
        # imports run side by side), so that an instance's concurrent POSTs share sends.
        os.environ["WATCH_CONCURRENCY"] = str(BENCH_INSTANCES)
        restart_watch(release=True)
    try:
        rows, profile, failed = run(args)
    finally:
        if args.restart:
            os.environ.pop("WATCH_CONCURRENCY", None)
            restart_watch(release=False)
    table = markdown(rows, profile)
    print("\n" + table)
    (RUN / "bench-webhooks.md").write_text(table)
    if failed:
        raise SystemExit("bench-webhooks: " + "; ".join(failed))


if __name__ == "__main__":
    main()
