//! End to end: `contact.erase` through the Lambda runtime API, then an import and a
//! campaign meeting the erased number, then the person's own message.

use contacts::domain::suppression::SuppressionKey;
use integration_tests::{invoke, unique_account, Stack};
use serde_json::{json, Value};

/// The key `make up` gives the functions (scripts/up.sh) unless SUPPRESSION_SECRET is set.
fn suppression_key() -> SuppressionKey {
    let secret = std::env::var("SUPPRESSION_SECRET")
        .unwrap_or_else(|_| "local-development-suppression-secret".into());
    SuppressionKey::new(secret.as_bytes()).expect("a secret of at least 16 bytes")
}

fn erase(account: &str, phone: &str) -> Value {
    json!({"type": "contact.erase", "account_id": account, "channel": "whatsapp", "phone": phone})
}

#[tokio::test]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn an_erased_person_stays_out_until_they_write_again() {
    let stack = Stack::connect().await;
    let account = unique_account("erase");
    let (eva, bo) = ("+447911123456", "+447400123456");
    let file = format!("Name,Phone,Email\nEva Smith,{eva},eva@example.com\nBo,{bo},\n");
    let first = stack
        .import(&account, "whatsapp", "people.csv", file.as_bytes(), &[])
        .await;
    assert_eq!(first["rows"]["created"], 2, "{first}");

    // Erasure: the contact is gone, a tombstone without her number stands instead.
    let answer = invoke("contact-events", &erase(&account, eva)).expect("answered");
    assert_eq!(answer, json!({"status": "erased", "items": 1}));
    assert!(stack.contact(&account, "whatsapp", eva).await.is_none());
    let digest = suppression_key().digest(eva);
    let tombstone = stack
        .item(&format!("SUPPRESS#{account}#whatsapp#{digest}"), "SUPPRESS")
        .await
        .expect("tombstone");
    assert!(
        !format!("{tombstone:?}").contains("7911123456"),
        "{tombstone:?}"
    );
    assert!(stack.contact(&account, "whatsapp", bo).await.is_some());
    let again = invoke("contact-events", &erase(&account, eva)).expect("answered");
    assert_eq!(again, json!({"status": "not_found"}), "idempotent");

    // The same file again: her row is rejected (suppressed), the report says so.
    let second = stack
        .import(&account, "whatsapp", "people.csv", file.as_bytes(), &[])
        .await;
    assert_eq!(second["rows"]["rejected"], 1, "{second}");
    assert_eq!(second["rows"]["unchanged"], 1, "{second}");
    assert_eq!(second["rejections_by_reason"], json!({"suppressed": 1}));
    let report = stack.rows_report(&second).await;
    assert!(
        report
            .iter()
            .any(|r| r[0] == "2" && r[1] == "rejected" && r[2] == "suppressed"),
        "{report:?}"
    );
    assert!(stack.contact(&account, "whatsapp", eva).await.is_none());

    // A campaign that reached her does not bring her back either.
    let campaign = json!({"type": "campaign.completed", "account_id": account, "campaign_id": "cmp-erase",
        "channel": "whatsapp", "status": "succeeded", "recipients": [{"phone": eva, "name": "Eva"}]});
    let saved = invoke("contact-events", &campaign).expect("answered");
    assert_eq!(
        saved["rejections_by_reason"],
        json!({"suppressed": 1}),
        "{saved}"
    );
    assert!(stack.contact(&account, "whatsapp", eva).await.is_none());

    // Her own message does: a new anonymous contact, and the tombstone is lifted.
    let inbound = json!({"type": "message.inbound", "account_id": account, "channel": "whatsapp",
        "message_id": "wamid.erase-1", "from": eva, "profile_name": "Eva"});
    let back = invoke("contact-events", &inbound).expect("answered");
    assert_eq!(back["contact"], "created_anonymous");
    assert!(stack.contact(&account, "whatsapp", eva).await.is_some());
    assert!(stack
        .item(&format!("SUPPRESS#{account}#whatsapp#{digest}"), "SUPPRESS")
        .await
        .is_none());
}

#[tokio::test]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn erasing_an_unknown_number_answers_not_found_and_writes_nothing() {
    let stack = Stack::connect().await;
    let account = unique_account("erase-unknown");
    let answer = invoke("contact-events", &erase(&account, "+447911000999")).expect("answered");
    assert_eq!(answer, json!({"status": "not_found"}));
    let digest = suppression_key().digest("+447911000999");
    assert!(stack
        .item(&format!("SUPPRESS#{account}#whatsapp#{digest}"), "SUPPRESS")
        .await
        .is_none());
    let refused = invoke("contact-events", &erase(&account, "12")).expect_err("refused");
    assert!(
        refused["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("field `phone`")),
        "{refused}"
    );
}
