//! History, latest values and the SQL endpoint.

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::routes::metrics::timed;
use crate::state::AppState;
use crate::timeparse::{parse_duration, parse_instant, parse_points};
use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use t3_storage::analytics::{Agg, Fill};
use t3_storage::{HistoryMode, HistoryRequest, HistoryResult};

/// How to shape a history answer. With `agg`: bucketed aggregates (`bucket`, or the range split into
/// `max_points` buckets). With `fill`: values on a `bucket`-spaced grid, interpolated. With only
/// `max_points`: at most that many raw rows (M4: every bucket's first, last, min and max). Otherwise
/// every raw row.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// Start (inclusive): RFC 3339, epoch microseconds, `now` or `now-24h`. Default `now-24h`.
    #[param(schema_with = crate::rules::instant_param)]
    #[schema(schema_with = crate::rules::optional_instant)]
    pub from: Option<String>,
    /// End (exclusive), same forms. Default `now`.
    #[param(schema_with = crate::rules::instant_param)]
    #[schema(schema_with = crate::rules::optional_instant)]
    pub to: Option<String>,
    /// Comma-separated aggregates: avg, min, max, first, last, count, twa (time-weighted average), integral (value x seconds).
    #[param(schema_with = crate::rules::aggregates_param)]
    #[schema(schema_with = crate::rules::optional_aggregates)]
    pub agg: Option<String>,
    /// Bucket width or interpolation step: `30s`, `15m`, `1h`, `1d`, ...
    #[param(schema_with = crate::rules::duration_param)]
    #[schema(schema_with = crate::rules::optional_duration)]
    pub bucket: Option<String>,
    /// At most this many rows (or buckets, with `agg`) per series.
    #[param(minimum = 1)]
    #[schema(minimum = 1)]
    pub max_points: Option<usize>,
    /// Interpolate on the `bucket` grid: `linear` or `step`.
    #[param(schema_with = crate::rules::fill_param)]
    #[schema(schema_with = crate::rules::optional_fill)]
    pub fill: Option<String>,
    /// Largest gap that interpolation bridges (default: 10 x bucket).
    #[param(schema_with = crate::rules::duration_param)]
    #[schema(schema_with = crate::rules::optional_duration)]
    pub max_gap: Option<String>,
    /// Also answer each point's last row before `from` (up to 7 days back) as
    /// `"prior": {"ts", "value"}` (`null` if none): the value in force where a chart starts.
    /// Raw and `max_points` rows only.
    pub prior: Option<bool>,
}

/// A history request for several points (`POST /api/t3000/history/batch`); the other fields mean
/// what the query parameters of `GET /api/t3000/points/{id}/history` mean.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// Point ids (1 to 10,000).
    #[schema(min_items = 1, max_items = 10_000)]
    pub points: Vec<u32>,
    #[schema(schema_with = crate::rules::optional_instant)]
    pub from: Option<String>,
    #[schema(schema_with = crate::rules::optional_instant)]
    pub to: Option<String>,
    #[schema(schema_with = crate::rules::optional_aggregates)]
    pub agg: Option<String>,
    #[schema(schema_with = crate::rules::optional_duration)]
    pub bucket: Option<String>,
    #[schema(minimum = 1)]
    pub max_points: Option<usize>,
    #[schema(schema_with = crate::rules::optional_fill)]
    pub fill: Option<String>,
    #[schema(schema_with = crate::rules::optional_duration)]
    pub max_gap: Option<String>,
    pub prior: Option<bool>,
}

impl BatchRequest {
    fn params(&self) -> HistoryParams {
        HistoryParams {
            from: self.from.clone(),
            to: self.to.clone(),
            agg: self.agg.clone(),
            bucket: self.bucket.clone(),
            max_points: self.max_points,
            fill: self.fill.clone(),
            max_gap: self.max_gap.clone(),
            prior: self.prior,
        }
    }
}

fn mode_of(p: &HistoryParams, from: i64, to: i64) -> ApiResult<HistoryMode> {
    let bad = |m: String| ApiError::bad_request("invalid_parameter", m);
    let bucket = p.bucket.as_deref().map(parse_duration).transpose().map_err(|e| bad(format!("bucket: {e}")))?;
    if let Some(0) = p.max_points {
        return Err(bad("max_points must be at least 1".into()));
    }
    if let Some(fill) = &p.fill {
        let fill = match fill.as_str() {
            "linear" => Fill::Linear,
            "step" => Fill::Step,
            other => return Err(bad(format!("fill: '{other}' is not {}", crate::rules::FILLS.join(" or ")))),
        };
        let step_us = bucket.ok_or_else(|| bad("fill needs bucket (the grid step)".into()))?;
        let max_gap_us = match &p.max_gap {
            Some(g) => parse_duration(g).map_err(|e| bad(format!("max_gap: {e}")))?,
            None => step_us.saturating_mul(10),
        };
        return Ok(HistoryMode::Interpolate { step_us, fill, max_gap_us });
    }
    if let Some(aggs) = &p.agg {
        let mut list = Vec::new();
        for a in aggs.split(',').map(|a| a.trim_matches(' ')) {
            list.push(Agg::parse(a).ok_or_else(|| {
                bad(format!("agg: '{a}' is not one of {}", crate::rules::aggregate_names().join(", ")))
            })?);
        }
        let bucket_us = match (bucket, p.max_points) {
            (Some(b), _) => b,
            (None, Some(n)) => ((to - from) as u64).div_ceil(n as u64).max(1) as i64,
            (None, None) => return Err(bad("agg needs bucket or max_points".into())),
        };
        return Ok(HistoryMode::Aggregate { bucket_us, aggs: list });
    }
    if p.max_gap.is_some() {
        return Err(bad("max_gap only applies with fill".into()));
    }
    if bucket.is_some() {
        return Err(bad("bucket needs agg or fill".into()));
    }
    Ok(match p.max_points {
        Some(max_points) => HistoryMode::Downsample { max_points },
        None => HistoryMode::Raw,
    })
}

fn request_of(state: &AppState, points: Vec<u32>, p: &HistoryParams) -> ApiResult<HistoryRequest> {
    let now = state.storage.clock().now_us();
    let bad = |m: String| ApiError::bad_request("invalid_parameter", m);
    let from = parse_instant(p.from.as_deref().unwrap_or("now-24h"), now).map_err(|e| bad(format!("from: {e}")))?;
    let to = parse_instant(p.to.as_deref().unwrap_or("now"), now).map_err(|e| bad(format!("to: {e}")))?;
    if from >= to {
        return Err(bad(format!("from ({from}) must be before to ({to})")));
    }
    let mode = mode_of(p, from, to)?;
    let prior = p.prior.unwrap_or(false);
    if prior && !matches!(mode, HistoryMode::Raw | HistoryMode::Downsample { .. }) {
        return Err(bad("prior applies to raw rows (without agg or fill)".into()));
    }
    Ok(HistoryRequest { points, from, to, mode, prior })
}

fn query_rejection(e: QueryRejection) -> ApiError {
    ApiError::bad_request("invalid_parameter", e.body_text())
}

fn parse_point_id(id: &str) -> ApiResult<u32> {
    id.parse::<u32>()
        .map_err(|_| ApiError::bad_request("invalid_point_id", format!("'{id}' is not a point id (0 .. 4294967295)")))
}

/// One point's history, columnar: `{"point_id", "from", "to", "partial", "ts": [...], "<column>": [...]}`.
#[utoipa::path(
    get,
    path = "/api/t3000/points/{id}/history",
    tag = "history",
    params(("id" = u32, Path, description = "Point id"), HistoryParams),
    responses(
        (status = 200, description = "Columnar series: ts (epoch microseconds) plus value/quality (raw) or one array per aggregate; with prior=true, `prior`: the last row before `from` ({ts, value}) or null", body = Object),
        (status = 400, body = ErrorBody),
        (status = 422, description = "Too many rows", body = ErrorBody),
    )
)]
pub async fn point_history(
    State(state): State<AppState>,
    Path(id): Path<String>,
    params: Result<Query<HistoryParams>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let id = parse_point_id(&id)?;
    let Query(params) = params.map_err(query_rejection)?;
    let req = request_of(&state, vec![id], &params)?;
    let result = timed(&state.metrics.history_seconds, state.storage.history(req)).await?;
    let mut series = serde_json::to_value(&result.series[0]).map_err(ApiError::internal)?;
    if let Value::Object(m) = &mut series {
        m.insert("from".into(), result.from.into());
        m.insert("to".into(), result.to.into());
        m.insert("partial".into(), result.partial.into());
    }
    Ok(Json(series))
}

/// Several points over one time range.
#[utoipa::path(
    post,
    path = "/api/t3000/history/batch",
    tag = "history",
    request_body = BatchRequest,
    responses(
        (status = 200, description = "`{from, to, partial, series: [{point_id, ts, ...columns}]}` (each series with `prior` when asked)", body = Object),
        (status = 400, body = ErrorBody),
        (status = 422, body = ErrorBody),
    )
)]
pub async fn history_batch(
    State(state): State<AppState>,
    body: Result<Json<Value>, JsonRejection>,
) -> ApiResult<Json<HistoryResult>> {
    let Json(body) = body?;
    let body: BatchRequest = crate::routes::json_value(body)?;
    if body.points.is_empty() {
        return Err(ApiError::bad_request("invalid_parameter", "points is empty"));
    }
    if body.points.len() > 10_000 {
        return Err(ApiError::bad_request("invalid_parameter", "at most 10000 points per request"));
    }
    let params = body.params();
    let req = request_of(&state, body.points, &params)?;
    Ok(Json(timed(&state.metrics.history_seconds, state.storage.history(req)).await?))
}

/// The latest value of a point.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PointValue {
    pub point_id: u32,
    /// Epoch microseconds.
    pub ts: i64,
    /// The same instant, RFC 3339 (UTC).
    pub timestamp: String,
    /// `null` when the latest sample carried no value (bad quality).
    pub value: Option<f64>,
    pub units: Option<String>,
    /// The quality code (see the README's table).
    pub quality: u8,
    /// Its name: `good`, `good_local_override`, `bad_comm_failure`, ...
    pub quality_name: String,
}

fn point_value(point_id: u32, l: t3_storage::Latest, units: &std::collections::HashMap<u32, String>) -> PointValue {
    PointValue {
        point_id,
        ts: l.ts,
        timestamp: chrono::DateTime::from_timestamp_micros(l.ts)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
            .unwrap_or_default(),
        value: (!l.value.is_nan()).then_some(l.value),
        units: units.get(&point_id).cloned(),
        quality: l.quality,
        quality_name: t3_core::Quality(l.quality).name().to_owned(),
    }
}

/// The current (latest) value of a point, from memory.
#[utoipa::path(
    get,
    path = "/api/t3000/points/{id}/value",
    tag = "history",
    params(("id" = u32, Path, description = "Point id")),
    responses((status = 200, body = PointValue), (status = 400, body = ErrorBody), (status = 404, description = "No value yet", body = ErrorBody))
)]
pub async fn point_latest(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<PointValue>> {
    let id = parse_point_id(&id)?;
    let l = state.storage.latest(&[id]);
    let (p, l) = l.first().copied().ok_or_else(|| ApiError::not_found(format!("point {id} has no value yet")))?;
    Ok(Json(point_value(p, l, &crate::routes::points::units(&state))))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BatchValueParams {
    /// Comma-separated point ids; all points when absent.
    #[param(schema_with = crate::rules::point_list_param)]
    pub ids: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PointValues {
    pub values: Vec<PointValue>,
}

/// The latest values of several (or all) points, from memory.
#[utoipa::path(
    get,
    path = "/api/t3000/points/batch",
    tag = "history",
    params(BatchValueParams),
    responses((status = 200, body = PointValues), (status = 400, body = ErrorBody))
)]
pub async fn points_latest(
    State(state): State<AppState>,
    params: Result<Query<BatchValueParams>, QueryRejection>,
) -> ApiResult<Json<PointValues>> {
    let Query(params) = params.map_err(query_rejection)?;
    let ids = match params.ids.as_deref() {
        Some(s) => parse_points(s).map_err(|e| ApiError::bad_request("invalid_parameter", format!("ids: {e}")))?,
        None => Vec::new(),
    };
    let units = crate::routes::points::units(&state);
    let values = state.storage.latest(&ids).into_iter().map(|(p, l)| point_value(p, l, &units)).collect();
    Ok(Json(PointValues { values }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlRequest {
    /// One read-only statement over the views `samples(point_id, ts, value, quality)`, `rollups_1m`
    /// and `rollups_1h`.
    pub sql: String,
}

/// Read-only analytics SQL (DuckDB dialect), with a time limit and a row limit. The query reads
/// the views `samples`, `rollups_1m` and `rollups_1h`; its DuckDB instance may read exactly the
/// live Parquet files behind them and no other file. The time limit (`query.sql_timeout_ms`)
/// covers the whole request, setting up the views and planning included.
#[utoipa::path(
    post,
    path = "/api/t3000/query",
    tag = "history",
    request_body = SqlRequest,
    responses(
        (status = 200, description = "`{columns: [...], rows: [[...]], truncated}`", body = Object),
        (status = 400, description = "Not a single read-only query, a SQL error, or a sandbox refusal (a file other than the live Parquet files)", body = ErrorBody),
        (status = 422, description = "Time limit exceeded (`query_timeout`)", body = ErrorBody),
    )
)]
pub async fn sql_query(
    State(state): State<AppState>,
    body: Result<Json<Value>, JsonRejection>,
) -> ApiResult<Json<t3_storage::SqlResult>> {
    let Json(body) = body?;
    let body: SqlRequest = crate::routes::json_value(body)?;
    Ok(Json(timed(&state.metrics.sql_seconds, state.storage.sql(&body.sql)).await?))
}
