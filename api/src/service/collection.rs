//! Collection: the collector fed from the catalog's devices (the configuration file's `[[devices]]`
//! copied in, and those added over the API), its samples sent to storage (through
//! `t3_storage::BatchingSink`), point ids from the [`Registry`].

use crate::model::device::{DevicePoint, DeviceRecord};
use crate::service::registry::Registry;
use serde::Serialize;
use std::sync::Arc;
use t3_core::config::DeviceConfig;
use t3_drivers::collector::{Collector, DeviceSpec};
use t3_drivers::driver::Driver;
use t3_drivers::plugin::PluginHost;
use t3_drivers::profile::{Profile, ProfileLibrary};
use t3_storage::catalog::Catalog;

/// Builds a device's spec, assigning point ids from the registry (saved before polling starts).
pub fn spec_for(config: DeviceConfig, registry: &Registry) -> anyhow::Result<DeviceSpec> {
    let profile = modbus_profile(&config, registry)?;
    let name = config.name.clone();
    let spec = DeviceSpec::new(config, profile, |p| registry.id(&name, &p.name))?;
    registry.save()?;
    Ok(spec)
}

/// Checks that a Modbus device can be polled as it is defined, as [`spec_for`] and the collector
/// will find when it starts: its profile is known, ids are left for its points, and its points fit
/// its read limits (`max_registers`). Nothing is assigned. A plugin device's points come from its
/// plugin when it is opened, so there is nothing to check here.
pub fn check_pollable(config: &DeviceConfig, registry: &Registry) -> anyhow::Result<()> {
    if config.protocol.plugin().is_some() {
        return Ok(());
    }
    let spec = DeviceSpec::new(config.clone(), modbus_profile(config, registry)?, |_| 0)?;
    t3_drivers::collector::poll_groups(&spec)?;
    Ok(())
}

/// A Modbus device's profile, when the registry has ids left for all its points.
fn modbus_profile(config: &DeviceConfig, registry: &Registry) -> anyhow::Result<Arc<Profile>> {
    let profile = ProfileLibrary::builtin()
        .get(&config.profile)
        .ok_or_else(|| anyhow::anyhow!("device `{}`: unknown profile `{}`", config.name, config.profile))?;
    anyhow::ensure!(
        registry.free_ids() >= profile.points.len() as u64,
        "device `{}`: no point ids left for its {} points (stored series use ids up to {})",
        config.name,
        profile.points.len(),
        u32::MAX
    );
    Ok(profile.clone())
}

/// Starts polling every configured device.
pub fn start(
    collector: &Arc<Collector>,
    registry: &Arc<Registry>,
    plugins: &Arc<PluginHost>,
    devices: &[DeviceConfig],
) -> anyhow::Result<()> {
    for d in devices {
        start_device(collector, registry, plugins, d.clone())?;
    }
    Ok(())
}

/// Starts polling a device: a Modbus device at once, with its profile's points; a plugin device
/// once its plugin has opened it and listed its points, which a task of its own tries until it
/// succeeds (the device shows `connecting`, then `offline` with the reason, meanwhile).
pub fn start_device(
    collector: &Arc<Collector>,
    registry: &Arc<Registry>,
    plugins: &Arc<PluginHost>,
    config: DeviceConfig,
) -> anyhow::Result<()> {
    if config.protocol.plugin().is_none() {
        let name = config.name.clone();
        let profile = config.profile.clone();
        collector.add_device(spec_for(config, registry)?)?;
        tracing::info!(device = %name, profile = %profile, "polling started");
        return Ok(());
    }
    let (c, r, p, cfg) = (collector.clone(), registry.clone(), plugins.clone(), config.clone());
    // Held back until the device is registered as pending, so the opener cannot finish first.
    let (go, ready) = tokio::sync::oneshot::channel::<()>();
    let opener = tokio::spawn(async move {
        if ready.await.is_err() {
            return;
        }
        open_plugin_device(&c, &r, &p, cfg).await
    });
    collector.add_pending(&config, opener.abort_handle())?;
    let _ = go.send(());
    Ok(())
}

/// Opens a plugin device until it works, then polls it.
async fn open_plugin_device(
    collector: &Arc<Collector>,
    registry: &Registry,
    plugins: &PluginHost,
    config: DeviceConfig,
) {
    let name = config.name.clone();
    let mut failures = 0u32;
    let opening = Arc::new(std::sync::atomic::AtomicBool::new(false));
    loop {
        let result = match plugins.open(&config, collector.timeout_ms(), &opening).await {
            Ok(driver) => {
                let profile = Arc::new(t3_drivers::profile::plugin_profile(config.protocol.name(), driver.points()));
                plugin_spec(config.clone(), profile, registry).map(|spec| (spec, driver))
            }
            Err(e) => Err(anyhow::anyhow!("{e}")),
        };
        match result {
            Ok((spec, driver)) => {
                let points = spec.points.len();
                let driver: Arc<dyn Driver> = driver;
                match collector.add_device_with(spec, Some(driver)) {
                    Ok(()) => tracing::info!(device = %name, protocol = %config.protocol, points, "polling started"),
                    Err(e) => tracing::error!(device = %name, error = %e, "the plugin device cannot be polled"),
                }
                return;
            }
            Err(e) => {
                failures += 1;
                let wait = collector.pending_failed(&name, failures, &format!("{e:#}"));
                if failures == 1 {
                    tracing::warn!(device = %name, error = %format!("{e:#}"), "the plugin device could not be opened; retrying");
                }
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// A plugin device's spec: its plugin's points with ids from the registry.
fn plugin_spec(
    config: DeviceConfig,
    profile: Arc<t3_drivers::profile::Profile>,
    registry: &Registry,
) -> anyhow::Result<DeviceSpec> {
    let name = config.name.clone();
    anyhow::ensure!(
        registry.free_ids() >= profile.points.len() as u64,
        "device `{name}`: no point ids left for its {} points",
        profile.points.len()
    );
    let spec = DeviceSpec::new(config, profile, |p| registry.id(&name, &p.name))?;
    registry.save()?;
    Ok(spec)
}

/// The points a device is polled for, with their stored ids (empty for an unknown device).
pub fn device_points(collector: &Collector, name: &str) -> Vec<DevicePoint> {
    let Some(spec) = collector.device(name) else { return Vec::new() };
    spec.points
        .iter()
        .map(|cp| {
            let p = spec.point_of(cp);
            let span = t3_drivers::classify::write_span(p);
            let plugin = p.plugin.as_deref();
            DevicePoint {
                id: cp.id,
                name: p.name.clone(),
                description: (plugin.is_some() || p.point_type == t3_drivers::profile::PointType::Register)
                    .then(|| p.description.trim().to_owned())
                    .filter(|d| !d.is_empty()),
                point_type: enum_name(&p.point_type),
                point_number: p.point_number,
                register_kind: if plugin.is_some() { "plugin".into() } else { enum_name(&p.kind) },
                address: p.address,
                encoding: plugin.map_or_else(|| p.codec.to_string(), |pp| enum_name(&pp.kind)),
                object: plugin.and_then(|pp| pp.address.clone()),
                states: plugin.map(|pp| pp.states.clone()).unwrap_or_default(),
                writable: p.writable,
                unit: p.unit.clone(),
                // The point's own (trend logs may poll it faster: `trendlogs::recording`).
                poll_interval_ms: spec.own(cp).0.as_millis() as u64,
                has_auto_manual: p.auto_manual.is_some(),
                class: p.class().into(),
                min: span.map(|s| s.min),
                max: span.map(|s| s.max),
            }
        })
        .collect()
}

/// What [`store_config_devices`] changed in the catalog.
#[derive(Debug, Clone, Default)]
pub struct FileDevices {
    /// Devices new in the file.
    pub added: Vec<DeviceRecord>,
    /// Devices whose definition changed: (before, after).
    pub changed: Vec<(DeviceRecord, DeviceRecord)>,
    /// Devices of the file no longer in it.
    pub removed: Vec<DeviceRecord>,
}

/// Copies the configuration file's devices into the catalog (`source: "config"`): new ones are
/// added, changed ones updated (their place and description kept; a device of the API with the
/// name of one becomes the file's), ones gone from the file removed with what the catalog keeps
/// for them. Polling is the caller's.
pub fn store_config_devices(catalog: &Catalog, devices: &[DeviceConfig]) -> t3_storage::Result<FileDevices> {
    catalog.transaction(|tx| {
        let mut out = FileDevices::default();
        let existing: Vec<DeviceRecord> = tx.rows::<DeviceRecord>().values().cloned().collect();
        for d in &existing {
            if d.source == "config" && !devices.iter().any(|c| c.name == d.config.name) {
                tx.delete::<DeviceRecord>(d.id);
                tx.delete::<crate::model::custom_range::CustomRanges>(d.id);
                tx.delete::<crate::model::sync::SyncBaseline>(d.id);
                out.removed.push(d.clone());
            }
        }
        for c in devices {
            match existing.iter().find(|d| d.config.name == c.name) {
                Some(d) if d.source == "config" && d.config == *c => {}
                Some(d) => {
                    let new = DeviceRecord { config: c.clone(), source: "config".into(), ..d.clone() };
                    tx.put(new.clone())?;
                    out.changed.push((d.clone(), new));
                }
                None => {
                    let new = tx.insert(DeviceRecord {
                        id: 0,
                        config: c.clone(),
                        building_id: None,
                        floor_id: None,
                        room_id: None,
                        description: None,
                        source: "config".into(),
                    })?;
                    out.added.push(new);
                }
            }
        }
        Ok(out)
    })
}

/// [`store_config_devices`] at start: returns every device to poll, the API's included.
pub fn sync_config_devices(catalog: &Catalog, devices: &[DeviceConfig]) -> anyhow::Result<Vec<DeviceConfig>> {
    store_config_devices(catalog, devices)?;
    Ok(catalog.list::<DeviceRecord>().into_iter().map(|d| d.config).collect())
}

/// The serde name of a unit enum variant (`input`, `holding`, ...).
pub fn enum_name<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}
