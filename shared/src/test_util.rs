//! What the fuzz targets run and the regression tests replay: one pipeline, used by
//! `fuzz/` (through the `test-util` feature) and by this crate's tests of
//! `tests/fixtures/fuzz-regressions/*`.
//!
//! Every input goes down the path an upload takes in [`crate::import`]: parse (text as
//! CSV and as TXT; workbooks when the bytes look like one) -> map the header row ->
//! validate each data row. Errors are fine (garbage is refused); panics, hangs, runaway
//! memory and broken invariants are bugs.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use crate::domain::channel::Channel;
use crate::domain::mapping::ColumnMap;
use crate::domain::phone::{normalize, PhoneContext, Region};
use crate::domain::validate::{validate_row, RowRules, Verdict};
use crate::parse::{read_rows, Body, Format, RawRow, ReadOptions, RowKind, WorkbookLimits};

/// First bytes of an OLE compound file (Excel 97-2003 `.xls`).
const CFB_MAGIC: [u8; 8] = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];

/// The fuzz targets, by name: fixtures are named `<target>-<short-name>`.
pub const TARGETS: [&str; 2] = ["parse_map_validate", "phone_normalize"];

/// Small limits so a fuzzed archive cannot make calamine inflate much.
pub const FUZZ_LIMITS: WorkbookLimits = WorkbookLimits {
    max_uncompressed_bytes: 1 << 20,
    max_ratio: 100,
    max_columns: 64,
    max_unbroken_bytes: 64 * 1024,
};

/// Asserts that `phone` is what the phone library formats as E.164: `+`, a digit other
/// than 0, then digits; at most 3 (country code) + 17 (national number) digits, which
/// always fits the `u64` the import keys in-file duplicates by.
pub fn assert_e164(phone: &str, input: &str) {
    let digits = phone.strip_prefix('+').unwrap_or("");
    assert!(
        (2..=20).contains(&digits.len())
            && !digits.starts_with('0')
            && digits.bytes().all(|b| b.is_ascii_digit())
            && digits.parse::<u64>().is_ok(),
        "not E.164: {phone:?} from {input:?}"
    );
}

/// What the import's row parser does with each row: the header row is mapped (a
/// mapping failure ends the file), a headerless list gets the phone-only mapping, and
/// every data row is validated.
struct Pipeline {
    columns: Option<ColumnMap>,
    lists: BTreeSet<String>,
    region: Option<Region>,
    last_line: u64,
    check_lines: bool,
}

impl Pipeline {
    fn new(check_lines: bool) -> Pipeline {
        Pipeline {
            columns: None,
            lists: BTreeSet::new(),
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
                "line {} after {}",
                row.line,
                self.last_line
            );
            self.last_line = row.line;
        }
        if row.kind == RowKind::Header {
            assert!(self.columns.is_none(), "second header row: {row:?}");
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
            default_region: self.region,
            lists: &self.lists,
            tags: &self.lists,
            blanks: crate::domain::options::Blanks::Keep,
        };
        if let Verdict::Accepted { draft, .. } = validate_row(&row.cells, &rules) {
            // A WhatsApp row without a phone may be keyed by its user id, never a number.
            match draft
                .phone
                .strip_prefix(crate::domain::whatsapp::BSUID_KEY_PREFIX)
            {
                Some(user_id) => assert!(
                    crate::domain::whatsapp::is_bsuid(user_id),
                    "not a BSUID key: {:?} from {:?}",
                    draft.phone,
                    row.cells
                ),
                None => assert_e164(&draft.phone, &format!("{:?}", row.cells)),
            }
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
    let formats = workbook.into_iter().chain([Format::Csv, Format::Txt]);
    for format in formats {
        let options = ReadOptions {
            format,
            delimiter: None,
            sheet: None,
        };
        let mut pipeline = Pipeline::new(!format.is_workbook());
        let body: Body<&[u8]> = Body::Bytes(data.to_vec());
        let _ = read_rows(body, &options, &FUZZ_LIMITS, |row| pipeline.visit(row));
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

/// Phone normalisation over an arbitrary cell (and country code cell): the result is
/// E.164, and normalising it again gives it back.
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

/// `(file name, bytes)` of every regression fixture of the fuzz target `target`.
pub fn fixtures(target: &str) -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/fuzz-regressions"
    );
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_string)
        else {
            continue;
        };
        let ours = name
            .strip_prefix(target)
            .and_then(|r| r.strip_prefix('-'))
            .is_some_and(|r| !r.is_empty());
        if ours {
            files.push((name, std::fs::read(&path)?));
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replay(target: &str, run: fn(&[u8])) {
        let files = fixtures(target).expect("fixtures readable");
        assert!(!files.is_empty(), "no {target} fixtures found");
        for (name, bytes) in files {
            let outcome = std::panic::catch_unwind(|| run(&bytes));
            assert!(outcome.is_ok(), "{name} broke {target} again");
        }
    }

    #[test]
    fn parse_map_validate_fixtures_stay_fixed() {
        replay("parse_map_validate", parse_map_validate);
    }

    #[test]
    fn phone_normalize_fixtures_stay_fixed() {
        replay("phone_normalize", phone_normalize);
    }

    #[test]
    fn every_fixture_names_its_target() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/fuzz-regressions"
        );
        for entry in std::fs::read_dir(dir).expect("fixture dir") {
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
}
