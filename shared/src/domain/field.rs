//! Canonical contact fields: their names, the column titles that map to them
//! automatically, and their length limits (DESIGN section 6).

use crate::domain::cleaning::header_key;

/// A canonical contact field a column can map to.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    /// The key field: the contact's phone number.
    Phone,
    /// A calling code (`44`, `+91`) that completes a national `phone`.
    CountryCode,
    /// Full name.
    Name,
    /// Given name.
    FirstName,
    /// Middle name.
    MiddleName,
    /// Family name.
    LastName,
    /// Title (`Dr`, `Ms`).
    Title,
    /// E-mail address.
    Email,
    /// WhatsApp opt-in flag.
    WhatsappOpted,
    /// The business's own id for the contact.
    UserId,
    /// The person's WhatsApp business-scoped user id (BSUID, DESIGN section 13): on
    /// `whatsapp`, the key of a row without a phone; stored as `user_id` unless the row
    /// gives [`Field::UserId`] too. Ignored on other channels.
    WhatsappUserId,
    /// A free reference.
    Reference,
    /// Company name.
    Company,
    /// First address line.
    AddressLine1,
    /// Second address line.
    AddressLine2,
    /// City.
    City,
    /// State or county.
    State,
    /// Postcode or ZIP.
    Postcode,
    /// Date of birth.
    DateOfBirth,
    /// Another phone number, stored as text.
    AlternatePhone,
    /// Lists the contact joins.
    Lists,
    /// Tags added to the contact.
    Tags,
}

impl Field {
    /// Every field, in the order reports list them.
    pub const ALL: [Field; 22] = [
        Field::Phone,
        Field::CountryCode,
        Field::Name,
        Field::FirstName,
        Field::MiddleName,
        Field::LastName,
        Field::Title,
        Field::Email,
        Field::WhatsappOpted,
        Field::UserId,
        Field::WhatsappUserId,
        Field::Reference,
        Field::Company,
        Field::AddressLine1,
        Field::AddressLine2,
        Field::City,
        Field::State,
        Field::Postcode,
        Field::DateOfBirth,
        Field::AlternatePhone,
        Field::Lists,
        Field::Tags,
    ];

    /// The field's canonical name, as used in `column_mapping` and the mapping option.
    pub fn name(self) -> &'static str {
        match self {
            Field::Phone => "phone",
            Field::CountryCode => "country_code",
            Field::Name => "name",
            Field::FirstName => "first_name",
            Field::MiddleName => "middle_name",
            Field::LastName => "last_name",
            Field::Title => "title",
            Field::Email => "email",
            Field::WhatsappOpted => "whatsapp_opted",
            Field::UserId => "user_id",
            Field::WhatsappUserId => "whatsapp_user_id",
            Field::Reference => "reference",
            Field::Company => "company",
            Field::AddressLine1 => "address_line1",
            Field::AddressLine2 => "address_line2",
            Field::City => "city",
            Field::State => "state",
            Field::Postcode => "postcode",
            Field::DateOfBirth => "date_of_birth",
            Field::AlternatePhone => "alternate_phone",
            Field::Lists => "lists",
            Field::Tags => "tags",
        }
    }

    /// Looks a field up by its canonical name (`first_name`), also accepting any of its
    /// column titles (`First Name`).
    pub fn from_name(name: &str) -> Option<Field> {
        Field::ALL
            .into_iter()
            .find(|f| f.name() == name)
            .or_else(|| Field::from_header(name))
    }

    /// The field a column title maps to automatically, if any.
    pub fn from_header(title: &str) -> Option<Field> {
        let key = header_key(title);
        Field::ALL
            .into_iter()
            .find(|f| f.synonyms().iter().any(|s| header_key(s) == key))
    }

    /// Maximum length in characters of a stored value; `None` when the field has its own
    /// rule instead (phone, booleans, dates, lists).
    pub fn max_chars(self) -> Option<usize> {
        Some(match self {
            Field::Name => 101,
            Field::FirstName | Field::MiddleName | Field::LastName => 50,
            Field::Title => 30,
            Field::Email | Field::AddressLine1 | Field::AddressLine2 => 255,
            Field::UserId | Field::Reference | Field::Company | Field::City => 128,
            Field::AlternatePhone => 128,
            Field::State => 48,
            Field::Postcode => 24,
            Field::Lists | Field::Tags => 100,
            // A BSUID's own rule bounds it (`is_bsuid`).
            Field::Phone
            | Field::CountryCode
            | Field::WhatsappOpted
            | Field::DateOfBirth
            | Field::WhatsappUserId => return None,
        })
    }

    /// Column titles that map to this field automatically (compared with
    /// [`header_key`], so case, spaces and `_ - .` do not matter).
    pub fn synonyms(self) -> &'static [&'static str] {
        match self {
            Field::Phone => &[
                "phone",
                "phone number",
                "phonenumber",
                "phone no",
                "mobile",
                "mobile number",
                "mobile no",
                "mobile phone",
                "msisdn",
                "whatsapp number",
                "whatsapp phone",
                "whatsapp no",
                "number",
                "cell",
                "cell phone",
                "cellphone",
                "telephone",
                "telephone number",
                "tel",
                "contact number",
                "contact no",
                "phone numbers",
                "numbers",
                "e164",
            ],
            Field::CountryCode => &[
                "country code",
                "dial code",
                "calling code",
                "country calling code",
                "isd code",
                "isd",
                "dialing code",
            ],
            Field::Name => &[
                "name",
                "full name",
                "contact name",
                "customer name",
                "fullname",
                "display name",
            ],
            Field::FirstName => &["first name", "firstname", "given name", "forename"],
            Field::MiddleName => &["middle name"],
            Field::LastName => &["last name", "surname", "second name", "family name"],
            Field::Title => &["title", "salutation"],
            Field::Email => &[
                "email",
                "email address",
                "e-mail",
                "e-mail address",
                "mail",
                "email id",
            ],
            Field::WhatsappOpted => &[
                "whatsapp opted",
                "opted in",
                "opt in",
                "whatsapp opt in",
                "whatsapp optin",
                "whatsapp opted in",
                "optin",
            ],
            Field::UserId => &["user id", "userid", "customer id", "contact id"],
            Field::WhatsappUserId => &[
                "whatsapp user id",
                "wa user id",
                "bsuid",
                "whatsapp bsuid",
                "business scoped user id",
            ],
            Field::Reference => &["reference", "ref"],
            Field::Company => &[
                "company",
                "company name",
                "business name",
                "organisation",
                "organization",
            ],
            Field::AddressLine1 => &[
                "address line1",
                "address line 1",
                "address",
                "address1",
                "street",
            ],
            Field::AddressLine2 => &["address line2", "address line 2", "address2"],
            Field::City => &["city", "town"],
            Field::State => &["state", "county", "state or county", "province", "region"],
            Field::Postcode => &[
                "postcode",
                "zip",
                "postal code",
                "zip code",
                "post code",
                "pincode",
                "pin code",
            ],
            Field::DateOfBirth => &[
                "date of birth",
                "birthday",
                "dob",
                "birth date",
                "birthdate",
            ],
            Field::AlternatePhone => &[
                "alternate phone",
                "alt phone",
                "alternate phone number",
                "alternative phone",
                "other phone",
            ],
            Field::Lists => &[
                "list",
                "lists",
                "list name",
                "lists names",
                "groups",
                "group",
            ],
            Field::Tags => &["tag", "tags", "labels", "label"],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_header_maps_to_its_field() {
        let cases = [
            ("Phone Number", Field::Phone),
            ("phoneNumber", Field::Phone),
            ("MSISDN", Field::Phone),
            ("WhatsApp Number", Field::Phone),
            ("Telephone", Field::Phone),
            ("Dial Code", Field::CountryCode),
            ("Customer Name", Field::Name),
            ("Surname", Field::LastName),
            ("Second Name", Field::LastName),
            ("E-mail Address", Field::Email),
            ("WhatsApp Opted", Field::WhatsappOpted),
            ("Opt-In", Field::WhatsappOpted),
            ("User ID", Field::UserId),
            ("WhatsApp User ID", Field::WhatsappUserId),
            ("whatsapp_user_id", Field::WhatsappUserId),
            ("WA User ID", Field::WhatsappUserId),
            ("BSUID", Field::WhatsappUserId),
            ("Business-Scoped User ID", Field::WhatsappUserId),
            ("Business Name", Field::Company),
            ("Address", Field::AddressLine1),
            ("Address Line 2", Field::AddressLine2),
            ("State or County", Field::State),
            ("ZIP", Field::Postcode),
            ("DOB", Field::DateOfBirth),
            ("Alt Phone", Field::AlternatePhone),
            ("List", Field::Lists),
            ("Labels", Field::Tags),
        ];
        for (title, field) in cases {
            assert_eq!(Field::from_header(title), Some(field), "{title}");
        }
        assert_eq!(Field::from_header("Plan"), None);
    }

    #[test]
    fn names_round_trip() {
        for field in Field::ALL {
            assert_eq!(Field::from_name(field.name()), Some(field));
        }
    }

    #[test]
    fn no_title_maps_to_two_fields() {
        for a in Field::ALL {
            for s in a.synonyms() {
                let owners: Vec<Field> = Field::ALL
                    .into_iter()
                    .filter(|b| b.synonyms().iter().any(|t| header_key(t) == header_key(s)))
                    .collect();
                assert_eq!(owners, vec![a], "{s}");
            }
        }
    }
}
