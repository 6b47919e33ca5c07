#!/usr/bin/env python3
"""Sends one event to contact-events through the local stack and prints the answer.

    scripts/invoke.py contact.erase account_id=acme phone=+447911123456 [channel=whatsapp]

The function runs under `make up`'s cargo lambda watch; the event goes through the
Lambda runtime API on 127.0.0.1:9000 (LAMBDA_INVOKE_URL), as a direct invoke would on
AWS. `key=a,b` gives a list (for list-valued fields such as `lists`). Exits 1 when the
function answers with an error.
"""

import argparse
import json
import os
import sys
import urllib.error
import urllib.request

INVOKE = os.environ.get("LAMBDA_INVOKE_URL", "http://127.0.0.1:9000/2015-03-31/functions")
LIST_FIELDS = {"lists", "tags", "status"}


def event_of(kind, pairs):
    event = {"type": kind}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise SystemExit(f"invoke.py: expected key=value, got {pair!r}")
        if name in LIST_FIELDS:
            event[name] = [v for v in value.split(",") if v]
        elif value:
            event[name] = value
    return event


def invoke(function, event):
    request = urllib.request.Request(f"{INVOKE}/{function}/invocations", data=json.dumps(event).encode(),
                                     headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=900) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as e:
        return json.loads(e.read() or b"null")
    except urllib.error.URLError as e:
        raise SystemExit(f"invoke.py: {function} does not answer at {INVOKE} ({e.reason}); run make up") from e


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("type", help="the event type, e.g. contact.erase")
    parser.add_argument("fields", nargs="*", help="key=value fields of the event")
    parser.add_argument("--function", default="contact-events")
    args = parser.parse_args()
    answer = invoke(args.function, event_of(args.type, args.fields))
    print(json.dumps(answer, indent=2, ensure_ascii=False))
    return 1 if isinstance(answer, dict) and "errorType" in answer else 0


if __name__ == "__main__":
    sys.exit(main())
