"""`make cold-start`: cold-start init time of both release binaries, measured locally.

Lambda's "Init Duration" is the time from starting the bootstrap process to its first
request for an invocation (GET .../runtime/invocation/next). This script plays the
Lambda Runtime API on 127.0.0.1 (the same three endpoints Lambda serves), starts each
binary RUNS times as a fresh process, and measures:
  - init: process start -> first GET /next;
  - first invocation: event handed over -> response posted (first SDK use, TLS-less
    connection to the emulator, one real import or event against `make up`'s stack).

It runs the host's (x86_64) release build, `cargo build --release` with the same LTO
profile as the arm64 Lambda build: AWS's arm64 hardware is not available here.
RUNS (default 10) sets the number of fresh processes per function.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "localstack"))
from local_aws import ACCESS_KEY_ID, ENDPOINT, REGION, SECRET_ACCESS_KEY, TABLE, cargo_target_dir, client, wait_for

RUNS = int(os.environ.get("RUNS", "10"))
BUCKET = "coldstart-bench"  # no notification: only this script's invocations import from it


class Runtime(BaseHTTPRequestHandler):
    """One invocation per process: hands `event` to the first /next, records times."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        state = self.server.state
        if state["first_next"] is None:
            state["first_next"] = time.monotonic()
            body = json.dumps(state["event"]).encode()
            self.send_response(200)
            self.send_header("Lambda-Runtime-Aws-Request-Id", str(uuid.uuid4()))
            self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 60_000))
            self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:000000000000:function:bench")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            # The second /next: the process is idle, as Lambda would freeze it.
            state["idle"].set()
            time.sleep(5)
            self.send_response(500)
            self.end_headers()

    def do_POST(self):
        state = self.server.state
        length = int(self.headers.get("Content-Length", 0))
        state["answer"] = (self.path.rsplit("/", 1)[-1], self.rfile.read(length))
        state["answered"] = time.monotonic()
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()


def run_once(binary, event):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Runtime)
    server.state = {"event": event, "first_next": None, "answered": None, "answer": None, "idle": threading.Event()}
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = dict(os.environ, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{server.server_address[1]}",
               AWS_LAMBDA_FUNCTION_NAME="bench", AWS_LAMBDA_FUNCTION_MEMORY_SIZE="512",
               AWS_LAMBDA_FUNCTION_VERSION="$LATEST", AWS_LAMBDA_LOG_FORMAT="JSON",
               AWS_ENDPOINT_URL=ENDPOINT, AWS_REGION=REGION, AWS_ACCESS_KEY_ID=ACCESS_KEY_ID,
               AWS_SECRET_ACCESS_KEY=SECRET_ACCESS_KEY, CONTACTS_TABLE=TABLE, CONTACTS_BUCKET=BUCKET)
    start = time.monotonic()
    proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # Done when the process asks for its second invocation; stuck when it neither
        # reaches the Runtime API nor uses CPU for a while.
        watched = psutil.Process(proc.pid)

        def progress():
            try:
                cpu = round(sum(watched.cpu_times()[:2]), 1)
            except psutil.Error:
                cpu = None
            return server.state["first_next"], server.state["answered"], cpu

        def finished():
            if server.state["idle"].wait(0.5):  # wakes at once when set: no busy polling
                return True
            if proc.poll() is not None:
                raise SystemExit(f"{binary} exited with status {proc.returncode} before finishing its invocation")
            return False

        wait_for(finished, progress, f"{binary}: waiting for its invocation", stall_seconds=60, interval=0)
    finally:
        proc.kill()
        proc.wait()
        server.shutdown()
    kind, answer = server.state["answer"]
    if kind != "response":
        raise SystemExit(f"{binary} answered {kind}: {answer[:300]!r}")
    st = server.state
    return (st["first_next"] - start) * 1000, (st["answered"] - st["first_next"]) * 1000


def s3_event(key):
    return {"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
                         "eventTime": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                         "eventName": "ObjectCreated:Put",
                         "userIdentity": {"principalId": "AWS:COLDSTART"},
                         "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                         "responseElements": {"x-amz-request-id": "COLDSTART", "x-amz-id-2": "COLDSTART"},
                         "s3": {"s3SchemaVersion": "1.0", "configurationId": "imports",
                                "bucket": {"name": BUCKET, "arn": f"arn:aws:s3:::{BUCKET}"},
                                "object": {"key": key, "size": 0, "eTag": uuid.uuid4().hex, "sequencer": uuid.uuid4().hex}}}]}


def main():
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    s3 = client("s3")
    try:
        s3.create_bucket(Bucket=BUCKET)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    with open("functions/contact-events/events/message-inbound.json") as f:
        inbound = json.load(f)
    rows = []
    target = cargo_target_dir()
    for name in ("import-contacts", "contact-events"):
        binary = str(target / "release" / name)
        inits, firsts = [], []
        for _ in range(RUNS):
            if name == "import-contacts":
                account = "cold-" + uuid.uuid4().hex[:8]
                key = f"imports/{account}/whatsapp/contacts.csv"
                s3.put_object(Bucket=BUCKET, Key=key, Body=b"Name,Phone\nEva,+447911123456\nSam,+447400123456\n")
                event = s3_event(key)
            else:
                event = dict(inbound, message_id=uuid.uuid4().hex, account_id="cold-" + uuid.uuid4().hex[:8])
            init, first = run_once(binary, event)
            inits.append(init)
            firsts.append(first)
        size = os.path.getsize(binary) / 1e6
        arm = target / "lambda" / name / "bootstrap"
        arm_size = f"{os.path.getsize(arm) / 1e6:.1f} MB" if os.path.exists(arm) else "not built (make build)"
        rows.append((name, arm_size, f"{size:.1f} MB", f"{statistics.median(inits):.1f} / {max(inits):.1f}",
                     f"{statistics.median(firsts):.1f} / {max(firsts):.1f}"))
    header = ("function", "arm64 bootstrap", "x86_64 release", f"init ms, median / max of {RUNS}", "first invocation ms, median / max")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    print()
    for r in [header] + rows:
        print("  ".join(f"{v:{w}}" for v, w in zip(r, widths)))


if __name__ == "__main__":
    main()
