//! Meta's WhatsApp Cloud API webhook body, as Meta sends it (DESIGN section 13): every
//! `entry` x `change` x item. Only what the contact book uses is read; every string is a
//! bounded [`Text`], every list may be absent, and a timestamp is a number or a string.
//!
//! Each entry, change and item is read on its own ([`Items`]): one that does not have
//! the shape expected becomes an [`Unreadable`] in its place, naming where it is and
//! which field failed (never a value), and the others are read as usual.

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use super::payload::Text;

/// The value of `object` that marks a body as Meta's WhatsApp webhook.
pub const WHATSAPP_OBJECT: &str = "whatsapp_business_account";

/// A webhook body.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Webhook {
    /// `whatsapp_business_account`.
    pub object: Text<64>,
    /// One per WhatsApp Business Account.
    pub entry: Items<Entry>,
}

/// One WhatsApp Business Account's changes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Entry {
    /// The WhatsApp Business Account id.
    pub id: Text<64>,
    /// Its changes.
    pub changes: Items<Change>,
}

/// One change: a webhook field and its value.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Change {
    /// `messages`, `user_preferences`, `user_id_update`, ...
    pub field: Text<64>,
    /// What changed, read as [`Value`] only for the fields the contact book applies
    /// ([`Change::read_value`]): another field's value has another shape.
    pub value: serde_json::Value,
}

impl Change {
    /// The value, read as a [`Value`] of the fields the book applies.
    pub fn read_value(&self) -> Result<Value, Unreadable> {
        serde_path_to_error::deserialize(&self.value).map_err(|e| unreadable(&e))
    }
}

/// The value of a change.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Value {
    /// Which business number it concerns.
    pub metadata: Metadata,
    /// The people the messages are from.
    pub contacts: Items<WaContact>,
    /// Messages the business received.
    pub messages: Items<Message>,
    /// What became of messages the business sent.
    pub statuses: Items<Status>,
    /// Users' marketing preferences.
    pub user_preferences: Items<UserPreference>,
    /// BSUID changes, when the change carries them at this level (one, or a list).
    pub user_id_update: Items<UserIdUpdate>,
}

/// The business number a change concerns. Only its id is read (`display_phone_number`
/// and the rest are not used, so they can never make a change unreadable).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Metadata {
    /// Its id: names the account (`WABA#{phone_number_id}`).
    pub phone_number_id: Text<64>,
}

/// A WhatsApp user a change mentions.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct WaContact {
    /// Their profile.
    pub profile: Profile,
    /// Their number as WhatsApp knows it; omitted when not shared.
    pub wa_id: Text<32>,
    /// Their business-scoped user id.
    pub user_id: Text<140>,
    /// The portfolio-level id, when Meta sends one.
    pub parent_user_id: Text<140>,
    /// A BSUID change, when it comes with the contact.
    pub user_id_update: Option<UserIdUpdate>,
}

/// A user's WhatsApp profile.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Profile {
    /// The name the user chose.
    pub name: Text<200>,
}

/// A message the business received.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Message {
    /// The sender's number; omitted when not shared.
    pub from: Text<32>,
    /// The sender's BSUID.
    pub from_user_id: Text<140>,
    /// The `wamid`: the idempotency key.
    pub id: Text<256>,
    /// Unix seconds.
    pub timestamp: Integer,
    /// `text`, `image`, `system`, `contacts`, ...
    #[serde(rename = "type")]
    pub kind: Text<64>,
    /// A text message's body.
    pub text: Option<TextBody>,
    /// A system message (the user changed number or BSUID).
    pub system: Option<System>,
    /// Contacts the user shared (`type = contacts`).
    pub contacts: Vec<SharedContact>,
    /// `contact_request` when the user shared their own number on request.
    pub origin: Text<64>,
    /// A BSUID change, when it comes with the message.
    pub user_id_update: Option<UserIdUpdate>,
    /// Set on group messages.
    pub group_id: Text<256>,
}

/// A text message's body.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct TextBody {
    /// The text.
    pub body: Text<4096>,
}

/// A system message.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct System {
    /// `user_changed_number` or `user_changed_user_id`.
    #[serde(rename = "type")]
    pub kind: Text<64>,
    /// The new number (`user_changed_number`).
    pub new_wa_id: Text<32>,
    /// The new number, in older versions of the webhook.
    pub wa_id: Text<32>,
    /// The new BSUID (`user_changed_user_id`).
    pub user_id: Text<140>,
    /// The new BSUID, as some versions name it.
    pub new_user_id: Text<140>,
    /// The previous BSUID, when given.
    pub previous_user_id: Text<140>,
}

/// A contact card the user shared.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct SharedContact {
    /// Its numbers.
    pub phones: Vec<SharedPhone>,
    /// `contact_request`, when given on the card.
    pub origin: Text<64>,
}

/// A number on a shared contact card.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct SharedPhone {
    /// The number as written.
    pub phone: Text<64>,
    /// WhatsApp's id of it.
    pub wa_id: Text<32>,
}

/// `{previous, current}`: a user's BSUID changed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct UserIdUpdate {
    /// The BSUID before.
    pub previous: Text<140>,
    /// The BSUID now.
    pub current: Text<140>,
    /// The user's number, when shared.
    pub wa_id: Text<32>,
}

/// What became of a message the business sent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Status {
    /// The `wamid` of the message.
    pub id: Text<256>,
    /// `sent`, `delivered`, `read` or `failed`.
    pub status: Text<32>,
    /// Unix seconds.
    pub timestamp: Integer,
    /// The recipient's number; omitted when not shared.
    pub recipient_id: Text<32>,
    /// The recipient's BSUID.
    pub recipient_user_id: Text<140>,
    /// `individual` or `group`.
    pub recipient_type: Text<32>,
    /// Why it failed.
    pub errors: Vec<StatusError>,
}

/// One reason a message failed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct StatusError {
    /// Meta's error code (131026, 131050, 131049, ...).
    pub code: Integer,
}

/// A user's marketing preference.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct UserPreference {
    /// The user's number, when shared.
    pub wa_id: Text<32>,
    /// The user's BSUID.
    pub user_id: Text<140>,
    /// `marketing_messages`.
    pub category: Text<64>,
    /// `stop` or `resume`.
    pub value: Text<32>,
    /// Unix seconds.
    pub timestamp: Integer,
}

/// A whole number (Unix seconds, an error code), sent as a number or as a string of
/// digits; `None` when absent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Integer(pub Option<i64>);

impl Integer {
    /// As Unix seconds: RFC 3339 UTC (seconds), comparable as text with the other times stored.
    pub fn rfc3339(self) -> Option<String> {
        let time = chrono::DateTime::from_timestamp(self.0?, 0)?;
        Some(time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    }
}

impl<'de> Deserialize<'de> for Integer {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(IntegerVisitor)
    }
}

struct IntegerVisitor;

impl<'de> Visitor<'de> for IntegerVisitor {
    type Value = Integer;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a whole number, or a string of digits")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Integer, E> {
        Ok(Integer(i64::try_from(v).ok()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Integer, E> {
        Ok(Integer(Some(v)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Integer, E> {
        // Whole seconds are all that is kept; the cast saturates.
        Ok(Integer(v.is_finite().then_some(v as i64)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Integer, E> {
        v.trim()
            .parse()
            .map(|t| Integer(Some(t)))
            .map_err(|_| E::custom("is not a whole number"))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Integer, E> {
        Ok(Integer(None))
    }

    fn visit_none<E: de::Error>(self) -> Result<Integer, E> {
        Ok(Integer(None))
    }
}

/// A list whose elements are read one by one: an element that cannot be read is kept in
/// its place as [`Item::Unreadable`], and the others are read. Absent or `null` is an
/// empty list; anything else that is not a list is one unreadable element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Items<T>(pub Vec<Item<T>>);

/// One element of [`Items`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item<T> {
    /// Read as expected.
    Read(T),
    /// Not of the shape expected.
    Unreadable(Unreadable),
}

/// Why an element could not be read: the path of the field that failed inside it
/// (empty when the element itself has the wrong type) and what kind of problem it was.
/// Never a value: items hold numbers and names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unreadable {
    /// The field inside the element, as `text.body` or `errors[0].code`.
    pub field: String,
    /// What is wrong, without the value.
    pub problem: &'static str,
}

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() {
            f.write_str(self.problem)
        } else {
            write!(f, "`{}` {}", self.field, self.problem)
        }
    }
}

impl<T> Default for Items<T> {
    fn default() -> Self {
        Items(Vec::new())
    }
}

impl<T> Items<T> {
    /// How many elements there are, read or not.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The elements that were read.
    pub fn read(&self) -> impl Iterator<Item = &T> {
        self.0.iter().filter_map(|item| match item {
            Item::Read(value) => Some(value),
            Item::Unreadable(_) => None,
        })
    }
}

impl<'de, T: serde::de::DeserializeOwned> Deserialize<'de> for Items<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let one = |value: serde_json::Value| match serde_path_to_error::deserialize(value) {
            Ok(read) => Item::Read(read),
            Err(e) => Item::Unreadable(unreadable(&e)),
        };
        Ok(Items(match serde_json::Value::deserialize(deserializer)? {
            serde_json::Value::Null => Vec::new(),
            serde_json::Value::Array(values) => values.into_iter().map(one).collect(),
            // Meta sends some lists as a single object.
            object @ serde_json::Value::Object(_) => vec![one(object)],
            _ => vec![Item::Unreadable(Unreadable {
                field: String::new(),
                problem: "is not a list",
            })],
        }))
    }
}

/// Where a value failed to read and how, without the value.
fn unreadable(e: &serde_path_to_error::Error<serde_json::Error>) -> Unreadable {
    Unreadable {
        field: e.path().to_string().trim_start_matches('.').to_string(),
        problem: problem_of(e.inner()),
    }
}

/// The kind of a serde error, without the value it may quote.
fn problem_of(error: &serde_json::Error) -> &'static str {
    let text = error.to_string();
    if text.starts_with("invalid type") {
        "has the wrong type"
    } else if text.starts_with("invalid value") || text.starts_with("invalid length") {
        "has a value that cannot be used"
    } else if text.starts_with("missing field") {
        "is missing"
    } else {
        "cannot be read"
    }
}
