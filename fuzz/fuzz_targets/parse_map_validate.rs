#![no_main]
//! Arbitrary bytes through parse -> map -> validate (see `contacts_fuzz::parse_map_validate`).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    contacts_fuzz::parse_map_validate(data);
});
