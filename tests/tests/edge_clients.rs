//! End to end: the local edge (127.0.0.1:4566) with the Rust SDK, the client the
//! functions use. The same matrix runs with boto3 and the AWS CLI in
//! `tests/edge_clients.py` (scripts/test.sh runs both): an empty object, one byte, a
//! 20 MB file in parts, a key with spaces and non-ASCII characters, upload options as
//! user metadata, and an upload while other requests hang half-sent. Each upload ends in
//! its import's summary.json, waited for while the stack makes progress.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use integration_tests::{queued_s3_events, s, ss, unique_account, Stack, BUCKET, TABLE};
use serde_json::{json, Value};

const CONTACTS: &str = "Name,Phone\nZoë Ünal,+447911123456\nSam Edge,+447400123456\n";
const TWENTY_MB: usize = 20 << 20;
const PART: usize = 8 << 20;

fn counted_rows(summary: &Value) -> Value {
    let rows = summary["rows"].as_object().expect("rows");
    Value::Object(
        rows.iter()
            .filter(|(_, n)| n.as_u64() != Some(0))
            .map(|(k, n)| (k.clone(), n.clone()))
            .collect(),
    )
}

/// Asserts that one upload made one import (moto's multipart upload sent two S3 events):
/// once the relay has taken every queued event, the account has one job item.
async fn assert_one_import(stack: &Stack, account: &str) {
    stack
        .wait_until("the relay to take every queued S3 event", || async {
            (queued_s3_events()? == 0).then_some(())
        })
        .await;
    let jobs = stack
        .ddb
        .scan()
        .table_name(TABLE)
        .filter_expression("begins_with(pk, :p) AND sk = :job")
        .expression_attribute_values(":p", AttributeValue::S(format!("IMPORT#{account}#")))
        .expression_attribute_values(":job", AttributeValue::S("JOB".into()))
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .expect("scan job items");
    assert_eq!(jobs.len(), 1, "imports of one upload: {jobs:?}");
}

fn assert_two_created(summary: &Value, size: usize) {
    assert_eq!(summary["source"]["size_bytes"], json!(size));
    assert_eq!(summary["status"], "completed", "{summary}");
    assert_eq!(counted_rows(summary), json!({"total": 2, "created": 2}));
}

#[tokio::test]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn empty_object_reports_empty_file() {
    let stack = Stack::connect().await;
    let account = unique_account("edge-rust-empty");
    let summary = stack
        .import(&account, "whatsapp", "empty.csv", b"", &[])
        .await;
    assert_one_import(&stack, &account).await;
    assert_eq!(summary["status"], "failed");
    assert_eq!(summary["error"]["code"], "empty_file", "{summary}");
    assert_eq!(summary["source"]["size_bytes"], 0);
    assert_eq!(counted_rows(&summary), json!({}));
}

#[tokio::test]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn one_byte_is_one_row() {
    let stack = Stack::connect().await;
    let account = unique_account("edge-rust-byte");
    // A pasted list of one line, with no country to read "7" with.
    let summary = stack
        .import(&account, "whatsapp", "one.txt", b"7", &[])
        .await;
    assert_one_import(&stack, &account).await;
    assert_eq!(summary["source"]["size_bytes"], 1);
    assert_eq!(summary["source"]["format"], "txt");
    assert_eq!(summary["status"], "completed_with_errors", "{summary}");
    assert_eq!(counted_rows(&summary), json!({"total": 1, "rejected": 1}));
}

#[tokio::test]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn twenty_mb_in_three_parts() {
    let stack = Stack::connect().await;
    let account = unique_account("edge-rust-20mb");
    let key = format!("imports/{account}/whatsapp/big.csv");
    // Two contacts around one 20 MB cell: a warning, and proof the parts joined in order.
    let (head, tail) = (
        &b"Phone,Name\n+447911123456,"[..],
        &b"\n+447400123456,Sam\n"[..],
    );
    let mut body = head.to_vec();
    body.resize(TWENTY_MB - tail.len(), b'a');
    body.extend_from_slice(tail);

    let upload = stack
        .s3
        .create_multipart_upload()
        .bucket(BUCKET)
        .key(&key)
        .send()
        .await
        .expect("create multipart upload");
    let upload_id = upload.upload_id().expect("upload id");
    let mut parts = Vec::new();
    for (i, chunk) in body.chunks(PART).enumerate() {
        let number = i32::try_from(i + 1).expect("few parts");
        let part = stack
            .s3
            .upload_part()
            .bucket(BUCKET)
            .key(&key)
            .upload_id(upload_id)
            .part_number(number)
            .body(chunk.to_vec().into())
            .send()
            .await
            .expect("upload part");
        parts.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(part.e_tag().map(String::from))
                .build(),
        );
    }
    stack
        .s3
        .complete_multipart_upload()
        .bucket(BUCKET)
        .key(&key)
        .upload_id(upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .expect("complete multipart upload");

    let summary = stack.wait_for_summary(&account, &key, 1).await;
    assert_one_import(&stack, &account).await;
    assert_two_created(&summary, TWENTY_MB);
    assert_eq!(summary["warnings_by_code"], json!({"field_too_long": 1}));
    let head = stack
        .s3
        .head_object()
        .bucket(BUCKET)
        .key(&key)
        .send()
        .await
        .expect("head");
    assert!(
        head.e_tag()
            .is_some_and(|e| e.trim_matches('"').ends_with("-3")),
        "a 3-part upload: {:?}",
        head.e_tag()
    );
}

#[tokio::test]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn key_with_spaces_and_non_ascii() {
    let stack = Stack::connect().await;
    let account = unique_account("edge-rust-name");
    let name = "Liste clients été 2026 – copie (1) 名单.csv";
    let summary = stack
        .import(&account, "whatsapp", name, CONTACTS.as_bytes(), &[])
        .await;
    assert_one_import(&stack, &account).await;
    assert_eq!(
        summary["source"]["key"],
        format!("imports/{account}/whatsapp/{name}")
    );
    assert_two_created(&summary, CONTACTS.len());
    let zoe = stack
        .contact(&account, "whatsapp", "+447911123456")
        .await
        .expect("saved");
    assert_eq!(s(&zoe, "name").as_deref(), Some("Zoë Ünal"));
}

#[tokio::test]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn upload_options_as_user_metadata() {
    let stack = Stack::connect().await;
    let account = unique_account("edge-rust-options");
    // National numbers: only default-country makes them importable.
    let body = b"Name,Phone\nOlivia Edge,07911 123456\nHarry Edge,07400 123456\n";
    let summary = stack
        .import(
            &account,
            "whatsapp",
            "national.csv",
            body,
            &[
                ("default-country", "GB"),
                ("lists", "Spring Sale,VIP"),
                ("tags", "edge-check"),
                ("on-existing", "update"),
            ],
        )
        .await;
    assert_one_import(&stack, &account).await;
    assert_two_created(&summary, body.len());
    let olivia = stack
        .contact(&account, "whatsapp", "+447911123456")
        .await
        .expect("saved");
    assert_eq!(ss(&olivia, "lists"), ["Spring Sale", "VIP"]);
    assert_eq!(ss(&olivia, "tags"), ["edge-check"]);
}

/// Connections that each hold a PUT unfinished until dropped: headers cut off, a body
/// cut off, and a body announced with `Expect: 100-continue` and withheld after the
/// edge's 100 Continue.
struct HangingRequests(Vec<TcpStream>);

impl HangingRequests {
    fn open(prefix: &str) -> HangingRequests {
        let host = "127.0.0.1:4566";
        let heads = [
            format!("PUT /{BUCKET}/{prefix}/headers HTTP/1.1\r\nHost: {host}\r\nContent-Le"),
            format!(
                "PUT /{BUCKET}/{prefix}/body HTTP/1.1\r\nHost: {host}\r\nContent-Length: 1000\r\n\r\n{}",
                "x".repeat(10)
            ),
            format!(
                "PUT /{BUCKET}/{prefix}/continue HTTP/1.1\r\nHost: {host}\r\nContent-Length: 1000\r\n\
                 Expect: 100-continue\r\n\r\n"
            ),
        ];
        let mut streams = Vec::new();
        for head in heads {
            let mut stream = TcpStream::connect(host).expect("connect to the edge");
            stream.write_all(head.as_bytes()).expect("send");
            streams.push(stream);
        }
        let mut answer = [0u8; 25];
        let last = streams.last_mut().expect("three");
        last.set_read_timeout(Some(integration_tests::stall_limit()))
            .expect("timeout");
        last.read_exact(&mut answer)
            .expect("the edge answers an expectation");
        assert_eq!(&answer, b"HTTP/1.1 100 Continue\r\n\r\n");
        HangingRequests(streams)
    }
}

impl Drop for HangingRequests {
    fn drop(&mut self) {
        for stream in &self.0 {
            // Already gone is fine: the edge may have given up on it.
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

#[tokio::test]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn upload_while_other_requests_hang() {
    let stack = Stack::connect().await;
    let account = unique_account("edge-rust-held");
    let prefix = format!("edge-held/{account}");
    let hanging = HangingRequests::open(&prefix);
    let summary = stack
        .import(
            &account,
            "whatsapp",
            "contacts.csv",
            CONTACTS.as_bytes(),
            &[],
        )
        .await;
    assert_one_import(&stack, &account).await;
    assert_two_created(&summary, CONTACTS.len());
    drop(hanging);
    let stored = stack
        .s3
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix(format!("{prefix}/"))
        .send()
        .await
        .expect("list");
    assert!(
        stored.contents().is_empty(),
        "unfinished requests stored nothing"
    );
}
