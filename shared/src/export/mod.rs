//! `contacts.export` (DESIGN section 14): an account's contacts, filtered, as a CSV file
//! under `exports/{account_id}/{export_id}.csv`, written with the import's own column
//! titles so that re-importing it with `on-existing=update` leaves every contact
//! `unchanged`.
//!
//! Two passes with flat memory whatever the account's size:
//! 1. the 16 `by_account` shards are read concurrently, a page each at most in memory
//!    ([`AccountContacts`]); each contact the filter admits is spooled to a temporary
//!    file, and the names of the custom attributes seen are collected (the header needs
//!    them all before the first row);
//! 2. the spool is read back row by row into CSV that leaves by multipart upload in
//!    parts of [`PART_BYTES`] ([`object_writer::ObjectWriter`]); an export smaller than one
//!    part is a single PUT, and a failed one aborts its upload.

mod columns;
pub mod object_writer;

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{BuildHasher, Hasher};
use std::io::{BufReader, BufWriter, Seek, Write};

use futures::stream::TryStreamExt;

use crate::book::contact_pages;
use crate::domain::channel::Channel;
use crate::domain::cleaning::export_safe;
use crate::domain::consent::{Category, State};
use crate::domain::contact::{Contact, Status};
use crate::domain::keys::export_key;
use crate::ports::{AccountContacts, ObjectStore, StoreError};
pub use columns::{contact_cells, EXPORT_COLUMNS};
use object_writer::ObjectWriter;

/// Size of the parts an export is uploaded in (S3 wants at least 5 MiB but the last).
pub const PART_BYTES: usize = 8 * 1024 * 1024;
const _: () = assert!(PART_BYTES >= crate::ports::MIN_PART_BYTES);

/// The content type of an export.
pub const CSV_CONTENT_TYPE: &str = "text/csv; charset=utf-8";

/// Marketing consent as an export filter: the contact's `consent.marketing.state`
/// (DESIGN section 13). A contact written before consent was stored has no entry; its
/// import's WhatsApp-opted flag is what that consent would have been, so it answers
/// instead. `MarketingOptedIn` admits opted-in contacts, `MarketingOptedOut` opted-out
/// ones; a contact that never said either way matches neither.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Consent {
    /// `marketing_opted_in`.
    MarketingOptedIn,
    /// `marketing_opted_out`.
    MarketingOptedOut,
}

impl Consent {
    /// Every value, in the order messages list them.
    pub const ALL: [Consent; 2] = [Consent::MarketingOptedIn, Consent::MarketingOptedOut];

    /// The documented name.
    pub fn as_str(self) -> &'static str {
        match self {
            Consent::MarketingOptedIn => "marketing_opted_in",
            Consent::MarketingOptedOut => "marketing_opted_out",
        }
    }

    /// The value named `name`, if any.
    pub fn parse(name: &str) -> Option<Consent> {
        Consent::ALL.into_iter().find(|c| c.as_str() == name)
    }

    fn admits(self, contact: &Contact) -> bool {
        let wanted = self == Consent::MarketingOptedIn;
        let opted_in = match contact.consent.get(&Category::Marketing) {
            Some(entry) => Some(entry.state == State::OptedIn),
            None => contact.whatsapp_opted,
        };
        opted_in == Some(wanted)
    }
}

/// What to export: an account, and filters that must all hold. An empty set of lists,
/// tags or statuses is no filter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportRequest {
    /// Owning account.
    pub account_id: String,
    /// Only this channel's contacts.
    pub channel: Option<Channel>,
    /// Contacts in any of these lists.
    pub lists: BTreeSet<String>,
    /// Contacts with any of these tags.
    pub tags: BTreeSet<String>,
    /// Contacts in any of these statuses.
    pub statuses: Vec<Status>,
    /// Contacts with this marketing consent.
    pub consent: Option<Consent>,
}

impl ExportRequest {
    /// Whether `contact` passes every filter given.
    pub fn admits(&self, contact: &Contact) -> bool {
        let any_of = |wanted: &BTreeSet<String>, has: &BTreeSet<String>| {
            wanted.is_empty() || !wanted.is_disjoint(has)
        };
        self.channel.is_none_or(|c| contact.channel == c)
            && any_of(&self.lists, &contact.lists)
            && any_of(&self.tags, &contact.tags)
            && (self.statuses.is_empty() || self.statuses.contains(&contact.status))
            && self.consent.is_none_or(|c| c.admits(contact))
    }
}

/// A finished export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exported {
    /// Key of the CSV file in the bucket.
    pub key: String,
    /// Contacts in it.
    pub contacts: u64,
}

/// Why an export failed; nothing is left under its key.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Reading contacts or writing the file failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The local spool file failed.
    #[error("the export's temporary file failed: {0}")]
    Spool(#[from] std::io::Error),
}

/// A new export id: `exp_` and 32 hex digits that no other export shares.
pub fn new_export_id() -> String {
    // RandomState is seeded from the OS per process and per instance; the time and a
    // counter keep ids apart within one warm Lambda.
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
    let mut halves = [0u64; 2];
    for (i, half) in halves.iter_mut().enumerate() {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_i64(nanos);
        hasher.write_u64(count);
        hasher.write_usize(i);
        *half = hasher.finish();
    }
    format!("exp_{:016x}{:016x}", halves[0], halves[1])
}

/// Exports `request`'s contacts to `bucket`, under a new export id.
pub async fn export_contacts<A, O>(
    contacts: &A,
    objects: &O,
    bucket: &str,
    request: &ExportRequest,
) -> Result<Exported, ExportError>
where
    A: AccountContacts,
    O: ObjectStore,
{
    let key = export_key(&request.account_id, &new_export_id());
    let spooled = spool(contacts, request).await?;
    let count = spooled.count;
    let writer = ObjectWriter::new(objects, bucket, &key, CSV_CONTENT_TYPE, PART_BYTES);
    write_csv(spooled, writer).await?;
    tracing::info!(account_id = %request.account_id, key, contacts = count, "export written");
    Ok(Exported {
        key,
        contacts: count,
    })
}

/// The contacts of pass 1, on disk: per contact a record of its fixed cells followed by
/// its custom attributes as name, value pairs.
struct Spool {
    file: std::fs::File,
    attr_names: BTreeSet<String>,
    count: u64,
}

/// Pass 1: reads the shards concurrently and spools the contacts the filter admits.
///
/// The spool is written and read with blocking calls on purpose: they go to a
/// buffered local temporary file, microseconds next to a page's network round trip,
/// and handing each record to a blocking thread would cost more than it saves.
async fn spool<A: AccountContacts>(
    contacts: &A,
    request: &ExportRequest,
) -> Result<Spool, ExportError> {
    let mut spool = csv::WriterBuilder::new()
        .flexible(true)
        .has_headers(false)
        .from_writer(BufWriter::new(tempfile::tempfile()?));
    let mut attr_names = BTreeSet::new();
    let mut count = 0u64;
    let mut pages = contact_pages(contacts, &request.account_id, request.channel);
    while let Some(page) = pages.try_next().await? {
        for contact in page.contacts.iter().filter(|c| request.admits(c)) {
            let mut record = contact_cells(contact);
            for (name, value) in &contact.attrs {
                if !attr_names.contains(name) {
                    attr_names.insert(name.clone());
                }
                record.extend([name.clone(), value.clone()]);
            }
            spool.write_record(&record).map_err(std::io::Error::from)?;
            count += 1;
        }
    }
    let mut file = spool
        .into_inner()
        .map_err(|e| e.into_error())?
        .into_inner()
        .map_err(|e| e.into_error())?;
    file.rewind()?;
    Ok(Spool {
        file,
        attr_names,
        count,
    })
}

/// Pass 2: the spool as the export's CSV, streamed to `out` part by part; on failure
/// the upload is aborted, so no partial file appears.
async fn write_csv<O: ObjectStore>(
    spooled: Spool,
    mut out: ObjectWriter<'_, O>,
) -> Result<(), ExportError> {
    match fill(spooled, &mut out).await {
        Ok(last) => Ok(out.finish(last).await?),
        Err(e) => {
            out.abort().await;
            Err(e)
        }
    }
}

/// Writes every row but the bytes of the last, unfinished part, which it returns.
async fn fill<O: ObjectStore>(
    spooled: Spool,
    out: &mut ObjectWriter<'_, O>,
) -> Result<Vec<u8>, ExportError> {
    let attr_names: Vec<&String> = spooled.attr_names.iter().collect();
    let part_bytes = out.part_bytes();
    let new_part = || csv::Writer::from_writer(Vec::with_capacity(part_bytes + part_bytes / 8));
    let mut csv = new_part();
    let header = EXPORT_COLUMNS
        .iter()
        .map(|(title, _)| *title)
        .chain(attr_names.iter().map(|n| n.as_str()));
    write_row(&mut csv, header)?;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(false)
        .from_reader(BufReader::new(spooled.file));
    let fixed = EXPORT_COLUMNS.len();
    let mut record = csv::StringRecord::new();
    while reader
        .read_record(&mut record)
        .map_err(std::io::Error::from)?
    {
        let pairs: Vec<&str> = record.iter().skip(fixed).collect();
        let attrs: BTreeMap<&str, &str> = pairs
            .chunks_exact(2)
            .map(|pair| (pair[0], pair[1]))
            .collect();
        let row = record.iter().take(fixed).chain(
            attr_names
                .iter()
                .map(|n| attrs.get(n.as_str()).copied().unwrap_or("")),
        );
        write_row(&mut csv, row)?;
        if csv.get_ref().len() >= part_bytes {
            let full = std::mem::replace(&mut csv, new_part());
            out.write_part(full.into_inner().map_err(|e| e.into_error())?)
                .await?;
        }
    }
    Ok(csv.into_inner().map_err(|e| e.into_error())?)
}

/// Writes one CSV row of formula-safe cells.
fn write_row<'c, W: Write>(
    csv: &mut csv::Writer<W>,
    cells: impl Iterator<Item = &'c str>,
) -> std::io::Result<()> {
    for cell in cells {
        csv.write_field(export_safe(cell).as_bytes())
            .map_err(std::io::Error::from)?;
    }
    csv.write_record(None::<&[u8]>)
        .map_err(std::io::Error::from)
}

#[cfg(test)]
mod tests;
