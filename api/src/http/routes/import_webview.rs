//! `POST /api/t3000/import/webview`: a T3000 WebView database (the file as the request body),
//! previewed, or imported with `apply=true`; `GET /api/t3000/import/webview/jobs[/{id}]`: the
//! history jobs and their progress. Admin only (`access::required_role`).

use crate::http::AppState;
use crate::http::error::{ApiError, ApiResult, ErrorBody};
use crate::service::auth::Principal;
use crate::service::import::webview::{JobStatus, Options, Preview, WebviewApplied, WebviewError};
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, extract::rejection::PathRejection};
use serde::{Deserialize, Serialize};

impl From<WebviewError> for ApiError {
    fn from(e: WebviewError) -> Self {
        match e {
            WebviewError::NotSqlite(m) => {
                ApiError::unprocessable("not_sqlite", format!("not a readable SQLite database: {m}"))
            }
            WebviewError::Schema { message, .. } => ApiError::unprocessable("not_webview_schema", message),
            WebviewError::Invalid(_, m) => ApiError::bad_request("invalid_parameter", m),
            WebviewError::NoJob(id) => ApiError::not_found(format!("no WebView import job {id}")),
            WebviewError::Catalog(e) => e.into(),
            e @ (WebviewError::Io(_) | WebviewError::Internal(_)) => ApiError::internal(e),
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ImportParams {
    /// Import (create the catalog records and start the history job); without it, a preview only.
    #[serde(default)]
    pub apply: bool,
    /// IANA time zone of the PC WebView ran on: `LoggingTime_Fmt` is its local time. Default `UTC`;
    /// also the time zone of the buildings the import creates.
    #[param(schema_with = crate::http::rules::time_zone_schema)]
    pub time_zone: Option<String>,
    /// Create the devices enabled (polled at once). Default false: they point at the site's real
    /// controllers, which the old system may still be polling.
    #[serde(default)]
    pub enable_devices: bool,
    /// Detail rows per stored batch (and per cursor step), 100 to 500000; default 50000.
    #[param(minimum = 100, maximum = 500000)]
    pub batch_rows: Option<usize>,
}

/// What `POST /import/webview` answers with 200: the preview, or an apply that found the file's
/// job done.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum WebviewAnswer {
    Preview(Box<Preview>),
    Applied(Box<WebviewApplied>),
}

/// Previews or imports a T3000 WebView database.
#[utoipa::path(post, path = "/api/t3000/import/webview", tag = "import",
    params(ImportParams),
    request_body(content = String, content_type = "application/octet-stream",
        description = "The WebView database file (webview_t3_device.db), as it is; streamed to the data directory's import folder, any size"),
    responses(
        (status = 200, description = "The preview (no apply: a WebviewPreview), or, with apply, a file imported before whose job is done: nothing changed (a WebviewApplied)", body = WebviewAnswer),
        (status = 202, description = "Applied: places, devices, points and trend logs created; the history job runs (GET /api/t3000/import/webview/jobs/{id})", body = WebviewApplied),
        (status = 400, description = "A bad parameter (unknown time_zone, batch_rows out of range): names it", body = ErrorBody),
        (status = 422, description = "Not a SQLite database (`not_sqlite`), or not WebView's schema (`not_webview_schema`: the message names the missing table or column); nothing was imported", body = ErrorBody),
    ))]
pub async fn import(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    params: Result<Query<ImportParams>, QueryRejection>,
    body: Body,
) -> ApiResult<Response> {
    let Query(p) = params.map_err(|e| ApiError::bad_request("invalid_parameter", e.body_text()))?;
    let opts = Options {
        time_zone: p.time_zone.unwrap_or_else(|| "UTC".into()),
        enable_devices: p.enable_devices,
        batch_rows: p.batch_rows.unwrap_or(crate::service::import::webview::DEFAULT_BATCH_ROWS),
    };
    let file = state.webview.receive(body.into_data_stream()).await?;
    if !p.apply {
        let preview: Preview = state.webview.preview(&file, &opts).await?;
        return Ok(Json(WebviewAnswer::Preview(Box::new(preview))).into_response());
    }
    let applied = state.webview.apply(&file, &opts, &who.issuer()).await?;
    let status = if applied.job.job.state == "done" && applied.created.is_empty() && applied.updated_points == 0 {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, Json(applied)).into_response())
}

/// Every WebView import job, newest first.
#[utoipa::path(get, path = "/api/t3000/import/webview/jobs", tag = "import",
    responses((status = 200, body = Vec<JobStatus>)))]
pub async fn jobs(State(state): State<AppState>) -> Json<Vec<JobStatus>> {
    Json(state.webview.jobs())
}

/// A WebView import job: state (`running`, `interrupted`, `done`, `failed`), rows done of the
/// total, samples stored, samples per second.
#[utoipa::path(get, path = "/api/t3000/import/webview/jobs/{id}", tag = "import",
    params(("id" = i64, Path, description = "Job id")),
    responses((status = 200, body = JobStatus), (status = 404, body = ErrorBody)))]
pub async fn job(State(state): State<AppState>, id: Result<Path<i64>, PathRejection>) -> ApiResult<Json<JobStatus>> {
    let Path(id) = id.map_err(|_| ApiError::not_found("no such job"))?;
    Ok(Json(state.webview.status(id)?))
}
