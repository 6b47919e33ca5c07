//! Meta's webhook signature (DESIGN section 13): every POST carries
//! `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body under the app secret>`.
//! It is checked against the body's bytes exactly as they arrived, before any of them
//! is parsed: re-serialised JSON would not be the bytes Meta signed.

use hmac::{KeyInit, Mac};

use super::secret::Secret;

/// The header that carries the signature, lower-cased (HTTP header names are
/// case-insensitive; look it up without regard to case).
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";

/// What comes before the hex digest.
const PREFIX: &str = "sha256=";

/// Why a body's signature is refused. None of them says which bytes were wrong.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `X-Hub-Signature-256` header.
    #[error("the X-Hub-Signature-256 header is missing")]
    Missing,
    /// The header is not `sha256=` and 64 hex digits.
    #[error("the X-Hub-Signature-256 header is not sha256= and 64 hex digits")]
    Malformed,
    /// A well-formed signature of some other body, or under another secret.
    #[error("the X-Hub-Signature-256 header does not match the body")]
    Mismatch,
}

/// Checks `header` (the value of `X-Hub-Signature-256`, if any) against the raw `body`
/// under `app_secret`. The digest may be written in lower or upper case; the
/// comparison takes constant time.
pub fn verify(
    app_secret: &Secret,
    header: Option<&str>,
    body: &[u8],
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?.trim();
    let digest = header
        .strip_prefix(PREFIX)
        .filter(|hex| hex.len() == 64)
        .and_then(|hex| hex::decode(hex).ok())
        .ok_or(SignatureError::Malformed)?;
    // HMAC takes a key of any length: this cannot fail.
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(app_secret.expose())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(body);
    mac.verify_slice(&digest)
        .map_err(|_| SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"object":"whatsapp_business_account","entry":[]}"#;
    // Computed independently of this code:
    //   printf '%s' '{"object":"whatsapp_business_account","entry":[]}' \
    //     | openssl dgst -sha256 -hmac local-development-app-secret
    // (python's hmac.new(secret, body, hashlib.sha256).hexdigest() agrees).
    const DIGEST: &str = "23ad741614097a0e20b3e676a61ec9fd6d03ea0f052922e700ea9c3ef9dc4d6f";

    fn secret() -> Secret {
        Secret::new("local-development-app-secret").expect("not empty")
    }

    #[test]
    fn a_signature_computed_elsewhere_verifies_in_either_case() {
        let lower = format!("sha256={DIGEST}");
        let upper = format!("sha256={}", DIGEST.to_ascii_uppercase());
        assert_eq!(verify(&secret(), Some(&lower), BODY), Ok(()));
        assert_eq!(verify(&secret(), Some(&upper), BODY), Ok(()));
        // RFC 4231 test case 2 ("Jefe") shows the construction is HMAC-SHA256.
        let jefe = Secret::new("Jefe").expect("not empty");
        let rfc = "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        assert_eq!(
            verify(&jefe, Some(rfc), b"what do ya want for nothing?"),
            Ok(())
        );
    }

    #[test]
    fn another_body_or_secret_does_not_verify() {
        let header = format!("sha256={DIGEST}");
        let other_body = br#"{"object":"whatsapp_business_account","entry":[] }"#;
        assert_eq!(
            verify(&secret(), Some(&header), other_body),
            Err(SignatureError::Mismatch)
        );
        let other_secret = Secret::new("local-development-app-secreT").expect("not empty");
        assert_eq!(
            verify(&other_secret, Some(&header), BODY),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_missing_or_malformed_header_is_refused() {
        assert_eq!(verify(&secret(), None, BODY), Err(SignatureError::Missing));
        for header in [
            "",
            DIGEST,                                 // no prefix
            &format!("sha1={DIGEST}"),              // another algorithm
            &format!("SHA256={DIGEST}"),            // the prefix is lower case
            &format!("sha256={}", &DIGEST[..62]),   // short
            &format!("sha256={DIGEST}00"),          // long
            &format!("sha256={}zz", &DIGEST[..62]), // not hex
        ] {
            assert_eq!(
                verify(&secret(), Some(header), BODY),
                Err(SignatureError::Malformed),
                "{header:?}"
            );
        }
    }
}
