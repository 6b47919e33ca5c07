"""Account operations of contact-events (DESIGN section 14), invoked through the local
stack's `cargo lambda watch` (the invoke API on 127.0.0.1:9000); prints the answer.

    make export ACCOUNT=acme [LIST=VIP] [CHANNEL=whatsapp]
    .venv/bin/python scripts/account_op.py export acme --list VIP --tag hot \\
        --status active --consent marketing_opted_in --channel whatsapp
    make undo IMPORT=imp_0123456789abcdef [ACCOUNT=acme]
    make erase ACCOUNT=acme PHONE=+447911123456 [CHANNEL=whatsapp]

An export answers {"status": "exported", "key": "exports/acme/exp_….csv", "contacts": N};
the file is in the local bucket (CONTACTS_BUCKET), e.g.
`aws --endpoint-url http://127.0.0.1:4566 s3 cp s3://contact-uploads/KEY -`.
An undo answers {"status": "undone", "deleted": N, "kept_changed": M}; without an account
it is found in the import's job item IMPORT#{account_id}#{import_id}.
An erasure answers {"status": "erased", "items": N} or {"status": "not_found"}.
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "localstack"))
from local_aws import TABLE, client, invoke


def export_event(args):
    event = {"type": "contacts.export", "account_id": args.account}
    if args.channel:
        event["channel"] = args.channel
    for field, values in (("lists", args.list), ("tags", args.tag), ("status", args.status)):
        if values:
            event[field] = values
    if args.consent:
        event["consent"] = args.consent
    return event


def account_of(import_id):
    """The account of an import, from its job item `IMPORT#{account_id}#{import_id}` /
    `JOB` (a local helper: a filtered scan is fine on the emulator)."""
    pages = client("dynamodb").get_paginator("scan").paginate(
        TableName=TABLE, FilterExpression="begins_with(pk, :p) AND sk = :job",
        ExpressionAttributeValues={":p": {"S": "IMPORT#"}, ":job": {"S": "JOB"}},
        ProjectionExpression="pk, account_id")
    for page in pages:
        for item in page.get("Items", []):
            if item["pk"]["S"].endswith(f"#{import_id}"):
                return item.get("account_id", {}).get("S") or item["pk"]["S"].split("#")[1]
    raise SystemExit(f"no import {import_id!r} in table {TABLE}; give ACCOUNT=… if its job item is gone")


def undo_event(args):
    account = args.account or account_of(args.import_id)
    return {"type": "import.undo", "account_id": account, "import_id": args.import_id}


def erase_event(args):
    event = {"type": "contact.erase", "account_id": args.account, "channel": args.channel}
    # A WhatsApp contact known only by its BSUID is erased by its user id.
    key = "user_id" if args.phone.count(".") == 1 and args.phone[:2].isupper() else "phone"
    event[key] = args.phone
    return event


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ops = parser.add_subparsers(dest="op", required=True)
    export = ops.add_parser("export", help="export an account's contacts to a CSV file")
    export.add_argument("account", metavar="ACCOUNT_ID")
    export.add_argument("--channel", help="whatsapp, sms or voice (default: every channel)")
    export.add_argument("--list", action="append", help="only contacts in this list (repeat: any of them)")
    export.add_argument("--tag", action="append", help="only contacts with this tag (repeat: any of them)")
    export.add_argument("--status", action="append", help="active, archived or blocked (repeat: any of them)")
    export.add_argument("--consent", help="marketing_opted_in or marketing_opted_out")
    export.set_defaults(event=export_event)
    undo = ops.add_parser("undo", help="delete the contacts an import created that nobody changed since")
    undo.add_argument("import_id", metavar="IMPORT_ID")
    undo.add_argument("--account", help="the import's account (default: read from its job item)")
    undo.set_defaults(event=undo_event)
    erase = ops.add_parser("erase", help="erase a contact (right to erasure) and keep the number out")
    erase.add_argument("account", metavar="ACCOUNT_ID")
    erase.add_argument("phone", metavar="PHONE", help="the number, E.164 (+447911123456), or the WhatsApp user id (BSUID, GB.1349…) of a contact known only by it")
    erase.add_argument("--channel", default="whatsapp", help="whatsapp (default), sms or voice")
    erase.set_defaults(event=erase_event)
    args = parser.parse_args()
    answer = invoke("contact-events", args.event(args))
    print(json.dumps(answer, indent=2, ensure_ascii=False))
    if isinstance(answer, dict) and "errorType" in answer:
        sys.exit(1)


if __name__ == "__main__":
    main()
