//! Ports: the small async traits the services are generic over. AWS adapters live in
//! [`crate::aws`]; [`memory`] is an in-memory implementation for unit tests.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use serde::{Deserialize, Serialize};

use crate::contact::Contact;
use crate::report::{ImportStatus, RowCounts};
use crate::upload::Channel;

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
}

/// Progress of an import, as the job item records it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobProgress {
    /// Counts so far.
    pub rows: RowCounts,
    /// Rejections so far.
    pub rejections_by_reason: BTreeMap<String, u64>,
    /// Warnings so far.
    pub warnings_by_code: BTreeMap<String, u64>,
    /// Last file line whose outcome is committed: a resumed run starts after it.
    pub last_row: u64,
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
    /// RFC 3339.
    pub started_at: String,
    /// Unix seconds after which a `running` job's owner is presumed dead.
    pub lease_expires_at: i64,
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
    /// Records progress or the final status.
    fn save_job(&self, job: &Job) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Account settings.
pub trait SettingsStore: Send + Sync {
    /// The account's `default_country` setting.
    fn default_country(
        &self,
        account_id: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
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
}

/// Continues an import in a fresh invocation of the same function when this one runs
/// short of time (Lambda's asynchronous invoke of itself).
pub trait Continuation: Send + Sync {
    /// Submits `event` (the records still to import, as the function receives them)
    /// for asynchronous processing; returns once it is accepted.
    fn continue_with(
        &self,
        event: &serde_json::Value,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

pub mod memory {
    //! In-memory stores for unit tests: same semantics as the DynamoDB and S3 adapters.

    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;

    /// Stored objects: body and user metadata by (bucket, key).
    type Objects = HashMap<(String, String), (Vec<u8>, HashMap<String, String>)>;

    /// Everything in one struct, behind mutexes.
    #[derive(Default)]
    pub struct MemoryStore {
        /// Contacts by pk.
        pub contacts: Mutex<HashMap<String, Contact>>,
        /// Jobs by import id.
        pub jobs: Mutex<HashMap<String, Job>>,
        /// Objects by (bucket, key).
        pub objects: Mutex<Objects>,
        /// Default country by account.
        pub settings: Mutex<HashMap<String, String>>,
        /// Processed events.
        pub events: Mutex<HashMap<String, String>>,
        /// Number of contact writes attempted.
        pub contact_writes: Mutex<u64>,
        /// Events handed to [`Continuation::continue_with`].
        pub continuations: Mutex<Vec<serde_json::Value>>,
    }

    fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    impl MemoryStore {
        /// Stores an object.
        pub fn insert_object(
            &self,
            bucket: &str,
            key: &str,
            body: &[u8],
            metadata: &[(&str, &str)],
        ) {
            let meta = metadata
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            lock(&self.objects).insert((bucket.into(), key.into()), (body.to_vec(), meta));
        }

        /// An object's body as text.
        pub fn object_text(&self, bucket: &str, key: &str) -> Option<String> {
            lock(&self.objects)
                .get(&(bucket.into(), key.into()))
                .map(|(b, _)| String::from_utf8_lossy(b).into_owned())
        }

        /// A contact by pk.
        pub fn contact(&self, pk: &str) -> Option<Contact> {
            lock(&self.contacts).get(pk).cloned()
        }

        /// Number of contacts stored.
        pub fn contact_count(&self) -> usize {
            lock(&self.contacts).len()
        }

        /// Number of contact writes attempted.
        pub fn writes(&self) -> u64 {
            *lock(&self.contact_writes)
        }
    }

    impl ObjectStore for MemoryStore {
        async fn head(&self, bucket: &str, key: &str) -> Result<ObjectInfo, StoreError> {
            let objects = lock(&self.objects);
            let (body, metadata) =
                objects
                    .get(&(bucket.into(), key.into()))
                    .ok_or_else(|| StoreError::NotFound {
                        bucket: bucket.into(),
                        key: key.into(),
                    })?;
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
                .ok_or_else(|| StoreError::NotFound {
                    bucket: bucket.into(),
                    key: key.into(),
                })?;
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
    }

    impl ContactStore for MemoryStore {
        async fn get_contact(
            &self,
            account_id: &str,
            channel: Channel,
            phone: &str,
        ) -> Result<Option<Contact>, StoreError> {
            Ok(lock(&self.contacts)
                .get(&crate::contact::contact_pk(account_id, channel, phone))
                .cloned())
        }

        async fn put_contact(
            &self,
            contact: &Contact,
            precondition: Precondition,
        ) -> Result<PutOutcome, StoreError> {
            *lock(&self.contact_writes) += 1;
            let mut contacts = lock(&self.contacts);
            let existing = contacts.get(&contact.pk());
            let ok = match (precondition, existing) {
                (Precondition::Absent, None) => true,
                (Precondition::Version(v), Some(old)) => old.version == v,
                _ => false,
            };
            if !ok {
                return Ok(PutOutcome::Conflict(existing.cloned().map(Box::new)));
            }
            contacts.insert(contact.pk(), contact.clone());
            Ok(PutOutcome::Written)
        }
    }

    impl JobStore for MemoryStore {
        async fn claim_job(&self, job: &Job, now: i64) -> Result<Claim, StoreError> {
            let mut jobs = lock(&self.jobs);
            match jobs.get(&job.import_id) {
                None => {
                    jobs.insert(job.import_id.clone(), job.clone());
                    Ok(Claim::Started)
                }
                Some(old) if old.status == ImportStatus::Running && old.lease_expires_at < now => {
                    let old = old.clone();
                    jobs.insert(
                        job.import_id.clone(),
                        Job {
                            progress: old.progress.clone(),
                            ..job.clone()
                        },
                    );
                    Ok(Claim::TakenOver(Box::new(old)))
                }
                Some(old) => Ok(Claim::Declined(Box::new(old.clone()))),
            }
        }

        async fn save_job(&self, job: &Job) -> Result<(), StoreError> {
            lock(&self.jobs).insert(job.import_id.clone(), job.clone());
            Ok(())
        }
    }

    impl SettingsStore for MemoryStore {
        async fn default_country(&self, account_id: &str) -> Result<Option<String>, StoreError> {
            Ok(lock(&self.settings).get(account_id).cloned())
        }
    }

    impl Continuation for MemoryStore {
        async fn continue_with(&self, event: &serde_json::Value) -> Result<(), StoreError> {
            lock(&self.continuations).push(event.clone());
            Ok(())
        }
    }

    impl EventLedger for MemoryStore {
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
}
