//! Events that must happen once per event key (a campaign, a message): the
//! [`EventLedger`] remembers each key's answer, under the key's kind and an HMAC of its
//! id (DESIGN 12: a `wamid` is base64 that holds the counterpart's number, so no event
//! id is stored or logged as given).

use std::future::Future;

use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::error::EventError;
use super::now;
use crate::config::Config;
use crate::domain::suppression::SuppressionKey;
use crate::ports::{EventLedger, LedgerEntry};

/// How long processed event keys are remembered.
const EVENT_TTL_SECONDS: i64 = 30 * 24 * 3600;
/// What the ledger holds for an event while it is being processed.
const PENDING: &str = "pending";

/// The ledger of one deployment: event keys are stored as [`Once::stored_key`] makes them.
pub(super) struct Once<'a, L> {
    ledger: &'a L,
    secret: Option<&'a SuppressionKey>,
}

impl<'a, L: EventLedger> Once<'a, L> {
    /// The ledger, keyed with the deployment's secret (the suppression key) when it has
    /// one.
    pub(super) fn new(ledger: &'a L, config: &'a Config) -> Self {
        Once {
            ledger,
            secret: config.suppression.as_ref(),
        }
    }

    /// Runs `work` once per `event_key`: a redelivery answers what the first run
    /// answered. A run that failed, or is still going, leaves no answer: the next
    /// delivery works.
    pub(super) async fn run<A, F, Fut>(
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
        let LedgerEntry {
            event_key,
            expires_at: expires,
            ..
        } = self.pending(account_id, event_key);
        let event_key = event_key.as_str();
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

    /// `event_key` of `account_id` as [`Once::run`] records it before the work: stored
    /// key, pending, and when it is forgotten.
    pub(super) fn pending(&self, account_id: &str, event_key: &str) -> LedgerEntry {
        LedgerEntry {
            account_id: account_id.to_string(),
            event_key: self.stored_key(event_key),
            answer: PENDING.to_string(),
            expires_at: now().timestamp() + EVENT_TTL_SECONDS,
        }
    }

    /// `kind:id` as stored: the kind, then the id's HMAC under the deployment's secret
    /// (its SHA-256 where none is set, as locally).
    fn stored_key(&self, event_key: &str) -> String {
        let (kind, id) = event_key.split_once(':').unwrap_or(("event", event_key));
        let digest = match self.secret {
            Some(secret) => secret.digest(&format!("event:{id}")),
            None => hex::encode(Sha256::digest(id.as_bytes())),
        };
        format!("{kind}:{digest}")
    }
}
