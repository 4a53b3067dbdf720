//! Media: uploading files (`/upload`) and decrypting received media
//! (`/decrypt-media`), straight from a webhook message.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};

use super::transport::ApiRequest;
use super::WasenderSyncClient;
use crate::error::{Result, WasenderError};
use crate::event::wire::wire_object;
use crate::event::WebhookMessage;

wire_object! {
    /// What `/upload` answers: a public URL for the file (valid 24 h), to send
    /// with [`Message::image`](crate::client::Message::image) and friends.
    pub struct UploadedMedia {
        /// The file's public URL.
        "publicUrl" => public_url: String,
        /// The file's URL, as some answers name it.
        "url" => url: String,
    }
}

impl UploadedMedia {
    /// The URL to send: `publicUrl`, else `url`.
    pub fn url(&self) -> Option<&str> {
        self.public_url.as_deref().or(self.url.as_deref())
    }
}

wire_object! {
    /// What `/decrypt-media` answers: a public URL of the decrypted file (valid 1 h).
    pub struct DecryptedMedia {
        /// The decrypted file's public URL.
        "publicUrl" => public_url: String,
        /// The URL, as some answers name it.
        "url" => url: String,
    }
}

impl DecryptedMedia {
    /// The URL of the decrypted file: `publicUrl`, else `url`.
    pub fn url(&self) -> Option<&str> {
        self.public_url.as_deref().or(self.url.as_deref())
    }
}

/// Builds the documented `/decrypt-media` body from a webhook message:
/// `{data: {messages: {key: {id}, message: {<kind>Message: {…}}}}}`, taking the
/// media from inside any ephemeral / view-once / document-with-caption / edited
/// wrapper, and sending its fields exactly as they were received.
pub(crate) fn decrypt_media_body(message: &WebhookMessage) -> Result<Value> {
    let id = message.id().filter(|id| !id.is_empty()).ok_or_else(|| {
        WasenderError::InvalidArgument(
            "decrypt_media_file: the message has no key.id to decrypt media of".into(),
        )
    })?;
    let media = message.media().ok_or_else(|| {
        WasenderError::InvalidArgument(format!(
            "decrypt_media_file: message {id} carries no image, video, audio, document or sticker"
        ))
    })?;
    let mut content = serde_json::Map::new();
    let fields =
        serde_json::to_value(media.message).map_err(|e| WasenderError::InvalidRequest {
            endpoint: "POST /decrypt-media".to_owned(),
            reason: format!("the media fields of message {id} cannot be encoded as JSON"),
            source: Box::new(e),
        })?;
    content.insert(media.kind.wire_name().to_owned(), fields);
    Ok(json!({
        "data": {
            "messages": {
                "key": { "id": id },
                "message": content,
            }
        }
    }))
}

impl WasenderSyncClient {
    /// Uploads a file's bytes (`POST /upload` with the bytes as the body and
    /// `content_type` as `Content-Type`) and returns its public URL.
    ///
    /// ```no_run
    /// let client = wasenderapi::WasenderSyncClient::new("api-key");
    /// let png = std::fs::read("chart.png")?;
    /// let uploaded = client.upload_media_file(&png, "image/png")?;
    /// if let Some(url) = uploaded.url() {
    ///     client.send_image("+1234567890", url, Some("This week"))?;
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn upload_media_file(&self, bytes: &[u8], content_type: &str) -> Result<UploadedMedia> {
        if content_type.trim().is_empty() {
            return Err(WasenderError::InvalidArgument(
                "upload_media_file: content_type is empty; give one, e.g. image/png".into(),
            ));
        }
        let request = ApiRequest::post("/upload")
            .idempotent(true)
            .bytes(bytes, content_type);
        self.execute(request)?.data()
    }

    /// Uploads base64 data (`POST /upload` with a JSON body). `data` is either a
    /// data URL (`data:image/png;base64,…`, sent as `{base64}`) or plain base64
    /// with its `mimetype` (sent as `{mimetype, base64}`).
    pub fn upload_media_base64(&self, data: &str, mimetype: Option<&str>) -> Result<UploadedMedia> {
        let body =
            match mimetype {
                Some(mimetype) => json!({ "mimetype": mimetype, "base64": data }),
                None if data.starts_with("data:") => json!({ "base64": data }),
                None => return Err(WasenderError::InvalidArgument(
                    "upload_media_base64: plain base64 data needs a mimetype (or pass a data: URL)"
                        .into(),
                )),
            };
        let request = ApiRequest::post("/upload").idempotent(true).json(&body)?;
        self.execute(request)?.data()
    }

    /// Uploads bytes as base64 JSON (`{mimetype, base64}`), for deployments
    /// where raw binary bodies are blocked by a proxy.
    pub fn upload_media_bytes_as_base64(
        &self,
        bytes: &[u8],
        mimetype: &str,
    ) -> Result<UploadedMedia> {
        self.upload_media_base64(&STANDARD.encode(bytes), Some(mimetype))
    }

    /// Asks the API to decrypt the media of a message received in a webhook
    /// (`POST /decrypt-media`) and returns the decrypted file's public URL.
    ///
    /// The request body is built from the message itself: its `key.id` and its
    /// media member, found inside ephemeral, view-once, document-with-caption
    /// and edited wrappers. Fails with [`WasenderError::InvalidArgument`]
    /// before any request when the message has no id or no media.
    pub fn decrypt_media_file(&self, message: &WebhookMessage) -> Result<DecryptedMedia> {
        let body = decrypt_media_body(message)?;
        self.decrypt_media_json(&body)
    }

    /// Posts a ready-made `/decrypt-media` body (the documented
    /// `{data: {messages: {key, message}}}` shape, e.g. a webhook's `data`).
    pub fn decrypt_media_json(&self, body: &Value) -> Result<DecryptedMedia> {
        self.execute(Self::decrypt_media_request(body)?)?.data()
    }

    fn decrypt_media_request(body: &Value) -> Result<ApiRequest<'static>> {
        ApiRequest::post("/decrypt-media")
            .idempotent(true)
            .json(body)
    }

    /// Downloads the decrypted bytes of a webhook message's media: decrypts it
    /// with [`Self::decrypt_media_file`], then fetches the returned public URL
    /// (without credentials), up to the configured size limit
    /// ([`Self::with_max_download_size`](crate::client::WasenderSyncClientBuilder::max_download_size)) and download timeout
    /// ([`Self::with_download_timeout`](crate::client::WasenderSyncClientBuilder::download_timeout)), retrying as the
    /// [`RetryPolicy`](crate::client::RetryPolicy) allows.
    ///
    /// Errors: those of [`Self::decrypt_media_file`];
    /// [`WasenderError::Decode`] when its answer has no URL;
    /// [`WasenderError::MediaTooLarge`] when the file is over the limit;
    /// [`WasenderError::Api`], [`WasenderError::Network`] or
    /// [`WasenderError::Timeout`] for the download itself, naming the URL
    /// without its query.
    ///
    /// ```no_run
    /// # fn handle(client: &wasenderapi::WasenderSyncClient, m: &wasenderapi::event::WebhookMessage) -> wasenderapi::Result<()> {
    /// if let Some(media) = m.media() {
    ///     let bytes = client.download_media(m)?;
    ///     println!("{} {:?}: {} bytes", media.kind.as_str(), media.mimetype(), bytes.len());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn download_media(&self, message: &WebhookMessage) -> Result<Vec<u8>> {
        let body = decrypt_media_body(message)?;
        let reply = self.execute(Self::decrypt_media_request(&body)?)?;
        let decrypted: DecryptedMedia = reply.data()?;
        match decrypted.url() {
            Some(url) => self.download(url),
            None => Err(reply.decode_error("the answer has no publicUrl or url", None)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decrypt_body_unwraps_view_once_media_losslessly() {
        let message: WebhookMessage = serde_json::from_value(json!({
            "key": {"id": "ABC", "remoteJid": "1@s.whatsapp.net"},
            "message": {"viewOnceMessageV2": {"message": {"imageMessage": {
                "url": "https://mmg/x.enc", "mimetype": "image/jpeg", "mediaKey": "k",
                "fileLength": "123", "fileSha256": "s", "jpegThumbnail": "t"
            }}}}
        }))
        .expect("valid message");
        assert_eq!(
            decrypt_media_body(&message).expect("body"),
            json!({"data": {"messages": {"key": {"id": "ABC"}, "message": {"imageMessage": {
                "url": "https://mmg/x.enc", "mimetype": "image/jpeg", "mediaKey": "k",
                "fileLength": "123", "fileSha256": "s", "jpegThumbnail": "t"
            }}}}})
        );
    }

    #[test]
    fn decrypt_body_needs_media_and_an_id() {
        let text: WebhookMessage =
            serde_json::from_value(json!({"key": {"id": "A"}, "message": {"conversation": "hi"}}))
                .expect("valid");
        assert!(matches!(
            decrypt_media_body(&text),
            Err(WasenderError::InvalidArgument(_))
        ));
        let no_id: WebhookMessage =
            serde_json::from_value(json!({"message": {"audioMessage": {"url": "u"}}}))
                .expect("valid");
        assert!(matches!(
            decrypt_media_body(&no_id),
            Err(WasenderError::InvalidArgument(_))
        ));
    }
}
