//! Collection: the collector fed from the catalog's devices (the configuration file's `[[devices]]`
//! copied in, and those added over the API), its samples sent to storage (through
//! `t3_storage::BatchingSink`), point ids from the [`Registry`].

use crate::model::device::{DevicePoint, DeviceRecord};
use crate::service::registry::Registry;
use serde::Serialize;
use std::sync::Arc;
use t3_core::config::DeviceConfig;
use t3_drivers::collector::{Collector, DeviceSpec};
use t3_drivers::profile::ProfileLibrary;
use t3_storage::catalog::Catalog;

/// Builds a device's spec, assigning point ids from the registry (saved before polling starts).
pub fn spec_for(config: DeviceConfig, registry: &Registry) -> anyhow::Result<DeviceSpec> {
    let profile = ProfileLibrary::builtin()
        .get(&config.profile)
        .ok_or_else(|| anyhow::anyhow!("device `{}`: unknown profile `{}`", config.name, config.profile))?;
    let name = config.name.clone();
    anyhow::ensure!(
        registry.free_ids() >= profile.points.len() as u64,
        "device `{name}`: no point ids left for its {} points (stored series use ids up to {})",
        profile.points.len(),
        u32::MAX
    );
    let spec = DeviceSpec::new(config, profile.clone(), |p| registry.id(&name, &p.name))?;
    registry.save()?;
    Ok(spec)
}

/// Starts polling every configured device.
pub fn start(collector: &Arc<Collector>, registry: &Registry, devices: &[DeviceConfig]) -> anyhow::Result<()> {
    for d in devices {
        let spec = spec_for(d.clone(), registry)?;
        collector.add_device(spec)?;
        tracing::info!(device = %d.name, profile = %d.profile, "polling started");
    }
    Ok(())
}

/// The points a device is polled for, with their stored ids (empty for an unknown device).
pub fn device_points(collector: &Collector, name: &str) -> Vec<DevicePoint> {
    let Some(spec) = collector.device(name) else { return Vec::new() };
    spec.points
        .iter()
        .map(|cp| {
            let p = spec.point_of(cp);
            let span = t3_drivers::classify::write_span(p);
            DevicePoint {
                id: cp.id,
                name: p.name.clone(),
                description: (p.point_type == t3_drivers::profile::PointType::Register
                    && !p.description.trim().is_empty())
                .then(|| p.description.trim().to_owned()),
                point_type: enum_name(&p.point_type),
                point_number: p.point_number,
                register_kind: enum_name(&p.kind),
                address: p.address,
                encoding: p.codec.to_string(),
                writable: p.writable,
                unit: p.unit.clone(),
                poll_interval_ms: cp.interval.as_millis() as u64,
                has_auto_manual: p.auto_manual.is_some(),
                class: p.class().into(),
                min: span.map(|s| s.min),
                max: span.map(|s| s.max),
            }
        })
        .collect()
}

/// Copies the configuration file's devices into the catalog (`source: "config"`): new ones are
/// added, changed ones updated (their place and description kept), ones gone from the file
/// removed. Returns every device to poll, the API's included.
pub fn sync_config_devices(catalog: &Catalog, devices: &[DeviceConfig]) -> anyhow::Result<Vec<DeviceConfig>> {
    catalog.transaction(|tx| {
        let existing: Vec<DeviceRecord> = tx.rows::<DeviceRecord>().values().cloned().collect();
        for d in &existing {
            if d.source == "config" && !devices.iter().any(|c| c.name == d.config.name) {
                tx.delete::<DeviceRecord>(d.id);
            }
        }
        for c in devices {
            match existing.iter().find(|d| d.config.name == c.name) {
                Some(d) if d.source == "config" && d.config == *c => {}
                Some(d) => tx.put(DeviceRecord { config: c.clone(), source: "config".into(), ..d.clone() })?,
                None => {
                    tx.insert(DeviceRecord {
                        id: 0,
                        config: c.clone(),
                        building_id: None,
                        floor_id: None,
                        room_id: None,
                        description: None,
                        source: "config".into(),
                    })?;
                }
            }
        }
        Ok(())
    })?;
    Ok(catalog.list::<DeviceRecord>().into_iter().map(|d| d.config).collect())
}

/// The serde name of a unit enum variant (`input`, `holding`, ...).
pub fn enum_name<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}
