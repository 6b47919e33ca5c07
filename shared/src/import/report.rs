//! The report files of an import: `summary.json` and `rows.csv` (DESIGN section 8), and
//! the sample of rejected rows report.html shows (its page is
//! [`report_html`](super::report_html)).

use std::collections::BTreeMap;
use std::io::Write;

use serde::{Deserialize, Serialize};

use crate::domain::cleaning::undo_spreadsheet_safe;
use crate::domain::outcome::{FailureCode, ImportStatus, Outcome, RowCounts};
use crate::domain::phone::PhoneRejection;
use crate::domain::validate::{Problem, WarningCode};

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
    /// Why the whole file failed.
    pub code: FailureCode,
    /// What happened and what to do, for a person.
    pub message: String,
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
    pub rejections_by_reason: BTreeMap<PhoneRejection, u64>,
    /// DynamoDB capacity the import consumed (all invocations, up to this summary;
    /// the job's final update after it is not in it).
    pub consumed: crate::domain::capacity::Consumed,
    /// Warnings by code.
    pub warnings_by_code: BTreeMap<WarningCode, u64>,
    /// Column title -> field, `attr:Name` or `ignore`.
    pub column_mapping: BTreeMap<String, String>,
    /// Where `column_mapping` came from: the `mapping` option, the account's saved
    /// mapping for this header, or titles alone (DESIGN section 15).
    #[serde(default)]
    pub mapping_source: crate::domain::mapping::MappingSource,
    /// One sentence for the user.
    pub message: String,
    /// Set when the file failed.
    pub error: Option<FileError>,
    /// Key of rows.csv.
    pub rows_report_key: Option<String>,
    /// Key of report.html, the page a person reads (DESIGN section 15); absent from
    /// summaries written before it existed.
    pub html_report_key: Option<String>,
}

pub use crate::domain::cleaning::spreadsheet_safe;

/// Rejected rows report.html shows at most; rows.csv has them all.
pub const SAMPLE_ROWS: usize = 100;

/// One rejected row as report.html shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectedRow {
    /// 1-based line in the file (header = 1).
    pub row: u64,
    /// What became of the row: `rejected`.
    pub outcome: Outcome,
    /// Its problem codes (rows.csv's `code`).
    pub codes: Vec<String>,
    /// Title of the offending column.
    pub column: String,
    /// What is wrong, for a person.
    pub message: String,
    /// The row's cells as the file has them.
    pub cells: Vec<String>,
    /// Position of the offending cell in `cells`, when the file has that column.
    pub cell: Option<usize>,
}

/// The first [`SAMPLE_ROWS`] rejected rows of an import, with the file's header titles.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RejectedSample {
    /// The file's header titles as written.
    pub header: Vec<String>,
    /// Rejected rows in file order, at most [`SAMPLE_ROWS`].
    pub rows: Vec<RejectedRow>,
    /// Set when the rows up to this line (an earlier invocation's) could not be read
    /// back: the sample starts after it.
    pub starts_after: Option<u64>,
}

impl RejectedSample {
    /// An empty sample for a file with this header.
    pub fn new(header: Vec<String>) -> RejectedSample {
        RejectedSample {
            header,
            ..RejectedSample::default()
        }
    }

    /// Keeps `row` while the sample has room.
    pub fn push(&mut self, row: RejectedRow) {
        if !self.is_full() {
            self.rows.push(row);
        }
    }

    /// Whether the sample holds [`SAMPLE_ROWS`] rows.
    pub fn is_full(&self) -> bool {
        self.rows.len() >= SAMPLE_ROWS
    }
}

/// One line of rows.csv.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportLine<'a> {
    /// 1-based line in the file (header = 1).
    pub row: u64,
    /// What became of the row.
    pub outcome: Outcome,
    /// Its problems; several are `;`-joined in each of the code, column and message cells.
    pub problems: Vec<&'a Problem>,
}

impl ReportLine<'_> {
    fn joined(&self, part: fn(&Problem) -> &str) -> String {
        let parts: Vec<&str> = self.problems.iter().map(|p| part(p)).collect();
        parts.join("; ")
    }

    /// The line as report.html shows it, with the row's cells; the offending cell is
    /// not yet located.
    pub fn rejected_row(&self, cells: &[String]) -> RejectedRow {
        RejectedRow {
            row: self.row,
            outcome: self.outcome,
            codes: self
                .problems
                .iter()
                .map(|p| p.code.as_str().to_string())
                .collect(),
            column: self.joined(|p| &p.column),
            message: self.joined(|p| &p.message),
            cells: cells.to_vec(),
            cell: None,
        }
    }
}

/// Writes rows.csv to a temporary file as rows finish, so memory does not grow with
/// the number of problem rows.
pub struct RowsReport {
    writer: csv::Writer<std::io::BufWriter<tempfile::NamedTempFile>>,
    /// Where the lines not yet taken as a part begin (bytes from the file's start).
    part_start: u64,
}

impl RowsReport {
    /// Starts the report with its header (the five report columns, then the file's own
    /// header cells), then the parts an earlier run of the import took, in order.
    pub fn create(original_header: &[String], parts: &[Vec<u8>]) -> std::io::Result<RowsReport> {
        use std::io::Write;
        let mut header: Vec<String> = ["row", "outcome", "code", "column", "message"]
            .map(String::from)
            .to_vec();
        header.extend(
            original_header
                .iter()
                .map(|h| spreadsheet_safe(h).into_owned()),
        );
        let mut header_line = csv::WriterBuilder::new()
            .flexible(true)
            .from_writer(Vec::new());
        header_line
            .write_record(&header)
            .map_err(std::io::Error::other)?;
        let header_line = header_line
            .into_inner()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let mut file = std::io::BufWriter::new(tempfile::NamedTempFile::new()?);
        file.write_all(&header_line)?;
        for part in parts {
            file.write_all(part)?;
        }
        let writer = csv::WriterBuilder::new().flexible(true).from_writer(file);
        let mut report = RowsReport {
            writer,
            part_start: 0,
        };
        report.part_start = report.written()?;
        Ok(report)
    }

    /// Flushes, and answers how many bytes the file holds.
    fn written(&mut self) -> std::io::Result<u64> {
        self.writer.flush()?;
        Ok(self.writer.get_ref().get_ref().as_file().metadata()?.len())
    }

    /// The lines written since the last part (or the header), as bytes; `None` when
    /// there are none. A resumed run appends the parts in order to a new report.
    pub fn take_part(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        use std::io::{Read, Seek, SeekFrom};
        let end = self.written()?;
        if end == self.part_start {
            return Ok(None);
        }
        let mut file = self.writer.get_ref().get_ref().reopen()?;
        file.seek(SeekFrom::Start(self.part_start))?;
        let mut part = Vec::with_capacity((end - self.part_start) as usize);
        file.take(end - self.part_start).read_to_end(&mut part)?;
        self.part_start = end;
        Ok(Some(part))
    }

    /// Appends one problem row with its original cells.
    pub fn push(&mut self, line: &ReportLine<'_>, cells: &[String]) -> std::io::Result<()> {
        let (code, column, message) = (
            line.joined(|p| p.code.as_str()),
            line.joined(|p| &p.column),
            line.joined(|p| &p.message),
        );
        let mut record: Vec<std::borrow::Cow<'_, str>> = vec![
            line.row.to_string().into(),
            line.outcome.as_str().into(),
            spreadsheet_safe(&code),
            spreadsheet_safe(&column),
            spreadsheet_safe(&message),
        ];
        record.extend(cells.iter().map(|c| spreadsheet_safe(c)));
        self.writer
            .write_record(record.iter().map(|c| c.as_bytes()))
            .map_err(std::io::Error::other)?;
        Ok(())
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

/// The first `limit` rejected rows among rows.csv lines written earlier (the parts a
/// resumed import starts from: no header), as report.html shows them: cells as the file
/// had them (the spreadsheet escape undone), the offending cell not yet located.
pub fn rejected_rows_in(parts: &[Vec<u8>], limit: usize) -> std::io::Result<Vec<RejectedRow>> {
    let mut rows = Vec::new();
    for part in parts {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(part.as_slice());
        for record in reader.records() {
            if rows.len() >= limit {
                return Ok(rows);
            }
            rows.extend(rejected_row(&record?)?);
        }
    }
    Ok(rows)
}

/// One rows.csv line as a rejected row; `None` for another outcome.
fn rejected_row(record: &csv::StringRecord) -> std::io::Result<Option<RejectedRow>> {
    let malformed = || {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "a rows.csv line without its five report columns",
        )
    };
    if record.get(1) != Some(Outcome::Rejected.as_str()) {
        return Ok(None);
    }
    let field = |i: usize| {
        record
            .get(i)
            .map(undo_spreadsheet_safe)
            .ok_or_else(malformed)
    };
    let row = field(0)?.parse().map_err(|_| malformed())?;
    Ok(Some(RejectedRow {
        row,
        outcome: Outcome::Rejected,
        codes: field(2)?.split("; ").map(String::from).collect(),
        column: field(3)?.to_string(),
        message: field(4)?.to_string(),
        cells: record
            .iter()
            .skip(5)
            .map(|c| undo_spreadsheet_safe(c).to_string())
            .collect(),
        cell: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::validate::ProblemCode;

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
        let mut report =
            RowsReport::create(&["Name".into(), "Phone".into()], &[]).expect("temp file");
        let problem = Problem {
            code: ProblemCode::Rejected(PhoneRejection::Invalid),
            column: "Phone".into(),
            message: "bad".into(),
        };
        let line = ReportLine {
            row: 3,
            outcome: Outcome::Rejected,
            problems: vec![&problem],
        };
        report
            .push(&line, &["=cmd()".into(), "12".into()])
            .expect("write");
        let file = report.finish().expect("finish");
        let text = std::fs::read_to_string(file.path()).expect("read");
        assert_eq!(text, "row,outcome,code,column,message,Name,Phone\n3,rejected,invalid_phone,Phone,bad,'=cmd(),12\n");
    }

    #[test]
    fn rejected_rows_read_back_from_parts_as_the_file_had_them() {
        // GIVEN two parts: a rejected row, a duplicate, then another rejected row
        let problem = |code, column: &str| Problem {
            code,
            column: column.into(),
            message: "bad".into(),
        };
        let mut report = RowsReport::create(&["Name".into(), "Phone".into()], &[]).expect("temp");
        let invalid = problem(ProblemCode::Rejected(PhoneRejection::Invalid), "Phone");
        let line = |row, outcome, problem| ReportLine {
            row,
            outcome,
            problems: vec![problem],
        };
        report
            .push(
                &line(2, Outcome::Rejected, &invalid),
                &["=cmd()".into(), "12".into()],
            )
            .expect("write");
        let first = report.take_part().expect("part").expect("lines");
        let duplicate = problem(ProblemCode::DuplicateInFile, "Phone");
        report
            .push(
                &line(3, Outcome::DuplicateInFile, &duplicate),
                &["Eva".into(), "+447911123456".into()],
            )
            .expect("write");
        let missing = problem(ProblemCode::Rejected(PhoneRejection::Missing), "Phone");
        report
            .push(
                &line(4, Outcome::Rejected, &missing),
                &["Line\nbreak, \"quoted\"".into()],
            )
            .expect("write");
        let second = report.take_part().expect("part").expect("lines");

        // WHEN they are read back
        let rows = rejected_rows_in(&[first.clone(), second.clone()], 100).expect("read back");

        // THEN the rejected rows come back, cells unescaped, the duplicate left out
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].row, rows[0].codes.as_slice()),
            (2, ["invalid_phone".to_string()].as_slice())
        );
        assert_eq!(rows[0].cells, ["=cmd()", "12"]);
        assert_eq!(
            (rows[0].column.as_str(), rows[0].message.as_str()),
            ("Phone", "bad")
        );
        assert_eq!(rows[1].row, 4);
        assert_eq!(rows[1].cells, ["Line\nbreak, \"quoted\""]);
        assert_eq!(
            rejected_rows_in(&[first, second], 1).expect("read").len(),
            1,
            "the limit"
        );
        assert!(rejected_rows_in(&[b"x,rejected\n".to_vec()], 100).is_err());
    }
}
