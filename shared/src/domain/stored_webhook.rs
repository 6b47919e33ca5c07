//! A signed webhook body as it waits on the webhook queue (DESIGN section 13): the
//! message attributes the receiver sets and the function reads back, and how a raw body
//! becomes a message body SQS can carry.
//!
//! A message is the body as sent when it is text SQS can carry (UTF-8 without the
//! characters SQS refuses), else its base64; [`BODY_ENCODING`] says which.

use base64::Engine as _;

/// The largest message body stored: SQS's smallest message size (256 KiB, moto's
/// and the older queues' default), less room for the attributes.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024 - 2048;

/// Attribute: when the receiver took the body (RFC 3339).
pub const RECEIVED_AT: &str = "received_at";
/// Attribute: the signature's verdict; the receiver stores only verified bodies.
pub const SIGNATURE: &str = "signature";
/// [`SIGNATURE`]'s value: `X-Hub-Signature-256` matched the app secret.
pub const VERIFIED: &str = "verified";
/// Attribute: `utf-8` (the body as sent) or `base64`.
pub const BODY_ENCODING: &str = "body_encoding";
/// Attribute of a dead letter: why it was given up.
pub const FAILURE_REASON: &str = "failure_reason";
/// Attribute of a dead letter: how many times it had been received.
pub const RECEIVE_COUNT: &str = "receive_count";

/// The message body for `raw` and its encoding: the text itself when SQS can carry it,
/// else base64.
pub fn message_body(raw: &[u8]) -> (String, &'static str) {
    match std::str::from_utf8(raw) {
        Ok(text) if text.chars().all(sqs_allows) => (text.to_string(), "utf-8"),
        _ => (
            base64::engine::general_purpose::STANDARD.encode(raw),
            "base64",
        ),
    }
}

/// The characters an SQS message may hold: #x9, #xA, #xD, #x20 to #xD7FF, #xE000 to
/// #xFFFD, #x10000 to #x10FFFF (Rust's `char` excludes the surrogates already).
fn sqs_allows(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
}

/// The raw body of a queued message, from its body and its [`BODY_ENCODING`]
/// attribute; `None` when a base64 body is not base64.
pub fn raw_body(body: &str, encoding: Option<&str>) -> Option<Vec<u8>> {
    match encoding {
        Some("base64") => base64::engine::general_purpose::STANDARD.decode(body).ok(),
        _ => Some(body.as_bytes().to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_body_is_sent_as_it_came_and_anything_else_as_base64() {
        let text = br#"{"object":"whatsapp_business_account","entry":[]}"#;
        assert_eq!(
            message_body(text),
            (String::from_utf8(text.to_vec()).expect("text"), "utf-8")
        );
        for raw in [
            &b"\xff\xfe not UTF-8"[..],
            "a \u{0} NUL".as_bytes(),
            "\u{FFFF}".as_bytes(),
        ] {
            let (body, encoding) = message_body(raw);
            assert_eq!(encoding, "base64");
            assert_eq!(raw_body(&body, Some(encoding)).as_deref(), Some(raw));
        }
        assert_eq!(raw_body("{}", Some("utf-8")).as_deref(), Some(&b"{}"[..]));
        assert_eq!(raw_body("not base64!", Some("base64")), None);
    }
}
