//! A WhatsApp person in the book (DESIGN section 13): who a webhook item names, and
//! every write that follows from it.
//!
//! - A person is found by their number first (with WhatsApp's legacy variants, one
//!   batch read), then by their BSUID's alias, else under their BSUID's own key (a
//!   BSUID-only contact an import saved has no alias until the person first writes,
//!   and that first item writes it).
//! - Whatever one item changes about a person (the contact, a BSUID-only contact
//!   merged into it, the aliases) is one transaction, decided again from fresh reads
//!   when someone else wrote first.
//! - A contact never appears under an erased number unless the item is the person's
//!   own message, which lifts the erasure ([`super::Tombstones`]).

use serde::{Deserialize, Serialize};

use super::aliases::{aliases_of, repointed};
use super::erasure::Tombstones;
use super::{SaveError, MAX_ATTEMPTS};
use crate::domain::channel::Channel;
use crate::domain::cleaning::mask_phone;
use crate::domain::contact::{Contact, WriteStamp};
use crate::domain::phone::{self, PhoneContext};
use crate::domain::whatsapp::{bsuid_key, is_bsuid, wa_id_candidates};
use crate::ports::{Alias, ContactStore, Identities, IdentityWrite, Precondition, Suppressions};

/// A person as one webhook item names them: a number, a BSUID, or both.
#[derive(Clone, Debug, Default)]
pub struct WaUser {
    /// WhatsApp's id of the number: digits with the country code.
    pub wa_id: Option<String>,
    /// The business-scoped user id (checked: never a number).
    pub user_id: Option<String>,
}

impl WaUser {
    /// The person named by `wa_id` and `user_id`; a user id that is not a BSUID is
    /// dropped (and logged, without its value).
    pub fn new(wa_id: Option<&str>, user_id: Option<&str>) -> WaUser {
        let user_id = user_id.filter(|u| {
            let ok = is_bsuid(u);
            if !ok {
                tracing::warn!("a user id that is not a BSUID was ignored");
            }
            ok
        });
        WaUser {
            wa_id: wa_id.map(|w| w.trim_start_matches('+').to_string()),
            user_id: user_id.map(str::to_string),
        }
    }

    /// Whether the item names nobody.
    pub fn is_empty(&self) -> bool {
        self.wa_id.is_none() && self.user_id.is_none()
    }
}

/// What one item did to the book (what the event ledger keeps for a redelivery).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Done {
    /// A new contact.
    Created,
    /// A contact (and maybe its aliases) changed.
    Updated,
    /// Nothing to change.
    Unchanged,
    /// Nobody to change (a status for an unknown person), or a blocked contact.
    Skipped,
}

/// What an item does to a person's contact. `create` makes a new contact under a key
/// (`None`: this item never creates one); `change` gives the contact after the item
/// (touched), or `None` when nothing changes. `own_message`: the item is the person
/// writing, the only thing that brings an erased number back (DESIGN section 14).
pub struct Effect<'a> {
    /// A new contact under a key, when the item creates one.
    pub create: Option<&'a (dyn Fn(&str) -> Contact + Sync)>,
    /// The contact after the item, or `None` when nothing changes.
    pub change: &'a (dyn Fn(&Contact) -> Option<Contact> + Sync),
    /// The item is the person's own message.
    pub own_message: bool,
}

/// Where a person stands in the book, read fresh for each attempt.
struct Found {
    /// The key a contact of theirs has or would get from their number.
    phone_key: Option<String>,
    /// Their contact found by number.
    by_phone: Option<Contact>,
    /// Their BSUID's alias.
    alias: Option<Alias>,
    /// The contact the BSUID names, when it is not `by_phone`: the alias's, or without
    /// an alias the BSUID-only contact under the BSUID's own key.
    by_alias: Option<Contact>,
}

/// The contact one item writes: under `key`, over `stored` (the write's
/// precondition), starting from `base` (`stored`, or a BSUID-only contact merged in).
struct Target {
    key: String,
    stored: Option<Contact>,
    base: Option<Contact>,
    /// A BSUID-only contact merged into the number's: removed.
    merged_away: Option<Contact>,
}

/// The WhatsApp contacts of one account, as items arriving through one of its business
/// numbers see them.
pub struct WhatsappIdentities<'a, S> {
    store: &'a S,
    tombstones: Tombstones<'a, S>,
    account_id: &'a str,
    phone_number_id: &'a str,
}

impl<'a, S> WhatsappIdentities<'a, S>
where
    S: ContactStore + Identities + Suppressions,
{
    /// The account's WhatsApp contacts in `store`, reached through business number
    /// `phone_number_id`.
    pub fn new(
        store: &'a S,
        tombstones: Tombstones<'a, S>,
        account_id: &'a str,
        phone_number_id: &'a str,
    ) -> Self {
        WhatsappIdentities {
            store,
            tombstones,
            account_id,
            phone_number_id,
        }
    }

    /// Applies `effect` to `user`'s contact with whatever identity writes it needs:
    /// the number's contact is the contact; a BSUID-only contact of the same person is
    /// merged into it and removed, and the alias re-pointed, all in one transaction.
    pub async fn apply(
        &self,
        user: &WaUser,
        effect: &Effect<'_>,
        stamp: &WriteStamp,
    ) -> Result<Done, SaveError> {
        // Without an identity once it proves erased and this item is not the person
        // writing: it may change a contact the person's other identity names, but no
        // contact comes back (the person is erased whichever identity names them).
        let mut user = user.clone();
        let mut erased = false;
        for _ in 0..MAX_ATTEMPTS {
            let found = self.find(&user).await?;
            let Some(target) = self.target(&found, &user).await? else {
                return Ok(Done::Skipped);
            };
            // A contact about to appear under a key (a number, or a BSUID's own): one that
            // was erased stays empty unless the person wrote.
            let new_key = target.stored.is_none();
            // (Read only when a contact would be written: statuses of unknown people
            // are common and write nothing.)
            let would_write = target.base.is_some() || effect.create.is_some();
            if new_key && would_write && !effect.own_message && !erased {
                let (number, bsuid) = self.erased_identities(&user, &target.key).await?;
                if number || bsuid {
                    erased = true;
                    if number {
                        user.wa_id = None;
                    }
                    if bsuid {
                        user.user_id = None;
                    }
                    continue;
                }
            }
            let Some((next, done)) = decide(&target, effect, &user, stamp, erased) else {
                return Ok(Done::Skipped);
            };
            let writes = self.writes(&found, &user, &target, next).await?;
            if writes.is_empty() {
                return Ok(done);
            }
            let done = match done {
                Done::Unchanged => Done::Updated,
                done => done,
            };
            if self.store.write_identity(&writes).await? {
                // Per item (most of Meta's traffic): for debugging only.
                tracing::debug!(account_id = self.account_id, contact = %mask_phone(&target.key), ?done, "WhatsApp contact written");
                if new_key && effect.own_message {
                    // Only the person's own message brings an erased person back.
                    let (mut forms, bsuid) = erasable_forms(&user, &target.key);
                    forms.extend(bsuid);
                    self.tombstones
                        .lift(self.account_id, Channel::Whatsapp, &forms)
                        .await?;
                }
                return Ok(done);
            }
        }
        Err(SaveError::Contention(format!(
            "WhatsApp contact of account {}",
            self.account_id
        )))
    }

    /// A user's BSUID changed: the alias moves to the new one (the contact keeps its
    /// key), and a contact that stored the old one stores the new one.
    pub async fn change_user_id(
        &self,
        previous: &str,
        current: &str,
        wa_id: Option<&str>,
        stamp: &WriteStamp,
    ) -> Result<Done, SaveError> {
        if !is_bsuid(previous) || !is_bsuid(current) || previous == current {
            return Ok(Done::Skipped);
        }
        for _ in 0..MAX_ATTEMPTS {
            let stored = self.store.alias(self.account_id, previous).await?;
            let old = match &stored {
                Some(alias) => alias.clone(),
                // No alias, but a contact under the old id's own key (an import saved
                // it): the new id's alias is its first.
                None if self.contact_at(&bsuid_key(previous)).await?.is_some() => {
                    self.alias_of(previous, bsuid_key(previous))
                }
                None => {
                    // Nobody had the old id: the new one is learnt with the next message.
                    let user = WaUser::new(wa_id, Some(current));
                    if user.wa_id.is_none() {
                        return Ok(Done::Skipped);
                    }
                    let change = |_: &Contact| None;
                    let effect = Effect {
                        create: None,
                        change: &change,
                        own_message: false,
                    };
                    return self.apply(&user, &effect, stamp).await;
                }
            };
            let existing_new = self.store.alias(self.account_id, current).await?;
            let mut writes: Vec<IdentityWrite> =
                stored.into_iter().map(IdentityWrite::RemoveAlias).collect();
            writes.push(IdentityWrite::Alias(
                Alias {
                    user_id: current.to_string(),
                    phone_number_id: self.phone_number_id.to_string(),
                    ..old.clone()
                },
                existing_new.map(|a| a.contact_key),
            ));
            if let Some(contact) = self.contact_at(&old.contact_key).await? {
                let mut next = contact.clone();
                if contact.text.get("user_id").map(String::as_str) == Some(previous) {
                    next.text.insert("user_id".into(), current.to_string());
                }
                next.user_ids.remove(previous);
                next.user_ids.insert(current.to_string());
                if next != contact {
                    let version = contact.version;
                    writes.push(IdentityWrite::Contact(
                        contact.touched_after(next, stamp),
                        Precondition::Version(version),
                    ));
                }
            }
            if self.store.write_identity(&writes).await? {
                tracing::info!(account_id = self.account_id, "BSUID alias moved");
                return Ok(Done::Updated);
            }
        }
        Err(SaveError::Contention(format!(
            "the WhatsApp user id alias of account {}",
            self.account_id
        )))
    }

    /// `user_changed_number`: the WhatsApp contact moves to the new number (never the
    /// SMS or voice one: the old number may be recycled), with every alias naming it.
    pub async fn change_number(
        &self,
        old: &WaUser,
        new_wa_id: &str,
        stamp: &WriteStamp,
    ) -> Result<Done, SaveError> {
        let Some(new_key) = valid_key(new_wa_id) else {
            tracing::warn!("user_changed_number with a new number that does not read");
            return Ok(Done::Skipped);
        };
        for _ in 0..MAX_ATTEMPTS {
            let found = self.find(old).await?;
            let Some(old_contact) = found.by_phone.or(found.by_alias) else {
                return Ok(Done::Skipped);
            };
            if old_contact.phone == new_key {
                return Ok(Done::Unchanged);
            }
            let (mut next, precondition) = match self.contact_at(&new_key).await? {
                Some(target) => {
                    let version = target.version;
                    (target.absorb(&old_contact), Precondition::Version(version))
                }
                None => {
                    // The version goes on (touched below): the move is a write.
                    let mut moved = old_contact.clone();
                    moved.phone = new_key.clone();
                    (moved, Precondition::Absent)
                }
            };
            // Every alias naming the old contact moves with it: the item's BSUID's and
            // those of the other portfolios it stores.
            let mut aliases = aliases_of(self.store, &old_contact).await?;
            if let Some(alias) = found.alias.filter(|a| a.contact_key == old_contact.phone) {
                if !aliases.iter().any(|a| a.user_id == alias.user_id) {
                    aliases.push(alias);
                }
            }
            next.user_ids
                .extend(aliases.iter().map(|alias| alias.user_id.clone()));
            next.wa_id = Some(new_wa_id.to_string());
            next.touch(stamp);
            let mut writes = vec![
                IdentityWrite::Contact(next, precondition),
                IdentityWrite::RemoveContact(old_contact.clone()),
            ];
            writes.extend(aliases.into_iter().map(|alias| repointed(alias, &new_key)));
            if self.store.write_identity(&writes).await? {
                tracing::info!(account_id = self.account_id, to = %mask_phone(&new_key), "WhatsApp contact moved to the user's new number");
                return Ok(Done::Updated);
            }
        }
        Err(SaveError::Contention(mask_phone(&new_key)))
    }

    /// The WhatsApp contact stored under `key`, if any.
    async fn contact_at(&self, key: &str) -> Result<Option<Contact>, SaveError> {
        let keys = [key.to_string()];
        let mut found = self
            .store
            .contacts_by_keys(self.account_id, Channel::Whatsapp, &keys)
            .await?;
        Ok(found.pop())
    }

    /// Whether the person was erased from WhatsApp under (a form of) their number or
    /// the key, and under their BSUID's own key: one lookup.
    async fn erased_identities(&self, user: &WaUser, key: &str) -> Result<(bool, bool), SaveError> {
        let (numbers, bsuid) = erasable_forms(user, key);
        let forms: Vec<String> = numbers.iter().chain(&bsuid).cloned().collect();
        let erased = self
            .tombstones
            .each_erased(self.account_id, Channel::Whatsapp, &forms)
            .await?;
        let (by_number, by_bsuid) = erased.split_at(numbers.len().min(erased.len()));
        Ok((by_number.contains(&true), by_bsuid.contains(&true)))
    }

    /// `user_id`'s alias naming `contact_key`, kept under this business number.
    fn alias_of(&self, user_id: &str, contact_key: String) -> Alias {
        Alias {
            account_id: self.account_id.to_string(),
            user_id: user_id.to_string(),
            contact_key,
            phone_number_id: self.phone_number_id.to_string(),
        }
    }

    /// Reads where `user` stands: by number (every variant in one batch read, the exact
    /// form first), then by BSUID alias, else by the BSUID's own key.
    async fn find(&self, user: &WaUser) -> Result<Found, SaveError> {
        let mut found = Found {
            phone_key: None,
            by_phone: None,
            alias: None,
            by_alias: None,
        };
        if let Some(wa_id) = &user.wa_id {
            let candidates = wa_id_candidates(wa_id);
            if !candidates.is_empty() {
                let stored = self
                    .store
                    .contacts_by_keys(self.account_id, Channel::Whatsapp, &candidates)
                    .await?;
                found.by_phone = candidates
                    .iter()
                    .find_map(|c| stored.iter().find(|s| &s.phone == c))
                    .cloned();
                found.phone_key = match &found.by_phone {
                    Some(contact) => Some(contact.phone.clone()),
                    None => candidates.iter().find_map(|c| valid_key(c)),
                };
            }
            if found.phone_key.is_none() {
                tracing::warn!("a wa_id that is not a valid number was ignored");
            }
        }
        if let Some(user_id) = &user.user_id {
            found.alias = self.store.alias(self.account_id, user_id).await?;
            // Without an alias, the BSUID can still name a contact: one an import saved
            // under `bsuid:{user_id}` (imports write no alias: they know no business
            // number to keep it under). Only a person's first item pays this read.
            let named = match &found.alias {
                Some(alias) => alias.contact_key.clone(),
                None => bsuid_key(user_id),
            };
            if found.phone_key.as_deref() != Some(named.as_str()) {
                found.by_alias = self.contact_at(&named).await?;
            }
        }
        Ok(found)
    }

    /// The contact an item writes, from where the person stands: `None` when the item
    /// names nobody the book could hold.
    async fn target(&self, found: &Found, user: &WaUser) -> Result<Option<Target>, SaveError> {
        Ok(Some(match (&found.phone_key, &found.by_alias) {
            (Some(key), Some(other)) if other.e164().is_none() => {
                let merged = match &found.by_phone {
                    Some(contact) => contact.absorb(other),
                    None => Contact {
                        phone: key.clone(),
                        ..other.clone()
                    },
                };
                Target {
                    key: key.clone(),
                    stored: found.by_phone.clone(),
                    base: Some(merged),
                    merged_away: Some(other.clone()),
                }
            }
            (Some(key), _) => Target {
                key: key.clone(),
                stored: found.by_phone.clone(),
                base: found.by_phone.clone(),
                merged_away: None,
            },
            (None, Some(contact)) => Target {
                key: contact.phone.clone(),
                stored: Some(contact.clone()),
                base: Some(contact.clone()),
                merged_away: None,
            },
            (None, None) => {
                let Some(user_id) = &user.user_id else {
                    return Ok(None);
                };
                let key = bsuid_key(user_id);
                // `find` read this key already unless an alias named another one.
                let stored = match &found.alias {
                    Some(alias) if alias.contact_key != key => self.contact_at(&key).await?,
                    _ => None,
                };
                Target {
                    key,
                    base: stored.clone(),
                    stored,
                    merged_away: None,
                }
            }
        }))
    }

    /// Every write of one item, in one transaction: the contact, a merged contact's
    /// removal, the aliases that follow it, and the item's BSUID's alias.
    async fn writes(
        &self,
        found: &Found,
        user: &WaUser,
        target: &Target,
        next: Option<Contact>,
    ) -> Result<Vec<IdentityWrite>, SaveError> {
        let mut writes = Vec::new();
        if let Some(mut contact) = next {
            let precondition = match &target.stored {
                Some(s) => Precondition::Version(s.version),
                None => Precondition::Absent,
            };
            // A version counts every write a person's contact had, under any key: a
            // contact merged or moved to a new key goes on from its old version, so an
            // undo never takes it for one its import created and nothing wrote since.
            contact.version = match &target.stored {
                Some(stored) => stored.version + 1,
                None => contact.version.max(1),
            };
            writes.push(IdentityWrite::Contact(contact, precondition));
        }
        if let Some(other) = &target.merged_away {
            writes.push(IdentityWrite::RemoveContact(other.clone()));
            // The aliases of a merged BSUID-only contact's other BSUIDs follow it.
            for alias in aliases_of(self.store, other).await? {
                if user.user_id.as_ref() != Some(&alias.user_id) {
                    writes.push(repointed(alias, &target.key));
                }
            }
        }
        if let Some(user_id) = &user.user_id {
            let points_to = found.alias.as_ref().map(|a| a.contact_key.clone());
            if points_to.as_deref() != Some(target.key.as_str()) {
                let alias = self.alias_of(user_id, target.key.clone());
                writes.push(IdentityWrite::Alias(alias, points_to));
            }
        }
        Ok(writes)
    }
}

/// The contact an item leaves, and what it did: `None` when it does nothing (it never
/// creates, or the number was erased). The contact is `None` when nothing changes.
fn decide(
    target: &Target,
    effect: &Effect<'_>,
    user: &WaUser,
    stamp: &WriteStamp,
    erased: bool,
) -> Option<(Option<Contact>, Done)> {
    let (next, done) = match &target.base {
        None => match effect.create {
            Some(create) if !erased => (Some(create(&target.key)), Done::Created),
            _ => return None,
        },
        Some(current) => match (effect.change)(current) {
            Some(next) => (Some(next), Done::Updated),
            None if target.stored.as_ref() != Some(current) => (
                Some(current.touched_after(current.clone(), stamp)),
                Done::Updated,
            ),
            None => (None, Done::Unchanged),
        },
    };
    // What the item says of who the person is, even when nothing else changes.
    let next = match (next, &target.base) {
        (Some(mut next), _) => {
            remember_identity(&mut next, user);
            Some(next)
        }
        (None, Some(current)) => {
            let mut learnt = current.clone();
            remember_identity(&mut learnt, user);
            (learnt != *current).then(|| current.touched_after(learnt, stamp))
        }
        (None, None) => None,
    };
    Some((next, done))
}

/// Every key a tombstone of the person may be under: WhatsApp's variants of their
/// `wa_id` and the key the item writes; then their BSUID's own key.
fn erasable_forms(user: &WaUser, key: &str) -> (Vec<String>, Option<String>) {
    let mut numbers = user
        .wa_id
        .as_deref()
        .map(wa_id_candidates)
        .unwrap_or_default();
    if !numbers.iter().any(|f| f == key) {
        numbers.push(key.to_string());
    }
    let bsuid = user.user_id.as_deref().map(bsuid_key);
    (numbers, bsuid)
}

/// The E.164 key of a number as WhatsApp writes it, when it is a valid number.
fn valid_key(wa_id: &str) -> Option<String> {
    let context = PhoneContext {
        default_region: None,
        channel: Channel::Voice,
    };
    let digits = wa_id.trim_start_matches('+');
    phone::normalize(&format!("+{digits}"), None, context).ok()
}

/// Records what the item says of who the person is: WhatsApp's id of their number and
/// their BSUID (`user_id` stored once, another portfolio's never overwrites it; every
/// BSUID in `user_ids`, since each gets an alias naming the contact).
fn remember_identity(contact: &mut Contact, user: &WaUser) {
    if let Some(wa_id) = &user.wa_id {
        if contact.e164().is_some() && contact.wa_id.as_deref() != Some(wa_id.as_str()) {
            contact.wa_id = Some(wa_id.clone());
        }
    }
    if let Some(user_id) = &user.user_id {
        contact
            .text
            .entry("user_id".into())
            .or_insert_with(|| user_id.clone());
        contact.user_ids.insert(user_id.clone());
    }
}
