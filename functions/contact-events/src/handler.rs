//! The handler: an invocation payload in (a bare event, an EventBridge envelope, an
//! SQS batch or a Function URL request; `contacts::events::envelope` tells them apart),
//! one reply out, and one metrics line per invocation.

use contacts::events::{EventError, EventService, Invocation, Reply};
use contacts::metrics;
use contacts::ports::{
    AccountContacts, CapacityMeter, ContactRemoval, ContactStore, EventLedger, Identities,
    ImportHistory, ObjectStore, SettingsStore, Suppressions, WebhookQueue,
};

/// An event that failed, reported to the runtime with its type.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct HandlerError(#[from] EventError);

impl From<HandlerError> for lambda_runtime::Diagnostic {
    fn from(e: HandlerError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: e.0.error_type().into(),
            error_message: e.0.to_string(),
        }
    }
}

/// Events (not HTTP requests) run one at a time in an instance, as on standard Lambda:
/// an event's capacity metric is the table meter's difference over its run, which an
/// event running beside it would blur. A webhook POST only stores its body on the
/// queue, touches no table, and runs beside anything.
static ONE_EVENT_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Handles one invocation: a single event answers or fails; a batch answers with
/// `batchItemFailures`; an HTTP request answers with a status (`statusCode`, `headers`,
/// `body`), never an error.
pub async fn handle<O, C, S, L, W, H>(
    service: &EventService<'_, O, C, S, L, W, H>,
    invocation: Invocation,
) -> Result<Reply, HandlerError>
where
    O: ObjectStore,
    C: ContactStore + AccountContacts + ContactRemoval + Suppressions + Identities + CapacityMeter,
    S: SettingsStore,
    L: EventLedger,
    W: WebhookQueue,
    H: ImportHistory,
{
    let events = invocation.event_count();
    let _turn = match invocation {
        Invocation::Http(_) => None,
        _ => Some(ONE_EVENT_AT_A_TIME.lock().await),
    };
    let reply = service.handle_invocation(invocation).await;
    emit_metrics(events, reply.as_ref().map_or(1, Reply::failures));
    Ok(reply?)
}

/// One CloudWatch Embedded Metric Format line per invocation (a batch counts once).
fn emit_metrics(events: u64, failed: u64) {
    metrics::emit(&metrics::emf_line(
        &[("Function", "contact-events")],
        &[
            ("Events", events as f64, "Count"),
            ("EventsFailed", failed as f64, "Count"),
        ],
        &[],
        metrics::now_ms(),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use contacts::config::Config;
    use contacts::domain::channel::Channel;
    use contacts::ports::memory::MemoryPorts;
    use serde_json::{json, Value};

    async fn invoke(ports: &MemoryPorts, payload: Value) -> Result<Value, HandlerError> {
        invoke_with(&Config::default(), ports, payload).await
    }

    async fn invoke_with(
        config: &Config,
        ports: &MemoryPorts,
        payload: Value,
    ) -> Result<Value, HandlerError> {
        let service = EventService {
            objects: &ports.objects,
            contacts: &ports.contacts,
            settings: &ports.settings,
            ledger: &ports.ledger,
            webhooks: &ports.webhooks,
            imports: &ports.jobs,
            config,
        };
        let reply = handle(&service, Invocation::from_payload(payload)).await?;
        Ok(serde_json::to_value(reply).expect("replies serialise"))
    }

    #[tokio::test]
    async fn sqs_batch_reports_exactly_the_failed_records() {
        let store = store();
        let good = json!({"type": "message.inbound", "account_id": "acme", "channel": "whatsapp", "message_id": "m1", "from": "+447911123456"});
        let bad = json!({"type": "message.inbound", "account_id": "acme", "channel": "whatsapp", "from": "+447911123456"});
        let batch = json!({"Records": [
            {"messageId": "a", "eventSource": "aws:sqs", "body": good.to_string()},
            {"messageId": "b", "eventSource": "aws:sqs", "body": bad.to_string()},
            {"messageId": "c", "eventSource": "aws:sqs", "body": "not json"},
        ]});
        let answer = invoke(&store, batch).await.expect("batch answered");
        assert_eq!(
            answer,
            json!({"batchItemFailures": [{"itemIdentifier": "b"}, {"itemIdentifier": "c"}]})
        );
        assert_eq!(store.contacts.count(), 1);
    }

    #[tokio::test]
    async fn a_malformed_single_event_is_an_invalid_event_error() {
        let store = store();
        let event = json!({"type": "contact.captured", "account_id": "acme", "channel": "sms", "phone": "+447911123458", "email": "not-an-email"});
        let err = invoke(&store, event).await.expect_err("refused");
        let diagnostic = lambda_runtime::Diagnostic::from(err);
        assert_eq!(diagnostic.error_type, "InvalidEvent");
        assert!(
            diagnostic.error_message.contains("`email`"),
            "{}",
            diagnostic.error_message
        );
        assert!(store
            .contacts
            .get("acme", Channel::Sms, "+447911123458")
            .is_none());
    }

    /// The development secrets `scripts/up.sh` sets.
    fn local_config() -> Config {
        Config::from_lookup(|name| match name {
            "WHATSAPP_APP_SECRET" => Some("local-development-app-secret".into()),
            "WHATSAPP_VERIFY_TOKEN" => Some("local-development-verify-token".into()),
            _ => None,
        })
        .expect("valid")
    }

    /// A POST as a Function URL hands it over (payload format 2.0).
    fn function_url_post(body: &str, signature: Option<&str>) -> Value {
        let mut headers =
            json!({"content-type": "application/json", "host": "abc.lambda-url.eu-west-1.on.aws"});
        if let Some(signature) = signature {
            headers["x-hub-signature-256"] = json!(signature);
        }
        json!({"version": "2.0", "routeKey": "$default", "rawPath": "/", "rawQueryString": "",
               "headers": headers,
               "requestContext": {"http": {"method": "POST", "path": "/"}, "stage": "$default"},
               "body": body, "isBase64Encoded": false})
    }

    /// In-memory ports where the examples' business number is account `acme`'s.
    fn store() -> MemoryPorts {
        let ports = MemoryPorts::default();
        ports
            .contacts
            .add_business_number("106540352242922", "acme");
        ports
    }

    /// The body of an example, as Meta sends it (one line of JSON).
    fn example(name: &str) -> String {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("events");
        let text = std::fs::read_to_string(dir.join(name)).expect("example exists");
        serde_json::from_str::<Value>(&text)
            .expect("JSON")
            .to_string()
    }

    /// A message from a new person, with number and BSUID.
    fn webhook_body() -> String {
        example("whatsapp-message-phone-and-bsuid.json")
    }

    #[tokio::test]
    async fn the_example_signed_post_is_stored_answered_200_and_applied_from_the_queue() {
        let store = store();
        let payload: Value =
            serde_json::from_str(&example("webhook-function-url-post.json")).expect("JSON");
        for _ in 0..2 {
            let answer = invoke_with(&local_config(), &store, payload.clone())
                .await
                .expect("answered");
            assert_eq!(answer["statusCode"], 200, "{answer}");
        }
        assert_eq!(store.contacts.count(), 0, "nothing applied in the request");
        let answer = invoke(&store, queue_batch(&store.webhooks.queued(), 1))
            .await
            .expect("answered");
        assert_eq!(answer, json!({"batchItemFailures": []}));
        assert_eq!(store.contacts.count(), 1, "a duplicate changes nothing");
    }

    /// The SQS batch Lambda's event source mapping hands over for what the receiver
    /// stored, each record received `receive_count` times.
    fn queue_batch(queued: &[contacts::ports::StoredWebhook], receive_count: u64) -> Value {
        let records: Vec<Value> = queued
            .iter()
            .enumerate()
            .map(|(i, webhook)| {
                let string = |value: &str| json!({"stringValue": value, "stringListValues": [], "binaryListValues": [], "dataType": "String"});
                // As the SQS adapter sends it: text as it is, anything else base64.
                let (body, encoding) = contacts::domain::stored_webhook::message_body(&webhook.body);
                json!({"messageId": format!("q{i}"), "receiptHandle": "r", "eventSource": "aws:sqs",
                       "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:contact-events-webhooks",
                       "awsRegion": "us-east-1",
                       "body": body,
                       "attributes": {"ApproximateReceiveCount": receive_count.to_string(), "SentTimestamp": "1764750000000"},
                       "messageAttributes": {"received_at": string(&webhook.received_at), "signature": string("verified"), "body_encoding": string(encoding)}})
            })
            .collect();
        json!({"Records": records})
    }

    /// Stores `body` as a signed POST would, and returns what was queued.
    async fn posted(ports: &MemoryPorts, body: &str) -> Vec<contacts::ports::StoredWebhook> {
        let answer = invoke_with(
            &local_config(),
            ports,
            function_url_post(body, Some(&sign(body))),
        )
        .await
        .expect("answered");
        assert_eq!(answer["statusCode"], 200, "{answer}");
        ports.webhooks.queued()
    }

    #[tokio::test]
    async fn a_good_message_is_applied_beside_an_unreadable_item_and_another_field() {
        let store = ports_with_dead_letters();
        let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [
            {"field": "messages", "value": {"messaging_product": "whatsapp",
              "metadata": {"display_phone_number": "15550001111", "phone_number_id": "106540352242922"},
              "contacts": [{"profile": {"name": "Eva"}, "wa_id": "447911123456"}],
              "messages": [{"from": "447911123456", "id": "wamid.good", "timestamp": "1764324000", "type": "text", "text": {"body": "Hi"}},
                           {"from": "447911123457", "timestamp": {"not": "a time"}, "type": "text"}]}},
            {"field": "message_template_status_update", "value": {"event": "APPROVED", "message_template_id": 1}}]}]})
        .to_string();
        let queued = posted(&store, &body).await;
        let answer = invoke(&store, queue_batch(&queued, 1))
            .await
            .expect("answered");
        assert_eq!(answer, json!({"batchItemFailures": []}), "nothing to retry");
        assert!(
            store.webhooks.dead_letters().is_empty(),
            "applied, not given up"
        );
        assert_eq!(store.contacts.count(), 1, "the good message's sender");
        assert!(store
            .contacts
            .get("acme", Channel::Whatsapp, "+447911123456")
            .is_some());
    }

    #[tokio::test]
    async fn a_stored_body_that_is_no_webhook_goes_to_the_dead_letter_queue_with_its_reason() {
        let store = ports_with_dead_letters();
        let queued = posted(&store, "{\"not\": \"meta\"}").await;
        let answer = invoke(&store, queue_batch(&queued, 1))
            .await
            .expect("answered");
        assert_eq!(answer, json!({"batchItemFailures": []}), "not retried");
        let dead = store.webhooks.dead_letters();
        assert_eq!(dead.len(), 1);
        assert!(
            dead[0].reason.starts_with("InvalidEvent: "),
            "{}",
            dead[0].reason
        );
        assert!(dead[0].reason.contains("`object`"), "{}", dead[0].reason);
        assert_eq!(dead[0].body, "{\"not\": \"meta\"}");
        assert_eq!(dead[0].attributes["signature"], "verified");
    }

    #[tokio::test]
    async fn a_store_failure_is_retried_then_dead_lettered_on_its_last_receive() {
        let store = ports_with_dead_letters();
        store
            .contacts
            .set_number_unavailable("106540352242922", true);
        let queued = posted(&store, &webhook_body()).await;
        for receive_count in 1..5 {
            let answer = invoke(&store, queue_batch(&queued, receive_count))
                .await
                .expect("answered");
            assert_eq!(
                answer,
                json!({"batchItemFailures": [{"itemIdentifier": "q0"}]}),
                "receive {receive_count}: retried"
            );
        }
        assert!(store.webhooks.dead_letters().is_empty());
        // The fifth receive is the queue's last (WEBHOOK_MAX_RECEIVE_COUNT, 5 by default).
        let answer = invoke(&store, queue_batch(&queued, 5))
            .await
            .expect("answered");
        assert_eq!(answer, json!({"batchItemFailures": []}));
        let dead = store.webhooks.dead_letters();
        assert_eq!(dead.len(), 1);
        assert!(
            dead[0].reason.starts_with("Retryable: "),
            "{}",
            dead[0].reason
        );
        assert_eq!(dead[0].receive_count, 5);
        // Without a dead-letter queue the record fails, and the queue's redrive moves it.
        let store = store_without_dead_letters_failing();
        let queued = posted(&store, &webhook_body()).await;
        let answer = invoke(&store, queue_batch(&queued, 5))
            .await
            .expect("answered");
        assert_eq!(
            answer,
            json!({"batchItemFailures": [{"itemIdentifier": "q0"}]})
        );
    }

    #[tokio::test]
    async fn only_the_failing_record_of_a_batch_is_retried_and_a_base64_body_is_read() {
        let store = ports_with_dead_letters();
        store.contacts.add_business_number("999", "other");
        store.contacts.set_number_unavailable("999", true);
        let good = webhook_body();
        let failing = good.replace("106540352242922", "999");
        // The same webhook with a character SQS cannot carry (valid JSON): stored as base64.
        let binary = good.replacen("Hi", "Hi\u{FFFF}", 1);
        assert!(
            binary.contains('\u{FFFF}'),
            "the body carries a character SQS refuses"
        );
        let mut queued = posted(&store, &good).await;
        queued.extend(posted(&store, &failing).await.into_iter().skip(1));
        let third = {
            let webhook = contacts::ports::StoredWebhook {
                body: binary.clone().into_bytes(),
                received_at: "2026-12-03T08:00:00.000Z".into(),
            };
            assert_eq!(
                contacts::domain::stored_webhook::message_body(&webhook.body).1,
                "base64"
            );
            webhook
        };
        queued.push(third);
        let answer = invoke(&store, queue_batch(&queued, 1))
            .await
            .expect("answered");
        assert_eq!(
            answer,
            json!({"batchItemFailures": [{"itemIdentifier": "q1"}]}),
            "the failing one alone"
        );
        assert_eq!(
            store.contacts.count(),
            1,
            "the good body and its base64 twin: one sender"
        );
        assert!(store.webhooks.dead_letters().is_empty());
    }

    /// In-memory ports with a dead-letter queue.
    fn ports_with_dead_letters() -> MemoryPorts {
        let ports = MemoryPorts {
            webhooks: contacts::ports::memory::MemoryWebhookQueue::with_dead_letters(),
            ..MemoryPorts::default()
        };
        ports
            .contacts
            .add_business_number("106540352242922", "acme");
        ports
    }

    fn store_without_dead_letters_failing() -> MemoryPorts {
        let ports = store();
        ports
            .contacts
            .set_number_unavailable("106540352242922", true);
        ports
    }

    /// `printf '%s' "$body" | openssl dgst -sha256 -hmac local-development-app-secret`.
    fn sign(body: &str) -> String {
        use hmac::{KeyInit, Mac};
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"local-development-app-secret")
            .expect("any key length");
        mac.update(body.as_bytes());
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }

    #[tokio::test]
    async fn the_example_verification_get_answers_its_challenge() {
        let store = store();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("events");
        let text = std::fs::read_to_string(dir.join("webhook-function-url-get.json"))
            .expect("example exists");
        let payload: Value = serde_json::from_str(&text).expect("JSON");
        let answer = invoke_with(&local_config(), &store, payload.clone())
            .await
            .expect("answered");
        assert_eq!(
            answer,
            json!({"statusCode": 200, "headers": {"content-type": "text/plain; charset=utf-8"}, "body": "1158201444",
                   "isBase64Encoded": false, "cookies": []})
        );
        // Another deployment's token: refused, still an answer (not an invocation error).
        let answer = invoke(&store, payload).await.expect("answered");
        assert_eq!(answer["statusCode"], 403);
    }

    #[tokio::test]
    async fn a_badly_signed_webhook_is_401_and_writes_nothing() {
        let store = store();
        let body = webhook_body();
        let wrong = sign("another body");
        for signature in [None, Some(wrong.as_str())] {
            let answer = invoke_with(&local_config(), &store, function_url_post(&body, signature))
                .await
                .expect("answered");
            assert_eq!(answer["statusCode"], 401, "{answer}");
        }
        assert_eq!(store.contacts.count(), 0);
        assert!(store.ledger.answers().is_empty());
    }

    #[tokio::test]
    async fn a_signed_webhook_applied_from_the_queue_does_what_the_bare_body_does() {
        let body = webhook_body();
        let bare = store();
        invoke(&bare, serde_json::from_str(&body).expect("JSON"))
            .await
            .expect("handled");
        let store = store();
        let queued = posted(&store, &body).await;
        let answer = invoke(&store, queue_batch(&queued, 1))
            .await
            .expect("answered");
        assert_eq!(answer, json!({"batchItemFailures": []}));
        assert_eq!(store.contacts.count(), bare.contacts.count());
        assert_eq!(store.ledger.answers(), bare.ledger.answers());
    }

    /// Every example in `events/` (the payloads `cargo lambda invoke --data-file` takes)
    /// decodes through the envelope and payload types (an HTTP request only reads).
    #[test]
    fn example_payloads_decode() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("events");
        let mut examples = 0;
        for entry in std::fs::read_dir(&dir).expect("events/ exists") {
            let path = entry.expect("entry").path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("readable");
            let payload: Value = serde_json::from_str(&text).expect("JSON");
            let events = match Invocation::from_payload(payload) {
                Invocation::Single(event) => vec![event],
                Invocation::Batch(records) => records.into_iter().map(|r| r.event).collect(),
                // Answered, not decoded: the request only has to read.
                Invocation::Http(request) => {
                    if let Err(e) = request {
                        panic!("{}: {e}", path.display());
                    }
                    vec![]
                }
            };
            for event in events {
                if let Err(e) = event {
                    panic!("{}: {e}", path.display());
                }
            }
            examples += 1;
        }
        assert_eq!(examples, 25, "every example was read");
    }
}
