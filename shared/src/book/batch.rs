//! An import's rows saved a hundred to a transaction: the rules and outcomes of
//! [`super::save_draft`] for each row, one request for many rows.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::ops::Range;

use super::save::{row_saved, upsert, RowSaved, Upserted};
use super::{SaveError, MAX_ATTEMPTS};
use crate::domain::channel::Channel;
use crate::domain::contact::{Contact, ContactDraft, Merge, WriteStamp};
use crate::domain::options::OnExisting;
use crate::ports::{
    backoff, Cancelled, ContactStore, Precondition, TransactOutcome, MAX_WRITES_PER_TRANSACTION,
};

/// Saves validated rows (an import's) in transactions of up to
/// [`MAX_WRITES_PER_TRANSACTION`]: the same rules and outcomes as
/// [`super::save_draft`] for each row, one request for many rows. Every row is first
/// written as a create; a cancelled transaction names the rows that exist (with their
/// items, `ALL_OLD`), and the next round updates those under their version and sends
/// the others again. Rows still open after [`MAX_ATTEMPTS`] rounds, and a second row
/// for the same number, are saved one by one.
pub async fn save_drafts<S: ContactStore>(
    store: &S,
    account_id: &str,
    channel: Channel,
    drafts: &[&ContactDraft],
    stamp: &WriteStamp,
    on_existing: OnExisting,
) -> Result<Vec<RowSaved>, SaveError> {
    let batch = Batch {
        account_id,
        channel,
        drafts,
        stamp,
        on_existing,
    };
    let mut seen = HashSet::with_capacity(drafts.len());
    let mut states: Vec<Saving> = drafts
        .iter()
        .map(|draft| match seen.insert(draft.phone.as_str()) {
            true => Saving::Unknown,
            false => Saving::OneByOne,
        })
        .collect();
    for round in 0..MAX_ATTEMPTS {
        let (writes, rows) = batch.next_writes(&mut states);
        if writes.is_empty() {
            break;
        }
        if !send_round(store, &writes, &rows, &mut states).await? {
            // Cancelled for reasons outside these rows (throttling, another
            // transaction on the same items): back off before sending them again.
            tokio::time::sleep(backoff(round)).await;
        }
    }
    let mut outcomes = Vec::with_capacity(drafts.len());
    for (draft, state) in drafts.iter().zip(states) {
        let saved = match state {
            Saving::Done(saved) => saved,
            _ => {
                let create = || batch.create(draft);
                upsert(store, create, |current| batch.merge(draft, current)).await?
            }
        };
        outcomes.push(row_saved(draft, &saved, stamp));
    }
    Ok(outcomes)
}

/// What every row of one [`save_drafts`] call shares.
struct Batch<'a> {
    account_id: &'a str,
    channel: Channel,
    drafts: &'a [&'a ContactDraft],
    stamp: &'a WriteStamp,
    on_existing: OnExisting,
}

impl Batch<'_> {
    fn create(&self, draft: &ContactDraft) -> Contact {
        Contact::create(self.account_id, self.channel, draft, self.stamp)
    }

    fn merge(&self, draft: &ContactDraft, current: &Contact) -> Merge {
        self.on_existing.merge(current, draft, self.stamp)
    }

    /// The writes of the next round and the row each is for; rows with nothing to
    /// write are done.
    fn next_writes(&self, states: &mut [Saving]) -> (Vec<(Contact, Precondition)>, Vec<usize>) {
        let mut writes = Vec::new();
        let mut rows = Vec::new();
        for (row, state) in states.iter_mut().enumerate() {
            let draft = self.drafts[row];
            let write = match state {
                Saving::Unknown => (self.create(draft), Precondition::Absent),
                Saving::Known(current) => match self.merge(draft, current) {
                    Merge::LeaveAlone => {
                        *state = Saving::Done(Upserted::LeftAlone(current.clone()));
                        continue;
                    }
                    Merge::Unchanged => {
                        *state = Saving::Done(Upserted::Unchanged(current.clone()));
                        continue;
                    }
                    Merge::Write(next) => (*next, Precondition::Version(current.version)),
                },
                Saving::Done(_) | Saving::OneByOne => continue,
            };
            writes.push(write);
            rows.push(row);
        }
        (writes, rows)
    }
}

/// Sends one round's writes in transactions and records what each row learnt: whether
/// any row did (else the round was cancelled for reasons outside the rows).
async fn send_round<S: ContactStore>(
    store: &S,
    writes: &[(Contact, Precondition)],
    rows: &[usize],
    states: &mut [Saving],
) -> Result<bool, SaveError> {
    let mut learnt = false;
    for range in transactions(writes) {
        let (writes, rows) = (&writes[range.clone()], &rows[range]);
        match store.put_contacts(writes).await? {
            TransactOutcome::Committed => {
                learnt = true;
                for ((contact, precondition), &row) in writes.iter().zip(rows) {
                    states[row] = Saving::Done(written(contact.clone(), *precondition));
                }
            }
            TransactOutcome::Cancelled(outcomes) => {
                for (((contact, precondition), &row), outcome) in
                    writes.iter().zip(rows).zip(outcomes)
                {
                    states[row] = match outcome {
                        Cancelled::Retry => continue,
                        // A retried request found what its lost first try wrote.
                        Cancelled::Conflict(Some(now)) if *now == *contact => {
                            Saving::Done(written(*now, *precondition))
                        }
                        Cancelled::Conflict(Some(now)) => Saving::Known(now),
                        Cancelled::Conflict(None) => Saving::Unknown,
                    };
                    learnt = true;
                }
            }
        }
    }
    Ok(learnt)
}

/// Most bytes of contacts one transaction carries, as [`request_bytes`] counts them:
/// well inside DynamoDB's 4 MB per transaction, since an update also sends its
/// expression and placeholder names.
const TRANSACTION_BYTES: usize = 1024 * 1024;

/// The writes split into transactions: at most [`MAX_WRITES_PER_TRANSACTION`] writes and
/// [`TRANSACTION_BYTES`] each (a contact may hold up to about 300 KB of attributes, tags
/// and lists; a transaction of a hundred of those would be refused). A single write
/// larger than the budget goes alone.
pub(super) fn transactions(writes: &[(Contact, Precondition)]) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, (contact, _)) in writes.iter().enumerate() {
        let size = request_bytes(contact);
        if i > start
            && (i - start == MAX_WRITES_PER_TRANSACTION || bytes + size > TRANSACTION_BYTES)
        {
            ranges.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < writes.len() {
        ranges.push(start..writes.len());
    }
    ranges
}

/// About what a contact takes in a request: its names and values, and a fixed part for
/// the keys and the attributes every contact has.
fn request_bytes(contact: &Contact) -> usize {
    let pairs =
        |m: &BTreeMap<String, String>| m.iter().map(|(k, v)| k.len() + v.len() + 16).sum::<usize>();
    let set = |s: &BTreeSet<String>| s.iter().map(|v| v.len() + 4).sum::<usize>();
    1024 + pairs(&contact.text) + pairs(&contact.attrs) + set(&contact.lists) + set(&contact.tags)
}

/// Where one row of [`save_drafts`] stands.
enum Saving {
    /// Not known to exist: try a create.
    Unknown,
    /// Exists as this: merge into it.
    Known(Box<Contact>),
    /// Saved, or nothing to save.
    Done(Upserted),
    /// Another row of the batch has the same number: saved alone, after it.
    OneByOne,
}

/// What a write that happened did.
fn written(contact: Contact, precondition: Precondition) -> Upserted {
    match precondition {
        Precondition::Absent => Upserted::Created(Box::new(contact)),
        Precondition::Version(_) => Upserted::Updated(Box::new(contact)),
    }
}
