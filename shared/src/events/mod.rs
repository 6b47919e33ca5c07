//! contact-events: campaign recipients, inbound messages, captured details and Meta's
//! WhatsApp webhooks keep the contact book current (DESIGN sections 10 and 13); account
//! operations work on a whole account (DESIGN section 14: `contacts.export`,
//! `import.undo`, `contact.erase`; section 15: `imports.list`).
//!
//! The way through, in the order an invocation takes it:
//! - [`envelope`]: the invocation payload (a bare event, an EventBridge envelope, an
//!   SQS batch or an HTTP request) becomes an [`Invocation`] of decoded events, and its
//!   answer a [`Reply`].
//! - [`http`]: an HTTP request (Meta calling through a Function URL): the subscription
//!   check, the webhook signature, then the body as an event; answered with a status.
//! - [`payload`]: each event's serde type; a field that does not decode is named by its
//!   path (`recipients[2].phone`); [`meta`]: Meta's webhook body.
//! - [`EventService`] (here): the front door, which hands each event to its handler.
//! - One handler per event type, named after it: `campaign_completed`,
//!   `message_inbound`, `contact_captured`, `contacts_export`, `import_undo`,
//!   `contact_erase`, `imports_list`, `whatsapp_webhook`. Each checks its fields and
//!   calls the book ([`crate::book`]), the one write path imports use too (or, to read
//!   an account's imports, [`ImportHistory`]), taking only the ports it needs; no
//!   handler calls another. `ledger` runs what must happen once per event
//!   key; `numbers` reads the numbers events give.
//! - [`answer`]: what each event answers; [`error`]: why one was refused.

pub mod answer;
mod campaign_completed;
mod contact_captured;
mod contact_erase;
mod contacts_export;
pub mod envelope;
pub mod error;
pub mod http;
mod import_undo;
mod imports_list;
mod ledger;
mod message_inbound;
pub mod meta;
mod numbers;
pub mod payload;
mod whatsapp_webhook;

use std::collections::{BTreeMap, HashMap};

use aws_lambda_events::event::sqs::SqsBatchResponse;

use crate::book::Deferred;
use crate::config::Config;
use crate::domain::channel::Channel;
use crate::domain::contact::{Source, WriteStamp};
use crate::ports::{
    AccountContacts, CapacityMeter, ContactRemoval, ContactStore, DeadLetter, EventLedger,
    Identities, ImportHistory, ObjectStore, SettingsStore, Suppressions, WebhookQueue,
};

pub use answer::{
    Answer, CampaignAnswer, CapturedAnswer, CapturedContact, EraseAnswer, ExportAnswer,
    ImportEntry, ImportsAnswer, InboundAnswer, InboundContact, RecipientsNotSaved, RecipientsSaved,
    UndoAnswer, WebhookAnswer,
};
pub use envelope::{Invocation, QueuedWebhook, Record, Reply};
pub use error::{EventError, FileProblem, HeaderProblem};
pub use http::{HttpRequest, HttpResponse, RequestError};
pub use payload::{decode, Event, EventType};

/// The front door: hands each event of an invocation to its handler, with the ports
/// that handler needs. Production passes the same DynamoDB table for `contacts`,
/// `settings`, `ledger` and `imports`.
pub struct EventService<'a, O, C, S, L, W, H> {
    /// Where recipients files live, and exports go.
    pub objects: &'a O,
    /// Contact items, also listed by account.
    pub contacts: &'a C,
    /// Account settings (the default country).
    pub settings: &'a S,
    /// Events already processed.
    pub ledger: &'a L,
    /// Signed webhooks waiting to be applied, and those given up.
    pub webhooks: &'a W,
    /// The accounts' histories of imports (`imports.list`).
    pub imports: &'a H,
    /// Configuration.
    pub config: &'a Config,
}

impl<O, C, S, L, W, H> EventService<'_, O, C, S, L, W, H>
where
    O: ObjectStore,
    C: ContactStore + AccountContacts + ContactRemoval + Suppressions + Identities + CapacityMeter,
    S: SettingsStore,
    L: EventLedger,
    W: WebhookQueue,
    H: ImportHistory,
{
    /// Handles one invocation. A single event answers or fails on its own; a batch
    /// always answers, naming the records that failed; an HTTP request always answers,
    /// with a status.
    pub async fn handle_invocation(&self, invocation: Invocation) -> Result<Reply, EventError> {
        match invocation {
            Invocation::Single(event) => Ok(Reply::Event(self.handle(event?).await?)),
            Invocation::Batch(records) => Ok(Reply::Batch(self.handle_batch(records).await)),
            Invocation::Http(request) => Ok(Reply::Http(Box::pin(self.handle_http(request)).await)),
        }
    }

    /// Answers one HTTP request (Meta's subscription check or a signed webhook, which
    /// is stored on the webhook queue): never an error, always a status.
    pub async fn handle_http(&self, request: Result<HttpRequest, RequestError>) -> HttpResponse {
        let store = |webhook| async move { self.webhooks.enqueue(&webhook).await };
        http::answer(self.config, request, store).await
    }

    /// Handles an SQS batch record by record: `batchItemFailures` lists exactly the
    /// records that failed (malformed, or a store error), so SQS redelivers only them.
    /// A webhook body this function stored is never left to fail forever: when it
    /// cannot succeed (it is not a webhook) or fails on its last receive, it goes to
    /// the dead-letter queue with its reason ([`give_up`]) and counts as done.
    ///
    /// The batch's webhook bodies share their requests ([`Deferred`]): the people they
    /// name are read at once, and their items' single-contact writes and ledger
    /// answers are sent together at the end. A body one of whose writes was refused
    /// there (someone else wrote first) is applied again on its own.
    pub async fn handle_batch(&self, records: Vec<Record>) -> SqsBatchResponse {
        let bodies: Vec<Option<whatsapp_webhook::Body>> = records
            .iter()
            .map(|record| match &record.event {
                Ok(Event::Webhook(webhook)) => Some(whatsapp_webhook::read(webhook)),
                _ => None,
            })
            .collect();
        let batch = Deferred::new(self.contacts, self.ledger);
        if bodies.iter().any(Option::is_some) {
            metered(
                self.contacts,
                BATCH_EVENT_TYPE,
                self.prefetch(&batch, &bodies),
            )
            .await;
        }
        let mut spent = whatsapp_webhook::Spent::default();
        let mut results = Vec::with_capacity(records.len());
        let mut answers = Vec::with_capacity(records.len());
        for (unit, (record, body)) in records.iter().zip(bodies).enumerate() {
            batch.begin(unit);
            let result = match (body, &record.event) {
                (Some(body), _) => {
                    let applied =
                        whatsapp_webhook::apply(&batch, &batch, self.config, body, &mut spent);
                    Box::pin(applied).await.map(Some)
                }
                (None, Ok(event)) => {
                    // Not a webhook: on its own, after what the batch holds.
                    batch.flush().await;
                    let handled = self.handle(event.clone()).await.map(|_| None);
                    batch.forget_all();
                    handled
                }
                // Its own decoding error, settled below.
                (None, Err(_)) => {
                    results.push(None);
                    continue;
                }
            };
            results.push(Some(result.map(|answer| answers.push((unit, answer)))));
        }
        let again = metered(self.contacts, BATCH_EVENT_TYPE, batch.finish()).await;
        spent.emit();
        // The bodies applied again below are counted when they are.
        let applied = answers
            .iter()
            .filter(|(unit, _)| !again.contains(unit))
            .filter_map(|(_, answer)| answer.as_ref());
        whatsapp_webhook::emit_body_metrics(applied);
        let mut response = SqsBatchResponse::default();
        let mut delays = Vec::new();
        for (unit, (record, result)) in records.into_iter().zip(results).enumerate() {
            let Record {
                message_id,
                event,
                stored_webhook,
            } = record;
            let result = match (result, event) {
                (Some(Ok(())), Ok(event)) if again.contains(&unit) => {
                    self.handle(event).await.map(drop)
                }
                (Some(result), _) => result,
                (None, event) => event.map(drop),
            };
            if let (Ok(()), Some(stored)) = (&result, &stored_webhook) {
                delays.extend(webhook_delay(stored));
            }
            self.settle(message_id, stored_webhook, result, &mut response)
                .await;
        }
        emit_webhook_delays(&delays);
        response
    }

    /// Reads at once every person the batch's webhook bodies name by number (with
    /// WhatsApp's variants), per account, and records their messages' events. A
    /// failure here costs only speed: each item reads and records what it needs itself.
    async fn prefetch(
        &self,
        batch: &Deferred<'_, C, L>,
        bodies: &[Option<whatsapp_webhook::Body>],
    ) {
        let named: Vec<(&str, &str)> = bodies
            .iter()
            .flatten()
            .flat_map(whatsapp_webhook::numbers_named)
            .collect();
        let messages: Vec<(&str, String)> = bodies
            .iter()
            .flatten()
            .flat_map(whatsapp_webhook::message_events)
            .collect();
        // Each business number's account, looked up once for the whole batch.
        let mut accounts: HashMap<&str, Option<String>> = HashMap::new();
        for &phone_number_id in named
            .iter()
            .map(|(p, _)| p)
            .chain(messages.iter().map(|(p, _)| p))
        {
            if !accounts.contains_key(phone_number_id) {
                let account = self.account_ahead(phone_number_id).await;
                accounts.insert(phone_number_id, account);
            }
        }
        let mut keys: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (phone_number_id, wa_id) in named {
            if let Some(Some(account)) = accounts.get(phone_number_id) {
                let digits = wa_id.trim_start_matches('+');
                keys.entry(account)
                    .or_default()
                    .extend(crate::domain::whatsapp::wa_id_candidates(digits));
            }
        }
        let once = ledger::Once::new(self.ledger, self.config);
        let events = messages
            .iter()
            .filter_map(
                |(phone_number_id, key)| match accounts.get(phone_number_id) {
                    Some(Some(account)) => Some(once.pending(account, key)),
                    _ => None,
                },
            )
            .collect();
        batch.record_ahead(events).await;
        for (account_id, keys) in keys {
            if let Err(e) = batch.prefetch(account_id, Channel::Whatsapp, &keys).await {
                tracing::warn!(error = %e, "reading a batch's people ahead failed; each item reads its own");
            }
        }
    }

    /// The account of business number `phone_number_id`, for reading ahead: `None`
    /// when it has none or the look-up failed (the items will say which).
    async fn account_ahead(&self, phone_number_id: &str) -> Option<String> {
        match self.contacts.account_of_number(phone_number_id).await {
            Ok(account) => account,
            Err(e) => {
                tracing::warn!(error = %e, "business number look-up failed while reading a batch ahead");
                None
            }
        }
    }

    /// What becomes of one record once handled: done, given up (dead-lettered), or
    /// named in `batchItemFailures` to be delivered again.
    async fn settle(
        &self,
        message_id: String,
        stored_webhook: Option<QueuedWebhook>,
        result: Result<(), EventError>,
        response: &mut SqsBatchResponse,
    ) {
        let Err(e) = result else { return };
        let max = self.config.webhook_max_receive_count;
        if let Some(letter) = stored_webhook.and_then(|stored| give_up(stored, &e, max)) {
            match self.webhooks.dead_letter(&letter).await {
                Ok(()) => {
                    tracing::error!(%message_id, reason = letter.reason, receive_count = letter.receive_count, "webhook given up: sent to the dead-letter queue");
                    return;
                }
                Err(dead) => {
                    tracing::error!(%message_id, error = %dead, "webhook could not be dead-lettered; left to the queue's redrive");
                }
            }
        }
        tracing::warn!(%message_id, reason = e.reason(), "event in batch failed");
        response.add_failure(message_id);
    }

    /// Handles one event and returns its answer; the capacity it consumed goes out as
    /// a metric of its type (a webhook's, per item: [`whatsapp_webhook`]).
    pub async fn handle(&self, event: Event) -> Result<Answer, EventError> {
        match event.event_type() {
            Some(kind) => metered(self.contacts, kind.as_str(), self.handle_unmetered(event)).await,
            None => self.handle_unmetered(event).await,
        }
    }

    async fn handle_unmetered(&self, event: Event) -> Result<Answer, EventError> {
        let (objects, contacts, settings, ledger, config) = (
            self.objects,
            self.contacts,
            self.settings,
            self.ledger,
            self.config,
        );
        // Each event's future is boxed: nested whole (ledger, book, the SDK's own
        // futures) inside the runtime's, it is deeper than the compiler lays out.
        match event {
            Event::CampaignCompleted(e) => Box::pin(campaign_completed::handle(
                objects, contacts, settings, ledger, config, e,
            ))
            .await
            .map(Answer::Campaign),
            Event::MessageInbound(e) => Box::pin(message_inbound::handle(
                contacts, settings, ledger, config, e,
            ))
            .await
            .map(Answer::Inbound),
            Event::ContactCaptured(e) => {
                Box::pin(contact_captured::handle(contacts, settings, config, e))
                    .await
                    .map(Answer::Captured)
            }
            Event::ContactsExport(e) => Box::pin(contacts_export::handle(
                objects,
                contacts,
                &config.bucket,
                e,
            ))
            .await
            .map(Answer::Export),
            Event::ImportUndo(e) => Box::pin(import_undo::handle(contacts, e))
                .await
                .map(Answer::Undo),
            Event::ContactErase(e) => {
                Box::pin(contact_erase::handle(contacts, settings, config, e))
                    .await
                    .map(Answer::Erase)
            }
            Event::ImportsList(e) => Box::pin(imports_list::handle(self.imports, e))
                .await
                .map(Answer::Imports),
            Event::Webhook(e) => Box::pin(whatsapp_webhook::handle(contacts, ledger, config, *e))
                .await
                .map(Answer::Webhook),
        }
    }
}

/// The `EventType` of the capacity a queue batch's webhook bodies share: reading their
/// people ahead, and the writes and ledger answers sent together at the end (each
/// item's own requests are its type's: `whatsapp.status`, ...).
const BATCH_EVENT_TYPE: &str = "whatsapp.batch";

/// Runs `work`, then emits what it consumed (DynamoDB capacity, from `meter`'s
/// readings before and after) as an EMF line of `event_type`. Events of one invocation
/// are handled one after another, so the readings hold only this one's requests.
async fn metered<M: CapacityMeter, T>(
    meter: &M,
    event_type: &str,
    work: impl std::future::Future<Output = T>,
) -> T {
    let before = meter.consumed();
    let result = work.await;
    let spent = meter.consumed().since(&before).rounded();
    crate::metrics::emit(&crate::metrics::emf_line(
        &[("Function", "contact-events"), ("EventType", event_type)],
        &[
            ("EventWriteUnits", spent.write_units, "Count"),
            ("EventReadUnits", spent.read_units, "Count"),
            ("EventRequests", spent.requests as f64, "Count"),
        ],
        &[],
        crate::metrics::now_ms(),
    ));
    result
}

/// How long a stored webhook took from its POST to its items applied: the delay a
/// person's message waits before the book shows it (EMF `WebhookDelayMs`).
fn webhook_delay(stored: &QueuedWebhook) -> Option<f64> {
    let received = stored
        .attributes
        .get(crate::domain::stored_webhook::RECEIVED_AT)
        .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())?;
    let delay = (now() - received.with_timezone(&chrono::Utc)).num_milliseconds();
    Some(delay.max(0) as f64)
}

/// The batch's delays, one EMF line per [`crate::metrics::MAX_VALUES`] of them (a line
/// per body was a log line per body at Meta's rate).
fn emit_webhook_delays(delays: &[f64]) {
    for chunk in delays.chunks(crate::metrics::MAX_VALUES) {
        crate::metrics::emit(&crate::metrics::emf_values_line(
            &[
                ("Function", "contact-events"),
                ("EventType", "whatsapp.webhook"),
            ],
            ("WebhookDelayMs", chunk, "Milliseconds"),
            crate::metrics::now_ms(),
        ));
    }
}

/// The dead letter of a stored webhook that failed with `error`, when it is time to give
/// it up: the error is the body's own (it would fail again), or this was its last
/// receive before the queue's redrive would move it without a reason.
fn give_up(
    stored: QueuedWebhook,
    error: &EventError,
    max_receive_count: u64,
) -> Option<DeadLetter> {
    let last_try = stored.receive_count >= max_receive_count;
    if error.is_retryable() && !last_try {
        return None;
    }
    Some(DeadLetter {
        reason: error.reason(),
        body: stored.body,
        attributes: stored.attributes,
        receive_count: stored.receive_count,
    })
}

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The stamp of a write made now by `source`.
fn stamp(source: Source, campaign_id: Option<&str>) -> WriteStamp {
    WriteStamp {
        now: rfc3339(now()),
        source,
        import_id: None,
        campaign_id: campaign_id.map(str::to_string),
    }
}

#[cfg(test)]
mod tests;
