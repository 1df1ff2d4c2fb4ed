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
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    paths(
        crate::routes::health::healthz,
        crate::routes::health::readyz,
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
        crate::routes::points::list,
        crate::routes::points::get_one,
        crate::routes::points::create,
        crate::routes::points::update,
        crate::routes::points::delete,
        crate::routes::points::write_value,
        crate::routes::points::relinquish,
        crate::routes::points::commands,
        crate::routes::programs::list,
        crate::routes::programs::create,
        crate::routes::programs::run,
        crate::routes::samples::post_samples,
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

/// This document (also at /api/t3000/openapi.json).
#[utoipa::path(get, path = "/api/openapi.json", tag = "system", responses((status = 200, description = "OpenAPI 3.1 document")), security(()))]
pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
