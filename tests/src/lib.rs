//! Helpers for the end-to-end tests: they talk to the stack `make up` starts (the
//! emulator on 127.0.0.1:4566, the functions under `cargo lambda watch` on :9000, the
//! relay) with the real AWS SDK, exactly as a user or another system would.
//!
//! The end-to-end tests are `#[ignore]`d, so a plain `cargo test` lists them as ignored
//! rather than passing them without the stack. With the stack up (`make up`), run them
//! with `cargo test -p integration-tests -- --ignored`; `make test` does both.
//!
//! Waits are progress-based ([`Stack::wait_until`]): they fail when nothing in the stack
//! has moved for [`stall_limit`], never after a fixed total, so a busy machine makes them
//! slower, not red.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;

pub mod browser;

/// The bucket `localstack/init.py` creates.
pub const BUCKET: &str = "contact-uploads";
/// The table `localstack/init.py` creates.
pub const TABLE: &str = "contacts";
/// The repository's root: `scripts/`, and `.run/` with the stack's pid files and logs.
pub const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
const ENDPOINT: &str = "http://127.0.0.1:4566";
const INVOKE: &str = "http://127.0.0.1:9000/2015-03-31/functions";
/// The fault proxy's control API (`localstack/fault_proxy.py`).
pub const PROXY: &str = "http://127.0.0.1:4567/__proxy";
/// How often a wait asks its own question (a summary there yet?).
const POLL_EVERY: Duration = Duration::from_millis(300);
/// How often a wait looks at the stack's progress (a few requests and a `ps`).
const PROBE_EVERY: Duration = Duration::from_secs(5);

/// The queue the emulator's EventBridge forwards import completion events to.
pub const IMPORT_EVENTS_QUEUE: &str = "import-events";

/// How long an end-to-end wait tolerates seeing nothing move in the stack:
/// `E2E_STALL_SECONDS`, default 120. A running import creates items and uses CPU all
/// the time, so two minutes of stillness means a stuck stack, not a slow one.
pub fn stall_limit() -> Duration {
    let seconds = std::env::var("E2E_STALL_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(120);
    Duration::from_secs(seconds)
}

/// What moves while the stack works, read cheaply: never a table scan (moto walks the
/// whole table for each, which takes seconds once the tests have written a few
/// thousand contacts). Any change counts as progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// The table's item count: every import creates its job item and its new contacts.
    pub items: Option<i64>,
    /// Objects under `reports/`: every finished import writes its summary and rows.csv.
    pub reports: Option<usize>,
    /// CPU seconds of the functions under this checkout's `cargo lambda watch`: a
    /// re-import that changes nothing still works.
    pub function_cpu_seconds: Option<u64>,
    /// Requests the fault proxy forwarded, when it runs.
    pub proxied: Option<u64>,
}

/// One process under this checkout's `cargo lambda watch`, from `ps`.
#[derive(Debug, Clone)]
pub struct FunctionProcess {
    /// Process id.
    pub pid: u32,
    /// The function (the binary's name: `import-contacts`, `contact-events`).
    pub name: String,
    /// CPU time used so far, in whole seconds.
    pub cpu_seconds: u64,
}

/// The function processes under the `cargo lambda watch` this checkout started (the
/// descendants of the pid in `.run/watch.pid`), so that a test never touches another
/// checkout's stack. Empty when no watch of ours runs.
pub fn function_processes() -> Vec<FunctionProcess> {
    let Some(watch) = std::fs::read_to_string(format!("{ROOT}/.run/watch.pid"))
        .ok()
        .and_then(|p| p.trim().parse::<u32>().ok())
    else {
        return Vec::new();
    };
    let Ok(out) = std::process::Command::new("ps")
        .args(["-e", "-o", "pid=,ppid=,times=,comm="])
        .output()
    else {
        return Vec::new();
    };
    let table: Vec<(u32, u32, u64, String)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let mut cells = line.split_whitespace();
            let pid = cells.next()?.parse().ok()?;
            let ppid = cells.next()?.parse().ok()?;
            let cpu = cells.next()?.parse().ok()?;
            Some((pid, ppid, cpu, cells.collect::<Vec<_>>().join(" ")))
        })
        .collect();
    let mut ours = vec![watch];
    let mut found = Vec::new();
    while let Some(parent) = ours.pop() {
        for (pid, ppid, cpu, name) in &table {
            if *ppid == parent {
                ours.push(*pid);
                if name == "import-contacts" || name == "contact-events" {
                    found.push(FunctionProcess {
                        pid: *pid,
                        name: name.clone(),
                        cpu_seconds: *cpu,
                    });
                }
            }
        }
    }
    found
}

/// Requests the fault proxy has forwarded since its last reset; `None` when no proxy runs.
pub fn proxied_requests() -> Option<u64> {
    let stats: Value = ureq::get(&format!("{PROXY}/stats"))
        .timeout(Duration::from_secs(2))
        .call()
        .ok()?
        .into_json()
        .ok()?;
    Some(
        stats["requests"]
            .as_object()?
            .values()
            .filter_map(Value::as_u64)
            .sum(),
    )
}

/// The queue `localstack/init.py` has the bucket notify (the relay takes from it).
pub const QUEUE: &str = "contact-uploads-events";

/// S3 events queued for the relay and not yet done with: waiting, being imported (the
/// relay deletes a message once the import it started has answered) or delayed; `None`
/// when the emulator does not answer. Asked with SQS's JSON protocol directly, which
/// the emulator takes unsigned: the tests need no SQS client for this one question.
pub fn queued_s3_events() -> Option<u64> {
    let sqs = |target: &str, body: Value| -> Option<Value> {
        ureq::post(ENDPOINT)
            .timeout(Duration::from_secs(10))
            .set("X-Amz-Target", &format!("AmazonSQS.{target}"))
            .set("Content-Type", "application/x-amz-json-1.0")
            // Only its credential scope matters: it names the service.
            .set(
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/sqs/aws4_request, \
                 SignedHeaders=host, Signature=0",
            )
            .send_json(body)
            .ok()?
            .into_json()
            .ok()
    };
    let url = sqs("GetQueueUrl", serde_json::json!({"QueueName": QUEUE}))?["QueueUrl"].clone();
    let attributes = sqs(
        "GetQueueAttributes",
        serde_json::json!({"QueueUrl": url, "AttributeNames": [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ]}),
    )?;
    attributes["Attributes"]
        .as_object()?
        .values()
        .map(|n| n.as_str()?.parse::<u64>().ok())
        .sum()
}

/// Routes the functions through the fault proxy for as long as it lives: watch is
/// restarted with `FAULT_PROXY=1 scripts/up.sh` (which starts the proxy if needed), and
/// on drop restarted on the default, direct path to the emulator. By default the
/// functions talk to the emulator directly, so only the tests that inject faults pay for
/// the proxy; tests that hold this at the same time share one restart.
pub struct ThroughFaultProxy(());

static PROXY_USERS: Mutex<usize> = Mutex::new(0);

impl ThroughFaultProxy {
    /// Restarts watch through the proxy (unless another test of this process already did).
    pub fn route_functions() -> ThroughFaultProxy {
        let mut users = PROXY_USERS.lock().unwrap_or_else(|e| e.into_inner());
        if *users == 0 {
            restart_watch("FAULT_PROXY=1");
        }
        *users += 1;
        ThroughFaultProxy(())
    }

    /// Sets the proxy's faults (`{}`: all off); see `localstack/fault_proxy.py`.
    pub fn set_faults(&self, faults: &Value) {
        ureq::post(&format!("{PROXY}/faults"))
            .send_json(faults.clone())
            .expect("the fault proxy answers (FAULT_PROXY=1 scripts/up.sh starts it)");
    }

    /// The proxy's counters: `requests` and `injected`, by service and operation.
    pub fn stats(&self) -> Value {
        ureq::get(&format!("{PROXY}/stats"))
            .call()
            .expect("the fault proxy answers")
            .into_json()
            .expect("stats are JSON")
    }
}

impl Drop for ThroughFaultProxy {
    fn drop(&mut self) {
        let mut users = PROXY_USERS.lock().unwrap_or_else(|e| e.into_inner());
        *users -= 1;
        if *users == 0 {
            if let Err(e) = ureq::post(&format!("{PROXY}/faults")).send_json(serde_json::json!({}))
            {
                eprintln!("could not switch the proxy's faults off: {e}");
            }
            // No panic here: this may run while a failed test unwinds.
            if let Err(e) = try_restart_watch("") {
                eprintln!("could not put the functions back on the direct path: {e}");
            }
        }
    }
}

/// Restarts `cargo lambda watch` (both functions) with `env` (shell assignments such as
/// `FAULT_PROXY=1 IMPORT_TIME_LIMIT_SECONDS=20`; empty for the defaults), as `make up`
/// starts it. Kills what the functions are doing: the relay retries those invokes.
pub fn restart_watch(env: &str) {
    if let Err(e) = try_restart_watch(env) {
        panic!("{e}");
    }
}

/// [`restart_watch`] that reports failure instead of panicking (for `Drop`).
pub fn try_restart_watch(env: &str) -> Result<(), String> {
    let status = std::process::Command::new("bash")
        .current_dir(ROOT)
        .args([
            "-c",
            &format!("scripts/down.sh watch && {env} scripts/up.sh"),
        ])
        .status()
        .map_err(|e| format!("cannot run scripts/up.sh: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "restarting the functions ({env} scripts/up.sh) failed: {status}"
        ))
    }
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
    /// SQS (the webhook queue and its dead letters).
    pub sqs: aws_sdk_sqs::Client,
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
            sqs: aws_sdk_sqs::Client::new(&sdk),
        }
    }

    /// The URL of queue `name` (`localstack/init.py` creates them).
    pub async fn queue_url(&self, name: &str) -> String {
        let answer = self.sqs.get_queue_url().queue_name(name).send().await;
        let answer = answer.unwrap_or_else(|e| panic!("queue {name}: {e:?}"));
        answer.queue_url().unwrap_or_default().to_string()
    }

    /// Messages in queue `name`, visible and in flight.
    pub async fn queued_messages(&self, name: &str) -> Option<u64> {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let url = self.queue_url(name).await;
        let answer = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(A::ApproximateNumberOfMessages)
            .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .ok()?;
        let attributes = answer.attributes()?;
        let count = |name: &A| attributes.get(name)?.parse::<u64>().ok();
        Some(
            count(&A::ApproximateNumberOfMessages)?
                + count(&A::ApproximateNumberOfMessagesNotVisible)?,
        )
    }

    /// The completion events (their `detail`) of import `import_id` received so far on
    /// the `import-events` queue, where the emulator's EventBridge rule forwards them
    /// (DESIGN 15). Every message read is deleted and kept for this process's tests, so
    /// tests running side by side never take each other's events.
    pub async fn completion_events(&self, import_id: &str) -> Vec<Value> {
        static RECEIVED: std::sync::Mutex<Vec<Value>> = std::sync::Mutex::new(Vec::new());
        let url = self.queue_url(IMPORT_EVENTS_QUEUE).await;
        loop {
            let answer = self
                .sqs
                .receive_message()
                .queue_url(&url)
                .max_number_of_messages(10)
                .send()
                .await
                .expect("receive import events");
            let messages = answer.messages();
            if messages.is_empty() {
                break;
            }
            for message in messages {
                let event: Value =
                    serde_json::from_str(message.body().unwrap_or_default()).expect("event JSON");
                assert_eq!(event["source"], "contact-book", "{event}");
                assert_eq!(event["detail-type"], "Contact Import Completed", "{event}");
                RECEIVED
                    .lock()
                    .expect("events lock")
                    .push(event["detail"].clone());
                if let Some(receipt) = message.receipt_handle() {
                    let _ = self
                        .sqs
                        .delete_message()
                        .queue_url(&url)
                        .receipt_handle(receipt)
                        .send()
                        .await;
                }
            }
        }
        let received = RECEIVED.lock().expect("events lock");
        received
            .iter()
            .filter(|detail| detail["import_id"] == import_id)
            .cloned()
            .collect()
    }

    /// Waits for import `import_id`'s completion event, then for its job item to say
    /// the event was published (no `completion_event: pending`), and answers every
    /// event received for it by then: exactly one, when the promise holds.
    pub async fn wait_for_completion_events(&self, account: &str, import_id: &str) -> Vec<Value> {
        let job_pk = format!("IMPORT#{account}#{import_id}");
        self.wait_until(&format!("the completion event of {import_id}"), || async {
            let events = self.completion_events(import_id).await;
            let job = self.item(&job_pk, "JOB").await?;
            let published = !events.is_empty() && !job.contains_key("completion_event");
            published.then_some(events)
        })
        .await
    }

    /// Waits until the webhook queue holds nothing: every stored webhook was applied
    /// (or given up), as long as the stack moves.
    pub async fn wait_for_webhooks_applied(&self) {
        self.wait_until("the webhook queue to drain", || async {
            (self.queued_messages(whatsapp::WEBHOOK_QUEUE).await == Some(0)).then_some(())
        })
        .await
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
        self.try_summaries(account).await.expect("list reports")
    }

    /// [`Stack::summaries`], or the emulator's error (moto answers 500 now and then
    /// under load).
    pub async fn try_summaries(&self, account: &str) -> Result<Vec<Value>, String> {
        let listed = self
            .s3
            .list_objects_v2()
            .bucket(BUCKET)
            .prefix(format!("reports/{account}/"))
            .send()
            .await
            .map_err(|e| aws_sdk_s3::error::DisplayErrorContext(e).to_string())?;
        let mut found = Vec::new();
        for object in listed.contents() {
            let Some(key) = object.key().filter(|k| k.ends_with("/summary.json")) else {
                continue;
            };
            let doc: Value = serde_json::from_str(&self.text(key).await).expect("summary is JSON");
            found.push(doc);
        }
        found.sort_by(|a, b| a["started_at"].as_str().cmp(&b["started_at"].as_str()));
        Ok(found)
    }

    /// What moves in the stack now (see [`Progress`]).
    pub async fn progress(&self) -> Progress {
        let items = self
            .ddb
            .describe_table()
            .table_name(TABLE)
            .send()
            .await
            .ok()
            .and_then(|t| t.table().and_then(|t| t.item_count()));
        let reports = self
            .s3
            .list_objects_v2()
            .bucket(BUCKET)
            .prefix("reports/")
            .into_paginator()
            .send()
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .map(|page| page.ok().map(|p| p.contents().len()))
            .sum::<Option<usize>>();
        let functions = function_processes();
        Progress {
            items,
            reports,
            function_cpu_seconds: (!functions.is_empty())
                .then(|| functions.iter().map(|f| f.cpu_seconds).sum()),
            proxied: proxied_requests(),
        }
    }

    /// Calls `poll` until it answers `Some`, and returns that answer. Fails (panics,
    /// naming `what`) only when [`Stack::progress`] has not changed for [`stall_limit`]:
    /// however long a busy machine takes, a wait lasts while the stack moves.
    pub async fn wait_until<T, F, Fut>(&self, what: &str, mut poll: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        let limit = stall_limit();
        let mut seen = self.progress().await;
        let (mut moved, mut probed) = (Instant::now(), Instant::now());
        loop {
            if let Some(answer) = poll().await {
                return answer;
            }
            if probed.elapsed() >= PROBE_EVERY {
                probed = Instant::now();
                let now = self.progress().await;
                if now != seen {
                    seen = now;
                    moved = Instant::now();
                } else if moved.elapsed() >= limit {
                    panic!(
                        "{what}: nothing moved in the stack for {limit:?} (still {seen:?}); \
                         is `make up` running? See .run/relay.log and .run/watch.log"
                    );
                }
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// Waits for the summary of the upload of `key` (the `n`-th one when uploaded more
    /// than once, counting from 1), as long as the stack makes progress.
    pub async fn wait_for_summary(&self, account: &str, key: &str, n: usize) -> Value {
        self.wait_until(&format!("summary {n} of {key}"), || async move {
            let matching: Vec<Value> = self
                .try_summaries(account)
                .await
                .ok()? // the emulator is busy: ask again
                .into_iter()
                .filter(|s| s["source"]["key"] == key)
                .collect();
            matching.get(n - 1).cloned()
        })
        .await
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

    /// Invokes a function whose work may take long (an export of a large account): the
    /// invocation runs on its own thread, and the wait lasts while the stack makes
    /// progress ([`Stack::wait_until`]), with no fixed total.
    pub async fn invoke_while_moving(
        &self,
        function: &str,
        payload: &Value,
    ) -> Result<Value, Value> {
        let answer = std::sync::Arc::new(Mutex::new(None));
        let (slot, function_name, payload) =
            (answer.clone(), function.to_string(), payload.clone());
        std::thread::spawn(move || {
            // A transport error panics in invoke_within: answer it rather than leave
            // the wait to find out by stalling.
            let result = std::panic::catch_unwind(|| invoke_within(&function_name, &payload, None))
                .unwrap_or_else(|_| {
                    Err(Value::String(format!(
                        "{function_name} could not be invoked (is `make up` running?)"
                    )))
                });
            *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
        });
        self.wait_until(&format!("the answer of {function}"), || {
            let answer = answer.clone();
            async move { answer.lock().unwrap_or_else(|e| e.into_inner()).take() }
        })
        .await
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
    invoke_within(function, payload, Some(Duration::from_secs(300)))
}

/// [`invoke`] with no timeout of its own, for the caller to bound (see
/// [`Stack::invoke_while_moving`]).
fn invoke_within(
    function: &str,
    payload: &Value,
    timeout: Option<Duration>,
) -> Result<Value, Value> {
    let url = format!("{INVOKE}/{function}/invocations");
    let mut request = ureq::post(&url);
    if let Some(timeout) = timeout {
        request = request.timeout(timeout);
    }
    match request.send_json(payload.clone()) {
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

/// Meta's WhatsApp webhook bodies (DESIGN section 13), and the business number they
/// arrive through.
pub mod whatsapp {
    use std::collections::HashMap;

    use aws_sdk_dynamodb::types::AttributeValue;
    use serde_json::{json, Value};

    use crate::{unique_account, Stack};

    /// A fresh account owning a fresh business number: the account and the number's
    /// `phone_number_id`.
    pub async fn business_number(stack: &Stack, prefix: &str) -> (String, String) {
        let account = unique_account(prefix);
        let phone_number_id = another_business_number(stack, &account).await;
        (account, phone_number_id)
    }

    /// A fresh business number (another business portfolio's) of `account`: its
    /// `phone_number_id`.
    pub async fn another_business_number(stack: &Stack, account: &str) -> String {
        let phone_number_id = format!(
            "{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        );
        let item = HashMap::from([
            (
                "pk".to_string(),
                AttributeValue::S(format!("WABA#{phone_number_id}")),
            ),
            ("sk".to_string(), AttributeValue::S("ACCOUNT".into())),
            (
                "account_id".to_string(),
                AttributeValue::S(account.to_string()),
            ),
            ("channel".to_string(), AttributeValue::S("whatsapp".into())),
        ]);
        stack.put_item(item).await;
        phone_number_id
    }

    /// The queue a signed webhook POST is stored on (`localstack/init.py`).
    pub const WEBHOOK_QUEUE: &str = "contact-events-webhooks";
    /// Its dead-letter queue.
    pub const WEBHOOK_DEAD_LETTER_QUEUE: &str = "contact-events-webhooks-dlq";
    /// `scripts/up.sh`'s development value of WHATSAPP_APP_SECRET.
    const APP_SECRET: &str = "local-development-app-secret";

    /// `X-Hub-Signature-256` of `body` under the development app secret.
    pub fn signature(body: &[u8]) -> String {
        use hmac::{KeyInit, Mac};
        let mut mac =
            hmac::Hmac::<sha2::Sha256>::new_from_slice(APP_SECRET.as_bytes()).expect("any key");
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }

    /// POSTs `body` to contact-events' function URL under watch, as Meta does: the
    /// answer's status code.
    pub fn post(body: &[u8], signature: Option<&str>) -> u16 {
        let mut request = ureq::post("http://127.0.0.1:9000/lambda-url/contact-events/")
            .set("content-type", "application/json")
            .set("user-agent", "facebookexternalua");
        if let Some(signature) = signature {
            request = request.set("x-hub-signature-256", signature);
        }
        match request.send_bytes(body) {
            Ok(response) => response.status(),
            Err(ureq::Error::Status(status, _)) => status,
            Err(e) => panic!("POST to the function URL: {e}"),
        }
    }

    /// A webhook body of one change of `field` with `value`, through business number
    /// `phone_number_id`.
    pub fn webhook(phone_number_id: &str, field: &str, value: Value) -> Value {
        let mut value = value;
        value["messaging_product"] = json!("whatsapp");
        value["metadata"] =
            json!({"display_phone_number": "15550001111", "phone_number_id": phone_number_id});
        json!({"object": "whatsapp_business_account",
               "entry": [{"id": "102290129340398", "changes": [{"field": field, "value": value}]}]})
    }

    /// A text message from Eva Green, named by her number (`wa_id`), her BSUID, or both.
    pub fn message(pnid: &str, wamid: &str, wa_id: Option<&str>, user_id: Option<&str>) -> Value {
        let mut contact = json!({"profile": {"name": "Eva Green"}});
        let mut message =
            json!({"id": wamid, "timestamp": "1764324000", "type": "text", "text": {"body": "Hi"}});
        if let Some(wa_id) = wa_id {
            contact["wa_id"] = json!(wa_id);
            message["from"] = json!(wa_id);
        }
        if let Some(user_id) = user_id {
            contact["user_id"] = json!(user_id);
            message["from_user_id"] = json!(user_id);
        }
        webhook(
            pnid,
            "messages",
            json!({"contacts": [contact], "messages": [message]}),
        )
    }
}
