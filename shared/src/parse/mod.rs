//! Reading uploads into rows: CSV and TXT as streams (encoding and delimiter sniffed),
//! workbooks through calamine after checking the archive is not a bomb.
//!
//! Sources push rows to a visitor rather than returning an iterator, because calamine's
//! streaming cell reader borrows the workbook it reads from.

mod encoding;
mod sniff;
mod text;
mod workbook;

use std::io::Read;
use std::ops::ControlFlow;

use crate::domain::options::Delimiter;

pub use sniff::sniff_delimiter;
pub use text::read_text;
pub use workbook::{cell_text, check_archive, read_workbook, WorkbookLimits};

/// File formats we read, chosen by extension.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Format {
    /// Comma/semicolon/tab/pipe separated text (`.csv`, `.tsv`).
    Csv,
    /// A pasted list of numbers, one per line; a tab-delimited table saved as `.txt` is
    /// read as a table.
    Txt,
    /// Excel 2007+.
    Xlsx,
    /// Excel 97-2003.
    Xls,
    /// OpenDocument spreadsheet.
    Ods,
}

impl Format {
    /// The format for a file extension (lower case, no dot).
    pub fn from_extension(ext: &str) -> Option<Format> {
        Some(match ext {
            "csv" | "tsv" => Format::Csv,
            "txt" | "text" => Format::Txt,
            "xlsx" | "xlsm" => Format::Xlsx,
            "xls" => Format::Xls,
            "ods" => Format::Ods,
            _ => return None,
        })
    }

    /// The name used in summary.json.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Txt => "txt",
            Format::Xlsx => "xlsx",
            Format::Xls => "xls",
            Format::Ods => "ods",
        }
    }

    /// Whether the whole file is needed in memory (workbooks) rather than streamed.
    pub fn is_workbook(self) -> bool {
        matches!(self, Format::Xlsx | Format::Xls | Format::Ods)
    }
}

/// Whether a row is the header or data.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RowKind {
    /// The column titles.
    Header,
    /// A data row.
    Data,
}

/// One non-blank row of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawRow {
    /// 1-based line (text) or row number (sheet) where the row starts.
    pub line: u64,
    /// Cells as text.
    pub cells: Vec<String>,
    /// Header or data.
    pub kind: RowKind,
}

/// What was detected while reading, for summary.json.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceInfo {
    /// Text encoding (`utf-8`, `utf-16le`, `windows-1252`) or `null` for workbooks.
    pub encoding: Option<&'static str>,
    /// Delimiter of a text table.
    pub delimiter: Option<char>,
    /// Sheet a workbook was read from.
    pub sheet: Option<String>,
}

/// A file that cannot be read as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// Not a file we can read (binary garbage, broken workbook).
    #[error("{0}")]
    Unreadable(String),
    /// Larger than allowed once decompressed.
    #[error("{0}")]
    TooLarge(String),
    /// The requested sheet is not in the workbook.
    #[error("sheet {requested:?} is not in the workbook; its sheets are: {available}")]
    NoSuchSheet {
        /// The `sheet` option.
        requested: String,
        /// The workbook's sheet names.
        available: String,
    },
}

/// How to read a source.
#[derive(Clone, Debug)]
pub struct ReadOptions {
    /// Format from the extension.
    pub format: Format,
    /// Delimiter option; sniffed when `None`.
    pub delimiter: Option<Delimiter>,
    /// Sheet option.
    pub sheet: Option<String>,
}

/// The bytes of an upload: a stream (text is read as it arrives) or the whole file
/// (workbooks need it all).
pub enum Body<R> {
    /// A blocking reader.
    Stream(R),
    /// The whole file.
    Bytes(Vec<u8>),
}

/// The one entry point from bytes to rows, for imports and campaign files alike: reads
/// `body` as `options.format` and pushes every non-blank row to `visit`.
pub fn read_rows<R: Read>(
    body: Body<R>,
    options: &ReadOptions,
    limits: &WorkbookLimits,
    visit: impl FnMut(RawRow) -> ControlFlow<()>,
) -> Result<SourceInfo, SourceError> {
    match (body, options.format.is_workbook()) {
        (Body::Bytes(bytes), true) => read_workbook(bytes, options, limits, visit),
        (Body::Bytes(bytes), false) => read_text(&bytes[..], options, visit),
        (Body::Stream(reader), false) => read_text(reader, options, visit),
        (Body::Stream(mut reader), true) => {
            let mut bytes = Vec::new();
            reader
                .read_to_end(&mut bytes)
                .map_err(|e| SourceError::Unreadable(format!("the file could not be read: {e}")))?;
            read_workbook(bytes, options, limits, visit)
        }
    }
}
