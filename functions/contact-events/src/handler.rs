//! Invocation shapes: a bare event, an EventBridge envelope, or an SQS batch answered
//! with `batchItemFailures`.

use contacts::config::Config;
use contacts::events::{unwrap_envelope, EventError, EventService};
use contacts::ports::{ContactStore, EventLedger, ObjectStore, SettingsStore};
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

fn is_sqs_batch(payload: &Value) -> bool {
    payload
        .get("Records")
        .and_then(Value::as_array)
        .is_some_and(|records| {
            !records.is_empty()
                && records
                    .iter()
                    .all(|r| r.get("eventSource").and_then(Value::as_str) == Some("aws:sqs"))
        })
}

/// Handles one invocation.
pub async fn handle<O, D>(
    objects: &O,
    table: &D,
    config: &Config,
    payload: Value,
) -> Result<Value, HandlerError>
where
    O: ObjectStore,
    D: ContactStore + SettingsStore + EventLedger,
{
    let service = EventService {
        objects,
        table,
        config,
    };
    if !is_sqs_batch(&payload) {
        let result = service.handle(&unwrap_envelope(payload)).await;
        emit_metrics(1, u64::from(result.is_err()));
        return Ok(result?);
    }
    let mut failures = Vec::new();
    for record in payload["Records"].as_array().into_iter().flatten() {
        let id = record
            .get("messageId")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let body = record
            .get("body")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let result = match serde_json::from_str::<Value>(body) {
            Ok(event) => service.handle(&unwrap_envelope(event)).await.map(|_| ()),
            Err(e) => Err(EventError::InvalidField {
                field: "body".into(),
                problem: format!("is not JSON ({e})"),
            }),
        };
        if let Err(e) = result {
            tracing::warn!(message_id = %id, error = %e, "event in batch failed");
            failures.push(json!({"itemIdentifier": id}));
        }
    }
    let total = payload["Records"].as_array().map_or(0, Vec::len) as u64;
    emit_metrics(total, failures.len() as u64);
    Ok(json!({"batchItemFailures": failures}))
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
    use contacts::ports::memory::MemoryStore;

    #[tokio::test]
    async fn sqs_batch_reports_exactly_the_failed_records() {
        let store = MemoryStore::default();
        let good = json!({"type": "message.inbound", "account_id": "acme", "channel": "whatsapp", "message_id": "m1", "from": "+447911123456"});
        let bad = json!({"type": "message.inbound", "account_id": "acme", "channel": "whatsapp", "from": "+447911123456"});
        let batch = json!({"Records": [
            {"messageId": "a", "eventSource": "aws:sqs", "body": good.to_string()},
            {"messageId": "b", "eventSource": "aws:sqs", "body": bad.to_string()},
            {"messageId": "c", "eventSource": "aws:sqs", "body": "not json"},
        ]});
        let answer = handle(&store, &store, &Config::default(), batch)
            .await
            .expect("batch answered");
        assert_eq!(
            answer,
            json!({"batchItemFailures": [{"itemIdentifier": "b"}, {"itemIdentifier": "c"}]})
        );
        assert_eq!(store.contact_count(), 1);
    }
}
