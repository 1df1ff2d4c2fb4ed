//! Trend logs: named sets of points with an interval, as T3000's monitors define them. Every
//! point is recorded by the collector at its own poll interval anyway; a trend log names the points
//! that belong together and the interval to chart and export them at (the bucket of history
//! requests).

use crate::http::AppState;
use crate::http::error::{ApiError, ApiResult, ErrorBody};
use crate::http::routes::json_body;
use crate::http::routes::{audit, found, json};
use crate::model::check::check_name;
use crate::model::program::TrendLog;
use crate::service::auth::Principal;
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
    /// 1 to 64 points.
    #[schema(min_items = 1, max_items = 64)]
    pub point_ids: Vec<u32>,
    /// Sampling interval, 1 s ..= 24 h; a minute when absent.
    #[serde(default = "minute")]
    #[schema(minimum = 1_000, maximum = 86_400_000)]
    pub interval_ms: u64,
    /// The time range a chart of this log opens with: a span back from now, `1m` to `3660d` (`24h`, `7d`, `365d`).
    #[serde(default)]
    #[schema(schema_with = crate::http::rules::optional_trend_range)]
    pub range: Option<String>,
}

fn minute() -> u64 {
    60_000
}

fn validate(state: &AppState, id: i64, b: TrendLogBody) -> ApiResult<TrendLog> {
    let name = check_name("trend log", &b.name)?;
    if !crate::http::rules::TRENDLOG_POINTS.contains(&b.point_ids.len()) {
        return Err(ApiError::unprocessable("invalid_trendlog", "point_ids: 1 to 64 points"));
    }
    if !crate::http::rules::TRENDLOG_INTERVAL_MS.contains(&b.interval_ms) {
        return Err(ApiError::unprocessable("invalid_trendlog", "interval_ms must be 1000 to 86400000"));
    }
    if let Some(r) = &b.range {
        crate::http::rules::TREND_RANGE
            .parse(r)
            .map_err(|e| ApiError::unprocessable("invalid_trendlog", format!("range: {e}")))?;
    }
    let known = crate::http::routes::points::point_ids(state);
    if let Some(p) = b.point_ids.iter().find(|p| !known.contains(p)) {
        return Err(ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "unknown_point",
            format!("point_ids: no point {p}"),
        ));
    }
    Ok(TrendLog {
        id,
        name,
        description: b.description,
        point_ids: b.point_ids,
        interval_ms: b.interval_ms,
        range: b.range,
        updated_us: state.now_us(),
    })
}

/// Every trend log.
#[utoipa::path(get, path = "/api/t3000/trendlogs", tag = "trendlogs", responses((status = 200, body = [TrendLog])))]
pub async fn list(State(state): State<AppState>) -> Json<Vec<TrendLog>> {
    Json(state.catalog.list::<TrendLog>())
}

/// Creates a trend log.
#[utoipa::path(post, path = "/api/t3000/trendlogs", tag = "trendlogs", request_body = TrendLogBody,
    responses((status = 201, body = TrendLog), (status = 400, body = ErrorBody),
        (status = 404, description = "No such point", body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<TrendLog>)> {
    let t = state.catalog.insert(validate(&state, 0, json_body(&body)?)?)?;
    audit(&state, &who, "trendlog.create", format!("trendlog:{}", t.id), None, json(&t));
    Ok((StatusCode::CREATED, Json(t)))
}

/// Changes a trend log.
#[utoipa::path(put, path = "/api/t3000/trendlogs/{id}", tag = "trendlogs", params(("id" = i64, Path)), request_body = TrendLogBody,
    responses((status = 200, body = TrendLog), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<i64>,
    body: axum::body::Bytes,
) -> ApiResult<Json<TrendLog>> {
    let old = found::<TrendLog>(&state, id, "trend log")?;
    let t = validate(&state, id, json_body(&body)?)?;
    state.catalog.put(t.clone())?;
    audit(&state, &who, "trendlog.update", format!("trendlog:{id}"), json(&old), json(&t));
    Ok(Json(t))
}

/// Deletes a trend log (the points and their history stay).
#[utoipa::path(delete, path = "/api/t3000/trendlogs/{id}", tag = "trendlogs", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let old = found::<TrendLog>(&state, id, "trend log")?;
    state.catalog.delete::<TrendLog>(id)?;
    audit(&state, &who, "trendlog.delete", format!("trendlog:{id}"), json(&old), None);
    Ok(StatusCode::NO_CONTENT)
}
