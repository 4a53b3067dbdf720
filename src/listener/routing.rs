//! Which path and method go where, and the fixed answers that need no worker.

use super::http::Response;
use super::stats::Outcome;

/// The path answered for load-balancer health checks.
pub const HEALTH_PATH: &str = "/healthz";

/// Where a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// `POST` on the webhook path: read, verify, deliver.
    Webhook,
    /// `GET`/`HEAD` on [`HEALTH_PATH`].
    Health,
    /// Any other path.
    NotFound,
    /// A known path with another method; `allow` lists the accepted ones.
    MethodNotAllowed { allow: &'static str },
}

/// Routes a request by method and path (query string already removed).
pub(crate) fn route(method: &str, path: &str, webhook_path: &str) -> Route {
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
    } else {
        Route::NotFound
    }
}

/// The answer to a route that needs no worker, with the outcome to count.
pub(crate) fn fixed_answer(route: Route) -> Option<(Response, Outcome)> {
    match route {
        Route::Webhook => None,
        Route::Health => Some((
            Response::json(200, r#"{"status":"ok"}"#.to_owned()),
            Outcome::Health,
        )),
        Route::NotFound => Some((Response::error(404, "not found"), Outcome::Path)),
        Route::MethodNotAllowed { allow } => {
            let mut response = Response::error(405, "method not allowed");
            response.allow = Some(allow);
            Some((response, Outcome::Method))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_by_path_then_method() {
        assert_eq!(route("POST", "/webhook", "/webhook"), Route::Webhook);
        assert_eq!(
            route("GET", "/webhook", "/webhook"),
            Route::MethodNotAllowed { allow: "POST" }
        );
        assert_eq!(route("GET", "/healthz", "/webhook"), Route::Health);
        assert_eq!(route("HEAD", "/healthz", "/webhook"), Route::Health);
        assert_eq!(
            route("POST", "/healthz", "/webhook"),
            Route::MethodNotAllowed { allow: "GET, HEAD" }
        );
        assert_eq!(route("POST", "/webhook/", "/webhook"), Route::NotFound);
        assert_eq!(
            route("post", "/webhook", "/webhook"),
            Route::MethodNotAllowed { allow: "POST" }
        );
    }
}
