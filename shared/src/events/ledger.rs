//! Events that must happen once per event key (a campaign, a message): the
//! [`EventLedger`] remembers each key's answer.

use std::future::Future;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::EventError;
use super::now;
use crate::ports::EventLedger;

/// How long processed event keys are remembered.
const EVENT_TTL_SECONDS: i64 = 30 * 24 * 3600;
/// What the ledger holds for an event while it is being processed.
const PENDING: &str = "pending";

/// Runs `work` once per `event_key`: a redelivery answers what the first run answered.
/// A run that failed, or is still going, leaves no answer: the next delivery works.
pub(super) async fn once<L, A, F, Fut>(
    ledger: &L,
    account_id: &str,
    event_key: &str,
    work: F,
) -> Result<A, EventError>
where
    L: EventLedger,
    A: Serialize + DeserializeOwned,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<A, EventError>>,
{
    let expires = now().timestamp() + EVENT_TTL_SECONDS;
    let previous = ledger
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
    ledger
        .store_answer(account_id, event_key, &recorded, expires)
        .await?;
    Ok(answer)
}
