//! The parsing half, on a blocking thread: maps the header, validates each row, finds
//! numbers repeated in the file, and sends every row to the writer in file order.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::run::Failure;
use crate::domain::channel::Channel;
use crate::domain::cleaning::mask_phone;
use crate::domain::contact::ContactDraft;
use crate::domain::field::Field;
use crate::domain::mapping::{header_signature, ColumnMap, MappingError, MappingSource, Target};
use crate::domain::options::{parse_mapping, UploadOptions};
use crate::domain::outcome::FailureCode;
use crate::domain::phone::{PhoneRejection, Region};
use crate::domain::validate::{
    consent_kept_opted_out, skipped_new, validate_row, Problem, ProblemCode, RowRules, Verdict,
};
use crate::domain::whatsapp::BSUID_KEY_PREFIX;
use crate::parse::{RawRow, RowKind, SourceError, SourceInfo};

/// Messages from the parsing thread to the writer.
// Nearly every step is a row: boxing rows to shrink the one header would cost an
// allocation per row.
#[allow(clippy::large_enum_variant)]
pub(super) enum Step {
    Header(ColumnMap, MappingSource),
    Row(ParsedRow),
}

pub(super) struct ParsedRow {
    pub(super) line: u64,
    pub(super) cells: Vec<String>,
    pub(super) verdict: RowVerdict,
    /// Before the resume point: already counted and written by an earlier invocation.
    pub(super) replayed: bool,
    /// Title of the file's phone column, for problems found when the row is written.
    pub(super) phone_column: Arc<str>,
    /// Title of the file's WhatsApp-opted column, when it has one: the column of a
    /// refused opt-in.
    pub(super) opted_column: Option<Arc<str>>,
}

impl ParsedRow {
    /// Rejects an accepted row for `reason`, found when it was about to be written.
    pub(super) fn reject(&mut self, reason: PhoneRejection) {
        self.verdict = RowVerdict::Rejected {
            problem: Problem {
                code: ProblemCode::Rejected(reason),
                column: self.phone_column.to_string(),
                message: reason.to_string(),
            },
        };
    }

    /// Says in rows.csv why the row created nobody (`on-new=skip`).
    pub(super) fn skip_new(&mut self) {
        if let RowVerdict::Accepted { warnings, .. } = &mut self.verdict {
            warnings.push(skipped_new(&self.phone_column));
        }
    }

    /// Warns that the row's opt-in was refused when it was written: the person's own
    /// opt-out stands (`consent_kept_opted_out`).
    pub(super) fn keep_opted_out(&mut self) {
        if let RowVerdict::Accepted { warnings, .. } = &mut self.verdict {
            let column = self.opted_column.as_deref().unwrap_or("whatsapp_opted");
            warnings.push(consent_kept_opted_out(column));
        }
    }
}

pub(super) enum RowVerdict {
    Accepted {
        draft: ContactDraft,
        warnings: Vec<Problem>,
    },
    Rejected {
        problem: Problem,
    },
    Duplicate {
        problem: Problem,
    },
}

/// What the parser saw of the file as a whole.
pub(super) struct Parsed {
    pub(super) info: SourceInfo,
    pub(super) saw_header: bool,
    pub(super) row_limit_hit_at: Option<u64>,
}

/// The blocking half of an import.
pub(super) struct RowParser {
    pub(super) channel: Channel,
    pub(super) default_region: Option<Region>,
    pub(super) options: UploadOptions,
    pub(super) max_rows: u64,
    /// Rows up to this line were committed by an earlier invocation.
    pub(super) resume_after: u64,
    pub(super) tx: mpsc::Sender<Step>,
    /// Where the mapping the account saved for a header is asked for (uploads without
    /// a `mapping` option).
    pub(super) saved_mappings: Option<mpsc::Sender<MappingAsk>>,
}

/// The parser's question to the async side: the mapping saved for this header
/// signature, if any. The answer is `None` when there is none; the question is dropped
/// unanswered when the store failed (the import then fails, and is retried).
pub(super) struct MappingAsk {
    pub(super) signature: String,
    pub(super) reply: tokio::sync::oneshot::Sender<Option<String>>,
}

/// The parser's state while rows go by.
struct Visit<'p> {
    parser: &'p RowParser,
    columns: Option<ColumnMap>,
    phone_column: Arc<str>,
    opted_column: Option<Arc<str>>,
    failure: Option<Failure>,
    /// First line of each key seen in the file.
    seen: Seen,
    data_rows: u64,
    saw_header: bool,
    row_limit_hit_at: Option<u64>,
}

impl RowParser {
    /// Runs `read` (the file's reader) and handles each row it yields.
    pub(super) fn parse(
        self,
        read: impl FnOnce(&mut dyn FnMut(RawRow) -> ControlFlow<()>) -> Result<SourceInfo, SourceError>,
    ) -> Result<Parsed, Failure> {
        let mut visit = Visit {
            parser: &self,
            columns: None,
            phone_column: Arc::from(""),
            opted_column: None,
            failure: None,
            seen: Seen::default(),
            data_rows: 0,
            saw_header: false,
            row_limit_hit_at: None,
        };
        let info = read(&mut |row| visit.row(row)).map_err(source_failure)?;
        if let Some(failure) = visit.failure {
            return Err(failure);
        }
        Ok(Parsed {
            info,
            saw_header: visit.saw_header,
            row_limit_hit_at: visit.row_limit_hit_at,
        })
    }

    fn send(&self, step: Step) -> ControlFlow<()> {
        match self.tx.blocking_send(step) {
            Ok(()) => ControlFlow::Continue(()),
            // The writer stopped (an infrastructure error): stop reading.
            Err(_) => ControlFlow::Break(()),
        }
    }
}

fn source_failure(e: SourceError) -> Failure {
    match e {
        SourceError::TooLarge(m) => Failure::new(FailureCode::FileTooLarge, m),
        SourceError::NoSuchSheet { .. } => Failure::new(
            FailureCode::BadOption,
            format!("upload option x-amz-meta-sheet: {e}"),
        ),
        SourceError::Unreadable(m) => Failure::new(FailureCode::UnreadableFile, m),
    }
}

impl Visit<'_> {
    fn row(&mut self, row: RawRow) -> ControlFlow<()> {
        if row.kind == RowKind::Header {
            return self.header(&row.cells);
        }
        if self.columns.is_none() {
            // A pasted list: no header, every line a number.
            let map = ColumnMap::phone_only();
            self.phone_column = Arc::from(map.title_of(Field::Phone));
            self.columns = Some(map.clone());
            self.parser
                .send(Step::Header(map, MappingSource::Automatic))?;
        }
        self.data_rows += 1;
        if self.data_rows > self.parser.max_rows {
            self.row_limit_hit_at = Some(row.line);
            return ControlFlow::Break(());
        }
        let Some(columns) = self.columns.as_ref() else {
            return ControlFlow::Break(());
        };
        let verdict = verdict(self.parser, columns, &mut self.seen, &row);
        self.parser.send(Step::Row(ParsedRow {
            replayed: row.line <= self.parser.resume_after,
            line: row.line,
            cells: row.cells,
            verdict,
            phone_column: self.phone_column.clone(),
            opted_column: self.opted_column.clone(),
        }))
    }

    fn header(&mut self, cells: &[String]) -> ControlFlow<()> {
        self.saw_header = true;
        let (explicit, source) = self.explicit_mapping(cells)?;
        match ColumnMap::from_header(cells, &explicit) {
            Ok(map) => {
                let map = map.for_channel(self.parser.channel);
                self.phone_column = Arc::from(map.title_of(Field::Phone));
                self.opted_column = map
                    .index_of(Field::WhatsappOpted)
                    .map(|_| Arc::from(map.title_of(Field::WhatsappOpted)));
                self.columns = Some(map.clone());
                self.parser.send(Step::Header(map, source))
            }
            Err(e) => {
                let code = match e {
                    MappingError::MissingPhoneColumn { .. } => FailureCode::MissingPhoneColumn,
                    _ => FailureCode::BadOption,
                };
                self.failure = Some(Failure::new(code, e.to_string()));
                ControlFlow::Break(())
            }
        }
    }
}

impl Visit<'_> {
    /// The mapping the header is read with: the upload's option, else the one the
    /// account saved for these titles, else none (automatic). Breaks when the saved
    /// mapping could not be read: the import fails and is retried.
    fn explicit_mapping(
        &self,
        header: &[String],
    ) -> ControlFlow<(), (Vec<(String, Target)>, MappingSource)> {
        let options = &self.parser.options;
        if !options.mapping.is_empty() {
            return ControlFlow::Continue((options.mapping.clone(), MappingSource::Option));
        }
        let automatic = ControlFlow::Continue((Vec::new(), MappingSource::Automatic));
        let Some(ask) = &self.parser.saved_mappings else {
            return automatic;
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        let signature = header_signature(header);
        if ask.blocking_send(MappingAsk { signature, reply }).is_err() {
            return ControlFlow::Break(());
        }
        let Ok(saved) = answer.blocking_recv() else {
            return ControlFlow::Break(());
        };
        match saved.as_deref().map(parse_mapping) {
            Some(Ok(mapping)) if ColumnMap::from_header(header, &mapping).is_ok() => {
                ControlFlow::Continue((mapping, MappingSource::Saved))
            }
            Some(_) => {
                tracing::warn!("the mapping saved for this header no longer applies; columns are matched by title");
                automatic
            }
            None => automatic,
        }
    }
}

/// The first line of each contact key in the file: numbers by their digits (a cheap
/// key: E.164 has at most 15), and the keys of rows known only by a WhatsApp user id
/// (`bsuid:…`) apart, so that rows with a number pay nothing for them.
#[derive(Default)]
struct Seen {
    numbers: HashMap<u64, u64>,
    users: HashMap<String, u64>,
}

impl Seen {
    /// The line `key` was first seen on, or `None` after recording `line` as its first.
    fn first(&mut self, key: &str, line: u64) -> Option<u64> {
        if key.starts_with(BSUID_KEY_PREFIX) {
            if let Some(first) = self.users.get(key) {
                return Some(*first);
            }
            self.users.insert(key.to_string(), line);
            return None;
        }
        let number: u64 = key.trim_start_matches('+').parse().unwrap_or(u64::MAX);
        match self.numbers.get(&number) {
            Some(first) => Some(*first),
            None => {
                self.numbers.insert(number, line);
                None
            }
        }
    }
}

/// Validates a row, then tells a contact repeated in the file from its first row.
fn verdict(parser: &RowParser, columns: &ColumnMap, seen: &mut Seen, row: &RawRow) -> RowVerdict {
    let options = &parser.options;
    let rules = RowRules {
        columns,
        channel: parser.channel,
        default_region: parser.default_region,
        lists: &options.lists,
        tags: &options.tags,
        blanks: options.blanks,
    };
    let (mut draft, warnings) = match validate_row(&row.cells, &rules) {
        Verdict::Rejected { problem, .. } => return RowVerdict::Rejected { problem },
        Verdict::Accepted { draft, warnings } => (draft, warnings),
    };
    // The line names the row in the consent evidence (`imp_…#row 12`).
    draft.row = Some(row.line);
    match seen.first(&draft.phone, row.line) {
        Some(first) => {
            let (column, key) = match draft.phone.strip_prefix(BSUID_KEY_PREFIX) {
                Some(user_id) => (columns.title_of(Field::WhatsappUserId), user_id),
                None => (columns.title_of(Field::Phone), draft.phone.as_str()),
            };
            RowVerdict::Duplicate {
                problem: Problem {
                    code: ProblemCode::DuplicateInFile,
                    column: column.to_string(),
                    message: format!(
                        "{} is also on row {first}; the first row was used",
                        mask_phone(key)
                    ),
                },
            }
        }
        None => RowVerdict::Accepted { draft, warnings },
    }
}
