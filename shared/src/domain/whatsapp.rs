//! WhatsApp's identifiers (DESIGN section 13): business-scoped user ids (BSUIDs), which
//! are never phone numbers, and WhatsApp's own ids of numbers (`wa_id`), which for
//! Brazilian, Mexican and Argentine mobiles may differ from the E.164 form.

/// What stands for the number in the key of a contact known only by its BSUID:
/// `CONTACT#{account}#whatsapp#bsuid:{user_id}`.
pub const BSUID_KEY_PREFIX: &str = "bsuid:";

/// Longest BSUID body after the country code and dot.
const MAX_BSUID_BODY: usize = 128;

/// Whether `value` is a business-scoped user id: two capital letters (the user's
/// country), a dot, then 1 to 128 letters and digits (`GB.13491208655302741918`).
pub fn is_bsuid(value: &str) -> bool {
    let Some((country, body)) = value.split_once('.') else {
        return false;
    };
    country.len() == 2
        && country.bytes().all(|b| b.is_ascii_uppercase())
        && (1..=MAX_BSUID_BODY).contains(&body.len())
        && body.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The key part of a contact known only by its BSUID.
pub fn bsuid_key(user_id: &str) -> String {
    format!("{BSUID_KEY_PREFIX}{user_id}")
}

/// The E.164 numbers a `wa_id` (digits with the country code, no `+`) may be stored
/// as, the `wa_id` itself first: WhatsApp's legacy forms of Brazilian, Mexican and
/// Argentine mobiles name the same person as the E.164 number without or with the
/// extra digit. A landline never gains a mobile form. Validity is not checked here:
/// a stored contact is always valid, so a lookup of an invalid candidate finds nothing.
/// Empty when `wa_id` is not 6 to 15 digits.
pub fn wa_id_candidates(wa_id: &str) -> Vec<String> {
    let digits = wa_id.strip_prefix('+').unwrap_or(wa_id);
    if !(6..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Vec::new();
    }
    let mut candidates = vec![format!("+{digits}")];
    candidates.extend(legacy_variant(digits).map(|v| format!("+{v}")));
    candidates
}

/// The other form of a Brazilian, Mexican or Argentine mobile, if `digits` is one.
fn legacy_variant(digits: &str) -> Option<String> {
    let is_mobile_subscriber = |first: u8| (b'6'..=b'9').contains(&first);
    if let Some(rest) = digits.strip_prefix("55") {
        // Brazil: 2-digit area code, then 8 digits (legacy) or 9 then 8 digits.
        let (area, subscriber) = (rest.get(..2)?, rest.get(2..)?);
        return match subscriber.len() {
            8 if is_mobile_subscriber(subscriber.as_bytes()[0]) => {
                Some(format!("55{area}9{subscriber}"))
            }
            9 if subscriber.starts_with('9') && is_mobile_subscriber(subscriber.as_bytes()[1]) => {
                Some(format!("55{area}{}", &subscriber[1..]))
            }
            _ => None,
        };
    }
    if let Some(rest) = digits.strip_prefix("52") {
        // Mexico: WhatsApp keeps the old mobile prefix 1 (`521` + 10 digits).
        return match rest.len() {
            11 if rest.starts_with('1') => Some(format!("52{}", &rest[1..])),
            _ => None,
        };
    }
    if let Some(rest) = digits.strip_prefix("549") {
        // Argentina: WhatsApp's `549` + area + number may be stored without the 9. The
        // reverse is never made: `54` + area + number is a landline too.
        return (rest.len() == 10).then(|| format!("54{rest}"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bsuid_is_a_country_a_dot_and_letters_or_digits() {
        assert!(is_bsuid("GB.13491208655302741918"));
        assert!(is_bsuid("US.abcDEF123"));
        assert!(is_bsuid(&format!("BR.{}", "a".repeat(128))));
        for not in [
            "447911123456",
            "+447911123456",
            "gb.123",
            "GBR.123",
            "GB.",
            "GB.12-3",
            "GB.12 3",
            &format!("BR.{}", "a".repeat(129)),
        ] {
            assert!(!is_bsuid(not), "{not}");
        }
    }

    #[test]
    fn brazilian_mobiles_gain_or_lose_the_ninth_digit_and_landlines_do_not() {
        // 12-digit legacy wa_id: the 13-digit contact is the one to find.
        assert_eq!(
            wa_id_candidates("551187654321"),
            ["+551187654321", "+5511987654321"]
        );
        assert_eq!(
            wa_id_candidates("5511987654321"),
            ["+5511987654321", "+551187654321"]
        );
        // A landline (subscriber starting 2-5) never becomes a mobile.
        assert_eq!(wa_id_candidates("551133334444"), ["+551133334444"]);
        // A 9 followed by a landline digit is not a mobile's ninth digit.
        assert_eq!(wa_id_candidates("5511933334444"), ["+5511933334444"]);
    }

    #[test]
    fn mexican_and_argentine_legacy_forms() {
        assert_eq!(
            wa_id_candidates("5215512345678"),
            ["+5215512345678", "+525512345678"]
        );
        assert_eq!(wa_id_candidates("525512345678"), ["+525512345678"]);
        assert_eq!(
            wa_id_candidates("5491123456789"),
            ["+5491123456789", "+541123456789"]
        );
        // Never a 549 form from a 54 number.
        assert_eq!(wa_id_candidates("541123456789"), ["+541123456789"]);
    }

    #[test]
    fn other_countries_and_junk() {
        assert_eq!(wa_id_candidates("447911123456"), ["+447911123456"]);
        assert_eq!(wa_id_candidates("+447911123456"), ["+447911123456"]);
        assert!(wa_id_candidates("GB.13491208655302741918").is_empty());
        assert!(wa_id_candidates("12345").is_empty());
        assert!(wa_id_candidates("1234567890123456").is_empty());
    }
}
