//! Which column feeds which field: automatic matching of titles, the explicit mapping
//! option, custom attributes, and columns that are ignored with a warning.

use std::collections::{BTreeMap, HashSet};

use crate::domain::channel::Channel;
use crate::domain::cleaning::{clean_value, drop_formula_escape, header_key};
use crate::domain::field::Field;

/// Where a column's values go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A canonical field.
    Field(Field),
    /// A custom attribute with this name.
    Attr(String),
    /// Nowhere, by the uploader's choice.
    Ignore,
}

impl Target {
    /// Parses a mapping option value: a field name, `attr:Name` or `ignore`.
    pub fn parse(value: &str) -> Option<Target> {
        let value = value.trim();
        if value.eq_ignore_ascii_case("ignore") {
            return Some(Target::Ignore);
        }
        if let Some(name) = value.strip_prefix("attr:") {
            let name = clean_value(name);
            return (!name.is_empty() && name.chars().count() <= 100).then_some(Target::Attr(name));
        }
        Field::from_name(value).map(Target::Field)
    }

    /// How the target is shown in `column_mapping`.
    pub fn label(&self) -> String {
        match self {
            Target::Field(f) => f.name().to_string(),
            Target::Attr(name) => format!("attr:{name}"),
            Target::Ignore => "ignore".to_string(),
        }
    }
}

/// Where an import's column mapping came from (`mapping_source` of summary.json,
/// DESIGN section 15).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MappingSource {
    /// The upload's `mapping` option.
    Option,
    /// The mapping the account saved for the same header.
    Saved,
    /// Matched by title alone.
    #[default]
    Automatic,
}

/// The header signature a mapping is saved under: the hex SHA-256 of the titles,
/// normalised as headers are compared ([`header_key`]: no whitespace survives it, so a
/// line break separates them unambiguously), in file order.
pub fn header_signature(header: &[String]) -> String {
    use sha2::{Digest, Sha256};
    let titles: Vec<String> = header.iter().map(|t| header_key(t)).collect();
    hex::encode(Sha256::digest(titles.join("\n").as_bytes()))
}

/// A mapping as saved: `{"Column title": "target"}`, JSON.
pub fn mapping_json(mapping: &[(String, Target)]) -> String {
    let object: serde_json::Map<String, serde_json::Value> = mapping
        .iter()
        .map(|(title, target)| (title.clone(), target.label().into()))
        .collect();
    serde_json::Value::Object(object).to_string()
}

/// Why a column is not used although it is in the file.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Unused {
    /// The title repeats an earlier column's title.
    DuplicateHeader,
    /// The column has no title.
    Untitled,
}

/// One column of the file and where it goes.
#[derive(Clone, Debug)]
pub struct Column {
    /// Position in the row, from 0.
    pub index: usize,
    /// The title as written (cleaned of controls), or `column N` when untitled.
    pub title: String,
    /// Where values go; `None` when the column is unused (see `unused`).
    pub target: Option<Target>,
    /// Why an unused column is unused.
    pub unused: Option<Unused>,
}

/// The mapping of every column of a file.
#[derive(Clone, Debug)]
pub struct ColumnMap {
    /// Columns in file order.
    pub columns: Vec<Column>,
    /// The header cells as written, for rows.csv.
    pub header: Vec<String>,
}

/// A file-level mapping failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    /// No column maps to `phone`.
    #[error("no phone column: none of the column titles ({titles}) is a phone title such as \"Phone\", \"Phone Number\" or \"Mobile\"; rename the column or map it with the mapping option")]
    MissingPhoneColumn {
        /// The titles found, for the message.
        titles: String,
    },
    /// The mapping option names a column the file does not have.
    #[error("the mapping option names column {0:?}, which is not in the header row")]
    UnknownMappedColumn(String),
    /// The mapping option maps two columns to one field.
    #[error("the mapping option maps more than one column to {0}")]
    FieldMappedTwice(&'static str),
}

impl ColumnMap {
    /// Maps a header row. `explicit` is the mapping option: its entries win over
    /// automatic matching; titles are compared like headers.
    pub fn from_header(
        header: &[String],
        explicit: &[(String, Target)],
    ) -> Result<ColumnMap, MappingError> {
        let (explicit_keys, explicit_fields) = explicit_targets(header, explicit)?;
        let map = ColumnMap {
            columns: map_columns(header, &explicit_keys, explicit_fields),
            header: header.to_vec(),
        };
        if map.index_of(Field::Phone).is_none() {
            return Err(missing_phone_column(header));
        }
        Ok(map)
    }

    /// The mapping as an upload on `channel` uses it: a WhatsApp user id names a person
    /// on WhatsApp only, so on `sms` and `voice` its column is ignored (and
    /// `column_mapping` says so) rather than kept as a custom attribute nobody can use.
    pub fn for_channel(mut self, channel: Channel) -> ColumnMap {
        if channel != Channel::Whatsapp {
            for column in &mut self.columns {
                if column.target == Some(Target::Field(Field::WhatsappUserId)) {
                    column.target = Some(Target::Ignore);
                }
            }
        }
        self
    }

    /// The mapping of a headerless pasted list: one phone column.
    pub fn phone_only() -> ColumnMap {
        ColumnMap {
            columns: vec![Column {
                index: 0,
                title: "phone".to_string(),
                target: Some(Target::Field(Field::Phone)),
                unused: None,
            }],
            header: vec!["phone".to_string()],
        }
    }

    /// Index of the column feeding `field`.
    pub fn index_of(&self, field: Field) -> Option<usize> {
        self.columns
            .iter()
            .find(|c| c.target == Some(Target::Field(field)))
            .map(|c| c.index)
    }

    /// The position in a row of the column a problem names by `title` (the first such
    /// column: a repeated title is unused after it); `None` when no column has it.
    pub fn index_titled(&self, title: &str) -> Option<usize> {
        self.columns
            .iter()
            .find(|c| c.title == title)
            .map(|c| c.index)
    }

    /// The title of the column feeding `field`.
    pub fn title_of(&self, field: Field) -> &str {
        self.columns
            .iter()
            .find(|c| c.target == Some(Target::Field(field)))
            .map_or(field.name(), |c| c.title.as_str())
    }

    /// `column_mapping` for summary.json: title -> target label; unused columns are
    /// shown as `ignore`.
    pub fn summary(&self) -> BTreeMap<String, String> {
        self.columns
            .iter()
            .map(|c| {
                (
                    c.title.clone(),
                    c.target
                        .as_ref()
                        .map_or_else(|| "ignore".to_string(), Target::label),
                )
            })
            .collect()
    }
}

/// The mapping option's targets, by title compared like headers.
type ExplicitKeys<'t> = Vec<(String, &'t Target)>;

/// The mapping option keyed like headers, and the fields it feeds. Refuses titles the
/// header does not have and fields fed by two columns.
fn explicit_targets<'t>(
    header: &[String],
    explicit: &'t [(String, Target)],
) -> Result<(ExplicitKeys<'t>, HashSet<Field>), MappingError> {
    let explicit_keys: Vec<(String, &Target)> = explicit
        .iter()
        .map(|(t, target)| (header_key(&column_title(t)), target))
        .collect();
    for (title, _) in explicit {
        if !header
            .iter()
            .any(|h| header_key(&column_title(h)) == header_key(title))
        {
            return Err(MappingError::UnknownMappedColumn(title.clone()));
        }
    }
    let mut explicit_fields = HashSet::new();
    for (_, target) in &explicit_keys {
        if let Target::Field(f) = target {
            if !explicit_fields.insert(*f) {
                return Err(MappingError::FieldMappedTwice(f.name()));
            }
        }
    }
    Ok((explicit_keys, explicit_fields))
}

/// A header cell as a title: cleaned, and without the spreadsheet escape an export puts
/// on a custom attribute's name that starts like a formula.
fn column_title(raw: &str) -> String {
    drop_formula_escape(clean_value(raw))
}

/// Every column in file order: untitled ones and repeated titles are unused; the rest
/// go where the mapping option says, else to the field their title matches.
/// `used_fields` starts with the fields the mapping option feeds.
fn map_columns(
    header: &[String],
    explicit_keys: &[(String, &Target)],
    mut used_fields: HashSet<Field>,
) -> Vec<Column> {
    let mut seen_titles = HashSet::new();
    let mut columns = Vec::with_capacity(header.len());
    for (index, raw) in header.iter().enumerate() {
        let title = column_title(raw);
        let key = header_key(&title);
        if key.is_empty() {
            columns.push(Column {
                index,
                title: format!("column {}", index + 1),
                target: None,
                unused: Some(Unused::Untitled),
            });
            continue;
        }
        if !seen_titles.insert(key.clone()) {
            columns.push(Column {
                index,
                title,
                target: None,
                unused: Some(Unused::DuplicateHeader),
            });
            continue;
        }
        let target = match explicit_keys.iter().find(|(k, _)| *k == key) {
            Some((_, target)) => (*target).clone(),
            None => match Field::from_header(&title) {
                // A second column matching a field already fed (say "Mobile" after
                // "Phone") is kept as a custom attribute rather than lost.
                Some(field) if used_fields.insert(field) => Target::Field(field),
                _ => Target::Attr(title.clone()),
            },
        };
        columns.push(Column {
            index,
            title,
            target: Some(target),
            unused: None,
        });
    }
    columns
}

/// The error for a header without a phone column, quoting its first titles.
fn missing_phone_column(header: &[String]) -> MappingError {
    // Bounded: a hostile header can be megabytes long.
    let mut titles = header
        .iter()
        .take(20)
        .map(|h| {
            format!(
                "{:?}",
                crate::domain::cleaning::truncate_chars(&clean_value(h), 40)
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    if header.len() > 20 {
        titles.push_str(&format!(" and {} more", header.len() - 20));
    }
    MappingError::MissingPhoneColumn { titles }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(titles: &[&str]) -> Vec<String> {
        titles.iter().map(|t| t.to_string()).collect()
    }

    #[test]
    fn maps_synonyms_and_keeps_other_titles_as_attributes() {
        let map = ColumnMap::from_header(
            &header(&["\u{FEFF}Name", "Phone_Number", "Plan", "E-mail"]),
            &[],
        )
        .expect("maps");
        assert_eq!(map.index_of(Field::Phone), Some(1));
        assert_eq!(map.index_of(Field::Name), Some(0));
        assert_eq!(map.index_of(Field::Email), Some(3));
        assert_eq!(map.columns[2].target, Some(Target::Attr("Plan".into())));
        assert_eq!(
            map.summary().get("Plan").map(String::as_str),
            Some("attr:Plan")
        );
    }

    #[test]
    fn second_phone_like_column_becomes_an_attribute() {
        let map = ColumnMap::from_header(&header(&["Phone", "Mobile"]), &[]).expect("maps");
        assert_eq!(map.columns[1].target, Some(Target::Attr("Mobile".into())));
    }

    #[test]
    fn duplicate_and_untitled_columns_are_unused() {
        let map =
            ColumnMap::from_header(&header(&["Phone", "Name", "name ", ""]), &[]).expect("maps");
        assert_eq!(map.columns[2].unused, Some(Unused::DuplicateHeader));
        assert_eq!(map.columns[3].unused, Some(Unused::Untitled));
    }

    #[test]
    fn a_problem_s_column_is_found_by_its_title() {
        let map =
            ColumnMap::from_header(&header(&["Name", "Phone", "Phone", ""]), &[]).expect("maps");
        assert_eq!(
            map.index_titled("Phone"),
            Some(1),
            "the first of a repeated title"
        );
        assert_eq!(map.index_titled("column 4"), Some(3), "an untitled column");
        assert_eq!(map.index_titled("Email"), None);
    }

    #[test]
    fn missing_phone_column_is_an_error_naming_the_titles() {
        let err = ColumnMap::from_header(&header(&["Name", "Email"]), &[]).expect_err("no phone");
        assert!(err.to_string().contains("\"Name\", \"Email\""), "{err}");
    }

    #[test]
    fn a_whatsapp_user_id_column_is_a_field_on_whatsapp_and_ignored_elsewhere() {
        let titles = header(&["Phone", "WhatsApp User ID", "User ID"]);
        let map = ColumnMap::from_header(&titles, &[]).expect("maps");
        assert_eq!(map.index_of(Field::WhatsappUserId), Some(1));
        assert_eq!(
            map.index_of(Field::UserId),
            Some(2),
            "the business's own id"
        );

        let on_whatsapp = map.clone().for_channel(Channel::Whatsapp);
        assert_eq!(on_whatsapp.index_of(Field::WhatsappUserId), Some(1));
        for channel in [Channel::Sms, Channel::Voice] {
            let map = map.clone().for_channel(channel);
            assert_eq!(map.index_of(Field::WhatsappUserId), None);
            assert_eq!(map.columns[1].target, Some(Target::Ignore));
            assert_eq!(
                map.summary().get("WhatsApp User ID").map(String::as_str),
                Some("ignore")
            );
        }
    }

    #[test]
    fn explicit_mapping_wins() {
        let explicit = vec![
            ("Contact".to_string(), Target::Field(Field::Phone)),
            ("Phone".to_string(), Target::Attr("Landline".into())),
            ("Notes".to_string(), Target::Ignore),
        ];
        let map = ColumnMap::from_header(&header(&["Contact", "Phone", "Notes"]), &explicit)
            .expect("maps");
        assert_eq!(map.index_of(Field::Phone), Some(0));
        assert_eq!(map.columns[1].target, Some(Target::Attr("Landline".into())));
        assert_eq!(map.columns[2].target, Some(Target::Ignore));
        let err =
            ColumnMap::from_header(&header(&["Phone"]), &explicit).expect_err("unknown column");
        assert_eq!(err, MappingError::UnknownMappedColumn("Contact".into()));
    }
}
