//! Trend logs: T3000's monitors. A trend log names points and the interval they are recorded at
//! (every poll, or on change past a deadband); while it exists the collector records them so
//! (`service::trendlogs`). The UI also opens one as a saved chart view (`range`).

use crate::http::AppState;
use crate::http::error::{ApiError, ApiResult, ErrorBody};
use crate::http::routes::json_body;
use crate::model::program::TrendLog;
use crate::service::auth::Principal;
use crate::service::trendlogs::{TrendLogError, TrendLogSpec};
use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use serde::Deserialize;

/// Body of POST / PUT.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrendLogBody {
    #[schema(schema_with = crate::http::rules::name_schema)]
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// 1 to 64 points (a point named twice counts once).
    #[schema(min_items = 1, max_items = 64)]
    pub point_ids: Vec<u32>,
    /// The points are recorded at least this often, 1 s ..= 24 h; a minute when absent. A point
    /// polled more slowly is polled this often while the log exists; one polled faster keeps its
    /// rate.
    #[serde(default = "minute")]
    #[schema(minimum = 1_000, maximum = 86_400_000)]
    pub interval_ms: u64,
    /// Record a polled value only when it moved past `deadband` since the last recorded one;
    /// every polled value when false (the default). A point in several trend logs is recorded
    /// on change only when every one of them says so.
    #[serde(default)]
    pub on_change: bool,
    /// The deadband of on-change recording, absolute, in each point's units; 0 (the default)
    /// records any change. Unused without `on_change`; the smallest of a point's trend logs applies.
    #[serde(default)]
    #[schema(minimum = 0)]
    pub deadband: f64,
    /// The time range a chart of this log opens with: a span back from now, `1m` to `3660d` (`24h`, `7d`, `365d`).
    #[serde(default)]
    #[schema(schema_with = crate::http::rules::optional_trend_range)]
    pub range: Option<String>,
}

fn minute() -> u64 {
    60_000
}

impl From<TrendLogError> for ApiError {
    fn from(e: TrendLogError) -> Self {
        match e {
            TrendLogError::Invalid(e) => e.into(),
            TrendLogError::UnknownPoint(_) => ApiError::new(StatusCode::NOT_FOUND, "unknown_point", e.to_string()),
            TrendLogError::NotFound(_) => ApiError::not_found(e.to_string()),
            TrendLogError::Storage(e) => e.into(),
        }
    }
}

fn spec(b: TrendLogBody) -> ApiResult<TrendLogSpec> {
    if let Some(r) = &b.range {
        crate::http::rules::TREND_RANGE
            .parse(r)
            .map_err(|e| ApiError::unprocessable("invalid_trendlog", format!("range: {e}")))?;
    }
    Ok(TrendLogSpec {
        name: b.name,
        description: b.description,
        point_ids: b.point_ids,
        interval_ms: b.interval_ms,
        on_change: b.on_change,
        deadband: b.deadband,
        range: b.range,
    })
}

/// Every trend log.
#[utoipa::path(get, path = "/api/t3000/trendlogs", tag = "trendlogs", responses((status = 200, body = [TrendLog])))]
pub async fn list(State(state): State<AppState>) -> Json<Vec<TrendLog>> {
    Json(state.trendlogs.list())
}

/// One trend log.
#[utoipa::path(get, path = "/api/t3000/trendlogs/{id}", tag = "trendlogs", params(("id" = i64, Path)),
    responses((status = 200, body = TrendLog), (status = 404, body = ErrorBody)))]
pub async fn get_one(State(state): State<AppState>, Path(id): Path<i64>) -> ApiResult<Json<TrendLog>> {
    Ok(Json(state.trendlogs.get(id)?))
}

/// Creates a trend log: its points are recorded at its interval (and on change, if it says so)
/// from now on. Audited as `trendlog.create`.
#[utoipa::path(post, path = "/api/t3000/trendlogs", tag = "trendlogs", request_body = TrendLogBody,
    responses((status = 201, body = TrendLog), (status = 400, body = ErrorBody),
        (status = 404, description = "No such point (`unknown_point`)", body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<TrendLog>)> {
    let t = state.trendlogs.create(&who.issuer(), spec(json_body(&body)?)?)?;
    Ok((StatusCode::CREATED, Json(t)))
}

/// Changes a trend log; its points are recorded as it says now. Audited as `trendlog.update`.
#[utoipa::path(put, path = "/api/t3000/trendlogs/{id}", tag = "trendlogs", params(("id" = i64, Path)), request_body = TrendLogBody,
    responses((status = 200, body = TrendLog), (status = 400, body = ErrorBody),
        (status = 404, description = "No such trend log, or no such point (`unknown_point`)", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<i64>,
    body: axum::body::Bytes,
) -> ApiResult<Json<TrendLog>> {
    let svc = &state.trendlogs;
    svc.get(id)?;
    Ok(Json(svc.update(&who.issuer(), id, spec(json_body(&body)?)?)?))
}

/// Deletes a trend log (the points and their history stay): its points are recorded as their other
/// trend logs, or their own settings, say. Audited as `trendlog.delete`.
#[utoipa::path(delete, path = "/api/t3000/trendlogs/{id}", tag = "trendlogs", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    state.trendlogs.delete(&who.issuer(), id)?;
    Ok(StatusCode::NO_CONTENT)
}
