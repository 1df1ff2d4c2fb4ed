//! HTTP handlers, one module per family of endpoints, and what they share: JSON bodies with
//! errors naming the field, and paging of list endpoints.

pub mod alarms;
pub mod alerts;
pub mod auth;
pub mod backup;
pub mod buildings;
pub mod config;
pub mod csv;
pub mod devices;
pub mod export;
pub mod floorplans;
pub mod health;
pub mod history;
pub mod import_prog;
pub mod import_webview;
pub mod metrics;
pub mod plugins;
pub mod points;
pub mod programs;
pub mod samples;
pub mod schedules;
pub mod storage;
pub mod sync;
pub mod trendlogs;

use crate::http::error::{ApiError, ApiResult};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Parses a JSON body; the error names the field (`at name: invalid type ...`).
///
/// A number with a zero fraction (`5.0`, `1e3`) is taken as the integer it equals, as JSON Schema's
/// `integer` type (which the OpenAPI document uses) counts it one.
pub fn json_body<T: DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    let bytes = integral_numbers(bytes);
    let de = &mut serde_json::Deserializer::from_slice(&bytes);
    serde_path_to_error::deserialize(de).map_err(invalid_json)
}

fn invalid_json<E: std::fmt::Display>(e: serde_path_to_error::Error<E>) -> ApiError {
    let path = e.path().to_string();
    let msg = if path == "." { e.inner().to_string() } else { format!("at {path}: {}", e.inner()) };
    ApiError::bad_request("invalid_json", msg)
}

/// JSON text with every number that has a fraction or an exponent but equals an integer (`5.0`,
/// `1e3`, `1.7e15`) written as that integer, so that integer fields take it. The number is read
/// as Rust's `f64` parser reads it (correctly rounded, as a JSON Schema validator's would be;
/// serde_json's own parser may be one unit off in the last place for 16 digits and more, which
/// would turn `3764242261600770.0` into a fraction). Strings are left alone; text that is not JSON
/// passes through for the parser to refuse.
pub fn integral_numbers(text: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let mut out: Option<Vec<u8>> = None;
    let (mut i, mut copied) = (0, 0);
    while i < text.len() {
        match text[i] {
            b'"' => {
                i += 1;
                while i < text.len() && text[i] != b'"' {
                    i += if text[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < text.len() && matches!(text[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') {
                    i += 1;
                }
                let token = &text[start..i];
                if !token.iter().any(|b| matches!(b, b'.' | b'e' | b'E')) {
                    continue;
                }
                let Some(v) = std::str::from_utf8(token).ok().and_then(|t| t.parse::<f64>().ok()) else { continue };
                let integer = if v.fract() != 0.0 || !v.is_finite() {
                    None
                } else if (0.0..18_446_744_073_709_551_616.0).contains(&v) {
                    Some((v as u64).to_string())
                } else if (-9_223_372_036_854_775_808.0..0.0).contains(&v) {
                    Some((v as i64).to_string())
                } else {
                    None
                };
                if let Some(integer) = integer {
                    let buf = out.get_or_insert_with(|| Vec::with_capacity(text.len()));
                    buf.extend_from_slice(&text[copied..start]);
                    buf.extend_from_slice(integer.as_bytes());
                    copied = i;
                }
            }
            _ => i += 1,
        }
    }
    match out {
        Some(mut buf) => {
            buf.extend_from_slice(&text[copied.min(text.len())..]);
            std::borrow::Cow::Owned(buf)
        }
        None => std::borrow::Cow::Borrowed(text),
    }
}

/// A value as JSON for the audit log (`None` if it cannot be encoded, which our types never are).
pub fn json<T: Serialize>(v: T) -> Option<serde_json::Value> {
    serde_json::to_value(v).ok()
}

/// Records a change a user made and that succeeded in the audit log: who, from where, what, old
/// and new.
pub fn audit(
    state: &crate::http::AppState,
    who: &crate::service::auth::Principal,
    action: &str,
    target: String,
    old: Option<serde_json::Value>,
    new: Option<serde_json::Value>,
) {
    state.audit.record(who.remote.clone(), &who.actor(), action, Some(target), old, new, "ok");
}

/// Looks a catalog record up by id: 404 `no <what> <id>` when there is none.
pub fn found<T: t3_storage::catalog::Record>(state: &crate::http::AppState, id: i64, what: &str) -> ApiResult<T> {
    state.catalog.get::<T>(id).ok_or_else(|| ApiError::not_found(format!("no {what} {id}")))
}

/// An optional instant parameter (RFC 3339, epoch microseconds, `now-24h`, relative to `now_us`);
/// the error names it.
pub fn optional_instant(s: Option<&str>, what: &str, now_us: i64) -> ApiResult<Option<i64>> {
    s.map(|s| {
        crate::http::timeparse::parse_instant(s, now_us)
            .map_err(|e| ApiError::bad_request("invalid_time", format!("{what}: {e}")))
    })
    .transpose()
}

pub use crate::http::rules::MAX_PAGE;

/// `offset` / `limit` of a list request (limit 100 by default, at most [`MAX_PAGE`]).
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub offset: usize,
    pub limit: usize,
}

impl Page {
    pub fn new(offset: Option<usize>, limit: Option<usize>) -> ApiResult<Page> {
        let limit = limit.unwrap_or(100);
        if limit == 0 || limit > MAX_PAGE {
            return Err(ApiError::bad_request("invalid_limit", format!("limit must be 1 to {MAX_PAGE}")));
        }
        Ok(Page { offset: offset.unwrap_or(0), limit })
    }

    /// One page of `items`, each shaped by `f`.
    pub fn apply<T, U>(self, items: Vec<T>, f: impl FnMut(T) -> U) -> Paged<U> {
        let total = items.len();
        let items = items.into_iter().skip(self.offset).take(self.limit).map(f).collect();
        Paged { items, total, offset: self.offset, limit: self.limit }
    }
}

/// One page of a list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Paged<T> {
    pub items: Vec<T>,
    /// How many match in all.
    pub total: usize,
    pub offset: usize,
    pub limit: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_fields_take_numbers_with_a_zero_fraction() {
        let f: buildings::FloorBody = json_body(br#"{"name": "F", "level": -2.0}"#).unwrap();
        assert_eq!(f.level, -2);
        let f: buildings::FloorBody = json_body(br#"{"name": "F", "level": 1e2}"#).unwrap();
        assert_eq!(f.level, 100);
        let e = json_body::<buildings::FloorBody>(br#"{"name": "F", "level": 2.5}"#).unwrap_err();
        assert_eq!(e.code, "invalid_json");
        assert!(e.message.starts_with("at level: invalid type: floating point `2.5`"), "{}", e.message);
        let e = json_body::<buildings::FloorBody>(br#"{"name": "F", "level": 1e300}"#).unwrap_err();
        assert!(e.message.starts_with("at level:"), "{}", e.message);
        let e = json_body::<buildings::FloorBody>(br#"{"name": "F", "lvl": 1}"#).unwrap_err();
        assert!(e.message.contains("unknown field `lvl`"), "{}", e.message);
    }

    #[test]
    fn numbers_equal_to_integers_are_written_as_integers() {
        let n = |s: &str| String::from_utf8(integral_numbers(s.as_bytes()).into_owned()).unwrap();
        assert_eq!(
            n(r#"{"x": 0.25, "y": 1.0, "z": -2e0, "big": 18446744073709551615.0}"#),
            r#"{"x": 0.25, "y": 1, "z": -2, "big": 18446744073709551615.0}"#
        );
        // serde_json alone reads this one as 3764242261600769.5.
        assert_eq!(n("[3764242261600770.0, 1.7e15, 1E3, 5]"), "[3764242261600770, 1700000000000000, 1000, 5]");
        // Strings stay as they are, escaped quotes included; so does what is not JSON.
        assert_eq!(n(r#"["1.0", "a\"2.0", 3.0]"#), r#"["1.0", "a\"2.0", 3]"#);
        assert_eq!(n("[1.0, -"), "[1, -");
        assert_eq!(n("1e400"), "1e400");
        assert_eq!(n("-0.0"), "0");
        assert!(matches!(integral_numbers(b"[1, 2.5]"), std::borrow::Cow::Borrowed(_)));
    }
}
