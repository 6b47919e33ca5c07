#!/usr/bin/env python3
"""Uploads every file in samples/ as account `demo`, waits for each report, and prints
each summary, where its reports are (summary.json, rows.csv, report.html), the
"Contact Import Completed" event each import put on the emulator's EventBridge (read from
the import-events queue, DESIGN 15), and then the contacts written. Run with the stack up
(`make demo` does it).

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
from local_aws import BUCKET, IMPORT_EVENTS_QUEUE, TABLE, Stalled, client, stack_progress, wait_for

ACCOUNT = "demo"
s3, ddb, sqs = client("s3"), client("dynamodb"), client("sqs")


def take_completion_events(events):
    """Moves the demo account's completion events from the import-events queue into
    `events` ({import_id: detail}); other accounts' events are left for their readers."""
    url = sqs.get_queue_url(QueueName=IMPORT_EVENTS_QUEUE)["QueueUrl"]
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                       VisibilityTimeout=0).get("Messages", [])
        ours = [m for m in messages if json.loads(m["Body"]).get("detail", {}).get("account_id") == ACCOUNT]
        for message in ours:
            detail = json.loads(message["Body"])["detail"]
            events[detail["import_id"]] = detail
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        if not ours:
            return


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

    ids = {}

    def print_finished():
        summaries = finished_summaries()
        for key in [k for k in pending if k in summaries]:
            summary = summaries[key]
            print(f"\n== summary of {key}\n{json.dumps(summary, indent=2, ensure_ascii=False)}")
            report_dir = f"s3://{BUCKET}/reports/{ACCOUNT}/{summary['import_id']}/"
            print(f"reports: {report_dir}summary.json, {report_dir}report.html (open it in a browser)"
                  + (f", s3://{BUCKET}/{summary['rows_report_key']}" if summary.get("rows_report_key") else ""))
            ids[summary["import_id"]] = key
            pending.remove(key)
        return not pending

    events = {}

    def print_events():
        take_completion_events(events)
        return all(i in events for i in ids)

    stalled = None
    try:
        wait_for(print_finished, lambda: (len(pending), stack_progress(ddb)), "demo: waiting for reports")
    except Stalled as e:
        stalled = e
    try:
        wait_for(print_events, lambda: (len(events), stack_progress(ddb)), "demo: waiting for completion events")
    except Stalled as e:
        stalled = stalled or e
    print(f"\n== {len(events)} \"Contact Import Completed\" events from the import-events queue")
    for import_id, key in ids.items():
        detail = events.get(import_id)
        if detail:
            print(f"{import_id} {detail['status']:22} rows={json.dumps(detail['rows'])} {key}")
        else:
            print(f"{import_id} (no event received) {key}")
    contacts = sorted(scan(f"CONTACT#{ACCOUNT}#"), key=lambda i: i["pk"]["S"])
    print(f"\n== {len(contacts)} contacts of account {ACCOUNT}")
    for item in contacts:
        print(json.dumps({k: plain(v) for k, v in sorted(item.items())}, ensure_ascii=False))
    if stalled:
        sys.exit(f"demo: no report for {pending}: {stalled}")


if __name__ == "__main__":
    main()
