//! Who may do what: the per-request authentication and authorisation check ([`middleware`]) and
//! the role each method and path needs ([`required_role`]), in one function so that the whole
//! matrix can be read, and tested, in one place.
//!
//! Every request passes [`middleware`]: the public paths (login, health, the OpenAPI document and
//! the UI's files) pass as they are; every other one needs a valid token (`Authorization: Bearer`),
//! and [`required_role`] says which role its method and path need (viewer < operator < admin).
//!
//! The WebSocket upgrade (`GET /api/t3000/ws`) also takes `?ticket=`, a single-use ticket from
//! `POST /api/t3000/ws/ticket` (browsers cannot send headers with a WebSocket). No path takes a
//! token from the URL, where browsers print it and logs keep it: the upgrade refuses `?token=`
//! with 401 `token_in_url`, saying to use a ticket.

use crate::http::AppState;
use crate::http::error::ApiError;
use crate::model::user::Role;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;

/// The role a request needs, or `None` for a public path. GETs read (viewer); writes of values,
/// alarm acknowledgements, schedules and programs need an operator; every other change needs an admin.
/// Reading users, tokens, the audit log and imports needs an admin too.
pub fn required_role(method: &Method, path: &str) -> Option<Role> {
    if is_public(method, path) {
        return None;
    }
    let p = path.trim_end_matches('/');
    let seg: Vec<&str> = p.split('/').collect();
    // ["", "api", "t3000", family, ...]
    let family = seg.get(3).copied().unwrap_or("");
    let admin_reads = matches!(family, "users" | "tokens" | "audit" | "import");
    if *method == Method::GET || *method == Method::HEAD {
        return Some(if admin_reads { Role::Admin } else { Role::Viewer });
    }
    let operator_write = match (family, seg.len()) {
        // Reads that take a body.
        ("query" | "history", _) => return Some(Role::Viewer),
        ("auth", _) => return Some(Role::Viewer),
        // Whoever may open the WebSocket may ask for a ticket to open it.
        ("ws", 5) if seg[4] == "ticket" => return Some(Role::Viewer),
        ("samples", _) => true,
        ("points", 6) => matches!(seg[5], "value" | "relinquish" | "mode"),
        ("alarms", 6) => seg[5] == "ack",
        ("storage", 6) => seg[4] == "quarantine" && seg[5] == "ack",
        ("schedules" | "calendars", _) => true,
        // Programs command points as operators do (at their own priority).
        ("programs", _) => true,
        _ => false,
    };
    Some(if operator_write { Role::Operator } else { Role::Admin })
}

fn is_public(method: &Method, path: &str) -> bool {
    match path {
        "/healthz"
        | "/readyz"
        | "/api/openapi.json"
        | "/api/t3000/openapi.json"
        | "/api/t3000/ws/schema.json"
        | "/api/t3000/ws/asyncapi.json" => true,
        "/api/t3000/auth/login" => *method == Method::POST,
        // The UI's files; everything under /api and /metrics needs a token.
        _ => !(path == "/api" || path.starts_with("/api/") || path.starts_with("/metrics")),
    }
}

/// The client's address as the audit log records it.
pub fn remote_of(req: &Request) -> Option<String> {
    req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string())
}

/// The WebSocket upgrade's path: the one that takes a ticket.
const WS_PATH: &str = "/api/t3000/ws";

/// What the WebSocket upgrade's query carries to authenticate.
#[derive(Debug, PartialEq, Eq)]
enum QueryCredential {
    Nothing,
    /// `ticket=`: a single-use ticket.
    Ticket(String),
    /// `token=`: a bearer token in the URL, refused.
    Token,
}

fn query_credential(query: Option<&str>) -> QueryCredential {
    let pairs = || query.unwrap_or("").split('&').filter_map(|kv| kv.split_once('=').or(Some((kv, ""))));
    if pairs().any(|(k, _)| k == "token" || k == "access_token") {
        return QueryCredential::Token;
    }
    match pairs().find(|(k, _)| *k == "ticket") {
        Some((_, v)) => QueryCredential::Ticket(v.to_owned()),
        None => QueryCredential::Nothing,
    }
}

fn unauthorized(code: &'static str, message: &str) -> Response {
    let mut resp = ApiError::new(StatusCode::UNAUTHORIZED, code, message).into_response();
    resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    resp
}

/// Authenticates and authorises every request (see the module documentation).
pub async fn middleware(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let Some(need) = required_role(req.method(), req.uri().path()) else {
        return next.run(req).await;
    };
    let query =
        if req.uri().path() == WS_PATH { query_credential(req.uri().query()) } else { QueryCredential::Nothing };
    let principal = match query {
        QueryCredential::Token => {
            return unauthorized(
                "token_in_url",
                "a token is not taken in the URL (browsers print it and logs keep it): get a single-use \
                 ticket with POST /api/t3000/ws/ticket and connect with ?ticket=<ticket>, or send \
                 Authorization: Bearer <token>",
            );
        }
        // The ticket is used up whatever happens next, so a URL that shows it opens nothing.
        QueryCredential::Ticket(ticket) => match state.auth.redeem_ws_ticket(&ticket) {
            Some(p) => p,
            None => {
                return unauthorized(
                    "invalid_ticket",
                    "the ticket is unknown, used or expired: get a new one with POST /api/t3000/ws/ticket \
                     right before connecting (each opens one connection)",
                );
            }
        },
        QueryCredential::Nothing => {
            let secret = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
                .map(str::trim);
            match secret.and_then(|s| state.auth.authenticate(s)) {
                Some(p) => p,
                None => {
                    return unauthorized(
                        "unauthorized",
                        "a valid bearer token is required: POST /api/t3000/auth/login",
                    );
                }
            }
        }
    };
    let mut principal = principal;
    let user = crate::http::requestlog::RequestUser(principal.username.clone());
    if principal.role < need {
        let mut resp = ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this needs the role {} (you are {})", need.name(), principal.role.name()),
        )
        .into_response();
        resp.extensions_mut().insert(user);
        return resp;
    }
    principal.remote = remote_of(&req);
    req.extensions_mut().insert(principal);
    let mut resp = next.run(req).await;
    resp.extensions_mut().insert(user);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_table() {
        let g = Method::GET;
        let p = Method::POST;
        let put = Method::PUT;
        let d = Method::DELETE;
        let cases: &[(&Method, &str, Option<Role>)] = &[
            (&g, "/healthz", None),
            (&g, "/readyz", None),
            (&g, "/", None),
            (&g, "/assets/app.js", None),
            (&g, "/api/openapi.json", None),
            (&g, "/api/t3000/ws/schema.json", None),
            (&g, "/api/t3000/ws/asyncapi.json", None),
            (&g, "/api/t3000/ws", Some(Role::Viewer)),
            (&p, "/api/t3000/ws/ticket", Some(Role::Viewer)),
            (&p, "/api/t3000/ws/other", Some(Role::Admin)),
            (&p, "/api/t3000/auth/login", None),
            (&g, "/metrics", Some(Role::Viewer)),
            (&g, "/api/t3000/devices", Some(Role::Viewer)),
            (&g, "/api/t3000/points/5/value", Some(Role::Viewer)),
            (&p, "/api/t3000/points/5/value", Some(Role::Operator)),
            (&p, "/api/t3000/points/5/relinquish", Some(Role::Operator)),
            (&p, "/api/t3000/points/5/mode", Some(Role::Operator)),
            (&g, "/api/t3000/points/in-manual", Some(Role::Viewer)),
            (&p, "/api/t3000/points", Some(Role::Admin)),
            (&put, "/api/t3000/points/5", Some(Role::Admin)),
            (&p, "/api/t3000/query", Some(Role::Viewer)),
            (&p, "/api/t3000/history/batch", Some(Role::Viewer)),
            (&p, "/api/t3000/samples", Some(Role::Operator)),
            (&p, "/api/t3000/alarms/3/ack", Some(Role::Operator)),
            (&p, "/api/t3000/schedules", Some(Role::Operator)),
            (&d, "/api/t3000/schedules/2", Some(Role::Operator)),
            (&p, "/api/t3000/schedules/2/run", Some(Role::Operator)),
            (&p, "/api/t3000/programs", Some(Role::Operator)),
            (&d, "/api/t3000/programs/2", Some(Role::Operator)),
            (&p, "/api/t3000/programs/2/enable", Some(Role::Operator)),
            (&p, "/api/t3000/programs/check", Some(Role::Operator)),
            (&put, "/api/t3000/calendars/2", Some(Role::Operator)),
            (&p, "/api/t3000/alarms/rules", Some(Role::Admin)),
            (&p, "/api/t3000/storage/quarantine/ack", Some(Role::Operator)),
            (&Method::DELETE, "/api/t3000/points/5/samples", Some(Role::Admin)),
            (&put, "/api/t3000/alarms/rules/3", Some(Role::Admin)),
            (&g, "/api/t3000/alarms/history", Some(Role::Viewer)),
            (&p, "/api/t3000/devices", Some(Role::Admin)),
            (&d, "/api/t3000/buildings/1", Some(Role::Admin)),
            (&g, "/api/t3000/users", Some(Role::Admin)),
            (&g, "/api/t3000/audit", Some(Role::Admin)),
            (&p, "/api/t3000/auth/logout", Some(Role::Viewer)),
            (&p, "/api/t3000/auth/password", Some(Role::Viewer)),
        ];
        for (m, path, want) in cases {
            assert_eq!(required_role(m, path), *want, "{m} {path}");
        }
    }

    #[test]
    fn the_upgrade_query() {
        use QueryCredential::*;
        assert_eq!(query_credential(Option::None), Nothing);
        assert_eq!(query_credential(Some("")), Nothing);
        assert_eq!(query_credential(Some("ticket=t3w_ab")), Ticket("t3w_ab".into()));
        assert_eq!(query_credential(Some("x=1&ticket=t3w_ab&y")), Ticket("t3w_ab".into()));
        assert_eq!(query_credential(Some("ticket=")), Ticket(String::new()));
        assert_eq!(query_credential(Some("token=t3_x")), Token);
        assert_eq!(query_credential(Some("ticket=t3w_ab&token=t3_x")), Token, "a token in the URL is refused");
        assert_eq!(query_credential(Some("access_token=t3_x")), Token);
        assert_eq!(query_credential(Some("tickets=1&tokens=2")), Nothing);
    }
}
