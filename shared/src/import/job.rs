//! Claiming the job item of an import: one conditional put decides whether this
//! invocation starts it, resumes a dead owner's, or leaves it alone. The claim's
//! [`Lease`] then fences every later write: a worker that stalled past its lease and
//! was taken over stops before its next write.
//!
//! A claimed job is also put in its account's history (`imports.list`): its index
//! item is written after a fresh claim and again after a resume, so an invocation that
//! died between the two writes leaves the item to the one that resumes it.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tracing::info;

use super::{ImportError, Importer};
use crate::domain::outcome::ImportStatus;
use crate::ports::{
    CapacityMeter, Claim, ContactStore, ImportEvents, Job, JobProgress, JobStore, ObjectStore,
    SettingsStore, StoreError, Suppressions,
};

/// A write must end this long before the lease does; nearer than that, the holder
/// renews first (and learns if it lost the job). Far longer than one batch's write.
const WRITE_MARGIN_SECONDS: i64 = 10;

/// A token no other claim has: the time in nanoseconds and a per-process random hash.
pub(super) fn new_lease_token(import_id: &str) -> String {
    let nanos = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
    let random = std::collections::hash_map::RandomState::new().hash_one(import_id);
    format!("{nanos:x}-{random:016x}")
}

/// The holder's view of its lease: when it ends, and how to extend it.
pub(super) struct Lease<'a, J> {
    jobs: &'a J,
    job: Job,
    seconds: i64,
    expires_at: AtomicI64,
    renewing: tokio::sync::Mutex<()>,
}

impl<'a, J: JobStore> Lease<'a, J> {
    /// The lease the claim of `job` took.
    pub(super) fn new(jobs: &'a J, job: &Job, seconds: i64) -> Self {
        Lease {
            jobs,
            job: job.clone(),
            seconds,
            expires_at: AtomicI64::new(job.lease_expires_at),
            renewing: tokio::sync::Mutex::new(()),
        }
    }

    /// A new expiry, from now, for the next save of the job.
    pub(super) fn next_expiry(&self) -> i64 {
        chrono::Utc::now().timestamp() + self.seconds
    }

    /// The job was saved with `expires_at`: the lease runs until then.
    pub(super) fn saved(&self, expires_at: i64) {
        self.expires_at.fetch_max(expires_at, Ordering::Relaxed);
    }

    /// Called before every write: passes while the lease outlasts the write; when it
    /// would not (this worker stalled), renews it first, which fails with
    /// [`StoreError::LeaseLost`] once another worker has taken the job over.
    pub(super) async fn hold(&self) -> Result<(), StoreError> {
        let outlasts =
            |now: i64| now + WRITE_MARGIN_SECONDS < self.expires_at.load(Ordering::Relaxed);
        if outlasts(chrono::Utc::now().timestamp()) {
            return Ok(());
        }
        let _one_renewal = self.renewing.lock().await;
        if outlasts(chrono::Utc::now().timestamp()) {
            return Ok(());
        }
        let until = self.next_expiry();
        self.jobs.renew_lease(&self.job, until).await?;
        self.saved(until);
        Ok(())
    }
}

/// What the claim means for this invocation.
pub(super) enum Claimed {
    /// A new job: start from the first row.
    Fresh,
    /// A job whose owner stopped: resume after its progress.
    Resumed(JobProgress),
    /// Someone else runs it, or it is finished: why it is skipped.
    Declined(String),
}

impl<O, C, J, S, E> Importer<'_, O, C, J, S, E>
where
    O: ObjectStore,
    C: ContactStore + Suppressions + CapacityMeter,
    J: JobStore,
    S: SettingsStore,
    E: ImportEvents,
{
    /// Claims `job` (of an upload in `bucket`). A job found finished with its
    /// completion event unpublished gets it published here.
    pub(super) async fn claim(&self, job: &mut Job, bucket: &str) -> Result<Claimed, ImportError> {
        let mut claim = self
            .jobs
            .claim_job(job, chrono::Utc::now().timestamp())
            .await?;
        if let Claim::Declined(existing) = &claim {
            // A retry after a crash can arrive while the dead owner's lease still runs:
            // wait it out once. A live owner renews its lease, so we then decline.
            let wait = existing.lease_expires_at + 1 - chrono::Utc::now().timestamp();
            let lease = self.config.lease_seconds;
            if existing.status == ImportStatus::Running && (1..=lease + 1).contains(&wait) {
                info!(
                    wait_seconds = wait,
                    "job is running under another owner's lease; waiting for it to expire once"
                );
                tokio::time::sleep(Duration::from_secs(wait as u64)).await;
                job.lease_expires_at = chrono::Utc::now().timestamp() + lease;
                claim = self
                    .jobs
                    .claim_job(job, chrono::Utc::now().timestamp())
                    .await?;
            }
        }
        match claim {
            Claim::Started => {
                self.jobs.index_job(job).await?;
                Ok(Claimed::Fresh)
            }
            Claim::TakenOver(previous) => {
                info!(
                    last_row = previous.progress.last_row,
                    "resuming a job whose owner stopped"
                );
                job.started_at = previous.started_at.clone();
                job.progress = previous.progress.clone();
                // The claim wrote a fresh start time: put the original back, since
                // rows already written carry it (see book::outcome_of).
                self.jobs.save_job(job).await?;
                // Again, under the same key: heals a crash between a claim and its
                // index item, so the import is in the account's history.
                self.jobs.index_job(job).await?;
                Ok(Claimed::Resumed(previous.progress))
            }
            Claim::Declined(existing) => {
                if existing.completion_pending && existing.status != ImportStatus::Running {
                    self.announce_orphaned(&existing, bucket).await?;
                }
                let why = format!(
                    "import {} is already {}; duplicate event ignored",
                    job.import_id,
                    existing.status.as_str()
                );
                info!("{why}");
                Ok(Claimed::Declined(why))
            }
        }
    }
}
