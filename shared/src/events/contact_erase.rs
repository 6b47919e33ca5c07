//! `contact.erase` (DESIGN section 14): a person's right to erasure. The event checked,
//! then the book's [`erase`] of the contact its number (or, for a contact known only by
//! it, its WhatsApp user id) names: the contact and its aliases deleted, a tombstone in their
//! place; imports and campaigns then reject the number (`suppressed`) until the person
//! writes to the account themselves.

use super::answer::EraseAnswer;
use super::error::{invalid, EventError};
use super::numbers::any_number;
use super::payload::{account_id, channel, ContactErase};
use crate::book::erasure::key_of_user;
use crate::book::{erase, Erased};
use crate::config::Config;
use crate::domain::channel::Channel;
use crate::domain::whatsapp::is_bsuid;
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
    let key = config
        .suppression
        .as_ref()
        .ok_or(EventError::NotConfigured {
            what: "contact.erase",
            variable: "SUPPRESSION_SECRET",
        })?;
    let contact_key = match (event.phone.into_option(), event.user_id.into_option()) {
        (Some(raw_phone), _) => {
            let field = "phone";
            let (country, account) = (event.default_country, &account_id);
            any_number(settings, config, &raw_phone, field, country, account).await?
        }
        (None, Some(user_id)) => {
            if !is_bsuid(&user_id) {
                return Err(invalid("user_id", "is not a WhatsApp user id (CC.digits)"));
            }
            if channel != Channel::Whatsapp {
                return Err(invalid("user_id", "names a contact on whatsapp only"));
            }
            key_of_user(contacts, &account_id, &user_id).await?
        }
        (None, None) => return Err(invalid("phone", "is required (or user_id)")),
    };
    Ok(
        match erase(contacts, key, &account_id, channel, &contact_key).await? {
            Erased::NotFound => EraseAnswer::NotFound,
            Erased::Erased { items } => EraseAnswer::Erased { items },
        },
    )
}
