//! The names alert messages give an alarm's point and device ([`crate::service::notify`] asks
//! through [`Names`], so it needs neither the catalog nor the collector): a point's name at its
//! device (the registry's, or a manual point's record), the label people gave it (its record's,
//! else its T3 panel's), its device's name, and its units as `GET /points` shows them (its
//! record's, else its profile's, else its T3 range's, its panel's custom units included).

use crate::model::custom_range::CustomRanges;
use crate::model::device::DeviceRecord;
use crate::model::point::PointRecord;
use crate::service::notify::message::{Names, PointInfo};
use crate::service::ranges::{Configured, Ranges};
use crate::service::registry::Registry;
use std::sync::Arc;
use t3_drivers::collector::Collector;
use t3_storage::catalog::Catalog;

/// The server's points and devices, for the alert messages.
#[derive(Debug, Clone)]
pub struct PointNames {
    pub catalog: Arc<Catalog>,
    pub registry: Arc<Registry>,
    pub collector: Arc<Collector>,
    pub ranges: Arc<Ranges>,
}

impl PointNames {
    /// The units a device point's profile or T3 range gives it (the device is polled now).
    fn device_units(&self, id: u32, device: &str, record: Option<&PointRecord>) -> Option<String> {
        let spec = self.collector.device(device)?;
        let cp = spec.points.iter().find(|cp| cp.id == id)?;
        let p = spec.point_of(cp);
        p.unit.clone().or_else(|| {
            let custom = self
                .catalog
                .read::<DeviceRecord, _>(|d| d.values().find(|d| d.config.name == device).map(|d| d.id))
                .and_then(|id| self.catalog.get::<CustomRanges>(id));
            let configured = Configured { point: record, custom: custom.as_ref() };
            let point_type = crate::service::collection::enum_name(&p.point_type);
            self.ranges.meaning(id, &point_type, configured).and_then(|m| m.units().map(str::to_owned))
        })
    }
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.trim().is_empty())
}

impl Names for PointNames {
    fn point(&self, id: u32) -> Option<PointInfo> {
        let record = self.catalog.get::<PointRecord>(i64::from(id));
        let entry = self.registry.entry(id);
        let device = non_empty(entry.as_ref().map(|e| e.device.clone()))
            .or_else(|| record.as_ref().and_then(|r| r.device_id).and_then(|d| self.device(d)));
        let name = entry.map(|e| e.point).or_else(|| record.as_ref().map(|r| r.name.clone()))?;
        let label = non_empty(record.as_ref().and_then(|r| r.label.clone()))
            .or_else(|| non_empty(self.ranges.text(id).map(|t| t.label)));
        let units = non_empty(record.as_ref().and_then(|r| r.units.clone()))
            .or_else(|| device.as_deref().and_then(|d| self.device_units(id, d, record.as_ref())));
        Some(PointInfo { name, label, device, units: non_empty(units) })
    }

    fn device(&self, id: i64) -> Option<String> {
        self.catalog.get::<DeviceRecord>(id).map(|d| d.config.name)
    }
}
