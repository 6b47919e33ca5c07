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

#[cfg(test)]
mod tests {
    use super::*;

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
}
