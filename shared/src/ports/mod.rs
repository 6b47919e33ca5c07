//! Ports: the small async traits the services are generic over, one per kind of store.
//! The AWS adapters live in [`crate::aws`]; with the `test-util` feature (and in this
//! crate's tests), `memory` has an in-memory double of each port.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use aws_lambda_events::s3::S3Event;
use serde::{Deserialize, Serialize};

use crate::domain::channel::Channel;
use crate::domain::contact::Contact;
use crate::domain::outcome::{ImportStatus, RowCounts};
use crate::domain::phone::PhoneRejection;
use crate::domain::validate::WarningCode;

/// A failure talking to a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The service call failed (after the SDK's own retries).
    #[error("{operation} failed: {source}")]
    Service {
        /// What was being done.
        operation: &'static str,
        /// The SDK error, kept whole.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The object does not exist.
    #[error("s3://{bucket}/{key} does not exist")]
    NotFound {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
    },
    /// A job write was refused: another worker took the job over (its lease token is
    /// no longer the stored one), so this worker must stop before its next write.
    #[error("import {import_id} was taken over by another worker: this one stops")]
    LeaseLost {
        /// The import.
        import_id: String,
    },
    /// A stored item does not have the shape we write.
    #[error("stored item {pk} is malformed: {problem}")]
    Malformed {
        /// Its key.
        pk: String,
        /// What is wrong.
        problem: String,
    },
}

/// What HEAD says about an object.
#[derive(Clone, Debug, Default)]
pub struct ObjectInfo {
    /// Size in bytes.
    pub size: u64,
    /// eTag without quotes.
    pub etag: Option<String>,
    /// Version id.
    pub version_id: Option<String>,
    /// User metadata (keys without `x-amz-meta-`).
    pub metadata: HashMap<String, String>,
}

/// A streamed object body.
pub type ByteStream = Pin<Box<dyn tokio::io::AsyncRead + Send>>;

/// The body of an object to write.
#[derive(Debug)]
pub enum PutBody {
    /// Small bodies, in memory.
    Bytes(Vec<u8>),
    /// Large bodies, from a file.
    File(PathBuf),
}

/// Object storage (S3).
pub trait ObjectStore: Send + Sync {
    /// HEAD: size, eTag, metadata.
    fn head(
        &self,
        bucket: &str,
        key: &str,
    ) -> impl Future<Output = Result<ObjectInfo, StoreError>> + Send;
    /// GET as a stream.
    fn open(
        &self,
        bucket: &str,
        key: &str,
    ) -> impl Future<Output = Result<ByteStream, StoreError>> + Send;
    /// PUT.
    fn put(
        &self,
        bucket: &str,
        key: &str,
        body: PutBody,
        content_type: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Starts a multipart upload; returns its upload id.
    fn start_multipart(
        &self,
        bucket: &str,
        key: &str,
        content_type: &str,
    ) -> impl Future<Output = Result<String, StoreError>> + Send;
    /// Uploads part `part_number` (from 1) of a multipart upload; every part but the
    /// last must hold at least [`MIN_PART_BYTES`]. Returns the part's eTag.
    fn upload_part(
        &self,
        upload: &MultipartUpload,
        part_number: i32,
        bytes: Vec<u8>,
    ) -> impl Future<Output = Result<String, StoreError>> + Send;
    /// Completes a multipart upload from its parts' eTags, in part order: the object
    /// appears whole.
    fn complete_multipart(
        &self,
        upload: &MultipartUpload,
        etags: &[String],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Abandons a multipart upload: its parts are deleted and no object appears.
    fn abort_multipart(
        &self,
        upload: &MultipartUpload,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// DELETE (an absent object is no error).
    fn delete(
        &self,
        bucket: &str,
        key: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// S3's smallest part of a multipart upload, but for the last one.
pub const MIN_PART_BYTES: usize = 5 * 1024 * 1024;

/// A multipart upload in progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MultipartUpload {
    /// Bucket.
    pub bucket: String,
    /// Key of the object it makes.
    pub key: String,
    /// The id S3 gave it.
    pub upload_id: String,
}

/// The condition a contact write is made under.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Precondition {
    /// Create: no item with this key exists.
    Absent,
    /// Update: the stored version is still this one (nobody wrote in between).
    Version(u64),
}

/// Result of a conditional contact write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PutOutcome {
    /// The write happened.
    Written,
    /// The condition failed; the item as it is now (`ALL_OLD`), if any.
    Conflict(Option<Box<Contact>>),
}

/// What became of one write of [`ContactStore::write_contacts`], each made on its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The write happened.
    Written,
    /// Its precondition failed: the item as it is now when the store answered it
    /// (`ALL_OLD` of a refused update), `None` when it did not (a refused create says
    /// only that the item exists; a refused update, that it is gone). Read again.
    Refused(Option<Box<Contact>>),
    /// Not made for reasons outside the write (throttling, a transaction on the same
    /// item): send it again as it is.
    Retry,
}

/// How long to wait before sending again, in round `round` (0-based), what DynamoDB
/// throttled or left unprocessed: 25 ms, doubling, at most 1.6 s.
pub fn backoff(round: u32) -> std::time::Duration {
    std::time::Duration::from_millis(25 << round.min(6))
}

/// Most contacts one [`ContactStore::read_contacts`] or [`ContactStore::write_contacts`]
/// call takes (`BatchGetItem`'s limit; four `BatchExecuteStatement` requests).
pub const MAX_CONTACTS_PER_CALL: usize = 100;

/// Contact items.
pub trait ContactStore: Send + Sync {
    /// Reads a contact (dry runs and events).
    fn get_contact(
        &self,
        account_id: &str,
        channel: Channel,
        phone: &str,
    ) -> impl Future<Output = Result<Option<Contact>, StoreError>> + Send;
    /// Writes a whole contact under a precondition.
    fn put_contact(
        &self,
        contact: &Contact,
        precondition: Precondition,
    ) -> impl Future<Output = Result<PutOutcome, StoreError>> + Send;
    /// The stored contacts of up to [`MAX_CONTACTS_PER_CALL`] distinct numbers, in the
    /// order given (`None` for a number without one): eventually consistent (half the
    /// read units) unless `consistent`. An import reads before it writes; the
    /// conditional writes catch what a stale read missed.
    fn read_contacts(
        &self,
        account_id: &str,
        channel: Channel,
        phones: &[String],
        consistent: bool,
    ) -> impl Future<Output = Result<Vec<Option<Contact>>, StoreError>> + Send;
    /// Writes up to [`MAX_CONTACTS_PER_CALL`] contacts (distinct keys), each under its
    /// precondition and each on its own, at a single write's price (no transaction:
    /// one row's refusal does not hold back the others); what became of each, in the
    /// order given.
    fn write_contacts(
        &self,
        writes: &[(Contact, Precondition)],
    ) -> impl Future<Output = Result<Vec<Applied>, StoreError>> + Send;
}

/// Erasure tombstones (DESIGN section 14), keyed by the number's digest
/// ([`crate::domain::suppression::SuppressionKey::digest`]), never by the number.
pub trait Suppressions: Send + Sync {
    /// Deletes `contact` while it is still at its version, each of `aliases` while it
    /// still names `contact`, and puts a tombstone for each of `digests` (the number's,
    /// and each BSUID's own key's), all in one transaction. `false` when a condition did
    /// not hold (the contact is gone or was written meanwhile, an alias moved): then
    /// nothing was written; read again.
    fn erase_contact(
        &self,
        contact: &Contact,
        aliases: &[Alias],
        digests: &[String],
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Which of `digests` (at most 100) have a tombstone, in the order given.
    fn suppressed(
        &self,
        account_id: &str,
        channel: Channel,
        digests: &[String],
    ) -> impl Future<Output = Result<Vec<bool>, StoreError>> + Send;
    /// Removes the tombstones of `digests` (at most 100) that exist (the person wrote
    /// again). They are looked up first ([`Suppressions::suppressed`]): a person nobody
    /// erased, nearly everyone, costs that read and never a write.
    fn lift_suppressions(
        &self,
        account_id: &str,
        channel: Channel,
        digests: &[String],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// A business-scoped user id naming a contact (DESIGN section 13):
/// `ALIAS#{account_id}#whatsapp#{user_id}` / `CONTACT`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alias {
    /// Owning account.
    pub account_id: String,
    /// The BSUID.
    pub user_id: String,
    /// The key part of the contact it names (an E.164 number or `bsuid:{user_id}`);
    /// stored as the contact's `pk` (`contact_pk`).
    pub contact_key: String,
    /// The business number it arrived through (aliases are kept per portfolio).
    pub phone_number_id: String,
}

/// One write of an identity change, all of whose writes happen or none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdentityWrite {
    /// A contact, created or updated under its precondition.
    Contact(Contact, Precondition),
    /// A contact removed (merged into another), if still at its version.
    RemoveContact(Contact),
    /// An alias put: when absent (`None`), or while it still names `Some(key)`.
    Alias(Alias, Option<String>),
    /// An alias removed (the user's BSUID changed), while it still names its contact.
    RemoveAlias(Alias),
}

/// WhatsApp identities: which account a business number belongs to, contacts by
/// several candidate keys, and BSUID aliases.
pub trait Identities: Send + Sync {
    /// The account of a business number (`WABA#{phone_number_id}` / `ACCOUNT`).
    fn account_of_number(
        &self,
        phone_number_id: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
    /// The stored contacts among `keys` (at most 100 key parts: E.164 numbers or
    /// `bsuid:` keys), in one batch read; in no particular order.
    fn contacts_by_keys(
        &self,
        account_id: &str,
        channel: Channel,
        keys: &[String],
    ) -> impl Future<Output = Result<Vec<Contact>, StoreError>> + Send;
    /// The alias of `user_id`, if any.
    fn alias(
        &self,
        account_id: &str,
        user_id: &str,
    ) -> impl Future<Output = Result<Option<Alias>, StoreError>> + Send;
    /// Makes every write or none (one transaction): `false` when a precondition did
    /// not hold (someone else wrote first: read again and decide again).
    fn write_identity(
        &self,
        writes: &[IdentityWrite],
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// Where a listing of one `by_account` partition stopped: the last key read (attribute
/// name to string value), opaque to everyone but the adapter that made it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PageToken(pub BTreeMap<String, String>);

/// One page of an account's contacts in one `by_account` partition.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContactPage {
    /// The contacts, in the partition's order.
    pub contacts: Vec<Contact>,
    /// Where the next page starts; `None` after the last page.
    pub next: Option<PageToken>,
}

/// An account's contacts through GSI `by_account`, never a table scan: one partition
/// (shard) at a time, a page at a time, so callers read the shards concurrently and
/// hold one page of each at most.
pub trait AccountContacts: Send + Sync {
    /// The page of `account_id`'s contacts in shard `shard` (0 to 15, DESIGN section 9)
    /// that starts after `after` (from the start when `None`); only `channel`'s
    /// contacts when given.
    fn contacts_page(
        &self,
        account_id: &str,
        channel: Option<Channel>,
        shard: u8,
        after: Option<PageToken>,
    ) -> impl Future<Output = Result<ContactPage, StoreError>> + Send;
}

/// What a conditional delete of a contact did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// The contact was as expected, and is gone.
    Deleted,
    /// The contact changed meanwhile and was kept; as it is now (`ALL_OLD`).
    Kept(Box<Contact>),
    /// There was no such contact (already deleted).
    Absent,
}

/// Removing contacts an import created (`import.undo`, DESIGN section 14).
pub trait ContactRemoval: Send + Sync {
    /// Deletes `contact` only if it is still as import `import_id` created it: version
    /// 1 and `last_import_id` = `import_id`, checked by the store in the delete itself,
    /// so a write that lands after the contact was read keeps it.
    fn delete_if_untouched(
        &self,
        contact: &Contact,
        import_id: &str,
    ) -> impl Future<Output = Result<DeleteOutcome, StoreError>> + Send;
}

/// Progress of an import, as the job item records it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobProgress {
    /// Counts so far.
    pub rows: RowCounts,
    /// Rejections so far.
    pub rejections_by_reason: BTreeMap<PhoneRejection, u64>,
    /// Warnings so far.
    pub warnings_by_code: BTreeMap<WarningCode, u64>,
    /// Last file line whose outcome is committed: a resumed run starts after it.
    pub last_row: u64,
    /// Parts of `rows.csv` stored so far (its lines up to `last_row`): a resumed run
    /// starts its report from them.
    pub report_parts: u32,
    /// DynamoDB capacity the import consumed up to this progress, all invocations
    /// together.
    #[serde(default)]
    pub consumed: crate::domain::capacity::Consumed,
}

/// The job item of one import.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    /// Account.
    pub account_id: String,
    /// Import id.
    pub import_id: String,
    /// Status.
    pub status: ImportStatus,
    /// Progress.
    pub progress: JobProgress,
    /// Key of summary.json.
    pub summary_key: String,
    /// The upload's key.
    pub source_key: String,
    /// RFC 3339 UTC with milliseconds: when the import first started (a resumed run
    /// keeps it).
    pub started_at: String,
    /// When the import finished (summary.json's `finished_at`); `None` while it runs.
    pub finished_at: Option<String>,
    /// Unix seconds after which a `running` job's owner is presumed dead.
    pub lease_expires_at: i64,
    /// The holder's token, new with each claim: every later write of the job is
    /// conditional on it, so a worker that lost the job cannot overwrite the taker's.
    pub lease_token: String,
    /// Finished, and its completion event not yet published: whoever finds it so
    /// after its owner's lease ran out publishes it (attribute `completion_event =
    /// pending`, absent otherwise).
    pub completion_pending: bool,
}

/// Result of trying to take a job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// New job: start from the first row.
    Started,
    /// A running job whose owner's lease expired: resume from its progress.
    TakenOver(Box<Job>),
    /// Someone else is running it, or it is finished: do nothing.
    Declined(Box<Job>),
}

/// Import job items.
pub trait JobStore: Send + Sync {
    /// Takes the job with one conditional put: when absent, or running with an expired
    /// lease at `now` (Unix seconds).
    fn claim_job(
        &self,
        job: &Job,
        now: i64,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send;
    /// Records progress or the final status, only while `job.lease_token` is the
    /// stored one ([`StoreError::LeaseLost`] otherwise).
    fn save_job(&self, job: &Job) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Extends the lease to `until` (Unix seconds) under the same condition.
    fn renew_lease(
        &self,
        job: &Job,
        until: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Takes a finished job whose completion event is still to be published and whose
    /// owner's lease ran out by `now`: its lease becomes `job`'s token until
    /// `job.lease_expires_at`. `false` when it is not such a job (any more).
    fn claim_completion(
        &self,
        job: &Job,
        now: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Records the job in its account's history ([`ImportHistory`]): the index item
    /// `ACCOUNT#{account_id}` / `IMPORT#{started_at}#{import_id}`
    /// ([`import_index_sk`](crate::domain::keys::import_index_sk)). Unconditional and
    /// keyed by the job's original start time, so writing it again (on a resume) puts
    /// the same item: one more write unit per import, and one per resume.
    fn index_job(&self, job: &Job) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Most imports one [`ImportHistory::imports_page`] answers.
pub const MAX_IMPORTS_PER_PAGE: usize = 100;

/// One page of an account's imports, newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportPage {
    /// The imports' job items, newest first (an index item whose job item is gone is
    /// left out).
    pub jobs: Vec<Job>,
    /// The index sort key the page ended on, when more imports follow it; `None` on the
    /// last page.
    pub next: Option<String>,
}

/// An account's imports, newest first, read by key through the account's index items
/// ([`JobStore::index_job`]), never by a table scan.
pub trait ImportHistory: Send + Sync {
    /// Up to `limit` (1 to [`MAX_IMPORTS_PER_PAGE`]) of `account_id`'s imports, newest
    /// first, starting after the index sort key `after` (from the newest when `None`).
    fn imports_page(
        &self,
        account_id: &str,
        limit: usize,
        after: Option<&str>,
    ) -> impl Future<Output = Result<ImportPage, StoreError>> + Send;
}

/// Where an import says it is done (DESIGN section 15): one event per finished import.
pub trait ImportEvents: Send + Sync {
    /// Publishes `Contact Import Completed` with `detail` (summary.json without
    /// `column_mapping`, with the report keys).
    fn import_completed(
        &self,
        detail: &serde_json::Value,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// What a store's requests consumed so far: DynamoDB capacity as it reports it, and
/// what it charged without reporting (DESIGN section 9). Readings are taken before and
/// after a piece of work; their difference is what the work cost.
pub trait CapacityMeter: Send + Sync {
    /// The total so far.
    fn consumed(&self) -> crate::domain::capacity::Consumed;
}

/// Where a deployment keeps its secrets (an encrypted store), read once at start.
pub trait SecretStore: Send + Sync {
    /// The text of the secret `id` (an ARN or a name).
    fn secret_string(&self, id: &str) -> impl Future<Output = Result<String, StoreError>> + Send;
}

/// Account settings.
pub trait SettingsStore: Send + Sync {
    /// The account's `default_country` setting.
    fn default_country(
        &self,
        account_id: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
    /// The mapping (JSON, `{"Column title": "target"}`) the account saved for the
    /// header signature `signature` ([`header_signature`](crate::domain::mapping::header_signature)).
    fn saved_mapping(
        &self,
        account_id: &str,
        signature: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
    /// Keeps `mapping` as the account's mapping for its header signature (replacing
    /// an earlier one).
    fn save_mapping(
        &self,
        account_id: &str,
        mapping: &SavedMapping,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// A mapping an upload's `mapping` option gave, kept for later uploads with the same
/// header (DESIGN section 15).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedMapping {
    /// The header signature it is kept under.
    pub signature: String,
    /// `{"Column title": "target"}`, JSON.
    pub mapping: String,
    /// The import that saved it.
    pub import_id: String,
    /// RFC 3339.
    pub saved_at: String,
}

/// One event as [`EventLedger::record_events`] records it, or
/// [`EventLedger::store_answers`] answers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerEntry {
    /// Owning account.
    pub account_id: String,
    /// The event's key, as stored.
    pub event_key: String,
    /// The answer recorded.
    pub answer: String,
    /// Unix seconds after which the event is forgotten.
    pub expires_at: i64,
}

/// Events already processed (idempotency of contact-events).
pub trait EventLedger: Send + Sync {
    /// Records `event_key` with the answer given; `Some(previous answer)` when it was
    /// already recorded, so a redelivery answers the same.
    fn record_event(
        &self,
        account_id: &str,
        event_key: &str,
        answer: &str,
        expires_at: i64,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
    /// Replaces the recorded answer (after the work it stands for is done).
    fn store_answer(
        &self,
        account_id: &str,
        event_key: &str,
        answer: &str,
        expires_at: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Records each of `entries` (distinct keys) as [`EventLedger::record_event`] does,
    /// each on its own, in as few requests as the store allows; the previous answer of
    /// each, in the order given.
    fn record_events(
        &self,
        entries: &[LedgerEntry],
    ) -> impl Future<Output = Result<Vec<Option<String>>, StoreError>> + Send {
        async move {
            let mut previous = Vec::with_capacity(entries.len());
            for e in entries {
                previous.push(
                    self.record_event(&e.account_id, &e.event_key, &e.answer, e.expires_at)
                        .await?,
                );
            }
            Ok(previous)
        }
    }
    /// Stores each of `entries`' answers (distinct keys) as
    /// [`EventLedger::store_answer`] does, in as few requests as the store allows.
    fn store_answers(
        &self,
        entries: &[LedgerEntry],
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move {
            for e in entries {
                self.store_answer(&e.account_id, &e.event_key, &e.answer, e.expires_at)
                    .await?;
            }
            Ok(())
        }
    }
}

/// Continues an import in a fresh invocation of the same function when this one runs
/// short of time (Lambda's asynchronous invoke of itself).
pub trait Continuation: Send + Sync {
    /// Submits `event` (the records still to import, as the function receives them)
    /// for asynchronous processing; returns once it is accepted.
    fn continue_with(&self, event: &S3Event)
        -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// A signed webhook body as the receiver stored it: the raw bytes and what the
/// receiver knew of them (DESIGN section 13: stored, then answered; applied later).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredWebhook {
    /// The body exactly as it arrived.
    pub body: Vec<u8>,
    /// When the receiver took it (RFC 3339, milliseconds, UTC).
    pub received_at: String,
}

/// A stored body that will not be applied: the body and the attributes it was stored
/// with, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    /// The queued message's body, as it was queued.
    pub body: String,
    /// The queued message's string attributes (`received_at`, `signature`, ...).
    pub attributes: BTreeMap<String, String>,
    /// Why it was given up: an error type and what failed, never a value of the body.
    pub reason: String,
    /// How many times it had been received.
    pub receive_count: u64,
}

/// Where signed webhook bodies wait to be applied (an SQS queue on AWS), and where the
/// ones that cannot be applied are put aside with their reason (its dead-letter queue).
pub trait WebhookQueue: Send + Sync {
    /// Stores `webhook` durably; returns once the queue has it.
    fn enqueue(
        &self,
        webhook: &StoredWebhook,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Puts a queued body aside with its reason; returns once the dead-letter queue has it.
    fn dead_letter(
        &self,
        letter: &DeadLetter,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

#[cfg(any(test, feature = "test-util"))]
pub mod memory;
