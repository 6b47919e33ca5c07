//! Every event contact-events takes as serde types (DESIGN sections 10, 13 and 14:
//! `campaign.completed`, `message.inbound`, `contact.captured`, `contacts.export`,
//! `import.undo`, `contact.erase`, `imports.list` and Meta's webhook body), and how
//! one is decoded.
//!
//! Decoding takes two steps: the `type` first, then the payload of that type. A
//! `#[serde(tag = "type")]` enum would do both at once, but serde buffers an internally
//! tagged payload before it reads it, and `serde_path_to_error` cannot see through that
//! buffer: an error would name `.` instead of `recipients[2].phone`.
//!
//! Strings are [`Text`]: cleaned with [`clean_value`], limited in length, and absent,
//! null and blank alike are `None`. Whether a field is required, and what its value
//! must look like (an account id, a channel), is checked where the event is handled,
//! in the order DESIGN lists the fields.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::error::{invalid, undecodable, EventError};
use super::meta::{Webhook, WHATSAPP_OBJECT};
use crate::domain::channel::Channel;
use crate::domain::cleaning::clean_value;
use crate::domain::upload::is_valid_account_id;

/// An event, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// `campaign.completed`.
    CampaignCompleted(CampaignCompleted),
    /// `message.inbound`.
    MessageInbound(MessageInbound),
    /// `contact.captured`.
    ContactCaptured(ContactCaptured),
    /// `contacts.export`.
    ContactsExport(ContactsExport),
    /// `import.undo`.
    ImportUndo(ImportUndo),
    /// `contact.erase`.
    ContactErase(ContactErase),
    /// `imports.list`.
    ImportsList(ImportsList),
    /// Meta's WhatsApp webhook body (`"object": "whatsapp_business_account"`).
    Webhook(Box<Webhook>),
}

impl Event {
    /// Its `type`; `None` for a webhook body (its items are typed one by one).
    pub fn event_type(&self) -> Option<EventType> {
        Some(match self {
            Event::CampaignCompleted(_) => EventType::CampaignCompleted,
            Event::MessageInbound(_) => EventType::MessageInbound,
            Event::ContactCaptured(_) => EventType::ContactCaptured,
            Event::ContactsExport(_) => EventType::ContactsExport,
            Event::ImportUndo(_) => EventType::ImportUndo,
            Event::ContactErase(_) => EventType::ContactErase,
            Event::ImportsList(_) => EventType::ImportsList,
            Event::Webhook(_) => return None,
        })
    }
}

/// The value of an event's `type`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum EventType {
    /// `campaign.completed`.
    CampaignCompleted,
    /// `message.inbound`.
    MessageInbound,
    /// `contact.captured`.
    ContactCaptured,
    /// `contacts.export`.
    ContactsExport,
    /// `import.undo`.
    ImportUndo,
    /// `contact.erase`.
    ContactErase,
    /// `imports.list`.
    ImportsList,
}

impl EventType {
    /// Every type, in the order messages list them.
    pub const ALL: [EventType; 7] = [
        EventType::CampaignCompleted,
        EventType::MessageInbound,
        EventType::ContactCaptured,
        EventType::ContactsExport,
        EventType::ImportUndo,
        EventType::ContactErase,
        EventType::ImportsList,
    ];

    /// The documented name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::CampaignCompleted => "campaign.completed",
            EventType::MessageInbound => "message.inbound",
            EventType::ContactCaptured => "contact.captured",
            EventType::ContactsExport => "contacts.export",
            EventType::ImportUndo => "import.undo",
            EventType::ContactErase => "contact.erase",
            EventType::ImportsList => "imports.list",
        }
    }

    /// The type named `name`, if any.
    pub fn parse(name: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

/// `campaign.completed`: a campaign finished; its delivered recipients are saved.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, expecting = "a JSON object")]
pub struct CampaignCompleted {
    /// Owning account.
    pub account_id: Text<64>,
    /// The campaign; also its idempotency key.
    pub campaign_id: Text<128>,
    /// Channel the campaign ran on.
    pub channel: Text<16>,
    /// Only `succeeded` saves anything.
    pub status: Text<32>,
    /// Where the recipients file is; wins over `recipients`.
    pub recipients_file: Option<RecipientsFile>,
    /// The recipients inline.
    pub recipients: Option<Vec<Recipient>>,
    /// ISO 3166-1 alpha-2 country for national numbers.
    pub default_country: Text<8>,
}

/// Where a campaign's recipients file is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecipientsFile {
    /// Bucket.
    pub bucket: Text<63>,
    /// Key; its extension gives the format.
    pub key: Text<1024>,
}

/// One inline recipient: its fields are the columns of a file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recipient {
    /// Every field but `delivery_status`, by name, as cell text: a string as written,
    /// a number or boolean as JSON writes it, null as a blank cell.
    pub cells: BTreeMap<String, String>,
    /// `failed` and `undelivered` mean the recipient is not saved.
    pub delivery_status: Text<32>,
}

impl Recipient {
    /// Whether the message reached the recipient (the default when no status is given).
    pub fn delivered(&self) -> bool {
        let status = self.delivery_status.get().map(str::to_ascii_lowercase);
        !matches!(status.as_deref(), Some("failed" | "undelivered"))
    }
}

/// `message.inbound`: someone wrote to the account.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, expecting = "a JSON object")]
pub struct MessageInbound {
    /// Owning account.
    pub account_id: Text<64>,
    /// Channel the message came on.
    pub channel: Text<16>,
    /// The message; also its idempotency key.
    pub message_id: Text<256>,
    /// The sender's number.
    pub from: Text<64>,
    /// The name the sender's profile shows.
    pub profile_name: Text<200>,
    /// The sender's first name, when known.
    pub first_name: Text<50>,
    /// The sender's last name, when known.
    pub last_name: Text<50>,
    /// RFC 3339 time of the message.
    pub received_at: Text<64>,
    /// ISO 3166-1 alpha-2 country for national numbers.
    pub default_country: Text<8>,
    /// The message's text, when it has one: on `sms`, a whole message that is a STOP
    /// or START keyword changes consent (DESIGN section 13). Never stored; a text longer
    /// than 4,096 characters is no keyword and is dropped, never an error.
    pub text: MessageText,
}

/// `contact.captured`: an agent learned who a contact is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, expecting = "a JSON object")]
pub struct ContactCaptured {
    /// Owning account.
    pub account_id: Text<64>,
    /// Channel of the conversation.
    pub channel: Text<16>,
    /// The contact's number.
    pub phone: Text<64>,
    /// Full name.
    pub name: Text<101>,
    /// First name.
    pub first_name: Text<50>,
    /// Last name.
    pub last_name: Text<50>,
    /// E-mail address.
    pub email: Text<255>,
    /// Who captured it (checked, not stored).
    pub captured_by: Text<64>,
    /// The conversation it was captured in (checked, not stored).
    pub conversation_id: Text<256>,
    /// ISO 3166-1 alpha-2 country for national numbers.
    pub default_country: Text<8>,
}

/// `contacts.export`: an account's contacts as a CSV file (DESIGN section 14). Every
/// filter is optional; an empty list is no filter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, expecting = "a JSON object")]
pub struct ContactsExport {
    /// Owning account.
    pub account_id: Text<64>,
    /// Only this channel's contacts.
    pub channel: Text<16>,
    /// Contacts in any of these lists.
    pub lists: Option<Vec<Text<100>>>,
    /// Contacts with any of these tags.
    pub tags: Option<Vec<Text<100>>>,
    /// Contacts in any of these statuses (`active`, `archived`, `blocked`).
    pub status: Option<Vec<Text<16>>>,
    /// `marketing_opted_in` or `marketing_opted_out`.
    pub consent: Text<32>,
}

/// `import.undo`: delete the contacts an import created that nobody changed since
/// (DESIGN section 14).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, expecting = "a JSON object")]
pub struct ImportUndo {
    /// Owning account.
    pub account_id: Text<64>,
    /// The import to undo (`imp_` and 16 hex digits).
    pub import_id: Text<64>,
}

/// `contact.erase`: a person's right to erasure (DESIGN section 14).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, expecting = "a JSON object")]
pub struct ContactErase {
    /// Owning account.
    pub account_id: Text<64>,
    /// The contact's channel.
    pub channel: Text<16>,
    /// The contact's number; or, for a contact known only by it, `user_id`.
    pub phone: Text<64>,
    /// The contact's WhatsApp user id (BSUID), when no number is given.
    pub user_id: Text<160>,
    /// ISO 3166-1 alpha-2 country for a national number.
    pub default_country: Text<8>,
}

/// `imports.list`: an account's imports, newest first, a page at a time (DESIGN section
/// 15, History).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, expecting = "a JSON object")]
pub struct ImportsList {
    /// Owning account.
    pub account_id: Text<64>,
    /// Imports per page: 1 to 100, 20 when absent.
    pub limit: WholeNumber,
    /// The previous answer's `next`; absent or null for the first page.
    pub next: Text<256>,
}

/// Decodes an event from `json` (a value the deserializer can read twice). `type_hint`
/// is the type when the event has none (an EventBridge envelope's `detail-type`).
pub fn decode<'de, D>(json: D, type_hint: Option<&str>) -> Result<Event, EventError>
where
    D: Deserializer<'de, Error = serde_json::Error> + Copy,
{
    // The head is read as an object only, so the derived payload structs below never
    // see an array.
    let head: Head = serde_path_to_error::deserialize(json).map_err(undecodable)?;
    if head.object.get() == Some(WHATSAPP_OBJECT) {
        return serde_path_to_error::deserialize(json)
            .map(|webhook| Event::Webhook(Box::new(webhook)))
            .map_err(undecodable);
    }
    let name = head
        .kind
        .into_option()
        .or_else(|| type_hint.map(clean_value).filter(|t| !t.is_empty()))
        .ok_or_else(|| invalid("type", "is required"))?;
    let kind = EventType::parse(&name).ok_or_else(|| {
        invalid(
            "type",
            format!(
                "{name:?} is not one of {}",
                EventType::ALL.map(EventType::as_str).join(", ")
            ),
        )
    })?;
    let event = match kind {
        EventType::CampaignCompleted => {
            serde_path_to_error::deserialize(json).map(Event::CampaignCompleted)
        }
        EventType::MessageInbound => {
            serde_path_to_error::deserialize(json).map(Event::MessageInbound)
        }
        EventType::ContactCaptured => {
            serde_path_to_error::deserialize(json).map(Event::ContactCaptured)
        }
        EventType::ContactsExport => {
            serde_path_to_error::deserialize(json).map(Event::ContactsExport)
        }
        EventType::ImportUndo => serde_path_to_error::deserialize(json).map(Event::ImportUndo),
        EventType::ContactErase => serde_path_to_error::deserialize(json).map(Event::ContactErase),
        EventType::ImportsList => serde_path_to_error::deserialize(json).map(Event::ImportsList),
    };
    event.map_err(undecodable)
}

/// What is read first: the type.
#[derive(Default)]
struct Head {
    kind: Text<64>,
    object: Text<64>,
}

/// A struct read from a JSON object only: a derived struct would also take an array,
/// field by field, and an event is never an array.
trait ObjectFields: Default {
    /// What the object is, for the message when the value is not one.
    const EXPECTING: &'static str;

    /// Reads the value of the field `name` from `map` (skipping fields it does not have).
    fn read<'de, A: MapAccess<'de>>(&mut self, name: &str, map: &mut A) -> Result<(), A::Error>;
}

struct ObjectVisitor<T>(PhantomData<T>);

impl<'de, T: ObjectFields> Visitor<'de> for ObjectVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(T::EXPECTING)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        let mut value = T::default();
        while let Some(name) = map.next_key::<String>()? {
            value.read(&name, &mut map)?;
        }
        Ok(value)
    }
}

fn skip<'de, A: MapAccess<'de>>(map: &mut A) -> Result<(), A::Error> {
    map.next_value::<IgnoredAny>().map(drop)
}

impl ObjectFields for Head {
    const EXPECTING: &'static str = "a JSON object";

    fn read<'de, A: MapAccess<'de>>(&mut self, name: &str, map: &mut A) -> Result<(), A::Error> {
        match name {
            "type" => self.kind = map.next_value()?,
            "object" => self.object = map.next_value()?,
            _ => skip(map)?,
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for Head {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ObjectVisitor(PhantomData))
    }
}

impl ObjectFields for RecipientsFile {
    const EXPECTING: &'static str = "an object with bucket and key";

    fn read<'de, A: MapAccess<'de>>(&mut self, name: &str, map: &mut A) -> Result<(), A::Error> {
        match name {
            "bucket" => self.bucket = map.next_value()?,
            "key" => self.key = map.next_value()?,
            _ => skip(map)?,
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for RecipientsFile {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ObjectVisitor(PhantomData))
    }
}

/// `account_id`, required and of the documented pattern.
pub(super) fn account_id(value: Text<64>) -> Result<String, EventError> {
    let account = value.required("account_id")?;
    if !is_valid_account_id(&account) {
        return Err(invalid(
            "account_id",
            "must be 1-64 characters of A-Z a-z 0-9 _ -",
        ));
    }
    Ok(account)
}

/// `channel`, required, in any case.
pub(super) fn channel(value: Text<16>) -> Result<Channel, EventError> {
    let channel = value.required("channel")?;
    Channel::parse(&channel.to_ascii_lowercase()).ok_or_else(|| {
        invalid(
            "channel",
            format!("{channel:?} is not one of whatsapp, sms, voice"),
        )
    })
}

/// A string field: cleaned with [`clean_value`], at most `MAX` characters; absent,
/// null and blank are all `None`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Text<const MAX: usize>(Option<String>);

impl<const MAX: usize> Text<MAX> {
    /// A field with this value, cleaned (for building payloads in code).
    pub fn new(value: &str) -> Text<MAX> {
        let value = clean_value(value);
        Text((!value.is_empty()).then_some(value))
    }

    /// The value, if any.
    pub fn get(&self) -> Option<&str> {
        self.0.as_deref()
    }

    /// The value, if any.
    pub fn into_option(self) -> Option<String> {
        self.0
    }

    /// The value, or an error naming `field` as required.
    pub fn required(self, field: &str) -> Result<String, EventError> {
        self.0.ok_or_else(|| invalid(field, "is required"))
    }
}

impl<'de, const MAX: usize> Deserialize<'de> for Text<MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TextVisitor::<MAX>)
    }
}

/// A message's text, read only to find a keyword: cleaned like [`Text`]; longer than
/// 4,096 characters, it is dropped (a long message is never a keyword, and never a
/// reason to lose the message).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MessageText(Option<String>);

impl MessageText {
    /// Longest text kept.
    const MAX: usize = 4096;

    /// A text with this value (for building payloads in code).
    pub fn new(value: &str) -> MessageText {
        MessageText(Text::<{ MessageText::MAX }>::new(value).into_option())
    }

    /// The text, if any was sent and it is not too long.
    pub fn get(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

impl<'de> Deserialize<'de> for MessageText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> de::Visitor<'de> for Visitor {
            type Value = MessageText;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<MessageText, E> {
                let value = clean_value(value);
                let kept = !value.is_empty() && value.chars().count() <= MessageText::MAX;
                Ok(MessageText(kept.then_some(value)))
            }

            fn visit_unit<E: de::Error>(self) -> Result<MessageText, E> {
                Ok(MessageText(None))
            }

            fn visit_none<E: de::Error>(self) -> Result<MessageText, E> {
                Ok(MessageText(None))
            }

            fn visit_some<D: Deserializer<'de>>(self, inner: D) -> Result<MessageText, D::Error> {
                MessageText::deserialize(inner)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// A whole-number field: absent and null are `None`; a negative number is kept (the
/// handler says which range it must be in), a fraction or a string is an error.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct WholeNumber(Option<i64>);

impl WholeNumber {
    /// A field with this value (for building payloads in code).
    pub fn new(value: i64) -> WholeNumber {
        WholeNumber(Some(value))
    }

    /// The value, if any.
    pub fn get(self) -> Option<i64> {
        self.0
    }
}

impl<'de> Deserialize<'de> for WholeNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> de::Visitor<'de> for Visitor {
            type Value = WholeNumber;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a whole number")
            }

            fn visit_u64<E: de::Error>(self, value: u64) -> Result<WholeNumber, E> {
                Ok(WholeNumber(Some(i64::try_from(value).unwrap_or(i64::MAX))))
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<WholeNumber, E> {
                Ok(WholeNumber(Some(value)))
            }

            fn visit_f64<E: de::Error>(self, _: f64) -> Result<WholeNumber, E> {
                Err(E::custom("must be a whole number, not a fraction"))
            }

            fn visit_unit<E: de::Error>(self) -> Result<WholeNumber, E> {
                Ok(WholeNumber(None))
            }

            fn visit_none<E: de::Error>(self) -> Result<WholeNumber, E> {
                Ok(WholeNumber(None))
            }

            fn visit_some<D: Deserializer<'de>>(self, inner: D) -> Result<WholeNumber, D::Error> {
                WholeNumber::deserialize(inner)
            }

            fn visit_str<E: de::Error>(self, _: &str) -> Result<WholeNumber, E> {
                Err(E::custom("must be a number, not a string"))
            }

            fn visit_bool<E: de::Error>(self, _: bool) -> Result<WholeNumber, E> {
                Err(E::custom("must be a number, not a boolean"))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<WholeNumber, A::Error> {
                Err(de::Error::custom("must be a number, not an array"))
            }

            fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<WholeNumber, A::Error> {
                Err(de::Error::custom("must be a number, not an object"))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

struct TextVisitor<const MAX: usize>;

fn not_a_string<E: de::Error>(what: &str) -> E {
    E::custom(format_args!("must be a string, not {what}"))
}

impl<'de, const MAX: usize> Visitor<'de> for TextVisitor<MAX> {
    type Value = Text<MAX>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a string of at most {MAX} characters")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Text<MAX>, E> {
        let value = clean_value(value);
        if value.chars().count() > MAX {
            return Err(E::custom(format_args!("is longer than {MAX} characters")));
        }
        Ok(Text((!value.is_empty()).then_some(value)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Text<MAX>, E> {
        Ok(Text(None))
    }

    fn visit_none<E: de::Error>(self) -> Result<Text<MAX>, E> {
        Ok(Text(None))
    }

    fn visit_some<D: Deserializer<'de>>(self, inner: D) -> Result<Text<MAX>, D::Error> {
        Text::deserialize(inner)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Text<MAX>, E> {
        Err(not_a_string("a boolean"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Text<MAX>, E> {
        Err(not_a_string("a number"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Text<MAX>, E> {
        Err(not_a_string("a number"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Text<MAX>, E> {
        Err(not_a_string("a number"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Text<MAX>, A::Error> {
        Err(not_a_string("an array"))
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Text<MAX>, A::Error> {
        Err(not_a_string("an object"))
    }
}

impl ObjectFields for Recipient {
    const EXPECTING: &'static str = "an object";

    fn read<'de, A: MapAccess<'de>>(&mut self, name: &str, map: &mut A) -> Result<(), A::Error> {
        if name == "delivery_status" {
            self.delivery_status = map.next_value()?;
        } else {
            let Cell(text) = map.next_value()?;
            self.cells.insert(name.to_string(), text);
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for Recipient {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ObjectVisitor(PhantomData))
    }
}

/// One inline recipient's field as a cell: what a file would hold.
struct Cell(String);

impl<'de> Deserialize<'de> for Cell {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CellVisitor)
    }
}

struct CellVisitor;

impl<'de> Visitor<'de> for CellVisitor {
    type Value = Cell;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Cell, E> {
        Ok(Cell(value.to_string()))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Cell, E> {
        Ok(Cell(value.to_string()))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Cell, E> {
        Ok(Cell(value.to_string()))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Cell, E> {
        // As JSON writes it (`1.0`, `1e300`), not as Rust's Display does (`1`).
        let number = serde_json::Number::from_f64(value);
        Ok(Cell(number.map(|n| n.to_string()).unwrap_or_default()))
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Cell, E> {
        Ok(Cell(value.to_string()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Cell, E> {
        Ok(Cell(String::new()))
    }

    fn visit_none<E: de::Error>(self) -> Result<Cell, E> {
        Ok(Cell(String::new()))
    }

    fn visit_some<D: Deserializer<'de>>(self, inner: D) -> Result<Cell, D::Error> {
        Cell::deserialize(inner)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Cell, A::Error> {
        Err(not_a_string("an array"))
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Cell, A::Error> {
        Err(not_a_string("an object"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decoded(event: serde_json::Value) -> Result<Event, EventError> {
        decode(&event, None)
    }

    fn field_of<T: fmt::Debug>(result: Result<T, EventError>) -> (String, String) {
        match result {
            Err(EventError::InvalidField { field, problem }) => (field, problem),
            other => panic!("not an invalid field: {other:?}"),
        }
    }

    #[test]
    fn strings_are_cleaned_and_blank_is_absent() {
        let event = decoded(
            json!({"type": " message.inbound ", "account_id": "\u{200B}acme\t",
            "channel": "sms", "message_id": "m", "from": "+447911123456", "first_name": "  ", "last_name": null}),
        );
        let Ok(Event::MessageInbound(inbound)) = event else {
            panic!("{event:?}")
        };
        assert_eq!(inbound.account_id.get(), Some("acme"));
        assert_eq!(inbound.first_name, Text(None));
        assert_eq!(inbound.last_name, Text(None));
        assert_eq!(inbound.received_at, Text(None));
    }

    #[test]
    fn errors_name_the_path_of_the_field() {
        let campaign = |recipients: serde_json::Value| json!({"type": "campaign.completed", "account_id": "acme", "recipients": recipients});
        for (event, field, problem) in [
            (
                campaign(json!([{"phone": "+1"}, {"phone": "+2"}, {"phone": ["+3"]}])),
                "recipients[2].phone",
                "must be a string, not an array",
            ),
            (
                campaign(json!([{"phone": "+1", "delivery_status": 4}])),
                "recipients[0].delivery_status",
                "must be a string, not a number",
            ),
            (
                campaign(json!([{"phone": "+1"}, 7])),
                "recipients[1]",
                "invalid type: integer, expected an object",
            ),
            (
                campaign(json!("+1")),
                "recipients",
                "invalid type: string, expected a sequence",
            ),
            (
                json!({"type": "campaign.completed", "recipients_file": {"bucket": "b".repeat(64)}}),
                "recipients_file.bucket",
                "is longer than 63 characters",
            ),
            (
                json!({"type": "campaign.completed", "recipients_file": ["b", "k"]}),
                "recipients_file",
                "invalid type: sequence, expected an object with bucket and key",
            ),
            (
                json!({"type": "campaign.completed", "campaign_id": 5}),
                "campaign_id",
                "must be a string, not a number",
            ),
            (
                json!({"type": "contact.captured", "email": true}),
                "email",
                "must be a string, not a boolean",
            ),
            (
                json!({"type": "message.inbound", "from": {"n": 1}}),
                "from",
                "must be a string, not an object",
            ),
            (
                json!({"type": "unknown"}),
                "type",
                "\"unknown\" is not one of campaign.completed, message.inbound, contact.captured, contacts.export, import.undo, contact.erase, imports.list",
            ),
            (
                json!({"type": "contacts.export", "lists": ["VIP", 3]}),
                "lists[1]",
                "must be a string, not a number",
            ),
            (
                json!({"type": "contacts.export", "tags": "VIP"}),
                "tags",
                "invalid type: string, expected a sequence",
            ),
            (
                json!({"type": "contacts.export", "consent": false}),
                "consent",
                "must be a string, not a boolean",
            ),
            (
                json!({"type": "imports.list", "limit": "20"}),
                "limit",
                "must be a number, not a string",
            ),
            (
                json!({"type": "imports.list", "limit": 2.5}),
                "limit",
                "must be a whole number, not a fraction",
            ),
            (
                json!({"type": "imports.list", "next": 7}),
                "next",
                "must be a string, not a number",
            ),
            (json!({"type": 3}), "type", "must be a string, not a number"),
            (json!({"account_id": "acme"}), "type", "is required"),
            (
                json!([1]),
                "(event)",
                "invalid type: sequence, expected a JSON object",
            ),
        ] {
            assert_eq!(
                field_of(decoded(event)),
                (field.to_string(), problem.to_string())
            );
        }
    }

    #[test]
    fn recipients_keep_numbers_and_booleans_as_cells() {
        let event = decoded(json!({"type": "campaign.completed", "recipients": [
            {"phone": 919876543210u64, "name": "A", "vip": true, "score": 1.0, "note": null, "delivery_status": "FAILED"}]}));
        let Ok(Event::CampaignCompleted(campaign)) = event else {
            panic!("{event:?}")
        };
        let recipient = &campaign.recipients.expect("inline")[0];
        let cells: Vec<(&str, &str)> = recipient
            .cells
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            cells,
            [
                ("name", "A"),
                ("note", ""),
                ("phone", "919876543210"),
                ("score", "1.0"),
                ("vip", "true")
            ]
        );
        assert!(!recipient.delivered());
    }

    #[test]
    fn the_type_hint_applies_only_when_the_event_has_no_type() {
        let detail = json!({"account_id": "acme"});
        assert!(matches!(
            decode(&detail, Some("contact.captured")),
            Ok(Event::ContactCaptured(_))
        ));
        let typed = json!({"type": "message.inbound"});
        assert!(matches!(
            decode(&typed, Some("contact.captured")),
            Ok(Event::MessageInbound(_))
        ));
    }

    #[test]
    fn account_and_channel_are_checked() {
        assert_eq!(
            account_id(Text::new("acme-1")).ok().as_deref(),
            Some("acme-1")
        );
        assert_eq!(
            field_of(account_id(Text::new("a b"))),
            (
                "account_id".into(),
                "must be 1-64 characters of A-Z a-z 0-9 _ -".into()
            )
        );
        assert_eq!(channel(Text::new("SMS")).ok(), Some(Channel::Sms));
        assert_eq!(
            field_of(channel(Text::new("fax"))),
            (
                "channel".into(),
                "\"fax\" is not one of whatsapp, sms, voice".into()
            )
        );
        assert_eq!(
            field_of(channel(Text::default())),
            ("channel".into(), "is required".into())
        );
    }
}
