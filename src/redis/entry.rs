//! Stream entries: their field names (the documented layout) and reading
//! them back from the `redis` crate's replies.

use ::redis::streams::StreamId;
use ::redis::Value;

pub(crate) use crate::handler::dead_letter::now_ms;

/// The raw, verified request body (bytes, usually JSON).
pub(crate) const BODY: &str = "body";
/// The event name as received (`messages.received`, …).
pub(crate) const EVENT: &str = "event";
/// When the listener received it, in milliseconds since the Unix epoch.
pub(crate) const RECEIVED_MS: &str = "received_ms";
/// The dedupe key the listener computed.
pub(crate) const DEDUPE_KEY: &str = "dedupe_key";
/// The listener that added it.
pub(crate) const LISTENER: &str = "listener";

/// Dead letters: what the last handler call said (its error, the panic's
/// message), or why no call began or none answered.
pub(crate) const ERROR: &str = "error";
/// Dead letters: how many handler calls began.
pub(crate) const ATTEMPTS: &str = "attempts";
/// Dead letters: how the last handler call ended (`LastCall::as_str`).
pub(crate) const LAST_CALL: &str = "last_call";
/// Dead letters: the entry's id in the events stream.
pub(crate) const ORIGINAL_ID: &str = "original_id";
/// Dead letters: when it was given up on, in milliseconds since the Unix epoch.
pub(crate) const DEAD_MS: &str = "dead_ms";
/// Dead letters: the consumer that gave up on it.
pub(crate) const CONSUMER: &str = "consumer";
/// Requeued entries: the dead letter's id they came from (written by the requeue script).
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) const REQUEUED_FROM: &str = "requeued_from";

/// Fields a dead letter adds; dropped again when it is requeued.
pub(crate) const DEAD_ONLY: [&str; 6] =
    [ERROR, ATTEMPTS, LAST_CALL, ORIGINAL_ID, DEAD_MS, CONSUMER];

/// One stream entry: its id and its fields, sorted by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub id: String,
    pub fields: Vec<(String, Vec<u8>)>,
}

impl Entry {
    /// Reads an entry from a reply; fields whose value is not a string or
    /// number are left out.
    pub fn from_stream_id(entry: StreamId) -> Self {
        let mut fields: Vec<(String, Vec<u8>)> = entry
            .map
            .into_iter()
            .filter_map(|(name, value)| Some((name, value_bytes(value)?)))
            .collect();
        fields.sort();
        Self {
            id: entry.id,
            fields,
        }
    }

    /// Reads an entry from a script's reply: its id, and its fields as a
    /// flat `{name, value, …}` array (or a map).
    pub fn from_fields(id: String, fields: Value) -> Self {
        let pairs: Vec<(Value, Value)> = match fields {
            Value::Array(flat) => {
                let mut flat = flat.into_iter();
                std::iter::from_fn(|| Some((flat.next()?, flat.next()?))).collect()
            }
            Value::Map(pairs) => pairs,
            _ => Vec::new(),
        };
        let mut fields: Vec<(String, Vec<u8>)> = pairs
            .into_iter()
            .filter_map(|(name, value)| {
                let name = String::from_utf8(value_bytes(name)?).ok()?;
                Some((name, value_bytes(value)?))
            })
            .collect();
        fields.sort();
        Self { id, fields }
    }

    /// The raw value of field `name`.
    pub fn field(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// Field `name` as UTF-8 text.
    pub fn text(&self, name: &str) -> Option<&str> {
        std::str::from_utf8(self.field(name)?).ok()
    }

    /// Field `name` as a decimal number.
    pub fn number(&self, name: &str) -> Option<u64> {
        self.text(name)?.trim().parse().ok()
    }
}

/// The bytes of a string or number reply.
pub(crate) fn value_bytes(value: Value) -> Option<Vec<u8>> {
    match value {
        Value::BulkString(bytes) => Some(bytes),
        Value::SimpleString(text) => Some(text.into_bytes()),
        Value::VerbatimString { text, .. } => Some(text.into_bytes()),
        Value::Int(n) => Some(n.to_string().into_bytes()),
        Value::Okay => Some(b"OK".to_vec()),
        _ => None,
    }
}

/// The smallest stream id after `id` (`<ms>-<seq>` → `<ms>-<seq + 1>`).
pub(crate) fn next_id(id: &str) -> Option<String> {
    let (ms, seq) = id.split_once('-')?;
    let ms: u64 = ms.parse().ok()?;
    let seq: u64 = seq.parse().ok()?;
    Some(match seq.checked_add(1) {
        Some(seq) => format!("{ms}-{seq}"),
        None => format!("{}-0", ms.checked_add(1)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn fields_are_read_as_bytes_and_sorted() {
        let map: HashMap<String, Value> = [
            (BODY.to_owned(), Value::BulkString(vec![0xff, b'{'])),
            (
                EVENT.to_owned(),
                Value::SimpleString("messages.received".into()),
            ),
            (RECEIVED_MS.to_owned(), Value::Int(42)),
            ("odd".to_owned(), Value::Nil),
        ]
        .into_iter()
        .collect();
        let entry = Entry::from_stream_id(StreamId {
            id: "1-0".into(),
            map,
            ..StreamId::default()
        });
        assert_eq!(entry.field(BODY), Some(&[0xff, b'{'][..]));
        assert_eq!(entry.text(EVENT), Some("messages.received"));
        assert_eq!(entry.number(RECEIVED_MS), Some(42));
        assert_eq!(entry.field("odd"), None);
        let names: Vec<&str> = entry.fields.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, [BODY, EVENT, RECEIVED_MS]);
    }

    #[test]
    fn next_id_steps_the_sequence() {
        assert_eq!(next_id("1700-0").as_deref(), Some("1700-1"));
        assert_eq!(next_id(&format!("5-{}", u64::MAX)).as_deref(), Some("6-0"));
        assert_eq!(next_id("garbage"), None);
    }
}
