//! Meta's WhatsApp webhooks (DESIGN section 13): every entry x change x item of a body.
//!
//! - The account comes from the business number (`metadata.phone_number_id`); an
//!   unknown number writes nothing and is counted.
//! - A person is found by their number first (with WhatsApp's legacy variants, one
//!   batch read), then by their BSUID's alias, else under their BSUID's own key (a
//!   BSUID-only contact an import saved has no alias until the person first writes,
//!   and that first item writes it). Whatever one item changes about a
//!   person (the contact, a BSUID-only contact merged into it, the aliases) is one
//!   transaction, decided again from fresh reads when someone else wrote first.
//! - Messages follow `message.inbound`'s rules, once per `wamid`; statuses never create
//!   a contact, once per `wamid` + status; `user_preferences` feed the consent ledger,
//!   whose rules make a redelivery change nothing.

use serde::{Deserialize, Serialize};

use super::answer::WebhookAnswer;
use super::error::EventError;
use super::inbound::Inbound;
use super::meta::{
    Integer, Message, Status, UserIdUpdate, UserPreference, Value, WaContact, Webhook,
};
use super::{now, rfc3339, stamp, EventService};
use crate::book::SaveError;
use crate::domain::consent::{consent_time_from_unix, Category, ConsentSource, Signal, State};
use crate::domain::contact::{Contact, Source, Status as ContactStatus, WriteStamp};
use crate::domain::phone::{self, PhoneContext};
use crate::domain::text::mask_phone;
use crate::domain::upload::Channel;
use crate::domain::validate::is_valid_name;
use crate::domain::whatsapp::{bsuid_key, is_bsuid, wa_id_candidates};
use crate::ports::{
    Alias, ContactStore, EventLedger, Identities, IdentityWrite, ObjectStore, Precondition,
    SettingsStore, Suppressions,
};

/// How many times one item's writes are decided again after losing a race.
const MAX_ATTEMPTS: usize = 8;
/// Meta's error: the message could not be delivered (not on WhatsApp, terms not
/// accepted, an old app).
const UNDELIVERABLE: i64 = 131_026;
/// Meta's error: the user stopped marketing messages from the business.
const MARKETING_STOPPED: i64 = 131_050;

/// A person as one webhook item names them: a number, a BSUID, or both.
#[derive(Clone, Debug, Default)]
struct WaUser {
    /// WhatsApp's id of the number: digits with the country code.
    wa_id: Option<String>,
    /// The business-scoped user id (checked: never a number).
    user_id: Option<String>,
}

impl WaUser {
    fn new(wa_id: Option<&str>, user_id: Option<&str>) -> WaUser {
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

    fn is_empty(&self) -> bool {
        self.wa_id.is_none() && self.user_id.is_none()
    }
}

/// What one item did to the book (what the ledger keeps for a redelivery).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Done {
    /// A new contact.
    Created,
    /// A contact (and maybe its aliases) changed.
    Updated,
    /// Nothing to change.
    Unchanged,
    /// Nobody to change (a status for an unknown person), or a blocked contact.
    Skipped,
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

/// What an item does to a person's contact. `create` makes a new contact under a key
/// (`None`: this item never creates one); `change` gives the contact after the item
/// (touched), or `None` when nothing changes. `own_message`: the item is the person
/// writing, the only thing that brings an erased number back (DESIGN section 14).
struct Effect<'a> {
    create: Option<&'a (dyn Fn(&str) -> Contact + Sync)>,
    change: &'a (dyn Fn(&Contact) -> Option<Contact> + Sync),
    own_message: bool,
}

impl<O, C, S, L> EventService<'_, O, C, S, L>
where
    O: ObjectStore,
    C: ContactStore + Suppressions + Identities,
    S: SettingsStore,
    L: EventLedger,
{
    /// Handles every item of a webhook body.
    pub(super) async fn webhook(&self, webhook: Webhook) -> Result<WebhookAnswer, EventError> {
        let mut answer = WebhookAnswer::default();
        for entry in webhook.entry {
            for change in entry.changes {
                self.change(change.value, &mut answer).await?;
            }
        }
        tracing::info!(?answer, "webhook handled");
        Ok(answer)
    }

    async fn change(&self, value: Value, answer: &mut WebhookAnswer) -> Result<(), EventError> {
        let items = value.messages.len()
            + value.statuses.len()
            + value.user_preferences.len()
            + value.user_id_update.0.len()
            + value
                .contacts
                .iter()
                .filter(|c| c.user_id_update.is_some())
                .count();
        if items == 0 {
            return Ok(());
        }
        let Some(phone_number_id) = value.metadata.phone_number_id.get() else {
            answer.ignored += items as u64;
            tracing::warn!(items, "webhook change without metadata.phone_number_id");
            return Ok(());
        };
        let Some(account_id) = self.contacts.account_of_number(phone_number_id).await? else {
            answer.unknown_phone_number_id += items as u64;
            tracing::warn!(
                phone_number_id,
                items,
                "webhook for a business number no account has (WABA item missing); nothing written"
            );
            return Ok(());
        };
        let at = Place {
            account_id: &account_id,
            phone_number_id,
        };
        for message in &value.messages {
            let done = self.message(&at, message, &value.contacts).await?;
            answer.count_message(done);
        }
        for status in &value.statuses {
            let done = self.status(&at, status).await?;
            answer.count_status(done);
        }
        for preference in &value.user_preferences {
            let done = self.preference(&at, preference).await?;
            answer.count_preference(done);
        }
        let updates = value.user_id_update.0.iter().chain(
            value
                .contacts
                .iter()
                .filter_map(|c| c.user_id_update.as_ref()),
        );
        for update in updates {
            let done = self.user_id_update(&at, update).await?;
            answer.count_identity(done);
        }
        Ok(())
    }

    /// A message: the sender writes to the business (`message.inbound`'s rules).
    async fn message(
        &self,
        at: &Place<'_>,
        message: &Message,
        contacts: &[WaContact],
    ) -> Result<Done, EventError> {
        let Some(wamid) = message.id.get() else {
            return Ok(Done::Skipped);
        };
        if message.group_id.get().is_some() {
            // A group conversation is not the person writing to the business.
            return Ok(Done::Skipped);
        }
        let system = message.system.as_ref();
        let system_kind = system.and_then(|s| s.kind.get());
        let key = format!("msg:{wamid}");
        match system_kind {
            Some("user_changed_user_id") => {
                let system = system.cloned().unwrap_or_default();
                let update = UserIdUpdate {
                    previous: if system.previous_user_id.get().is_some() {
                        system.previous_user_id
                    } else {
                        message.from_user_id.clone()
                    },
                    current: if system.user_id.get().is_some() {
                        system.user_id
                    } else {
                        system.new_user_id
                    },
                    wa_id: message.from.clone(),
                };
                return self
                    .once(at.account_id, &key, || self.user_id_update(at, &update))
                    .await;
            }
            Some("user_changed_number") => {
                let new = system
                    .and_then(|s| s.new_wa_id.get().or(s.wa_id.get()))
                    .map(str::to_string);
                let old = WaUser::new(message.from.get(), message.from_user_id.get());
                return self
                    .once(at.account_id, &key, || self.number_changed(at, &old, new))
                    .await;
            }
            _ => {}
        }
        let profile = profile_of(message, contacts);
        let mut user = WaUser::new(
            message.from.get().or(profile.and_then(|c| c.wa_id.get())),
            message
                .from_user_id
                .get()
                .or(profile.and_then(|c| c.user_id.get())),
        );
        if message.kind.get() == Some("contacts") {
            // The user shared their own number on request: it reveals who they are.
            let on_request = message.origin.get() == Some("contact_request")
                || message
                    .contacts
                    .iter()
                    .any(|c| c.origin.get() == Some("contact_request"));
            let shared = message
                .contacts
                .iter()
                .flat_map(|c| &c.phones)
                .find_map(|p| p.wa_id.get().or(p.phone.get()));
            if on_request && user.wa_id.is_none() {
                user.wa_id = shared.map(|p| p.chars().filter(char::is_ascii_digit).collect());
            }
        }
        if user.is_empty() {
            return Ok(Done::Skipped);
        }
        let received_at = message
            .timestamp
            .rfc3339()
            .unwrap_or_else(|| rfc3339(now()));
        let name = profile
            .and_then(|c| c.profile.name.get())
            .map(|n| crate::domain::text::truncate_chars(n, 101).to_string())
            .filter(|n| is_valid_name(n));
        let stamp = stamp(Source::Inbound, None);
        let inbound = |key: &str| Inbound {
            account_id: at.account_id.to_string(),
            channel: Channel::Whatsapp,
            message_id: wamid.to_string(),
            phone: key.to_string(),
            received_at: received_at.clone(),
            name: name.clone(),
            first_name: None,
            last_name: None,
            keyword: None,
        };
        let create = |key: &str| {
            let mut contact = inbound(key).new_contact(&stamp);
            contact.whatsapp_reachable = Some(true);
            contact
        };
        let change = |current: &Contact| {
            let (_, next) = inbound(&current.phone).merge(current, &stamp);
            let mut next = next.unwrap_or_else(|| current.clone());
            if current.status != ContactStatus::Blocked {
                next.whatsapp_reachable = Some(true);
            }
            (next != *current).then(|| touched(next, current, &stamp))
        };
        let effect = Effect {
            create: Some(&create),
            change: &change,
            own_message: true,
        };
        self.once(at.account_id, &key, || {
            self.apply(at, &user, &effect, &stamp)
        })
        .await
    }

    /// A status: what became of a message the business sent. Never creates a contact.
    async fn status(&self, at: &Place<'_>, status: &Status) -> Result<Done, EventError> {
        let (Some(wamid), Some(state)) = (status.id.get(), status.status.get()) else {
            return Ok(Done::Skipped);
        };
        if status.recipient_type.get() == Some("group") {
            return Ok(Done::Skipped);
        }
        let user = WaUser::new(status.recipient_id.get(), status.recipient_user_id.get());
        if user.is_empty() {
            return Ok(Done::Skipped);
        }
        let codes: Vec<i64> = status.errors.iter().filter_map(|e| e.code.0).collect();
        let time = consent_time(status.timestamp);
        let reachable = match state {
            "delivered" | "read" => Some(true),
            "failed" if codes.contains(&UNDELIVERABLE) => Some(false),
            _ => None,
        };
        let stop = (state == "failed" && codes.contains(&MARKETING_STOPPED)).then(|| Signal {
            category: Category::Marketing,
            state: State::OptedOut,
            at: time.clone(),
            source: ConsentSource::Status131050,
            scope: Some(at.phone_number_id.to_string()),
            evidence: wamid.to_string(),
        });
        let stamp = stamp(Source::Inbound, None);
        let change = |current: &Contact| {
            let mut next = current.clone();
            if let Some(reachable) = reachable {
                next.whatsapp_reachable = Some(reachable);
            }
            if let Some(signal) = &stop {
                next.apply_consent(signal);
            }
            (next != *current).then(|| touched(next, current, &stamp))
        };
        let effect = Effect {
            create: None,
            change: &change,
            own_message: false,
        };
        let key = format!("status:{wamid}:{state}");
        self.once(at.account_id, &key, || {
            self.apply(at, &user, &effect, &stamp)
        })
        .await
    }

    /// A user's marketing preference: the user's own word, applied by the consent
    /// rules (an older one than the stored changes nothing). A stop from someone not
    /// in the book creates their contact, so that no import opts them in again.
    async fn preference(
        &self,
        at: &Place<'_>,
        preference: &UserPreference,
    ) -> Result<Done, EventError> {
        let state = match preference
            .value
            .get()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("stop") => State::OptedOut,
            Some("resume") => State::OptedIn,
            _ => return Ok(Done::Skipped),
        };
        if preference
            .category
            .get()
            .is_some_and(|c| c != "marketing_messages")
        {
            return Ok(Done::Skipped);
        }
        let user = WaUser::new(preference.wa_id.get(), preference.user_id.get());
        if user.is_empty() {
            return Ok(Done::Skipped);
        }
        let time = consent_time(preference.timestamp);
        let signal = Signal {
            category: Category::Marketing,
            state,
            at: time.clone(),
            source: ConsentSource::UserPreferences,
            scope: Some(at.phone_number_id.to_string()),
            evidence: format!(
                "user_preferences {} at {time}",
                preference.value.get().unwrap_or_default()
            ),
        };
        let stamp = stamp(Source::Inbound, None);
        let create = |key: &str| {
            let inbound = Inbound {
                account_id: at.account_id.to_string(),
                channel: Channel::Whatsapp,
                message_id: String::new(),
                phone: key.to_string(),
                received_at: time.clone(),
                name: None,
                first_name: None,
                last_name: None,
                keyword: None,
            };
            let mut contact = inbound.new_contact(&stamp);
            contact.last_inbound_at = None;
            contact.apply_consent(&signal);
            contact
        };
        let change = |current: &Contact| {
            let mut next = current.clone();
            next.apply_consent(&signal);
            (next != *current).then(|| touched(next, current, &stamp))
        };
        let create: &(dyn Fn(&str) -> Contact + Sync) = &create;
        let effect = Effect {
            create: (state == State::OptedOut).then_some(create),
            change: &change,
            own_message: false,
        };
        self.apply(at, &user, &effect, &stamp).await
    }

    /// A user's BSUID changed: the alias moves to the new one (the contact keeps its
    /// key), and a contact that stored the old one stores the new one.
    async fn user_id_update(
        &self,
        at: &Place<'_>,
        update: &UserIdUpdate,
    ) -> Result<Done, EventError> {
        let (Some(previous), Some(current)) = (update.previous.get(), update.current.get()) else {
            return Ok(Done::Skipped);
        };
        if !is_bsuid(previous) || !is_bsuid(current) || previous == current {
            return Ok(Done::Skipped);
        }
        let stamp = stamp(Source::Inbound, None);
        for _ in 0..MAX_ATTEMPTS {
            let stored = self.contacts.alias(at.account_id, previous).await?;
            let old = match &stored {
                Some(alias) => alias.clone(),
                // No alias, but a contact under the old id's own key (an import saved
                // it): the new id's alias is its first.
                None if self.contact_at(at, &bsuid_key(previous)).await?.is_some() => Alias {
                    account_id: at.account_id.to_string(),
                    user_id: previous.to_string(),
                    contact_key: bsuid_key(previous),
                    phone_number_id: at.phone_number_id.to_string(),
                },
                None => {
                    // Nobody had the old id: the new one is learnt with the next message.
                    let user = WaUser::new(update.wa_id.get(), Some(current));
                    if user.wa_id.is_none() {
                        return Ok(Done::Skipped);
                    }
                    let change = |_: &Contact| None;
                    let effect = Effect {
                        create: None,
                        change: &change,
                        own_message: false,
                    };
                    return self.apply(at, &user, &effect, &stamp).await;
                }
            };
            let existing_new = self.contacts.alias(at.account_id, current).await?;
            let mut writes: Vec<IdentityWrite> =
                stored.into_iter().map(IdentityWrite::RemoveAlias).collect();
            writes.push(IdentityWrite::Alias(
                Alias {
                    user_id: current.to_string(),
                    phone_number_id: at.phone_number_id.to_string(),
                    ..old.clone()
                },
                existing_new.map(|a| a.contact_key),
            ));
            let contact = self.contact_at(at, &old.contact_key).await?;
            if let Some(contact) = contact {
                let mut next = contact.clone();
                if contact.text.get("user_id").map(String::as_str) == Some(previous) {
                    next.text.insert("user_id".into(), current.to_string());
                }
                next.user_ids.remove(previous);
                next.user_ids.insert(current.to_string());
                if next != contact {
                    let version = contact.version;
                    writes.push(IdentityWrite::Contact(
                        touched(next, &contact, &stamp),
                        Precondition::Version(version),
                    ));
                }
            }
            if self.contacts.write_identity(&writes).await? {
                tracing::info!(account_id = at.account_id, "BSUID alias moved");
                return Ok(Done::Updated);
            }
        }
        Err(SaveError::Contention(format!("alias of {previous}")).into())
    }

    /// `user_changed_number`: the WhatsApp contact moves to the new number (never the
    /// SMS or voice one: the old number may be recycled).
    async fn number_changed(
        &self,
        at: &Place<'_>,
        old: &WaUser,
        new_wa_id: Option<String>,
    ) -> Result<Done, EventError> {
        let Some(new_wa_id) = new_wa_id else {
            return Ok(Done::Skipped);
        };
        let Some(new_key) = valid_key(&new_wa_id) else {
            tracing::warn!("user_changed_number with a new number that does not read");
            return Ok(Done::Skipped);
        };
        let stamp = stamp(Source::Inbound, None);
        for _ in 0..MAX_ATTEMPTS {
            let found = self.find(at, old).await?;
            let Some(old_contact) = found.by_phone.or(found.by_alias) else {
                return Ok(Done::Skipped);
            };
            if old_contact.phone == new_key {
                return Ok(Done::Unchanged);
            }
            let existing = self.contact_at(at, &new_key).await?;
            let (mut next, precondition) = match &existing {
                Some(target) => (
                    merge_into(target, &old_contact),
                    Precondition::Version(target.version),
                ),
                None => {
                    let mut moved = old_contact.clone();
                    moved.phone = new_key.clone();
                    moved.version = 0;
                    (moved, Precondition::Absent)
                }
            };
            // Every alias naming the old contact moves with it: the item's BSUID's and
            // those of the other portfolios it stores.
            let mut aliases = self.aliases_of(&old_contact).await?;
            if let Some(alias) = found.alias.filter(|a| a.contact_key == old_contact.phone) {
                if !aliases.iter().any(|a| a.user_id == alias.user_id) {
                    aliases.push(alias);
                }
            }
            next.user_ids
                .extend(aliases.iter().map(|alias| alias.user_id.clone()));
            next.wa_id = Some(new_wa_id.clone());
            next.touch(&stamp);
            let mut writes = vec![
                IdentityWrite::Contact(next, precondition),
                IdentityWrite::RemoveContact(old_contact.clone()),
            ];
            writes.extend(aliases.into_iter().map(|alias| repointed(alias, &new_key)));
            if self.contacts.write_identity(&writes).await? {
                tracing::info!(account_id = at.account_id, to = %mask_phone(&new_key), "WhatsApp contact moved to the user's new number");
                return Ok(Done::Updated);
            }
        }
        Err(SaveError::Contention(new_key).into())
    }

    /// The WhatsApp contact stored under `key`, if any.
    async fn contact_at(&self, at: &Place<'_>, key: &str) -> Result<Option<Contact>, EventError> {
        let keys = [key.to_string()];
        let mut found = self
            .contacts
            .contacts_by_keys(at.account_id, Channel::Whatsapp, &keys)
            .await?;
        Ok(found.pop())
    }

    /// Reads where `user` stands: by number (every variant in one batch read, the exact
    /// form first), then by BSUID alias, else by the BSUID's own key.
    async fn find(&self, at: &Place<'_>, user: &WaUser) -> Result<Found, EventError> {
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
                    .contacts
                    .contacts_by_keys(at.account_id, Channel::Whatsapp, &candidates)
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
            found.alias = self.contacts.alias(at.account_id, user_id).await?;
            // Without an alias, the BSUID can still name a contact: one an import saved
            // under `bsuid:{user_id}` (imports write no alias: they know no business
            // number to keep it under). Only a person's first item pays this read.
            let named = match &found.alias {
                Some(alias) => alias.contact_key.clone(),
                None => bsuid_key(user_id),
            };
            if found.phone_key.as_deref() != Some(named.as_str()) {
                found.by_alias = self.contact_at(at, &named).await?;
            }
        }
        Ok(found)
    }

    /// Applies `effect` to `user`'s contact with whatever identity writes it needs:
    /// the number's contact is the contact; a BSUID-only contact of the same person is
    /// merged into it and removed, and the alias re-pointed, all in one transaction.
    async fn apply(
        &self,
        at: &Place<'_>,
        user: &WaUser,
        effect: &Effect<'_>,
        stamp: &WriteStamp,
    ) -> Result<Done, EventError> {
        // Without the number once it proves erased and this item is not the person
        // writing: it may change what the BSUID names, but no contact comes back under
        // the number.
        let mut user = user.clone();
        let mut number_erased = false;
        for _ in 0..MAX_ATTEMPTS {
            let found = self.find(at, &user).await?;
            let mut writes = Vec::new();
            let mut merged_away = None;
            // `stored`: what is under `key` now (the write's precondition); `base`: the
            // contact the effect applies to (`stored`, or a BSUID-only contact merged).
            let (key, stored, base) = match (&found.phone_key, &found.by_alias) {
                (Some(key), Some(other)) if other.e164().is_none() => {
                    writes.push(IdentityWrite::RemoveContact(other.clone()));
                    merged_away = Some(other.clone());
                    let merged = match &found.by_phone {
                        Some(contact) => merge_into(contact, other),
                        None => Contact {
                            phone: key.clone(),
                            ..other.clone()
                        },
                    };
                    (key.clone(), found.by_phone.clone(), Some(merged))
                }
                (Some(key), _) => (key.clone(), found.by_phone.clone(), found.by_phone.clone()),
                (None, Some(contact)) => (
                    contact.phone.clone(),
                    Some(contact.clone()),
                    Some(contact.clone()),
                ),
                (None, None) => {
                    let Some(user_id) = &user.user_id else {
                        return Ok(Done::Skipped);
                    };
                    let key = bsuid_key(user_id);
                    // `find` read this key already unless an alias named another one.
                    let stored = match &found.alias {
                        Some(alias) if alias.contact_key != key => {
                            self.contact_at(at, &key).await?
                        }
                        _ => None,
                    };
                    (key, stored.clone(), stored)
                }
            };
            // A contact about to appear under a number: one that was erased stays empty
            // unless the person wrote.
            let new_number = stored.is_none() && key.starts_with('+');
            // (Read only when a contact would be written: statuses of unknown people
            // are common and write nothing.)
            let would_write = base.is_some() || effect.create.is_some();
            let forms = || {
                let mut forms = user
                    .wa_id
                    .as_deref()
                    .map(wa_id_candidates)
                    .unwrap_or_default();
                if !forms.contains(&key) {
                    forms.push(key.clone());
                }
                forms
            };
            if new_number
                && would_write
                && !effect.own_message
                && !number_erased
                && self
                    .any_erased(at.account_id, Channel::Whatsapp, &forms())
                    .await?
            {
                number_erased = true;
                user.wa_id = None;
                continue;
            }
            let (next, mut done) = match &base {
                None => match effect.create {
                    Some(create) if !number_erased => (Some(create(&key)), Done::Created),
                    _ => return Ok(Done::Skipped),
                },
                Some(current) => match (effect.change)(current) {
                    Some(next) => (Some(next), Done::Updated),
                    None if stored.as_ref() != Some(current) => (
                        Some(touched(current.clone(), current, stamp)),
                        Done::Updated,
                    ),
                    None => (None, Done::Unchanged),
                },
            };
            // What the item says of who the person is, even when nothing else changes.
            let next = match (next, &base) {
                (Some(mut next), _) => {
                    remember_identity(&mut next, &user);
                    Some(next)
                }
                (None, Some(current)) => {
                    let mut learnt = current.clone();
                    remember_identity(&mut learnt, &user);
                    (learnt != *current).then(|| touched(learnt, current, stamp))
                }
                (None, None) => None,
            };
            if let Some(mut contact) = next {
                let precondition = match &stored {
                    Some(s) => Precondition::Version(s.version),
                    None => Precondition::Absent,
                };
                contact.version = stored.as_ref().map_or(1, |s| s.version + 1);
                writes.insert(0, IdentityWrite::Contact(contact, precondition));
            }
            // The aliases of a merged BSUID-only contact's other BSUIDs follow it.
            if let Some(other) = &merged_away {
                for alias in self.aliases_of(other).await? {
                    if user.user_id.as_ref() != Some(&alias.user_id) {
                        writes.push(repointed(alias, &key));
                    }
                }
            }
            if let Some(user_id) = &user.user_id {
                let points_to = found.alias.as_ref().map(|a| a.contact_key.clone());
                if points_to.as_deref() != Some(key.as_str()) {
                    let alias = Alias {
                        account_id: at.account_id.to_string(),
                        user_id: user_id.clone(),
                        contact_key: key.clone(),
                        phone_number_id: at.phone_number_id.to_string(),
                    };
                    writes.push(IdentityWrite::Alias(alias, points_to));
                }
            }
            if writes.is_empty() {
                return Ok(done);
            }
            if done == Done::Unchanged {
                done = Done::Updated;
            }
            if self.contacts.write_identity(&writes).await? {
                tracing::info!(account_id = at.account_id, contact = %mask_phone(&key), ?done, "WhatsApp contact written");
                if new_number && effect.own_message {
                    // Only the person's own message brings an erased person back.
                    for form in forms() {
                        self.lift_erasure(at.account_id, Channel::Whatsapp, &form)
                            .await?;
                    }
                }
                return Ok(done);
            }
        }
        Err(SaveError::Contention(format!("WhatsApp contact of account {}", at.account_id)).into())
    }
}

/// The account and business number an item arrived through.
struct Place<'a> {
    account_id: &'a str,
    phone_number_id: &'a str,
}

/// The contact entry of the message's sender, for the profile name.
fn profile_of<'a>(message: &Message, contacts: &'a [WaContact]) -> Option<&'a WaContact> {
    let from = message.from.get();
    let from_user = message.from_user_id.get();
    contacts
        .iter()
        .find(|c| {
            (from.is_some() && c.wa_id.get() == from)
                || (from_user.is_some() && c.user_id.get() == from_user)
        })
        .or(match contacts {
            [only] => Some(only),
            _ => None,
        })
}

/// The time of a webhook item as consent stores it (now, when it has none).
fn consent_time(timestamp: Integer) -> String {
    timestamp
        .0
        .and_then(consent_time_from_unix)
        .unwrap_or_else(|| rfc3339(now()))
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

/// The write that points `alias` at the contact keyed `to`, if it still names the one
/// it named when read.
fn repointed(alias: Alias, to: &str) -> IdentityWrite {
    let named = alias.contact_key.clone();
    IdentityWrite::Alias(
        Alias {
            contact_key: to.to_string(),
            ..alias
        },
        Some(named),
    )
}

/// `next` as a write after `current`: stamped, one version on.
fn touched(mut next: Contact, current: &Contact, stamp: &WriteStamp) -> Contact {
    next.version = current.version;
    next.touch(stamp);
    next
}

/// `other` (a BSUID-only contact, or the old number's) merged into `contact` by
/// DESIGN section 9's rules: `contact`'s values stand, `other`'s fill the gaps; lists
/// and tags are joined; consent keeps the newer word, and a user's own opt-out stands
/// until the user undoes it; a block anywhere is a block.
fn merge_into(contact: &Contact, other: &Contact) -> Contact {
    let mut merged = contact.clone();
    for (field, value) in &other.text {
        merged
            .text
            .entry(field.clone())
            .or_insert_with(|| value.clone());
    }
    merged.lists.extend(other.lists.iter().cloned());
    merged.tags.extend(other.tags.iter().cloned());
    merged.user_ids.extend(other.user_ids.iter().cloned());
    for (name, value) in &other.attrs {
        merged
            .attrs
            .entry(name.clone())
            .or_insert_with(|| value.clone());
    }
    merged.whatsapp_opted = merged.whatsapp_opted.or(other.whatsapp_opted);
    merged.anonymous = contact.anonymous && other.anonymous;
    if other.status == ContactStatus::Blocked {
        merged.status = ContactStatus::Blocked;
    }
    merged.created_at = contact.created_at.clone().min(other.created_at.clone());
    merged.last_inbound_at = contact
        .last_inbound_at
        .clone()
        .max(other.last_inbound_at.clone());
    merged.whatsapp_reachable = merged.whatsapp_reachable.or(other.whatsapp_reachable);
    for (category, entry) in &other.consent {
        merged.apply_consent(&Signal {
            category: *category,
            state: entry.state,
            at: entry.at.clone(),
            source: entry.source,
            scope: entry.scope.clone(),
            evidence: entry.evidence.clone(),
        });
    }
    merged
}

impl WebhookAnswer {
    fn count_message(&mut self, done: Done) {
        *match done {
            Done::Created => &mut self.contacts_created,
            Done::Updated => &mut self.contacts_updated,
            Done::Unchanged => &mut self.messages_unchanged,
            Done::Skipped => &mut self.ignored,
        } += 1;
    }

    fn count_status(&mut self, done: Done) {
        *match done {
            Done::Created | Done::Updated => &mut self.statuses_applied,
            Done::Unchanged | Done::Skipped => &mut self.statuses_without_effect,
        } += 1;
    }

    fn count_preference(&mut self, done: Done) {
        *match done {
            Done::Created | Done::Updated => &mut self.preferences_applied,
            Done::Unchanged | Done::Skipped => &mut self.preferences_without_effect,
        } += 1;
    }

    fn count_identity(&mut self, done: Done) {
        *match done {
            Done::Created | Done::Updated => &mut self.identity_changes,
            Done::Unchanged | Done::Skipped => &mut self.ignored,
        } += 1;
    }
}

#[cfg(test)]
#[path = "webhook_tests.rs"]
mod tests;
