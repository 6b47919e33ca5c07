//! End to end under faults: the functions reach the emulator through
//! `localstack/fault_proxy.py` (watch is restarted through it for this test, and put
//! back on the direct path after), which throttles, fails and drops a share of the
//! DynamoDB and S3 requests of one account. The import must still be exact.

use std::collections::HashSet;

use integration_tests::{assert_contacts_exactly, unique_account, Stack, ThroughFaultProxy};
use serde_json::json;

#[tokio::test]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn twenty_thousand_rows_through_throttling_errors_and_dropped_connections() {
    let proxy = ThroughFaultProxy::route_functions();
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
    // The import writes 100 rows per request: a few hundred requests, a tenth faulty.
    proxy.set_faults(&json!({"match": account, "throttle": 0.05, "error500": 0.03, "drop": 0.02}));
    // However long a busy machine takes: the wait fails only when nothing moves.
    let summary = stack
        .import(&account, "whatsapp", "big.csv", body.as_bytes(), &[])
        .await;
    let stats = proxy.stats();
    proxy.set_faults(&json!({}));
    eprintln!("injected faults: {}", stats["injected"]);
    assert!(
        stats["injected"].as_object().is_some_and(|m| m
            .values()
            .filter_map(|v| v.as_u64())
            .sum::<u64>()
            >= 10),
        "faults were injected: {stats}"
    );
    assert_eq!(summary["status"], "completed_with_errors", "{summary}");
    assert_eq!(
        summary["rows"],
        json!({"total": 20000, "created": 19960, "updated": 0, "unchanged": 0, "skipped_existing": 0, "skipped_new": 0, "duplicate_in_file": 0, "rejected": 40}),
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
