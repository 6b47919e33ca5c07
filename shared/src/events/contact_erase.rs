//! `contact.erase` (DESIGN section 14): a person's right to erasure. The event checked,
//! then the book's [`erase`]: the contact and its aliases deleted, a tombstone in their
//! place; imports and campaigns then reject the number (`suppressed`) until the person
//! writes to the account themselves.

use super::answer::EraseAnswer;
use super::error::EventError;
use super::numbers::any_number;
use super::payload::{account_id, channel, ContactErase};
use crate::book::{erase, Erased};
use crate::config::Config;
use crate::ports::{ContactStore, Identities, SettingsStore, Suppressions};

/// Erases the number the event names from the account's channel.
pub(super) async fn handle<C, S>(
    contacts: &C,
    settings: &S,
    config: &Config,
    event: ContactErase,
) -> Result<EraseAnswer, EventError>
where
    C: ContactStore + Suppressions + Identities,
    S: SettingsStore,
{
    let account_id = account_id(event.account_id)?;
    let channel = channel(event.channel)?;
    let raw_phone = event.phone.required("phone")?;
    let key = config
        .suppression
        .as_ref()
        .ok_or(EventError::NotConfigured {
            what: "contact.erase",
            variable: "SUPPRESSION_SECRET",
        })?;
    let phone = any_number(
        settings,
        config,
        &raw_phone,
        "phone",
        event.default_country,
        &account_id,
    )
    .await?;
    Ok(
        match erase(contacts, key, &account_id, channel, &phone).await? {
            Erased::NotFound => EraseAnswer::NotFound,
            Erased::Erased { items } => EraseAnswer::Erased { items },
        },
    )
}
