//! Text cleaning shared by headers, cells and event fields.

/// Characters that are invisible but break comparisons: zero-width space, joiners,
/// word joiner and the byte-order mark.
const INVISIBLE: [char; 5] = ['\u{200B}', '\u{200C}', '\u{200D}', '\u{2060}', '\u{FEFF}'];

/// Normalises a column title for matching: case, whitespace, a BOM, invisible
/// characters and `_ - .` are removed, so `Phone_Number`, `phoneNumber` and
/// `phone number` compare equal.
pub fn header_key(title: &str) -> String {
    title
        .chars()
        .filter(|c| !c.is_whitespace() && !INVISIBLE.contains(c) && !matches!(c, '_' | '-' | '.'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Removes control characters (C0, DEL, C1) and invisible characters, and trims
/// surrounding whitespace. Tabs and line breaks inside a value become spaces, because a
/// stored name or address is one line.
pub fn clean_value(value: &str) -> String {
    // Most cells are printable ASCII: only the surrounding spaces can go.
    if value.bytes().all(|b| (b' '..=b'~').contains(&b)) {
        return value.trim_matches(' ').to_string();
    }
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '\t' | '\n' | '\r') {
            out.push(' ');
        } else if !c.is_control() && !INVISIBLE.contains(&c) {
            out.push(c);
        }
    }
    let trimmed = out.trim();
    if trimmed.len() == out.len() {
        out
    } else {
        trimmed.to_string()
    }
}

/// Truncates to at most `max` characters (not bytes), for strings from outside that are
/// only logged or echoed back.
pub fn truncate_chars(value: &str, max: usize) -> &str {
    match value.char_indices().nth(max) {
        Some((idx, _)) => &value[..idx],
        None => value,
    }
}

/// Masks a phone number to its last four digits for logs: `+447911123456` becomes
/// `+44******3456`.
pub fn mask_phone(e164: &str) -> String {
    let chars: Vec<char> = e164.chars().collect();
    if chars.len() <= 7 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 7))
}

/// Splits a multi-value cell (lists, tags) on `;` or `|`, trimming and dropping blanks.
pub fn split_multi(value: &str) -> impl Iterator<Item = String> + '_ {
    value
        .split([';', '|'])
        .map(clean_value)
        .filter(|v| !v.is_empty())
}

/// Splits a comma-separated option value (lists and tags metadata).
pub fn split_commas(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(clean_value)
        .filter(|v| !v.is_empty())
        .collect()
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

/// Whether a cleaned cell carries the spreadsheet escape: a `'` before what would
/// otherwise start a formula (`= + - @`, possibly after more `'`).
fn has_formula_escape(value: &str) -> bool {
    value.strip_prefix('\'').is_some_and(|rest| {
        rest.trim_start_matches('\'')
            .starts_with(['=', '+', '-', '@'])
    })
}

/// Reads the spreadsheet escape an export (or rows.csv) put on a cell: one leading `'`
/// before `= + - @` is dropped, so `'=SUM(A1)` imports as `=SUM(A1)` (DESIGN section 14).
pub fn drop_formula_escape(value: String) -> String {
    if has_formula_escape(&value) {
        value[1..].to_string()
    } else {
        value
    }
}

/// The cell [`spreadsheet_safe`] was given, from what it wrote: rows.csv's lines read
/// back (a resumed import's sample of rejected rows for report.html). One case cannot be
/// told apart: a cell that itself began with `'` before `= + - @` reads back without it.
pub fn undo_spreadsheet_safe(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if spreadsheet_safe(rest) == cell => rest,
        _ => cell,
    }
}

/// [`spreadsheet_safe`] for a file that is read back by an import: a value the import
/// would take for an escaped one (`'=x`, stored as such) gets one more `'` too, so
/// [`drop_formula_escape`] gives back exactly the stored value.
pub fn export_safe(cell: &str) -> std::borrow::Cow<'_, str> {
    if has_formula_escape(cell) {
        std::borrow::Cow::Owned(format!("'{cell}"))
    } else {
        spreadsheet_safe(cell)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreadsheet_safe_cells_read_back_as_they_were() {
        for cell in [
            "=cmd()",
            "'=x",
            "+447911123456",
            "+cmd",
            "-2+3",
            "@SUM(A1)",
            "\tx",
            "Eva",
            "'",
            "",
        ] {
            let safe = spreadsheet_safe(cell);
            let back = undo_spreadsheet_safe(&safe);
            if cell == "'=x" {
                assert_eq!(back, "=x", "the one ambiguous case");
            } else {
                assert_eq!(back, cell);
            }
        }
    }

    #[test]
    fn header_keys_ignore_case_spacing_bom_and_separators() {
        for title in [
            "Phone_Number",
            "phoneNumber",
            "phone number",
            "\u{FEFF}PHONE-NUMBER",
            " Phone.Number ",
        ] {
            assert_eq!(header_key(title), "phonenumber", "{title}");
        }
    }

    #[test]
    fn clean_value_strips_controls_and_keeps_accents() {
        assert_eq!(clean_value("  Zo\u{0000}ë\u{200B} Müller\t"), "Zoë Müller");
        assert_eq!(clean_value("a\r\nb"), "a  b");
    }

    #[test]
    fn masks_all_but_last_four_digits() {
        assert_eq!(mask_phone("+447911123456"), "+44******3456");
        assert_eq!(mask_phone("+1234"), "*****");
    }

    #[test]
    fn multi_values_split_on_semicolon_and_pipe() {
        let values: Vec<String> = split_multi(" VIP; Leads |  ;x").collect();
        assert_eq!(values, ["VIP", "Leads", "x"]);
    }

    #[test]
    fn truncation_counts_characters() {
        assert_eq!(truncate_chars("héllo", 2), "hé");
        assert_eq!(truncate_chars("hi", 5), "hi");
    }
    #[test]
    fn the_formula_escape_round_trips_through_an_export_and_an_import() {
        // GIVEN stored values, some of which look like formulas or like escaped ones
        for stored in [
            "=SUM(A1)",
            "+cmd",
            "-2+3",
            "@x",
            "'=x",
            "''+y",
            "'plain",
            "Eva",
            "-20",
            "+447911123456",
            "it's",
            "'",
        ] {
            // WHEN a value is written by the export and read by the import
            let cell = export_safe(stored);
            let read = drop_formula_escape(clean_value(&cell));

            // THEN the import reads back the stored value, and no formula is left
            assert_eq!(read, stored, "{stored:?} exported as {cell:?}");
            assert!(
                !cell.starts_with(['=', '@']) && (!cell.starts_with(['+', '-']) || cell == stored),
                "{cell:?}"
            );
        }
        // A `'` that escapes nothing is data and stays.
        assert_eq!(drop_formula_escape("'plain".into()), "'plain");
        assert_eq!(drop_formula_escape("'+44".into()), "+44");
    }
}
