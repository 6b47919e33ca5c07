//! [`ImportEvents`] on EventBridge (DESIGN section 15): `Contact Import Completed` from
//! source `contact-book`, on the configured bus.

use super::service;
use crate::ports::{ImportEvents, StoreError};

/// The event's `source`.
pub const SOURCE: &str = "contact-book";
/// The event's `detail-type`.
pub const DETAIL_TYPE: &str = "Contact Import Completed";

/// Completion events put on one bus.
#[derive(Clone, Debug)]
pub struct EventBridgeImportEvents {
    client: aws_sdk_eventbridge::Client,
    bus: String,
}

impl EventBridgeImportEvents {
    /// Events on `bus` (`default`, or a custom bus's name or ARN).
    pub fn new(client: aws_sdk_eventbridge::Client, bus: impl Into<String>) -> Self {
        EventBridgeImportEvents {
            client,
            bus: bus.into(),
        }
    }
}

impl ImportEvents for EventBridgeImportEvents {
    async fn import_completed(&self, detail: &serde_json::Value) -> Result<(), StoreError> {
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .source(SOURCE)
            .detail_type(DETAIL_TYPE)
            .detail(detail.to_string())
            .event_bus_name(&self.bus)
            .build();
        let out = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| service("events:PutEvents")(e.into_service_error()))?;
        // PutEvents answers 200 with the entry's own failure inside: say which code.
        match out.entries().first() {
            Some(entry) if entry.event_id().is_some() => Ok(()),
            Some(entry) => Err(StoreError::Service {
                operation: "events:PutEvents",
                source: format!(
                    "the entry was refused: {}",
                    entry.error_code().unwrap_or("no error code")
                )
                .into(),
            }),
            None if out.failed_entry_count() == 0 => Ok(()),
            None => Err(StoreError::Service {
                operation: "events:PutEvents",
                source: "the entry was refused, without an answer for it".into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_eventbridge::operation::put_events::{PutEventsInput, PutEventsOutput};
    use aws_sdk_eventbridge::types::PutEventsResultEntry;
    use aws_sdk_eventbridge::Client;
    use aws_smithy_mocks::{mock, mock_client};
    use serde_json::json;

    use super::*;

    #[tokio::test]
    async fn one_entry_on_the_bus_with_the_documented_source_and_type() {
        let sent = std::sync::Arc::new(std::sync::Mutex::new(Vec::<PutEventsInput>::new()));
        let record = sent.clone();
        let rule = mock!(Client::put_events)
            .match_requests(move |input| {
                record.lock().expect("lock").push(input.clone());
                true
            })
            .then_output(|| {
                PutEventsOutput::builder()
                    .entries(PutEventsResultEntry::builder().event_id("e-1").build())
                    .failed_entry_count(0)
                    .build()
            });
        let events =
            EventBridgeImportEvents::new(mock_client!(aws_sdk_eventbridge, [&rule]), "default");
        let detail = json!({"import_id": "imp_1", "status": "completed"});

        events.import_completed(&detail).await.expect("published");

        let sent = sent.lock().expect("lock");
        let entry = &sent[0].entries()[0];
        assert_eq!(entry.source(), Some(SOURCE));
        assert_eq!(entry.detail_type(), Some("Contact Import Completed"));
        assert_eq!(entry.event_bus_name(), Some("default"));
        let sent_detail: serde_json::Value =
            serde_json::from_str(entry.detail().expect("detail")).expect("json");
        assert_eq!(sent_detail, detail);
    }

    #[tokio::test]
    async fn a_refused_entry_is_an_error_naming_its_code() {
        let rule = mock!(Client::put_events).then_output(|| {
            PutEventsOutput::builder()
                .entries(
                    PutEventsResultEntry::builder()
                        .error_code("InternalFailure")
                        .build(),
                )
                .failed_entry_count(1)
                .build()
        });
        let events =
            EventBridgeImportEvents::new(mock_client!(aws_sdk_eventbridge, [&rule]), "default");
        let err = events
            .import_completed(&json!({}))
            .await
            .expect_err("refused");
        assert!(format!("{err:?}").contains("InternalFailure"), "{err:?}");
    }
}
