#!/usr/bin/env python3
"""Create the local AWS resources, idempotently, in make up's emulator or LocalStack (DESIGN.md section 11).

Bucket, table (GSI `by_account`, TTL on `expires_at`), queue, the bucket notification
`imports/` -> queue, and the WhatsApp webhook queue with its dead-letter queue (drained by
the relay as Lambda's SQS event source mapping would), all at one endpoint (make up's edge, where the table is dynoxide's and
the rest moto's, or LocalStack). Safe to run any number of times. Also LocalStack's ready hook
(see docker-compose.yml), where it runs inside the container with LocalStack's Python;
like every script here it reads endpoint, credentials and names from local_aws.py.
"""
import json

from botocore.exceptions import ClientError

from local_aws import (
    BUCKET,
    ENDPOINT,
    IMPORT_EVENTS_QUEUE,
    IMPORT_EVENTS_RULE,
    QUEUE,
    REGION,
    TABLE,
    WEBHOOK_DLQ,
    WEBHOOK_MAX_RECEIVE_COUNT,
    WEBHOOK_QUEUE,
    WEBHOOK_VISIBILITY_TIMEOUT,
    client,
)

s3, ddb, sqs, events = (client(name) for name in ("s3", "dynamodb", "sqs", "events"))


def error_code(e):
    return e.response.get("Error", {}).get("Code", "")


def bucket():
    try:
        where = {} if REGION == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": REGION}}
        s3.create_bucket(Bucket=BUCKET, **where)  # us-east-1 takes no LocationConstraint
    except ClientError as e:
        if error_code(e) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise


def table():
    s = {"AttributeType": "S"}
    try:
        ddb.create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": n, **s} for n in ("pk", "sk", "gsi1pk", "gsi1sk")],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            GlobalSecondaryIndexes=[{
                "IndexName": "by_account",
                "KeySchema": [{"AttributeName": "gsi1pk", "KeyType": "HASH"},
                              {"AttributeName": "gsi1sk", "KeyType": "RANGE"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }],
        )
    except ClientError as e:
        if error_code(e) != "ResourceInUseException":
            raise
    ddb.get_waiter("table_exists").wait(TableName=TABLE, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    ttl = ddb.describe_time_to_live(TableName=TABLE)["TimeToLiveDescription"]
    if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
        ddb.update_time_to_live(TableName=TABLE,
                                TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"})


def queue():
    url = sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
    # The relay invokes synchronously and deletes after; an import may run for minutes,
    # so keep the message hidden long enough that no second worker picks it up meanwhile.
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "900"})
    return queue_arn(url)


def queue_arn(url):
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def webhook_queues():
    """contact-events puts each signed webhook body on WEBHOOK_QUEUE; a body that failed
    WEBHOOK_MAX_RECEIVE_COUNT times moves to WEBHOOK_DLQ (SQS's redrive, as on AWS).
    Attributes are set after creating, so a second run (or a changed setting) updates them
    where create_queue with other attributes would fail."""
    dlq = sqs.create_queue(QueueName=WEBHOOK_DLQ)["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=dlq, Attributes={"MessageRetentionPeriod": str(14 * 24 * 3600)})
    url = sqs.create_queue(QueueName=WEBHOOK_QUEUE)["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={
        "VisibilityTimeout": str(WEBHOOK_VISIBILITY_TIMEOUT),
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": queue_arn(dlq),
                                     "maxReceiveCount": WEBHOOK_MAX_RECEIVE_COUNT}),
    })


def notification(queue_arn):
    wanted = [{
        "Id": "imports-to-queue",
        "QueueArn": queue_arn,
        "Events": ["s3:ObjectCreated:*"],
        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "imports/"}]}},
    }]
    config = s3.get_bucket_notification_configuration(Bucket=BUCKET)
    if config.get("LambdaFunctionConfigurations"):
        # LocalStack with the functions deployed (deploy_functions.py): S3 invokes
        # import-contacts itself; the relay's queue is not wanted.
        print("init: imports/ notifies a Lambda function; left as it is")
        return
    current = config.get("QueueConfigurations", [])
    # Each put queues an s3:TestEvent: only put when something differs.
    if [shape(c) for c in current] != [shape(w) for w in wanted]:
        s3.put_bucket_notification_configuration(Bucket=BUCKET,
                                                 NotificationConfiguration={"QueueConfigurations": wanted})


def shape(config):
    # AWS answers filter rule names as "Prefix" where the request said "prefix".
    rules = config.get("Filter", {}).get("Key", {}).get("FilterRules", [])
    return config["QueueArn"], sorted(config["Events"]), sorted((r["Name"].lower(), r["Value"]) for r in rules)


# The business number of the WhatsApp examples (functions/contact-events/events/whatsapp-*.json),
# so that they can be tried locally: Meta's webhooks name the account through it (DESIGN 13).
EXAMPLE_PHONE_NUMBER_ID = "106540352242922"
EXAMPLE_ACCOUNT = "acme"


def import_events():
    """DESIGN 15: a rule on the default bus forwards each import's completion event to
    the queue an application (and the tests) read, with the queue policy AWS needs."""
    url = sqs.create_queue(QueueName=IMPORT_EVENTS_QUEUE)["QueueUrl"]
    arn = queue_arn(url)
    rule_arn = events.put_rule(
        Name=IMPORT_EVENTS_RULE, EventBusName="default", State="ENABLED",
        EventPattern=json.dumps({"source": ["contact-book"],
                                 "detail-type": ["Contact Import Completed"]}))["RuleArn"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
                       "Action": "sqs:SendMessage", "Resource": arn,
                       "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}}}]})})
    events.put_targets(Rule=IMPORT_EVENTS_RULE, EventBusName="default",
                       Targets=[{"Id": "import-events-queue", "Arn": arn}])


def example_business_number():
    ddb.put_item(TableName=TABLE, Item={
        "pk": {"S": f"WABA#{EXAMPLE_PHONE_NUMBER_ID}"}, "sk": {"S": "ACCOUNT"},
        "account_id": {"S": EXAMPLE_ACCOUNT}, "channel": {"S": "whatsapp"},
    })


def main():
    bucket()
    table()
    example_business_number()
    notification(queue())
    webhook_queues()
    import_events()
    print(f"init: bucket {BUCKET}, table {TABLE} (GSI by_account, TTL expires_at), "
          f"queue {QUEUE} <- s3://{BUCKET}/imports/ at {ENDPOINT}; "
          f"webhook queue {WEBHOOK_QUEUE} (visibility {WEBHOOK_VISIBILITY_TIMEOUT}s, "
          f"dead letters to {WEBHOOK_DLQ} after {WEBHOOK_MAX_RECEIVE_COUNT} receives); "
          f"import completion events -> queue {IMPORT_EVENTS_QUEUE}; "
          f"WhatsApp business number {EXAMPLE_PHONE_NUMBER_ID} -> account {EXAMPLE_ACCOUNT}")


if __name__ == "__main__":
    main()
