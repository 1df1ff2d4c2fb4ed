//! What people add to a point: labels, units, retention.

use serde::{Deserialize, Serialize};

/// What people add to a point (stored, keyed by the point id).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PointRecord {
    #[serde(default)]
    pub id: i64,
    /// The device it belongs to; none for a manual point.
    pub device_id: Option<i64>,
    pub name: String,
    pub label: Option<String>,
    pub description: Option<String>,
    pub units: Option<String>,
    /// Days of history kept for this point (retention), overriding `retention.max_age_days`.
    #[serde(default)]
    pub retention_days: Option<u32>,
}

record!(PointRecord, "point");
