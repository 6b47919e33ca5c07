//! The messaging channels: contacts are unique per account, channel and number.

/// A messaging channel; contacts are unique per account, channel and number.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// WhatsApp: needs a mobile number.
    Whatsapp,
    /// SMS: needs a mobile number.
    Sms,
    /// Voice: any valid number.
    Voice,
}

impl Channel {
    /// Parses `whatsapp`, `sms` or `voice`.
    pub fn parse(value: &str) -> Option<Channel> {
        match value {
            "whatsapp" => Some(Channel::Whatsapp),
            "sms" => Some(Channel::Sms),
            "voice" => Some(Channel::Voice),
            _ => None,
        }
    }

    /// The lower-case name used in keys and items.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Whatsapp => "whatsapp",
            Channel::Sms => "sms",
            Channel::Voice => "voice",
        }
    }
}

impl std::fmt::Display for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
