//! The state of one import run: counts by outcome, reasons and warnings, the rows
//! report as it is written, the first rejected rows (for report.html), and the summary
//! it all ends in.

use std::collections::BTreeMap;
use std::time::Duration;

use tracing::warn;

use super::report::{
    rejected_rows_in, FileError, RejectedRow, RejectedSample, ReportLine, RowsReport,
    SourceSummary, Summary, SAMPLE_ROWS,
};
use super::rows::{ParsedRow, RowVerdict};
use super::{now_rfc3339, ImportError, UploadedFile};
use crate::domain::capacity::Consumed;
use crate::domain::keys::{html_report_key, rows_report_key, rows_report_part_key};
use crate::domain::mapping::{ColumnMap, MappingSource};
use crate::domain::outcome::{saved_message, FailureCode, ImportStatus, Outcome, RowCounts};
use crate::domain::phone::PhoneRejection;
use crate::domain::upload::UploadKey;
use crate::domain::validate::{Problem, WarningCode};
use crate::ports::JobProgress;

/// A file-level failure: the summary's `error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Failure {
    pub(super) code: FailureCode,
    pub(super) message: String,
}

impl Failure {
    pub(super) fn new(code: FailureCode, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }
}

/// How a run stops early: the file failed (reported), or the infrastructure did
/// (retried).
pub(super) enum RunError {
    File(Failure),
    Infra(ImportError),
}

impl From<Failure> for RunError {
    fn from(failure: Failure) -> Self {
        RunError::File(failure)
    }
}

impl From<std::io::Error> for RunError {
    fn from(e: std::io::Error) -> Self {
        RunError::Infra(ImportError::Report(e))
    }
}

/// State of one import run: counts, report, source facts.
pub(super) struct Run {
    pub(super) import_id: String,
    pub(super) account_id: String,
    channel: String,
    pub(super) started_at: String,
    pub(super) source: SourceSummary,
    pub(super) dry_run: bool,
    pub(super) rows: RowCounts,
    rejections: BTreeMap<PhoneRejection, u64>,
    warnings: BTreeMap<WarningCode, u64>,
    column_mapping: BTreeMap<String, String>,
    /// Where the column mapping came from.
    pub(super) mapping_source: MappingSource,
    pub(super) report: Option<RowsReport>,
    /// The file's columns, once its header is read: where a problem's column is.
    columns: Option<ColumnMap>,
    /// The first rejected rows, those of earlier invocations read back from the parts.
    rejected: RejectedSample,
    pub(super) failure: Option<Failure>,
    pub(super) last_row: u64,
    /// Parts of the report stored so far: its lines up to `last_row`.
    pub(super) report_parts: u32,
    /// Capacity consumed by the invocations before this one.
    consumed_before: Consumed,
    /// The store's meter when this invocation started on the import.
    meter_at_start: Consumed,
    /// Capacity consumed so far, all invocations: updated by [`Run::metered`].
    pub(super) consumed: Consumed,
}

impl Run {
    pub(super) fn new(
        key: &UploadKey,
        import_id: &str,
        upload: &UploadedFile,
        started_at: &str,
        resume: Option<JobProgress>,
        meter_at_start: Consumed,
    ) -> Run {
        let resume = resume.unwrap_or_default();
        Run {
            import_id: import_id.to_string(),
            account_id: key.account_id.clone(),
            channel: key.channel.as_str().to_string(),
            started_at: started_at.to_string(),
            source: SourceSummary {
                bucket: upload.bucket.clone(),
                key: upload.key.clone(),
                etag: upload.etag.clone(),
                version_id: upload.version_id.clone(),
                size_bytes: upload.size.unwrap_or(0),
                ..Default::default()
            },
            dry_run: false,
            rows: resume.rows,
            rejections: resume.rejections_by_reason,
            warnings: resume.warnings_by_code,
            column_mapping: BTreeMap::new(),
            mapping_source: MappingSource::Automatic,
            report: None,
            columns: None,
            rejected: RejectedSample::default(),
            failure: None,
            last_row: resume.last_row,
            report_parts: resume.report_parts,
            consumed_before: resume.consumed,
            meter_at_start,
            consumed: resume.consumed,
        }
    }

    /// Takes a reading of the store's meter: what the import consumed so far.
    pub(super) fn metered(&mut self, reading: Consumed) {
        self.consumed = self
            .consumed_before
            .plus(&reading.since(&self.meter_at_start))
            .rounded();
    }

    /// Key of the report's part `n`.
    pub(super) fn report_part_key(&self, n: u32) -> String {
        rows_report_part_key(&self.account_id, &self.import_id, n)
    }

    /// Starts the report with the file's header, then the lines of the parts an
    /// earlier invocation stored (in order), and the sample of rejected rows with the
    /// rejected rows among those lines.
    pub(super) fn start_report(
        &mut self,
        columns: ColumnMap,
        parts: &[Vec<u8>],
    ) -> std::io::Result<()> {
        self.column_mapping = columns.summary();
        self.report = Some(RowsReport::create(&columns.header, parts)?);
        self.rejected = RejectedSample::new(columns.header.clone());
        self.columns = Some(columns);
        match rejected_rows_in(parts, SAMPLE_ROWS) {
            Ok(rows) => rows.into_iter().for_each(|row| self.sample(row)),
            Err(e) => {
                warn!(error = %e, "could not read the rejected rows back from the report's parts; report.html lists those after the resume point");
                self.rejected.starts_after = Some(self.last_row);
            }
        }
        Ok(())
    }

    /// Keeps a rejected row for report.html while the sample has room, with its
    /// offending cell located.
    fn sample(&mut self, mut row: RejectedRow) {
        if self.rejected.is_full() {
            return;
        }
        row.cell = self
            .columns
            .as_ref()
            .and_then(|c| c.index_titled(&row.column));
        self.rejected.push(row);
    }

    /// The first rejected rows, for report.html.
    pub(super) fn rejected_sample(&self) -> &RejectedSample {
        &self.rejected
    }

    /// Counts a row and reports its problems, unless an earlier invocation did both
    /// (its counts and report parts hold every row up to its checkpoint).
    pub(super) fn record(
        &mut self,
        row: &ParsedRow,
        outcome: Option<Outcome>,
    ) -> std::io::Result<()> {
        if row.replayed {
            return Ok(());
        }
        let (problems, outcome): (Vec<&Problem>, Outcome) = match (&row.verdict, outcome) {
            (RowVerdict::Rejected { problem }, _) => (vec![problem], Outcome::Rejected),
            (RowVerdict::Duplicate { problem }, _) => (vec![problem], Outcome::DuplicateInFile),
            (RowVerdict::Accepted { warnings, .. }, Some(outcome)) => {
                (warnings.iter().collect(), outcome)
            }
            (RowVerdict::Accepted { .. }, None) => return Ok(()),
        };
        self.count(row, outcome);
        let Some(report) = self.report.as_mut().filter(|_| !problems.is_empty()) else {
            return Ok(());
        };
        let line = ReportLine {
            row: row.line,
            outcome,
            problems,
        };
        report.push(&line, &row.cells)?;
        if outcome == Outcome::Rejected && !self.rejected.is_full() {
            self.sample(line.rejected_row(&row.cells));
        }
        Ok(())
    }

    fn count(&mut self, row: &ParsedRow, outcome: Outcome) {
        self.rows.add(outcome);
        self.last_row = row.line;
        match &row.verdict {
            RowVerdict::Rejected { problem } => {
                if let Some(reason) = problem.code.rejection() {
                    *self.rejections.entry(reason).or_default() += 1;
                }
            }
            RowVerdict::Accepted { warnings, .. } => {
                for code in warnings.iter().filter_map(|w| w.code.warning()) {
                    *self.warnings.entry(code).or_default() += 1;
                }
            }
            RowVerdict::Duplicate { .. } => {}
        }
    }

    pub(super) fn committed_progress(&self) -> JobProgress {
        JobProgress {
            rows: self.rows.clone(),
            rejections_by_reason: self.rejections.clone(),
            warnings_by_code: self.warnings.clone(),
            last_row: self.last_row,
            report_parts: self.report_parts,
            consumed: self.consumed,
        }
    }

    fn status(&self) -> ImportStatus {
        if self.failure.is_some() {
            ImportStatus::Failed
        } else if self.rows.rejected > 0 {
            ImportStatus::CompletedWithErrors
        } else {
            ImportStatus::Completed
        }
    }

    fn message(&self) -> String {
        let saved = saved_message(self.rows.created, self.dry_run);
        match &self.failure {
            Some(f) if self.rows.created > 0 => format!("{} {saved}", f.message),
            Some(f) => f.message.clone(),
            None => saved,
        }
    }

    pub(super) fn summary(&self, elapsed: Duration) -> Summary {
        Summary {
            import_id: self.import_id.clone(),
            account_id: self.account_id.clone(),
            channel: self.channel.clone(),
            source: self.source.clone(),
            status: self.status(),
            dry_run: self.dry_run,
            started_at: self.started_at.clone(),
            finished_at: now_rfc3339(),
            duration_ms: elapsed.as_millis() as u64,
            rows: self.rows.clone(),
            rejections_by_reason: self.rejections.clone(),
            consumed: self.consumed,
            warnings_by_code: self.warnings.clone(),
            column_mapping: self.column_mapping.clone(),
            mapping_source: self.mapping_source,
            message: self.message(),
            error: self.failure.as_ref().map(|f| FileError {
                code: f.code,
                message: f.message.clone(),
            }),
            rows_report_key: self
                .report
                .as_ref()
                .map(|_| rows_report_key(&self.account_id, &self.import_id)),
            html_report_key: Some(html_report_key(&self.account_id, &self.import_id)),
        }
    }
}
