//! `contact.erase` (DESIGN section 14): a person's right to erasure. The contact and
//! the alias of its WhatsApp user id (BSUID) are deleted and a tombstone keyed by the
//! HMAC of the number takes their place, in one transaction; imports and campaigns then
//! reject the number (`suppressed`) until the person writes to the account themselves.
//!
//! The alias found is the one of the BSUID the contact stores (`user_id`): aliases are
//! keyed by BSUID, and no index lists them by contact. An alias of another BSUID that
//! names the contact (one business portfolio's, when the contact stores another's) is
//! not found here.
//!
//! Processed-event items hold no personal data to erase: an inbound message's ledger
//! entry keeps only what the message did (`created_anonymous`, ...), and the contact's
//! key in a redelivery's answer is derived again from the redelivered event.

use super::answer::EraseAnswer;
use super::error::EventError;
use super::payload::{account_id, channel, ContactErase};
use super::EventService;
use crate::book::SaveError;
use crate::domain::contact::Contact;
use crate::domain::text::mask_phone;
use crate::domain::upload::Channel;
use crate::domain::whatsapp::is_bsuid;
use crate::ports::{
    Alias, ContactStore, EventLedger, Identities, ObjectStore, SettingsStore, Suppressions,
};

/// How many times an erasure reads again after the contact or its alias changed under it.
const MAX_ATTEMPTS: usize = 8;

impl<O, C, S, L> EventService<'_, O, C, S, L>
where
    O: ObjectStore,
    C: ContactStore + Suppressions + Identities,
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
        let digest = key.digest(&phone);
        for _ in 0..MAX_ATTEMPTS {
            let Some(contact) = self
                .contacts
                .get_contact(&account_id, channel, &phone)
                .await?
            else {
                tracing::info!(account_id, channel = %channel, phone = %mask_phone(&phone), "erasure of an unknown contact");
                return Ok(EraseAnswer::NotFound);
            };
            let aliases = self.aliases_of(&contact).await?;
            if self
                .contacts
                .erase_contact(&contact, &aliases, &digest)
                .await?
            {
                let items = 1 + aliases.len() as u64;
                tracing::info!(account_id, channel = %channel, phone = %mask_phone(&phone), items, "erasure");
                return Ok(EraseAnswer::Erased { items });
            }
        }
        Err(SaveError::Contention(mask_phone(&phone)).into())
    }

    /// The aliases naming `contact` that an erasure deletes with it: its stored BSUID's,
    /// when that alias still names it.
    async fn aliases_of(&self, contact: &Contact) -> Result<Vec<Alias>, EventError> {
        let user_id = contact.text.get("user_id").filter(|id| is_bsuid(id));
        let Some(user_id) = user_id.filter(|_| contact.channel == Channel::Whatsapp) else {
            return Ok(Vec::new());
        };
        let alias = self.contacts.alias(&contact.account_id, user_id).await?;
        Ok(alias
            .filter(|a| a.contact_key == contact.phone)
            .into_iter()
            .collect())
    }
}

impl<O, C, S, L> EventService<'_, O, C, S, L>
where
    O: ObjectStore,
    C: ContactStore + Suppressions,
    S: SettingsStore,
    L: EventLedger,
{
    /// Whether the number was erased from the account's `channel` (a tombstone is
    /// there); never, when the deployment has no suppression key.
    pub(super) async fn erased(
        &self,
        account_id: &str,
        channel: Channel,
        phone: &str,
    ) -> Result<bool, EventError> {
        self.any_erased(account_id, channel, &[phone.to_string()])
            .await
    }

    /// Whether any of `phones` (forms of one person's number) was erased from the
    /// account's `channel`; never, when the deployment has no suppression key.
    pub(super) async fn any_erased(
        &self,
        account_id: &str,
        channel: Channel,
        phones: &[String],
    ) -> Result<bool, EventError> {
        let Some(key) = self.config.suppression.as_ref() else {
            return Ok(false);
        };
        if phones.is_empty() {
            return Ok(false);
        }
        let digests: Vec<_> = phones.iter().map(|phone| key.digest(phone)).collect();
        let found = self
            .contacts
            .suppressed(account_id, channel, &digests)
            .await?;
        Ok(found.contains(&true))
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
