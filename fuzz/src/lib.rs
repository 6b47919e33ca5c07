//! The bodies of the fuzz targets, shared by the libFuzzer binaries in `fuzz_targets/`.
//!
//! Every input goes down the same path an upload takes in `contacts::import`:
//! parse (text as CSV and as TXT; workbooks when the bytes look like one) -> map the
//! header row -> validate each data row. Errors are fine (garbage is refused); panics,
//! hangs, runaway memory and broken invariants are bugs.
//!
//! `shared/src/source.rs` (`fuzz_regressions` tests) replays
//! `tests/fixtures/fuzz-regressions/parse_map_validate-*` through the same path, and
//! `shared/src/phone.rs` replays `phone_normalize-*`; keep them in step with this file.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use contacts::mapping::ColumnMap;
use contacts::phone::{normalize, PhoneContext, Region};
use contacts::source::{
    read_text, read_workbook, Format, RawRow, ReadOptions, RowKind, WorkbookLimits,
};
use contacts::upload::Channel;
use contacts::validate::{validate_row, RowRules, Verdict};

/// First bytes of an OLE compound file (Excel 97-2003 `.xls`).
const CFB_MAGIC: [u8; 8] = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];

/// Small limits so a fuzzed archive cannot make calamine inflate much.
pub const FUZZ_LIMITS: WorkbookLimits = WorkbookLimits {
    max_uncompressed_bytes: 1 << 20,
    max_ratio: 100,
    max_columns: 64,
    max_unbroken_bytes: 64 * 1024,
};

/// Asserts that `phone` is what the phone library formats as E.164: `+`, a digit other
/// than 0, then digits; at most 3 (country code) + 17 (national number) digits, which
/// always fits the `u64` that `contacts::import` keys in-file duplicates by. (E.164 itself
/// caps numbers at 15 digits, but libphonenumber's metadata accepts longer ones, such
/// as 17-digit German fixed lines; see the fuzzing report.)
fn assert_e164(phone: &str, input: &str) {
    let digits = phone.strip_prefix('+').unwrap_or("");
    assert!(
        (2..=20).contains(&digits.len())
            && !digits.starts_with('0')
            && digits.bytes().all(|b| b.is_ascii_digit())
            && digits.parse::<u64>().is_ok(),
        "not E.164: {phone:?} from {input:?}"
    );
}

/// What `contacts::import`'s row parser does with each row: the header row is mapped
/// (a mapping failure ends the file), a headerless list gets the phone-only mapping,
/// and every data row is validated.
struct Pipeline {
    columns: Option<ColumnMap>,
    lists: BTreeSet<String>,
    tags: BTreeSet<String>,
    region: Option<Region>,
    last_line: u64,
    check_lines: bool,
}

impl Pipeline {
    fn new(check_lines: bool) -> Pipeline {
        Pipeline {
            columns: None,
            lists: BTreeSet::new(),
            tags: BTreeSet::new(),
            region: Region::parse("GB"),
            last_line: 0,
            check_lines,
        }
    }

    fn visit(&mut self, row: RawRow) -> ControlFlow<()> {
        assert!(
            row.cells.iter().any(|c| !c.trim().is_empty()),
            "blank row emitted: {row:?}"
        );
        if self.check_lines {
            // Text rows start on later and later lines, from 1.
            assert!(
                row.line > self.last_line,
                "line {} after line {}",
                row.line,
                self.last_line
            );
            self.last_line = row.line;
        }
        if row.kind == RowKind::Header {
            assert!(self.columns.is_none(), "second header row: {row:?}");
            match ColumnMap::from_header(&row.cells, &[]) {
                Ok(map) => {
                    self.columns = Some(map);
                    return ControlFlow::Continue(());
                }
                Err(_) => return ControlFlow::Break(()),
            }
        }
        let columns = self.columns.get_or_insert_with(ColumnMap::phone_only);
        let rules = RowRules {
            columns,
            channel: Channel::Whatsapp,
            default_region: self.region,
            lists: &self.lists,
            tags: &self.tags,
        };
        if let Verdict::Accepted { draft, .. } = validate_row(&row.cells, &rules) {
            assert_e164(&draft.phone, &format!("{:?}", row.cells));
        }
        ControlFlow::Continue(())
    }
}

/// parse -> map -> validate over arbitrary bytes.
pub fn parse_map_validate(data: &[u8]) {
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
        let mut pipeline = Pipeline::new(false);
        let _ = read_workbook(data.to_vec(), &options, &FUZZ_LIMITS, |row| {
            pipeline.visit(row)
        });
    }
    for format in [Format::Csv, Format::Txt] {
        let options = ReadOptions {
            format,
            delimiter: None,
            sheet: None,
        };
        let mut pipeline = Pipeline::new(true);
        let _ = read_text(data, &options, |row| pipeline.visit(row));
    }
}

/// Splits a phone input: the cell, then an optional country code cell after the first
/// line feed. Lossy UTF-8, so any bytes are an input.
pub fn phone_cells(data: &[u8]) -> (String, Option<String>) {
    let text = String::from_utf8_lossy(data);
    match text.split_once('\n') {
        Some((raw, code)) => (raw.to_string(), Some(code.to_string())),
        None => (text.into_owned(), None),
    }
}

/// `contacts::phone::normalize` over an arbitrary cell (and country code cell): the
/// result is E.164, and normalising it again gives it back.
pub fn phone_normalize(data: &[u8]) {
    let (raw, code) = phone_cells(data);
    let gb = Region::parse("GB");
    for (default_region, channel) in [
        (gb, Channel::Whatsapp),
        (None, Channel::Whatsapp),
        (gb, Channel::Voice),
    ] {
        let ctx = PhoneContext {
            default_region,
            channel,
        };
        if let Ok(e164) = normalize(&raw, code.as_deref(), ctx) {
            assert_e164(&e164, &raw);
            assert_eq!(
                normalize(&e164, None, ctx).as_deref(),
                Ok(e164.as_str()),
                "E.164 output does not normalise to itself (input {raw:?}, code {code:?})"
            );
        }
    }
}
