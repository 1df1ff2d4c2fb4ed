//! Login, logout, password change, users, API tokens and the audit log.

use crate::http::AppState;
use crate::http::error::{ApiError, ApiResult, ErrorBody};
use crate::http::routes::{Page, json_body};
use crate::http::routes::{found, json};
use crate::model::check::check_name;
use crate::model::user::{Role, Token, TokenKind, User};
use crate::service::auth::{LoginResponse, Principal, check_password, hash_password};
use axum::Json;
use axum::extract::{ConnectInfo, Extension, Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use t3_storage::catalog::{AuditEntry, AuditFilter};

/// Body of a login.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

/// Exchanges a user name and password for a bearer token. Repeated failures from one address
/// for one user get 429 for `auth.login_lockout_secs`.
#[utoipa::path(post, path = "/api/t3000/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)),
    security(()))]
pub async fn login(
    State(state): State<AppState>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    body: axum::body::Bytes,
) -> ApiResult<Json<LoginResponse>> {
    let req: LoginRequest = json_body(&body)?;
    let remote = connect.map(|c| c.0.0.ip().to_string());
    Ok(Json(state.auth.login(&req.username, &req.password, remote).await?))
}

/// Ends the session whose token made this request; the token stops working at once.
#[utoipa::path(post, path = "/api/t3000/auth/logout", tag = "auth", responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn logout(State(state): State<AppState>, Extension(who): Extension<Principal>) -> ApiResult<StatusCode> {
    state.auth.revoke(who.token_id)?;
    state.audit.record(who.remote.clone(), &who.actor(), "logout", None, None, None, "ok");
    Ok(StatusCode::NO_CONTENT)
}

/// Who the token belongs to.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Me {
    pub user_id: i64,
    pub username: String,
    pub role: Role,
}

/// The user the token belongs to, and their role.
#[utoipa::path(get, path = "/api/t3000/auth/me", tag = "auth", responses((status = 200, body = Me), (status = 401, body = ErrorBody)))]
pub async fn me(Extension(who): Extension<Principal>) -> Json<Me> {
    Json(Me { user_id: who.user_id, username: who.username, role: who.role })
}

/// A WebSocket ticket (`POST /api/t3000/ws/ticket`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WsTicket {
    /// Open `GET /api/t3000/ws?ticket=<ticket>` with it: it opens one connection, as the token
    /// that asked for it, and nothing after that.
    pub ticket: String,
    /// Seconds it stays valid (`auth.ws_ticket_secs`).
    pub expires_in_secs: u64,
    /// When it expires: epoch microseconds of the server's clock.
    pub expires_us: i64,
}

/// A single-use ticket for the live-update WebSocket, so that the bearer token never goes in a
/// URL (a browser cannot send `Authorization` with a WebSocket, and prints the URL of a connection
/// that fails). Connect to `GET /api/t3000/ws?ticket=<ticket>` right away: the ticket opens one
/// connection within `expires_in_secs` (`auth.ws_ticket_secs`, 30 s), with the identity and role
/// of the token that asked for it; used, expired or unknown, it is refused with 401. Ask for a
/// new one before each connection. At most 8 tickets wait per token and 32 per user (a new one
/// replaces the oldest), 4,096 in all (then 503 until some expire).
#[utoipa::path(post, path = "/api/t3000/ws/ticket", tag = "auth",
    responses(
        (status = 200, body = WsTicket),
        (status = 401, body = ErrorBody),
        (status = 503, description = "Too many tickets wait to be used (`too_many_tickets`), with `Retry-After`", body = ErrorBody),
    ))]
pub async fn ws_ticket(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> ApiResult<([(axum::http::HeaderName, &'static str); 1], Json<WsTicket>)> {
    let issued = state.auth.ws_ticket(&who)?;
    let body = WsTicket {
        ticket: issued.ticket,
        expires_in_secs: state.auth.ws_ticket_ttl().as_secs(),
        expires_us: issued.expires_us,
    };
    // A secret: no cache may keep it.
    Ok(([(axum::http::header::CACHE_CONTROL, "no-store")], Json(body)))
}

/// Body of a password change.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    /// 8 to 256 characters.
    #[schema(min_length = 8, max_length = 256)]
    pub new_password: String,
}

/// Changes the caller's password (the current one is required); every other session and token
/// of the user stops working.
#[utoipa::path(post, path = "/api/t3000/auth/password", tag = "auth", request_body = PasswordChange,
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn change_password(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    body: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    let req: PasswordChange = json_body(&body)?;
    if !state.auth.verify_user_password(who.user_id, &req.current_password).await {
        state.audit.record(
            who.remote.clone(),
            &who.actor(),
            "password.change",
            None,
            None,
            None,
            "wrong current password",
        );
        return Err(ApiError::new(StatusCode::FORBIDDEN, "wrong_password", "the current password is wrong"));
    }
    check_password(&req.new_password)?;
    let mut user = state.catalog.get::<User>(who.user_id).ok_or_else(|| ApiError::not_found("no such user"))?;
    user.password_hash = hash_password(&req.new_password)?;
    state.catalog.put(user)?;
    state.auth.revoke_user_tokens(who.user_id, Some(who.token_id))?;
    crate::http::routes::audit(&state, &who, "password.change", format!("user:{}", who.user_id), None, None);
    Ok(StatusCode::NO_CONTENT)
}

/// A user as the API shows it (never the password hash).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserView {
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub disabled: bool,
    pub created_us: i64,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        UserView { id: u.id, username: u.username, role: u.role, disabled: u.disabled, created_us: u.created_us }
    }
}

/// Body of POST /users.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    #[schema(schema_with = crate::http::rules::name_schema)]
    pub username: String,
    /// 8 to 256 characters.
    #[schema(min_length = 8, max_length = 256)]
    pub password: String,
    pub role: Role,
}

/// Body of PUT /users/{id}: what to change.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserChange {
    pub role: Option<Role>,
    /// A new password, 8 to 256 characters (admins reset passwords without the current one).
    #[schema(min_length = 8, max_length = 256)]
    pub password: Option<String>,
    pub disabled: Option<bool>,
}

/// Every user.
#[utoipa::path(get, path = "/api/t3000/users", tag = "users", responses((status = 200, body = [UserView]), (status = 403, body = ErrorBody)))]
pub async fn list_users(State(state): State<AppState>) -> Json<Vec<UserView>> {
    Json(state.catalog.list::<User>().into_iter().map(UserView::from).collect())
}

/// Adds a user.
#[utoipa::path(post, path = "/api/t3000/users", tag = "users", request_body = NewUser,
    responses((status = 201, body = UserView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_user(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<UserView>)> {
    let req: NewUser = json_body(&body)?;
    let username = check_name("user", &req.username)?;
    check_password(&req.password)?;
    if state.catalog.read::<User, _>(|u| u.values().any(|u| u.username == username)) {
        return Err(ApiError::new(StatusCode::CONFLICT, "exists", format!("a user \"{username}\" exists")));
    }
    let user = state.catalog.insert(User {
        id: 0,
        username,
        role: req.role,
        password_hash: hash_password(&req.password)?,
        disabled: false,
        created_us: state.now_us(),
    })?;
    let view = UserView::from(user);
    crate::http::routes::audit(&state, &who, "user.create", format!("user:{}", view.id), None, json(&view));
    Ok((StatusCode::CREATED, Json(view)))
}

fn user(state: &AppState, id: i64) -> ApiResult<User> {
    found::<User>(state, id, "user")
}

/// Whether removing admin rights from `id` would leave no enabled admin.
fn last_admin(state: &AppState, id: i64) -> bool {
    state.catalog.read::<User, _>(|u| !u.values().any(|u| u.id != id && u.role == Role::Admin && !u.disabled))
}

/// Changes a user's role, password or disabled flag. A changed password or a disabled user ends
/// their sessions.
#[utoipa::path(put, path = "/api/t3000/users/{id}", tag = "users", params(("id" = i64, Path)), request_body = UserChange,
    responses((status = 200, body = UserView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_user(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<i64>,
    body: axum::body::Bytes,
) -> ApiResult<Json<UserView>> {
    let req: UserChange = json_body(&body)?;
    let old = user(&state, id)?;
    let mut new = old.clone();
    if let Some(role) = req.role {
        new.role = role;
    }
    if let Some(d) = req.disabled {
        new.disabled = d;
    }
    if (new.role != Role::Admin || new.disabled) && old.role == Role::Admin && last_admin(&state, id) {
        return Err(ApiError::new(StatusCode::CONFLICT, "last_admin", "this is the last enabled admin"));
    }
    if let Some(p) = &req.password {
        check_password(p)?;
        new.password_hash = hash_password(p)?;
    }
    state.catalog.put(new.clone())?;
    if req.password.is_some() || new.disabled || new.role != old.role {
        state.auth.revoke_user_tokens(id, (id == who.user_id).then_some(who.token_id))?;
    }
    let (o, n) = (UserView::from(old), UserView::from(new));
    crate::http::routes::audit(&state, &who, "user.update", format!("user:{id}"), json(&o), json(&n));
    Ok(Json(n))
}

/// Deletes a user and their sessions and tokens.
#[utoipa::path(delete, path = "/api/t3000/users/{id}", tag = "users", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_user(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let old = user(&state, id)?;
    if old.role == Role::Admin && last_admin(&state, id) {
        return Err(ApiError::new(StatusCode::CONFLICT, "last_admin", "this is the last enabled admin"));
    }
    state.auth.revoke_user_tokens(id, None)?;
    state.catalog.delete::<User>(id)?;
    crate::http::routes::audit(&state, &who, "user.delete", format!("user:{id}"), json(UserView::from(old)), None);
    Ok(StatusCode::NO_CONTENT)
}

/// A token as the API lists it (never the secret).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenView {
    pub id: i64,
    pub name: String,
    pub kind: TokenKind,
    pub user_id: i64,
    pub created_us: i64,
    pub expires_us: Option<i64>,
}

impl From<Token> for TokenView {
    fn from(t: Token) -> Self {
        TokenView {
            id: t.id,
            name: t.name,
            kind: t.kind,
            user_id: t.user_id,
            created_us: t.created_us,
            expires_us: t.expires_us,
        }
    }
}

/// Body of POST /tokens.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// What the token is for (`bms-gateway`).
    #[schema(schema_with = crate::http::rules::name_schema)]
    pub name: String,
    /// The user it acts as (its role applies); the caller when absent.
    pub user_id: Option<i64>,
    /// Lifetime in days, 1 to 36,500; none = until revoked.
    #[schema(minimum = 1, maximum = 36_500)]
    pub expires_in_days: Option<u32>,
}

/// A new token with its secret, shown this once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IssuedToken {
    pub token: String,
    #[serde(flatten)]
    pub info: TokenView,
}

/// Every session and API token (without secrets).
#[utoipa::path(get, path = "/api/t3000/tokens", tag = "users", responses((status = 200, body = [TokenView])))]
pub async fn list_tokens(State(state): State<AppState>) -> Json<Vec<TokenView>> {
    Json(state.auth.tokens().into_iter().map(TokenView::from).collect())
}

/// Issues an API token for a machine.
#[utoipa::path(post, path = "/api/t3000/tokens", tag = "users", request_body = NewToken,
    responses((status = 201, body = IssuedToken), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_token(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<IssuedToken>)> {
    let req: NewToken = json_body(&body)?;
    let name = check_name("token", &req.name)?;
    if req.expires_in_days.is_some_and(|d| !crate::http::rules::TOKEN_DAYS.contains(&d)) {
        return Err(ApiError::unprocessable("invalid_expiry", "expires_in_days must be 1 to 36500"));
    }
    let user_id = req.user_id.unwrap_or(who.user_id);
    user(&state, user_id)?;
    let expires = req.expires_in_days.map(|d| state.now_us() + i64::from(d) * 86_400_000_000);
    let (token, secret) = state.auth.issue_token(user_id, &name, expires)?;
    let info = TokenView::from(token);
    crate::http::routes::audit(&state, &who, "token.create", format!("token:{}", info.id), None, json(&info));
    Ok((StatusCode::CREATED, Json(IssuedToken { token: secret, info })))
}

/// Revokes a session or API token at once.
#[utoipa::path(delete, path = "/api/t3000/tokens/{id}", tag = "users", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_token(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    if !state.auth.revoke(id)? {
        return Err(ApiError::not_found(format!("no token {id}")));
    }
    crate::http::routes::audit(&state, &who, "token.delete", format!("token:{id}"), None, None);
    Ok(StatusCode::NO_CONTENT)
}

/// Filters of the audit log.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// From this time (RFC 3339, epoch microseconds, `now-7d`).
    #[param(value_type = Option<crate::http::rules::InstantParam>, inline)]
    pub from: Option<String>,
    #[param(value_type = Option<crate::http::rules::InstantParam>, inline)]
    pub to: Option<String>,
    /// A user name.
    pub actor: Option<String>,
    /// An action or its prefix (`point.`, `login`).
    pub action: Option<String>,
    /// `point:12`, `device:3`, ...
    pub target: Option<String>,
    /// Entries older than this seq (the next page).
    pub before_seq: Option<i64>,
    #[param(value_type = Option<crate::http::rules::LimitParam>, inline)]
    pub limit: Option<usize>,
}

/// The audit log, newest first: who did what, when, from where, old -> new, and the result.
#[utoipa::path(get, path = "/api/t3000/audit", tag = "users", params(AuditQuery),
    responses((status = 200, body = [Object]), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn audit(State(state): State<AppState>, Query(q): Query<AuditQuery>) -> ApiResult<Json<Vec<AuditEntry>>> {
    let page = Page::new(None, q.limit)?;
    let filter = AuditFilter {
        from_us: crate::http::routes::optional_instant(q.from.as_deref(), "from", state.now_us())?,
        to_us: crate::http::routes::optional_instant(q.to.as_deref(), "to", state.now_us())?,
        actor: q.actor,
        action: q.action,
        target: q.target,
        limit: page.limit,
        before_seq: q.before_seq,
    };
    Ok(Json(state.catalog.audit(&filter)?))
}
