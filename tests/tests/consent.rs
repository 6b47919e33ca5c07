//! End to end: consent (DESIGN section 13) through contact-events (an SMS STOP and
//! START as `message.inbound` with `text`) and import-contacts (a WhatsApp-opted column
//! that may not re-opt-in a person who opted out themselves).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use integration_tests::{b, invoke, s, unique_account, Stack};
use serde_json::{json, Value};

type Item = HashMap<String, AttributeValue>;

fn sms(account: &str, message_id: &str, from: &str, text: &str) -> Value {
    // No `received_at`: the function takes the time it handles the message, so the
    // START below is later than the STOP.
    json!({"type": "message.inbound", "account_id": account, "channel": "sms",
           "message_id": message_id, "from": from, "text": text})
}

/// `consent.{category}.{field}` of a contact item.
fn consent(item: &Item, category: &str, field: &str) -> Option<String> {
    let entry = item
        .get("consent")?
        .as_m()
        .ok()?
        .get(category)?
        .as_m()
        .ok()?;
    entry.get(field)?.as_s().ok().cloned()
}

async fn sms_contact(stack: &Stack, account: &str, phone: &str) -> Item {
    stack
        .contact(account, "sms", phone)
        .await
        .unwrap_or_else(|| panic!("contact {phone} exists"))
}

#[tokio::test]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn an_sms_stop_outlasts_an_import_that_says_opted_in_until_start() {
    let stack = Stack::connect().await;
    let account = unique_account("consent");
    let (eva, ana, bo) = ("+447911123456", "+447911123457", "+447911123458");

    // GIVEN two unknown numbers that text STOP (one as "Stop.")
    for (id, phone, text) in [("sm-1", eva, "STOP"), ("sm-2", ana, "Stop.")] {
        let answer = invoke("contact-events", &sms(&account, id, phone, text)).expect("answered");
        assert_eq!(
            answer,
            json!({"contact": "created_anonymous", "pk": format!("CONTACT#{account}#sms#{phone}")})
        );
    }
    let item = sms_contact(&stack, &account, eva).await;
    assert_eq!(b(&item, "anonymous"), Some(true));
    for category in ["marketing", "utility"] {
        assert_eq!(
            consent(&item, category, "state").as_deref(),
            Some("opted_out")
        );
        assert_eq!(
            consent(&item, category, "source").as_deref(),
            Some("keyword")
        );
        assert_eq!(
            consent(&item, category, "evidence").as_deref(),
            Some("STOP")
        );
    }
    assert_eq!(b(&item, "whatsapp_opted"), Some(false));

    // WHEN an SMS import says both, and a new number, are WhatsApp-opted TRUE; Eva's
    // row also brings her name, Ana's nothing else
    let file = format!("Phone,Name,WhatsApp Opted\n{eva},Eva,TRUE\n{ana},,TRUE\n{bo},Bo,TRUE\n");
    let summary = stack
        .import(&account, "sms", "opted.csv", file.as_bytes(), &[])
        .await;

    // THEN both stay opted out: Eva's row is updated (her name), Ana's unchanged, and
    // both carry the warning, counted in the summary
    assert_eq!(summary["status"], "completed");
    assert_eq!(
        summary["rows"],
        json!({"total": 3, "created": 1, "updated": 1, "unchanged": 1, "skipped_existing": 0, "skipped_new": 0, "duplicate_in_file": 0, "rejected": 0})
    );
    assert_eq!(
        summary["warnings_by_code"],
        json!({"consent_kept_opted_out": 2})
    );
    let rows = stack.rows_report(&summary).await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(
        rows[1][..4],
        ["2", "updated", "consent_kept_opted_out", "WhatsApp Opted"]
    );
    assert!(
        rows[1][4].contains("opted out of marketing messages themselves"),
        "{}",
        rows[1][4]
    );
    assert_eq!(rows[1][5..], [eva, "Eva", "TRUE"]);
    assert_eq!(
        rows[2][..4],
        ["3", "unchanged", "consent_kept_opted_out", "WhatsApp Opted"]
    );

    let item = sms_contact(&stack, &account, eva).await;
    assert_eq!(s(&item, "name").as_deref(), Some("Eva"));
    assert_eq!(
        consent(&item, "marketing", "state").as_deref(),
        Some("opted_out")
    );
    assert_eq!(
        consent(&item, "marketing", "source").as_deref(),
        Some("keyword")
    );
    assert_eq!(b(&item, "whatsapp_opted"), Some(false));
    // AND the new number's consent names the import and its row
    let item = sms_contact(&stack, &account, bo).await;
    assert_eq!(
        consent(&item, "marketing", "state").as_deref(),
        Some("opted_in")
    );
    assert_eq!(
        consent(&item, "marketing", "source").as_deref(),
        Some("import")
    );
    let import_id = summary["import_id"].as_str().expect("import_id");
    assert_eq!(
        consent(&item, "marketing", "evidence"),
        Some(format!("{import_id}#row 4"))
    );
    assert_eq!(b(&item, "whatsapp_opted"), Some(true));

    // WHEN Eva texts START THEN she is opted back in to every category
    let answer = invoke("contact-events", &sms(&account, "sm-3", eva, "start")).expect("answered");
    assert_eq!(answer["contact"], "existing");
    let item = sms_contact(&stack, &account, eva).await;
    for category in ["marketing", "utility"] {
        assert_eq!(
            consent(&item, category, "state").as_deref(),
            Some("opted_in")
        );
        assert_eq!(
            consent(&item, category, "evidence").as_deref(),
            Some("start")
        );
    }
    assert_eq!(b(&item, "whatsapp_opted"), Some(true));
    // AND the same START again (a redelivery) changes nothing
    let version = item.get("version").cloned();
    invoke("contact-events", &sms(&account, "sm-3", eva, "start")).expect("answered");
    let again = sms_contact(&stack, &account, eva).await;
    assert_eq!(again.get("version").cloned(), version);
}
