//! The export's fixed columns: one per canonical field a contact stores, titled as an
//! import maps it back (DESIGN section 6), then one per custom attribute, titled with
//! its name as the import titled it.
//!
//! What the import does not read back is not exported: status, source, anonymity and
//! the timestamps would come back as custom attributes and change every contact.
//!
//! A WhatsApp contact's business-scoped user id (BSUID, DESIGN section 13) has its own
//! column, `WhatsApp User ID`, in every export: a contact known only by it has an empty
//! `Phone` and the BSUID of its key there, which an import on `whatsapp` takes as the
//! row's key. One stored attribute, `user_id`, holds either id; each value goes in one
//! column only, and the import reads both back into that attribute, the `User ID`
//! column winning, so every row re-imports unchanged.

use crate::domain::channel::Channel;
use crate::domain::contact::Contact;
use crate::domain::field::Field;
use crate::domain::whatsapp::{is_bsuid, BSUID_KEY_PREFIX};

/// The fixed columns: title, and the field an import maps it to.
pub const EXPORT_COLUMNS: [(&str, Field); 21] = [
    ("Phone", Field::Phone),
    ("WhatsApp User ID", Field::WhatsappUserId),
    ("Name", Field::Name),
    ("First Name", Field::FirstName),
    ("Middle Name", Field::MiddleName),
    ("Last Name", Field::LastName),
    ("Title", Field::Title),
    ("Email", Field::Email),
    ("WhatsApp Opted", Field::WhatsappOpted),
    ("User ID", Field::UserId),
    ("Reference", Field::Reference),
    ("Company", Field::Company),
    ("Address Line 1", Field::AddressLine1),
    ("Address Line 2", Field::AddressLine2),
    ("City", Field::City),
    ("State", Field::State),
    ("Postcode", Field::Postcode),
    ("Date of Birth", Field::DateOfBirth),
    ("Alternate Phone", Field::AlternatePhone),
    ("Lists", Field::Lists),
    ("Tags", Field::Tags),
];

/// A contact's cells of the fixed columns, as stored (not yet formula-safe): E.164
/// phone (blank for a BSUID-only contact), its BSUID, text fields, `TRUE`/`FALSE` or
/// blank for the opt-in, lists and tags joined by `;` (the import splits on it).
pub fn contact_cells(contact: &Contact) -> Vec<String> {
    let user_id = contact.text.get("user_id").map(String::as_str);
    let whatsapp_user_id = whatsapp_user_id(contact, user_id);
    EXPORT_COLUMNS
        .iter()
        .map(|(_, field)| match field {
            Field::Phone => contact.e164().unwrap_or_default().to_string(),
            Field::WhatsappUserId => whatsapp_user_id.unwrap_or_default().to_string(),
            Field::UserId => match user_id {
                Some(id) if Some(id) != whatsapp_user_id => id.to_string(),
                _ => String::new(),
            },
            Field::WhatsappOpted => match contact.whatsapp_opted {
                Some(true) => "TRUE".into(),
                Some(false) => "FALSE".into(),
                None => String::new(),
            },
            Field::Lists => join(&contact.lists),
            Field::Tags => join(&contact.tags),
            other => contact.text.get(other.name()).cloned().unwrap_or_default(),
        })
        .collect()
}

/// The `WhatsApp User ID` cell: a BSUID-only contact's key (what a re-import must key
/// the row by, even after Meta changed the person's BSUID and `user_id` followed), else
/// a WhatsApp contact's `user_id` when it is a BSUID. Never on SMS or voice.
fn whatsapp_user_id<'c>(contact: &'c Contact, user_id: Option<&'c str>) -> Option<&'c str> {
    if contact.channel != Channel::Whatsapp {
        return None;
    }
    match contact.phone.strip_prefix(BSUID_KEY_PREFIX) {
        Some(key) => Some(key),
        None => user_id.filter(|id| is_bsuid(id)),
    }
}

fn join(values: &std::collections::BTreeSet<String>) -> String {
    values
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(";")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::contact::TEXT_FIELDS;

    #[test]
    fn every_title_maps_back_to_its_field() {
        for (title, field) in EXPORT_COLUMNS {
            assert_eq!(Field::from_header(title), Some(field), "{title}");
        }
    }

    #[test]
    fn every_stored_field_has_a_column() {
        // GIVEN the fields a contact stores: phone, opt-in, lists, tags and the text fields
        let exported: Vec<&str> = EXPORT_COLUMNS.iter().map(|(_, f)| f.name()).collect();

        // THEN each has exactly one column (the country code is folded into E.164), and
        // the BSUID one more (held by the key or by `user_id`)
        for name in TEXT_FIELDS.iter().copied().chain([
            "phone",
            "whatsapp_opted",
            "lists",
            "tags",
            "whatsapp_user_id",
        ]) {
            assert_eq!(exported.iter().filter(|e| **e == name).count(), 1, "{name}");
        }
        assert_eq!(exported.len(), TEXT_FIELDS.len() + 5);
    }

    const BSUID: &str = "GB.13491208655302741918";

    fn contact(channel: Channel, key: &str, user_id: Option<&str>) -> Contact {
        use crate::domain::contact::{ContactDraft, Source, WriteStamp};
        let mut draft = ContactDraft {
            phone: key.into(),
            ..Default::default()
        };
        if let Some(id) = user_id {
            draft.text.insert("user_id", id.into());
        }
        let stamp = WriteStamp {
            now: "2026-11-29T10:00:00Z".into(),
            source: Source::Inbound,
            import_id: None,
            campaign_id: None,
        };
        Contact::create("acme", channel, &draft, &stamp)
    }

    /// The cells of the Phone, WhatsApp User ID and User ID columns.
    fn ids(contact: &Contact) -> [String; 3] {
        let cells = contact_cells(contact);
        let at = |title: &str| {
            let i = EXPORT_COLUMNS
                .iter()
                .position(|(t, _)| *t == title)
                .expect("a column");
            cells[i].clone()
        };
        [at("Phone"), at("WhatsApp User ID"), at("User ID")]
    }

    #[test]
    fn a_bsuid_only_contact_has_no_phone_and_its_key_s_bsuid() {
        let key = format!("bsuid:{BSUID}");
        assert_eq!(
            ids(&contact(Channel::Whatsapp, &key, Some(BSUID))),
            ["", BSUID, ""]
        );
        // The business's own id stays in User ID.
        assert_eq!(
            ids(&contact(Channel::Whatsapp, &key, Some("C-42"))),
            ["", BSUID, "C-42"]
        );
        // After Meta changed the BSUID, the key's is what finds the contact again.
        assert_eq!(
            ids(&contact(Channel::Whatsapp, &key, Some("GB.999"))),
            ["", BSUID, "GB.999"]
        );
    }

    #[test]
    fn a_numbered_contact_s_bsuid_has_its_column_on_whatsapp_only() {
        let phone = "+447911123456";
        assert_eq!(
            ids(&contact(Channel::Whatsapp, phone, Some(BSUID))),
            [phone, BSUID, ""]
        );
        assert_eq!(
            ids(&contact(Channel::Whatsapp, phone, Some("C-42"))),
            [phone, "", "C-42"]
        );
        assert_eq!(
            ids(&contact(Channel::Sms, phone, Some(BSUID))),
            [phone, "", BSUID]
        );
        assert_eq!(
            ids(&contact(Channel::Whatsapp, phone, None)),
            [phone, "", ""]
        );
    }
}
