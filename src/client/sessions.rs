//! Sessions: the account endpoints (`/whatsapp-sessions…`, Personal Access
//! Token) and the session's own `/status` and `/user` (API key).

use serde::Serialize;
use serde_json::Value;

use super::contacts::Page;
use super::transport::ApiRequest;
use super::types::{ActionResult, Extra, Secret};
use super::WasenderSyncClient;
use crate::error::Result;
use crate::event::wire::wire_object;
use crate::event::{NumberOrString, SessionStatus, SessionStatusData};

wire_object! {
    /// A WhatsApp session of the account. `Debug` never shows its API key or
    /// webhook secret (they are [`Secret`]s).
    pub struct WhatsAppSession {
        /// The session id (used by every `/whatsapp-sessions/{id}` call).
        "id" => id: NumberOrString,
        /// The session's name.
        "name" => name: String,
        /// The WhatsApp phone number.
        "phone_number" => phone_number: String,
        /// Connection status, in lower or upper case.
        "status" => status: String,
        /// Whether account protection (send throttling) is on.
        "account_protection" => account_protection: bool,
        /// Whether messages are logged.
        "log_messages" => log_messages: bool,
        /// Where webhooks go.
        "webhook_url" => webhook_url: String,
        /// Whether webhooks are sent.
        "webhook_enabled" => webhook_enabled: bool,
        /// The events sent to the webhook.
        "webhook_events" => webhook_events: Vec<String>,
        /// The session's API key (on creation and in details).
        "api_key" => api_key: Secret,
        /// The webhook secret (on creation and in details).
        "webhook_secret" => webhook_secret: Secret,
        /// Creation time (ISO 8601).
        "created_at" => created_at: String,
        /// Last update time (ISO 8601).
        "updated_at" => updated_at: String,
    }
}

impl WhatsAppSession {
    /// The session id as a number.
    pub fn session_id(&self) -> Option<u64> {
        self.id.as_ref().and_then(NumberOrString::as_u64)
    }

    /// The connection status, parsed (any case).
    pub fn status_parsed(&self) -> Option<SessionStatus> {
        self.status.as_deref().map(SessionStatus::from)
    }
}

wire_object! {
    /// What `connect` and `qrcode` answer: the status and, while a scan is
    /// needed, the QR code to render.
    pub struct SessionConnection {
        /// The status, e.g. `NEED_SCAN`.
        "status" => status: String,
        /// The raw QR string (`2@…`), or an image data URL when asked for one.
        "qrCode" => qr_code: String,
    }
}

impl SessionConnection {
    /// The status, parsed (any case).
    pub fn status_parsed(&self) -> Option<SessionStatus> {
        self.status.as_deref().map(SessionStatus::from)
    }
}

wire_object! {
    /// What `regenerate-api-key` answers.
    pub struct RegeneratedApiKey {
        /// The new API key.
        "api_key" => api_key: Secret,
        /// The new API key, as some answers name it.
        "apiKey" => api_key_camel: Secret,
    }
}

impl RegeneratedApiKey {
    /// The new API key, whichever member carried it.
    pub fn key(&self) -> Option<&Secret> {
        self.api_key.as_ref().or(self.api_key_camel.as_ref())
    }
}

wire_object! {
    /// What `GET /user` answers: the WhatsApp account behind the session.
    /// The answer is undocumented; everything it carries is kept in `extra`.
    pub struct SessionUser {
        /// The account's JID.
        "id" => id: String,
        /// The account's display name.
        "name" => name: String,
        /// The account's phone number.
        "phone" => phone: String,
    }
}

/// Session settings for [`WasenderSyncClient::create_whatsapp_session`] and
/// [`WasenderSyncClient::update_whatsapp_session`]; only what you set is sent.
///
/// ```
/// use wasenderapi::client::SessionSettings;
/// let settings = SessionSettings::new()
///     .name("Support")
///     .phone_number("+1234567890")
///     .account_protection(true)
///     .webhook_url("https://example.com/webhook")
///     .webhook_events(["messages.received"]);
/// let body = serde_json::to_value(&settings).unwrap();
/// assert_eq!(body["phone_number"], "+1234567890");
/// assert!(body.get("log_messages").is_none());
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionSettings {
    body: Extra,
}

impl Serialize for SessionSettings {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        self.body.serialize(serializer)
    }
}

macro_rules! setters {
    ($( $(#[$doc:meta])* $name:ident: $ty:ty => $conv:expr; )*) => {
        $(
            $(#[$doc])*
            pub fn $name(self, value: $ty) -> Self {
                self.with_field(stringify!($name), $conv(value))
            }
        )*
    };
}

impl SessionSettings {
    /// Nothing set yet.
    pub fn new() -> Self {
        Self::default()
    }

    setters! {
        /// The session's name (`name`).
        name: impl Into<String> => Into::<String>::into;
        /// The WhatsApp phone number, `+E164` (`phone_number`).
        phone_number: impl Into<String> => Into::<String>::into;
        /// Account protection, which throttles sends to protect the number (`account_protection`).
        account_protection: bool => std::convert::identity;
        /// Whether messages are logged (`log_messages`).
        log_messages: bool => std::convert::identity;
        /// Whether incoming messages are marked read automatically (`read_incoming_messages`).
        read_incoming_messages: bool => std::convert::identity;
        /// Where webhooks go (`webhook_url`).
        webhook_url: impl Into<String> => Into::<String>::into;
        /// Whether webhooks are sent (`webhook_enabled`).
        webhook_enabled: bool => std::convert::identity;
    }

    /// The events sent to the webhook, e.g. `messages.received` (`webhook_events`).
    pub fn webhook_events<I, S>(self, events: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let events: Vec<Value> = events
            .into_iter()
            .map(|e| Value::String(e.into()))
            .collect();
        self.with_field("webhook_events", events)
    }

    /// Sets any setting, e.g. one this crate does not model yet
    /// (`always_online`, `proxy_url`, …).
    pub fn with_field(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.body.insert(name.into(), value.into());
        self
    }
}

impl WasenderSyncClient {
    /// The session's connection status (`GET /status`, API key).
    pub fn get_status(&self) -> Result<SessionStatusData> {
        self.execute(ApiRequest::get("/status"))?.data()
    }

    /// The WhatsApp account behind the session (`GET /user`, API key).
    pub fn get_session_user_info(&self) -> Result<SessionUser> {
        self.execute(ApiRequest::get("/user"))?.data()
    }

    /// Every session of the account (`GET /whatsapp-sessions`, PAT).
    pub fn get_all_whatsapp_sessions(&self) -> Result<Page<WhatsAppSession>> {
        self.execute(ApiRequest::get("/whatsapp-sessions").personal())?
            .data()
    }

    /// Creates a session (`POST /whatsapp-sessions`, PAT). The answer carries
    /// the new session's API key and webhook secret. Not retried after an
    /// ambiguous failure unless the policy opts in.
    pub fn create_whatsapp_session(&self, settings: &SessionSettings) -> Result<WhatsAppSession> {
        let request = ApiRequest::post("/whatsapp-sessions")
            .personal()
            .json(settings)?;
        self.execute(request)?.data()
    }

    /// One session (`GET /whatsapp-sessions/{id}`, PAT).
    pub fn get_whatsapp_session_details(&self, session_id: u64) -> Result<WhatsAppSession> {
        let path = format!("/whatsapp-sessions/{session_id}");
        self.execute(ApiRequest::get(path).personal())?.data()
    }

    /// Changes a session's settings (`PUT /whatsapp-sessions/{id}`, PAT).
    pub fn update_whatsapp_session(
        &self,
        session_id: u64,
        settings: &SessionSettings,
    ) -> Result<WhatsAppSession> {
        let path = format!("/whatsapp-sessions/{session_id}");
        let request = ApiRequest::put(path).personal().json(settings)?;
        self.execute(request)?.data()
    }

    /// Deletes a session (`DELETE /whatsapp-sessions/{id}`, PAT).
    pub fn delete_whatsapp_session(&self, session_id: u64) -> Result<ActionResult> {
        let path = format!("/whatsapp-sessions/{session_id}");
        self.execute(ApiRequest::delete(path).personal())?.whole()
    }

    /// Starts connecting a session (`POST /whatsapp-sessions/{id}/connect`,
    /// PAT); `qr_as_image` asks for the QR code as an image data URL.
    pub fn connect_whatsapp_session(
        &self,
        session_id: u64,
        qr_as_image: bool,
    ) -> Result<SessionConnection> {
        let mut request = ApiRequest::post(format!("/whatsapp-sessions/{session_id}/connect"))
            .personal()
            .idempotent(true);
        if qr_as_image {
            request = request.query("qrAsImage", "true");
        }
        self.execute(request)?.data()
    }

    /// The QR code to scan (`GET /whatsapp-sessions/{id}/qrcode`, PAT).
    pub fn get_whatsapp_session_qr_code(&self, session_id: u64) -> Result<SessionConnection> {
        let path = format!("/whatsapp-sessions/{session_id}/qrcode");
        self.execute(ApiRequest::get(path).personal())?.data()
    }

    /// Disconnects a session (`POST /whatsapp-sessions/{id}/disconnect`, PAT).
    pub fn disconnect_whatsapp_session(&self, session_id: u64) -> Result<ActionResult> {
        let path = format!("/whatsapp-sessions/{session_id}/disconnect");
        self.execute(ApiRequest::post(path).personal().idempotent(true))?
            .whole()
    }

    /// Replaces a session's API key (`POST /whatsapp-sessions/{id}/regenerate-api-key`,
    /// PAT). Never retried after an ambiguous failure unless the policy opts in:
    /// a second regeneration would invalidate the key the first one returned.
    pub fn regenerate_api_key(&self, session_id: u64) -> Result<RegeneratedApiKey> {
        let path = format!("/whatsapp-sessions/{session_id}/regenerate-api-key");
        self.execute(ApiRequest::post(path).personal())?.data()
    }
}
