//! `POST /api/t3000/import/prog`: a T3000 panel file (`.prog`) previewed against a device, or applied
//! to it (`apply=true`). The service is `service::import::prog`.

use crate::http::AppState;
use crate::http::error::{ApiError, ApiResult, ErrorBody};
use crate::service::auth::Principal;
use crate::service::import::prog::{self, Context, ImportPreview, ProgImportError};
use axum::Json;
use axum::extract::{Extension, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use serde::Deserialize;

/// Query of POST /import/prog.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    /// The name of a configured device (a T3 controller) the file describes.
    pub device: String,
    /// Apply the import; without it (or false) only the preview is returned.
    #[serde(default)]
    pub apply: bool,
}

impl From<ProgImportError> for ApiError {
    fn from(e: ProgImportError) -> ApiError {
        match e {
            ProgImportError::BadFile(e) => ApiError::unprocessable("invalid_prog_file", e.to_string()),
            ProgImportError::UnknownDevice(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "unknown_device", format!("device: {e}"))
            }
            ProgImportError::NotAPanel { .. } => ApiError::conflict("not_a_panel", e.to_string()),
            ProgImportError::Catalog(e) => ApiError::from(e),
            ProgImportError::Registry(e) => ApiError::internal(e),
            ProgImportError::TrendLog(e) => ApiError::from(e),
        }
    }
}

/// The file in the body: the body itself, or the `file` field of a `multipart/form-data` body.
fn file_bytes<'a>(headers: &HeaderMap, body: &'a [u8]) -> ApiResult<&'a [u8]> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !content_type.to_ascii_lowercase().starts_with("multipart/form-data") {
        return Ok(body);
    }
    let boundary = content_type
        .split(';')
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| k.eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v.trim_matches('"'))
        .filter(|b| !b.is_empty())
        .ok_or_else(|| ApiError::bad_request("invalid_multipart", "multipart/form-data without a boundary"))?;
    multipart_field(body, boundary.as_bytes(), "file").ok_or_else(|| {
        ApiError::bad_request("invalid_multipart", "the multipart body has no complete field named \"file\"")
    })
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from > hay.len() {
        return None;
    }
    hay[from..].windows(needle.len()).position(|w| w == needle).map(|i| i + from)
}

/// The contents of the part named `name` of a multipart body.
fn multipart_field<'a>(body: &'a [u8], boundary: &[u8], name: &str) -> Option<&'a [u8]> {
    let delimiter = [b"--", boundary].concat();
    let closing = [b"\r\n--", boundary].concat();
    let mut at = find(body, &delimiter, 0)? + delimiter.len();
    loop {
        // After a delimiter: "--" closes the body, else CRLF and the part's headers.
        if body.get(at..at + 2) == Some(b"--") {
            return None;
        }
        let headers_start = at + 2;
        let headers_end = find(body, b"\r\n\r\n", headers_start)?;
        let headers = String::from_utf8_lossy(&body[headers_start..headers_end]).to_ascii_lowercase();
        let content_start = headers_end + 4;
        let content_end = find(body, &closing, content_start)?;
        // The disposition's `name` parameter itself (not `filename`, which may say the same).
        let wanted = headers.lines().filter_map(|l| l.strip_prefix("content-disposition:")).any(|l| {
            l.split(';')
                .filter_map(|p| p.trim().split_once('='))
                .any(|(k, v)| k == "name" && v.trim_matches('"') == name)
        });
        if wanted {
            return Some(&body[content_start..content_end]);
        }
        at = content_end + closing.len();
    }
}

/// Previews (default) or applies a T3000 panel file to a device: labels, full labels and units of
/// its inputs, outputs and variables; its weekly routines as schedules, annual routines as holiday
/// calendars, monitors as trend logs, programs (their byte code kept verbatim). The body is the
/// file itself (`application/octet-stream`) or a `multipart/form-data` form with the file in field
/// `file`. Applying twice changes nothing the second time. Admin only.
#[utoipa::path(post, path = "/api/t3000/import/prog", tag = "import", params(ImportQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "The .prog file (or multipart/form-data with the file in field `file`)"),
    responses((status = 200, body = ImportPreview),
        (status = 400, description = "A multipart body without the `file` field", body = ErrorBody),
        (status = 404, description = "No such device (`unknown_device`)", body = ErrorBody),
        (status = 409, description = "The device is not a T3 panel (`not_a_panel`)", body = ErrorBody),
        (status = 413, description = "Body larger than server.max_body_bytes", body = ErrorBody),
        (status = 422, description = "Not a .prog file this server reads, with the byte offset of the problem (`invalid_prog_file`)", body = ErrorBody)))]
pub async fn import(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Query(q): Query<ImportQuery>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Json<ImportPreview>> {
    let bytes = file_bytes(&headers, &body)?;
    let file = t3_drivers::t3::prog::parse(bytes).map_err(ProgImportError::from)?;
    let cx = Context {
        catalog: &state.catalog,
        registry: &state.registry,
        trendlogs: &state.trendlogs,
        now_us: state.now_us(),
    };
    let preview = if q.apply {
        prog::apply(cx, &state.audit, &who.issuer(), &q.device, &file)?
    } else {
        prog::preview(cx, &q.device, &file)?
    };
    Ok(Json(preview))
}

#[cfg(test)]
mod tests {
    use super::multipart_field;

    #[test]
    fn multipart_fields_are_found_by_name() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n--XyZ\r\n\
Content-Disposition: form-data; name=\"file\"; filename=\"a.prog\"\r\nContent-Type: application/octet-stream\r\n\r\n\
\x55\xff\x06\r\n--\r\n--XyZ--\r\n";
        assert_eq!(multipart_field(body, b"XyZ", "file"), Some(&b"\x55\xff\x06\r\n--"[..]));
        assert_eq!(multipart_field(body, b"XyZ", "note"), Some(&b"hello"[..]));
        assert_eq!(multipart_field(body, b"XyZ", "other"), None);
        // A part whose file is called "file" is not the field named "file".
        let decoy =
            b"--XyZ\r\nContent-Disposition: form-data; name=\"note\"; filename=\"file\"\r\n\r\nnot it\r\n--XyZ\r\n\
Content-Disposition: form-data; name=file\r\n\r\nit\r\n--XyZ--\r\n";
        assert_eq!(multipart_field(decoy, b"XyZ", "file"), Some(&b"it"[..]));
        assert_eq!(
            multipart_field(b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nno end", b"XyZ", "file"),
            None
        );
        assert_eq!(multipart_field(b"", b"XyZ", "file"), None);
    }
}
