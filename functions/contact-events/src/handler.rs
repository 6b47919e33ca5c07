//! The handler: an invocation payload in (a bare event, an EventBridge envelope or an
//! SQS batch; `contacts::events::envelope` tells them apart), one reply out, and one
//! metrics line per invocation.

use contacts::events::{EventError, EventService, Invocation, Reply};
use contacts::ports::{
    AccountContacts, ContactRemoval, ContactStore, EventLedger, Identities, ObjectStore,
    SettingsStore, Suppressions,
};
use serde_json::{json, Value};

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

/// Handles one invocation: a single event answers or fails; a batch answers with
/// `batchItemFailures`.
pub async fn handle<O, C, S, L>(
    service: &EventService<'_, O, C, S, L>,
    payload: Value,
) -> Result<Reply, HandlerError>
where
    O: ObjectStore,
    C: ContactStore + AccountContacts + ContactRemoval + Suppressions + Identities,
    S: SettingsStore,
    L: EventLedger,
{
    let invocation = Invocation::from_payload(payload);
    let events = invocation.event_count();
    let reply = service.handle_invocation(invocation).await;
    emit_metrics(events, reply.as_ref().map_or(1, Reply::failures));
    Ok(reply?)
}

/// One CloudWatch Embedded Metric Format line per invocation (a batch counts once).
fn emit_metrics(events: u64, failed: u64) {
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let line = json!({
        "_aws": {"Timestamp": timestamp, "CloudWatchMetrics": [{
            "Namespace": "ContactBook",
            "Dimensions": [["Function"]],
            "Metrics": [{"Name": "Events", "Unit": "Count"}, {"Name": "EventsFailed", "Unit": "Count"}],
        }]},
        "Function": "contact-events",
        "Events": events,
        "EventsFailed": failed,
    });
    println!("{line}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use contacts::config::Config;
    use contacts::domain::upload::Channel;
    use contacts::ports::memory::MemoryPorts;

    async fn invoke(ports: &MemoryPorts, payload: Value) -> Result<Value, HandlerError> {
        let config = Config::default();
        let service = EventService {
            objects: &ports.objects,
            contacts: &ports.contacts,
            settings: &ports.settings,
            ledger: &ports.ledger,
            config: &config,
        };
        let reply = handle(&service, payload).await?;
        Ok(serde_json::to_value(reply).expect("replies serialise"))
    }

    #[tokio::test]
    async fn sqs_batch_reports_exactly_the_failed_records() {
        let store = MemoryPorts::default();
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
        let store = MemoryPorts::default();
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

    /// Every example in `events/` (the payloads `cargo lambda invoke --data-file` takes)
    /// decodes through the envelope and payload types.
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
            };
            for event in events {
                if let Err(e) = event {
                    panic!("{}: {e}", path.display());
                }
            }
            examples += 1;
        }
        assert_eq!(examples, 9, "every example was read");
    }
}
