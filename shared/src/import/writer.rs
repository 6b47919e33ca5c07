//! The writing half: contacts are written in batches of a hundred rows with bounded
//! concurrency, outcomes taken in file order (so checkpoints are exact), progress checkpointed, and the import handed
//! over before the invocation's deadline.

use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use super::job::Lease;
use super::rows::{ParsedRow, RowVerdict, Step};
use super::run::{Run, RunError};
use super::{ImportError, Importer, CHECKPOINT_EVERY, CHECKPOINT_ROWS};
use crate::book::{plan_draft, save_drafts, Lookup, Tombstones};
use crate::domain::contact::WriteStamp;
use crate::domain::mapping::{header_signature, mapping_json, ColumnMap, MappingSource};
use crate::domain::options::UploadOptions;
use crate::domain::outcome::Outcome;
use crate::domain::phone::PhoneRejection;
use crate::domain::suppression::SuppressionKey;
use crate::domain::upload::UploadKey;
use crate::ports::{
    CapacityMeter, ContactStore, ImportEvents, Job, JobStore, ObjectStore, SavedMapping,
    SettingsStore, Suppressions, MAX_CONTACTS_PER_CALL,
};

/// Stop and hand over when less than this is left of the invocation (or a quarter of
/// what was left at the start, for short local deadlines).
const HANDOVER_MARGIN: Duration = Duration::from_secs(20);

/// What a batch's write needs, shared by every batch of the import.
struct BatchWrite<'a, C, J> {
    contacts: &'a C,
    lease: &'a Lease<'a, J>,
    suppression: Option<&'a SuppressionKey>,
    key: &'a UploadKey,
    options: &'a UploadOptions,
    stamp: &'a WriteStamp,
    /// Read first or create first, learnt batch by batch.
    lookup: Lookup,
}

impl<C: ContactStore + Suppressions, J: JobStore> BatchWrite<'_, C, J> {
    /// Each step's outcome, in order: `None` for the header and for rows an earlier
    /// invocation wrote. The accepted rows are saved together ([`save_drafts`]).
    async fn outcomes(
        &self,
        mut steps: Vec<Step>,
    ) -> Result<Vec<(Step, Option<Outcome>)>, RunError> {
        if self.options.dry_run {
            // A write looks up tombstones itself, for the rows it would create (or
            // skip, with `on-new=skip`) only.
            self.reject_suppressed(&mut steps).await?;
        }
        let mut outcomes: Vec<Option<Outcome>> = Vec::with_capacity(steps.len());
        let mut accepted = Vec::new();
        let mut drafts = Vec::new();
        for (i, step) in steps.iter().enumerate() {
            let row = match step {
                Step::Row(row) if !row.replayed => row,
                _ => {
                    outcomes.push(None);
                    continue;
                }
            };
            outcomes.push(match &row.verdict {
                RowVerdict::Accepted { draft, .. } => {
                    accepted.push(i);
                    drafts.push(draft);
                    None
                }
                RowVerdict::Duplicate { .. } => Some(Outcome::DuplicateInFile),
                RowVerdict::Rejected { .. } => Some(Outcome::Rejected),
            });
        }
        let (account, channel) = (&self.key.account_id, self.key.channel);
        let mode = self.options.mode();
        if !drafts.is_empty() {
            self.lease
                .hold()
                .await
                .map_err(|e| RunError::Infra(e.into()))?;
        }
        let saved = if self.options.dry_run {
            let mut planned = Vec::with_capacity(drafts.len());
            for draft in &drafts {
                planned.push(
                    plan_draft(self.contacts, account, channel, draft, self.stamp, mode).await,
                );
            }
            planned
                .into_iter()
                .map(|planned| planned.map(Some))
                .collect::<Result<Vec<_>, _>>()
        } else {
            save_drafts(
                self.contacts,
                account,
                channel,
                &drafts,
                self.stamp,
                mode,
                &self.lookup,
                &Tombstones::new(self.contacts, self.suppression),
            )
            .await
        };
        let saved = saved.map_err(|e| RunError::Infra(e.into()))?;
        for (i, saved) in accepted.into_iter().zip(saved) {
            let Some(saved) = saved else {
                // Erased: rejected, like a row a dry run found erased.
                if let Step::Row(row) = &mut steps[i] {
                    row.reject(PhoneRejection::Suppressed);
                }
                outcomes[i] = Some(Outcome::Rejected);
                continue;
            };
            outcomes[i] = Some(saved.outcome);
            if saved.outcome == Outcome::SkippedNew {
                if let Step::Row(row) = &mut steps[i] {
                    row.skip_new();
                }
            }
            if saved.kept_opted_out {
                if let Step::Row(row) = &mut steps[i] {
                    row.keep_opted_out();
                }
            }
        }
        Ok(steps.into_iter().zip(outcomes).collect())
    }

    /// Rejects the accepted rows whose number was erased (a tombstone exists): one
    /// lookup for the batch, when the deployment has a suppression key (dry runs; a
    /// write looks up only the rows it would create).
    async fn reject_suppressed(&self, steps: &mut [Step]) -> Result<(), RunError> {
        let mut rows: Vec<&mut ParsedRow> = steps
            .iter_mut()
            .filter_map(|step| match step {
                Step::Row(row)
                    if !row.replayed && matches!(row.verdict, RowVerdict::Accepted { .. }) =>
                {
                    Some(row)
                }
                _ => None,
            })
            .collect();
        let phones: Vec<String> = rows
            .iter()
            .filter_map(|row| match &row.verdict {
                RowVerdict::Accepted { draft, .. } => Some(draft.phone.clone()),
                _ => None,
            })
            .collect();
        let suppressed = Tombstones::new(self.contacts, self.suppression)
            .each_erased(&self.key.account_id, self.key.channel, &phones)
            .await
            .map_err(|e| RunError::Infra(e.into()))?;
        for (row, suppressed) in rows.iter_mut().zip(suppressed) {
            if suppressed {
                row.reject(PhoneRejection::Suppressed);
            }
        }
        Ok(())
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
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn write_rows(
        &self,
        rx: mpsc::Receiver<Step>,
        run: &mut Run,
        job: &mut Job,
        lease: &Lease<'_, J>,
        key: &UploadKey,
        options: &UploadOptions,
        stamp: &WriteStamp,
    ) -> Result<(), RunError> {
        // Rows go in batches of a hundred, `write_concurrency` batches in
        // flight; outcomes are taken in file order (for exact checkpoints).
        let writer = BatchWrite {
            contacts: self.contacts,
            lease,
            suppression: self.config.suppression.as_ref(),
            key,
            options,
            stamp,
            lookup: Lookup::default(),
        };
        let writer = &writer;
        let steps = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|step| (step, rx))
        });
        let done = steps
            .ready_chunks(MAX_CONTACTS_PER_CALL)
            .map(|batch| writer.outcomes(batch))
            .buffered(self.config.write_concurrency.max(1));
        let mut done = std::pin::pin!(done);
        let mut progress = Progress::new(self.deadline, run.rows.total);
        while let Some(batch) = done.next().await {
            for step in batch? {
                match step {
                    (Step::Header(columns, source), _) => {
                        // Once per import: a resumed run read the same header before.
                        if source == MappingSource::Option && !options.dry_run && run.last_row == 0
                        {
                            self.save_mapping(&columns, options, run).await;
                        }
                        let parts = self.report_parts(run).await?;
                        run.mapping_source = source;
                        run.start_report(columns, &parts)?
                    }
                    (Step::Row(row), outcome) => {
                        self.record(&row, outcome, run, job, lease, &mut progress)
                            .await?
                    }
                }
            }
        }
        Ok(())
    }

    /// Keeps the upload's `mapping` option as the account's mapping for this header
    /// (DESIGN section 15): a later upload with the same titles and no option uses it.
    /// A failure costs only that convenience, never the import: it is logged.
    async fn save_mapping(&self, columns: &ColumnMap, options: &UploadOptions, run: &Run) {
        let saved = SavedMapping {
            signature: header_signature(&columns.header),
            mapping: mapping_json(&options.mapping),
            import_id: run.import_id.clone(),
            saved_at: run.started_at.clone(),
        };
        if let Err(e) = self.settings.save_mapping(&run.account_id, &saved).await {
            tracing::warn!(error = %e, "could not save the upload's mapping for its header; later uploads map by title");
        }
    }

    /// The report parts an earlier invocation stored, in order.
    async fn report_parts(&self, run: &Run) -> Result<Vec<Vec<u8>>, RunError> {
        let mut parts = Vec::with_capacity(run.report_parts as usize);
        for n in 0..run.report_parts {
            let mut part = Vec::new();
            let mut body = self
                .objects
                .open(&run.source.bucket, &run.report_part_key(n))
                .await
                .map_err(|e| RunError::Infra(e.into()))?;
            body.read_to_end(&mut part).await?;
            parts.push(part);
        }
        Ok(parts)
    }

    /// Counts one row, checkpoints when due, and hands over when time runs short.
    async fn record(
        &self,
        row: &ParsedRow,
        outcome: Option<Outcome>,
        run: &mut Run,
        job: &mut Job,
        lease: &Lease<'_, J>,
        progress: &mut Progress,
    ) -> Result<(), RunError> {
        run.record(row, outcome)?;
        if progress.checkpoint_due(run.rows.total) {
            // The part first: saved progress always has its report lines stored.
            self.store_report_part(run, lease)
                .await
                .map_err(RunError::Infra)?;
            run.metered(self.contacts.consumed());
            job.progress = run.committed_progress();
            job.lease_expires_at = lease.next_expiry();
            self.jobs
                .save_job(job)
                .await
                .map_err(|e| RunError::Infra(e.into()))?;
            lease.saved(job.lease_expires_at);
            progress.checkpointed(run.rows.total);
        }
        // Hand over only after progress, so every retry gets further.
        if progress.out_of_time() && run.rows.total > progress.rows_at_start {
            return Err(RunError::Infra(ImportError::OutOfTime {
                last_row: run.last_row,
            }));
        }
        Ok(())
    }
}

/// When the last checkpoint was, and when the invocation must hand over.
struct Progress {
    checkpoint_at: Instant,
    checkpoint_rows: u64,
    rows_at_start: u64,
    deadline: Option<Instant>,
    margin: Option<Duration>,
}

impl Progress {
    fn new(deadline: Option<Instant>, rows_at_start: u64) -> Progress {
        let margin =
            deadline.map(|d| HANDOVER_MARGIN.min(d.saturating_duration_since(Instant::now()) / 4));
        Progress {
            checkpoint_at: Instant::now(),
            checkpoint_rows: 0,
            rows_at_start,
            deadline,
            margin,
        }
    }

    fn checkpoint_due(&self, rows: u64) -> bool {
        rows - self.checkpoint_rows >= CHECKPOINT_ROWS
            || self.checkpoint_at.elapsed() >= CHECKPOINT_EVERY
    }

    fn checkpointed(&mut self, rows: u64) {
        self.checkpoint_at = Instant::now();
        self.checkpoint_rows = rows;
    }

    fn out_of_time(&self) -> bool {
        match (self.deadline, self.margin) {
            (Some(d), Some(m)) => d.saturating_duration_since(Instant::now()) < m,
            _ => false,
        }
    }
}
