//! History, latest values and the SQL endpoint.

use crate::http::AppState;
use crate::http::error::{ApiError, ApiResult, ErrorBody};
use crate::http::routes::metrics::timed;
use crate::http::timeparse::{parse_duration, parse_instant, parse_points};
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
    #[param(value_type = Option<crate::http::rules::InstantParam>, inline)]
    #[schema(schema_with = crate::http::rules::optional_instant)]
    pub from: Option<String>,
    /// End (exclusive), same forms. Default `now`. A `to` not after `from` makes the range empty: no rows.
    #[param(value_type = Option<crate::http::rules::InstantParam>, inline)]
    #[schema(schema_with = crate::http::rules::optional_instant)]
    pub to: Option<String>,
    /// Comma-separated aggregates: avg, min, max, first, last, count, twa (time-weighted average), integral (value x seconds).
    #[param(value_type = Option<crate::http::rules::AggregatesParam>, inline)]
    #[schema(schema_with = crate::http::rules::optional_aggregates)]
    pub agg: Option<String>,
    /// Bucket width or interpolation step: `30s`, `15m`, `1h`, `1d`, ...
    #[param(value_type = Option<crate::http::rules::DurationParam>, inline)]
    #[schema(schema_with = crate::http::rules::optional_duration)]
    pub bucket: Option<String>,
    /// At most this many rows (or buckets, with `agg`) per series.
    #[param(minimum = 1)]
    #[schema(minimum = 1)]
    pub max_points: Option<usize>,
    /// Interpolate on the `bucket` grid: `linear` or `step`.
    #[param(value_type = Option<crate::http::rules::FillParam>, inline)]
    #[schema(schema_with = crate::http::rules::optional_fill)]
    pub fill: Option<String>,
    /// Largest gap that interpolation bridges (default: 10 x bucket).
    #[param(value_type = Option<crate::http::rules::DurationParam>, inline)]
    #[schema(schema_with = crate::http::rules::optional_duration)]
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
    #[schema(schema_with = crate::http::rules::optional_instant)]
    pub from: Option<String>,
    #[schema(schema_with = crate::http::rules::optional_instant)]
    pub to: Option<String>,
    #[schema(schema_with = crate::http::rules::optional_aggregates)]
    pub agg: Option<String>,
    #[schema(schema_with = crate::http::rules::optional_duration)]
    pub bucket: Option<String>,
    #[schema(minimum = 1)]
    pub max_points: Option<usize>,
    #[schema(schema_with = crate::http::rules::optional_fill)]
    pub fill: Option<String>,
    #[schema(schema_with = crate::http::rules::optional_duration)]
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
    // Every value given is checked, whether or not the mode uses it (as the document states).
    let bucket = p.bucket.as_deref().map(parse_duration).transpose().map_err(|e| bad(format!("bucket: {e}")))?;
    let max_gap = p.max_gap.as_deref().map(parse_duration).transpose().map_err(|e| bad(format!("max_gap: {e}")))?;
    if let Some(0) = p.max_points {
        return Err(bad("max_points must be at least 1".into()));
    }
    let aggs = p
        .agg
        .as_deref()
        .map(|aggs| {
            aggs.split(',')
                .map(|a| a.trim_matches(' '))
                .map(|a| {
                    Agg::parse(a).ok_or_else(|| {
                        bad(format!("agg: '{a}' is not one of {}", crate::http::rules::aggregate_names().join(", ")))
                    })
                })
                .collect::<ApiResult<Vec<Agg>>>()
        })
        .transpose()?;
    let fill = p
        .fill
        .as_deref()
        .map(|fill| match fill {
            "linear" => Ok(Fill::Linear),
            "step" => Ok(Fill::Step),
            other => Err(bad(format!("fill: '{other}' is not {}", crate::http::rules::FILLS.join(" or ")))),
        })
        .transpose()?;
    if let Some(fill) = fill {
        let step_us = bucket.ok_or_else(|| bad("fill needs bucket (the grid step)".into()))?;
        let max_gap_us = max_gap.unwrap_or(step_us.saturating_mul(10));
        return Ok(HistoryMode::Interpolate { step_us, fill, max_gap_us });
    }
    if let Some(aggs) = aggs {
        let bucket_us = match (bucket, p.max_points) {
            (Some(b), _) => b,
            (None, Some(n)) => ((to - from).max(1) as u64).div_ceil(n as u64).max(1) as i64,
            (None, None) => return Err(bad("agg needs bucket or max_points".into())),
        };
        return Ok(HistoryMode::Aggregate { bucket_us, aggs });
    }
    if max_gap.is_some() {
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
    let now = state.now_us();
    let bad = |m: String| ApiError::bad_request("invalid_parameter", m);
    let from = parse_instant(p.from.as_deref().unwrap_or("now-24h"), now).map_err(|e| bad(format!("from: {e}")))?;
    let to = parse_instant(p.to.as_deref().unwrap_or("now"), now).map_err(|e| bad(format!("to: {e}")))?;
    // `from` at or after `to`: the range is empty, and so is the answer.
    let (mode, prior) = shape_of(p, from, to)?;
    Ok(HistoryRequest { points, from, to, mode, prior })
}

/// The mode and whether `prior` is asked: [`crate::http::rules::history_modes`] states the rules.
fn shape_of(p: &HistoryParams, from: i64, to: i64) -> ApiResult<(HistoryMode, bool)> {
    let mode = mode_of(p, from, to)?;
    let prior = p.prior.unwrap_or(false);
    if prior && !matches!(mode, HistoryMode::Raw | HistoryMode::Downsample { .. }) {
        return Err(ApiError::bad_request("invalid_parameter", "prior applies to raw rows (without agg or fill)"));
    }
    Ok((mode, prior))
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
        (status = 409, description = "The answer would have more rows than `query.max_rows` (`too_many_rows`)", body = ErrorBody),
        (status = 422, description = "The query ran past `query.timeout_ms` (`query_timeout`)", body = ErrorBody),
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
        (status = 409, description = "The answer would have more rows than `query.max_rows` (`too_many_rows`)", body = ErrorBody),
        (status = 422, description = "The query ran past `query.timeout_ms` (`query_timeout`)", body = ErrorBody),
    )
)]
pub async fn history_batch(
    State(state): State<AppState>,
    body: Result<Json<Box<serde_json::value::RawValue>>, JsonRejection>,
) -> ApiResult<Json<HistoryResult>> {
    let Json(body) = body?;
    let body: BatchRequest = crate::http::routes::json_body(body.get().as_bytes())?;
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
    Ok(Json(point_value(p, l, &crate::http::routes::points::units(&state))))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BatchValueParams {
    /// Comma-separated point ids; all points when absent.
    #[param(value_type = Option<crate::http::rules::PointListParam>, inline)]
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
    let units = crate::http::routes::points::units(&state);
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
    body: Result<Json<Box<serde_json::value::RawValue>>, JsonRejection>,
) -> ApiResult<Json<t3_storage::SqlResult>> {
    let Json(body) = body?;
    let body: SqlRequest = crate::http::routes::json_body(body.get().as_bytes())?;
    Ok(Json(timed(&state.metrics.sql_seconds, state.storage.sql(&body.sql)).await?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, json};

    /// Whether `body` is valid under `schema`, for the keywords [`crate::http::rules::history_modes`]
    /// uses: `required`, `properties` with `type` or `enum`, `anyOf`.
    fn valid(schema: &Value, body: &Map<String, Value>) -> bool {
        let required = schema["required"].as_array().into_iter().flatten();
        let present = required.into_iter().all(|k| body.contains_key(k.as_str().unwrap()));
        let properties = schema["properties"].as_object().into_iter().flatten().all(|(k, sub)| {
            let Some(v) = body.get(k) else { return true };
            let typed = match sub["type"].as_str() {
                Some("null") => v.is_null(),
                Some("string") => v.is_string(),
                Some("integer") => v.is_u64(),
                Some(other) => panic!("type {other}"),
                None => true,
            };
            typed && sub["enum"].as_array().is_none_or(|e| e.contains(v))
        });
        let any = schema["anyOf"].as_array().is_none_or(|a| a.iter().any(|s| valid(s, body)));
        present && properties && any
    }

    /// The body schema of POST /history/batch (`oneOf` the modes) takes exactly the combinations
    /// of agg, fill, bucket, max_gap, max_points and prior that the server takes, absent or null.
    #[test]
    fn the_documented_modes_are_the_modes_taken() {
        let modes = crate::http::rules::history_modes();
        let modes = modes.as_array().unwrap();
        let fields: [(&str, Value); 5] = [
            ("agg", json!("avg")),
            ("fill", json!("linear")),
            ("bucket", json!("1h")),
            ("max_gap", json!("2h")),
            ("max_points", json!(10)),
        ];
        let mut accepted = 0;
        for mask in 0..1u32 << fields.len() {
            for prior in [None, Some(false), Some(true)] {
                for absent_as_null in [false, true] {
                    let mut body = Map::new();
                    for (i, (k, v)) in fields.iter().enumerate() {
                        if mask & (1 << i) != 0 {
                            body.insert((*k).into(), v.clone());
                        } else if absent_as_null {
                            body.insert((*k).into(), Value::Null);
                        }
                    }
                    match prior {
                        Some(b) => body.insert("prior".into(), json!(b)),
                        None if absent_as_null => body.insert("prior".into(), Value::Null),
                        None => None,
                    };
                    let p: HistoryParams = serde_json::from_value(Value::Object(body.clone())).unwrap();
                    let documented = modes.iter().filter(|m| valid(m, &body)).count();
                    assert!(documented <= 1, "{body:?} matches {documented} modes");
                    let taken = shape_of(&p, 0, 3_600_000_000).is_ok();
                    assert_eq!(documented == 1, taken, "{body:?}");
                    accepted += usize::from(taken);
                }
            }
        }
        assert!(accepted > 20, "{accepted}");
    }

    /// Every value given is checked, whether the mode uses it or not.
    #[test]
    fn values_the_mode_ignores_are_still_checked() {
        let p = |agg: &str, fill: Option<&str>, max_gap: &str| HistoryParams {
            agg: Some(agg.into()),
            fill: fill.map(str::to_owned),
            bucket: Some("1h".into()),
            max_gap: Some(max_gap.into()),
            ..HistoryParams::default()
        };
        assert!(shape_of(&p("avg", Some("linear"), "2h"), 0, 1).is_ok());
        assert!(shape_of(&p("median", Some("linear"), "2h"), 0, 1).is_err(), "agg beside fill");
        assert!(shape_of(&p("avg", None, "soon"), 0, 1).is_err(), "max_gap beside agg");
        assert!(shape_of(&p("avg", None, "2h"), 0, 1).is_ok());
    }

    /// A range whose `from` is not before its `to` is taken (the answer is empty).
    #[test]
    fn an_empty_range_is_a_range() {
        let p = HistoryParams { agg: Some("avg".into()), max_points: Some(3), ..HistoryParams::default() };
        assert!(shape_of(&p, 10, 10).is_ok());
        assert!(shape_of(&p, 10, 5).is_ok());
    }
}
