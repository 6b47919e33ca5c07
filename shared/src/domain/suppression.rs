//! Suppression after an erasure (DESIGN section 14): the erased number is remembered
//! only as an HMAC-SHA256 under a deployment secret, so the tombstone stores no digit
//! of it, yet a later import or campaign row with the same number is recognised.

use hmac::{KeyInit, Mac};

/// The deployment secret tombstones are keyed with (`SUPPRESSION_SECRET`).
#[derive(Clone)]
pub struct SuppressionKey(Vec<u8>);

impl SuppressionKey {
    /// A key from the secret's bytes; `None` when it is too short to be a secret.
    pub fn new(secret: &[u8]) -> Option<SuppressionKey> {
        (secret.len() >= MIN_SECRET_BYTES).then(|| SuppressionKey(secret.to_vec()))
    }

    /// Lowercase hex HMAC-SHA256 of the E.164 number.
    pub fn digest(&self, e164: &str) -> String {
        // HMAC takes a key of any length: this cannot fail.
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(e164.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

/// Never print the secret.
impl std::fmt::Debug for SuppressionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SuppressionKey(..)")
    }
}

/// Shortest secret accepted: 16 bytes.
pub const MIN_SECRET_BYTES: usize = 16;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_is_hmac_sha256_and_holds_no_digit_of_the_number() {
        // RFC 4231 test case 2 ("Jefe") shows the construction is HMAC-SHA256...
        let jefe = SuppressionKey(b"Jefe".to_vec());
        assert_eq!(
            jefe.digest("what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // ...and a number's digest depends on the secret, not only the number.
        let key = SuppressionKey::new(b"0123456789abcdef").expect("long enough");
        let other = SuppressionKey::new(b"fedcba9876543210").expect("long enough");
        let digest = key.digest("+447911123456");
        assert_eq!(digest.len(), 64);
        assert!(!digest.contains("7911123456"));
        assert_ne!(digest, other.digest("+447911123456"));
        assert_eq!(digest, key.digest("+447911123456"));
    }

    #[test]
    fn short_secrets_are_refused_and_never_printed() {
        assert!(SuppressionKey::new(b"short").is_none());
        let key = SuppressionKey::new(b"0123456789abcdef").expect("long enough");
        assert_eq!(format!("{key:?}"), "SuppressionKey(..)");
    }
}
