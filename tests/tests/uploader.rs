//! End to end, DESIGN section 15: import modes (`on-new`), the blank policy (`blanks`),
//! saved mappings and the completion event, through the emulator's S3 notification and
//! import-contacts under `cargo lambda watch`.

use aws_sdk_dynamodb::types::AttributeValue;
use integration_tests::browser::shows;
use integration_tests::{b, s, ss, unique_account, Stack};
use serde_json::json;

const EVA: &str = "+447911123456";
const SAM: &str = "+447400123456";
const NEW: &str = "+447400123999";

/// Eva and Sam with every kind of value a blank might touch: profile fields, a custom
/// attribute, consent, lists and tags. Sam is then blocked.
async fn book(stack: &Stack, account: &str) {
    let summary = stack
        .import(
            account,
            "whatsapp",
            "book.csv",
            "Name,Phone,Email,City,Plan,Opt In,Lists\n\
             Eva Smith,+447911123456,eva@example.com,Leeds,Gold,yes,VIP\n\
             Sam Jones,+447400123456,sam@example.com,York,Silver,yes,VIP\n"
                .as_bytes(),
            &[("tags", "spring")],
        )
        .await;
    assert_eq!(summary["rows"]["created"], 2, "{summary}");
    let mut sam = stack
        .contact(account, "whatsapp", SAM)
        .await
        .expect("Sam stored");
    sam.insert("status".into(), AttributeValue::S("blocked".into()));
    stack.put_item(sam).await;
}

#[tokio::test]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn on_new_skip_updates_the_book_and_creates_nobody() {
    let stack = Stack::connect().await;
    let account = unique_account("onnew");
    book(&stack, &account).await;

    let summary = stack
        .import(
            &account,
            "whatsapp",
            "update-only.csv",
            b"Name,Phone,City\nEva Smith,+447911123456,Bath\nNobody Yet,+447400123999,Hull\nNobody Yet,+447400123999,Hull\n",
            &[("on-new", "skip")],
        )
        .await;

    assert_eq!(
        summary["rows"],
        json!({"total": 3, "created": 0, "updated": 1, "unchanged": 0, "skipped_existing": 0,
               "skipped_new": 1, "duplicate_in_file": 1, "rejected": 0}),
        "{summary}"
    );
    assert_eq!(summary["status"], "completed");
    let rows = stack.rows_report(&summary).await;
    let skipped: Vec<&Vec<String>> = rows.iter().filter(|r| r[1] == "skipped_new").collect();
    assert_eq!(
        skipped.len(),
        1,
        "rows.csv lists the row skipped as new: {rows:?}"
    );
    assert_eq!(
        skipped[0][..4],
        ["3", "skipped_new", "skipped_new", "Phone"]
    );
    let eva = stack.contact(&account, "whatsapp", EVA).await.expect("Eva");
    assert_eq!(s(&eva, "city").as_deref(), Some("Bath"));
    assert!(stack.contact(&account, "whatsapp", NEW).await.is_none());

    // The default creates the same row.
    let summary = stack
        .import(
            &account,
            "whatsapp",
            "create.csv",
            b"Name,Phone\nNobody Yet,+447400123999\n",
            &[("on-new", "create")],
        )
        .await;
    assert_eq!(summary["rows"]["created"], 1, "{summary}");
}

#[tokio::test]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn on_new_skip_with_on_existing_ignore_is_a_bad_option_and_writes_nothing() {
    let stack = Stack::connect().await;
    let account = unique_account("badmode");
    let summary = stack
        .import(
            &account,
            "sms",
            "nothing.csv",
            b"Name,Phone\nEva,+447911123456\n",
            &[("on-new", "skip"), ("on-existing", "ignore")],
        )
        .await;
    assert_eq!(summary["status"], "failed");
    assert_eq!(summary["error"]["code"], "bad_option");
    let message = summary["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("x-amz-meta-on-new"), "{message}");
    assert!(stack.contact(&account, "sms", EVA).await.is_none());
}

#[tokio::test]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn blanks_clear_erases_mapped_fields_only_and_never_status_consent_lists_or_tags() {
    let stack = Stack::connect().await;
    let account = unique_account("blanks");
    book(&stack, &account).await;

    // The same people with blank e-mail, Plan, Opt In and Lists cells; no City column.
    let file = b"Name,Phone,Email,Plan,Opt In,Lists\n\
                 Eva Smith,+447911123456,,,,\n\
                 Sam Jones,+447400123456,,,,\n";
    let kept = stack
        .import(&account, "whatsapp", "keep.csv", file, &[])
        .await;
    assert_eq!(
        kept["rows"]["unchanged"], 2,
        "a blank never erases by default: {kept}"
    );

    let cleared = stack
        .import(
            &account,
            "whatsapp",
            "clear.csv",
            file,
            &[("blanks", "clear")],
        )
        .await;
    assert_eq!(cleared["rows"]["updated"], 2, "{cleared}");
    for (phone, name, city, status) in [
        (EVA, "Eva Smith", "Leeds", "active"),
        (SAM, "Sam Jones", "York", "blocked"),
    ] {
        let contact = stack
            .contact(&account, "whatsapp", phone)
            .await
            .expect("stored");
        assert_eq!(s(&contact, "name").as_deref(), Some(name));
        assert_eq!(s(&contact, "email"), None, "a blank e-mail cleared it");
        let attrs = contact.get("attrs").and_then(|a| a.as_m().ok());
        assert!(
            attrs.is_none_or(|m| !m.contains_key("Plan")),
            "a blank custom attribute cleared it"
        );
        assert_eq!(
            s(&contact, "city").as_deref(),
            Some(city),
            "a column the file lacks clears nothing"
        );
        assert_eq!(s(&contact, "status").as_deref(), Some(status));
        assert_eq!(b(&contact, "whatsapp_opted"), Some(true), "consent stays");
        let consent = contact
            .get("consent")
            .and_then(|c| c.as_m().ok())
            .and_then(|c| c.get("marketing"))
            .and_then(|m| m.as_m().ok())
            .and_then(|m| m.get("state"))
            .and_then(|s| s.as_s().ok())
            .cloned();
        assert_eq!(consent.as_deref(), Some("opted_in"));
        assert_eq!(ss(&contact, "lists"), ["VIP"], "lists stay");
        assert_eq!(ss(&contact, "tags"), ["spring"], "tags stay");
    }

    // Cleared once, the same file again changes nothing.
    let again = stack
        .import(
            &account,
            "whatsapp",
            "clear-again.csv",
            file,
            &[("blanks", "clear")],
        )
        .await;
    assert_eq!(again["rows"]["unchanged"], 2, "{again}");
}

#[tokio::test]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn every_import_ends_in_one_completion_event_on_the_import_events_queue() {
    let stack = Stack::connect().await;
    let account = unique_account("done");
    let done = stack
        .import(
            &account,
            "sms",
            "done.csv",
            b"Name,Phone,Plan
Eva,+447911123456,Gold
Nobody,
",
            &[],
        )
        .await;
    let dry = stack
        .import(
            &account,
            "sms",
            "dry.csv",
            b"Name,Phone
Sam,+447400123456
",
            &[("dry-run", "true")],
        )
        .await;
    let failed = stack
        .import(
            &account,
            "sms",
            "failed.csv",
            b"Name
Eva
",
            &[],
        )
        .await;
    for summary in [&done, &dry, &failed] {
        let import_id = summary["import_id"].as_str().expect("import_id");
        let events = stack.wait_for_completion_events(&account, import_id).await;
        assert_eq!(events.len(), 1, "{events:?}");
        let detail = &events[0];
        assert_eq!(detail["status"], summary["status"]);
        assert_eq!(detail["rows"], summary["rows"]);
        assert_eq!(detail["dry_run"], summary["dry_run"]);
        assert_eq!(detail["error"], summary["error"]);
        assert!(detail.get("column_mapping").is_none(), "{detail}");
        let prefix = format!("reports/{account}/{import_id}/");
        assert_eq!(detail["summary_key"], format!("{prefix}summary.json"));
        assert_eq!(detail["html_report_key"], format!("{prefix}report.html"));
        assert_eq!(detail["rows_report_key"], summary["rows_report_key"]);
    }
    assert_eq!(done["status"], "completed_with_errors");
    assert_eq!(failed["error"]["code"], "missing_phone_column");
}

#[tokio::test]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn report_html_shows_a_person_what_happened_in_a_browser() {
    let stack = Stack::connect().await;
    let account = unique_account("html");
    let summary = stack
        .import(
            &account,
            "whatsapp",
            "people.csv",
            "Name,Phone,Email,Note\n\
             Eva Smith,+447911123456,eva@example.com,ok\n\
             Sam Jones,12345,sam@example.com,<script>alert(1)</script>\n\
             Ann Lee,+447400123456,not-an-email,fine\n"
                .as_bytes(),
            &[],
        )
        .await;
    assert_eq!(summary["status"], "completed_with_errors", "{summary}");
    let key = summary["html_report_key"]
        .as_str()
        .expect("html_report_key");
    let page = stack.text(key).await;

    let seen = integration_tests::browser::visible_text(&page).expect("chromium renders");
    assert!(shows(&seen, "people.csv"), "{seen}");
    assert!(
        shows(&seen, "2 new contacts saved to Contact Book."),
        "{seen}"
    );
    assert!(shows(&seen, "missing_country_code"), "{seen}");
    assert!(shows(&seen, "invalid_email"), "{seen}");
    assert!(shows(&seen, "⚠ 12345"), "the refused cell, marked: {seen}");
    assert!(
        shows(&seen, "<script>alert(1)</script>"),
        "a hostile cell is shown as text: {seen}"
    );
    let document = integration_tests::browser::dom(&page).expect("chromium parses");
    assert!(!document.to_lowercase().contains("<script"), "{document}");
    assert!(
        shows(
            &seen,
            summary["rows_report_key"].as_str().expect("rows.csv")
        ),
        "{seen}"
    );
}

#[tokio::test]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn a_saved_mapping_reads_the_next_upload_with_the_same_headers_only() {
    let stack = Stack::connect().await;
    let account = unique_account("mapping");
    let mapping = r#"{"Handy": "phone", "Kunde": "name", "Stufe": "attr:Tier"}"#;
    let first = stack
        .import(
            &account,
            "sms",
            "first.csv",
            b"Handy,Kunde,Stufe\n+447911123456,Eva,Gold\n",
            &[("mapping", mapping)],
        )
        .await;
    assert_eq!(first["mapping_source"], "option", "{first}");
    assert_eq!(first["rows"]["created"], 1, "{first}");

    // The same titles, written otherwise, and no option: the saved mapping reads them.
    let again = stack
        .import(
            &account,
            "sms",
            "again.csv",
            b"handy,KUNDE,Stufe\n+447400123456,Sam,Silver\n",
            &[],
        )
        .await;
    assert_eq!(again["mapping_source"], "saved", "{again}");
    assert_eq!(again["rows"]["created"], 1, "{again}");
    assert_eq!(again["column_mapping"]["Stufe"], "attr:Tier");
    let sam = stack
        .contact(&account, "sms", SAM)
        .await
        .expect("Sam, read through the saved mapping");
    assert_eq!(s(&sam, "name").as_deref(), Some("Sam"));

    // Other titles are matched by title alone: Handy means nothing by itself.
    let other = stack
        .import(
            &account,
            "sms",
            "other.csv",
            b"Handy,Kunde\n+447400123457,Zoe\n",
            &[],
        )
        .await;
    assert_eq!(other["mapping_source"], "automatic", "{other}");
    assert_eq!(other["error"]["code"], "missing_phone_column", "{other}");

    // The item DESIGN 15 names: the account's partition, the header's signature.
    use sha2::{Digest, Sha256};
    let signature = hex::encode(Sha256::digest("handy\nkunde\nstufe".as_bytes()));
    let item = stack
        .item(
            &format!("ACCOUNT#{account}"),
            &format!("MAPPING#{signature}"),
        )
        .await
        .expect("the saved mapping's item");
    assert!(s(&item, "mapping").is_some_and(|m| m.contains("attr:Tier")));
}
