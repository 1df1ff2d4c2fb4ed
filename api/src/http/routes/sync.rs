//! Hardware sync of a T3 controller's point configuration and routines with the catalog (see
//! [`crate::service::sync`]): `GET` shows the differences field by field and what applying would do,
//! `POST` applies them (admins only, as every change of configuration).

use crate::http::AppState;
use crate::http::error::{ApiResult, ErrorBody};
use crate::http::routes::json_body;
use crate::service::auth::Principal;
use crate::service::sync::{ApplyReport, ApplyRequest, Strategy, Sync, SyncReport};
use axum::Json;
use axum::extract::{Extension, Path, Query, State};
use serde::Deserialize;

fn sync(state: &AppState) -> Sync<'_> {
    Sync {
        catalog: &state.catalog,
        collector: &state.collector,
        control: &state.control,
        ranges: &state.ranges,
        now_us: state.now_us(),
    }
}

/// The query of `GET .../sync`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SyncQuery {
    /// How conflicts would be decided (`direction` of each row); `per_field` (the default) leaves them open.
    #[serde(default)]
    #[param(value_type = Option<Strategy>)]
    pub strategy: Strategy,
}

/// The differences between a T3 controller's configuration, read from the device now, and the
/// catalog, field by field: the label, description, range code, digital and auto/manual of its polled
/// inputs, outputs and variables; the label, description, times and holiday links of its weekly
/// routines (`WR1`-`WR8`, the schedules `<device> WR<n> …`) and the label and days of its annual
/// routines (`AR1`-`AR4`, the calendars `<device> AR<n> …`). Each row says which side changed since
/// the last sync and which way applying would take it. Changes nothing.
#[utoipa::path(get, path = "/api/t3000/devices/{id}/sync", tag = "devices",
    params(("id" = String, Path, description = "Device id or name"), SyncQuery),
    responses((status = 200, body = SyncReport), (status = 404, body = ErrorBody),
        (status = 409, description = "The device is not polled (`device_not_polled`) or has no T3 points (`nothing_to_sync`)", body = ErrorBody),
        (status = 502, description = "The device did not answer or refused a read (`device_unreadable`)", body = ErrorBody)))]
pub async fn diff(
    State(state): State<AppState>,
    Path(key): Path<String>,
    Query(q): Query<SyncQuery>,
) -> ApiResult<Json<SyncReport>> {
    let d = state.devices.find(&key)?;
    Ok(Json(sync(&state).diff(d.id, q.strategy, &[]).await?))
}

/// Applies the differences: a field changed on one side since the last sync goes to the other;
/// one changed on both sides goes the way `strategy` says (`device_wins`, `server_wins`; `per_field`:
/// the way its choice says, else it is left unresolved); `choices` set the direction of single rows.
/// Labels, descriptions, ranges and digital flags are written to the device's registers and read
/// back; a routine's changes rewrite its record (and times or days) whole, read back; auto/manual
/// goes through the command arbiter's mode change. Going to the server, a routine without a schedule
/// or calendar gets one. Every change is audited
/// (`sync.apply`); the agreed values become the baseline of the next sync. A change that fails is
/// reported with its error and left for the next sync.
#[utoipa::path(post, path = "/api/t3000/devices/{id}/sync", tag = "devices",
    params(("id" = String, Path, description = "Device id or name")), request_body = ApplyRequest,
    responses((status = 200, body = ApplyReport), (status = 404, body = ErrorBody),
        (status = 409, description = "The device is not polled (`device_not_polled`), has no T3 points (`nothing_to_sync`), or a choice names a point or routine it does not sync, or neither (`invalid_choice`)", body = ErrorBody),
        (status = 502, description = "The device did not answer or refused a read (`device_unreadable`)", body = ErrorBody)))]
pub async fn apply(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(key): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<ApplyReport>> {
    let req: ApplyRequest = json_body(&body)?;
    let d = state.devices.find(&key)?;
    Ok(Json(sync(&state).apply(&who.issuer(), d.id, &req).await?))
}
