//! import-contacts' front door: an S3 event in, one [`Importer`] run per record, the
//! function's [`Response`] out; an import that runs short of time hands the records
//! still to do to a new invocation ([`Continuation`]). Generic over the ports, so it is
//! tested without AWS.

use aws_lambda_events::s3::{S3Event, S3EventRecord};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::report::Summary;
use super::{ImportError, ImportResult, Importer, UploadedFile};
use crate::domain::outcome::ImportStatus;
use crate::domain::upload::decode_event_key;
use crate::ports::{
    CapacityMeter, ContactStore, Continuation, ImportEvents, JobStore, ObjectStore, SettingsStore,
    Suppressions,
};

/// The function's answer: one entry per record.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Response {
    /// What happened to each record.
    pub imports: Vec<RecordResult>,
}

/// One record's result.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct RecordResult {
    /// Decoded key.
    pub key: String,
    /// What became of it.
    pub status: RecordStatus,
    /// The import id, when imported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub import_id: Option<String>,
    /// Why it was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What became of one record.
#[derive(Copy, Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RecordStatus {
    /// Imported; no row rejected.
    Completed,
    /// Imported; some rows rejected.
    CompletedWithErrors,
    /// The file as a whole failed (see its summary).
    Failed,
    /// Not imported: not an upload key, or a duplicate event.
    Skipped,
    /// Ran short of time; a new invocation resumes it and the records after it.
    Continuing,
}

/// A failure the runtime reports with its type, so a retry can resume the import.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// A store failed mid-import: retryable.
    #[error("import of {key} interrupted: {source}")]
    Interrupted {
        /// The upload.
        key: String,
        /// Why.
        #[source]
        source: ImportError,
    },
}

/// The upload a record names: key decoded, and the event's sequencer (AWS) or event
/// time (emulators) to tell re-uploads of identical bytes apart.
pub fn upload_of(record: &S3EventRecord) -> UploadedFile {
    let key = record
        .s3
        .object
        .key
        .as_deref()
        .map(decode_event_key)
        .unwrap_or_default();
    UploadedFile {
        bucket: record.s3.bucket.name.clone().unwrap_or_default(),
        key,
        size: record.s3.object.size.and_then(|s| u64::try_from(s).ok()),
        etag: record
            .s3
            .object
            .e_tag
            .clone()
            .map(|e| e.trim_matches('"').to_string()),
        version_id: record
            .s3
            .object
            .version_id
            .clone()
            .filter(|v| !v.is_empty() && v != "null"),
        sequencer: record
            .s3
            .object
            .sequencer
            .clone()
            .filter(|s| !s.is_empty())
            .or_else(|| Some(record.event_time.to_rfc3339())),
    }
}

/// When this invocation must stop importing: the earlier of Lambda's deadline
/// (milliseconds since the epoch) and the configured time limit from now.
pub fn deadline(lambda_deadline_ms: u64, time_limit: Option<Duration>) -> Option<Instant> {
    let deadline = earliest(
        deadline_instant(lambda_deadline_ms),
        time_limit.map(|limit| Instant::now() + limit),
    );
    tracing::info!(remaining_ms = ?deadline.map(|d| d.saturating_duration_since(Instant::now()).as_millis()), "invocation deadline");
    deadline
}

/// The invocation's deadline (milliseconds since the epoch) as an `Instant`. `None`
/// when it is already (nearly) past at the start: `cargo lambda watch` sends such
/// deadlines, and no real invocation starts with less than a second left.
fn deadline_instant(deadline_ms: u64) -> Option<Instant> {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_millis() as u64;
    let remaining = deadline_ms.checked_sub(now_ms).filter(|ms| *ms >= 1_000)?;
    Some(Instant::now() + Duration::from_millis(remaining))
}

/// The earlier of two optional deadlines.
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Imports every record of the event, in order. An import that runs short of time
/// saves its progress and continues in a new invocation (with the records still to do);
/// if that cannot be submitted, the error makes Lambda's retry resume it instead.
pub async fn handle<O, C, J, S, E, K>(
    importer: &Importer<'_, O, C, J, S, E>,
    continuation: &K,
    event: S3Event,
) -> Result<Response, HandlerError>
where
    O: ObjectStore,
    C: ContactStore + Suppressions + CapacityMeter,
    J: JobStore,
    S: SettingsStore,
    E: ImportEvents,
    K: Continuation,
{
    let mut imports = Vec::new();
    for (index, record) in event.records.iter().enumerate() {
        if record
            .event_name
            .as_deref()
            .is_some_and(|n| !n.starts_with("ObjectCreated"))
        {
            tracing::info!(event = ?record.event_name, "not an upload event; ignored");
            continue;
        }
        let upload = upload_of(record);
        match importer.run(&upload).await {
            Ok(result) => imports.push(record_result(upload.key, result)),
            Err(ImportError::OutOfTime { last_row }) => {
                hand_over(continuation, &event, index, &upload.key, last_row).await?;
                imports.push(RecordResult {
                    key: upload.key,
                    status: RecordStatus::Continuing,
                    import_id: None,
                    reason: Some(format!(
                        "ran short of time after line {last_row}; continuing in a new invocation"
                    )),
                });
                return Ok(Response { imports });
            }
            Err(source) => {
                return Err(HandlerError::Interrupted {
                    key: upload.key,
                    source,
                })
            }
        }
    }
    Ok(Response { imports })
}

/// Submits the records from `index` on to a new invocation; when that fails, the
/// error makes Lambda's retry resume the import instead.
async fn hand_over<K: Continuation>(
    continuation: &K,
    event: &S3Event,
    index: usize,
    key: &str,
    last_row: u64,
) -> Result<(), HandlerError> {
    let mut rest = event.clone();
    rest.records.drain(..index);
    match continuation.continue_with(&rest).await {
        Ok(()) => {
            tracing::info!(
                key,
                last_row,
                "out of time; the import continues in a new invocation"
            );
            Ok(())
        }
        Err(why) => {
            tracing::warn!(key, error = %why, "could not submit the continuation; failing so that Lambda's retry resumes the import");
            Err(HandlerError::Interrupted {
                key: key.to_string(),
                source: ImportError::OutOfTime { last_row },
            })
        }
    }
}

fn record_result(key: String, result: ImportResult) -> RecordResult {
    match result {
        ImportResult::Finished(summary) => {
            emit_metrics(&summary);
            RecordResult {
                key,
                status: match summary.status {
                    ImportStatus::Completed | ImportStatus::Running => RecordStatus::Completed,
                    ImportStatus::CompletedWithErrors => RecordStatus::CompletedWithErrors,
                    ImportStatus::Failed => RecordStatus::Failed,
                },
                import_id: Some(summary.import_id.clone()),
                reason: None,
            }
        }
        ImportResult::Skipped(reason) => RecordResult {
            key,
            status: RecordStatus::Skipped,
            import_id: None,
            reason: Some(reason),
        },
    }
}

/// One CloudWatch Embedded Metric Format line per import: its rows by outcome, its
/// duration, and the DynamoDB capacity it consumed.
fn emit_metrics(summary: &Summary) {
    let rows = &summary.rows;
    let consumed = &summary.consumed;
    let count = |name, value: u64| (name, value as f64, "Count");
    crate::metrics::emit(&crate::metrics::emf_line(
        &[
            ("Function", "import-contacts"),
            ("Status", summary.status.as_str()),
        ],
        &[
            count("RowsTotal", rows.total),
            count("RowsCreated", rows.created),
            count("RowsUpdated", rows.updated),
            count("RowsUnchanged", rows.unchanged),
            count("RowsRejected", rows.rejected),
            ("DurationMs", summary.duration_ms as f64, "Milliseconds"),
            ("WriteUnits", consumed.write_units, "Count"),
            ("ReadUnits", consumed.read_units, "Count"),
            count("Requests", consumed.requests),
        ],
        &[
            ("import_id", &summary.import_id),
            ("account_id", &summary.account_id),
        ],
        crate::metrics::now_ms(),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::ports::memory::{
        MemoryContacts, MemoryImportEvents, MemoryJobs, MemoryObjects, MemoryPorts, MemorySettings,
    };
    use crate::ports::StoreError;

    const BUCKET: &str = "contact-uploads";

    type MemoryImporter<'a> =
        Importer<'a, MemoryObjects, MemoryContacts, MemoryJobs, MemorySettings, MemoryImportEvents>;

    fn importer<'a>(
        store: &'a MemoryPorts,
        config: &'a Config,
        deadline: Option<Instant>,
    ) -> MemoryImporter<'a> {
        Importer {
            objects: &store.objects,
            contacts: &store.contacts,
            jobs: &store.jobs,
            settings: &store.settings,
            events: &store.events,
            config,
            deadline,
        }
    }

    fn s3_event(key: &str) -> S3Event {
        serde_json::from_value(serde_json::json!({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
            "eventTime": "2026-11-22T10:00:00.000Z", "eventName": "ObjectCreated:Put",
            "userIdentity": {"principalId": "AWS:TEST"},
            "requestParameters": {"sourceIPAddress": "127.0.0.1"},
            "responseElements": {"x-amz-request-id": "1", "x-amz-id-2": "2"},
            "s3": {"s3SchemaVersion": "1.0", "configurationId": "imports",
                   "bucket": {"name": BUCKET, "arn": "arn:aws:s3:::contact-uploads"},
                   "object": {"key": key, "size": 1, "eTag": "abc", "sequencer": "0A1"}}
        }]}))
        .expect("S3 event")
    }

    fn file(rows: usize) -> Vec<u8> {
        let mut body = String::from("Name,Phone\n");
        for i in 0..rows {
            body.push_str(&format!("Person {i},+4474{i:08}\n"));
        }
        body.into_bytes()
    }

    struct Unreachable;

    impl Continuation for Unreachable {
        async fn continue_with(&self, _: &S3Event) -> Result<(), StoreError> {
            Err(StoreError::Service {
                operation: "lambda:Invoke",
                source: "connection refused".into(),
            })
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_import_out_of_time_continues_in_a_new_invocation_and_counts_once() {
        let store = MemoryPorts::default();
        let key = "imports/acme/whatsapp/big.csv";
        let rows = 10_000;
        store.objects.insert(BUCKET, key, &file(rows), &[]);
        let config = Config::default();
        // Far too little time for 10,000 rows: the import hands over after some.
        let deadline = Some(Instant::now() + Duration::from_millis(40));
        let first = handle(
            &importer(&store, &config, deadline),
            &store.continuation,
            s3_event(key),
        )
        .await
        .expect("handed over");
        assert_eq!(
            first.imports[0].status,
            RecordStatus::Continuing,
            "{first:?}"
        );
        let written = store.contacts.count();
        assert!(
            0 < written && written < rows,
            "{written} rows before the hand-over"
        );

        let continued = store
            .continuation
            .submitted()
            .pop()
            .expect("one continuation");
        let event: S3Event = continued;
        assert_eq!(event.records.len(), 1);
        let second = handle(&importer(&store, &config, None), &store.continuation, event)
            .await
            .expect("finished");
        assert_eq!(
            second.imports[0].status,
            RecordStatus::Completed,
            "{second:?}"
        );
        let summary: serde_json::Value = serde_json::from_str(
            &store
                .objects
                .text(
                    BUCKET,
                    &format!(
                        "reports/acme/{}/summary.json",
                        second.imports[0].import_id.as_deref().expect("id")
                    ),
                )
                .expect("summary"),
        )
        .expect("json");
        assert_eq!(summary["rows"]["total"], rows);
        assert_eq!(
            summary["rows"]["created"], rows,
            "no row counted twice or lost"
        );
        assert_eq!(store.contacts.count(), rows);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn without_a_continuation_the_error_lets_lambda_retry_resume() {
        let store = MemoryPorts::default();
        let key = "imports/acme/whatsapp/big.csv";
        store.objects.insert(BUCKET, key, &file(10_000), &[]);
        let config = Config::default();
        let (store, config) = (&store, &config);
        let run = |deadline| async move {
            handle(
                &importer(store, config, deadline),
                &Unreachable,
                s3_event(key),
            )
            .await
        };
        let err = run(Some(Instant::now() + Duration::from_millis(40)))
            .await
            .expect_err("interrupted");
        assert!(err.to_string().contains("ran out of time"), "{err}");
        let resumed = run(None).await.expect("resumed");
        assert_eq!(resumed.imports[0].status, RecordStatus::Completed);
        assert_eq!(store.contacts.count(), 10_000);
    }

    /// A writer the JSON log lines go to.
    #[derive(Clone, Default)]
    struct Lines(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_log_line_of_an_import_names_the_import_and_the_account() {
        let lines = Lines::default();
        let writer = lines.clone();
        // What lambda_runtime's default subscriber builds with AWS_LAMBDA_LOG_FORMAT=JSON.
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_target(false)
            .without_time()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || writer.clone())
            .finish();
        let store = MemoryPorts::default();
        let key = "imports/acme/whatsapp/mixed.csv";
        store
            .objects
            .insert(BUCKET, key, b"Name,Phone\nEva,+447911123456\nBad,12\n", &[]);
        store.objects.insert(
            BUCKET,
            "imports/acme/whatsapp/none.csv",
            b"Name\nEva\n",
            &[],
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        tracing::subscriber::with_default(subscriber, || {
            runtime.block_on(async {
                // The last is a duplicate event: it is logged too.
                for key in [key, "imports/acme/whatsapp/none.csv", key] {
                    handle(
                        &importer(&store, &Config::default(), None),
                        &store.continuation,
                        s3_event(key),
                    )
                    .await
                    .expect("imported or skipped");
                }
            })
        });
        let text = String::from_utf8(lines.0.lock().expect("lock").clone()).expect("utf-8");
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("every line is JSON"))
            .collect();
        assert!(lines.len() >= 3, "{text}");
        for line in &lines {
            let span = &line["span"];
            assert!(
                span["import_id"]
                    .as_str()
                    .is_some_and(|id| id.starts_with("imp_"))
                    && span["account_id"] == "acme",
                "a line without import_id and account_id: {line}"
            );
        }
    }
}
