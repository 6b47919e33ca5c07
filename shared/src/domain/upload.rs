//! An upload's S3 key (`imports/{account_id}/{channel}/{name}`), and import ids
//! (DESIGN section 4).

use sha2::{Digest, Sha256};

use super::channel::Channel;

/// Whether `id` is a valid account id: `[A-Za-z0-9_-]{1,64}`.
pub fn is_valid_account_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Why an S3 key is not an upload this function imports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not under `imports/{account_id}/{channel}/{name}`.
    #[error("key {0:?} is not of the form imports/{{account_id}}/{{channel}}/{{file name}}")]
    Layout(String),
    /// The account segment is not a valid account id.
    #[error("account id {0:?} in the key is not 1-64 characters of A-Z a-z 0-9 _ -")]
    Account(String),
    /// The channel segment is not a known channel.
    #[error("channel {0:?} in the key is not one of whatsapp, sms, voice")]
    Channel(String),
}

/// Account, channel and file name taken from an upload key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadKey {
    /// The account that owns the upload.
    pub account_id: String,
    /// The channel its contacts are for.
    pub channel: Channel,
    /// The rest of the key (may contain folders).
    pub file_name: String,
}

impl UploadKey {
    /// Parses a decoded key.
    pub fn parse(key: &str) -> Result<UploadKey, KeyError> {
        let mut parts = key.splitn(4, '/');
        let (Some("imports"), Some(account), Some(channel), Some(name)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(KeyError::Layout(key.to_string()));
        };
        if name.is_empty() || name.ends_with('/') {
            return Err(KeyError::Layout(key.to_string()));
        }
        if !is_valid_account_id(account) {
            return Err(KeyError::Account(account.to_string()));
        }
        let channel =
            Channel::parse(channel).ok_or_else(|| KeyError::Channel(channel.to_string()))?;
        Ok(UploadKey {
            account_id: account.to_string(),
            channel,
            file_name: name.to_string(),
        })
    }

    /// The lower-case extension of the file name, without the dot.
    pub fn extension(&self) -> String {
        let base = self.file_name.rsplit('/').next().unwrap_or(&self.file_name);
        match base.rsplit_once('.') {
            Some((stem, ext)) if !stem.is_empty() => ext.to_ascii_lowercase(),
            _ => String::new(),
        }
    }
}

/// Decodes a key as S3 events carry it: `+` is a space, then `%XX` escapes.
/// Invalid escapes are kept literally rather than guessed.
pub fn decode_event_key(key: &str) -> String {
    let bytes = key.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match (hex_value(bytes[i + 1]), hex_value(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push(h * 16 + l);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// What identifies one upload event: the same upload always gets the same import id,
/// and a new upload of identical bytes to the same key gets a new one.
#[derive(Debug, Clone, Default)]
pub struct UploadIdentity<'a> {
    /// Bucket name.
    pub bucket: &'a str,
    /// Decoded key.
    pub key: &'a str,
    /// Object version, when the bucket is versioned.
    pub version_id: Option<&'a str>,
    /// Object eTag.
    pub etag: Option<&'a str>,
    /// The event's sequencer (AWS) or, where an emulator omits it, its event time: it
    /// tells two uploads of the same bytes apart while a redelivered event keeps it.
    pub sequencer: Option<&'a str>,
}

/// `imp_` + 16 hex digits of a SHA-256 over bucket, key, version (or eTag) and sequencer.
pub fn import_id(identity: &UploadIdentity<'_>) -> String {
    let mut hasher = Sha256::new();
    for part in [
        identity.bucket,
        identity.key,
        identity.version_id.or(identity.etag).unwrap_or(""),
        identity.sequencer.unwrap_or(""),
    ] {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    let digest = hasher.finalize();
    format!("imp_{}", &hex::encode(digest)[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_moto_and_aws_keys() {
        assert_eq!(
            decode_event_key("imports%2Facme%2Fwhatsapp%2FMy+File+%281%29.csv"),
            "imports/acme/whatsapp/My File (1).csv"
        );
        assert_eq!(
            decode_event_key("imports/acme/sms/caf%C3%A9.csv"),
            "imports/acme/sms/café.csv"
        );
        assert_eq!(decode_event_key("a%2"), "a%2");
        assert_eq!(decode_event_key("100%25"), "100%");
    }

    #[test]
    fn parses_the_upload_layout() {
        let key = UploadKey::parse("imports/acme-1/whatsapp/2026/List (1).CSV").expect("valid");
        assert_eq!(key.account_id, "acme-1");
        assert_eq!(key.channel, Channel::Whatsapp);
        assert_eq!(key.extension(), "csv");
        assert!(matches!(
            UploadKey::parse("imports/acme/fax/a.csv"),
            Err(KeyError::Channel(_))
        ));
        assert!(matches!(
            UploadKey::parse("imports/ac me/sms/a.csv"),
            Err(KeyError::Account(_))
        ));
        assert!(matches!(
            UploadKey::parse("reports/acme/sms/a.csv"),
            Err(KeyError::Layout(_))
        ));
        assert!(matches!(
            UploadKey::parse("imports/acme/sms/"),
            Err(KeyError::Layout(_))
        ));
        assert!(matches!(
            UploadKey::parse("imports/acme/sms"),
            Err(KeyError::Layout(_))
        ));
    }

    #[test]
    fn import_ids_are_deterministic_and_distinguish_uploads() {
        let a = UploadIdentity {
            bucket: "b",
            key: "k",
            etag: Some("e"),
            sequencer: Some("1"),
            ..Default::default()
        };
        let b = UploadIdentity {
            sequencer: Some("2"),
            ..a.clone()
        };
        assert_eq!(import_id(&a), import_id(&a.clone()));
        assert_ne!(import_id(&a), import_id(&b));
        assert!(import_id(&a).starts_with("imp_"));
        assert_eq!(import_id(&a).len(), 20);
    }
}
