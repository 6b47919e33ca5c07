//! Helpers for the end-to-end tests: they talk to the stack `make up` starts (the
//! emulator on 127.0.0.1:4566, the functions under `cargo lambda watch` on :9000, the
//! relay) with the real AWS SDK, exactly as a user or another system would.
//!
//! The tests run only when `E2E=1` (as `make test` sets after `make up`); plain
//! `cargo test` skips them with a message, because they need the stack.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;

/// The bucket `localstack/init.py` creates.
pub const BUCKET: &str = "contact-uploads";
/// The table `localstack/init.py` creates.
pub const TABLE: &str = "contacts";
const ENDPOINT: &str = "http://127.0.0.1:4566";
const INVOKE: &str = "http://127.0.0.1:9000/2015-03-31/functions";

/// Whether the end-to-end tests should run; prints why not.
pub fn enabled() -> bool {
    let on = std::env::var("E2E").is_ok_and(|v| v == "1");
    if !on {
        eprintln!("skipped: end-to-end tests need the local stack; run `make test` (or `make up` then `E2E=1 cargo test -p integration-tests`)");
    }
    on
}

/// A unique account id, so tests never see each other's contacts.
pub fn unique_account(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{nanos:x}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Clients for the local stack.
pub struct Stack {
    /// S3.
    pub s3: aws_sdk_s3::Client,
    /// DynamoDB.
    pub ddb: aws_sdk_dynamodb::Client,
}

impl Stack {
    /// Connects to the emulator.
    pub async fn connect() -> Stack {
        let credentials = aws_sdk_s3::config::Credentials::new("test", "test", None, None, "e2e");
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(ENDPOINT)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(credentials)
            .load()
            .await;
        Stack {
            s3: aws_sdk_s3::Client::new(&sdk),
            ddb: aws_sdk_dynamodb::Client::new(&sdk),
        }
    }

    /// Uploads a file the way a user does (the emulator's notification and the relay
    /// trigger the import).
    pub async fn upload(&self, key: &str, body: &[u8], metadata: &[(&str, &str)]) {
        let mut put = self
            .s3
            .put_object()
            .bucket(BUCKET)
            .key(key)
            .body(body.to_vec().into());
        for (k, v) in metadata {
            put = put.metadata(*k, *v);
        }
        put.send().await.expect("upload to the emulator");
    }

    /// Every finished summary.json under the account's reports, oldest first.
    pub async fn summaries(&self, account: &str) -> Vec<Value> {
        let listed = self
            .s3
            .list_objects_v2()
            .bucket(BUCKET)
            .prefix(format!("reports/{account}/"))
            .send()
            .await
            .expect("list reports");
        let mut found = Vec::new();
        for object in listed.contents() {
            let Some(key) = object.key().filter(|k| k.ends_with("/summary.json")) else {
                continue;
            };
            let doc: Value = serde_json::from_str(&self.text(key).await).expect("summary is JSON");
            found.push(doc);
        }
        found.sort_by(|a, b| a["started_at"].as_str().cmp(&b["started_at"].as_str()));
        found
    }

    /// Waits for the summary of the upload of `key` (the `n`-th one when uploaded more
    /// than once, counting from 1).
    pub async fn wait_for_summary(&self, account: &str, key: &str, n: usize) -> Value {
        self.wait_for_summary_within(account, key, n, Duration::from_secs(180))
            .await
    }

    /// [`Stack::wait_for_summary`] with a longer patience, for big files.
    pub async fn wait_for_summary_within(
        &self,
        account: &str,
        key: &str,
        n: usize,
        patience: Duration,
    ) -> Value {
        let deadline = Instant::now() + patience;
        loop {
            let matching: Vec<Value> = self
                .summaries(account)
                .await
                .into_iter()
                .filter(|s| s["source"]["key"] == key)
                .collect();
            if matching.len() >= n {
                return matching[n - 1].clone();
            }
            assert!(
                Instant::now() < deadline,
                "no summary for {key} within 180 s (is `make up` running?)"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Uploads and waits for the import's summary.
    pub async fn import(
        &self,
        account: &str,
        channel: &str,
        name: &str,
        body: &[u8],
        metadata: &[(&str, &str)],
    ) -> Value {
        let key = format!("imports/{account}/{channel}/{name}");
        let before = self
            .summaries(account)
            .await
            .into_iter()
            .filter(|s| s["source"]["key"] == key.as_str())
            .count();
        self.upload(&key, body, metadata).await;
        self.wait_for_summary(account, &key, before + 1).await
    }

    /// An object's text.
    pub async fn text(&self, key: &str) -> String {
        let out = self
            .s3
            .get_object()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("get {key}: {e}"));
        let bytes = out.body.collect().await.expect("read body").into_bytes();
        String::from_utf8(bytes.to_vec()).expect("utf-8 report")
    }

    /// rows.csv of a summary, parsed: header, then records.
    pub async fn rows_report(&self, summary: &Value) -> Vec<Vec<String>> {
        let key = summary["rows_report_key"]
            .as_str()
            .expect("rows_report_key");
        let text = self.text(key).await;
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(text.as_bytes());
        reader
            .records()
            .map(|r| r.expect("valid csv").iter().map(str::to_string).collect())
            .collect()
    }

    /// A contact item, read consistently.
    pub async fn contact(
        &self,
        account: &str,
        channel: &str,
        e164: &str,
    ) -> Option<HashMap<String, AttributeValue>> {
        self.item(&format!("CONTACT#{account}#{channel}#{e164}"), "PROFILE")
            .await
    }

    /// Any item.
    pub async fn item(&self, pk: &str, sk: &str) -> Option<HashMap<String, AttributeValue>> {
        let out = self
            .ddb
            .get_item()
            .table_name(TABLE)
            .consistent_read(true)
            .key("pk", AttributeValue::S(pk.into()))
            .key("sk", AttributeValue::S(sk.into()))
            .send()
            .await
            .expect("get item");
        out.item().cloned()
    }

    /// Writes an item as-is (to set up archived or blocked contacts, account settings).
    pub async fn put_item(&self, item: HashMap<String, AttributeValue>) {
        self.ddb
            .put_item()
            .table_name(TABLE)
            .set_item(Some(item))
            .send()
            .await
            .expect("put item");
    }

    /// Contact items of an account (scan; test data is small).
    pub async fn contacts_of(&self, account: &str) -> Vec<HashMap<String, AttributeValue>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .ddb
                .scan()
                .table_name(TABLE)
                .filter_expression("begins_with(pk, :p)")
                .expression_attribute_values(":p", AttributeValue::S(format!("CONTACT#{account}#")))
                .set_exclusive_start_key(start)
                .send()
                .await
                .expect("scan");
            items.extend(out.items().iter().cloned());
            start = out.last_evaluated_key().cloned();
            if start.is_none() {
                return items;
            }
        }
    }
}

/// Asserts that the account's contacts are exactly `expected` (E.164 phones), each
/// stored once; returns the contact items for further checks.
pub async fn assert_contacts_exactly(
    stack: &Stack,
    account: &str,
    expected: &std::collections::HashSet<String>,
) -> Vec<HashMap<String, AttributeValue>> {
    let contacts = stack.contacts_of(account).await;
    let stored: Vec<String> = contacts.iter().filter_map(|c| s(c, "phone")).collect();
    let unique: std::collections::HashSet<String> = stored.iter().cloned().collect();
    assert_eq!(stored.len(), unique.len(), "no duplicates");
    assert_eq!(
        &unique, expected,
        "every valid contact present once, nothing else"
    );
    contacts
}

/// Invokes a function through the Lambda runtime API (`cargo lambda watch`): the
/// answer, or the runtime's error document.
pub fn invoke(function: &str, payload: &Value) -> Result<Value, Value> {
    let url = format!("{INVOKE}/{function}/invocations");
    match ureq::post(&url)
        .timeout(Duration::from_secs(300))
        .send_json(payload.clone())
    {
        Ok(response) => {
            let body: Value = response.into_json().expect("JSON answer");
            if body.get("errorType").is_some() {
                Err(body)
            } else {
                Ok(body)
            }
        }
        Err(ureq::Error::Status(_, response)) => Err(response.into_json().unwrap_or(Value::Null)),
        Err(e) => panic!("invoke {function}: {e} (is `make up` running?)"),
    }
}

/// A string attribute.
pub fn s(item: &HashMap<String, AttributeValue>, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

/// A string-set attribute, sorted.
pub fn ss(item: &HashMap<String, AttributeValue>, name: &str) -> Vec<String> {
    let mut v: Vec<String> = item
        .get(name)
        .and_then(|v| v.as_ss().ok())
        .cloned()
        .unwrap_or_default();
    v.sort();
    v
}

/// A boolean attribute.
pub fn b(item: &HashMap<String, AttributeValue>, name: &str) -> Option<bool> {
    item.get(name).and_then(|v| v.as_bool().ok()).copied()
}

/// Reads a repository file (fixtures and samples).
pub fn repo_file(path: &str) -> Vec<u8> {
    let full = format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}
