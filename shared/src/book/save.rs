//! Saving one contact with conditional writes: create when absent, otherwise merge into
//! the stored item returned by the failed condition (no read before write), and retry
//! when someone else wrote in between. Never a lost update.

use super::erasure::Tombstones;
use super::{SaveError, MAX_ATTEMPTS};
use crate::domain::channel::Channel;
use crate::domain::cleaning::mask_phone;
use crate::domain::contact::{Contact, ContactDraft, Merge, WriteStamp};
use crate::domain::inbound::{Inbound, InboundContact};
use crate::domain::keys;
#[cfg(test)]
use crate::domain::options::OnNew;
use crate::domain::options::{Mode, OnExisting};
use crate::domain::outcome::Outcome;
use crate::ports::{ContactStore, Precondition, PutOutcome, Suppressions};

/// What an upsert did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Upserted {
    /// A new item.
    Created(Box<Contact>),
    /// An existing item changed.
    Updated(Box<Contact>),
    /// An existing item, nothing to change (no write made).
    Unchanged(Box<Contact>),
    /// An existing item the caller chose not to touch.
    LeftAlone(Box<Contact>),
}

/// Creates `create()` when absent; otherwise applies `merge` to the stored contact and
/// writes the result under a version condition; `merge` decides what the stored
/// contact becomes ([`Merge`]).
pub async fn upsert<S, C, M>(store: &S, create: C, merge: M) -> Result<Upserted, SaveError>
where
    S: ContactStore,
    C: Fn() -> Contact,
    M: Fn(&Contact) -> Merge,
{
    let mut known: Option<Box<Contact>> = None;
    for _ in 0..MAX_ATTEMPTS {
        match known.take() {
            None => {
                let fresh = create();
                match store.put_contact(&fresh, Precondition::Absent).await? {
                    PutOutcome::Written => return Ok(Upserted::Created(Box::new(fresh))),
                    // The SDK retried a write whose answer was lost, and the retry
                    // found our own item: it was written.
                    PutOutcome::Conflict(Some(current)) if *current == fresh => {
                        return Ok(Upserted::Created(current))
                    }
                    PutOutcome::Conflict(current) => known = current,
                }
            }
            Some(current) => {
                let next = match merge(&current) {
                    Merge::LeaveAlone => return Ok(Upserted::LeftAlone(current)),
                    Merge::Unchanged => return Ok(Upserted::Unchanged(current)),
                    Merge::Write(next) => *next,
                };
                match store
                    .put_contact(&next, Precondition::Version(current.version))
                    .await?
                {
                    PutOutcome::Written => return Ok(Upserted::Updated(Box::new(next))),
                    PutOutcome::Conflict(Some(now)) if *now == next => {
                        return Ok(Upserted::Updated(now))
                    }
                    PutOutcome::Conflict(now) => known = now,
                }
            }
        }
    }
    let contact = create();
    // Errors travel into logs and queues: the number masked (DESIGN 12).
    Err(SaveError::Contention(keys::contact_pk(
        &contact.account_id,
        contact.channel,
        &mask_phone(&contact.phone),
    )))
}

/// [`upsert`] for a write that is not the person's own (details an agent captured):
/// `None`, and nothing written, when the number was erased. Only the person's own
/// message brings an erased person back ([`save_inbound`]).
pub async fn upsert_unless_erased<S, C, M>(
    store: &S,
    tombstones: &Tombstones<'_, S>,
    create: C,
    merge: M,
) -> Result<Option<Upserted>, SaveError>
where
    S: ContactStore + Suppressions,
    C: Fn() -> Contact,
    M: Fn(&Contact) -> Merge,
{
    let fresh = create();
    if tombstones
        .erased(&fresh.account_id, fresh.channel, &fresh.phone)
        .await?
    {
        tracing::info!(account_id = fresh.account_id, phone = %mask_phone(&fresh.phone), "not saved: the number was erased");
        return Ok(None);
    }
    upsert(store, create, merge).await.map(Some)
}

/// What became of one saved row (of an import or a campaign).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RowSaved {
    /// The row's outcome.
    pub outcome: Outcome,
    /// The row said opted in, and the contact stays opted out because the person
    /// opted out themselves (warning `consent_kept_opted_out`); the rest of the row was
    /// saved as `outcome` says.
    pub kept_opted_out: bool,
}

impl RowSaved {
    /// A row whose contact did not exist and was not created (`on-new=skip`).
    pub fn skipped_new() -> RowSaved {
        RowSaved {
            outcome: Outcome::SkippedNew,
            kept_opted_out: false,
        }
    }
}

/// Saves a validated row (imports and campaign recipients): the row outcome.
pub async fn save_draft<S: ContactStore>(
    store: &S,
    account_id: &str,
    channel: Channel,
    draft: &ContactDraft,
    stamp: &WriteStamp,
    on_existing: OnExisting,
) -> Result<RowSaved, SaveError> {
    let result = upsert(
        store,
        || Contact::create(account_id, channel, draft, stamp),
        |current| on_existing.merge(current, draft, stamp),
    )
    .await?;
    Ok(row_saved(draft, &result, stamp))
}

/// Saves what an inbound message does to its sender's contact (an unknown sender
/// becomes an anonymous contact): what it found or made. Only the person's own message
/// brings an erased person back: a new contact lifts the number's tombstone.
pub async fn save_inbound<S: ContactStore + Suppressions>(
    store: &S,
    tombstones: &Tombstones<'_, S>,
    inbound: &Inbound,
    stamp: &WriteStamp,
) -> Result<InboundContact, SaveError> {
    // (A lock, not a `Cell`: an invocation's future must be `Send`, as a task.)
    let found = std::sync::Mutex::new(InboundContact::Existing);
    let set = |what| {
        *found
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = what
    };
    let result = upsert(
        store,
        || inbound.new_contact(stamp),
        |current| {
            let (what, next) = inbound.merge(current, stamp);
            set(what);
            next.into()
        },
    )
    .await?;
    let contact = match &result {
        Upserted::Created(c) => {
            set(InboundContact::CreatedAnonymous);
            c
        }
        Upserted::Updated(c) | Upserted::Unchanged(c) | Upserted::LeftAlone(c) => c,
    };
    let found = found
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    tracing::info!(account_id = inbound.account_id, contact = found.as_str(), phone = %mask_phone(&contact.phone), "inbound message");
    if found == InboundContact::CreatedAnonymous {
        tombstones
            .lift(
                &inbound.account_id,
                inbound.channel,
                std::slice::from_ref(&inbound.phone),
            )
            .await?;
    }
    Ok(found)
}

/// Merges into the contact stored under `phone`, never creating one (`on-new=skip`):
/// `None` when there is none, or it was deleted between the read and the write.
pub(super) async fn update_existing<S, M>(
    store: &S,
    account_id: &str,
    channel: Channel,
    phone: &str,
    merge: M,
) -> Result<Option<Upserted>, SaveError>
where
    S: ContactStore,
    M: Fn(&Contact) -> Merge,
{
    let mut known = store.get_contact(account_id, channel, phone).await?;
    for _ in 0..MAX_ATTEMPTS {
        let Some(current) = known.take() else {
            return Ok(None);
        };
        let next = match merge(&current) {
            Merge::LeaveAlone => return Ok(Some(Upserted::LeftAlone(Box::new(current)))),
            Merge::Unchanged => return Ok(Some(Upserted::Unchanged(Box::new(current)))),
            Merge::Write(next) => *next,
        };
        match store
            .put_contact(&next, Precondition::Version(current.version))
            .await?
        {
            PutOutcome::Written => return Ok(Some(Upserted::Updated(Box::new(next)))),
            PutOutcome::Conflict(Some(now)) if *now == next => {
                return Ok(Some(Upserted::Updated(now)))
            }
            PutOutcome::Conflict(now) => known = now.map(|now| *now),
        }
    }
    Err(SaveError::Contention(keys::contact_pk(
        account_id,
        channel,
        &mask_phone(phone),
    )))
}

/// What a dry run reports for a row: reads, never writes.
pub async fn plan_draft<S: ContactStore>(
    store: &S,
    account_id: &str,
    channel: Channel,
    draft: &ContactDraft,
    stamp: &WriteStamp,
    mode: Mode,
) -> Result<RowSaved, SaveError> {
    let planned = |outcome, kept_opted_out| RowSaved {
        outcome,
        kept_opted_out,
    };
    Ok(
        match store.get_contact(account_id, channel, &draft.phone).await? {
            None if mode.creates() => planned(Outcome::Created, false),
            None => RowSaved::skipped_new(),
            Some(current) => match mode.merge(&current, draft, stamp) {
                Merge::LeaveAlone => planned(Outcome::SkippedExisting, false),
                Merge::Write(next) => planned(Outcome::Updated, draft.opt_in_refused(&next)),
                Merge::Unchanged => planned(Outcome::Unchanged, draft.opt_in_refused(&current)),
            },
        },
    )
}

/// A saved row's outcome, and whether its opt-in was refused: read from the contact as
/// saved, so it holds however many rounds the write took. A contact left alone
/// (option `ignore`) was not offered the opt-in.
pub(super) fn row_saved(draft: &ContactDraft, result: &Upserted, stamp: &WriteStamp) -> RowSaved {
    let kept_opted_out = match result {
        Upserted::Created(c) | Upserted::Updated(c) | Upserted::Unchanged(c) => {
            draft.opt_in_refused(c)
        }
        Upserted::LeftAlone(_) => false,
    };
    RowSaved {
        outcome: outcome_of(result, stamp),
        kept_opted_out,
    }
}

/// The row's outcome. A contact this very import already wrote (a resumed import
/// replaying rows after its last checkpoint: same import id, same start time) keeps
/// the outcome of that first write, so counts match an uninterrupted run.
fn outcome_of(result: &Upserted, stamp: &WriteStamp) -> Outcome {
    match result {
        Upserted::Created(_) => Outcome::Created,
        Upserted::Updated(_) => Outcome::Updated,
        Upserted::Unchanged(c) | Upserted::LeftAlone(c) if written_by(c, stamp) => {
            if c.created_at == stamp.now {
                Outcome::Created
            } else {
                Outcome::Updated
            }
        }
        Upserted::Unchanged(_) => Outcome::Unchanged,
        Upserted::LeftAlone(_) => Outcome::SkippedExisting,
    }
}

fn written_by(contact: &Contact, stamp: &WriteStamp) -> bool {
    stamp.import_id.is_some()
        && contact.last_import_id == stamp.import_id
        && contact.updated_at == stamp.now
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::book::batch::{save_drafts, Lookup};
    use crate::book::erasure::Tombstones;
    use crate::domain::contact::Source;
    use crate::ports::memory::MemoryContacts;
    use crate::ports::{Applied, StoreError, Suppressions};

    fn stamp() -> WriteStamp {
        static CLOCK: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let tick = CLOCK.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        WriteStamp {
            now: format!("2026-11-21T10:00:{:02}Z", tick % 60),
            source: Source::Import,
            import_id: Some("imp_1".into()),
            campaign_id: None,
        }
    }

    fn draft(name: &str) -> ContactDraft {
        let mut d = ContactDraft {
            phone: "+447911123456".into(),
            ..Default::default()
        };
        d.text.insert("name", name.into());
        d
    }

    #[tokio::test]
    async fn create_then_unchanged_then_updated_with_one_write_each_time() {
        let store = MemoryContacts::default();
        let save = |d: ContactDraft, on: OnExisting| {
            let store = &store;
            async move {
                save_draft(store, "acme", Channel::Whatsapp, &d, &stamp(), on)
                    .await
                    .expect("saved")
                    .outcome
            }
        };
        assert_eq!(
            save(draft("Eva"), OnExisting::Update).await,
            Outcome::Created
        );
        assert_eq!(store.writes(), 1);
        assert_eq!(
            save(draft("Eva"), OnExisting::Update).await,
            Outcome::Unchanged
        );
        assert_eq!(store.writes(), 2, "a failed create is the only request");
        assert_eq!(
            save(draft("Eva Smith"), OnExisting::Ignore).await,
            Outcome::SkippedExisting
        );
        assert_eq!(
            save(draft("Eva Smith"), OnExisting::Update).await,
            Outcome::Updated
        );
        let stored = store
            .by_pk("CONTACT#acme#whatsapp#+447911123456")
            .expect("stored");
        assert_eq!(
            stored.text.get("name").map(String::as_str),
            Some("Eva Smith")
        );
        assert_eq!(stored.version, 2);
    }

    #[tokio::test]
    async fn dry_run_plans_without_writing() {
        let store = MemoryContacts::default();
        let outcome = plan_draft(
            &store,
            "acme",
            Channel::Whatsapp,
            &draft("Eva"),
            &stamp(),
            Mode::UPSERT,
        )
        .await
        .expect("planned");
        assert_eq!(outcome.outcome, Outcome::Created);
        assert_eq!(store.count(), 0);
    }

    /// `get_contact` and `read_contacts` of the wrapped store, inside a double's
    /// `ContactStore` impl: the doubles below change only how contacts are written.
    macro_rules! reads_of_the_wrapped_store {
        () => {
            async fn get_contact(
                &self,
                a: &str,
                c: Channel,
                p: &str,
            ) -> Result<Option<Contact>, StoreError> {
                self.0.get_contact(a, c, p).await
            }

            async fn read_contacts(
                &self,
                a: &str,
                c: Channel,
                phones: &[String],
                consistent: bool,
            ) -> Result<Vec<Option<Contact>>, StoreError> {
                self.0.read_contacts(a, c, phones, consistent).await
            }
        };
    }

    /// The tombstones of the wrapped store, untouched: the test doubles below change
    /// only how contacts are written.
    macro_rules! tombstones_of_the_wrapped_store {
        ($double:ty) => {
            impl Suppressions for $double {
                async fn erase_contact(
                    &self,
                    contact: &Contact,
                    aliases: &[crate::ports::Alias],
                    digests: &[String],
                ) -> Result<bool, StoreError> {
                    self.0.erase_contact(contact, aliases, digests).await
                }

                async fn suppressed(
                    &self,
                    account_id: &str,
                    channel: Channel,
                    digests: &[String],
                ) -> Result<Vec<bool>, StoreError> {
                    self.0.suppressed(account_id, channel, digests).await
                }

                async fn lift_suppressions(
                    &self,
                    account_id: &str,
                    channel: Channel,
                    digests: &[String],
                ) -> Result<(), StoreError> {
                    self.0.lift_suppressions(account_id, channel, digests).await
                }
            }
        };
    }

    tombstones_of_the_wrapped_store!(LostAnswers);
    tombstones_of_the_wrapped_store!(Throttled);

    /// Writes, then answers as if the connection dropped and the SDK's retry found the
    /// item: the condition fails with our own item.
    struct LostAnswers(MemoryContacts);

    impl ContactStore for LostAnswers {
        reads_of_the_wrapped_store!();

        async fn put_contact(
            &self,
            contact: &Contact,
            precondition: Precondition,
        ) -> Result<PutOutcome, StoreError> {
            match self.0.put_contact(contact, precondition).await? {
                PutOutcome::Written => Ok(PutOutcome::Conflict(Some(Box::new(contact.clone())))),
                conflict => Ok(conflict),
            }
        }

        async fn write_contacts(
            &self,
            writes: &[(Contact, Precondition)],
        ) -> Result<Vec<Applied>, StoreError> {
            let answers = self.0.write_contacts(writes).await?;
            let retried =
                |((contact, precondition), answer): (&(Contact, Precondition), Applied)| {
                    match (answer, precondition) {
                        // DynamoDB's INSERT says only that the key exists.
                        (Applied::Written, Precondition::Absent) => Applied::Refused(None),
                        (Applied::Written, _) => Applied::Refused(Some(Box::new(contact.clone()))),
                        (other, _) => other,
                    }
                };
            Ok(writes.iter().zip(answers).map(retried).collect())
        }
    }

    fn numbered(name: &str, n: usize) -> ContactDraft {
        draft(name).with_phone(&format!("+4479111{n:05}"))
    }

    async fn save_all(
        store: &(impl ContactStore + Suppressions),
        drafts: &[ContactDraft],
        mode: impl Into<Mode>,
    ) -> Vec<Outcome> {
        save_all_with(store, drafts, mode, &Lookup::default()).await
    }

    async fn save_all_with(
        store: &(impl ContactStore + Suppressions),
        drafts: &[ContactDraft],
        mode: impl Into<Mode>,
        lookup: &Lookup,
    ) -> Vec<Outcome> {
        let drafts: Vec<&ContactDraft> = drafts.iter().collect();
        save_drafts(
            store,
            "acme",
            Channel::Sms,
            &drafts,
            &stamp(),
            mode.into(),
            lookup,
            &Tombstones::new(store, None),
        )
        .await
        .expect("saved")
        .into_iter()
        .map(|saved| saved.expect("no key, no tombstone").outcome)
        .collect()
    }

    /// Counts the digests looked up for tombstones.
    struct CountingLookups(MemoryContacts, std::sync::atomic::AtomicUsize);

    impl ContactStore for CountingLookups {
        reads_of_the_wrapped_store!();

        async fn put_contact(
            &self,
            contact: &Contact,
            precondition: Precondition,
        ) -> Result<PutOutcome, StoreError> {
            self.0.put_contact(contact, precondition).await
        }

        async fn write_contacts(
            &self,
            writes: &[(Contact, Precondition)],
        ) -> Result<Vec<Applied>, StoreError> {
            self.0.write_contacts(writes).await
        }
    }

    impl Suppressions for CountingLookups {
        async fn erase_contact(
            &self,
            contact: &Contact,
            aliases: &[crate::ports::Alias],
            digests: &[String],
        ) -> Result<bool, StoreError> {
            self.0.erase_contact(contact, aliases, digests).await
        }

        async fn suppressed(
            &self,
            account_id: &str,
            channel: Channel,
            digests: &[String],
        ) -> Result<Vec<bool>, StoreError> {
            self.1
                .fetch_add(digests.len(), std::sync::atomic::Ordering::Relaxed);
            self.0.suppressed(account_id, channel, digests).await
        }

        async fn lift_suppressions(
            &self,
            account_id: &str,
            channel: Channel,
            digests: &[String],
        ) -> Result<(), StoreError> {
            self.0.lift_suppressions(account_id, channel, digests).await
        }
    }

    #[tokio::test]
    async fn only_rows_to_create_are_looked_up_for_tombstones_and_an_erased_one_is_not_saved() {
        // GIVEN a book of three contacts, and the number of a fourth erased
        let key = crate::domain::suppression::SuppressionKey::new(
            b"a test secret of thirty-two bytes or more",
        )
        .expect("key");
        let store = CountingLookups(MemoryContacts::default(), 0.into());
        let stored: Vec<_> = (0..3).map(|n| numbered("Eva", n)).collect();
        save_all(&store.0, &stored, OnExisting::Update).await;
        let erased = numbered("Gone", 3);
        let digest = key.digest(&erased.phone);
        store.0.add_tombstone("acme", Channel::Sms, &digest);

        // WHEN a batch of the three, the erased number and a new one is saved
        let mut batch = stored.clone();
        batch.push(erased);
        batch.push(numbered("New", 4));
        let drafts: Vec<&ContactDraft> = batch.iter().collect();
        let tombstones = Tombstones::new(&store, Some(&key));
        let saved = save_drafts(
            &store,
            "acme",
            Channel::Sms,
            &drafts,
            &stamp(),
            Mode::UPSERT,
            &Lookup::default(),
            &tombstones,
        )
        .await
        .expect("saved");

        // THEN only the two not stored were looked up; the erased one is not saved
        assert_eq!(store.1.load(std::sync::atomic::Ordering::Relaxed), 2);
        let outcomes: Vec<_> = saved.iter().map(|s| s.map(|s| s.outcome)).collect();
        assert_eq!(
            outcomes,
            [
                Some(Outcome::Unchanged),
                Some(Outcome::Unchanged),
                Some(Outcome::Unchanged),
                None,
                Some(Outcome::Created)
            ]
        );
        assert!(store.0.get("acme", Channel::Sms, "+447911100003").is_none());
    }

    #[tokio::test]
    async fn new_rows_are_read_once_then_created_first_one_write_each() {
        // GIVEN an empty book and an import's lookup (reading first)
        let store = MemoryContacts::default();
        let lookup = Lookup::default();
        let drafts: Vec<_> = (0..150).map(|n| numbered("Eva", n)).collect();

        // WHEN a first batch of new rows is saved
        let outcomes = save_all_with(&store, &drafts, OnExisting::Update, &lookup).await;

        // THEN each row is read, then created by one write, a hundred to a call
        assert_eq!(outcomes, vec![Outcome::Created; 150]);
        assert_eq!(
            (store.reads(), store.writes(), store.batches()),
            (150, 150, 2)
        );

        // AND having found no row stored, the next batch creates without reading
        assert!(!lookup.reads_first());
        let more: Vec<_> = (150..200).map(|n| numbered("Eva", n)).collect();
        let outcomes = save_all_with(&store, &more, OnExisting::Update, &lookup).await;
        assert_eq!(outcomes, vec![Outcome::Created; 50]);
        assert_eq!((store.reads(), store.writes()), (150, 200));
    }

    #[tokio::test]
    async fn unchanged_rows_write_nothing_and_creating_first_into_stored_rows_reads_them_after() {
        // GIVEN ten stored contacts
        let store = MemoryContacts::default();
        let drafts: Vec<_> = (0..10).map(|n| numbered("Eva", n)).collect();
        save_all(&store, &drafts, OnExisting::Update).await;
        let (reads, writes) = (store.reads(), store.writes());

        // WHEN the same rows come again, read first THEN nothing is written
        let outcomes = save_all(&store, &drafts, OnExisting::Update).await;
        assert_eq!(outcomes, vec![Outcome::Unchanged; 10]);
        assert_eq!((store.reads() - reads, store.writes() - writes), (10, 0));

        // WHEN they come again to a lookup creating first, two of them renamed
        let lookup = Lookup::default();
        lookup.learn(0, 100);
        let mut again = drafts.clone();
        again[3] = numbered("Eva Smith", 3);
        again[7] = numbered("Eva Smith", 7);
        let outcomes = save_all_with(&store, &again, OnExisting::Update, &lookup).await;

        // THEN the refused creates are read and merged: two updates, the rest unchanged,
        // and the lookup goes back to reading first
        let mut expected = vec![Outcome::Unchanged; 10];
        expected[3] = Outcome::Updated;
        expected[7] = Outcome::Updated;
        assert_eq!(outcomes, expected);
        assert_eq!(
            store.writes() - writes,
            12,
            "ten refused creates, two updates"
        );
        assert!(lookup.reads_first());
    }

    #[tokio::test]
    async fn a_batch_meeting_stored_contacts_updates_them_and_creates_the_rest() {
        // GIVEN rows 0-2 stored: 0 as the batch has it, 1 with another name, 2 to ignore
        let store = MemoryContacts::default();
        let stored = [numbered("Eva", 0), numbered("Old", 1), numbered("Eva", 2)];
        save_all(&store, &stored, OnExisting::Update).await;
        let before = store.batches();

        // WHEN a batch of five (the stored three first) is saved
        let batch: Vec<_> = (0..5).map(|n| numbered("Eva", n)).collect();
        let outcomes = save_all(&store, &batch, OnExisting::Update).await;

        // THEN one call updates one and creates two; the unchanged ones are not written
        assert_eq!(
            outcomes,
            [
                Outcome::Unchanged,
                Outcome::Updated,
                Outcome::Unchanged,
                Outcome::Created,
                Outcome::Created
            ]
        );
        assert_eq!(store.batches() - before, 1);
        let renamed = store
            .get("acme", Channel::Sms, "+447911100001")
            .expect("stored");
        assert_eq!(renamed.text.get("name").map(String::as_str), Some("Eva"));
        assert_eq!(renamed.version, 2);

        // AND with `ignore`, stored contacts are left alone
        let batch: Vec<_> = (3..7).map(|n| numbered("Other", n)).collect();
        let outcomes = save_all(&store, &batch, OnExisting::Ignore).await;
        assert_eq!(
            outcomes,
            [
                Outcome::SkippedExisting,
                Outcome::SkippedExisting,
                Outcome::Created,
                Outcome::Created
            ]
        );
    }

    #[tokio::test]
    async fn a_batch_whose_answer_was_lost_still_counts_once() {
        let store = LostAnswers(MemoryContacts::default());
        let drafts: Vec<_> = (0..3).map(|n| numbered("Eva", n)).collect();
        assert_eq!(
            save_all(&store, &drafts, OnExisting::Update).await,
            vec![Outcome::Created; 3]
        );
        let lookup = Lookup::default();
        lookup.learn(0, 100);
        let more: Vec<_> = (3..6).map(|n| numbered("Eva", n)).collect();
        assert_eq!(
            save_all_with(&store, &more, OnExisting::Update, &lookup).await,
            vec![Outcome::Created; 3],
            "created first"
        );
        let renamed: Vec<_> = (0..3).map(|n| numbered("Eva Smith", n)).collect();
        assert_eq!(
            save_all(&store, &renamed, OnExisting::Update).await,
            vec![Outcome::Updated; 3]
        );
    }

    #[tokio::test]
    async fn a_second_row_for_the_same_number_is_saved_after_the_first() {
        let store = MemoryContacts::default();
        let drafts = [
            numbered("Eva", 0),
            numbered("Eva Smith", 0),
            numbered("Bo", 1),
        ];

        let outcomes = save_all(&store, &drafts, OnExisting::Update).await;

        assert_eq!(
            outcomes,
            [Outcome::Created, Outcome::Updated, Outcome::Created]
        );
        let eva = store
            .get("acme", Channel::Sms, "+447911100000")
            .expect("stored");
        assert_eq!(eva.text.get("name").map(String::as_str), Some("Eva Smith"));
    }

    /// Throttles its first write calls (every write answered `Retry`).
    struct Throttled(MemoryContacts, std::sync::atomic::AtomicU32);

    impl ContactStore for Throttled {
        reads_of_the_wrapped_store!();

        async fn put_contact(
            &self,
            contact: &Contact,
            precondition: Precondition,
        ) -> Result<PutOutcome, StoreError> {
            self.0.put_contact(contact, precondition).await
        }

        async fn write_contacts(
            &self,
            writes: &[(Contact, Precondition)],
        ) -> Result<Vec<Applied>, StoreError> {
            if self.1.fetch_sub(1, std::sync::atomic::Ordering::Relaxed) > 0 {
                return Ok(vec![Applied::Retry; writes.len()]);
            }
            self.0.write_contacts(writes).await
        }
    }

    #[tokio::test(start_paused = true)]
    async fn rows_throttled_are_sent_again_then_saved_one_by_one() {
        let drafts: Vec<_> = (0..4).map(|n| numbered("Eva", n)).collect();
        // Two throttled rounds: the third writes.
        let store = Throttled(MemoryContacts::default(), 2.into());
        assert_eq!(
            save_all(&store, &drafts, OnExisting::Update).await,
            vec![Outcome::Created; 4]
        );
        assert_eq!(store.0.batches(), 1);
        // Never a round that writes: every row saved on its own.
        let store = Throttled(MemoryContacts::default(), 1000.into());
        assert_eq!(
            save_all(&store, &drafts, OnExisting::Update).await,
            vec![Outcome::Created; 4]
        );
        assert_eq!(store.0.count(), 4);
        assert_eq!(store.0.batches(), 0);
    }

    #[tokio::test]
    async fn a_write_whose_answer_was_lost_still_counts_once() {
        let store = LostAnswers(MemoryContacts::default());
        let first = save_draft(
            &store,
            "acme",
            Channel::Sms,
            &draft("Eva"),
            &stamp(),
            OnExisting::Update,
        )
        .await;
        assert_eq!(first.expect("saved").outcome, Outcome::Created);
        let second = save_draft(
            &store,
            "acme",
            Channel::Sms,
            &draft("Eva Smith"),
            &stamp(),
            OnExisting::Update,
        )
        .await;
        assert_eq!(second.expect("saved").outcome, Outcome::Updated);
    }

    #[tokio::test]
    async fn replayed_rows_of_a_resumed_import_keep_their_first_outcome() {
        let store = MemoryContacts::default();
        let first = stamp();
        save_draft(
            &store,
            "acme",
            Channel::Sms,
            &draft("Eva"),
            &first,
            OnExisting::Update,
        )
        .await
        .expect("saved");
        let import = WriteStamp {
            import_id: Some("imp_2".into()),
            ..stamp()
        };
        let updated = save_draft(
            &store,
            "acme",
            Channel::Sms,
            &draft("Eva Smith"),
            &import,
            OnExisting::Update,
        )
        .await;
        assert_eq!(updated.expect("saved").outcome, Outcome::Updated);
        // The same import, resumed after a crash, meets its own writes again.
        let again = save_draft(
            &store,
            "acme",
            Channel::Sms,
            &draft("Eva Smith"),
            &import,
            OnExisting::Update,
        )
        .await;
        assert_eq!(again.expect("saved").outcome, Outcome::Updated);
        let created = save_draft(
            &store,
            "acme",
            Channel::Sms,
            &draft("New").with_phone("+447400123456"),
            &import,
            OnExisting::Update,
        )
        .await;
        assert_eq!(created.expect("saved").outcome, Outcome::Created);
        let replayed = save_draft(
            &store,
            "acme",
            Channel::Sms,
            &draft("New").with_phone("+447400123456"),
            &import,
            OnExisting::Ignore,
        )
        .await;
        assert_eq!(replayed.expect("saved").outcome, Outcome::Created);
    }

    trait WithPhone {
        fn with_phone(self, phone: &str) -> Self;
    }

    impl WithPhone for ContactDraft {
        fn with_phone(mut self, phone: &str) -> Self {
            self.phone = phone.into();
            self
        }
    }

    #[tokio::test]
    async fn on_new_skip_updates_stored_contacts_and_creates_none() {
        // GIVEN two stored contacts, and a store that creates first
        let store = MemoryContacts::default();
        let stored = [numbered("Ann", 1), numbered("Bo", 2)];
        save_all(&store, &stored, OnExisting::Update).await;
        let lookup = Lookup::default();
        lookup.learn(0, 100);
        assert!(!lookup.reads_first());
        let skip = Mode {
            on_existing: OnExisting::Update,
            on_new: OnNew::Skip,
        };

        // WHEN a batch with both (one renamed, one repeated later), a new number twice
        // and an erased one is saved with on-new=skip
        let mut batch = vec![
            numbered("Ann Lee", 1),
            numbered("Bo", 2),
            numbered("New", 3),
        ];
        batch.push(numbered("New again", 3));
        batch.push(numbered("Bo Diddley", 2));
        let outcomes = save_all_with(&store, &batch, skip, &lookup).await;

        // THEN the stored ones are updated or unchanged, the new number is skipped both
        // times, and nothing was created
        assert_eq!(
            outcomes,
            [
                Outcome::Updated,
                Outcome::Unchanged,
                Outcome::SkippedNew,
                Outcome::SkippedNew,
                Outcome::Updated,
            ]
        );
        let new = numbered("New", 3).phone;
        assert!(store
            .get_contact("acme", Channel::Sms, &new)
            .await
            .expect("read")
            .is_none());
        let bo = store
            .get_contact("acme", Channel::Sms, &numbered("Bo", 2).phone)
            .await
            .expect("read")
            .expect("stored");
        assert_eq!(bo.text.get("name").map(String::as_str), Some("Bo Diddley"));
    }

    #[tokio::test]
    async fn a_dry_run_with_on_new_skip_plans_skipped_new() {
        let store = MemoryContacts::default();
        let skip = Mode {
            on_existing: OnExisting::Update,
            on_new: OnNew::Skip,
        };
        let planned = plan_draft(&store, "acme", Channel::Sms, &draft("Eva"), &stamp(), skip)
            .await
            .expect("planned");
        assert_eq!(planned, RowSaved::skipped_new());
    }
}
