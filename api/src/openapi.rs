//! The OpenAPI document, generated from the handlers' annotations.

use axum::Json;
use utoipa::OpenApi;

#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "T3000 historian",
        description = "History, live values, exports, field devices, the building catalog and control of building \
            controllers. Every endpoint except login, /healthz, /readyz and this document needs \
            `Authorization: Bearer <token>` (POST /api/t3000/auth/login)."
    ),
    modifiers(&BearerAuth, &CommonErrors, &UnsignedIntegers),
    security(("bearer" = [])),
    paths(
        crate::routes::health::healthz,
        crate::routes::health::readyz,
        crate::routes::metrics::metrics,
        crate::routes::auth::login,
        crate::routes::auth::logout,
        crate::routes::auth::me,
        crate::routes::auth::change_password,
        crate::routes::auth::list_users,
        crate::routes::auth::create_user,
        crate::routes::auth::update_user,
        crate::routes::auth::delete_user,
        crate::routes::auth::list_tokens,
        crate::routes::auth::create_token,
        crate::routes::auth::delete_token,
        crate::routes::auth::audit,
        crate::routes::buildings::list,
        crate::routes::buildings::get_one,
        crate::routes::buildings::create,
        crate::routes::buildings::update,
        crate::routes::buildings::delete,
        crate::routes::buildings::floors,
        crate::routes::buildings::create_floor,
        crate::routes::buildings::update_floor,
        crate::routes::buildings::delete_floor,
        crate::routes::floorplans::put_plan,
        crate::routes::floorplans::get_plan,
        crate::routes::floorplans::delete_plan,
        crate::routes::floorplans::put_points,
        crate::routes::buildings::rooms,
        crate::routes::buildings::create_room,
        crate::routes::buildings::update_room,
        crate::routes::buildings::delete_room,
        crate::routes::devices::list,
        crate::routes::devices::get_one,
        crate::routes::devices::create,
        crate::routes::devices::update,
        crate::routes::devices::delete,
        crate::routes::devices::points,
        crate::routes::devices::status,
        crate::routes::devices::discover,
        crate::routes::devices::profiles,
        crate::routes::points::list,
        crate::routes::points::get_one,
        crate::routes::points::create,
        crate::routes::points::update,
        crate::routes::points::delete,
        crate::routes::points::write_value,
        crate::routes::points::relinquish,
        crate::routes::points::commands,
        crate::schedules::list,
        crate::schedules::get_one,
        crate::schedules::create,
        crate::schedules::update,
        crate::schedules::delete,
        crate::schedules::run,
        crate::schedules::calendars,
        crate::schedules::create_calendar,
        crate::schedules::update_calendar,
        crate::schedules::delete_calendar,
        crate::alarms::list,
        crate::alarms::history,
        crate::alarms::rules,
        crate::alarms::create_rule,
        crate::alarms::update_rule,
        crate::alarms::delete_rule,
        crate::alarms::acknowledge,
        crate::routes::trendlogs::list,
        crate::routes::trendlogs::create,
        crate::routes::trendlogs::update,
        crate::routes::trendlogs::delete,
        crate::routes::programs::list,
        crate::routes::programs::create,
        crate::routes::programs::run,
        crate::routes::samples::post_samples,
        crate::routes::storage::delete_samples,
        crate::routes::storage::quarantine,
        crate::routes::storage::acknowledge,
        crate::routes::history::point_history,
        crate::routes::history::history_batch,
        crate::routes::history::point_latest,
        crate::routes::history::points_latest,
        crate::routes::history::sql_query,
        crate::routes::export::export,
        serve,
    ),
    components(schemas(crate::error::ErrorBody, crate::error::ErrorDetail, crate::devices::DevicePoint))
)]
pub struct ApiDoc;

/// Declares the bearer token scheme every protected endpoint uses.
#[derive(Debug)]
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Adds the error answers that come from the layers around the handlers rather than from the
/// handlers themselves, to every operation that can get them and does not list them already:
/// 401 (no valid token) and 403 (a role too low, as [`crate::auth::required_role`] decides) from
/// the authorisation middleware, 400 from a path, query string or body that does not parse, and
/// 413 from a body over `server.max_body_bytes`.
#[derive(Debug)]
struct CommonErrors;

impl utoipa::Modify for CommonErrors {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use crate::auth::{Role, required_role};
        use axum::http::Method;
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build(),
                )
                .build()
        };
        for (path, item) in doc.paths.paths.iter_mut() {
            let operations = [
                (Method::GET, &mut item.get),
                (Method::PUT, &mut item.put),
                (Method::POST, &mut item.post),
                (Method::DELETE, &mut item.delete),
            ];
            for (method, op) in operations {
                let Some(op) = op else { continue };
                let mut add = |status: &str, description: &str| {
                    op.responses.responses.entry(status.to_owned()).or_insert_with(|| error(description).into());
                };
                let role = required_role(&method, path);
                if role.is_some() {
                    add("401", "No valid bearer token");
                }
                if role.is_some_and(|r| r > Role::Viewer) {
                    add("403", "The token's role may not do this");
                }
                if op.parameters.as_ref().is_some_and(|p| !p.is_empty()) || op.request_body.is_some() {
                    add("400", "A path, query parameter or body that does not parse");
                }
                if op.request_body.is_some() {
                    add("413", "The body is over server.max_body_bytes");
                }
            }
        }
    }
}

/// utoipa documents u8, u16 and u32 alike as `format: int32` with `minimum: 0`, but OpenAPI's int32
/// is signed: the document would call every point id from 2^31 on invalid. Those schemas lose the
/// format and keep `minimum: 0`.
#[derive(Debug)]
struct UnsignedIntegers;

impl utoipa::Modify for UnsignedIntegers {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use serde_json::Value;
        fn walk(v: &mut Value) {
            match v {
                Value::Object(m) => {
                    let int32 = m.get("format").and_then(Value::as_str) == Some("int32");
                    if int32 && m.get("minimum").and_then(Value::as_f64) == Some(0.0) {
                        m.remove("format");
                    }
                    m.values_mut().for_each(walk);
                }
                Value::Array(a) => a.iter_mut().for_each(walk),
                _ => {}
            }
        }
        let mut v = serde_json::to_value(&*doc).expect("the OpenAPI document serialises");
        walk(&mut v);
        *doc = serde_json::from_value(v).expect("the OpenAPI document deserialises");
    }
}

/// This document (also at /api/t3000/openapi.json).
#[utoipa::path(get, path = "/api/openapi.json", tag = "system", responses((status = 200, description = "OpenAPI 3.1 document")), security(()))]
pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
