#!/usr/bin/env python3
"""Uploads every file in samples/ as account `demo`, waits for each report, and prints
each summary and then the contacts written. Run with the stack up (`make demo` does it).

A file named `*.sms.*` goes to channel sms, any other to whatsapp. Upload options (S3
user metadata) come from a sidecar `<file>.meta.json`, e.g. {"lists": "VIP", "on-existing": "ignore"}.

It waits as long as the stack makes progress, and gives up when nothing has moved for
STALL_SECONDS (default 120; see localstack/local_aws.py).
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "localstack"))
from local_aws import BUCKET, TABLE, Stalled, client, stack_progress, wait_for

ACCOUNT = "demo"
s3, ddb = client("s3"), client("dynamodb")


def forget_earlier_runs():
    """An identical re-upload is a duplicate the function rightly skips; forget the demo
    account's earlier imports (reports and job items) so every run imports again.
    Contacts stay: a second run shows them as unchanged."""
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"reports/{ACCOUNT}/"):
        for obj in page.get("Contents", []):
            s3.delete_object(Bucket=BUCKET, Key=obj["Key"])
    for item in scan(f"IMPORT#{ACCOUNT}#"):
        ddb.delete_item(TableName=TABLE, Key={"pk": item["pk"], "sk": item["sk"]})


def scan(pk_prefix):
    for page in ddb.get_paginator("scan").paginate(
            TableName=TABLE, FilterExpression="begins_with(pk, :p)",
            ExpressionAttributeValues={":p": {"S": pk_prefix}}):
        yield from page["Items"]


def upload(path):
    channel = "sms" if ".sms." in path.name else "whatsapp"
    key = f"imports/{ACCOUNT}/{channel}/{path.name}"
    sidecar = path.with_name(path.name + ".meta.json")
    meta = json.loads(sidecar.read_text()) if sidecar.exists() else {}
    meta = {k.removeprefix("x-amz-meta-"): str(v) for k, v in meta.items()}
    s3.put_object(Bucket=BUCKET, Key=key, Body=path.read_bytes(), Metadata=meta)
    print(f"uploaded {path} -> s3://{BUCKET}/{key}" + (f" with metadata {meta}" if meta else ""))
    return key


def finished_summaries():
    """{source key: summary} of the demo account's reports that are no longer running."""
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"reports/{ACCOUNT}/"):
        for obj in page.get("Contents", []):
            if obj["Key"].endswith("/summary.json"):
                doc = json.loads(s3.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read())
                if doc.get("status") not in (None, "running"):
                    found[(doc.get("source") or {}).get("key")] = doc
    return found


def plain(value):
    """A DynamoDB attribute value as plain JSON."""
    (kind, v), = value.items()
    if kind == "M":
        return {k: plain(x) for k, x in v.items()}
    if kind == "L":
        return [plain(x) for x in v]
    if kind in ("SS", "NS"):
        return sorted(v)
    return v


def main():
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    files = sorted(p for p in Path("samples").glob("*")
                   if p.is_file() and not p.name.startswith(".") and not p.name.endswith(".meta.json"))
    if not files:
        sys.exit("demo: no files in samples/")
    forget_earlier_runs()
    pending = [upload(p) for p in files]

    def print_finished():
        summaries = finished_summaries()
        for key in [k for k in pending if k in summaries]:
            print(f"\n== summary of {key}\n{json.dumps(summaries[key], indent=2, ensure_ascii=False)}")
            pending.remove(key)
        return not pending

    stalled = None
    try:
        wait_for(print_finished, lambda: (len(pending), stack_progress(ddb)), "demo: waiting for reports")
    except Stalled as e:
        stalled = e
    contacts = sorted(scan(f"CONTACT#{ACCOUNT}#"), key=lambda i: i["pk"]["S"])
    print(f"\n== {len(contacts)} contacts of account {ACCOUNT}")
    for item in contacts:
        print(json.dumps({k: plain(v) for k, v in sorted(item.items())}, ensure_ascii=False))
    if stalled:
        sys.exit(f"demo: no report for {pending}: {stalled}")


if __name__ == "__main__":
    main()
