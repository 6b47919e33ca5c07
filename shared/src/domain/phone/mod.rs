//! Phone numbers: cleaning, Excel damage, country resolution and E.164 (DESIGN section 7).

use std::str::FromStr;

use phonenumber::country;
use phonenumber::metadata::DATABASE;
use phonenumber::{Mode, PhoneNumber, Type};

use crate::domain::channel::Channel;

mod number_type;

/// Loads the phone library's metadata: every region's patterns, parsed once per
/// process on first use (about 85 ms of CPU in `make bench-webhooks`' profile). A
/// function calls it at start, on a thread of its own, so that its first batch does not
/// wait for it.
pub fn load_metadata() {
    let _ = DATABASE.by_id("GB");
}

/// Why a phone number was refused. Each maps to a documented rejection code.
#[derive(
    Copy,
    Clone,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    thiserror::Error,
    serde::Serialize,
    serde::Deserialize,
)]
pub enum PhoneRejection {
    /// The cell is blank.
    #[serde(rename = "missing_phone")]
    #[error("the phone number is blank")]
    Missing,
    /// Not a valid number for its region.
    #[serde(rename = "invalid_phone")]
    #[error("not a valid phone number")]
    Invalid,
    /// A national number and no country to read it with.
    #[serde(rename = "missing_country_code")]
    #[error("national number without a country code; add +<country code> or set the default-country option")]
    MissingCountryCode,
    /// The country code column holds something that is not a calling code.
    #[serde(rename = "invalid_country_code")]
    #[error("the country code is not a known calling code")]
    InvalidCountryCode,
    /// The channel needs a mobile number and this one cannot be mobile.
    #[serde(rename = "not_mobile")]
    #[error("not a mobile number; WhatsApp and SMS contacts need a mobile number")]
    NotMobile,
    /// Excel turned the number into scientific notation and its digits are lost.
    #[serde(rename = "excel_scientific_notation")]
    #[error("Excel turned this number into scientific notation and its last digits are lost; format the column as text and export again")]
    ExcelScientificNotation,
    /// The person asked for their data to be erased: the number may not be stored again
    /// until they write to the account themselves.
    #[serde(rename = "suppressed")]
    #[error("this person asked to be erased; they are added again only when they message you")]
    Suppressed,
    /// A `whatsapp` row without a phone whose WhatsApp User ID column, its only key,
    /// holds something that is not a business-scoped user id (DESIGN section 13).
    #[serde(rename = "invalid_user_id")]
    #[error("the phone number is blank and the WhatsApp user id is not one (two capital letters and a dot then letters and digits: GB.13491208655302741918)")]
    InvalidUserId,
}

impl PhoneRejection {
    /// The documented reason code.
    pub fn code(self) -> &'static str {
        match self {
            PhoneRejection::Missing => "missing_phone",
            PhoneRejection::Invalid => "invalid_phone",
            PhoneRejection::MissingCountryCode => "missing_country_code",
            PhoneRejection::InvalidCountryCode => "invalid_country_code",
            PhoneRejection::NotMobile => "not_mobile",
            PhoneRejection::ExcelScientificNotation => "excel_scientific_notation",
            PhoneRejection::Suppressed => "suppressed",
            PhoneRejection::InvalidUserId => "invalid_user_id",
        }
    }
}

/// An ISO 3166-1 alpha-2 region the phone library knows, such as `GB`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Region(country::Id);

impl Region {
    /// Parses a region code, case-insensitively. `None` when it is not a region the
    /// phone metadata knows.
    pub fn parse(code: &str) -> Option<Region> {
        let code = code.trim().to_ascii_uppercase();
        if code.len() != 2 {
            return None;
        }
        let id = country::Id::from_str(&code).ok()?;
        DATABASE.by_id(id.as_ref())?;
        Some(Region(id))
    }

    /// The two-letter code.
    pub fn code(&self) -> &str {
        self.0.as_ref()
    }

    /// Whether people in this region write dates month first (`MM/DD/YYYY`).
    pub fn month_first_dates(&self) -> bool {
        matches!(
            self.code(),
            "US" | "PH" | "FM" | "MH" | "PW" | "AS" | "GU" | "MP" | "PR" | "VI" | "UM"
        )
    }
}

/// Undoes what Excel does to a number before anything is stripped (step 2): a numeric
/// cell `447911123456.0` is the integer; scientific notation is expanded only when
/// every digit is still there.
pub fn repair_excel_number(raw: &str) -> Result<Option<String>, PhoneRejection> {
    let s = raw.trim();
    if let Some(int) = s.strip_suffix(".0").or_else(|| strip_zero_fraction(s)) {
        if !int.is_empty() && int.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(Some(int.to_string()));
        }
    }
    let Some((mantissa, exponent)) = s.split_once(['e', 'E']) else {
        return Ok(None);
    };
    let mantissa = mantissa.trim_start_matches('+');
    let exponent = exponent.trim_start_matches('+');
    let (int_part, frac_part) = mantissa.split_once(['.', ',']).unwrap_or((mantissa, ""));
    let is_number = !int_part.is_empty()
        && int_part.bytes().all(|b| b.is_ascii_digit())
        && frac_part.bytes().all(|b| b.is_ascii_digit())
        && !exponent.is_empty()
        && exponent.bytes().all(|b| b.is_ascii_digit());
    if !is_number {
        return Ok(None);
    }
    let exponent: usize = exponent
        .parse()
        .map_err(|_| PhoneRejection::ExcelScientificNotation)?;
    // The value is int_part.frac_part x 10^exponent; it is an exact integer only when the
    // fraction has no more digits than the exponent shifts, and phone numbers are long
    // enough that fewer shown digits means Excel rounded some away. An exponent near
    // usize::MAX (`1e18446744073709551615`) would overflow the digit count: such a
    // number has more digits than any cell shows, so it is refused the same way.
    let Some(total_digits) = int_part.len().checked_add(exponent) else {
        return Err(PhoneRejection::ExcelScientificNotation);
    };
    if frac_part.len() > exponent || total_digits < 7 {
        return Err(PhoneRejection::ExcelScientificNotation);
    }
    let mut digits = format!("{int_part}{frac_part}");
    let significant = digits.trim_end_matches('0').len();
    let shown = int_part.len() + frac_part.len();
    // `9.19877E+11` shows 6 digits of a 12-digit number: the rest are gone.
    if shown < total_digits {
        return Err(PhoneRejection::ExcelScientificNotation);
    }
    debug_assert!(significant <= shown);
    digits.push_str(&"0".repeat(exponent - frac_part.len()));
    Ok(Some(digits))
}

fn strip_zero_fraction(s: &str) -> Option<&str> {
    let (int, frac) = s.split_once('.')?;
    (!frac.is_empty() && frac.bytes().all(|b| b == b'0')).then_some(int)
}

/// Step 1: removes spaces, NBSP, zero-width characters, `- . ( ) /` and a leading `'`.
pub fn strip_formatting(raw: &str) -> String {
    let s = raw.trim().trim_start_matches(['\'', '\u{2019}']);
    s.chars()
        .filter(|c| {
            !(c.is_whitespace()
                || matches!(
                    c,
                    '-' | '.'
                        | '('
                        | ')'
                        | '/'
                        | '\u{A0}'
                        | '\u{200B}'
                        | '\u{200C}'
                        | '\u{200D}'
                        | '\u{2060}'
                        | '\u{FEFF}'
                        | '\u{2010}'..='\u{2015}'
                )
                || c.is_control())
        })
        .collect()
}

/// What is needed to read one phone cell.
#[derive(Copy, Clone, Debug)]
pub struct PhoneContext {
    /// Fallback region for national numbers.
    pub default_region: Option<Region>,
    /// The channel the contact is for: whatsapp and sms need a mobile number.
    pub channel: Channel,
}

/// Reads a phone cell (and an optional country code cell) into E.164.
pub fn normalize(
    raw: &str,
    country_code: Option<&str>,
    ctx: PhoneContext,
) -> Result<String, PhoneRejection> {
    if raw.trim().is_empty() {
        return Err(PhoneRejection::Missing);
    }
    let repaired = repair_excel_number(raw)?;
    let cleaned = strip_formatting(repaired.as_deref().unwrap_or(raw));
    if cleaned.is_empty() {
        return Err(PhoneRejection::Missing);
    }
    let number = parse_number(&cleaned, country_code, ctx.default_region)?;
    check_channel(&number, ctx.channel)?;
    let e164 = number.format().mode(Mode::E164).to_string();
    // E.164 allows at most 15 digits; the metadata accepts some longer national numbers.
    if e164.len() > 16 {
        return Err(PhoneRejection::Invalid);
    }
    Ok(e164)
}

fn parse_number(
    cleaned: &str,
    country_code: Option<&str>,
    default_region: Option<Region>,
) -> Result<PhoneNumber, PhoneRejection> {
    let body = cleaned.strip_prefix('+');
    let digits_only = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some(international) = body {
        if !digits_only(international) {
            return Err(PhoneRejection::Invalid);
        }
        return parse_valid(None, cleaned);
    }
    if !digits_only(cleaned) {
        return Err(PhoneRejection::Invalid);
    }
    // `00` is the international prefix in most of the world; where it is not (Australia
    // dials out with `0011`, Brazil with `00` + carrier), the region's own prefix below
    // still reads the number.
    if let Some(international) = cleaned.strip_prefix("00") {
        if !international.starts_with('0') {
            if let Ok(number) = parse_valid(None, &format!("+{international}")) {
                return Ok(number);
            }
        }
    }
    if let Some(code) = country_code.map(str::trim).filter(|c| !c.is_empty()) {
        let region = region_for_calling_code(code)?;
        return parse_valid(Some(region), cleaned);
    }
    match default_region {
        Some(region) => parse_valid(Some(region.0), cleaned).or_else(|err| {
            // A foreign number written internationally without its `+` (as some
            // platforms ask users to write them) is still unambiguous.
            international_without_plus(cleaned).ok_or(err)
        }),
        None => international_without_plus(cleaned).ok_or(PhoneRejection::MissingCountryCode),
    }
}

/// `31612345678` read as `+31612345678`, only when it cannot be a national number: at
/// least 11 digits, no trunk `0`, and valid as an international number.
fn international_without_plus(digits: &str) -> Option<PhoneNumber> {
    if digits.len() < 11 || digits.starts_with('0') {
        return None;
    }
    parse_valid(None, &format!("+{digits}")).ok()
}

fn parse_valid(region: Option<country::Id>, text: &str) -> Result<PhoneNumber, PhoneRejection> {
    let number = phonenumber::parse(region, text).map_err(|_| PhoneRejection::Invalid)?;
    let national = number.national().to_string();
    if number_type::number_type(number.code().value(), &national) != Type::Unknown {
        Ok(number)
    } else {
        Err(PhoneRejection::Invalid)
    }
}

/// The main region of a calling code written as `44`, `+44` or `0044`.
pub fn region_for_calling_code(code: &str) -> Result<country::Id, PhoneRejection> {
    let digits = code.trim().trim_start_matches('+');
    let digits = digits.strip_prefix("00").unwrap_or(digits);
    if digits.is_empty() || digits.len() > 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PhoneRejection::InvalidCountryCode);
    }
    let code: u16 = digits
        .parse()
        .map_err(|_| PhoneRejection::InvalidCountryCode)?;
    let regions = DATABASE
        .region(&code)
        .ok_or(PhoneRejection::InvalidCountryCode)?;
    regions
        .iter()
        .find_map(|r| country::Id::from_str(r).ok())
        .ok_or(PhoneRejection::InvalidCountryCode)
}

fn check_channel(number: &PhoneNumber, channel: Channel) -> Result<(), PhoneRejection> {
    if channel == Channel::Voice {
        return Ok(());
    }
    let national = number.national().value().to_string();
    match number_type::number_type(number.code().value(), &national) {
        Type::Mobile | Type::FixedLineOrMobile => Ok(()),
        _ => Err(PhoneRejection::NotMobile),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(region: Option<&str>, channel: Channel) -> PhoneContext {
        PhoneContext {
            default_region: region.and_then(Region::parse),
            channel,
        }
    }

    fn wa(raw: &str, region: Option<&str>) -> Result<String, PhoneRejection> {
        normalize(raw, None, ctx(region, Channel::Whatsapp))
    }

    #[test]
    fn international_numbers_in_any_formatting() {
        for raw in [
            "+44 7911 123456",
            "+44 (0)7911-123456",
            "0044 7911 123456",
            "'+447911123456",
            "+44\u{A0}7911\u{200B}123456",
        ] {
            assert_eq!(wa(raw, None).as_deref(), Ok("+447911123456"), "{raw}");
        }
    }

    #[test]
    fn the_default_regions_own_international_prefix() {
        assert_eq!(
            wa("0011 44 7911 123456", Some("AU")).as_deref(),
            Ok("+447911123456")
        );
        assert_eq!(
            wa("011 44 7911 123456", Some("US")).as_deref(),
            Ok("+447911123456")
        );
        assert_eq!(
            wa("0011 44 7911 123456", None),
            Err(PhoneRejection::MissingCountryCode),
            "which country dials out with 0011 is not known"
        );
    }

    #[test]
    fn national_numbers_use_the_default_region() {
        assert_eq!(
            wa("07911 123456", Some("GB")).as_deref(),
            Ok("+447911123456")
        );
        assert_eq!(
            wa("7911123456", Some("GB")).as_deref(),
            Ok("+447911123456"),
            "lost trunk 0"
        );
        assert_eq!(
            wa("447911123456", Some("GB")).as_deref(),
            Ok("+447911123456")
        );
        assert_eq!(
            wa("98765 43210", Some("IN")).as_deref(),
            Ok("+919876543210")
        );
        assert_eq!(
            wa("07911 123456", None),
            Err(PhoneRejection::MissingCountryCode)
        );
        assert_eq!(
            wa("9876543210", None),
            Err(PhoneRejection::MissingCountryCode)
        );
    }

    #[test]
    fn international_without_plus_is_read_when_unambiguous() {
        assert_eq!(wa("31612345678", None).as_deref(), Ok("+31612345678"));
        assert_eq!(
            wa("919876543210", Some("GB")).as_deref(),
            Ok("+919876543210")
        );
    }

    #[test]
    fn country_code_column_completes_a_national_number() {
        let c = ctx(None, Channel::Whatsapp);
        assert_eq!(
            normalize("9876543210", Some("91"), c).as_deref(),
            Ok("+919876543210")
        );
        assert_eq!(
            normalize("07911 123456", Some("+44"), c).as_deref(),
            Ok("+447911123456")
        );
        assert_eq!(
            normalize("9876543210", Some("abc"), c),
            Err(PhoneRejection::InvalidCountryCode)
        );
        assert_eq!(
            normalize("9876543210", Some("999"), c),
            Err(PhoneRejection::InvalidCountryCode)
        );
        assert_eq!(
            normalize("+447911123456", Some("91"), c).as_deref(),
            Ok("+447911123456")
        );
    }

    #[test]
    fn excel_damage_is_repaired_or_refused() {
        assert_eq!(wa("447911123456.0", None).as_deref(), Ok("+447911123456"));
        assert_eq!(
            wa("9.19876543210E+11", None).as_deref(),
            Ok("+919876543210")
        );
        assert_eq!(
            wa("9.19877E+11", None),
            Err(PhoneRejection::ExcelScientificNotation)
        );
        assert_eq!(
            wa("4.47911E+11", Some("GB")),
            Err(PhoneRejection::ExcelScientificNotation)
        );
        // Exponents that overflow the digit count (tests/fixtures/fuzz-regressions).
        for huge in ["1e18446744073709551615", "12345678E+18446744073709551615"] {
            assert_eq!(
                repair_excel_number(huge),
                Err(PhoneRejection::ExcelScientificNotation),
                "{huge}"
            );
        }
    }

    #[test]
    fn blank_invalid_and_landlines() {
        assert_eq!(wa("  ", None), Err(PhoneRejection::Missing));
        assert_eq!(wa("-", None), Err(PhoneRejection::Missing));
        assert_eq!(wa("+44 12", None), Err(PhoneRejection::Invalid));
        assert_eq!(wa("call me", Some("GB")), Err(PhoneRejection::Invalid));
        assert_eq!(wa("+442079460000", None), Err(PhoneRejection::NotMobile));
        let voice = normalize("+442079460000", None, ctx(None, Channel::Voice));
        assert_eq!(voice.as_deref(), Ok("+442079460000"));
    }

    #[test]
    fn fixed_line_or_mobile_counts_as_mobile() {
        assert_eq!(wa("+1 201-555-0123", None).as_deref(), Ok("+12015550123"));
    }

    #[test]
    fn regions_parse_case_insensitively() {
        assert_eq!(Region::parse("gb").as_ref().map(Region::code), Some("GB"));
        assert!(Region::parse("XX").is_none());
        assert!(Region::parse("GBR").is_none());
    }
}
