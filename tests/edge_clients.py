#!/usr/bin/env python3
"""End-to-end checks of the local edge (127.0.0.1:4566) with the clients users upload
with: boto3 and the AWS CLI from PyPI (both pinned in localstack/requirements.txt). The
Rust SDK's side of the same matrix is tests/tests/edge_clients.rs.

Run with the stack up (`make up`); scripts/test.sh (`make test`, CI) runs it:

    .venv/bin/python tests/edge_clients.py          # every case
    .venv/bin/python tests/edge_clients.py -k cli   # the cases whose name contains "cli"

Cases, for each client: an empty object (the import reports `empty_file`), one byte, a
20 MB file (multipart: `aws s3 cp` and boto3's upload_file split it into parts), a key
with spaces and non-ASCII characters, upload options as S3 user metadata (DESIGN 5),
and an upload while other requests hang half-sent on other connections; plus the HTTP
exchange itself (`Expect: 100-continue` with and without a body). Every upload ends in
its import's summary.json under reports/{account}/{import_id}/, and in one import only
(checked once the relay has taken every queued S3 event).

Nothing waits on a fixed total. A report is awaited while the stack moves (the table's
item count, the functions' CPU time, the account's job item; see local_aws.wait_for) and
the wait fails after STALL_SECONDS (120) of stillness. An upload is not retried (a retry
would hide exactly the hang this file exists for: boto3 retried an empty PUT for
minutes) and fails when the edge sends nothing for STALL_SECONDS.

Prints one line per case and closes with "N passed, N failed"; exits 1 if any failed.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "localstack"))
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError, ReadTimeoutError

from local_aws import (
    ACCESS_KEY_ID,
    BUCKET,
    ENDPOINT,
    QUEUE,
    REGION,
    SECRET_ACCESS_KEY,
    STALL_SECONDS,
    TABLE,
    client,
    stack_progress,
    wait_for,
)

AWS_CLI = str(Path(sys.executable).with_name("aws"))  # the venv's, as pinned
RUN = uuid.uuid4().hex[:8]  # accounts and keys of this run
# What reads reports and items retries as usual; what uploads does not (see above).
s3, ddb, sqs = client("s3"), client("dynamodb"), client("sqs")
uploader = client("s3", retries={"total_max_attempts": 1}, read_timeout=STALL_SECONDS, connect_timeout=30)
CLI_ENV = {
    **os.environ,
    "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
    "AWS_DEFAULT_REGION": REGION, "AWS_MAX_ATTEMPTS": "1", "AWS_RETRY_MODE": "standard",
    "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
CLI_OPTIONS = ["--endpoint-url", ENDPOINT, "--cli-read-timeout", str(int(STALL_SECONDS))]

# The files, shared by both clients.
ONE_BYTE = b"7"  # a pasted list (.txt) of one line: one row, and no country to read it with
CONTACTS = "Name,Phone\nZoë Ünal,+447911123456\nSam Edge,+447400123456\n".encode()
NATIONAL = b"Name,Phone\nOlivia Edge,07911 123456\nHarry Edge,07400 123456\n"  # need default-country
OPTIONS = {"default-country": "GB", "lists": "Spring Sale,VIP", "tags": "edge-check", "on-existing": "update"}
ODD_NAME = "Liste clients été 2026 – copie (1) 名单.csv"
TWENTY_MB = 20 << 20


def twenty_mb_file():
    """Two contacts around one 20 MB cell: cheap to import (the cell is a field too long,
    a warning), and the two rows show that every part arrived in order."""
    head, tail = b"Phone,Name\n+447911123456,", b"\n+447400123456,Sam\n"
    return head + b"a" * (TWENTY_MB - len(head) - len(tail)) + tail


def account(case):
    return f"edge-{RUN}-{case}"


def key_in(acct, name, channel="whatsapp"):
    return f"imports/{acct}/{channel}/{name}"


# --- waiting for an import's report -------------------------------------------------

def summary_under(acct):
    """The account's summary.json (each case has an account of its own), or None."""
    try:
        listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"reports/{acct}/").get("Contents", [])
        keys = [o["Key"] for o in listed if o["Key"].endswith("/summary.json")]
        return json.loads(s3.get_object(Bucket=BUCKET, Key=keys[0])["Body"].read()) if keys else None
    except ClientError:
        return None  # the emulator is busy: ask again


def job_state(acct):
    """The account's job items as they change while an import runs (status, last row,
    updated_at): a scan, so only read once every few seconds."""
    pages = ddb.get_paginator("scan").paginate(
        TableName=TABLE, FilterExpression="begins_with(pk, :p) AND sk = :job",
        ExpressionAttributeValues={":p": {"S": f"IMPORT#{acct}#"}, ":job": {"S": "JOB"}},
        ProjectionExpression="#s, last_row, updated_at", ExpressionAttributeNames={"#s": "status"})
    try:
        return sorted(json.dumps(item, sort_keys=True) for page in pages for item in page["Items"])
    except ClientError:
        return None


def queue_drained():
    """No S3 event waits in the relay's queue or is being imported (the relay deletes a
    message once the import it started has answered)."""
    try:
        url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
        counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed"])["Attributes"]
    except ClientError:
        return False
    return all(int(n) == 0 for n in counts.values())


def wait_for_summary(acct, key):
    """The import's summary, waited for while the stack or the account's job moves."""
    probed = {"at": 0.0, "value": None}

    def progress():  # the stack every second, the job item every 5 s
        if time.monotonic() - probed["at"] >= 5:
            probed["at"], probed["value"] = time.monotonic(), job_state(acct)
        return stack_progress(ddb), probed["value"]

    summary = wait_for(lambda: summary_under(acct), progress, f"the report of s3://{BUCKET}/{key}", interval=0.5)
    check(summary["source"]["key"] == key, f"summary names {summary['source']['key']!r}, uploaded {key!r}")
    # One upload, one import (moto's multipart upload sent two S3 events): once the
    # relay has taken every queued event, the account has one job item.
    wait_for(queue_drained, progress, "the relay to take every queued S3 event", interval=0.5)
    jobs = job_state(acct)
    check(jobs is not None and len(jobs) == 1, f"{len(jobs or [])} imports of one upload: {jobs}")
    return summary


# --- checks ---------------------------------------------------------------------------

class Failed(Exception):
    pass


def check(ok, message):
    if not ok:
        raise Failed(message)


def rows(summary):
    return {k: v for k, v in summary["rows"].items() if v}


def expect_empty_file(summary):
    check(summary["status"] == "failed", f"status {summary['status']}")
    check((summary.get("error") or {}).get("code") == "empty_file", f"error {summary.get('error')}")
    check(summary["source"]["size_bytes"] == 0, f"size {summary['source']['size_bytes']}")
    check(rows(summary) == {}, f"rows {summary['rows']}")


def expect_one_byte(summary):
    check(summary["source"]["size_bytes"] == 1, f"size {summary['source']['size_bytes']}")
    check(summary["source"]["format"] == "txt", f"format {summary['source']['format']}")
    check(rows(summary) == {"total": 1, "rejected": 1}, f"rows {summary['rows']}")
    check(summary["status"] == "completed_with_errors", f"status {summary['status']}")


def expect_contacts(summary, size):
    check(summary["source"]["size_bytes"] == size, f"size {summary['source']['size_bytes']}, sent {size}")
    check(summary["status"] == "completed", f"status {summary['status']}: {summary.get('error')}")
    check(rows(summary) == {"total": 2, "created": 2}, f"rows {summary['rows']}")


def expect_twenty_mb(summary, key):
    expect_contacts(summary, TWENTY_MB)
    check(summary["warnings_by_code"] == {"field_too_long": 1}, f"warnings {summary['warnings_by_code']}")
    etag = s3.head_object(Bucket=BUCKET, Key=key)["ETag"].strip('"')
    check(etag.endswith("-3"), f"eTag {etag}: not a 3-part multipart upload")


def contact(acct, phone):
    item = ddb.get_item(TableName=TABLE, ConsistentRead=True,
                        Key={"pk": {"S": f"CONTACT#{acct}#whatsapp#{phone}"}, "sk": {"S": "PROFILE"}}).get("Item")
    check(item is not None, f"no contact {phone} in account {acct}")
    return item


def expect_options_applied(summary, acct):
    expect_contacts(summary, len(NATIONAL))
    olivia = contact(acct, "+447911123456")  # national numbers: default-country GB was read
    check(sorted(olivia.get("lists", {}).get("SS", [])) == ["Spring Sale", "VIP"], f"lists {olivia.get('lists')}")
    check(olivia.get("tags", {}).get("SS") == ["edge-check"], f"tags {olivia.get('tags')}")


def expect_odd_name(summary, acct):
    expect_contacts(summary, len(CONTACTS))
    name = contact(acct, "+447911123456").get("name", {}).get("S")
    check(name == "Zoë Ünal", f"name {name!r}")


# --- the HTTP exchange, and requests left hanging -------------------------------------

def edge_address():
    url = urlsplit(ENDPOINT)
    return url.hostname, url.port or 80


def raw_put(path, headers, body=b""):
    """Sends a PUT's head, and its body only after `100 Continue` when it expects one;
    returns the status lines received, in order, up to the final one."""
    host, port = edge_address()
    head = [f"PUT {path} HTTP/1.1", f"Host: {host}:{port}", *headers, "", ""]
    statuses = []
    with socket.create_connection((host, port), timeout=STALL_SECONDS) as sock:
        sock.sendall("\r\n".join(head).encode())
        reader = sock.makefile("rb")
        while True:
            try:
                status = reader.readline().decode().strip()
            except TimeoutError:
                raise Failed(f"no answer for {STALL_SECONDS:.0f}s after {statuses or 'the request'}") from None
            check(status, f"the edge closed the connection after {statuses}")
            while reader.readline() not in (b"\r\n", b""):
                pass  # headers
            statuses.append(status)
            if not status.split()[1].startswith("1"):
                return statuses
            sock.sendall(body)


@contextmanager
def requests_left_hanging(prefix):
    """Three connections, each with a PUT it never finishes, for as long as the block
    runs: headers cut off, a body cut off, and a body announced with
    `Expect: 100-continue` and withheld after the edge's 100 Continue."""
    host, port = edge_address()
    socks = []
    try:
        for head in (
            f"PUT /{BUCKET}/{prefix}/headers HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Le",
            f"PUT /{BUCKET}/{prefix}/body HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: 1000\r\n\r\n"
            + "x" * 10,
            (f"PUT /{BUCKET}/{prefix}/continue HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: 1000\r\n"
             "Expect: 100-continue\r\n\r\n"),
        ):
            sock = socket.create_connection((host, port), timeout=STALL_SECONDS)
            socks.append(sock)
            sock.sendall(head.encode())
        answer = socks[-1].recv(100)
        check(answer.startswith(b"HTTP/1.1 100 Continue"), f"no 100 Continue for a body to come: {answer!r}")
        yield
    finally:
        for sock in socks:
            sock.close()
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/").get("Contents", [])
    check(not listed, f"unfinished requests stored {[o['Key'] for o in listed]}")


def case_http_expect_continue_without_body():
    """botocore's empty PUT: the final answer comes at once, no 100 Continue first."""
    statuses = raw_put(f"/{BUCKET}/edge-checks/{RUN}/empty", ["Content-Length: 0", "Expect: 100-continue"])
    check(statuses == ["HTTP/1.1 200 OK"], f"answered {statuses}")


def case_http_expect_continue_with_body():
    """A PUT with a body still gets its 100 Continue, then the final answer."""
    statuses = raw_put(f"/{BUCKET}/edge-checks/{RUN}/three", ["Content-Length: 3", "Expect: 100-continue"], b"abc")
    check(statuses == ["HTTP/1.1 100 Continue", "HTTP/1.1 200 OK"], f"answered {statuses}")
    body = s3.get_object(Bucket=BUCKET, Key=f"edge-checks/{RUN}/three")["Body"].read()
    check(body == b"abc", f"stored {body!r}")


# --- boto3 ----------------------------------------------------------------------------

def boto3_put(acct, name, body, metadata=None):
    key = key_in(acct, name)
    started = time.monotonic()
    try:
        answer = uploader.put_object(Bucket=BUCKET, Key=key, Body=body, Metadata=metadata or {})
    except ReadTimeoutError:
        raise Failed(f"PutObject of {len(body)} bytes: no answer for {STALL_SECONDS:.0f}s") from None
    status = answer["ResponseMetadata"]["HTTPStatusCode"]
    check(status == 200, f"PutObject answered {status}")
    print(f"    put_object {len(body)} bytes: 200 in {time.monotonic() - started:.2f}s")
    return wait_for_summary(acct, key)


def case_boto3_empty_object():
    expect_empty_file(boto3_put(account("boto3-empty"), "empty.csv", b""))


def case_boto3_one_byte():
    expect_one_byte(boto3_put(account("boto3-byte"), "one.txt", ONE_BYTE))


def case_boto3_twenty_mb_multipart():
    acct = account("boto3-20mb")
    key = key_in(acct, "big.csv")
    with tempfile.NamedTemporaryFile(suffix=".csv") as f:
        f.write(twenty_mb_file())
        f.flush()
        config = TransferConfig(multipart_threshold=8 << 20, multipart_chunksize=8 << 20)
        uploader.upload_file(f.name, BUCKET, key, Config=config)
    expect_twenty_mb(wait_for_summary(acct, key), key)


def case_boto3_key_with_spaces_and_non_ascii():
    acct = account("boto3-name")
    expect_odd_name(boto3_put(acct, ODD_NAME, CONTACTS), acct)


def case_boto3_upload_options_as_metadata():
    acct = account("boto3-options")
    expect_options_applied(boto3_put(acct, "national.csv", NATIONAL, OPTIONS), acct)


def case_boto3_upload_while_requests_hang():
    acct = account("boto3-held")
    with requests_left_hanging(f"edge-held/{RUN}/boto3"):
        summary = boto3_put(acct, "contacts.csv", CONTACTS)
    expect_contacts(summary, len(CONTACTS))


# --- the AWS CLI ----------------------------------------------------------------------

def aws(*args):
    started = time.monotonic()
    done = subprocess.run([AWS_CLI, *CLI_OPTIONS, *args], check=False, env=CLI_ENV, capture_output=True, text=True)
    check(done.returncode == 0, f"aws {' '.join(args[:2])} exited {done.returncode}: {done.stderr.strip()[-800:]}")
    print(f"    aws {' '.join(args[:2])}: done in {time.monotonic() - started:.2f}s")
    return done.stdout


def cli_upload(acct, name, body, *options, command="cp"):
    """`aws s3 cp FILE s3://…` or `aws s3api put-object --body FILE`; the import's summary."""
    key = key_in(acct, name)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "upload"
        path.write_bytes(body)
        if command == "cp":
            aws("s3", "cp", str(path), f"s3://{BUCKET}/{key}", "--only-show-errors", *options)
        else:
            answer = json.loads(aws("s3api", "put-object", "--bucket", BUCKET, "--key", key, "--body", str(path),
                                    *options))
            check("ETag" in answer, f"put-object answered {answer}")
    return wait_for_summary(acct, key)


def case_cli_cp_empty_object():
    expect_empty_file(cli_upload(account("cli-cp-empty"), "empty.csv", b""))


def case_cli_put_object_empty_object():
    expect_empty_file(cli_upload(account("cli-api-empty"), "empty.csv", b"", command="put-object"))


def case_cli_cp_one_byte():
    expect_one_byte(cli_upload(account("cli-cp-byte"), "one.txt", ONE_BYTE))


def case_cli_put_object_one_byte():
    expect_one_byte(cli_upload(account("cli-api-byte"), "one.txt", ONE_BYTE, command="put-object"))


def case_cli_cp_twenty_mb_multipart():
    acct = account("cli-cp-20mb")
    key = key_in(acct, "big.csv")
    expect_twenty_mb(cli_upload(acct, "big.csv", twenty_mb_file()), key)


def case_cli_cp_key_with_spaces_and_non_ascii():
    acct = account("cli-cp-name")
    expect_odd_name(cli_upload(acct, ODD_NAME, CONTACTS), acct)


def case_cli_put_object_key_with_spaces_and_non_ascii():
    acct = account("cli-api-name")
    expect_odd_name(cli_upload(acct, ODD_NAME, CONTACTS, command="put-object"), acct)


def case_cli_cp_upload_options_as_metadata():
    acct = account("cli-cp-options")
    summary = cli_upload(acct, "national.csv", NATIONAL, "--metadata", json.dumps(OPTIONS))
    expect_options_applied(summary, acct)


def case_cli_put_object_upload_options_as_metadata():
    acct = account("cli-api-options")
    summary = cli_upload(acct, "national.csv", NATIONAL, "--metadata", json.dumps(OPTIONS), command="put-object")
    expect_options_applied(summary, acct)


def case_cli_cp_upload_while_requests_hang():
    acct = account("cli-cp-held")
    with requests_left_hanging(f"edge-held/{RUN}/cli"):
        summary = cli_upload(acct, "contacts.csv", CONTACTS)
    expect_contacts(summary, len(CONTACTS))


CASES = [(name.removeprefix("case_"), fn) for name, fn in globals().items() if name.startswith("case_")]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-k", metavar="TEXT", default="", help="run only the cases whose name contains TEXT")
    args = parser.parse_args()
    print(f"edge_clients: {ENDPOINT} with boto3 and {AWS_CLI}; accounts edge-{RUN}-*")
    passed, failed = [], []
    for name, fn in CASES:
        if args.k not in name:
            continue
        started = time.monotonic()
        try:
            fn()
        except (Failed, SystemExit) as e:  # SystemExit: local_aws.Stalled
            failed.append(name)
            print(f"FAIL {name} ({time.monotonic() - started:.1f}s): {e}", flush=True)
        except Exception:  # noqa: BLE001 - a client error fails the case, not the run
            failed.append(name)
            print(f"FAIL {name} ({time.monotonic() - started:.1f}s):\n{traceback.format_exc()}", flush=True)
        else:
            passed.append(name)
            print(f"ok   {name} ({time.monotonic() - started:.1f}s)", flush=True)
    print(f"{len(passed)} passed, {len(failed)} failed")
    if failed:
        print("failed: " + ", ".join(failed))
    sys.exit(1 if failed or not passed else 0)


if __name__ == "__main__":
    main()
