//! `POST /api/t3000/samples`: pushed samples, as JSON or as an Arrow IPC stream.

use crate::http::AppState;
use crate::http::error::{ApiError, ApiResult, ErrorBody};
use crate::http::timeparse::check_epoch_us;
use arrow::array::{Array, AsArray};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{DataType, Float64Type, Int64Type, TimeUnit, UInt8Type, UInt32Type};
use arrow::ipc::reader::StreamReader;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use t3_core::{PointId, Quality, Sample};

pub const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";

/// One pushed sample.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SampleIn {
    pub point_id: u32,
    /// RFC 3339 (`2026-11-26T10:00:00.5Z`) or epoch microseconds (an integer whose size shows
    /// seconds, milliseconds or nanoseconds is refused).
    #[schema(schema_with = ts_schema)]
    pub ts: TsIn,
    /// The value; `null` (or absent) only with a bad quality, 0 to 63 (no value available).
    pub value: Option<f64>,
    /// OPC-style quality byte; 192 (good) when absent.
    #[serde(default = "good")]
    #[schema(maximum = 255)]
    pub quality: u8,
}

/// The schema of [`SampleIn::ts`]: a string or an integer, as [`TsIn`] takes either.
fn ts_schema() -> utoipa::openapi::Schema {
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, Type};
    OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(crate::http::rules::RFC3339_PATTERN.as_str()))
                .examples(["2026-11-26T10:00:00Z"]),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                .minimum(Some(crate::http::timeparse::EPOCH_US_RANGE.start as f64))
                .maximum(Some((crate::http::timeparse::EPOCH_US_RANGE.end - 1) as f64)),
        )
        .description(Some(
            "RFC 3339 (`2026-11-26T10:00:00.5Z`) or epoch microseconds. An integer below 10^14 or from 10^17 on \
             (epoch seconds, milliseconds or nanoseconds of any time after 1973-03-03) is refused with 422; \
             a time more than `ingest.max_future_secs` ahead of the server's clock with 409.",
        ))
        .into()
}

fn good() -> u8 {
    Quality::GOOD.0
}

/// A time stamp as sent: microseconds, and whether it came as an integer (whose unit
/// [`check_epoch_us`] checks) or as RFC 3339.
#[derive(Debug, Clone, Copy)]
pub struct TsIn {
    pub us: i64,
    pub integer: bool,
}

impl<'de> Deserialize<'de> for TsIn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = TsIn;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an RFC 3339 string or epoch microseconds")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<TsIn, E> {
                Ok(TsIn { us: v, integer: true })
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<TsIn, E> {
                i64::try_from(v).map(|us| TsIn { us, integer: true }).map_err(|_| E::custom("ts out of range"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<TsIn, E> {
                chrono::DateTime::parse_from_rfc3339(v)
                    .map(|d| TsIn { us: d.timestamp_micros(), integer: false })
                    .map_err(|e| E::custom(format!("ts '{v}' is not RFC 3339: {e}")))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IngestReply {
    /// Samples stored.
    pub accepted: usize,
    /// The durability level they reached before this reply: `wal` or `parquet`.
    pub durability: String,
}

pub fn decode_json(body: &[u8]) -> ApiResult<Vec<Sample>> {
    let body = crate::http::routes::integral_numbers(body);
    let de = &mut serde_json::Deserializer::from_slice(&body);
    let rows: Vec<SampleIn> = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let msg = if path == "." { e.inner().to_string() } else { format!("at {path}: {}", e.inner()) };
        ApiError::bad_request("invalid_json", msg)
    })?;
    let mut out = Vec::with_capacity(rows.len());
    for (index, r) in rows.into_iter().enumerate() {
        if r.ts.integer {
            check_ts_unit(index, r.ts.us)?;
        }
        out.push(Sample {
            point_id: PointId(r.point_id),
            ts: r.ts.us,
            value: r.value.unwrap_or(f64::NAN),
            quality: Quality(r.quality),
        });
    }
    Ok(out)
}

/// 422 for sample `index` whose integer time stamp is not epoch microseconds by its magnitude.
fn check_ts_unit(index: usize, ts: i64) -> ApiResult<()> {
    check_epoch_us(ts).map_err(|why| ApiError::unprocessable("invalid_sample", format!("sample {index}: {why}")))
}

fn column<'a>(batch: &'a arrow::record_batch::RecordBatch, name: &str) -> ApiResult<&'a arrow::array::ArrayRef> {
    batch
        .column_by_name(name)
        .ok_or_else(|| ApiError::bad_request("invalid_arrow", format!("the Arrow stream has no '{name}' column")))
}

fn cast(a: &arrow::array::ArrayRef, to: &DataType, name: &str) -> ApiResult<arrow::array::ArrayRef> {
    if a.null_count() > 0 && name != "value" {
        return Err(ApiError::bad_request("invalid_arrow", format!("column '{name}' has nulls")));
    }
    cast_with_options(a, to, &CastOptions { safe: false, ..Default::default() })
        .map_err(|e| ApiError::bad_request("invalid_arrow", format!("column '{name}': {e}")))
}

/// Decodes an Arrow IPC stream with columns `point_id` (integer), `ts` (timestamp or date of any
/// unit, or integer epoch microseconds, checked like JSON's), `value` (number; null only with a bad
/// quality) and optionally `quality`.
pub fn decode_arrow(body: &[u8]) -> ApiResult<Vec<Sample>> {
    let reader = StreamReader::try_new(std::io::Cursor::new(body), None)
        .map_err(|e| ApiError::bad_request("invalid_arrow", format!("not an Arrow IPC stream: {e}")))?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| ApiError::bad_request("invalid_arrow", e.to_string()))?;
        let p = cast(column(&batch, "point_id")?, &DataType::UInt32, "point_id")?;
        let ts_col = column(&batch, "ts")?;
        // A timestamp or date column carries its unit; a plain number is checked like JSON's.
        let (ts, integer) = match ts_col.data_type() {
            DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64 => {
                let us = cast(ts_col, &DataType::Timestamp(TimeUnit::Microsecond, None), "ts")?;
                (cast(&us, &DataType::Int64, "ts")?, false)
            }
            _ => (cast(ts_col, &DataType::Int64, "ts")?, true),
        };
        let v = cast(column(&batch, "value")?, &DataType::Float64, "value")?;
        let q = match batch.column_by_name("quality") {
            Some(q) => Some(cast(q, &DataType::UInt8, "quality")?),
            None => None,
        };
        let (p, ts, v) =
            (p.as_primitive::<UInt32Type>(), ts.as_primitive::<Int64Type>(), v.as_primitive::<Float64Type>());
        let q = q.as_ref().map(|q| q.as_primitive::<UInt8Type>());
        for i in 0..batch.num_rows() {
            if integer {
                check_ts_unit(out.len(), ts.value(i))?;
            }
            out.push(Sample {
                point_id: PointId(p.value(i)),
                ts: ts.value(i),
                value: if v.is_null(i) { f64::NAN } else { v.value(i) },
                quality: Quality(q.map_or(Quality::GOOD.0, |q| q.value(i))),
            });
        }
    }
    Ok(out)
}

/// Stores samples. A 200 reply means every sample is durable at the server's acknowledgement level.
#[utoipa::path(
    post,
    path = "/api/t3000/samples",
    tag = "samples",
    request_body(
        description = "A JSON array of samples, or an Arrow IPC stream (Content-Type application/vnd.apache.arrow.stream) with columns point_id, ts, value and optionally quality",
        content(
            (Vec<SampleIn> = "application/json"),
            (String = "application/vnd.apache.arrow.stream")
        )
    ),
    responses(
        (status = 200, description = "Stored and durable", body = IngestReply),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 413, description = "Body larger than server.max_body_bytes", body = ErrorBody),
        (status = 415, description = "Unsupported content type", body = ErrorBody),
        (status = 409, description = "Nothing was stored: valid samples that the clock or the configuration refuse now: a ts more than `ingest.max_future_secs` ahead of the server's clock (`ts_in_future`; the message names the sample's index), or a batch on more than `ingest.max_days_per_batch` UTC days (`too_many_days`)", body = ErrorBody),
        (status = 422, description = "Nothing was stored: a sample is invalid (`invalid_sample`: ts out of range, an integer ts in seconds, milliseconds or nanoseconds instead of microseconds, NaN (Arrow) or no value with a quality that is not bad, ...; the message names the sample's index)", body = ErrorBody),
        (status = 503, description = "Writes are refused (`disk_full`: the data directory's free space is below storage.disk_floor_free_mb, taken again by itself once space returns; the WAL is read-only for now: a full disk or no file descriptors, retried by the server; WAL poisoned; backlog; shutting down), with `Retry-After` when a retry can succeed; nothing was stored", body = ErrorBody),
    )
)]
pub async fn post_samples(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<IngestReply>)> {
    let body = body.map_err(|e| crate::http::error::body_error(e.status(), e.body_text(), "invalid_body"))?;
    let ctype = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("application/json");
    let mime = ctype.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let samples = match mime.as_str() {
        "application/json" | "" => decode_json(&body)?,
        ARROW_STREAM => decode_arrow(&body)?,
        other => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("content type '{other}' is not accepted; send application/json or {ARROW_STREAM}"),
            ));
        }
    };
    let n = samples.len();
    state.storage.ingest(samples).await?;
    let durability = match state.storage.config().storage.ack {
        t3_core::config::AckLevel::Wal => "wal",
        t3_core::config::AckLevel::Parquet => "parquet",
    };
    Ok((StatusCode::OK, Json(IngestReply { accepted: n, durability: durability.into() })))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Integer fields take numbers with a zero fraction, as JSON Schema's `integer` does.
    #[test]
    fn integers_written_with_a_fraction_of_zero_are_integers() {
        let ts = 1_764_150_000_000_000i64;
        let body = format!(
            r#"[{{"point_id": 2.0, "ts": {ts}.0, "value": 1, "quality": 13.0}}, {{"point_id": 1e1, "ts": 1.76415e15, "value": 2}}]"#
        );
        let s = decode_json(body.as_bytes()).unwrap();
        assert_eq!((s[0].point_id.0, s[0].ts, s[0].quality.0), (2, ts, 13));
        assert_eq!((s[1].point_id.0, s[1].ts, s[1].quality.0), (10, 1_764_150_000_000_000, 192));
        for bad in [
            r#"[{"point_id": 2.5, "ts": 1764150000000000, "value": 1}]"#,
            r#"[{"point_id": 1, "ts": 1764150000000000.5, "value": 1}]"#,
            r#"[{"point_id": 1, "ts": 1764150000000000, "value": 1, "quality": 192.5}]"#,
            r#"[{"point_id": 1, "ts": 1764150000000000, "value": 1, "quality": 256.0}]"#,
            r#"[{"point_id": -1.0, "ts": 1764150000000000, "value": 1}]"#,
            r#"[{"point_id": 4294967296.0, "ts": 1764150000000000, "value": 1}]"#,
        ] {
            let e = decode_json(bad.as_bytes()).unwrap_err();
            assert_eq!((e.status, e.code), (StatusCode::BAD_REQUEST, "invalid_json"), "{bad}: {}", e.message);
        }
    }
}
