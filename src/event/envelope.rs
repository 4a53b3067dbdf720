//! The event envelope, the enums and decoder built from the catalogue, and `parse_event`.

use std::fmt;
use std::str::FromStr;

use serde::de::value::MapDeserializer;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::catalogue::{with_catalogue, EventData};
use super::time::timestamp_secs;
use super::wire::{accept_extra, accept_member, Field, KeySeed, LenientSeed};
// The catalogue names its data types as `crate::event` exports them.
use super::*;
use crate::error::WasenderError;

/// One webhook event: the envelope and its typed `data`.
///
/// The fields hold the envelope as received; [`timestamp_secs`](Self::timestamp_secs)
/// and [`session_id`](Self::session_id) read it through the protocol's quirks.
///
/// ```
/// use wasenderapi::{event::SessionStatus, WasenderWebhookEvent};
///
/// let body = br#"{"event":"session.status","timestamp":1747775431467,"data":{"status":"CONNECTED","session_id":"s-1"}}"#;
/// let WasenderWebhookEvent::SessionStatus(event) = WasenderWebhookEvent::from_slice(body)? else {
///     unreachable!()
/// };
/// assert_eq!(event.timestamp_secs(), Some(1_747_775_431)); // milliseconds on the wire
/// assert_eq!(event.session_id(), Some("s-1")); // from `data.session_id`
/// assert_eq!(event.data().and_then(|d| d.status_parsed()), Some(SessionStatus::Connected));
/// # Ok::<(), wasenderapi::WasenderError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct WebhookEvent<D> {
    /// The event name exactly as received (an alias stays an alias).
    pub event: String,
    /// `timestamp` as received: seconds or milliseconds, number or string.
    /// [`timestamp_secs`](Self::timestamp_secs) reads it as seconds.
    pub timestamp: Option<NumberOrString>,
    /// `sessionId` as received. It may be the session's API key: never log it
    /// in full. [`session_id`](Self::session_id) also looks inside `data`.
    pub session_id: Option<String>,
    /// The typed `data`. `None` when absent, or when its shape did not fit (then
    /// the raw value is in `extra["data"]`).
    pub data: Option<D>,
    /// Envelope members not modelled above, exactly as received.
    pub extra: Map<String, Value>,
}

impl<D> WebhookEvent<D> {
    /// The event name as received.
    pub fn event_name(&self) -> &str {
        &self.event
    }

    /// The timestamp in Unix seconds: milliseconds, numeric strings and RFC 3339
    /// strings are normalised. The raw value is the field [`timestamp`](Self::timestamp).
    pub fn timestamp_secs(&self) -> Option<i64> {
        self.timestamp.as_ref().and_then(timestamp_secs)
    }

    /// The timestamp as a [`jiff::Timestamp`], keeping milliseconds (feature `jiff`).
    #[cfg(feature = "jiff")]
    pub fn timestamp_jiff(&self) -> Option<jiff::Timestamp> {
        self.timestamp
            .as_ref()
            .and_then(super::time::timestamp_jiff)
    }

    /// The typed data, if present and of the expected shape.
    pub fn data(&self) -> Option<&D> {
        self.data.as_ref()
    }

    /// The `data` member as received when it did not fit the typed shape.
    pub fn raw_data(&self) -> Option<&Value> {
        self.extra.get("data")
    }
}

impl<D: EventData> WebhookEvent<D> {
    /// The session id: `sessionId`, or else the one inside `data`
    /// (`data.session_id` on `session.status`). It may be the session's API
    /// key: mask it before logging.
    pub fn session_id(&self) -> Option<&str> {
        self.session_id
            .as_deref()
            .or_else(|| self.data.as_ref()?.session_id())
    }

    /// Every message the event carries, whichever shape (`data.messages` array
    /// or object, or flat). Empty for events that carry no message.
    pub fn messages(&self) -> &[WebhookMessage] {
        self.data.as_ref().map_or(&[], EventData::messages)
    }
}

impl<D: Serialize> Serialize for WebhookEvent<D> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let len = 1
            + usize::from(self.timestamp.is_some())
            + usize::from(self.session_id.is_some())
            + usize::from(self.data.is_some())
            + self.extra.len();
        let mut map = serializer.serialize_map(Some(len))?;
        map.serialize_entry("event", &self.event)?;
        if let Some(ts) = &self.timestamp {
            map.serialize_entry("timestamp", ts)?;
        }
        if let Some(id) = &self.session_id {
            map.serialize_entry("sessionId", id)?;
        }
        if let Some(data) = &self.data {
            map.serialize_entry("data", data)?;
        }
        for (k, v) in &self.extra {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// Builds, from the catalogue, the type enum, the event enum and the decoder.
macro_rules! event_enums {
    ($(
        $(#[$doc:meta])*
        $variant:ident = $name:literal $(| $alias:literal)* => fn $method:ident($data:ty),
    )*) => {
        /// The kind of a webhook event: one case per catalogued event, plus `Unknown`.
        ///
        /// Parsing accepts the canonical names and the aliases seen in official SDKs
        /// (`call.received`, `messages.recieved`, …); [`as_str`](Self::as_str) gives the
        /// canonical name.
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum WasenderWebhookEventType {
            $(
                $(#[$doc])*
                #[doc = concat!("\n\n`", $name, "`", $(", alias `", $alias, "`",)*)]
                $variant,
            )*
            /// An event this crate does not know yet, with its name as received.
            Unknown(String),
        }

        impl WasenderWebhookEventType {
            /// Every catalogued event type, in catalogue order.
            pub const KNOWN: &'static [WasenderWebhookEventType] = &[$(Self::$variant),*];

            /// The canonical event name (for `Unknown`, the name as received).
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $name,)*
                    Self::Unknown(name) => name,
                }
            }

            /// Reads an event name: canonical, alias, or unknown.
            pub fn from_name(name: &str) -> Self {
                match name {
                    $($name $(| $alias)* => Self::$variant,)*
                    other => Self::Unknown(other.to_owned()),
                }
            }
        }

        /// A verified, typed webhook event. One variant per catalogued event;
        /// anything else is `Unknown` with its name and data intact.
        ///
        /// `serde_json::to_value(&event)` gives back the received JSON.
        ///
        /// # Examples
        ///
        /// Match the variant you expect and read its typed data:
        ///
        /// ```
        /// use wasenderapi::{WasenderWebhookEvent, WebhookVerifier};
        ///
        /// let body = br#"{"event":"messages.update","sessionId":"a1b2c3d4e5f6a7b8","data":
        ///     {"key":{"id":"3EB0X1","remoteJid":"1234567890@s.whatsapp.net"},"update":{"status":4}}}"#;
        /// let event = WebhookVerifier::with_secret("s").handle_webhook_event(body, Some("s"))?;
        /// match &event {
        ///     WasenderWebhookEvent::MessagesUpdate(update) => {
        ///         let first = update.data().and_then(|d| d.iter().next()).expect("one update");
        ///         assert_eq!(first.id(), Some("3EB0X1"));
        ///         assert_eq!(first.status_parsed().map(|s| s.as_str().to_owned()).as_deref(), Some("read"));
        ///     }
        ///     other => panic!("unexpected {}", other.event_type().as_str()),
        /// }
        /// assert_eq!(event.session_id(), Some("a1b2c3d4e5f6a7b8"));
        /// # Ok::<(), wasenderapi::WasenderError>(())
        /// ```
        ///
        /// An event name this crate does not know is data, not an error:
        ///
        /// ```
        /// use wasenderapi::WasenderWebhookEvent;
        ///
        /// let event = WasenderWebhookEvent::from_slice(br#"{"event":"labels.edit","data":{"id":"7"}}"#)?;
        /// assert!(!event.event_type().is_known());
        /// assert_eq!(event.event_type().as_str(), "labels.edit");
        /// let WasenderWebhookEvent::Unknown(unknown) = &event else { unreachable!() };
        /// assert_eq!(unknown.data().and_then(|d| d["id"].as_str()), Some("7"));
        /// # Ok::<(), wasenderapi::WasenderError>(())
        /// ```
        #[derive(Debug, Clone, PartialEq)]
        #[non_exhaustive]
        pub enum WasenderWebhookEvent {
            $(
                $(#[$doc])*
                #[doc = concat!(
                    "\n\n`", $name, "`, dispatched to [`WebhookHandler::", stringify!($method),
                    "`](crate::handler::webhook::WebhookHandler::", stringify!($method), ")."
                )]
                $variant(Box<WebhookEvent<$data>>),
            )*
            /// An event this crate does not know yet; `data` is kept as JSON.
            Unknown(Box<WebhookEvent<Value>>),
        }

        impl WasenderWebhookEvent {
            /// The event type.
            pub fn event_type(&self) -> WasenderWebhookEventType {
                match self {
                    $(Self::$variant(_) => WasenderWebhookEventType::$variant,)*
                    Self::Unknown(e) => WasenderWebhookEventType::Unknown(e.event.clone()),
                }
            }

            fn head(&self) -> Head<'_> {
                match self {
                    $(Self::$variant(e) => Head::of(e),)*
                    Self::Unknown(e) => Head::of(e),
                }
            }
        }

        impl Serialize for WasenderWebhookEvent {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                match self {
                    $(Self::$variant(e) => e.serialize(serializer),)*
                    Self::Unknown(e) => e.serialize(serializer),
                }
            }
        }

        /// Reads the rest of the envelope once `event` is known, straight into
        /// the variant's boxed event (the data is filled in place). The name
        /// is matched once, here, without building a `WasenderWebhookEventType`.
        fn read_known<'de, A: MapAccess<'de>>(
            head: Parts,
            map: &mut A,
        ) -> Result<WasenderWebhookEvent, A::Error> {
            Ok(match head.event.as_str() {
                $($name $(| $alias)* => WasenderWebhookEvent::$variant(read_rest(head, map)?),)*
                _ => WasenderWebhookEvent::Unknown(read_rest(head, map)?),
            })
        }
    };
}

with_catalogue!(event_enums);

/// What every variant's accessors read, borrowed from its `WebhookEvent`
/// (through the same methods, so the enum and the typed wrapper agree).
struct Head<'a> {
    event: &'a str,
    timestamp: Option<&'a NumberOrString>,
    session_id: Option<&'a str>,
    messages: &'a [WebhookMessage],
    extra: &'a Map<String, Value>,
}

impl<'a> Head<'a> {
    fn of<D: EventData>(e: &'a WebhookEvent<D>) -> Self {
        Self {
            event: &e.event,
            timestamp: e.timestamp.as_ref(),
            session_id: e.session_id(),
            messages: e.messages(),
            extra: &e.extra,
        }
    }
}

/// The envelope members read before `event` was known.
struct Parts {
    event: String,
    timestamp: Option<NumberOrString>,
    session_id: Option<String>,
    /// `data` seen before `event`: kept as JSON until its type is known.
    early_data: Option<Value>,
    extra: Map<String, Value>,
}

/// Reads the members after `event` into a boxed `WebhookEvent<D>`.
fn read_rest<'de, D: Field, A: MapAccess<'de>>(
    head: Parts,
    map: &mut A,
) -> Result<Box<WebhookEvent<D>>, A::Error> {
    let mut event = Box::new(WebhookEvent {
        event: head.event,
        timestamp: head.timestamp,
        session_id: head.session_id,
        data: None,
        extra: head.extra,
    });
    if let Some(raw) = head.early_data {
        let mut single = MapDeserializer::new(std::iter::once(("data", raw)));
        if let Some(key) = single.next_key_seed(KeySeed).map_err(de::Error::custom)? {
            D::accept_field(&mut event.data, &mut event.extra, key, &mut single)
                .map_err(de::Error::custom)?;
        }
    }
    while let Some(key) = map.next_key_seed(KeySeed)? {
        let e = &mut *event;
        match key.as_ref() {
            "data" => D::accept_field(&mut e.data, &mut e.extra, key, map)?,
            "timestamp" => accept_member(&mut e.timestamp, &mut e.extra, key, map)?,
            "sessionId" => accept_member(&mut e.session_id, &mut e.extra, key, map)?,
            // A repeated `event`: the last spelling is kept (the variant is the first's).
            "event" => match map.next_value_seed(LenientSeed::<String>::new())? {
                Ok(name) => e.event = name,
                Err(_) => return Err(de::Error::custom("the `event` member is not a string")),
            },
            _ => accept_extra(&mut e.extra, key, map)?,
        }
    }
    Ok(event)
}

impl WasenderWebhookEvent {
    /// The event name exactly as received (aliases are not rewritten).
    pub fn event_name(&self) -> &str {
        self.head().event
    }

    /// The timestamp in Unix seconds: milliseconds, numeric strings and RFC 3339
    /// strings are normalised. The raw value is [`timestamp_raw`](Self::timestamp_raw).
    pub fn timestamp_secs(&self) -> Option<i64> {
        self.head().timestamp.and_then(timestamp_secs)
    }

    /// The timestamp as a [`jiff::Timestamp`], keeping milliseconds (feature `jiff`).
    #[cfg(feature = "jiff")]
    pub fn timestamp_jiff(&self) -> Option<jiff::Timestamp> {
        self.head().timestamp.and_then(super::time::timestamp_jiff)
    }

    /// The timestamp exactly as received.
    pub fn timestamp_raw(&self) -> Option<&NumberOrString> {
        self.head().timestamp
    }

    /// The session id: `sessionId`, or else the one inside `data`
    /// (`data.session_id` on `session.status`); see [`WebhookEvent::session_id`].
    /// It may be the session's API key: mask it before logging.
    pub fn session_id(&self) -> Option<&str> {
        self.head().session_id
    }

    /// Envelope members not modelled (and `data` when its shape did not fit).
    pub fn extra(&self) -> &Map<String, Value> {
        self.head().extra
    }

    /// Every message the event carries, whichever shape (`data.messages` array or
    /// object, or flat). Empty for events that carry no message.
    pub fn messages(&self) -> &[WebhookMessage] {
        self.head().messages
    }

    /// The key every delivery mode deduplicates this event by, given its raw
    /// `body`: the event name plus its first message's `key.id` when there
    /// is one, else the event name plus the raw body. The listener's dedupe
    /// window (inline, queued and durable modes, `dedupe.log`) and Redis
    /// delivery (`<prefix>:seen:<key>`, the `dedupe_key` field) all use it, so
    /// they recognise each other's repeats.
    ///
    /// The key is `id:` or `body:` and the hex SHA-256 of those fields,
    /// length-prefixed: fixed width, the same on every platform and release
    /// (it is persisted), and a sender cannot make two different events
    /// collide on purpose.
    ///
    /// ```
    /// use wasenderapi::WasenderWebhookEvent;
    ///
    /// let a = br#"{"event":"messages.upsert","data":{"key":{"id":"3EB0X1"},"message":{"conversation":"hi"}}}"#;
    /// let b = br#"{"event":"messages.upsert","data":{"key":{"id":"3EB0X1"}}}"#;
    /// let (ea, eb) = (WasenderWebhookEvent::from_slice(a)?, WasenderWebhookEvent::from_slice(b)?);
    /// assert_eq!(ea.dedupe_key(a), eb.dedupe_key(b)); // same name and message id
    /// assert!(ea.dedupe_key(a).starts_with("id:"));
    /// # Ok::<(), wasenderapi::WasenderError>(())
    /// ```
    pub fn dedupe_key(&self, body: &[u8]) -> String {
        use sha2::Digest as _;
        let id = self.messages().iter().find_map(|m| m.id());
        let (tag, value) = match id {
            Some(id) if !id.is_empty() => ("id", id.as_bytes()),
            _ => ("body", body),
        };
        // Length-prefixed fields, so ("ab", "c") and ("a", "bc") hash apart.
        let mut digest = sha2::Sha256::new();
        for field in [tag.as_bytes(), self.event_name().as_bytes(), value] {
            digest.update((field.len() as u64).to_le_bytes());
            digest.update(field);
        }
        format!("{tag}:{}", hex::encode(digest.finalize()))
    }

    /// Decodes an event from raw bytes, without verifying any signature.
    /// Prefer [`WebhookVerifier::handle_webhook_event`](crate::WebhookVerifier::handle_webhook_event),
    /// which verifies first.
    pub fn from_slice(body: &[u8]) -> Result<Self, WasenderError> {
        parse_event(body)
    }
}

impl WasenderWebhookEventType {
    /// Whether this is a catalogued event type.
    pub fn is_known(&self) -> bool {
        !matches!(self, Self::Unknown(_))
    }
}

impl From<&str> for WasenderWebhookEventType {
    fn from(name: &str) -> Self {
        Self::from_name(name)
    }
}

impl FromStr for WasenderWebhookEventType {
    type Err = std::convert::Infallible;
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Ok(Self::from_name(name))
    }
}

impl fmt::Display for WasenderWebhookEventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for WasenderWebhookEventType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for WasenderWebhookEventType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ok(Self::from_name(&name))
    }
}

struct EventVisitor;

impl<'de> Visitor<'de> for EventVisitor {
    type Value = WasenderWebhookEvent;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a webhook event object with a string `event` member")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut head = Parts {
            event: String::new(),
            timestamp: None,
            session_id: None,
            early_data: None,
            extra: Map::new(),
        };
        while let Some(key) = map.next_key_seed(KeySeed)? {
            match key.as_ref() {
                "event" => match map.next_value_seed(LenientSeed::<String>::new())? {
                    Ok(name) => {
                        head.event = name;
                        return read_known(head, &mut map);
                    }
                    Err(_) => return Err(de::Error::custom("the `event` member is not a string")),
                },
                "timestamp" => accept_member(&mut head.timestamp, &mut head.extra, key, &mut map)?,
                "sessionId" => accept_member(&mut head.session_id, &mut head.extra, key, &mut map)?,
                // `data` before `event`: keep it as JSON and type it once the name is known.
                "data" => head.early_data = Some(map.next_value()?),
                _ => accept_extra(&mut head.extra, key, &mut map)?,
            }
        }
        Err(de::Error::custom("the object has no `event` member"))
    }
}

impl<'de> Deserialize<'de> for WasenderWebhookEvent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(EventVisitor)
    }
}

/// Decodes one event from a raw body, without verifying any signature.
///
/// The body is checked to be UTF-8 once, as a whole; then the envelope and
/// the typed `data` are decoded in one pass straight from the parser, which
/// no longer needs to check each string. Errors are [`WasenderError::EmptyBody`],
/// [`WasenderError::BodyNotUtf8`], [`WasenderError::InvalidJson`] (with line and
/// column; also for nesting deeper than 128 levels) and [`WasenderError::NotAnEvent`]
/// (only for a body that is well-formed JSON).
pub fn parse_event(body: &[u8]) -> Result<WasenderWebhookEvent, WasenderError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(WasenderError::EmptyBody);
    }
    let text = std::str::from_utf8(body).map_err(|utf8| WasenderError::BodyNotUtf8 {
        valid_up_to: utf8.valid_up_to(),
    })?;
    serde_json::from_str(text).map_err(|err| classify(text, &err))
}

/// Names what is wrong with a UTF-8 body the decoder refused.
///
/// The decoder stops at the first thing that is not an event (a `[`, an
/// object without `event`) without reading the rest, so before calling a body
/// "JSON but not an event" the whole body is checked to be JSON: a body that
/// is not (`[1,2`, `{"event":7,`) is reported as invalid JSON, with the
/// position of its first mistake.
fn classify(text: &str, err: &serde_json::Error) -> WasenderError {
    if err.classify() != serde_json::error::Category::Data {
        return invalid_json(err);
    }
    if let Err(syntax) = serde_json::from_str::<de::IgnoredAny>(text) {
        return invalid_json(&syntax);
    }
    let reason = match text.trim_start().as_bytes().first() {
        Some(b'{') => strip_position(&err.to_string()),
        Some(b'[') => "it is an array, not an object".to_owned(),
        Some(b'"') => "it is a string, not an object".to_owned(),
        Some(b't' | b'f') => "it is a boolean, not an object".to_owned(),
        Some(b'n') => "it is null, not an object".to_owned(),
        _ => "it is a number, not an object".to_owned(),
    };
    WasenderError::NotAnEvent { reason }
}

fn invalid_json(err: &serde_json::Error) -> WasenderError {
    WasenderError::InvalidJson {
        line: err.line(),
        column: err.column(),
        message: strip_position(&err.to_string()),
    }
}

/// serde_json appends " at line L column C"; the error variants carry those separately.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}
