//! contact-events: campaign recipients, inbound messages and captured details keep the
//! contact book current (DESIGN section 10); account operations work on a whole
//! account (DESIGN section 14: `contacts.export`, `import.undo`).
//!
//! The way through, in the order an invocation takes it:
//! - [`envelope`]: the invocation payload (a bare event, an EventBridge envelope, an
//!   SQS batch or an HTTP request) becomes an [`Invocation`] of decoded events, and its
//!   answer a [`Reply`].
//! - [`http`]: an HTTP request (Meta calling through a Function URL): the subscription
//!   check, the webhook signature, then the body as an event; answered with a status.
//! - [`payload`]: each event's serde type; a field that does not decode is named by its
//!   path (`recipients[2].phone`).
//! - [`EventService`] (here): dispatches each event, and runs the ones that must happen
//!   once per event key (a campaign, a message) through the [`EventLedger`].
//! - `campaign`, `inbound`, `captured`, `erase`: one event each: its checks, then its writes
//!   through [`crate::book`], the write path imports use too.
//! - `export`: `contacts.export`'s filters checked, then [`crate::export`]; `undo`:
//!   `import.undo` checked, then [`crate::account::undo_import`] once per import.
//! - [`answer`]: what each event answers; [`error`]: why one was refused.

pub mod answer;
mod campaign;
mod captured;
pub mod envelope;
mod erase;
pub mod error;
mod export;
pub mod http;
mod inbound;
pub mod meta;
pub mod payload;
mod undo;
mod webhook;

use std::future::Future;

use aws_lambda_events::event::sqs::SqsBatchResponse;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::config::Config;
use crate::domain::contact::{Source, WriteStamp};
use crate::domain::phone::{self, PhoneContext, Region};
use crate::domain::upload::Channel;
use crate::ports::{
    AccountContacts, ContactRemoval, ContactStore, EventLedger, Identities, ObjectStore,
    SettingsStore, Suppressions,
};

pub use answer::{
    Answer, CampaignAnswer, CapturedAnswer, CapturedContact, EraseAnswer, ExportAnswer,
    InboundAnswer, InboundContact, RecipientsNotSaved, RecipientsSaved, UndoAnswer, WebhookAnswer,
};
pub use envelope::{Invocation, Record, Reply};
pub use error::{EventError, FileProblem, HeaderProblem};
pub use http::{HttpRequest, HttpResponse, RequestError};
pub use payload::{decode, Event, EventType};

use error::invalid;
use payload::Text;

/// How long processed event keys are remembered.
const EVENT_TTL_SECONDS: i64 = 30 * 24 * 3600;
/// What the ledger holds for an event while it is being processed.
const PENDING: &str = "pending";

/// The service: handles the events of one invocation. Production passes the same
/// DynamoDB table for `contacts`, `settings` and `ledger`.
pub struct EventService<'a, O, C, S, L> {
    /// Where recipients files live, and exports go.
    pub objects: &'a O,
    /// Contact items, also listed by account.
    pub contacts: &'a C,
    /// Account settings (the default country).
    pub settings: &'a S,
    /// Events already processed.
    pub ledger: &'a L,
    /// Configuration.
    pub config: &'a Config,
}

impl<O, C, S, L> EventService<'_, O, C, S, L>
where
    O: ObjectStore,
    C: ContactStore + AccountContacts + ContactRemoval + Suppressions + Identities,
    S: SettingsStore,
    L: EventLedger,
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

    /// Handles an SQS batch record by record: `batchItemFailures` lists exactly the
    /// records that failed (malformed, or a store error), so SQS redelivers only them.
    pub async fn handle_batch(&self, records: Vec<Record>) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        for record in records {
            let result = match record.event {
                Ok(event) => self.handle(event).await.map(drop),
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                tracing::warn!(message_id = %record.message_id, error = %e, "event in batch failed");
                response.add_failure(record.message_id);
            }
        }
        response
    }

    /// Handles one event and returns its answer.
    pub async fn handle(&self, event: Event) -> Result<Answer, EventError> {
        // Each event's future is boxed: nested whole (ledger, book, the SDK's own
        // futures) inside the runtime's, it is deeper than the compiler lays out.
        match event {
            Event::CampaignCompleted(e) => Box::pin(self.campaign_completed(e))
                .await
                .map(Answer::Campaign),
            Event::MessageInbound(e) => {
                Box::pin(self.message_inbound(e)).await.map(Answer::Inbound)
            }
            Event::ContactCaptured(e) => Box::pin(self.contact_captured(e))
                .await
                .map(Answer::Captured),
            Event::ContactsExport(e) => Box::pin(self.contacts_export(e)).await.map(Answer::Export),
            Event::ImportUndo(e) => Box::pin(self.import_undo(e)).await.map(Answer::Undo),
            Event::ContactErase(e) => Box::pin(self.contact_erase(e)).await.map(Answer::Erase),
            Event::Webhook(e) => Box::pin(self.webhook(*e)).await.map(Answer::Webhook),
        }
    }
}

impl<O, C, S, L> EventService<'_, O, C, S, L>
where
    O: ObjectStore,
    C: ContactStore,
    S: SettingsStore,
    L: EventLedger,
{
    /// The region national numbers are read in: the event's `default_country`, else
    /// the account's setting, else the function's.
    async fn region_for(
        &self,
        default_country: Text<8>,
        account_id: &str,
    ) -> Result<Option<Region>, EventError> {
        if let Some(code) = default_country.into_option() {
            return Region::parse(&code).map(Some).ok_or_else(|| {
                invalid(
                    "default_country",
                    format!("{code:?} is not an ISO 3166-1 alpha-2 country code"),
                )
            });
        }
        let setting = self.settings.default_country(account_id).await?;
        Ok(setting
            .and_then(|c| Region::parse(&c))
            .or(self.config.default_country))
    }

    /// A number as contacts are stored (E.164), read in [`Self::region_for`]'s region:
    /// any valid number, whatever the channel (an inbound sender, an erasure request).
    /// A number that does not read is an invalid `field`.
    async fn any_number(
        &self,
        raw: &str,
        field: &str,
        default_country: Text<8>,
        account_id: &str,
    ) -> Result<String, EventError> {
        let context = PhoneContext {
            default_region: self.region_for(default_country, account_id).await?,
            channel: Channel::Voice,
        };
        phone::normalize(raw, None, context)
            .map_err(|e| invalid(field, format!("{e} ({})", e.code())))
    }

    /// Runs `work` once per `event_key`: a redelivery answers what the first run answered.
    /// A run that failed, or is still going, leaves no answer: the next delivery works.
    async fn once<A, F, Fut>(
        &self,
        account_id: &str,
        event_key: &str,
        work: F,
    ) -> Result<A, EventError>
    where
        A: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<A, EventError>>,
    {
        let expires = now().timestamp() + EVENT_TTL_SECONDS;
        let previous = self
            .ledger
            .record_event(account_id, event_key, PENDING, expires)
            .await?;
        let answered = previous.as_deref().filter(|p| *p != PENDING);
        if let Some(answer) = answered.and_then(|p| serde_json::from_str::<A>(p).ok()) {
            tracing::info!(event_key, "event already processed; answering as before");
            return Ok(answer);
        }
        let answer = work().await?;
        // Cannot fail: answers are plain structs and enums whose map keys are strings.
        // Were it to, an empty record only makes a redelivery redo idempotent work.
        let recorded = serde_json::to_string(&answer).unwrap_or_default();
        self.ledger
            .store_answer(account_id, event_key, &recorded, expires)
            .await?;
        Ok(answer)
    }
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
