//! `POST /api/t3000/backup`: one consistent archive of the running server's data, streamed as it
//! is written (see [`crate::service::backup`]).

use crate::http::AppState;
use crate::http::error::{ApiError, ApiResult, ErrorBody};
use crate::http::routes::export::ChannelWriter;
use crate::http::routes::json_body;
use crate::model::backup::BackupRequest;
use crate::service::auth::Principal;
use crate::service::backup::{Backup, Sources};
use axum::body::{Body, Bytes};
use axum::extract::{Extension, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use std::io::Write;
use tokio::sync::mpsc;

/// The header naming the archive's id.
pub const ID_HEADER: &str = "x-t3000-backup-id";

/// Takes a backup: the archive (tar) holds the data as every query answered at the moment of the
/// request, every sample acknowledged before it included: the manifest and its Parquet files,
/// the samples not yet in Parquet, the catalog, `points.json`, the floor plans, and the
/// configuration (secrets redacted), then `BACKUP.json` (every file's size and SHA-256) and
/// `BACKUP.sha256`. With `base` (the previous archive's `BACKUP.json`) the archive is incremental:
/// data files the base holds unchanged are listed but not included. Admin only; audited. A
/// failure while the archive streams aborts the transfer, leaving an archive without its manifest,
/// which `t3000 restore` refuses.
#[utoipa::path(
    post,
    path = "/api/t3000/backup",
    tag = "storage",
    request_body(content = Option<BackupRequest>, description = "Optional: the base archive's manifest, for an incremental backup"),
    responses(
        (status = 200, description = "The archive (tar), streamed; its id in `X-T3000-Backup-Id`", content_type = "application/x-tar",
            headers(("X-T3000-Backup-Id" = String, description = "The archive's id"))),
        (status = 400, description = "The body or the base manifest cannot be used", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 503, description = "`disk_full`: the data directory's free space is below `storage.disk_floor_free_mb`; a backup stages files there, so it waits until space is freed", body = ErrorBody),
    )
)]
pub async fn backup(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    body: Bytes,
) -> ApiResult<Response> {
    let req: BackupRequest = if body.iter().all(u8::is_ascii_whitespace) {
        BackupRequest::default()
    } else {
        json_body::<Option<BackupRequest>>(&body)?.unwrap_or_default()
    };
    let sources = Sources {
        storage: state.storage.clone(),
        catalog: state.catalog.clone(),
        registry: state.registry.clone(),
        plans: state.plans.clone(),
        config: (*state.reload.current()).clone(),
    };
    let base = req.base.as_ref().map(|b| b.id.clone());
    let backup = Backup::start(&sources, req.base).await?;
    let (id, created) = (backup.id().to_owned(), backup.created().to_owned());
    let (tx, mut rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let archive_id = id.clone();
    // Audited once the archive is sent, with the outcome: a transfer the client broke off (or
    // that stalled past the idle timeout) is no backup.
    let (log, remote, actor) = (state.audit.clone(), who.remote.clone(), who.actor());
    let entry = serde_json::json!({"id": id, "created": created, "base": base, "files": backup.file_count()});
    tokio::task::spawn_blocking(move || {
        let mut w = ChannelWriter { tx: tx.clone(), buf: Vec::new() };
        let result = backup.write_to(&mut w).map_err(|e| e.to_string()).and_then(|m| {
            w.flush().map_err(|e| e.to_string())?;
            Ok(m)
        });
        let outcome = match result {
            Ok(m) => {
                tracing::info!(id = %archive_id, files = m.entries.len(), "backup written");
                "ok".to_owned()
            }
            Err(e) => {
                tracing::warn!(id = %archive_id, error = %e, "backup stopped");
                let outcome = format!("failed: {e}");
                // Abort the body so the client sees a failed transfer, not a short archive.
                let _ = tx.blocking_send(Err(std::io::Error::other(e)));
                outcome
            }
        };
        log.record(remote, &actor, "backup", Some(format!("backup {archive_id}")), None, Some(entry), &outcome);
    });
    let stream = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let mut resp = Body::from_stream(stream).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-tar"));
    let name =
        format!("attachment; filename=\"t3000-backup-{}.tar\"", created.get(..19).unwrap_or("").replace(':', "-"));
    h.insert(header::CONTENT_DISPOSITION, HeaderValue::from_str(&name).map_err(ApiError::internal)?);
    h.insert(ID_HEADER, HeaderValue::from_str(&id).map_err(ApiError::internal)?);
    Ok(resp)
}
