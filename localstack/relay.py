#!/usr/bin/env python3
"""Local stand-in for AWS's S3 -> Lambda integration (DESIGN.md section 11).

Polls the queue the bucket notifies, and invokes import-contacts through the Lambda
runtime API of `cargo lambda watch` with the emulator's own S3 event. It drops
`s3:TestEvent` messages, and adds to each S3 record only the fields AWS always sends and
moto omits (`userIdentity`, `requestParameters`, `responseElements`); everything else,
URL-encoded key included, passes through exactly as the emulator wrote it.

Like Lambda's asynchronous invoke, a failed invoke is retried twice, then dropped (here:
logged). Several workers, so several uploads import at once. One log line per message.

It also stands in for Lambda's asynchronous Invoke API (`InvocationType=Event`), which
`cargo lambda watch` lacks (it always answers synchronously): on RELAY_LAMBDA_PORT (9001)
it accepts `POST /2015-03-31/functions/{name}/invocations`, answers 202 at once, and
invokes the function through watch in the background with the same retries. An import
that runs short of time continues itself this way (AWS_ENDPOINT_URL_LAMBDA points here).

And it stands in for Lambda's SQS event source mapping with ReportBatchItemFailures on the
WhatsApp webhook queue (contact-events queues each signed webhook body there and answers
Meta at once; DESIGN.md section 13). RELAY_WEBHOOK_WORKERS (2) pollers each gather up to
RELAY_WEBHOOK_BATCH_SIZE messages (100, the template's BatchSize; long polls of up to 10,
SQS's limit, all attributes) for at most RELAY_WEBHOOK_BATCH_WINDOW seconds (1, the
template's batching window), invoke contact-events synchronously with the SQS
event AWS builds (`Records` of `messageId`, `receiptHandle`, `body`, `attributes`,
`messageAttributes`, `md5OfBody`, `eventSource: aws:sqs`, `eventSourceARN`,
`awsRegion`), and delete every message but those the answer's `batchItemFailures` names.
As on AWS, a function error, an unreadable answer or an identifier not in the batch
deletes nothing: the messages come back after the queue's visibility timeout (90 s
locally). The queue's own RedrivePolicy moves a message to the dead-letter queue after
WEBHOOK_MAX_RECEIVE_COUNT receives: moto (5.2.5, checked) and LocalStack both redrive, so
the relay does not. A poller receives only while watch listens, so restarting watch does
not use up a message's receives. One log line per batch, never a body (bodies hold
personal data). While the file .run/relay.pause-webhooks exists the pollers receive
nothing (a batch being gathered is closed and invoked as it is): `make bench-webhooks`
times the acks with the apply side paused so. (A stopped process would not do: a long
poll answered while it is stopped is lost, and its messages wait out the visibility
timeout.)
"""
import base64
import json
import os
import queue
import re
import secrets
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from local_aws import QUEUE, REGION, WEBHOOK_MAX_RECEIVE_COUNT, WEBHOOK_QUEUE, client

WATCH = os.environ.get("RELAY_WATCH_URL", "http://127.0.0.1:9000")
LAMBDA_PORT = int(os.environ.get("RELAY_LAMBDA_PORT", "9001"))
INVOCATIONS = re.compile(r"^/2015-03-31/functions/([A-Za-z0-9_.:-]+)/invocations$")
WORKERS = int(os.environ.get("RELAY_WORKERS", "4"))
WEBHOOK_WORKERS = int(os.environ.get("RELAY_WEBHOOK_WORKERS", "2"))
# Lambda's BatchSize and MaximumBatchingWindowInSeconds for the webhook queue
# (infra/template.yaml: 100 and 1).
WEBHOOK_BATCH_SIZE = int(os.environ.get("RELAY_WEBHOOK_BATCH_SIZE", "100"))
WEBHOOK_BATCH_WINDOW = float(os.environ.get("RELAY_WEBHOOK_BATCH_WINDOW", "1"))
WEBHOOKS_PAUSED = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".run",
                               "relay.pause-webhooks")
RETRY_DELAYS = (1, 2)  # AWS waits 1 and 2 minutes; seconds are enough locally
INVOKE_TIMEOUT = int(os.environ.get("RELAY_INVOKE_TIMEOUT", "900"))  # Lambda's maximum run time
# Lambda's service does not go away; watch does, while `make up` or a test restarts it.
# An invoke that cannot connect is not an attempt: wait for watch up to this long.
WATCH_DOWN_SECONDS = int(os.environ.get("RELAY_WATCH_DOWN_SECONDS", "600"))
sqs = client("sqs")
# watch's Lambda Invoke API. The relay retries on its own schedule (RETRY_DELAYS, like
# Lambda's asynchronous invoke), so botocore must not retry an invoke as well: a retried
# invoke would run the function again at once.
lam = client("lambda", endpoint_url=WATCH, retries={"total_max_attempts": 1},
             read_timeout=INVOKE_TIMEOUT, connect_timeout=10,
             max_pool_connections=WORKERS + WEBHOOK_WORKERS + 4)


def keep_error_body(response_dict, customized_response_dict, **_):
    """watch answers a function error with HTTP 500 and the runtime's error document
    ({"errorType", "errorMessage"}), which botocore's error parser does not keep: add
    the body to the error response, for the log."""
    if response_dict["status_code"] >= 300:
        customized_response_dict["Body"] = bytes(response_dict["body"]).decode(errors="replace")


lam.meta.events.register("before-parse.lambda.Invoke", keep_error_body)


def log(msg):
    print(f"{time.strftime('%H:%M:%S')} relay[{threading.current_thread().name}] {msg}", flush=True)


def with_aws_fields(record):
    """The record plus what AWS always sends and moto leaves out, only where absent."""
    record = dict(record)
    record.setdefault("userIdentity", {"principalId": "AWS:AIDALOCALRELAY"})
    record.setdefault("requestParameters", {"sourceIPAddress": "127.0.0.1"})
    record.setdefault("responseElements", {
        "x-amz-request-id": secrets.token_hex(8).upper(),
        "x-amz-id-2": base64.b64encode(secrets.token_bytes(48)).decode(),
    })
    return record


def invoke(event, function="import-contacts"):
    """(ok, short description): the function's answer, or what went wrong."""
    down_since = time.monotonic()
    while True:
        try:
            resp = lam.invoke(FunctionName=function, Payload=json.dumps(event).encode())
            break
        except EndpointConnectionError as e:  # watch is not listening (being restarted)
            if time.monotonic() - down_since > WATCH_DOWN_SECONDS:
                return False, f"watch did not listen for {WATCH_DOWN_SECONDS}s: {e!r}"
            time.sleep(1)
        except ClientError as e:  # watch answered with an error status
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            return False, f"HTTP {status} {e.response.get('Body') or e.response.get('Error')}"
        except BotoCoreError as e:  # reset, timed out
            return False, repr(e)
    body = resp["Payload"].read().decode(errors="replace")
    if resp.get("FunctionError"):
        return False, f"function error ({resp['FunctionError']}) {body}"
    return True, body


def handle(body):
    """One line describing what became of one queue message."""
    try:
        message = json.loads(body)
    except ValueError:
        return f"dropped a message that is not JSON: {body[:200]!r}"
    if message.get("Event") == "s3:TestEvent":
        return "dropped s3:TestEvent"
    records = message.get("Records")
    if not records or any(r.get("eventSource") != "aws:s3" for r in records):
        return f"dropped a message that is not an S3 event: {body[:200]!r}"
    event = {**message, "Records": [with_aws_fields(r) for r in records]}
    return invoke_with_retries(event, "import-contacts")


def keys_of(event):
    records = event.get("Records") if isinstance(event, dict) else None
    if not records:
        return "event"
    return " ".join(r.get("s3", {}).get("object", {}).get("key", "?") for r in records)


def invoke_with_retries(event, function):
    keys = keys_of(event)
    start = time.monotonic()
    for attempt, delay in enumerate((0, *RETRY_DELAYS), start=1):
        time.sleep(delay)
        ok, answer = invoke(event, function)
        if ok:
            return f"{keys} -> {function} ok in {time.monotonic() - start:.1f}s: {answer[:300]}"
    return f"{keys} -> {function} FAILED after {attempt} attempts, dropped: {answer[:500]}"


ASYNC_INVOKES = queue.Queue()


class AsyncInvokeApi(BaseHTTPRequestHandler):
    """Lambda's Invoke with InvocationType=Event: 202 now, the invoke later."""

    def log_message(self, *args):
        pass

    def answer(self, status, doc=None):
        body = b"" if doc is None else json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        match = INVOCATIONS.match(self.path.split("?", 1)[0])
        payload = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if not match:
            return self.answer(404, {"Type": "User", "message": f"unknown path {self.path}"})
        if self.headers.get("X-Amz-Invocation-Type", "RequestResponse") != "Event":
            return self.answer(400, {"Type": "User", "message": "only InvocationType=Event is relayed; invoke watch on 9000 directly"})
        try:
            event = json.loads(payload or b"{}")
        except ValueError:
            return self.answer(400, {"Type": "User", "message": "payload is not JSON"})
        function = match.group(1).rsplit(":", 1)[-1] if match.group(1).startswith("arn:") else match.group(1)
        ASYNC_INVOKES.put((function, event))
        log(f"{keys_of(event)} -> {function} queued (asynchronous invoke)")
        self.answer(202)


def async_worker():
    while True:
        function, event = ASYNC_INVOKES.get()
        try:
            log(invoke_with_retries(event, function))
        except Exception as e:  # noqa: BLE001 - one bad invoke must not stop the worker
            log(f"error invoking {function}, dropped: {e!r}")


def worker(queue_url):
    while True:
        try:
            resp = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=10)
        except Exception as e:  # noqa: BLE001 - the emulator restarting must not kill the relay
            log(f"receive failed: {e!r}")
            time.sleep(2)
            continue
        for m in resp.get("Messages", []):
            try:
                log(handle(m["Body"]))
            except Exception as e:  # noqa: BLE001 - one bad message must not stop the worker
                log(f"error handling a message, dropped: {e!r}")
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])


def sqs_record(message, queue_arn):
    """One message as Lambda's SQS event source mapping hands it to the function."""
    record = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {name: message_attribute(value)
                              for name, value in message.get("MessageAttributes", {}).items()},
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def b64(data):
    return base64.b64encode(data).decode()


def message_attribute(value):
    """ReceiveMessage's attribute (binary as bytes) as Lambda's record has it (base64)."""
    out = {}
    if "StringValue" in value:
        out["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        out["binaryValue"] = b64(value["BinaryValue"])
    out["stringListValues"] = list(value.get("StringListValues", []))
    out["binaryListValues"] = [b64(v) for v in value.get("BinaryListValues", [])]
    out["dataType"] = value["DataType"]
    return out


def failed_items(answer, message_ids):
    """The message ids to keep, by Lambda's rules for ReportBatchItemFailures: no answer,
    `{}`, or a null or empty `batchItemFailures` is a complete success; an answer that is
    not JSON, or an item whose `itemIdentifier` is missing, empty or not in the batch, is
    a complete failure (every message kept)."""
    try:
        doc = json.loads(answer) if answer.strip() else None
    except ValueError:
        return set(message_ids), "an answer that is not JSON"
    failures = doc.get("batchItemFailures") if isinstance(doc, dict) else None
    if not failures:
        return set(), None
    if not isinstance(failures, list):
        return set(message_ids), "batchItemFailures is not a list"
    kept = set()
    for item in failures:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not identifier or identifier not in message_ids:
            return set(message_ids), f"an itemIdentifier not in the batch: {identifier!r}"
        kept.add(identifier)
    return kept, None


def wait_for_watch():
    """Lambda's service is always there; watch is not while it restarts. A message
    received meanwhile would use up its receives (and reach the dead-letter queue) for
    nothing, so receive only while watch accepts connections."""
    host, port = WATCH.split("//", 1)[-1].rstrip("/").rsplit(":", 1)
    waited = False
    while True:
        try:
            socket.create_connection((host, int(port)), timeout=2).close()
            if waited:
                log(f"webhooks: {WATCH} listens again")
            return
        except OSError:
            if not waited:
                log(f"webhooks: waiting for {WATCH} to listen")
            waited = True
            time.sleep(1)


def webhook_queue():
    """(url, arn) of the webhook queue, once it exists (init.py creates it)."""
    waited = False
    while True:
        try:
            url = sqs.get_queue_url(QueueName=WEBHOOK_QUEUE)["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            if waited:
                log(f"webhooks: polling {url}")
            return url, arn
        except Exception as e:  # noqa: BLE001 - wait for init.py, or for the emulator
            if not waited:
                log(f"webhooks: waiting for queue {WEBHOOK_QUEUE}: {e!r}")
            waited = True
            time.sleep(2)


def webhook_batch(url, arn, messages):
    """Invokes contact-events with one batch, deletes what succeeded; one line for the log."""
    start = time.monotonic()
    event = {"Records": [sqs_record(m, arn) for m in messages]}
    ids = {m["MessageId"] for m in messages}
    receives = max(int(m.get("Attributes", {}).get("ApproximateReceiveCount", 1)) for m in messages)
    what = (f"webhooks: {len(messages)} record(s), receive {receives} of {WEBHOOK_MAX_RECEIVE_COUNT}"
            " -> contact-events")
    ok, answer = invoke(event, "contact-events")
    if not ok:
        return (f"{what} FAILED in {time.monotonic() - start:.1f}s, all kept for a retry: "
                f"{answer[:300]}")
    kept, why = failed_items(answer, ids)
    done = [m for m in messages if m["MessageId"] not in kept]
    undeleted = 0
    for i in range(0, len(done), 10):
        entries = [{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(done[i:i + 10])]
        try:
            undeleted += len(sqs.delete_message_batch(QueueUrl=url, Entries=entries).get("Failed", []))
        except Exception as e:  # noqa: BLE001 - they come back and are applied again, idempotently
            log(f"webhooks: delete failed: {e!r}")
            undeleted += len(entries)
    line = f"{what} in {time.monotonic() - start:.1f}s: {len(kept)} failed"
    if why:
        line += f" (the whole batch: {why})"
    elif kept:
        line += f" ({' '.join(sorted(kept))})"
    line += f", {len(done) - undeleted} deleted"
    if undeleted:
        line += f", {undeleted} not deleted (they come again)"
    return line


def receive_batch(url):
    """Up to WEBHOOK_BATCH_SIZE messages, as Lambda's poller gathers a batch: it waits for the first, then
    keeps receiving until the batch is full or WEBHOOK_BATCH_WINDOW seconds have passed
    (the template's MaximumBatchingWindowInSeconds)."""
    def receive(wait):
        return sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=min(10, WEBHOOK_BATCH_SIZE - len(messages)), WaitTimeSeconds=wait,
            AttributeNames=["All"], MessageAttributeNames=["All"],
        ).get("Messages", [])

    messages = []
    messages += receive(1)
    window_ends = time.monotonic() + WEBHOOK_BATCH_WINDOW
    while messages and len(messages) < WEBHOOK_BATCH_SIZE and time.monotonic() < window_ends and not os.path.exists(WEBHOOKS_PAUSED):
        # A long poll answers as soon as one message is there; an empty answer (a
        # second's wait) means nothing more is coming soon: the batch goes as it is.
        more = receive(1)
        if not more:
            break
        messages += more
    return messages


def webhook_worker():
    """Lambda's SQS poller for contact-events, with ReportBatchItemFailures."""
    url = arn = None
    while True:
        if url is None:
            url, arn = webhook_queue()
        wait_for_watch()
        if os.path.exists(WEBHOOKS_PAUSED):
            time.sleep(0.05)
            continue
        try:
            messages = receive_batch(url)
        except Exception as e:  # noqa: BLE001 - the emulator restarting must not kill the relay
            log(f"webhooks: receive failed: {e!r}")
            url = None  # look the queue up again (and wait for it): the emulator may have restarted
            time.sleep(2)
            continue
        if messages:
            try:
                log(webhook_batch(url, arn, messages))
            except Exception as e:  # noqa: BLE001 - the batch comes back after the visibility timeout
                log(f"webhooks: error handling a batch of {len(messages)}, kept for a retry: {e!r}")


def main():
    threads = [threading.Thread(target=webhook_worker, name=f"webhooks{i}", daemon=True)
               for i in range(WEBHOOK_WORKERS)]
    for t in threads:
        t.start()
    while True:
        try:
            queue_url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
            break
        except Exception as e:  # noqa: BLE001 - wait for init.py
            log(f"waiting for queue {QUEUE}: {e!r}")
            time.sleep(2)
    server = ThreadingHTTPServer(("127.0.0.1", LAMBDA_PORT), AsyncInvokeApi)
    threading.Thread(target=server.serve_forever, name="invoke-api", daemon=True).start()
    log(f"polling {queue_url} with {WORKERS} workers -> {WATCH} (import-contacts); "
        f"asynchronous Invoke API on 127.0.0.1:{LAMBDA_PORT}; "
        f"{WEBHOOK_WORKERS} pollers on {WEBHOOK_QUEUE} -> contact-events")
    started = [threading.Thread(target=worker, args=(queue_url,), name=str(i), daemon=True)
               for i in range(WORKERS)]
    started += [threading.Thread(target=async_worker, name=f"async{i}", daemon=True) for i in range(2)]
    for t in started:
        t.start()
    threads += started
    for t in threads:
        t.join()


if __name__ == "__main__":
    main()
