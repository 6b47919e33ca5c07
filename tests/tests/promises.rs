//! End to end: the promises of DESIGN sections 10, 12, 13 and 14 that hold across write
//! paths (an undo keeps what anything wrote since; an erased person comes back only by
//! writing; a campaign reads only its own account's files; reachability follows each
//! item's own time; no phone, e-mail or name in an answer or a log line), through
//! `cargo lambda watch` and the emulator, with the real S3 event shape.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use integration_tests::whatsapp::{business_number, message, webhook};
use integration_tests::{b, invoke, repo_file, s, unique_account, Stack, BUCKET};
use serde_json::{json, Value};

/// Held by each test for its whole run: watch's function instances are few.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

type Item = HashMap<String, AttributeValue>;

fn answered(event: &Value) -> Value {
    invoke("contact-events", event).expect("answered")
}

async fn whatsapp_contact(stack: &Stack, account: &str, key: &str) -> Option<Item> {
    stack.contact(account, "whatsapp", key).await
}

#[tokio::test]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn an_undo_keeps_contacts_a_merge_or_a_number_change_wrote_since() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    // GIVEN an import of Eva by her BSUID alone and of Bo by his number
    let stack = Stack::connect().await;
    let (account, pnid) = business_number(&stack, "undo-moved").await;
    let eva = "GB.20931208655302748888";
    let file = format!("Phone,Name,WhatsApp User ID\n,Eva,{eva}\n+447400123456,Bo,\n");
    let summary = stack
        .import(&account, "whatsapp", "people.csv", file.as_bytes(), &[])
        .await;
    assert_eq!(summary["rows"]["created"], 2, "{summary}");
    let import_id = summary["import_id"]
        .as_str()
        .expect("import id")
        .to_string();

    // WHEN Eva's first message names her number too (a merge), Bo changes his number,
    // and the import is undone
    answered(&message(&pnid, "wamid.u1", Some("447911123456"), Some(eva)));
    let changed = webhook(
        &pnid,
        "messages",
        json!({"messages": [{"from": "447400123456", "id": "wamid.u2", "timestamp": "1764324500",
            "type": "system", "system": {"body": "changed", "type": "user_changed_number",
            "new_wa_id": "447400123999"}}]}),
    );
    answered(&changed);
    let undo = json!({"type": "import.undo", "account_id": account, "import_id": import_id});
    let answer = answered(&undo);

    // THEN both are kept: something wrote each after the import
    assert_eq!(answer["deleted"], 0, "{answer}");
    assert_eq!(answer["kept_changed"], 2, "{answer}");
    assert!(whatsapp_contact(&stack, &account, "+447911123456")
        .await
        .is_some());
    assert!(whatsapp_contact(&stack, &account, "+447400123999")
        .await
        .is_some());
}

#[tokio::test]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn an_erased_person_comes_back_only_by_writing_whatever_path_names_them() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    // GIVEN Eva (by number) and Bo (by his BSUID alone), both erased
    let stack = Stack::connect().await;
    let (account, pnid) = business_number(&stack, "erased").await;
    let bo = "US.20931208655302747777";
    answered(&message(&pnid, "wamid.e1", Some("447911123456"), None));
    answered(&message(&pnid, "wamid.e2", None, Some(bo)));
    let erase_eva = json!({"type": "contact.erase", "account_id": account, "channel": "whatsapp",
        "phone": "+447911123456"});
    assert_eq!(
        answered(&erase_eva),
        json!({"status": "erased", "items": 1})
    );
    let erase_bo = json!({"type": "contact.erase", "account_id": account, "channel": "whatsapp",
        "user_id": bo});
    assert_eq!(answered(&erase_bo), json!({"status": "erased", "items": 2}));

    // WHEN an agent captures Eva's details, and a stop of Bo's arrives
    let captured = json!({"type": "contact.captured", "account_id": account, "channel": "whatsapp",
        "phone": "+447911123456", "name": "Eva Green"});
    let answer = answered(&captured);
    let stop = webhook(
        &pnid,
        "messages",
        json!({"user_preferences": [{"user_id": bo, "category": "marketing_messages",
            "value": "stop", "timestamp": 1764324600}]}),
    );
    answered(&stop);

    // THEN neither comes back
    assert_eq!(answer["contact"], "suppressed", "{answer}");
    assert!(stack.contacts_of(&account).await.is_empty());

    // AND their own messages do
    answered(&message(&pnid, "wamid.e3", Some("447911123456"), None));
    answered(&message(&pnid, "wamid.e4", None, Some(bo)));
    assert_eq!(stack.contacts_of(&account).await.len(), 2);
}

#[tokio::test]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn a_campaign_cannot_read_another_accounts_file() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    // GIVEN another account's recipients file
    let stack = Stack::connect().await;
    let (account, other) = (unique_account("cmp-own"), unique_account("cmp-other"));
    let key = format!("campaigns/{other}/cmp-1/recipients.csv");
    stack
        .s3
        .put_object()
        .bucket(BUCKET)
        .key(&key)
        .body(b"Name,Phone\nJohn D.,+919876543210\n".to_vec().into())
        .send()
        .await
        .expect("put");

    // WHEN a campaign of this account names it
    let event = json!({"type": "campaign.completed", "account_id": account, "campaign_id": "cmp-1",
        "channel": "whatsapp", "status": "succeeded",
        "recipients_file": {"bucket": BUCKET, "key": key}});
    let error = invoke("contact-events", &event).expect_err("refused");

    // THEN it is an invalid event naming the key, and nothing is written
    let message = error["errorMessage"].as_str().unwrap_or_default();
    assert_eq!(error["errorType"], "InvalidEvent", "{error}");
    assert!(message.contains("`recipients_file.key`"), "{message}");
    assert!(!message.contains(&other), "{message}");
    assert!(stack.contacts_of(&account).await.is_empty());
}

#[tokio::test]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn reachability_follows_each_items_own_time() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    // GIVEN Eva, reachable since her message
    let stack = Stack::connect().await;
    let (account, pnid) = business_number(&stack, "reach").await;
    answered(&message(&pnid, "wamid.r1", Some("447911123456"), None));
    let status = |id: &str, state: &str, code: Option<i64>, time: i64| {
        let mut status = json!({"id": id, "status": state, "timestamp": time.to_string(),
            "recipient_id": "447911123456", "recipient_type": "individual"});
        if let Some(code) = code {
            status["errors"] = json!([{"code": code, "title": "x"}]);
        }
        webhook(&pnid, "messages", json!({"statuses": [status]}))
    };

    // WHEN a newer failure (131026) arrives before an older delivery
    answered(&status("wamid.r2", "failed", Some(131_026), 1_764_325_000));
    answered(&status("wamid.r3", "delivered", None, 1_764_324_500));

    // THEN she stays unreachable as of the failure
    let eva = whatsapp_contact(&stack, &account, "+447911123456")
        .await
        .expect("eva");
    assert_eq!(b(&eva, "whatsapp_reachable"), Some(false));
    assert_eq!(
        s(&eva, "whatsapp_reachable_at").as_deref(),
        Some("2025-11-28T10:16:40Z")
    );
}

#[tokio::test]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn no_phone_email_or_name_in_an_answer_or_a_log_line() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    // GIVEN events whose e-mail and name are invalid, bare and in an SQS batch
    let account = unique_account("pii");
    let log = repo_file(".run/watch.log");
    let captured = |field: &str, value: &str| {
        let mut event = json!({"type": "contact.captured", "account_id": account,
            "channel": "whatsapp", "phone": "+447911123456"});
        event[field] = json!(value);
        event
    };
    let email = "eva.private@@example";
    let name = "Eva Private <script>";
    let events = [captured("email", email), captured("name", name)];

    // WHEN they are sent
    let mut answers = Vec::new();
    for event in &events {
        answers.push(invoke("contact-events", event).expect_err("refused"));
    }
    let batch = json!({"Records": events.iter().enumerate().map(|(i, e)| json!({
        "messageId": format!("m{i}"), "eventSource": "aws:sqs", "body": e.to_string()})).collect::<Vec<_>>()});
    answers.push(answered(&batch));

    // THEN no answer and no log line written since holds the values
    let now = repo_file(".run/watch.log");
    // (A restart of watch starts the log anew.)
    let logged = String::from_utf8_lossy(now.get(log.len()..).unwrap_or(&now));
    for value in ["eva.private", "Eva Private", "7911123456"] {
        for answer in &answers {
            assert!(!answer.to_string().contains(value), "{answer}");
        }
        assert!(!logged.contains(value), "a log line holds {value:?}");
    }
    assert!(
        answers[0]["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("`email`")),
        "{}",
        answers[0]
    );
}
