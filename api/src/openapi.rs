//! The OpenAPI document, generated from the handlers' annotations.

use axum::Json;
use utoipa::OpenApi;

#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "T3000 historian",
        description = "History, live values, exports and field devices of building controllers."
    ),
    paths(
        crate::routes::health::healthz,
        crate::routes::samples::post_samples,
        crate::routes::history::point_history,
        crate::routes::history::history_batch,
        crate::routes::history::point_latest,
        crate::routes::history::points_latest,
        crate::routes::history::sql_query,
        crate::routes::export::export,
        crate::devices::list,
        crate::devices::get_one,
        crate::devices::points,
        serve,
    ),
    components(schemas(
        crate::error::ErrorBody,
        crate::error::ErrorDetail,
        crate::devices::DeviceView,
        crate::devices::DevicePoint,
        crate::devices::DevicePoints
    ))
)]
pub struct ApiDoc;

/// This document.
#[utoipa::path(get, path = "/api/t3000/openapi.json", tag = "system", responses((status = 200, description = "OpenAPI 3.1 document")))]
pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
