"""The naive importer the benchmark compares against: Python, `phonenumbers` and
boto3, one conditional put per row, sequential. Prints wall and CPU seconds as JSON.

    naive_import.py FILE.csv ACCOUNT ENDPOINT
"""
import csv
import json
import resource
import sys
import time

import boto3
import phonenumbers


def main():
    path, account, endpoint = sys.argv[1:4]
    ddb = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test")
    start = time.monotonic()
    created = rejected = existing = 0
    with open(path, newline="", encoding="utf-8") as f:
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
                ddb.put_item(TableName="contacts", Item=item, ConditionExpression="attribute_not_exists(pk)")
                created += 1
            except ddb.exceptions.ConditionalCheckFailedException:
                existing += 1
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"wall_s": time.monotonic() - start, "cpu_s": usage.ru_utime + usage.ru_stime,
                      "created": created, "rejected": rejected, "existing": existing}))


if __name__ == "__main__":
    main()
