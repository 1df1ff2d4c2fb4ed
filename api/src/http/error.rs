//! The API's one error type: a status code and a JSON body `{"error": {"code", "message"}}`.
//! Client errors pass their message through; internal errors are logged with detail and shown
//! to clients without it.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use t3_storage::Error as StorageError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub retry_after_secs: Option<u64>,
    /// Where in a text the error is (a program's line and column), for the body.
    pub place: Option<(u32, u32)>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// A stable, machine-readable code such as `invalid_json` or `wal_poisoned`.
    pub code: String,
    /// What went wrong, for a person.
    pub message: String,
    /// The line (1-based) of the text the error is in, for errors in a text (a program's
    /// `syntax_error`, `unknown_point`); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// The column (1-based, in characters), with `line`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
}

impl ErrorDetail {
    /// A code and a message, without a place.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorDetail { code: code.into(), message: message.into(), line: None, column: None }
    }
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), retry_after_secs: None, place: None }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// 409: the request is valid as the OpenAPI document states it, but conflicts with the
    /// server's state or configuration (a point's range, the clock, a configured limit).
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error; see the server log")
    }
}

/// A storage error: the engine says whose fault it is ([`StorageError::is_client_error`]: 4xx) and
/// whether the same request may succeed later ([`StorageError::is_retryable`]: 503 with
/// `Retry-After`); each variant only picks its code (and status within its class).
impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        if e.is_client_error() {
            let (status, code) = match &e {
                StorageError::InvalidSample { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_sample"),
                // Valid samples and queries that the clock or the configuration refuse now.
                StorageError::AheadOfClock { .. } => (StatusCode::CONFLICT, "ts_in_future"),
                StorageError::TooManyDays { .. } => (StatusCode::CONFLICT, "too_many_days"),
                StorageError::InvalidQuery(_) => (StatusCode::BAD_REQUEST, "invalid_query"),
                StorageError::TooManyRows(_) => (StatusCode::CONFLICT, "too_many_rows"),
                // Also retryable, but the query as asked is what takes too long.
                StorageError::Timeout(_) => (StatusCode::UNPROCESSABLE_ENTITY, "query_timeout"),
                _ => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"),
            };
            return ApiError::new(status, code, e.to_string());
        }
        if e.is_retryable() {
            let (code, retry_after_secs) = match &e {
                StorageError::WalUnavailable(_) => ("writes_unavailable", 2),
                // The disk needs someone to free space (or retention to run): not seconds.
                StorageError::DiskFull(_) => ("disk_full", 30),
                StorageError::CatalogUnavailable(_) => ("catalog_unavailable", 5),
                StorageError::Backlog { .. } => ("storage_backlog", 5),
                StorageError::ShuttingDown => ("shutting_down", 5),
                _ => ("storage_unavailable", 5),
            };
            return ApiError {
                retry_after_secs: Some(retry_after_secs),
                ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, e.to_string())
            };
        }
        match &e {
            // Neither the client's fault nor worth retrying soon: writes are refused until the
            // server restarts, which is a service unavailable, not a bug (500).
            StorageError::Poisoned(_) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "wal_poisoned", e.to_string()),
            _ => ApiError::internal(&e),
        }
    }
}

/// The authentication service: throttled logins 429 (with `Retry-After`), wrong credentials
/// 401, a weak password 422.
impl From<crate::service::auth::AuthError> for ApiError {
    fn from(e: crate::service::auth::AuthError) -> Self {
        use crate::service::auth::AuthError;
        match e {
            AuthError::LoginThrottled { wait_secs } => ApiError {
                retry_after_secs: Some(wait_secs),
                ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "login_throttled", e.to_string())
            },
            AuthError::InvalidCredentials => {
                ApiError::new(StatusCode::UNAUTHORIZED, "invalid_credentials", e.to_string())
            }
            AuthError::WeakPassword => ApiError::unprocessable("weak_password", e.to_string()),
            AuthError::Hash(_) => ApiError::internal(&e),
            AuthError::Storage(e) => e.into(),
            AuthError::Tickets(crate::service::tickets::TicketError::Full { retry_after_secs }) => ApiError {
                retry_after_secs: Some(retry_after_secs),
                ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "too_many_tickets", e.to_string())
            },
        }
    }
}

/// Writes and relinquishes (REST and WebSocket alike): what the request asks that the point's
/// state or configuration refuses 409 (a value outside the point's range too), a configuration
/// point written by a non-admin 403, a request outside the rules 422, too many writes 429 (with
/// `Retry-After`), a device that refused or did not answer 502.
impl From<crate::service::control::ControlError> for ApiError {
    fn from(e: crate::service::control::ControlError) -> Self {
        use crate::service::control::ControlError as E;
        match e {
            E::NotFound(_) => ApiError::not_found(e.to_string()),
            E::NotWritable(_) => ApiError::conflict("not_writable", e.to_string()),
            E::ReadOnly(_) => ApiError::conflict("read_only", e.to_string()),
            E::InputInAuto(_) => ApiError::conflict("input_in_auto", e.to_string()),
            E::AdminOnly { .. } => ApiError::new(StatusCode::FORBIDDEN, "forbidden", e.to_string()),
            E::OutsideSpan(_) => ApiError::conflict("invalid_value", e.to_string()),
            E::PointInAuto => ApiError::conflict("point_in_auto", e.to_string()),
            E::OutOfRange(_) => ApiError::conflict("invalid_value", e.to_string()),
            E::NotFinite => ApiError::unprocessable("invalid_value", e.to_string()),
            E::InvalidPriority(_) => ApiError::unprocessable("invalid_priority", e.to_string()),
            E::InvalidExpiry => ApiError::unprocessable("invalid_expiry", e.to_string()),
            E::InvalidCommand(_) => ApiError::unprocessable("invalid_command", e.to_string()),
            E::RateLimited { retry_after_secs, .. } => ApiError {
                retry_after_secs: Some(retry_after_secs),
                ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "write_rate_limited", e.to_string())
            },
            E::DeviceWriteFailed(_) => ApiError::new(StatusCode::BAD_GATEWAY, "device_write_failed", e.to_string()),
            E::NoAutoManual(_) => ApiError::conflict("no_auto_manual", e.to_string()),
            E::Storage(e) => e.into(),
        }
    }
}

/// Hardware sync: no such device 404, a device not polled or without T3 points 409, a device that
/// did not answer 502, a choice naming a point the device does not sync 409 (it depends on the
/// device, not on the request's form).
impl From<crate::service::sync::SyncError> for ApiError {
    fn from(e: crate::service::sync::SyncError) -> Self {
        use crate::service::sync::SyncError as E;
        match e {
            E::UnknownDevice(_) => ApiError::not_found(e.to_string()),
            E::NotPolled(_) => ApiError::conflict("device_not_polled", e.to_string()),
            E::NotT3(_) => ApiError::conflict("nothing_to_sync", e.to_string()),
            E::Unreadable { .. } => ApiError::new(StatusCode::BAD_GATEWAY, "device_unreadable", e.to_string()),
            E::InvalidChoice(_) => ApiError::conflict("invalid_choice", e.to_string()),
            E::Storage(e) => e.into(),
        }
    }
}

/// Alarm acknowledgements: no such alarm 404, one that takes none 409.
impl From<crate::service::alarms::AlarmError> for ApiError {
    fn from(e: crate::service::alarms::AlarmError) -> Self {
        use crate::service::alarms::AlarmError;
        match e {
            AlarmError::NotFound(_) => ApiError::not_found(e.to_string()),
            AlarmError::CannotAcknowledge(_) => ApiError::conflict("cannot_acknowledge", e.to_string()),
            AlarmError::Storage(e) => e.into(),
        }
    }
}

/// Backups: a base manifest that cannot be used 400; the storage engine's errors as it says.
impl From<crate::service::backup::BackupError> for ApiError {
    fn from(e: crate::service::backup::BackupError) -> Self {
        use crate::service::backup::BackupError;
        match e {
            BackupError::BadBase(_) => ApiError::bad_request("invalid_base", e.to_string()),
            BackupError::Storage(e) => e.into(),
            BackupError::Refused(_) | BackupError::Io { .. } => ApiError::internal(e),
        }
    }
}

/// Plan uploads: a type the plan does not take 415, a body that is not its type 422.
impl From<crate::service::notify::NotifyError> for ApiError {
    fn from(e: crate::service::notify::NotifyError) -> Self {
        match e {
            crate::service::notify::NotifyError::UnknownChannel(_) => ApiError::not_found(e.to_string()),
        }
    }
}

impl From<crate::service::floorplans::PlanError> for ApiError {
    fn from(e: crate::service::floorplans::PlanError) -> Self {
        use crate::service::floorplans::PlanError;
        match e {
            PlanError::UnsupportedType(_) => {
                ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", e.to_string())
            }
            PlanError::NotAnImage(_) => ApiError::unprocessable("invalid_image", e.to_string()),
        }
    }
}

/// A device definition refused by itself 422, beside the other devices 409.
impl From<crate::service::devices::DeviceCheck> for ApiError {
    fn from(e: crate::service::devices::DeviceCheck) -> Self {
        use crate::service::devices::DeviceCheck;
        match e {
            DeviceCheck::Invalid(m) => ApiError::unprocessable("invalid_device", m),
            DeviceCheck::Conflict(m) => ApiError::conflict("device_conflict", m),
        }
    }
}

/// Device changes: no such device, building, floor or room 404; a definition refused as
/// [`crate::service::devices::DeviceCheck`] says; a place that does not hold together, a device of
/// the configuration file or a name another device polls under 409; a device that cannot be
/// polled 422; the point-id registry not written 500.
impl From<crate::service::devices::DeviceError> for ApiError {
    fn from(e: crate::service::devices::DeviceError) -> Self {
        use crate::service::devices::{DeviceError as E, PlaceError};
        match e {
            E::NotFound(_) => ApiError::not_found(e.to_string()),
            E::Check(c) => c.into(),
            E::Place(PlaceError::Missing(m)) => ApiError::not_found(m),
            E::Place(PlaceError::Apart(m)) => ApiError::conflict("invalid_place", m),
            E::DefinedInConfig(_) | E::DeleteFromConfig(_) => ApiError::conflict("defined_in_config", e.to_string()),
            E::AlreadyPolled(m) => ApiError::conflict("device_conflict", m),
            E::NotPollable(m) => ApiError::unprocessable("invalid_device", m),
            E::Registry(_) => ApiError::internal(&e),
            E::Storage(e) => e.into(),
        }
    }
}

/// Programs: no such program or device 404, a program without a device 422, a text that does
/// not parse or bind 422 with its line and column.
impl From<crate::service::programs::ProgramError> for ApiError {
    fn from(e: crate::service::programs::ProgramError) -> Self {
        use crate::service::programs::ProgramError as E;
        match e {
            E::NotFound(_) | E::UnknownDevice(_) => ApiError::not_found(e.to_string()),
            E::NoDevice => ApiError::unprocessable("invalid_program", e.to_string()),
            E::Invalid(p) => {
                ApiError { place: Some((p.line, p.column)), ..ApiError::unprocessable(p.code, p.to_string()) }
            }
            E::Storage(e) => e.into(),
        }
    }
}

/// A value the model refuses (a name, a time zone): 422 with its code.
impl From<crate::model::check::Invalid> for ApiError {
    fn from(e: crate::model::check::Invalid) -> Self {
        ApiError::unprocessable(e.code, e.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (line, column) = self.place.unzip();
        let body =
            ErrorBody { error: ErrorDetail { code: self.code.to_string(), message: self.message, line, column } };
        let mut resp = (self.status, Json(body)).into_response();
        if let Some(s) = self.retry_after_secs {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// A request body that could not be read: 413 past `server.max_body_bytes`, else 400 with `code`.
pub fn body_error(status: StatusCode, text: String, code: &'static str) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", format!("request body too large: {text}"))
    } else {
        ApiError::bad_request(code, text)
    }
}

/// Gives the plain-text rejections of axum's extractors (a path segment or query string that does
/// not parse, an unknown query parameter, a body over the limit) the API's JSON error body, so that
/// every error a client gets has one shape. JSON answers pass untouched.
pub async fn json_rejections(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let resp = next.run(req).await;
    let plain = resp.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"text/plain"));
    if !resp.status().is_client_error() || !plain {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024).await.map(|b| String::from_utf8_lossy(&b).into_owned());
    let message = match text {
        Ok(t) if !t.trim().is_empty() => t,
        _ => parts.status.canonical_reason().unwrap_or("invalid request").to_owned(),
    };
    let code = match parts.status {
        StatusCode::BAD_REQUEST => "invalid_parameter",
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        _ => "invalid_request",
    };
    let mut out = ApiError::new(parts.status, code, message).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().append(name, value.clone());
        }
    }
    out
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(e: axum::extract::rejection::JsonRejection) -> Self {
        body_error(e.status(), e.body_text(), "invalid_json")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every storage error keeps the status, code and `Retry-After` it had before the mapping
    /// followed storage's own classification.
    #[test]
    fn storage_errors_keep_their_status_and_code() {
        use StorageError as E;
        let cases = [
            (E::InvalidSample { index: 0, reason: "r".into() }, 422, "invalid_sample", None),
            (E::AheadOfClock { index: 0, reason: "r".into() }, 409, "ts_in_future", None),
            (E::TooManyDays { days: 3, limit: 2 }, 409, "too_many_days", None),
            (E::InvalidQuery("q".into()), 400, "invalid_query", None),
            (E::TooManyRows(5), 409, "too_many_rows", None),
            (E::Timeout(5), 422, "query_timeout", None),
            (E::Poisoned("p".into()), 503, "wal_poisoned", None),
            (E::WalUnavailable("w".into()), 503, "writes_unavailable", Some(2)),
            (E::DiskFull("d".into()), 503, "disk_full", Some(30)),
            (E::CatalogUnavailable("c".into()), 503, "catalog_unavailable", Some(5)),
            (E::Backlog { buffered: 2, limit: 1 }, 503, "storage_backlog", Some(5)),
            (E::ShuttingDown, 503, "shutting_down", Some(5)),
            (E::Internal("a bug".into()), 500, "internal", None),
        ];
        for (e, status, code, retry_after) in cases {
            let what = format!("{e:?}");
            let a = ApiError::from(e);
            assert_eq!((a.status.as_u16(), a.code, a.retry_after_secs), (status, code, retry_after), "{what}");
        }
    }
}
