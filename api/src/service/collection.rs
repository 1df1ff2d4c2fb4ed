//! Collection: the collector fed from the catalog's devices (the configuration file's `[[devices]]`
//! copied in, and those added over the API), its samples sent to storage, point ids from the
//! [`Registry`].

use crate::model::device::{DevicePoint, DeviceRecord};
use crate::service::registry::Registry;
use futures::future::BoxFuture;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use t3_core::Sample;
use t3_core::config::{Config, ConfigError, DeviceConfig};
use t3_drivers::collector::{Collector, DeviceSpec, SampleSink};
use t3_drivers::profile::ProfileLibrary;
use t3_storage::Storage;
use t3_storage::catalog::Catalog;
use tokio::sync::{mpsc, oneshot};

/// How long collected samples wait for others before they go to storage together.
const COLLECT_BATCH_WINDOW: Duration = Duration::from_millis(50);
/// A batch goes to storage at once when it reaches this many samples.
const COLLECT_BATCH_SAMPLES: usize = 65_536;

type Pending = (Vec<Sample>, oneshot::Sender<Result<(), String>>);

/// Collected samples go through the same ingest path (WAL, buffer, Parquet) as pushed ones, in
/// batches: the polls of every device that arrive within [`COLLECT_BATCH_WINDOW`] of the first one
/// share one WAL write and fsync (200 devices polled every second: 20 fsyncs a second, not 200).
/// Each poll is still acknowledged only once its samples are durable.
#[derive(Debug, Clone)]
pub struct StorageSink {
    tx: mpsc::UnboundedSender<Pending>,
}

impl StorageSink {
    /// Starts the batching task on the current runtime; it ends when every clone of the sink is gone.
    pub fn start(storage: Storage) -> StorageSink {
        let (tx, mut rx) = mpsc::unbounded_channel::<Pending>();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let deadline = tokio::time::Instant::now() + COLLECT_BATCH_WINDOW;
                let mut count = first.0.len();
                let mut batch = vec![first];
                while count < COLLECT_BATCH_SAMPLES {
                    match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(Some(next)) => {
                            count += next.0.len();
                            batch.push(next);
                        }
                        Ok(None) | Err(_) => break,
                    }
                }
                let mut samples = Vec::with_capacity(count);
                let mut acks = Vec::with_capacity(batch.len());
                for (s, ack) in batch {
                    samples.extend(s);
                    acks.push(ack);
                }
                let result = storage.ingest(samples).await.map_err(|e| e.to_string());
                for ack in acks {
                    let _ = ack.send(result.clone());
                }
            }
        });
        StorageSink { tx }
    }
}

impl SampleSink for StorageSink {
    fn ingest(&self, samples: Vec<Sample>) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let (ack, done) = oneshot::channel();
            self.tx.send((samples, ack)).map_err(|_| "the storage writer has stopped".to_owned())?;
            done.await.map_err(|_| "the storage writer has stopped".to_owned())?
        })
    }
}

/// The configuration check that needs the profile library: every device names a known profile and
/// every point override a point of it. Errors name the key (and so the file line).
pub fn check_devices(cfg: &Config) -> Result<(), ConfigError> {
    let lib = ProfileLibrary::builtin();
    for (i, d) in cfg.devices.iter().enumerate() {
        let Some(profile) = lib.get(&d.profile) else {
            let mut names: Vec<&str> = lib.profiles().map(|p| p.name.as_str()).collect();
            names.sort_unstable();
            return Err(ConfigError::new(
                format!("devices[{i}].profile"),
                format!("unknown profile `{}`; known profiles: {}", d.profile, names.join(", ")),
            ));
        };
        for (j, p) in d.points.iter().enumerate() {
            if profile.point(&p.name).is_none() {
                return Err(ConfigError::new(
                    format!("devices[{i}].points[{j}].name"),
                    format!("profile `{}` has no point `{}`", profile.name, p.name),
                ));
            }
        }
    }
    Ok(())
}

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
            DevicePoint {
                id: cp.id,
                name: p.name.clone(),
                point_type: enum_name(&p.point_type),
                point_number: p.point_number,
                register_kind: enum_name(&p.kind),
                address: p.address,
                encoding: p.codec.to_string(),
                writable: p.writable,
                unit: p.unit.clone(),
                poll_interval_ms: cp.interval.as_millis() as u64,
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
