//! Which path and method go where, and what a health check answers.

use super::http::Response;

/// The path answered for load-balancer health checks.
pub const HEALTH_PATH: &str = "/healthz";

/// Where a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// `POST` on the webhook path: read, verify, deliver.
    Webhook,
    /// `GET`/`HEAD` on [`HEALTH_PATH`].
    Health,
    /// `GET`/`HEAD` on the metrics path (only when metrics are enabled).
    Metrics,
    /// Any other path.
    NotFound,
    /// A known path with another method; `allow` lists the accepted ones.
    MethodNotAllowed { allow: &'static str },
}

/// Routes a request by method and path (query string already removed);
/// `metrics_path` is where metrics are served, if anywhere.
pub(crate) fn route(
    method: &str,
    path: &str,
    webhook_path: &str,
    metrics_path: Option<&str>,
) -> Route {
    if path == webhook_path {
        if method == "POST" {
            Route::Webhook
        } else {
            Route::MethodNotAllowed { allow: "POST" }
        }
    } else if path == HEALTH_PATH {
        if method == "GET" || method == "HEAD" {
            Route::Health
        } else {
            Route::MethodNotAllowed { allow: "GET, HEAD" }
        }
    } else if Some(path) == metrics_path {
        if method == "GET" || method == "HEAD" {
            Route::Metrics
        } else {
            Route::MethodNotAllowed { allow: "GET, HEAD" }
        }
    } else {
        Route::NotFound
    }
}

/// What `GET /healthz` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Health {
    /// 200 `{"status":"ok"}`.
    Ok,
    /// 503: shutdown has begun.
    Draining,
    /// 503: the journal refuses writes after an I/O error (the text is the error).
    JournalFailed(String),
}

impl Health {
    /// The answer to a health check.
    pub fn response(&self) -> Response {
        let reason = match self {
            Self::Ok => return Response::json(200, r#"{"status":"ok"}"#.to_owned()),
            Self::Draining => "draining".to_owned(),
            Self::JournalFailed(error) => format!("journal failed: {error}"),
        };
        let reason = serde_json::Value::from(reason);
        Response::json(
            503,
            format!(r#"{{"status":"unavailable","reason":{reason}}}"#),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_the_metrics_path_only_when_it_is_set() {
        let metrics = Some("/metrics");
        assert_eq!(
            route("GET", "/metrics", "/webhook", metrics),
            Route::Metrics
        );
        assert_eq!(
            route("HEAD", "/metrics", "/webhook", metrics),
            Route::Metrics
        );
        assert_eq!(
            route("POST", "/metrics", "/webhook", metrics),
            Route::MethodNotAllowed { allow: "GET, HEAD" }
        );
        assert_eq!(route("GET", "/healthz", "/webhook", metrics), Route::Health);
        assert_eq!(
            route("GET", "/metrics/", "/webhook", metrics),
            Route::NotFound
        );
    }

    #[test]
    fn routes_by_path_then_method() {
        assert_eq!(route("POST", "/webhook", "/webhook", None), Route::Webhook);
        assert_eq!(
            route("GET", "/webhook", "/webhook", None),
            Route::MethodNotAllowed { allow: "POST" }
        );
        assert_eq!(route("GET", "/healthz", "/webhook", None), Route::Health);
        assert_eq!(route("HEAD", "/healthz", "/webhook", None), Route::Health);
        assert_eq!(
            route("POST", "/healthz", "/webhook", None),
            Route::MethodNotAllowed { allow: "GET, HEAD" }
        );
        assert_eq!(
            route("POST", "/webhook/", "/webhook", None),
            Route::NotFound
        );
        assert_eq!(route("GET", "/metrics", "/webhook", None), Route::NotFound);
        assert_eq!(
            route("post", "/webhook", "/webhook", None),
            Route::MethodNotAllowed { allow: "POST" }
        );
    }

    #[test]
    fn health_answers_ok_or_unavailable_with_a_reason() {
        let ok = Health::Ok.response();
        assert_eq!((ok.status, ok.body.as_str()), (200, r#"{"status":"ok"}"#));
        let draining = Health::Draining.response();
        assert_eq!(
            (draining.status, draining.body.as_str()),
            (503, r#"{"status":"unavailable","reason":"draining"}"#)
        );
        let failed = Health::JournalFailed("No space left on device (os error 28)".into());
        let failed = failed.response();
        assert_eq!(failed.status, 503);
        let body: serde_json::Value = serde_json::from_str(&failed.body).unwrap();
        assert_eq!(
            body["reason"],
            "journal failed: No space left on device (os error 28)"
        );
    }
}
