//! An import's rows saved a batch at a time: the rules and outcomes of
//! [`super::save_draft`] for each row, at the fewest capacity units DynamoDB can charge
//! for them (DESIGN section 9): each created or changed contact is one write at a
//! single write's price, an unchanged one writes nothing.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};

use super::erasure::Tombstones;
use super::save::{row_saved, update_existing, upsert, RowSaved, Upserted};
use super::{SaveError, MAX_ATTEMPTS};
use crate::domain::channel::Channel;
use crate::domain::contact::{Contact, ContactDraft, Merge, WriteStamp};
use crate::domain::options::Mode;
use crate::ports::{
    backoff, Applied, ContactStore, Precondition, Suppressions, MAX_CONTACTS_PER_CALL,
};

/// How an import's batches learn which of their rows exist, chosen from what the
/// batches before found.
///
/// Reading first costs half a read unit per row (eventually consistent) and lets an
/// unchanged row write nothing. Creating first costs a new row nothing more, but an
/// existing row a refused write (one write unit, charged though nothing is written)
/// before it is read anyway. At list price a write unit is five read units, so
/// creating first is cheaper while fewer than one row in eleven exists
/// (0.5 × 0.125 × new = 1 × 0.625 × existing). An import starts by reading (a file
/// imported again must write nothing) and creates first once a batch found almost
/// every row new.
#[derive(Debug)]
pub struct Lookup {
    read_first: AtomicBool,
}

impl Default for Lookup {
    fn default() -> Lookup {
        Lookup {
            read_first: AtomicBool::new(true),
        }
    }
}

impl Lookup {
    /// Whether the next batch reads its rows before writing them.
    pub fn reads_first(&self) -> bool {
        self.read_first.load(Ordering::Relaxed)
    }

    /// A batch of `rows` rows found `existing` of them stored.
    pub(super) fn learn(&self, existing: usize, rows: usize) {
        if rows > 0 {
            self.read_first
                .store(existing * 11 > rows, Ordering::Relaxed);
        }
    }
}

/// Saves validated rows (an import's): the same rules and outcomes as
/// [`super::save_draft`] for each row. Rows are read first or created first as `lookup`
/// says; each write is conditional and made on its own ([`ContactStore::write_contacts`]):
/// a create refused because the contact exists, or an update refused because it
/// changed, is read (consistently) and merged again in the next round. Rows still open
/// after [`MAX_ATTEMPTS`] rounds, and a second row for the same number, are saved one
/// by one.
///
/// With `on-new=skip` every row is read first (strongly consistent: nothing written
/// would catch a stale answer), and a row whose contact does not exist is not created:
/// `skipped_new`, or rejected as suppressed when its number was erased.
///
/// A row whose number was erased (a tombstone exists) is not saved: `None`. Only rows
/// not known to exist are looked up (an erasure deletes the contact with the tombstone
/// put, and only the person's own message creates them again, lifting it), so a file
/// of stored contacts pays no lookup.
#[allow(clippy::too_many_arguments)]
pub async fn save_drafts<S: ContactStore + Suppressions>(
    store: &S,
    account_id: &str,
    channel: Channel,
    drafts: &[&ContactDraft],
    stamp: &WriteStamp,
    mode: Mode,
    lookup: &Lookup,
    tombstones: &Tombstones<'_, S>,
) -> Result<Vec<Option<RowSaved>>, SaveError> {
    let batch = Batch {
        account_id,
        channel,
        drafts,
        stamp,
        mode,
    };
    let mut seen = HashSet::with_capacity(drafts.len());
    let mut rows: Vec<Row> = drafts
        .iter()
        .map(|draft| Row {
            saving: match seen.insert(draft.phone.as_str()) {
                // Nothing is written for a row skipped as new, so no condition would
                // catch a stale answer: read it strongly consistent.
                true if !mode.creates() => Saving::Unread { consistent: true },
                true if lookup.reads_first() => Saving::Unread { consistent: false },
                true => Saving::Unknown,
                false => Saving::OneByOne,
            },
            existed: false,
            sent: None,
            looked_up: false,
        })
        .collect();
    for round in 0..MAX_ATTEMPTS {
        batch.read(store, &mut rows).await?;
        batch.reject_erased(tombstones, &mut rows).await?;
        let (writes, written_rows) = batch.next_writes(&mut rows);
        if writes.is_empty() {
            break;
        }
        let mut retry = false;
        for (chunk, chunk_rows) in writes
            .chunks(MAX_CONTACTS_PER_CALL)
            .zip(written_rows.chunks(MAX_CONTACTS_PER_CALL))
        {
            let answers = store.write_contacts(chunk).await?;
            for ((write, &row), answer) in chunk.iter().zip(chunk_rows).zip(answers) {
                retry |= rows[row].answered(write, answer);
            }
        }
        if retry {
            // Throttled, or another transaction held an item: back off before sending
            // those writes again.
            tokio::time::sleep(backoff(round)).await;
        }
    }
    lookup.learn(rows.iter().filter(|row| row.existed).count(), rows.len());
    // The rows saved one by one below are looked up too.
    batch.reject_erased(tombstones, &mut rows).await?;
    let mut outcomes = Vec::with_capacity(drafts.len());
    for (draft, row) in drafts.iter().zip(rows) {
        let saved = match row.saving {
            Saving::Done(saved) => saved,
            Saving::Erased => {
                outcomes.push(None);
                continue;
            }
            Saving::SkippedNew => {
                outcomes.push(Some(RowSaved::skipped_new()));
                continue;
            }
            _ if mode.creates() => {
                let create = || batch.create(draft);
                upsert(store, create, |current| batch.merge(draft, current)).await?
            }
            _ => {
                let merge = |current: &Contact| batch.merge(draft, current);
                match update_existing(store, account_id, channel, &draft.phone, merge).await? {
                    Some(saved) => saved,
                    None => {
                        outcomes.push(Some(RowSaved::skipped_new()));
                        continue;
                    }
                }
            }
        };
        outcomes.push(Some(row_saved(draft, &saved, stamp)));
    }
    Ok(outcomes)
}

/// What every row of one [`save_drafts`] call shares.
struct Batch<'a> {
    account_id: &'a str,
    channel: Channel,
    drafts: &'a [&'a ContactDraft],
    stamp: &'a WriteStamp,
    mode: Mode,
}

impl Batch<'_> {
    fn create(&self, draft: &ContactDraft) -> Contact {
        Contact::create(self.account_id, self.channel, draft, self.stamp)
    }

    fn merge(&self, draft: &ContactDraft, current: &Contact) -> Merge {
        self.mode.merge(current, draft, self.stamp)
    }

    /// Reads the rows waiting to be read: the first round's eventually consistent
    /// (half the units; a stale answer is caught by the conditional write), the rows
    /// a write was refused for consistently.
    async fn read<S: ContactStore>(&self, store: &S, rows: &mut [Row]) -> Result<(), SaveError> {
        for consistent in [false, true] {
            let unread: Vec<usize> = (0..rows.len())
                .filter(|&i| matches!(rows[i].saving, Saving::Unread { consistent: c } if c == consistent))
                .collect();
            for chunk in unread.chunks(MAX_CONTACTS_PER_CALL) {
                let phones: Vec<String> = chunk
                    .iter()
                    .map(|&i| self.drafts[i].phone.clone())
                    .collect();
                let found = store
                    .read_contacts(self.account_id, self.channel, &phones, consistent)
                    .await?;
                for (&i, stored) in chunk.iter().zip(found) {
                    rows[i].read(stored);
                }
            }
        }
        Ok(())
    }

    /// Looks up the tombstones of the rows about to be created (not known to exist) that
    /// were not looked up yet, in one call; an erased one is not saved.
    async fn reject_erased<S: Suppressions>(
        &self,
        tombstones: &Tombstones<'_, S>,
        rows: &mut [Row],
    ) -> Result<(), SaveError> {
        let unchecked: Vec<usize> = (0..rows.len())
            .filter(|&i| {
                !rows[i].looked_up && matches!(rows[i].saving, Saving::Unknown | Saving::OneByOne)
            })
            .collect();
        for chunk in unchecked.chunks(MAX_CONTACTS_PER_CALL) {
            let phones: Vec<String> = chunk
                .iter()
                .map(|&i| self.drafts[i].phone.clone())
                .collect();
            let erased = tombstones
                .each_erased(self.account_id, self.channel, &phones)
                .await?;
            for (&i, erased) in chunk.iter().zip(erased) {
                rows[i].looked_up = true;
                if erased {
                    rows[i].saving = Saving::Erased;
                }
            }
        }
        Ok(())
    }

    /// The writes of the next round and the row each is for; rows with nothing to
    /// write are done.
    fn next_writes(&self, rows: &mut [Row]) -> (Vec<(Contact, Precondition)>, Vec<usize>) {
        let mut writes = Vec::new();
        let mut written_rows = Vec::new();
        for (i, row) in rows.iter_mut().enumerate() {
            let draft = self.drafts[i];
            let write = match &row.saving {
                Saving::Unknown if !self.mode.creates() => {
                    row.saving = Saving::SkippedNew;
                    continue;
                }
                Saving::Unknown => (self.create(draft), Precondition::Absent),
                Saving::Known(current) => match self.merge(draft, current) {
                    Merge::LeaveAlone => {
                        row.saving = Saving::Done(Upserted::LeftAlone(current.clone()));
                        continue;
                    }
                    Merge::Unchanged => {
                        row.saving = Saving::Done(Upserted::Unchanged(current.clone()));
                        continue;
                    }
                    Merge::Write(next) => (*next, Precondition::Version(current.version)),
                },
                Saving::Unread { .. }
                | Saving::Done(_)
                | Saving::OneByOne
                | Saving::Erased
                | Saving::SkippedNew => continue,
            };
            writes.push(write);
            written_rows.push(i);
        }
        (writes, written_rows)
    }
}

/// One row of [`save_drafts`].
struct Row {
    saving: Saving,
    /// Found stored at some point (for [`Lookup::learn`]).
    existed: bool,
    /// The last create sent for it: a retried request that finds it stored finds its
    /// own write.
    sent: Option<Contact>,
    /// Its tombstone was looked up.
    looked_up: bool,
}

impl Row {
    fn read(&mut self, stored: Option<Contact>) {
        self.saving = match stored {
            Some(now) if self.sent.as_ref() == Some(&now) => {
                Saving::Done(Upserted::Created(Box::new(now)))
            }
            Some(now) => {
                self.existed = true;
                Saving::Known(Box::new(now))
            }
            None => Saving::Unknown,
        };
    }

    /// Records what became of `write`; `true` when it must be sent again as it is.
    fn answered(
        &mut self,
        (contact, precondition): &(Contact, Precondition),
        answer: Applied,
    ) -> bool {
        if *precondition == Precondition::Absent {
            self.sent = Some(contact.clone());
        }
        match answer {
            Applied::Written => self.saving = Saving::Done(written(contact.clone(), *precondition)),
            // A retried request that found what its lost first try wrote.
            Applied::Refused(Some(now)) if *now == *contact => {
                self.saving = Saving::Done(written(*now, *precondition))
            }
            Applied::Refused(Some(now)) => {
                self.existed = true;
                self.read(Some(*now));
            }
            Applied::Refused(None) => {
                self.existed |= *precondition == Precondition::Absent;
                self.saving = Saving::Unread { consistent: true };
            }
            Applied::Retry => return true,
        }
        false
    }
}

/// Where one row of [`save_drafts`] stands.
enum Saving {
    /// To be read before anything is written.
    Unread {
        /// Strongly consistent (after a refused write) or not (the first read).
        consistent: bool,
    },
    /// Not known to exist: try a create.
    Unknown,
    /// Exists as this: merge into it.
    Known(Box<Contact>),
    /// Saved, or nothing to save.
    Done(Upserted),
    /// Another row of the batch has the same number: saved alone, after it.
    OneByOne,
    /// The number was erased: not saved.
    Erased,
    /// Not stored, and `on-new=skip`: not created.
    SkippedNew,
}

/// What a write that happened did.
fn written(contact: Contact, precondition: Precondition) -> Upserted {
    match precondition {
        Precondition::Absent => Upserted::Created(Box::new(contact)),
        Precondition::Version(_) => Upserted::Updated(Box::new(contact)),
    }
}
