//! End to end: what an import costs in DynamoDB capacity, as the emulator reports it
//! (dynoxide: item sizes, index writes, half a unit per eventually consistent read),
//! through the summary's `consumed` (DESIGN sections 8 and 9).

use integration_tests::{unique_account, Stack};
use serde_json::Value;

/// Contacts in the file: three batches and some.
const ROWS: usize = 300;

fn file(renamed_every: Option<usize>) -> Vec<u8> {
    let mut csv = String::from("Name,Phone number\n");
    for i in 0..ROWS {
        let name = match renamed_every {
            Some(every) if i % every == 0 => format!("Renamed {i}"),
            _ => format!("Customer {i}"),
        };
        csv.push_str(&format!("{name},+4479112{i:05}\n"));
    }
    csv.into_bytes()
}

fn consumed(summary: &Value) -> (f64, f64, u64) {
    let c = &summary["consumed"];
    (
        c["write_units"].as_f64().expect("write_units"),
        c["read_units"].as_f64().expect("read_units"),
        c["requests"].as_u64().expect("requests"),
    )
}

/// Write units the job item may take: its claim, its index item in the account's
/// history (one unit) and a checkpoint every 5 s (about a unit or two each), however
/// slow the machine.
fn job_writes(summary: &Value) -> f64 {
    let seconds = summary["duration_ms"].as_f64().expect("duration") / 1000.0;
    2.0 * (2.0 + seconds / 5.0)
}

#[tokio::test]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn a_contact_costs_a_write_when_new_or_changed_and_nothing_when_unchanged() {
    let stack = Stack::connect().await;
    let account = unique_account("capacity");
    let rows = ROWS as f64;

    // A new book: each contact is one write of the table and one of the index (keys
    // only); the rows are read at most once, half a unit each, plus a read of the
    // tombstone index per batch; requests go a hundred rows to a read and 25 to a write
    // (a small file's batches may be much smaller than 100 rows: the bounds are loose).
    let fresh = stack
        .import(&account, "sms", "book.csv", &file(None), &[])
        .await;
    assert_eq!(fresh["rows"]["created"], ROWS);
    let (writes, reads, requests) = consumed(&fresh);
    assert!(
        writes >= 2.0 * rows,
        "{writes} write units for {ROWS} new contacts"
    );
    assert!(writes <= 2.0 * rows + job_writes(&fresh), "{writes}");
    assert!(reads <= 0.6 * rows, "{reads} read units");
    assert!((requests as f64) <= 0.5 * rows, "{requests} requests");

    // The same file again: read, nothing written but the job's own item; no tombstone
    // lookup (a stored contact has none), so half a unit per row, the account's
    // settings (half a unit) and the look-up of a mapping saved for the file's header
    // (one unit: strongly consistent, DESIGN 15).
    let again = stack
        .import(&account, "sms", "book again.csv", &file(None), &[])
        .await;
    assert_eq!(again["rows"]["unchanged"], ROWS);
    let (writes, reads, _) = consumed(&again);
    assert!(
        writes <= job_writes(&again),
        "{writes} write units for an unchanged file"
    );
    assert!(
        reads >= 0.5 * rows && reads <= 0.5 * rows + 1.5,
        "{reads} read units"
    );

    // One row in ten changed: a write each, and no index write (its keys stay).
    let changed = stack
        .import(&account, "sms", "book renamed.csv", &file(Some(10)), &[])
        .await;
    assert_eq!(changed["rows"]["updated"], ROWS / 10);
    let (writes, _, _) = consumed(&changed);
    assert!(writes >= rows / 10.0, "{writes}");
    assert!(
        writes <= rows / 10.0 + job_writes(&changed),
        "{writes} write units"
    );
}
