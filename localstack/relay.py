#!/usr/bin/env python3
"""Local stand-in for AWS's S3 -> Lambda integration (DESIGN.md section 11).

Polls the queue the bucket notifies, and invokes import-contacts through the Lambda
runtime API of `cargo lambda watch` with the emulator's own S3 event. It drops
`s3:TestEvent` messages, and adds to each S3 record only the fields AWS always sends and
moto omits (`userIdentity`, `requestParameters`, `responseElements`); everything else,
URL-encoded key included, passes through exactly as the emulator wrote it.

Like Lambda's asynchronous invoke, a failed invoke is retried twice, then dropped (here:
logged). Several workers, so several uploads import at once. One log line per message.
"""
import base64
import json
import os
import secrets
import threading
import time
import urllib.error
import urllib.request

import boto3

ENDPOINT = os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
QUEUE = os.environ.get("CONTACTS_QUEUE", "contact-uploads-events")
INVOKE_URL = os.environ.get("RELAY_INVOKE_URL",
                            "http://127.0.0.1:9000/2015-03-31/functions/import-contacts/invocations")
WORKERS = int(os.environ.get("RELAY_WORKERS", "4"))
RETRY_DELAYS = (1, 2)  # AWS waits 1 and 2 minutes; seconds are enough locally
INVOKE_TIMEOUT = int(os.environ.get("RELAY_INVOKE_TIMEOUT", "900"))  # Lambda's maximum run time
sqs = boto3.client("sqs", endpoint_url=ENDPOINT, region_name="us-east-1",
                   aws_access_key_id="test", aws_secret_access_key="test")


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


def invoke(event):
    """(ok, short description). A function error comes back as HTTP 500 with errorType."""
    req = urllib.request.Request(INVOKE_URL, data=json.dumps(event).encode(),
                                 headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=INVOKE_TIMEOUT) as resp:
            body = resp.read().decode(errors="replace")
        return True, body
    except urllib.error.HTTPError as e:
        return False, f"HTTP {e.code} {e.read().decode(errors='replace')}"
    except OSError as e:  # refused, reset, timed out
        return False, repr(e)


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
    keys = " ".join(r.get("s3", {}).get("object", {}).get("key", "?") for r in records)
    start = time.monotonic()
    for attempt, delay in enumerate((0, *RETRY_DELAYS), start=1):
        time.sleep(delay)
        ok, answer = invoke(event)
        if ok:
            return f"{keys} -> import-contacts ok in {time.monotonic() - start:.1f}s: {answer[:300]}"
    return f"{keys} -> import-contacts FAILED after {attempt} attempts, dropped: {answer[:500]}"


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


def main():
    while True:
        try:
            queue_url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
            break
        except Exception as e:  # noqa: BLE001 - wait for init.py
            log(f"waiting for queue {QUEUE}: {e!r}")
            time.sleep(2)
    log(f"polling {queue_url} with {WORKERS} workers -> {INVOKE_URL}")
    threads = [threading.Thread(target=worker, args=(queue_url,), name=str(i), daemon=True)
               for i in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


if __name__ == "__main__":
    main()
