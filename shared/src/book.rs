//! Saving one contact with conditional writes: create when absent, otherwise merge into
//! the stored item returned by the failed condition (no read before write), and retry
//! when someone else wrote in between. Never a lost update.

use crate::aws::keys;
use crate::domain::contact::{Contact, ContactDraft, WriteStamp};
use crate::domain::options::OnExisting;
use crate::domain::outcome::Outcome;
use crate::domain::upload::Channel;
use crate::ports::{ContactStore, Precondition, PutOutcome, StoreError};

/// How many times a write is retried after losing a race.
const MAX_ATTEMPTS: usize = 8;

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

/// A contention problem: the item kept changing under us.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    /// A store call failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Every attempt lost a race.
    #[error("contact {0} kept changing during {MAX_ATTEMPTS} attempts to save it")]
    Contention(String),
}

/// Creates `create()` when absent; otherwise applies `merge` to the stored contact and
/// writes the result under a version condition. `merge` returns `None` when nothing
/// changes, and `Err(())` to leave the contact alone.
pub async fn upsert<S, C, M>(store: &S, create: C, merge: M) -> Result<Upserted, SaveError>
where
    S: ContactStore,
    C: Fn() -> Contact,
    M: Fn(&Contact) -> Result<Option<Contact>, ()>,
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
                    Err(()) => return Ok(Upserted::LeftAlone(current)),
                    Ok(None) => return Ok(Upserted::Unchanged(current)),
                    Ok(Some(next)) => next,
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
    Err(SaveError::Contention(keys::contact_pk(
        &contact.account_id,
        contact.channel,
        &contact.phone,
    )))
}

/// Saves a validated row (imports and campaign recipients): the row outcome.
pub async fn save_draft<S: ContactStore>(
    store: &S,
    account_id: &str,
    channel: Channel,
    draft: &ContactDraft,
    stamp: &WriteStamp,
    on_existing: OnExisting,
) -> Result<Outcome, SaveError> {
    let result = upsert(
        store,
        || Contact::create(account_id, channel, draft, stamp),
        |current| match on_existing {
            OnExisting::Ignore => Err(()),
            OnExisting::Update => Ok(current.merged(draft, stamp)),
        },
    )
    .await?;
    Ok(outcome_of(&result, stamp))
}

/// What a dry run reports for a row: reads, never writes.
pub async fn plan_draft<S: ContactStore>(
    store: &S,
    account_id: &str,
    channel: Channel,
    draft: &ContactDraft,
    stamp: &WriteStamp,
    on_existing: OnExisting,
) -> Result<Outcome, SaveError> {
    Ok(
        match store.get_contact(account_id, channel, &draft.phone).await? {
            None => Outcome::Created,
            Some(_) if on_existing == OnExisting::Ignore => Outcome::SkippedExisting,
            Some(current) => match current.merged(draft, stamp) {
                Some(_) => Outcome::Updated,
                None => Outcome::Unchanged,
            },
        },
    )
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
    use crate::domain::contact::Source;
    use crate::ports::memory::MemoryContacts;

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
            OnExisting::Update,
        )
        .await
        .expect("planned");
        assert_eq!(outcome, Outcome::Created);
        assert_eq!(store.count(), 0);
    }

    /// Writes, then answers as if the connection dropped and the SDK's retry found the
    /// item: the condition fails with our own item.
    struct LostAnswers(MemoryContacts);

    impl ContactStore for LostAnswers {
        async fn get_contact(
            &self,
            a: &str,
            c: Channel,
            p: &str,
        ) -> Result<Option<Contact>, StoreError> {
            self.0.get_contact(a, c, p).await
        }

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
        assert_eq!(first.expect("saved"), Outcome::Created);
        let second = save_draft(
            &store,
            "acme",
            Channel::Sms,
            &draft("Eva Smith"),
            &stamp(),
            OnExisting::Update,
        )
        .await;
        assert_eq!(second.expect("saved"), Outcome::Updated);
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
        assert_eq!(updated.expect("saved"), Outcome::Updated);
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
        assert_eq!(again.expect("saved"), Outcome::Updated);
        let created = save_draft(
            &store,
            "acme",
            Channel::Sms,
            &draft("New").with_phone("+447400123456"),
            &import,
            OnExisting::Update,
        )
        .await;
        assert_eq!(created.expect("saved"), Outcome::Created);
        let replayed = save_draft(
            &store,
            "acme",
            Channel::Sms,
            &draft("New").with_phone("+447400123456"),
            &import,
            OnExisting::Ignore,
        )
        .await;
        assert_eq!(replayed.expect("saved"), Outcome::Created);
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
}
