//! [`IntoSharedHandler`]: a handler given by value or as an `Arc`.

use std::sync::Arc;

use super::WebhookHandler;

/// A handler as `WebhookListener::builder` and `RedisWorker::builder` take
/// it: the handler itself, or an [`Arc`] of it when you keep a reference too
/// (to read its state, or to share it with other code).
///
/// Implemented for every [`WebhookHandler`] and every `Arc` of one; you never
/// implement it yourself.
///
/// ```
/// use std::sync::Arc;
/// use wasenderapi::handler::IntoSharedHandler;
/// use wasenderapi::WebhookHandler;
///
/// struct Bot;
/// impl WebhookHandler for Bot {
///     type Error = String;
/// }
///
/// let kept = Arc::new(Bot);
/// let shared: Arc<Bot> = Arc::clone(&kept).into_shared();
/// assert!(Arc::ptr_eq(&kept, &shared));
/// let owned: Arc<Bot> = Bot.into_shared();
/// # let _ = owned;
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is neither a `WebhookHandler` nor an `Arc` of one",
    label = "a webhook handler is needed here",
    note = "implement `wasenderapi::WebhookHandler` for your handler type; `WebhookListener::builder` and `RedisWorker::builder` take the handler itself or an `Arc` of it"
)]
pub trait IntoSharedHandler<H> {
    /// The handler behind an `Arc`.
    fn into_shared(self) -> Arc<H>;
}

impl<H: WebhookHandler> IntoSharedHandler<H> for H {
    fn into_shared(self) -> Arc<H> {
        Arc::new(self)
    }
}

impl<H: WebhookHandler> IntoSharedHandler<H> for Arc<H> {
    fn into_shared(self) -> Arc<H> {
        self
    }
}
