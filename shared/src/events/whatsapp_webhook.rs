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
    self, Integer, Item, Message, Status, Unreadable, UserIdUpdate, UserPreference, Value,
    WaContact, Webhook,
};
use super::{now, rfc3339, stamp};
use crate::book::identity::{Done, Effect, WaUser, WhatsappIdentities};
use crate::book::Tombstones;
use crate::config::Config;
use crate::domain::capacity::Consumed;
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

/// Handles every item of a webhook body, each on its own: an item that cannot be read
/// is counted and logged (`invalid_item`, by where it is, never what it holds); a store
/// failure of one item does not keep the next ones from being applied, and the body
/// fails at the end with the first such error, so that it is delivered again (what was
/// applied changes nothing the second time: the ledger, and the items' own times).
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
    let mut spent = Spent::default();
    let applied = apply(contacts, ledger, config, read(&webhook), &mut spent).await;
    spent.emit();
    let answer = applied?;
    // Once per body applied: a body that fails is counted when it succeeds.
    emit_body_metrics([&answer]);
    Ok(answer)
}

/// What items spent, by item type: their own requests' capacity and how many items
/// there were, reported as one EMF line per type ([`Spent::emit`]) for a body or a
/// whole queue batch, not a line per item (statuses come by the thousand a second).
#[derive(Debug, Default)]
pub(super) struct Spent(std::collections::BTreeMap<&'static str, (Consumed, u64)>);

impl Spent {
    /// Adds one item of `kind` that consumed `consumed`.
    fn add(&mut self, kind: ItemKind, consumed: Consumed) {
        let (total, items) = self.0.entry(kind.event_type()).or_default();
        *total = total.plus(&consumed);
        *items += 1;
    }

    /// One EMF line per item type: `EventWriteUnits`, `EventReadUnits` and
    /// `EventRequests` summed over `EventItems` items.
    pub(super) fn emit(&self) {
        for (event_type, (spent, items)) in &self.0 {
            let spent = spent.rounded();
            crate::metrics::emit(&crate::metrics::emf_line(
                &[("Function", "contact-events"), ("EventType", event_type)],
                &[
                    ("EventWriteUnits", spent.write_units, "Count"),
                    ("EventReadUnits", spent.read_units, "Count"),
                    ("EventRequests", spent.requests as f64, "Count"),
                    ("EventItems", *items as f64, "Count"),
                ],
                &[],
                crate::metrics::now_ms(),
            ));
        }
    }
}

/// A webhook body as read: the values of the changes whose items the book applies,
/// each with where it is, and the counts of what was not read (unreadable entries and
/// changes, other fields).
#[derive(Debug, Default)]
pub(super) struct Body {
    changes: Vec<(String, Value)>,
    answer: WebhookAnswer,
}

/// Reads every change of `webhook`; what cannot be read is counted and logged here.
pub(super) fn read(webhook: &Webhook) -> Body {
    let mut body = Body::default();
    for (e, entry) in webhook.entry.0.iter().enumerate() {
        let entry = match entry {
            Item::Read(entry) => entry,
            Item::Unreadable(why) => {
                body.answer
                    .invalid(&format!("entry[{e}]"), &why.to_string());
                continue;
            }
        };
        for (c, change) in entry.changes.0.iter().enumerate() {
            let at = format!("entry[{e}].changes[{c}]");
            let change = match change {
                Item::Read(change) => change,
                Item::Unreadable(why) => {
                    body.answer.invalid(&at, &why.to_string());
                    continue;
                }
            };
            let field = change.field.get().unwrap_or("messages");
            if !APPLIED_FIELDS.contains(&field) {
                // `message_template_status_update`, `account_update`, ...: acknowledged.
                body.answer.other_fields += 1;
                tracing::info!(
                    field,
                    "webhook change of a field the contact book does not use"
                );
                continue;
            }
            match change.read_value() {
                Ok(value) => body.changes.push((at, value)),
                Err(why) => body
                    .answer
                    .invalid(&unreadable_at(&format!("{at}.value"), &why), why.problem),
            }
        }
    }
    body
}

/// The people a body's items name by number, with the business number each arrived
/// through: `(phone_number_id, wa_id)`, for reading them all at once
/// ([`crate::book::Deferred::prefetch`]).
pub(super) fn numbers_named(body: &Body) -> impl Iterator<Item = (&str, &str)> {
    body.changes.iter().flat_map(|(_, value)| {
        let pnid = value.metadata.phone_number_id.get();
        let messages = value
            .messages
            .read()
            .map(|m| m.from.get())
            .chain(value.contacts.read().map(|c| c.wa_id.get()));
        let statuses = value.statuses.read().map(|s| s.recipient_id.get());
        let preferences = value.user_preferences.read().map(|p| p.wa_id.get());
        messages
            .chain(statuses)
            .chain(preferences)
            .filter_map(move |wa_id| Some((pnid?, wa_id?)))
    })
}

/// The event keys of a body's messages, with the business number each arrived
/// through: `(phone_number_id, key)`, for recording them all at once
/// ([`crate::book::Deferred::record_ahead`]).
pub(super) fn message_events(body: &Body) -> impl Iterator<Item = (&str, String)> {
    body.changes.iter().flat_map(|(_, value)| {
        let pnid = value.metadata.phone_number_id.get();
        value.messages.read().filter_map(move |m| {
            let named = m.from.get().is_some() || m.from_user_id.get().is_some();
            let wamid = m.id.get().filter(|_| named && m.group_id.get().is_none())?;
            Some((pnid?, message_key(wamid)))
        })
    })
}

/// The event key of message `wamid` (once per `wamid`).
fn message_key(wamid: &str) -> String {
    format!("msg:{wamid}")
}

/// Applies every item of a read body ([`read`]), each on its own; the first store
/// failure is returned once all were tried.
pub(super) async fn apply<C, L>(
    contacts: &C,
    ledger: &L,
    config: &Config,
    body: Body,
    spent: &mut Spent,
) -> Result<WebhookAnswer, EventError>
where
    C: ContactStore + Identities + Suppressions + CapacityMeter,
    L: EventLedger,
{
    let Body {
        changes,
        mut answer,
    } = body;
    let mut failed = None;
    for (at, value) in changes {
        let result = handle_change(contacts, ledger, config, value, &at, &mut answer, spent);
        if let Err(e) = Box::pin(result).await {
            tracing::warn!(
                error_type = e.error_type(),
                at,
                "webhook change failed; the body will be retried"
            );
            failed.get_or_insert(e);
        }
    }
    // Its counts go out as metrics (`emit_body_metrics`); a line per body is for debugging.
    tracing::debug!(?answer, "webhook handled");
    match failed {
        Some(e) => Err(e),
        None => Ok(answer),
    }
}

/// One EMF line for a body, or a queue batch's bodies together: their items by what
/// became of them, so that unreadable items and other fields are seen (and alarmed on)
/// without reading logs.
pub(super) fn emit_body_metrics<'a>(answers: impl IntoIterator<Item = &'a WebhookAnswer>) {
    let mut answer = WebhookAnswer::default();
    let mut applied = 0;
    let mut bodies = 0;
    for a in answers {
        bodies += 1;
        applied += a.contacts_created
            + a.contacts_updated
            + a.messages_unchanged
            + a.statuses_applied
            + a.statuses_without_effect
            + a.preferences_applied
            + a.preferences_without_effect
            + a.identity_changes
            + a.ignored;
        answer.invalid_items += a.invalid_items;
        answer.other_fields += a.other_fields;
        answer.unknown_phone_number_id += a.unknown_phone_number_id;
    }
    if bodies == 0 {
        return;
    }
    crate::metrics::emit(&crate::metrics::emf_line(
        &[
            ("Function", "contact-events"),
            ("EventType", "whatsapp.webhook"),
        ],
        &[
            ("WebhookItemsApplied", applied as f64, "Count"),
            ("WebhookInvalidItems", answer.invalid_items as f64, "Count"),
            ("WebhookOtherFields", answer.other_fields as f64, "Count"),
            (
                "WebhookUnknownNumberItems",
                answer.unknown_phone_number_id as f64,
                "Count",
            ),
        ],
        &[],
        crate::metrics::now_ms(),
    ));
}

/// The webhook fields whose items change contacts; changes of any other field are
/// acknowledged and counted (`other_fields`).
const APPLIED_FIELDS: [&str; 3] = ["messages", "user_preferences", "user_id_update"];

/// The items of one change (`at`: where it is in the body), all from one business
/// number. Every item is tried; the first store failure is returned at the end.
async fn handle_change<C, L>(
    contacts: &C,
    ledger: &L,
    config: &Config,
    value: Value,
    at: &str,
    answer: &mut WebhookAnswer,
    spent: &mut Spent,
) -> Result<(), EventError>
where
    C: ContactStore + Identities + Suppressions + CapacityMeter,
    L: EventLedger,
{
    let items = value.messages.len()
        + value.statuses.len()
        + value.user_preferences.len()
        + value.user_id_update.len()
        + value
            .contacts
            .read()
            .filter(|c| c.user_id_update.is_some())
            .count();
    if items == 0 {
        return Ok(());
    }
    let Some(phone_number_id) = value.metadata.phone_number_id.get() else {
        answer.invalid_items += items as u64;
        tracing::warn!(
            event = "invalid_item",
            at,
            items,
            "webhook change without `metadata.phone_number_id`: its items cannot be applied"
        );
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
    let people: Vec<WaContact> = value.contacts.read().cloned().collect();
    for (i, contact) in value.contacts.0.iter().enumerate() {
        if let Item::Unreadable(why) = contact {
            // Its messages are still applied (the sender is in the message), without
            // the profile name or a BSUID change it may have carried.
            answer.invalid(
                &unreadable_at(&format!("{at}.value.contacts[{i}]"), why),
                why.problem,
            );
        }
    }
    let mut tally = Tally {
        answer,
        spent,
        failed: None,
    };
    let place = |name: &str| format!("{at}.value.{name}");
    let (kind, list) = (ItemKind::Message, &value.messages);
    each(contacts, &mut tally, &place("messages"), kind, list, |m| {
        items.message(m, &people)
    })
    .await;
    let (kind, list) = (ItemKind::Status, &value.statuses);
    each(contacts, &mut tally, &place("statuses"), kind, list, |s| {
        items.status(s)
    })
    .await;
    let (kind, list) = (ItemKind::Preference, &value.user_preferences);
    each(
        contacts,
        &mut tally,
        &place("user_preferences"),
        kind,
        list,
        |p| items.preference(p),
    )
    .await;
    let (kind, list) = (ItemKind::Identity, &value.user_id_update);
    each(
        contacts,
        &mut tally,
        &place("user_id_update"),
        kind,
        list,
        |u| items.user_id_update(u),
    )
    .await;
    let with_contacts = people.iter().filter_map(|c| c.user_id_update.as_ref());
    for (i, update) in with_contacts.enumerate() {
        let path = format!("{at}.value.contacts[{i}].user_id_update");
        let done = items.user_id_update(update);
        let before = contacts.consumed();
        let result = done.await;
        tally
            .spent
            .add(ItemKind::Identity, contacts.consumed().since(&before));
        tally.settle(ItemKind::Identity, path, result);
    }
    match tally.failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Applies each element of `list` (at `{at}[i]`) with `apply`, metered as `kind`; an
/// element that cannot be read is counted invalid. What became of each goes to `tally`.
async fn each<'a, T, M, F, Fut>(
    meter: &M,
    tally: &mut Tally<'_>,
    at: &str,
    kind: ItemKind,
    list: &'a meta::Items<T>,
    apply: F,
) where
    M: CapacityMeter,
    F: Fn(&'a T) -> Fut,
    Fut: std::future::Future<Output = Result<Outcome, EventError>>,
{
    for (i, item) in list.0.iter().enumerate() {
        let result = match item {
            Item::Read(read) => {
                let before = meter.consumed();
                let result = apply(read).await;
                tally.spent.add(kind, meter.consumed().since(&before));
                result
            }
            Item::Unreadable(why) => Ok(Outcome::Invalid(why.problem)),
        };
        tally.settle(kind, unreadable_path(format!("{at}[{i}]"), item), result);
    }
}

/// What a change's items did: the answer's counts, what they spent, and the first
/// store failure.
struct Tally<'a> {
    answer: &'a mut WebhookAnswer,
    spent: &'a mut Spent,
    failed: Option<EventError>,
}

impl Tally<'_> {
    /// Counts one item's `result` (at `path`); a failure is logged and the first one kept.
    fn settle(&mut self, kind: ItemKind, path: String, result: Result<Outcome, EventError>) {
        match result {
            Ok(Outcome::Applied(done)) => self.answer.count(kind, done),
            Ok(Outcome::Invalid(problem)) => self.answer.invalid(&path, problem),
            Err(e) => {
                tracing::warn!(
                    error_type = e.error_type(),
                    at = path,
                    "webhook item failed"
                );
                self.failed.get_or_insert(e);
            }
        }
    }
}

/// The path an unreadable item is logged under: the item's, plus the field that failed.
fn unreadable_path<T>(path: String, item: &Item<T>) -> String {
    match item {
        Item::Unreadable(why) => unreadable_at(&path, why),
        Item::Read(_) => path,
    }
}

/// `path`, plus the field inside it that failed.
fn unreadable_at(path: &str, why: &Unreadable) -> String {
    if why.field.is_empty() {
        path.to_string()
    } else {
        format!("{path}.{}", why.field)
    }
}

/// What became of one item.
#[derive(Debug)]
enum Outcome {
    /// Applied (or ignored: [`Done::Skipped`]).
    Applied(Done),
    /// It cannot be read: what is wrong with it, without its values.
    Invalid(&'static str),
}

impl From<Done> for Outcome {
    fn from(done: Done) -> Outcome {
        Outcome::Applied(done)
    }
}

/// The kinds of item a change carries, as they are counted.
#[derive(Clone, Copy)]
enum ItemKind {
    Message,
    Status,
    Preference,
    Identity,
}

impl ItemKind {
    /// The `EventType` its capacity is reported under.
    fn event_type(self) -> &'static str {
        match self {
            ItemKind::Message => "whatsapp.message",
            ItemKind::Status => "whatsapp.status",
            ItemKind::Preference => "whatsapp.preference",
            ItemKind::Identity => "whatsapp.user_id_update",
        }
    }
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
    async fn message(
        &self,
        message: &Message,
        contacts: &[WaContact],
    ) -> Result<Outcome, EventError> {
        let Some(wamid) = message.id.get() else {
            return Ok(Outcome::Invalid("has no `id`"));
        };
        if message.group_id.get().is_some() {
            // A group conversation is not the person writing to the business.
            return Ok(Done::Skipped.into());
        }
        let key = message_key(wamid);
        let system_kind = message.system.as_ref().and_then(|s| s.kind.get());
        if let Some(kind @ ("user_changed_user_id" | "user_changed_number")) = system_kind {
            return self
                .once
                .run(self.account_id, &key, || self.system_message(kind, message))
                .await
                .map(Outcome::from);
        }
        let profile = profile_of(message, contacts);
        let user = sender(message, profile);
        if user.is_empty() {
            return Ok(Outcome::Invalid("names no sender (`from`, `from_user_id`)"));
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
            .map(Outcome::from)
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
            let (Some(previous), Some(current)) = (update.previous.get(), update.current.get())
            else {
                return Ok(Done::Skipped);
            };
            let stamp = stamp(Source::Inbound, None);
            return Ok(self
                .book
                .change_user_id(previous, current, update.wa_id.get(), &stamp)
                .await?);
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
    async fn status(&self, status: &Status) -> Result<Outcome, EventError> {
        let Some(wamid) = status.id.get() else {
            return Ok(Outcome::Invalid("has no `id`"));
        };
        let Some(state) = status.status.get() else {
            return Ok(Outcome::Invalid("has no `status`"));
        };
        if status.recipient_type.get() == Some("group") {
            return Ok(Done::Skipped.into());
        }
        let user = WaUser::new(status.recipient_id.get(), status.recipient_user_id.get());
        if user.is_empty() {
            return Ok(Outcome::Invalid(
                "names no recipient (`recipient_id`, `recipient_user_id`)",
            ));
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
        Ok(self.book.apply(&user, &effect, &stamp).await?.into())
    }

    /// A user's marketing preference: the user's own word, applied by the consent
    /// rules (an older one than the stored changes nothing). A stop from someone not
    /// in the book creates their contact, so that no import opts them in again.
    async fn preference(&self, preference: &UserPreference) -> Result<Outcome, EventError> {
        let state = match preference
            .value
            .get()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("stop") => State::OptedOut,
            Some("resume") => State::OptedIn,
            _ => return Ok(Outcome::Invalid("has a `value` other than stop or resume")),
        };
        if preference
            .category
            .get()
            .is_some_and(|c| c != "marketing_messages")
        {
            // Another category Meta may add: not marketing consent, not ours to apply.
            return Ok(Done::Skipped.into());
        }
        let user = WaUser::new(preference.wa_id.get(), preference.user_id.get());
        if user.is_empty() {
            return Ok(Outcome::Invalid("names no user (`wa_id`, `user_id`)"));
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
        Ok(self.book.apply(&user, &effect, &stamp).await?.into())
    }

    /// A user's BSUID changed: the alias moves to the new one (the contact keeps its
    /// key), and a contact that stored the old one stores the new one.
    async fn user_id_update(&self, update: &UserIdUpdate) -> Result<Outcome, EventError> {
        let (Some(previous), Some(current)) = (update.previous.get(), update.current.get()) else {
            return Ok(Outcome::Invalid("needs both `previous` and `current`"));
        };
        let stamp = stamp(Source::Inbound, None);
        Ok(self
            .book
            .change_user_id(previous, current, update.wa_id.get(), &stamp)
            .await?
            .into())
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
    /// Counts an item that cannot be read and logs where it is and what is wrong (field
    /// names only: the item's values are personal data).
    fn invalid(&mut self, at: &str, problem: &str) {
        self.invalid_items += 1;
        tracing::warn!(
            event = "invalid_item",
            at,
            problem,
            "webhook item cannot be read; the others are applied"
        );
    }

    fn count(&mut self, kind: ItemKind, done: Done) {
        let applied = matches!(done, Done::Created | Done::Updated);
        *match (kind, done) {
            (ItemKind::Message, Done::Created) => &mut self.contacts_created,
            (ItemKind::Message, Done::Updated) => &mut self.contacts_updated,
            (ItemKind::Message, Done::Unchanged) => &mut self.messages_unchanged,
            (ItemKind::Status, _) if applied => &mut self.statuses_applied,
            (ItemKind::Status, _) => &mut self.statuses_without_effect,
            (ItemKind::Preference, _) if applied => &mut self.preferences_applied,
            (ItemKind::Preference, _) => &mut self.preferences_without_effect,
            (ItemKind::Identity, _) if applied => &mut self.identity_changes,
            (ItemKind::Message | ItemKind::Identity, _) => &mut self.ignored,
        } += 1;
    }
}

#[cfg(test)]
#[path = "whatsapp_webhook_tests.rs"]
mod tests;
