//! The HTTP side, and the only layer that knows axum: the router ([`app`]), what every handler
//! shares ([`AppState`]), the error type ([`error::ApiError`], with a `From` for each service's
//! error and for storage's), authentication and the role table ([`access`]), the handlers
//! ([`routes`], one module per family of endpoints), the OpenAPI document ([`openapi`], with the
//! rules of request values in [`rules`] and [`timeparse`]), the WebSocket ([`ws`]), the UI's files
//! ([`web`]) and the listener ([`server`]).
//!
//! What belongs here: turning requests into service calls and answers into responses. What the
//! server does whoever asks belongs in `service`, what is stored in `model`.

pub mod access;
pub mod error;
pub mod openapi;
pub mod requestlog;
pub mod routes;
pub mod rules;
pub mod server;
pub mod timeparse;
pub mod web;
pub mod ws;

use crate::service::auth::Auth;
use crate::service::registry::Registry;
use std::sync::Arc;
use std::time::Instant;
use t3_drivers::collector::Collector;
use t3_storage::Storage;
use t3_storage::catalog::Catalog;

#[derive(Debug, Clone)]
pub struct AppState {
    pub storage: Storage,
    pub collector: Arc<Collector>,
    /// The protocol plugins loaded at start.
    pub plugins: Arc<t3_drivers::plugin::PluginHost>,
    /// Buildings, devices, points, users, ... and the audit log.
    pub catalog: Arc<Catalog>,
    pub auth: Arc<Auth>,
    /// The audit log of what users did.
    pub audit: crate::service::audit::AuditLog,
    /// Trend logs and the recording they ask of their points.
    pub trendlogs: crate::service::trendlogs::TrendLogs,
    /// Imports of T3000 WebView databases and their history jobs.
    pub webview: std::sync::Arc<crate::service::import::webview::WebviewImports>,
    /// Stable ids of device points.
    pub registry: Arc<Registry>,
    /// Device changes: checked, stored, polled and audited as one.
    pub devices: crate::service::devices::Devices,
    /// The command arbiter and device writes.
    pub control: Arc<crate::service::control::Control>,
    pub alarms: Arc<crate::service::alarms::AlarmService>,
    /// Outbound alarm notifications (webhooks, e-mail).
    pub notifier: Arc<crate::service::notify::Notifier>,
    pub scheduler: Arc<crate::service::scheduler::Scheduler>,
    /// The program runner.
    pub programs: Arc<crate::service::programs::Runner>,
    /// Range codes the devices report.
    pub ranges: Arc<crate::service::ranges::Ranges>,
    /// Points in manual: since when, and who put them there.
    pub overrides: Arc<crate::service::overrides::Overrides>,
    /// Floor plan images.
    pub plans: crate::service::floorplans::PlanStore,
    pub started: Instant,
    /// The WebSocket fan-out (`/api/t3000/ws`).
    pub ws: Arc<crate::http::ws::Hub>,
    /// Hot reload of the configuration, and the configuration in force.
    pub reload: Arc<crate::service::reload::Reload>,
    /// Query latencies and WebSocket clients, for `GET /metrics`.
    pub metrics: Arc<crate::http::routes::metrics::Metrics>,
}

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post, put};

impl AppState {
    /// The time now (epoch microseconds) from the clock the storage engine and the services share.
    pub fn now_us(&self) -> i64 {
        self.storage.clock().now_us()
    }
}

/// The whole HTTP application. Tests call it with `oneshot`, without a socket.
pub fn app(state: AppState) -> Router {
    use routes::{auth as login, buildings, devices, points, programs};
    let limit = usize::try_from(state.storage.config().server.max_body_bytes).unwrap_or(usize::MAX);
    let cors = cors_layer(state.auth.clone());
    Router::new()
        .route("/healthz", get(routes::health::healthz))
        .route("/readyz", get(routes::health::readyz))
        .route("/metrics", get(routes::metrics::metrics))
        .route("/api/openapi.json", get(crate::http::openapi::serve))
        .route("/api/t3000/openapi.json", get(crate::http::openapi::serve))
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
        .route("/api/t3000/plugins", get(routes::plugins::list))
        .route("/api/t3000/devices/{id}", get(devices::get_one).put(devices::update).delete(devices::delete))
        .route("/api/t3000/devices/{id}/points", get(devices::points))
        .route("/api/t3000/devices/{id}/ranges", get(devices::ranges))
        .route("/api/t3000/devices/{id}/status", get(devices::status))
        .route("/api/t3000/devices/{id}/sync", get(routes::sync::diff).post(routes::sync::apply))
        .route("/api/t3000/points", get(points::list).post(points::create))
        .route("/api/t3000/points/batch", get(routes::history::points_latest))
        .route("/api/t3000/points/{id}", get(points::get_one).put(points::update).delete(points::delete))
        .route("/api/t3000/points/{id}/value", get(routes::history::point_latest).post(points::write_value))
        .route("/api/t3000/points/{id}/relinquish", post(points::relinquish))
        .route("/api/t3000/points/{id}/mode", post(points::set_mode))
        .route("/api/t3000/points/in-manual", get(points::in_manual))
        .route("/api/t3000/points/{id}/commands", get(points::commands))
        .route("/api/t3000/points/{id}/history", get(routes::history::point_history))
        .route("/api/t3000/schedules", get(routes::schedules::list).post(routes::schedules::create))
        .route(
            "/api/t3000/schedules/{id}",
            get(routes::schedules::get_one).put(routes::schedules::update).delete(routes::schedules::delete),
        )
        .route("/api/t3000/schedules/{id}/run", post(routes::schedules::run))
        .route("/api/t3000/calendars", get(routes::schedules::calendars).post(routes::schedules::create_calendar))
        .route(
            "/api/t3000/calendars/{id}",
            put(routes::schedules::update_calendar).delete(routes::schedules::delete_calendar),
        )
        .route("/api/t3000/alarms", get(routes::alarms::list))
        .route("/api/t3000/alarms/history", get(routes::alarms::history))
        .route("/api/t3000/alarms/rules", get(routes::alarms::rules).post(routes::alarms::create_rule))
        .route("/api/t3000/alarms/rules/{id}", put(routes::alarms::update_rule).delete(routes::alarms::delete_rule))
        .route("/api/t3000/alarms/{id}/ack", post(routes::alarms::acknowledge))
        .route("/api/t3000/alerts/channels", get(routes::alerts::channels))
        .route("/api/t3000/alerts/deliveries", get(routes::alerts::deliveries))
        .route("/api/t3000/alerts/test", post(routes::alerts::test))
        .route("/api/t3000/trendlogs", get(routes::trendlogs::list).post(routes::trendlogs::create))
        .route(
            "/api/t3000/trendlogs/{id}",
            get(routes::trendlogs::get_one).put(routes::trendlogs::update).delete(routes::trendlogs::delete),
        )
        .route("/api/t3000/programs", get(programs::list).post(programs::create))
        .route("/api/t3000/programs/check", post(programs::check))
        .route("/api/t3000/programs/{id}", get(programs::get_one).put(programs::update).delete(programs::delete))
        .route("/api/t3000/programs/{id}/run", post(programs::run))
        .route("/api/t3000/programs/{id}/enable", post(programs::enable))
        .route("/api/t3000/programs/{id}/disable", post(programs::disable))
        .route("/api/t3000/import/prog", post(routes::import_prog::import))
        .route("/api/t3000/samples", post(routes::samples::post_samples))
        .route("/api/t3000/import/webview", post(routes::import_webview::import).layer(DefaultBodyLimit::disable()))
        .route("/api/t3000/import/webview/jobs", get(routes::import_webview::jobs))
        .route("/api/t3000/import/webview/jobs/{id}", get(routes::import_webview::job))
        .route("/api/t3000/points/{id}/samples", delete(routes::storage::delete_samples))
        .route("/api/t3000/storage/quarantine", get(routes::storage::quarantine))
        .route("/api/t3000/storage/quarantine/ack", post(routes::storage::acknowledge))
        // A base manifest lists every file of a large store.
        .route("/api/t3000/backup", post(routes::backup::backup).layer(DefaultBodyLimit::max(64 << 20)))
        .route("/api/t3000/history/batch", post(routes::history::history_batch))
        .route("/api/t3000/query", post(routes::history::sql_query))
        .route("/api/t3000/export", get(routes::export::export))
        .route("/api/t3000/config/reload", post(routes::config::reload))
        .route("/api/t3000/config/devices.csv", get(routes::csv::export_devices))
        .route("/api/t3000/config/points.csv", get(routes::csv::export_points))
        .route("/api/t3000/import/csv", post(routes::csv::import))
        .route("/api/t3000/ws", get(crate::http::ws::upgrade))
        .route("/api/t3000/ws/ticket", post(login::ws_ticket))
        .route("/api/t3000/ws/schema.json", get(crate::http::ws::schema))
        .route("/api/t3000/ws/asyncapi.json", get(crate::http::ws::asyncapi))
        .fallback(fallback)
        .method_not_allowed_fallback(|| async {
            crate::http::error::ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this endpoint does not take that method",
            )
        })
        .layer(axum::middleware::from_fn(crate::http::error::json_rejections))
        .layer(axum::middleware::from_fn_with_state(state.clone(), access::middleware))
        .layer(cors)
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn(requestlog::middleware))
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
        return crate::http::error::ApiError::not_found("no such endpoint").into_response();
    }
    crate::http::web::serve(method, uri, headers).await
}

/// CORS for the configured origins only; with none, browsers allow same-origin pages alone. The
/// origins are read at each request, so a configuration reload changes them at once.
fn cors_layer(auth: Arc<Auth>) -> tower_http::cors::CorsLayer {
    use axum::http::{HeaderValue, Method, header};
    let allowed =
        move |origin: &HeaderValue, _: &axum::http::request::Parts| origin.to_str().is_ok_and(|o| auth.cors_allows(o));
    tower_http::cors::CorsLayer::new()
        .allow_origin(tower_http::cors::AllowOrigin::predicate(allowed))
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, requestlog::REQUEST_ID])
        .expose_headers([requestlog::REQUEST_ID])
}
