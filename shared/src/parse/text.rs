//! CSV and TXT uploads, streamed: encoding and delimiter sniffed from the first 64 KB,
//! every row reported with the file line it starts on.

use std::io::{Cursor, Read};
use std::ops::ControlFlow;

use encoding_rs_io::DecodeReaderBytesBuilder;

use super::encoding::{decode_cell, decode_sample, detect_encoding, looks_binary, TextEncoding};
use super::sniff::{first_line_is_table_header, sniff_delimiter};
use super::{Format, RawRow, ReadOptions, RowKind, SourceError, SourceInfo};

pub(crate) const SAMPLE_BYTES: usize = 64 * 1024;

/// Reads a text upload (CSV or TXT) from a blocking reader, row by row.
pub fn read_text<R: Read>(
    mut input: R,
    options: &ReadOptions,
    mut visit: impl FnMut(RawRow) -> ControlFlow<()>,
) -> Result<SourceInfo, SourceError> {
    let sample = read_sample(&mut input)?;
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
    // The sample was consumed for sniffing: put it back in front of the rest.
    let stream = decoded_stream(Cursor::new(sample).chain(input), encoding)?;
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
    // A pasted list has no header: every row is data.
    visit_records(&mut reader, &lines, list_mode, &mut visit)?;
    Ok(SourceInfo {
        encoding: Some(encoding.name()),
        delimiter: (!list_mode).then_some(delimiter as char),
        sheet: None,
    })
}

/// The first [`SAMPLE_BYTES`] of the upload, from which encoding and delimiter are sniffed.
fn read_sample(input: &mut impl Read) -> Result<Vec<u8>, SourceError> {
    let mut sample = Vec::with_capacity(SAMPLE_BYTES);
    input
        .take(SAMPLE_BYTES as u64)
        .read_to_end(&mut sample)
        .map_err(|e| SourceError::Unreadable(format!("the file could not be read: {e}")))?;
    Ok(sample)
}

/// The upload as UTF-8 bytes for csv: UTF-8 passes through without its BOM, anything
/// else is decoded as it streams.
fn decoded_stream<'a>(
    mut stream: impl Read + 'a,
    encoding: TextEncoding,
) -> Result<Box<dyn Read + 'a>, SourceError> {
    Ok(match encoding {
        TextEncoding::Utf8 { bom } => {
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
    })
}

/// Pushes every non-blank record to `visit`, the first as the header unless
/// `header_seen`, until the input ends or `visit` breaks.
fn visit_records<R: Read>(
    reader: &mut csv::Reader<R>,
    lines: &LineCounter,
    mut header_seen: bool,
    visit: &mut impl FnMut(RawRow) -> ControlFlow<()>,
) -> Result<(), SourceError> {
    let mut record = csv::ByteRecord::new();
    while reader.read_byte_record(&mut record).map_err(read_error)? {
        let cells: Vec<String> = record.iter().map(decode_cell).collect();
        if cells.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let line = record.position().map_or(0, |p| lines.line_at(p.byte()));
        let kind = if header_seen {
            RowKind::Data
        } else {
            RowKind::Header
        };
        header_seen = true;
        if visit(RawRow { line, cells, kind }).is_break() {
            break;
        }
    }
    Ok(())
}

/// A csv error, with the line it happened on when csv knows it.
fn read_error(e: csv::Error) -> SourceError {
    SourceError::Unreadable(match e.position() {
        Some(pos) => format!("the file could not be read at line {}: {}", pos.line(), e),
        None => format!("the file could not be read: {e}"),
    })
}

/// Line terminators seen by [`CountingReader`] but not yet attributed to a record.
/// csv reports where a record's read began (just after the previous record's first
/// terminator byte), not its first line, so blank lines and `\r\n` are counted here.
#[derive(Clone, Default)]
pub(crate) struct LineCounter(std::rc::Rc<std::cell::RefCell<LineState>>);

#[derive(Default)]
pub(crate) struct LineState {
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

pub(crate) struct CountingReader<R> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::encoding::*;
    use crate::parse::{cell_text, check_archive, WorkbookLimits};
    use calamine::Data;

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
