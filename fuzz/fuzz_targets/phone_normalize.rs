#![no_main]
//! Arbitrary phone cells through `contacts::phone::normalize` (see
//! `contacts_fuzz::phone_normalize`).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    contacts_fuzz::phone_normalize(data);
});
