//! Erasure (DESIGN section 14): a person's right to be forgotten, and the tombstone
//! that keeps them out afterwards.
//!
//! [`erase`] deletes the contact and the aliases of its WhatsApp user ids (BSUIDs), and
//! puts a tombstone keyed by the HMAC of the number in their place, in one transaction.
//! [`Tombstones`] is the one place the tombstones are read and lifted: imports and
//! campaigns reject an erased number (`suppressed`), no webhook item but the person's
//! own message writes a contact under it, and only that message lifts it.
//!
//! Aliases are keyed by BSUID and no index lists them by contact: the ones found are
//! those of the BSUIDs the contact stores (`user_id`, and `user_ids`: one per business
//! portfolio), each when it still names the contact.
//!
//! Processed-event items hold no personal data to erase: an inbound message's ledger
//! entry keeps only what the message did (`created_anonymous`, ...), and the contact's
//! key in a redelivery's answer is derived again from the redelivered event.

use std::collections::BTreeSet;

use super::aliases::{aliases_of, bsuids_of};
use super::{SaveError, MAX_ATTEMPTS};
use crate::domain::channel::Channel;
use crate::domain::cleaning::mask_phone;
use crate::domain::suppression::SuppressionKey;
use crate::domain::whatsapp::bsuid_key;
use crate::ports::{ContactStore, Identities, StoreError, Suppressions};

/// What an erasure did.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Erased {
    /// No contact has the number on the channel.
    NotFound,
    /// The contact and its aliases were deleted, and a tombstone written: `items`
    /// deleted.
    Erased {
        /// The contact and its aliases.
        items: u64,
    },
}

/// Erases the contact keyed `phone` (E.164, or `bsuid:{user_id}` for a contact known
/// only by its BSUID) from the account's `channel`: the contact, its aliases, and a
/// tombstone in their place, decided again from fresh reads when someone else wrote
/// first.
pub async fn erase<S>(
    store: &S,
    key: &SuppressionKey,
    account_id: &str,
    channel: Channel,
    phone: &str,
) -> Result<Erased, SaveError>
where
    S: ContactStore + Suppressions + Identities,
{
    for _ in 0..MAX_ATTEMPTS {
        let Some(contact) = store.get_contact(account_id, channel, phone).await? else {
            tracing::info!(account_id, channel = %channel, phone = %mask_phone(phone), "erasure of an unknown contact");
            return Ok(Erased::NotFound);
        };
        let aliases = aliases_of(store, &contact).await?;
        // The number's tombstone, and one under each BSUID's own key: an item naming
        // the person by a BSUID alone finds them erased too.
        let mut keys = BTreeSet::from([phone.to_string()]);
        keys.extend(bsuids_of(&contact).iter().map(|id| bsuid_key(id)));
        let digests: Vec<String> = keys.iter().map(|k| key.digest(k)).collect();
        if store.erase_contact(&contact, &aliases, &digests).await? {
            let items = 1 + aliases.len() as u64;
            tracing::info!(account_id, channel = %channel, phone = %mask_phone(phone), items, "erasure");
            return Ok(Erased::Erased { items });
        }
    }
    Err(SaveError::Contention(mask_phone(phone)))
}

/// The key of the WhatsApp contact `user_id` names: its alias's, else the key of a
/// contact known only by it.
pub async fn key_of_user<S: Identities>(
    store: &S,
    account_id: &str,
    user_id: &str,
) -> Result<String, StoreError> {
    Ok(match store.alias(account_id, user_id).await? {
        Some(alias) => alias.contact_key,
        None => bsuid_key(user_id),
    })
}

/// The tombstones of erased numbers, through the deployment's suppression key: a
/// deployment without one has erased nobody.
pub struct Tombstones<'a, S> {
    store: &'a S,
    key: Option<&'a SuppressionKey>,
}

impl<'a, S: Suppressions> Tombstones<'a, S> {
    /// The tombstones in `store`, keyed with `key`.
    pub fn new(store: &'a S, key: Option<&'a SuppressionKey>) -> Self {
        Tombstones { store, key }
    }

    /// Whether `phone` was erased from the account's `channel`.
    pub async fn erased(
        &self,
        account_id: &str,
        channel: Channel,
        phone: &str,
    ) -> Result<bool, StoreError> {
        self.any_erased(account_id, channel, &[phone.to_string()])
            .await
    }

    /// Whether any of `phones` (forms of one person's number) was erased from the
    /// account's `channel`.
    pub async fn any_erased(
        &self,
        account_id: &str,
        channel: Channel,
        phones: &[String],
    ) -> Result<bool, StoreError> {
        let found = self.each_erased(account_id, channel, phones).await?;
        Ok(found.contains(&true))
    }

    /// Which of `phones` (at most 100) were erased from the account's `channel`, in
    /// the order given: one lookup.
    pub async fn each_erased(
        &self,
        account_id: &str,
        channel: Channel,
        phones: &[String],
    ) -> Result<Vec<bool>, StoreError> {
        let Some(key) = self.key else {
            return Ok(vec![false; phones.len()]);
        };
        if phones.is_empty() {
            return Ok(Vec::new());
        }
        let digests: Vec<_> = phones.iter().map(|phone| key.digest(phone)).collect();
        self.store.suppressed(account_id, channel, &digests).await
    }

    /// The person wrote to the account: an erasure of any of `phones` (forms of their
    /// number, or a BSUID's own key; at most 100) no longer keeps them out.
    pub async fn lift(
        &self,
        account_id: &str,
        channel: Channel,
        phones: &[String],
    ) -> Result<(), StoreError> {
        let Some(key) = self.key else {
            return Ok(());
        };
        if phones.is_empty() {
            return Ok(());
        }
        let digests: Vec<String> = phones.iter().map(|phone| key.digest(phone)).collect();
        self.store
            .lift_suppressions(account_id, channel, &digests)
            .await
    }
}
