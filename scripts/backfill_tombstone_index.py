#!/usr/bin/env python3
"""One-off: index the erasure tombstones written before the tombstone index existed.

Since issue 22 an erasure adds the first 6 characters of each tombstone's digest to its
account's index item, `SUPPRESS#{account}#{channel}` / `INDEX`, and an import looks up
only the digests whose prefix is there (one read per batch instead of half a read unit
per row). Tombstones written by an older deployment are in no index, so an import would
not see them: run this once after deploying that change, before the first import
(docs/operations.md, "Tombstone index"). It scans only tombstone items (`sk = SUPPRESS`)
and is idempotent (ADD to a string set).

    AWS_REGION=eu-west-1 CONTACTS_TABLE=contacts python scripts/backfill_tombstone_index.py
"""
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "localstack"))
from local_aws import TABLE, client

PREFIX_CHARS = 6  # shared/src/aws/dynamodb/suppressions.rs


def main():
    ddb = client("dynamodb")
    prefixes = defaultdict(set)
    pages = ddb.get_paginator("scan").paginate(
        TableName=TABLE, ProjectionExpression="pk",
        FilterExpression="sk = :sk", ExpressionAttributeValues={":sk": {"S": "SUPPRESS"}})
    for page in pages:
        for item in page["Items"]:
            # SUPPRESS#{account}#{channel}#{digest}; an account id holds no '#'.
            _, account, channel, digest = item["pk"]["S"].split("#", 3)
            prefixes[(account, channel)].add(digest[:PREFIX_CHARS])
    for (account, channel), found in sorted(prefixes.items()):
        ddb.update_item(TableName=TABLE,
                        Key={"pk": {"S": f"SUPPRESS#{account}#{channel}"}, "sk": {"S": "INDEX"}},
                        UpdateExpression="ADD prefixes :p", ExpressionAttributeValues={":p": {"SS": sorted(found)}})
        print(f"{account} {channel}: {len(found)} prefixes indexed")
    print(f"done: {sum(len(f) for f in prefixes.values())} prefixes in {len(prefixes)} index items")


if __name__ == "__main__":
    main()
