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
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), retry_after_secs: None }
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

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        match &e {
            StorageError::InvalidSample { .. } => ApiError::unprocessable("invalid_sample", e.to_string()),
            // Valid samples and queries that the clock or the configuration refuse now.
            StorageError::AheadOfClock { .. } => ApiError::conflict("ts_in_future", e.to_string()),
            StorageError::TooManyDays { .. } => ApiError::conflict("too_many_days", e.to_string()),
            StorageError::InvalidQuery(_) => ApiError::bad_request("invalid_query", e.to_string()),
            StorageError::TooManyRows(_) => ApiError::conflict("too_many_rows", e.to_string()),
            StorageError::Timeout(_) => ApiError::unprocessable("query_timeout", e.to_string()),
            StorageError::Poisoned(_) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "wal_poisoned", e.to_string()),
            StorageError::WalUnavailable(_) => ApiError {
                retry_after_secs: Some(2),
                ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "writes_unavailable", e.to_string())
            },
            StorageError::CatalogUnavailable(_) => ApiError {
                retry_after_secs: Some(5),
                ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "catalog_unavailable", e.to_string())
            },
            StorageError::Backlog { .. } => ApiError {
                retry_after_secs: Some(5),
                ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "storage_backlog", e.to_string())
            },
            StorageError::ShuttingDown => ApiError {
                retry_after_secs: Some(5),
                ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", e.to_string())
            },
            _ => ApiError::internal(&e),
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
        let body = ErrorBody { error: ErrorDetail { code: self.code.to_string(), message: self.message } };
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
