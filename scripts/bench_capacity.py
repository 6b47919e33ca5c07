"""DynamoDB capacity for `make bench` (issue 22): what each event type consumed, and
what GSI `by_account`'s projection costs a year of typical traffic.

Figures are the emulator's own (dynoxide reports capacity as AWS does): the events'
from the EMF lines contact-events writes per event (its capacity meter's readings,
DESIGN section 9), the projections' from `ReturnConsumedCapacity = TOTAL` on requests
this script sends to two scratch tables. Prices are on-demand us-east-1 list prices
(USD per million units) at the time of writing.
"""

import hashlib
import hmac
import json
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "localstack"))
from local_aws import RUN, client, invoke

WRITE_PRICE, READ_PRICE = 0.625, 0.125
APP_SECRET = "local-development-app-secret"
# init.py maps this business number to account acme.
PHONE_NUMBER_ID = "106540352242922"


def emf_since(offset):
    """The EMF lines contact-events wrote to watch's log after `offset`."""
    lines = []
    with open(RUN / "watch.log", "rb") as log:
        log.seek(offset)
        for raw in log:
            text = raw.decode("utf-8", "replace")
            if '"CloudWatchMetrics"' in text and '"EventType"' in text:
                try:
                    lines.append(json.loads(text[text.index("{"):]))
                except ValueError:
                    pass
    return lines


def log_size():
    return (RUN / "watch.log").stat().st_size


def webhook(value):
    return {"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{
        "field": "messages",
        "value": {"messaging_product": "whatsapp",
                  "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
                  **value}}]}]}


def post(body):
    """Delivers a signed webhook POST as a function URL does; the HTTP status. The body
    is stored on the webhook queue and applied from there (the relay drains it)."""
    raw = json.dumps(body)
    signature = "sha256=" + hmac.new(APP_SECRET.encode(), raw.encode(), hashlib.sha256).hexdigest()
    event = {"version": "2.0", "routeKey": "$default", "rawPath": "/", "rawQueryString": "",
             "headers": {"content-type": "application/json", "x-hub-signature-256": signature},
             "requestContext": {"http": {"method": "POST", "path": "/", "protocol": "HTTP/1.1",
                                         "sourceIp": "173.252.127.1", "userAgent": "facebookexternalua"}},
             "body": raw, "isBase64Encoded": False}
    return invoke("contact-events", event).get("statusCode")


def event_rows():
    """Sends one event of each kind (and the statuses that matter: one that changes
    reachability, one redelivered, one that says nothing of reach); returns
    (what, write units, read units, requests) from each one's EMF line."""
    wa_id = "4479" + str(uuid.uuid4().int)[:8]
    account = "bench-events-" + uuid.uuid4().hex[:8]
    phone = "+4479" + str(uuid.uuid4().int)[:8]
    now = int(time.time())
    message = {"contacts": [{"profile": {"name": "Eva"}, "wa_id": wa_id}],
               "messages": [{"from": wa_id, "id": f"wamid.{uuid.uuid4().hex}", "timestamp": str(now),
                             "type": "text", "text": {"body": "hi"}}]}
    wamid = f"wamid.{uuid.uuid4().hex}"

    def status(state, at):
        return {"statuses": [{"id": wamid, "status": state, "timestamp": str(at), "recipient_id": wa_id}]}

    steps = [
        ("whatsapp.message: first message, creates the contact", lambda: post(webhook(message))),
        ("whatsapp.message: the same message redelivered", lambda: post(webhook(message))),
        ("whatsapp.status: delivered (reachability recorded)", lambda: post(webhook(status("delivered", now + 1)))),
        ("whatsapp.status: the same status redelivered", lambda: post(webhook(status("delivered", now + 1)))),
        ("whatsapp.status: sent (says nothing of reach)", lambda: post(webhook(status("sent", now + 2)))),
        ("whatsapp.status: read, later (reachable already)", lambda: post(webhook(status("read", now + 3)))),
        ("whatsapp.preference: stop", lambda: post(webhook({"user_preferences": [
            {"wa_id": wa_id, "category": "marketing_messages", "value": "stop", "timestamp": now + 4}]}))),
        ("message.inbound: new contact", lambda: invoke("contact-events", {
            "type": "message.inbound", "account_id": account, "channel": "sms", "from": phone,
            "message_id": uuid.uuid4().hex, "profile_name": "Eva", "received_at": "2026-12-03T10:00:00Z"})),
        ("contact.captured: name and e-mail", lambda: invoke("contact-events", {
            "type": "contact.captured", "account_id": account, "channel": "sms", "phone": phone,
            "name": "Eva Smith", "email": "eva@example.com", "captured_by": "ai_agent"})),
        ("contacts.export: an account of one contact", lambda: invoke("contact-events", {
            "type": "contacts.export", "account_id": account})),
        ("contact.erase", lambda: invoke("contact-events", {
            "type": "contact.erase", "account_id": account, "channel": "sms", "phone": phone})),
    ]
    rows = []
    for what, send in steps:
        offset = log_size()
        send()
        # A direct invoke writes its EMF line before it answers; a webhook POST is
        # answered once stored, and its items are applied from the queue later: wait for
        # the body's own line (`WebhookItemsApplied`), written after its items'.
        webhook_post = what.startswith("whatsapp.")
        lines = []
        deadline = time.monotonic() + 60
        while True:
            lines = emf_since(offset)
            if lines and (not webhook_post or any("WebhookItemsApplied" in line for line in lines)):
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"bench_capacity: {what}: its metrics never came (see .run/watch.log "
                                 "and .run/relay.log); no figure is better than a wrong one")
            time.sleep(0.05)
        w = sum(line.get("EventWriteUnits", 0) for line in lines)
        r = sum(line.get("EventReadUnits", 0) for line in lines)
        n = sum(line.get("EventRequests", 0) for line in lines)
        rows.append((what, w, r, int(n)))
    return rows


def typical_contact(table_pk, i):
    """An item shaped like an imported contact with some history (about 700 bytes)."""
    phone = f"+4479{i:08d}"
    return {
        "pk": {"S": f"CONTACT#{table_pk}#whatsapp#{phone}"}, "sk": {"S": "PROFILE"},
        "gsi1pk": {"S": f"{table_pk}#{i % 16:02d}"}, "gsi1sk": {"S": f"whatsapp#{phone}"},
        "account_id": {"S": table_pk}, "channel": {"S": "whatsapp"}, "phone": {"S": phone},
        "name": {"S": f"Customer Number {i}"}, "first_name": {"S": "Customer"}, "last_name": {"S": f"Number {i}"},
        "email": {"S": f"customer{i}@example.com"}, "company": {"S": "Example Trading Ltd"},
        "city": {"S": "Manchester"}, "postcode": {"S": "M1 1AE"},
        "lists": {"SS": ["Newsletter", "VIP customers"]}, "tags": {"SS": ["imported", "2026"]},
        "attrs": {"M": {"Plan": {"S": "Gold"}, "Account manager": {"S": "Priya"}}},
        "whatsapp_opted": {"BOOL": True}, "status": {"S": "active"}, "anonymous": {"BOOL": False},
        "source": {"S": "import"}, "created_at": {"S": "2026-11-21T10:00:00Z"},
        "updated_at": {"S": "2026-11-21T10:00:00Z"}, "last_import_id": {"S": "imp_0123456789abcdef"},
        "version": {"N": "3"}, "whatsapp_reachable": {"BOOL": True},
        "whatsapp_reachable_at": {"S": "2026-11-21T10:00:00.000Z"},
        "consent": {"M": {"marketing": {"M": {"state": {"S": "opted_in"}, "at": {"S": "2026-11-21T10:00:00Z"},
                                               "source": {"S": "import"}}}}},
    }


def projection_rows(contacts=300, updates_per_contact_year=52, exports_per_year=12):
    """Measures both projections of by_account on scratch tables; returns table rows."""
    ddb = client("dynamodb")
    measured = {}
    for projection in ("ALL", "KEYS_ONLY"):
        name = f"bench-projection-{projection.lower()}-{uuid.uuid4().hex[:6]}"
        ddb.create_table(
            TableName=name, BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk", "gsi1pk", "gsi1sk")],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            GlobalSecondaryIndexes=[{"IndexName": "by_account", "Projection": {"ProjectionType": projection},
                                     "KeySchema": [{"AttributeName": "gsi1pk", "KeyType": "HASH"},
                                                   {"AttributeName": "gsi1sk", "KeyType": "RANGE"}]}])
        try:
            create = update = listing = 0.0
            for i in range(contacts):
                out = ddb.put_item(TableName=name, Item=typical_contact("acme", i), ReturnConsumedCapacity="TOTAL")
                create += out["ConsumedCapacity"]["CapacityUnits"]
            for i in range(contacts):
                item = typical_contact("acme", i)
                out = ddb.update_item(TableName=name, Key={"pk": item["pk"], "sk": item["sk"]},
                                      UpdateExpression="SET last_inbound_at = :t, updated_at = :t, version = :v",
                                      ExpressionAttributeValues={":t": {"S": f"2026-12-03T10:00:{i % 60:02d}Z"},
                                                                 ":v": {"N": "4"}},
                                      ReturnConsumedCapacity="TOTAL")
                update += out["ConsumedCapacity"]["CapacityUnits"]
            listed = 0
            for shard in range(16):
                start = None
                while True:
                    kwargs = {"ExclusiveStartKey": start} if start else {}
                    page = ddb.query(TableName=name, IndexName="by_account", Limit=100,
                                     KeyConditionExpression="gsi1pk = :p",
                                     ExpressionAttributeValues={":p": {"S": f"acme#{shard:02d}"}},
                                     ReturnConsumedCapacity="TOTAL", **kwargs)
                    listing += page["ConsumedCapacity"]["CapacityUnits"]
                    keys = [{"pk": it["pk"], "sk": it["sk"]} for it in page["Items"]]
                    if projection == "KEYS_ONLY" and keys:
                        got = ddb.batch_get_item(RequestItems={name: {"Keys": keys, "ConsistentRead": False}},
                                                 ReturnConsumedCapacity="TOTAL")
                        listing += sum(c["CapacityUnits"] for c in got.get("ConsumedCapacity", []))
                    listed += len(page["Items"])
                    start = page.get("LastEvaluatedKey")
                    if not start:
                        break
            assert listed == contacts, (projection, listed)
            measured[projection] = (create / contacts, update / contacts, listing / contacts)
        finally:
            ddb.delete_table(TableName=name)
    rows = []
    for projection, (create, update, listing) in measured.items():
        year = (create * WRITE_PRICE + updates_per_contact_year * update * WRITE_PRICE
                + exports_per_year * listing * READ_PRICE)  # USD per million contacts
        rows.append((projection, create, update, listing, year))
    return rows


def value_bytes(value):
    """A value's size as DynamoDB counts it (the same rules as the functions' meter,
    shared/src/aws/dynamodb/capacity.rs)."""
    (kind, v), = value.items()
    if kind == "S":
        return len(v.encode())
    if kind == "N":
        return len(v) // 2 + 1
    if kind == "SS":
        return sum(len(x.encode()) for x in v)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + value_bytes(x) for k, x in v.items())
    if kind == "L":
        return 3 + sum(1 + value_bytes(x) for x in v)
    return 1


def kb_units(item):
    """Write units of an item (what a failure is charged and not reported): a unit per KB
    of names and values, rounded up."""
    size = sum(len(name.encode()) + value_bytes(value) for name, value in item.items())
    return max(1, -(-size // 1024))


def candidate_rows(rows=100):
    """The import's write-path candidates (issue 22, item 2), each on its own 100 keys of a
    scratch table (index keys only): write and read units per row of a new book, the same
    rows again unchanged, and again with 1 row in 10 renamed. Reported units where
    DynamoDB reports them; a cancelled transaction and a batch whose every statement
    failed are charged without being reported, and are computed (kb_units)."""
    from botocore.exceptions import ClientError

    ddb = client("dynamodb")
    name = f"bench-candidates-{uuid.uuid4().hex[:6]}"
    ddb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk", "gsi1pk", "gsi1sk")],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[{"IndexName": "by_account", "Projection": {"ProjectionType": "KEYS_ONLY"},
                                 "KeySchema": [{"AttributeName": "gsi1pk", "KeyType": "HASH"},
                                               {"AttributeName": "gsi1sk", "KeyType": "RANGE"}]}])

    def items(account, renamed=False):
        out = []
        for i in range(rows):
            item = typical_contact(account, i)
            if renamed and i % 10 == 0:
                item["name"] = {"S": f"Renamed {i}"}
                item["version"] = {"N": "4"}
            out.append(item)
        return out

    def key(item):
        return {"pk": item["pk"], "sk": item["sk"]}

    def transactions(batch, update):
        """One transaction; (write units, read units)."""
        actions = []
        for item in batch:
            if update:
                actions.append({"Update": {"TableName": name, "Key": key(item), "UpdateExpression": "SET #n = :n, version = :v",
                                           "ConditionExpression": "version = :old",
                                           "ExpressionAttributeNames": {"#n": "name"},
                                           "ExpressionAttributeValues": {":n": item["name"], ":v": {"N": "4"}, ":old": {"N": "3"}}}})
            else:
                actions.append({"Put": {"TableName": name, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}})
        try:
            out = ddb.transact_write_items(TransactItems=actions, ReturnConsumedCapacity="TOTAL")
            return sum(c["CapacityUnits"] for c in out.get("ConsumedCapacity", [])), 0.0
        except ClientError as e:
            if e.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            return 2.0 * sum(kb_units(item) for item in batch), 0.0

    def statements(batch, update):
        w = 0.0
        for start in range(0, len(batch), 25):
            chunk = batch[start:start + 25]
            if update:
                sts = [{"Statement": f'UPDATE "{name}" SET "name" = ? SET "version" = ? WHERE "pk" = ? AND "sk" = ? AND "version" = ?',
                        "Parameters": [it["name"], {"N": "4"}, it["pk"], it["sk"], {"N": "3"}]} for it in chunk]
            else:
                sts = [{"Statement": f"INSERT INTO \"{name}\" VALUE {{{', '.join(repr(k) + ': ?' for k in it)}}}",
                        "Parameters": list(it.values())} for it in chunk]
            out = ddb.batch_execute_statement(Statements=sts, ReturnConsumedCapacity="TOTAL")
            reported = out.get("ConsumedCapacity", [])
            if reported:
                w += sum(c["CapacityUnits"] for c in reported)
            else:  # every statement failed: charged, not reported
                w += sum(kb_units(it) for it, r in zip(chunk, out["Responses"]) if "Error" in r)
        return w

    def read(batch):
        r = 0.0
        for start in range(0, len(batch), 100):
            out = ddb.batch_get_item(RequestItems={name: {"Keys": [key(it) for it in batch[start:start + 100]],
                                                          "ConsistentRead": False}},
                                     ReturnConsumedCapacity="TOTAL")
            r += sum(c["CapacityUnits"] for c in out.get("ConsumedCapacity", []))
        return r

    def renamed_only(batch):
        return [it for i, it in enumerate(batch) if i % 10 == 0]

    results = []
    try:
        # The previous path: every row a create in a 100-item transaction; a cancelled
        # one names the rows that exist, and the next updates the changed ones.
        acct = "cand-tx"
        new = transactions(items(acct), update=False)
        same = transactions(items(acct), update=False)
        cancelled = transactions(items(acct, renamed=True), update=False)
        updates = transactions(renamed_only(items(acct, renamed=True)), update=True)
        results.append(("100-row transactions, creates first (before)", new, same,
                        (cancelled[0] + updates[0], 0.0)))
        # Create first, each row its own PartiQL statement: existing rows fail, then are read.
        acct = "cand-insert"
        new = statements(items(acct), update=False)
        same = statements(items(acct), update=False)
        changed = statements(items(acct, renamed=True), update=False) + \
            statements(renamed_only(items(acct, renamed=True)), update=True)
        results.append(("creates first, PartiQL statements", (new, 0.0), (same, 2 * read(items(acct))),
                        (changed, 2 * read(items(acct)))))
        # Read first (eventually consistent), then statements only for new and changed rows.
        acct = "cand-read"
        r = read(items(acct))
        new = statements(items(acct), update=False)
        same_r = read(items(acct))
        changed_r = read(items(acct))
        changed = statements(renamed_only(items(acct, renamed=True)), update=True)
        results.append(("reads first, then PartiQL statements", (new, r), (0.0, same_r), (changed, changed_r)))
    finally:
        ddb.delete_table(TableName=name)
    return [(what, *(units / rows for pair in (a, b, c) for units in pair)) for what, a, b, c in results]


def print_tables():
    candidates = candidate_rows()
    width = max(len(r[0]) for r in candidates)
    print(f"\n{'import write path, per row (W write units, R read units)':{width}}  "
          "new book W/R   unchanged W/R   1 in 10 changed W/R")
    for what, nw, nr, uw, ur, cw, cr in candidates:
        print(f"{what:{width}}  {nw:5.2f} / {nr:4.2f}   {uw:5.2f} / {ur:4.2f}    {cw:5.2f} / {cr:4.2f}")
    events = event_rows()
    width = max(len(r[0]) for r in events)
    print(f"\n{'event (contact-events, release)':{width}}  write units  read units  requests")
    print("-" * (width + 36))
    for what, w, r, n in events:
        print(f"{what:{width}}  {w:11.1f}  {r:10.1f}  {n:8d}")
    projections = projection_rows()
    print("\nGSI by_account projection, measured on scratch tables (a ~700-byte contact):")
    print("projection  write units/create  write units/update  read units/contact listed  "
          "USD/year per million contacts (52 updates, 12 exports)")
    for projection, create, update, listing, year in projections:
        print(f"{projection:10}  {create:18.2f}  {update:18.2f}  {listing:25.3f}  {year:10.2f}")


if __name__ == "__main__":
    print_tables()
