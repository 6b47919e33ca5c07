//! Upload options carried as S3 user metadata (DESIGN section 5).

use std::collections::{BTreeSet, HashMap};

use crate::domain::cleaning::{clean_value, split_commas};
use crate::domain::contact::{Contact, ContactDraft, Merge, WriteStamp};
use crate::domain::mapping::Target;
use crate::domain::phone::Region;

/// What to do with a contact that already exists.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum OnExisting {
    /// Update fields whose value differs (default).
    Update,
    /// Leave existing contacts alone.
    Ignore,
}

impl OnExisting {
    /// What a row does to the contact stored under its number.
    pub fn merge(self, current: &Contact, draft: &ContactDraft, stamp: &WriteStamp) -> Merge {
        match self {
            OnExisting::Ignore => Merge::LeaveAlone,
            OnExisting::Update => current.merged(draft, stamp).into(),
        }
    }
}

/// What to do with a row whose contact does not exist (DESIGN section 15).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum OnNew {
    /// Create it (default).
    #[default]
    Create,
    /// Leave it out: the row ends `skipped_new`.
    Skip,
}

/// What a blank cell in a mapped column does (DESIGN section 15).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum Blanks {
    /// A blank never erases (default).
    #[default]
    Keep,
    /// A blank clears the stored field (never the phone, status, consent, lists or tags).
    Clear,
}

/// How an upload's rows meet the contact book: what a row does to a contact that
/// exists, and whether it creates one that does not.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Mode {
    /// `on-existing`.
    pub on_existing: OnExisting,
    /// `on-new`.
    pub on_new: OnNew,
}

impl Mode {
    /// Create and update: campaign recipients, and an upload without options.
    pub const UPSERT: Mode = Mode {
        on_existing: OnExisting::Update,
        on_new: OnNew::Create,
    };

    /// Whether a row whose contact does not exist creates it.
    pub fn creates(self) -> bool {
        self.on_new == OnNew::Create
    }

    /// What a row does to the contact stored under its number.
    pub fn merge(self, current: &Contact, draft: &ContactDraft, stamp: &WriteStamp) -> Merge {
        self.on_existing.merge(current, draft, stamp)
    }
}

impl From<OnExisting> for Mode {
    fn from(on_existing: OnExisting) -> Mode {
        Mode {
            on_existing,
            on_new: OnNew::Create,
        }
    }
}

/// A CSV delimiter chosen by the uploader.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Delimiter {
    /// `,`
    Comma,
    /// `;`
    Semicolon,
    /// tab
    Tab,
    /// `|`
    Pipe,
}

impl Delimiter {
    /// The byte the CSV reader splits on.
    pub fn byte(self) -> u8 {
        match self {
            Delimiter::Comma => b',',
            Delimiter::Semicolon => b';',
            Delimiter::Tab => b'\t',
            Delimiter::Pipe => b'|',
        }
    }
}

/// The parsed options of one upload.
#[derive(Clone, Debug)]
pub struct UploadOptions {
    /// `on-existing`.
    pub on_existing: OnExisting,
    /// `on-new`.
    pub on_new: OnNew,
    /// `blanks`.
    pub blanks: Blanks,
    /// `default-country`.
    pub default_country: Option<Region>,
    /// `lists`: every imported row joins them.
    pub lists: BTreeSet<String>,
    /// `tags`: added to every imported row.
    pub tags: BTreeSet<String>,
    /// `delimiter`; sniffed when absent.
    pub delimiter: Option<Delimiter>,
    /// `sheet` of a workbook.
    pub sheet: Option<String>,
    /// `dry-run`.
    pub dry_run: bool,
    /// `mapping`: column title -> target, overriding automatic mapping.
    pub mapping: Vec<(String, Target)>,
}

impl Default for UploadOptions {
    fn default() -> Self {
        UploadOptions {
            on_existing: OnExisting::Update,
            on_new: OnNew::Create,
            blanks: Blanks::Keep,
            default_country: None,
            lists: BTreeSet::new(),
            tags: BTreeSet::new(),
            delimiter: None,
            sheet: None,
            dry_run: false,
            mapping: Vec::new(),
        }
    }
}

/// A metadata value the import cannot use: the whole import fails with `bad_option`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("upload option {option}: {problem}")]
pub struct BadOption {
    /// The metadata key, as the uploader wrote it (`x-amz-meta-…`).
    pub option: String,
    /// What is wrong with its value.
    pub problem: String,
}

fn bad(option: &str, problem: impl Into<String>) -> BadOption {
    BadOption {
        option: format!("x-amz-meta-{option}"),
        problem: problem.into(),
    }
}

const MAX_OPTION_VALUES: usize = 50;

impl UploadOptions {
    /// Reads the options from S3 user metadata (keys without the `x-amz-meta-` prefix,
    /// any case). Unknown keys are ignored: other tools may tag uploads too.
    pub fn from_metadata(metadata: &HashMap<String, String>) -> Result<UploadOptions, BadOption> {
        let mut options = UploadOptions::default();
        for (raw_key, raw_value) in metadata {
            let key = option_key(raw_key);
            options
                .set(&key, raw_value.trim())
                .map_err(|problem| bad(&key, problem))?;
        }
        if options.on_existing == OnExisting::Ignore && options.on_new == OnNew::Skip {
            return Err(bad(
                "on-new",
                "skip with x-amz-meta-on-existing ignore would neither create nor update any contact; drop one of the two",
            ));
        }
        Ok(options)
    }

    /// How the rows meet the contact book.
    pub fn mode(&self) -> Mode {
        Mode {
            on_existing: self.on_existing,
            on_new: self.on_new,
        }
    }

    /// Sets the option named `key` (normalised, see [`option_key`]); the error says what
    /// is wrong with `value`.
    fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        match key {
            "on-existing" => self.on_existing = parse_on_existing(value)?,
            "on-new" => self.on_new = parse_on_new(value)?,
            "blanks" => self.blanks = parse_blanks(value)?,
            "default-country" if !value.is_empty() => {
                self.default_country = Some(Region::parse(value).ok_or_else(|| {
                    format!(
                        "{value:?} is not an ISO 3166-1 alpha-2 country code such as GB, IN or NL"
                    )
                })?);
            }
            "lists" => self.lists.extend(parse_names(value)?),
            "tags" => self.tags.extend(parse_names(value)?),
            "delimiter" => self.delimiter = Some(parse_delimiter(value)?),
            "sheet" => {
                let name = clean_value(value);
                if !name.is_empty() {
                    self.sheet = Some(name);
                }
            }
            "dry-run" => self.dry_run = parse_dry_run(value)?,
            "mapping" => self.mapping = parse_mapping(value)?,
            _ => {}
        }
        Ok(())
    }
}

/// A metadata key as the options are named: lower case, `_` read as `-`, without the
/// `x-amz-meta-` prefix.
fn option_key(raw_key: &str) -> String {
    let key = raw_key.to_ascii_lowercase().replace('_', "-");
    key.strip_prefix("x-amz-meta-").unwrap_or(&key).to_string()
}

fn parse_on_existing(value: &str) -> Result<OnExisting, String> {
    match value.to_ascii_lowercase().as_str() {
        "update" => Ok(OnExisting::Update),
        "ignore" => Ok(OnExisting::Ignore),
        _ => Err(format!("{value:?} is not one of update, ignore")),
    }
}

fn parse_on_new(value: &str) -> Result<OnNew, String> {
    match value.to_ascii_lowercase().as_str() {
        "create" | "" => Ok(OnNew::Create),
        "skip" => Ok(OnNew::Skip),
        _ => Err(format!("{value:?} is not one of create, skip")),
    }
}

fn parse_blanks(value: &str) -> Result<Blanks, String> {
    match value.to_ascii_lowercase().as_str() {
        "keep" | "" => Ok(Blanks::Keep),
        "clear" => Ok(Blanks::Clear),
        _ => Err(format!("{value:?} is not one of keep, clear")),
    }
}

/// The list or tag names of the `lists` or `tags` option, comma separated.
fn parse_names(value: &str) -> Result<Vec<String>, String> {
    let values = split_commas(value);
    if values.len() > MAX_OPTION_VALUES {
        return Err(format!("at most {MAX_OPTION_VALUES} names"));
    }
    if let Some(long) = values.iter().find(|v| v.chars().count() > 100) {
        return Err(format!("{long:?} is longer than 100 characters"));
    }
    Ok(values)
}

fn parse_delimiter(value: &str) -> Result<Delimiter, String> {
    match value.to_ascii_lowercase().as_str() {
        "comma" | "," => Ok(Delimiter::Comma),
        "semicolon" | ";" => Ok(Delimiter::Semicolon),
        "tab" | "\t" => Ok(Delimiter::Tab),
        "pipe" | "|" => Ok(Delimiter::Pipe),
        _ => Err(format!(
            "{value:?} is not one of comma, semicolon, tab, pipe"
        )),
    }
}

/// `dry-run`: an empty value is the default, false.
fn parse_dry_run(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" | "" => Ok(false),
        _ => Err(format!("{value:?} is not true or false")),
    }
}

/// A `mapping` option's value (or a saved mapping): `{"Column title": "target"}`; the
/// error says what is wrong with it.
pub fn parse_mapping(value: &str) -> Result<Vec<(String, Target)>, String> {
    let json: serde_json::Value =
        serde_json::from_str(value).map_err(|e| format!("not valid JSON ({e})"))?;
    let object = json
        .as_object()
        .ok_or("must be a JSON object {\"Column title\": \"field\"}")?;
    object
        .iter()
        .map(|(title, target)| {
            let target = target
                .as_str()
                .ok_or_else(|| format!("the value for {title:?} must be a string"))?;
            let target = Target::parse(target).ok_or_else(|| {
                format!(
                    "{target:?} (for column {title:?}) is not a field name, attr:Name or ignore"
                )
            })?;
            Ok((title.clone(), target))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::field::Field;

    fn meta(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_when_nothing_is_set() {
        let options = UploadOptions::from_metadata(&HashMap::new()).expect("valid");
        assert_eq!(options.on_existing, OnExisting::Update);
        assert!(!options.dry_run);
        assert!(options.default_country.is_none());
    }

    #[test]
    fn reads_every_option() {
        let options = UploadOptions::from_metadata(&meta(&[
            ("on-existing", "update"),
            ("on-new", "Skip"),
            ("blanks", "clear"),
            ("default-country", "gb"),
            ("lists", "VIP, Leads ,"),
            ("tags", "imported"),
            ("delimiter", "semicolon"),
            ("sheet", "Contacts"),
            ("dry-run", "TRUE"),
            (
                "mapping",
                r#"{"Mobile No": "phone", "Plan": "attr:Tier", "Junk": "ignore"}"#,
            ),
        ]))
        .expect("valid");
        assert_eq!(options.on_existing, OnExisting::Update);
        assert_eq!(options.on_new, OnNew::Skip);
        assert_eq!(options.blanks, Blanks::Clear);
        assert_eq!(
            options.default_country.as_ref().map(Region::code),
            Some("GB")
        );
        assert_eq!(options.lists.iter().collect::<Vec<_>>(), ["Leads", "VIP"]);
        assert_eq!(options.delimiter, Some(Delimiter::Semicolon));
        assert!(options.dry_run);
        assert!(options
            .mapping
            .contains(&("Mobile No".to_string(), Target::Field(Field::Phone))));
        assert!(options
            .mapping
            .contains(&("Plan".to_string(), Target::Attr("Tier".to_string()))));
    }

    #[test]
    fn bad_values_name_the_option() {
        for (key, value) in [
            ("on-existing", "merge"),
            ("on-new", "update"),
            ("blanks", "erase"),
            ("default-country", "UK1"),
            ("delimiter", "colon"),
            ("dry-run", "maybe"),
            ("mapping", "{not json"),
            ("mapping", r#"{"A": "favourite_colour"}"#),
        ] {
            let err = UploadOptions::from_metadata(&meta(&[(key, value)])).expect_err(key);
            assert_eq!(err.option, format!("x-amz-meta-{key}"));
        }
    }

    #[test]
    fn skipping_new_rows_while_ignoring_existing_ones_is_a_bad_option() {
        let err = UploadOptions::from_metadata(&meta(&[
            ("x-amz-meta-on-existing", "ignore"),
            ("x-amz-meta-on-new", "skip"),
        ]))
        .expect_err("imports nothing");
        assert_eq!(err.option, "x-amz-meta-on-new");
        let defaults = UploadOptions::from_metadata(&HashMap::new()).expect("valid");
        assert_eq!(defaults.mode(), Mode::UPSERT);
        assert_eq!(defaults.blanks, Blanks::Keep);
    }
}
