//! [`WebhookVerifier`]: the secrets, the constant-time comparisons, and
//! verify-then-decode.

use std::fmt;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, Engine};
use hmac::Mac;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

use super::{
    keyed_hmac, HmacSha256, SignatureScheme, DIGEST_LEN, HMAC_PREFIX, MAX_PADDED_SECRET_LEN,
    MAX_SIGNATURE_HEADER_LEN,
};
use crate::error::WasenderError;
use crate::event::envelope::WasenderWebhookEvent;

/// The padded buffer in 64-bit words: the bytes, zero-padded, then the length.
const PADDED_WORDS: usize = MAX_PADDED_SECRET_LEN / 8 + 1;

/// A shared secret or header as compared on the padded path.
type Padded = [u64; PADDED_WORDS];

/// Copies `bytes` (at most [`MAX_PADDED_SECRET_LEN`] long) into a zeroed
/// buffer and puts their length in the last word, so two values compare equal
/// exactly when their bytes and their lengths are equal.
fn pad(bytes: &[u8]) -> Padded {
    let mut raw = [0u8; MAX_PADDED_SECRET_LEN];
    let len = bytes.len().min(MAX_PADDED_SECRET_LEN);
    raw[..len].copy_from_slice(&bytes[..len]);
    let mut words = [0u64; PADDED_WORDS];
    for (word, chunk) in words.iter_mut().zip(raw.chunks_exact(8)) {
        let mut eight = [0u8; 8];
        eight.copy_from_slice(chunk);
        *word = u64::from_le_bytes(eight);
    }
    words[PADDED_WORDS - 1] = bytes.len() as u64;
    words
}

/// Base64 decoding accepts padded and unpadded input, in either alphabet.
const ANY_PADDING: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const BASE64_STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, ANY_PADDING);
const BASE64_URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, ANY_PADDING);

/// Whether two padded values are equal, in one pass without a branch: the
/// differences of all the words are OR-ed together (there is no early exit to
/// take: no prefix of the words decides the result), and only that one word is
/// turned into a [`Choice`], by `subtle`, behind its optimisation barrier.
fn padded_eq(a: &Padded, b: &Padded) -> Choice {
    let diff = a.iter().zip(b).fold(0u64, |diff, (x, y)| diff | (x ^ y));
    diff.ct_eq(&0)
}

/// One accepted secret, prepared once when it is added: its padded form (what
/// a shared-secret header of up to [`MAX_PADDED_SECRET_LEN`] bytes is compared
/// with), its SHA-256 (what a longer header is compared with), and the HMAC
/// keyed with it (what a body is signed with).
#[derive(Clone)]
struct AcceptedSecret {
    /// The secret padded; for a secret longer than the buffer, a value no
    /// header can produce (zero bytes and a length of `u64::MAX`).
    padded: Padded,
    /// SHA-256 of the secret.
    digest: [u8; DIGEST_LEN],
    /// 1 when the secret is longer than [`MAX_PADDED_SECRET_LEN`] (compared by digest).
    long: u8,
    hmac: HmacSha256,
}

impl AcceptedSecret {
    fn new(secret: &[u8]) -> Self {
        let long = secret.len() > MAX_PADDED_SECRET_LEN;
        let padded = if long {
            let mut never = [0u64; PADDED_WORDS];
            never[PADDED_WORDS - 1] = u64::MAX;
            never
        } else {
            pad(secret)
        };
        Self {
            padded,
            digest: Sha256::digest(secret).into(),
            long: u8::from(long),
            hmac: keyed_hmac(secret),
        }
    }
}

/// Verifies webhook requests against one or more secrets, then decodes them:
/// the receive side of the crate, usable without the REST client (it compiles
/// with no cargo feature at all).
///
/// Configure it once and share it: it is `Clone`, `Send` and `Sync`, and its
/// `Debug` output shows the scheme and how many secrets are set, never a
/// secret. Hand it to the bundled listener (`WebhookListener::builder`, feature
/// `listener`) or call [`handle_webhook_event`](Self::handle_webhook_event)
/// from your own server.
///
/// # Examples
///
/// ```
/// use wasenderapi::{WasenderError, WebhookVerifier};
/// use wasenderapi::signature::{sign_webhook, SignatureScheme};
///
/// // The common case: WasenderAPI's shared secret, from the dashboard.
/// let verifier = WebhookVerifier::with_secret("new-secret")
///     // While rotating, the old secret is accepted too.
///     .with_additional_secret("old-secret");
///
/// let body = br#"{"event":"session.status","data":{"status":"connected"}}"#;
/// let event = verifier.handle_webhook_event(body, Some("old-secret"))?;
/// assert_eq!(event.event_type().as_str(), "session.status");
/// assert!(matches!(
///     verifier.handle_webhook_event(body, Some("guess")),
///     Err(WasenderError::InvalidSignature)
/// ));
///
/// // Behind a signing proxy: HMAC-SHA256 of the raw body.
/// let hmac = verifier.clone().with_scheme(SignatureScheme::HmacSha256);
/// let header = sign_webhook(SignatureScheme::HmacSha256, "new-secret", body);
/// assert!(hmac.verify(body, Some(&header)).is_ok());
/// # Ok::<(), WasenderError>(())
/// ```
#[derive(Clone, Default)]
pub struct WebhookVerifier {
    secrets: Vec<AcceptedSecret>,
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
        Self::new(SignatureScheme::SharedSecret).with_additional_secret(secret)
    }

    /// Also accepts `secret` (rotation: the new and the old secret both verify
    /// until the old one is dropped). Same rules as [`add_secret`](Self::add_secret).
    pub fn with_additional_secret(mut self, secret: impl AsRef<[u8]>) -> Self {
        self.add_secret(secret);
        self
    }

    /// Uses `scheme` (default [`SignatureScheme::SharedSecret`]); the secrets stay.
    pub fn with_scheme(mut self, scheme: SignatureScheme) -> Self {
        self.scheme = scheme;
        self
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
    ) -> Result<WasenderWebhookEvent, WasenderError> {
        self.verify(body, signature)?;
        crate::event::parse_event(body)
    }

    /// Adds an accepted secret. Surrounding whitespace is removed (header values are
    /// trimmed too); blank secrets are ignored: they would accept an empty header.
    pub fn add_secret(&mut self, secret: impl AsRef<[u8]>) {
        let secret = secret.as_ref().trim_ascii();
        if !secret.is_empty() {
            self.secrets.push(AcceptedSecret::new(secret));
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

    /// Compares `candidate` with every secret, all of them, in time that
    /// depends only on the candidate's length class and the number of secrets.
    fn any_secret_equals(&self, candidate: &[u8]) -> Choice {
        if candidate.len() <= MAX_PADDED_SECRET_LEN {
            let candidate = pad(candidate);
            self.secrets
                .iter()
                .fold(Choice::from(0), |matched, secret| {
                    matched | padded_eq(&secret.padded, &candidate)
                })
        } else {
            let candidate: [u8; DIGEST_LEN] = Sha256::digest(candidate).into();
            self.secrets
                .iter()
                .fold(Choice::from(0), |matched, secret| {
                    matched | (secret.digest.ct_eq(&candidate) & Choice::from(secret.long))
                })
        }
    }

    /// Compares every well-formed signature in `header` with the body's MAC
    /// under every secret, all of them.
    fn any_hmac_matches(&self, body: &[u8], header: &str) -> Choice {
        let macs: Vec<[u8; DIGEST_LEN]> = self
            .secrets
            .iter()
            .map(|secret| {
                let mut mac = secret.hmac.clone();
                mac.update(body);
                mac.finalize().into_bytes().into()
            })
            .collect();
        let mut matched = Choice::from(0);
        for candidate in header.split([',', ' ']).filter(|c| !c.is_empty()) {
            let Some(decoded) = decode_signature(candidate) else {
                continue;
            };
            for mac in &macs {
                matched |= mac.ct_eq(&decoded);
            }
        }
        matched
    }
}

impl fmt::Debug for WebhookVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookVerifier")
            .field("scheme", &self.scheme)
            .field(
                "secrets",
                &format_args!("[{} redacted]", self.secrets.len()),
            )
            .finish()
    }
}

/// Decodes one HMAC signature (`sha256=` prefix optional; hex or base64) to
/// its 32 bytes; `None` for anything that is not exactly 32 bytes.
fn decode_signature(candidate: &str) -> Option<[u8; DIGEST_LEN]> {
    let value = candidate
        .strip_prefix(HMAC_PREFIX)
        .or_else(|| candidate.strip_prefix("SHA256="))
        .unwrap_or(candidate);
    let mut mac = [0u8; DIGEST_LEN];
    if value.len() == 2 * DIGEST_LEN && hex::decode_to_slice(value, &mut mac).is_ok() {
        return Some(mac);
    }
    let bytes = BASE64_STANDARD
        .decode(value)
        .or_else(|_| BASE64_URL_SAFE.decode(value))
        .ok()?;
    bytes.try_into().ok()
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

    use super::super::sign_webhook;
    use super::*;

    fn verifier(scheme: SignatureScheme, secrets: &[&str]) -> WebhookVerifier {
        let mut v = WebhookVerifier::new(scheme);
        for s in secrets {
            v.add_secret(s);
        }
        v
    }

    fn is_invalid(result: Result<(), WasenderError>) -> bool {
        matches!(result, Err(WasenderError::InvalidSignature))
    }

    /// The raw 32 bytes of the HMAC `sign_webhook` puts in hex.
    fn raw_mac(secret: &str, body: &[u8]) -> Vec<u8> {
        let header = sign_webhook(SignatureScheme::HmacSha256, secret, body);
        hex::decode(header.trim_start_matches(HMAC_PREFIX)).expect("sign_webhook writes hex")
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
            assert!(is_invalid(v.verify(b"{}", Some(bad))), "{bad}");
        }
    }

    #[test]
    fn every_byte_of_the_shared_secret_counts() {
        let secret = "0123456789abcdef0123456789abcdefXYZ";
        let v = WebhookVerifier::with_secret(secret);
        for i in 0..secret.len() {
            let mut flipped = secret.as_bytes().to_vec();
            flipped[i] ^= 1;
            let flipped = String::from_utf8(flipped).expect("ASCII stays ASCII");
            assert!(is_invalid(v.verify(b"{}", Some(&flipped))), "byte {i}");
        }
    }

    #[test]
    fn every_byte_of_the_hmac_counts() {
        let body = b"{\"event\":\"x\"}";
        let v = verifier(SignatureScheme::HmacSha256, &["k"]);
        let mac = raw_mac("k", body);
        for i in 0..mac.len() {
            let mut flipped = mac.clone();
            flipped[i] ^= 1;
            assert!(
                is_invalid(v.verify(body, Some(&hex::encode(&flipped)))),
                "byte {i}"
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
        let v = verifier(SignatureScheme::SharedSecret, &["", "  "]);
        assert_eq!(v.secret_count(), 0);
        assert!(matches!(
            v.verify(b"{}", Some("")),
            Err(WasenderError::SecretNotConfigured)
        ));
    }

    #[test]
    fn padding_keeps_the_length_apart() {
        // Zero padding alone would make "abc" and "abc\0" equal; the length word does not.
        assert_ne!(pad(b"abc"), pad(b"abc\0"));
        assert_ne!(pad(b""), pad(b"\0"));
        assert_eq!(pad(b"abc"), pad(b"abc"));
        let full = [7u8; MAX_PADDED_SECRET_LEN];
        assert_eq!(pad(&full)[PADDED_WORDS - 1], MAX_PADDED_SECRET_LEN as u64);
        let v = WebhookVerifier::with_secret("abc");
        assert!(is_invalid(v.verify(b"{}", Some("abc\0"))));
        let v = WebhookVerifier::with_secret("abc\0");
        assert!(is_invalid(v.verify(b"{}", Some("abc"))));
        assert!(v.verify(b"{}", Some("abc\0")).is_ok());
    }

    #[test]
    fn secrets_on_both_sides_of_the_padded_size_verify() {
        for len in [
            1,
            MAX_PADDED_SECRET_LEN - 1,
            MAX_PADDED_SECRET_LEN,
            MAX_PADDED_SECRET_LEN + 1,
            3 * MAX_PADDED_SECRET_LEN,
        ] {
            let secret: String = (0..len)
                .map(|i| char::from(b'a' + (i % 26) as u8))
                .collect();
            let v = WebhookVerifier::with_secret(&secret);
            assert!(v.verify(b"{}", Some(&secret)).is_ok(), "len {len}");
            // One byte less, one byte more, and every single byte flipped.
            if len > 1 {
                assert!(
                    is_invalid(v.verify(b"{}", Some(&secret[..len - 1]))),
                    "len {len} truncated"
                );
            }
            assert!(
                is_invalid(v.verify(b"{}", Some(&format!("{secret}a")))),
                "len {len} extended"
            );
            for i in 0..len {
                let mut flipped = secret.clone().into_bytes();
                flipped[i] ^= 1;
                let flipped = String::from_utf8(flipped).expect("ASCII stays ASCII");
                assert!(
                    is_invalid(v.verify(b"{}", Some(&flipped))),
                    "len {len} byte {i}"
                );
            }
        }
    }

    #[test]
    fn long_and_short_secrets_never_stand_in_for_each_other() {
        let long = "L".repeat(MAX_PADDED_SECRET_LEN + 10);
        let short = &long[..MAX_PADDED_SECRET_LEN];
        // A long secret is not matched by its first bytes, nor a short one by a longer header.
        let v = WebhookVerifier::with_secret(&long);
        assert!(is_invalid(v.verify(b"{}", Some(short))));
        let v = WebhookVerifier::with_secret(short);
        assert!(is_invalid(v.verify(b"{}", Some(&long))));
        // Rotation across the two paths: both verify, neither prefix does.
        let v = WebhookVerifier::with_secret("short-secret").with_additional_secret(&long);
        assert!(v.verify(b"{}", Some("short-secret")).is_ok());
        assert!(v.verify(b"{}", Some(&long)).is_ok());
        assert!(is_invalid(v.verify(b"{}", Some(short))));
        assert!(is_invalid(v.verify(b"{}", Some("short-secre"))));
    }

    #[test]
    fn over_long_header_is_rejected_unread() {
        let long = "a".repeat(MAX_SIGNATURE_HEADER_LEN + 1);
        let v = WebhookVerifier::with_secret(&long);
        assert!(is_invalid(v.verify(b"{}", Some(&long))));
    }

    #[test]
    fn any_rotated_secret_verifies() {
        let v = verifier(SignatureScheme::SharedSecret, &["old-secret", "new-secret"]);
        assert!(v.verify(b"{}", Some("old-secret")).is_ok());
        assert!(v.verify(b"{}", Some("new-secret")).is_ok());
        assert!(is_invalid(v.verify(b"{}", Some("other"))));
    }

    #[test]
    fn builder_style_configuration_matches_the_setters() {
        let built = WebhookVerifier::with_secret("new")
            .with_additional_secret("old")
            .with_scheme(SignatureScheme::HmacSha256);
        let mut set = WebhookVerifier::new(SignatureScheme::SharedSecret);
        set.add_secret("new");
        set.add_secret("old");
        set.set_scheme(SignatureScheme::HmacSha256);
        assert_eq!(built.scheme(), set.scheme());
        assert_eq!(built.secret_count(), 2);
        let body = b"{}";
        for secret in ["new", "old"] {
            let header = sign_webhook(SignatureScheme::HmacSha256, secret, body);
            assert!(built.verify(body, Some(&header)).is_ok(), "{secret}");
            assert!(set.verify(body, Some(&header)).is_ok(), "{secret}");
        }
    }

    #[test]
    fn hmac_accepts_hex_base64_and_prefix() {
        let body = b"{\"event\":\"x\"}";
        let v = verifier(SignatureScheme::HmacSha256, &["k"]);
        let hex = sign_webhook(SignatureScheme::HmacSha256, "k", body);
        assert!(v.verify(body, Some(&hex)).is_ok());
        let bare = hex.trim_start_matches(HMAC_PREFIX);
        assert!(v.verify(body, Some(bare)).is_ok());
        assert!(v.verify(body, Some(&bare.to_uppercase())).is_ok());
        assert!(v.verify(body, Some(&format!("SHA256={bare}"))).is_ok());
        let raw = raw_mac("k", body);
        let padded = STANDARD.encode(&raw);
        assert!(v.verify(body, Some(&padded)).is_ok());
        assert!(v.verify(body, Some(padded.trim_end_matches('='))).is_ok());
        assert!(v.verify(body, Some(&format!("sha256={padded}"))).is_ok());
        assert!(v.verify(body, Some(&URL_SAFE_NO_PAD.encode(&raw))).is_ok());
        assert!(v
            .verify(body, Some(&format!("sha256=deadbeef, {hex}")))
            .is_ok());
    }

    #[test]
    fn hmac_url_safe_alphabet_is_accepted() {
        // Find a body whose MAC encodes with '-' or '_' in the URL-safe alphabet.
        let v = verifier(SignatureScheme::HmacSha256, &["k"]);
        let (body, encoded) = (0u32..)
            .map(|n| {
                let body = format!("{{\"n\":{n}}}").into_bytes();
                let encoded = URL_SAFE_NO_PAD.encode(raw_mac("k", &body));
                (body, encoded)
            })
            .find(|(_, encoded)| encoded.contains(['-', '_']))
            .expect("some MAC has a URL-safe symbol");
        assert!(v.verify(&body, Some(&encoded)).is_ok());
        assert!(v.verify(&body, Some(&format!("{encoded}="))).is_ok());
    }

    #[test]
    fn hmac_rejects_other_body_truncated_or_wrong_key() {
        let body = b"{\"event\":\"x\"}";
        let v = verifier(SignatureScheme::HmacSha256, &["k"]);
        let hex = sign_webhook(SignatureScheme::HmacSha256, "k", body);
        assert!(is_invalid(v.verify(b"{\"event\":\"y\"}", Some(&hex))));
        assert!(is_invalid(v.verify(body, Some(&hex[..hex.len() - 2]))));
        assert!(is_invalid(v.verify(body, Some(&format!("{hex}00")))));
        assert!(is_invalid(v.verify(body, Some("sha256="))));
        assert!(is_invalid(v.verify(body, Some(","))));
        let other = sign_webhook(SignatureScheme::HmacSha256, "other", body);
        assert!(is_invalid(v.verify(body, Some(&other))));
        // The shared secret itself is not an HMAC signature.
        assert!(is_invalid(v.verify(body, Some("k"))));
    }

    #[test]
    fn hmac_rejects_base64_of_the_wrong_length() {
        let body = b"{}";
        let v = verifier(SignatureScheme::HmacSha256, &["k"]);
        let raw = raw_mac("k", body);
        let truncated = STANDARD.encode(&raw[..31]);
        assert!(is_invalid(v.verify(body, Some(&truncated))));
        let mut longer = raw.clone();
        longer.push(0);
        assert!(is_invalid(v.verify(body, Some(&STANDARD.encode(&longer)))));
        assert!(is_invalid(v.verify(body, Some("=="))));
    }

    #[test]
    fn verifier_is_shareable_across_threads() {
        fn assert_shareable<T: Send + Sync + Clone + 'static>() {}
        assert_shareable::<WebhookVerifier>();
    }

    #[test]
    fn debug_never_prints_secrets() {
        let v = verifier(SignatureScheme::SharedSecret, &["topsecretvalue", "other"]);
        let debug = format!("{v:?}");
        assert!(!debug.contains("topsecretvalue"), "{debug}");
        assert_eq!(
            debug,
            "WebhookVerifier { scheme: SharedSecret, secrets: [2 redacted] }"
        );
    }
}
