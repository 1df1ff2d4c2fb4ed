//! Users, roles, bearer tokens, login throttling and the per-request authorisation check.
//!
//! # Tokens
//! A login returns a session token; an admin can issue API tokens for machines. A token is 32
//! random bytes (hex, prefixed `t3_`); the catalog keeps only its SHA-256, so a copy of the catalog
//! does not let anyone in. Logout deletes the session at once. Passwords are hashed with Argon2id.
//! A session the catalog cannot store (a full disk) is kept in memory instead, until it expires,
//! is revoked or the server stops: logins keep working while the disk is full.
//!
//! # Authorisation
//! Every request passes [`middleware`]: the public paths (login, health, the OpenAPI document and
//! the UI's files) pass as they are; every other one needs a valid token, and [`required_role`]
//! says which role its method and path need (viewer < operator < admin). The rule table is one
//! function so that the whole matrix can be read, and tested, in one place.

use crate::http::AppState;
use crate::http::error::{ApiError, ApiResult};
pub use crate::model::user::{Role, Token, TokenKind, User};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use t3_core::config::AuthConfig;
use t3_storage::catalog::{AuditEntry, Catalog};

/// Who is making a request (put in the request's extensions by [`middleware`]).
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: i64,
    pub username: String,
    pub role: Role,
    pub token_id: i64,
    pub remote: Option<String>,
}

impl Principal {
    /// The audit-log actor name.
    pub fn actor(&self) -> String {
        self.username.clone()
    }
}

/// The authentication service.
#[derive(Debug)]
pub struct Auth {
    catalog: Arc<Catalog>,
    cfg: AuthConfig,
    /// Failed logins by (address, user name), with when they happened.
    failures: Mutex<HashMap<(String, String), VecDeque<Instant>>>,
    /// Accepted writes per point in the last minute.
    writes: Mutex<HashMap<u32, VecDeque<Instant>>>,
    /// Login sessions the catalog could not store (a full disk): kept in memory until they expire,
    /// are revoked or the server stops, so that logins work while the disk is full. Their ids are
    /// negative, never a stored token's.
    unstored: Mutex<Vec<Token>>,
}

pub fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

fn sha256_hex(secret: &str) -> String {
    Sha256::digest(secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("t3_{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// Hashes a password with Argon2id (a random salt, the crate's default cost).
pub fn hash_password(password: &str) -> ApiResult<String> {
    let salt_bytes: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&salt_bytes).map_err(ApiError::internal)?;
    Ok(Argon2::default().hash_password(password.as_bytes(), &salt).map_err(ApiError::internal)?.to_string())
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// Checks a new password: 8 to 256 characters.
pub fn check_password(password: &str) -> ApiResult<()> {
    let n = password.chars().count();
    if !crate::http::rules::PASSWORD_CHARS.contains(&n) {
        return Err(ApiError::unprocessable("weak_password", "a password must be 8 to 256 characters"));
    }
    Ok(())
}

/// A generated password: 16 letters and digits.
fn generate_password() -> String {
    const CHARS: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    (0..16).map(|_| CHARS[rand::random_range(0..CHARS.len())] as char).collect()
}

/// What a successful login returns.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LoginResponse {
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
    pub username: String,
    pub role: Role,
    /// Epoch microseconds.
    pub expires_us: i64,
}

impl Auth {
    pub fn new(catalog: Arc<Catalog>, cfg: AuthConfig) -> anyhow::Result<Auth> {
        Ok(Auth { catalog, cfg, failures: Mutex::default(), writes: Mutex::default(), unstored: Mutex::default() })
    }

    pub fn config(&self) -> &AuthConfig {
        &self.cfg
    }

    /// Creates the user `admin` if there are no users at all. Its password comes from the
    /// configuration, else `env_password` (`T3000_ADMIN_PASSWORD`), else is generated and returned
    /// so that the caller prints it once.
    pub fn bootstrap(&self, env_password: Option<String>) -> anyhow::Result<Option<String>> {
        if !self.catalog.read::<User, _>(|u| u.is_empty()) {
            return Ok(None);
        }
        let (password, generated) = if !self.cfg.admin_password.is_empty() {
            (self.cfg.admin_password.clone(), false)
        } else if let Some(p) = env_password.filter(|p| !p.is_empty()) {
            anyhow::ensure!(p.chars().count() >= 8, "T3000_ADMIN_PASSWORD must be at least 8 characters");
            (p, false)
        } else {
            (generate_password(), true)
        };
        let hash = hash_password(&password).map_err(|e| anyhow::anyhow!(e.message))?;
        self.catalog.insert(User {
            id: 0,
            username: "admin".into(),
            role: Role::Admin,
            password_hash: hash,
            disabled: false,
            created_us: now_us(),
        })?;
        self.audit(None, "system", "user.create", Some("user:admin".into()), None, None, "ok");
        tracing::info!("created the user `admin` (first start)");
        Ok(generated.then_some(password))
    }

    /// Records a finished action in the audit log; a failure to record is logged, not fatal.
    #[allow(clippy::too_many_arguments)]
    pub fn audit(
        &self,
        remote: Option<String>,
        actor: &str,
        action: &str,
        target: Option<String>,
        old: Option<serde_json::Value>,
        new: Option<serde_json::Value>,
        result: &str,
    ) {
        let entry = AuditEntry {
            seq: 0,
            ts: now_us(),
            actor: actor.to_owned(),
            remote,
            action: action.to_owned(),
            target,
            old,
            new,
            result: result.to_owned(),
        };
        if let Err(e) = self.catalog.audit_record(entry) {
            tracing::error!(error = %e, action, "could not write the audit log");
        }
    }

    /// Checks a user name and password, throttled per address and user name.
    pub async fn login(&self, username: &str, password: &str, remote: Option<String>) -> ApiResult<LoginResponse> {
        let key = (remote.clone().unwrap_or_default(), username.to_owned());
        let window = Duration::from_secs(self.cfg.login_lockout_secs);
        {
            let mut failures = self.failures.lock();
            let list = failures.entry(key.clone()).or_default();
            while list.front().is_some_and(|t| t.elapsed() > window) {
                list.pop_front();
            }
            if list.len() >= self.cfg.login_max_failures as usize {
                let wait = list.front().map_or(window, |t| window.saturating_sub(t.elapsed()));
                self.audit(remote, username, "login", None, None, None, "throttled");
                return Err(ApiError {
                    retry_after_secs: Some(wait.as_secs().max(1)),
                    ..ApiError::new(
                        StatusCode::TOO_MANY_REQUESTS,
                        "login_throttled",
                        format!("too many failed logins; try again in {} s", wait.as_secs().max(1)),
                    )
                });
            }
        }
        let user = self.catalog.read::<User, _>(|u| u.values().find(|u| u.username == username).cloned());
        // Verify against a dummy hash when the user does not exist, so timing does not tell.
        let hash = user.as_ref().map_or_else(dummy_hash, |u| u.password_hash.clone());
        let pw = password.to_owned();
        let ok = tokio::task::spawn_blocking(move || verify_password(&pw, &hash)).await.unwrap_or(false);
        let user = match user {
            Some(u) if ok && !u.disabled => u,
            _ => {
                self.failures.lock().entry(key).or_default().push_back(Instant::now());
                self.audit(remote, username, "login", None, None, None, "invalid credentials");
                return Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "invalid_credentials",
                    "wrong user name or password",
                ));
            }
        };
        self.failures.lock().remove(&key);
        let secret = new_secret();
        let now = now_us();
        let expires = now + self.cfg.session_hours as i64 * 3_600_000_000;
        let session = Token {
            id: 0,
            name: "session".into(),
            kind: TokenKind::Session,
            user_id: user.id,
            hash: sha256_hex(&secret),
            created_us: now,
            expires_us: Some(expires),
        };
        // Expired tokens are dropped as new sessions begin, so they do not pile up.
        let stored = self.catalog.transaction(|tx| {
            let expired: Vec<i64> =
                tx.rows::<Token>().values().filter(|t| t.expires_us.is_some_and(|e| e <= now)).map(|t| t.id).collect();
            for id in expired {
                tx.delete::<Token>(id);
            }
            tx.insert(session.clone())
        });
        if let Err(e) = stored {
            // The password was right: a catalog that cannot be written (a full disk) must not
            // lock everyone out. The session lives in memory until it ends or the server stops.
            tracing::error!(error = %e, user = username, "could not store a login session; keeping it in memory until restart");
            let mut unstored = self.unstored.lock();
            unstored.retain(|t| t.expires_us.is_none_or(|e| e > now));
            let id = unstored.iter().map(|t| t.id).min().unwrap_or(0).min(0) - 1;
            unstored.push(Token { id, ..session });
        }
        self.audit(remote, username, "login", None, None, None, "ok");
        Ok(LoginResponse { token: secret, username: user.username, role: user.role, expires_us: expires })
    }

    /// Issues an API token for a user; returns the record and the secret (shown once).
    pub fn issue_token(&self, user_id: i64, name: &str, expires_us: Option<i64>) -> ApiResult<(Token, String)> {
        let secret = new_secret();
        let token = self.catalog.insert(Token {
            id: 0,
            name: name.to_owned(),
            kind: TokenKind::Api,
            user_id,
            hash: sha256_hex(&secret),
            created_us: now_us(),
            expires_us,
        })?;
        Ok((token, secret))
    }

    /// Every token and session: the stored ones and those kept in memory (see [`Auth::login`]).
    pub fn tokens(&self) -> Vec<Token> {
        let mut all = self.catalog.list::<Token>();
        all.extend(self.unstored.lock().iter().cloned());
        all
    }

    /// The principal a bearer secret stands for, if it is valid now.
    pub fn authenticate(&self, secret: &str) -> Option<Principal> {
        let hash = sha256_hex(secret);
        let token = self
            .catalog
            .read::<Token, _>(|t| t.values().find(|t| t.hash == hash).cloned())
            .or_else(|| self.unstored.lock().iter().find(|t| t.hash == hash).cloned())?;
        if token.expires_us.is_some_and(|e| e <= now_us()) {
            return None;
        }
        let user = self.catalog.get::<User>(token.user_id).filter(|u| !u.disabled)?;
        Some(Principal { user_id: user.id, username: user.username, role: user.role, token_id: token.id, remote: None })
    }

    /// Deletes a token (logout, revocation).
    pub fn revoke(&self, token_id: i64) -> ApiResult<bool> {
        if token_id < 0 {
            let mut unstored = self.unstored.lock();
            let before = unstored.len();
            unstored.retain(|t| t.id != token_id);
            return Ok(unstored.len() < before);
        }
        Ok(self.catalog.delete::<Token>(token_id)?)
    }

    /// Deletes every token of a user (password change, user disabled or deleted) except `keep`.
    pub fn revoke_user_tokens(&self, user_id: i64, keep: Option<i64>) -> ApiResult<()> {
        self.unstored.lock().retain(|t| t.user_id != user_id || Some(t.id) == keep);
        self.catalog.transaction(|tx| {
            let ids: Vec<i64> = tx
                .rows::<Token>()
                .values()
                .filter(|t| t.user_id == user_id && Some(t.id) != keep)
                .map(|t| t.id)
                .collect();
            for id in ids {
                tx.delete::<Token>(id);
            }
            Ok(())
        })?;
        Ok(())
    }

    /// Checks the user's current password (for a password change).
    pub async fn verify_user_password(&self, user_id: i64, password: &str) -> bool {
        let Some(user) = self.catalog.get::<User>(user_id) else { return false };
        let pw = password.to_owned();
        tokio::task::spawn_blocking(move || verify_password(&pw, &user.password_hash)).await.unwrap_or(false)
    }

    /// Counts a write to `point`; refuses it past `point_writes_per_minute`.
    pub fn check_write_rate(&self, point: u32) -> ApiResult<()> {
        let mut writes = self.writes.lock();
        let list = writes.entry(point).or_default();
        while list.front().is_some_and(|t| t.elapsed() > Duration::from_secs(60)) {
            list.pop_front();
        }
        if list.len() >= self.cfg.point_writes_per_minute as usize {
            return Err(ApiError {
                retry_after_secs: Some(60u64.saturating_sub(list.front().map_or(0, |t| t.elapsed().as_secs())).max(1)),
                ..ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "write_rate_limited",
                    format!("point {point} accepts at most {} writes a minute", self.cfg.point_writes_per_minute),
                )
            });
        }
        list.push_back(Instant::now());
        Ok(())
    }
}

fn dummy_hash() -> String {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password("not a password of anyone").unwrap_or_default()).clone()
}

/// The role a request needs, or `None` for a public path. GETs read (viewer); writes of values,
/// alarm acknowledgements and schedules need an operator; every other change needs an admin.
/// Reading users, tokens and the audit log needs an admin too.
pub fn required_role(method: &Method, path: &str) -> Option<Role> {
    if is_public(method, path) {
        return None;
    }
    let p = path.trim_end_matches('/');
    let seg: Vec<&str> = p.split('/').collect();
    // ["", "api", "t3000", family, ...]
    let family = seg.get(3).copied().unwrap_or("");
    let admin_reads = matches!(family, "users" | "tokens" | "audit");
    if *method == Method::GET || *method == Method::HEAD {
        return Some(if admin_reads { Role::Admin } else { Role::Viewer });
    }
    let operator_write = match (family, seg.len()) {
        // Reads that take a body.
        ("query" | "history", _) => return Some(Role::Viewer),
        ("auth", _) => return Some(Role::Viewer),
        ("samples", _) => true,
        ("points", 6) => seg[5] == "value" || seg[5] == "relinquish",
        ("alarms", 6) => seg[5] == "ack",
        ("storage", 6) => seg[4] == "quarantine" && seg[5] == "ack",
        ("schedules" | "calendars", _) => true,
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

/// The `token` query parameter of the WebSocket upgrade (browsers cannot set headers on a
/// WebSocket); no other path takes a token from the query.
fn query_token(req: &Request) -> Option<String> {
    if req.uri().path() != "/api/t3000/ws" {
        return None;
    }
    req.uri().query()?.split('&').find_map(|kv| kv.strip_prefix("token=")).map(str::to_owned)
}

/// Authenticates and authorises every request (see the module documentation).
pub async fn middleware(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let Some(need) = required_role(req.method(), req.uri().path()) else {
        return next.run(req).await;
    };
    let secret = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .map(str::to_owned)
        .or_else(|| query_token(&req));
    let Some(mut principal) = secret.and_then(|s| state.auth.authenticate(&s)) else {
        let mut resp = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid bearer token is required: POST /api/t3000/auth/login",
        )
        .into_response();
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return resp;
    };
    if principal.role < need {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this needs the role {} (you are {})", need.name(), principal.role.name()),
        )
        .into_response();
    }
    principal.remote = remote_of(&req);
    req.extensions_mut().insert(principal);
    next.run(req).await
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
            (&p, "/api/t3000/auth/login", None),
            (&g, "/metrics", Some(Role::Viewer)),
            (&g, "/api/t3000/devices", Some(Role::Viewer)),
            (&g, "/api/t3000/points/5/value", Some(Role::Viewer)),
            (&p, "/api/t3000/points/5/value", Some(Role::Operator)),
            (&p, "/api/t3000/points/5/relinquish", Some(Role::Operator)),
            (&p, "/api/t3000/points", Some(Role::Admin)),
            (&put, "/api/t3000/points/5", Some(Role::Admin)),
            (&p, "/api/t3000/query", Some(Role::Viewer)),
            (&p, "/api/t3000/history/batch", Some(Role::Viewer)),
            (&p, "/api/t3000/samples", Some(Role::Operator)),
            (&p, "/api/t3000/alarms/3/ack", Some(Role::Operator)),
            (&p, "/api/t3000/schedules", Some(Role::Operator)),
            (&d, "/api/t3000/schedules/2", Some(Role::Operator)),
            (&p, "/api/t3000/schedules/2/run", Some(Role::Operator)),
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
    fn passwords_hash_and_verify() {
        let h = hash_password("correct horse").unwrap();
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse", &h));
        assert!(!verify_password("correct horse", "not a hash"));
    }
}
