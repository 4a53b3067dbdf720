//! A message's delivery status, as updates and messages carry it.

use super::wire::NumberOrString;

/// A message's delivery status. Accepts WhatsApp's numbers 0–5 and names
/// (`"delivered"`, `"DELIVERY_ACK"`, …) in any case; anything else is kept as `Unknown`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MessageStatus {
    /// 0: failed.
    Error,
    /// 1: waiting to be sent.
    Pending,
    /// 2: received by the server.
    Sent,
    /// 3: delivered to the device.
    Delivered,
    /// 4: read.
    Read,
    /// 5: played (voice notes).
    Played,
    /// A value this crate does not know, as received.
    Unknown(String),
}

impl MessageStatus {
    /// Interprets a raw wire value.
    pub fn from_raw(raw: &NumberOrString) -> Self {
        match raw {
            NumberOrString::Number(n) => match n.as_u64() {
                Some(code) => Self::from_code(code),
                None => Self::Unknown(n.to_string()),
            },
            NumberOrString::String(s) => s.parse().unwrap_or_else(|_| Self::Unknown(s.clone())),
        }
    }

    fn from_code(code: u64) -> Self {
        match code {
            0 => Self::Error,
            1 => Self::Pending,
            2 => Self::Sent,
            3 => Self::Delivered,
            4 => Self::Read,
            5 => Self::Played,
            other => Self::Unknown(other.to_string()),
        }
    }

    /// WhatsApp's numeric code (0–5), if known.
    pub fn code(&self) -> Option<u8> {
        Some(match self {
            Self::Error => 0,
            Self::Pending => 1,
            Self::Sent => 2,
            Self::Delivered => 3,
            Self::Read => 4,
            Self::Played => 5,
            Self::Unknown(_) => return None,
        })
    }

    /// A lowercase name: `error`, `pending`, `sent`, `delivered`, `read`, `played`, or the unknown value.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Error => "error",
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Read => "read",
            Self::Played => "played",
            Self::Unknown(raw) => raw,
        }
    }
}

impl std::str::FromStr for MessageStatus {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let trimmed = s.trim();
        if let Ok(code) = trimmed.parse::<u64>() {
            return Ok(Self::from_code(code));
        }
        Ok(match trimmed.to_ascii_lowercase().as_str() {
            "error" | "failed" => Self::Error,
            "pending" => Self::Pending,
            "sent" | "server_ack" | "serverack" => Self::Sent,
            "delivered" | "delivery_ack" | "deliveryack" => Self::Delivered,
            "read" | "seen" => Self::Read,
            "played" => Self::Played,
            _ => Self::Unknown(s.to_owned()),
        })
    }
}

impl std::fmt::Display for MessageStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
