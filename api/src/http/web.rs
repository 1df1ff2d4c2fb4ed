//! The browser UI: the files of `web/dist`, embedded at build time (see `build.rs`), served at `/`.
//!
//! A path that names a file gets it, with an ETag (`304` on a match) and, under `/assets/` (names
//! that carry a content hash), a year of caching; any other path without a file extension gets
//! `index.html`, so the UI's own routes (`/devices/12`) load the page. Setting `T3000_WEB_DIR` to a
//! folder serves the UI from there instead (to work on the UI without rebuilding the binary).

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::OnceLock;

include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

/// What the page may load: only from this server (plus images it made itself, and the WebSocket).
const CSP: &str = "default-src 'self'; img-src 'self' blob: data:; style-src 'self' 'unsafe-inline'; \
                   connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'self'; form-action 'self'";

/// Serves a file of the UI for `GET`/`HEAD` of a path outside `/api` and `/metrics`.
pub async fn serve(method: Method, uri: axum::http::Uri, headers: HeaderMap) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return crate::http::error::ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "the UI's files are read with GET",
        )
        .into_response();
    }
    let path = uri.path();
    let Some((name, bytes, etag)) = find(path) else {
        return crate::http::error::ApiError::not_found(format!("no file {path}")).into_response();
    };
    let mut resp = if headers.get(header::IF_NONE_MATCH).is_some_and(|v| v.as_bytes() == etag.as_bytes()) {
        StatusCode::NOT_MODIFIED.into_response()
    } else if method == Method::HEAD {
        let mut r = StatusCode::OK.into_response();
        r.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
        r
    } else {
        Response::new(Body::from(bytes))
    };
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(&name)));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    let cache = if name.starts_with("/assets/") { "public, max-age=31536000, immutable" } else { "no-cache" };
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    resp
}

/// The file for `path`: itself, or `index.html` for a route of the UI. `None`: a missing file.
fn find(path: &str) -> Option<(String, Cow<'static, [u8]>, String)> {
    let name = if path == "/" { "/index.html" } else { path };
    let is_route = !name.rsplit('/').next().unwrap_or("").contains('.');
    if let Some(dir) = disk_dir() {
        let read = |name: &str| -> Option<(String, Cow<'static, [u8]>, String)> {
            if name.split('/').any(|s| s == ".." || s.starts_with('.') && !s.is_empty() || s.contains('\\')) {
                return None;
            }
            let bytes = std::fs::read(dir.join(name.trim_start_matches('/'))).ok()?;
            let etag = format!("\"{:016x}\"", fnv1a(&bytes));
            Some((name.to_owned(), Cow::Owned(bytes), etag))
        };
        return read(name).or_else(|| if is_route { read("/index.html") } else { None });
    }
    let embedded = |name: &str| {
        ASSETS
            .iter()
            .find(|(p, _, _)| *p == name)
            .map(|(p, b, e)| ((*p).to_owned(), Cow::Borrowed(*b), (*e).to_owned()))
    };
    embedded(name).or_else(|| if is_route { embedded("/index.html") } else { None })
}

fn disk_dir() -> Option<&'static PathBuf> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| std::env::var_os("T3000_WEB_DIR").filter(|v| !v.is_empty()).map(PathBuf::from)).as_ref()
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "wav" => "audio/wav",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_ui_is_embedded_and_routes_get_the_page() {
        let (name, bytes, etag) = find("/").expect("index.html embedded");
        assert_eq!(name, "/index.html");
        assert!(std::str::from_utf8(&bytes).expect("utf-8").contains("<div id=\"app\">"));
        assert!(etag.starts_with('"') && etag.len() == 18);
        assert_eq!(find("/devices/12").expect("a UI route").0, "/index.html");
        assert!(find("/assets/missing-file.js").is_none(), "a missing file is a 404, not the page");
        let script = ASSETS.iter().find(|(p, _, _)| p.starts_with("/assets/") && p.ends_with(".js")).expect("a script");
        assert_eq!(content_type(script.0), "text/javascript; charset=utf-8");
    }
}
