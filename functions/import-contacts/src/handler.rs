//! The handler, generic over the ports so it is testable without AWS.

use aws_lambda_events::s3::{S3Event, S3EventRecord};
use contacts::config::Config;
use contacts::import::{ImportError, ImportResult, Importer, Upload};
use contacts::ports::{ContactStore, JobStore, ObjectStore, SettingsStore};
use contacts::report::Summary;
use contacts::upload::decode_event_key;
use serde::Serialize;

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
    /// `completed`, `completed_with_errors`, `failed` or `skipped`.
    pub status: String,
    /// The import id, when imported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub import_id: Option<String>,
    /// Why it was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
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

impl From<HandlerError> for lambda_runtime::Diagnostic {
    fn from(e: HandlerError) -> Self {
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        lambda_runtime::Diagnostic {
            error_type: "ImportInterrupted".into(),
            error_message: message,
        }
    }
}

/// The upload a record names: key decoded, and the event's sequencer (AWS) or event
/// time (emulators) to tell re-uploads of identical bytes apart.
pub fn upload_of(record: &S3EventRecord) -> Upload {
    let key = record
        .s3
        .object
        .key
        .as_deref()
        .map(decode_event_key)
        .unwrap_or_default();
    Upload {
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

/// The invocation's deadline (milliseconds since the epoch) as an `Instant`. `None`
/// when it is already (nearly) past at the start: `cargo lambda watch` sends such
/// deadlines, and no real invocation starts with less than a second left.
pub fn deadline_instant(deadline_ms: u64) -> Option<std::time::Instant> {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_millis() as u64;
    let remaining = deadline_ms.checked_sub(now_ms).filter(|ms| *ms >= 1_000)?;
    Some(std::time::Instant::now() + std::time::Duration::from_millis(remaining))
}

/// Imports every record of the event, in order.
pub async fn handle<O, D>(
    objects: &O,
    table: &D,
    config: &Config,
    event: S3Event,
    deadline: Option<std::time::Instant>,
) -> Result<Response, HandlerError>
where
    O: ObjectStore,
    D: ContactStore + JobStore + SettingsStore,
{
    let importer = Importer {
        objects,
        table,
        config,
        deadline,
    };
    let mut imports = Vec::new();
    for record in &event.records {
        if record
            .event_name
            .as_deref()
            .is_some_and(|n| !n.starts_with("ObjectCreated"))
        {
            tracing::info!(event = ?record.event_name, "not an upload event; ignored");
            continue;
        }
        let upload = upload_of(record);
        let result = importer
            .run(&upload)
            .await
            .map_err(|source| HandlerError::Interrupted {
                key: upload.key.clone(),
                source,
            })?;
        imports.push(match result {
            ImportResult::Finished(summary) => {
                emit_metrics(&summary);
                RecordResult {
                    key: upload.key,
                    status: summary.status.as_str().into(),
                    import_id: Some(summary.import_id.clone()),
                    reason: None,
                }
            }
            ImportResult::Skipped(reason) => RecordResult {
                key: upload.key,
                status: "skipped".into(),
                import_id: None,
                reason: Some(reason),
            },
        });
    }
    Ok(Response { imports })
}

/// One CloudWatch Embedded Metric Format line per import.
fn emit_metrics(summary: &Summary) {
    let metrics = [
        "RowsTotal",
        "RowsCreated",
        "RowsUpdated",
        "RowsUnchanged",
        "RowsRejected",
        "DurationMs",
    ];
    let units = ["Count", "Count", "Count", "Count", "Count", "Milliseconds"];
    let line = serde_json::json!({
        "_aws": {
            "Timestamp": chrono_now_ms(),
            "CloudWatchMetrics": [{
                "Namespace": "ContactBook",
                "Dimensions": [["Function", "Status"]],
                "Metrics": metrics.iter().zip(units).map(|(m, u)| serde_json::json!({"Name": m, "Unit": u})).collect::<Vec<_>>(),
            }],
        },
        "Function": "import-contacts",
        "Status": summary.status.as_str(),
        "import_id": summary.import_id,
        "account_id": summary.account_id,
        "RowsTotal": summary.rows.total,
        "RowsCreated": summary.rows.created,
        "RowsUpdated": summary.rows.updated,
        "RowsUnchanged": summary.rows.unchanged,
        "RowsRejected": summary.rows.rejected,
        "DurationMs": summary.duration_ms,
    });
    println!("{line}");
}

fn chrono_now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}
