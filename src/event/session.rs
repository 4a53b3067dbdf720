//! Session lifecycle: `session.status`, `qrcode.updated`.

use super::wire::wire_object;

wire_object! {
    /// The `data` of `session.status`.
    pub struct SessionStatusData {
        /// The status, in lower or upper case.
        /// [`status_parsed`](SessionStatusData::status_parsed) reads it.
        "status" => status: String,
        /// The session id, when sent in `data`.
        "session_id" => session_id: String,
        /// Why the status changed (disconnections).
        "reason" => reason: String,
    }
}

impl SessionStatusData {
    /// The status, parsed (any case).
    pub fn status_parsed(&self) -> Option<SessionStatus> {
        self.status.as_deref().map(SessionStatus::from)
    }
}

/// A session's connection state.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SessionStatus {
    /// Connecting to WhatsApp.
    Connecting,
    /// Connected and ready.
    Connected,
    /// Disconnected.
    Disconnected,
    /// Waiting for a QR code scan.
    NeedScan,
    /// Logged out from the phone.
    LoggedOut,
    /// Expired.
    Expired,
    /// A state this crate does not know, as received.
    Unknown(String),
}

impl From<&str> for SessionStatus {
    fn from(raw: &str) -> Self {
        match raw.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "connecting" => Self::Connecting,
            "connected" => Self::Connected,
            "disconnected" => Self::Disconnected,
            "need_scan" | "needscan" | "qr" => Self::NeedScan,
            "logged_out" | "loggedout" => Self::LoggedOut,
            "expired" => Self::Expired,
            _ => Self::Unknown(raw.to_owned()),
        }
    }
}

impl SessionStatus {
    /// The canonical lowercase name (`need_scan`, …) or the unknown value.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Connecting => "connecting",
            Self::Connected => "connected",
            Self::Disconnected => "disconnected",
            Self::NeedScan => "need_scan",
            Self::LoggedOut => "logged_out",
            Self::Expired => "expired",
            Self::Unknown(raw) => raw,
        }
    }
}

impl std::fmt::Display for SessionStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

wire_object! {
    /// The `data` of `qrcode.updated`.
    pub struct QrCodeData {
        /// The raw QR string (`2@…`), to be rendered as a QR code.
        "qr" => qr: String,
    }
}
