//! One row in, one verdict out: the phone rules decide whether the row is taken; every
//! other field is checked on its own and, when bad, dropped with a warning
//! (DESIGN sections 6-8).

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, Utc};
use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};

use crate::domain::contact::ContactDraft;
use crate::domain::field::Field;
use crate::domain::mapping::{ColumnMap, Target, Unused};
use crate::domain::phone::{self, PhoneContext, PhoneRejection, Region};
use crate::domain::text::{clean_value, split_multi, truncate_chars};
use crate::domain::upload::Channel;

/// Longest custom attribute value we store.
pub const MAX_ATTR_CHARS: usize = 1024;
/// Longest custom attribute name we store.
pub const MAX_ATTR_NAME_CHARS: usize = 100;
/// Most list or tag values one row can add.
pub const MAX_MULTI_VALUES: usize = 50;

/// A warning about a non-key field: the field is dropped, the row imported.
#[derive(
    Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum WarningCode {
    /// A name with characters a name cannot hold.
    InvalidName,
    /// Not an e-mail address.
    InvalidEmail,
    /// Longer than the field allows.
    FieldTooLong,
    /// Not a date.
    InvalidDate,
    /// Not a yes/no value.
    InvalidBoolean,
    /// More cells than the header has titles.
    ExtraCells,
    /// A value in a column with no title.
    UntitledColumn,
    /// A value in a column whose title repeats an earlier one.
    DuplicateHeader,
}

impl WarningCode {
    /// The documented code.
    pub fn code(self) -> &'static str {
        match self {
            WarningCode::InvalidName => "invalid_name",
            WarningCode::InvalidEmail => "invalid_email",
            WarningCode::FieldTooLong => "field_too_long",
            WarningCode::InvalidDate => "invalid_date",
            WarningCode::InvalidBoolean => "invalid_boolean",
            WarningCode::ExtraCells => "extra_cells",
            WarningCode::UntitledColumn => "untitled_column",
            WarningCode::DuplicateHeader => "duplicate_header",
        }
    }
}

/// The code of a problem on one row: rows.csv's `code` column.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum ProblemCode {
    /// The row was rejected for this reason.
    Rejected(PhoneRejection),
    /// A field was dropped, or cells ignored.
    Warning(WarningCode),
    /// The same number came earlier in the file.
    DuplicateInFile,
}

impl ProblemCode {
    /// The documented code.
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemCode::Rejected(reason) => reason.code(),
            ProblemCode::Warning(warning) => warning.code(),
            ProblemCode::DuplicateInFile => "duplicate_in_file",
        }
    }

    /// The rejection reason, when the row was rejected.
    pub fn rejection(self) -> Option<PhoneRejection> {
        match self {
            ProblemCode::Rejected(reason) => Some(reason),
            _ => None,
        }
    }

    /// The warning, when a field was dropped.
    pub fn warning(self) -> Option<WarningCode> {
        match self {
            ProblemCode::Warning(code) => Some(code),
            _ => None,
        }
    }
}

/// A problem on one row, with the column it is in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Reason or warning code.
    pub code: ProblemCode,
    /// Column title.
    pub column: String,
    /// What is wrong, for a person.
    pub message: String,
}

/// What became of a row before anything is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The row yields a contact; `warnings` name fields that were dropped.
    Accepted {
        /// The contact's details.
        draft: ContactDraft,
        /// Dropped fields and ignored cells.
        warnings: Vec<Problem>,
    },
    /// The key field is unusable.
    Rejected {
        /// The rejection reason.
        reason: PhoneRejection,
        /// With its column and message.
        problem: Problem,
    },
}

/// Everything a row is validated against.
#[derive(Clone, Debug)]
pub struct RowRules<'a> {
    /// Column mapping of the file.
    pub columns: &'a ColumnMap,
    /// Channel of the upload.
    pub channel: Channel,
    /// Region for national numbers.
    pub default_region: Option<Region>,
    /// Lists every row joins.
    pub lists: &'a BTreeSet<String>,
    /// Tags every row gets.
    pub tags: &'a BTreeSet<String>,
}

/// Validates one data row.
pub fn validate_row(cells: &[String], rules: &RowRules<'_>) -> Verdict {
    let cell = |field: Field| {
        rules
            .columns
            .index_of(field)
            .and_then(|i| cells.get(i))
            .map(String::as_str)
    };
    let raw_phone = cell(Field::Phone).unwrap_or("");
    let country_code = cell(Field::CountryCode);
    let ctx = PhoneContext {
        default_region: rules.default_region,
        channel: rules.channel,
    };
    let phone = match phone::normalize(raw_phone, country_code, ctx) {
        Ok(phone) => phone,
        Err(reason) => {
            let column = match reason {
                PhoneRejection::InvalidCountryCode => rules.columns.title_of(Field::CountryCode),
                _ => rules.columns.title_of(Field::Phone),
            };
            let shown = truncate_chars(raw_phone.trim(), 40);
            let message = if shown.is_empty() {
                reason.to_string()
            } else {
                format!("{reason}: {shown:?}")
            };
            return Verdict::Rejected {
                reason,
                problem: Problem {
                    code: ProblemCode::Rejected(reason),
                    column: column.to_string(),
                    message,
                },
            };
        }
    };

    let mut draft = ContactDraft {
        phone,
        lists: rules.lists.clone(),
        tags: rules.tags.clone(),
        ..Default::default()
    };
    let mut warnings = Vec::new();
    for column in &rules.columns.columns {
        let raw = cells.get(column.index).map(String::as_str).unwrap_or("");
        let value = clean_value(raw);
        if value.is_empty() {
            continue;
        }
        let warn = |code: WarningCode, message: String| Problem {
            code: ProblemCode::Warning(code),
            column: column.title.clone(),
            message,
        };
        match (&column.target, column.unused) {
            (_, Some(Unused::Untitled)) => warnings.push(warn(
                WarningCode::UntitledColumn,
                format!(
                    "{} has a value but no title; the value was not imported",
                    column.title
                ),
            )),
            (_, Some(Unused::DuplicateHeader)) => warnings.push(warn(
                WarningCode::DuplicateHeader,
                format!(
                    "column {} repeats the title {:?}; only the first such column was imported",
                    column.index + 1,
                    column.title
                ),
            )),
            (Some(Target::Field(field)), None) => {
                if let Err((code, message)) = apply_field(&mut draft, *field, &value, rules) {
                    warnings.push(warn(code, message));
                }
            }
            (Some(Target::Attr(name)), None) => {
                if value.chars().count() > MAX_ATTR_CHARS {
                    warnings.push(warn(
                        WarningCode::FieldTooLong,
                        format!("longer than {MAX_ATTR_CHARS} characters"),
                    ));
                } else if draft.attrs.len() >= crate::domain::contact::MAX_STORED_ATTRS {
                    // A contact item must stay well under DynamoDB's 400 KB.
                    warnings.push(warn(
                        WarningCode::FieldTooLong,
                        format!(
                            "a contact holds at most {} custom attributes; this column was not imported",
                            crate::domain::contact::MAX_STORED_ATTRS
                        ),
                    ));
                } else {
                    let name = truncate_chars(name, MAX_ATTR_NAME_CHARS).to_string();
                    let value = normalize_attr_value(&value);
                    if crate::domain::contact::attrs_bytes(&draft.attrs) + name.len() + value.len()
                        > crate::domain::contact::MAX_ATTRS_BYTES
                    {
                        warnings.push(warn(
                            WarningCode::FieldTooLong,
                            format!(
                                "a contact's custom attributes hold at most {} KB together; this column was not imported",
                                crate::domain::contact::MAX_ATTRS_BYTES / 1024
                            ),
                        ));
                    } else {
                        draft.attrs.insert(name, value);
                    }
                }
            }
            (Some(Target::Ignore), None) | (None, None) => {}
        }
    }
    let header_len = rules.columns.header.len();
    if cells.len() > header_len
        && cells[header_len..]
            .iter()
            .any(|c| !clean_value(c).is_empty())
    {
        warnings.push(Problem {
            code: ProblemCode::Warning(WarningCode::ExtraCells),
            column: format!("column {}", header_len + 1),
            message: format!(
                "the row has {} cells but the header only {} titles; the extra cells were ignored",
                cells.len(),
                header_len
            ),
        });
    }
    if !draft.text.contains_key("name") {
        let full: Vec<&str> = ["first_name", "last_name"]
            .iter()
            .filter_map(|f| draft.text.get(f).map(String::as_str))
            .collect();
        if !full.is_empty() {
            let name = full.join(" ");
            if name.chars().count() <= 101 {
                draft.text.insert("name", name);
            }
        }
    }
    Verdict::Accepted { draft, warnings }
}

type FieldError = (WarningCode, String);

fn apply_field(
    draft: &mut ContactDraft,
    field: Field,
    value: &str,
    rules: &RowRules<'_>,
) -> Result<(), FieldError> {
    if let Some(max) = field.max_chars() {
        if matches!(field, Field::Lists | Field::Tags) {
            // Limits apply per value, checked below.
        } else if value.chars().count() > max {
            return Err((
                WarningCode::FieldTooLong,
                format!(
                    "{} is limited to {max} characters; this value has {}",
                    field.name(),
                    value.chars().count()
                ),
            ));
        }
    }
    let text_name = |f: Field| -> &'static str { f.name() };
    match field {
        Field::Phone | Field::CountryCode => {}
        Field::Name | Field::FirstName | Field::MiddleName | Field::LastName => {
            if !is_valid_name(value) {
                return Err((WarningCode::InvalidName, format!("{value:?} holds characters a name cannot have (letters, digits, spaces and ' ’ - . , & only)")));
            }
            draft.text.insert(text_name(field), value.to_string());
        }
        Field::Email => {
            if !is_valid_email(value) {
                return Err((
                    WarningCode::InvalidEmail,
                    format!("{:?} is not an e-mail address", truncate_chars(value, 80)),
                ));
            }
            draft.text.insert("email", value.to_string());
        }
        Field::WhatsappOpted => {
            draft.whatsapp_opted = Some(parse_bool(value).ok_or_else(|| {
                (
                    WarningCode::InvalidBoolean,
                    format!(
                        "{:?} is not one of TRUE/FALSE, yes/no, 1/0",
                        truncate_chars(value, 40)
                    ),
                )
            })?);
        }
        Field::DateOfBirth => {
            let month_first = rules.default_region.is_some_and(|r| r.month_first_dates());
            let date = parse_date(value, month_first).ok_or_else(|| {
                (
                    WarningCode::InvalidDate,
                    format!(
                        "{:?} is not a date (use YYYY-MM-DD)",
                        truncate_chars(value, 40)
                    ),
                )
            })?;
            draft.text.insert("date_of_birth", date);
        }
        Field::Lists | Field::Tags => {
            let values: Vec<String> = split_multi(value).collect();
            if values.len() > MAX_MULTI_VALUES {
                return Err((
                    WarningCode::FieldTooLong,
                    format!("more than {MAX_MULTI_VALUES} values"),
                ));
            }
            if let Some(long) = values.iter().find(|v| v.chars().count() > 100) {
                return Err((
                    WarningCode::FieldTooLong,
                    format!(
                        "{:?}… is longer than 100 characters",
                        truncate_chars(long, 20)
                    ),
                ));
            }
            let set = if field == Field::Lists {
                &mut draft.lists
            } else {
                &mut draft.tags
            };
            set.extend(values);
        }
        Field::Title
        | Field::UserId
        | Field::Reference
        | Field::Company
        | Field::AddressLine1
        | Field::AddressLine2
        | Field::City
        | Field::State
        | Field::Postcode
        | Field::AlternatePhone => {
            draft.text.insert(text_name(field), value.to_string());
        }
    }
    Ok(())
}

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

    fn row(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|c| c.to_string()).collect()
    }

    fn check(header: &[&str], cells: &[&str], region: Option<&str>) -> Verdict {
        let columns = ColumnMap::from_header(&row(header), &[]).expect("header maps");
        let (lists, tags) = (BTreeSet::from(["Imported".to_string()]), BTreeSet::new());
        let rules = RowRules {
            columns: &columns,
            channel: Channel::Whatsapp,
            default_region: region.and_then(Region::parse),
            lists: &lists,
            tags: &tags,
        };
        validate_row(&row(cells), &rules)
    }

    fn accepted(v: Verdict) -> (ContactDraft, Vec<&'static str>) {
        match v {
            Verdict::Accepted { draft, warnings } => {
                (draft, warnings.iter().map(|w| w.code.as_str()).collect())
            }
            Verdict::Rejected { problem, .. } => panic!("rejected: {problem:?}"),
        }
    }

    #[test]
    fn interakt_style_row_with_country_code_and_custom_datetime() {
        let (draft, warnings) = accepted(check(
            &[
                "First Name",
                "Last Name",
                "Country Code",
                "Phone Number",
                "Email",
                "WhatsApp Opted",
                "Signed Up",
            ],
            &[
                "Zoë",
                "O’Brien",
                "+91",
                "98765 43210",
                "zoe@example.com",
                "TRUE",
                "2022-10-31T19:30:00.000+05:30",
            ],
            None,
        ));
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(draft.phone, "+919876543210");
        assert_eq!(
            draft.text.get("name").map(String::as_str),
            Some("Zoë O’Brien")
        );
        assert_eq!(draft.whatsapp_opted, Some(true));
        assert_eq!(
            draft.attrs.get("Signed Up").map(String::as_str),
            Some("2022-10-31T14:00:00Z")
        );
        assert!(draft.lists.contains("Imported"));
    }

    #[test]
    fn bad_non_key_fields_are_dropped_with_warnings() {
        let long_city = "x".repeat(129);
        let (draft, warnings) = accepted(check(
            &["Phone", "Name", "Email", "Opt In", "DOB", "City"],
            &[
                "+447911123456",
                "<script>",
                "not-an-email",
                "maybe",
                "31/02/1990",
                long_city.as_str(),
                "extra",
            ],
            None,
        ));
        assert_eq!(
            warnings,
            [
                "invalid_name",
                "invalid_email",
                "invalid_boolean",
                "invalid_date",
                "field_too_long",
                "extra_cells"
            ]
        );
        assert!(draft.text.is_empty());
    }

    #[test]
    fn rejected_rows_name_reason_and_column() {
        match check(&["Name", "Mobile"], &["Eva", "07911 123456"], None) {
            Verdict::Rejected { reason, problem } => {
                assert_eq!(reason, PhoneRejection::MissingCountryCode);
                assert_eq!(problem.column, "Mobile");
                assert!(problem.message.contains("07911 123456"));
            }
            other => panic!("{other:?}"),
        }
    }

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
