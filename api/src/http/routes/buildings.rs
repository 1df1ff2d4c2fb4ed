//! Buildings, floors and rooms: the hierarchy devices and points are placed in.
//!
//! `GET /api/t3000/buildings` answers the whole tree (each building with its floors, each floor
//! with its rooms). Deleting a building or floor deletes what is inside it and unassigns the
//! devices placed there, in one transaction.

use crate::http::AppState;
use crate::http::error::{ApiResult, ErrorBody};
use crate::http::routes::{Page, Paged, json_body};
use crate::http::routes::{audit, found, json};
use crate::model::check::check_name;
use crate::model::device::DeviceRecord;
use crate::model::place::{Building, Floor, PlanImage, PlanPoint, Room};
use crate::service::auth::Principal;
use axum::Json;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use t3_storage::catalog::Transaction;

/// A building with its floors and their rooms.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BuildingResponse {
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    pub address: Option<String>,
    pub time_zone: String,
    pub floors: Vec<FloorResponse>,
}

/// A floor with its rooms.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FloorResponse {
    pub id: i64,
    pub building_id: i64,
    pub name: String,
    pub level: i32,
    pub description: Option<String>,
    pub plan: Option<PlanImage>,
    pub plan_points: Vec<PlanPoint>,
    pub rooms: Vec<Room>,
}

/// Body of POST / PUT of a building.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BuildingBody {
    #[schema(schema_with = crate::http::rules::name_schema)]
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
    /// IANA time zone, one of the names of the time zone database as written; `UTC` when absent.
    #[serde(default)]
    #[schema(schema_with = crate::http::rules::time_zone_schema)]
    pub time_zone: Option<String>,
}

/// Body of POST / PUT of a floor.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FloorBody {
    #[schema(schema_with = crate::http::rules::name_schema)]
    pub name: String,
    #[serde(default)]
    pub level: i32,
    #[serde(default)]
    pub description: Option<String>,
}

/// Body of POST / PUT of a room.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoomBody {
    #[schema(schema_with = crate::http::rules::name_schema)]
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
}

/// `?q=` name search and paging of the building list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BuildingQuery {
    /// Case-insensitive part of the name.
    pub q: Option<String>,
    pub offset: Option<usize>,
    #[param(value_type = Option<crate::http::rules::LimitParam>, inline)]
    pub limit: Option<usize>,
}

fn check_tz(tz: Option<String>) -> ApiResult<String> {
    let tz = tz.unwrap_or_else(|| "UTC".into());
    crate::http::rules::check_time_zone(&tz)?;
    Ok(tz)
}

fn tree(state: &AppState, b: &Building) -> BuildingResponse {
    let floors =
        state.catalog.read::<Floor, _>(|f| f.values().filter(|f| f.building_id == b.id).cloned().collect::<Vec<_>>());
    let rooms = state.catalog.list::<Room>();
    let mut floors: Vec<FloorResponse> = floors
        .into_iter()
        .map(|f| FloorResponse {
            id: f.id,
            building_id: f.building_id,
            name: f.name,
            level: f.level,
            description: f.description,
            plan: f.plan,
            plan_points: f.plan_points,
            rooms: rooms.iter().filter(|r| r.floor_id == f.id).cloned().collect(),
        })
        .collect();
    floors.sort_by_key(|f| (f.level, f.id));
    BuildingResponse {
        id: b.id,
        name: b.name.clone(),
        description: b.description.clone(),
        address: b.address.clone(),
        time_zone: b.time_zone.clone(),
        floors,
    }
}

fn building(state: &AppState, id: i64) -> ApiResult<Building> {
    found::<Building>(state, id, "building")
}

pub(crate) fn floor(state: &AppState, id: i64) -> ApiResult<Floor> {
    found::<Floor>(state, id, "floor")
}

fn room(state: &AppState, id: i64) -> ApiResult<Room> {
    found::<Room>(state, id, "room")
}

/// Every building with its floors and rooms.
#[utoipa::path(get, path = "/api/t3000/buildings", tag = "buildings", params(BuildingQuery),
    responses((status = 200, body = Paged<BuildingResponse>), (status = 401, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<BuildingQuery>,
) -> ApiResult<Json<Paged<BuildingResponse>>> {
    let needle = q.q.as_deref().map(str::to_lowercase);
    let all: Vec<Building> = state
        .catalog
        .list::<Building>()
        .into_iter()
        .filter(|b| needle.as_ref().is_none_or(|n| b.name.to_lowercase().contains(n)))
        .collect();
    let page = Page::new(q.offset, q.limit)?;
    Ok(Json(page.apply(all, |b| tree(&state, &b))))
}

/// One building with its floors and rooms.
#[utoipa::path(get, path = "/api/t3000/buildings/{id}", tag = "buildings", params(("id" = i64, Path)),
    responses((status = 200, body = BuildingResponse), (status = 404, body = ErrorBody)))]
pub async fn get_one(State(state): State<AppState>, Path(id): Path<i64>) -> ApiResult<Json<BuildingResponse>> {
    Ok(Json(tree(&state, &building(&state, id)?)))
}

/// Creates a building.
#[utoipa::path(post, path = "/api/t3000/buildings", tag = "buildings", request_body = BuildingBody,
    responses((status = 201, body = BuildingResponse), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<BuildingResponse>)> {
    let body: BuildingBody = json_body(&body)?;
    let b = state.catalog.insert(Building {
        id: 0,
        name: check_name("building", &body.name)?,
        description: body.description,
        address: body.address,
        time_zone: check_tz(body.time_zone)?,
        updated_us: state.now_us(),
    })?;
    audit(&state, &who, "building.create", format!("building:{}", b.id), None, json(&b));
    Ok((StatusCode::CREATED, Json(tree(&state, &b))))
}

/// Updates a building's name, description, address and time zone.
#[utoipa::path(put, path = "/api/t3000/buildings/{id}", tag = "buildings", params(("id" = i64, Path)),
    request_body = BuildingBody,
    responses((status = 200, body = BuildingResponse), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<i64>,
    body: axum::body::Bytes,
) -> ApiResult<Json<BuildingResponse>> {
    let old = building(&state, id)?;
    let body: BuildingBody = json_body(&body)?;
    let new = Building {
        id,
        name: check_name("building", &body.name)?,
        description: body.description,
        address: body.address,
        time_zone: check_tz(body.time_zone)?,
        updated_us: state.now_us(),
    };
    state.catalog.put(new.clone())?;
    audit(&state, &who, "building.update", format!("building:{id}"), json(&old), json(&new));
    Ok(Json(tree(&state, &new)))
}

/// Unassigns the devices placed in any of the given places (within a transaction).
fn unassign_devices(
    tx: &mut Transaction<'_>,
    building: Option<i64>,
    floors: &[i64],
    rooms: &[i64],
) -> t3_storage::Result<()> {
    let changed: Vec<DeviceRecord> = tx
        .rows::<DeviceRecord>()
        .values()
        .filter(|d| {
            building.is_some_and(|b| d.building_id == Some(b))
                || d.floor_id.is_some_and(|f| floors.contains(&f))
                || d.room_id.is_some_and(|r| rooms.contains(&r))
        })
        .cloned()
        .collect();
    for mut d in changed {
        if building.is_some() {
            d.building_id = None;
        }
        if d.floor_id.is_some_and(|f| floors.contains(&f)) {
            d.floor_id = None;
        }
        if d.room_id.is_some_and(|r| rooms.contains(&r)) {
            d.room_id = None;
        }
        tx.put(d)?;
    }
    Ok(())
}

/// Deletes a building with its floors and rooms; devices placed there become unplaced.
#[utoipa::path(delete, path = "/api/t3000/buildings/{id}", tag = "buildings", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let old = building(&state, id)?;
    let floors = state.catalog.transaction(|tx| {
        let floors: Vec<i64> = tx.rows::<Floor>().values().filter(|f| f.building_id == id).map(|f| f.id).collect();
        let rooms: Vec<i64> =
            tx.rows::<Room>().values().filter(|r| floors.contains(&r.floor_id)).map(|r| r.id).collect();
        unassign_devices(tx, Some(id), &floors, &rooms)?;
        for r in rooms {
            tx.delete::<Room>(r);
        }
        for f in &floors {
            tx.delete::<Floor>(*f);
        }
        tx.delete::<Building>(id);
        Ok(floors)
    })?;
    for f in floors {
        state.plans.remove(f);
    }
    audit(&state, &who, "building.delete", format!("building:{id}"), json(&old), None);
    Ok(StatusCode::NO_CONTENT)
}

/// The floors of a building, each with its rooms, lowest first.
#[utoipa::path(get, path = "/api/t3000/buildings/{id}/floors", tag = "buildings", params(("id" = i64, Path)),
    responses((status = 200, body = [FloorResponse]), (status = 404, body = ErrorBody)))]
pub async fn floors(State(state): State<AppState>, Path(id): Path<i64>) -> ApiResult<Json<Vec<FloorResponse>>> {
    Ok(Json(tree(&state, &building(&state, id)?).floors))
}

/// Adds a floor to a building.
#[utoipa::path(post, path = "/api/t3000/buildings/{id}/floors", tag = "buildings", params(("id" = i64, Path)),
    request_body = FloorBody,
    responses((status = 201, body = Floor), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_floor(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<i64>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<Floor>)> {
    building(&state, id)?;
    let body: FloorBody = json_body(&body)?;
    let f = state.catalog.insert(Floor {
        id: 0,
        building_id: id,
        name: check_name("floor", &body.name)?,
        level: body.level,
        description: body.description,
        updated_us: state.now_us(),
        plan: None,
        plan_points: Vec::new(),
    })?;
    audit(&state, &who, "floor.create", format!("floor:{}", f.id), None, json(&f));
    Ok((StatusCode::CREATED, Json(f)))
}

/// Renames or renumbers a floor.
#[utoipa::path(put, path = "/api/t3000/floors/{id}", tag = "buildings", params(("id" = i64, Path)),
    request_body = FloorBody,
    responses((status = 200, body = Floor), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_floor(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<i64>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Floor>> {
    let old = floor(&state, id)?;
    let body: FloorBody = json_body(&body)?;
    let new = Floor {
        name: check_name("floor", &body.name)?,
        level: body.level,
        description: body.description,
        updated_us: state.now_us(),
        ..old.clone()
    };
    state.catalog.put(new.clone())?;
    audit(&state, &who, "floor.update", format!("floor:{id}"), json(&old), json(&new));
    Ok(Json(new))
}

/// Deletes a floor and its rooms; devices placed there become unplaced.
#[utoipa::path(delete, path = "/api/t3000/floors/{id}", tag = "buildings", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_floor(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let old = floor(&state, id)?;
    state.catalog.transaction(|tx| {
        let rooms: Vec<i64> = tx.rows::<Room>().values().filter(|r| r.floor_id == id).map(|r| r.id).collect();
        unassign_devices(tx, None, &[id], &rooms)?;
        for r in rooms {
            tx.delete::<Room>(r);
        }
        tx.delete::<Floor>(id);
        Ok(())
    })?;
    state.plans.remove(id);
    audit(&state, &who, "floor.delete", format!("floor:{id}"), json(&old), None);
    Ok(StatusCode::NO_CONTENT)
}

/// The rooms of a floor.
#[utoipa::path(get, path = "/api/t3000/floors/{id}/rooms", tag = "buildings", params(("id" = i64, Path)),
    responses((status = 200, body = [Room]), (status = 404, body = ErrorBody)))]
pub async fn rooms(State(state): State<AppState>, Path(id): Path<i64>) -> ApiResult<Json<Vec<Room>>> {
    floor(&state, id)?;
    Ok(Json(state.catalog.read::<Room, _>(|r| r.values().filter(|r| r.floor_id == id).cloned().collect())))
}

/// Adds a room to a floor.
#[utoipa::path(post, path = "/api/t3000/floors/{id}/rooms", tag = "buildings", params(("id" = i64, Path)),
    request_body = RoomBody,
    responses((status = 201, body = Room), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_room(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<i64>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<Room>)> {
    floor(&state, id)?;
    let body: RoomBody = json_body(&body)?;
    let r = state.catalog.insert(Room {
        id: 0,
        floor_id: id,
        name: check_name("room", &body.name)?,
        description: body.description,
        updated_us: state.now_us(),
    })?;
    audit(&state, &who, "room.create", format!("room:{}", r.id), None, json(&r));
    Ok((StatusCode::CREATED, Json(r)))
}

/// Renames a room.
#[utoipa::path(put, path = "/api/t3000/rooms/{id}", tag = "buildings", params(("id" = i64, Path)),
    request_body = RoomBody,
    responses((status = 200, body = Room), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_room(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<i64>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Room>> {
    let old = room(&state, id)?;
    let body: RoomBody = json_body(&body)?;
    let new = Room {
        name: check_name("room", &body.name)?,
        description: body.description,
        updated_us: state.now_us(),
        ..old.clone()
    };
    state.catalog.put(new.clone())?;
    audit(&state, &who, "room.update", format!("room:{id}"), json(&old), json(&new));
    Ok(Json(new))
}

/// Deletes a room; devices placed there become unplaced.
#[utoipa::path(delete, path = "/api/t3000/rooms/{id}", tag = "buildings", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_room(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let old = room(&state, id)?;
    state.catalog.transaction(|tx| {
        unassign_devices(tx, None, &[], &[id])?;
        tx.delete::<Room>(id);
        Ok(())
    })?;
    audit(&state, &who, "room.delete", format!("room:{id}"), json(&old), None);
    Ok(StatusCode::NO_CONTENT)
}
