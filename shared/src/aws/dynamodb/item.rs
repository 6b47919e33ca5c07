//! Attribute values in and out. Writing is two constructors ([`s`], [`n`]); reading goes
//! through a [`Reader`], which names the item (its `pk`) and the attribute in every
//! error, so a malformed item in production points at itself.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::str::FromStr;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::de::value::{Error as ValueError, StrDeserializer};
use serde::de::{DeserializeOwned, IntoDeserializer};

use crate::ports::StoreError;

/// One DynamoDB item, as the SDK gives and takes it.
pub(super) type Item = HashMap<String, AttributeValue>;

/// A string attribute.
pub(super) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// A number attribute.
pub(super) fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// A documented code (`invalid_phone`, `completed_with_errors`…) as the enum that
/// serialises to it; `None` for a code we do not know.
pub(super) fn parse_code<T: DeserializeOwned>(code: &str) -> Option<T> {
    let code: StrDeserializer<'_, ValueError> = code.into_deserializer();
    T::deserialize(code).ok()
}

/// Strict reads of one item. Absent optional attributes are `None` (or empty); every
/// other problem is [`StoreError::Malformed`] with the item's `pk`.
pub(super) struct Reader<'a> {
    item: &'a Item,
    pk: &'a str,
}

impl<'a> Reader<'a> {
    /// Reads `item`.
    pub(super) fn new(item: &'a Item) -> Reader<'a> {
        let pk = match item.get("pk") {
            Some(AttributeValue::S(pk)) => pk.as_str(),
            _ => "(item without a pk)",
        };
        Reader { item, pk }
    }

    /// The error for this item.
    pub(super) fn malformed(&self, problem: impl Into<String>) -> StoreError {
        StoreError::Malformed {
            pk: self.pk.to_string(),
            problem: problem.into(),
        }
    }

    fn required(&self, name: &str) -> Result<&'a AttributeValue, StoreError> {
        self.item
            .get(name)
            .ok_or_else(|| self.malformed(format!("missing attribute `{name}`")))
    }

    fn wrong_type(&self, name: &str, expected: &str) -> StoreError {
        self.malformed(format!("attribute `{name}` is not {expected}"))
    }

    /// A string attribute we always write.
    pub(super) fn string(&self, name: &str) -> Result<&'a str, StoreError> {
        self.required(name)?
            .as_s()
            .map(String::as_str)
            .map_err(|_| self.wrong_type(name, "a string (S)"))
    }

    /// A string attribute that may be absent.
    pub(super) fn optional_string(&self, name: &str) -> Result<Option<&'a str>, StoreError> {
        if self.item.contains_key(name) {
            self.string(name).map(Some)
        } else {
            Ok(None)
        }
    }

    /// A string attribute holding one of a fixed set of codes, read by `parse`.
    pub(super) fn code<T>(
        &self,
        name: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<T, StoreError> {
        let value = self.string(name)?;
        parse(value).ok_or_else(|| self.malformed(format!("unknown {name} `{value}`")))
    }

    /// A number attribute we always write, as `T` (a count, a version, a time).
    pub(super) fn number<T: FromStr>(&self, name: &str) -> Result<T, StoreError> {
        let value = self
            .required(name)?
            .as_n()
            .map_err(|_| self.wrong_type(name, "a number (N)"))?;
        self.parse_number(name, value)
    }

    fn parse_number<T: FromStr>(&self, name: &str, value: &str) -> Result<T, StoreError> {
        value
            .parse()
            .map_err(|_| self.malformed(format!("`{name}` holds `{value}`, out of range")))
    }

    /// A boolean attribute we always write.
    pub(super) fn boolean(&self, name: &str) -> Result<bool, StoreError> {
        self.required(name)?
            .as_bool()
            .copied()
            .map_err(|_| self.wrong_type(name, "a boolean (BOOL)"))
    }

    /// A boolean attribute that may be absent.
    pub(super) fn optional_boolean(&self, name: &str) -> Result<Option<bool>, StoreError> {
        if self.item.contains_key(name) {
            self.boolean(name).map(Some)
        } else {
            Ok(None)
        }
    }

    /// A string set; absent is empty (DynamoDB stores no empty set).
    pub(super) fn string_set(&self, name: &str) -> Result<BTreeSet<String>, StoreError> {
        match self.item.get(name) {
            None => Ok(BTreeSet::new()),
            Some(AttributeValue::Ss(values)) => Ok(values.iter().cloned().collect()),
            Some(_) => Err(self.wrong_type(name, "a string set (SS)")),
        }
    }

    /// A map of strings; absent is empty.
    pub(super) fn string_map(&self, name: &str) -> Result<BTreeMap<String, String>, StoreError> {
        let Some(value) = self.item.get(name) else {
            return Ok(BTreeMap::new());
        };
        let map = value
            .as_m()
            .map_err(|_| self.wrong_type(name, "a map (M)"))?;
        map.iter()
            .map(|(key, value)| match value {
                AttributeValue::S(value) => Ok((key.clone(), value.clone())),
                _ => Err(self.wrong_type(&format!("{name}.{key}"), "a string (S)")),
            })
            .collect()
    }

    /// A map of maps (absent is empty): each entry's name and attributes.
    pub(super) fn maps(&self, name: &str) -> Result<Vec<(&'a str, &'a Item)>, StoreError> {
        let Some(value) = self.item.get(name) else {
            return Ok(Vec::new());
        };
        let map = value
            .as_m()
            .map_err(|_| self.wrong_type(name, "a map (M)"))?;
        map.iter()
            .map(|(key, value)| match value {
                AttributeValue::M(inner) => Ok((key.as_str(), inner)),
                _ => Err(self.wrong_type(&format!("{name}.{key}"), "a map (M)")),
            })
            .collect()
    }

    /// A map of counts we always write, its keys read by `parse_key`: a key it refuses
    /// is an unknown code.
    pub(super) fn counts<K: Ord>(
        &self,
        name: &str,
        parse_key: impl Fn(&str) -> Option<K>,
    ) -> Result<BTreeMap<K, u64>, StoreError> {
        let map = self
            .required(name)?
            .as_m()
            .map_err(|_| self.wrong_type(name, "a map (M)"))?;
        map.iter()
            .map(|(key, value)| {
                let code = parse_key(key)
                    .ok_or_else(|| self.malformed(format!("unknown code `{key}` in `{name}`")))?;
                let field = format!("{name}.{key}");
                let count = value
                    .as_n()
                    .map_err(|_| self.wrong_type(&field, "a number (N)"))?;
                Ok((code, self.parse_number(&field, count)?))
            })
            .collect()
    }
}

/// A map of counts by code.
pub(super) fn counts<'k>(counts: impl IntoIterator<Item = (&'k str, u64)>) -> AttributeValue {
    AttributeValue::M(
        counts
            .into_iter()
            .map(|(k, v)| (k.to_string(), n(v)))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::phone::PhoneRejection;
    use crate::domain::validate::WarningCode;

    #[test]
    fn codes_parse_from_their_documented_names_only() {
        assert_eq!(
            parse_code::<PhoneRejection>("invalid_phone"),
            Some(PhoneRejection::Invalid)
        );
        assert_eq!(
            parse_code::<WarningCode>("invalid_email"),
            Some(WarningCode::InvalidEmail)
        );
        assert_eq!(parse_code::<PhoneRejection>("Invalid"), None);
        assert_eq!(parse_code::<WarningCode>("bad_vibes"), None);
    }

    #[test]
    fn every_problem_names_the_item_and_the_attribute() {
        let item = Item::from([
            ("pk".to_string(), s("CONTACT#a#sms#+1")),
            ("version".to_string(), s("3")),
            ("n".to_string(), n("-1")),
        ]);
        let reader = Reader::new(&item);
        let problem = |e: StoreError| match e {
            StoreError::Malformed { pk, problem } => format!("{pk}: {problem}"),
            other => panic!("not malformed: {other}"),
        };
        let missing = reader.string("status").map(|_| ()).expect_err("missing");
        assert_eq!(
            problem(missing),
            "CONTACT#a#sms#+1: missing attribute `status`"
        );
        let typed = reader
            .number::<u64>("version")
            .map(|_| ())
            .expect_err("an S");
        assert_eq!(
            problem(typed),
            "CONTACT#a#sms#+1: attribute `version` is not a number (N)"
        );
        let range = reader.number::<u64>("n").map(|_| ()).expect_err("negative");
        assert_eq!(
            problem(range),
            "CONTACT#a#sms#+1: `n` holds `-1`, out of range"
        );
        assert_eq!(reader.optional_string("email").ok(), Some(None));
    }
}
