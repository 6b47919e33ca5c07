//! A configured secret (the WhatsApp app secret, the webhook verify token): it never
//! prints, and a candidate is compared with it in constant time.

use hmac::{KeyInit, Mac};

/// A secret from the configuration. Its `Debug` shows no byte of it, so a `Config`
/// can be logged whole.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// The secret `value`; `None` when it is empty (an unset secret, not a blank one).
    pub fn new(value: impl Into<String>) -> Option<Secret> {
        let value = value.into();
        (!value.is_empty()).then_some(Secret(value))
    }

    /// The secret's bytes, for keying a MAC. Never log or store them.
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// Whether `candidate` is the secret, in time that depends on neither its content
    /// nor its length.
    pub fn matches(&self, candidate: &str) -> bool {
        // Compares two MACs under the secret instead of the strings: `verify_slice`
        // compares in constant time, and both MACs are 32 bytes whatever the
        // candidate's length, so an early exit cannot tell how much of it was right.
        let expected = self.mac(self.expose()).finalize().into_bytes();
        self.mac(candidate.as_bytes())
            .verify_slice(&expected)
            .is_ok()
    }

    fn mac(&self, message: &[u8]) -> hmac::Hmac<sha2::Sha256> {
        // HMAC takes a key of any length: this cannot fail.
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(self.expose())
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(message);
        mac
    }
}

/// Never print the secret.
impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_secret_is_no_secret() {
        assert!(Secret::new("").is_none());
        assert!(Secret::new(" ").is_some());
    }

    #[test]
    fn only_the_exact_value_matches() {
        let secret = Secret::new("local-development-verify-token").expect("not empty");
        assert!(secret.matches("local-development-verify-token"));
        for wrong in [
            "",
            "local-development-verify-toke",
            "local-development-verify-token ",
            "LOCAL-DEVELOPMENT-VERIFY-TOKEN",
            "x",
        ] {
            assert!(!secret.matches(wrong), "{wrong:?}");
        }
    }

    #[test]
    fn it_never_prints() {
        let secret = Secret::new("hunter2-hunter2").expect("not empty");
        assert_eq!(format!("{secret:?}"), "Secret(..)");
        assert_eq!(format!("{:?}", Some(secret)), "Some(Secret(..))");
    }
}
