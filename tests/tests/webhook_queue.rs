//! End to end: Meta's webhooks stored, then answered, then applied item by item from the
//! webhook queue (DESIGN section 13), through the function URL under `cargo lambda
//! watch` and the relay draining the queue as Lambda's event source mapping does.
//!
//! The tests stop the relay or restart watch, so they run one at a time, and each puts
//! the stack back as `make up` left it, whatever its outcome.

use aws_sdk_sqs::types::MessageSystemAttributeName;
use integration_tests::whatsapp::{
    business_number, message, post, signature, webhook, WEBHOOK_DEAD_LETTER_QUEUE,
};
use integration_tests::{b, s, try_restart_watch, Stack, ROOT};
use serde_json::json;

/// Held by each test for its whole run.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The bytes of watch's log written so far: what a test's own invocations log comes after.
fn watch_log_offset() -> usize {
    std::fs::read(format!("{ROOT}/.run/watch.log")).map_or(0, |log| log.len())
}

/// watch's log from `offset` on.
fn watch_log_since(offset: usize) -> String {
    let log = std::fs::read(format!("{ROOT}/.run/watch.log")).unwrap_or_default();
    String::from_utf8_lossy(log.get(offset..).unwrap_or_default()).into_owned()
}

fn signed_post(body: &str) -> u16 {
    post(body.as_bytes(), Some(&signature(body.as_bytes())))
}

/// Runs `scripts/up.sh` (with `env` before it), which starts what is not running.
fn up(env: &str) -> Result<(), String> {
    let status = std::process::Command::new("bash")
        .current_dir(ROOT)
        .args(["-c", &format!("{env} scripts/up.sh")])
        .status()
        .map_err(|e| format!("cannot run scripts/up.sh: {e}"))?;
    status
        .success()
        .then_some(())
        .ok_or_else(|| format!("scripts/up.sh failed: {status}"))
}

/// Starts the relay again (if stopped) whatever the test's outcome.
struct RelayBackOnDrop;

impl Drop for RelayBackOnDrop {
    fn drop(&mut self) {
        if let Err(e) = up("") {
            eprintln!("{e}");
        }
    }
}

/// Puts watch back to `make up`'s settings whatever the test's outcome.
struct WatchBackOnDrop;

impl Drop for WatchBackOnDrop {
    fn drop(&mut self) {
        if let Err(e) = try_restart_watch("") {
            eprintln!("{e}");
        }
    }
}

#[tokio::test]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn a_good_message_an_unreadable_item_and_a_template_status_answer_200_and_the_good_one_is_applied(
) {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let stack = Stack::connect().await;
    let (account, pnid) = business_number(&stack, "wa-items").await;
    let mut body = message(&pnid, "wamid.items1", Some("447911123470"), None);
    let messages = body["entry"][0]["changes"][0]["value"]["messages"]
        .as_array_mut()
        .expect("messages");
    // No id, and a timestamp that is no time: unreadable, whatever else it holds.
    messages.push(json!({"from": "447911123471", "timestamp": {"at": "noon"}, "type": "text"}));
    let template = webhook(
        &pnid,
        "message_template_status_update",
        json!({"event": "APPROVED", "message_template_id": 594425479261596_u64,
               "message_template_name": "hello_world", "message_template_language": "en_US"}),
    );
    body["entry"]
        .as_array_mut()
        .expect("entries")
        .push(template["entry"][0].clone());
    let body = body.to_string();
    let from = watch_log_offset();

    assert_eq!(signed_post(&body), 200);
    let item = stack
        .wait_until("the good message's contact", || {
            stack.contact(&account, "whatsapp", "+447911123470")
        })
        .await;
    assert_eq!(b(&item, "whatsapp_reachable"), Some(true));
    stack.wait_for_webhooks_applied().await;
    assert_eq!(
        stack.contacts_of(&account).await.len(),
        1,
        "only the good one"
    );

    // Counted, logged by where it is (never what it holds), and not retried.
    let log = watch_log_since(from);
    assert!(
        log.contains(r#""WebhookInvalidItems":1.0"#) && log.contains(r#""WebhookOtherFields":1.0"#),
        "the body's metrics count one unreadable item and one other field:\n{log}"
    );
    assert!(
        log.contains(r#"event="invalid_item" at="entry[0].changes[0].value.messages[1]"#),
        "{log}"
    );
    assert!(
        !log.contains("447911123471"),
        "no number in the log:\n{log}"
    );
    assert!(
        !log.contains("event in batch failed"),
        "nothing retried:\n{log}"
    );
}

#[tokio::test]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn thirty_two_posts_at_once_are_each_answered_200_and_each_applied() {
    // An instance answers many POSTs at once and sends their bodies in shared
    // SendMessageBatch requests: each POST must still get its own answer, and each body
    // must reach the queue and be applied.
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let stack = Stack::connect().await;
    let (account, pnid) = business_number(&stack, "wa-burst").await;
    let bodies: Vec<String> = (0..32)
        .map(|k| {
            let wa_id = format!("447911123{k:03}");
            message(&pnid, &format!("wamid.burst{k}"), Some(&wa_id), None).to_string()
        })
        .collect();
    let codes: Vec<u16> = std::thread::scope(|scope| {
        let posts: Vec<_> = bodies
            .iter()
            .map(|body| scope.spawn(move || signed_post(body)))
            .collect();
        posts
            .into_iter()
            .map(|post| post.join().expect("a POST's thread"))
            .collect()
    });
    assert!(codes.iter().all(|&code| code == 200), "{codes:?}");
    for k in 0..32 {
        let phone = format!("+447911123{k:03}");
        stack
            .wait_until("each POST's contact", || {
                stack.contact(&account, "whatsapp", &phone)
            })
            .await;
    }
    stack.wait_for_webhooks_applied().await;
    assert_eq!(
        stack.contacts_of(&account).await.len(),
        32,
        "one contact per POST, no other"
    );
}

#[tokio::test]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn a_stored_body_that_is_no_webhook_ends_in_the_dead_letter_queue_with_its_reason() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let stack = Stack::connect().await;
    let marker = format!("not-a-webhook-{}", std::process::id());
    let body = json!({"object": "page", "marker": marker}).to_string();
    assert_eq!(signed_post(&body), 200, "stored: the signature is right");
    stack.wait_for_webhooks_applied().await;

    let dead_letters = stack.queue_url(WEBHOOK_DEAD_LETTER_QUEUE).await;
    let letter = stack
        .wait_until("the dead letter", || async {
            let answer = stack
                .sqs
                .receive_message()
                .queue_url(&dead_letters)
                .max_number_of_messages(10)
                .message_attribute_names("All")
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .send()
                .await
                .ok()?;
            let ours = answer
                .messages()
                .iter()
                .find(|m| m.body().is_some_and(|b| b.contains(&marker)))
                .cloned();
            for m in answer.messages() {
                if let Some(handle) = m.receipt_handle() {
                    let _ = stack
                        .sqs
                        .delete_message()
                        .queue_url(&dead_letters)
                        .receipt_handle(handle)
                        .send()
                        .await;
                }
            }
            ours
        })
        .await;
    assert_eq!(
        letter.body(),
        Some(body.as_str()),
        "the body as it was stored"
    );
    let attributes = letter.message_attributes().expect("attributes");
    let reason = attributes["failure_reason"]
        .string_value()
        .unwrap_or_default();
    assert!(
        reason.starts_with("InvalidEvent:") && reason.contains("`object`"),
        "{reason}"
    );
    assert_eq!(
        attributes["signature"].string_value(),
        Some("verified"),
        "the receiver's attributes travel with it"
    );
    assert!(attributes.contains_key("received_at"));
    let receives = letter
        .attributes()
        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
        .cloned();
    assert_eq!(
        attributes["receive_count"].string_value(),
        Some("1"),
        "given up at once, not after every retry ({receives:?})"
    );
}

#[tokio::test]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn with_the_apply_side_stopped_posts_are_answered_and_applied_when_it_returns() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let stack = Stack::connect().await;
    let (account, pnid) = business_number(&stack, "wa-paused").await;
    let numbers = ["447911123480", "447911123481", "447911123482"];

    let stopped = std::process::Command::new("bash")
        .current_dir(ROOT)
        .args(["-c", "scripts/down.sh relay"])
        .status()
        .expect("scripts/down.sh runs");
    assert!(stopped.success());
    let _relay_back = RelayBackOnDrop;
    for (i, number) in numbers.iter().enumerate() {
        let body = message(&pnid, &format!("wamid.paused{i}"), Some(number), None).to_string();
        assert_eq!(signed_post(&body), 200, "answered while nothing applies");
    }
    assert!(
        stack.contacts_of(&account).await.is_empty(),
        "nothing applied while the relay is stopped"
    );
    assert!(
        stack
            .queued_messages(integration_tests::whatsapp::WEBHOOK_QUEUE)
            .await
            .is_some_and(|n| n >= 3),
        "the bodies wait on the queue"
    );

    up("").expect("the relay starts again");
    for number in numbers {
        let e164 = format!("+{number}");
        stack
            .wait_until("a stored message applied", || {
                stack.contact(&account, "whatsapp", &e164)
            })
            .await;
    }
    stack.wait_for_webhooks_applied().await;
    assert_eq!(stack.contacts_of(&account).await.len(), 3, "each once");
}

#[tokio::test]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn with_the_queue_unreachable_the_answer_is_500_and_nothing_is_written() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let stack = Stack::connect().await;
    let (account, pnid) = business_number(&stack, "wa-noqueue").await;
    // Nothing listens on port 9: every SQS request of the functions is refused.
    try_restart_watch("AWS_ENDPOINT_URL_SQS=http://127.0.0.1:9").expect("watch restarts");
    let _watch_back = WatchBackOnDrop;
    let body = message(&pnid, "wamid.noqueue", Some("447911123490"), None).to_string();
    assert_eq!(signed_post(&body), 500, "not stored: Meta must retry");
    drop(_watch_back);
    stack.wait_for_webhooks_applied().await;
    assert!(
        stack.contacts_of(&account).await.is_empty(),
        "a 500 stored nothing"
    );

    // Meta's retry, once the queue is back, is stored and applied.
    assert_eq!(signed_post(&body), 200);
    let item = stack
        .wait_until("the retried message applied", || {
            stack.contact(&account, "whatsapp", "+447911123490")
        })
        .await;
    assert_eq!(s(&item, "name").as_deref(), Some("Eva Green"));
}

#[tokio::test]
#[ignore = "end to end: needs the local stack (make up), then cargo test -p integration-tests -- --ignored"]
async fn a_late_older_status_never_flips_reachability() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let stack = Stack::connect().await;
    let (account, pnid) = business_number(&stack, "wa-late").await;
    let wa_id = "447911123495";
    let status = |wamid: &str, state: &str, at: i64, code: Option<i64>| {
        let mut status = json!({"id": wamid, "status": state, "timestamp": at.to_string(),
                                "recipient_id": wa_id, "recipient_type": "individual"});
        if let Some(code) = code {
            status["errors"] = json!([{"code": code, "title": "Message undeliverable"}]);
        }
        webhook(&pnid, "messages", json!({"statuses": [status]})).to_string()
    };
    // The person writes (1764324000), then a message to them fails as undeliverable
    // (1764324600).
    let first = message(&pnid, "wamid.late0", Some(wa_id), None).to_string();
    assert_eq!(signed_post(&first), 200);
    stack
        .wait_until("the contact", || {
            stack.contact(&account, "whatsapp", "+447911123495")
        })
        .await;
    assert_eq!(
        signed_post(&status(
            "wamid.late2",
            "failed",
            1_764_324_600,
            Some(131_026)
        )),
        200
    );
    stack
        .wait_until("unreachable", || async {
            let item = stack.contact(&account, "whatsapp", "+447911123495").await?;
            (b(&item, "whatsapp_reachable") == Some(false)).then_some(())
        })
        .await;

    // Then an older `delivered` arrives late (1764324300): it changes nothing, and a
    // replay of the failure changes nothing either.
    let late = status("wamid.late1", "delivered", 1_764_324_300, None);
    assert_eq!(signed_post(&late), 200);
    assert_eq!(
        signed_post(&status(
            "wamid.late2",
            "failed",
            1_764_324_600,
            Some(131_026)
        )),
        200
    );
    stack.wait_for_webhooks_applied().await;
    let item = stack
        .contact(&account, "whatsapp", "+447911123495")
        .await
        .expect("contact");
    assert_eq!(b(&item, "whatsapp_reachable"), Some(false), "{item:?}");
    assert_eq!(
        s(&item, "whatsapp_reachable_at").as_deref(),
        Some("2025-11-28T10:10:00Z"),
        "the failure's own time"
    );
}
