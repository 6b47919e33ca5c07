//! One row in, one verdict out: the phone rules decide whether the row is taken; every
//! other field is checked on its own and, when bad, dropped with a warning
//! (DESIGN sections 6-8).

use std::collections::BTreeSet;

use crate::domain::channel::Channel;
use crate::domain::cleaning::{clean_value, drop_formula_escape, split_multi, truncate_chars};
use crate::domain::contact::{
    attrs_bytes, ContactDraft, MAX_ATTRS_BYTES, MAX_STORED_ATTRS, TEXT_FIELDS,
};
use crate::domain::field::Field;
use crate::domain::mapping::{Column, ColumnMap, Target, Unused};
use crate::domain::options::Blanks;
use crate::domain::phone::{self, PhoneContext, PhoneRejection, Region};
use crate::domain::whatsapp::{bsuid_key, is_bsuid};

// Value checks live in `values`; re-exported so `domain::validate::is_valid_name` and
// friends keep working for existing callers.
pub use crate::domain::values::{
    is_valid_email, is_valid_name, normalize_attr_value, parse_bool, parse_date,
};

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
    /// The WhatsApp User ID column of a row keyed by its phone holds something that is
    /// not a business-scoped user id: the value is dropped.
    InvalidUserId,
    /// The row says opted in, but the person opted out themselves (DESIGN section 13):
    /// the contact stays opted out; the rest of the row is saved.
    ConsentKeptOptedOut,
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
            WarningCode::InvalidUserId => "invalid_user_id",
            WarningCode::ConsentKeptOptedOut => "consent_kept_opted_out",
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
    /// No contact has the row's number, and `on-new=skip` creates none.
    SkippedNew,
}

impl ProblemCode {
    /// The documented code.
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemCode::Rejected(reason) => reason.code(),
            ProblemCode::Warning(warning) => warning.code(),
            ProblemCode::DuplicateInFile => "duplicate_in_file",
            ProblemCode::SkippedNew => "skipped_new",
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

/// What rows.csv says of a row `on-new=skip` left out: no contact has its number.
/// `column` is the title of the file's phone column.
pub fn skipped_new(column: &str) -> Problem {
    Problem {
        code: ProblemCode::SkippedNew,
        column: column.to_string(),
        message: "no contact has this number and the upload said on-new=skip: \
                  nobody was created (upload it without that option to add the person)"
            .to_string(),
    }
}

/// The warning of a row whose opt-in was refused when it was saved: the person's own
/// opt-out stands. `column` is the title of the file's WhatsApp-opted column.
pub fn consent_kept_opted_out(column: &str) -> Problem {
    Problem {
        code: ProblemCode::Warning(WarningCode::ConsentKeptOptedOut),
        column: column.to_string(),
        // No `,` or `;`: rows.csv joins several messages with `; `.
        message: "the person opted out of marketing messages themselves (an SMS STOP or \
                  WhatsApp's own setting) and only they can opt back in: the contact stays \
                  opted out and the rest of the row was saved"
            .to_string(),
    }
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
    /// What a blank cell does (`blanks`).
    pub blanks: Blanks,
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
        // Looked at only when the phone is blank, so rows with a number pay nothing
        // for the column.
        Err(PhoneRejection::Missing) if rules.channel == Channel::Whatsapp => {
            match whatsapp_user_key(cells, rules.columns) {
                Ok(Some(key)) => key,
                Ok(None) => return rejected(PhoneRejection::Missing, rules.columns),
                Err(problem) => {
                    let reason = PhoneRejection::InvalidUserId;
                    return Verdict::Rejected { reason, problem };
                }
            }
        }
        Err(reason) => return rejected(reason, rules.columns),
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
        // An export (and rows.csv) escapes cells a spreadsheet would run as formulas.
        let value = drop_formula_escape(clean_value(raw));
        if value.is_empty() {
            // A short row has no cell here at all: that is no blank, and clears nothing.
            if rules.blanks == Blanks::Clear && column.index < cells.len() {
                mark_cleared(&mut draft, column, rules.channel);
            }
            continue;
        }
        if let Err((code, message)) = apply_column(&mut draft, column, &value, rules) {
            warnings.push(Problem {
                code: ProblemCode::Warning(code),
                column: column.title.clone(),
                message,
            });
        }
    }
    warnings.extend(extra_cells_warning(cells, rules.columns.header.len()));
    fill_name_from_parts(&mut draft);
    // A name made of first and last names is a value, not a blank.
    let text = &draft.text;
    draft.clear.retain(|field| !text.contains_key(field));
    Verdict::Accepted { draft, warnings }
}

/// The verdict for a row whose phone (or country code) is unusable, naming the column
/// the uploader has to fix. The message never repeats the number (DESIGN 12): the
/// row's own cells follow it in rows.csv.
fn rejected(reason: PhoneRejection, columns: &ColumnMap) -> Verdict {
    let column = match reason {
        PhoneRejection::InvalidCountryCode => columns.title_of(Field::CountryCode),
        _ => columns.title_of(Field::Phone),
    };
    Verdict::Rejected {
        reason,
        problem: Problem {
            code: ProblemCode::Rejected(reason),
            column: column.to_string(),
            message: reason.to_string(),
        },
    }
}

/// The key of a WhatsApp row without a phone: `bsuid:{user_id}` when its WhatsApp User
/// ID column holds a business-scoped user id (DESIGN section 13; never read as a
/// number); `None` when that cell is blank or the file has no such column (the row
/// misses its phone); the `invalid_user_id` problem when it holds something else.
fn whatsapp_user_key(cells: &[String], columns: &ColumnMap) -> Result<Option<String>, Problem> {
    let raw = columns
        .index_of(Field::WhatsappUserId)
        .and_then(|i| cells.get(i))
        .map_or("", String::as_str);
    let user_id = drop_formula_escape(clean_value(raw));
    if user_id.is_empty() {
        return Ok(None);
    }
    if is_bsuid(&user_id) {
        return Ok(Some(bsuid_key(&user_id)));
    }
    let reason = PhoneRejection::InvalidUserId;
    Err(Problem {
        code: ProblemCode::Rejected(reason),
        column: columns.title_of(Field::WhatsappUserId).to_string(),
        message: reason.to_string(),
    })
}

type FieldError = (WarningCode, String);

/// Puts one non-empty cell where its column goes; an error is the warning for a value
/// that was dropped (or a column that is not imported at all).
fn apply_column(
    draft: &mut ContactDraft,
    column: &Column,
    value: &str,
    rules: &RowRules<'_>,
) -> Result<(), FieldError> {
    match (&column.target, column.unused) {
        (_, Some(Unused::Untitled)) => Err((
            WarningCode::UntitledColumn,
            format!(
                "{} has a value but no title; the value was not imported",
                column.title
            ),
        )),
        (_, Some(Unused::DuplicateHeader)) => Err((
            WarningCode::DuplicateHeader,
            format!(
                "column {} repeats the title {:?}; only the first such column was imported",
                column.index + 1,
                column.title
            ),
        )),
        (Some(Target::Field(field)), None) => apply_field(draft, *field, value, rules),
        (Some(Target::Attr(name)), None) => apply_attr(draft, name, value),
        (Some(Target::Ignore), None) | (None, None) => Ok(()),
    }
}

/// Marks the field of a blank cell to be erased (`blanks=clear`): profile fields and
/// custom attributes only. Never the phone or its country code, consent
/// (`whatsapp_opted`), lists or tags, nor a WhatsApp contact's user id, which names the
/// person (DESIGN section 13); an unused column clears nothing.
fn mark_cleared(draft: &mut ContactDraft, column: &Column, channel: Channel) {
    if column.unused.is_some() {
        return;
    }
    match &column.target {
        // Only the plain-text profile fields: the phone, its country code, consent,
        // lists and tags are no text fields.
        Some(Target::Field(field)) => {
            let name = field.name();
            let names_the_person = *field == Field::UserId && channel == Channel::Whatsapp;
            if TEXT_FIELDS.contains(&name) && !names_the_person {
                draft.clear.insert(name);
            }
        }
        Some(Target::Attr(name)) => {
            draft
                .clear_attrs
                .insert(truncate_chars(name, MAX_ATTR_NAME_CHARS).to_string());
        }
        Some(Target::Ignore) | None => {}
    }
}

/// Stores a custom attribute, within the limits that keep a contact item well under
/// DynamoDB's 400 KB: per value, number of attributes, and their bytes together.
fn apply_attr(draft: &mut ContactDraft, name: &str, value: &str) -> Result<(), FieldError> {
    if value.chars().count() > MAX_ATTR_CHARS {
        return Err((
            WarningCode::FieldTooLong,
            format!("longer than {MAX_ATTR_CHARS} characters"),
        ));
    }
    if draft.attrs.len() >= MAX_STORED_ATTRS {
        return Err((
            WarningCode::FieldTooLong,
            format!(
                "a contact holds at most {MAX_STORED_ATTRS} custom attributes; this column was not imported"
            ),
        ));
    }
    let name = truncate_chars(name, MAX_ATTR_NAME_CHARS).to_string();
    let value = normalize_attr_value(value);
    if attrs_bytes(&draft.attrs) + name.len() + value.len() > MAX_ATTRS_BYTES {
        return Err((
            WarningCode::FieldTooLong,
            format!(
                "a contact's custom attributes hold at most {} KB together; this column was not imported",
                MAX_ATTRS_BYTES / 1024
            ),
        ));
    }
    draft.attrs.insert(name, value);
    Ok(())
}

/// The warning for cells beyond the header's last title: they have no column to go to.
fn extra_cells_warning(cells: &[String], header_len: usize) -> Option<Problem> {
    let has_extra = cells.len() > header_len
        && cells[header_len..]
            .iter()
            .any(|c| !clean_value(c).is_empty());
    has_extra.then(|| Problem {
        code: ProblemCode::Warning(WarningCode::ExtraCells),
        column: format!("column {}", header_len + 1),
        message: format!(
            "the row has {} cells but the header only {} titles; the extra cells were ignored",
            cells.len(),
            header_len
        ),
    })
}

/// Without a name column, the name is first and last name joined, when that fits the
/// name field's limit.
fn fill_name_from_parts(draft: &mut ContactDraft) {
    if draft.text.contains_key("name") {
        return;
    }
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

/// Checks a value against its canonical field and stores it in the draft.
fn apply_field(
    draft: &mut ContactDraft,
    field: Field,
    value: &str,
    rules: &RowRules<'_>,
) -> Result<(), FieldError> {
    check_length(field, value)?;
    match field {
        Field::Phone | Field::CountryCode => {}
        Field::Name | Field::FirstName | Field::MiddleName | Field::LastName => {
            if !is_valid_name(value) {
                return Err((
                    WarningCode::InvalidName,
                    "holds characters a name cannot have (letters, digits, spaces and ' ’ - . , & only)".to_string(),
                ));
            }
            draft.text.insert(field.name(), value.to_string());
        }
        Field::Email => {
            if !is_valid_email(value) {
                return Err((
                    WarningCode::InvalidEmail,
                    "is not an e-mail address".to_string(),
                ));
            }
            draft.text.insert("email", value.to_string());
        }
        Field::WhatsappOpted => draft.whatsapp_opted = Some(opted_value(value)?),
        Field::DateOfBirth => {
            let month_first = rules.default_region.is_some_and(|r| r.month_first_dates());
            draft
                .text
                .insert("date_of_birth", birth_date(value, month_first)?);
        }
        Field::Lists | Field::Tags => {
            let values = multi_values(value)?;
            let set = if field == Field::Lists {
                &mut draft.lists
            } else {
                &mut draft.tags
            };
            set.extend(values);
        }
        Field::WhatsappUserId => apply_user_id(draft, value, rules)?,
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
            draft.text.insert(field.name(), value.to_string());
        }
    }
    Ok(())
}

/// A WhatsApp user id (BSUID) cell: kept on WhatsApp only, and only when it is one.
fn apply_user_id(
    draft: &mut ContactDraft,
    value: &str,
    rules: &RowRules<'_>,
) -> Result<(), FieldError> {
    // A BSUID names a person on WhatsApp only.
    if rules.channel != Channel::Whatsapp {
        return Ok(());
    }
    if !is_bsuid(value) {
        return Err((
            WarningCode::InvalidUserId,
            "is not a WhatsApp user id (two capital letters and a dot then letters and digits: GB.13491208655302741918) and was not imported".to_string(),
        ));
    }
    // One attribute holds both ids: the business's own `User ID` wins it,
    // whichever column comes first (a BSUID-only row keeps its BSUID in its key).
    draft
        .text
        .entry("user_id")
        .or_insert_with(|| value.to_string());
    Ok(())
}

/// The field's length limit on the whole value; lists and tags are limited per value
/// instead, in [`multi_values`].
fn check_length(field: Field, value: &str) -> Result<(), FieldError> {
    let Some(max) = field.max_chars() else {
        return Ok(());
    };
    if matches!(field, Field::Lists | Field::Tags) || value.chars().count() <= max {
        return Ok(());
    }
    Err((
        WarningCode::FieldTooLong,
        format!(
            "{} is limited to {max} characters; this value has {}",
            field.name(),
            value.chars().count()
        ),
    ))
}

/// The WhatsApp opt-in as a yes/no.
fn opted_value(value: &str) -> Result<bool, FieldError> {
    parse_bool(value).ok_or_else(|| {
        (
            WarningCode::InvalidBoolean,
            format!(
                "{:?} is not one of TRUE/FALSE, yes/no, 1/0",
                truncate_chars(value, 40)
            ),
        )
    })
}

/// The date of birth as `YYYY-MM-DD`.
fn birth_date(value: &str, month_first: bool) -> Result<String, FieldError> {
    parse_date(value, month_first).ok_or_else(|| {
        (
            WarningCode::InvalidDate,
            format!(
                "{:?} is not a date (use YYYY-MM-DD)",
                truncate_chars(value, 40)
            ),
        )
    })
}

/// The list or tag names in one cell, each within the limits.
fn multi_values(value: &str) -> Result<Vec<String>, FieldError> {
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
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|c| c.to_string()).collect()
    }

    fn check(header: &[&str], cells: &[&str], region: Option<&str>) -> Verdict {
        check_on(Channel::Whatsapp, header, cells, region)
    }

    fn check_on(
        channel: Channel,
        header: &[&str],
        cells: &[&str],
        region: Option<&str>,
    ) -> Verdict {
        check_with(channel, header, cells, region, Blanks::Keep)
    }

    fn check_with(
        channel: Channel,
        header: &[&str],
        cells: &[&str],
        region: Option<&str>,
        blanks: Blanks,
    ) -> Verdict {
        let columns = ColumnMap::from_header(&row(header), &[]).expect("header maps");
        let (lists, tags) = (BTreeSet::from(["Imported".to_string()]), BTreeSet::new());
        let rules = RowRules {
            columns: &columns,
            channel,
            default_region: region.and_then(Region::parse),
            lists: &lists,
            tags: &tags,
            blanks,
        };
        validate_row(&row(cells), &rules)
    }

    #[test]
    fn blanks_clear_mapped_profile_fields_and_attributes_only() {
        let header = [
            "Phone",
            "First Name",
            "Last Name",
            "Email",
            "Opt In",
            "Tags",
            "Plan",
            "User ID",
            "City",
        ];
        let cells = ["+447911123456", "Eva", "", "", "", "", " ", "", "Leeds"];
        let (draft, _) = accepted(check_with(
            Channel::Sms,
            &header,
            &cells,
            None,
            Blanks::Clear,
        ));
        assert_eq!(
            draft.clear,
            BTreeSet::from(["email", "last_name", "user_id"]),
            "the name is Eva's, so it is not cleared; consent and tags never are"
        );
        assert_eq!(draft.clear_attrs, BTreeSet::from(["Plan".to_string()]));
        assert_eq!(draft.text.get("name").map(String::as_str), Some("Eva"));
        // On WhatsApp a user id names the person: a blank never clears it.
        let (draft, _) = accepted(check_with(
            Channel::Whatsapp,
            &header,
            &cells,
            None,
            Blanks::Clear,
        ));
        assert!(!draft.clear.contains("user_id"));
        // A short row's missing cells are no blanks.
        let (draft, _) = accepted(check_with(
            Channel::Sms,
            &header,
            &["+447911123456", "Eva"],
            None,
            Blanks::Clear,
        ));
        assert!(draft.clear.is_empty() && draft.clear_attrs.is_empty());
        // The default keeps every stored value.
        let (draft, _) = accepted(check_on(Channel::Sms, &header, &cells, None));
        assert!(draft.clear.is_empty() && draft.clear_attrs.is_empty());
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
    fn a_spreadsheet_escape_before_a_formula_is_dropped_from_cells_and_titles() {
        // GIVEN cells and an attribute title an export escaped, and a `'` that escapes nothing
        let (draft, warnings) = accepted(check(
            &["Phone", "Company", "Tags", "'=Score", "Note"],
            &[
                "'+447911123456",
                "'=HYPERLINK(\"x\")",
                "'@team;'-x",
                "'-5",
                "'quoted",
            ],
            None,
        ));

        // THEN one `'` is dropped where it escapes `= + - @`, and only there
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(draft.phone, "+447911123456");
        assert_eq!(
            draft.text.get("company").map(String::as_str),
            Some("=HYPERLINK(\"x\")")
        );
        // The escape is the cell's: a later value of a multi-value cell keeps its `'`.
        assert_eq!(
            draft.tags,
            BTreeSet::from(["@team".to_string(), "'-x".to_string()])
        );
        assert_eq!(draft.attrs.get("=Score").map(String::as_str), Some("-5"));
        assert_eq!(draft.attrs.get("Note").map(String::as_str), Some("'quoted"));
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
                assert!(!problem.message.contains("7911"), "{}", problem.message);
            }
            other => panic!("{other:?}"),
        }
    }
}

#[cfg(test)]
mod whatsapp_user_id_tests {
    use super::*;

    const BSUID: &str = "GB.13491208655302741918";
    const HEADER: [&str; 4] = ["Phone", "Name", "WhatsApp User ID", "User ID"];

    fn check(channel: Channel, header: &[&str], cells: &[&str]) -> Verdict {
        let header: Vec<String> = header.iter().map(|c| c.to_string()).collect();
        let cells: Vec<String> = cells.iter().map(|c| c.to_string()).collect();
        let columns = ColumnMap::from_header(&header, &[]).expect("header maps");
        let none = BTreeSet::new();
        let rules = RowRules {
            columns: &columns,
            channel,
            default_region: Region::parse("GB"),
            lists: &none,
            tags: &none,
            blanks: Blanks::Keep,
        };
        validate_row(&cells, &rules)
    }

    fn accepted(verdict: Verdict) -> (ContactDraft, Vec<Problem>) {
        match verdict {
            Verdict::Accepted { draft, warnings } => (draft, warnings),
            Verdict::Rejected { problem, .. } => panic!("rejected: {problem:?}"),
        }
    }

    fn rejected(verdict: Verdict) -> (PhoneRejection, Problem) {
        match verdict {
            Verdict::Rejected { reason, problem } => (reason, problem),
            Verdict::Accepted { draft, .. } => panic!("accepted: {draft:?}"),
        }
    }

    #[test]
    fn a_row_without_a_phone_is_keyed_by_its_bsuid_never_read_as_a_number() {
        // GIVEN a WhatsApp row with a blank phone and a BSUID
        let verdict = check(Channel::Whatsapp, &HEADER, &["", "Eva", BSUID, ""]);

        // THEN its key is the BSUID's, and the BSUID is its user id
        let (draft, warnings) = accepted(verdict);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(draft.phone, format!("bsuid:{BSUID}"));
        assert_eq!(draft.text.get("user_id").map(String::as_str), Some(BSUID));
        assert_eq!(draft.text.get("name").map(String::as_str), Some("Eva"));
    }

    #[test]
    fn a_row_with_a_phone_is_keyed_by_it_and_keeps_the_bsuid() {
        let (draft, warnings) = accepted(check(
            Channel::Whatsapp,
            &HEADER,
            &["07911 123456", "Eva", BSUID, ""],
        ));
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(draft.phone, "+447911123456");
        assert_eq!(draft.text.get("user_id").map(String::as_str), Some(BSUID));
    }

    #[test]
    fn a_row_with_neither_is_missing_its_phone() {
        let (reason, problem) = rejected(check(Channel::Whatsapp, &HEADER, &["", "Eva", " ", ""]));
        assert_eq!(reason, PhoneRejection::Missing);
        assert_eq!(problem.column, "Phone");
        // Nor does a file without the column change anything.
        let (reason, _) = rejected(check(Channel::Whatsapp, &["Phone", "Name"], &["", "Eva"]));
        assert_eq!(reason, PhoneRejection::Missing);
    }

    #[test]
    fn a_value_that_is_no_bsuid_rejects_a_row_without_a_phone_naming_the_column() {
        let (reason, problem) = rejected(check(
            Channel::Whatsapp,
            &["Phone", "WA User ID"],
            &["", "447911123456"],
        ));
        assert_eq!(reason, PhoneRejection::InvalidUserId);
        assert_eq!(problem.code.as_str(), "invalid_user_id");
        assert_eq!(problem.column, "WA User ID");
        assert!(
            !problem.message.contains("447911123456"),
            "the value is never repeated: {}",
            problem.message
        );
        assert!(!problem.message.contains([',', ';']), "{}", problem.message);
    }

    #[test]
    fn a_value_that_is_no_bsuid_is_dropped_with_a_warning_when_the_row_has_a_phone() {
        let (draft, warnings) = accepted(check(
            Channel::Whatsapp,
            &HEADER,
            &["+447911123456", "Eva", "gb.123", ""],
        ));
        assert_eq!(draft.phone, "+447911123456");
        assert_eq!(draft.text.get("user_id"), None);
        let codes: Vec<&str> = warnings.iter().map(|w| w.code.as_str()).collect();
        assert_eq!(codes, ["invalid_user_id"]);
        assert_eq!(warnings[0].column, "WhatsApp User ID");
    }

    #[test]
    fn a_bad_phone_is_not_saved_by_a_bsuid() {
        // The phone is the key when the row gives one: a wrong one is the row's problem.
        let (reason, _) = rejected(check(Channel::Whatsapp, &HEADER, &["12", "Eva", BSUID, ""]));
        assert_eq!(reason, PhoneRejection::Invalid);
    }

    #[test]
    fn the_business_s_own_user_id_wins_the_attribute_whichever_column_comes_first() {
        for header in [
            ["Phone", "Name", "WhatsApp User ID", "User ID"],
            ["Phone", "Name", "User ID", "WhatsApp User ID"],
        ] {
            let cells = if header[2] == "User ID" {
                ["", "Eva", "C-42", BSUID]
            } else {
                ["", "Eva", BSUID, "C-42"]
            };
            let (draft, warnings) = accepted(check(Channel::Whatsapp, &header, &cells));
            assert!(warnings.is_empty(), "{warnings:?}");
            assert_eq!(draft.phone, format!("bsuid:{BSUID}"), "{header:?}");
            assert_eq!(draft.text.get("user_id").map(String::as_str), Some("C-42"));
        }
    }

    #[test]
    fn on_sms_and_voice_the_column_is_no_key_and_not_stored() {
        for channel in [Channel::Sms, Channel::Voice] {
            let (reason, _) = rejected(check(channel, &HEADER, &["", "Eva", BSUID, ""]));
            assert_eq!(reason, PhoneRejection::Missing);
            let (draft, warnings) = accepted(check(
                channel,
                &HEADER,
                &["+447911123456", "Eva", "junk", ""],
            ));
            assert!(warnings.is_empty(), "{warnings:?}");
            assert_eq!(draft.text.get("user_id"), None);
            assert!(draft.attrs.is_empty());
        }
    }
}
