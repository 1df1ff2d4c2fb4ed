//! Control programs: their sources and state are stored and listed; running them is not built yet.

use crate::http::AppState;
use crate::http::error::{ApiError, ApiResult, ErrorBody};
use crate::http::routes::json_body;
use crate::http::routes::{audit, found};
use crate::model::check::check_name;
use crate::model::program::Program;
use crate::service::auth::Principal;
use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use serde::Deserialize;

/// Body of POST /programs.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProgram {
    #[schema(schema_with = crate::http::rules::name_schema)]
    pub name: String,
    pub device_id: Option<i64>,
    /// The program text, at most 1,048,576 characters.
    #[schema(max_length = 1_048_576)]
    pub source: String,
}

/// Every program.
#[utoipa::path(get, path = "/api/t3000/programs", tag = "programs", responses((status = 200, body = [Program])))]
pub async fn list(State(state): State<AppState>) -> Json<Vec<Program>> {
    Json(state.catalog.list::<Program>())
}

/// Stores (uploads) a program.
#[utoipa::path(post, path = "/api/t3000/programs", tag = "programs", request_body = NewProgram,
    responses((status = 201, body = Program), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<Program>)> {
    let req: NewProgram = json_body(&body)?;
    let name = check_name("program", &req.name)?;
    if req.source.chars().count() > crate::http::rules::PROGRAM_CHARS {
        return Err(ApiError::unprocessable("too_large", "a program's source is at most 1,048,576 characters"));
    }
    if let Some(d) = req.device_id {
        state.devices.find(&d.to_string())?;
    }
    let p = state.catalog.insert(Program {
        id: 0,
        name,
        device_id: req.device_id,
        source: req.source,
        status: "stopped".into(),
        updated_us: state.now_us(),
        t3000: None,
    })?;
    audit(
        &state,
        &who,
        "program.create",
        format!("program:{}", p.id),
        None,
        Some(serde_json::json!({ "name": p.name, "device_id": p.device_id, "bytes": p.source.len() })),
    );
    Ok((StatusCode::CREATED, Json(p)))
}

/// Running programs on the server is not built yet: 501 (404 for an unknown program).
#[utoipa::path(post, path = "/api/t3000/programs/{id}/run", tag = "programs", params(("id" = i64, Path)),
    responses((status = 501, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn run(State(state): State<AppState>, Path(id): Path<i64>) -> ApiResult<StatusCode> {
    found::<Program>(&state, id, "program")?;
    Err(ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "not_implemented",
        "running programs on the server is not available yet; programs are stored and listed only",
    ))
}
