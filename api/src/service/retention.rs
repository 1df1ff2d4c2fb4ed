//! Per-point retention: the days of history kept for a point, set over the API (a point's
//! `trend.retention_days`), handed to the storage engine.

use crate::model::point::PointRecord;

/// Hands the catalog's per-point retention to the storage engine (at start and after a change).
pub fn push_retention(catalog: &t3_storage::catalog::Catalog, storage: &t3_storage::Storage) {
    let mut by_days: std::collections::BTreeMap<u32, Vec<u32>> = std::collections::BTreeMap::new();
    catalog.read::<PointRecord, _>(|r| {
        for r in r.values() {
            if let Some(d) = r.retention_days {
                by_days.entry(d).or_default().push(r.id as u32);
            }
        }
    });
    storage.set_point_retention(
        by_days
            .into_iter()
            .map(|(max_age_days, points)| t3_core::config::PointRetention { points, max_age_days })
            .collect(),
    );
}
