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
//! - [`auth`]: users, roles, tokens, the authorisation rule of every endpoint.
//! - [`devices`]: the collector in the server (samples to storage, config checks, the config file's
//!   devices in the catalog);
//!   [`registry`]: stable point ids of device points.
//! - [`settings`]: loading the configuration from a file and the environment; the demo config.
//! - [`server`]: the HTTP listener (connection cap, header-read and idle timeouts, bounded
//!   shutdown) and the open-files limit it shares with storage.
//! - [`routes`]: handlers; [`openapi`]: the OpenAPI document they are described in.
//! - [`web`]: the browser UI's files (embedded from `web/dist`).
//! - [`error`], [`state`], [`timeparse`]: shared pieces.

/// Implements `t3_storage::catalog::Record` for a struct with an `id: i64` field.
macro_rules! record {
    ($t:ty, $kind:literal) => {
        impl ::t3_storage::catalog::Record for $t {
            const KIND: &'static str = $kind;
            fn id(&self) -> i64 {
                self.id
            }
            fn set_id(&mut self, id: i64) {
                self.id = id;
            }
        }
    };
}

pub mod alarms;
pub mod auth;
pub mod cli;
pub mod control;
pub mod demo;
pub mod devices;
pub mod error;
pub mod openapi;
pub mod registry;
pub mod routes;
pub mod rules;
pub mod schedules;
pub mod server;
pub mod settings;
pub mod state;
pub mod timeparse;
pub mod web;
pub mod ws;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post, put};
pub use state::AppState;

/// The whole HTTP application. Tests call it with `oneshot`, without a socket.
pub fn app(state: AppState) -> Router {
    use routes::{auth as login, buildings, devices, points, programs};
    let limit = usize::try_from(state.storage.config().server.max_body_bytes).unwrap_or(usize::MAX);
    let cors = cors_layer(&state.auth.config().cors_origins);
    Router::new()
        .route("/healthz", get(routes::health::healthz))
        .route("/readyz", get(routes::health::readyz))
        .route("/metrics", get(routes::metrics::metrics))
        .route("/api/openapi.json", get(openapi::serve))
        .route("/api/t3000/openapi.json", get(openapi::serve))
        .route("/api/t3000/auth/login", post(login::login))
        .route("/api/t3000/auth/logout", post(login::logout))
        .route("/api/t3000/auth/me", get(login::me))
        .route("/api/t3000/auth/password", post(login::change_password))
        .route("/api/t3000/users", get(login::list_users).post(login::create_user))
        .route("/api/t3000/users/{id}", put(login::update_user).delete(login::delete_user))
        .route("/api/t3000/tokens", get(login::list_tokens).post(login::create_token))
        .route("/api/t3000/tokens/{id}", delete(login::delete_token))
        .route("/api/t3000/audit", get(login::audit))
        .route("/api/t3000/buildings", get(buildings::list).post(buildings::create))
        .route("/api/t3000/buildings/{id}", get(buildings::get_one).put(buildings::update).delete(buildings::delete))
        .route("/api/t3000/buildings/{id}/floors", get(buildings::floors).post(buildings::create_floor))
        .route("/api/t3000/floors/{id}", put(buildings::update_floor).delete(buildings::delete_floor))
        .route(
            "/api/t3000/floors/{id}/plan",
            get(routes::floorplans::get_plan).put(routes::floorplans::put_plan).delete(routes::floorplans::delete_plan),
        )
        .route("/api/t3000/floors/{id}/plan/points", put(routes::floorplans::put_points))
        .route("/api/t3000/floors/{id}/rooms", get(buildings::rooms).post(buildings::create_room))
        .route("/api/t3000/rooms/{id}", put(buildings::update_room).delete(buildings::delete_room))
        .route("/api/t3000/devices", get(devices::list).post(devices::create))
        .route("/api/t3000/devices/discover", post(devices::discover))
        .route("/api/t3000/profiles", get(devices::profiles))
        .route("/api/t3000/devices/{id}", get(devices::get_one).put(devices::update).delete(devices::delete))
        .route("/api/t3000/devices/{id}/points", get(devices::points))
        .route("/api/t3000/devices/{id}/status", get(devices::status))
        .route("/api/t3000/points", get(points::list).post(points::create))
        .route("/api/t3000/points/batch", get(routes::history::points_latest))
        .route("/api/t3000/points/{id}", get(points::get_one).put(points::update).delete(points::delete))
        .route("/api/t3000/points/{id}/value", get(routes::history::point_latest).post(points::write_value))
        .route("/api/t3000/points/{id}/relinquish", post(points::relinquish))
        .route("/api/t3000/points/{id}/commands", get(points::commands))
        .route("/api/t3000/points/{id}/history", get(routes::history::point_history))
        .route("/api/t3000/schedules", get(schedules::list).post(schedules::create))
        .route("/api/t3000/schedules/{id}", get(schedules::get_one).put(schedules::update).delete(schedules::delete))
        .route("/api/t3000/schedules/{id}/run", post(schedules::run))
        .route("/api/t3000/calendars", get(schedules::calendars).post(schedules::create_calendar))
        .route("/api/t3000/calendars/{id}", put(schedules::update_calendar).delete(schedules::delete_calendar))
        .route("/api/t3000/alarms", get(alarms::list))
        .route("/api/t3000/alarms/history", get(alarms::history))
        .route("/api/t3000/alarms/rules", get(alarms::rules).post(alarms::create_rule))
        .route("/api/t3000/alarms/rules/{id}", put(alarms::update_rule).delete(alarms::delete_rule))
        .route("/api/t3000/alarms/{id}/ack", post(alarms::acknowledge))
        .route("/api/t3000/trendlogs", get(routes::trendlogs::list).post(routes::trendlogs::create))
        .route("/api/t3000/trendlogs/{id}", put(routes::trendlogs::update).delete(routes::trendlogs::delete))
        .route("/api/t3000/programs", get(programs::list).post(programs::create))
        .route("/api/t3000/programs/{id}/run", post(programs::run))
        .route("/api/t3000/samples", post(routes::samples::post_samples))
        .route("/api/t3000/points/{id}/samples", delete(routes::storage::delete_samples))
        .route("/api/t3000/storage/quarantine", get(routes::storage::quarantine))
        .route("/api/t3000/storage/quarantine/ack", post(routes::storage::acknowledge))
        .route("/api/t3000/history/batch", post(routes::history::history_batch))
        .route("/api/t3000/query", post(routes::history::sql_query))
        .route("/api/t3000/export", get(routes::export::export))
        .route("/api/t3000/ws", get(ws::upgrade))
        .route("/api/t3000/ws/schema.json", get(ws::schema))
        .route("/api/t3000/ws/asyncapi.json", get(ws::asyncapi))
        .fallback(fallback)
        .method_not_allowed_fallback(|| async {
            error::ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this endpoint does not take that method",
            )
        })
        .layer(axum::middleware::from_fn(error::json_rejections))
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::middleware))
        .layer(cors)
        .layer(DefaultBodyLimit::max(limit))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// Paths no route takes: the UI's files, except under `/api` and `/metrics` (a JSON 404 there).
async fn fallback(
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let path = uri.path();
    if path == "/api" || path.starts_with("/api/") || path.starts_with("/metrics") {
        return error::ApiError::not_found("no such endpoint").into_response();
    }
    web::serve(method, uri, headers).await
}

/// CORS for the configured origins only; with none, browsers allow same-origin pages alone.
fn cors_layer(origins: &[String]) -> tower_http::cors::CorsLayer {
    use axum::http::{HeaderValue, Method, header};
    let origins: Vec<HeaderValue> =
        origins.iter().filter_map(|o| HeaderValue::from_str(o.trim_end_matches('/')).ok()).collect();
    tower_http::cors::CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
}
