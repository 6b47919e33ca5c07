//! [`WebhookQueue`] on SQS (DESIGN section 13): a signed WhatsApp webhook POST is sent to
//! the webhook queue, raw, before it is answered; contact-events consumes that queue and
//! sends what it gives up on to the queue's dead-letter queue, with its reason.
//!
//! The message's body and attributes are those of
//! [`crate::domain::stored_webhook`].

use std::time::Duration;

use aws_sdk_sqs::types::MessageAttributeValue;

use super::service;
use crate::domain::stored_webhook::{
    message_body, BODY_ENCODING, FAILURE_REASON, RECEIVED_AT, RECEIVE_COUNT, SIGNATURE, VERIFIED,
};
use crate::ports::{DeadLetter, StoreError, StoredWebhook, WebhookQueue};

/// The webhook queue and its dead-letter queue, by URL.
#[derive(Clone, Debug)]
pub struct SqsWebhookQueue {
    client: aws_sdk_sqs::Client,
    queue_url: Option<String>,
    dead_letter_queue_url: Option<String>,
}

impl SqsWebhookQueue {
    /// The queues at `queue_url` and `dead_letter_queue_url` (either may be missing:
    /// then what would use it fails, and says so).
    pub fn new(
        client: aws_sdk_sqs::Client,
        queue_url: Option<String>,
        dead_letter_queue_url: Option<String>,
    ) -> Self {
        SqsWebhookQueue {
            client,
            queue_url,
            dead_letter_queue_url,
        }
    }

    /// A client for the webhook queue: a POST waits on it, and Meta gives a request
    /// seconds, so a send is tried three times within two seconds, not ten times.
    pub fn client(sdk: &aws_config::SdkConfig) -> aws_sdk_sqs::Client {
        let config = aws_sdk_sqs::config::Builder::from(sdk)
            .retry_config(
                aws_config::retry::RetryConfig::standard()
                    .with_max_attempts(3)
                    .with_initial_backoff(Duration::from_millis(20)),
            )
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_millis(500))
                    .operation_attempt_timeout(Duration::from_millis(600))
                    .operation_timeout(Duration::from_secs(2))
                    .build(),
            )
            .build();
        aws_sdk_sqs::Client::from_conf(config)
    }

    async fn send(
        &self,
        queue_url: Option<&str>,
        setting: &'static str,
        body: String,
        attributes: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(), StoreError> {
        let Some(queue_url) = queue_url else {
            return Err(StoreError::Service {
                operation: "sqs:SendMessage",
                source: format!("{setting} is not set").into(),
            });
        };
        let mut request = self
            .client
            .send_message()
            .queue_url(queue_url)
            .message_body(body);
        for (name, value) in attributes {
            request = request.message_attributes(name, string_attribute(value)?);
        }
        request.send().await.map_err(service("sqs:SendMessage"))?;
        Ok(())
    }
}

impl WebhookQueue for SqsWebhookQueue {
    async fn enqueue(&self, webhook: &StoredWebhook) -> Result<(), StoreError> {
        let (body, encoding) = message_body(&webhook.body);
        let attributes = [
            (RECEIVED_AT.to_string(), webhook.received_at.clone()),
            (SIGNATURE.to_string(), VERIFIED.to_string()),
            (BODY_ENCODING.to_string(), encoding.to_string()),
        ];
        self.send(
            self.queue_url.as_deref(),
            "WEBHOOK_QUEUE_URL",
            body,
            attributes,
        )
        .await
    }

    async fn dead_letter(&self, letter: &DeadLetter) -> Result<(), StoreError> {
        let mut attributes = letter.attributes.clone();
        attributes.insert(FAILURE_REASON.into(), letter.reason.clone());
        attributes.insert(RECEIVE_COUNT.into(), letter.receive_count.to_string());
        self.send(
            self.dead_letter_queue_url.as_deref(),
            "WEBHOOK_DEAD_LETTER_QUEUE_URL",
            letter.body.clone(),
            attributes,
        )
        .await
    }
}

/// A message attribute of type String.
fn string_attribute(value: String) -> Result<MessageAttributeValue, StoreError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(service("sqs:SendMessage"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sqs::operation::send_message::SendMessageOutput;
    use aws_smithy_mocks::{mock, mock_client};

    #[tokio::test]
    async fn a_webhook_is_sent_raw_with_its_time_and_verdict() {
        let rule = mock!(aws_sdk_sqs::Client::send_message)
            .match_requests(|r| {
                let attributes = r.message_attributes().expect("attributes");
                let value = |name: &str| attributes[name].string_value().map(str::to_string);
                r.queue_url() == Some("https://sqs/q")
                    && r.message_body() == Some("{\"a\":1}")
                    && value(RECEIVED_AT).as_deref() == Some("2026-12-03T08:00:00.000Z")
                    && value(SIGNATURE).as_deref() == Some(VERIFIED)
                    && value(BODY_ENCODING).as_deref() == Some("utf-8")
            })
            .then_output(|| SendMessageOutput::builder().message_id("m1").build());
        let queue = SqsWebhookQueue::new(
            mock_client!(aws_sdk_sqs, [&rule]),
            Some("https://sqs/q".into()),
            None,
        );
        let webhook = StoredWebhook {
            body: b"{\"a\":1}".to_vec(),
            received_at: "2026-12-03T08:00:00.000Z".into(),
        };
        queue.enqueue(&webhook).await.expect("sent");
        assert_eq!(rule.num_calls(), 1);
        // No dead-letter queue configured: giving up fails, naming the setting.
        let letter = DeadLetter {
            body: "{}".into(),
            attributes: Default::default(),
            reason: "InvalidEvent".into(),
            receive_count: 1,
        };
        let err = queue.dead_letter(&letter).await.expect_err("no queue");
        assert!(err.to_string().contains("sqs:SendMessage"), "{err}");
        assert!(
            format!("{err:?}").contains("WEBHOOK_DEAD_LETTER_QUEUE_URL"),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn a_dead_letter_carries_its_reason_and_receive_count() {
        let rule = mock!(aws_sdk_sqs::Client::send_message)
            .match_requests(|r| {
                let attributes = r.message_attributes().expect("attributes");
                let value = |name: &str| attributes[name].string_value().map(str::to_string);
                r.queue_url() == Some("https://sqs/dlq")
                    && r.message_body() == Some("body")
                    && value(RECEIVED_AT).as_deref() == Some("t")
                    && value(FAILURE_REASON).as_deref() == Some("Retryable: a store failed")
                    && value(RECEIVE_COUNT).as_deref() == Some("5")
            })
            .then_output(|| SendMessageOutput::builder().message_id("m2").build());
        let queue = SqsWebhookQueue::new(
            mock_client!(aws_sdk_sqs, [&rule]),
            None,
            Some("https://sqs/dlq".into()),
        );
        let letter = DeadLetter {
            body: "body".into(),
            attributes: [(RECEIVED_AT.to_string(), "t".to_string())].into(),
            reason: "Retryable: a store failed".into(),
            receive_count: 5,
        };
        queue.dead_letter(&letter).await.expect("sent");
        assert_eq!(rule.num_calls(), 1);
    }
}
