//! One file: HEAD before download (size, options, format), the parser on a blocking
//! thread, the writer on this one, then the file-level verdicts (too many rows, empty).

use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use tracing::warn;

use super::job::Lease;
use super::rows::{MappingAsk, Parsed, RowParser};
use super::run::{Failure, Run, RunError};
use super::{ImportError, Importer, UploadedFile};
use crate::domain::contact::{Source, WriteStamp};
use crate::domain::mapping::MappingSource;
use crate::domain::options::UploadOptions;
use crate::domain::outcome::FailureCode;
use crate::domain::phone::Region;
use crate::domain::upload::UploadKey;
use crate::parse::{read_rows, Body, Format, ReadOptions, WorkbookLimits};
use crate::ports::{
    CapacityMeter, ContactStore, ImportEvents, Job, JobStore, ObjectInfo, ObjectStore,
    SettingsStore, StoreError, Suppressions,
};

/// Rows parsed ahead of the writer.
const PARSED_AHEAD: usize = 1024;

impl<O, C, J, S, E> Importer<'_, O, C, J, S, E>
where
    O: ObjectStore,
    C: ContactStore + Suppressions + CapacityMeter,
    J: JobStore,
    S: SettingsStore,
    E: ImportEvents,
{
    pub(super) async fn import_file(
        &self,
        key: &UploadKey,
        upload: &UploadedFile,
        run: &mut Run,
        job: &mut Job,
        lease: &Lease<'_, J>,
    ) -> Result<(), RunError> {
        let info = self.inspect(upload, run).await?;
        let options = UploadOptions::from_metadata(&info.metadata)
            .map_err(|e| Failure::new(FailureCode::BadOption, e.to_string()))?;
        run.dry_run = options.dry_run;
        if !options.mapping.is_empty() {
            run.mapping_source = MappingSource::Option;
        }
        let format = format_of(key)?;
        run.source.format = Some(format.as_str().to_string());
        let default_region = match options.default_country {
            Some(region) => Some(region),
            None => self
                .account_region(&key.account_id)
                .await?
                .or(self.config.default_country),
        };
        let (tx, rx) = mpsc::channel(PARSED_AHEAD);
        let (ask, asked) = mpsc::channel(1);
        let parser = RowParser {
            channel: key.channel,
            default_region,
            options: options.clone(),
            max_rows: self.config.max_rows,
            resume_after: run.last_row,
            tx,
            saved_mappings: options.mapping.is_empty().then_some(ask),
        };
        let read = ReadOptions {
            format,
            delimiter: options.delimiter,
            sheet: options.sheet.clone(),
        };
        let parse_task = self.spawn_parser(upload, &info, read, parser).await?;
        let stamp = WriteStamp {
            now: run.started_at.clone(),
            source: Source::Import,
            import_id: Some(run.import_id.clone()),
            campaign_id: None,
        };
        let (written, answered) = tokio::join!(
            self.write_rows(rx, run, job, lease, key, &options, &stamp),
            self.answer_mapping_asks(&key.account_id, asked),
        );
        let parsed = parse_task
            .await
            .map_err(|e| RunError::Infra(ImportError::Parser(e)))?;
        written?;
        answered.map_err(|e| RunError::Infra(e.into()))?;
        self.conclude(parsed.map_err(RunError::File)?, run)
    }

    /// Answers the parser's questions for the mapping the account saved for a header
    /// (one per import, at its header) until the parser is done. A store failure
    /// leaves the question unanswered, which stops the parser, and fails the import.
    async fn answer_mapping_asks(
        &self,
        account_id: &str,
        mut asked: mpsc::Receiver<MappingAsk>,
    ) -> Result<(), StoreError> {
        while let Some(ask) = asked.recv().await {
            let saved = self
                .settings
                .saved_mapping(account_id, &ask.signature)
                .await?;
            // The parser may have stopped already: nothing waits for the answer then.
            let _ = ask.reply.send(saved);
        }
        Ok(())
    }

    /// HEAD: records what the object is, refuses it before download when too large.
    async fn inspect(&self, upload: &UploadedFile, run: &mut Run) -> Result<ObjectInfo, RunError> {
        let info = self
            .objects
            .head(&upload.bucket, &upload.key)
            .await
            .map_err(|e| match e {
                StoreError::NotFound { .. } => RunError::File(Failure::new(
                    FailureCode::UnreadableFile,
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
        let limit = self.config.max_upload_bytes;
        if info.size > limit {
            return Err(RunError::File(Failure::new(
                FailureCode::FileTooLarge,
                format!("the file is {} bytes; the limit is {limit} bytes ({} MB). Split it into smaller files.", info.size, limit / 1_048_576),
            )));
        }
        Ok(info)
    }

    /// Starts the blocking parser: text streams from S3 as it is read; a workbook is
    /// downloaded whole first (calamine needs all of it).
    async fn spawn_parser(
        &self,
        upload: &UploadedFile,
        info: &ObjectInfo,
        read: ReadOptions,
        parser: RowParser,
    ) -> Result<tokio::task::JoinHandle<Result<Parsed, Failure>>, RunError> {
        let body = self
            .objects
            .open(&upload.bucket, &upload.key)
            .await
            .map_err(|e| RunError::Infra(e.into()))?;
        let limits = WorkbookLimits::default();
        if !read.format.is_workbook() {
            let reader = tokio_util::io::SyncIoBridge::new(body);
            return Ok(tokio::task::spawn_blocking(move || {
                parser.parse(|visit| read_rows(Body::Stream(reader), &read, &limits, visit))
            }));
        }
        let max = self.config.max_upload_bytes;
        let mut bytes = Vec::with_capacity(info.size.min(max) as usize);
        body.take(max + 1)
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| {
                Failure::new(
                    FailureCode::UnreadableFile,
                    format!("the file could not be downloaded: {e}"),
                )
            })?;
        Ok(tokio::task::spawn_blocking(move || {
            let body: Body<&[u8]> = Body::Bytes(bytes);
            parser.parse(|visit| read_rows(body, &read, &limits, visit))
        }))
    }

    /// The file-level verdicts once every row is through.
    fn conclude(&self, parsed: Parsed, run: &mut Run) -> Result<(), RunError> {
        run.source.encoding = parsed.info.encoding.map(str::to_string);
        run.source.delimiter = parsed.info.delimiter.map(|d| d.to_string());
        run.source.sheet = parsed.info.sheet.clone();
        let max = self.config.max_rows;
        if let Some(line) = parsed.row_limit_hit_at {
            return Err(RunError::File(Failure::new(
                FailureCode::TooManyRows,
                format!(
                    "the file has more than {max} data rows; the first {max} were processed as counted here and rows from line {line} on were not imported. Split the file and upload the rest."
                ),
            )));
        }
        if run.rows.total == 0 {
            let message = if parsed.saw_header {
                "the file has a header row but no data rows"
            } else {
                "the file has no rows"
            };
            return Err(RunError::File(Failure::new(
                FailureCode::EmptyFile,
                message,
            )));
        }
        Ok(())
    }

    async fn account_region(&self, account_id: &str) -> Result<Option<Region>, RunError> {
        let setting = self
            .settings
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
}

fn format_of(key: &UploadKey) -> Result<Format, Failure> {
    let ext = key.extension();
    Format::from_extension(&ext).ok_or_else(|| {
        let shown = if ext.is_empty() {
            String::from("(no extension)")
        } else {
            format!(".{ext}")
        };
        Failure::new(
            FailureCode::UnsupportedFormat,
            format!("files ending in {shown:?} are not supported; upload a .csv, .txt, .xlsx, .xls or .ods file"),
        )
    })
}
