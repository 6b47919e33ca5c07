//! The import of one upload, end to end. [`handler`] is import-contacts' front door: an
//! S3 event's records, each run by an [`Importer`]: claim the job ([`job`]), check the object and
//! its options and start parsing on a blocking thread ([`file`]), map and validate rows
//! there ([`rows`]), write contacts with bounded concurrency and checkpoint progress
//! ([`writer`]), count outcomes ([`run`]) and write summary.json and rows.csv
//! ([`report`]) and report.html ([`report_html`]).

mod file;
pub mod handler;
mod job;
pub mod report;
pub mod report_html;
mod rows;
mod run;
mod writer;

use std::time::{Duration, Instant};

use tracing::{info, warn};

use crate::book::SaveError;
use crate::config::Config;
use crate::domain::keys::{html_report_key, summary_key};
use crate::domain::outcome::ImportStatus;
use crate::domain::upload::{import_id, UploadIdentity, UploadKey};
use crate::ports::{
    CapacityMeter, ContactStore, ImportEvents, Job, JobProgress, JobStore, ObjectStore, PutBody,
    SettingsStore, StoreError, Suppressions,
};
use job::Lease;
use report::{RowsReport, Summary};
use run::{Run, RunError};

/// How long a running job's owner holds it without a checkpoint before another
/// invocation may take it over.
pub const LEASE_SECONDS: i64 = 30;

/// The upload an S3 event names.
#[derive(Clone, Debug, Default)]
pub struct UploadedFile {
    /// Bucket.
    pub bucket: String,
    /// Decoded key.
    pub key: String,
    /// Size from the event.
    pub size: Option<u64>,
    /// eTag from the event.
    pub etag: Option<String>,
    /// Version id from the event.
    pub version_id: Option<String>,
    /// Sequencer from the event, or its event time where the emulator has none.
    pub sequencer: Option<String>,
}

/// What an invocation did with an upload.
#[derive(Debug)]
pub enum ImportResult {
    /// Imported (or failed as a file); the summary was written.
    Finished(Box<Summary>),
    /// Not imported, with why (bad key layout, duplicate event).
    Skipped(String),
}

/// A failure of the infrastructure, not of the file: the invocation should fail so it
/// is retried; the job keeps its progress and the retry resumes.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A store call failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Saving a contact kept losing races.
    #[error(transparent)]
    Save(#[from] SaveError),
    /// The local temporary report file failed.
    #[error("writing the rows report failed")]
    Report(#[from] std::io::Error),
    /// The parsing thread panicked or was cancelled.
    #[error("the parsing thread failed")]
    Parser(#[source] tokio::task::JoinError),
    /// The limiter of writes in flight was closed (a bug: it lives as long as the import).
    #[error("the limiter of writes in flight was closed")]
    WriteLimiter(#[source] tokio::sync::AcquireError),
    /// The invocation is about to time out; progress is saved for the retry.
    #[error("the invocation ran out of time after row {last_row}; a retry resumes from there")]
    OutOfTime {
        /// Last committed row.
        last_row: u64,
    },
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The import service: its ports, configuration and the invocation's deadline.
pub struct Importer<'a, O, C, J, S, E> {
    /// Where uploads and reports live.
    pub objects: &'a O,
    /// Contact items.
    pub contacts: &'a C,
    /// Job items.
    pub jobs: &'a J,
    /// Account settings.
    pub settings: &'a S,
    /// Where an import says it is done.
    pub events: &'a E,
    /// Configuration.
    pub config: &'a Config,
    /// When the invocation must end; the import hands over before it.
    pub deadline: Option<Instant>,
}

#[cfg(test)]
impl<'a>
    Importer<
        'a,
        crate::ports::memory::MemoryObjects,
        crate::ports::memory::MemoryContacts,
        crate::ports::memory::MemoryJobs,
        crate::ports::memory::MemorySettings,
        crate::ports::memory::MemoryImportEvents,
    >
{
    /// An importer over the in-memory ports, with no deadline (tests of this crate).
    pub(crate) fn in_memory(
        store: &'a crate::ports::memory::MemoryPorts,
        config: &'a Config,
    ) -> Self {
        Importer {
            objects: &store.objects,
            contacts: &store.contacts,
            jobs: &store.jobs,
            settings: &store.settings,
            events: &store.events,
            config,
            deadline: None,
        }
    }
}

/// Uploads `body` under `key` of the bucket `contact-uploads` in `store` and imports
/// it over the in-memory ports (tests of this crate); the summary.
#[cfg(test)]
pub(crate) async fn import_in_memory(
    config: &Config,
    store: &crate::ports::memory::MemoryPorts,
    key: &str,
    body: &[u8],
    metadata: &[(&str, &str)],
    sequencer: &str,
) -> Summary {
    let bucket = "contact-uploads";
    store.objects.insert(bucket, key, body, metadata);
    let upload = UploadedFile {
        bucket: bucket.into(),
        key: key.into(),
        sequencer: Some(sequencer.into()),
        ..Default::default()
    };
    match Importer::in_memory(store, config)
        .run(&upload)
        .await
        .expect("no infrastructure error")
    {
        ImportResult::Finished(summary) => *summary,
        ImportResult::Skipped(why) => panic!("skipped: {why}"),
    }
}

impl<O, C, J, S, E> Importer<'_, O, C, J, S, E>
where
    O: ObjectStore,
    C: ContactStore + Suppressions + CapacityMeter,
    J: JobStore,
    S: SettingsStore,
    E: ImportEvents,
{
    /// Imports one upload.
    pub async fn run(&self, upload: &UploadedFile) -> Result<ImportResult, ImportError> {
        let key = match UploadKey::parse(&upload.key) {
            Ok(key) => key,
            Err(e) => {
                warn!(bucket = %upload.bucket, error = %e, "not an upload key; nothing imported");
                return Ok(ImportResult::Skipped(e.to_string()));
            }
        };
        let import_id = import_id(&UploadIdentity {
            bucket: &upload.bucket,
            key: &upload.key,
            version_id: upload.version_id.as_deref(),
            etag: upload.etag.as_deref(),
            sequencer: upload.sequencer.as_deref(),
        });
        let span = tracing::info_span!("import", import_id = %import_id, account_id = %key.account_id, channel = %key.channel);
        tracing::Instrument::instrument(self.run_claimed(key, import_id, upload), span).await
    }

    async fn run_claimed(
        &self,
        key: UploadKey,
        import_id: String,
        upload: &UploadedFile,
    ) -> Result<ImportResult, ImportError> {
        let started = Instant::now();
        let meter_at_start = self.contacts.consumed();
        let mut job = Job {
            account_id: key.account_id.clone(),
            import_id: import_id.clone(),
            status: ImportStatus::Running,
            progress: JobProgress::default(),
            summary_key: summary_key(&key.account_id, &import_id),
            source_key: upload.key.clone(),
            started_at: now_rfc3339(),
            finished_at: None,
            lease_expires_at: chrono::Utc::now().timestamp() + self.config.lease_seconds,
            lease_token: job::new_lease_token(&import_id),
            completion_pending: false,
        };
        let resume = match self.claim(&mut job, &upload.bucket).await? {
            job::Claimed::Declined(why) => return Ok(ImportResult::Skipped(why)),
            job::Claimed::Fresh => None,
            job::Claimed::Resumed(progress) => Some(progress),
        };
        let lease = Lease::new(self.jobs, &job, self.config.lease_seconds);
        let mut run = Run::new(
            &key,
            &import_id,
            upload,
            &job.started_at,
            resume,
            meter_at_start,
        );
        match self
            .import_file(&key, upload, &mut run, &mut job, &lease)
            .await
        {
            Ok(()) => {}
            Err(RunError::File(failure)) => run.failure = Some(failure),
            Err(RunError::Infra(e)) if e.lost_the_lease() => return Ok(lease_lost(e)),
            Err(RunError::Infra(e)) => {
                self.release(&mut job, &mut run, &lease).await;
                return Err(e);
            }
        }
        run.metered(self.contacts.consumed());
        let summary = run.summary(started.elapsed());
        match self.finish(&mut job, &summary, &mut run, &lease).await {
            Ok(()) => Ok(ImportResult::Finished(Box::new(summary))),
            Err(e) if e.lost_the_lease() => Ok(lease_lost(e)),
            Err(e) => Err(e),
        }
    }

    /// Leaves the job resumable at once: a retry takes it over from its last
    /// checkpoint, or from here when the report's part could be stored.
    async fn release(&self, job: &mut Job, run: &mut Run, lease: &Lease<'_, J>) {
        if let Err(store) = self.store_report_part(run, lease).await {
            warn!(error = %store, "could not store the report's part; the retry resumes from the last checkpoint");
            return;
        }
        run.metered(self.contacts.consumed());
        job.progress = run.committed_progress();
        job.lease_expires_at = 0;
        if let Err(save) = self.jobs.save_job(job).await {
            warn!(error = %save, "could not record progress before failing");
        }
    }

    /// Stores the report's lines since its last part as the next part (nothing when
    /// there are none), so that progress saved after it can be resumed with its lines.
    async fn store_report_part(
        &self,
        run: &mut Run,
        lease: &Lease<'_, J>,
    ) -> Result<(), ImportError> {
        let Some(part) = run.report.as_mut().map(RowsReport::take_part).transpose()? else {
            return Ok(());
        };
        let Some(part) = part else { return Ok(()) };
        lease.hold().await?;
        let key = run.report_part_key(run.report_parts);
        let csv = "text/csv; charset=utf-8";
        self.objects
            .put(&run.source.bucket, &key, PutBody::Bytes(part), csv)
            .await?;
        run.report_parts += 1;
        Ok(())
    }

    async fn finish(
        &self,
        job: &mut Job,
        summary: &Summary,
        run: &mut Run,
        lease: &Lease<'_, J>,
    ) -> Result<(), ImportError> {
        let bucket = &summary.source.bucket;
        lease.hold().await?;
        self.put_reports(summary, run).await?;
        let body = serde_json::to_vec_pretty(summary).map_err(std::io::Error::other)?;
        let json = "application/json";
        self.objects
            .put(bucket, &job.summary_key, PutBody::Bytes(body), json)
            .await?;
        job.status = summary.status;
        // Recorded with the final status, in the same write: whoever finds the job
        // finished with its event unpublished, after this lease, publishes it
        // (job::Claimed). It goes with a fresh lease, so that nobody takes the event
        // while this worker is still about to publish it.
        job.completion_pending = true;
        job.lease_expires_at = lease.next_expiry();
        job.finished_at = Some(summary.finished_at.clone());
        job.progress = JobProgress {
            rows: summary.rows.clone(),
            rejections_by_reason: summary.rejections_by_reason.clone(),
            warnings_by_code: summary.warnings_by_code.clone(),
            last_row: job.progress.last_row,
            report_parts: run.report_parts,
            consumed: summary.consumed,
        };
        self.jobs.save_job(job).await?;
        lease.saved(job.lease_expires_at);
        info!(
            status = summary.status.as_str(),
            total = summary.rows.total,
            created = summary.rows.created,
            rejected = summary.rows.rejected,
            write_units = summary.consumed.write_units,
            read_units = summary.consumed.read_units,
            requests = summary.consumed.requests,
            "import finished"
        );
        for n in 0..run.report_parts {
            let key = run.report_part_key(n);
            if let Err(e) = self.objects.delete(bucket, &key).await {
                warn!(error = %e, part = n, "could not delete a part of the rows report; the reports lifecycle rule expires it");
            }
        }
        self.announce(job, summary).await
    }

    /// Publishes the import's completion event, then records that it was published.
    /// A failure to publish leaves it pending, and the invocation fails: its retry
    /// finds the job finished and publishes it then.
    async fn announce(&self, job: &mut Job, summary: &Summary) -> Result<(), ImportError> {
        self.events
            .import_completed(&completion_detail(summary))
            .await?;
        info!(
            status = summary.status.as_str(),
            "completion event published"
        );
        job.completion_pending = false;
        // Published: failing the invocation now would have its retry publish again.
        // Left pending, it is published again only by a duplicate S3 event that comes
        // after this lease.
        if let Err(e) = self.jobs.save_job(job).await {
            warn!(error = %e, "the completion event was published but could not be recorded as published");
        }
        Ok(())
    }

    /// Writes rows.csv (when the file's rows were read) and report.html, the two
    /// reports summary.json names.
    async fn put_reports(&self, summary: &Summary, run: &mut Run) -> Result<(), ImportError> {
        let bucket = &summary.source.bucket;
        if let (Some(report), Some(rows_key)) =
            (run.report.take(), summary.rows_report_key.as_ref())
        {
            let file = report.finish()?;
            let body = PutBody::File(file.path().to_path_buf());
            let csv = "text/csv; charset=utf-8";
            self.objects.put(bucket, rows_key, body, csv).await?;
        }
        if let Some(html_key) = &summary.html_report_key {
            let page = report_html::render(summary, run.rejected_sample());
            let html = "text/html; charset=utf-8";
            let body = PutBody::Bytes(page.into_bytes());
            self.objects.put(bucket, html_key, body, html).await?;
        }
        Ok(())
    }

    /// Publishes the completion event of a finished job that its owner did not (it
    /// stopped between the final status and the event), once its lease has run out:
    /// taken with a conditional write, so one invocation does it. The event is built
    /// from the summary.json the owner wrote.
    pub(super) async fn announce_orphaned(
        &self,
        finished: &Job,
        bucket: &str,
    ) -> Result<(), ImportError> {
        let now = chrono::Utc::now().timestamp();
        let mut job = Job {
            lease_token: job::new_lease_token(&finished.import_id),
            lease_expires_at: now + self.config.lease_seconds,
            ..finished.clone()
        };
        if !self.jobs.claim_completion(&job, now).await? {
            return Ok(());
        }
        let mut body = self.objects.open(bucket, &job.summary_key).await?;
        let mut bytes = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut body, &mut bytes).await?;
        let summary: Summary = serde_json::from_slice(&bytes).map_err(std::io::Error::other)?;
        info!("publishing the completion event its first owner did not");
        self.announce(&mut job, &summary).await
    }
}

/// The completion event's `detail` (DESIGN section 15): summary.json without
/// `column_mapping`, with the keys of the three report files.
pub fn completion_detail(summary: &Summary) -> serde_json::Value {
    let mut detail = serde_json::to_value(summary).unwrap_or_default();
    if let Some(fields) = detail.as_object_mut() {
        fields.remove("column_mapping");
        fields.insert(
            "summary_key".into(),
            summary_key(&summary.account_id, &summary.import_id).into(),
        );
        fields
            .entry("rows_report_key")
            .or_insert(serde_json::Value::Null);
        fields
            .entry("html_report_key")
            .or_insert_with(|| html_report_key(&summary.account_id, &summary.import_id).into());
    }
    detail
}

/// What a worker that was taken over answers: nothing more is written by it.
fn lease_lost(e: ImportError) -> ImportResult {
    warn!(error = %e, "stopped: another worker holds the job and finishes the import");
    ImportResult::Skipped(e.to_string())
}

impl ImportError {
    /// Whether another worker took the job over (this one must stop writing).
    fn lost_the_lease(&self) -> bool {
        matches!(self, ImportError::Store(StoreError::LeaseLost { .. }))
    }
}

/// Checkpoint at least this often (rows).
const CHECKPOINT_ROWS: u64 = 2_000;
/// ... and at least this often (time).
const CHECKPOINT_EVERY: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests;
