//! Devices in the catalog and in the collector, changed as one: each change is checked (as the
//! configuration file's devices are), stored in the catalog, applied to polling (a new device
//! starts, a changed one restarts, a deleted one stops) and audited. `POST`/`PUT`/`DELETE
//! /devices`, point settings that change a device's definition, the CSV import and the WebView
//! import all go through here, so a device is checked and applied one way whoever asks.
//!
//! One request is all or nothing: a device that passes the checks but cannot be polled after
//! all (another device polls under its name, no point ids are left, the registry cannot be
//! saved) is taken back (a new one deleted, a changed one stored and polled as it was) and the
//! refusal is audited. A batch ([`Devices::apply`], an import) is checked whole and stored in one
//! catalog transaction; a device of it that then does not poll stays stored, and its audit entry
//! says why.
//!
//! Devices of the configuration file are copied into the catalog at every start (`source:
//! "config"`); the file stays their source, so here only their place and description change.

use crate::model::device::DeviceRecord;
use crate::model::place::{Building, Floor, Room};
use crate::service::Issuer;
use crate::service::audit::AuditLog;
use crate::service::registry::Registry;
use std::sync::Arc;
use t3_core::config::DeviceConfig;
use t3_drivers::collector::{CollectError, Collector};
use t3_drivers::plugin::PluginHost;
use t3_drivers::profile::ProfileLibrary;
use t3_storage::catalog::Catalog;

/// Why a device definition was refused ([`Devices::check`]): the message names the key, as in the
/// configuration file but relative to the device (`poll_interval_ms: ...`).
#[derive(Debug, thiserror::Error)]
pub enum DeviceCheck {
    /// Wrong by itself: a value out of range, a profile point it does not have, a plugin's
    /// refusal, points that do not fit its read limits.
    #[error("{0}")]
    Invalid(String),
    /// Wrong beside the other devices: a name taken, a serial port used at another speed.
    #[error("{0}")]
    Conflict(String),
}

/// Why a place (building, floor, room ids) was refused.
#[derive(Debug, thiserror::Error)]
pub enum PlaceError {
    /// No building, floor or room with that id.
    #[error("{0}")]
    Missing(String),
    /// They exist but do not hold together (a room not on that floor).
    #[error("{0}")]
    Apart(String),
}

/// Why a device change was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// No device with this id or name.
    #[error("no device \"{0}\"")]
    NotFound(String),
    #[error(transparent)]
    Check(#[from] DeviceCheck),
    #[error(transparent)]
    Place(#[from] PlaceError),
    /// A device of the configuration file whose definition a change touches.
    #[error(
        "device `{0}` is defined in the configuration file; change it there (only building_id, floor_id, room_id and description change here)"
    )]
    DefinedInConfig(String),
    /// A device of the configuration file to delete.
    #[error("device \"{0}\" is defined in the configuration file; remove it there")]
    DeleteFromConfig(String),
    /// Polling could not start: the collector polls a device of that name already.
    #[error("{0}")]
    AlreadyPolled(String),
    /// Polling could not start: the device's points cannot be planned, or no point ids are left.
    #[error("{0}")]
    NotPollable(String),
    /// The point-id registry could not be written.
    #[error("point ids: {0}")]
    Registry(String),
    #[error(transparent)]
    Storage(#[from] t3_storage::Error),
}

pub type Result<T, E = DeviceError> = std::result::Result<T, E>;

/// Where a device is: a building, a floor and a room id, each if given.
pub type Place = (Option<i64>, Option<i64>, Option<i64>);

/// A device as a caller defines it: the fields of a `[[devices]]` table and where it is.
#[derive(Debug, Clone)]
pub struct DeviceDraft {
    pub config: DeviceConfig,
    pub building_id: Option<i64>,
    pub floor_id: Option<i64>,
    pub room_id: Option<i64>,
    pub description: Option<String>,
}

/// One device of a batch, checked: what it was (none: it is new) and what it becomes.
#[derive(Debug, Clone)]
pub struct Change {
    pub old: Option<DeviceRecord>,
    pub new: DeviceRecord,
}

/// A change of a batch as stored: the record (with its id) and the audit result (`ok`, or why it
/// does not poll).
#[derive(Debug, Clone)]
pub struct Applied {
    pub record: DeviceRecord,
    pub result: String,
}

/// The device service: the catalog's devices and their polling.
#[derive(Debug, Clone)]
pub struct Devices {
    catalog: Arc<Catalog>,
    collector: Arc<Collector>,
    registry: Arc<Registry>,
    plugins: Arc<PluginHost>,
    audit: AuditLog,
}

impl Devices {
    pub fn new(
        catalog: Arc<Catalog>,
        collector: Arc<Collector>,
        registry: Arc<Registry>,
        plugins: Arc<PluginHost>,
        audit: AuditLog,
    ) -> Devices {
        Devices { catalog, collector, registry, plugins, audit }
    }

    /// The device a key names: its id, or else its name.
    pub fn find(&self, key: &str) -> Result<DeviceRecord> {
        let by_id = key.parse::<i64>().ok().and_then(|id| self.catalog.get::<DeviceRecord>(id));
        by_id
            .or_else(|| self.catalog.read::<DeviceRecord, _>(|d| d.values().find(|d| d.config.name == key).cloned()))
            .ok_or_else(|| DeviceError::NotFound(key.to_owned()))
    }

    /// Checks a device definition as the configuration file's devices are checked: by itself (its
    /// values, its profile, its plugin's `check_config`; [`DeviceCheck::Invalid`]), beside the
    /// catalog's other devices (`replacing`: the id of the device it replaces, left out;
    /// [`DeviceCheck::Conflict`]), then that its points can be polled as it says (they fit its
    /// read limits, ids are left for them; `Invalid`).
    pub fn check(&self, config: &DeviceConfig, replacing: Option<i64>) -> Result<(), DeviceCheck> {
        use t3_core::config::{Config, ConfigError};
        let field = |e: ConfigError, last: &str| {
            let key = e.key.as_deref().map(|k| k.strip_prefix(last).unwrap_or(k).to_owned()).unwrap_or_default();
            format!("{key}: {}", e.message)
        };
        let alone = Config { devices: vec![config.clone()], ..Config::default() };
        alone
            .validate()
            .and_then(|()| ProfileLibrary::builtin().check_devices(&alone.devices))
            .and_then(|()| self.plugins.check_device(config, "devices[0]", self.collector.timeout_ms()))
            .map_err(|e| DeviceCheck::Invalid(field(e, "devices[0].")))?;
        let mut all: Vec<DeviceConfig> = self.catalog.read::<DeviceRecord, _>(|d| {
            d.values().filter(|d| Some(d.id) != replacing).map(|d| d.config.clone()).collect()
        });
        all.push(config.clone());
        let last = format!("devices[{}].", all.len() - 1);
        let cfg = Config { devices: all, ..Config::default() };
        cfg.validate().map_err(|e| DeviceCheck::Conflict(field(e, &last)))?;
        crate::service::collection::check_pollable(config, &self.registry)
            .map_err(|e| DeviceCheck::Invalid(format!("{e:#}")))
    }

    /// A new device as it would be stored (`source: "api"`), checked: its definition, then its
    /// place.
    pub fn check_new(&self, draft: DeviceDraft) -> Result<DeviceRecord> {
        self.check(&draft.config, None)?;
        let (building_id, floor_id, room_id) = self.place(draft.building_id, draft.floor_id, draft.room_id)?;
        Ok(DeviceRecord {
            id: 0,
            config: draft.config,
            building_id,
            floor_id,
            room_id,
            description: draft.description,
            source: "api".into(),
        })
    }

    /// `old` as `draft` changes it, checked: a device of the configuration file keeps its
    /// definition, the new definition is checked in place of the old, then the place.
    pub fn check_change(&self, old: &DeviceRecord, draft: DeviceDraft) -> Result<DeviceRecord> {
        Self::keeps_file_definition(old, &draft.config)?;
        self.check(&draft.config, Some(old.id))?;
        let (building_id, floor_id, room_id) = self.place(draft.building_id, draft.floor_id, draft.room_id)?;
        Ok(DeviceRecord {
            config: draft.config,
            building_id,
            floor_id,
            room_id,
            description: draft.description,
            ..old.clone()
        })
    }

    /// Refuses a change of the definition of a device of the configuration file.
    pub fn keeps_file_definition(old: &DeviceRecord, config: &DeviceConfig) -> Result<()> {
        if old.source == "config" && *config != old.config {
            return Err(DeviceError::DefinedInConfig(old.config.name.clone()));
        }
        Ok(())
    }

    /// Checks a place by its ids: each must exist (else [`PlaceError::Missing`]) and contain the
    /// next (else [`PlaceError::Apart`]). A room alone gives its floor and building, a floor its
    /// building.
    pub fn place(
        &self,
        building_id: Option<i64>,
        floor_id: Option<i64>,
        room_id: Option<i64>,
    ) -> Result<Place, PlaceError> {
        let missing = PlaceError::Missing;
        let room = room_id
            .map(|id| self.catalog.get::<Room>(id).ok_or_else(|| missing(format!("no room {id}"))))
            .transpose()?;
        let floor_id = match (&room, floor_id) {
            (Some(r), Some(f)) if r.floor_id != f => {
                return Err(PlaceError::Apart(format!("room {} is not on floor {f}", r.id)));
            }
            (Some(r), _) => Some(r.floor_id),
            (None, f) => f,
        };
        let floor = floor_id
            .map(|id| self.catalog.get::<Floor>(id).ok_or_else(|| missing(format!("no floor {id}"))))
            .transpose()?;
        let building_id = match (&floor, building_id) {
            (Some(f), Some(b)) if f.building_id != b => {
                return Err(PlaceError::Apart(format!("floor {} is not in building {b}", f.id)));
            }
            (Some(f), _) => Some(f.building_id),
            (None, b) => b,
        };
        if let Some(b) = building_id {
            self.catalog.get::<Building>(b).ok_or_else(|| missing(format!("no building {b}")))?;
        }
        Ok((building_id, floor_id, room_id))
    }

    /// Adds a device: checked, stored, polled at once, audited as `device.create`.
    pub fn create(&self, who: &Issuer, draft: DeviceDraft) -> Result<DeviceRecord> {
        let record = self.check_new(draft)?;
        self.add(who, "device.create", record)
    }

    /// Stores a new device (`record.id` 0) its caller made (checked, or built from what it trusts:
    /// an importer), polls it at once and audits it as `action`. A device that cannot be polled
    /// after all is deleted again, and the refusal audited.
    pub fn add(&self, who: &Issuer, action: &str, record: DeviceRecord) -> Result<DeviceRecord> {
        let record = self.catalog.insert(record)?;
        let audit = |result: &str| self.record(who, action, record.id, None, Some(&record), result);
        if let Err(e) = self.poll(&record.config) {
            // Nothing half-made stays behind.
            let _ = self.catalog.delete::<DeviceRecord>(record.id);
            audit(&e.to_string());
            return Err(e);
        }
        audit("ok");
        Ok(record)
    }

    /// Changes a device (the whole definition and its place; a device of the configuration file
    /// only its place and description), audited as `device.update`; polling restarts when the
    /// definition changed.
    pub async fn update(&self, who: &Issuer, old: &DeviceRecord, draft: DeviceDraft) -> Result<DeviceRecord> {
        let new = self.check_change(old, draft)?;
        self.replace(who, old, new).await
    }

    /// Gives a device a new definition, its place kept (a point's polling settings changed):
    /// checked, stored, polling restarted, audited as `device.update`. Nothing changes when the
    /// definition is the same. The caller refuses devices of the configuration file with its own
    /// words.
    pub async fn redefine(&self, who: &Issuer, old: &DeviceRecord, config: DeviceConfig) -> Result<DeviceRecord> {
        if config == old.config {
            return Ok(old.clone());
        }
        self.check(&config, Some(old.id))?;
        self.replace(who, old, DeviceRecord { config, ..old.clone() }).await
    }

    /// Stores `new` in place of `old` (checked) and restarts its polling when its definition
    /// changed; when it cannot be polled so, the old definition is stored and polled again (and
    /// the refusal audited).
    async fn replace(&self, who: &Issuer, old: &DeviceRecord, new: DeviceRecord) -> Result<DeviceRecord> {
        let restart = new.config != old.config;
        let renames = if restart { vec![(old.config.name.clone(), new.config.name.clone())] } else { Vec::new() };
        self.renamed(&renames, || self.catalog.put(new.clone()))?;
        let audit = |result: &str| self.record(who, "device.update", old.id, Some(old), Some(&new), result);
        if restart && let Err(e) = self.restart(&old.config.name, &new.config).await {
            // Nothing half-changed stays behind: the old definition is back, and polled.
            self.renamed(&[(new.config.name.clone(), old.config.name.clone())], || self.catalog.put(old.clone()))?;
            if let Err(back) = self.poll(&old.config) {
                tracing::error!(device = %old.config.name, error = %back, "could not restart the old definition");
            }
            audit(&e.to_string());
            return Err(e);
        }
        audit("ok");
        Ok(new)
    }

    /// Removes a device of the API: polling stops at once, its history stays. Audited as
    /// `device.delete`.
    pub async fn delete(&self, who: &Issuer, key: &str) -> Result<DeviceRecord> {
        let old = self.find(key)?;
        if old.source == "config" {
            return Err(DeviceError::DeleteFromConfig(old.config.name));
        }
        // What the catalog keeps for the device goes with it: its panel's custom ranges and its
        // hardware sync baseline.
        self.catalog.transaction(|tx| {
            tx.delete::<DeviceRecord>(old.id);
            tx.delete::<crate::model::custom_range::CustomRanges>(old.id);
            tx.delete::<crate::model::sync::SyncBaseline>(old.id);
            Ok(())
        })?;
        let _ = self.collector.remove_device(&old.config.name).await;
        self.record(who, "device.delete", old.id, Some(&old), None, "ok");
        Ok(old)
    }

    /// Applies a checked batch (an import): renamed devices keep their point ids, every record is
    /// stored in one catalog transaction, then each device that is new or whose definition changed
    /// (re)starts polling, and each change is audited as `action`. A device that does not poll
    /// stays stored; its result (and audit entry) says why.
    pub async fn apply(&self, who: &Issuer, action: &str, changes: &[Change]) -> Result<Vec<Applied>> {
        let renames: Vec<(String, String)> = changes
            .iter()
            .filter_map(|c| c.old.as_ref().map(|o| (o.config.name.clone(), c.new.config.name.clone())))
            .collect();
        let stored = self.renamed(&renames, || {
            self.catalog.transaction(|tx| {
                changes
                    .iter()
                    .map(|c| match &c.old {
                        None => tx.insert(c.new.clone()),
                        Some(_) => tx.put(c.new.clone()).map(|()| c.new.clone()),
                    })
                    .collect::<t3_storage::Result<Vec<DeviceRecord>>>()
            })
        })?;
        let mut out = Vec::with_capacity(changes.len());
        for (c, record) in changes.iter().zip(stored) {
            let old = c.old.as_ref();
            let mut result = "ok".to_owned();
            if old.is_none_or(|o| o.config != record.config) {
                let polled = match old {
                    Some(o) => self.restart(&o.config.name, &record.config).await,
                    None => self.poll(&record.config),
                };
                if let Err(e) = polled {
                    tracing::error!(device = %record.config.name, error = %e, "a device changed by an import does not poll");
                    result = format!("stored, but polling did not start: {e}");
                }
            }
            self.record(who, action, record.id, old, Some(&record), &result);
            out.push(Applied { record, result });
        }
        Ok(out)
    }

    /// Makes the devices of the configuration file those of `devices` (a configuration reload):
    /// in the catalog ([`crate::service::collection::store_config_devices`]) and in polling: a
    /// device gone from the file stops, a changed one restarts with its new points and intervals,
    /// a new one starts. Each change is audited (`device.delete`, `device.update`,
    /// `device.create`) as `who`. Returns the devices whose polling did not start, by name, with
    /// why; they stay stored, as they would after a restart.
    pub async fn sync_file(&self, who: &Issuer, devices: &[DeviceConfig]) -> Result<Vec<(String, String)>> {
        let changes = crate::service::collection::store_config_devices(&self.catalog, devices)?;
        let mut failed = Vec::new();
        for old in &changes.removed {
            let _ = self.collector.remove_device(&old.config.name).await;
            self.record(who, "device.delete", old.id, Some(old), None, "ok");
        }
        let restarts = changes.changed.iter().map(|(old, new)| (Some(old), new));
        for (old, new) in restarts.chain(changes.added.iter().map(|new| (None, new))) {
            let polled = match old {
                Some(o) => self.restart(&o.config.name, &new.config).await,
                None => self.poll(&new.config),
            };
            let result = match polled {
                Ok(()) => "ok".to_owned(),
                Err(e) => {
                    failed.push((new.config.name.clone(), e.to_string()));
                    format!("stored, but polling did not start: {e}")
                }
            };
            let action = if old.is_some() { "device.update" } else { "device.create" };
            self.record(who, action, new.id, old, Some(new), &result);
        }
        Ok(failed)
    }

    /// Whether `config` can be polled as it is defined (its profile is known, its points fit its
    /// read limits, ids are left for them); nothing is assigned.
    pub fn check_pollable(&self, config: &DeviceConfig) -> Result<(), String> {
        crate::service::collection::check_pollable(config, &self.registry).map_err(|e| format!("{e:#}"))
    }

    /// Stops polling the device named `stop` (if it is polled), then starts polling `config`.
    pub async fn restart(&self, stop: &str, config: &DeviceConfig) -> Result<()> {
        let _ = self.collector.remove_device(stop).await;
        self.poll(config)
    }

    /// Starts polling a device that is not polled now.
    fn poll(&self, config: &DeviceConfig) -> Result<()> {
        crate::service::collection::start_device(&self.collector, &self.registry, &self.plugins, config.clone())
            .map_err(|e| match e.downcast_ref::<CollectError>() {
                Some(CollectError::DuplicateDevice(_)) => DeviceError::AlreadyPolled(e.to_string()),
                // The profile's points do not fit the read limits (max_registers), or no ids are left.
                _ => DeviceError::NotPollable(format!("{e:#}")),
            })
    }

    /// Moves the point ids of each `(old, new)` name pair that differ to the new name, then runs
    /// `write`; when it fails the ids go back, so the registry and the catalog agree.
    fn renamed<T>(&self, renames: &[(String, String)], write: impl FnOnce() -> t3_storage::Result<T>) -> Result<T> {
        let renames: Vec<&(String, String)> = renames.iter().filter(|(old, new)| old != new).collect();
        let rename = |from: &str, to: &str| {
            self.registry.rename_device(from, to).map_err(|e| DeviceError::Registry(format!("{e:#}")))
        };
        for (old, new) in &renames {
            rename(old, new)?;
        }
        write().map_err(|e| {
            for (old, new) in renames.iter().rev() {
                if let Err(back) = rename(new, old) {
                    tracing::error!(device = %old, error = %back, "could not give a device its point ids back");
                }
            }
            DeviceError::Storage(e)
        })
    }

    fn record(
        &self,
        who: &Issuer,
        action: &str,
        id: i64,
        old: Option<&DeviceRecord>,
        new: Option<&DeviceRecord>,
        result: &str,
    ) {
        let json = |d: Option<&DeviceRecord>| d.and_then(|d| serde_json::to_value(d).ok());
        let target = Some(format!("device:{id}"));
        self.audit.record(who.remote.clone(), &who.actor, action, target, json(old), json(new), result);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use t3_core::config::CollectorConfig;
    use t3_storage::catalog::{AuditEntry, AuditFilter};

    const NOW: i64 = 1_795_651_200_000_000;

    /// A device service over a fresh catalog, registry and collector (not polling the network:
    /// the collector is disabled, devices are registered all the same).
    struct World {
        devices: Devices,
        catalog: Arc<Catalog>,
        collector: Arc<Collector>,
        registry: Arc<Registry>,
        _storage: t3_storage::Storage,
        dir: tempfile::TempDir,
    }

    fn world() -> World {
        let crate::service::testing::Base { dir, storage, catalog, collector, clock } =
            crate::service::testing::base(NOW, CollectorConfig { enabled: false, ..Default::default() });
        let registry = Arc::new(Registry::open(dir.path(), 1).unwrap());
        let audit = AuditLog::new(catalog.clone(), clock);
        let plugins = Arc::new(PluginHost::empty());
        let devices = Devices::new(catalog.clone(), collector.clone(), registry.clone(), plugins, audit);
        World { devices, catalog, collector, registry, _storage: storage, dir }
    }

    fn config(name: &str, unit_id: u8) -> DeviceConfig {
        serde_json::from_value(serde_json::json!({
            "name": name, "protocol": "modbus-tcp", "ip_address": "127.0.0.1", "port": 1,
            "unit_id": unit_id, "profile": "T3-controller",
        }))
        .unwrap()
    }

    fn draft(config: DeviceConfig) -> DeviceDraft {
        DeviceDraft { config, building_id: None, floor_id: None, room_id: None, description: None }
    }

    fn who() -> Issuer {
        Issuer { actor: "alice".into(), remote: None, role: None }
    }

    fn audited(catalog: &Catalog, action: &str) -> Vec<AuditEntry> {
        let filter = AuditFilter { action: Some(action.into()), limit: 100, ..Default::default() };
        catalog.audit(&filter).unwrap()
    }

    fn names(catalog: &Catalog) -> Vec<String> {
        let mut v: Vec<String> = catalog.list::<DeviceRecord>().into_iter().map(|d| d.config.name).collect();
        v.sort();
        v
    }

    /// Polls a device under `name` that the catalog does not have (as a concurrent request
    /// would), with ids of a registry of its own, so starting another device of that name fails.
    fn squat(w: &World, name: &str) {
        let other = Arc::new(Registry::open(&w.dir.path().join("data"), 1).unwrap());
        let plugins = Arc::new(PluginHost::empty());
        crate::service::collection::start_device(&w.collector, &other, &plugins, config(name, 9)).unwrap();
    }

    #[tokio::test]
    async fn a_new_device_is_stored_polled_and_audited() {
        let w = world();
        let d = w.devices.create(&who(), draft(config("ahu-1", 1))).unwrap();
        assert!(d.id > 0 && d.source == "api");
        assert_eq!(w.devices.find("ahu-1").unwrap().id, d.id);
        assert_eq!(w.devices.find(&d.id.to_string()).unwrap().config.name, "ahu-1");
        assert!(w.collector.device("ahu-1").is_some(), "polled at once");
        let a = audited(&w.catalog, "device.create");
        assert_eq!((a.len(), a[0].result.as_str(), a[0].target.as_deref()), (1, "ok", Some("device:1")));
        assert!(matches!(w.devices.find("nothing"), Err(DeviceError::NotFound(_))));
    }

    #[tokio::test]
    async fn a_device_that_cannot_start_leaves_nothing_stored() {
        let w = world();
        squat(&w, "ahu-1");
        let e = w.devices.create(&who(), draft(config("ahu-1", 1))).unwrap_err();
        assert!(matches!(e, DeviceError::AlreadyPolled(_)), "{e}");
        assert!(names(&w.catalog).is_empty(), "the record is gone again");
        let a = audited(&w.catalog, "device.create");
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].result, e.to_string(), "the refusal is audited");
    }

    #[tokio::test]
    async fn points_that_do_not_fit_the_read_limits_are_refused_before_anything_changes() {
        let w = world();
        let mut narrow = config("ahu-1", 1);
        narrow.max_registers = Some(1);
        let e = w.devices.create(&who(), draft(narrow.clone())).unwrap_err();
        match &e {
            DeviceError::Check(DeviceCheck::Invalid(m)) => assert!(m.starts_with("cannot plan reads"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(names(&w.catalog).is_empty());
        assert!(w.registry.entries().is_empty(), "no point ids handed out for it");
        assert!(audited(&w.catalog, "device.").is_empty(), "a refused definition changes nothing");
        // The same check refuses it as a change of a device that polls.
        let d = w.devices.create(&who(), draft(config("ahu-1", 1))).unwrap();
        let e = w.devices.update(&who(), &d, draft(narrow)).await.unwrap_err();
        assert!(matches!(e, DeviceError::Check(DeviceCheck::Invalid(_))), "{e}");
        assert!(w.devices.find("ahu-1").unwrap().config.max_registers.is_none());
    }

    #[tokio::test]
    async fn a_change_that_cannot_start_puts_the_old_definition_back_polled() {
        let w = world();
        let old = w.devices.create(&who(), draft(config("ahu-1", 1))).unwrap();
        let in1 = w.registry.id("ahu-1", "IN1");
        squat(&w, "ahu-2");
        let mut renamed = config("ahu-2", 1);
        renamed.poll_interval_ms = 500;
        let e = w.devices.update(&who(), &old, draft(renamed)).await.unwrap_err();
        assert!(matches!(e, DeviceError::AlreadyPolled(_)), "{e}");
        let now = w.devices.find(&old.id.to_string()).unwrap();
        assert_eq!(now.config, old.config, "the old definition is stored");
        assert!(w.collector.device("ahu-1").is_some(), "and polled again");
        assert_eq!(w.registry.id("ahu-1", "IN1"), in1, "the point ids went back to the old name");
        let a = audited(&w.catalog, "device.update");
        assert_eq!((a.len(), a[0].result.as_str()), (1, e.to_string().as_str()));
    }

    #[tokio::test]
    async fn a_renamed_device_keeps_its_point_ids_and_a_place_change_does_not_restart() {
        let w = world();
        let old = w.devices.create(&who(), draft(config("ahu-1", 1))).unwrap();
        let in1 = w.registry.id("ahu-1", "IN1");
        let new = w.devices.update(&who(), &old, draft(config("ahu-2", 1))).await.unwrap();
        assert_eq!((new.id, w.registry.id("ahu-2", "IN1")), (old.id, in1));
        assert!(w.collector.device("ahu-1").is_none() && w.collector.device("ahu-2").is_some());
        // Only the description: stored, the device polls on untouched.
        let spec = w.collector.device("ahu-2").unwrap();
        let described = DeviceDraft { description: Some("roof".into()), ..draft(new.config.clone()) };
        let d = w.devices.update(&who(), &new, described).await.unwrap();
        assert_eq!(d.description.as_deref(), Some("roof"));
        assert!(Arc::ptr_eq(&spec, &w.collector.device("ahu-2").unwrap()), "not restarted");
    }

    #[tokio::test]
    async fn a_device_of_the_configuration_file_changes_only_its_place_and_is_not_deleted() {
        let w = world();
        let file = crate::service::collection::sync_config_devices(&w.catalog, &[config("from-file", 1)]).unwrap();
        w.devices.poll(&file[0]).unwrap();
        let d = w.devices.find("from-file").unwrap();
        let mut changed = d.config.clone();
        changed.poll_interval_ms = 5000;
        let e = w.devices.update(&who(), &d, draft(changed)).await.unwrap_err();
        assert!(matches!(e, DeviceError::DefinedInConfig(_)), "{e}");
        let moved = DeviceDraft { description: Some("basement".into()), ..draft(d.config.clone()) };
        assert_eq!(w.devices.update(&who(), &d, moved).await.unwrap().description.as_deref(), Some("basement"));
        let e = w.devices.delete(&who(), "from-file").await.unwrap_err();
        assert!(matches!(e, DeviceError::DeleteFromConfig(_)), "{e}");
        assert!(w.collector.device("from-file").is_some());
    }

    #[tokio::test]
    async fn a_deleted_device_stops_polling_and_its_ids_stay() {
        let w = world();
        w.devices.create(&who(), draft(config("ahu-1", 1))).unwrap();
        let in1 = w.registry.id("ahu-1", "IN1");
        let gone = w.devices.delete(&who(), "ahu-1").await.unwrap();
        assert_eq!(gone.config.name, "ahu-1");
        assert!(names(&w.catalog).is_empty() && w.collector.device("ahu-1").is_none());
        assert_eq!(w.registry.id("ahu-1", "IN1"), in1, "its history keeps its ids");
        assert_eq!(audited(&w.catalog, "device.delete").len(), 1);
    }

    #[tokio::test]
    async fn a_name_taken_conflicts_and_a_bad_value_is_invalid() {
        let w = world();
        w.devices.create(&who(), draft(config("ahu-1", 1))).unwrap();
        let e = w.devices.check(&config("ahu-1", 2), None).unwrap_err();
        assert!(matches!(&e, DeviceCheck::Conflict(m) if m.starts_with("name: ")), "{e}");
        let mut slow = config("ahu-2", 2);
        slow.poll_interval_ms = 5;
        let e = w.devices.check(&slow, None).unwrap_err();
        assert!(matches!(&e, DeviceCheck::Invalid(m) if m.starts_with("poll_interval_ms: ")), "{e}");
        // The device itself, replaced, is no conflict.
        let d = w.devices.find("ahu-1").unwrap();
        w.devices.check(&config("ahu-1", 3), Some(d.id)).unwrap();
    }

    #[tokio::test]
    async fn a_batch_is_stored_at_once_renames_keep_ids_and_each_change_is_audited() {
        let w = world();
        let a = w.devices.create(&who(), draft(config("ahu-1", 1))).unwrap();
        let in1 = w.registry.id("ahu-1", "IN1");
        let changes = [
            Change { old: Some(a.clone()), new: DeviceRecord { config: config("ahu-9", 1), ..a.clone() } },
            Change { old: None, new: w.devices.check_new(draft(config("ahu-2", 2))).unwrap() },
        ];
        let applied = w.devices.apply(&who(), "import.csv", &changes).await.unwrap();
        assert_eq!(applied.iter().map(|a| a.result.as_str()).collect::<Vec<_>>(), ["ok", "ok"]);
        assert_eq!(names(&w.catalog), ["ahu-2", "ahu-9"]);
        assert!(applied[1].record.id > a.id, "the new device got its id");
        assert_eq!(w.registry.id("ahu-9", "IN1"), in1);
        assert!(w.collector.device("ahu-1").is_none());
        assert!(w.collector.device("ahu-9").is_some() && w.collector.device("ahu-2").is_some());
        let audit = audited(&w.catalog, "import.csv");
        assert_eq!(audit.len(), 2);
        // A device of the batch that does not poll stays stored, and says why.
        squat(&w, "ahu-3");
        let late = [Change { old: None, new: w.devices.check_new(draft(config("ahu-3", 3))).unwrap() }];
        let applied = w.devices.apply(&who(), "import.csv", &late).await.unwrap();
        assert!(applied[0].result.starts_with("stored, but polling did not start: "), "{}", applied[0].result);
        assert_eq!(names(&w.catalog), ["ahu-2", "ahu-3", "ahu-9"]);
    }

    #[tokio::test]
    async fn a_place_must_exist_and_hold_together() {
        let w = world();
        let now = NOW;
        let b = w
            .catalog
            .insert(Building {
                id: 0,
                name: "HQ".into(),
                description: None,
                address: None,
                time_zone: "UTC".into(),
                updated_us: now,
            })
            .unwrap();
        let f = w
            .catalog
            .insert(Floor {
                id: 0,
                building_id: b.id,
                name: "L1".into(),
                level: 0,
                description: None,
                updated_us: now,
                plan: None,
                plan_points: vec![],
            })
            .unwrap();
        let r = w
            .catalog
            .insert(Room { id: 0, floor_id: f.id, name: "101".into(), description: None, updated_us: now })
            .unwrap();
        assert_eq!(w.devices.place(None, None, Some(r.id)).unwrap(), (Some(b.id), Some(f.id), Some(r.id)));
        assert!(matches!(w.devices.place(Some(b.id + 100), None, None), Err(PlaceError::Missing(_))));
        assert!(matches!(w.devices.place(Some(b.id + 100), None, Some(r.id)), Err(PlaceError::Apart(_))));
    }
}
