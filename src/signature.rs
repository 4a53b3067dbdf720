//! Webhook signature verification, in constant time, and a signing helper for tests.
//!
//! WasenderAPI's scheme today is a shared secret: the `X-Webhook-Signature`
//! header carries the webhook secret itself ([`SignatureScheme::SharedSecret`]).
//! For deployments behind a signing proxy (and for when Wasender moves to it),
//! [`SignatureScheme::HmacSha256`] verifies an HMAC-SHA256 of the raw body,
//! hex or base64, with an optional `sha256=` prefix.
//!
//! Several secrets may be configured at once, so a secret can be rotated
//! without dropping events: every configured secret is compared, without
//! stopping at the first match.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::{Choice, ConstantTimeEq};

use crate::error::WasenderError;

/// The request header that carries the signature.
pub const SIGNATURE_HEADER: &str = "X-Webhook-Signature";

/// The longest signature header value looked at; longer values are rejected unread.
pub const MAX_SIGNATURE_HEADER_LEN: usize = 4096;

/// How a webhook request proves it comes from WasenderAPI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SignatureScheme {
    /// The header carries the webhook secret itself (WasenderAPI's documented scheme).
    #[default]
    SharedSecret,
    /// The header carries HMAC-SHA256(secret, raw body), as hex (any case) or
    /// base64 (standard or URL-safe), optionally prefixed with `sha256=`.
    /// Several comma- or space-separated signatures may be given.
    HmacSha256,
}

/// A webhook secret that never shows itself in `Debug` output.
#[derive(Clone)]
struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Verifies webhook signatures against one or more configured secrets.
///
/// Held by [`WasenderSyncClient`](crate::WasenderSyncClient); usable on its own.
/// Its `Debug` output never shows a secret.
#[derive(Debug, Clone, Default)]
pub struct WebhookVerifier {
    secrets: Vec<Secret>,
    scheme: SignatureScheme,
}

impl WebhookVerifier {
    /// A verifier with no secret (it rejects everything until one is added).
    pub fn new(scheme: SignatureScheme) -> Self {
        Self {
            secrets: Vec::new(),
            scheme,
        }
    }

    /// A verifier for WasenderAPI's default scheme ([`SignatureScheme::SharedSecret`])
    /// accepting `secret`: the common case in one call.
    ///
    /// ```
    /// use wasenderapi::WebhookVerifier;
    /// let verifier = WebhookVerifier::with_secret("webhook-secret");
    /// let event = verifier.handle_webhook_event(
    ///     br#"{"event":"session.status","data":{"status":"connected"}}"#,
    ///     Some("webhook-secret"),
    /// )?;
    /// assert_eq!(event.event_type().as_str(), "session.status");
    /// # Ok::<(), wasenderapi::WasenderError>(())
    /// ```
    pub fn with_secret(secret: impl AsRef<[u8]>) -> Self {
        let mut verifier = Self::new(SignatureScheme::SharedSecret);
        verifier.add_secret(secret);
        verifier
    }

    /// Verifies a webhook request and decodes its body into a typed event.
    ///
    /// `body` is the raw request body, exactly as received; `signature` is the
    /// `X-Webhook-Signature` header value (`None` if absent). The signature is
    /// checked in constant time against every configured secret *before* the
    /// body is parsed; then the body is decoded in one pass.
    ///
    /// Errors map to HTTP statuses through [`WasenderError::status_code`]:
    /// 401 for a missing or wrong signature, 400 for a body that is empty, not
    /// UTF-8, not JSON, or not an event object, 500 when no secret is configured.
    pub fn handle_webhook_event(
        &self,
        body: &[u8],
        signature: Option<&str>,
    ) -> Result<crate::event::WasenderWebhookEvent, WasenderError> {
        self.verify(body, signature)?;
        crate::event::parse_event(body)
    }

    /// Adds an accepted secret. Surrounding whitespace is removed (header values are
    /// trimmed too); blank secrets are ignored: they would accept an empty header.
    pub fn add_secret(&mut self, secret: impl AsRef<[u8]>) {
        let secret = secret.as_ref().trim_ascii();
        if !secret.is_empty() {
            self.secrets.push(Secret(secret.to_vec()));
        }
    }

    /// Removes every configured secret.
    pub fn clear_secrets(&mut self) {
        self.secrets.clear();
    }

    /// Sets the scheme.
    pub fn set_scheme(&mut self, scheme: SignatureScheme) {
        self.scheme = scheme;
    }

    /// The scheme in use.
    pub fn scheme(&self) -> SignatureScheme {
        self.scheme
    }

    /// How many secrets are configured.
    pub fn secret_count(&self) -> usize {
        self.secrets.len()
    }

    /// Checks `header` (the `X-Webhook-Signature` value) for `body`.
    ///
    /// Errors: [`WasenderError::SecretNotConfigured`] when no secret is set,
    /// [`WasenderError::MissingSignature`] for an absent or blank header,
    /// [`WasenderError::InvalidSignature`] when no secret matches.
    pub fn verify(&self, body: &[u8], header: Option<&str>) -> Result<(), WasenderError> {
        if self.secrets.is_empty() {
            return Err(WasenderError::SecretNotConfigured);
        }
        let header = header.map(str::trim).unwrap_or("");
        if header.is_empty() {
            return Err(WasenderError::MissingSignature);
        }
        if header.len() > MAX_SIGNATURE_HEADER_LEN {
            return Err(WasenderError::InvalidSignature);
        }
        let matched = match self.scheme {
            SignatureScheme::SharedSecret => self.any_secret_equals(header.as_bytes()),
            SignatureScheme::HmacSha256 => self.any_hmac_matches(body, header),
        };
        if bool::from(matched) {
            Ok(())
        } else {
            Err(WasenderError::InvalidSignature)
        }
    }

    fn any_secret_equals(&self, candidate: &[u8]) -> Choice {
        let mut matched = Choice::from(0);
        for secret in &self.secrets {
            matched |= ct_eq_bytes(&secret.0, candidate);
        }
        matched
    }

    fn any_hmac_matches(&self, body: &[u8], header: &str) -> Choice {
        let macs: Vec<[u8; 32]> = self
            .secrets
            .iter()
            .map(|s| hmac_sha256(&s.0, body))
            .collect();
        let mut matched = Choice::from(0);
        for candidate in header.split([',', ' ']).filter(|c| !c.is_empty()) {
            let Some(decoded) = decode_signature(candidate) else {
                continue;
            };
            for mac in &macs {
                matched |= ct_eq_bytes(mac, &decoded);
            }
        }
        matched
    }
}

/// Constant-time equality of two byte strings (time depends only on their lengths),
/// comparing eight bytes per step.
fn ct_eq_bytes(a: &[u8], b: &[u8]) -> Choice {
    if a.len() != b.len() {
        return Choice::from(0);
    }
    let mut diff = 0u64;
    let (a_words, a_tail) = a.split_at(a.len() - a.len() % 8);
    let (b_words, b_tail) = b.split_at(b.len() - b.len() % 8);
    for (x, y) in a_words.chunks_exact(8).zip(b_words.chunks_exact(8)) {
        let word =
            |c: &[u8]| u64::from_le_bytes(c.try_into().expect("chunks_exact(8) yields 8 bytes"));
        diff |= word(x) ^ word(y);
    }
    for (x, y) in a_tail.iter().zip(b_tail) {
        diff |= u64::from(x ^ y);
    }
    diff.ct_eq(&0)
}

fn hmac_sha256(key: &[u8], body: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length; this cannot fail.
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

/// Decodes one HMAC signature (`sha256=` prefix optional; hex or base64) to its 32 bytes.
fn decode_signature(candidate: &str) -> Option<Vec<u8>> {
    let value = candidate
        .strip_prefix("sha256=")
        .or_else(|| candidate.strip_prefix("SHA256="))
        .unwrap_or(candidate);
    let bytes = if value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()) {
        decode_hex(value)?
    } else {
        crate::base64::decode(value)?
    };
    (bytes.len() == 32).then_some(bytes)
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    let digit = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    hex.as_bytes()
        .chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(*pair.get(1)?)?))
        .collect()
}

/// Builds the `X-Webhook-Signature` value WasenderAPI (or a signing proxy) would send
/// for `body` under `scheme`, so users can test their own receivers.
///
/// For [`SignatureScheme::SharedSecret`] this is the secret itself; for
/// [`SignatureScheme::HmacSha256`] it is `sha256=` followed by the lowercase hex digest.
///
/// ```
/// use wasenderapi::{sign_webhook, SignatureScheme, WasenderSyncClient};
/// let body = br#"{"event":"session.status","data":{"status":"connected"}}"#;
/// let header = sign_webhook(SignatureScheme::HmacSha256, "secret", body);
/// let client = WasenderSyncClient::new("key")
///     .with_webhook_secret("secret")
///     .with_signature_scheme(SignatureScheme::HmacSha256);
/// assert!(client.handle_webhook_event(body, Some(&header)).is_ok());
/// ```
pub fn sign_webhook(scheme: SignatureScheme, secret: &str, body: &[u8]) -> String {
    match scheme {
        SignatureScheme::SharedSecret => secret.to_owned(),
        SignatureScheme::HmacSha256 => {
            let mac = hmac_sha256(secret.as_bytes(), body);
            let mut out = String::with_capacity(7 + 64);
            out.push_str("sha256=");
            for byte in mac {
                out.push_str(&format!("{byte:02x}"));
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verifier(scheme: SignatureScheme, secrets: &[&str]) -> WebhookVerifier {
        let mut v = WebhookVerifier::new(scheme);
        for s in secrets {
            v.add_secret(s);
        }
        v
    }

    #[test]
    fn shared_secret_accepts_only_the_exact_secret() {
        let v = verifier(
            SignatureScheme::SharedSecret,
            &["0123456789abcdef0123456789abcdef"],
        );
        assert!(v
            .verify(b"{}", Some("0123456789abcdef0123456789abcdef"))
            .is_ok());
        for bad in [
            "0123456789abcdef0123456789abcde",   // truncated
            "0123456789abcdef0123456789abcdef0", // over-long
            "0123456789ABCDEF0123456789ABCDEF",  // wrong case
            "x",
        ] {
            assert!(
                matches!(
                    v.verify(b"{}", Some(bad)),
                    Err(WasenderError::InvalidSignature)
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn empty_or_missing_header_is_missing_signature() {
        let v = verifier(SignatureScheme::SharedSecret, &["s3cret"]);
        for header in [None, Some(""), Some("   ")] {
            assert!(matches!(
                v.verify(b"{}", header),
                Err(WasenderError::MissingSignature)
            ));
        }
    }

    #[test]
    fn no_secret_never_accepts() {
        let v = verifier(SignatureScheme::SharedSecret, &[]);
        assert!(matches!(
            v.verify(b"{}", Some("")),
            Err(WasenderError::SecretNotConfigured)
        ));
        assert!(matches!(
            v.verify(b"{}", Some("x")),
            Err(WasenderError::SecretNotConfigured)
        ));
        let v = verifier(SignatureScheme::SharedSecret, &[""]);
        assert!(matches!(
            v.verify(b"{}", Some("")),
            Err(WasenderError::SecretNotConfigured)
        ));
    }

    #[test]
    fn any_rotated_secret_verifies() {
        let v = verifier(SignatureScheme::SharedSecret, &["old-secret", "new-secret"]);
        assert!(v.verify(b"{}", Some("old-secret")).is_ok());
        assert!(v.verify(b"{}", Some("new-secret")).is_ok());
        assert!(v.verify(b"{}", Some("other")).is_err());
    }

    #[test]
    fn hmac_accepts_hex_base64_and_prefix() {
        let body = b"{\"event\":\"x\"}";
        let v = verifier(SignatureScheme::HmacSha256, &["k"]);
        let hex = sign_webhook(SignatureScheme::HmacSha256, "k", body);
        assert!(v.verify(body, Some(&hex)).is_ok());
        let bare = hex.trim_start_matches("sha256=");
        assert!(v.verify(body, Some(bare)).is_ok());
        assert!(v.verify(body, Some(&bare.to_uppercase())).is_ok());
        let raw = decode_hex(bare).unwrap();
        let b64 = crate::base64::encode(&raw);
        assert!(v.verify(body, Some(&b64)).is_ok());
        assert!(v.verify(body, Some(&format!("sha256={b64}"))).is_ok());
        assert!(v
            .verify(body, Some(&format!("sha256=deadbeef, {hex}")))
            .is_ok());
    }

    #[test]
    fn hmac_rejects_other_body_truncated_or_wrong_key() {
        let body = b"{\"event\":\"x\"}";
        let v = verifier(SignatureScheme::HmacSha256, &["k"]);
        let hex = sign_webhook(SignatureScheme::HmacSha256, "k", body);
        assert!(v.verify(b"{\"event\":\"y\"}", Some(&hex)).is_err());
        assert!(v.verify(body, Some(&hex[..hex.len() - 2])).is_err());
        assert!(v.verify(body, Some(&format!("{hex}00"))).is_err());
        assert!(v.verify(body, Some("sha256=")).is_err());
        let other = sign_webhook(SignatureScheme::HmacSha256, "other", body);
        assert!(v.verify(body, Some(&other)).is_err());
        // The shared secret itself is not an HMAC signature.
        assert!(v.verify(body, Some("k")).is_err());
    }

    #[test]
    fn ct_eq_bytes_compares_every_byte() {
        let a = b"0123456789abcdef0123456789abcdefXYZ";
        assert!(bool::from(ct_eq_bytes(a, a)));
        for i in 0..a.len() {
            let mut b = a.to_vec();
            b[i] ^= 1;
            assert!(!bool::from(ct_eq_bytes(a, &b)), "byte {i}");
        }
        assert!(!bool::from(ct_eq_bytes(a, &a[..34])));
        assert!(bool::from(ct_eq_bytes(b"", b"")));
    }

    #[test]
    fn debug_never_prints_secrets() {
        let v = verifier(SignatureScheme::SharedSecret, &["topsecretvalue"]);
        assert!(!format!("{v:?}").contains("topsecretvalue"));
    }
}
