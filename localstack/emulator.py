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
"""
import argparse
import os
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from waitress import serve

import moto_patches


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
    os.environ.setdefault("MOTO_PORT", str(args.port))
    app = OneAtATime(DomainDispatcherApplication(create_backend_app))
    # Large uploads (the memory benchmark's 100 MB CSV) must not be refused.
    serve(app, host=args.host, port=args.port, threads=args.threads, ident="moto",
          max_request_body_size=2**34, channel_timeout=300, connection_limit=200)


if __name__ == "__main__":
    main()
