"""Account operations of contact-events (DESIGN section 14), invoked through the local
stack's `cargo lambda watch` (the invoke API on 127.0.0.1:9000); prints the answer.

    make export ACCOUNT=acme [LIST=VIP] [CHANNEL=whatsapp]
    .venv/bin/python scripts/account_op.py export acme --list VIP --tag hot \\
        --status active --consent marketing_opted_in --channel whatsapp

An export answers {"status": "exported", "key": "exports/acme/exp_….csv", "contacts": N};
the file is in the local bucket (CONTACTS_BUCKET), e.g.
`aws --endpoint-url http://127.0.0.1:4566 s3 cp s3://contact-uploads/KEY -`.
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "localstack"))
from local_aws import invoke


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
    args = parser.parse_args()
    answer = invoke("contact-events", args.event(args))
    print(json.dumps(answer, indent=2, ensure_ascii=False))
    if isinstance(answer, dict) and "errorType" in answer:
        sys.exit(1)


if __name__ == "__main__":
    main()
