#!/usr/bin/env python3
"""The AWS edge for `make up`: one endpoint (127.0.0.1:4566) for every AWS API the stack
uses, as LocalStack's is. DynamoDB goes to dynoxide, everything else to moto.

DynamoDB: requests whose `X-Amz-Target` starts with `DynamoDB_20120810.` are forwarded
to dynoxide (`dynoxide serve`, a DynamoDB emulator in Rust on SQLite, started by
scripts/up.sh on 127.0.0.1:4569; `--dynamodb` here), method, path, headers and body as
they came, and its answer is returned as it is (status, headers, body), minus the
hop-by-hop headers that belong to each connection. Each waitress thread keeps one
connection to dynoxide alive. dynoxide reports consumed capacity as AWS does and runs
transactions and GSI queries without walking the table, where moto's DynamoDB did not
(../shared/NOTES.md, "Checked 2026-12-02").

Everything else (S3, SQS, EventBridge): moto's own WSGI application, the one
`moto_server` builds (all services, one process, state in memory), served by waitress.
`moto_server` serves it with werkzeug's development server, which closes the connection
after every response and starts a thread per connection, so every request cost a TCP
connect and teardown; waitress keeps HTTP/1.1 connections alive, as AWS's endpoints do,
and serves them from a fixed thread pool.

moto's requests run one at a time, except SQS's. moto's backends are plain dicts shared
by every request thread: S3's ListObjects iterates a bucket's keys while another thread
may add one ("dictionary changed size during iteration", HTTP 500, which AWS never
answers). moto is bound by the GIL anyway, so serialising costs little; waitress still
reads requests and writes responses on its own threads and keeps connections alive.
SQS stays outside the lock: the relay's ReceiveMessage long-polls (it waits for a
message inside moto), and holding the lock through that wait would stop the S3 upload
that sends the message. DynamoDB never takes the lock: dynoxide is another process, and
serves concurrent requests itself.

waitress 3.0.2 never answers a request that says `Expect: 100-continue` and has no
body (`Content-Length: 0`), which is how botocore (boto3, the AWS CLI) sends every empty
PutObject: see `answer_bodiless_expect_continue` below. The bug is waitress's, not
moto's; the patch here stays until a waitress release fixes it.
"""
import argparse
import gc
import http.client
import importlib.metadata
import os
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from waitress import serve
from waitress.parser import HTTPRequestParser

import moto_patches

WAITRESS_PATCHED_FOR = "3.0.2"


def answer_bodiless_expect_continue():
    """Serve requests with `Expect: 100-continue` and no body at once (a waitress bug).

    botocore sends `Expect: 100-continue` with PutObject and UploadPart, an empty body
    included (`Content-Length: 0`; boto3 1.44 and the AWS CLI 1.46 do). waitress's parser
    marks such a request complete as soon as its headers end (there is no body to read);
    then `HTTPChannel.received` sees the expectation, calls `send_continue()`, which
    writes `100 Continue` and sets `request.completed = False` (meant for requests whose
    body is still to come). Nothing else will ever arrive for this request, so it is never
    queued: the application is not called, no final answer is sent, and the client waits
    for its read timeout (then retries, and fails the same way). Reproduced with a
    two-line WSGI application under waitress 3.0.2, the newest release: the same holds
    for any request that the parser completes at its headers, e.g. one refused with 413
    for a declared body over `max_request_body_size`.

    RFC 9110 (10.1.1) lets a server omit the 100 when the framing says there is no
    content, and asks for a final status instead. So: once the parser has completed a
    request, it no longer expects to continue; waitress then queues it and answers as
    usual (botocore takes a final status in place of the 100 and sends no body). Requests
    with a body are untouched: they get their 100 Continue as before.
    """
    version = importlib.metadata.version("waitress")
    if version != WAITRESS_PATCHED_FOR:
        raise SystemExit(f"localstack/emulator.py patches waitress {WAITRESS_PATCHED_FOR}, this is {version}: "
                         "check whether an empty PUT with Expect: 100-continue still hangs without the patch")
    received = HTTPRequestParser.received

    def received_then_no_continue_when_complete(self, data):
        consumed = received(self, data)
        if self.completed:
            self.expect_continue = False
        return consumed

    HTTPRequestParser.received = received_then_no_continue_when_complete


class OneAtATime:
    """A WSGI application that lets one request into `app` at a time (SQS's excepted)."""

    def __init__(self, app):
        self.app, self.lock = app, threading.Lock()

    def __call__(self, environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("AmazonSQS."):
            return self.app(environ, start_response)
        with self.lock:
            # The body is read inside the lock too, in case it is computed lazily.
            body = self.app(environ, start_response)
            try:
                return list(body)
            finally:
                if hasattr(body, "close"):
                    body.close()


DYNAMODB_TARGET = "DynamoDB_20120810."
# Headers of one connection (RFC 9110 7.6.1), never forwarded; waitress also refuses them
# from an application (PEP 3333). Content-Length is set again for what is sent.
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
              "te", "trailer", "trailers", "transfer-encoding", "upgrade"}


# How a kept-alive connection that the server has closed fails.
STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class DynamoDBToDynoxide:
    """A WSGI application that forwards DynamoDB's requests to dynoxide as they are and
    hands every other request to `app`."""

    def __init__(self, app, upstream, timeout=300):
        host, port = upstream.rsplit(":", 1)
        self.app, self.host, self.port, self.timeout = app, host, int(port), timeout
        self.local = threading.local()  # one kept-alive connection per waitress thread

    def __call__(self, environ, start_response):
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith(DYNAMODB_TARGET):
            return self.app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        headers = {"Content-Length": str(len(body))}
        for key, value in environ.items():
            if key.startswith("HTTP_"):
                name = key[5:].replace("_", "-").title()
            elif key == "CONTENT_TYPE" and value:
                name = "Content-Type"
            else:
                continue
            if name.lower() not in HOP_BY_HOP:
                headers[name] = value
        try:
            status, reason, answer_headers, data = self.forward(environ["REQUEST_METHOD"], environ["REQUEST_URI"],
                                                                body, headers)
        except (http.client.HTTPException, OSError) as e:
            message = f"dynoxide at {self.host}:{self.port} did not answer: {e!r}".encode()
            start_response("502 Bad Gateway", [("Content-Type", "text/plain"), ("Content-Length", str(len(message)))])
            return [message]
        answer_headers = [(k, v) for k, v in answer_headers
                          if k.lower() not in HOP_BY_HOP and k.lower() != "content-length"]
        answer_headers.append(("Content-Length", str(len(data))))
        start_response(f"{status} {reason or 'Unknown'}", answer_headers)
        return [data]

    def forward(self, method, uri, body, headers):
        """Sends the request on this thread's connection. A kept-alive connection that
        dynoxide closed meanwhile fails at once, without an answer: then the request goes
        once more, on a new connection (as botocore and the Rust SDK retry it). Any other
        failure (a timeout included) is not retried here."""
        for attempt in range(2):
            conn = getattr(self.local, "conn", None)
            reused = conn is not None
            if conn is None:
                conn = self.local.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                conn.request(method, uri, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            except (http.client.HTTPException, OSError) as e:
                conn.close()
                self.local.conn = None
                if reused and attempt == 0 and isinstance(e, STALE):
                    continue
                raise
            if resp.will_close:
                conn.close()
                self.local.conn = None
            return resp.status, resp.reason, resp.getheaders(), data
        raise AssertionError("unreachable")


def freeze_survivors(phase, info):
    """After a full collection, what survived it is kept out of the next ones.

    moto loads each service's botocore model (S3's alone is hundreds of thousands of
    objects) when the service is first asked, and keeps every queue, object and message;
    a full collection walked all of it and stopped every request for 80 ms or more, the
    slowest acknowledgements of `make bench-webhooks`. Objects that survived one are
    mostly there for good; were some of them to become cyclic garbage later, it would
    stay until the emulator stops (make down)."""
    if phase == "stop" and info["generation"] == 2:
        gc.freeze()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=4566)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--dynamodb", default="127.0.0.1:4569", metavar="HOST:PORT",
                        help="dynoxide, where DynamoDB's requests go (default %(default)s)")
    args = parser.parse_args()
    moto_patches.apply()
    answer_bodiless_expect_continue()
    gc.callbacks.append(freeze_survivors)
    os.environ.setdefault("MOTO_PORT", str(args.port))
    app = DynamoDBToDynoxide(OneAtATime(DomainDispatcherApplication(create_backend_app)), args.dynamodb)
    # Large uploads (the memory benchmark's 100 MB CSV) must not be refused.
    serve(app, host=args.host, port=args.port, threads=args.threads, ident="edge",
          max_request_body_size=2**34, channel_timeout=300, connection_limit=200)


if __name__ == "__main__":
    main()
