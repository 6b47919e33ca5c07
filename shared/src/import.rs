//! The import of one upload, end to end: claim the job, check size and options, stream
//! and validate rows on a blocking thread, write contacts with bounded concurrency,
//! checkpoint progress, and write summary.json and rows.csv.

use std::collections::{BTreeMap, HashMap};
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::config::Config;
use crate::contact::{Source, WriteStamp};
use crate::mapping::ColumnMap;
use crate::options::UploadOptions;
use crate::phone::Region;
use crate::ports::{
    Claim, ContactStore, Job, JobProgress, JobStore, ObjectStore, PutBody, SettingsStore,
    StoreError,
};
use crate::report::{
    saved_message, FileError, ImportStatus, Outcome, ReportLine, RowCounts, RowsReport,
    SourceSummary, Summary,
};
use crate::save::{plan_draft, save_draft, SaveError};
use crate::source::{
    read_text, read_workbook, Format, RawRow, ReadOptions, RowKind, SourceError, SourceInfo,
    WorkbookLimits,
};
use crate::upload::{import_id, rows_report_key, summary_key, UploadIdentity, UploadKey};
use crate::validate::{validate_row, Problem, RowRules, Verdict};

/// How long a running job's owner holds it without a checkpoint before another
/// invocation may take it over.
pub const LEASE_SECONDS: i64 = 30;
/// Checkpoint at least this often (rows).
const CHECKPOINT_ROWS: u64 = 2_000;
/// ... and at least this often (time).
const CHECKPOINT_EVERY: Duration = Duration::from_secs(5);
/// Stop and hand over to a retry when less than this is left of the invocation (or a
/// quarter of what was left at the start, for short local deadlines).
const HANDOVER_MARGIN: Duration = Duration::from_secs(20);

/// Rows whose writes may be under way while an earlier row's write is still pending.
const ORDERED_WINDOW: usize = 1024;

/// The upload an S3 event names.
#[derive(Clone, Debug, Default)]
pub struct Upload {
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
    #[error("writing the rows report failed: {0}")]
    Report(#[from] std::io::Error),
    /// The parsing thread panicked.
    #[error("the parsing thread failed: {0}")]
    Parser(String),
    /// The invocation is about to time out; progress is saved for the retry.
    #[error("the invocation ran out of time after row {last_row}; a retry resumes from there")]
    OutOfTime {
        /// Last committed row.
        last_row: u64,
    },
}

/// A file-level failure: the summary's `error`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Failure {
    code: &'static str,
    message: String,
}

impl Failure {
    fn new(code: &'static str, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The dependencies of an import.
pub struct Importer<'a, O, D> {
    /// Where uploads and reports live.
    pub objects: &'a O,
    /// The table.
    pub table: &'a D,
    /// Configuration.
    pub config: &'a Config,
    /// When the invocation must end; the import hands over to a retry before it.
    pub deadline: Option<Instant>,
}

impl<O, D> Importer<'_, O, D>
where
    O: ObjectStore,
    D: ContactStore + JobStore + SettingsStore,
{
    /// Imports one upload.
    pub async fn run(&self, upload: &Upload) -> Result<ImportResult, ImportError> {
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
        upload: &Upload,
    ) -> Result<ImportResult, ImportError> {
        let started = Instant::now();
        let started_at = now_rfc3339();
        let mut job = Job {
            account_id: key.account_id.clone(),
            import_id: import_id.clone(),
            status: ImportStatus::Running,
            progress: JobProgress::default(),
            summary_key: summary_key(&key.account_id, &import_id),
            source_key: upload.key.clone(),
            started_at: started_at.clone(),
            lease_expires_at: chrono::Utc::now().timestamp() + LEASE_SECONDS,
        };
        let mut claim = self
            .table
            .claim_job(&job, chrono::Utc::now().timestamp())
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
                    .table
                    .claim_job(&job, chrono::Utc::now().timestamp())
                    .await?;
            }
        }
        let resume = match claim {
            Claim::Started => None,
            Claim::TakenOver(previous) => {
                info!(
                    last_row = previous.progress.last_row,
                    "resuming a job whose owner stopped"
                );
                job.started_at = previous.started_at.clone();
                job.progress = previous.progress.clone();
                // The claim wrote a fresh start time: put the original back, since
                // rows already written carry it (see save::outcome_of).
                self.table.save_job(&job).await?;
                Some(previous.progress)
            }
            Claim::Declined(existing) => {
                let why = format!(
                    "import {import_id} is already {}; duplicate event ignored",
                    existing.status.as_str()
                );
                info!("{why}");
                return Ok(ImportResult::Skipped(why));
            }
        };

        let mut run = Run::new(&key, &import_id, upload, &job.started_at, resume);
        let outcome = self.import_file(&key, upload, &mut run, &mut job).await;
        let summary = match outcome {
            Ok(()) => run.summary(started.elapsed(), self.config),
            Err(RunError::File(failure)) => {
                run.failure = Some(failure);
                run.summary(started.elapsed(), self.config)
            }
            Err(RunError::Infra(e)) => {
                // Leave the job resumable at once: a retry takes it over from its
                // last checkpoint.
                job.progress = run.committed_progress();
                job.lease_expires_at = 0;
                if let Err(save) = self.table.save_job(&job).await {
                    warn!(error = %save, "could not record progress before failing");
                }
                return Err(e);
            }
        };
        self.finish(&mut job, &summary, run.report.take()).await?;
        Ok(ImportResult::Finished(Box::new(summary)))
    }

    async fn finish(
        &self,
        job: &mut Job,
        summary: &Summary,
        report: Option<RowsReport>,
    ) -> Result<(), ImportError> {
        if let (Some(report), Some(rows_key)) = (report, summary.rows_report_key.as_ref()) {
            let file = report.finish()?;
            self.objects
                .put(
                    &summary.source.bucket,
                    rows_key,
                    PutBody::File(file.path().to_path_buf()),
                    "text/csv; charset=utf-8",
                )
                .await?;
        }
        let body = serde_json::to_vec_pretty(summary).map_err(std::io::Error::other)?;
        self.objects
            .put(
                &summary.source.bucket,
                &job.summary_key,
                PutBody::Bytes(body),
                "application/json",
            )
            .await?;
        job.status = summary.status;
        job.progress = JobProgress {
            rows: summary.rows.clone(),
            rejections_by_reason: summary.rejections_by_reason.clone(),
            warnings_by_code: summary.warnings_by_code.clone(),
            last_row: job.progress.last_row,
        };
        self.table.save_job(job).await?;
        info!(
            status = summary.status.as_str(),
            total = summary.rows.total,
            created = summary.rows.created,
            rejected = summary.rows.rejected,
            "import finished"
        );
        Ok(())
    }

    async fn import_file(
        &self,
        key: &UploadKey,
        upload: &Upload,
        run: &mut Run,
        job: &mut Job,
    ) -> Result<(), RunError> {
        let info = self
            .objects
            .head(&upload.bucket, &upload.key)
            .await
            .map_err(|e| match e {
                StoreError::NotFound { .. } => RunError::File(Failure::new(
                    "unreadable_file",
                    "the uploaded object no longer exists; upload it again",
                )),
                other => RunError::Infra(other.into()),
            })?;
        run.source.size_bytes = info.size;
        run.source.etag = info.etag.clone().or_else(|| upload.etag.clone());
        run.source.version_id = info
            .version_id
            .clone()
            .or_else(|| upload.version_id.clone());
        if info.size > self.config.max_upload_bytes {
            return Err(RunError::File(Failure::new(
                "file_too_large",
                format!("the file is {} bytes; the limit is {} bytes ({} MB). Split it into smaller files.", info.size, self.config.max_upload_bytes, self.config.max_upload_bytes / 1_048_576),
            )));
        }
        let options = UploadOptions::from_metadata(&info.metadata)
            .map_err(|e| RunError::File(Failure::new("bad_option", e.to_string())))?;
        run.dry_run = options.dry_run;
        let format = Format::from_extension(&key.extension()).ok_or_else(|| {
            RunError::File(Failure::new(
                "unsupported_format",
                format!("files ending in {:?} are not supported; upload a .csv, .txt, .xlsx, .xls or .ods file", if key.extension().is_empty() { String::from("(no extension)") } else { format!(".{}", key.extension()) }),
            ))
        })?;
        run.source.format = Some(format.as_str().to_string());
        let default_region = match options.default_country {
            Some(region) => Some(region),
            None => self
                .account_region(&key.account_id)
                .await?
                .or(self.config.default_country),
        };

        let (tx, rx) = mpsc::channel::<Step>(1024);
        let parse_options = ReadOptions {
            format,
            delimiter: options.delimiter,
            sheet: options.sheet.clone(),
        };
        let parser = RowParser {
            channel: key.channel,
            default_region,
            options: options.clone(),
            max_rows: self.config.max_rows,
            resume_after: run.last_row,
            tx,
        };
        let body = self
            .objects
            .open(&upload.bucket, &upload.key)
            .await
            .map_err(|e| RunError::Infra(e.into()))?;
        let parse_task = if format.is_workbook() {
            let mut bytes =
                Vec::with_capacity(info.size.min(self.config.max_upload_bytes) as usize);
            body.take(self.config.max_upload_bytes + 1)
                .read_to_end(&mut bytes)
                .await
                .map_err(|e| {
                    RunError::File(Failure::new(
                        "unreadable_file",
                        format!("the file could not be downloaded: {e}"),
                    ))
                })?;
            let limits = WorkbookLimits::default();
            tokio::task::spawn_blocking(move || {
                parser.parse(|visit| read_workbook(bytes, &parse_options, &limits, visit))
            })
        } else {
            let reader = tokio_util::io::SyncIoBridge::new(body);
            tokio::task::spawn_blocking(move || {
                parser.parse(|visit| read_text(reader, &parse_options, visit))
            })
        };

        let stamp = WriteStamp {
            now: run.started_at.clone(),
            source: Source::Import,
            import_id: Some(run.import_id.clone()),
            campaign_id: None,
        };
        let write_result = self.write_rows(rx, run, job, key, &options, &stamp).await;
        let parsed = parse_task
            .await
            .map_err(|e| RunError::Infra(ImportError::Parser(e.to_string())))?;
        write_result?;
        let parsed = parsed.map_err(RunError::File)?;
        run.source.encoding = parsed.info.encoding.map(str::to_string);
        run.source.delimiter = parsed.info.delimiter.map(|d| d.to_string());
        run.source.sheet = parsed.info.sheet.clone();
        if let Some(line) = parsed.row_limit_hit_at {
            return Err(RunError::File(Failure::new(
                "too_many_rows",
                format!(
                    "the file has more than {} data rows; the first {} were processed as counted here and rows from line {line} on were not imported. Split the file and upload the rest.",
                    self.config.max_rows, self.config.max_rows
                ),
            )));
        }
        if run.rows.total == 0 {
            return Err(RunError::File(Failure::new(
                "empty_file",
                if parsed.saw_header {
                    "the file has a header row but no data rows"
                } else {
                    "the file has no rows"
                },
            )));
        }
        Ok(())
    }

    async fn account_region(&self, account_id: &str) -> Result<Option<Region>, RunError> {
        let setting = self
            .table
            .default_country(account_id)
            .await
            .map_err(|e| RunError::Infra(e.into()))?;
        Ok(setting.and_then(|code| {
            let region = Region::parse(&code);
            if region.is_none() {
                warn!(setting = %code, "account default_country setting is not a known region; ignored");
            }
            region
        }))
    }

    async fn write_rows(
        &self,
        rx: mpsc::Receiver<Step>,
        run: &mut Run,
        job: &mut Job,
        key: &UploadKey,
        options: &UploadOptions,
        stamp: &WriteStamp,
    ) -> Result<(), RunError> {
        let steps = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|step| (step, rx))
        });
        // Up to `write_concurrency` writes in flight, but a window of many more rows:
        // results are taken in file order (for exact checkpoints), and one row waiting
        // out a throttling backoff must not stall the rows behind it.
        let in_flight = tokio::sync::Semaphore::new(self.config.write_concurrency.max(1));
        let in_flight = &in_flight;
        let table = self.table;
        let dry_run = options.dry_run;
        let on_existing = options.on_existing;
        let done = steps
            .map(|step| async move {
                let outcome = match &step {
                    Step::Row(row) if !row.replayed => match &row.verdict {
                        RowVerdict::Accepted { draft, .. } => {
                            let _permit = in_flight
                                .acquire()
                                .await
                                .map_err(|e| RunError::Infra(ImportError::Parser(e.to_string())))?;
                            let saved = if dry_run {
                                plan_draft(
                                    table,
                                    &key.account_id,
                                    key.channel,
                                    draft,
                                    stamp,
                                    on_existing,
                                )
                                .await
                            } else {
                                save_draft(
                                    table,
                                    &key.account_id,
                                    key.channel,
                                    draft,
                                    stamp,
                                    on_existing,
                                )
                                .await
                            };
                            Some(saved.map_err(|e| RunError::Infra(e.into()))?)
                        }
                        RowVerdict::Duplicate { .. } => Some(Outcome::DuplicateInFile),
                        RowVerdict::Rejected { .. } => Some(Outcome::Rejected),
                    },
                    _ => None,
                };
                Ok::<_, RunError>((step, outcome))
            })
            .buffered(ORDERED_WINDOW);
        let mut done = std::pin::pin!(done);
        let mut last_checkpoint = (Instant::now(), 0u64);
        let margin = self
            .deadline
            .map(|d| HANDOVER_MARGIN.min(d.saturating_duration_since(Instant::now()) / 4));
        let rows_at_start = run.rows.total;
        while let Some(result) = done.next().await {
            let (step, outcome) = result?;
            match step {
                Step::Header(columns) => run.start_report(columns)?,
                Step::Row(row) => {
                    run.record(&row, outcome)?;
                    if run.rows.total - last_checkpoint.1 >= CHECKPOINT_ROWS
                        || last_checkpoint.0.elapsed() >= CHECKPOINT_EVERY
                    {
                        job.progress = run.committed_progress();
                        job.lease_expires_at = chrono::Utc::now().timestamp() + LEASE_SECONDS;
                        self.table
                            .save_job(job)
                            .await
                            .map_err(|e| RunError::Infra(e.into()))?;
                        last_checkpoint = (Instant::now(), run.rows.total);
                    }
                    let out_of_time = match (self.deadline, margin) {
                        (Some(d), Some(m)) => d.saturating_duration_since(Instant::now()) < m,
                        _ => false,
                    };
                    // Hand over only after progress, so every retry gets further.
                    if out_of_time && run.rows.total > rows_at_start {
                        return Err(RunError::Infra(ImportError::OutOfTime {
                            last_row: run.last_row,
                        }));
                    }
                }
            }
        }
        Ok(())
    }
}

enum RunError {
    File(Failure),
    Infra(ImportError),
}

impl From<std::io::Error> for RunError {
    fn from(e: std::io::Error) -> Self {
        RunError::Infra(ImportError::Report(e))
    }
}

/// Messages from the parsing thread to the writer.
enum Step {
    Header(ColumnMap),
    Row(ParsedRow),
}

struct ParsedRow {
    line: u64,
    cells: Vec<String>,
    verdict: RowVerdict,
    /// Before the resume point: already counted and written by an earlier invocation.
    replayed: bool,
}

enum RowVerdict {
    Accepted {
        draft: crate::contact::ContactDraft,
        warnings: Vec<Problem>,
    },
    Rejected {
        problem: Problem,
    },
    Duplicate {
        problem: Problem,
    },
}

struct Parsed {
    info: SourceInfo,
    saw_header: bool,
    row_limit_hit_at: Option<u64>,
}

/// The blocking half: maps the header, validates rows, finds duplicates.
struct RowParser {
    channel: crate::upload::Channel,
    default_region: Option<Region>,
    options: UploadOptions,
    max_rows: u64,
    /// Rows up to this line were committed by an earlier invocation.
    resume_after: u64,
    tx: mpsc::Sender<Step>,
}

impl RowParser {
    fn parse(
        self,
        read: impl FnOnce(&mut dyn FnMut(RawRow) -> ControlFlow<()>) -> Result<SourceInfo, SourceError>,
    ) -> Result<Parsed, Failure> {
        let mut columns: Option<ColumnMap> = None;
        let mut failure: Option<Failure> = None;
        let mut seen: HashMap<u64, u64> = HashMap::new();
        let mut data_rows = 0u64;
        let mut saw_header = false;
        let mut row_limit_hit_at = None;
        let resume_after = self.resume_after;
        let mut visit = |row: RawRow| -> ControlFlow<()> {
            if row.kind == RowKind::Header {
                saw_header = true;
                match ColumnMap::from_header(&row.cells, &self.options.mapping) {
                    Ok(map) => {
                        columns = Some(map.clone());
                        if self.tx.blocking_send(Step::Header(map)).is_err() {
                            return ControlFlow::Break(());
                        }
                        return ControlFlow::Continue(());
                    }
                    Err(e) => {
                        let code = match e {
                            crate::mapping::MappingError::MissingPhoneColumn { .. } => {
                                "missing_phone_column"
                            }
                            _ => "bad_option",
                        };
                        failure = Some(Failure::new(code, e.to_string()));
                        return ControlFlow::Break(());
                    }
                }
            }
            if columns.is_none() {
                let map = ColumnMap::phone_only();
                columns = Some(map.clone());
                if self.tx.blocking_send(Step::Header(map)).is_err() {
                    return ControlFlow::Break(());
                }
            }
            let Some(map) = columns.as_ref() else {
                return ControlFlow::Break(());
            };
            data_rows += 1;
            if data_rows > self.max_rows {
                row_limit_hit_at = Some(row.line);
                return ControlFlow::Break(());
            }
            let rules = RowRules {
                columns: map,
                channel: self.channel,
                default_region: self.default_region,
                lists: &self.options.lists,
                tags: &self.options.tags,
            };
            let verdict = match validate_row(&row.cells, &rules) {
                Verdict::Rejected { problem, .. } => RowVerdict::Rejected { problem },
                Verdict::Accepted { draft, warnings } => {
                    let number: u64 = draft
                        .phone
                        .trim_start_matches('+')
                        .parse()
                        .unwrap_or(u64::MAX);
                    match seen.get(&number) {
                        Some(first) => RowVerdict::Duplicate {
                            problem: Problem {
                                code: "duplicate_in_file",
                                column: map.title_of(crate::field::Field::Phone).to_string(),
                                message: format!(
                                    "{} is also on row {first}; the first row was used",
                                    crate::text::mask_phone(&draft.phone)
                                ),
                            },
                        },
                        None => {
                            seen.insert(number, row.line);
                            RowVerdict::Accepted { draft, warnings }
                        }
                    }
                }
            };
            let step = Step::Row(ParsedRow {
                replayed: row.line <= resume_after,
                line: row.line,
                cells: row.cells,
                verdict,
            });
            if self.tx.blocking_send(step).is_err() {
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        };
        let info = read(&mut visit).map_err(|e| match e {
            SourceError::TooLarge(m) => Failure::new("file_too_large", m),
            SourceError::NoSuchSheet { .. } => {
                Failure::new("bad_option", format!("upload option x-amz-meta-sheet: {e}"))
            }
            SourceError::Unreadable(m) => Failure::new("unreadable_file", m),
        })?;
        if let Some(failure) = failure {
            return Err(failure);
        }
        Ok(Parsed {
            info,
            saw_header,
            row_limit_hit_at,
        })
    }
}

/// State of one import run: counts, report, source facts.
struct Run {
    import_id: String,
    account_id: String,
    channel: String,
    started_at: String,
    source: SourceSummary,
    dry_run: bool,
    rows: RowCounts,
    rejections: BTreeMap<String, u64>,
    warnings: BTreeMap<String, u64>,
    column_mapping: BTreeMap<String, String>,
    report: Option<RowsReport>,
    failure: Option<Failure>,
    last_row: u64,
}

impl Run {
    fn new(
        key: &UploadKey,
        import_id: &str,
        upload: &Upload,
        started_at: &str,
        resume: Option<JobProgress>,
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
            report: None,
            failure: None,
            last_row: resume.last_row,
        }
    }

    fn start_report(&mut self, columns: ColumnMap) -> std::io::Result<()> {
        self.column_mapping = columns.summary();
        self.report = Some(RowsReport::create(&columns.header)?);
        Ok(())
    }

    fn record(&mut self, row: &ParsedRow, outcome: Option<Outcome>) -> std::io::Result<()> {
        let (problems, outcome): (Vec<&Problem>, Outcome) = match (&row.verdict, outcome) {
            (RowVerdict::Rejected { problem }, _) => (vec![problem], Outcome::Rejected),
            (RowVerdict::Duplicate { problem }, _) => (vec![problem], Outcome::DuplicateInFile),
            (RowVerdict::Accepted { warnings, .. }, Some(outcome)) => {
                (warnings.iter().collect(), outcome)
            }
            (RowVerdict::Accepted { .. }, None) => return Ok(()),
        };
        if !row.replayed {
            self.rows.add(outcome);
            self.last_row = row.line;
            match &row.verdict {
                RowVerdict::Rejected { problem } => {
                    *self.rejections.entry(problem.code.to_string()).or_default() += 1
                }
                RowVerdict::Accepted { warnings, .. } => {
                    for w in warnings {
                        *self.warnings.entry(w.code.to_string()).or_default() += 1;
                    }
                }
                RowVerdict::Duplicate { .. } => {}
            }
        }
        if problems.is_empty() {
            return Ok(());
        }
        let join =
            |f: fn(&Problem) -> &str| problems.iter().map(|p| f(p)).collect::<Vec<_>>().join("; ");
        let line = ReportLine {
            row: row.line,
            outcome,
            code: join(|p| p.code),
            column: join(|p| &p.column),
            message: join(|p| &p.message),
        };
        if let Some(report) = self.report.as_mut() {
            report.push(&line, &row.cells)?;
        }
        Ok(())
    }

    fn committed_progress(&self) -> JobProgress {
        JobProgress {
            rows: self.rows.clone(),
            rejections_by_reason: self.rejections.clone(),
            warnings_by_code: self.warnings.clone(),
            last_row: self.last_row,
        }
    }

    fn summary(&self, elapsed: Duration, _config: &Config) -> Summary {
        let status = if self.failure.is_some() {
            ImportStatus::Failed
        } else if self.rows.rejected > 0 {
            ImportStatus::CompletedWithErrors
        } else {
            ImportStatus::Completed
        };
        let message = match &self.failure {
            Some(f) if self.rows.created > 0 => format!(
                "{} {}",
                f.message,
                saved_message(self.rows.created, self.dry_run)
            ),
            Some(f) => f.message.clone(),
            None => saved_message(self.rows.created, self.dry_run),
        };
        Summary {
            import_id: self.import_id.clone(),
            account_id: self.account_id.clone(),
            channel: self.channel.clone(),
            source: self.source.clone(),
            status,
            dry_run: self.dry_run,
            started_at: self.started_at.clone(),
            finished_at: now_rfc3339(),
            duration_ms: elapsed.as_millis() as u64,
            rows: self.rows.clone(),
            rejections_by_reason: self.rejections.clone(),
            warnings_by_code: self.warnings.clone(),
            column_mapping: self.column_mapping.clone(),
            message,
            error: self.failure.as_ref().map(|f| FileError {
                code: f.code.to_string(),
                message: f.message.clone(),
            }),
            rows_report_key: self
                .report
                .as_ref()
                .map(|_| rows_report_key(&self.account_id, &self.import_id)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::memory::MemoryStore;

    const BUCKET: &str = "contact-uploads";

    async fn import(
        store: &MemoryStore,
        key: &str,
        body: &[u8],
        metadata: &[(&str, &str)],
        sequencer: &str,
    ) -> Summary {
        import_with(&Config::default(), store, key, body, metadata, sequencer).await
    }

    async fn import_with(
        config: &Config,
        store: &MemoryStore,
        key: &str,
        body: &[u8],
        metadata: &[(&str, &str)],
        sequencer: &str,
    ) -> Summary {
        store.insert_object(BUCKET, key, body, metadata);
        let importer = Importer {
            objects: store,
            table: store,
            config,
            deadline: None,
        };
        let upload = Upload {
            bucket: BUCKET.into(),
            key: key.into(),
            sequencer: Some(sequencer.into()),
            ..Default::default()
        };
        match importer
            .run(&upload)
            .await
            .expect("no infrastructure error")
        {
            ImportResult::Finished(summary) => *summary,
            ImportResult::Skipped(why) => panic!("skipped: {why}"),
        }
    }

    const MYOPERATOR: &[u8] = b"Name,Phone number\r\nAsha Rao,+91 98765 43210\r\nNo Number,\r\nRavi,+919876543211\r\nAsha again,+919876543210\r\n";

    #[tokio::test]
    async fn imports_counts_and_reports_every_row() {
        let store = MemoryStore::default();
        let summary = import(
            &store,
            "imports/acme/whatsapp/list.csv",
            MYOPERATOR,
            &[],
            "1",
        )
        .await;
        assert_eq!(summary.status, ImportStatus::CompletedWithErrors);
        assert_eq!(
            (
                summary.rows.total,
                summary.rows.created,
                summary.rows.rejected,
                summary.rows.duplicate_in_file
            ),
            (4, 2, 1, 1)
        );
        assert_eq!(summary.message, "2 new contacts saved to Contact Book.");
        assert_eq!(
            summary
                .column_mapping
                .get("Phone number")
                .map(String::as_str),
            Some("phone")
        );
        let rows = store
            .object_text(
                BUCKET,
                summary.rows_report_key.as_deref().expect("rows key"),
            )
            .expect("rows.csv");
        let lines: Vec<&str> = rows.lines().collect();
        assert_eq!(
            lines[0],
            "row,outcome,code,column,message,Name,Phone number"
        );
        assert!(
            lines[1].starts_with("3,rejected,missing_phone,Phone number,"),
            "{}",
            lines[1]
        );
        assert!(
            lines[2].starts_with("5,duplicate_in_file,duplicate_in_file,"),
            "{}",
            lines[2]
        );
        let contact = store
            .contact("CONTACT#acme#whatsapp#+919876543210")
            .expect("saved");
        assert_eq!(
            contact.text.get("name").map(String::as_str),
            Some("Asha Rao")
        );
        assert!(store
            .object_text(BUCKET, &summary_key("acme", &summary.import_id))
            .is_some());
    }

    #[tokio::test]
    async fn second_upload_is_unchanged_and_duplicate_event_is_skipped() {
        let store = MemoryStore::default();
        import(
            &store,
            "imports/acme/whatsapp/list.csv",
            MYOPERATOR,
            &[],
            "1",
        )
        .await;
        let again = import(
            &store,
            "imports/acme/whatsapp/list.csv",
            MYOPERATOR,
            &[],
            "2",
        )
        .await;
        assert_eq!((again.rows.created, again.rows.unchanged), (0, 2));
        let config = Config::default();
        let importer = Importer {
            objects: &store,
            table: &store,
            config: &config,
            deadline: None,
        };
        let upload = Upload {
            bucket: BUCKET.into(),
            key: "imports/acme/whatsapp/list.csv".into(),
            sequencer: Some("2".into()),
            ..Default::default()
        };
        assert!(matches!(
            importer.run(&upload).await,
            Ok(ImportResult::Skipped(_))
        ));
    }

    #[tokio::test]
    async fn options_ignore_dry_run_lists_and_country() {
        let store = MemoryStore::default();
        let webex =
            b"First Name,Last Name,Mobile\nOlivia,Jones,07911 123456\nHarry,Smith,07400 123456\n";
        let dry = import(
            &store,
            "imports/acme/sms/uk.csv",
            webex,
            &[("default-country", "GB"), ("dry-run", "true")],
            "1",
        )
        .await;
        assert_eq!((dry.rows.created, dry.dry_run), (2, true));
        assert_eq!(store.contact_count(), 0);
        let real = import(
            &store,
            "imports/acme/sms/uk.csv",
            webex,
            &[("default-country", "GB"), ("lists", "Spring, VIP")],
            "2",
        )
        .await;
        assert_eq!(real.rows.created, 2);
        let olivia = store
            .contact("CONTACT#acme#sms#+447911123456")
            .expect("saved");
        assert_eq!(
            olivia.text.get("name").map(String::as_str),
            Some("Olivia Jones")
        );
        assert_eq!(olivia.lists.len(), 2);
        let ignored = import(
            &store,
            "imports/acme/sms/uk.csv",
            b"Phone,Name\n+447911123456,Changed\n",
            &[("on-existing", "ignore")],
            "3",
        )
        .await;
        assert_eq!(ignored.rows.skipped_existing, 1);
        assert_eq!(
            store
                .contact("CONTACT#acme#sms#+447911123456")
                .and_then(|c| c.text.get("name").cloned())
                .as_deref(),
            Some("Olivia Jones")
        );
    }

    #[tokio::test]
    async fn file_level_failures_write_nothing() {
        let store = MemoryStore::default();
        type Case<'a> = (&'a str, &'a [u8], &'a [(&'a str, &'a str)], &'a str);
        let cases: [Case<'_>; 5] = [
            (
                "imports/a/whatsapp/x.csv",
                b"Name,Email\nEva,e@x.com\n",
                &[],
                "missing_phone_column",
            ),
            (
                "imports/a/whatsapp/x.csv",
                b"Name,Phone\n",
                &[],
                "empty_file",
            ),
            ("imports/a/whatsapp/x.csv", b"", &[], "empty_file"),
            (
                "imports/a/whatsapp/x.pdf",
                b"%PDF",
                &[],
                "unsupported_format",
            ),
            (
                "imports/a/whatsapp/x.csv",
                b"Phone\n+447911123456\n",
                &[("on-existing", "merge")],
                "bad_option",
            ),
        ];
        for (i, (key, body, meta, code)) in cases.into_iter().enumerate() {
            let summary = import(&store, key, body, meta, &i.to_string()).await;
            assert_eq!(summary.status, ImportStatus::Failed, "{code}");
            assert_eq!(summary.error.as_ref().map(|e| e.code.as_str()), Some(code));
        }
        assert_eq!(store.contact_count(), 0);
    }

    #[tokio::test]
    async fn too_large_is_refused_before_download() {
        let store = MemoryStore::default();
        let config = Config {
            max_upload_bytes: 10,
            ..Config::default()
        };
        let summary = import_with(
            &config,
            &store,
            "imports/acme/whatsapp/big.csv",
            b"Phone\n+447911123456\n",
            &[],
            "1",
        )
        .await;
        assert_eq!(
            summary.error.map(|e| e.code),
            Some("file_too_large".to_string())
        );
        assert_eq!(store.contact_count(), 0);
    }

    #[tokio::test]
    async fn max_rows_stops_and_says_what_was_written() {
        let store = MemoryStore::default();
        let config = Config {
            max_rows: 2,
            ..Config::default()
        };
        let summary = import_with(
            &config,
            &store,
            "imports/acme/whatsapp/many.csv",
            b"Phone\n+447911123456\n+447911123457\n+447911123458\n",
            &[],
            "1",
        )
        .await;
        assert_eq!(
            summary.error.as_ref().map(|e| e.code.as_str()),
            Some("too_many_rows")
        );
        assert!(summary.message.contains("line 4"), "{}", summary.message);
        assert_eq!((summary.rows.total, summary.rows.created), (2, 2));
        assert_eq!(store.contact_count(), 2);
    }

    #[tokio::test]
    async fn pasted_list_in_txt() {
        let store = MemoryStore::default();
        let summary = import(
            &store,
            "imports/acme/whatsapp/paste.txt",
            b"+447911123456\n+447400123456\n\nnot a number\n",
            &[],
            "1",
        )
        .await;
        assert_eq!(
            (
                summary.rows.total,
                summary.rows.created,
                summary.rows.rejected
            ),
            (3, 2, 1)
        );
    }

    #[tokio::test]
    async fn a_taken_over_job_resumes_after_its_last_committed_row() {
        let store = MemoryStore::default();
        let key = "imports/acme/whatsapp/big.csv";
        let body = b"Phone\n+447911123456\n+447911123457\nbad\n+447911123458\n";
        store.insert_object(BUCKET, key, body, &[]);
        let upload = Upload {
            bucket: BUCKET.into(),
            key: key.into(),
            sequencer: Some("1".into()),
            ..Default::default()
        };
        let id = import_id(&UploadIdentity {
            bucket: BUCKET,
            key,
            sequencer: Some("1"),
            ..Default::default()
        });
        // An earlier owner committed rows up to line 3 (two contacts) and died.
        let mut progress = JobProgress {
            last_row: 3,
            ..Default::default()
        };
        progress.rows.add(Outcome::Created);
        progress.rows.add(Outcome::Created);
        let job = Job {
            account_id: "acme".into(),
            import_id: id.clone(),
            status: ImportStatus::Running,
            progress,
            summary_key: summary_key("acme", &id),
            source_key: key.into(),
            started_at: now_rfc3339(),
            lease_expires_at: 0,
        };
        store.save_job(&job).await.expect("saved");
        let config = Config::default();
        let importer = Importer {
            objects: &store,
            table: &store,
            config: &config,
            deadline: None,
        };
        let ImportResult::Finished(summary) = importer.run(&upload).await.expect("ran") else {
            panic!("skipped")
        };
        assert_eq!(
            (
                summary.rows.total,
                summary.rows.created,
                summary.rows.rejected
            ),
            (4, 3, 1)
        );
        assert_eq!(
            store.writes(),
            1,
            "rows before the checkpoint are not written again"
        );
    }
}
