//! Storage administration: deleting samples written by mistake, and the data files taken out of
//! service (quarantined) with their acknowledgement.

use crate::http::AppState;
use crate::http::error::{ApiError, ApiResult, ErrorBody};
use crate::http::routes::{audit, json, json_body};
use crate::service::auth::Principal;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Path, Query, State};
use serde::{Deserialize, Serialize};
use t3_storage::manifest::Quarantined;

/// The range of `DELETE /api/t3000/points/{id}/samples`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeleteRange {
    /// Start (inclusive): RFC 3339, epoch microseconds, `now` or `now-24h`.
    #[param(value_type = crate::http::rules::InstantParam, inline)]
    pub from: String,
    /// End (exclusive), same forms. A `to` not after `from` makes the range empty: nothing is deleted.
    #[param(value_type = crate::http::rules::InstantParam, inline)]
    pub to: String,
}

/// What a deletion removed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeleteReply {
    pub point_id: u32,
    pub from: i64,
    pub to: i64,
    /// Samples removed.
    pub deleted: u64,
}

/// Deletes the samples of one point in a time range: for mistakes, such as samples stamped with a
/// wrong clock. Admin only; recorded in the audit log with the range and the count. Samples
/// acknowledged while the deletion runs are kept.
#[utoipa::path(
    delete,
    path = "/api/t3000/points/{id}/samples",
    tag = "samples",
    params(("id" = u32, Path, description = "Point id"), DeleteRange),
    responses(
        (status = 200, description = "Deleted", body = DeleteReply),
        (status = 400, description = "Bad range", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 503, description = "Writes are refused (WAL poisoned, shutting down)", body = ErrorBody),
    )
)]
pub async fn delete_samples(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<u32>,
    q: Result<Query<DeleteRange>, QueryRejection>,
) -> ApiResult<Json<DeleteReply>> {
    let Query(q) = q.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let now = state.now_us();
    let instant = |s: &str, what: &str| {
        crate::http::timeparse::parse_instant(s, now)
            .map_err(|e| ApiError::bad_request("invalid_time", format!("{what}: {e}")))
    };
    // `from` at or after `to`: the range is empty and nothing is deleted.
    let (from, to) = (instant(&q.from, "from")?, instant(&q.to, "to")?);
    if let Some(why) = state.storage.write_refusal() {
        return Err(ApiError::new(axum::http::StatusCode::SERVICE_UNAVAILABLE, "writes_refused", why));
    }
    let deleted = state.storage.delete_samples(id, from, to).await?;
    let reply = DeleteReply { point_id: id, from, to, deleted };
    audit(&state, &who, "delete_samples", format!("point {id}"), None, json(&reply));
    Ok(Json(reply))
}

/// A data file taken out of service because it failed a check.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct QuarantinedFile {
    /// Where the file was, relative to the data directory.
    pub file: String,
    /// Where it is now (under `quarantine/`); empty if it could not be moved.
    pub moved_to: String,
    /// The check it failed.
    pub reason: String,
    /// When it was found (epoch microseconds).
    pub at_us: i64,
    /// `samples`, `rollups_1m` or `rollups_1h` (rollups are recomputed, so only sample files lose data).
    pub table: String,
    /// Rows it held: missing from every answer over its range, which says `partial`.
    pub rows: u64,
    /// The time range (epoch microseconds) and point ids it covered.
    pub min_ts: i64,
    pub max_ts: i64,
    pub min_point: u32,
    pub max_point: u32,
    /// Acknowledged by an operator: still listed, no longer in `/healthz` or the alarms.
    pub acknowledged: bool,
}

impl From<Quarantined> for QuarantinedFile {
    fn from(q: Quarantined) -> Self {
        QuarantinedFile {
            file: q.file,
            moved_to: q.moved_to,
            reason: q.reason,
            at_us: q.at_us,
            table: q.table.dir_name().to_string(),
            rows: q.rows,
            min_ts: q.min_ts,
            max_ts: q.max_ts,
            min_point: q.min_point,
            max_point: q.max_point,
            acknowledged: q.acknowledged,
        }
    }
}

/// Every quarantined data file, acknowledged ones included.
#[utoipa::path(
    get,
    path = "/api/t3000/storage/quarantine",
    tag = "system",
    responses((status = 200, body = Vec<QuarantinedFile>))
)]
pub async fn quarantine(State(state): State<AppState>) -> Json<Vec<QuarantinedFile>> {
    Json(state.storage.quarantined().into_iter().map(QuarantinedFile::from).collect())
}

/// Names the quarantined file to acknowledge.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AckQuarantine {
    /// The `file` of the record, as listed.
    #[schema(min_length = 1)]
    pub file: String,
}

/// Acknowledges a quarantined file: it stays listed, and leaves `/healthz` and the alarms.
/// Operator or admin; audited.
#[utoipa::path(
    post,
    path = "/api/t3000/storage/quarantine/ack",
    tag = "system",
    request_body = AckQuarantine,
    responses(
        (status = 200, body = Vec<QuarantinedFile>),
        (status = 404, description = "No such record", body = ErrorBody),
    )
)]
pub async fn acknowledge(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    body: Bytes,
) -> ApiResult<Json<Vec<QuarantinedFile>>> {
    let req: AckQuarantine = json_body(&body)?;
    if !state.storage.acknowledge_quarantined(&req.file)? {
        return Err(ApiError::not_found(format!("no quarantined file {}", req.file)));
    }
    audit(&state, &who, "acknowledge_quarantine", req.file.clone(), None, None);
    Ok(Json(state.storage.quarantined().into_iter().map(QuarantinedFile::from).collect()))
}
