"""A fault-injecting HTTP proxy between the functions and the emulator.

With `FAULT_PROXY=1 scripts/up.sh` the functions reach AWS through this proxy
(127.0.0.1:4567 -> 127.0.0.1:4566); by default they talk to the emulator directly and
the proxy does not run. The tests and benchmarks that need it restart watch that way.
It only forwards and counts until they switch faults on:

    POST /__proxy/faults {"match": "acct-123", "throttle": 0.1, "error500": 0.05,
                          "drop": 0.05, "latency_ms": 5}
    POST /__proxy/faults {}                      # all off
    GET  /__proxy/stats                          # requests by service and operation,
                                                 # and the capacity DynamoDB reported
    POST /__proxy/stats/reset

`capacity` in the stats sums the `ConsumedCapacity` of DynamoDB's answers (write and
read units, as the emulator reports them): an independent count of what the functions
consumed, which `make bench` sets beside the summaries' own `consumed`. It holds only
what was reported: a failed condition or a cancelled transaction is charged by
DynamoDB without being reported.

`match` limits faults to requests whose path or body contains that string (an account
id), so other tests running at the same time are not disturbed; latency applies to
every DynamoDB request when set. Faults: DynamoDB gets ThrottlingException /
ProvisionedThroughputExceededException (HTTP 400) or an HTTP 500; S3 gets 503 SlowDown
or 500; `drop` closes the connection without an answer.
"""
import http.client
import json
import os
import random
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

UPSTREAM = os.environ.get("PROXY_UPSTREAM", "127.0.0.1:4566")
PORT = int(os.environ.get("PROXY_PORT", "4567"))
state = {"faults": {}, "stats": {}, "injected": {}, "capacity": {"write_units": 0.0, "read_units": 0.0}}
# Operations whose CapacityUnits are writes when the answer does not split them.
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems", "BatchExecuteStatement"}
lock = threading.Lock()
local = threading.local()
rng = random.Random(int(os.environ.get("PROXY_SEED", "42")))

HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}


def upstream():
    conn = getattr(local, "conn", None)
    if conn is None:
        host, port = UPSTREAM.split(":")
        conn = local.conn = http.client.HTTPConnection(host, int(port), timeout=300)
    return conn


def add_capacity(operation, data):
    """Adds the ConsumedCapacity of one DynamoDB answer to the stats."""
    try:
        answer = json.loads(data or b"{}")
    except ValueError:
        return
    reported = answer.get("ConsumedCapacity") if isinstance(answer, dict) else None
    if isinstance(reported, dict):
        reported = [reported]
    write = read = 0.0
    for c in reported or []:
        total = c.get("CapacityUnits", 0.0)
        write += c.get("WriteCapacityUnits", total if operation in WRITES else 0.0)
        read += c.get("ReadCapacityUnits", 0.0 if operation in WRITES else total)
    with lock:
        state["capacity"]["write_units"] += write
        state["capacity"]["read_units"] += read


def count(table, key):
    with lock:
        state[table][key] = state[table].get(key, 0) + 1


class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet: one line per request would drown the logs
        pass

    def control(self, body):
        if self.path == "/__proxy/faults" and self.command == "POST":
            with lock:
                state["faults"] = json.loads(body or b"{}")
            return self.reply(200, {"faults": state["faults"]})
        if self.path == "/__proxy/stats" and self.command == "GET":
            with lock:
                return self.reply(200, {"requests": dict(state["stats"]), "injected": dict(state["injected"]),
                                        "capacity": dict(state["capacity"])})
        if self.path == "/__proxy/stats/reset" and self.command == "POST":
            with lock:
                state["stats"], state["injected"] = {}, {}
                state["capacity"] = {"write_units": 0.0, "read_units": 0.0}
            return self.reply(200, {})
        return self.reply(404, {"error": "unknown control path"})

    def reply(self, status, doc, headers=None):
        data = json.dumps(doc).encode()
        self.send_response(status)
        for k, v in (headers or {"Content-Type": "application/json"}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path.startswith("/__proxy/"):
            return self.control(body)
        target = self.headers.get("X-Amz-Target", "")
        service = "dynamodb" if target.startswith("DynamoDB") else "s3"
        operation = target.split(".")[-1] if target else self.command
        count("stats", f"{service}:{operation}")
        with lock:
            faults = dict(state["faults"])
        if service == "dynamodb" and faults.get("latency_ms"):
            time.sleep(faults["latency_ms"] / 1000)
        marker = faults.get("match")
        if marker and (marker.encode() in body or marker in self.path):
            roll = rng.random()
            throttle, e500, drop = faults.get("throttle", 0), faults.get("error500", 0), faults.get("drop", 0)
            if roll < drop:
                count("injected", f"{service}:drop")
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            if roll < drop + throttle:
                count("injected", f"{service}:throttle")
                if service == "dynamodb":
                    kind = rng.choice(["ThrottlingException", "ProvisionedThroughputExceededException"])
                    return self.reply(400, {"__type": f"com.amazonaws.dynamodb.v20120810#{kind}", "message": "injected"},
                                      {"Content-Type": "application/x-amz-json-1.0", "x-amzn-ErrorType": kind})
                xml = b"<Error><Code>SlowDown</Code><Message>injected</Message></Error>"
                return self.raw(503, xml, "application/xml")
            if roll < drop + throttle + e500:
                count("injected", f"{service}:500")
                if service == "dynamodb":
                    return self.reply(500, {"__type": "com.amazonaws.dynamodb.v20120810#InternalServerError", "message": "injected"},
                                      {"Content-Type": "application/x-amz-json-1.0"})
                return self.raw(500, b"<Error><Code>InternalError</Code><Message>injected</Message></Error>", "application/xml")
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP and k.lower() != "content-length"}
        for attempt in range(2):
            conn = upstream()
            try:
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                break
            except (http.client.HTTPException, OSError):
                conn.close()
                local.conn = None
                if attempt:
                    return self.raw(502, b"upstream unreachable", "text/plain")
        if service == "dynamodb":
            add_capacity(operation, data)
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in HOP and k.lower() != "content-length":
                self.send_header(k, v)
        # HEAD answers carry the object's length, not the (empty) body's.
        length = resp.getheader("Content-Length") if self.command == "HEAD" else None
        self.send_header("Content-Length", length or str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def raw(self, status, data, ctype):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Proxy)
    server.daemon_threads = True
    print(f"fault proxy on 127.0.0.1:{PORT} -> {UPSTREAM}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)
