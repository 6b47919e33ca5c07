//! `contact.erase` (DESIGN section 14): a person's right to erasure. The contact is
//! deleted and a tombstone keyed by the HMAC of the number takes its place, in one
//! transaction; imports and campaigns then reject the number (`suppressed`) until the
//! person writes to the account themselves.
//!
//! Processed-event items hold no personal data to erase: an inbound message's ledger
//! entry keeps only what the message did (`created_anonymous`, ...), and the contact's
//! key in a redelivery's answer is derived again from the redelivered event.

use super::answer::EraseAnswer;
use super::error::EventError;
use super::payload::{account_id, channel, ContactErase};
use super::EventService;
use crate::domain::text::mask_phone;
use crate::domain::upload::Channel;
use crate::ports::{ContactStore, EventLedger, ObjectStore, SettingsStore, Suppressions};

impl<O, C, S, L> EventService<'_, O, C, S, L>
where
    O: ObjectStore,
    C: ContactStore + Suppressions,
    S: SettingsStore,
    L: EventLedger,
{
    pub(super) async fn contact_erase(
        &self,
        event: ContactErase,
    ) -> Result<EraseAnswer, EventError> {
        let account_id = account_id(event.account_id)?;
        let channel = channel(event.channel)?;
        let raw_phone = event.phone.required("phone")?;
        let key = self
            .config
            .suppression
            .as_ref()
            .ok_or(EventError::NotConfigured {
                what: "contact.erase",
                variable: "SUPPRESSION_SECRET",
            })?;
        let phone = self
            .any_number(&raw_phone, "phone", event.default_country, &account_id)
            .await?;
        let erased = self
            .contacts
            .erase_contact(&account_id, channel, &phone, &key.digest(&phone))
            .await?;
        tracing::info!(account_id, channel = %channel, phone = %mask_phone(&phone), erased, "erasure");
        Ok(match erased {
            true => EraseAnswer::Erased { items: 1 },
            false => EraseAnswer::NotFound,
        })
    }

    /// Whether the number was erased from the account's `channel` (a tombstone is
    /// there); never, when the deployment has no suppression key.
    pub(super) async fn erased(
        &self,
        account_id: &str,
        channel: Channel,
        phone: &str,
    ) -> Result<bool, EventError> {
        let Some(key) = self.config.suppression.as_ref() else {
            return Ok(false);
        };
        let found = self
            .contacts
            .suppressed(account_id, channel, &[key.digest(phone)])
            .await?;
        Ok(found.first().copied().unwrap_or(false))
    }

    /// The person wrote to the account: an erasure no longer keeps them out.
    pub(super) async fn lift_erasure(
        &self,
        account_id: &str,
        channel: Channel,
        phone: &str,
    ) -> Result<(), EventError> {
        if let Some(key) = self.config.suppression.as_ref() {
            self.contacts
                .lift_suppression(account_id, channel, &key.digest(phone))
                .await?;
        }
        Ok(())
    }
}
