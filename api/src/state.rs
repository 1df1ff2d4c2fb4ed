//! What every handler shares.

use std::time::Instant;
use t3_storage::Storage;

#[derive(Debug, Clone)]
pub struct AppState {
    pub storage: Storage,
    pub started: Instant,
}
