//! What hardware sync remembers: the value each field of a device's points had on both sides (the
//! device and the catalog) when they last agreed, so the next sync can tell which side changed.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The last agreed value of every synced field of one device's points (stored, keyed by the
/// device's id).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SyncBaseline {
    /// The device's id.
    #[serde(default)]
    pub id: i64,
    /// `<point>.<field>` (`IN1.label`) -> the value both sides held; JSON null for none.
    #[serde(default)]
    pub fields: BTreeMap<String, serde_json::Value>,
    /// When a sync last applied, microseconds since the epoch.
    #[serde(default)]
    pub synced_us: i64,
}

record!(SyncBaseline, "sync_baseline");

impl SyncBaseline {
    /// The key of one field of one point.
    pub fn key(point: &str, field: &str) -> String {
        format!("{point}.{field}")
    }
}
