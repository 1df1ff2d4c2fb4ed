//! Live updates over WebSocket: `GET /api/t3000/ws`.
//!
//! # Connecting
//! The upgrade request is authenticated like every other request (`Authorization: Bearer`) or,
//! since browsers cannot set headers on a WebSocket, with `?ticket=`: a single-use ticket that
//! lives `auth.ws_ticket_secs`, from `POST /api/t3000/ws/ticket` (`service::tickets`). A token in
//! the URL (`?token=`) is refused with 401 `token_in_url`: browsers print the URL of a connection
//! that fails, and logs keep it (see `http::access::middleware`). It needs the viewer role
//! ([`crate::http::access::required_role`]). A request with an `Origin` header that is neither this
//! server (its `Host`) nor one of `auth.cors_origins` gets 403 before the upgrade.
//!
//! # Messages
//! JSON text frames tagged by `type` ([`protocol`], whose JSON Schema is served at
//! `GET /api/t3000/ws/schema.json` and AsyncAPI document at `GET /api/t3000/ws/asyncapi.json`). The client subscribes to points (ids or `"all"`), devices,
//! rooms / floors / buildings, alarms, schedules, programs and the system status; it first gets the current
//! value of each point from the last-value cache, then changes only. `AckAlarm` and `WriteValue`
//! go through the same service calls (`AlarmService::acknowledge`, `Control::user_write`), roles
//! and audit log as their REST endpoints, and are refused with the same code and message.
//!
//! # Flow control
//! [`hub`] encodes every event once and queues it for each client that follows it, in a bounded
//! queue per client (`websocket.queue_messages` messages; the changes of one bus batch that a
//! client follows go in as one item, shared by every client that follows the same points, and
//! packed into `PointUpdates` frames once for all of them). The hub never waits for a client:
//! what does not fit is dropped for that client, which then gets `Lagged {missed}` and a fresh
//! snapshot; a client that lags more than `websocket.max_lags_per_minute` times a minute is
//! disconnected, and so is one whose socket does not take a write within
//! `websocket.client_timeout_secs` or that stays silent that long (the server pings every
//! `websocket.ping_interval_secs`).

pub mod hub;
pub mod protocol;
mod session;

pub use hub::Hub;

use crate::http::AppState;
use crate::http::error::{ApiError, ErrorBody};
use crate::service::auth::Principal;
use axum::Json;
use axum::extract::ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Largest client message.
const MAX_CLIENT_MESSAGE: usize = 64 * 1024;
/// The read buffer of a connection (grows for a larger message).
const READ_BUFFER: usize = 4 * 1024;

/// Whether a browser page of `origin` may open the socket: this server's own pages, and the
/// configured CORS origins.
pub fn origin_allowed(origin: &str, host: Option<&str>, allowed: &[String]) -> bool {
    let origin = origin.trim_end_matches('/');
    if allowed.iter().any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(origin)) {
        return true;
    }
    let own = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://"));
    matches!((own, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}

/// `GET /api/t3000/ws`: upgrades to the live-update protocol.
///
/// The live-update WebSocket (its messages: `/api/t3000/ws/asyncapi.json`). A browser connects
/// with `?ticket=<ticket>`, a single-use ticket from `POST /api/t3000/ws/ticket` asked for right
/// before connecting; a client that can send headers may use `Authorization: Bearer <token>`
/// instead. A token in the URL (`?token=`) is refused with 401 `token_in_url`. Only a WebSocket
/// upgrade (`Connection: Upgrade`, `Upgrade: websocket`, `Sec-WebSocket-Key`,
/// `Sec-WebSocket-Version: 13`) gets 101; any other request 400 `not_a_websocket`.
#[utoipa::path(get, path = "/api/t3000/ws", tag = "live",
    responses(
        (status = 101, description = "Switching Protocols: the live-update WebSocket"),
        (status = 400, description = "Not a WebSocket upgrade (`not_a_websocket`)", body = ErrorBody),
        (status = 401, description = "No valid bearer token or ticket (`unauthorized`, `invalid_ticket`: unknown, used or expired), or a token in the URL (`token_in_url`)", body = ErrorBody),
        (status = 403, description = "A page of an origin that may not open the socket (`origin_not_allowed`; `auth.cors_origins`)", body = ErrorBody),
        (status = 503, description = "`websocket.max_clients` clients are connected (`too_many_clients`), with `Retry-After`", body = ErrorBody),
    ),
    security(("bearer" = []), ("ws_ticket" = [])))]
pub async fn upgrade(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        let ok = origin.to_str().is_ok_and(|o| origin_allowed(o, host, &state.auth.config().cors_origins));
        if !ok {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "origin_not_allowed",
                "pages of this origin may not open the live-update socket (auth.cors_origins)",
            )
            .into_response();
        }
    }
    let ws = match ws {
        Ok(ws) => ws,
        Err(e) => return ApiError::new(e.status(), "not_a_websocket", e.body_text()).into_response(),
    };
    let max_clients = state.ws.config().max_clients;
    if state.ws.clients() >= max_clients {
        return ApiError {
            retry_after_secs: Some(5),
            ..ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "too_many_clients",
                format!("at most {max_clients} WebSocket clients (websocket.max_clients)"),
            )
        }
        .into_response();
    }
    // Clients send small messages: a small read buffer. tungstenite sizes (and zeroes) it again
    // at every read that finds nothing, which with the default 128 KiB took a third of the server's
    // CPU at 500 clients (perf, ws_fanout).
    ws.max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        .read_buffer_size(READ_BUFFER)
        .on_upgrade(move |socket| session::run(state, socket, who))
}

/// `GET /api/t3000/ws/schema.json`: the JSON Schema of the messages.
pub async fn schema() -> Json<serde_json::Value> {
    Json(protocol::schema_document())
}

/// `GET /api/t3000/ws/asyncapi.json`: the AsyncAPI 3.0 document of the socket, naming this
/// server (its `Host`) as the one to connect to.
pub async fn asyncapi(headers: HeaderMap) -> Json<serde_json::Value> {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1:9103");
    Json(protocol::asyncapi_document(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        let allowed = vec!["https://bms.example.com".to_owned()];
        assert!(origin_allowed("https://bms.example.com", Some("10.0.0.1:9103"), &allowed));
        assert!(origin_allowed("http://10.0.0.1:9103", Some("10.0.0.1:9103"), &allowed));
        assert!(!origin_allowed("https://evil.example", Some("10.0.0.1:9103"), &allowed));
        assert!(!origin_allowed("null", Some("10.0.0.1:9103"), &allowed));
        assert!(!origin_allowed("http://10.0.0.1:9103", None, &[]));
    }
}
