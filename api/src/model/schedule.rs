//! Weekly schedules, the outputs they command, and holiday calendars.

use serde::{Deserialize, Serialize};
use t3_core::schedule::{AnnualRoutine, WeeklySchedule};

/// A holiday calendar (stored): T3000's annual routine.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Calendar {
    #[serde(default)]
    pub id: i64,
    /// `name`, `holiday` (`holiday1` or `holiday2`), `dates` (`2026-12-24`), `recurring` (`12-25`).
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub routine: AnnualRoutine,
    pub updated_us: i64,
}

record!(Calendar, "calendar");

/// A T3 panel's routines are kept as records named after the device and the panel's object
/// (`AHU-1 WR1 OCC`: weekly routine 1 of device `AHU-1`, labelled `OCC`), and found again by that
/// prefix, by the `.prog` import and by hardware sync alike.
pub mod panel_names {
    /// `<device> <object>`: `AHU-1 WR1`.
    pub fn prefix(device: &str, object: &str) -> String {
        format!("{device} {object}")
    }

    /// The record name of an object with `label`: the prefix, then the label if there is one.
    pub fn name(prefix: &str, label: &str) -> String {
        match label.trim() {
            "" => prefix.to_owned(),
            l => format!("{prefix} {l}"),
        }
    }

    /// The label in `name` after `prefix` (`None` if `name` is not `<prefix>` or `<prefix> <label>`).
    pub fn label<'a>(name: &'a str, prefix: &str) -> Option<&'a str> {
        let rest = name.strip_prefix(prefix)?;
        if rest.is_empty() || rest.starts_with(' ') { Some(rest.trim()) } else { None }
    }

    /// The first of `rows` whose name (by `name_of`) has `prefix`.
    pub fn find<'a, T>(
        rows: impl IntoIterator<Item = &'a T>,
        name_of: impl Fn(&T) -> &str,
        prefix: &str,
    ) -> Option<&'a T>
    where
        T: 'a,
    {
        rows.into_iter().find(|r| label(name_of(r), prefix).is_some())
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn names_round_trip_and_need_a_whole_prefix() {
            let p = super::prefix("AHU-1", "WR1");
            assert_eq!(super::name(&p, " OCC "), "AHU-1 WR1 OCC");
            assert_eq!(super::name(&p, ""), "AHU-1 WR1");
            assert_eq!(super::label("AHU-1 WR1 OCC", &p), Some("OCC"));
            assert_eq!(super::label("AHU-1 WR1", &p), Some(""));
            assert_eq!(super::label("AHU-1 WR12", &p), None, "WR12 is another routine");
        }
    }
}

/// A point a schedule commands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutputBinding {
    pub point_id: u32,
    #[serde(default = "one")]
    pub on_value: f64,
    #[serde(default)]
    pub off_value: f64,
    /// Take a point that is in auto over (switch it to manual) instead of failing.
    #[serde(default)]
    pub switch_to_manual: bool,
}

fn one() -> f64 {
    1.0
}

/// A weekly schedule (stored).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Schedule {
    #[serde(default)]
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    /// Whose time zone applies; UTC when none.
    pub building_id: Option<i64>,
    pub enabled: bool,
    pub weekly: WeeklySchedule,
    pub calendar_ids: Vec<i64>,
    pub outputs: Vec<OutputBinding>,
    pub priority: u8,
    pub updated_us: i64,
}

record!(Schedule, "schedule");

/// One coming change of a schedule's output.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TransitionView {
    /// RFC 3339, UTC.
    pub at: String,
    pub on: bool,
}

/// A schedule as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ScheduleResponse {
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    /// `weekly`.
    pub schedule_type: String,
    /// `active` (enabled) or `inactive`.
    pub status: String,
    /// Whether the output is ON now.
    pub on: bool,
    /// The next change of the output (RFC 3339, UTC).
    pub next_run: Option<String>,
    /// The next few changes.
    pub next_transitions: Vec<TransitionView>,
    pub time_zone: String,
    pub building_id: Option<i64>,
    #[schema(value_type = Object)]
    pub weekly_schedule: WeeklySchedule,
    pub calendar_ids: Vec<i64>,
    pub outputs: Vec<OutputBinding>,
    pub priority: u8,
}
