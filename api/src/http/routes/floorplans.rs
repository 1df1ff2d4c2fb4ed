//! Floor plans: one image per floor (PNG, JPEG, WebP or SVG, at most `service::floorplans::MAX_PLAN_BYTES`) kept in
//! `<data dir>/floorplans/<floor id>`, and where point badges sit on it (fractions of the image's
//! width and height, so the badges stay put at any display size). The floor record keeps the
//! image's type and size; the bytes are written to a temporary file, synced and renamed, so a
//! crash leaves the old image or the new one.

use crate::http::AppState;
use crate::http::error::{ApiError, ApiResult, ErrorBody};
use crate::http::routes::buildings::floor;
use crate::http::routes::{audit, json, json_body};
use crate::model::place::{Floor, MAX_PLAN_POINTS, PlanImage, PlanPoint};
use crate::service::auth::Principal;
use crate::service::floorplans::{MAX_PLAN_BYTES, check_image};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

/// Body of `PUT /api/t3000/floors/{id}/plan/points`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanPointsBody {
    /// Every badge of the plan (replaces the ones there were), at most 1,000, each point once.
    #[schema(max_items = 1000)]
    pub points: Vec<PlanPoint>,
}

/// Uploads (or replaces) a floor's plan image.
#[utoipa::path(put, path = "/api/t3000/floors/{id}/plan", tag = "buildings", params(("id" = i64, Path)),
    request_body(description = "The image (at most 8 MiB)", content(
        (String = "image/png"), (String = "image/jpeg"), (String = "image/webp"), (String = "image/svg+xml"))),
    responses((status = 200, body = Floor), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, description = "`disk_full`: the data directory is below its disk floor", body = ErrorBody)))]
pub async fn put_plan(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<Floor>> {
    let old = floor(&state, id)?;
    if body.is_empty() {
        return Err(ApiError::bad_request("empty_body", "send the image as the request body"));
    }
    if body.len() > MAX_PLAN_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("a floor plan is at most {} MiB (got {} bytes)", MAX_PLAN_BYTES >> 20, body.len()),
        ));
    }
    let declared = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let kind = check_image(declared, &body)?;
    let len = body.len() as u64;
    state.storage.ensure_space_for("a floor plan upload")?;
    state.plans.write(id, body).await.map_err(ApiError::internal)?;
    let new = Floor {
        plan: Some(PlanImage { content_type: kind.to_owned(), bytes: len, updated_us: state.now_us() }),
        updated_us: state.now_us(),
        ..old.clone()
    };
    state.catalog.put(new.clone())?;
    audit(&state, &who, "floor.plan.upload", format!("floor:{id}"), json(&old.plan), json(&new.plan));
    Ok(Json(new))
}

/// A floor's plan image, with its content type.
#[utoipa::path(get, path = "/api/t3000/floors/{id}/plan", tag = "buildings", params(("id" = i64, Path)),
    responses((status = 200, description = "The image", content_type = "image/*", body = String),
        (status = 404, body = ErrorBody)))]
pub async fn get_plan(State(state): State<AppState>, Path(id): Path<i64>) -> ApiResult<Response> {
    let f = floor(&state, id)?;
    let Some(plan) = f.plan else {
        return Err(ApiError::not_found(format!("floor {id} has no plan")));
    };
    let bytes = state.plans.read(id).await.map_err(|e| {
        tracing::error!(floor_id = id, error = %e, "floor plan image missing or unreadable");
        ApiError::not_found(format!("the plan image of floor {id} cannot be read: {e}"))
    })?;
    let mut resp = bytes.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_str(&plan.content_type).map_err(ApiError::internal)?);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // An uploaded SVG is a document: opened on its own it may run nothing and load nothing.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; sandbox"),
    );
    Ok(resp)
}

/// Removes a floor's plan image (the badge places are kept for the next image).
#[utoipa::path(delete, path = "/api/t3000/floors/{id}/plan", tag = "buildings", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_plan(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let old = floor(&state, id)?;
    if old.plan.is_none() {
        return Err(ApiError::not_found(format!("floor {id} has no plan")));
    }
    state.catalog.put(Floor { plan: None, updated_us: state.now_us(), ..old.clone() })?;
    state.plans.remove(id);
    audit(&state, &who, "floor.plan.delete", format!("floor:{id}"), json(&old.plan), None);
    Ok(StatusCode::NO_CONTENT)
}

/// Sets where point badges sit on a floor's plan (all of them at once).
///
/// Each point at most once (`duplicate_point`, 422: items compared by `point_id`, which JSON
/// Schema cannot say); a point that does not exist: 404.
#[utoipa::path(put, path = "/api/t3000/floors/{id}/plan/points", tag = "buildings", params(("id" = i64, Path)),
    request_body = PlanPointsBody,
    responses((status = 200, body = Floor), (status = 400, body = ErrorBody),
        (status = 404, description = "No such floor or point", body = ErrorBody),
        (status = 422, description = "A point placed twice (`duplicate_point`)", body = ErrorBody)))]
pub async fn put_points(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<i64>,
    body: Bytes,
) -> ApiResult<Json<Floor>> {
    let old = floor(&state, id)?;
    let body: PlanPointsBody = json_body(&body)?;
    if body.points.len() > MAX_PLAN_POINTS {
        return Err(ApiError::unprocessable("too_many_points", format!("at most {MAX_PLAN_POINTS} badges on a plan")));
    }
    let known = crate::http::routes::points::point_ids(&state);
    let mut seen = std::collections::HashSet::new();
    for (i, p) in body.points.iter().enumerate() {
        if !(0.0..=1.0).contains(&p.x) || !(0.0..=1.0).contains(&p.y) {
            return Err(ApiError::unprocessable(
                "invalid_position",
                format!("points[{i}]: x and y are fractions of the image, 0 to 1 (got {}, {})", p.x, p.y),
            ));
        }
        if !known.contains(&p.point_id) {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_point",
                format!("points[{i}]: no point {}", p.point_id),
            ));
        }
        if !seen.insert(p.point_id) {
            return Err(ApiError::unprocessable(
                "duplicate_point",
                format!("points[{i}]: point {} is placed twice", p.point_id),
            ));
        }
    }
    let new = Floor { plan_points: body.points, updated_us: state.now_us(), ..old.clone() };
    state.catalog.put(new.clone())?;
    audit(&state, &who, "floor.plan.points", format!("floor:{id}"), json(&old.plan_points), json(&new.plan_points));
    Ok(Json(new))
}
