//! End to end: Meta's WhatsApp webhooks (DESIGN section 13) through the Lambda runtime
//! API (`cargo lambda watch`): bare, in an SQS batch, and POSTed to the function URL as
//! Meta does, signed with `make up`'s development app secret (stored on the webhook
//! queue, answered, then applied from the queue by the relay, as Lambda's event source
//! mapping does).
//! The tests run one at a time: watch's function instances are few, and a test that
//! sends three deliveries at once needs them.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use integration_tests::whatsapp::{business_number, message, post, signature, webhook};
use integration_tests::{b, invoke, s, Stack};
use serde_json::{json, Value};

/// Held by each test for its whole run.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

type Item = HashMap<String, AttributeValue>;

fn preference(pnid: &str, wa_id: &str, value: &str, timestamp: i64) -> Value {
    webhook(
        pnid,
        "user_preferences",
        json!({"user_preferences": [{"wa_id": wa_id, "category": "marketing_messages",
                                     "value": value, "timestamp": timestamp}]}),
    )
}

fn sqs(bodies: &[Value]) -> Value {
    let records: Vec<Value> = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| json!({"messageId": format!("m{i}"), "eventSource": "aws:sqs", "body": body.to_string()}))
        .collect();
    json!({"Records": records})
}

fn version(item: &Item) -> Option<u64> {
    item.get("version")?.as_n().ok()?.parse().ok()
}

fn consent_state(item: &Item, category: &str) -> Option<String> {
    let consent = item.get("consent")?.as_m().ok()?;
    let entry = consent.get(category)?.as_m().ok()?;
    entry.get("state")?.as_s().ok().cloned()
}

#[tokio::test]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn a_signed_post_saves_the_sender_with_alias_and_a_bad_signature_writes_nothing() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let stack = Stack::connect().await;
    let (account, pnid) = business_number(&stack, "wa-http").await;
    let body = message(
        &pnid,
        "wamid.http1",
        Some("447911123456"),
        Some("GB.13491208655302741918"),
    )
    .to_string();

    // A wrong signature, or none: 401 and nothing written.
    assert_eq!(
        post(body.as_bytes(), Some(&signature(b"another body"))),
        401
    );
    assert_eq!(post(body.as_bytes(), None), 401);
    // Had either been stored, the relay would have applied it by the time the queue is empty.
    stack.wait_for_webhooks_applied().await;
    assert!(stack.contacts_of(&account).await.is_empty());

    // Signed: 200, and the same body again is 200 and changes nothing.
    assert_eq!(
        post(body.as_bytes(), Some(&signature(body.as_bytes()))),
        200
    );
    let item = stack
        .wait_until("the sender's contact", || {
            stack.contact(&account, "whatsapp", "+447911123456")
        })
        .await;
    assert_eq!(
        s(&item, "user_id").as_deref(),
        Some("GB.13491208655302741918")
    );
    assert_eq!(s(&item, "name").as_deref(), Some("Eva Green"));
    assert_eq!(b(&item, "anonymous"), Some(true));
    let alias = stack
        .item(
            &format!("ALIAS#{account}#whatsapp#GB.13491208655302741918"),
            "CONTACT",
        )
        .await
        .expect("alias");
    assert_eq!(
        s(&alias, "contact_pk"),
        Some(format!("CONTACT#{account}#whatsapp#+447911123456"))
    );
    assert_eq!(
        post(body.as_bytes(), Some(&signature(body.as_bytes()))),
        200
    );
    stack.wait_for_webhooks_applied().await;
    let again = stack.contact(&account, "whatsapp", "+447911123456").await;
    assert_eq!(again.as_ref().and_then(version), version(&item));
    assert_eq!(stack.contacts_of(&account).await.len(), 1);
}

#[tokio::test]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn a_bsuid_only_contact_merges_into_the_number_when_both_appear() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let stack = Stack::connect().await;
    let (account, pnid) = business_number(&stack, "wa-merge").await;
    let user_id = "US.20931208655302741234";
    invoke(
        "contact-events",
        &message(&pnid, "wamid.m1", None, Some(user_id)),
    )
    .expect("answered");
    let contacts = stack.contacts_of(&account).await;
    assert_eq!(contacts.len(), 1);
    assert_eq!(
        s(&contacts[0], "pk"),
        Some(format!("CONTACT#{account}#whatsapp#bsuid:{user_id}"))
    );
    assert_eq!(s(&contacts[0], "phone"), None, "a BSUID is never a number");

    // In an SQS batch this time: the number and the BSUID together.
    let answer = invoke(
        "contact-events",
        &sqs(&[message(
            &pnid,
            "wamid.m2",
            Some("12025550147"),
            Some(user_id),
        )]),
    )
    .expect("answered");
    assert_eq!(answer, json!({"batchItemFailures": []}));
    let contacts = stack.contacts_of(&account).await;
    assert_eq!(contacts.len(), 1, "one contact at the end: {contacts:?}");
    assert_eq!(s(&contacts[0], "phone").as_deref(), Some("+12025550147"));
    assert_eq!(s(&contacts[0], "user_id").as_deref(), Some(user_id));
    let alias = stack
        .item(&format!("ALIAS#{account}#whatsapp#{user_id}"), "CONTACT")
        .await
        .expect("alias");
    assert_eq!(
        s(&alias, "contact_pk"),
        Some(format!("CONTACT#{account}#whatsapp#+12025550147"))
    );
    assert_eq!(s(&alias, "phone_number_id").as_deref(), Some(pnid.as_str()));
}

#[tokio::test]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn statuses_never_create_and_a_legacy_brazilian_wa_id_finds_its_contact() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let stack = Stack::connect().await;
    let (account, pnid) = business_number(&stack, "wa-status").await;
    let status = |wamid: &str, to: &str, state: &str, code: Option<i64>| {
        let mut status = json!({"id": wamid, "status": state, "timestamp": "1764324100",
                                "recipient_id": to, "recipient_type": "individual"});
        if let Some(code) = code {
            status["errors"] = json!([{"code": code, "title": "failed"}]);
        }
        webhook(&pnid, "messages", json!({"statuses": [status]}))
    };
    invoke(
        "contact-events",
        &status("wamid.s1", "447400123456", "delivered", None),
    )
    .expect("answered");
    invoke(
        "contact-events",
        &status("wamid.s2", "447400123456", "failed", Some(131026)),
    )
    .expect("answered");
    assert!(
        stack.contacts_of(&account).await.is_empty(),
        "statuses never create"
    );

    // The contact is stored with the ninth digit; WhatsApp's id has 12 digits.
    invoke(
        "contact-events",
        &message(&pnid, "wamid.b1", Some("5511987654321"), None),
    )
    .expect("answered");
    invoke(
        "contact-events",
        &status("wamid.s3", "551187654321", "failed", Some(131026)),
    )
    .expect("answered");
    let item = stack
        .contact(&account, "whatsapp", "+5511987654321")
        .await
        .expect("contact");
    assert_eq!(b(&item, "whatsapp_reachable"), Some(false));
    // Reachability follows the items' own times (DESIGN 13): the reply comes after the failure.
    let mut reply = message(&pnid, "wamid.b2", Some("551187654321"), None);
    reply["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = json!("1764324200");
    invoke("contact-events", &reply).expect("answered");
    let contacts = stack.contacts_of(&account).await;
    assert_eq!(contacts.len(), 1, "found, not duplicated");
    assert_eq!(b(&contacts[0], "whatsapp_reachable"), Some(true));
    assert_eq!(s(&contacts[0], "wa_id").as_deref(), Some("551187654321"));
}

#[tokio::test]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn user_preferences_out_of_order_the_later_one_wins() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let stack = Stack::connect().await;
    let (account, pnid) = business_number(&stack, "wa-pref").await;
    let wa_id = "447911123457";
    invoke(
        "contact-events",
        &message(&pnid, "wamid.p1", Some(wa_id), None),
    )
    .expect("answered");
    // The resume (later) is delivered before the stop (earlier).
    invoke(
        "contact-events",
        &preference(&pnid, wa_id, "resume", 1764324200),
    )
    .expect("answered");
    invoke(
        "contact-events",
        &preference(&pnid, wa_id, "stop", 1764324100),
    )
    .expect("answered");
    let item = stack
        .contact(&account, "whatsapp", "+447911123457")
        .await
        .expect("contact");
    assert_eq!(
        consent_state(&item, "marketing").as_deref(),
        Some("opted_in")
    );
    invoke(
        "contact-events",
        &preference(&pnid, wa_id, "stop", 1764324300),
    )
    .expect("answered");
    let item = stack
        .contact(&account, "whatsapp", "+447911123457")
        .await
        .expect("contact");
    assert_eq!(
        consent_state(&item, "marketing").as_deref(),
        Some("opted_out")
    );
    assert_eq!(b(&item, "whatsapp_opted"), Some(false));
}

#[tokio::test]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn one_body_delivered_three_times_at_once_is_one_contact_and_one_consent_change() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let stack = Stack::connect().await;
    let (account, pnid) = business_number(&stack, "wa-dup").await;
    let wa_id = "447911123458";
    let mut body = message(&pnid, "wamid.d1", Some(wa_id), Some("GB.777"));
    let stop = preference(&pnid, wa_id, "stop", 1764324300);
    body["entry"]
        .as_array_mut()
        .expect("entries")
        .push(stop["entry"][0].clone());
    let text = body.to_string();
    let deliveries: Vec<_> = (0..3)
        .map(|_| {
            let text = text.clone();
            std::thread::spawn(move || post(text.as_bytes(), Some(&signature(text.as_bytes()))))
        })
        .collect();
    for delivery in deliveries {
        assert_eq!(delivery.join().expect("delivered"), 200);
    }
    // Three copies on the queue; the relay's pollers may apply them at the same time.
    stack.wait_for_webhooks_applied().await;
    let contacts = stack.contacts_of(&account).await;
    assert_eq!(contacts.len(), 1, "{contacts:?}");
    assert_eq!(
        consent_state(&contacts[0], "marketing").as_deref(),
        Some("opted_out")
    );
    // Created (1), then opted out (2): the duplicates changed nothing.
    assert_eq!(version(&contacts[0]), Some(2));
}
