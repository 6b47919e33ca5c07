//! End to end under faults: the functions reach the emulator through
//! `localstack/fault_proxy.py`, which here throttles, fails and drops a share of the
//! DynamoDB and S3 requests of one account. The import must still be exact.

use std::collections::HashSet;

use integration_tests::{assert_contacts_exactly, enabled, unique_account, Stack};
use serde_json::json;

const PROXY: &str = "http://127.0.0.1:4567/__proxy";

fn set_faults(faults: &serde_json::Value) {
    ureq::post(&format!("{PROXY}/faults"))
        .send_json(faults.clone())
        .expect("fault proxy answers (make up starts it)");
}

#[tokio::test]
async fn twenty_thousand_rows_through_throttling_errors_and_dropped_connections() {
    if !enabled() {
        return;
    }
    let stack = Stack::connect().await;
    let account = unique_account("faults");
    let mut body = String::from("Name,Phone\n");
    let mut expected = HashSet::new();
    for i in 0..20_000u32 {
        // UK mobile numbers +447400000000.. are valid; every 500th row is invalid.
        if i % 500 == 499 {
            body.push_str(&format!("Broken {i},12{i}\n"));
        } else {
            let phone = format!("+4474{:08}", i);
            body.push_str(&format!("Person {i},{phone}\n"));
            expected.insert(phone);
        }
    }
    set_faults(&json!({"match": account, "throttle": 0.05, "error500": 0.03, "drop": 0.02}));
    let summary = stack
        .import(&account, "whatsapp", "big.csv", body.as_bytes(), &[])
        .await;
    let stats: serde_json::Value = ureq::get(&format!("{PROXY}/stats"))
        .call()
        .expect("stats")
        .into_json()
        .expect("json");
    set_faults(&json!({}));
    eprintln!("injected faults: {}", stats["injected"]);
    assert!(
        stats["injected"].as_object().is_some_and(|m| m
            .values()
            .filter_map(|v| v.as_u64())
            .sum::<u64>()
            > 100),
        "faults were injected: {stats}"
    );
    assert_eq!(summary["status"], "completed_with_errors", "{summary}");
    assert_eq!(
        summary["rows"],
        json!({"total": 20000, "created": 19960, "updated": 0, "unchanged": 0, "skipped_existing": 0, "duplicate_in_file": 0, "rejected": 40}),
        "{summary}"
    );
    let contacts = assert_contacts_exactly(&stack, &account, &expected).await;
    assert!(
        contacts.iter().all(|c| c
            .get("version")
            .and_then(|v| v.as_n().ok())
            .map(String::as_str)
            == Some("1")),
        "each contact written once"
    );
}
