//! `POST /api/t3000/config/reload`: hot reload of the configuration (`service::reload`).

use crate::http::AppState;
use crate::http::error::{ApiError, ErrorDetail};
use crate::service::auth::Principal;
use crate::service::reload::{ErrorPlace, ReloadError, ReloadReport, Trigger};
use axum::Json;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// A configuration file that was refused: nothing changed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InvalidConfigBody {
    /// `invalid_config`, with the whole message (`file:line: key: what is wrong`).
    pub error: ErrorDetail,
    /// Where in the file: key, line, environment variable.
    #[serde(flatten)]
    pub at: ErrorPlace,
}

/// `POST /api/t3000/config/reload`: reads the configuration file and the environment again.
///
/// What can change while running is applied at once (devices and their points and intervals,
/// retention, auth limits, CORS origins, WebSocket limits); keys that need a restart (such as
/// `server.listen`, `storage.data_dir`) are listed in `restart_needed` and keep their running
/// values. An invalid file changes nothing: 422 with the key and line. Admin only; audited as
/// `config.reload`. SIGHUP does the same.
#[utoipa::path(post, path = "/api/t3000/config/reload", tag = "system",
    responses(
        (status = 200, description = "Reloaded: what was applied, what needs a restart, what did not take", body = ReloadReport),
        (status = 409, description = "The server runs without a configuration file (`t3000 demo`): `no_config_file`", body = crate::http::error::ErrorBody),
        (status = 422, description = "The file is invalid or cannot be read (`invalid_config`): nothing changed", body = InvalidConfigBody),
    ),
    security(("bearer" = [])))]
pub async fn reload(State(state): State<AppState>, Extension(who): Extension<Principal>) -> Response {
    match state.reload.reload(Trigger::Api(who.issuer())).await {
        Ok(report) => Json(report).into_response(),
        Err(e @ ReloadError::NoFile) => ApiError::conflict("no_config_file", e.to_string()).into_response(),
        Err(ReloadError::Invalid(e)) => {
            let body = InvalidConfigBody {
                error: ErrorDetail::new("invalid_config", e.to_string()),
                at: ErrorPlace::from(&e),
            };
            (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
        }
    }
}
