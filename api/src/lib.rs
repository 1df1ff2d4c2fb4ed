//! t3-api: the HTTP API and the `t3000` binary.
//!
//! # Data flow
//! A request enters the axum [`app`] router; handlers in [`routes`] parse and validate it (every
//! failure becomes an [`error::ApiError`] with a JSON body) and call the storage engine
//! (`t3_storage::Storage`): pushed samples go to `ingest`, history and SQL to the query engine,
//! exports stream from a blocking task through a channel into the response body.
//!
//! # Layout
//! - [`cli`]: the command line (`serve`, `demo`, `simulate`, `discover`, `check-config`, `export`) and
//!   process lifecycle; [`demo`]: the simulated building of `t3000 demo`.
//! - [`devices`]: the collector in the server (samples to storage, config checks, device endpoints);
//!   [`registry`]: stable point ids of device points.
//! - [`settings`]: loading the configuration from a file and the environment; the demo config.
//! - [`routes`]: handlers; [`openapi`]: the OpenAPI document they are described in.
//! - [`error`], [`state`], [`timeparse`]: shared pieces.

pub mod cli;
pub mod demo;
pub mod devices;
pub mod error;
pub mod openapi;
pub mod registry;
pub mod routes;
pub mod settings;
pub mod state;
pub mod timeparse;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
pub use state::AppState;

/// The whole HTTP application. Tests call it with `oneshot`, without a socket.
pub fn app(state: AppState) -> Router {
    let limit = usize::try_from(state.storage.config().server.max_body_bytes).unwrap_or(usize::MAX);
    Router::new()
        .route("/healthz", get(routes::health::healthz))
        .route("/api/t3000/openapi.json", get(openapi::serve))
        .route("/api/t3000/samples", post(routes::samples::post_samples))
        .route("/api/t3000/points/batch", get(routes::history::points_latest))
        .route("/api/t3000/points/{id}/value", get(routes::history::point_latest))
        .route("/api/t3000/points/{id}/history", get(routes::history::point_history))
        .route("/api/t3000/history/batch", post(routes::history::history_batch))
        .route("/api/t3000/query", post(routes::history::sql_query))
        .route("/api/t3000/export", get(routes::export::export))
        .route("/api/t3000/devices", get(devices::list))
        .route("/api/t3000/devices/{name}", get(devices::get_one))
        .route("/api/t3000/devices/{name}/points", get(devices::points))
        .fallback(|| async { error::ApiError::not_found("no such endpoint") })
        .method_not_allowed_fallback(|| async {
            error::ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this endpoint does not take that method",
            )
        })
        .layer(DefaultBodyLimit::max(limit))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}
