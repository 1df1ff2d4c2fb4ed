//! One log line per request, and its request id. The id is the client's `x-request-id` when it is
//! a sane one (1 to 64 letters, digits, `-`, `_`, `.`, `:`), else a new random one; it is returned
//! in the response's `x-request-id` and carried by every line logged while the request is served
//! (the `request` span, with the method and the path). The closing line adds the status, the
//! latency until the response head and the user ([`RequestUser`], set by [`super::access`]; `-`
//! for requests without one). Never logged: the query string (it can hold a WebSocket ticket or a
//! token a client put there), headers (`Authorization`) and bodies (passwords).

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use std::time::Instant;
use tracing::Instrument;

/// The header that carries the request id both ways.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The authenticated user of a request, put in the response's extensions by the access check.
#[derive(Debug, Clone)]
pub struct RequestUser(pub String);

/// Logs the request (see the module documentation) and returns its id in the response.
pub async fn middleware(req: Request, next: Next) -> Response {
    let id = request_id(req.headers());
    let path = req.uri().path().to_owned();
    let span = tracing::info_span!("request", method = %req.method(), path = %path, request_id = %id);
    let started = Instant::now();
    let mut resp = next.run(req).instrument(span.clone()).await;
    // Milliseconds with three decimals.
    let latency_ms = started.elapsed().as_micros() as f64 / 1000.0;
    let status = resp.status().as_u16();
    let user = resp.extensions().get::<RequestUser>().map_or("-", |u| u.0.as_str()).to_owned();
    span.in_scope(|| {
        if status >= 500 {
            tracing::warn!(status, latency_ms, user = %user, "request");
        } else if is_probe(&path) {
            tracing::debug!(status, latency_ms, user = %user, "request");
        } else {
            tracing::info!(status, latency_ms, user = %user, "request");
        }
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID, v);
    }
    resp
}

/// Health checks and metric scrapes come every few seconds: logged at debug, unless they fail.
fn is_probe(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/metrics")
}

/// The client's request id if it is sane, else a new one (16 hex digits).
fn request_id(headers: &HeaderMap) -> String {
    let given = headers.get(&REQUEST_ID).and_then(|v| v.to_str().ok()).filter(|v| {
        (1..=64).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
    });
    given.map_or_else(|| format!("{:016x}", rand::random::<u64>()), str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(REQUEST_ID, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn a_sane_client_id_is_kept_and_anything_else_replaced() {
        assert_eq!(request_id(&with("abc-123_x.y:z")), "abc-123_x.y:z");
        let long = "a".repeat(65);
        for bad in ["", "has space", "semi;colon", "quote\"", long.as_str(), "token=t3_secret"] {
            let id = request_id(&with(bad));
            assert!(id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()), "{bad:?} gave {id}");
        }
        let (a, b) = (request_id(&HeaderMap::new()), request_id(&HeaderMap::new()));
        assert_ne!(a, b, "two new ids are the same");
    }
}
