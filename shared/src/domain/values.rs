//! Checks and normalisations of single cell values (names, e-mail addresses, yes/no,
//! dates), kept apart from row validation because event handlers use them too.

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, Utc};
use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};

/// Letters, marks and digits of any script, spaces, and `' ’ - . , &`.
pub fn is_valid_name(value: &str) -> bool {
    value.chars().any(char::is_alphanumeric)
        && value.chars().all(|c| {
            c.is_alphanumeric()
                || c == ' '
                || matches!(c, '\'' | '\u{2019}' | '-' | '.' | ',' | '&')
                || c.general_category_group() == GeneralCategoryGroup::Mark
        })
}

/// A pragmatic address check: one `@`, a local part, a dotted domain, no spaces.
pub fn is_valid_email(value: &str) -> bool {
    let Some((local, domain)) = value.split_once('@') else {
        return false;
    };
    let label_ok = |l: &str| {
        !l.is_empty()
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_alphanumeric() || c == '-')
    };
    !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local.chars().all(|c| {
            !c.is_whitespace()
                && !c.is_control()
                && !matches!(
                    c,
                    '@' | '"' | '(' | ')' | ',' | ':' | ';' | '<' | '>' | '[' | ']' | '\\'
                )
        })
        && domain.contains('.')
        && domain.split('.').all(label_ok)
        && domain
            .rsplit('.')
            .next()
            .is_some_and(|tld| tld.chars().count() >= 2)
}

/// TRUE/FALSE, yes/no, y/n, 1/0, on/off, any case.
pub fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "y" | "1" | "on" | "opted in" | "opted" => Some(true),
        "false" | "no" | "n" | "0" | "off" | "opted out" => Some(false),
        _ => None,
    }
}

/// A date as `YYYY-MM-DD`, from ISO dates and datetimes or `D/M/Y` (`M/D/Y` in
/// month-first regions; either order when one part exceeds 12).
pub fn parse_date(value: &str, month_first: bool) -> Option<String> {
    let v = value.trim();
    if let Some(dt) = parse_iso_datetime(v) {
        return Some(dt.date_naive().format("%Y-%m-%d").to_string());
    }
    for format in [
        "%Y-%m-%d",
        "%Y/%m/%d",
        "%Y.%m.%d",
        "%Y%m%d",
        "%d %B %Y",
        "%d %b %Y",
        "%B %d, %Y",
        "%b %d, %Y",
    ] {
        if let Ok(date) = NaiveDate::parse_from_str(v, format) {
            return plausible(date);
        }
    }
    if let Ok(dt) = NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S") {
        return plausible(dt.date());
    }
    let parts: Vec<&str> = v.split(['/', '-', '.']).collect();
    if let [a, b, y] = parts[..] {
        let (a, b, y): (u32, u32, i32) = (a.parse().ok()?, b.parse().ok()?, y.parse().ok()?);
        if y < 1000 {
            return None;
        }
        let (day, month) = if a > 12 {
            (a, b)
        } else if b > 12 || month_first {
            (b, a)
        } else {
            (a, b)
        };
        return NaiveDate::from_ymd_opt(y, month, day).and_then(plausible);
    }
    None
}

fn plausible(date: NaiveDate) -> Option<String> {
    (1800..=2200)
        .contains(&chrono::Datelike::year(&date))
        .then(|| date.format("%Y-%m-%d").to_string())
}

fn parse_iso_datetime(v: &str) -> Option<DateTime<Utc>> {
    if v.len() < 11
        || !v
            .as_bytes()
            .get(10)
            .is_some_and(|b| *b == b'T' || *b == b't' || *b == b' ')
    {
        return None;
    }
    DateTime::parse_from_rfc3339(v)
        .or_else(|_| DateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
        .map(|dt| dt.with_timezone(&Utc))
}

/// Custom attribute values that are ISO-8601 dates or datetimes are stored normalised:
/// RFC 3339 UTC for datetimes, `YYYY-MM-DD` for dates; anything else as written.
pub fn normalize_attr_value(value: &str) -> String {
    if let Some(dt) = parse_iso_datetime(value) {
        return dt.to_rfc3339_opts(SecondsFormat::AutoSi, true);
    }
    if value.len() == 10 {
        if let Ok(date) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
            return date.format("%Y-%m-%d").to_string();
        }
    }
    value.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_accept_any_script_digits_and_punctuation() {
        for name in [
            "José Núñez",
            "प्रिया शर्मा",
            "Customer 12",
            "Smith & Sons, Ltd.",
            "D’Arcy",
        ] {
            assert!(is_valid_name(name), "{name}");
        }
        for name in ["<b>", "a@b", "☺", "..."] {
            assert!(!is_valid_name(name), "{name}");
        }
    }

    #[test]
    fn emails_and_dates() {
        assert!(is_valid_email("a.b+tag@mail.example.co.uk"));
        for bad in ["a@b", "@x.com", "a b@x.com", "a@@x.com", "a@x..com"] {
            assert!(!is_valid_email(bad), "{bad}");
        }
        assert_eq!(
            parse_date("1990-03-04", false).as_deref(),
            Some("1990-03-04")
        );
        assert_eq!(
            parse_date("04/03/1990", false).as_deref(),
            Some("1990-03-04")
        );
        assert_eq!(
            parse_date("04/03/1990", true).as_deref(),
            Some("1990-04-03")
        );
        assert_eq!(
            parse_date("25/12/1990", true).as_deref(),
            Some("1990-12-25")
        );
        assert_eq!(parse_date("soon", false), None);
        assert_eq!(
            normalize_attr_value("2022-10-31T14:00:00Z"),
            "2022-10-31T14:00:00Z"
        );
        assert_eq!(normalize_attr_value("2022-10-31"), "2022-10-31");
        assert_eq!(normalize_attr_value("Gold"), "Gold");
    }
}
