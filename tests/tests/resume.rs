//! End to end: the function process is killed in the middle of an import; the retry
//! (the relay retries like Lambda's async invoke) takes the job over after its lease
//! and resumes from the last checkpoint. Contacts and counts match a clean run.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use integration_tests::{assert_contacts_exactly, enabled, unique_account, Stack};
use serde_json::json;

/// Contact writes seen by the fault proxy since the last reset: the test watches the
/// import's progress without scanning the table (moto's scan can fail under writes).
fn proxied_puts() -> u64 {
    ureq::get(&format!("{PROXY}/stats"))
        .call()
        .ok()
        .and_then(|r| r.into_json::<serde_json::Value>().ok())
        .and_then(|v| v["requests"]["dynamodb:PutItem"].as_u64())
        .unwrap_or(0)
}

const PROXY: &str = "http://127.0.0.1:4567/__proxy";

#[tokio::test]
async fn killed_mid_file_then_retried_imports_exactly_once() {
    if !enabled() {
        return;
    }
    let stack = Stack::connect().await;
    let account = unique_account("resume");
    let mut body = String::from("Name,Phone\n");
    let mut valid = HashSet::new();
    let (mut rejected, mut duplicates) = (0u64, 0u64);
    for i in 0..8_000u32 {
        if i % 1000 == 7 {
            body.push_str("No Number,\n");
            rejected += 1;
        } else if i % 1000 == 8 {
            body.push_str(&format!("Again,+4474{:08}\n", i - 2));
            duplicates += 1;
        } else {
            body.push_str(&format!("Person {i},+4474{i:08}\n"));
            valid.insert(format!("+4474{i:08}"));
        }
    }
    let key = format!("imports/{account}/whatsapp/resume.csv");
    ureq::post(&format!("{PROXY}/stats/reset"))
        .send_json(json!({}))
        .expect("fault proxy answers");
    stack.upload(&key, body.as_bytes(), &[]).await;

    // Wait until the import is well under way (past its first checkpoint at 2,000
    // rows), then kill every import-contacts process.
    let deadline = Instant::now() + Duration::from_secs(300);
    while proxied_puts() < 2_500 {
        assert!(Instant::now() < deadline, "the import never got going");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let killed = std::process::Command::new("pkill")
        .args(["-KILL", "-f", "target/debug/import-contacts"])
        .status()
        .expect("pkill");
    assert!(killed.success(), "an import-contacts process was running");
    eprintln!(
        "killed the function after {} contact writes",
        proxied_puts()
    );
    // cargo lambda watch does not restart a killed function (Lambda would start a new
    // environment): restart it, as `make up` does.
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let restarted = std::process::Command::new("bash")
        .current_dir(root)
        .args(["-c", "scripts/down.sh watch && scripts/up.sh"])
        .status()
        .expect("restart watch");
    assert!(restarted.success(), "functions restarted");

    let summary = stack
        .wait_for_summary_within(&account, &key, 1, Duration::from_secs(600))
        .await;
    let created = valid.len() as u64;
    assert_eq!(
        summary["rows"],
        json!({"total": 8000, "created": created, "updated": 0, "unchanged": 0, "skipped_existing": 0, "duplicate_in_file": duplicates, "rejected": rejected}),
        "{summary}"
    );
    assert_contacts_exactly(&stack, &account, &valid).await;
    let rows = stack.rows_report(&summary).await;
    assert!(
        rows.iter().filter(|r| r[1] == "rejected").count() as u64 >= rejected - 1,
        "problem rows reported"
    );
}
