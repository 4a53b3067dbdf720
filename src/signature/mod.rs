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
//! stopping at the first match. Only fixed-size values are compared, with
//! [`subtle`], so neither a secret's length nor its content shows in the time
//! a rejection takes:
//!
//! - a shared-secret header of up to 128 bytes (every
//!   realistic secret) is copied into a zero-padded buffer of that size
//!   followed by its length, and compared in one pass with each secret
//!   prepared the same way: no hashing per request;
//! - a longer header is hashed with SHA-256 and compared with the digests of
//!   the secrets that are longer too (a short secret cannot equal it);
//! - an HMAC signature is compared as its 32 bytes.
//!
//! Which of the first two paths runs depends only on the header's length,
//! which the sender chose; both compare against every configured secret.

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub use crate::secret::Secret;

pub(crate) mod verifier;

// Public at the crate root only: `crate::WebhookVerifier`.

/// The request header that carries the signature.
pub const SIGNATURE_HEADER: &str = "X-Webhook-Signature";

/// The longest signature header value looked at; longer values are rejected unread.
pub const MAX_SIGNATURE_HEADER_LEN: usize = 4096;

/// The optional prefix of an HMAC signature, as GitHub-style senders write it.
const HMAC_PREFIX: &str = "sha256=";

/// The length of a SHA-256 digest and of an HMAC-SHA256 MAC, in bytes.
const DIGEST_LEN: usize = 32;

/// The longest shared secret (and shared-secret header) compared through the
/// fixed-size padded buffer, in bytes. Longer secrets still work: they, and
/// headers that long, are compared through their SHA-256 digests instead.
pub(crate) const MAX_PADDED_SECRET_LEN: usize = 128;

type HmacSha256 = Hmac<Sha256>;

/// How a webhook request proves it comes from WasenderAPI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SignatureScheme {
    /// The header carries the webhook secret itself (WasenderAPI's documented scheme).
    #[default]
    SharedSecret,
    /// The header carries HMAC-SHA256(secret, raw body), as hex (any case) or
    /// base64 (standard or URL-safe, padded or not), optionally prefixed with
    /// `sha256=`. Several comma- or space-separated signatures may be given.
    HmacSha256,
}

fn keyed_hmac(key: &[u8]) -> HmacSha256 {
    <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes keys of any length")
}

/// Builds the `X-Webhook-Signature` value WasenderAPI (or a signing proxy) would send
/// for `body` under `scheme`, so users can test their own receivers.
///
/// For [`SignatureScheme::SharedSecret`] this is the secret itself; for
/// [`SignatureScheme::HmacSha256`] it is `sha256=` followed by the lowercase hex digest.
///
/// ```
/// use wasenderapi::WebhookVerifier;
/// use wasenderapi::signature::{sign_webhook, SignatureScheme};
/// let body = br#"{"event":"session.status","data":{"status":"connected"}}"#;
/// let header = sign_webhook(SignatureScheme::HmacSha256, "secret", body);
/// let verifier = WebhookVerifier::with_secret("secret").with_scheme(SignatureScheme::HmacSha256);
/// assert!(verifier.handle_webhook_event(body, Some(&header)).is_ok());
/// ```
pub fn sign_webhook(scheme: SignatureScheme, secret: &str, body: &[u8]) -> String {
    match scheme {
        SignatureScheme::SharedSecret => secret.to_owned(),
        SignatureScheme::HmacSha256 => {
            let mut mac = keyed_hmac(secret.as_bytes());
            mac.update(body);
            format!("{HMAC_PREFIX}{}", hex::encode(mac.finalize().into_bytes()))
        }
    }
}
