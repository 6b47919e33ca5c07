//! The export's fixed columns: one per canonical field a contact stores, titled as an
//! import maps it back (DESIGN section 6), then one per custom attribute, titled with
//! its name as the import titled it.
//!
//! What the import does not read back is not exported: status, source, anonymity and
//! the timestamps would come back as custom attributes and change every contact.

use crate::domain::contact::Contact;
use crate::domain::field::Field;

/// The fixed columns: title, and the field an import maps it to.
pub const EXPORT_COLUMNS: [(&str, Field); 20] = [
    ("Phone", Field::Phone),
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
/// phone, text fields, `TRUE`/`FALSE` or blank for the opt-in, lists and tags joined by
/// `;` (the import splits on it).
pub fn contact_cells(contact: &Contact) -> Vec<String> {
    EXPORT_COLUMNS
        .iter()
        .map(|(_, field)| match field {
            Field::Phone => contact.phone.clone(),
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

        // THEN each has exactly one column (the country code is folded into E.164)
        for name in TEXT_FIELDS
            .iter()
            .copied()
            .chain(["phone", "whatsapp_opted", "lists", "tags"])
        {
            assert_eq!(exported.iter().filter(|e| **e == name).count(), 1, "{name}");
        }
        assert_eq!(exported.len(), TEXT_FIELDS.len() + 4);
    }
}
