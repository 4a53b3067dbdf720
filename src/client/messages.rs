//! Sending and managing messages: `/send-message`, `/messages/…`,
//! `/send-presence-update`, and replying to a webhook message.

use serde::Serialize;
use serde_json::Value;

use super::transport::ApiRequest;
use super::types::{ActionResult, Extra, SendResult};
use super::WasenderSyncClient;
use crate::error::{Result, WasenderError};
use crate::event::wire::wire_object;
use crate::event::{
    phone_from_jid, MessageContent, MessageKey, MessageStatus, NumberOrString, WebhookMessage,
};

/// A message for [`WasenderSyncClient::send`]: one kind of content (text,
/// image, video, document, audio, sticker, contact, location or poll) plus the
/// options every kind takes (caption, `replyTo`, mentions, view-once).
///
/// ```
/// use wasenderapi::client::Message;
///
/// let reply = Message::text("+1234567890", "On my way").reply_to(100000);
/// let photo = Message::image("+1234567890", "https://example.com/a.jpg")
///     .caption("Look")
///     .view_once(true);
/// let body = serde_json::to_value(&photo).unwrap();
/// assert_eq!(body["imageUrl"], "https://example.com/a.jpg");
/// assert_eq!(body["text"], "Look");
/// assert_eq!(body["viewOnce"], true);
/// # let _ = reply;
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The request body, built member by member.
    body: Extra,
}

impl Serialize for Message {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        self.body.serialize(serializer)
    }
}

impl Message {
    fn new(to: impl Into<String>, kind: Option<(&str, Value)>) -> Self {
        let mut body = Extra::new();
        body.insert("to".to_owned(), Value::String(to.into()));
        if let Some((name, value)) = kind {
            body.insert(name.to_owned(), value);
        }
        Self { body }
    }

    fn set(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.body.insert(name.to_owned(), value.into());
        self
    }

    /// A text message. `to` is a phone (`+E164`), a group JID or a channel JID.
    pub fn text(to: impl Into<String>, text: impl Into<String>) -> Self {
        Self::new(to, None).caption(text)
    }

    /// An image, by public URL.
    pub fn image(to: impl Into<String>, url: impl Into<String>) -> Self {
        Self::new(to, Some(("imageUrl", Value::String(url.into()))))
    }

    /// A video, by public URL.
    pub fn video(to: impl Into<String>, url: impl Into<String>) -> Self {
        Self::new(to, Some(("videoUrl", Value::String(url.into()))))
    }

    /// A document, by public URL, shown with `file_name`.
    pub fn document(
        to: impl Into<String>,
        url: impl Into<String>,
        file_name: impl Into<String>,
    ) -> Self {
        Self::new(to, Some(("documentUrl", Value::String(url.into()))))
            .set("fileName", file_name.into())
    }

    /// An audio clip, by public URL.
    pub fn audio(to: impl Into<String>, url: impl Into<String>) -> Self {
        Self::new(to, Some(("audioUrl", Value::String(url.into()))))
    }

    /// A sticker (WebP), by public URL.
    pub fn sticker(to: impl Into<String>, url: impl Into<String>) -> Self {
        Self::new(to, Some(("stickerUrl", Value::String(url.into()))))
    }

    /// A contact card.
    pub fn contact(
        to: impl Into<String>,
        name: impl Into<String>,
        phone: impl Into<String>,
    ) -> Self {
        let card = serde_json::json!({ "name": name.into(), "phone": phone.into() });
        Self::new(to, Some(("contact", card)))
    }

    /// A location pin; add a place name and address with
    /// [`location_name`](Self::location_name) and [`address`](Self::address).
    pub fn location(to: impl Into<String>, latitude: f64, longitude: f64) -> Self {
        let pin = serde_json::json!({ "latitude": latitude, "longitude": longitude });
        Self::new(to, Some(("location", pin)))
    }

    /// A poll with its options; `multi_select` allows several answers.
    pub fn poll<I, S>(
        to: impl Into<String>,
        question: impl Into<String>,
        options: I,
        multi_select: bool,
    ) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let options: Vec<Value> = options
            .into_iter()
            .map(|o| Value::String(o.into()))
            .collect();
        let poll = serde_json::json!({
            "question": question.into(),
            "options": options,
            "multiSelect": multi_select,
        });
        Self::new(to, Some(("poll", poll)))
    }

    /// Sets the text that goes with the content (`text`): the caption of an
    /// image, video or document, or the text itself.
    pub fn caption(self, text: impl Into<String>) -> Self {
        self.set("text", text.into())
    }

    /// Quotes an earlier message by its REST id (`replyTo`, the `msgId` a send returned).
    pub fn reply_to(self, msg_id: u64) -> Self {
        self.set("replyTo", msg_id)
    }

    /// Mentions participants (JIDs), in groups (`mentions`).
    pub fn mentions<I, S>(mut self, jids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let list = self
            .body
            .entry("mentions")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(items) = list {
            items.extend(jids.into_iter().map(|j| Value::String(j.into())));
        }
        self
    }

    /// Sends media as view-once (`viewOnce`).
    pub fn view_once(self, view_once: bool) -> Self {
        self.set("viewOnce", view_once)
    }

    /// The location's place name (location messages only; ignored otherwise).
    pub fn location_name(self, name: impl Into<String>) -> Self {
        self.location_member("name", name.into())
    }

    /// The location's address (location messages only; ignored otherwise).
    pub fn address(self, address: impl Into<String>) -> Self {
        self.location_member("address", address.into())
    }

    fn location_member(mut self, name: &str, value: String) -> Self {
        if let Some(Value::Object(pin)) = self.body.get_mut("location") {
            pin.insert(name.to_owned(), Value::String(value));
        }
        self
    }

    /// Sets any body member, e.g. one this crate does not model yet
    /// (replacing a member of the same name).
    pub fn with_field(self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        let name: String = name.into();
        self.set(&name, value)
    }

    /// The recipient.
    pub fn recipient(&self) -> &str {
        self.body
            .get("to")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// The request body as JSON.
    pub fn as_json(&self) -> &serde_json::Map<String, Value> {
        &self.body
    }
}

/// A presence state for [`WasenderSyncClient::send_presence_update`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PresenceType {
    /// "typing…"
    Composing,
    /// "recording audio…"
    Recording,
    /// Online.
    Available,
    /// Offline.
    Unavailable,
}

impl PresenceType {
    /// The wire name: `composing`, `recording`, `available` or `unavailable`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Composing => "composing",
            Self::Recording => "recording",
            Self::Available => "available",
            Self::Unavailable => "unavailable",
        }
    }
}

wire_object! {
    /// What `GET /messages/{msgId}/info` answers: the stored message and its status.
    pub struct MessageInfo {
        /// The chat JID.
        "remoteJid" => remote_jid: String,
        /// The WhatsApp message id.
        "id" => id: String,
        /// The REST message id.
        "msgId" => msg_id: NumberOrString,
        /// The message key.
        "key" => key: MessageKey,
        /// The content.
        "message" => message: MessageContent,
        /// When it was sent (seconds, documented as a string).
        "messageTimestamp" => message_timestamp: NumberOrString,
        /// Delivery status, 0–5.
        "status" => status: NumberOrString,
    }
}

impl MessageInfo {
    /// The delivery status (0 error, 1 pending, 2 sent, 3 delivered, 4 read, 5 played).
    pub fn status_parsed(&self) -> Option<MessageStatus> {
        self.status.as_ref().map(MessageStatus::from_raw)
    }

    /// `messageTimestamp` as seconds.
    pub fn timestamp_secs(&self) -> Option<i64> {
        self.message_timestamp
            .as_ref()
            .and_then(NumberOrString::as_i64)
    }
}

/// Where to answer a received message: the group or channel it came from, or
/// the sender's phone (`+digits`) in a private chat, else the chat JID as is.
fn reply_target(message: &WebhookMessage) -> Result<String> {
    let chat = message.chat_jid().map(str::trim).filter(|j| !j.is_empty());
    match chat {
        Some(jid) if jid.ends_with("@g.us") || jid.ends_with("@newsletter") => Ok(jid.to_owned()),
        _ => {
            let phone = chat.and_then(phone_from_jid).or_else(|| {
                (!message.is_from_me())
                    .then(|| message.sender_phone())
                    .flatten()
            });
            match (phone, chat) {
                (Some(digits), _) => Ok(format!("+{digits}")),
                (None, Some(jid)) => Ok(jid.to_owned()),
                (None, None) => Err(WasenderError::InvalidArgument(format!(
                    "reply_text: message {} has no key.remoteJid to reply to",
                    message.id().unwrap_or("(without key.id)")
                ))),
            }
        }
    }
}

impl WasenderSyncClient {
    /// Sends a message built with [`Message`] (`POST /send-message`).
    ///
    /// Not retried after an ambiguous failure unless the retry policy opts in
    /// (see [`RetryPolicy`](crate::client::RetryPolicy)); 429 answers are waited out.
    pub fn send(&self, message: &Message) -> Result<SendResult> {
        let reply = self.execute(ApiRequest::post("/send-message").json(message)?)?;
        Ok(SendResult {
            message: reply.data()?,
            rate_limit: reply.rate_limit,
        })
    }

    /// Sends a text message.
    ///
    /// ```no_run
    /// let client = wasenderapi::WasenderSyncClient::new("api-key");
    /// let sent = client.send_text("+1234567890", "Hello")?;
    /// println!("msgId {:?}, {:?} sends left", sent.msg_id(), sent.rate_limit.and_then(|r| r.remaining));
    /// # Ok::<(), wasenderapi::WasenderError>(())
    /// ```
    pub fn send_text(&self, to: &str, text: &str) -> Result<SendResult> {
        self.send(&Message::text(to, text))
    }

    /// Sends an image by URL, with an optional caption.
    pub fn send_image(&self, to: &str, url: &str, caption: Option<&str>) -> Result<SendResult> {
        self.send(&with_caption(Message::image(to, url), caption))
    }

    /// Sends a video by URL, with an optional caption.
    pub fn send_video(&self, to: &str, url: &str, caption: Option<&str>) -> Result<SendResult> {
        self.send(&with_caption(Message::video(to, url), caption))
    }

    /// Sends a document by URL with its file name and an optional caption.
    pub fn send_document(
        &self,
        to: &str,
        url: &str,
        file_name: &str,
        caption: Option<&str>,
    ) -> Result<SendResult> {
        self.send(&with_caption(
            Message::document(to, url, file_name),
            caption,
        ))
    }

    /// Sends an audio clip by URL.
    pub fn send_audio(&self, to: &str, url: &str) -> Result<SendResult> {
        self.send(&Message::audio(to, url))
    }

    /// Sends a sticker by URL.
    pub fn send_sticker(&self, to: &str, url: &str) -> Result<SendResult> {
        self.send(&Message::sticker(to, url))
    }

    /// Sends a contact card.
    pub fn send_contact(&self, to: &str, name: &str, phone: &str) -> Result<SendResult> {
        self.send(&Message::contact(to, name, phone))
    }

    /// Sends a location, with an optional place name and address.
    pub fn send_location(
        &self,
        to: &str,
        latitude: f64,
        longitude: f64,
        name: Option<&str>,
        address: Option<&str>,
    ) -> Result<SendResult> {
        let mut message = Message::location(to, latitude, longitude);
        if let Some(name) = name {
            message = message.location_name(name);
        }
        if let Some(address) = address {
            message = message.address(address);
        }
        self.send(&message)
    }

    /// Sends a poll.
    pub fn send_poll(
        &self,
        to: &str,
        question: &str,
        options: &[&str],
        multi_select: bool,
    ) -> Result<SendResult> {
        self.send(&Message::poll(
            to,
            question,
            options.iter().copied(),
            multi_select,
        ))
    }

    /// Answers a message received in a webhook with a text, in the same chat:
    /// the group or channel it came from, or the sender (by phone when the key
    /// reveals it). If the webhook message carries a numeric REST `msgId`, the
    /// reply quotes it.
    ///
    /// ```no_run
    /// # fn handle(client: &wasenderapi::WasenderSyncClient, m: &wasenderapi::event::WebhookMessage) -> wasenderapi::Result<()> {
    /// if !m.is_from_me() {
    ///     if let Some(text) = m.text() {
    ///         client.reply_text(m, &format!("You said: {text}"))?;
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn reply_text(&self, message: &WebhookMessage, text: &str) -> Result<SendResult> {
        let mut reply = Message::text(reply_target(message)?, text);
        if let Some(msg_id) = message.extra.get("msgId").and_then(Value::as_u64) {
            reply = reply.reply_to(msg_id);
        }
        self.send(&reply)
    }

    /// Edits the text of a sent message (`PUT /messages/{msgId}`).
    pub fn edit_message(&self, msg_id: u64, text: &str) -> Result<ActionResult> {
        let request = ApiRequest::put(format!("/messages/{msg_id}"))
            .json(&serde_json::json!({ "text": text }))?;
        self.execute(request)?.whole()
    }

    /// Deletes a sent message for everyone (`DELETE /messages/{msgId}`).
    pub fn delete_message(&self, msg_id: u64) -> Result<ActionResult> {
        self.execute(ApiRequest::delete(format!("/messages/{msg_id}")))?
            .whole()
    }

    /// A sent message and its delivery status (`GET /messages/{msgId}/info`).
    pub fn get_message_info(&self, msg_id: u64) -> Result<MessageInfo> {
        self.execute(ApiRequest::get(format!("/messages/{msg_id}/info")))?
            .data()
    }

    /// Sends a failed message again (`POST /messages/{msgId}/resend`). Not
    /// retried after an ambiguous failure unless the policy opts in.
    pub fn resend_message(&self, msg_id: u64) -> Result<SendResult> {
        let reply = self.execute(ApiRequest::post(format!("/messages/{msg_id}/resend")))?;
        Ok(SendResult {
            message: reply.data()?,
            rate_limit: reply.rate_limit,
        })
    }

    /// Marks a received message as read (`POST /messages/read` with
    /// `{key: {id, remoteJid, fromMe}}`).
    pub fn mark_as_read(&self, key: &MessageKey) -> Result<ActionResult> {
        let (Some(id), Some(remote_jid)) = (key.id.as_deref(), key.remote_jid.as_deref()) else {
            return Err(WasenderError::InvalidArgument(
                "mark_as_read: the message key needs both id and remoteJid".to_owned(),
            ));
        };
        let body = serde_json::json!({
            "key": { "id": id, "remoteJid": remote_jid, "fromMe": key.is_from_me() }
        });
        let request = ApiRequest::post("/messages/read")
            .idempotent(true)
            .json(&body)?;
        self.execute(request)?.whole()
    }

    /// Marks a message received in a webhook as read. See [`Self::mark_as_read`].
    pub fn mark_message_as_read(&self, message: &WebhookMessage) -> Result<ActionResult> {
        let key = message.key.as_ref().ok_or_else(|| {
            WasenderError::InvalidArgument(
                "mark_message_as_read: the message has no key to mark as read".to_owned(),
            )
        })?;
        self.mark_as_read(key)
    }

    /// Shows a presence state ("typing…", online, …) in a chat
    /// (`POST /send-presence-update`), optionally for `delay_ms` milliseconds.
    pub fn send_presence_update(
        &self,
        jid: &str,
        presence: PresenceType,
        delay_ms: Option<u64>,
    ) -> Result<ActionResult> {
        let mut body = serde_json::json!({ "jid": jid, "type": presence.as_str() });
        if let (Some(delay), Some(object)) = (delay_ms, body.as_object_mut()) {
            object.insert("delayMs".to_owned(), delay.into());
        }
        let request = ApiRequest::post("/send-presence-update")
            .idempotent(true)
            .json(&body)?;
        self.execute(request)?.whole()
    }
}

fn with_caption(message: Message, caption: Option<&str>) -> Message {
    match caption {
        Some(caption) => message.caption(caption),
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn webhook_message(json: &str) -> WebhookMessage {
        serde_json::from_str(json).expect("valid message JSON")
    }

    #[test]
    fn replies_go_to_the_group_or_the_senders_phone() {
        let group = webhook_message(
            r#"{"key":{"id":"A","remoteJid":"123-456@g.us","participant":"9@s.whatsapp.net"}}"#,
        );
        assert_eq!(reply_target(&group).expect("target"), "123-456@g.us");
        let private = webhook_message(r#"{"key":{"id":"A","remoteJid":"1234@s.whatsapp.net"}}"#);
        assert_eq!(reply_target(&private).expect("target"), "+1234");
        let lid = webhook_message(
            r#"{"key":{"id":"A","remoteJid":"777@lid","cleanedSenderPn":"5551234"}}"#,
        );
        assert_eq!(reply_target(&lid).expect("target"), "+5551234");
        let unknown = webhook_message(r#"{"key":{"id":"A","remoteJid":"777@lid"}}"#);
        assert_eq!(reply_target(&unknown).expect("target"), "777@lid");
        let none = webhook_message(r#"{"messageBody":"hi"}"#);
        assert!(matches!(
            reply_target(&none),
            Err(WasenderError::InvalidArgument(_))
        ));
    }

    #[test]
    fn message_bodies_carry_only_what_was_set() {
        let poll = Message::poll("+1", "Color?", ["Red", "Blue"], true).reply_to(7);
        assert_eq!(
            serde_json::to_value(&poll).expect("serialises"),
            serde_json::json!({"to":"+1","poll":{"question":"Color?","options":["Red","Blue"],"multiSelect":true},"replyTo":7})
        );
        let location = Message::location("+1", 1.5, -2.0).address("Main St");
        assert_eq!(
            serde_json::to_value(&location).expect("serialises"),
            serde_json::json!({"to":"+1","location":{"latitude":1.5,"longitude":-2.0,"address":"Main St"}})
        );
    }
}
