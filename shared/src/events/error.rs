//! Why an event was not processed. Every variant keeps what caused it: a field's dotted
//! path and what is wrong with it, or the typed error underneath (a store's, a save's,
//! the recipients file's).

use crate::book::SaveError;
use crate::domain::mapping::MappingError;
use crate::export::ExportError;
use crate::parse::SourceError;
use crate::ports::StoreError;

/// Why an event was not processed.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// A field is missing or malformed; nothing was written.
    #[error("invalid event: field `{field}` {problem}")]
    InvalidField {
        /// The field's dotted path, such as `recipients[2].phone`; `(event)` for the
        /// event as a whole.
        field: String,
        /// What is wrong, as a phrase that follows the field's name.
        problem: String,
    },
    /// The recipients file lacks the name or phone column.
    #[error("missing_required_headers: the recipients file must have a Name column and a Phone column; {0}")]
    MissingRequiredHeaders(#[source] HeaderProblem),
    /// The recipients file cannot be read.
    #[error("the recipients file s3://{bucket}/{key} cannot be read: {problem}")]
    RecipientsFile {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
        /// Why.
        #[source]
        problem: FileProblem,
    },
    /// A store failed: retryable.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A contact kept changing under us: retryable.
    #[error(transparent)]
    Save(#[from] SaveError),
    /// The deployment lacks a setting this event needs.
    #[error("{what} is not available: the function has no {variable} (see the README's deployment section)")]
    NotConfigured {
        /// The event type.
        what: &'static str,
        /// The environment variable to set.
        variable: &'static str,
    },
    /// An export could not be read or written: retryable.
    #[error("the export failed: {0}")]
    Export(#[from] ExportError),
}

impl EventError {
    /// A short type for the runtime's error report.
    pub fn error_type(&self) -> &'static str {
        match self {
            EventError::InvalidField { .. } => "InvalidEvent",
            EventError::MissingRequiredHeaders(_) => "MissingRequiredHeaders",
            EventError::RecipientsFile { .. } => "RecipientsFileUnreadable",
            EventError::Store(_) | EventError::Save(_) | EventError::Export(_) => "Retryable",
            EventError::NotConfigured { .. } => "NotConfigured",
        }
    }

    /// Why, in words fit for a queue or a log line: the error type, and what failed
    /// without the data it failed on. A store's own message can name an item by its key,
    /// and a contact's key holds its number.
    pub fn reason(&self) -> String {
        let what = match self {
            EventError::Store(StoreError::Service { operation, .. }) => {
                format!("{operation} failed")
            }
            EventError::Store(StoreError::Malformed { .. }) => {
                "a stored item does not have the shape written".to_string()
            }
            EventError::Store(_) => "a store failed".to_string(),
            EventError::Save(_) => "a contact kept changing under concurrent writes".to_string(),
            EventError::Export(_) => "the export failed".to_string(),
            other => other.to_string(),
        };
        format!("{}: {what}", self.error_type())
    }

    /// Whether the same event may succeed later: a store or the deployment failed, not
    /// the event itself.
    pub fn is_retryable(&self) -> bool {
        match self {
            EventError::InvalidField { .. }
            | EventError::MissingRequiredHeaders(_)
            | EventError::RecipientsFile { .. } => false,
            EventError::Store(_)
            | EventError::Save(_)
            | EventError::Export(_)
            | EventError::NotConfigured { .. } => true,
        }
    }
}

/// Why the recipients file's header is not enough.
#[derive(Debug, thiserror::Error)]
pub enum HeaderProblem {
    /// The header does not map (no phone column, among others).
    #[error(transparent)]
    Mapping(#[from] MappingError),
    /// No column maps to the name or the first name.
    #[error("no name column among {0:?}")]
    NoNameColumn(Vec<String>),
}

/// Why the recipients file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum FileProblem {
    /// The extension is not one we read (lower case, without the dot).
    #[error("files ending in .{0} are not supported; use CSV or XLSX")]
    UnsupportedFormat(String),
    /// No such object.
    #[error("it does not exist")]
    NotFound,
    /// Larger than `MAX_UPLOAD_BYTES`.
    #[error("it is larger than {0} bytes")]
    TooLarge(u64),
    /// The object's stream broke off.
    #[error(transparent)]
    Download(std::io::Error),
    /// Not readable as its format.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The blocking reader did not finish (it panicked or was cancelled).
    #[error(transparent)]
    Reader(#[from] tokio::task::JoinError),
}

/// An [`EventError::InvalidField`].
pub(super) fn invalid(field: &str, problem: impl Into<String>) -> EventError {
    EventError::InvalidField {
        field: field.to_string(),
        problem: problem.into(),
    }
}

/// A payload that does not decode, named by the path serde was at: `recipients[2].phone`,
/// or `(event)` when the event itself is not an object.
pub(super) fn undecodable(error: serde_path_to_error::Error<serde_json::Error>) -> EventError {
    let path = error.path().to_string();
    let field = if path == "." { "(event)".into() } else { path };
    EventError::InvalidField {
        field,
        problem: without_values(&without_position(&error.into_inner())),
    }
}

/// A decoding error's message without where in the text it is (`at line 1 column
/// 126`): the field's path says where, and a value read from text or from a parsed
/// value gives the same message.
fn without_position(error: &serde_json::Error) -> String {
    let message = error.to_string();
    let position = format!(" at line {} column {}", error.line(), error.column());
    match message.strip_suffix(&position) {
        Some(message) if error.line() != 0 => message.to_string(),
        _ => message,
    }
}

/// A decoding error's message without the value it quotes: serde says `invalid type:
/// string "…", expected …`, and an error travels into logs and queues (DESIGN 12).
fn without_values(message: &str) -> String {
    let quoted = [
        "invalid type: ",
        "invalid value: ",
        "unknown variant ",
        "unknown field ",
    ]
    .iter()
    .any(|prefix| message.starts_with(prefix));
    if !quoted {
        return message.to_string();
    }
    // The expected part is serde's words and ours; the value may hold anything.
    let Some((what, expected)) = message.rsplit_once(", expected ") else {
        return message.to_string();
    };
    let kind = what.split(['`', '"']).next().unwrap_or(what).trim_end();
    format!("{kind}, expected {expected}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_errors_name_the_kind_of_value_never_the_value() {
        let cases = [
            (
                "invalid type: string \"eva@example.com\", expected a boolean at line 1 column 9",
                "invalid type: string, expected a boolean at line 1 column 9",
            ),
            (
                "invalid type: integer `447911123456`, expected a string",
                "invalid type: integer, expected a string",
            ),
            (
                "invalid value: string \"Eva\", expected one of a, b",
                "invalid value: string, expected one of a, b",
            ),
            (
                "unknown variant `Eva Smith`, expected `delivered` or `failed`",
                "unknown variant, expected `delivered` or `failed`",
            ),
            ("missing field `type`", "missing field `type`"),
            (
                "invalid type: string \"a, expected b\", expected a boolean",
                "invalid type: string, expected a boolean",
            ),
        ];
        for (message, cleaned) in cases {
            assert_eq!(without_values(message), cleaned);
        }
    }

    #[test]
    fn messages_name_the_field_and_keep_the_cause() {
        let e = invalid("recipients[2].phone", "must be a string, not a number");
        assert_eq!(
            e.to_string(),
            "invalid event: field `recipients[2].phone` must be a string, not a number"
        );
        assert_eq!(e.error_type(), "InvalidEvent");

        let e = EventError::RecipientsFile {
            bucket: "b".into(),
            key: "k.csv".into(),
            problem: FileProblem::Source(SourceError::Unreadable("binary garbage".into())),
        };
        assert_eq!(
            e.to_string(),
            "the recipients file s3://b/k.csv cannot be read: binary garbage"
        );
        assert_eq!(e.error_type(), "RecipientsFileUnreadable");
        let cause = std::error::Error::source(&e).expect("a cause");
        assert!(matches!(
            cause.downcast_ref::<FileProblem>(),
            Some(FileProblem::Source(SourceError::Unreadable(_)))
        ));

        let e =
            EventError::MissingRequiredHeaders(HeaderProblem::NoNameColumn(vec!["Phone".into()]));
        assert_eq!(e.to_string(), "missing_required_headers: the recipients file must have a Name column and a Phone column; no name column among [\"Phone\"]");
        assert_eq!(e.error_type(), "MissingRequiredHeaders");
    }
}
