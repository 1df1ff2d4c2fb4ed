//! Users, bearer tokens, passwords and login throttling.
//!
//! # Tokens
//! A login returns a session token; an admin can issue API tokens for machines. A token is 32
//! random bytes (hex, prefixed `t3_`); the catalog keeps only its SHA-256, so a copy of the catalog
//! does not let anyone in. Logout deletes the session at once. Passwords are hashed with Argon2id.
//! A session the catalog cannot store (a full disk) is kept in memory instead, until it expires,
//! is revoked or the server stops: logins keep working while the disk is full.
//!
//! # WebSocket tickets
//! A browser cannot send a header with a WebSocket, and a token in its URL shows up in the
//! browser's console and in logs; so a client exchanges its token for a single-use ticket that
//! lives `auth.ws_ticket_secs` ([`Auth::ws_ticket`], [`crate::service::tickets`]) and connects with
//! that. The connection then runs as the token that asked for the ticket ([`Auth::redeem_ws_ticket`]).
//!
//! Which role a request needs, and the check of every request, are HTTP's: `http::access`.

use crate::model::user::{Role, Token, TokenKind, User};
use crate::service::Issuer;
use crate::service::audit::AuditLog;
use crate::service::tickets::{Holder, Issued, TicketError, TicketStore};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use parking_lot::Mutex;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use t3_core::clock::Clock;
use t3_core::config::AuthConfig;
use t3_storage::catalog::Catalog;

/// Why the authentication service refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Too many failed logins from one address for one user name.
    #[error("too many failed logins; try again in {wait_secs} s")]
    LoginThrottled { wait_secs: u64 },
    #[error("wrong user name or password")]
    InvalidCredentials,
    /// A new password outside [`crate::model::check::PASSWORD_CHARS`].
    #[error("a password must be 8 to 256 characters")]
    WeakPassword,
    /// Argon2 failed (it does not, for the passwords and salts it is given).
    #[error("password hashing: {0}")]
    Hash(String),
    #[error(transparent)]
    Storage(#[from] t3_storage::Error),
    /// No WebSocket ticket could be issued now.
    #[error(transparent)]
    Tickets(#[from] TicketError),
}

/// Who is making a request (put in the request's extensions by `http::access::middleware`).
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

    /// Who acts, for the services: the user's name and address.
    pub fn issuer(&self) -> Issuer {
        Issuer { actor: self.actor(), remote: self.remote.clone(), role: Some(self.role) }
    }
}

/// The authentication service.
#[derive(Debug)]
pub struct Auth {
    catalog: Arc<Catalog>,
    /// `[auth]`; a configuration reload swaps it ([`Auth::reconfigure`]).
    cfg: parking_lot::RwLock<AuthConfig>,
    clock: Arc<dyn Clock>,
    audit: AuditLog,
    /// Failed logins by (address, user name), with when they happened.
    failures: Mutex<HashMap<(String, String), VecDeque<Instant>>>,
    /// Login sessions the catalog could not store (a full disk): kept in memory until they expire,
    /// are revoked or the server stops, so that logins work while the disk is full. Their ids are
    /// negative, never a stored token's.
    unstored: Mutex<Vec<Token>>,
    /// WebSocket tickets waiting to be used.
    tickets: TicketStore,
}

fn sha256_hex(secret: &str) -> String {
    Sha256::digest(secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("t3_{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// Hashes a password with Argon2id (a random salt, the crate's default cost).
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let salt_bytes: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| AuthError::Hash(e.to_string()))?;
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| AuthError::Hash(e.to_string()))?
        .to_string())
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// Checks a new password: 8 to 256 characters.
pub fn check_password(password: &str) -> Result<(), AuthError> {
    let n = password.chars().count();
    if !crate::model::check::PASSWORD_CHARS.contains(&n) {
        return Err(AuthError::WeakPassword);
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
    /// The service over `catalog`, whose `User` and `Token` records are registered
    /// (`model::register`).
    pub fn new(catalog: Arc<Catalog>, cfg: AuthConfig, clock: Arc<dyn Clock>) -> Auth {
        let audit = AuditLog::new(catalog.clone(), clock.clone());
        let tickets = TicketStore::new(clock.clone(), Duration::from_secs(cfg.ws_ticket_secs));
        let cfg = parking_lot::RwLock::new(cfg);
        Auth { catalog, cfg, clock, audit, failures: Mutex::default(), unstored: Mutex::default(), tickets }
    }

    /// The `[auth]` settings in force.
    pub fn config(&self) -> AuthConfig {
        self.cfg.read().clone()
    }

    /// Takes new `[auth]` settings (a configuration reload): login throttling, session and ticket
    /// lifetimes and CORS origins apply from the next request on; sessions and tickets already
    /// issued keep their expiry. `admin_password` is only read at the first start.
    pub fn reconfigure(&self, cfg: &AuthConfig) {
        self.tickets.set_ttl(Duration::from_secs(cfg.ws_ticket_secs));
        *self.cfg.write() = cfg.clone();
    }

    /// Whether pages of `origin` may call the API from a browser (`auth.cors_origins`).
    pub fn cors_allows(&self, origin: &str) -> bool {
        let origin = origin.trim_end_matches('/');
        self.cfg.read().cors_origins.iter().any(|o| o.trim_end_matches('/') == origin)
    }

    /// Creates the user `admin` if there are no users at all. Its password comes from the
    /// configuration, else `env_password` (`T3000_ADMIN_PASSWORD`), else is generated and returned
    /// so that the caller prints it once.
    pub fn bootstrap(&self, env_password: Option<String>) -> anyhow::Result<Option<String>> {
        if !self.catalog.read::<User, _>(|u| u.is_empty()) {
            return Ok(None);
        }
        let configured = self.cfg.read().admin_password.clone();
        let (password, generated) = if !configured.is_empty() {
            (configured, false)
        } else if let Some(p) = env_password.filter(|p| !p.is_empty()) {
            anyhow::ensure!(p.chars().count() >= 8, "T3000_ADMIN_PASSWORD must be at least 8 characters");
            (p, false)
        } else {
            (generate_password(), true)
        };
        let hash = hash_password(&password)?;
        self.catalog.insert(User {
            id: 0,
            username: "admin".into(),
            role: Role::Admin,
            password_hash: hash,
            disabled: false,
            created_us: self.clock.now_us(),
        })?;
        self.audit.record(None, "system", "user.create", Some("user:admin".into()), None, None, "ok");
        tracing::info!("created the user `admin` (first start)");
        Ok(generated.then_some(password))
    }

    /// Checks a user name and password, throttled per address and user name.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        remote: Option<String>,
    ) -> Result<LoginResponse, AuthError> {
        let key = (remote.clone().unwrap_or_default(), username.to_owned());
        let (lockout_secs, max_failures, session_hours) = {
            let c = self.cfg.read();
            (c.login_lockout_secs, c.login_max_failures, c.session_hours)
        };
        let window = Duration::from_secs(lockout_secs);
        {
            let mut failures = self.failures.lock();
            let list = failures.entry(key.clone()).or_default();
            while list.front().is_some_and(|t| t.elapsed() > window) {
                list.pop_front();
            }
            if list.len() >= max_failures as usize {
                let wait = list.front().map_or(window, |t| window.saturating_sub(t.elapsed()));
                self.audit.record(remote, username, "login", None, None, None, "throttled");
                return Err(AuthError::LoginThrottled { wait_secs: wait.as_secs().max(1) });
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
                self.audit.record(remote, username, "login", None, None, None, "invalid credentials");
                return Err(AuthError::InvalidCredentials);
            }
        };
        self.failures.lock().remove(&key);
        let secret = new_secret();
        let now = self.clock.now_us();
        let expires = now + session_hours as i64 * 3_600_000_000;
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
        self.audit.record(remote, username, "login", None, None, None, "ok");
        Ok(LoginResponse { token: secret, username: user.username, role: user.role, expires_us: expires })
    }

    /// Issues an API token for a user; returns the record and the secret (shown once).
    pub fn issue_token(&self, user_id: i64, name: &str, expires_us: Option<i64>) -> Result<(Token, String), AuthError> {
        let secret = new_secret();
        let token = self.catalog.insert(Token {
            id: 0,
            name: name.to_owned(),
            kind: TokenKind::Api,
            user_id,
            hash: sha256_hex(&secret),
            created_us: self.clock.now_us(),
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
        self.principal_of(&token)
    }

    /// Who `token` stands for now: none once it has expired or its user is disabled or gone.
    fn principal_of(&self, token: &Token) -> Option<Principal> {
        if token.expires_us.is_some_and(|e| e <= self.clock.now_us()) {
            return None;
        }
        let user = self.catalog.get::<User>(token.user_id).filter(|u| !u.disabled)?;
        Some(Principal { user_id: user.id, username: user.username, role: user.role, token_id: token.id, remote: None })
    }

    /// A single-use ticket that opens one WebSocket connection as `who`'s token, within
    /// `auth.ws_ticket_secs` (see the module documentation).
    pub fn ws_ticket(&self, who: &Principal) -> Result<Issued, AuthError> {
        Ok(self.tickets.issue(Holder { token_id: who.token_id, user_id: who.user_id })?)
    }

    /// How long a WebSocket ticket lives.
    pub fn ws_ticket_ttl(&self) -> Duration {
        self.tickets.ttl()
    }

    /// Uses a WebSocket ticket up: the principal of the token that asked for it, if the ticket is
    /// unused and unexpired and that token still stands (not revoked or expired, its user
    /// enabled). Whatever the answer, the ticket opens nothing afterwards.
    pub fn redeem_ws_ticket(&self, ticket: &str) -> Option<Principal> {
        let holder = self.tickets.redeem(ticket)?;
        let token = self
            .catalog
            .get::<Token>(holder.token_id)
            .or_else(|| self.unstored.lock().iter().find(|t| t.id == holder.token_id).cloned())
            .filter(|t| t.user_id == holder.user_id)?;
        self.principal_of(&token)
    }

    /// Deletes a token (logout, revocation).
    pub fn revoke(&self, token_id: i64) -> Result<bool, AuthError> {
        if token_id < 0 {
            let mut unstored = self.unstored.lock();
            let before = unstored.len();
            unstored.retain(|t| t.id != token_id);
            return Ok(unstored.len() < before);
        }
        Ok(self.catalog.delete::<Token>(token_id)?)
    }

    /// Deletes every token of a user (password change, user disabled or deleted) except `keep`.
    pub fn revoke_user_tokens(&self, user_id: i64, keep: Option<i64>) -> Result<(), AuthError> {
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

    /// Whether the token `token_id` still stands: not revoked or expired, its user not disabled
    /// (a WebSocket connection checks this while it lasts).
    pub fn token_valid(&self, token_id: i64) -> bool {
        let now = self.clock.now_us();
        let token = self.catalog.get::<Token>(token_id);
        token.is_some_and(|t| {
            t.expires_us.is_none_or(|e| e > now) && self.catalog.get::<User>(t.user_id).is_some_and(|u| !u.disabled)
        })
    }

    /// Checks the user's current password (for a password change).
    pub async fn verify_user_password(&self, user_id: i64, password: &str) -> bool {
        let Some(user) = self.catalog.get::<User>(user_id) else { return false };
        let pw = password.to_owned();
        tokio::task::spawn_blocking(move || verify_password(&pw, &user.password_hash)).await.unwrap_or(false)
    }
}

fn dummy_hash() -> String {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password("not a password of anyone").unwrap_or_default()).clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use t3_core::clock::ManualClock;

    /// A ticket opens as the token that asked for it, once, within its lifetime, and only while
    /// that token and its user still stand.
    #[test]
    fn ws_tickets_stand_for_their_token() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Arc::new(Catalog::open(dir.path()).unwrap());
        crate::model::register(&catalog).unwrap();
        let clock = ManualClock::new(1_700_000_000_000_000);
        let cfg = AuthConfig { ws_ticket_secs: 5, ..AuthConfig::default() };
        let auth = Auth::new(catalog.clone(), cfg, clock.clone());
        assert_eq!(auth.ws_ticket_ttl(), Duration::from_secs(5));
        let user = catalog
            .insert(User {
                id: 0,
                username: "olga".into(),
                role: Role::Operator,
                password_hash: String::new(),
                disabled: false,
                created_us: clock.now_us(),
            })
            .unwrap();
        let (token, secret) = auth.issue_token(user.id, "script", None).unwrap();
        let who = auth.authenticate(&secret).unwrap();

        let t = auth.ws_ticket(&who).unwrap();
        assert_eq!(t.expires_us, clock.now_us() + 5_000_000);
        assert!(auth.authenticate(&t.ticket).is_none(), "a ticket is no bearer token");
        let p = auth.redeem_ws_ticket(&t.ticket).expect("the ticket opens");
        assert_eq!((p.user_id, p.username.as_str(), p.role, p.token_id), (user.id, "olga", Role::Operator, token.id));
        assert!(auth.redeem_ws_ticket(&t.ticket).is_none(), "only once");
        assert!(auth.redeem_ws_ticket(&secret).is_none(), "a bearer token is no ticket");

        let t = auth.ws_ticket(&who).unwrap();
        clock.advance(5_000_000);
        assert!(auth.redeem_ws_ticket(&t.ticket).is_none(), "expired");

        // The user's role now, not when the ticket was issued.
        let t = auth.ws_ticket(&who).unwrap();
        catalog.put(User { role: Role::Viewer, ..catalog.get::<User>(user.id).unwrap() }).unwrap();
        assert_eq!(auth.redeem_ws_ticket(&t.ticket).map(|p| p.role), Some(Role::Viewer));

        let disabled = auth.ws_ticket(&who).unwrap();
        catalog.put(User { disabled: true, ..catalog.get::<User>(user.id).unwrap() }).unwrap();
        assert!(auth.redeem_ws_ticket(&disabled.ticket).is_none(), "the user is disabled");
        catalog.put(User { disabled: false, ..catalog.get::<User>(user.id).unwrap() }).unwrap();

        let revoked = auth.ws_ticket(&who).unwrap();
        auth.revoke(token.id).unwrap();
        assert!(auth.redeem_ws_ticket(&revoked.ticket).is_none(), "the token was revoked");
    }

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("correct horse").unwrap();
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse", &h));
        assert!(!verify_password("correct horse", "not a hash"));
    }
}
