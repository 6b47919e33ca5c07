//! [`WebhookQueue`] on SQS (DESIGN section 13): a signed WhatsApp webhook POST is sent to
//! the webhook queue, raw, before it is answered; contact-events consumes that queue and
//! sends what it gives up on to the queue's dead-letter queue, with its reason.
//!
//! The message's body and attributes are those of
//! [`crate::domain::stored_webhook`].
//!
//! Bodies are sent in `SendMessageBatch` requests: each body waits for the request in
//! flight, if any, and then goes with every other body that arrived meanwhile (up to
//! SQS's 10 entries and 256 KiB). A lone POST is sent at once; an instance answering
//! many POSTs at once (Lambda Managed Instances, or `make up`) sends a request per
//! batch instead of per body, which is SQS's bill and, locally, most of the ack's CPU.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use tokio::sync::{mpsc, oneshot};

use super::service;
use crate::domain::stored_webhook::{
    message_body, BODY_ENCODING, FAILURE_REASON, RECEIVED_AT, RECEIVE_COUNT, SIGNATURE, VERIFIED,
};
use crate::ports::{DeadLetter, StoreError, StoredWebhook, WebhookQueue};

/// SQS's limits on one `SendMessageBatch`: entries, and bytes of bodies and attributes.
const MAX_BATCH_ENTRIES: usize = 10;
const MAX_BATCH_BYTES: usize = 256 * 1024;
const SEND_BATCH: &str = "sqs:SendMessageBatch";
/// How long a POST waits for its body to be stored: the request in flight (at most the
/// client's 2 s operation timeout), then its own. A body still waiting then is not
/// sent: its POST is answered 500 and Meta sends it again.
const ENQUEUE_DEADLINE: Duration = Duration::from_secs(4);

/// The webhook queue and its dead-letter queue, by URL.
#[derive(Debug)]
pub struct SqsWebhookQueue {
    client: aws_sdk_sqs::Client,
    queue_url: Option<String>,
    dead_letter_queue_url: Option<String>,
    /// The inbox of the task that sends bodies in batches, started with the first body
    /// (and again, should it ever stop).
    batches: Mutex<Option<mpsc::UnboundedSender<Pending>>>,
}

/// A body waiting for its batch, and the enqueue waiting for its answer.
#[derive(Debug)]
struct Pending {
    body: String,
    attributes: Vec<(String, String)>,
    answer: oneshot::Sender<Result<(), StoreError>>,
}

impl Pending {
    /// What SQS counts against a batch's size: the body, and each attribute's name,
    /// type and value.
    fn size(&self) -> usize {
        let attributes: usize = self
            .attributes
            .iter()
            .map(|(name, value)| name.len() + "String".len() + value.len())
            .sum();
        self.body.len() + attributes
    }

    /// Whether its POST stopped waiting (answered 500 at its deadline): not to be sent.
    fn abandoned(&self) -> bool {
        self.answer.is_closed()
    }

    fn answer(self, result: Result<(), StoreError>) {
        // The enqueue may have gone (its invocation ended): nobody to tell.
        let _ = self.answer.send(result);
    }
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
            batches: Mutex::new(None),
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

    /// Sends one body (a dead letter) on its own.
    async fn send(
        &self,
        queue_url: Option<&str>,
        setting: &'static str,
        body: String,
        attributes: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(), StoreError> {
        let queue_url = configured(queue_url, setting, "sqs:SendMessage")?;
        self.client
            .send_message()
            .queue_url(queue_url)
            .message_body(body)
            .set_message_attributes(Some(string_attributes(attributes, "sqs:SendMessage")?))
            .send()
            .await
            .map_err(service("sqs:SendMessage"))?;
        Ok(())
    }
}

impl WebhookQueue for SqsWebhookQueue {
    async fn enqueue(&self, webhook: &StoredWebhook) -> Result<(), StoreError> {
        let queue_url = configured(self.queue_url.as_deref(), "WEBHOOK_QUEUE_URL", SEND_BATCH)?;
        let (body, encoding) = message_body(&webhook.body);
        let (answer, answered) = oneshot::channel();
        let pending = Pending {
            body,
            attributes: vec![
                (RECEIVED_AT.to_string(), webhook.received_at.clone()),
                (SIGNATURE.to_string(), VERIFIED.to_string()),
                (BODY_ENCODING.to_string(), encoding.to_string()),
            ],
            answer,
        };
        let sent = {
            let mut inbox = self
                .batches
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let sender = match inbox.as_ref().filter(|sender| !sender.is_closed()) {
                Some(sender) => sender,
                None => {
                    let (sender, bodies) = mpsc::unbounded_channel();
                    tokio::spawn(send_batches(
                        self.client.clone(),
                        queue_url.to_string(),
                        bodies,
                    ));
                    inbox.insert(sender)
                }
            };
            sender.send(pending)
        };
        let stopped = || StoreError::Service {
            operation: SEND_BATCH,
            source: "the batch sender stopped".into(),
        };
        sent.map_err(|_| stopped())?;
        match tokio::time::timeout(ENQUEUE_DEADLINE, answered).await {
            Ok(answer) => answer.map_err(|_| stopped())?,
            Err(_) => Err(StoreError::Service {
                operation: SEND_BATCH,
                source: format!("not stored within {ENQUEUE_DEADLINE:?}").into(),
            }),
        }
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

/// The batch sender: takes the next body, every other body already waiting (within
/// SQS's limits), sends them in one request and answers each; one request at a time,
/// so that bodies arriving during a request share the next one.
async fn send_batches(
    client: aws_sdk_sqs::Client,
    queue_url: String,
    mut bodies: mpsc::UnboundedReceiver<Pending>,
) {
    let mut carried: Option<Pending> = None;
    loop {
        let first = match carried.take() {
            Some(pending) => pending,
            None => match bodies.recv().await {
                Some(pending) => pending,
                None => return,
            },
        };
        if first.abandoned() {
            continue;
        }
        let mut size = first.size();
        let mut batch = vec![first];
        // Invocations that have arrived (a yield lets the runtime read its sockets and
        // run them) enqueue before the batch is closed; it closes once a yield brings
        // nothing new, so a lone body waits for no timer.
        'gather: loop {
            tokio::task::yield_now().await;
            let before = batch.len();
            while batch.len() < MAX_BATCH_ENTRIES {
                let Ok(pending) = bodies.try_recv() else {
                    break;
                };
                if pending.abandoned() {
                    continue;
                }
                if size + pending.size() > MAX_BATCH_BYTES {
                    carried = Some(pending);
                    break 'gather;
                }
                size += pending.size();
                batch.push(pending);
            }
            if batch.len() == before || batch.len() == MAX_BATCH_ENTRIES {
                break;
            }
        }
        send_batch(&client, &queue_url, batch).await;
    }
}

/// One `SendMessageBatch` of `batch` (entry ids are positions); each body is answered
/// with its own entry's result, or with the request's error.
async fn send_batch(client: &aws_sdk_sqs::Client, queue_url: &str, batch: Vec<Pending>) {
    let entries: Result<Vec<_>, StoreError> = batch
        .iter()
        .enumerate()
        .map(|(id, pending)| batch_entry(id, pending))
        .collect();
    let sent = match entries {
        Ok(entries) => client
            .send_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| DisplayErrorContext(e).to_string()),
        Err(e) => Err(e.to_string()),
    };
    let output = match sent {
        Ok(output) => output,
        Err(error) => {
            for pending in batch {
                pending.answer(Err(StoreError::Service {
                    operation: SEND_BATCH,
                    source: error.clone().into(),
                }));
            }
            return;
        }
    };
    let stored: HashSet<&str> = output.successful().iter().map(|s| s.id()).collect();
    for (id, pending) in batch.into_iter().enumerate() {
        let id = id.to_string();
        let refused = output.failed().iter().find(|f| f.id() == id);
        let result = match refused {
            None if stored.contains(id.as_str()) => Ok(()),
            None => Err("SQS answered nothing for the entry".to_string()),
            // SQS's code says why; its message is not needed and is left out of logs.
            Some(refused) => Err(format!("entry refused: {}", refused.code())),
        };
        pending.answer(result.map_err(|why| StoreError::Service {
            operation: SEND_BATCH,
            source: why.into(),
        }));
    }
}

/// The batch entry of one body.
fn batch_entry(id: usize, pending: &Pending) -> Result<SendMessageBatchRequestEntry, StoreError> {
    SendMessageBatchRequestEntry::builder()
        .id(id.to_string())
        .message_body(pending.body.clone())
        .set_message_attributes(Some(string_attributes(
            pending.attributes.iter().cloned(),
            SEND_BATCH,
        )?))
        .build()
        .map_err(service(SEND_BATCH))
}

/// The queue at `url`, or an error naming the unset `setting`.
fn configured<'a>(
    url: Option<&'a str>,
    setting: &str,
    operation: &'static str,
) -> Result<&'a str, StoreError> {
    url.ok_or_else(|| StoreError::Service {
        operation,
        source: format!("{setting} is not set").into(),
    })
}

/// Message attributes of type String, by name.
fn string_attributes(
    attributes: impl IntoIterator<Item = (String, String)>,
    operation: &'static str,
) -> Result<HashMap<String, MessageAttributeValue>, StoreError> {
    attributes
        .into_iter()
        .map(|(name, value)| {
            let value = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(service(operation))?;
            Ok((name, value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sqs::operation::send_message::SendMessageOutput;
    use aws_sdk_sqs::operation::send_message_batch::{
        SendMessageBatchError, SendMessageBatchOutput,
    };
    use aws_sdk_sqs::types::error::TooManyEntriesInBatchRequest;
    use aws_sdk_sqs::types::{BatchResultErrorEntry, SendMessageBatchResultEntry};
    use aws_smithy_mocks::{mock, mock_client, Rule};

    fn webhook(body: &str) -> StoredWebhook {
        StoredWebhook {
            body: body.as_bytes().to_vec(),
            received_at: "2026-12-03T08:00:00.000Z".into(),
        }
    }

    fn queue(rules: &[&Rule]) -> SqsWebhookQueue {
        SqsWebhookQueue::new(
            mock_client!(aws_sdk_sqs, rules),
            Some("https://sqs/q".into()),
            None,
        )
    }

    /// SQS's answer to a batch of `entries` entries: every id stored but `refused`.
    fn answer(entries: usize, refused: &[usize]) -> SendMessageBatchOutput {
        let mut output = SendMessageBatchOutput::builder()
            .set_successful(Some(Vec::new()))
            .set_failed(Some(Vec::new()));
        for id in 0..entries {
            output = if refused.contains(&id) {
                output.failed(
                    BatchResultErrorEntry::builder()
                        .id(id.to_string())
                        .code("InternalError")
                        .sender_fault(false)
                        .build()
                        .expect("entry"),
                )
            } else {
                output.successful(
                    SendMessageBatchResultEntry::builder()
                        .id(id.to_string())
                        .message_id(format!("m{id}"))
                        .md5_of_message_body("-")
                        .build()
                        .expect("entry"),
                )
            };
        }
        output.build().expect("output")
    }

    #[tokio::test]
    async fn a_webhook_is_sent_raw_with_its_time_and_verdict() {
        let rule = mock!(aws_sdk_sqs::Client::send_message_batch)
            .match_requests(|r| {
                let [entry] = r.entries() else { return false };
                let attributes = entry.message_attributes().expect("attributes");
                let value = |name: &str| attributes[name].string_value().map(str::to_string);
                r.queue_url() == Some("https://sqs/q")
                    && entry.message_body() == "{\"a\":1}"
                    && value(RECEIVED_AT).as_deref() == Some("2026-12-03T08:00:00.000Z")
                    && value(SIGNATURE).as_deref() == Some(VERIFIED)
                    && value(BODY_ENCODING).as_deref() == Some("utf-8")
            })
            .then_output(|| answer(1, &[]));
        let queue = queue(&[&rule]);
        let webhook = webhook("{\"a\":1}");
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
    async fn bodies_enqueued_at_once_share_one_request_and_each_gets_its_own_answer() {
        let rule = mock!(aws_sdk_sqs::Client::send_message_batch)
            .match_requests(|r| {
                let bodies: Vec<&str> = r.entries().iter().map(|e| e.message_body()).collect();
                bodies == ["a", "b", "c"]
            })
            .then_output(|| answer(3, &[1]));
        let queue = queue(&[&rule]);
        let (a, b, c) = (webhook("a"), webhook("b"), webhook("c"));
        let (a, b, c) = tokio::join!(queue.enqueue(&a), queue.enqueue(&b), queue.enqueue(&c));
        assert_eq!(rule.num_calls(), 1);
        assert!(a.is_ok() && c.is_ok(), "{a:?} {c:?}");
        // Only the refused entry fails, with SQS's code and no body.
        let b = b.expect_err("refused").to_string();
        assert!(
            b.contains("sqs:SendMessageBatch") && b.contains("InternalError"),
            "{b}"
        );
    }

    #[tokio::test]
    async fn a_failed_request_fails_every_body_in_it_and_the_next_one_is_sent_anew() {
        let refused = mock!(aws_sdk_sqs::Client::send_message_batch).then_error(|| {
            SendMessageBatchError::TooManyEntriesInBatchRequest(
                TooManyEntriesInBatchRequest::builder().build(),
            )
        });
        let stored = mock!(aws_sdk_sqs::Client::send_message_batch).then_output(|| answer(1, &[]));
        // (The first rule answers once: the second request gets the second rule.)
        let queue = SqsWebhookQueue::new(
            mock_client!(
                aws_sdk_sqs,
                aws_smithy_mocks::RuleMode::Sequential,
                [&refused, &stored]
            ),
            Some("https://sqs/q".into()),
            None,
        );
        let (a, b) = (webhook("a"), webhook("b"));
        let (a, b) = tokio::join!(queue.enqueue(&a), queue.enqueue(&b));
        assert!(a.is_err() && b.is_err(), "{a:?} {b:?}");
        queue.enqueue(&webhook("c")).await.expect("sent");
        assert_eq!((refused.num_calls(), stored.num_calls()), (1, 1));
    }

    #[tokio::test]
    async fn an_entry_sqs_answers_nothing_for_is_not_stored() {
        let rule = mock!(aws_sdk_sqs::Client::send_message_batch).then_output(|| answer(1, &[]));
        let queue = queue(&[&rule]);
        let (a, b) = (webhook("a"), webhook("b"));
        // SQS names entry 0 only: entry 1's POST must not hear "stored".
        let (a, b) = tokio::join!(queue.enqueue(&a), queue.enqueue(&b));
        assert!(a.is_ok(), "{a:?}");
        let b = b.expect_err("no answer for it").to_string();
        assert!(b.contains("answered nothing"), "{b}");
    }

    #[tokio::test]
    async fn a_body_whose_post_stopped_waiting_is_not_sent() {
        let rule = mock!(aws_sdk_sqs::Client::send_message_batch)
            .match_requests(|r| {
                let bodies: Vec<&str> = r.entries().iter().map(|e| e.message_body()).collect();
                bodies == ["kept"]
            })
            .then_output(|| answer(1, &[]));
        let (inbox, bodies) = mpsc::unbounded_channel();
        let pending = |body: &str| {
            let (answer, answered) = oneshot::channel();
            let pending = Pending {
                body: body.into(),
                attributes: Vec::new(),
                answer,
            };
            (pending, answered)
        };
        // Its POST passed its deadline (the receiver is gone): 500 already, so the body
        // is left for Meta's retry rather than stored behind the POST's back.
        let (gone, answered) = pending("gone");
        drop(answered);
        let (kept, answered) = pending("kept");
        inbox.send(gone).expect("queued");
        inbox.send(kept).expect("queued");
        drop(inbox);
        send_batches(
            mock_client!(aws_sdk_sqs, [&rule]),
            "https://sqs/q".into(),
            bodies,
        )
        .await;
        assert!(answered.await.expect("answered").is_ok());
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_batch_holds_at_most_ten_bodies_and_256_kib() {
        let rule = mock!(aws_sdk_sqs::Client::send_message_batch)
            .match_requests(|r| {
                let size: usize = r.entries().iter().map(|e| e.message_body().len()).sum();
                r.entries().len() <= MAX_BATCH_ENTRIES && size <= MAX_BATCH_BYTES
            })
            .sequence()
            .output(|| answer(MAX_BATCH_ENTRIES, &[]))
            .repeatedly()
            .build();
        let queue = queue(&[&rule]);
        let small: Vec<_> = (0..12).map(|k| webhook(&k.to_string())).collect();
        let large = webhook(&"x".repeat(200 * 1024));
        let sends = small
            .iter()
            .chain([&large, &large])
            .map(|w| queue.enqueue(w));
        let results = futures::future::join_all(sends).await;
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        // 12 small bodies then 2 large: 10 | 2 small + 1 large | 1 large.
        assert_eq!(rule.num_calls(), 3);
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
