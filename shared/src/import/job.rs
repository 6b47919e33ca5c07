//! Claiming the job item of an import: one conditional put decides whether this
//! invocation starts it, resumes a dead owner's, or leaves it alone.

use std::time::Duration;

use tracing::info;

use super::{ImportError, Importer, LEASE_SECONDS};
use crate::domain::outcome::ImportStatus;
use crate::ports::{
    Claim, ContactStore, Job, JobProgress, JobStore, ObjectStore, SettingsStore, Suppressions,
};

/// What the claim means for this invocation.
pub(super) enum Claimed {
    /// A new job: start from the first row.
    Fresh,
    /// A job whose owner stopped: resume after its progress.
    Resumed(JobProgress),
    /// Someone else runs it, or it is finished: why it is skipped.
    Declined(String),
}

impl<O, C, J, S> Importer<'_, O, C, J, S>
where
    O: ObjectStore,
    C: ContactStore + Suppressions,
    J: JobStore,
    S: SettingsStore,
{
    pub(super) async fn claim(&self, job: &mut Job) -> Result<Claimed, ImportError> {
        let mut claim = self
            .jobs
            .claim_job(job, chrono::Utc::now().timestamp())
            .await?;
        if let Claim::Declined(existing) = &claim {
            // A retry after a crash can arrive while the dead owner's lease still runs:
            // wait it out once. A live owner renews its lease, so we then decline.
            let wait = existing.lease_expires_at + 1 - chrono::Utc::now().timestamp();
            if existing.status == ImportStatus::Running && (1..=LEASE_SECONDS + 1).contains(&wait) {
                info!(
                    wait_seconds = wait,
                    "job is running under another owner's lease; waiting for it to expire once"
                );
                tokio::time::sleep(Duration::from_secs(wait as u64)).await;
                job.lease_expires_at = chrono::Utc::now().timestamp() + LEASE_SECONDS;
                claim = self
                    .jobs
                    .claim_job(job, chrono::Utc::now().timestamp())
                    .await?;
            }
        }
        match claim {
            Claim::Started => Ok(Claimed::Fresh),
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
                Ok(Claimed::Resumed(previous.progress))
            }
            Claim::Declined(existing) => {
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
