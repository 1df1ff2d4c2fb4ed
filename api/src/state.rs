//! What every handler shares.

use crate::auth::Auth;
use crate::registry::Registry;
use std::sync::Arc;
use std::time::Instant;
use t3_drivers::collector::Collector;
use t3_storage::Storage;
use t3_storage::catalog::Catalog;

#[derive(Debug, Clone)]
pub struct AppState {
    pub storage: Storage,
    pub collector: Arc<Collector>,
    /// Buildings, devices, points, users, ... and the audit log.
    pub catalog: Arc<Catalog>,
    pub auth: Arc<Auth>,
    /// Stable ids of device points.
    pub registry: Arc<Registry>,
    /// The command arbiter and device writes.
    pub control: Arc<crate::control::Control>,
    pub alarms: Arc<crate::alarms::AlarmService>,
    pub scheduler: Arc<crate::schedules::Scheduler>,
    /// Range codes the devices report.
    pub ranges: Arc<crate::routes::points::Ranges>,
    pub started: Instant,
    /// The WebSocket fan-out (`/api/t3000/ws`).
    pub ws: Arc<crate::ws::Hub>,
    /// Query latencies and WebSocket clients, for `GET /metrics`.
    pub metrics: Arc<crate::routes::metrics::Metrics>,
}
