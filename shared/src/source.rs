//! Reading uploads into rows: CSV and TXT as streams (encoding and delimiter sniffed),
//! workbooks through calamine after checking the archive is not a bomb.
//!
//! Sources push rows to a visitor rather than returning an iterator, because calamine's
//! streaming cell reader borrows the workbook it reads from.

use std::io::{Cursor, Read};
use std::ops::ControlFlow;

use calamine::{Data, DataType, Reader};
use encoding_rs::{Encoding, UTF_16BE, UTF_16LE, WINDOWS_1252};
use encoding_rs_io::DecodeReaderBytesBuilder;

use crate::options::Delimiter;

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

const SAMPLE_BYTES: usize = 64 * 1024;

/// Reads a text upload (CSV or TXT) from a blocking reader, row by row.
pub fn read_text<R: Read>(
    mut input: R,
    options: &ReadOptions,
    mut visit: impl FnMut(RawRow) -> ControlFlow<()>,
) -> Result<SourceInfo, SourceError> {
    let mut sample = Vec::with_capacity(SAMPLE_BYTES);
    (&mut input)
        .take(SAMPLE_BYTES as u64)
        .read_to_end(&mut sample)
        .map_err(|e| SourceError::Unreadable(format!("the file could not be read: {e}")))?;
    let encoding = detect_encoding(&sample)?;
    let sample_text = decode_sample(&sample, encoding);
    if looks_binary(&sample_text) {
        return Err(SourceError::Unreadable(
            "the file is not text: it holds binary data (for example a workbook or image renamed to .csv); save it as CSV UTF-8 and upload again".into(),
        ));
    }
    let delimiter = match options.delimiter {
        Some(d) => d.byte(),
        None => sniff_delimiter(&sample_text),
    };
    let list_mode =
        options.format == Format::Txt && !first_line_is_table_header(&sample_text, delimiter);
    let stream = Cursor::new(sample).chain(input);
    let stream: Box<dyn Read> = match encoding {
        TextEncoding::Utf8 { bom } => {
            let mut stream = stream;
            if bom {
                let mut skip = [0u8; 3];
                stream
                    .read_exact(&mut skip)
                    .map_err(|e| SourceError::Unreadable(e.to_string()))?;
            }
            Box::new(stream)
        }
        TextEncoding::Other(enc) => Box::new(
            DecodeReaderBytesBuilder::new()
                .encoding(Some(enc))
                .bom_override(true)
                .build(stream),
        ),
    };
    let lines = LineCounter::default();
    let stream = CountingReader {
        inner: stream,
        offset: 0,
        last: 0,
        lines: lines.clone(),
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        // A pasted list has no delimiter: the unit separator never occurs in one.
        .delimiter(if list_mode { 0x1F } else { delimiter })
        .quoting(!list_mode)
        .from_reader(stream);
    let mut record = csv::ByteRecord::new();
    let mut seen_header = list_mode;
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                return Err(SourceError::Unreadable(match e.position() {
                    Some(pos) => {
                        format!("the file could not be read at line {}: {}", pos.line(), e)
                    }
                    None => format!("the file could not be read: {e}"),
                }))
            }
        }
        let cells: Vec<String> = record.iter().map(decode_cell).collect();
        if cells.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let line = record.position().map_or(0, |p| lines.line_at(p.byte()));
        let kind = if seen_header {
            RowKind::Data
        } else {
            RowKind::Header
        };
        seen_header = true;
        if visit(RawRow { line, cells, kind }).is_break() {
            break;
        }
    }
    Ok(SourceInfo {
        encoding: Some(encoding.name()),
        delimiter: (!list_mode).then_some(delimiter as char),
        sheet: None,
    })
}

/// Line terminators seen by [`CountingReader`] but not yet attributed to a record.
/// csv reports where a record's read began (just after the previous record's first
/// terminator byte), not its first line, so blank lines and `\r\n` are counted here.
#[derive(Clone, Default)]
struct LineCounter(std::rc::Rc<std::cell::RefCell<LineState>>);

#[derive(Default)]
struct LineState {
    /// Offsets of `\r` and `\n` bytes, with whether each ends a line (`\n` after `\r`
    /// does not).
    pending: std::collections::VecDeque<(u64, bool)>,
    lines_before: u64,
}

impl LineCounter {
    fn line_at(&self, read_start: u64) -> u64 {
        let mut state = self.0.borrow_mut();
        let mut cursor = read_start;
        while let Some(&(offset, counts)) = state.pending.front() {
            if offset < read_start || offset == cursor {
                if offset == cursor {
                    cursor += 1;
                }
                state.pending.pop_front();
                state.lines_before += u64::from(counts);
            } else {
                break;
            }
        }
        state.lines_before + 1
    }
}

struct CountingReader<R> {
    inner: R,
    offset: u64,
    last: u8,
    lines: LineCounter,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut state = self.lines.0.borrow_mut();
        for &b in &buf[..n] {
            if b == b'\n' || b == b'\r' {
                state
                    .pending
                    .push_back((self.offset, !(b == b'\n' && self.last == b'\r')));
            }
            self.last = b;
            self.offset += 1;
        }
        Ok(n)
    }
}

#[derive(Copy, Clone, Debug)]
enum TextEncoding {
    Utf8 { bom: bool },
    Other(&'static Encoding),
}

impl TextEncoding {
    fn name(self) -> &'static str {
        match self {
            TextEncoding::Utf8 { .. } => "utf-8",
            TextEncoding::Other(enc) if enc == UTF_16LE => "utf-16le",
            TextEncoding::Other(enc) if enc == UTF_16BE => "utf-16be",
            TextEncoding::Other(_) => "windows-1252",
        }
    }
}

fn detect_encoding(sample: &[u8]) -> Result<TextEncoding, SourceError> {
    if sample.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return Ok(TextEncoding::Utf8 { bom: true });
    }
    if sample.starts_with(&[0xFF, 0xFE]) {
        return Ok(TextEncoding::Other(UTF_16LE));
    }
    if sample.starts_with(&[0xFE, 0xFF]) {
        return Ok(TextEncoding::Other(UTF_16BE));
    }
    // UTF-16 without a BOM: ASCII text leaves every other byte zero.
    if sample.len() >= 4 {
        let zeros_at = |parity: usize| {
            sample
                .iter()
                .skip(parity)
                .step_by(2)
                .filter(|b| **b == 0)
                .count()
        };
        let half = sample.len() / 2;
        if zeros_at(1) * 10 > half * 8 && zeros_at(0) * 10 < half {
            return Ok(TextEncoding::Other(UTF_16LE));
        }
        if zeros_at(0) * 10 > half * 8 && zeros_at(1) * 10 < half {
            return Ok(TextEncoding::Other(UTF_16BE));
        }
    }
    let (multibyte, invalid) = utf8_evidence(sample);
    // A UTF-8 file with a few rows pasted in from a Windows-1252 one is still UTF-8: the
    // odd cells fall back to Windows-1252 one by one (`decode_cell`). Windows-1252 text
    // almost never forms valid multi-byte UTF-8 sequences, so those decide.
    if invalid == 0 || multibyte > invalid {
        Ok(TextEncoding::Utf8 { bom: false })
    } else {
        Ok(TextEncoding::Other(WINDOWS_1252))
    }
}

/// Counts the valid multi-byte UTF-8 characters and the invalid byte sequences in a
/// sample. A character cut by the end of the sample is neither.
fn utf8_evidence(bytes: &[u8]) -> (usize, usize) {
    let (mut multibyte, mut invalid) = (0, 0);
    let mut chunks = bytes.utf8_chunks().peekable();
    while let Some(chunk) = chunks.next() {
        multibyte += chunk.valid().chars().filter(|c| !c.is_ascii()).count();
        let bad = chunk.invalid();
        let cut = chunks.peek().is_none()
            && std::str::from_utf8(bad).is_err_and(|e| e.error_len().is_none());
        if !bad.is_empty() && !cut {
            invalid += 1;
        }
    }
    (multibyte, invalid)
}

fn decode_sample(sample: &[u8], encoding: TextEncoding) -> String {
    match encoding {
        TextEncoding::Utf8 { bom } => utf8_or_1252(&sample[if bom { 3 } else { 0 }..]),
        TextEncoding::Other(enc) => enc.decode(sample).0.into_owned(),
    }
}

/// UTF-8 text with any invalid sequence read as Windows-1252, as cells are.
fn utf8_or_1252(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        text.push_str(chunk.valid());
        text.push_str(&WINDOWS_1252.decode_without_bom_handling(chunk.invalid()).0);
    }
    text
}

/// Cells are UTF-8 after decoding; a stray non-UTF-8 cell in a UTF-8 file (a file
/// pasted together from two sources) is read as Windows-1252 rather than mangled.
fn decode_cell(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => utf8_or_1252(bytes),
    }
}

fn looks_binary(text: &str) -> bool {
    let mut total = 0usize;
    let mut bad = 0usize;
    for c in text.chars() {
        total += 1;
        if c == '\0'
            || c == '\u{FFFD}'
            || (c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\u{0C}'))
        {
            bad += 1;
        }
    }
    // A stray NUL in a text file is stripped from its cell later; only a share of
    // control characters marks binary data.
    total > 0 && bad * 100 > total * 2
}

/// Picks the delimiter whose field count is most consistent across the first lines,
/// counting only delimiters outside quotes.
pub fn sniff_delimiter(sample: &str) -> u8 {
    let candidates = [b',', b';', b'\t', b'|'];
    let records = split_records(sample, 50);
    let mut best = (b',', 0usize, 0usize);
    for delimiter in candidates {
        let counts: Vec<usize> = records.iter().map(|r| count_fields(r, delimiter)).collect();
        let Some(&first) = counts.first() else { break };
        if first < 2 {
            continue;
        }
        let consistent = counts.iter().filter(|&&c| c == first).count();
        if (consistent, first) > (best.1, best.2) {
            best = (delimiter, consistent, first);
        }
    }
    best.0
}

/// Splits text into up to `limit` non-blank records, honouring quoted newlines.
fn split_records(sample: &str, limit: usize) -> Vec<&str> {
    let mut records = Vec::new();
    let mut in_quotes = false;
    let mut start = 0;
    let bytes = sample.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'"' => in_quotes = !in_quotes,
            b'\n' | b'\r' if !in_quotes => {
                let record = &sample[start..i];
                if !record.trim().is_empty() {
                    records.push(record);
                }
                start = i + 1;
                if records.len() >= limit {
                    return records;
                }
            }
            _ => {}
        }
    }
    // The sample may end mid-record; only count a tail when it is the whole file.
    if records.is_empty() && !sample[start..].trim().is_empty() {
        records.push(&sample[start..]);
    }
    records
}

fn count_fields(record: &str, delimiter: u8) -> usize {
    let mut in_quotes = false;
    let mut fields = 1;
    for &b in record.as_bytes() {
        if b == b'"' {
            in_quotes = !in_quotes;
        } else if b == delimiter && !in_quotes {
            fields += 1;
        }
    }
    fields
}

/// A `.txt` upload is a table (Excel's "Unicode text" export) when its first line has
/// several cells, or one cell that is a phone column title; otherwise a pasted list.
fn first_line_is_table_header(sample: &str, delimiter: u8) -> bool {
    let Some(first) = split_records(sample, 1).first().copied() else {
        return false;
    };
    if count_fields(first, delimiter) > 1 {
        return true;
    }
    crate::field::Field::from_header(first.trim().trim_matches('"')).is_some()
}

/// Limits on a workbook archive, checked before calamine inflates anything.
#[derive(Copy, Clone, Debug)]
pub struct WorkbookLimits {
    /// Most bytes all entries may inflate to.
    pub max_uncompressed_bytes: u64,
    /// Highest inflation ratio of one entry larger than 1 MB.
    pub max_ratio: u64,
    /// Most columns read from a sheet; cells beyond are ignored.
    pub max_columns: usize,
    /// Longest stretch of an entry without `<` or `>`. The XML reader buffers a whole
    /// text node or tag, and Excel caps a cell at 32,767 characters, so a longer stretch
    /// is padding meant to exhaust memory.
    pub max_unbroken_bytes: u64,
}

impl Default for WorkbookLimits {
    fn default() -> Self {
        WorkbookLimits {
            max_uncompressed_bytes: 1 << 30,
            max_ratio: 200,
            max_columns: 1024,
            max_unbroken_bytes: 8 << 20,
        }
    }
}

/// Checks a zip-based workbook (XLSX, ODS) for bombs: total and per-entry inflated
/// sizes as the archive declares them.
pub fn check_archive(bytes: &[u8], limits: &WorkbookLimits) -> Result<(), SourceError> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| SourceError::Unreadable(format!("the workbook is not a valid zip archive ({e}); save it again from Excel or upload a CSV")))?;
    let mut total: u64 = 0;
    for i in 0..archive.len() {
        let entry = archive.by_index_raw(i).map_err(|e| {
            SourceError::Unreadable(format!("the workbook archive is damaged ({e})"))
        })?;
        let (size, compressed) = (entry.size(), entry.compressed_size().max(1));
        total = total.saturating_add(size);
        if size > (1 << 20) && size / compressed > limits.max_ratio {
            return Err(SourceError::Unreadable(format!(
                "the workbook entry {:?} inflates {}x ({} bytes): refused as a zip bomb",
                entry_name(entry.name(), i),
                size / compressed,
                size
            )));
        }
    }
    if total > limits.max_uncompressed_bytes {
        return Err(SourceError::TooLarge(format!(
            "the workbook inflates to {total} bytes, more than the {} allowed",
            limits.max_uncompressed_bytes
        )));
    }
    // Declared sizes can lie, and a ratio within limits can still hide one huge text
    // node: inflate every sizeable entry into a counting sink before calamine does.
    let mut budget = limits.max_uncompressed_bytes;
    for i in 0..archive.len() {
        let entry = archive.by_index(i).map_err(|e| {
            SourceError::Unreadable(format!("the workbook archive is damaged ({e})"))
        })?;
        if entry.compressed_size() < 16 * 1024 {
            continue;
        }
        let name = entry_name(entry.name(), i);
        let compressed = entry.compressed_size().max(1);
        let inflated = scan_entry(entry, &name, budget, limits)?;
        if inflated > (1 << 20) && inflated / compressed > limits.max_ratio {
            return Err(SourceError::Unreadable(format!(
                "the workbook entry {name:?} inflates {}x ({inflated} bytes): refused as a zip bomb",
                inflated / compressed
            )));
        }
        budget -= inflated;
    }
    Ok(())
}

fn entry_name<E>(name: Result<std::borrow::Cow<'_, str>, E>, index: usize) -> String {
    name.map_or_else(|_| format!("number {}", index + 1), |n| n.into_owned())
}

/// Inflates one archive entry without keeping it: its real size, refusing it past
/// `budget` bytes or with an unbroken stretch past the limit.
fn scan_entry(
    mut entry: impl Read,
    name: &str,
    budget: u64,
    limits: &WorkbookLimits,
) -> Result<u64, SourceError> {
    let mut chunk = vec![0u8; 64 * 1024];
    let mut inflated: u64 = 0;
    let mut unbroken: u64 = 0;
    loop {
        let n = match entry.read(&mut chunk) {
            Ok(0) => return Ok(inflated),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(SourceError::Unreadable(format!(
                    "the workbook entry {name:?} is damaged ({e})"
                )))
            }
        };
        inflated += n as u64;
        if inflated > budget {
            return Err(SourceError::TooLarge(format!(
                "the workbook inflates to more than the {} bytes allowed (entry {name:?})",
                limits.max_uncompressed_bytes
            )));
        }
        let mut longest = 0;
        for &byte in &chunk[..n] {
            if byte == b'<' || byte == b'>' {
                longest = longest.max(unbroken);
                unbroken = 0;
            } else {
                unbroken += 1;
            }
        }
        if longest.max(unbroken) > limits.max_unbroken_bytes {
            return Err(SourceError::Unreadable(format!(
                "the workbook entry {name:?} holds more than {} bytes without any markup: refused as a zip bomb",
                limits.max_unbroken_bytes
            )));
        }
    }
}

/// Reads a workbook (XLSX, XLS, ODS) held in memory: the `sheet` option's sheet, or the
/// first sheet with data; the header is its first non-blank row.
pub fn read_workbook(
    bytes: Vec<u8>,
    options: &ReadOptions,
    limits: &WorkbookLimits,
    mut visit: impl FnMut(RawRow) -> ControlFlow<()>,
) -> Result<SourceInfo, SourceError> {
    if matches!(options.format, Format::Xlsx | Format::Ods) || bytes.starts_with(b"PK") {
        check_archive(&bytes, limits)?;
    }
    let unreadable = |e: &dyn std::fmt::Display| {
        SourceError::Unreadable(format!("the workbook could not be read: {e}"))
    };
    let mut workbook =
        calamine::open_workbook_auto_from_rs(Cursor::new(bytes)).map_err(|e| unreadable(&e))?;
    let names = workbook.sheet_names();
    let candidates: Vec<String> = match &options.sheet {
        Some(wanted) => {
            let found = names.iter().find(|n| *n == wanted).or_else(|| {
                names
                    .iter()
                    .find(|n| n.trim().eq_ignore_ascii_case(wanted.trim()))
            });
            match found {
                Some(name) => vec![name.clone()],
                None => {
                    return Err(SourceError::NoSuchSheet {
                        requested: wanted.clone(),
                        available: names.join(", "),
                    })
                }
            }
        }
        None => names.clone(),
    };
    for name in candidates {
        let mut emitter = RowEmitter {
            visit: &mut visit,
            seen_header: false,
            max_columns: limits.max_columns,
            stopped: false,
        };
        if let calamine::Sheets::Xlsx(xlsx) = &mut workbook {
            // Stream cells: memory stays bounded whatever dimensions the sheet declares.
            let mut cells = xlsx
                .worksheet_cells_reader(&name)
                .map_err(|e| unreadable(&e))?;
            let mut current: Option<(u32, Vec<String>)> = None;
            while let Some(cell) = cells.next_cell().map_err(|e| unreadable(&e))? {
                let (row, col) = cell.get_position();
                let value = cell_text(&Data::from(cell.get_value().clone()));
                if current.as_ref().is_some_and(|(r, _)| *r != row) {
                    if let Some((r, cells)) = current.take() {
                        emitter.emit(r, cells);
                    }
                }
                if emitter.stopped {
                    break;
                }
                let (_, row_cells) = current.get_or_insert_with(|| (row, Vec::new()));
                let col = col as usize;
                if col < limits.max_columns && !value.is_empty() {
                    if row_cells.len() <= col {
                        row_cells.resize(col + 1, String::new());
                    }
                    row_cells[col] = value;
                }
            }
            if let Some((r, cells)) = current.take() {
                emitter.emit(r, cells);
            }
        } else {
            let range = workbook
                .worksheet_range(&name)
                .map_err(|e| unreadable(&e))?;
            let (start_row, start_col) = range.start().unwrap_or((0, 0));
            for (offset, row) in range.rows().enumerate() {
                let mut cells = vec![String::new(); start_col as usize];
                cells.extend(row.iter().take(limits.max_columns).map(cell_text));
                emitter.emit(start_row + offset as u32, cells);
                if emitter.stopped {
                    break;
                }
            }
        }
        if emitter.seen_header {
            return Ok(SourceInfo {
                encoding: None,
                delimiter: None,
                sheet: Some(name),
            });
        }
    }
    Ok(SourceInfo {
        encoding: None,
        delimiter: None,
        sheet: None,
    })
}

struct RowEmitter<'v, V: FnMut(RawRow) -> ControlFlow<()>> {
    visit: &'v mut V,
    seen_header: bool,
    max_columns: usize,
    stopped: bool,
}

impl<V: FnMut(RawRow) -> ControlFlow<()>> RowEmitter<'_, V> {
    fn emit(&mut self, row: u32, mut cells: Vec<String>) {
        if self.stopped || cells.iter().all(|c| c.trim().is_empty()) {
            return;
        }
        cells.truncate(self.max_columns);
        let kind = if self.seen_header {
            RowKind::Data
        } else {
            RowKind::Header
        };
        self.seen_header = true;
        if (self.visit)(RawRow {
            line: u64::from(row) + 1,
            cells,
            kind,
        })
        .is_break()
        {
            self.stopped = true;
        }
    }
}

/// A cell as text: whole floats without `.0` (Excel stores numbers as floats), dates as
/// ISO dates, formulas as their cached value, errors as Excel shows them.
pub fn cell_text(cell: &Data) -> String {
    match cell {
        Data::Empty => String::new(),
        Data::String(s) => s.clone(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) => {
            if f.fract() == 0.0 && f.abs() < 1e17 {
                format!("{f:.0}")
            } else {
                f.to_string()
            }
        }
        Data::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_string(),
        Data::DateTime(dt) => match cell.as_datetime() {
            Some(value) if dt.is_datetime() => {
                if value.time() == chrono::NaiveTime::MIN {
                    value.format("%Y-%m-%d").to_string()
                } else {
                    value.format("%Y-%m-%dT%H:%M:%S").to_string()
                }
            }
            _ => dt.as_f64().to_string(),
        },
        Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Error(e) => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_rows(bytes: &[u8], format: Format) -> (Vec<RawRow>, SourceInfo) {
        let mut rows = Vec::new();
        let options = ReadOptions {
            format,
            delimiter: None,
            sheet: None,
        };
        let info = read_text(bytes, &options, |row| {
            rows.push(row);
            ControlFlow::Continue(())
        })
        .expect("readable");
        (rows, info)
    }

    #[test]
    fn sniffs_semicolons_despite_quoted_commas_and_counts_lines() {
        let data = "\u{FEFF}\"phoneNumber\";\"name, full\"\r\n\r\n31612345678;\"Eva, the \"\"first\"\"\"\r\n31687654321;\"multi\nline\"\r\n31600000000;Chris\r\n";
        let (rows, info) = text_rows(data.as_bytes(), Format::Csv);
        assert_eq!(info.delimiter, Some(';'));
        assert_eq!(info.encoding, Some("utf-8"));
        assert_eq!(rows[0].cells, ["phoneNumber", "name, full"]);
        assert_eq!(rows[0].kind, RowKind::Header);
        assert_eq!(
            rows.iter().map(|r| r.line).collect::<Vec<_>>(),
            [1, 3, 4, 6]
        );
        assert_eq!(rows[1].cells[1], "Eva, the \"first\"");
    }

    #[test]
    fn reads_utf16_tab_exports_and_windows_1252() {
        let text = "Name\tPhone\r\nZoë\t+447911123456\r\n";
        let mut utf16 = vec![0xFF, 0xFE];
        utf16.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        let (rows, info) = text_rows(&utf16, Format::Txt);
        assert_eq!(info.encoding, Some("utf-16le"));
        assert_eq!(info.delimiter, Some('\t'));
        assert_eq!(rows[1].cells, ["Zoë", "+447911123456"]);

        let latin = b"Name,Phone\nJos\xe9,+447911123456\n";
        let (rows, info) = text_rows(latin, Format::Csv);
        assert_eq!(info.encoding, Some("windows-1252"));
        assert_eq!(rows[1].cells[0], "José");
    }

    fn zip_of(name: &str, body: &[u8]) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        let mut zip = zip::ZipWriter::new(&mut out);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        zip.start_file(name, options).expect("entry");
        std::io::Write::write_all(&mut zip, body).expect("write");
        zip.finish().expect("finish");
        out.into_inner()
    }

    #[test]
    fn archive_entries_are_inflated_and_scanned_before_calamine() {
        let limits = WorkbookLimits {
            max_uncompressed_bytes: 1 << 20,
            max_ratio: u64::MAX,
            max_columns: 8,
            max_unbroken_bytes: 4096,
        };
        let mut sheet = b"<sheetData>".to_vec();
        for i in 0..20_000 {
            sheet.extend_from_slice(format!("<c><v>{i}</v></c>").as_bytes());
        }
        assert!(check_archive(&zip_of("sheet.xml", &sheet), &limits).is_ok());

        let padded = [b"<t>".as_slice(), &[b' '; 5000], b"</t>"].concat();
        let padded = [padded.as_slice(), &sheet].concat();
        let err = check_archive(&zip_of("sheet.xml", &padded), &limits).expect_err("padding");
        assert!(err.to_string().contains("without any markup"), "{err}");

        let big = sheet.repeat(8);
        let err = check_archive(&zip_of("sheet.xml", &big), &limits).expect_err("too big");
        assert!(matches!(err, SourceError::TooLarge(_)), "{err}");
    }

    #[test]
    fn a_utf8_file_with_one_windows_1252_row_stays_utf8() {
        let mut data = "Name,Phone\nZoë,+447911123456\nŁukasz,+447911123457\n"
            .as_bytes()
            .to_vec();
        data.extend_from_slice(b"Jos\xe9,+447911123458\n");
        let (rows, info) = text_rows(&data, Format::Csv);
        assert_eq!(info.encoding, Some("utf-8"));
        assert_eq!(rows[1].cells[0], "Zoë");
        assert_eq!(rows[2].cells[0], "Łukasz");
        assert_eq!(rows[3].cells[0], "José");
        assert_eq!(utf8_or_1252(b"Zo\xc3\xab Jos\xe9"), "Zoë José");
        assert_eq!(utf8_evidence("é€".as_bytes()), (2, 0));
        assert_eq!(
            utf8_evidence(b"\xe9t\xe9 \xc3"),
            (0, 2),
            "a cut character is not evidence"
        );
    }

    #[test]
    fn txt_without_header_is_a_pasted_list() {
        let (rows, info) = text_rows(b"+447911123456\n\n+44 7911 123457\r\n", Format::Txt);
        assert_eq!(info.delimiter, None);
        assert_eq!(rows.len(), 2);
        assert!(rows.iter().all(|r| r.kind == RowKind::Data));
        assert_eq!(rows[1].cells, ["+44 7911 123457"]);
        assert_eq!(rows[1].line, 3);
    }

    #[test]
    fn binary_garbage_is_refused() {
        let garbage: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 256) as u8).collect();
        let options = ReadOptions {
            format: Format::Csv,
            delimiter: None,
            sheet: None,
        };
        let err =
            read_text(&garbage[..], &options, |_| ControlFlow::Continue(())).expect_err("binary");
        assert!(matches!(err, SourceError::Unreadable(_)));
    }

    #[test]
    fn excel_cells_become_text() {
        assert_eq!(cell_text(&Data::Float(447911123456.0)), "447911123456");
        assert_eq!(cell_text(&Data::Float(1.5)), "1.5");
        assert_eq!(cell_text(&Data::Bool(true)), "TRUE");
        assert_eq!(cell_text(&Data::Int(42)), "42");
    }
}

#[cfg(test)]
mod workbook_tests {
    use super::*;

    #[test]
    fn reads_the_first_sheet_with_data_from_an_xlsx_fixture() {
        let bytes = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/contacts.xlsx"
        ))
        .expect("fixture");
        let mut rows = Vec::new();
        let options = ReadOptions {
            format: Format::Xlsx,
            delimiter: None,
            sheet: None,
        };
        let info = read_workbook(bytes, &options, &WorkbookLimits::default(), |row| {
            rows.push(row);
            ControlFlow::Continue(())
        })
        .expect("readable");
        assert_eq!(info.sheet.as_deref(), Some("Contacts"));
        assert_eq!(rows[0].kind, RowKind::Header);
        assert_eq!(rows[0].line, 2);
        assert_eq!(
            rows[0].cells,
            ["Full Name", "WhatsApp Number", "Email", "Birthday", "Tier"]
        );
        assert_eq!(rows[1].cells[1], "447911123460");
        assert_eq!(rows[1].cells[3], "1906-12-09");
        assert_eq!(rows[3].cells[1], "447400123462");
    }
}

/// Replays `tests/fixtures/fuzz-regressions/parse_map_validate-*`, inputs that once broke
/// the `parse_map_validate` fuzz target, through the same path and checks as
/// `fuzz/src/lib.rs`: parse (as CSV and TXT; as a workbook when the bytes look like one)
/// -> map the header -> validate every data row. `crate::phone`'s tests replay the
/// `phone_normalize-*` fixtures.
#[cfg(test)]
pub(crate) mod fuzz_regressions {
    use std::collections::BTreeSet;

    use super::*;
    use crate::mapping::ColumnMap;
    use crate::phone::Region;
    use crate::upload::Channel;
    use crate::validate::{validate_row, RowRules, Verdict};

    const TARGETS: [&str; 2] = ["parse_map_validate", "phone_normalize"];
    const CFB_MAGIC: [u8; 8] = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
    const LIMITS: WorkbookLimits = WorkbookLimits {
        max_uncompressed_bytes: 1 << 20,
        max_ratio: 100,
        max_columns: 64,
        max_unbroken_bytes: 64 * 1024,
    };

    /// `(file name, bytes)` of every fixture of the fuzz target `target`.
    pub(crate) fn fixtures(target: &str) -> Vec<(String, Vec<u8>)> {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/fuzz-regressions"
        );
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut files: Vec<(String, Vec<u8>)> = entries
            .map(|e| e.expect("fixture entry").path())
            .filter_map(|path| {
                let name = path.file_name()?.to_str()?.to_string();
                let rest = name.strip_prefix(target)?.strip_prefix('-')?;
                (!rest.is_empty()).then(|| (name, std::fs::read(&path).expect("fixture")))
            })
            .collect();
        files.sort();
        files
    }

    /// The E.164 shape `fuzz/src/lib.rs` checks.
    pub(crate) fn assert_e164(phone: &str, input: &str) {
        let digits = phone.strip_prefix('+').unwrap_or("");
        assert!(
            (2..=20).contains(&digits.len())
                && !digits.starts_with('0')
                && digits.bytes().all(|b| b.is_ascii_digit())
                && digits.parse::<u64>().is_ok(),
            "not E.164: {phone:?} from {input:?}"
        );
    }

    struct Pipeline {
        columns: Option<ColumnMap>,
        lists: BTreeSet<String>,
        last_line: u64,
        check_lines: bool,
    }

    impl Pipeline {
        fn visit(&mut self, row: RawRow) -> ControlFlow<()> {
            assert!(row.cells.iter().any(|c| !c.trim().is_empty()), "{row:?}");
            if self.check_lines {
                assert!(
                    row.line > self.last_line,
                    "{row:?} after {}",
                    self.last_line
                );
                self.last_line = row.line;
            }
            if row.kind == RowKind::Header {
                assert!(self.columns.is_none(), "second header: {row:?}");
                return match ColumnMap::from_header(&row.cells, &[]) {
                    Ok(map) => {
                        self.columns = Some(map);
                        ControlFlow::Continue(())
                    }
                    Err(_) => ControlFlow::Break(()),
                };
            }
            let columns = self.columns.get_or_insert_with(ColumnMap::phone_only);
            let rules = RowRules {
                columns,
                channel: Channel::Whatsapp,
                default_region: Region::parse("GB"),
                lists: &self.lists,
                tags: &self.lists,
            };
            if let Verdict::Accepted { draft, .. } = validate_row(&row.cells, &rules) {
                assert_e164(&draft.phone, &format!("{:?}", row.cells));
            }
            ControlFlow::Continue(())
        }
    }

    fn pipeline(check_lines: bool) -> Pipeline {
        Pipeline {
            columns: None,
            lists: BTreeSet::new(),
            last_line: 0,
            check_lines,
        }
    }

    /// The body of the `parse_map_validate` fuzz target.
    fn parse_map_validate(data: &[u8]) {
        let workbook = if data.starts_with(b"PK") {
            Some(Format::Xlsx)
        } else if data.starts_with(&CFB_MAGIC) {
            Some(Format::Xls)
        } else {
            None
        };
        if let Some(format) = workbook {
            let options = ReadOptions {
                format,
                delimiter: None,
                sheet: None,
            };
            let mut p = pipeline(false);
            let _ = read_workbook(data.to_vec(), &options, &LIMITS, |row| p.visit(row));
        }
        for format in [Format::Csv, Format::Txt] {
            let options = ReadOptions {
                format,
                delimiter: None,
                sheet: None,
            };
            let mut p = pipeline(true);
            let _ = read_text(data, &options, |row| p.visit(row));
        }
    }

    #[test]
    fn every_fixture_names_its_target() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/fuzz-regressions"
        );
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let name = entry.expect("fixture entry").file_name();
            let name = name.to_string_lossy();
            assert!(
                TARGETS.iter().any(|t| name
                    .strip_prefix(t)
                    .is_some_and(|r| r.len() > 1 && r.starts_with('-'))),
                "{name}: fuzz regression fixtures are named <target>-<short-name>"
            );
        }
    }

    #[test]
    fn parse_map_validate_fixtures_stay_fixed() {
        for (name, bytes) in fixtures("parse_map_validate") {
            let outcome = std::panic::catch_unwind(|| parse_map_validate(&bytes));
            assert!(
                outcome.is_ok(),
                "{name} broke parse -> map -> validate again"
            );
        }
    }
}
