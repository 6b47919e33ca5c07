//! End to end: contact-events invoked through the Lambda runtime API (`cargo lambda
//! watch`) against the emulator.

use aws_sdk_dynamodb::types::AttributeValue;
use integration_tests::{b, invoke, s, unique_account, Stack, BUCKET};
use serde_json::{json, Value};

fn inbound(account: &str, message_id: &str, from: &str, profile: Option<&str>) -> Value {
    json!({"type": "message.inbound", "account_id": account, "channel": "whatsapp", "message_id": message_id,
           "from": from, "profile_name": profile, "first_name": null, "last_name": null, "received_at": "2026-11-21T10:00:00Z"})
}

async fn set_status(stack: &Stack, account: &str, phone: &str, status: &str) {
    let mut item = stack
        .contact(account, "whatsapp", phone)
        .await
        .expect("contact exists");
    item.insert("status".into(), AttributeValue::S(status.into()));
    stack.put_item(item).await;
}

#[tokio::test]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn inbound_messages_create_reactivate_and_respect_blocks() {
    let stack = Stack::connect().await;
    let account = unique_account("inbound");
    let phone = "+447911123456";
    let pk = format!("CONTACT#{account}#whatsapp#{phone}");
    let first = invoke(
        "contact-events",
        &inbound(&account, "wamid.1", phone, Some("Eva")),
    )
    .expect("answered");
    assert_eq!(first, json!({"contact": "created_anonymous", "pk": pk}));
    let item = stack
        .contact(&account, "whatsapp", phone)
        .await
        .expect("created");
    assert_eq!(b(&item, "anonymous"), Some(true));
    assert_eq!(s(&item, "source").as_deref(), Some("inbound"));
    assert_eq!(s(&item, "name").as_deref(), Some("Eva"));
    assert_eq!(
        s(&item, "last_inbound_at").as_deref(),
        Some("2026-11-21T10:00:00Z")
    );

    let version = s(&item, "updated_at");
    assert_eq!(
        invoke(
            "contact-events",
            &inbound(&account, "wamid.1", phone, Some("Eva"))
        )
        .expect("answered"),
        first,
        "same message twice"
    );
    assert_eq!(
        s(
            &stack
                .contact(&account, "whatsapp", phone)
                .await
                .expect("exists"),
            "updated_at"
        ),
        version,
        "nothing changed"
    );

    set_status(&stack, &account, phone, "archived").await;
    let mut later = inbound(&account, "wamid.2", phone, Some("Someone Else"));
    later["received_at"] = json!("2026-11-22T09:00:00Z");
    assert_eq!(
        invoke("contact-events", &later).expect("answered")["contact"],
        "reactivated"
    );
    let item = stack
        .contact(&account, "whatsapp", phone)
        .await
        .expect("exists");
    assert_eq!(s(&item, "status").as_deref(), Some("active"));
    assert_eq!(
        s(&item, "name").as_deref(),
        Some("Eva"),
        "re-activated with its stored name"
    );
    assert_eq!(
        s(&item, "last_inbound_at").as_deref(),
        Some("2026-11-22T09:00:00Z")
    );

    set_status(&stack, &account, phone, "blocked").await;
    assert_eq!(
        invoke("contact-events", &inbound(&account, "wamid.3", phone, None)).expect("answered")
            ["contact"],
        "blocked"
    );
    assert_eq!(
        s(
            &stack
                .contact(&account, "whatsapp", phone)
                .await
                .expect("exists"),
            "status"
        )
        .as_deref(),
        Some("blocked")
    );
}

#[tokio::test]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn captured_details_complete_an_anonymous_contact_and_race_with_inbound() {
    let stack = Stack::connect().await;
    let account = unique_account("captured");
    let phone = "+447400123456";
    let captured = json!({"type": "contact.captured", "account_id": account, "channel": "whatsapp", "phone": phone,
        "email": "sam@example.com", "name": "Sam Lee", "captured_by": "ai_agent", "conversation_id": "conv-9"});
    // Both events for a new number at the same moment: one contact with both events' data.
    let (a, b_) = std::thread::scope(|scope| {
        let a = scope.spawn(|| {
            invoke(
                "contact-events",
                &inbound(&account, "wamid.race", phone, Some("sam")),
            )
        });
        let c = scope.spawn(|| invoke("contact-events", &captured));
        (a.join().expect("thread"), c.join().expect("thread"))
    });
    a.expect("inbound answered");
    b_.expect("captured answered");
    let contacts = stack.contacts_of(&account).await;
    assert_eq!(contacts.len(), 1);
    let item = &contacts[0];
    assert_eq!(s(item, "email").as_deref(), Some("sam@example.com"));
    assert_eq!(s(item, "name").as_deref(), Some("Sam Lee"));
    assert_eq!(b(item, "anonymous"), Some(false));
    assert_eq!(
        s(item, "last_inbound_at").as_deref(),
        Some("2026-11-21T10:00:00Z")
    );
}

#[tokio::test]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn campaign_recipients_inline_and_from_a_file_are_saved_once() {
    let stack = Stack::connect().await;
    let account = unique_account("campaign");
    let event = json!({"type": "campaign.completed", "account_id": account, "campaign_id": "cmp-42", "channel": "whatsapp",
        "status": "succeeded", "default_country": "IN", "recipients": [
            {"phone": "+919876543210", "name": "John Doe", "delivery_status": "delivered"},
            {"phone": "98765 43211", "name": "Priya", "delivery_status": "read"},
            {"phone": "+919876543212", "name": "Not Sent", "delivery_status": "undelivered"},
            {"phone": "12", "name": "Bad Number"}]});
    let answer = invoke("contact-events", &event).expect("answered");
    assert_eq!(answer["status"], "saved");
    assert_eq!(
        (
            answer["created"].as_u64(),
            answer["rejected"].as_u64(),
            answer["not_delivered"].as_u64()
        ),
        (Some(2), Some(1), Some(1))
    );
    assert_eq!(answer["message"], "2 new contacts saved to Contact Book.");
    assert_eq!(
        invoke("contact-events", &event).expect("answered"),
        answer,
        "delivered twice: same answer, nothing saved"
    );
    let john = stack
        .contact(&account, "whatsapp", "+919876543210")
        .await
        .expect("saved");
    assert_eq!(s(&john, "last_campaign_id").as_deref(), Some("cmp-42"));
    assert_eq!(s(&john, "source").as_deref(), Some("campaign"));

    let key = format!("campaigns/{account}/cmp-43/recipients.csv");
    stack
        .s3
        .put_object()
        .bucket(BUCKET)
        .key(&key)
        .body(
            b"Name,Phone\nJohn D.,+919876543210\nNew Person,+919876543213\n"
                .to_vec()
                .into(),
        )
        .send()
        .await
        .expect("put");
    let from_file = invoke("contact-events", &json!({"type": "campaign.completed", "account_id": account, "campaign_id": "cmp-43", "channel": "whatsapp",
        "status": "succeeded", "recipients_file": {"bucket": BUCKET, "key": key}})).expect("answered");
    assert_eq!(
        (from_file["created"].as_u64(), from_file["updated"].as_u64()),
        (Some(1), Some(1)),
        "{from_file}"
    );
    assert_eq!(
        s(
            &stack
                .contact(&account, "whatsapp", "+919876543210")
                .await
                .expect("saved"),
            "name"
        )
        .as_deref(),
        Some("John D.")
    );

    let no_name = format!("campaigns/{account}/cmp-44/recipients.csv");
    stack
        .s3
        .put_object()
        .bucket(BUCKET)
        .key(&no_name)
        .body(b"Phone\n+919876543214\n".to_vec().into())
        .send()
        .await
        .expect("put");
    let err = invoke("contact-events", &json!({"type": "campaign.completed", "account_id": account, "campaign_id": "cmp-44", "channel": "whatsapp",
        "status": "succeeded", "recipients_file": {"bucket": BUCKET, "key": no_name}})).expect_err("refused");
    assert!(
        err.to_string().contains("missing_required_headers"),
        "{err}"
    );

    let failed = invoke("contact-events", &json!({"type": "campaign.completed", "account_id": account, "campaign_id": "cmp-45", "channel": "whatsapp",
        "status": "failed", "recipients": [{"phone": "+919876543215", "name": "X"}]})).expect("answered");
    assert_eq!(failed["status"], "not_saved");
    assert!(stack
        .contact(&account, "whatsapp", "+919876543215")
        .await
        .is_none());
}

#[tokio::test]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn envelopes_batches_and_bad_events() {
    let stack = Stack::connect().await;
    let account = unique_account("shapes");
    let detail = json!({"account_id": account, "channel": "sms", "message_id": "eb-1", "from": "+447911123456", "profile_name": "EB"});
    let answer = invoke("contact-events", &json!({"version": "0", "detail-type": "message.inbound", "source": "inbox", "detail": detail})).expect("answered");
    assert_eq!(answer["contact"], "created_anonymous");

    let good = json!({"type": "message.inbound", "account_id": account, "channel": "sms", "message_id": "sqs-1", "from": "+447400123456"});
    let bad = json!({"type": "message.inbound", "account_id": account, "channel": "sms", "from": "+447400123457"});
    let batch = json!({"Records": [
        {"messageId": "ok-1", "eventSource": "aws:sqs", "body": good.to_string()},
        {"messageId": "bad-1", "eventSource": "aws:sqs", "body": bad.to_string()}]});
    assert_eq!(
        invoke("contact-events", &batch).expect("answered"),
        json!({"batchItemFailures": [{"itemIdentifier": "bad-1"}]})
    );
    assert!(stack
        .contact(&account, "sms", "+447400123456")
        .await
        .is_some());
    assert!(
        stack
            .contact(&account, "sms", "+447400123457")
            .await
            .is_none(),
        "the failed record wrote nothing"
    );

    let err = invoke("contact-events", &json!({"type": "contact.captured", "account_id": account, "channel": "sms", "phone": "+447911123458", "email": "not-an-email"}))
        .expect_err("refused");
    assert_eq!(err["errorType"], "InvalidEvent");
    assert!(
        err["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("`email`")),
        "{err}"
    );
    assert!(stack
        .contact(&account, "sms", "+447911123458")
        .await
        .is_none());
}
