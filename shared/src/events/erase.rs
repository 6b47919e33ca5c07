//! `contact.erase` (DESIGN section 14): a person's right to erasure. The contact and
//! the aliases of its WhatsApp user ids (BSUIDs) are deleted and a tombstone keyed by
//! the HMAC of the number takes their place, in one transaction; imports and campaigns
//! then reject the number (`suppressed`) until the person writes to the account
//! themselves.
//!
//! Aliases are keyed by BSUID and no index lists them by contact: the ones found are
//! those of the BSUIDs the contact stores (`user_id`, and `user_ids`: one per business
//! portfolio), each when it still names the contact.
//!
//! Processed-event items hold no personal data to erase: an inbound message's ledger
//! entry keeps only what the message did (`created_anonymous`, ...), and the contact's
//! key in a redelivery's answer is derived again from the redelivered event.

use std::collections::BTreeSet;

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

    /// The aliases naming `contact` (what an erasure deletes and a number change moves
    /// with it): those of the BSUIDs it stores that still name it.
    pub(super) async fn aliases_of(&self, contact: &Contact) -> Result<Vec<Alias>, EventError> {
        if contact.channel != Channel::Whatsapp {
            return Ok(Vec::new());
        }
        let stored: BTreeSet<&String> = contact
            .text
            .get("user_id")
            .into_iter()
            .chain(&contact.user_ids)
            .filter(|id| is_bsuid(id))
            .collect();
        let mut aliases = Vec::new();
        for user_id in stored {
            if let Some(alias) = self.contacts.alias(&contact.account_id, user_id).await? {
                if alias.contact_key == contact.phone {
                    aliases.push(alias);
                }
            }
        }
        Ok(aliases)
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
