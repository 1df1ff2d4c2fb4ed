//! HTTP handlers, one module per family of endpoints, and what they share: JSON bodies with
//! errors naming the field, and paging of list endpoints.

pub mod auth;
pub mod buildings;
pub mod devices;
pub mod export;
pub mod floorplans;
pub mod health;
pub mod history;
pub mod metrics;
pub mod points;
pub mod programs;
pub mod samples;
pub mod storage;
pub mod trendlogs;

use crate::error::{ApiError, ApiResult};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Parses a JSON body; the error names the field (`at name: invalid type ...`).
///
/// A number with a zero fraction (`5.0`, `1e3`) is taken as the integer it equals, as JSON Schema's
/// `integer` type (which the OpenAPI document uses) counts it one.
pub fn json_body<T: DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value: serde_json::Value = serde_path_to_error::deserialize(de).map_err(invalid_json)?;
    json_value(value)
}

/// [`json_body`] of a body already parsed (by axum's `Json`, which also checks the content type).
pub fn json_value<T: DeserializeOwned>(mut value: serde_json::Value) -> ApiResult<T> {
    integral_floats_to_integers(&mut value);
    serde_path_to_error::deserialize(value).map_err(invalid_json)
}

fn invalid_json<E: std::fmt::Display>(e: serde_path_to_error::Error<E>) -> ApiError {
    let path = e.path().to_string();
    let msg = if path == "." { e.inner().to_string() } else { format!("at {path}: {}", e.inner()) };
    ApiError::bad_request("invalid_json", msg)
}

/// Turns every number with a zero fraction that an `i64` or `u64` holds exactly into that integer.
pub fn integral_floats_to_integers(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            // Exactly representable: below 2^63 (i64) or 2^64 (u64) in magnitude.
            if f.fract() == 0.0 && (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&f) {
                *v = Value::from(f as i64);
            } else if f.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&f) {
                *v = Value::from(f as u64);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(integral_floats_to_integers),
        Value::Object(m) => m.values_mut().for_each(integral_floats_to_integers),
        _ => {}
    }
}

/// A value as JSON for the audit log (`None` if it cannot be encoded, which our types never are).
pub fn json<T: Serialize>(v: T) -> Option<serde_json::Value> {
    serde_json::to_value(v).ok()
}

/// Records a change a user made and that succeeded in the audit log: who, from where, what, old
/// and new.
pub fn audit(
    state: &crate::state::AppState,
    who: &crate::auth::Principal,
    action: &str,
    target: String,
    old: Option<serde_json::Value>,
    new: Option<serde_json::Value>,
) {
    state.auth.audit(who.remote.clone(), &who.actor(), action, Some(target), old, new, "ok");
}

/// Looks a catalog record up by id: 404 `no <what> <id>` when there is none.
pub fn found<T: t3_storage::catalog::Record>(state: &crate::state::AppState, id: i64, what: &str) -> ApiResult<T> {
    state.catalog.get::<T>(id).ok_or_else(|| ApiError::not_found(format!("no {what} {id}")))
}

/// An optional instant parameter (RFC 3339, epoch microseconds, `now-24h`); the error names it.
pub fn optional_instant(s: Option<&str>, what: &str) -> ApiResult<Option<i64>> {
    s.map(|s| {
        crate::timeparse::parse_instant(s, crate::auth::now_us())
            .map_err(|e| ApiError::bad_request("invalid_time", format!("{what}: {e}")))
    })
    .transpose()
}

pub use crate::rules::MAX_PAGE;

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

/// Loads every catalog record type the API keeps (users and tokens are registered by `Auth`).
pub fn register_catalog(catalog: &t3_storage::catalog::Catalog) -> t3_storage::Result<()> {
    catalog.register::<buildings::Building>()?;
    catalog.register::<buildings::Floor>()?;
    catalog.register::<buildings::Room>()?;
    catalog.register::<devices::DeviceRecord>()?;
    catalog.register::<points::PointRecord>()?;
    catalog.register::<programs::Program>()?;
    catalog.register::<trendlogs::TrendLog>()?;
    Ok(())
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
        // Numbers meant as floats stay what they are.
        let mut v = serde_json::json!({"x": 0.25, "y": 1.0, "big": 18446744073709551615.0});
        integral_floats_to_integers(&mut v);
        assert_eq!(v, serde_json::json!({"x": 0.25, "y": 1, "big": 18446744073709551615.0}));
    }
}
