//! [`Secret`]: a string (an API key, a webhook secret) that never shows itself
//! in `Debug` or `Display` output.

use std::fmt;

use serde::{Serialize, Serializer};
use subtle::ConstantTimeEq;

/// A secret string (an API key, a webhook secret) that prints as `[redacted]`
/// in `Debug` and `Display`, so it never ends up in a log line or an error
/// message by accident. Read it with [`expose`](Secret::expose), where it is
/// actually needed.
///
/// It serialises as the plain string, so a REST response that carries one
/// stays lossless. Equality is checked in constant time for values of equal
/// length.
///
/// ```
/// use wasenderapi::signature::Secret;
///
/// let secret = Secret::new("webhook-secret");
/// assert_eq!(format!("{secret:?} {secret}"), "[redacted] [redacted]");
/// assert_eq!(secret.expose(), "webhook-secret");
/// ```
#[derive(Clone, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value. Call it only where the value is sent or compared,
    /// never to log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl Eq for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let secret = Secret::from("topsecretvalue".to_owned());
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert_eq!(secret.to_string(), "[redacted]");
        assert_eq!(format!("{:?}", Some(&secret)), "Some([redacted])");
    }

    #[test]
    fn expose_and_serialize_give_the_value() {
        let secret = Secret::new("topsecretvalue");
        assert_eq!(secret.expose(), "topsecretvalue");
        assert_eq!(
            serde_json::to_string(&secret).ok().as_deref(),
            Some("\"topsecretvalue\"")
        );
    }

    #[test]
    fn equality_compares_the_whole_value() {
        assert_eq!(Secret::new("abc"), Secret::from("abc"));
        assert_ne!(Secret::new("abc"), Secret::new("abd"));
        assert_ne!(Secret::new("abc"), Secret::new("abcd"));
        assert!(Secret::default().is_empty());
    }
}
