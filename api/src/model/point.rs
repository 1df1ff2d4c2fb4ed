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

/// The name a point goes by in exports and reports: its label if it has one, else
/// `<device> <point>` (`AHU-1 IN1`) for a device point, else its own name.
pub fn display_name(device: Option<&str>, name: &str, label: Option<&str>) -> String {
    match (label.map(str::trim).filter(|l| !l.is_empty()), device) {
        (Some(l), _) => l.to_owned(),
        (None, Some(d)) => format!("{d} {name}"),
        (None, None) => name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::display_name;

    #[test]
    fn display_names() {
        assert_eq!(display_name(Some("AHU-1"), "IN1", None), "AHU-1 IN1");
        assert_eq!(display_name(Some("AHU-1"), "IN1", Some("")), "AHU-1 IN1");
        assert_eq!(display_name(Some("AHU-1"), "IN1", Some("Supply air")), "Supply air");
        assert_eq!(display_name(None, "outdoor", None), "outdoor");
    }
}
