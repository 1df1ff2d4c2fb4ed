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

/// Who drives a point that has an auto/manual switch: its controller (`auto`), or nobody but
/// the value it was left at or written to (`manual`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Auto,
    Manual,
}

impl Mode {
    pub fn of(manual: bool) -> Mode {
        if manual { Mode::Manual } else { Mode::Auto }
    }

    pub fn is_manual(self) -> bool {
        self == Mode::Manual
    }

    pub fn name(self) -> &'static str {
        match self {
            Mode::Auto => "auto",
            Mode::Manual => "manual",
        }
    }
}

/// What an auto/manual change did (`POST /api/t3000/points/{id}/mode`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ModeResult {
    pub point_id: u32,
    /// The mode the point is in now, as its controller reads it back.
    pub mode: Mode,
    /// The mode it was in before.
    pub previous: Mode,
    /// Whether the controller was written (false: the point was in that mode already).
    pub changed: bool,
    /// The point's value read right after the change; null when it could not be read.
    pub value: Option<f64>,
    /// The quality recorded with that value (`good`, `good/local_override`, ...).
    pub quality: String,
    /// The commands of this server's arbiter that were cleared: back in auto the controller owns
    /// the value, so no command stays to be written back later (an expiry or a relinquish writes
    /// nothing). A schedule bound to the point commands it again at its next change.
    #[schema(value_type = Vec<Object>)]
    pub cleared: Vec<t3_core::arbiter::Command>,
}

/// Since when a point has been in manual (its samples carry the local-override quality), as the
/// server saw it: kept across restarts so the dashboard can say since when a point someone put in
/// manual at the controller has been there. The id is the point id.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManualSeen {
    #[serde(default)]
    pub id: i64,
    /// The time of its first sample in manual, epoch microseconds; none when the server found it
    /// in manual without seeing it change (at start, or after missing samples).
    pub since_us: Option<i64>,
}

record!(ManualSeen, "manual_seen");
