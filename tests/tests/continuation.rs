//! End to end: an import longer than one invocation continues itself. Watch is restarted
//! with a 1-second invocation time limit (`IMPORT_TIME_LIMIT_SECONDS`, which up.sh passes
//! on to the functions); the import checkpoints before it and invokes itself
//! asynchronously through Lambda's Invoke API (the relay plays it locally). The file
//! needs several invocations; contacts and counts must match a clean run.

use std::collections::HashSet;

use integration_tests::{
    assert_contacts_exactly, restart_watch, try_restart_watch, unique_account, Stack, ROOT,
};
use serde_json::json;

/// Puts the functions back to the default time limit whatever the test's outcome.
struct DefaultTimeoutOnDrop;

impl Drop for DefaultTimeoutOnDrop {
    fn drop(&mut self) {
        // No panic here: this may run while a failed test unwinds.
        if let Err(e) = try_restart_watch("") {
            eprintln!("{e}");
        }
    }
}

#[tokio::test]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn an_import_longer_than_one_invocation_continues_itself() {
    let stack = Stack::connect().await;
    restart_watch("IMPORT_TIME_LIMIT_SECONDS=1");
    let _restore = DefaultTimeoutOnDrop;

    let account = unique_account("continue");
    let mut body = String::from("Name,Phone\n");
    let mut valid = HashSet::new();
    let mut rejected = 0u64;
    for i in 0..20_000u32 {
        if i % 1000 == 500 {
            body.push_str(&format!("Bad {i},12\n"));
            rejected += 1;
        } else {
            body.push_str(&format!("Person {i},+4475{i:08}\n"));
            valid.insert(format!("+4475{i:08}"));
        }
    }
    let key = format!("imports/{account}/whatsapp/continue.csv");
    stack.upload(&key, body.as_bytes(), &[]).await;
    let summary = stack.wait_for_summary(&account, &key, 1).await;

    assert_eq!(
        summary["rows"],
        json!({"total": 20_000, "created": valid.len(), "updated": 0, "unchanged": 0,
               "skipped_existing": 0, "skipped_new": 0, "duplicate_in_file": 0, "rejected": rejected}),
        "{summary}"
    );
    assert_contacts_exactly(&stack, &account, &valid).await;
    let report = stack.rows_report(&summary).await;
    assert_eq!(
        report.iter().filter(|r| r[1] == "rejected").count() as u64,
        rejected,
        "each rejected row reported once"
    );

    // The relay logs each invocation's answer: at least one said "continuing", and the
    // asynchronous invoke it made was taken.
    let relay_log = std::fs::read_to_string(format!("{ROOT}/.run/relay.log")).expect("relay log");
    let encoded_key = key.replace('/', "%2F");
    let ours: Vec<&str> = relay_log
        .lines()
        .filter(|l| l.contains(&key) || l.contains(&encoded_key))
        .collect();
    let continued = ours.iter().filter(|l| l.contains("\"continuing\"")).count();
    let queued = ours
        .iter()
        .filter(|l| l.contains("queued (asynchronous invoke)"))
        .count();
    eprintln!(
        "{continued} hand-overs, {queued} asynchronous invokes:\n{}",
        ours.join("\n")
    );
    assert!(
        continued >= 1,
        "the import never handed over:\n{}",
        ours.join("\n")
    );
    assert!(
        queued >= continued,
        "each hand-over invoked the function again"
    );
    // DESIGN 15: one completion event for the import, however many hand-overs.
    let import_id = summary["import_id"].as_str().expect("import_id");
    let events = stack.wait_for_completion_events(&account, import_id).await;
    assert_eq!(events.len(), 1, "{events:?}");
}
