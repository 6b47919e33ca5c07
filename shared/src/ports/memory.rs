//! In-memory doubles of the ports, one per port, with the same semantics as the AWS
//! adapters: for unit tests here and in the functions (feature `test-util`).

use std::collections::HashMap;
use std::sync::Mutex;

use super::*;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Objects by (bucket, key): body and user metadata; multipart uploads in progress.
#[derive(Default)]
pub struct MemoryObjects {
    objects: Mutex<HashMap<(String, String), StoredObject>>,
    uploads: Mutex<Uploads>,
}

/// Multipart uploads: those in progress (their parts by number), and what became of
/// every one started.
#[derive(Default)]
struct Uploads {
    started: u64,
    parts: HashMap<String, BTreeMap<i32, Vec<u8>>>,
    part_sizes: Vec<usize>,
    aborted: u64,
    fail_part: Option<i32>,
}

fn store_failure(operation: &'static str, problem: &str) -> StoreError {
    StoreError::Service {
        operation,
        source: problem.to_string().into(),
    }
}

/// An object's body and user metadata.
type StoredObject = (Vec<u8>, HashMap<String, String>);

impl MemoryObjects {
    /// Stores an object.
    pub fn insert(&self, bucket: &str, key: &str, body: &[u8], metadata: &[(&str, &str)]) {
        let meta = metadata
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        lock(&self.objects).insert((bucket.into(), key.into()), (body.to_vec(), meta));
    }

    /// An object's body as text.
    pub fn text(&self, bucket: &str, key: &str) -> Option<String> {
        lock(&self.objects)
            .get(&(bucket.into(), key.into()))
            .map(|(b, _)| String::from_utf8_lossy(b).into_owned())
    }

    /// Makes every upload of part `part_number` fail, as a broken connection would.
    pub fn fail_part(&self, part_number: i32) {
        lock(&self.uploads).fail_part = Some(part_number);
    }

    /// Sizes of the parts uploaded so far, in upload order.
    pub fn part_sizes(&self) -> Vec<usize> {
        lock(&self.uploads).part_sizes.clone()
    }

    /// Multipart uploads started, aborted, and still open (neither completed nor aborted).
    pub fn multipart_counts(&self) -> (u64, u64, usize) {
        let uploads = lock(&self.uploads);
        (uploads.started, uploads.aborted, uploads.parts.len())
    }

    /// Keys of the objects under `prefix` in `bucket`.
    pub fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let mut keys: Vec<String> = lock(&self.objects)
            .keys()
            .filter(|(b, k)| b == bucket && k.starts_with(prefix))
            .map(|(_, k)| k.clone())
            .collect();
        keys.sort();
        keys
    }

    fn not_found(bucket: &str, key: &str) -> StoreError {
        StoreError::NotFound {
            bucket: bucket.into(),
            key: key.into(),
        }
    }
}

impl ObjectStore for MemoryObjects {
    async fn head(&self, bucket: &str, key: &str) -> Result<ObjectInfo, StoreError> {
        let objects = lock(&self.objects);
        let (body, metadata) = objects
            .get(&(bucket.into(), key.into()))
            .ok_or_else(|| Self::not_found(bucket, key))?;
        Ok(ObjectInfo {
            size: body.len() as u64,
            etag: Some(format!("{:x}", body.len())),
            version_id: None,
            metadata: metadata.clone(),
        })
    }

    async fn open(&self, bucket: &str, key: &str) -> Result<ByteStream, StoreError> {
        let body = lock(&self.objects)
            .get(&(bucket.into(), key.into()))
            .map(|(b, _)| b.clone())
            .ok_or_else(|| Self::not_found(bucket, key))?;
        Ok(Box::pin(std::io::Cursor::new(body)))
    }

    async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: PutBody,
        _content_type: &str,
    ) -> Result<(), StoreError> {
        let bytes = match body {
            PutBody::Bytes(b) => b,
            PutBody::File(path) => std::fs::read(path).map_err(|e| StoreError::Service {
                operation: "read report file",
                source: Box::new(e),
            })?,
        };
        lock(&self.objects).insert((bucket.into(), key.into()), (bytes, HashMap::new()));
        Ok(())
    }

    async fn start_multipart(
        &self,
        bucket: &str,
        key: &str,
        _content_type: &str,
    ) -> Result<String, StoreError> {
        let mut uploads = lock(&self.uploads);
        uploads.started += 1;
        let upload_id = format!("upload-{}-{bucket}-{key}", uploads.started);
        uploads.parts.insert(upload_id.clone(), BTreeMap::new());
        Ok(upload_id)
    }

    async fn upload_part(
        &self,
        upload: &MultipartUpload,
        part_number: i32,
        bytes: Vec<u8>,
    ) -> Result<String, StoreError> {
        let mut uploads = lock(&self.uploads);
        if uploads.fail_part == Some(part_number) {
            return Err(store_failure("S3 UploadPart", "connection reset"));
        }
        uploads.part_sizes.push(bytes.len());
        let etag = format!("etag-{part_number}-{}", bytes.len());
        uploads
            .parts
            .get_mut(&upload.upload_id)
            .ok_or_else(|| store_failure("S3 UploadPart", "NoSuchUpload"))?
            .insert(part_number, bytes);
        Ok(etag)
    }

    async fn complete_multipart(
        &self,
        upload: &MultipartUpload,
        etags: &[String],
    ) -> Result<(), StoreError> {
        let parts = lock(&self.uploads)
            .parts
            .remove(&upload.upload_id)
            .ok_or_else(|| store_failure("S3 CompleteMultipartUpload", "NoSuchUpload"))?;
        // S3's rules: the parts named are those uploaded, numbered from 1, and all but
        // the last hold at least MIN_PART_BYTES.
        let numbers: Vec<i32> = parts.keys().copied().collect();
        let expected: Vec<i32> = (1..=etags.len() as i32).collect();
        if numbers != expected {
            return Err(store_failure("S3 CompleteMultipartUpload", "InvalidPart"));
        }
        let sizes: Vec<usize> = parts.values().map(Vec::len).collect();
        if sizes[..sizes.len().saturating_sub(1)]
            .iter()
            .any(|&size| size < MIN_PART_BYTES)
        {
            return Err(store_failure(
                "S3 CompleteMultipartUpload",
                "EntityTooSmall",
            ));
        }
        let body: Vec<u8> = parts.into_values().flatten().collect();
        lock(&self.objects).insert(
            (upload.bucket.clone(), upload.key.clone()),
            (body, HashMap::new()),
        );
        Ok(())
    }

    async fn abort_multipart(&self, upload: &MultipartUpload) -> Result<(), StoreError> {
        let mut uploads = lock(&self.uploads);
        uploads.parts.remove(&upload.upload_id);
        uploads.aborted += 1;
        Ok(())
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<(), StoreError> {
        lock(&self.objects).remove(&(bucket.into(), key.into()));
        Ok(())
    }
}

/// The identity a contact is stored under.
type ContactKey = (String, Channel, String);

fn key_of(contact: &Contact) -> ContactKey {
    (
        contact.account_id.clone(),
        contact.channel,
        contact.phone.clone(),
    )
}

/// Contacts, with a count of the writes attempted.
#[derive(Default)]
pub struct MemoryContacts {
    contacts: Mutex<HashMap<ContactKey, Contact>>,
    writes: Mutex<u64>,
    batches: Mutex<u64>,
    reads: Mutex<u64>,
    /// [`Identities::contacts_by_keys`] calls (batch reads by key).
    key_reads: Mutex<u64>,
    tombstones: Mutex<std::collections::HashSet<Tombstone>>,
    /// Business numbers' accounts, by `phone_number_id`.
    numbers: Mutex<HashMap<String, String>>,
    /// Aliases by (account, user id).
    aliases: Mutex<HashMap<(String, String), Alias>>,
    /// `write_contacts` calls so far, and the numbers whose next call fails as a lost
    /// connection would.
    batch_calls: Mutex<(u64, std::collections::BTreeSet<String>)>,
    /// A `write_contacts` call that stalls: it says it was reached, then waits to be released.
    stalled_call: Mutex<Option<(u64, Stall)>>,
    /// Business numbers whose look-up fails as an unreachable table would.
    unavailable_numbers: Mutex<std::collections::HashSet<String>>,
}

/// The two signals of a stalled call: `reached` when it starts waiting, `release` to
/// let it go on.
#[derive(Clone, Default)]
pub struct Stall {
    /// Notified when the stalled call is reached.
    pub reached: std::sync::Arc<tokio::sync::Notify>,
    /// Notify to let the stalled call go on.
    pub release: std::sync::Arc<tokio::sync::Notify>,
}

impl MemoryContacts {
    /// A contact by account, channel and E.164 number.
    pub fn get(&self, account_id: &str, channel: Channel, phone: &str) -> Option<Contact> {
        lock(&self.contacts)
            .get(&(account_id.into(), channel, phone.into()))
            .cloned()
    }

    /// A contact by its item key (`CONTACT#{account}#{channel}#{e164}`).
    pub fn by_pk(&self, pk: &str) -> Option<Contact> {
        lock(&self.contacts)
            .values()
            .find(|c| crate::domain::keys::contact_pk(&c.account_id, c.channel, &c.phone) == pk)
            .cloned()
    }

    /// Every contact stored, in no particular order.
    pub fn all(&self) -> Vec<Contact> {
        lock(&self.contacts).values().cloned().collect()
    }

    /// Number of contacts stored.
    pub fn count(&self) -> usize {
        lock(&self.contacts).len()
    }

    /// Number of contact writes attempted (each write of a transaction counts).
    pub fn writes(&self) -> u64 {
        *lock(&self.writes)
    }

    /// Number of [`ContactStore::write_contacts`] calls answered.
    pub fn batches(&self) -> u64 {
        *lock(&self.batches)
    }

    /// Number of contacts read by [`ContactStore::read_contacts`].
    pub fn reads(&self) -> u64 {
        *lock(&self.reads)
    }

    /// Number of [`Identities::contacts_by_keys`] calls (one batch read each).
    pub fn key_reads(&self) -> u64 {
        *lock(&self.key_reads)
    }

    /// Makes the `call`-th [`ContactStore::write_contacts`] call from now on (1-based)
    /// stall, as a worker paused by its host would, until released.
    pub fn stall_batch(&self, call: u64) -> Stall {
        let stall = Stall::default();
        let from = lock(&self.batch_calls).0;
        *lock(&self.stalled_call) = Some((from + call, stall.clone()));
        stall
    }

    /// Makes the next [`ContactStore::write_contacts`] call that writes `phone` fail
    /// (as a lost connection would), writing nothing.
    pub fn fail_batch_with(&self, phone: &str) {
        lock(&self.batch_calls).1.insert(phone.into());
    }
}

/// A model of what DynamoDB would charge: a write unit per contact write attempted,
/// half a read unit per contact read, a request per call.
impl CapacityMeter for MemoryContacts {
    fn consumed(&self) -> crate::domain::capacity::Consumed {
        crate::domain::capacity::Consumed {
            write_units: *lock(&self.writes) as f64,
            read_units: *lock(&self.reads) as f64 * 0.5,
            requests: *lock(&self.batches),
        }
    }
}

impl ContactStore for MemoryContacts {
    async fn get_contact(
        &self,
        account_id: &str,
        channel: Channel,
        phone: &str,
    ) -> Result<Option<Contact>, StoreError> {
        Ok(self.get(account_id, channel, phone))
    }

    async fn put_contact(
        &self,
        contact: &Contact,
        precondition: Precondition,
    ) -> Result<PutOutcome, StoreError> {
        *lock(&self.writes) += 1;
        let mut contacts = lock(&self.contacts);
        let existing = contacts.get(&key_of(contact));
        let ok = match (precondition, existing) {
            (Precondition::Absent, None) => true,
            (Precondition::Version(v), Some(old)) => old.version == v,
            _ => false,
        };
        if !ok {
            return Ok(PutOutcome::Conflict(existing.cloned().map(Box::new)));
        }
        contacts.insert(key_of(contact), contact.clone());
        Ok(PutOutcome::Written)
    }

    async fn read_contacts(
        &self,
        account_id: &str,
        channel: Channel,
        phones: &[String],
        _consistent: bool,
    ) -> Result<Vec<Option<Contact>>, StoreError> {
        *lock(&self.reads) += phones.len() as u64;
        Ok(phones
            .iter()
            .map(|phone| self.get(account_id, channel, phone))
            .collect())
    }

    async fn write_contacts(
        &self,
        writes: &[(Contact, Precondition)],
    ) -> Result<Vec<Applied>, StoreError> {
        let stall = {
            let mut calls = lock(&self.batch_calls);
            calls.0 += 1;
            let call = calls.0;
            if writes
                .iter()
                .any(|(contact, _)| calls.1.remove(&contact.phone))
            {
                return Err(store_failure(
                    "DynamoDB BatchExecuteStatement",
                    "connection reset",
                ));
            }
            lock(&self.stalled_call)
                .as_ref()
                .filter(|(at, _)| *at == call)
                .map(|(_, stall)| stall.clone())
        };
        if let Some(stall) = stall {
            stall.reached.notify_one();
            stall.release.notified().await;
        }
        *lock(&self.writes) += writes.len() as u64;
        *lock(&self.batches) += 1;
        let mut contacts = lock(&self.contacts);
        let answers = writes
            .iter()
            .map(|(contact, precondition)| {
                let existing = contacts.get(&key_of(contact));
                match (precondition, existing) {
                    (Precondition::Absent, None) => {}
                    (Precondition::Version(v), Some(old)) if old.version == *v => {}
                    // As DynamoDB: a refused INSERT says only that the key exists.
                    (Precondition::Absent, Some(_)) => return Applied::Refused(None),
                    _ => return Applied::Refused(existing.cloned().map(Box::new)),
                }
                contacts.insert(key_of(contact), contact.clone());
                Applied::Written
            })
            .collect();
        Ok(answers)
    }
}

impl MemoryContacts {
    /// Names `account_id` as the owner of business number `phone_number_id`.
    pub fn add_business_number(&self, phone_number_id: &str, account_id: &str) {
        lock(&self.numbers).insert(phone_number_id.into(), account_id.into());
    }

    /// Makes look-ups of business number `phone_number_id` fail (`true`) or work again.
    pub fn set_number_unavailable(&self, phone_number_id: &str, unavailable: bool) {
        let mut numbers = lock(&self.unavailable_numbers);
        if unavailable {
            numbers.insert(phone_number_id.into());
        } else {
            numbers.remove(phone_number_id);
        }
    }

    /// Every alias stored.
    pub fn aliases(&self) -> Vec<Alias> {
        lock(&self.aliases).values().cloned().collect()
    }
}

impl Identities for MemoryContacts {
    async fn account_of_number(&self, phone_number_id: &str) -> Result<Option<String>, StoreError> {
        if lock(&self.unavailable_numbers).contains(phone_number_id) {
            return Err(StoreError::Service {
                operation: "dynamodb:GetItem",
                source: "the table is unreachable".into(),
            });
        }
        Ok(lock(&self.numbers).get(phone_number_id).cloned())
    }

    async fn contacts_by_keys(
        &self,
        account_id: &str,
        channel: Channel,
        keys: &[String],
    ) -> Result<Vec<Contact>, StoreError> {
        *lock(&self.key_reads) += 1;
        Ok(keys
            .iter()
            .filter_map(|key| self.get(account_id, channel, key))
            .collect())
    }

    async fn alias(&self, account_id: &str, user_id: &str) -> Result<Option<Alias>, StoreError> {
        Ok(lock(&self.aliases)
            .get(&(account_id.to_string(), user_id.to_string()))
            .cloned())
    }

    async fn write_identity(&self, writes: &[IdentityWrite]) -> Result<bool, StoreError> {
        // DynamoDB refuses a transaction that names one item twice: so does this double.
        let mut items = std::collections::BTreeSet::new();
        for write in writes {
            let item = match write {
                IdentityWrite::Contact(contact, _) | IdentityWrite::RemoveContact(contact) => {
                    format!("contact {:?}", key_of(contact))
                }
                IdentityWrite::Alias(alias, _) | IdentityWrite::RemoveAlias(alias) => {
                    format!("alias {} {}", alias.account_id, alias.user_id)
                }
            };
            if !items.insert(item.clone()) {
                return Err(StoreError::Service {
                    operation: "TransactWriteItems (in memory)",
                    source: format!("one transaction names {item} twice").into(),
                });
            }
        }
        let mut contacts = lock(&self.contacts);
        let mut aliases = lock(&self.aliases);
        let holds = writes.iter().all(|write| match write {
            IdentityWrite::Contact(contact, precondition) => {
                match (precondition, contacts.get(&key_of(contact))) {
                    (Precondition::Absent, None) => true,
                    (Precondition::Version(v), Some(old)) => old.version == *v,
                    _ => false,
                }
            }
            IdentityWrite::RemoveContact(contact) => contacts
                .get(&key_of(contact))
                .is_some_and(|old| old.version == contact.version),
            IdentityWrite::Alias(alias, expected) => {
                let now = aliases.get(&(alias.account_id.clone(), alias.user_id.clone()));
                now.map(|a| &a.contact_key) == expected.as_ref()
            }
            IdentityWrite::RemoveAlias(alias) => aliases
                .get(&(alias.account_id.clone(), alias.user_id.clone()))
                .is_some_and(|a| a.contact_key == alias.contact_key),
        });
        if !holds {
            return Ok(false);
        }
        *lock(&self.writes) += writes.len() as u64;
        for write in writes {
            match write {
                IdentityWrite::Contact(contact, _) => {
                    contacts.insert(key_of(contact), contact.clone());
                }
                IdentityWrite::RemoveContact(contact) => {
                    contacts.remove(&key_of(contact));
                }
                IdentityWrite::Alias(alias, _) => {
                    aliases.insert(
                        (alias.account_id.clone(), alias.user_id.clone()),
                        alias.clone(),
                    );
                }
                IdentityWrite::RemoveAlias(alias) => {
                    aliases.remove(&(alias.account_id.clone(), alias.user_id.clone()));
                }
            }
        }
        Ok(true)
    }
}

/// Tombstones of [`MemoryContacts`]: (account, channel, digest).
type Tombstone = (String, Channel, String);

impl MemoryContacts {
    /// Puts a tombstone for `digest`, as an erasure does (without a contact to delete).
    pub fn add_tombstone(&self, account_id: &str, channel: Channel, digest: &str) {
        lock(&self.tombstones).insert((account_id.into(), channel, digest.into()));
    }

    /// Whether a tombstone for `digest` exists.
    pub fn is_suppressed(&self, account_id: &str, channel: Channel, digest: &str) -> bool {
        lock(&self.tombstones).contains(&(account_id.into(), channel, digest.into()))
    }
}

impl Suppressions for MemoryContacts {
    async fn erase_contact(
        &self,
        contact: &Contact,
        aliases: &[Alias],
        digests: &[String],
    ) -> Result<bool, StoreError> {
        let mut contacts = lock(&self.contacts);
        let mut stored_aliases = lock(&self.aliases);
        let key = key_of(contact);
        let holds = contacts
            .get(&key)
            .is_some_and(|stored| stored.version == contact.version)
            && aliases.iter().all(|alias| {
                stored_aliases
                    .get(&(alias.account_id.clone(), alias.user_id.clone()))
                    .is_some_and(|stored| stored.contact_key == contact.phone)
            });
        if !holds {
            return Ok(false);
        }
        contacts.remove(&key);
        for alias in aliases {
            stored_aliases.remove(&(alias.account_id.clone(), alias.user_id.clone()));
        }
        let mut tombstones = lock(&self.tombstones);
        for digest in digests {
            tombstones.insert((contact.account_id.clone(), contact.channel, digest.clone()));
        }
        Ok(true)
    }

    async fn suppressed(
        &self,
        account_id: &str,
        channel: Channel,
        digests: &[String],
    ) -> Result<Vec<bool>, StoreError> {
        Ok(digests
            .iter()
            .map(|d| self.is_suppressed(account_id, channel, d))
            .collect())
    }

    async fn lift_suppressions(
        &self,
        account_id: &str,
        channel: Channel,
        digests: &[String],
    ) -> Result<(), StoreError> {
        let mut tombstones = lock(&self.tombstones);
        for digest in digests {
            tombstones.remove(&(account_id.into(), channel, digest.clone()));
        }
        Ok(())
    }
}

/// How many contacts a page of [`AccountContacts::contacts_page`] holds here: few, so
/// tests page through every shard.
pub const MEMORY_PAGE_SIZE: usize = 3;

impl AccountContacts for MemoryContacts {
    async fn contacts_page(
        &self,
        account_id: &str,
        channel: Option<Channel>,
        shard: u8,
        after: Option<PageToken>,
    ) -> Result<ContactPage, StoreError> {
        use crate::domain::keys::{gsi1sk, gsi_shard};
        let shard = format!("{shard:02}");
        let start = after.and_then(|token| token.0.get("gsi1sk").cloned());
        // The index's order: by sort key within the partition.
        let mut listed: Vec<(String, Contact)> = lock(&self.contacts)
            .values()
            .filter(|c| c.account_id == account_id && gsi_shard(&c.phone) == shard)
            .filter(|c| channel.is_none_or(|ch| c.channel == ch))
            .map(|c| (gsi1sk(c.channel, &c.phone), c.clone()))
            .filter(|(sk, _)| start.as_ref().is_none_or(|s| sk > s))
            .collect();
        listed.sort_by(|a, b| a.0.cmp(&b.0));
        let more = listed.len() > MEMORY_PAGE_SIZE;
        listed.truncate(MEMORY_PAGE_SIZE);
        let next = listed
            .last()
            .filter(|_| more)
            .map(|(sk, _)| PageToken(BTreeMap::from([("gsi1sk".to_string(), sk.clone())])));
        Ok(ContactPage {
            contacts: listed.into_iter().map(|(_, c)| c).collect(),
            next,
        })
    }
}

impl ContactRemoval for MemoryContacts {
    async fn delete_if_untouched(
        &self,
        contact: &Contact,
        import_id: &str,
    ) -> Result<DeleteOutcome, StoreError> {
        *lock(&self.writes) += 1;
        let mut contacts = lock(&self.contacts);
        let key = key_of(contact);
        let Some(stored) = contacts.get(&key) else {
            return Ok(DeleteOutcome::Absent);
        };
        if stored.version != 1 || stored.last_import_id.as_deref() != Some(import_id) {
            return Ok(DeleteOutcome::Kept(Box::new(stored.clone())));
        }
        contacts.remove(&key);
        Ok(DeleteOutcome::Deleted)
    }
}

/// Import jobs by import id, and each account's index of its imports.
#[derive(Default)]
pub struct MemoryJobs {
    jobs: Mutex<HashMap<String, Job>>,
    /// Index items: (account, sort key) -> import id, in the table's order.
    index: Mutex<BTreeMap<(String, String), String>>,
    /// `index_job` calls so far.
    index_writes: Mutex<u64>,
}

impl MemoryJobs {
    /// A job by import id.
    pub fn get(&self, import_id: &str) -> Option<Job> {
        lock(&self.jobs).get(import_id).cloned()
    }

    /// Stores a job as it is, as a worker that claimed it earlier left it.
    pub fn insert(&self, job: Job) {
        lock(&self.jobs).insert(job.import_id.clone(), job);
    }

    /// Deletes a job item, leaving its index item (a history with a hole in it).
    pub fn remove(&self, import_id: &str) {
        lock(&self.jobs).remove(import_id);
    }

    /// The sort keys of the account's index items, oldest first.
    pub fn indexed(&self, account_id: &str) -> Vec<String> {
        lock(&self.index)
            .keys()
            .filter(|(account, _)| account == account_id)
            .map(|(_, sk)| sk.clone())
            .collect()
    }

    /// How many times an index item was written (rewrites included).
    pub fn index_writes(&self) -> u64 {
        *lock(&self.index_writes)
    }
}

impl ImportHistory for MemoryJobs {
    async fn imports_page(
        &self,
        account_id: &str,
        limit: usize,
        after: Option<&str>,
    ) -> Result<ImportPage, StoreError> {
        // As the adapter's Query: the account's partition, newest first, after `after`,
        // one item more than the page to know whether another page follows.
        let listed: Vec<(String, String)> = lock(&self.index)
            .iter()
            .rev()
            .filter(|((account, sk), _)| {
                account == account_id && after.is_none_or(|after| sk.as_str() < after)
            })
            .take(limit + 1)
            .map(|((_, sk), import_id)| (sk.clone(), import_id.clone()))
            .collect();
        let more = listed.len() > limit;
        let page = &listed[..listed.len().min(limit)];
        let jobs = lock(&self.jobs);
        let found = page
            .iter()
            .filter_map(|(sk, import_id)| {
                let job = jobs.get(import_id).cloned();
                if job.is_none() {
                    tracing::warn!(
                        account_id,
                        sk,
                        "import index item without its job item; skipped"
                    );
                }
                job
            })
            .collect();
        Ok(ImportPage {
            jobs: found,
            next: page.last().filter(|_| more).map(|(sk, _)| sk.clone()),
        })
    }
}

impl JobStore for MemoryJobs {
    async fn claim_job(&self, job: &Job, now: i64) -> Result<Claim, StoreError> {
        let mut jobs = lock(&self.jobs);
        match jobs.get(&job.import_id) {
            None => {
                jobs.insert(job.import_id.clone(), job.clone());
                Ok(Claim::Started)
            }
            Some(old) if old.status == ImportStatus::Running && old.lease_expires_at < now => {
                let old = old.clone();
                let taken = Job {
                    progress: old.progress.clone(),
                    ..job.clone()
                };
                jobs.insert(job.import_id.clone(), taken);
                Ok(Claim::TakenOver(Box::new(old)))
            }
            Some(old) => Ok(Claim::Declined(Box::new(old.clone()))),
        }
    }

    async fn save_job(&self, job: &Job) -> Result<(), StoreError> {
        let mut jobs = lock(&self.jobs);
        match jobs.get(&job.import_id) {
            Some(stored) if stored.lease_token == job.lease_token => {
                jobs.insert(job.import_id.clone(), job.clone());
                Ok(())
            }
            _ => Err(StoreError::LeaseLost {
                import_id: job.import_id.clone(),
            }),
        }
    }

    async fn renew_lease(&self, job: &Job, until: i64) -> Result<(), StoreError> {
        match lock(&self.jobs).get_mut(&job.import_id) {
            Some(stored) if stored.lease_token == job.lease_token => {
                stored.lease_expires_at = until;
                Ok(())
            }
            _ => Err(StoreError::LeaseLost {
                import_id: job.import_id.clone(),
            }),
        }
    }

    async fn index_job(&self, job: &Job) -> Result<(), StoreError> {
        use crate::domain::keys::import_index_sk;
        let sk = import_index_sk(&job.started_at, &job.import_id);
        lock(&self.index).insert((job.account_id.clone(), sk), job.import_id.clone());
        *lock(&self.index_writes) += 1;
        Ok(())
    }

    async fn claim_completion(&self, job: &Job, now: i64) -> Result<bool, StoreError> {
        match lock(&self.jobs).get_mut(&job.import_id) {
            Some(stored) if stored.completion_pending && stored.lease_expires_at < now => {
                stored.lease_token = job.lease_token.clone();
                stored.lease_expires_at = job.lease_expires_at;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

/// Completion events, as published (DESIGN section 15).
#[derive(Default)]
pub struct MemoryImportEvents {
    published: Mutex<Vec<serde_json::Value>>,
    unreachable: std::sync::atomic::AtomicBool,
}

impl MemoryImportEvents {
    /// Every event's detail, in the order published.
    pub fn published(&self) -> Vec<serde_json::Value> {
        lock(&self.published).clone()
    }

    /// Makes every later publish fail (or succeed again).
    pub fn set_unreachable(&self, unreachable: bool) {
        self.unreachable
            .store(unreachable, std::sync::atomic::Ordering::Relaxed);
    }
}

impl ImportEvents for MemoryImportEvents {
    async fn import_completed(&self, detail: &serde_json::Value) -> Result<(), StoreError> {
        if self.unreachable.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(StoreError::Service {
                operation: "events:PutEvents",
                source: "the event bus is unreachable (test)".into(),
            });
        }
        lock(&self.published).push(detail.clone());
        Ok(())
    }
}

/// Account settings: the default country by account.
#[derive(Default)]
pub struct MemorySettings {
    default_countries: Mutex<HashMap<String, String>>,
    mappings: Mutex<HashMap<(String, String), SavedMapping>>,
}

impl MemorySettings {
    /// Sets an account's default country.
    pub fn set_default_country(&self, account_id: &str, country: &str) {
        lock(&self.default_countries).insert(account_id.into(), country.into());
    }
}

impl MemorySettings {
    /// The mapping saved for `signature`, whole.
    pub fn mapping(&self, account_id: &str, signature: &str) -> Option<SavedMapping> {
        lock(&self.mappings)
            .get(&(account_id.to_string(), signature.to_string()))
            .cloned()
    }
}

impl SettingsStore for MemorySettings {
    async fn default_country(&self, account_id: &str) -> Result<Option<String>, StoreError> {
        Ok(lock(&self.default_countries).get(account_id).cloned())
    }

    async fn saved_mapping(
        &self,
        account_id: &str,
        signature: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(self.mapping(account_id, signature).map(|m| m.mapping))
    }

    async fn save_mapping(
        &self,
        account_id: &str,
        mapping: &SavedMapping,
    ) -> Result<(), StoreError> {
        lock(&self.mappings).insert(
            (account_id.to_string(), mapping.signature.clone()),
            mapping.clone(),
        );
        Ok(())
    }
}

/// Processed events and their answers, by account and event key.
#[derive(Default)]
pub struct MemoryLedger {
    events: Mutex<HashMap<String, String>>,
}

impl MemoryLedger {
    /// Every answer recorded.
    pub fn answers(&self) -> Vec<String> {
        lock(&self.events).values().cloned().collect()
    }

    /// Every key an event is remembered by (`{account_id}#{event_key}`).
    pub fn keys(&self) -> Vec<String> {
        lock(&self.events).keys().cloned().collect()
    }
}

impl EventLedger for MemoryLedger {
    async fn record_event(
        &self,
        account_id: &str,
        event_key: &str,
        answer: &str,
        _expires_at: i64,
    ) -> Result<Option<String>, StoreError> {
        let mut events = lock(&self.events);
        let key = format!("{account_id}#{event_key}");
        if let Some(previous) = events.get(&key) {
            return Ok(Some(previous.clone()));
        }
        events.insert(key, answer.to_string());
        Ok(None)
    }

    async fn store_answer(
        &self,
        account_id: &str,
        event_key: &str,
        answer: &str,
        _expires_at: i64,
    ) -> Result<(), StoreError> {
        lock(&self.events).insert(format!("{account_id}#{event_key}"), answer.to_string());
        Ok(())
    }
}

/// Records the events handed to [`Continuation::continue_with`].
#[derive(Default)]
pub struct MemoryContinuation {
    submitted: Mutex<Vec<S3Event>>,
}

impl MemoryContinuation {
    /// The events submitted so far.
    pub fn submitted(&self) -> Vec<S3Event> {
        lock(&self.submitted).clone()
    }
}

impl Continuation for MemoryContinuation {
    async fn continue_with(&self, event: &S3Event) -> Result<(), StoreError> {
        lock(&self.submitted).push(event.clone());
        Ok(())
    }
}

/// A webhook queue in memory: what was enqueued and what was dead-lettered. It can be
/// made to refuse (as an unreachable queue does), and has a dead-letter queue only when
/// asked ([`MemoryWebhookQueue::with_dead_letters`]).
#[derive(Default)]
pub struct MemoryWebhookQueue {
    queued: Mutex<Vec<StoredWebhook>>,
    dead: Mutex<Vec<DeadLetter>>,
    has_dead_letters: bool,
    unreachable: std::sync::atomic::AtomicBool,
}

impl MemoryWebhookQueue {
    /// A queue with a dead-letter queue.
    pub fn with_dead_letters() -> Self {
        MemoryWebhookQueue {
            has_dead_letters: true,
            ..MemoryWebhookQueue::default()
        }
    }

    /// Makes every call fail (`true`) or work again.
    pub fn set_unreachable(&self, unreachable: bool) {
        self.unreachable
            .store(unreachable, std::sync::atomic::Ordering::SeqCst);
    }

    /// The bodies enqueued so far.
    pub fn queued(&self) -> Vec<StoredWebhook> {
        lock(&self.queued).clone()
    }

    /// The letters dead-lettered so far.
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        lock(&self.dead).clone()
    }

    fn reachable(&self, operation: &'static str) -> Result<(), StoreError> {
        if self.unreachable.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::Service {
                operation,
                source: "the queue is unreachable".into(),
            });
        }
        Ok(())
    }
}

impl WebhookQueue for MemoryWebhookQueue {
    async fn enqueue(&self, webhook: &StoredWebhook) -> Result<(), StoreError> {
        self.reachable("sqs:SendMessage")?;
        lock(&self.queued).push(webhook.clone());
        Ok(())
    }

    async fn dead_letter(&self, letter: &DeadLetter) -> Result<(), StoreError> {
        self.reachable("sqs:SendMessage")?;
        if !self.has_dead_letters {
            return Err(StoreError::Service {
                operation: "sqs:SendMessage",
                source: "no dead-letter queue is configured".into(),
            });
        }
        lock(&self.dead).push(letter.clone());
        Ok(())
    }
}

/// One double of each port, for tests that need them all.
#[derive(Default)]
pub struct MemoryPorts {
    /// S3.
    pub objects: MemoryObjects,
    /// Contact items.
    pub contacts: MemoryContacts,
    /// Job items.
    pub jobs: MemoryJobs,
    /// Account settings.
    pub settings: MemorySettings,
    /// Processed events.
    pub ledger: MemoryLedger,
    /// Continuations submitted.
    pub continuation: MemoryContinuation,
    /// The webhook queue.
    pub webhooks: MemoryWebhookQueue,
    /// Completion events published.
    pub events: MemoryImportEvents,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::contact::{ContactDraft, Source, WriteStamp};

    const BSUID: &str = "GB.13491208655302741918";

    fn eva() -> Contact {
        let mut draft = ContactDraft {
            phone: "+447911123456".into(),
            ..Default::default()
        };
        draft.text.insert("user_id", BSUID.into());
        let stamp = WriteStamp {
            now: "2026-11-29T10:00:00Z".into(),
            source: Source::Inbound,
            import_id: None,
            campaign_id: None,
        };
        Contact::create("acme", Channel::Whatsapp, &draft, &stamp)
    }

    fn alias_to(contact_key: &str) -> Alias {
        Alias {
            account_id: "acme".into(),
            user_id: BSUID.into(),
            contact_key: contact_key.into(),
            phone_number_id: "106540352242922".into(),
        }
    }

    /// Eva stored, with her alias naming `alias_key`.
    async fn stored(alias_key: &str) -> (MemoryContacts, Contact) {
        let contacts = MemoryContacts::default();
        let eva = eva();
        let written = contacts
            .write_identity(&[
                IdentityWrite::Contact(eva.clone(), Precondition::Absent),
                IdentityWrite::Alias(alias_to(alias_key), None),
            ])
            .await
            .expect("written");
        assert!(written);
        (contacts, eva)
    }

    #[tokio::test]
    async fn an_erasure_removes_the_contact_and_its_alias_and_leaves_a_tombstone() {
        let (contacts, eva) = stored("+447911123456").await;
        let erased = contacts
            .erase_contact(&eva, &[alias_to("+447911123456")], &["d1g35t".to_string()])
            .await;
        assert!(erased.expect("answered"));
        assert_eq!(contacts.count(), 0);
        assert!(contacts.aliases().is_empty());
        assert!(contacts.is_suppressed("acme", Channel::Whatsapp, "d1g35t"));
    }

    #[tokio::test]
    async fn an_erasure_whose_contact_changed_or_alias_moved_writes_nothing() {
        // The contact was written since it was read: another version.
        let (contacts, eva) = stored("+447911123456").await;
        let stale = Contact {
            version: eva.version + 1,
            ..eva.clone()
        };
        assert!(!contacts
            .erase_contact(&stale, &[], &["d".to_string()])
            .await
            .expect("answered"));
        // The alias names another contact now.
        let (moved, eva) = stored("+447400123456").await;
        let erased = moved
            .erase_contact(&eva, &[alias_to("+447911123456")], &["d".to_string()])
            .await;
        assert!(!erased.expect("answered"));
        // Gone already.
        let empty = MemoryContacts::default();
        assert!(!empty
            .erase_contact(&eva, &[], &["d".to_string()])
            .await
            .expect("answered"));
        for store in [&contacts, &moved] {
            assert_eq!(store.count(), 1);
            assert_eq!(store.aliases().len(), 1);
            assert!(!store.is_suppressed("acme", Channel::Whatsapp, "d"));
        }
    }
}
