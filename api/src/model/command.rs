//! Commands on points: the priority array kept for each, and what a write did.

use serde::{Deserialize, Serialize};
use t3_core::arbiter::{Effective, PriorityArray};

/// The commands of one point (stored; the id is the point id).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommandsRecord {
    #[serde(default)]
    pub id: i64,
    pub array: PriorityArray,
}

record!(CommandsRecord, "commands");

/// What a write or relinquish did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WriteResult {
    pub point_id: u32,
    /// The value the point is driven to now, and by which command; none when no command is in
    /// force (the device keeps its own value).
    #[schema(value_type = Option<Object>)]
    pub effective: Option<Effective>,
    /// Whether the device was written (only a change of the effective value writes).
    pub written: bool,
    /// The value read back from the device after the write.
    pub read_back: Option<f64>,
    /// Whether the point was switched to manual for the write.
    pub switched_to_manual: bool,
}
