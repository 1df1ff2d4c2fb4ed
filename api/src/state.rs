//! What every handler shares.

use std::sync::Arc;
use std::time::Instant;
use t3_drivers::collector::Collector;
use t3_storage::Storage;

#[derive(Debug, Clone)]
pub struct AppState {
    pub storage: Storage,
    pub collector: Arc<Collector>,
    pub started: Instant,
}
