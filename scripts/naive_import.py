"""The naive importer the benchmark compares against: Python, `phonenumbers` and
boto3, one conditional put per row, sequential. Prints wall and CPU seconds as JSON.

    naive_import.py FILE.csv ACCOUNT [ENDPOINT]
"""

import argparse
import csv
import json
import resource
import sys
import time
from pathlib import Path

import phonenumbers

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "localstack"))
from local_aws import ENDPOINT, TABLE, client


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", metavar="FILE.csv", help="a CSV with Name and Phone columns")
    parser.add_argument("account", metavar="ACCOUNT", help="the account to write the contacts to")
    parser.add_argument("endpoint", metavar="ENDPOINT", nargs="?", default=ENDPOINT,
                        help=f"DynamoDB endpoint (default {ENDPOINT}; the fault proxy for added latency)")
    args = parser.parse_args()
    account = args.account
    ddb = client("dynamodb", endpoint_url=args.endpoint)
    start = time.monotonic()
    created = rejected = existing = 0
    with open(args.path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            try:
                number = phonenumbers.parse(row["Phone"], "GB")
            except phonenumbers.NumberParseException:
                rejected += 1
                continue
            if not phonenumbers.is_valid_number(number):
                rejected += 1
                continue
            e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
            item = {"pk": {"S": f"CONTACT#{account}#whatsapp#{e164}"}, "sk": {"S": "PROFILE"},
                    "account_id": {"S": account}, "channel": {"S": "whatsapp"}, "phone": {"S": e164},
                    "name": {"S": row["Name"]}, "status": {"S": "active"}}
            try:
                ddb.put_item(TableName=TABLE, Item=item, ConditionExpression="attribute_not_exists(pk)")
                created += 1
            except ddb.exceptions.ConditionalCheckFailedException:
                existing += 1
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"wall_s": time.monotonic() - start, "cpu_s": usage.ru_utime + usage.ru_stime,
                      "created": created, "rejected": rejected, "existing": existing}))


if __name__ == "__main__":
    main()
