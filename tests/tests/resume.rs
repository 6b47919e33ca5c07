//! End to end: the function process is killed in the middle of an import; the retry
//! (the relay retries like Lambda's async invoke) takes the job over after its lease
//! and resumes from the last checkpoint. Contacts, counts and `rows.csv` match a clean
//! run's, line for line, warned and suppressed rows before the checkpoint included.

use std::collections::HashSet;

use integration_tests::{
    assert_contacts_exactly, function_processes, invoke, restart_watch, unique_account, Stack,
};
use serde_json::json;

/// The row whose contact, once written, shows the import well under way: rows are
/// recorded in order, at most 16 transactions of 100 rows behind the writes, so by then
/// at least 3,400 rows are recorded, past the first checkpoint (2,000 rows), and about
/// 25,000 are left for the retry.
const KILL_AFTER_ROW: u32 = 5_000;

/// Rows whose numbers were erased before the import (`suppressed`): two before the
/// first checkpoint, one after the kill.
const ERASED_ROWS: [u32; 3] = [100, 1_500, 20_000];

/// Saves then erases the numbers of [`ERASED_ROWS`] in `account`, through contact-events.
fn erase_numbers(account: &str) {
    for i in ERASED_ROWS {
        let phone = format!("+4474{i:08}");
        let captured = json!({"type": "contact.captured", "account_id": account,
            "channel": "whatsapp", "phone": phone, "name": "Erased Person"});
        invoke("contact-events", &captured).expect("captured");
        let erase = json!({"type": "contact.erase", "account_id": account,
            "channel": "whatsapp", "phone": phone});
        let answer = invoke("contact-events", &erase).expect("erased");
        assert_eq!(answer["status"], "erased", "{answer}");
    }
}

#[tokio::test]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn killed_mid_file_then_retried_imports_exactly_once() {
    let stack = Stack::connect().await;
    let mut body = String::from("Name,Phone,Email\n");
    let mut valid = HashSet::new();
    let (mut rejected, mut duplicates, mut warned) = (0u64, 0u64, 0u64);
    for i in 0..30_000u32 {
        if i % 1000 == 7 {
            body.push_str("No Number,,\n");
            rejected += 1;
        } else if i % 1000 == 8 {
            body.push_str(&format!("Again,+4474{:08},\n", i - 2));
            duplicates += 1;
        } else if ERASED_ROWS.contains(&i) {
            body.push_str(&format!("Erased {i},+4474{i:08},\n"));
            rejected += 1;
        } else if i % 500 == 11 {
            body.push_str(&format!("Person {i},+4474{i:08},not an address\n"));
            valid.insert(format!("+4474{i:08}"));
            warned += 1;
        } else {
            body.push_str(&format!("Person {i},+4474{i:08},p{i}@example.com\n"));
            valid.insert(format!("+4474{i:08}"));
        }
    }

    // The report of the same file imported without interruption, in another account
    // with the same numbers erased.
    let clean = unique_account("resume-clean");
    erase_numbers(&clean);
    let clean_key = format!("imports/{clean}/whatsapp/resume.csv");
    stack.upload(&clean_key, body.as_bytes(), &[]).await;
    let clean_summary = stack.wait_for_summary(&clean, &clean_key, 1).await;
    let clean_rows = stack.rows_report(&clean_summary).await;

    let account = unique_account("resume");
    erase_numbers(&account);
    let key = format!("imports/{account}/whatsapp/resume.csv");
    stack.upload(&key, body.as_bytes(), &[]).await;

    // Wait until the import is well under way (one GetItem per poll: no scan), for as
    // long as the stack makes progress, then kill this checkout's import-contacts
    // processes (never another checkout's: no pattern kill).
    let marker = format!("+4474{KILL_AFTER_ROW:08}");
    let (on, account_id, phone) = (&stack, account.as_str(), marker.as_str());
    stack
        .wait_until(
            &format!("the contact of row {KILL_AFTER_ROW}"),
            move || async move { on.contact(account_id, "whatsapp", phone).await.map(|_| ()) },
        )
        .await;
    let victims: Vec<String> = function_processes()
        .into_iter()
        .filter(|p| p.name == "import-contacts")
        .map(|p| p.pid.to_string())
        .collect();
    assert!(
        !victims.is_empty(),
        "an import-contacts process was running"
    );
    let killed = std::process::Command::new("kill")
        .arg("-KILL")
        .args(&victims)
        .status()
        .expect("kill");
    assert!(killed.success(), "killed import-contacts {victims:?}");
    eprintln!("killed import-contacts {victims:?} once row {KILL_AFTER_ROW} was written");
    // cargo lambda watch does not restart a killed function (Lambda would start a new
    // environment): restart it, as `make up` does.
    restart_watch("");

    let summary = stack.wait_for_summary(&account, &key, 1).await;
    let created = valid.len() as u64;
    assert_eq!(
        summary["rows"],
        json!({"total": 30_000, "created": created, "updated": 0, "unchanged": 0, "skipped_existing": 0, "skipped_new": 0, "duplicate_in_file": duplicates, "rejected": rejected}),
        "{summary}"
    );
    assert_contacts_exactly(&stack, &account, &valid).await;
    assert_eq!(summary["rows"], clean_summary["rows"]);
    assert_eq!(
        summary["warnings_by_code"],
        json!({"invalid_email": warned})
    );
    assert_eq!(
        summary["rejections_by_reason"],
        clean_summary["rejections_by_reason"]
    );
    let rows = stack.rows_report(&summary).await;
    assert_eq!(
        rows.len() as u64,
        1 + rejected + duplicates + warned,
        "a line per problem row"
    );
    let suppressed = rows.iter().filter(|r| r[2] == "suppressed").count();
    assert_eq!(suppressed, ERASED_ROWS.len(), "suppressed rows reported");
    assert!(
        rows == clean_rows,
        "rows.csv equals the uninterrupted run's"
    );
    // DESIGN 15: one completion event, though two invocations ran the import.
    let import_id = summary["import_id"].as_str().expect("import_id");
    let events = stack.wait_for_completion_events(&account, import_id).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["rows"], summary["rows"]);
}
