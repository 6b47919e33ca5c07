//! The writing half: contacts are written with bounded concurrency, outcomes taken in
//! file order (so checkpoints are exact), progress checkpointed, and the import handed
//! over before the invocation's deadline.

use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::sync::{mpsc, Semaphore};

use super::rows::{ParsedRow, RowVerdict, Step};
use super::run::{Run, RunError};
use super::{ImportError, Importer, CHECKPOINT_EVERY, CHECKPOINT_ROWS, LEASE_SECONDS};
use crate::book::{plan_draft, save_draft};
use crate::domain::contact::WriteStamp;
use crate::domain::options::UploadOptions;
use crate::domain::outcome::Outcome;
use crate::domain::upload::UploadKey;
use crate::ports::{ContactStore, Job, JobStore, ObjectStore, SettingsStore};

/// Rows whose writes may be under way while an earlier row's write is still pending.
const ORDERED_WINDOW: usize = 1024;
/// Stop and hand over when less than this is left of the invocation (or a quarter of
/// what was left at the start, for short local deadlines).
const HANDOVER_MARGIN: Duration = Duration::from_secs(20);

/// What one row's write needs, shared by every row of the import.
struct RowWrite<'a, C> {
    contacts: &'a C,
    in_flight: &'a Semaphore,
    key: &'a UploadKey,
    options: &'a UploadOptions,
    stamp: &'a WriteStamp,
}

impl<C: ContactStore> RowWrite<'_, C> {
    /// The row's outcome; `None` for the header and for rows an earlier invocation wrote.
    async fn outcome(&self, step: &Step) -> Result<Option<Outcome>, RunError> {
        let row = match step {
            Step::Row(row) if !row.replayed => row,
            _ => return Ok(None),
        };
        let draft = match &row.verdict {
            RowVerdict::Accepted { draft, .. } => draft,
            RowVerdict::Duplicate { .. } => return Ok(Some(Outcome::DuplicateInFile)),
            RowVerdict::Rejected { .. } => return Ok(Some(Outcome::Rejected)),
        };
        let _permit = self
            .in_flight
            .acquire()
            .await
            .map_err(|e| RunError::Infra(ImportError::WriteLimiter(e)))?;
        let (account, channel) = (&self.key.account_id, self.key.channel);
        let on_existing = self.options.on_existing;
        let saved = if self.options.dry_run {
            plan_draft(
                self.contacts,
                account,
                channel,
                draft,
                self.stamp,
                on_existing,
            )
            .await
        } else {
            save_draft(
                self.contacts,
                account,
                channel,
                draft,
                self.stamp,
                on_existing,
            )
            .await
        };
        Ok(Some(saved.map_err(|e| RunError::Infra(e.into()))?))
    }
}

impl<O, C, J, S> Importer<'_, O, C, J, S>
where
    O: ObjectStore,
    C: ContactStore,
    J: JobStore,
    S: SettingsStore,
{
    pub(super) async fn write_rows(
        &self,
        rx: mpsc::Receiver<Step>,
        run: &mut Run,
        job: &mut Job,
        key: &UploadKey,
        options: &UploadOptions,
        stamp: &WriteStamp,
    ) -> Result<(), RunError> {
        // Up to `write_concurrency` writes in flight, but a window of many more rows:
        // results are taken in file order (for exact checkpoints), and one row waiting
        // out a throttling backoff must not stall the rows behind it.
        let in_flight = Semaphore::new(self.config.write_concurrency.max(1));
        let writer = RowWrite {
            contacts: self.contacts,
            in_flight: &in_flight,
            key,
            options,
            stamp,
        };
        let writer = &writer;
        let steps = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|step| (step, rx))
        });
        let done = steps
            .map(|step| async move { writer.outcome(&step).await.map(|o| (step, o)) })
            .buffered(ORDERED_WINDOW);
        let mut done = std::pin::pin!(done);
        let mut progress = Progress::new(self.deadline, run.rows.total);
        while let Some(result) = done.next().await {
            match result? {
                (Step::Header(columns), _) => run.start_report(columns)?,
                (Step::Row(row), outcome) => {
                    self.record(&row, outcome, run, job, &mut progress).await?
                }
            }
        }
        Ok(())
    }

    /// Counts one row, checkpoints when due, and hands over when time runs short.
    async fn record(
        &self,
        row: &ParsedRow,
        outcome: Option<Outcome>,
        run: &mut Run,
        job: &mut Job,
        progress: &mut Progress,
    ) -> Result<(), RunError> {
        run.record(row, outcome)?;
        if progress.checkpoint_due(run.rows.total) {
            job.progress = run.committed_progress();
            job.lease_expires_at = chrono::Utc::now().timestamp() + LEASE_SECONDS;
            self.jobs
                .save_job(job)
                .await
                .map_err(|e| RunError::Infra(e.into()))?;
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
