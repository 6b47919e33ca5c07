//! The two report files of an import: `summary.json` and `rows.csv` (DESIGN section 8).

use std::collections::BTreeMap;
use std::io::Write;

use serde::{Deserialize, Serialize};

/// What became of one data row.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// A new contact.
    Created,
    /// An existing contact with a value that differed.
    Updated,
    /// An existing contact, nothing differed: no write.
    Unchanged,
    /// An existing contact left alone (option `ignore`).
    SkippedExisting,
    /// The same number earlier in the file.
    DuplicateInFile,
    /// The key field is unusable.
    Rejected,
}

impl Outcome {
    /// The documented name.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Updated => "updated",
            Outcome::Unchanged => "unchanged",
            Outcome::SkippedExisting => "skipped_existing",
            Outcome::DuplicateInFile => "duplicate_in_file",
            Outcome::Rejected => "rejected",
        }
    }
}

/// Row counts by outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowCounts {
    /// Data rows (not the header, not blank lines).
    pub total: u64,
    /// New contacts.
    pub created: u64,
    /// Updated contacts.
    pub updated: u64,
    /// Existing contacts with nothing new.
    pub unchanged: u64,
    /// Existing contacts left alone.
    pub skipped_existing: u64,
    /// Repeats of an earlier number.
    pub duplicate_in_file: u64,
    /// Rows refused.
    pub rejected: u64,
}

impl RowCounts {
    /// Counts one outcome.
    pub fn add(&mut self, outcome: Outcome) {
        self.total += 1;
        *match outcome {
            Outcome::Created => &mut self.created,
            Outcome::Updated => &mut self.updated,
            Outcome::Unchanged => &mut self.unchanged,
            Outcome::SkippedExisting => &mut self.skipped_existing,
            Outcome::DuplicateInFile => &mut self.duplicate_in_file,
            Outcome::Rejected => &mut self.rejected,
        } += 1;
    }
}

/// `source` of summary.json.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceSummary {
    /// Bucket.
    pub bucket: String,
    /// Decoded key.
    pub key: String,
    /// eTag.
    pub etag: Option<String>,
    /// Version id.
    pub version_id: Option<String>,
    /// Object size.
    pub size_bytes: u64,
    /// `csv`, `txt`, `xlsx`, `xls`, `ods`, or null when unsupported.
    pub format: Option<String>,
    /// Text encoding used.
    pub encoding: Option<String>,
    /// Delimiter used.
    pub delimiter: Option<String>,
    /// Sheet read, for workbooks.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sheet: Option<String>,
}

/// `error` of summary.json when the whole file failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileError {
    /// `unsupported_format`, `empty_file`, `missing_phone_column`, `file_too_large`,
    /// `too_many_rows`, `unreadable_file`, `bad_option`.
    pub code: String,
    /// What happened and what to do, for a person.
    pub message: String,
}

/// The import's overall status.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportStatus {
    /// Still going (job item only).
    Running,
    /// Every row taken.
    Completed,
    /// At least one row rejected.
    CompletedWithErrors,
    /// The file as a whole failed.
    Failed,
}

impl ImportStatus {
    /// The documented value.
    pub fn as_str(self) -> &'static str {
        match self {
            ImportStatus::Running => "running",
            ImportStatus::Completed => "completed",
            ImportStatus::CompletedWithErrors => "completed_with_errors",
            ImportStatus::Failed => "failed",
        }
    }
}

/// summary.json.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Import id.
    pub import_id: String,
    /// Account from the key.
    pub account_id: String,
    /// Channel from the key.
    pub channel: String,
    /// The uploaded object.
    pub source: SourceSummary,
    /// Overall status.
    pub status: ImportStatus,
    /// Whether nothing was written on purpose.
    pub dry_run: bool,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339.
    pub finished_at: String,
    /// Wall time.
    pub duration_ms: u64,
    /// Counts by outcome.
    pub rows: RowCounts,
    /// Rejections by reason code.
    pub rejections_by_reason: BTreeMap<String, u64>,
    /// Warnings by code.
    pub warnings_by_code: BTreeMap<String, u64>,
    /// Column title -> field, `attr:Name` or `ignore`.
    pub column_mapping: BTreeMap<String, String>,
    /// One sentence for the user.
    pub message: String,
    /// Set when the file failed.
    pub error: Option<FileError>,
    /// Key of rows.csv.
    pub rows_report_key: Option<String>,
}

/// The user-facing sentence: "N new contacts saved to Contact Book."
pub fn saved_message(created: u64, dry_run: bool) -> String {
    let noun = if created == 1 { "contact" } else { "contacts" };
    if dry_run {
        format!(
            "Dry run: {created} new {noun} would be saved to Contact Book; nothing was written."
        )
    } else {
        format!("{created} new {noun} saved to Contact Book.")
    }
}

/// Makes a cell safe to open in a spreadsheet: a cell that starts with `= + - @`, tab
/// or CR gets a leading `'`, unless it is a plain number such as `+447911123456`.
pub fn spreadsheet_safe(cell: &str) -> std::borrow::Cow<'_, str> {
    let risky = cell.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if risky && !is_plain_number(cell) {
        std::borrow::Cow::Owned(format!("'{cell}"))
    } else {
        std::borrow::Cow::Borrowed(cell)
    }
}

fn is_plain_number(cell: &str) -> bool {
    let body = cell.strip_prefix(['+', '-']).unwrap_or(cell);
    !body.is_empty()
        && body.bytes().any(|b| b.is_ascii_digit())
        && body
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b' ' | b'(' | b')' | b'.' | b'/' | b'-'))
}

/// One line of rows.csv.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportLine {
    /// 1-based line in the file (header = 1).
    pub row: u64,
    /// Outcome name.
    pub outcome: Outcome,
    /// Codes, `;`-joined when a row has several problems.
    pub code: String,
    /// Columns, joined alike.
    pub column: String,
    /// Messages, joined alike.
    pub message: String,
}

/// Writes rows.csv to a temporary file as rows finish, so memory does not grow with
/// the number of problem rows.
pub struct RowsReport {
    writer: csv::Writer<std::io::BufWriter<tempfile::NamedTempFile>>,
    lines: u64,
}

impl RowsReport {
    /// Starts the report with its header: the five report columns, then the file's own
    /// header cells.
    pub fn create(original_header: &[String]) -> std::io::Result<RowsReport> {
        let file = tempfile::NamedTempFile::new()?;
        let mut writer = csv::WriterBuilder::new()
            .flexible(true)
            .from_writer(std::io::BufWriter::new(file));
        let mut header: Vec<String> = ["row", "outcome", "code", "column", "message"]
            .map(String::from)
            .to_vec();
        header.extend(
            original_header
                .iter()
                .map(|h| spreadsheet_safe(h).into_owned()),
        );
        writer
            .write_record(&header)
            .map_err(std::io::Error::other)?;
        Ok(RowsReport { writer, lines: 0 })
    }

    /// Appends one problem row with its original cells.
    pub fn push(&mut self, line: &ReportLine, cells: &[String]) -> std::io::Result<()> {
        let mut record: Vec<std::borrow::Cow<'_, str>> = vec![
            line.row.to_string().into(),
            line.outcome.as_str().into(),
            spreadsheet_safe(&line.code),
            spreadsheet_safe(&line.column),
            spreadsheet_safe(&line.message),
        ];
        record.extend(cells.iter().map(|c| spreadsheet_safe(c)));
        self.writer
            .write_record(record.iter().map(|c| c.as_bytes()))
            .map_err(std::io::Error::other)?;
        self.lines += 1;
        Ok(())
    }

    /// Problem rows written so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Flushes and returns the file.
    pub fn finish(self) -> std::io::Result<tempfile::NamedTempFile> {
        let buffered = self
            .writer
            .into_inner()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let mut file = buffered
            .into_inner()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        file.flush()?;
        Ok(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_neutralised_but_numbers_kept() {
        assert_eq!(spreadsheet_safe("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(spreadsheet_safe("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(spreadsheet_safe("-2+3"), "'-2+3");
        assert_eq!(spreadsheet_safe("-20"), "-20");
        assert_eq!(
            spreadsheet_safe("+44 (0) 7911-123456"),
            "+44 (0) 7911-123456"
        );
        assert_eq!(spreadsheet_safe("+cmd"), "'+cmd");
        assert_eq!(spreadsheet_safe("\tx"), "'\tx");
        assert_eq!(spreadsheet_safe("Eva"), "Eva");
    }

    #[test]
    fn rows_report_has_report_columns_then_original_cells() {
        let mut report = RowsReport::create(&["Name".into(), "Phone".into()]).expect("temp file");
        let line = ReportLine {
            row: 3,
            outcome: Outcome::Rejected,
            code: "invalid_phone".into(),
            column: "Phone".into(),
            message: "bad".into(),
        };
        report
            .push(&line, &["=cmd()".into(), "12".into()])
            .expect("write");
        let file = report.finish().expect("finish");
        let text = std::fs::read_to_string(file.path()).expect("read");
        assert_eq!(text, "row,outcome,code,column,message,Name,Phone\n3,rejected,invalid_phone,Phone,bad,'=cmd(),12\n");
    }

    #[test]
    fn message_counts_new_contacts() {
        assert_eq!(
            saved_message(10, false),
            "10 new contacts saved to Contact Book."
        );
        assert_eq!(
            saved_message(1, false),
            "1 new contact saved to Contact Book."
        );
    }
}
