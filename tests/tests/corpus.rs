//! End to end over the corpus of messy and hostile files in `tests/fixtures/corpus/`:
//! every case of `expected.json` is uploaded to the emulator (a fresh account each), and
//! its summary.json, rows.csv and contacts are checked against the expectation. A case
//! with a `book` imports that file into its account first, so the case's own import
//! meets existing contacts (`updated`, `unchanged`, `skipped_existing`). All mismatches
//! are collected and reported together at the end.
//!
//! Big and hostile files (zip bombs, 20 MB lines) are generated here rather than
//! committed. `CORPUS_ONLY=name,name` runs only the named cases. To look at the
//! generated files: `CORPUS_DUMP_DIR=/tmp/x cargo test -p integration-tests --test corpus
//! corpus_expectations` writes them there.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use futures::StreamExt;
use integration_tests::{repo_file, unique_account, Stack, BUCKET, TABLE};
use serde::Deserialize;
use serde_json::{json, Value};

const CORPUS_DIR: &str = "tests/fixtures/corpus";
/// Uploads in flight at once (the relay runs four workers).
const IN_FLIGHT: usize = 6;

#[derive(Debug, Deserialize)]
struct Corpus {
    cases: Vec<Case>,
}

#[derive(Clone, Debug, Deserialize)]
struct Case {
    name: String,
    file: Option<String>,
    generate: Option<String>,
    upload_as: Option<String>,
    channel: String,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
    /// A file imported into the case's account before the case's own upload.
    book: Option<Book>,
    expect: Value,
}

/// The contacts a case's account holds before its upload: a corpus file, imported.
#[derive(Clone, Debug, Deserialize)]
struct Book {
    file: String,
}

impl Case {
    fn upload_name(&self) -> String {
        self.upload_as
            .clone()
            .or_else(|| self.file.clone())
            .unwrap_or_else(|| self.name.clone())
    }
}

fn corpus() -> Corpus {
    serde_json::from_slice(&repo_file(&format!("{CORPUS_DIR}/expected.json")))
        .expect("expected.json matches the documented shape")
}

/// Runs without the stack: the corpus is well formed, so a broken expected.json fails
/// every `cargo test`, not only the end-to-end run.
#[test]
fn corpus_expectations_are_well_formed() {
    let corpus = corpus();
    assert!(
        corpus.cases.len() >= 40,
        "the corpus has {} cases",
        corpus.cases.len()
    );
    let mut names = std::collections::HashSet::new();
    for case in &corpus.cases {
        assert!(names.insert(&case.name), "{}: duplicate name", case.name);
        match (&case.file, &case.generate) {
            (Some(file), None) => {
                repo_file(&format!("{CORPUS_DIR}/{file}"));
            }
            (None, Some(generator)) => {
                assert!(
                    GENERATORS.contains(&generator.as_str()),
                    "{}: unknown generator {generator}",
                    case.name
                );
                if let Ok(dir) = std::env::var("CORPUS_DUMP_DIR") {
                    let body = generate(generator).expect("known generator");
                    let path = format!("{dir}/{}", case.upload_name());
                    std::fs::write(&path, body).unwrap_or_else(|e| panic!("{path}: {e}"));
                }
            }
            _ => panic!("{}: exactly one of file and generate", case.name),
        }
        if let Some(book) = &case.book {
            repo_file(&format!("{CORPUS_DIR}/{}", book.file));
        }
        let rows = &case.expect["rows"];
        for key in ROW_KEYS {
            assert!(rows[key].is_u64(), "{}: rows.{key}", case.name);
        }
        let parts: u64 = ROW_KEYS[1..].iter().filter_map(|k| rows[k].as_u64()).sum();
        assert_eq!(
            rows["total"].as_u64(),
            Some(parts),
            "{}: total is the sum",
            case.name
        );
        assert!(case.expect["status"].is_string(), "{}: status", case.name);
    }
}

const ROW_KEYS: [&str; 8] = [
    "total",
    "created",
    "updated",
    "unchanged",
    "skipped_existing",
    "skipped_new",
    "duplicate_in_file",
    "rejected",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn corpus_of_messy_files_imports_as_expected() {
    let corpus = corpus();
    let only: Option<Vec<String>> = std::env::var("CORPUS_ONLY")
        .ok()
        .map(|v| v.split(',').map(|s| s.trim().to_string()).collect());
    if let Some(only) = &only {
        let unknown: Vec<&String> = only
            .iter()
            .filter(|name| !corpus.cases.iter().any(|c| &c.name == *name))
            .collect();
        assert!(unknown.is_empty(), "CORPUS_ONLY names no case {unknown:?}");
    }
    let cases: Vec<Case> = corpus
        .cases
        .into_iter()
        .filter(|c| only.as_ref().is_none_or(|o| o.contains(&c.name)))
        .collect();
    assert!(!cases.is_empty(), "the corpus has no case to run");
    let stack = Arc::new(Stack::connect().await);
    let started = Instant::now();
    let mut results: Vec<(String, Vec<String>)> = futures::stream::iter(cases)
        .map(|case| {
            let stack = Arc::clone(&stack);
            async move {
                let began = Instant::now();
                // A task per case: a panic (say, the emulator went away) fails that
                // case, not the whole run.
                let task = tokio::spawn({
                    let case = case.clone();
                    async move { run_case(&stack, &case).await }
                });
                let mismatches = match task.await {
                    Ok(mismatches) => mismatches,
                    Err(e) => vec![format!("the check panicked: {e}")],
                };
                eprintln!(
                    "corpus: {} {} in {:.1?}",
                    case.name,
                    if mismatches.is_empty() {
                        "as expected".to_string()
                    } else {
                        format!("differs:\n    {}\n   ", mismatches.join("\n    "))
                    },
                    began.elapsed()
                );
                (case.name.clone(), mismatches)
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    results.sort();
    let passed: Vec<&str> = results
        .iter()
        .filter(|(_, m)| m.is_empty())
        .map(|(n, _)| n.as_str())
        .collect();
    let failed: Vec<String> = results
        .iter()
        .filter(|(_, m)| !m.is_empty())
        .map(|(name, m)| format!("- {name}:\n    {}", m.join("\n    ")))
        .collect();
    eprintln!(
        "corpus: {} of {} cases as expected in {:.0?}; passed: {}",
        passed.len(),
        results.len(),
        started.elapsed(),
        passed.join(", ")
    );
    assert!(
        failed.is_empty(),
        "{} of {} corpus cases differ from {CORPUS_DIR}/expected.json:\n{}",
        failed.len(),
        results.len(),
        failed.join("\n")
    );
}

/// Uploads one case and returns its mismatches (empty when all is as expected).
async fn run_case(stack: &Stack, case: &Case) -> Vec<String> {
    let body = match (&case.file, &case.generate) {
        (Some(file), _) => repo_file(&format!("{CORPUS_DIR}/{file}")),
        (None, Some(generator)) => {
            let generator = generator.clone();
            let made = tokio::task::spawn_blocking(move || generate(&generator))
                .await
                .expect("generator thread");
            let Some(body) = made else {
                return vec![format!("unknown generator {:?}", case.generate)];
            };
            body
        }
        (None, None) => return vec!["neither file nor generate".into()],
    };
    let account = unique_account("corpus");
    let mut book_contacts = 0;
    if let Some(book) = &case.book {
        let key = format!("imports/{account}/{}/book-{}", case.channel, book.file);
        let body = repo_file(&format!("{CORPUS_DIR}/{}", book.file));
        if let Err(e) = upload(stack, &key, &body, &[]).await {
            return vec![format!("the book: {e}")];
        }
        let summary = wait_for_summary(stack, &account, &key).await;
        if summary["status"] != "completed" {
            return vec![format!("the book's import did not complete: {summary}")];
        }
        book_contacts = summary["rows"]["created"].as_u64().unwrap_or_default();
    }
    let key = format!("imports/{account}/{}/{}", case.channel, case.upload_name());
    let metadata: Vec<(&str, &str)> = case
        .metadata
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    if let Err(e) = upload(stack, &key, &body, &metadata).await {
        return vec![e];
    }
    // Waits while the stack makes progress; a stall panics, which fails this case
    // (crashed, hung or never triggered) and not the others.
    let summary = wait_for_summary(stack, &account, &key).await;
    let mut check = Checker::default();
    check.eq(
        "source.size_bytes",
        &json!(body.len()),
        &summary["source"]["size_bytes"],
    );
    check_summary(&mut check, case, &key, &summary);
    check_report(&mut check, stack, &case.expect, &summary).await;
    check_contacts(&mut check, stack, case, &account, &summary, book_contacts).await;
    check.mismatches
}

/// Puts `body` under `key` with user metadata, retried while moto stumbles.
async fn upload(
    stack: &Stack,
    key: &str,
    body: &[u8],
    metadata: &[(&str, &str)],
) -> Result<(), String> {
    retrying("upload", || {
        let mut put = stack
            .s3
            .put_object()
            .bucket(BUCKET)
            .key(key)
            .body(body.to_vec().into());
        for (k, v) in metadata {
            put = put.metadata(*k, *v);
        }
        put.send()
    })
    .await
    .map(|_| ())
}

/// The summary.json of the upload `key` in `account` (each case has an account of its
/// own), waited for as long as the stack makes progress.
async fn wait_for_summary(stack: &Stack, account: &str, upload_key: &str) -> Value {
    let prefix = format!("reports/{account}/");
    let prefix = prefix.as_str();
    stack
        .wait_until(&format!("the summary under {prefix}"), move || async move {
            // Errors (the emulator is busy) are asked again at the next poll.
            let listed = stack
                .s3
                .list_objects_v2()
                .bucket(BUCKET)
                .prefix(prefix)
                .send()
                .await
                .ok()?;
            let summaries: Vec<&str> = listed
                .contents()
                .iter()
                .filter_map(|o| o.key())
                .filter(|k| k.ends_with("/summary.json"))
                .collect();
            for key in summaries {
                let bytes = object_bytes(stack, key).await.ok()?;
                let summary = serde_json::from_slice::<Value>(&bytes).ok()?;
                if summary["source"]["key"] == upload_key {
                    return Some(summary);
                }
            }
            None
        })
        .await
}

/// Calls `call` until it succeeds, a few times: moto answers HTTP 500 now and then
/// under concurrent load ("dictionary changed size during iteration").
async fn retrying<T, E, F, Fut>(what: &str, call: F) -> Result<T, String>
where
    E: std::error::Error,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    retrying_n(what, 8, call).await
}

async fn retrying_n<T, E, F, Fut>(what: &str, attempts: u32, mut call: F) -> Result<T, String>
where
    E: std::error::Error,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut delay = Duration::from_millis(200);
    for attempt in 1.. {
        match call().await {
            Ok(value) => return Ok(value),
            Err(e) if attempt >= attempts => {
                return Err(format!(
                    "{what} failed {attempt} times: {}",
                    aws_sdk_s3::error::DisplayErrorContext(&e)
                ))
            }
            Err(_) => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(4));
            }
        }
    }
    unreachable!("the loop returns")
}

#[derive(Default)]
struct Checker {
    mismatches: Vec<String>,
}

impl Checker {
    fn eq(&mut self, what: &str, expected: &Value, actual: &Value) {
        if expected != actual {
            self.mismatches
                .push(format!("{what}: expected {expected}, got {actual}"));
        }
    }

    fn fail(&mut self, message: String) {
        self.mismatches.push(message);
    }
}

/// A count map with zero entries dropped (a zero count says nothing).
fn counts(value: &Value) -> Value {
    let map: serde_json::Map<String, Value> = value
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, v)| v.as_u64() != Some(0))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Value::Object(map)
}

fn check_summary(check: &mut Checker, case: &Case, key: &str, summary: &Value) {
    let expect = &case.expect;
    check.eq("status", &expect["status"], &summary["status"]);
    let rows: serde_json::Map<String, Value> = ROW_KEYS
        .iter()
        .map(|k| (k.to_string(), summary["rows"][k].clone()))
        .collect();
    check.eq("rows", &expect["rows"], &Value::Object(rows));
    check.eq(
        "rejections_by_reason",
        &counts(&expect["rejections_by_reason"]),
        &counts(&summary["rejections_by_reason"]),
    );
    match expect["warnings_at_least"].as_object() {
        None => check.eq(
            "warnings_by_code",
            &counts(&expect["warnings_by_code"]),
            &counts(&summary["warnings_by_code"]),
        ),
        Some(at_least) => {
            let actual = counts(&summary["warnings_by_code"]);
            let too_few = at_least
                .iter()
                .any(|(code, min)| actual[code].as_u64() < min.as_u64());
            let others = actual
                .as_object()
                .into_iter()
                .flatten()
                .any(|(code, _)| !at_least.contains_key(code));
            if too_few || others {
                check.fail(format!(
                    "warnings_by_code: expected at least {}, got {actual}",
                    Value::Object(at_least.clone())
                ));
            }
        }
    }
    let error_code = &summary["error"]["code"];
    match &expect["error_code"] {
        Value::Null => check.eq("error", &Value::Null, &summary["error"]),
        Value::Array(codes) => {
            if !codes.contains(error_code) {
                check.fail(format!(
                    "error.code: expected one of {}, got {error_code} (error {})",
                    Value::Array(codes.clone()),
                    summary["error"]
                ));
            }
        }
        code => check.eq("error.code", code, error_code),
    }
    if !expect["error_code"].is_null()
        && summary["error"]["message"]
            .as_str()
            .is_none_or(|m| m.trim().len() < 10)
    {
        check.fail(format!(
            "error.message: a sentence a person can act on, got {}",
            summary["error"]["message"]
        ));
    }
    if let Some(max) = expect["max_error_message_chars"].as_u64() {
        for field in ["message"] {
            for (what, text) in [
                ("error.message", &summary["error"][field]),
                ("message", &summary[field]),
            ] {
                let chars = text.as_str().map_or(0, |t| t.chars().count()) as u64;
                if chars > max {
                    check.fail(format!(
                        "{what}: {chars} characters, more than {max}: {}…",
                        text.as_str()
                            .map(|t| t.chars().take(120).collect::<String>())
                            .unwrap_or_default()
                    ));
                }
            }
        }
    }
    check.eq(
        "channel",
        &Value::String(case.channel.clone()),
        &summary["channel"],
    );
    check.eq("source.key", &json!(key), &summary["source"]["key"]);
    if let Some(dry_run) = expect.get("dry_run") {
        check.eq("dry_run", dry_run, &summary["dry_run"]);
    }
    if let Some(source) = expect["source"].as_object() {
        for (field, expected) in source {
            check.eq(
                &format!("source.{field}"),
                expected,
                &summary["source"].get(field).cloned().unwrap_or(Value::Null),
            );
        }
    }
    if let Some(mapping) = expect["column_mapping"].as_object() {
        for (title, expected) in mapping {
            check.eq(
                &format!("column_mapping[{title:?}]"),
                expected,
                &summary["column_mapping"]
                    .get(title)
                    .cloned()
                    .unwrap_or(Value::Null),
            );
        }
    }
}

/// rows.csv: the exact list of (row, outcome, code), cells under a header title, and
/// header cells.
async fn check_report(check: &mut Checker, stack: &Stack, expect: &Value, summary: &Value) {
    let wants_report = expect.get("report").is_some()
        || expect.get("report_cells").is_some()
        || expect.get("report_header").is_some();
    if !wants_report {
        return;
    }
    let Some(key) = summary["rows_report_key"].as_str() else {
        check.fail("rows_report_key: expected a rows.csv, got none".into());
        return;
    };
    let bytes = match object_bytes(stack, key).await {
        Ok(bytes) => bytes,
        Err(e) => {
            check.fail(format!("rows.csv {key}: {e}"));
            return;
        }
    };
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            check.fail(format!("rows.csv is not UTF-8: {e}"));
            return;
        }
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut records: Vec<Vec<String>> = Vec::new();
    for record in reader.records() {
        match record {
            Ok(r) => records.push(r.iter().map(str::to_string).collect()),
            Err(e) => {
                check.fail(format!("rows.csv is not valid CSV: {e}"));
                return;
            }
        }
    }
    let Some((header, lines)) = records.split_first() else {
        check.fail("rows.csv is empty (not even its header)".into());
        return;
    };
    if let Some(expected) = expect.get("report") {
        let expected: Vec<Vec<String>> = expected
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                r.as_array()
                    .into_iter()
                    .flatten()
                    .map(|v| match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect()
            })
            .collect();
        let actual: Vec<Vec<String>> = lines
            .iter()
            .map(|r| r.iter().take(3).cloned().collect())
            .collect();
        if expected != actual {
            check.fail(format!(
                "rows.csv [row, outcome, code]: expected {expected:?}, got {actual:?}"
            ));
        }
    }
    for cell in expect["report_cells"].as_array().into_iter().flatten() {
        let row = match &cell["row"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let column = cell["column"].as_str().unwrap_or_default();
        let Some(index) = header.iter().position(|h| h == column) else {
            check.fail(format!(
                "rows.csv has no column {column:?}; header {header:?}"
            ));
            continue;
        };
        match lines.iter().find(|r| r.first() == Some(&row)) {
            None => check.fail(format!("rows.csv has no line for row {row}")),
            Some(line) => check.eq(
                &format!("rows.csv row {row} {column:?}"),
                &cell["value"],
                &line.get(index).map_or(Value::Null, |v| json!(v)),
            ),
        }
    }
    for title in expect["report_header"].as_array().into_iter().flatten() {
        if !header.iter().any(|h| Some(h.as_str()) == title.as_str()) {
            check.fail(format!(
                "rows.csv header: expected a cell {title}, got {header:?}"
            ));
        }
    }
}

async fn object_bytes(stack: &Stack, key: &str) -> Result<Vec<u8>, String> {
    let out = retrying("get object", || {
        stack.s3.get_object().bucket(BUCKET).key(key).send()
    })
    .await?;
    let body = out.body.collect().await.map_err(|e| format!("read: {e}"))?;
    Ok(body.into_bytes().to_vec())
}

/// Spot checks of contacts, and none at all when the file failed or in a dry run.
async fn check_contacts(
    check: &mut Checker,
    stack: &Stack,
    case: &Case,
    account: &str,
    summary: &Value,
    book_contacts: u64,
) {
    for spot in case.expect["contacts"].as_array().into_iter().flatten() {
        let phone = spot["phone"].as_str().unwrap_or_default();
        let pk = format!("CONTACT#{account}#{}#{phone}", case.channel);
        let got = retrying("get contact", || {
            stack
                .ddb
                .get_item()
                .table_name(TABLE)
                .consistent_read(true)
                .key("pk", AttributeValue::S(pk.clone()))
                .key("sk", AttributeValue::S("PROFILE".into()))
                .send()
        })
        .await;
        let item = match got {
            Ok(out) => out.item().cloned(),
            Err(e) => {
                check.fail(format!("contact {phone}: {e}"));
                continue;
            }
        };
        if spot["absent"] == true {
            if item.is_some() {
                check.fail(format!("contact {phone}: expected none, found one"));
            }
            continue;
        }
        let Some(item) = item else {
            check.fail(format!("contact {phone}: expected, not found"));
            continue;
        };
        for (field, expected) in spot["fields"].as_object().into_iter().flatten() {
            let actual = attribute(&item, field);
            check.eq(&format!("contact {phone} {field}"), expected, &actual);
        }
    }
    // "Nothing is written" (beyond the book) when the file failed or in a dry run. (Counting needs a scan
    // of the whole shared table, too costly for every case; the others have their
    // created counts and spot checks.)
    if summary["status"] != "failed" && summary["dry_run"] != true {
        return;
    }
    let found = match count_contacts(stack, account).await {
        Ok(found) => found,
        Err(e) => {
            // moto's scan fails while other writers change the table ("dictionary
            // changed size during iteration"); under a busy shared emulator it can fail
            // every time. The spot checks above still ran: say so, do not fail on it.
            eprintln!(
                "corpus: {}: contact count not checked, the emulator's scan kept failing: {}",
                case.name,
                e.lines().next().unwrap_or_default()
            );
            return;
        }
    };
    if found != book_contacts {
        check.fail(format!(
            "contacts in the table: expected only the book's {book_contacts} (status {}, dry_run {}), found {found}",
            summary["status"], summary["dry_run"]
        ));
    }
}

/// Contact items of an account (a scan: moto's queries on the GSI scan too).
async fn count_contacts(stack: &Stack, account: &str) -> Result<u64, String> {
    let mut count = 0;
    let mut start = None;
    loop {
        let page = retrying_n("scan", 5, || {
            stack
                .ddb
                .scan()
                .table_name(TABLE)
                .filter_expression("begins_with(pk, :p)")
                .expression_attribute_values(":p", AttributeValue::S(format!("CONTACT#{account}#")))
                .select(aws_sdk_dynamodb::types::Select::Count)
                .set_exclusive_start_key(start.clone())
                .send()
        })
        .await?;
        count += page.count() as u64;
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            return Ok(count);
        }
    }
}

/// An item attribute as JSON: S as a string, SS as a sorted array (empty when absent),
/// BOOL as a bool, `attrs.Name` from the attrs map; null when absent.
fn attribute(item: &HashMap<String, AttributeValue>, field: &str) -> Value {
    if let Some(name) = field.strip_prefix("attrs.") {
        return item
            .get("attrs")
            .and_then(|a| a.as_m().ok())
            .and_then(|m| m.get(name))
            .map_or(Value::Null, attribute_value);
    }
    match item.get(field) {
        None if matches!(field, "lists" | "tags") => json!([]),
        None => Value::Null,
        Some(value) => attribute_value(value),
    }
}

fn attribute_value(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::S(s) => json!(s),
        AttributeValue::Bool(b) => json!(b),
        AttributeValue::N(n) => json!(n),
        AttributeValue::Ss(set) => {
            let mut set = set.clone();
            set.sort();
            json!(set)
        }
        AttributeValue::Null(_) => Value::Null,
        other => json!(format!("{other:?}")),
    }
}

// ------------------------------------------------------------------ generated files

const GENERATORS: [&str; 7] = [
    "zip_bomb",
    "zip_bomb_lying_sizes",
    "zip_bomb_ratio_159",
    "wide_row_450kb",
    "long_cell_20mb",
    "single_line_20mb",
    "over_100mb",
];

/// The body of a generated case, or `None` for an unknown generator.
fn generate(name: &str) -> Option<Vec<u8>> {
    Some(match name {
        "zip_bomb" => bomb_xlsx(BOMB_MATCHES, Bomb::Dense),
        "zip_bomb_lying_sizes" => bomb_xlsx(BOMB_MATCHES, Bomb::LyingSizes),
        "zip_bomb_ratio_159" => bomb_xlsx(MODERATE_BOMB_MATCHES, Bomb::ModerateRatio),
        // One row whose 450 custom attributes of 1,000 characters each (each within its
        // own limit) add up to more than DynamoDB's 400 KB item limit.
        "wide_row_450kb" => {
            let titles: Vec<String> = (0..450).map(|i| format!("A{i}")).collect();
            let mut body = format!("Phone,{}\n+447911123456", titles.join(",")).into_bytes();
            for _ in 0..450 {
                body.push(b',');
                body.resize(body.len() + 1000, b'x');
            }
            body.extend_from_slice(format!("\n+447400123456{}\n", ",y".repeat(450)).as_bytes());
            body
        }
        "long_cell_20mb" => {
            let mut body = b"Phone,Name\n+447911123456,".to_vec();
            body.resize(body.len() + TWENTY_MB, b'a');
            body.extend_from_slice(b"\n+447400123456,Sam\n");
            body
        }
        "single_line_20mb" => b"xxxxxxxxx,".repeat(TWENTY_MB / 10),
        // One byte over the default MAX_UPLOAD_BYTES (100 MiB).
        "over_100mb" => {
            let line = b"+447911123456,Eva\n";
            let mut body = b"Phone,Name\n".to_vec();
            while body.len() + line.len() <= 100 << 20 {
                body.extend_from_slice(line);
            }
            body.resize((100 << 20) + 1, b'\n');
            body
        }
        _ => return None,
    })
}

const TWENTY_MB: usize = 20 << 20;
/// Back-references of 258 bytes each: 1.6 million inflate to about 413 MB.
const BOMB_MATCHES: usize = 1_600_000;
/// About 300 MB in 1.9 MB: a ratio of 159, under a 1:200 ratio check.
const MODERATE_BOMB_MATCHES: usize = 1_160_000;

#[derive(Copy, Clone, PartialEq, Eq)]
enum Bomb {
    /// `A`s in one cell, two bits per 258 bytes (about 1:1000), sizes declared truly.
    Dense,
    /// The same, declaring the sheet 4 KB inflated.
    LyingSizes,
    /// Spaces between rows, 13 bits per 258 bytes (fixed Huffman codes, about 1:159).
    ModerateRatio,
}

/// An XLSX whose sheet XML holds `258 * matches` repeated bytes, deflated by hand (see
/// [`Bomb`]). A lying archive is noticed only by a reader that counts what it inflates.
fn bomb_xlsx(matches: usize, kind: Bomb) -> Vec<u8> {
    const NS: &str = r#"xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main""#;
    const RELS: &str = r#"xmlns="http://schemas.openxmlformats.org/package/2006/relationships""#;
    const DOC: &str = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";
    let xml = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>"#;
    let content_types = format!(
        r#"{xml}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#
    );
    let root_rels = format!(
        r#"{xml}<Relationships {RELS}><Relationship Id="rId1" Type="{DOC}/officeDocument" Target="xl/workbook.xml"/></Relationships>"#
    );
    let workbook = format!(
        r#"{xml}<workbook {NS} xmlns:r="{DOC}"><sheets><sheet name="Contacts" sheetId="1" r:id="rId1"/></sheets></workbook>"#
    );
    let workbook_rels = format!(
        r#"{xml}<Relationships {RELS}><Relationship Id="rId1" Type="{DOC}/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#
    );
    let rows = r#"<row r="1"><c r="A1" t="inlineStr"><is><t>Phone</t></is></c><c r="B1" t="inlineStr"><is><t>Name</t></is></c></row><row r="2"><c r="A2" t="inlineStr"><is><t>+447911123456</t></is></c><c r="B2" t="inlineStr"><is><t>"#;
    let (prefix, byte, suffix) = if kind == Bomb::ModerateRatio {
        let prefix = format!("{xml}<worksheet {NS}><sheetData>{rows}Eva</t></is></c></row> ");
        (prefix, b' ', "</sheetData></worksheet>")
    } else {
        let prefix = format!("{xml}<worksheet {NS}><sheetData>{rows}A");
        (prefix, b'A', "</t></is></c></row></sheetData></worksheet>")
    };
    let run = 258 * matches as u64;
    let inflated = prefix.len() as u64 + run + suffix.len() as u64;
    let crc = crc32_combine(
        crc32_combine(crc32(prefix.as_bytes()), crc32_repeated(byte, run), run),
        crc32(suffix.as_bytes()),
        suffix.len() as u64,
    );
    let deflated = if kind == Bomb::ModerateRatio {
        deflate_run_fixed(prefix.as_bytes(), matches, suffix.as_bytes())
    } else {
        deflate_run(prefix.as_bytes(), matches, suffix.as_bytes())
    };
    let mut zip = ZipBuilder::default();
    zip.stored("[Content_Types].xml", content_types.as_bytes());
    zip.stored("_rels/.rels", root_rels.as_bytes());
    zip.stored("xl/workbook.xml", workbook.as_bytes());
    zip.stored("xl/_rels/workbook.xml.rels", workbook_rels.as_bytes());
    let declared = if kind == Bomb::LyingSizes {
        4096
    } else {
        inflated
    };
    zip.deflated("xl/worksheets/sheet1.xml", &deflated, crc, declared);
    zip.finish()
}

/// A raw deflate stream: `prefix` stored, then `matches` copies of (length 258,
/// distance 1) in a dynamic-Huffman block where each copy costs two bits, then
/// `suffix` stored in the final block.
fn deflate_run(prefix: &[u8], matches: usize, suffix: &[u8]) -> Vec<u8> {
    let mut out = BitWriter::default();
    out.stored_block(prefix, false);
    // Dynamic block: literal/length codes 0..=285 (HLIT 29), distance codes 0..=1
    // (HDIST 1), code-length codes up to index 17 of the permuted order (HCLEN 14).
    out.bits(0, 1); // not final
    out.bits(2, 2); // dynamic Huffman
    out.bits(29, 5);
    out.bits(1, 5);
    out.bits(14, 4);
    // Code-length code: symbols 1 and 18 get one bit each (order 16 17 18 0 8 7 9 6 10
    // 5 11 4 12 3 13 2 14 1).
    for symbol in [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1] {
        out.bits(u32::from(symbol == 18 || symbol == 1), 3);
    }
    // Canonical codes: symbol 1 -> 0, symbol 18 -> 1 (18 carries 7 extra bits: n - 11).
    let zeros = |out: &mut BitWriter, n: u32| {
        out.bits(1, 1);
        out.bits(n - 11, 7);
    };
    zeros(&mut out, 138);
    zeros(&mut out, 118); // literals 0..=255 unused
    out.bits(0, 1); // 256 (end of block): length 1
    zeros(&mut out, 28); // 257..=284 unused
    out.bits(0, 1); // 285 (length 258): length 1
    out.bits(0, 1); // distance code 0 (distance 1): length 1
    out.bits(0, 1); // distance code 1: length 1 (keeps the code complete)
                    // Literal/length codes: 256 -> 0, 285 -> 1; distance code 0 -> 0.
    for _ in 0..matches {
        out.bits(0b01, 2);
    }
    out.bits(0, 1); // end of block
    out.stored_block(suffix, true);
    out.finish()
}

/// Like [`deflate_run`] with the fixed Huffman codes: 13 bits per 258 bytes.
fn deflate_run_fixed(prefix: &[u8], matches: usize, suffix: &[u8]) -> Vec<u8> {
    let mut out = BitWriter::default();
    out.stored_block(prefix, false);
    out.bits(0, 1); // not final
    out.bits(1, 2); // fixed Huffman
    for _ in 0..matches {
        out.code(0b1100_0101, 8); // length code 285: 258 bytes
        out.code(0, 5); // distance code 0: distance 1
    }
    out.code(0, 7); // end of block (256)
    out.stored_block(suffix, true);
    out.finish()
}

#[derive(Default)]
struct BitWriter {
    bytes: Vec<u8>,
    acc: u64,
    used: u32,
}

impl BitWriter {
    /// `n` bits of `value`, least significant first (as deflate packs them).
    fn bits(&mut self, value: u32, n: u32) {
        self.acc |= u64::from(value) << self.used;
        self.used += n;
        while self.used >= 8 {
            self.bytes.push(self.acc as u8);
            self.acc >>= 8;
            self.used -= 8;
        }
    }

    /// A Huffman code of `n` bits, most significant bit first (as deflate sends codes).
    fn code(&mut self, code: u32, n: u32) {
        self.bits(code.reverse_bits() >> (32 - n), n);
    }

    fn align(&mut self) {
        if self.used > 0 {
            self.bits(0, 8 - self.used);
        }
    }

    fn stored_block(&mut self, data: &[u8], last: bool) {
        let len = u16::try_from(data.len()).expect("stored blocks hold at most 65535 bytes");
        self.bits(u32::from(last), 1);
        self.bits(0, 2);
        self.align();
        self.bytes.extend_from_slice(&len.to_le_bytes());
        self.bytes.extend_from_slice(&(!len).to_le_bytes());
        self.bytes.extend_from_slice(data);
    }

    fn finish(mut self) -> Vec<u8> {
        self.align();
        self.bytes
    }
}

/// A zip archive without data descriptors, comments or zip64.
#[derive(Default)]
struct ZipBuilder {
    body: Vec<u8>,
    central: Vec<u8>,
    entries: u16,
}

impl ZipBuilder {
    fn stored(&mut self, name: &str, data: &[u8]) {
        let size = data.len() as u64;
        self.entry(name, 0, data, crc32(data), size);
    }

    fn deflated(&mut self, name: &str, data: &[u8], crc: u32, inflated: u64) {
        self.entry(name, 8, data, crc, inflated);
    }

    fn entry(&mut self, name: &str, method: u16, data: &[u8], crc: u32, inflated: u64) {
        let offset = self.body.len() as u32;
        let sizes = |out: &mut Vec<u8>| {
            out.extend_from_slice(&crc.to_le_bytes());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(&(inflated as u32).to_le_bytes());
        };
        // version 2.0, no flags, method, time 00:00, date 1980-01-01
        let common = |out: &mut Vec<u8>| {
            for v in [20u16, 0, method, 0, 0x21] {
                out.extend_from_slice(&v.to_le_bytes());
            }
        };
        self.body.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        common(&mut self.body);
        sizes(&mut self.body);
        self.body
            .extend_from_slice(&(name.len() as u16).to_le_bytes());
        self.body.extend_from_slice(&0u16.to_le_bytes());
        self.body.extend_from_slice(name.as_bytes());
        self.body.extend_from_slice(data);

        self.central
            .extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        self.central.extend_from_slice(&20u16.to_le_bytes()); // made by
        common(&mut self.central);
        sizes(&mut self.central);
        for v in [name.len() as u16, 0, 0, 0, 0] {
            self.central.extend_from_slice(&v.to_le_bytes());
        }
        self.central.extend_from_slice(&0u32.to_le_bytes()); // external attributes
        self.central.extend_from_slice(&offset.to_le_bytes());
        self.central.extend_from_slice(name.as_bytes());
        self.entries += 1;
    }

    fn finish(mut self) -> Vec<u8> {
        let offset = self.body.len() as u32;
        let size = self.central.len() as u32;
        self.body.extend_from_slice(&self.central);
        self.body.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        for v in [0u16, 0, self.entries, self.entries] {
            self.body.extend_from_slice(&v.to_le_bytes());
        }
        self.body.extend_from_slice(&size.to_le_bytes());
        self.body.extend_from_slice(&offset.to_le_bytes());
        self.body.extend_from_slice(&0u16.to_le_bytes());
        self.body
    }
}

const CRC_POLY: u32 = 0xEDB8_8320;

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ CRC_POLY
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// CRC-32 of `n` copies of `byte`, by doubling with [`crc32_combine`].
fn crc32_repeated(byte: u8, mut n: u64) -> u32 {
    let (mut result, mut result_len) = (0u32, 0u64);
    let (mut power, mut power_len) = (crc32(&[byte]), 1u64);
    while n > 0 {
        if n & 1 == 1 {
            result = if result_len == 0 {
                power
            } else {
                crc32_combine(result, power, power_len)
            };
            result_len += power_len;
        }
        n >>= 1;
        if n > 0 {
            power = crc32_combine(power, power, power_len);
            power_len *= 2;
        }
    }
    result
}

/// The CRC-32 of A followed by B from the CRC-32s of both and B's length (zlib's
/// `crc32_combine`).
fn crc32_combine(mut crc1: u32, crc2: u32, mut len2: u64) -> u32 {
    fn times(mat: &[u32; 32], mut vec: u32) -> u32 {
        let mut sum = 0;
        let mut i = 0;
        while vec != 0 {
            if vec & 1 == 1 {
                sum ^= mat[i];
            }
            vec >>= 1;
            i += 1;
        }
        sum
    }
    fn square(mat: &[u32; 32]) -> [u32; 32] {
        let mut out = [0u32; 32];
        for (n, cell) in out.iter_mut().enumerate() {
            *cell = times(mat, mat[n]);
        }
        out
    }
    if len2 == 0 {
        return crc1;
    }
    let mut odd = [0u32; 32];
    odd[0] = CRC_POLY;
    for (n, cell) in odd.iter_mut().enumerate().skip(1) {
        *cell = 1 << (n - 1);
    }
    let mut even = square(&odd); // two zero bits
    odd = square(&even); // four zero bits
    loop {
        even = square(&odd);
        if len2 & 1 == 1 {
            crc1 = times(&even, crc1);
        }
        len2 >>= 1;
        if len2 == 0 {
            break;
        }
        odd = square(&even);
        if len2 & 1 == 1 {
            crc1 = times(&odd, crc1);
        }
        len2 >>= 1;
        if len2 == 0 {
            break;
        }
    }
    crc1 ^ crc2
}

#[test]
fn crc_helpers_agree_with_a_direct_computation() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    let data = b"hello, corpus".repeat(37);
    let (a, b) = data.split_at(100);
    assert_eq!(
        crc32_combine(crc32(a), crc32(b), b.len() as u64),
        crc32(&data)
    );
    for n in [1u64, 2, 3, 7, 258, 1000, 4097] {
        assert_eq!(
            crc32_repeated(b'A', n),
            crc32(&vec![b'A'; n as usize]),
            "{n}"
        );
    }
}
