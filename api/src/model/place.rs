//! Buildings, floors and rooms: the places devices and points are in, and a floor's plan.

use serde::{Deserialize, Serialize};

/// A building (stored).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Building {
    #[serde(default)]
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    pub address: Option<String>,
    /// IANA time zone of the site (`Europe/Berlin`), used by schedules; `UTC` by default.
    pub time_zone: String,
    pub updated_us: i64,
}

/// A floor of a building (stored).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Floor {
    #[serde(default)]
    pub id: i64,
    pub building_id: i64,
    pub name: String,
    /// Storey number (0 ground floor, negative below).
    pub level: i32,
    pub description: Option<String>,
    pub updated_us: i64,
    /// The floor plan image, if one was uploaded (`PUT /api/t3000/floors/{id}/plan`).
    #[serde(default)]
    pub plan: Option<PlanImage>,
    /// Where point badges sit on the plan.
    #[serde(default)]
    pub plan_points: Vec<PlanPoint>,
}

/// A room on a floor (stored).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Room {
    #[serde(default)]
    pub id: i64,
    pub floor_id: i64,
    pub name: String,
    pub description: Option<String>,
    pub updated_us: i64,
}

record!(Building, "building");
record!(Floor, "floor");
record!(Room, "room");

/// Most badges on one plan.
pub const MAX_PLAN_POINTS: usize = 1000;

/// The stored plan image of a floor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PlanImage {
    /// `image/png`, `image/jpeg`, `image/webp` or `image/svg+xml`.
    pub content_type: String,
    pub bytes: u64,
    pub updated_us: i64,
}

/// A point badge on a floor plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanPoint {
    pub point_id: u32,
    /// From the image's left edge, 0 ..= 1 of its width.
    #[schema(minimum = 0, maximum = 1)]
    pub x: f64,
    /// From the image's top edge, 0 ..= 1 of its height.
    #[schema(minimum = 0, maximum = 1)]
    pub y: f64,
}
