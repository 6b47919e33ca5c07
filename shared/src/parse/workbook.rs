//! Workbooks (XLSX, XLS, ODS) through calamine, after checking the archive is not a bomb.

use std::io::{Cursor, Read, Seek};
use std::ops::ControlFlow;

use calamine::{Data, DataType, Reader};

use super::{Format, RawRow, ReadOptions, RowKind, SourceError, SourceInfo};

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

pub(crate) fn entry_name<E>(name: Result<std::borrow::Cow<'_, str>, E>, index: usize) -> String {
    name.map_or_else(|_| format!("number {}", index + 1), |n| n.into_owned())
}

/// Inflates one archive entry without keeping it: its real size, refusing it past
/// `budget` bytes or with an unbroken stretch past the limit.
pub(crate) fn scan_entry(
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
    let mut workbook =
        calamine::open_workbook_auto_from_rs(Cursor::new(bytes)).map_err(|e| unreadable(&e))?;
    let candidates = sheet_candidates(workbook.sheet_names(), options.sheet.as_deref())?;
    for name in candidates {
        let mut emitter = RowEmitter {
            visit: &mut visit,
            seen_header: false,
            max_columns: limits.max_columns,
            stopped: false,
        };
        if let calamine::Sheets::Xlsx(xlsx) = &mut workbook {
            // Stream cells: memory stays bounded whatever dimensions the sheet declares.
            stream_xlsx_sheet(xlsx, &name, &mut emitter)?;
        } else {
            read_sheet_range(&mut workbook, &name, &mut emitter)?;
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

fn unreadable(e: &dyn std::fmt::Display) -> SourceError {
    SourceError::Unreadable(format!("the workbook could not be read: {e}"))
}

/// The sheets to try in order: the one the `sheet` option names (exactly, else ignoring
/// case and surrounding spaces), or all of them when it names none.
fn sheet_candidates(names: Vec<String>, wanted: Option<&str>) -> Result<Vec<String>, SourceError> {
    let Some(wanted) = wanted else {
        return Ok(names);
    };
    let found = names.iter().find(|n| n.as_str() == wanted).or_else(|| {
        names
            .iter()
            .find(|n| n.trim().eq_ignore_ascii_case(wanted.trim()))
    });
    match found {
        Some(name) => Ok(vec![name.clone()]),
        None => Err(SourceError::NoSuchSheet {
            requested: wanted.to_string(),
            available: names.join(", "),
        }),
    }
}

/// Emits an XLSX sheet's rows from its cells as they stream: calamine gives cells in
/// row order, so a row is complete when the next row's first cell arrives.
fn stream_xlsx_sheet<RS: Read + Seek, V: FnMut(RawRow) -> ControlFlow<()>>(
    xlsx: &mut calamine::Xlsx<RS>,
    name: &str,
    emitter: &mut RowEmitter<'_, V>,
) -> Result<(), SourceError> {
    let mut cells = xlsx
        .worksheet_cells_reader(name)
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
        if col < emitter.max_columns && !value.is_empty() {
            if row_cells.len() <= col {
                row_cells.resize(col + 1, String::new());
            }
            row_cells[col] = value;
        }
    }
    if let Some((r, cells)) = current.take() {
        emitter.emit(r, cells);
    }
    Ok(())
}

/// Emits the rows of a sheet read whole (XLS, ODS), padded on the left to where the
/// sheet's used range starts so cells keep their column.
fn read_sheet_range<RS: Read + Seek, V: FnMut(RawRow) -> ControlFlow<()>>(
    workbook: &mut calamine::Sheets<RS>,
    name: &str,
    emitter: &mut RowEmitter<'_, V>,
) -> Result<(), SourceError> {
    let range = workbook.worksheet_range(name).map_err(|e| unreadable(&e))?;
    let (start_row, start_col) = range.start().unwrap_or((0, 0));
    for (offset, row) in range.rows().enumerate() {
        let mut cells = vec![String::new(); start_col as usize];
        cells.extend(row.iter().take(emitter.max_columns).map(cell_text));
        emitter.emit(start_row + offset as u32, cells);
        if emitter.stopped {
            break;
        }
    }
    Ok(())
}

pub(crate) struct RowEmitter<'v, V: FnMut(RawRow) -> ControlFlow<()>> {
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
