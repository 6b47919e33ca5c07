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
    /// What changed, kept as its JSON text and read as [`Value`] only for the fields
    /// the contact book applies ([`Change::read_value`]): another field's value has
    /// another shape.
    pub value: Json,
}

impl Change {
    /// The value, read as a [`Value`] of the fields the book applies.
    pub fn read_value(&self) -> Result<Value, Unreadable> {
        read_json(self.value.0.get()).map_err(|e| unreadable(&e))
    }
}

/// A JSON value kept as its text, to be read later, once, into the type it turns out
/// to be (reading a body's levels through parsed values built each level again).
#[derive(Clone, Debug, Deserialize)]
#[serde(transparent)]
pub struct Json(Box<serde_json::value::RawValue>);

impl Default for Json {
    fn default() -> Self {
        Json(serde_json::value::RawValue::NULL.to_owned())
    }
}

/// Equal when the values are, however they are spaced.
impl PartialEq for Json {
    fn eq(&self, other: &Json) -> bool {
        let value = |json: &Json| serde_json::from_str::<serde_json::Value>(json.0.get()).ok();
        self.0.get() == other.0.get() || value(self) == value(other)
    }
}

impl Eq for Json {}

/// `T` read from JSON text, with the path of the field that failed.
fn read_json<T: serde::de::DeserializeOwned>(
    json: &str,
) -> Result<T, serde_path_to_error::Error<serde_json::Error>> {
    serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_str(json))
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
        use serde_json::value::RawValue;
        let one = |json: &str| match read_json(json) {
            Ok(read) => Item::Read(read),
            Err(e) => Item::Unreadable(unreadable(&e)),
        };
        // Kept as text, each element is then read once, straight into `T`.
        let json = Box::<RawValue>::deserialize(deserializer)?;
        let json = json.get().trim_start();
        Ok(Items(match json.as_bytes().first() {
            Some(b'n') => Vec::new(),
            Some(b'[') => serde_json::from_str::<Vec<&RawValue>>(json)
                .map_err(de::Error::custom)?
                .into_iter()
                .map(|element| one(element.get()))
                .collect(),
            // Meta sends some lists as a single object.
            Some(b'{') => vec![one(json)],
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

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = r#"{"object": "whatsapp_business_account", "entry": [
        {"id": "1", "changes": [{"field": "messages", "value": {"metadata": {"phone_number_id": "2"},
            "messages": {"from": "447911123456", "id": "wamid.1", "timestamp": "1700000000", "type": "text"},
            "statuses": [{"id": "wamid.2", "status": "read", "timestamp": 1700000001, "recipient_id": "447911123457"},
                         {"id": "wamid.3", "status": "read", "timestamp": {"no": 1}}, 7]}}]},
        "not an entry"]}"#;

    /// The value of the first change of the first entry that read.
    fn first_value(webhook: &Webhook) -> Value {
        let entry = webhook.entry.read().next().expect("an entry");
        let change = entry.changes.read().next().expect("a change");
        change.read_value().expect("its value")
    }

    #[test]
    fn a_body_read_from_its_text_is_the_body_read_from_its_value() {
        let from_text: Webhook = read_json(BODY).expect("the body reads");
        let value: serde_json::Value = serde_json::from_str(BODY).expect("JSON");
        let from_value: Webhook = serde_path_to_error::deserialize(value).expect("the body reads");
        assert_eq!(from_text, from_value);
        assert_eq!(first_value(&from_text), first_value(&from_value));
    }

    #[test]
    fn each_element_is_read_on_its_own_and_an_unreadable_one_is_named_by_its_field() {
        let webhook: Webhook = read_json(BODY).expect("the body reads");
        assert_eq!(webhook.entry.len(), 2);
        assert!(matches!(
            &webhook.entry.0[1],
            Item::Unreadable(Unreadable { field, problem: "has the wrong type" }) if field.is_empty()
        ));
        let value = first_value(&webhook);
        // A single object where a list is expected is a list of one.
        assert_eq!(value.messages.read().count(), 1);
        assert_eq!(value.statuses.len(), 3);
        assert_eq!(value.statuses.read().count(), 1);
        let Item::Unreadable(why) = &value.statuses.0[1] else {
            panic!("the second status reads")
        };
        assert_eq!(why.field, "timestamp");
        assert_eq!(why.problem, "has the wrong type");
        let not_a_list: Items<Status> = read_json("\"x\"").expect("reads");
        assert!(
            matches!(&not_a_list.0[..], [Item::Unreadable(why)] if why.problem == "is not a list")
        );
        let null: Items<Status> = read_json("null").expect("reads");
        assert!(null.is_empty());
    }
}
