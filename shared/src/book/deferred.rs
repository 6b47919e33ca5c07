//! One queue batch's view of the book (DESIGN section 13): the people the batch names
//! read at once, and each item's single-contact write held back and sent with the
//! others, so that a batch costs a few requests instead of a few per item.
//!
//! - [`Deferred::prefetch`] reads many keys in one batch read; later look-ups of those
//!   keys are answered from it, and from the writes held since.
//! - A write of one contact alone ([`Identities::write_identity`] with one
//!   [`IdentityWrite::Contact`]) is held, and answered written: the next item sees it.
//!   Two held writes of one contact become one, under the first one's precondition.
//!   Anything else (a merge's transaction, an erasure, a tombstone lifted) first sends
//!   what is held, then goes to the store as it is, and forgets what it touched.
//! - [`Deferred::flush`] sends the held writes together ([`ContactStore::write_contacts`]:
//!   conditional, each on its own, at a single write's price). A write refused (someone
//!   else wrote first) or not made marks every unit of work that wrote or read it: the
//!   caller applies those units again against the store itself.
//! - Tombstones lifted by a person's first message ([`Suppressions::lift_suppressions`])
//!   are held too, and lifted together after the held writes, for the units whose
//!   writes were made: one look-up for the batch instead of one per new person.
//! - An event ledger's answers ([`EventLedger::store_answer`]) are held until
//!   [`Deferred::finish`], and stored only for the units whose writes were all made: an
//!   answer must never be recorded for work that did not happen.
//!
//! A `Deferred` belongs to one invocation, whose units (queue records) run one after
//! another ([`Deferred::begin`] names the current one).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::domain::capacity::Consumed;
use crate::domain::channel::Channel;
use crate::domain::contact::Contact;
use crate::ports::{
    Alias, Applied, CapacityMeter, ContactStore, EventLedger, Identities, IdentityWrite,
    LedgerEntry, Precondition, PutOutcome, StoreError, Suppressions, MAX_CONTACTS_PER_CALL,
};

/// A contact item's key: account, channel, key part (an E.164 number or `bsuid:` key).
type ContactKey = (String, Channel, String);

/// A held write of one contact, and the units whose outcome depends on it.
struct Held {
    contact: Contact,
    precondition: Precondition,
    units: BTreeSet<usize>,
}

#[derive(Default)]
struct State {
    /// Contacts known in this batch (read, or held): `None` when known absent.
    contacts: HashMap<ContactKey, Option<Contact>>,
    /// Aliases read in this batch, by (account, user id): `None` when known absent.
    aliases: HashMap<(String, String), Option<Alias>>,
    /// Held writes, by key.
    held: HashMap<ContactKey, Held>,
    /// Held ledger answers, each with its unit, in the order given.
    answers: Vec<(usize, LedgerEntry)>,
    /// Events recorded ahead ([`Deferred::record_ahead`]), by (account, key): the
    /// answer recorded before, until an item asks; then pending, for a second ask.
    recorded: HashMap<(String, String), Option<String>>,
    /// The unit of work running now.
    unit: usize,
    /// Units one of whose writes was refused or not made.
    failed: BTreeSet<usize>,
    /// Tombstones to lift once the held writes are made, each with its unit: by
    /// (account, channel), their digests.
    lifts: Vec<(usize, String, Channel, Vec<String>)>,
}

/// A batch's view of `store` and `ledger` (see the module's documentation).
pub struct Deferred<'a, S, L> {
    store: &'a S,
    ledger: &'a L,
    state: Mutex<State>,
}

impl<'a, S, L> Deferred<'a, S, L>
where
    S: ContactStore + Identities + Suppressions + CapacityMeter,
    L: EventLedger,
{
    /// An empty view of `store` and `ledger`.
    pub fn new(store: &'a S, ledger: &'a L) -> Self {
        Deferred {
            store,
            ledger,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The next writes and reads are unit `unit`'s.
    pub fn begin(&self, unit: usize) {
        self.state().unit = unit;
    }

    /// Reads `keys` of `account_id`'s `channel` contacts (those not known yet), a batch
    /// read per [`MAX_CONTACTS_PER_CALL`]: later look-ups of them cost nothing.
    pub async fn prefetch(
        &self,
        account_id: &str,
        channel: Channel,
        keys: &[String],
    ) -> Result<(), StoreError> {
        let unknown: Vec<String> = {
            let state = self.state();
            let mut seen = BTreeSet::new();
            keys.iter()
                .filter(|k| !state.contacts.contains_key(&key(account_id, channel, k)))
                .filter(|k| seen.insert(k.as_str()))
                .cloned()
                .collect()
        };
        for chunk in unknown.chunks(MAX_CONTACTS_PER_CALL) {
            let found = self
                .store
                .contacts_by_keys(account_id, channel, chunk)
                .await?;
            let mut state = self.state();
            for k in chunk {
                let contact = found.iter().find(|c| &c.phone == k).cloned();
                state
                    .contacts
                    .entry(key(account_id, channel, k))
                    .or_insert(contact);
            }
        }
        Ok(())
    }

    /// Sends the held writes. Each unit that wrote or read one that was refused or not
    /// made is marked failed ([`Deferred::finish`] names them); the contacts written
    /// stay known, the others are read again when next asked for.
    pub async fn flush(&self) {
        let held: Vec<(ContactKey, Held)> = self.state().held.drain().collect();
        for chunk in held.chunks(MAX_CONTACTS_PER_CALL) {
            let writes: Vec<(Contact, Precondition)> = chunk
                .iter()
                .map(|(_, h)| (h.contact.clone(), h.precondition))
                .collect();
            let answers = self.store.write_contacts(&writes).await;
            let mut state = self.state();
            for (i, (key, held)) in chunk.iter().enumerate() {
                let written = match &answers {
                    Ok(answers) => matches!(answers.get(i), Some(Applied::Written)),
                    Err(e) => {
                        if i == 0 {
                            tracing::warn!(error = %e, writes = chunk.len(), "held contact writes could not be sent; their items are applied again");
                        }
                        false
                    }
                };
                if !written {
                    state.failed.extend(held.units.iter().copied());
                    state.contacts.remove(key);
                }
            }
        }
        self.lift_held().await;
    }

    /// Lifts the held tombstones of the units whose writes were made, per account and
    /// channel, [`MAX_CONTACTS_PER_CALL`] digests to a request; a unit whose lift
    /// failed is marked failed.
    async fn lift_held(&self) {
        let mut groups: HashMap<(String, Channel), (BTreeSet<usize>, Vec<String>)> = HashMap::new();
        {
            let mut state = self.state();
            for (unit, account_id, channel, digests) in std::mem::take(&mut state.lifts) {
                if state.failed.contains(&unit) {
                    continue;
                }
                let (units, all) = groups.entry((account_id, channel)).or_default();
                units.insert(unit);
                for digest in digests {
                    if !all.contains(&digest) {
                        all.push(digest);
                    }
                }
            }
        }
        for ((account_id, channel), (units, digests)) in groups {
            for chunk in digests.chunks(MAX_CONTACTS_PER_CALL) {
                if let Err(e) = self
                    .store
                    .lift_suppressions(&account_id, channel, chunk)
                    .await
                {
                    tracing::warn!(error = %e, "held tombstone lifts could not be made; their items are applied again");
                    self.state().failed.extend(units.iter().copied());
                    break;
                }
            }
        }
    }

    /// Sends what is still held, then the ledger answers of the units whose writes were
    /// all made; returns the units to apply again against the store itself: a write of
    /// theirs, or an answer, was not made (their answers are not stored: applied again,
    /// their work is done again, and answered then).
    pub async fn finish(&self) -> BTreeSet<usize> {
        self.flush().await;
        let (answers, mut failed) = {
            let mut state = self.state();
            (
                std::mem::take(&mut state.answers),
                std::mem::take(&mut state.failed),
            )
        };
        let (units, entries): (Vec<usize>, Vec<LedgerEntry>) = answers
            .into_iter()
            .filter(|(unit, _)| !failed.contains(unit))
            .unzip();
        if entries.is_empty() {
            return failed;
        }
        if let Err(e) = self.ledger.store_answers(&entries).await {
            tracing::warn!(error = %e, answers = entries.len(), "held event answers could not be stored; their items are applied again");
            failed.extend(units);
        }
        failed
    }

    /// Records `entries` (events about to be handled, answered pending) at once: an
    /// item's [`EventLedger::record_event`] of one of them then costs nothing. A
    /// failure here costs only speed: each item records its own.
    pub async fn record_ahead(&self, entries: Vec<LedgerEntry>) {
        let mut seen = BTreeSet::new();
        let entries: Vec<LedgerEntry> = entries
            .into_iter()
            .filter(|e| seen.insert((e.account_id.clone(), e.event_key.clone())))
            .collect();
        if entries.is_empty() {
            return;
        }
        match self.ledger.record_events(&entries).await {
            Ok(previous) => {
                let mut state = self.state();
                for (e, previous) in entries.into_iter().zip(previous) {
                    state.recorded.insert((e.account_id, e.event_key), previous);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "recording a batch's events ahead failed; each item records its own");
            }
        }
    }

    /// Forgets every contact and alias read: after a write this view did not see (an
    /// event of another kind in the batch), everything is read again.
    pub fn forget_all(&self) {
        let mut state = self.state();
        state.contacts.clear();
        state.aliases.clear();
    }

    /// Forgets what `writes` touched: what a write sent to the store as it is changed is
    /// read again when next asked for.
    fn forget(&self, writes: &[IdentityWrite]) {
        let contacts = writes.iter().filter_map(|write| match write {
            IdentityWrite::Contact(c, _) | IdentityWrite::RemoveContact(c) => Some(c),
            _ => None,
        });
        let aliases = writes.iter().filter_map(|write| match write {
            IdentityWrite::Alias(a, _) | IdentityWrite::RemoveAlias(a) => Some(a),
            _ => None,
        });
        self.forget_items(contacts, aliases);
    }

    /// Drops what this view knows of `contacts` and `aliases`: they are read again.
    fn forget_items<'c>(
        &self,
        contacts: impl IntoIterator<Item = &'c Contact>,
        aliases: impl IntoIterator<Item = &'c Alias>,
    ) {
        let mut state = self.state();
        for c in contacts {
            state.contacts.remove(&key_of(c));
        }
        for a in aliases {
            state
                .aliases
                .remove(&(a.account_id.clone(), a.user_id.clone()));
        }
    }

    /// Holds a write of one contact when it follows from what this view knows; `false`
    /// when it must go to the store as it is.
    fn hold(&self, contact: &Contact, precondition: Precondition) -> bool {
        let mut state = self.state();
        let k = key_of(contact);
        let known = match state.contacts.get(&k) {
            Some(known) => known.as_ref().map(|c| c.version),
            None => return false,
        };
        let expected = match precondition {
            Precondition::Absent => None,
            Precondition::Version(v) => Some(v),
        };
        if known != expected {
            return false;
        }
        let unit = state.unit;
        let mut contact = contact.clone();
        match state.held.get_mut(&k) {
            Some(held) => {
                // One write of the item: its version goes up once, under the first
                // precondition.
                contact.version = held.contact.version;
                held.contact = contact.clone();
                held.units.insert(unit);
            }
            None => {
                state.held.insert(
                    k.clone(),
                    Held {
                        contact: contact.clone(),
                        precondition,
                        units: BTreeSet::from([unit]),
                    },
                );
            }
        }
        state.contacts.insert(k, Some(contact));
        true
    }
}

fn key(account_id: &str, channel: Channel, k: &str) -> ContactKey {
    (account_id.to_string(), channel, k.to_string())
}

fn key_of(contact: &Contact) -> ContactKey {
    key(&contact.account_id, contact.channel, &contact.phone)
}

impl<S, L> Identities for Deferred<'_, S, L>
where
    S: ContactStore + Identities + Suppressions + CapacityMeter,
    L: EventLedger,
{
    async fn account_of_number(&self, phone_number_id: &str) -> Result<Option<String>, StoreError> {
        self.store.account_of_number(phone_number_id).await
    }

    async fn contacts_by_keys(
        &self,
        account_id: &str,
        channel: Channel,
        keys: &[String],
    ) -> Result<Vec<Contact>, StoreError> {
        self.prefetch(account_id, channel, keys).await?;
        let mut state = self.state();
        let unit = state.unit;
        let mut found = Vec::new();
        for k in keys {
            let k = key(account_id, channel, k);
            // A unit that saw a held write depends on it being made.
            if let Some(held) = state.held.get_mut(&k) {
                held.units.insert(unit);
            }
            if let Some(Some(contact)) = state.contacts.get(&k) {
                if !found.iter().any(|c: &Contact| c.phone == contact.phone) {
                    found.push(contact.clone());
                }
            }
        }
        Ok(found)
    }

    async fn alias(&self, account_id: &str, user_id: &str) -> Result<Option<Alias>, StoreError> {
        let k = (account_id.to_string(), user_id.to_string());
        if let Some(known) = self.state().aliases.get(&k) {
            return Ok(known.clone());
        }
        let alias = self.store.alias(account_id, user_id).await?;
        self.state().aliases.insert(k, alias.clone());
        Ok(alias)
    }

    async fn write_identity(&self, writes: &[IdentityWrite]) -> Result<bool, StoreError> {
        if let [IdentityWrite::Contact(contact, precondition)] = writes {
            if self.hold(contact, *precondition) {
                return Ok(true);
            }
        }
        self.flush().await;
        let result = self.store.write_identity(writes).await;
        self.forget(writes);
        result
    }
}

impl<S, L> ContactStore for Deferred<'_, S, L>
where
    S: ContactStore + Identities + Suppressions + CapacityMeter,
    L: EventLedger,
{
    async fn get_contact(
        &self,
        account_id: &str,
        channel: Channel,
        phone: &str,
    ) -> Result<Option<Contact>, StoreError> {
        let keys = [phone.to_string()];
        Ok(self
            .contacts_by_keys(account_id, channel, &keys)
            .await?
            .pop())
    }

    async fn put_contact(
        &self,
        contact: &Contact,
        precondition: Precondition,
    ) -> Result<PutOutcome, StoreError> {
        self.flush().await;
        let outcome = self.store.put_contact(contact, precondition).await;
        self.state().contacts.remove(&key_of(contact));
        outcome
    }

    async fn read_contacts(
        &self,
        account_id: &str,
        channel: Channel,
        phones: &[String],
        consistent: bool,
    ) -> Result<Vec<Option<Contact>>, StoreError> {
        self.flush().await;
        self.store
            .read_contacts(account_id, channel, phones, consistent)
            .await
    }

    async fn write_contacts(
        &self,
        writes: &[(Contact, Precondition)],
    ) -> Result<Vec<Applied>, StoreError> {
        self.flush().await;
        let applied = self.store.write_contacts(writes).await;
        let mut state = self.state();
        for (contact, _) in writes {
            state.contacts.remove(&key_of(contact));
        }
        applied
    }
}

impl<S, L> Suppressions for Deferred<'_, S, L>
where
    S: ContactStore + Identities + Suppressions + CapacityMeter,
    L: EventLedger,
{
    async fn erase_contact(
        &self,
        contact: &Contact,
        aliases: &[Alias],
        digests: &[String],
    ) -> Result<bool, StoreError> {
        self.flush().await;
        let erased = self.store.erase_contact(contact, aliases, digests).await;
        self.forget_items([contact], aliases);
        erased
    }

    async fn suppressed(
        &self,
        account_id: &str,
        channel: Channel,
        digests: &[String],
    ) -> Result<Vec<bool>, StoreError> {
        // A tombstone held to be lifted is gone as far as this batch knows.
        if !self.state().lifts.is_empty() {
            self.flush().await;
        }
        self.store.suppressed(account_id, channel, digests).await
    }

    async fn lift_suppressions(
        &self,
        account_id: &str,
        channel: Channel,
        digests: &[String],
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        let unit = state.unit;
        state
            .lifts
            .push((unit, account_id.to_string(), channel, digests.to_vec()));
        Ok(())
    }
}

impl<S, L> CapacityMeter for Deferred<'_, S, L>
where
    S: ContactStore + Identities + Suppressions + CapacityMeter,
    L: EventLedger,
{
    fn consumed(&self) -> Consumed {
        self.store.consumed()
    }
}

impl<S, L> EventLedger for Deferred<'_, S, L>
where
    S: ContactStore + Identities + Suppressions + CapacityMeter,
    L: EventLedger,
{
    async fn record_event(
        &self,
        account_id: &str,
        event_key: &str,
        answer: &str,
        expires_at: i64,
    ) -> Result<Option<String>, StoreError> {
        let k = (account_id.to_string(), event_key.to_string());
        if let Some(recorded) = self.state().recorded.get_mut(&k) {
            // Asked again (the event twice in the batch): the store would say pending.
            return Ok(recorded.replace(answer.to_string()));
        }
        self.ledger
            .record_event(account_id, event_key, answer, expires_at)
            .await
    }

    async fn store_answer(
        &self,
        account_id: &str,
        event_key: &str,
        answer: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        // The same event twice in a batch: its first answer is the one a redelivery
        // must give (the second found the first's work done).
        if state
            .answers
            .iter()
            .any(|(_, a)| a.account_id == account_id && a.event_key == event_key)
        {
            return Ok(());
        }
        let unit = state.unit;
        state.answers.push((
            unit,
            LedgerEntry {
                account_id: account_id.to_string(),
                event_key: event_key.to_string(),
                answer: answer.to_string(),
                expires_at,
            },
        ));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::contact::{ContactDraft, Source, WriteStamp};
    use crate::ports::memory::{MemoryContacts, MemoryLedger};

    const EVA: &str = "+447911123456";

    fn stamp() -> WriteStamp {
        WriteStamp {
            now: "2026-12-03T10:00:00.000Z".into(),
            source: Source::Inbound,
            import_id: None,
            campaign_id: None,
        }
    }

    /// Eva as stored, at version 1.
    fn eva() -> Contact {
        let draft = ContactDraft {
            phone: EVA.into(),
            ..Default::default()
        };
        Contact::create("acme", Channel::Whatsapp, &draft, &stamp())
    }

    /// `contact` changed (a new name) and one version on.
    fn renamed(contact: &Contact, name: &str) -> Contact {
        let mut next = contact.clone();
        next.text.insert("name".into(), name.into());
        next.version += 1;
        next
    }

    async fn stored(store: &MemoryContacts, contact: &Contact) {
        let put = store.put_contact(contact, Precondition::Absent).await;
        assert_eq!(put.expect("stored"), PutOutcome::Written);
    }

    async fn read(view: &impl Identities) -> Contact {
        let keys = [EVA.to_string()];
        let mut found = view
            .contacts_by_keys("acme", Channel::Whatsapp, &keys)
            .await
            .expect("read");
        found.pop().expect("Eva")
    }

    fn answer(key: &str) -> LedgerEntry {
        LedgerEntry {
            account_id: "acme".into(),
            event_key: key.into(),
            answer: "\"updated\"".into(),
            expires_at: 1,
        }
    }

    async fn answered(view: &impl EventLedger, e: &LedgerEntry) {
        view.store_answer(&e.account_id, &e.event_key, &e.answer, e.expires_at)
            .await
            .expect("held");
    }

    #[tokio::test]
    async fn two_held_writes_of_one_contact_are_one_write_one_version_on() {
        // GIVEN Eva stored, and a view of the store
        let (store, ledger) = (MemoryContacts::default(), MemoryLedger::default());
        stored(&store, &eva()).await;
        let view = Deferred::new(&store, &ledger);

        // WHEN two units each change her, the second seeing the first's change
        view.begin(0);
        let first = renamed(&read(&view).await, "Eva");
        let write = [IdentityWrite::Contact(first, Precondition::Version(1))];
        assert!(view.write_identity(&write).await.expect("held"));
        view.begin(1);
        let seen = read(&view).await;
        assert_eq!(seen.text.get("name").map(String::as_str), Some("Eva"));
        let second = renamed(&seen, "Eva Lind");
        let write = [IdentityWrite::Contact(second, Precondition::Version(2))];
        assert!(view.write_identity(&write).await.expect("held"));
        let writes_before = store.writes();

        // THEN nothing is written until the end, and then once, one version on, for
        // one read of hers
        assert_eq!(
            store.get("acme", Channel::Whatsapp, EVA).map(|c| c.version),
            Some(1)
        );
        assert!(view.finish().await.is_empty());
        assert_eq!(store.writes() - writes_before, 1);
        assert_eq!(store.batches(), 1);
        let now = store.get("acme", Channel::Whatsapp, EVA).expect("Eva");
        assert_eq!(now.version, 2);
        assert_eq!(now.text.get("name").map(String::as_str), Some("Eva Lind"));
        assert_eq!(store.key_reads(), 1);
    }

    #[tokio::test]
    async fn a_refused_write_fails_every_unit_that_made_or_saw_it_and_holds_back_their_answers() {
        // GIVEN Eva stored; unit 0 changes her, unit 1 reads her after it, unit 2 does
        // not touch her; each has an event answer to store
        let (store, ledger) = (MemoryContacts::default(), MemoryLedger::default());
        stored(&store, &eva()).await;
        let view = Deferred::new(&store, &ledger);
        view.begin(0);
        let write = [IdentityWrite::Contact(
            renamed(&read(&view).await, "Eva"),
            Precondition::Version(1),
        )];
        assert!(view.write_identity(&write).await.expect("held"));
        answered(&view, &answer("msg:0")).await;
        view.begin(1);
        read(&view).await;
        answered(&view, &answer("msg:1")).await;
        view.begin(2);
        answered(&view, &answer("msg:2")).await;

        // WHEN someone else writes her first
        let theirs = renamed(&eva(), "Someone else's");
        let put = store.put_contact(&theirs, Precondition::Version(1)).await;
        assert_eq!(put.expect("written"), PutOutcome::Written);

        // THEN units 0 and 1 are to be applied again, only unit 2's answer is stored,
        // and her next read is fresh
        assert_eq!(view.finish().await, BTreeSet::from([0, 1]));
        assert_eq!(ledger.keys(), vec!["acme#msg:2".to_string()]);
        let now = read(&view).await;
        assert_eq!(
            now.text.get("name").map(String::as_str),
            Some("Someone else's")
        );
    }

    #[tokio::test]
    async fn tombstones_are_lifted_after_the_held_writes_and_only_for_units_whose_writes_were_made()
    {
        // GIVEN two erased people: unit 0 creates Eva and lifts her tombstone, unit 1
        // changes Ola (stored) and lifts his, and someone else writes Ola first
        let (store, ledger) = (MemoryContacts::default(), MemoryLedger::default());
        store.add_tombstone("acme", Channel::Whatsapp, "eva-digest");
        store.add_tombstone("acme", Channel::Whatsapp, "ola-digest");
        let ola = Contact {
            phone: "+447911123457".into(),
            ..eva()
        };
        stored(&store, &ola).await;
        let view = Deferred::new(&store, &ledger);
        view.begin(0);
        let create = [IdentityWrite::Contact(eva(), Precondition::Absent)];
        let eva_keys = [EVA.to_string()];
        let found = view.contacts_by_keys("acme", Channel::Whatsapp, &eva_keys);
        assert!(found.await.expect("read").is_empty());
        assert!(view.write_identity(&create).await.expect("held"));
        let eva_digests = ["eva-digest".to_string()];
        view.lift_suppressions("acme", Channel::Whatsapp, &eva_digests)
            .await
            .expect("held");
        view.begin(1);
        let keys = [ola.phone.clone()];
        view.contacts_by_keys("acme", Channel::Whatsapp, &keys)
            .await
            .expect("read");
        let change = [IdentityWrite::Contact(
            renamed(&ola, "Ola"),
            Precondition::Version(1),
        )];
        assert!(view.write_identity(&change).await.expect("held"));
        let ola_digests = ["ola-digest".to_string()];
        view.lift_suppressions("acme", Channel::Whatsapp, &ola_digests)
            .await
            .expect("held");
        let theirs = renamed(&ola, "Someone else's");
        let put = store.put_contact(&theirs, Precondition::Version(1)).await;
        assert_eq!(put.expect("written"), PutOutcome::Written);

        // WHEN nothing was sent yet, THEN both tombstones still stand
        assert!(store.is_suppressed("acme", Channel::Whatsapp, "eva-digest"));

        // WHEN the batch finishes
        // THEN Eva is written and her tombstone lifted; Ola's unit is to be applied
        // again and his tombstone stays until it is
        assert_eq!(view.finish().await, BTreeSet::from([1]));
        assert!(store.get("acme", Channel::Whatsapp, EVA).is_some());
        assert!(!store.is_suppressed("acme", Channel::Whatsapp, "eva-digest"));
        assert!(store.is_suppressed("acme", Channel::Whatsapp, "ola-digest"));
    }

    #[tokio::test]
    async fn events_recorded_ahead_answer_each_item_once_then_pending() {
        // GIVEN an event answered before, and a new one, recorded ahead
        let (store, ledger) = (MemoryContacts::default(), MemoryLedger::default());
        let before = answer("msg:old");
        ledger
            .store_answer("acme", "msg:old", &before.answer, 1)
            .await
            .expect("stored");
        let view = Deferred::new(&store, &ledger);
        let pending = |key: &str| LedgerEntry {
            answer: "pending".into(),
            ..answer(key)
        };
        view.record_ahead(vec![pending("msg:old"), pending("msg:new")])
            .await;

        // WHEN items record them, the new one twice (a duplicate in the batch)
        let record = |key: &'static str| view.record_event("acme", key, "pending", 1);
        let old = record("msg:old").await.expect("recorded");
        let new = record("msg:new").await.expect("recorded");
        let again = record("msg:new").await.expect("recorded");

        // THEN the old one answers as before, the new one is new, then pending; and the
        // first answer held for the new one is the one stored
        assert_eq!(old, Some(before.answer.clone()));
        assert_eq!(new, None);
        assert_eq!(again.as_deref(), Some("pending"));
        answered(&view, &answer("msg:new")).await;
        let mut second = answer("msg:new");
        second.answer = "\"unchanged\"".into();
        answered(&view, &second).await;
        assert!(view.finish().await.is_empty());
        let mut answers = ledger.answers();
        answers.sort();
        assert_eq!(answers, vec!["\"updated\"".to_string(); 2]);
    }
}
