//! Messages: keys, content, media, and the `data` of message events.
//! Events about messages already sent (status, reactions, …) are in `update.rs`.

use std::borrow::Cow;

use serde::de::MapAccess;
use serde::ser::SerializeMap;
use serde_json::Value;

use super::status::MessageStatus;
use super::time::timestamp_secs;
use super::wire::{
    accept_member, loose_bool, wire_object, Lenient, NumberOrString, OneOrMany, WireObject,
};

wire_object! {
    /// The key identifying a message (`key`).
    ///
    /// `id` is WhatsApp's message id (dedupe on it). `remote_jid` is the chat —
    /// often a LID (`…@lid`) rather than a phone; take the phone from
    /// [`WebhookMessage::sender_phone`].
    pub struct MessageKey {
        /// The WhatsApp message id.
        "id" => id: String,
        /// Whether the session itself sent the message.
        "fromMe" => from_me: bool,
        /// The chat JID: `…@s.whatsapp.net`, `…@g.us`, `…@newsletter` or `…@lid`.
        "remoteJid" => remote_jid: String,
        /// In groups, the sender's JID.
        "participant" => participant: String,
        /// `pn` or `lid`: how the chat is addressed.
        "addressingMode" => addressing_mode: String,
        /// The sender's phone JID.
        "senderPn" => sender_pn: String,
        /// The sender's phone number, digits only.
        "cleanedSenderPn" => cleaned_sender_pn: String,
        /// The sender's LID.
        "senderLid" => sender_lid: String,
        /// In groups, the participant's phone JID.
        "participantPn" => participant_pn: String,
        /// In groups, the participant's phone number, digits only.
        "cleanedParticipantPn" => cleaned_participant_pn: String,
        /// In groups, the participant's LID.
        "participantLid" => participant_lid: String,
    }
}

impl MessageKey {
    /// Whether the session sent this message. Accepts `true`, `"true"` or `1` on the wire.
    pub fn is_from_me(&self) -> bool {
        self.from_me
            .or_else(|| self.extra.get("fromMe").and_then(loose_bool))
            .unwrap_or(false)
    }

    /// Whether the chat is a group (`…@g.us`).
    pub fn is_group(&self) -> bool {
        self.remote_jid
            .as_deref()
            .is_some_and(|j| j.ends_with("@g.us"))
    }

    /// The sender's phone number, digits only, when the key reveals it.
    ///
    /// In order: `cleanedParticipantPn` (groups) or `cleanedSenderPn`, then the
    /// digits of `participantPn`/`senderPn`, then of the participant (groups) or
    /// chat JID when it is a phone JID (`…@s.whatsapp.net`, `…@c.us`, `+digits`).
    pub fn sender_phone(&self) -> Option<Cow<'_, str>> {
        let group = self.is_group() || self.participant.is_some();
        let (cleaned, pn, jid) = if group {
            (
                &self.cleaned_participant_pn,
                &self.participant_pn,
                &self.participant,
            )
        } else {
            (&self.cleaned_sender_pn, &self.sender_pn, &self.remote_jid)
        };
        let extra_digits = |name: &str| match self.extra.get(name) {
            Some(Value::Number(n)) => Some(Cow::Owned(n.to_string())),
            _ => None,
        };
        cleaned
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Cow::Borrowed)
            .or_else(|| {
                extra_digits(if group {
                    "cleanedParticipantPn"
                } else {
                    "cleanedSenderPn"
                })
            })
            .or_else(|| pn.as_deref().and_then(phone_from_jid))
            .or_else(|| jid.as_deref().and_then(phone_from_jid))
    }
}

/// The digits of a phone JID (`123@s.whatsapp.net`, `123:4@s.whatsapp.net`,
/// `123@c.us`) or of a bare `+123`/`123`; `None` for LIDs, groups and channels.
pub fn phone_from_jid(jid: &str) -> Option<Cow<'_, str>> {
    let jid = jid.trim();
    let user = match jid.split_once('@') {
        Some((user, "s.whatsapp.net" | "c.us")) => user,
        Some(_) => return None,
        None => jid.strip_prefix('+').unwrap_or(jid),
    };
    let user = user.split_once(':').map_or(user, |(u, _)| u);
    (!user.is_empty() && user.bytes().all(|b| b.is_ascii_digit())).then_some(Cow::Borrowed(user))
}

wire_object! {
    /// A media attachment (`imageMessage`, `videoMessage`, `audioMessage`,
    /// `documentMessage`, `stickerMessage`). The file itself is encrypted at
    /// `url`; get it through the REST client's `decrypt_media_file`.
    pub struct MediaMessage {
        /// The encrypted file's URL.
        "url" => url: String,
        /// MIME type, e.g. `image/jpeg`.
        "mimetype" => mimetype: String,
        /// Caption text.
        "caption" => caption: String,
        /// Document file name.
        "fileName" => file_name: String,
        /// Base64 SHA-256 of the plain file.
        "fileSha256" => file_sha256: String,
        /// Base64 SHA-256 of the encrypted file.
        "fileEncSha256" => file_enc_sha256: String,
        /// Size in bytes (documented as a string).
        "fileLength" => file_length: NumberOrString,
        /// The media key (needed for decryption).
        "mediaKey" => media_key: String,
        /// WhatsApp CDN direct path.
        "directPath" => direct_path: String,
        /// Duration in seconds (audio, video).
        "seconds" => seconds: NumberOrString,
        /// Whether an audio is a voice note.
        "ptt" => ptt: bool,
        /// Pixel height (images, videos, stickers).
        "height" => height: NumberOrString,
        /// Pixel width (images, videos, stickers).
        "width" => width: NumberOrString,
        /// Document title.
        "title" => title: String,
    }
}

impl MediaMessage {
    /// The size in bytes, whether sent as a number or a string.
    pub fn file_length_bytes(&self) -> Option<u64> {
        self.file_length.as_ref().and_then(NumberOrString::as_u64)
    }
}

wire_object! {
    /// `extendedTextMessage`: text with a link preview, reply context or mentions.
    pub struct ExtendedTextMessage {
        /// The text.
        "text" => text: String,
        /// Reply/mention context (kept as JSON).
        "contextInfo" => context_info: Value,
    }
}

wire_object! {
    /// `locationMessage`.
    pub struct LocationMessage {
        /// Latitude in degrees.
        "degreesLatitude" => degrees_latitude: NumberOrString,
        /// Longitude in degrees.
        "degreesLongitude" => degrees_longitude: NumberOrString,
        /// Place name.
        "name" => name: String,
        /// Address.
        "address" => address: String,
    }
}

wire_object! {
    /// `contactMessage`: a shared contact card.
    pub struct ContactMessage {
        /// Display name.
        "displayName" => display_name: String,
        /// The vCard text.
        "vcard" => vcard: String,
    }
}

wire_object! {
    /// `reactionMessage`: an emoji reaction sent as a message.
    pub struct ReactionMessage {
        /// The emoji (empty when a reaction is removed).
        "text" => text: String,
        /// The message reacted to.
        "key" => key: MessageKey,
    }
}

wire_object! {
    /// A wrapper around other content (`ephemeralMessage`, `viewOnceMessage`, …):
    /// `{ "message": { … } }`.
    pub struct MessageWrapper {
        /// The wrapped content.
        "message" => message: Box<MessageContent>,
    }
}

wire_object! {
    /// `protocolMessage`: edits, revokes and other control messages.
    pub struct ProtocolMessage {
        /// The kind of control message (`REVOKE`, `MESSAGE_EDIT`, or a number).
        "type" => kind: NumberOrString,
        /// The message it applies to.
        "key" => key: MessageKey,
        /// For edits: the new content.
        "editedMessage" => edited_message: Box<MessageContent>,
    }
}

wire_object! {
    /// The `message` object: WhatsApp's content, one member per kind.
    pub struct MessageContent {
        /// Plain text.
        "conversation" => conversation: String,
        /// Text with context.
        "extendedTextMessage" => extended_text_message: Box<ExtendedTextMessage>,
        /// An image.
        "imageMessage" => image_message: Box<MediaMessage>,
        /// A video.
        "videoMessage" => video_message: Box<MediaMessage>,
        /// An audio clip or voice note.
        "audioMessage" => audio_message: Box<MediaMessage>,
        /// A document.
        "documentMessage" => document_message: Box<MediaMessage>,
        /// A sticker.
        "stickerMessage" => sticker_message: Box<MediaMessage>,
        /// A location.
        "locationMessage" => location_message: Box<LocationMessage>,
        /// A contact card.
        "contactMessage" => contact_message: Box<ContactMessage>,
        /// A reaction.
        "reactionMessage" => reaction_message: Box<ReactionMessage>,
        /// A control message (edit, revoke).
        "protocolMessage" => protocol_message: Box<ProtocolMessage>,
        /// Disappearing-message wrapper.
        "ephemeralMessage" => ephemeral_message: Box<MessageWrapper>,
        /// View-once wrapper.
        "viewOnceMessage" => view_once_message: Box<MessageWrapper>,
        /// View-once wrapper (v2).
        "viewOnceMessageV2" => view_once_message_v2: Box<MessageWrapper>,
        /// View-once wrapper (v2 extension, voice notes).
        "viewOnceMessageV2Extension" => view_once_message_v2_extension: Box<MessageWrapper>,
        /// Document-with-caption wrapper.
        "documentWithCaptionMessage" => document_with_caption_message: Box<MessageWrapper>,
        /// Edited-message wrapper.
        "editedMessage" => edited_message: Box<MessageWrapper>,
    }
}

/// What kind of media a [`MediaMessage`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MediaKind {
    /// `imageMessage`.
    Image,
    /// `videoMessage`.
    Video,
    /// `audioMessage`.
    Audio,
    /// `documentMessage`.
    Document,
    /// `stickerMessage`.
    Sticker,
}

impl MediaKind {
    /// The member name on the wire (`imageMessage`, …), as `/decrypt-media` expects it.
    pub fn wire_name(self) -> &'static str {
        match self {
            Self::Image => "imageMessage",
            Self::Video => "videoMessage",
            Self::Audio => "audioMessage",
            Self::Document => "documentMessage",
            Self::Sticker => "stickerMessage",
        }
    }

    /// A short lowercase name: `image`, `video`, `audio`, `document`, `sticker`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Video => "video",
            Self::Audio => "audio",
            Self::Document => "document",
            Self::Sticker => "sticker",
        }
    }
}

/// A media attachment found in a message: its kind and its fields.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Media<'a> {
    /// Image, video, audio, document or sticker.
    pub kind: MediaKind,
    /// The attachment's fields (URL, MIME type, key, …).
    pub message: &'a MediaMessage,
}

impl<'a> Media<'a> {
    /// The MIME type.
    pub fn mimetype(&self) -> Option<&'a str> {
        self.message.mimetype.as_deref()
    }
    /// The caption.
    pub fn caption(&self) -> Option<&'a str> {
        self.message.caption.as_deref()
    }
    /// The document file name.
    pub fn file_name(&self) -> Option<&'a str> {
        self.message.file_name.as_deref()
    }
    /// The size in bytes (`fileLength`, sent as a number or a string).
    pub fn file_length_bytes(&self) -> Option<u64> {
        self.message.file_length_bytes()
    }
    /// The encrypted file's URL.
    pub fn url(&self) -> Option<&'a str> {
        self.message.url.as_deref()
    }
}

/// How deep wrappers are followed (each wrapper is one JSON level, and JSON nests ≤ 128).
const MAX_WRAPPER_DEPTH: usize = 128;

impl MessageContent {
    /// The innermost content, unwrapping ephemeral, view-once, document-with-caption
    /// and edited wrappers (for an edit, the new content).
    pub fn unwrapped(&self) -> &MessageContent {
        let mut current = self;
        for _ in 0..MAX_WRAPPER_DEPTH {
            match current.inner() {
                Some(inner) => current = inner,
                None => break,
            }
        }
        current
    }

    fn inner(&self) -> Option<&MessageContent> {
        let wrapper = [
            &self.ephemeral_message,
            &self.view_once_message,
            &self.view_once_message_v2,
            &self.view_once_message_v2_extension,
            &self.document_with_caption_message,
            &self.edited_message,
        ]
        .into_iter()
        .find_map(|w| w.as_ref()?.message.as_deref());
        wrapper.or_else(|| self.protocol_message.as_ref()?.edited_message.as_deref())
    }

    /// The text: `conversation`, `extendedTextMessage.text`, or a media caption (after unwrapping).
    pub fn text(&self) -> Option<&str> {
        let c = self.unwrapped();
        c.conversation
            .as_deref()
            .or_else(|| c.extended_text_message.as_ref()?.text.as_deref())
            .or_else(|| c.media()?.caption())
    }

    /// The media attachment, if any (after unwrapping).
    pub fn media(&self) -> Option<Media<'_>> {
        let c = self.unwrapped();
        [
            (MediaKind::Image, &c.image_message),
            (MediaKind::Video, &c.video_message),
            (MediaKind::Audio, &c.audio_message),
            (MediaKind::Document, &c.document_message),
            (MediaKind::Sticker, &c.sticker_message),
        ]
        .into_iter()
        .find_map(|(kind, m)| m.as_deref().map(|message| Media { kind, message }))
    }
}

wire_object! {
    /// A WhatsApp message as webhooks carry it.
    ///
    /// The fields hold what was received under the wire names; the methods
    /// read through the protocol's quirks: [`text`](Self::text) finds the text
    /// in `messageBody`, the content, a caption or an ephemeral, view-once or
    /// edited wrapper; [`sender_phone`](Self::sender_phone) takes the digits
    /// from the fields the docs recommend (the chat JID is often a LID, not a
    /// phone); [`id`](Self::id) is the `key.id` to dedupe on.
    ///
    /// # Examples
    ///
    /// An incoming group message with an image:
    ///
    /// ```
    /// use wasenderapi::event::MediaKind;
    /// use wasenderapi::WasenderWebhookEvent;
    ///
    /// let body = br#"{"event":"messages-group.received","data":{"messages":{
    ///     "key":{"id":"3EB0G1","fromMe":false,"remoteJid":"120363000000000000@g.us",
    ///            "participant":"98765@lid","cleanedParticipantPn":"15550001111"},
    ///     "pushName":"Ana","messageTimestamp":"1747775431",
    ///     "message":{"imageMessage":{"mimetype":"image/jpeg","caption":"Our stand","fileLength":"52311"}}}}}"#;
    /// let event = WasenderWebhookEvent::from_slice(body)?;
    /// let message = &event.messages()[0];
    ///
    /// assert_eq!(message.id(), Some("3EB0G1"));
    /// assert!(message.is_group() && !message.is_from_me());
    /// assert_eq!(message.sender_jid(), Some("98765@lid"));
    /// assert_eq!(message.sender_phone().as_deref(), Some("15550001111"));
    /// assert_eq!(message.push_name(), Some("Ana"));
    /// assert_eq!(message.timestamp_secs(), Some(1_747_775_431)); // a string on the wire
    /// assert_eq!(message.text(), Some("Our stand")); // the caption
    /// let media = message.media().expect("an image");
    /// assert_eq!(media.kind, MediaKind::Image);
    /// # Ok::<(), wasenderapi::WasenderError>(())
    /// ```
    pub struct WebhookMessage {
        /// Identifies the message and its chat.
        "key" => key: Box<MessageKey>,
        /// Wasender's unified text: the text, the caption, or the reply.
        "messageBody" => message_body: String,
        /// The content.
        "message" => message: Box<MessageContent>,
        /// The sender's display name.
        "pushName" => push_name: String,
        /// When the message was sent (seconds; number or string).
        /// [`timestamp_secs`](WebhookMessage::timestamp_secs) reads it.
        "messageTimestamp" => message_timestamp: NumberOrString,
        /// Delivery status, on `message.sent` (0–5 or a name).
        /// [`status_parsed`](WebhookMessage::status_parsed) reads it.
        "status" => status: NumberOrString,
        /// Whether it came from a broadcast list.
        "broadcast" => broadcast: bool,
    }
}

impl WebhookMessage {
    /// The WhatsApp message id (`key.id`).
    pub fn id(&self) -> Option<&str> {
        self.key.as_ref()?.id.as_deref()
    }

    /// The chat JID (`key.remoteJid`).
    pub fn chat_jid(&self) -> Option<&str> {
        self.key.as_ref()?.remote_jid.as_deref()
    }

    /// Whether the session sent it (`key.fromMe`, read leniently).
    pub fn is_from_me(&self) -> bool {
        self.key.as_deref().is_some_and(MessageKey::is_from_me)
    }

    /// Whether it was posted in a group.
    pub fn is_group(&self) -> bool {
        self.key.as_deref().is_some_and(MessageKey::is_group)
    }

    /// The sender's JID: the participant in groups, otherwise the chat.
    pub fn sender_jid(&self) -> Option<&str> {
        let key = self.key.as_ref()?;
        if self.is_group() {
            key.participant.as_deref().or(key.participant_pn.as_deref())
        } else {
            key.sender_pn.as_deref().or(key.remote_jid.as_deref())
        }
    }

    /// The sender's phone number, digits only. See [`MessageKey::sender_phone`].
    pub fn sender_phone(&self) -> Option<Cow<'_, str>> {
        self.key.as_ref()?.sender_phone()
    }

    /// The text: `messageBody` when non-empty, else from the content (see [`MessageContent::text`]).
    pub fn text(&self) -> Option<&str> {
        self.message_body
            .as_deref()
            .filter(|s| !s.is_empty())
            .or_else(|| self.message.as_ref()?.text())
    }

    /// The media attachment, if the message carries one.
    pub fn media(&self) -> Option<Media<'_>> {
        self.message.as_ref()?.media()
    }

    /// The sender's display name.
    pub fn push_name(&self) -> Option<&str> {
        self.push_name.as_deref()
    }

    /// `messageTimestamp` in Unix seconds (milliseconds and numeric strings normalised).
    pub fn timestamp_secs(&self) -> Option<i64> {
        self.message_timestamp.as_ref().and_then(timestamp_secs)
    }

    /// `messageTimestamp` as a [`jiff::Timestamp`], keeping milliseconds (feature `jiff`).
    #[cfg(feature = "jiff")]
    pub fn timestamp_jiff(&self) -> Option<jiff::Timestamp> {
        self.message_timestamp
            .as_ref()
            .and_then(super::time::timestamp_jiff)
    }

    /// The delivery status (`status`), parsed, when the message carries one.
    pub fn status_parsed(&self) -> Option<MessageStatus> {
        self.status.as_ref().map(MessageStatus::from_raw)
    }
}

/// The `data` of message events: `data.messages` (an array or a single object),
/// or the message's members directly in `data` (the flat shape).
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct MessagesData {
    /// `data.messages`, when present with an object or array.
    pub messages: Option<OneOrMany<WebhookMessage>>,
    /// The members of `data` other than `messages`, read as a message (the
    /// flat shape: `key`, `message`, …). Unmodelled members are in `flat.extra`.
    pub flat: WebhookMessage,
}

impl MessagesData {
    /// Every message carried, whichever shape was sent.
    pub fn messages(&self) -> &[WebhookMessage] {
        match &self.messages {
            Some(messages) => messages.as_slice(),
            None if self.flat.key.is_some() || self.flat.message.is_some() => {
                std::slice::from_ref(&self.flat)
            }
            None => &[],
        }
    }
}

impl WireObject for MessagesData {
    fn accept<'de, A: MapAccess<'de>>(
        &mut self,
        key: Cow<'de, str>,
        map: &mut A,
    ) -> Result<(), A::Error> {
        if key == "messages" {
            accept_member(&mut self.messages, &mut self.flat.extra, key, map)
        } else {
            self.flat.accept(key, map)
        }
    }
    fn write_members<M: SerializeMap>(&self, out: &mut M) -> Result<(), M::Error> {
        if let Some(messages) = &self.messages {
            out.serialize_entry("messages", messages)?;
        }
        self.flat.write_members(out)
    }
    fn member_count(&self) -> usize {
        usize::from(self.messages.is_some()) + self.flat.member_count()
    }
}

impl super::wire::Field for MessagesData {
    fn accept_field<'de, A: MapAccess<'de>>(
        slot: &mut Option<Self>,
        extra: &mut serde_json::Map<String, Value>,
        key: Cow<'de, str>,
        map: &mut A,
    ) -> Result<(), A::Error> {
        accept_member(slot, extra, key, map)
    }
}

impl Lenient for MessagesData {
    fn from_map<'de, A: MapAccess<'de>>(map: A) -> Result<Result<Self, Value>, A::Error> {
        super::wire::read_object(map).map(Ok)
    }
    fn fill<'de, D: serde::Deserializer<'de>>(
        slot: &mut Option<Self>,
        d: D,
    ) -> Result<Option<Value>, D::Error> {
        super::wire::fill_object(slot, d)
    }
    fn push<'de, D: serde::Deserializer<'de>>(
        items: &mut Vec<Self>,
        d: D,
    ) -> Result<Option<Value>, D::Error> {
        super::wire::push_object(items, d)
    }
}

impl serde::Serialize for MessagesData {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        super::wire::serialize_object(self, serializer)
    }
}
