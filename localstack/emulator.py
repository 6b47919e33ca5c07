#!/usr/bin/env python3
"""The AWS emulator for `make up`: moto's own WSGI application, served by waitress.

`moto_server` serves moto with werkzeug's development server, which closes the
connection after every response and starts a thread per connection. Every DynamoDB
write then cost the functions a TCP connect and teardown, and moto a new thread: the
function spent more CPU in the kernel than in its own code. waitress keeps HTTP/1.1
connections alive, as AWS's endpoints do, and serves them from a fixed thread pool.
The application is the one `moto_server` builds (all services, one process, state in
memory).

Requests run one at a time, except SQS's. moto's backends are plain dicts shared by
every request thread, and a Scan or Query iterating a table while a write adds an item
fails with "dictionary changed size during iteration" (HTTP 500), which AWS never
answers. moto is bound by the GIL anyway, so serialising costs little; waitress still
reads requests and writes responses on its own threads and keeps connections alive.
SQS stays outside the lock: the relay's ReceiveMessage long-polls (it waits for a
message inside moto), and holding the lock through that wait would stop the S3 upload
that sends the message.

waitress 3.0.2 never answers a request that says `Expect: 100-continue` and has no
body (`Content-Length: 0`), which is how botocore (boto3, the AWS CLI) sends every empty
PutObject: see `answer_bodiless_expect_continue` below. The bug is waitress's, not
moto's; the patch here stays until a waitress release fixes it.
"""
import argparse
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


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=4566)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    moto_patches.apply()
    answer_bodiless_expect_continue()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    app = OneAtATime(DomainDispatcherApplication(create_backend_app))
    # Large uploads (the memory benchmark's 100 MB CSV) must not be refused.
    serve(app, host=args.host, port=args.port, threads=args.threads, ident="moto",
          max_request_body_size=2**34, channel_timeout=300, connection_limit=200)


if __name__ == "__main__":
    main()
