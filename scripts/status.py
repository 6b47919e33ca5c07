"""Prints the recent imports of an account with their progress (the job items).

    make status ACCOUNT=acme            # or: .venv/bin/python scripts/status.py acme [limit]

Reads the table the functions write (CONTACTS_TABLE, default `contacts`) at
AWS_ENDPOINT_URL (default the local emulator). While an import runs its job item shows
`running` and the counts at its last checkpoint (at least every 2,000 rows or 5 s).
"""
import os
import sys

import boto3


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: status.py ACCOUNT_ID [LIMIT]")
    account, limit = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 20
    endpoint = os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    ddb = boto3.client("dynamodb", endpoint_url=endpoint, region_name=os.environ.get("AWS_REGION", "us-east-1"),
                       aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
                       aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"))
    table = os.environ.get("CONTACTS_TABLE", "contacts")
    items, kwargs = [], {"TableName": table, "FilterExpression": "begins_with(pk, :p) AND sk = :job",
                         "ExpressionAttributeValues": {":p": {"S": f"IMPORT#{account}#"}, ":job": {"S": "JOB"}}}
    while True:
        page = ddb.scan(**kwargs)
        items += page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    items.sort(key=lambda i: i.get("started_at", {}).get("S", ""), reverse=True)
    if not items:
        print(f"no imports for account {account!r}")
        return
    cols = ["total", "created", "updated", "unchanged", "skipped_existing", "duplicate_in_file", "rejected"]
    print(f"{'started_at':24} {'import_id':20} {'status':22} {'last_row':>9} " + " ".join(f"{c[:9]:>9}" for c in cols) + "  file")
    for item in items[:limit]:
        rows = {k: v.get("N", "0") for k, v in item.get("rows", {}).get("M", {}).items()}
        print(f"{item.get('started_at', {}).get('S', '?'):24} {item.get('import_id', {}).get('S', '?'):20} "
              f"{item.get('status', {}).get('S', '?'):22} {item.get('last_row', {}).get('N', '0'):>9} "
              + " ".join(f"{rows.get(c, '0'):>9}" for c in cols)
              + f"  {item.get('source_key', {}).get('S', '')}")


if __name__ == "__main__":
    main()
