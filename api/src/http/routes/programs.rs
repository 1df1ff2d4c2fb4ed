//! Control programs: stored, checked, and run by the server's program runner
//! (`service::programs`). Every answer about a program is its [`ProgramView`]: the stored record
//! with the runner's status. The source is checked on save (parsed and bound against the device's
//! points): 422 with `line` and `column` in the error.

use crate::http::AppState;
use crate::http::error::{ApiError, ApiResult, ErrorBody};
use crate::http::routes::json_body;
use crate::http::routes::{audit, found};
use crate::model::check::check_name;
use crate::model::program::{Program, ProgramView};
use crate::service::auth::Principal;
use crate::service::programs::ProgramError;
use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

/// Body of POST /programs.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProgram {
    #[schema(schema_with = crate::http::rules::name_schema)]
    pub name: String,
    /// The device (a T3 panel) it belongs to: point names without a panel prefix are its points.
    pub device_id: i64,
    /// The program text, at most 1,048,576 characters.
    #[schema(max_length = 1_048_576)]
    pub source: String,
    /// Run it from the next scan (default false).
    #[serde(default)]
    pub enabled: bool,
}

/// Body of PUT /programs/{id}: the fields to change.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProgramChange {
    #[schema(schema_with = crate::http::rules::name_schema)]
    pub name: Option<String>,
    pub device_id: Option<i64>,
    /// The program text, at most 1,048,576 characters.
    #[schema(max_length = 1_048_576)]
    pub source: Option<String>,
    pub enabled: Option<bool>,
}

/// Body of POST /programs/check.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    /// The program text, at most 1,048,576 characters.
    #[schema(max_length = 1_048_576)]
    pub source: String,
    /// The device its point names are bound against.
    pub device_id: i64,
}

/// Whether a program text parses and binds.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CheckResult {
    pub ok: bool,
    /// The first error, with its place; absent when `ok`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<CheckError>,
}

/// An error in a program text.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CheckError {
    /// `syntax_error`, `unknown_point` or `invalid_program`.
    pub code: String,
    /// 1-based line and column of the text.
    pub line: u32,
    pub column: u32,
    /// What is wrong: what was expected and what was found, or the point that is not known.
    pub message: String,
}

fn check_source(source: &str) -> ApiResult<()> {
    if source.chars().count() > crate::http::rules::PROGRAM_CHARS {
        return Err(ApiError::unprocessable("too_large", "a program's source is at most 1,048,576 characters"));
    }
    Ok(())
}

fn summary(p: &Program) -> serde_json::Value {
    serde_json::json!({ "name": p.name, "device_id": p.device_id, "enabled": p.enabled, "bytes": p.source.len() })
}

/// Every program, with its status.
#[utoipa::path(get, path = "/api/t3000/programs", tag = "programs", responses((status = 200, body = [ProgramView])))]
pub async fn list(State(state): State<AppState>) -> Json<Vec<ProgramView>> {
    Json(state.programs.views())
}

/// One program, with its status.
#[utoipa::path(get, path = "/api/t3000/programs/{id}", tag = "programs", params(("id" = i64, Path)),
    responses((status = 200, body = ProgramView), (status = 404, body = ErrorBody)))]
pub async fn get_one(State(state): State<AppState>, Path(id): Path<i64>) -> ApiResult<Json<ProgramView>> {
    let p = found::<Program>(&state, id, "program")?;
    Ok(Json(state.programs.view(&p)))
}

/// Stores a program (checked: it must parse and its points bind to its device's); it runs from
/// the next scan when `enabled`.
#[utoipa::path(post, path = "/api/t3000/programs", tag = "programs", request_body = NewProgram,
    responses((status = 201, body = ProgramView), (status = 404, body = ErrorBody),
        (status = 422, description = "`syntax_error`, `unknown_point` or `invalid_program`, with `line` and `column`", body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<ProgramView>)> {
    let req: NewProgram = json_body(&body)?;
    let name = check_name("program", &req.name)?;
    check_source(&req.source)?;
    state.programs.check(&req.source, req.device_id)?;
    let p = state.catalog.insert(Program {
        id: 0,
        name,
        device_id: Some(req.device_id),
        source: req.source,
        enabled: req.enabled,
        status: "stopped".into(),
        updated_us: state.now_us(),
        t3000: None,
    })?;
    state.programs.upsert(p.clone(), "created").await;
    audit(&state, &who, "program.create", format!("program:{}", p.id), None, Some(summary(&p)));
    Ok((StatusCode::CREATED, Json(state.programs.view(&p))))
}

/// Changes a program's name, device, text or `enabled` (each optional); a changed program starts
/// afresh (timers, edges and WAIT start over). Enabling a program imported from a panel stops the
/// panel's own copy as `/enable` does (`panel` says what happened).
#[utoipa::path(put, path = "/api/t3000/programs/{id}", tag = "programs", params(("id" = i64, Path)),
    request_body = ProgramChange,
    responses((status = 200, body = ProgramView), (status = 404, body = ErrorBody),
        (status = 422, description = "`syntax_error`, `unknown_point` or `invalid_program`, with `line` and `column`", body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<i64>,
    body: axum::body::Bytes,
) -> ApiResult<Json<ProgramView>> {
    let req: ProgramChange = json_body(&body)?;
    let old = found::<Program>(&state, id, "program")?;
    let mut p = old.clone();
    if let Some(name) = &req.name {
        p.name = check_name("program", name)?;
    }
    if let Some(d) = req.device_id {
        p.device_id = Some(d);
    }
    if let Some(source) = req.source {
        check_source(&source)?;
        p.source = source;
    }
    if let Some(enabled) = req.enabled {
        p.enabled = enabled;
    }
    // The text as it will run, checked against the device it will run on.
    if req.device_id.is_some() || p.source != old.source || (p.enabled && !old.enabled) {
        let device = p.device_id.ok_or(ProgramError::NoDevice)?;
        state.programs.check(&p.source, device)?;
    }
    p.updated_us = state.now_us();
    state.catalog.put(p.clone())?;
    state.programs.upsert(p.clone(), "updated").await;
    let panel = if p.enabled && !old.enabled { state.programs.take_over_from_panel(&p).await } else { None };
    audit(&state, &who, "program.update", format!("program:{id}"), Some(summary(&old)), Some(with_panel(&p, &panel)));
    Ok(Json(ProgramView { panel, ..state.programs.view(&p) }))
}

/// The audit summary of `p`, with what happened to the panel's own copy when there is something.
fn with_panel(p: &Program, panel: &Option<String>) -> serde_json::Value {
    let mut v = summary(p);
    if let Some(note) = panel {
        v["panel"] = note.clone().into();
    }
    v
}

/// Deletes a program: it stops, and every point it commanded is relinquished.
#[utoipa::path(delete, path = "/api/t3000/programs/{id}", tag = "programs", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let old = found::<Program>(&state, id, "program")?;
    state.catalog.delete::<Program>(id)?;
    state.programs.remove(&old).await;
    audit(&state, &who, "program.delete", format!("program:{id}"), Some(summary(&old)), None);
    Ok(StatusCode::NO_CONTENT)
}

/// Runs one scan of the program now, enabled or not (a program in error starts afresh first);
/// answers the program with what the scan did to its status.
#[utoipa::path(post, path = "/api/t3000/programs/{id}/run", tag = "programs", params(("id" = i64, Path)),
    responses((status = 200, body = ProgramView), (status = 404, body = ErrorBody)))]
pub async fn run(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<i64>,
) -> ApiResult<Json<ProgramView>> {
    found::<Program>(&state, id, "program")?;
    let p = state.programs.run_once(id).await?;
    let v = state.programs.view(&p);
    audit(&state, &who, "program.run", format!("program:{id}"), None, Some(serde_json::json!({ "status": v.status })));
    Ok(Json(v))
}

/// Enables the program: it starts afresh (also one in error) and runs from the next scan. A
/// program imported from a panel's `.prog` file is stopped on that panel where its register map
/// allows (its program table); `panel` says what happened.
#[utoipa::path(post, path = "/api/t3000/programs/{id}/enable", tag = "programs", params(("id" = i64, Path)),
    responses((status = 200, body = ProgramView), (status = 404, body = ErrorBody)))]
pub async fn enable(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<i64>,
) -> ApiResult<Json<ProgramView>> {
    set_enabled(state, who, id, true).await
}

/// Disables the program: it stops, and every point it commanded is relinquished.
#[utoipa::path(post, path = "/api/t3000/programs/{id}/disable", tag = "programs", params(("id" = i64, Path)),
    responses((status = 200, body = ProgramView), (status = 404, body = ErrorBody)))]
pub async fn disable(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<i64>,
) -> ApiResult<Json<ProgramView>> {
    set_enabled(state, who, id, false).await
}

async fn set_enabled(state: AppState, who: Principal, id: i64, enabled: bool) -> ApiResult<Json<ProgramView>> {
    let old = found::<Program>(&state, id, "program")?;
    let (p, panel) = state.programs.set_enabled(id, enabled).await?;
    let action = if enabled { "program.enable" } else { "program.disable" };
    audit(&state, &who, action, format!("program:{id}"), Some(summary(&old)), Some(with_panel(&p, &panel)));
    Ok(Json(ProgramView { panel, ..state.programs.view(&p) }))
}

/// Checks a program text for a device without storing anything: whether it parses and every
/// point name binds, else the first error with its line and column (the editor's inline errors).
#[utoipa::path(post, path = "/api/t3000/programs/check", tag = "programs", request_body = CheckRequest,
    responses((status = 200, body = CheckResult), (status = 404, body = ErrorBody)))]
pub async fn check(State(state): State<AppState>, body: axum::body::Bytes) -> ApiResult<Json<CheckResult>> {
    let req: CheckRequest = json_body(&body)?;
    check_source(&req.source)?;
    match state.programs.check(&req.source, req.device_id) {
        Ok(()) => Ok(Json(CheckResult { ok: true, error: None })),
        Err(ProgramError::Invalid(p)) => Ok(Json(CheckResult {
            ok: false,
            error: Some(CheckError { code: p.code.into(), line: p.line, column: p.column, message: p.to_string() }),
        })),
        Err(e) => Err(e.into()),
    }
}
