//! `GET /api/t3000/export`: CSV, XLSX or Parquet, streamed as it is produced.

use crate::http::AppState;
use crate::http::error::{ApiError, ApiResult, ErrorBody};
use crate::http::timeparse::{parse_instant, parse_points};
use crate::model::place::Building;
use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::collections::HashMap;
use std::io::Write;
use t3_storage::export::{ExportFormat, ExportRequest, Layout, PointLabel};
use tokio::sync::mpsc;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// Comma-separated point ids.
    #[param(value_type = crate::http::rules::PointListParam, inline)]
    pub points: String,
    /// Start (inclusive): RFC 3339, epoch microseconds, `now` or `now-7d`. Default `now-24h`.
    #[param(value_type = Option<crate::http::rules::InstantParam>, inline)]
    pub from: Option<String>,
    /// End (exclusive). Default `now`. A `to` not after `from` makes the range empty: a file without rows.
    #[param(value_type = Option<crate::http::rules::InstantParam>, inline)]
    pub to: Option<String>,
    /// `csv` (default), `xlsx` or `parquet` (any case).
    #[param(value_type = Option<crate::http::rules::ExportFormatParam>, inline)]
    pub format: Option<String>,
    /// `long` (one row per sample, default) or `wide` (one column per point), any case.
    #[param(value_type = Option<crate::http::rules::ExportLayoutParam>, inline)]
    pub layout: Option<String>,
    /// Average per bucket (`15m`, `1h`, ...; at least `1s`) instead of raw rows.
    #[param(value_type = Option<crate::http::rules::ExportBucketParam>, inline)]
    pub bucket: Option<String>,
}

/// A `Write` that hands 64 KiB chunks to the response body; a gone client stops the export.
/// (The backup's archive streams through it too.)
pub(crate) struct ChannelWriter {
    pub(crate) tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    pub(crate) buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 64 * 1024 {
            self.send()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

pub fn export_request(p: &ExportParams, now: i64) -> Result<ExportRequest, String> {
    let points = parse_points(&p.points).map_err(|e| format!("points: {e}"))?;
    let from = parse_instant(p.from.as_deref().unwrap_or("now-24h"), now).map_err(|e| format!("from: {e}"))?;
    let to = parse_instant(p.to.as_deref().unwrap_or("now"), now).map_err(|e| format!("to: {e}"))?;
    let format: ExportFormat = p.format.as_deref().unwrap_or("csv").parse().map_err(|e| format!("format: {e}"))?;
    let layout: Layout = p.layout.as_deref().unwrap_or("long").parse().map_err(|e| format!("layout: {e}"))?;
    let bucket_us = p
        .bucket
        .as_deref()
        .map(|b| crate::http::rules::EXPORT_BUCKET.parse(b))
        .transpose()
        .map_err(|e| format!("bucket: {e}"))?;
    Ok(ExportRequest { points, from, to, format, layout, bucket_us })
}

/// What an export holds, for its file name: the building every point is in if they share one,
/// else the first point's name.
pub fn subject(
    points: &[u32],
    labels: &HashMap<u32, PointLabel>,
    building_of: impl Fn(u32) -> Option<String>,
) -> String {
    let buildings: Vec<Option<String>> = points.iter().map(|&p| building_of(p)).collect();
    if let Some(Some(first)) = buildings.first()
        && buildings.iter().all(|b| b.as_ref() == Some(first))
    {
        return first.clone();
    }
    let first = points.first().copied().unwrap_or_default();
    labels.get(&first).map_or_else(|| format!("point {first}"), |l| l.name.clone())
}

/// An instant in a file name: `20260126T101500Z`, or the microseconds outside chrono's range.
fn name_time(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .map_or_else(|| us.to_string(), |t| t.format("%Y%m%dT%H%M%SZ").to_string())
}

/// The file name of an export: `t3000-<subject>-<from>-<to>.<ext>`, in ASCII letters, digits and
/// `-` only (anything else in the subject becomes `-`), so it needs no quoting or encoding.
pub fn file_name(subject: &str, from: i64, to: i64, format: ExportFormat) -> String {
    let mut slug = String::new();
    for c in subject.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug: String = slug.trim_end_matches('-').chars().take(60).collect();
    let slug = slug.trim_end_matches('-');
    let slug = if slug.is_empty() { "export" } else { slug };
    format!("t3000-{slug}-{}-{}.{}", name_time(from), name_time(to), format.extension())
}

/// Exports history. The body streams while the export runs, in constant memory.
#[utoipa::path(
    get,
    path = "/api/t3000/export",
    tag = "history",
    params(ExportParams),
    responses(
        (status = 200, description = "The file (text/csv, XLSX or Parquet) as an attachment named \
            `t3000-<building or first point>-<from>-<to>.<ext>` (`Content-Disposition`; ASCII letters, digits and `-`, \
            times as `20260126T101500Z`). Long layout columns: `ts, point_id, point_name, unit, value, quality, \
            quality_name` (raw; `quality` the OPC code, `quality_name` such as `good` or `bad/comm_failure`) or \
            `ts, point_id, point_name, unit, avg, min, max, count` (with `bucket`). Wide layout: `ts` and one column \
            per point titled `<name> (<unit>)`. A point's name is its label, else `<device> <point>` (`AHU-1 IN1`); \
            its unit the one GET /points shows. Parquet (always long) carries the names and units in the footer's \
            key-value metadata `t3000.points` (JSON: `[{point_id, name, unit}]`).",
            headers(("Content-Disposition" = String, description = "`attachment; filename=\"t3000-AHU-1-IN1-20260126T000000Z-20260127T000000Z.csv\"`"))),
        (status = 400, body = ErrorBody),
        (status = 409, description = "Not even one bucket of every point fits `query.max_rows` (`too_many_rows`)", body = ErrorBody),
    )
)]
pub async fn export(
    State(state): State<AppState>,
    params: Result<Query<ExportParams>, QueryRejection>,
) -> ApiResult<Response> {
    let Query(params) = params.map_err(|e| ApiError::bad_request("invalid_parameter", e.body_text()))?;
    let req = export_request(&params, state.now_us()).map_err(|e| ApiError::bad_request("invalid_parameter", e))?;
    // What would stop the export before its first row is refused before the file starts.
    state.storage.check_export(&req)?;
    let (tx, mut rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let storage = state.storage.clone();
    let handle = tokio::runtime::Handle::current();
    let format = req.format;
    let catalog_points = crate::http::routes::points::export_labels(&state);
    let labels: HashMap<u32, PointLabel> = catalog_points.iter().map(|(&id, (l, _))| (id, l.clone())).collect();
    let building_of = |id: u32| {
        let b = catalog_points.get(&id).and_then(|(_, b)| *b)?;
        state.catalog.get::<Building>(b).map(|b| b.name)
    };
    let name = file_name(&subject(&req.points, &labels, building_of), req.from, req.to, format);
    tokio::task::spawn_blocking(move || {
        let mut w = ChannelWriter { tx: tx.clone(), buf: Vec::new() };
        let result = storage.export_blocking(&handle, &req, &labels, &mut w, &mut |_| {});
        let result = result.map_err(|e| e.to_string()).and_then(|_| w.flush().map_err(|e| e.to_string()));
        if let Err(e) = result {
            tracing::warn!(error = %e, "export stopped");
            // Abort the body so the client sees a failed transfer, not a short file.
            let _ = tx.blocking_send(Err(std::io::Error::other(e)));
        }
    });
    let stream = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let mut resp = Body::from_stream(stream).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    let disposition = format!("attachment; filename=\"{name}\"");
    h.insert(header::CONTENT_DISPOSITION, HeaderValue::from_str(&disposition).map_err(ApiError::internal)?);
    Ok(resp)
}
