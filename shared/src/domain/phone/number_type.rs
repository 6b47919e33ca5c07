//! Validity and number type, decided exactly as the phone library decides them, with its
//! own metadata patterns compiled once per process.
//!
//! Why not the library's `is_valid` and `number_type`: every pattern it matches goes
//! through one `Mutex<LruCache<String, Regex>>` keyed by the pattern's full text, so each
//! match hashes a pattern of up to a few hundred bytes (SipHash) under a global lock. A
//! profile of parse + map + validate spent 60% of its instructions there
//! (`valgrind --tool=callgrind target/release/bench_parse 20000`), and two threads ran
//! slower than one. Here each region's patterns are compiled on first use, as
//! `CachedRegex`es of the patched `regex-cache` (vendor/README.md): compiled once per
//! process, matched by each thread with its own clone, so two threads never wait on
//! each other's match scratch space.
//!
//! The rules mirror `phonenumber::validator` (0.3.10): `source_for` picks the region of
//! a calling code shared by several regions, `number_type` tries the descriptors in the
//! library's order, and a descriptor matches when the number's length is one of its
//! possible lengths and its pattern matches at the start. The tests compare both on
//! every example number of every region and on variations of them.

use std::collections::HashMap;
use std::sync::OnceLock;

use phonenumber::metadata::{Descriptor, Metadata, DATABASE};
use phonenumber::Type;
use regex_cache::{CachedRegex, CachedRegexBuilder};

/// A descriptor's pattern, anchored at the start, and its possible lengths.
struct Pattern {
    regex: CachedRegex,
    possible_lengths: Vec<u16>,
}

impl Pattern {
    fn compile(descriptor: &Descriptor) -> Option<Pattern> {
        Some(Pattern {
            regex: anchored(descriptor.national_number().as_str())?,
            possible_lengths: descriptor.possible_length().to_vec(),
        })
    }

    fn matches(&self, national: &str) -> bool {
        let length_fits = self.possible_lengths.is_empty()
            || u16::try_from(national.len()).is_ok_and(|len| self.possible_lengths.contains(&len));
        length_fits && self.regex.is_match(national)
    }
}

/// The library matches with `find` and accepts a match starting at 0; with leftmost
/// semantics that is exactly "a match anchored at the start exists". `None` only for a
/// syntax error: a `CachedRegex` compiles on first use, as the library's own patterns
/// (these same patterns, unanchored, with the same flags) do.
fn anchored(pattern: &str) -> Option<CachedRegex> {
    CachedRegexBuilder::new(DATABASE.cache(), &format!("^(?:{pattern})"))
        .ignore_whitespace(true)
        .build()
        .ok()
}

fn pattern_text(descriptor: Option<&Descriptor>) -> Option<&str> {
    descriptor.map(|d| d.national_number().as_str())
}

/// One region's descriptors, in the order `number_type` tries them.
struct Region {
    general: Option<Pattern>,
    /// Premium rate, toll free, shared cost, VoIP, personal, pager, UAN, voicemail:
    /// each a type that is neither fixed line nor mobile.
    special: Vec<(Type, Pattern)>,
    fixed_line: Option<Pattern>,
    mobile: Option<Pattern>,
    /// The metadata gives fixed line and mobile the same pattern (as in the US): a
    /// fixed-line match is then "fixed line or mobile" without trying mobile.
    fixed_line_is_mobile: bool,
    leading_digits: Option<CachedRegex>,
}

impl Region {
    fn compile(meta: &Metadata) -> Region {
        let d = meta.descriptors();
        let special = [
            (Type::PremiumRate, d.premium_rate()),
            (Type::TollFree, d.toll_free()),
            (Type::SharedCost, d.shared_cost()),
            (Type::Voip, d.voip()),
            (Type::PersonalNumber, d.personal_number()),
            (Type::Pager, d.pager()),
            (Type::Uan, d.uan()),
            (Type::Voicemail, d.voicemail()),
        ]
        .into_iter()
        .filter_map(|(kind, desc)| Some((kind, Pattern::compile(desc?)?)))
        .collect();
        Region {
            general: Pattern::compile(d.general()),
            special,
            fixed_line: d.fixed_line().and_then(Pattern::compile),
            mobile: d.mobile().and_then(Pattern::compile),
            fixed_line_is_mobile: pattern_text(d.fixed_line()) == pattern_text(d.mobile()),
            leading_digits: meta.leading_digits().and_then(|p| anchored(p.as_str())),
        }
    }

    fn number_type(&self, national: &str) -> Type {
        if !self.general.as_ref().is_some_and(|p| p.matches(national)) {
            return Type::Unknown;
        }
        if let Some((kind, _)) = self.special.iter().find(|(_, p)| p.matches(national)) {
            return *kind;
        }
        let mobile = |n: &str| self.mobile.as_ref().is_some_and(|p| p.matches(n));
        if self
            .fixed_line
            .as_ref()
            .is_some_and(|p| p.matches(national))
        {
            if self.fixed_line_is_mobile || mobile(national) {
                return Type::FixedLineOrMobile;
            }
            return Type::FixedLine;
        }
        if mobile(national) {
            return Type::Mobile;
        }
        Type::Unknown
    }
}

/// Every region of the metadata by calling code, compiled on first use. Looked up by
/// code and id: the non-geographic entities all have the id `001`.
struct Compiled {
    regions: HashMap<u16, Vec<(&'static Metadata, OnceLock<Region>)>>,
}

impl Compiled {
    fn get() -> &'static Compiled {
        static COMPILED: OnceLock<Compiled> = OnceLock::new();
        COMPILED.get_or_init(|| {
            let mut regions: HashMap<u16, Vec<_>> = HashMap::new();
            for meta in DATABASE.iter() {
                regions
                    .entry(meta.country_code())
                    .or_default()
                    .push((meta, OnceLock::new()));
            }
            Compiled { regions }
        })
    }

    fn region(&self, code: u16, id: &str) -> Option<&Region> {
        let (meta, region) = self
            .regions
            .get(&code)?
            .iter()
            .find(|(m, _)| m.id() == id)?;
        Some(region.get_or_init(|| Region::compile(meta)))
    }
}

/// The type of the national significant number `national` under calling code `code`,
/// as `PhoneNumber::number_type` reports it; `Type::Unknown` for an invalid number.
/// `national` is written as the library writes it for the check at hand: with its
/// leading zeros for validity, without them for the type.
pub(super) fn number_type(code: u16, national: &str) -> Type {
    let compiled = Compiled::get();
    match source_region(compiled, code, national) {
        Some(region) => region.number_type(national),
        None => Type::Unknown,
    }
}

/// Which region's rules apply, as `phonenumber::validator::source_for` decides.
fn source_region<'a>(compiled: &'a Compiled, code: u16, national: &str) -> Option<&'a Region> {
    let regions = DATABASE.region(&code)?;
    if let [only] = regions.as_slice() {
        // A region id the library cannot name is no source at all.
        if *only != "001" && only.parse::<phonenumber::country::Id>().is_err() {
            return None;
        }
        return compiled.region(code, only);
    }
    regions.iter().find_map(|id| {
        let region = compiled.region(code, id)?;
        let chosen = match &region.leading_digits {
            Some(leading) => leading.is_match(national),
            None => region.number_type(national) != Type::Unknown,
        };
        chosen.then_some(region)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use phonenumber::PhoneNumber;

    /// The library's own answers: validity (national number with its leading zeros)
    /// and type (without them).
    fn library(number: &PhoneNumber) -> (bool, Type) {
        (number.is_valid(), number.number_type(&DATABASE))
    }

    fn ours(number: &PhoneNumber) -> (bool, Type) {
        let code = number.code().value();
        let valid = number_type(code, &number.national().to_string()) != Type::Unknown;
        (
            valid,
            number_type(code, &number.national().value().to_string()),
        )
    }

    /// Every example number of every region and type, and variations of each (a digit
    /// dropped, added or changed), parsed as international numbers.
    fn samples() -> Vec<String> {
        let mut out = Vec::new();
        for meta in DATABASE.iter() {
            let d = meta.descriptors();
            let examples = [
                Some(d.general()),
                d.fixed_line(),
                d.mobile(),
                d.toll_free(),
                d.premium_rate(),
                d.shared_cost(),
                d.personal_number(),
                d.voip(),
                d.pager(),
                d.uan(),
                d.voicemail(),
            ];
            for example in examples.into_iter().flatten().filter_map(|d| d.example()) {
                let code = meta.country_code();
                out.push(format!("+{code}{example}"));
                out.push(format!(
                    "+{code}{}",
                    &example[..example.len().saturating_sub(1)]
                ));
                out.push(format!("+{code}{example}7"));
                for (i, digit) in ["0", "1", "5", "9"].into_iter().enumerate() {
                    let mut changed = example.to_string();
                    let at = (i * 3 + 1).min(changed.len().saturating_sub(1));
                    changed.replace_range(at..=at, digit);
                    out.push(format!("+{code}{changed}"));
                }
            }
            // Numbers of every possible length with pseudo-random digits, to reach
            // ranges no example covers (and shared calling codes' region choice).
            let mut seed = u64::from(meta.country_code()) * 7919 + out.len() as u64;
            for &len in d.general().possible_length() {
                for _ in 0..20 {
                    let digits: String = (0..len)
                        .map(|_| {
                            seed = seed
                                .wrapping_mul(6364136223846793005)
                                .wrapping_add(1442695040888963407);
                            char::from(b'0' + (seed >> 60) as u8 % 10)
                        })
                        .collect();
                    out.push(format!("+{}{digits}", meta.country_code()));
                }
            }
        }
        out
    }

    #[test]
    fn agrees_with_the_library_on_every_example_and_its_variations() {
        let samples = samples();
        assert!(samples.len() > 5_000, "{} samples", samples.len());
        let mut compared = 0;
        for text in &samples {
            let Ok(number) = phonenumber::parse(None, text) else {
                continue;
            };
            assert_eq!(ours(&number), library(&number), "{text}");
            compared += 1;
        }
        assert!(compared > 5_000, "{compared} compared");
    }

    #[test]
    fn threads_matching_at_once_each_get_the_answers_one_thread_gets() {
        // Each thread matches with its own clone of every pattern (vendor/README.md).
        let samples: Vec<PhoneNumber> = samples()
            .iter()
            .filter_map(|text| phonenumber::parse(None, text).ok())
            .collect();
        let alone: Vec<_> = samples.iter().map(ours).collect();
        let together: Vec<Vec<_>> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..3)
                .map(|_| scope.spawn(|| samples.iter().map(ours).collect::<Vec<_>>()))
                .collect();
            threads
                .into_iter()
                .map(|t| t.join().expect("thread"))
                .collect()
        });
        for answers in together {
            assert_eq!(answers, alone);
        }
    }

    #[test]
    fn agrees_with_the_library_on_national_numbers_with_leading_zeros() {
        // Italian fixed lines keep their leading 0 in the national significant number.
        for (region, text) in [
            (phonenumber::country::IT, "0236618300"),
            (phonenumber::country::IT, "3123456789"),
            (phonenumber::country::GB, "07400123456"),
            (phonenumber::country::US, "2015550123"),
            (phonenumber::country::CI, "0123456789"),
        ] {
            let number = phonenumber::parse(Some(region), text).expect(text);
            assert_eq!(ours(&number), library(&number), "{text}");
        }
    }
}
