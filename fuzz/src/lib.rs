//! The fuzz targets' bodies are `contacts::test_util`'s (feature `test-util`): the same
//! functions this crate's libFuzzer binaries run are what `contacts`' regression tests
//! replay over `tests/fixtures/fuzz-regressions/`.

pub use contacts::test_util::{parse_map_validate, phone_normalize};
