"""Prints the recent imports of an account with their progress (the job items).

    make status ACCOUNT=acme            # or: .venv/bin/python scripts/status.py acme [limit]

Reads the table the functions write (CONTACTS_TABLE, default `contacts`) at
AWS_ENDPOINT_URL (default the local emulator). While an import runs its job item shows
`running` and the counts at its last checkpoint (at least every 2,000 rows or 5 s).
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "localstack"))
from local_aws import TABLE, client


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("account", metavar="ACCOUNT_ID", help="the account whose imports to list")
    parser.add_argument("limit", metavar="LIMIT", type=int, nargs="?", default=20,
                        help="how many imports to print, newest first (default 20)")
    args = parser.parse_args()
    account, limit = args.account, args.limit
    pages = client("dynamodb").get_paginator("scan").paginate(
        TableName=TABLE, FilterExpression="begins_with(pk, :p) AND sk = :job",
        ExpressionAttributeValues={":p": {"S": f"IMPORT#{account}#"}, ":job": {"S": "JOB"}})
    items = [item for page in pages for item in page.get("Items", [])]
    items.sort(key=lambda i: i.get("started_at", {}).get("S", ""), reverse=True)
    if not items:
        print(f"no imports for account {account!r}")
        return
    cols = ["total", "created", "updated", "unchanged", "skipped_existing", "skipped_new", "duplicate_in_file", "rejected"]
    print(f"{'started_at':24} {'import_id':20} {'status':22} {'last_row':>9} " + " ".join(f"{c[:9]:>9}" for c in cols) + "  file")
    for item in items[:limit]:
        rows = {k: v.get("N", "0") for k, v in item.get("rows", {}).get("M", {}).items()}
        print(f"{item.get('started_at', {}).get('S', '?'):24} {item.get('import_id', {}).get('S', '?'):20} "
              f"{item.get('status', {}).get('S', '?'):22} {item.get('last_row', {}).get('N', '0'):>9} "
              + " ".join(f"{rows.get(c, '0'):>9}" for c in cols)
              + f"  {item.get('source_key', {}).get('S', '')}")


if __name__ == "__main__":
    main()
