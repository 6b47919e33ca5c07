//! End to end: `imports.list` (DESIGN section 15, History) through the Lambda runtime
//! API: an account's imports, newest first, a page at a time, and never another
//! account's.

use std::collections::HashSet;

use integration_tests::{invoke, unique_account, Stack};
use serde_json::{json, Value};

/// Files uploaded for the account under test.
const IMPORTS: usize = 25;
/// Imports per page asked for.
const LIMIT: usize = 10;

/// A one-contact file, a different number for each `i`.
fn file(i: usize) -> String {
    format!("Name,Phone\nPerson {i},+4474{:08}\n", 10_000 + i)
}

/// Every page of `account`'s imports, following `next` until a page has none.
fn every_page(account: &str, limit: usize) -> Vec<Value> {
    let mut pages: Vec<Value> = Vec::new();
    let mut next = Value::Null;
    loop {
        let event =
            json!({"type": "imports.list", "account_id": account, "limit": limit, "next": next});
        let page = invoke("contact-events", &event)
            .unwrap_or_else(|e| panic!("imports.list refused: {e}"));
        next = page.get("next").cloned().unwrap_or(Value::Null);
        let last = page.get("next").is_none();
        pages.push(page);
        if last {
            return pages;
        }
        assert!(pages.len() <= IMPORTS, "paging never ends: {pages:?}");
    }
}

/// The imports of `pages`, in order.
fn listed(pages: &[Value]) -> Vec<Value> {
    pages
        .iter()
        .flat_map(|page| page["imports"].as_array().cloned().unwrap_or_default())
        .collect()
}

#[tokio::test]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn twenty_five_imports_are_listed_ten_ten_five_newest_first_and_only_the_accounts() {
    // GIVEN 25 uploads of one account and one of another, all imported
    let stack = Stack::connect().await;
    let account = unique_account("history");
    let other = unique_account("history-other");
    for i in 0..IMPORTS {
        let key = format!("imports/{account}/whatsapp/file-{i:02}.csv");
        stack.upload(&key, file(i).as_bytes(), &[]).await;
    }
    let other_key = format!("imports/{other}/whatsapp/file.csv");
    stack
        .upload(&other_key, file(IMPORTS).as_bytes(), &[])
        .await;
    let summaries = stack
        .wait_until("every summary of the 25 uploads", || async {
            let found = stack.try_summaries(&account).await.ok()?;
            (found.len() >= IMPORTS).then_some(found)
        })
        .await;
    let other_summary = stack.wait_for_summary(&other, &other_key, 1).await;
    assert_eq!(summaries.len(), IMPORTS, "one import per upload");
    let other_id = other_summary["import_id"].as_str().expect("import id");
    // summary.json is written just before the job item's last save: wait until the
    // history shows every import finished.
    stack
        .wait_until("every import finished in the history", || async {
            let all = listed(&every_page(&account, 100));
            let finished = all.iter().filter(|i| i["finished_at"].is_string()).count();
            (finished == IMPORTS).then_some(())
        })
        .await;

    // WHEN the account's imports are read 10 at a time
    let pages = every_page(&account, LIMIT);

    // THEN the pages hold 10, 10 and 5, and only the last has no `next`
    let sizes: Vec<usize> = pages
        .iter()
        .map(|page| page["imports"].as_array().map_or(0, Vec::len))
        .collect();
    assert_eq!(sizes, [10, 10, 5], "{pages:?}");
    assert!(
        pages[..2].iter().all(|page| page["next"].is_string()),
        "{pages:?}"
    );
    // AND they are the 25 imports once each, newest first, none of the other account's
    let imports = listed(&pages);
    let ids: Vec<&str> = imports
        .iter()
        .filter_map(|i| i["import_id"].as_str())
        .collect();
    let unique: HashSet<&str> = ids.iter().copied().collect();
    let expected: HashSet<&str> = summaries
        .iter()
        .filter_map(|s| s["import_id"].as_str())
        .collect();
    assert_eq!(ids.len(), IMPORTS, "{ids:?}");
    assert_eq!(unique, expected);
    assert!(!unique.contains(other_id));
    let started: Vec<&str> = imports
        .iter()
        .filter_map(|i| i["started_at"].as_str())
        .collect();
    assert_eq!(started.len(), IMPORTS);
    assert!(
        started.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {started:?}"
    );
    // AND each import says what its summary says, with its report keys
    for summary in &summaries {
        let id = summary["import_id"].as_str().expect("import id");
        let entry = imports
            .iter()
            .find(|i| i["import_id"] == id)
            .expect("listed");
        assert_eq!(entry["status"], summary["status"], "{entry}");
        assert_eq!(entry["rows"], summary["rows"], "{entry}");
        assert_eq!(entry["source_key"], summary["source"]["key"], "{entry}");
        assert_eq!(entry["started_at"], summary["started_at"], "{entry}");
        assert_eq!(entry["finished_at"], summary["finished_at"], "{entry}");
        assert_eq!(
            entry["summary_key"],
            format!("reports/{account}/{id}/summary.json")
        );
        assert_eq!(
            entry["rows_report_key"],
            format!("reports/{account}/{id}/rows.csv")
        );
        assert_eq!(
            entry["html_report_key"],
            format!("reports/{account}/{id}/report.html")
        );
    }
    // AND the other account's history is its one import
    let theirs = listed(&every_page(&other, LIMIT));
    assert_eq!(theirs.len(), 1, "{theirs:?}");
    assert_eq!(theirs[0]["import_id"], other_id);
}

#[tokio::test]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn a_bad_limit_or_token_is_an_invalid_event_naming_the_field() {
    let account = unique_account("history-bad");
    for (event, field) in [
        (
            json!({"type": "imports.list", "account_id": account, "limit": 0}),
            "limit",
        ),
        (
            json!({"type": "imports.list", "account_id": account, "next": "bm90LWEtdG9rZW4"}),
            "next",
        ),
    ] {
        let refused = invoke("contact-events", &event).expect_err("refused");
        assert_eq!(refused["errorType"], "InvalidEvent", "{refused}");
        let message = refused["errorMessage"].as_str().unwrap_or_default();
        assert!(message.contains(&format!("`{field}`")), "{message}");
    }
}
