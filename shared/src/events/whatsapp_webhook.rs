//! Meta's WhatsApp webhooks (DESIGN section 13): every entry x change x item of a body,
//! each item checked and handed to the book's [`WhatsappIdentities`], which finds the
//! person and makes the writes.
//!
//! - The account comes from the business number (`metadata.phone_number_id`); an
//!   unknown number writes nothing and is counted.
//! - Messages follow `message.inbound`'s rules ([`Inbound`]), once per `wamid`;
//!   statuses never create a contact, once per `wamid` + status; `user_preferences`
//!   feed the consent ledger, whose rules make a redelivery change nothing; system
//!   messages change a person's number or BSUID.

use super::answer::WebhookAnswer;
use super::error::EventError;
use super::ledger::Once;
use super::meta::{
    Integer, Message, Status, UserIdUpdate, UserPreference, Value, WaContact, Webhook,
};
use super::{metered, now, rfc3339, stamp};
use crate::book::identity::{Done, Effect, WaUser, WhatsappIdentities};
use crate::book::Tombstones;
use crate::config::Config;
use crate::domain::channel::Channel;
use crate::domain::cleaning::truncate_chars;
use crate::domain::consent::{consent_time_from_unix, Category, ConsentSource, Signal, State};
use crate::domain::contact::{Contact, Source, Status as ContactStatus};
use crate::domain::inbound::Inbound;
use crate::domain::validate::is_valid_name;
use crate::ports::{CapacityMeter, ContactStore, EventLedger, Identities, Suppressions};

/// Meta's error: the message could not be delivered (not on WhatsApp, terms not
/// accepted, an old app).
const UNDELIVERABLE: i64 = 131_026;
/// Meta's error: the user stopped marketing messages from the business.
const MARKETING_STOPPED: i64 = 131_050;

/// Handles every item of a webhook body.
pub(super) async fn handle<C, L>(
    contacts: &C,
    ledger: &L,
    config: &Config,
    webhook: Webhook,
) -> Result<WebhookAnswer, EventError>
where
    C: ContactStore + Identities + Suppressions + CapacityMeter,
    L: EventLedger,
{
    let mut answer = WebhookAnswer::default();
    for entry in webhook.entry {
        for change in entry.changes {
            handle_change(contacts, ledger, config, change.value, &mut answer).await?;
        }
    }
    tracing::info!(?answer, "webhook handled");
    Ok(answer)
}

/// The items of one change, all from one business number.
async fn handle_change<C, L>(
    contacts: &C,
    ledger: &L,
    config: &Config,
    value: Value,
    answer: &mut WebhookAnswer,
) -> Result<(), EventError>
where
    C: ContactStore + Identities + Suppressions + CapacityMeter,
    L: EventLedger,
{
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
    let Some(account_id) = contacts.account_of_number(phone_number_id).await? else {
        answer.unknown_phone_number_id += items as u64;
        tracing::warn!(
            phone_number_id,
            items,
            "webhook for a business number no account has (WABA item missing); nothing written"
        );
        return Ok(());
    };
    let tombstones = Tombstones::new(contacts, config.suppression.as_ref());
    let items = Items {
        book: WhatsappIdentities::new(contacts, tombstones, &account_id, phone_number_id),
        once: Once::new(ledger, config),
        account_id: &account_id,
        phone_number_id,
    };
    for message in &value.messages {
        let done = metered(
            contacts,
            "whatsapp.message",
            items.message(message, &value.contacts),
        );
        answer.count_message(done.await?);
    }
    for status in &value.statuses {
        answer.count_status(metered(contacts, "whatsapp.status", items.status(status)).await?);
    }
    for preference in &value.user_preferences {
        let done = metered(
            contacts,
            "whatsapp.preference",
            items.preference(preference),
        );
        answer.count_preference(done.await?);
    }
    let updates = value.user_id_update.0.iter().chain(
        value
            .contacts
            .iter()
            .filter_map(|c| c.user_id_update.as_ref()),
    );
    for update in updates {
        let done = metered(
            contacts,
            "whatsapp.user_id_update",
            items.user_id_update(update),
        );
        answer.count_identity(done.await?);
    }
    Ok(())
}

/// The items arriving through one business number of an account.
struct Items<'a, C, L> {
    book: WhatsappIdentities<'a, C>,
    once: Once<'a, L>,
    account_id: &'a str,
    phone_number_id: &'a str,
}

impl<C, L> Items<'_, C, L>
where
    C: ContactStore + Identities + Suppressions + CapacityMeter,
    L: EventLedger,
{
    /// A message: the sender writes to the business (`message.inbound`'s rules).
    async fn message(&self, message: &Message, contacts: &[WaContact]) -> Result<Done, EventError> {
        let Some(wamid) = message.id.get() else {
            return Ok(Done::Skipped);
        };
        if message.group_id.get().is_some() {
            // A group conversation is not the person writing to the business.
            return Ok(Done::Skipped);
        }
        let key = format!("msg:{wamid}");
        let system_kind = message.system.as_ref().and_then(|s| s.kind.get());
        if let Some(kind @ ("user_changed_user_id" | "user_changed_number")) = system_kind {
            return self
                .once
                .run(self.account_id, &key, || self.system_message(kind, message))
                .await;
        }
        let profile = profile_of(message, contacts);
        let user = sender(message, profile);
        if user.is_empty() {
            return Ok(Done::Skipped);
        }
        let inbound = Inbound {
            account_id: self.account_id.to_string(),
            channel: Channel::Whatsapp,
            message_id: wamid.to_string(),
            phone: String::new(),
            received_at: message
                .timestamp
                .rfc3339()
                .unwrap_or_else(|| rfc3339(now())),
            name: profile
                .and_then(|c| c.profile.name.get())
                .map(|n| truncate_chars(n, 101).to_string())
                .filter(|n| is_valid_name(n)),
            first_name: None,
            last_name: None,
            keyword: None,
        };
        let stamp = stamp(Source::Inbound, None);
        let at = |key: &str| Inbound {
            phone: key.to_string(),
            ..inbound.clone()
        };
        let create = |key: &str| {
            let mut contact = at(key).new_contact(&stamp);
            contact.set_reachable(true, &inbound.received_at);
            contact
        };
        let change = |current: &Contact| {
            let (_, next) = at(&current.phone).merge(current, &stamp);
            let mut next = next.unwrap_or_else(|| current.clone());
            if current.status != ContactStatus::Blocked {
                next.set_reachable(true, &inbound.received_at);
            }
            (next != *current).then(|| current.touched_after(next, &stamp))
        };
        let effect = Effect {
            create: Some(&create),
            change: &change,
            own_message: true,
        };
        self.once
            .run(self.account_id, &key, || async {
                Ok(self.book.apply(&user, &effect, &stamp).await?)
            })
            .await
    }

    /// A system message: the person changed their BSUID or their number.
    async fn system_message(&self, kind: &str, message: &Message) -> Result<Done, EventError> {
        let system = message.system.clone().unwrap_or_default();
        if kind == "user_changed_user_id" {
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
            return self.user_id_update(&update).await;
        }
        // `user_changed_number`: the WhatsApp contact moves to the new number (never
        // the SMS or voice one: the old number may be recycled).
        let Some(new_wa_id) = system.new_wa_id.get().or(system.wa_id.get()) else {
            return Ok(Done::Skipped);
        };
        let old = WaUser::new(message.from.get(), message.from_user_id.get());
        let stamp = stamp(Source::Inbound, None);
        Ok(self.book.change_number(&old, new_wa_id, &stamp).await?)
    }

    /// A status: what became of a message the business sent. Never creates a contact.
    async fn status(&self, status: &Status) -> Result<Done, EventError> {
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
        let reachable = match state {
            "delivered" | "read" => Some(true),
            "failed" if codes.contains(&UNDELIVERABLE) => Some(false),
            _ => None,
        };
        let stop = (state == "failed" && codes.contains(&MARKETING_STOPPED)).then(|| Signal {
            category: Category::Marketing,
            state: State::OptedOut,
            at: consent_time(status.timestamp),
            source: ConsentSource::Status131050,
            scope: Some(self.phone_number_id.to_string()),
            evidence: wamid.to_string(),
        });
        let stamp = stamp(Source::Inbound, None);
        let sent_at = status.timestamp.rfc3339().unwrap_or_else(|| rfc3339(now()));
        let change = |current: &Contact| {
            let mut next = current.clone();
            if let Some(reachable) = reachable {
                next.set_reachable(reachable, &sent_at);
            }
            if let Some(signal) = &stop {
                next.apply_consent(signal);
            }
            (next != *current).then(|| current.touched_after(next, &stamp))
        };
        let effect = Effect {
            create: None,
            change: &change,
            own_message: false,
        };
        // No ledger: a status's effects are idempotent by its own time (reachability
        // and consent take the newer signal only), so a redelivery changes nothing and
        // a status that changes nothing writes nothing (statuses are most of Meta's
        // traffic; a ledger item each would be two writes per status).
        Ok(self.book.apply(&user, &effect, &stamp).await?)
    }

    /// A user's marketing preference: the user's own word, applied by the consent
    /// rules (an older one than the stored changes nothing). A stop from someone not
    /// in the book creates their contact, so that no import opts them in again.
    async fn preference(&self, preference: &UserPreference) -> Result<Done, EventError> {
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
            scope: Some(self.phone_number_id.to_string()),
            evidence: format!(
                "user_preferences {} at {time}",
                preference.value.get().unwrap_or_default()
            ),
        };
        let stamp = stamp(Source::Inbound, None);
        let create = |key: &str| {
            let inbound = Inbound {
                account_id: self.account_id.to_string(),
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
            (next != *current).then(|| current.touched_after(next, &stamp))
        };
        let create: &(dyn Fn(&str) -> Contact + Sync) = &create;
        let effect = Effect {
            create: (state == State::OptedOut).then_some(create),
            change: &change,
            own_message: false,
        };
        Ok(self.book.apply(&user, &effect, &stamp).await?)
    }

    /// A user's BSUID changed: the alias moves to the new one (the contact keeps its
    /// key), and a contact that stored the old one stores the new one.
    async fn user_id_update(&self, update: &UserIdUpdate) -> Result<Done, EventError> {
        let (Some(previous), Some(current)) = (update.previous.get(), update.current.get()) else {
            return Ok(Done::Skipped);
        };
        let stamp = stamp(Source::Inbound, None);
        Ok(self
            .book
            .change_user_id(previous, current, update.wa_id.get(), &stamp)
            .await?)
    }
}

/// Who sent a message: its `from` and `from_user_id`, else the sender's contact entry;
/// a number the user shared on request reveals who they are.
fn sender(message: &Message, profile: Option<&WaContact>) -> WaUser {
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
    user
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
#[path = "whatsapp_webhook_tests.rs"]
mod tests;
