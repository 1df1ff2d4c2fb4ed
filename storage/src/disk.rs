//! Free space of the data directory's filesystem, and what storage does about it.
//!
//! A [`DiskGuard`] measures the free space ([`FreeSpace`]: `statvfs`, or a stand-in in tests) every
//! `storage.disk_check_interval_ms` and after every flush, and keeps a [`DiskLevel`]:
//!
//! | level | entered when free space is | left when free space is |
//! |---|---|---|
//! | [`DiskLevel::Low`] | below the alarm threshold | more than 10% above it |
//! | [`DiskLevel::Floor`] | below the floor (`storage.disk_floor_free_mb`) | more than 10% above it |
//!
//! The alarm threshold is `storage.disk_alarm_free_mb` or `storage.disk_alarm_free_percent` of the
//! filesystem's size, whichever is more. At the floor, [`DiskGuard::admit`] refuses every new
//! sample with [`Error::DiskFull`] (retryable: the HTTP layer answers 503 with `Retry-After`) and
//! counts them, so the disk never fills up with the WAL; compaction, which writes a day again
//! before it deletes the old files, waits. Reads, flushes (a Parquet file is smaller than the WAL
//! it replaces) and retention (it frees space) go on. The 10% hysteresis keeps a disk hovering at
//! a threshold from flapping between refusing and accepting.

use crate::error::{Error, Result};
use parking_lot::RwLock;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes in a MiB, the unit of the configuration's thresholds.
pub const MIB: u64 = 1 << 20;

/// Free and total bytes of a filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Space {
    /// Bytes this process may still write (`f_bavail`: without the blocks reserved for root).
    pub free_bytes: u64,
    /// The filesystem's size.
    pub total_bytes: u64,
}

/// Where free space comes from: the filesystem, or a stand-in in tests.
pub trait FreeSpace: Send + Sync + std::fmt::Debug {
    /// The free and total space of the filesystem holding `path`.
    fn measure(&self, path: &Path) -> std::io::Result<Space>;
}

/// The filesystem's own account (`statvfs`).
#[derive(Debug, Clone, Copy, Default)]
pub struct StatVfs;

impl FreeSpace for StatVfs {
    fn measure(&self, path: &Path) -> std::io::Result<Space> {
        let s = rustix::fs::statvfs(path)?;
        Ok(Space {
            free_bytes: s.f_bavail.saturating_mul(s.f_frsize),
            total_bytes: s.f_blocks.saturating_mul(s.f_frsize),
        })
    }
}

/// Free space set by hand, for tests (of the engine and of the services that watch it). Until it
/// is set, measuring fails.
#[derive(Debug, Default)]
pub struct ManualSpace(parking_lot::Mutex<Option<Space>>);

impl ManualSpace {
    /// From now on the filesystem has `free` of `total` bytes; `None`: measuring fails.
    pub fn set(&self, space: Option<Space>) {
        *self.0.lock() = space;
    }
}

impl FreeSpace for ManualSpace {
    fn measure(&self, _: &Path) -> std::io::Result<Space> {
        (*self.0.lock()).ok_or_else(|| std::io::Error::other("no filesystem"))
    }
}

/// The thresholds and how often to measure (`[storage]`; swappable at run time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskSettings {
    /// Below this many bytes free the disk is [`DiskLevel::Low`] ...
    pub alarm_free_bytes: u64,
    /// ... or below this percentage of the filesystem's size, whichever is more.
    pub alarm_free_percent: u8,
    /// Below this many bytes free writes are refused ([`DiskLevel::Floor`]); 0: never.
    pub floor_free_bytes: u64,
    /// How often the watcher measures, milliseconds.
    pub check_interval_ms: u64,
}

impl DiskSettings {
    /// The settings of a (validated) configuration.
    pub fn from_config(cfg: &t3_core::config::StorageConfig) -> Self {
        DiskSettings {
            alarm_free_bytes: cfg.disk_alarm_free_mb.saturating_mul(MIB),
            alarm_free_percent: cfg.disk_alarm_free_percent,
            floor_free_bytes: cfg.disk_floor_free_mb.saturating_mul(MIB),
            check_interval_ms: cfg.disk_check_interval_ms,
        }
    }

    /// The alarm threshold in bytes on a filesystem of `total` bytes.
    fn alarm_bytes(&self, total: u64) -> u64 {
        let percent = (u128::from(total) * u128::from(self.alarm_free_percent) / 100) as u64;
        self.alarm_free_bytes.max(percent)
    }
}

/// How much room is left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DiskLevel {
    /// Above the alarm threshold.
    #[default]
    Ok,
    /// Below the alarm threshold: the disk-space alarm is raised.
    Low,
    /// Below the floor: writes are refused.
    Floor,
}

impl DiskLevel {
    /// `ok`, `low` or `floor`.
    pub fn as_str(self) -> &'static str {
        match self {
            DiskLevel::Ok => "ok",
            DiskLevel::Low => "low",
            DiskLevel::Floor => "floor",
        }
    }
}

/// The level after measuring `free` bytes, given the level before (see the module's table).
fn next_level(before: DiskLevel, free: u64, alarm: u64, floor: u64) -> DiskLevel {
    let above_by_a_tenth = |threshold: u64| free > threshold.saturating_add(threshold / 10);
    if floor > 0 && (free < floor || (before == DiskLevel::Floor && !above_by_a_tenth(floor))) {
        DiskLevel::Floor
    } else if free < alarm || (before >= DiskLevel::Low && !above_by_a_tenth(alarm)) {
        DiskLevel::Low
    } else {
        DiskLevel::Ok
    }
}

/// The latest measurement and what it means.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiskStatus {
    /// The data directory.
    pub path: PathBuf,
    pub level: DiskLevel,
    /// The latest successful measurement (`None` if none succeeded yet).
    pub space: Option<Space>,
    /// The alarm threshold in bytes, for this filesystem's size.
    pub alarm_free_bytes: u64,
    /// The floor in bytes (0: writes are never refused for space).
    pub floor_free_bytes: u64,
    /// Why the latest measurement failed (absent when it succeeded).
    pub error: Option<String>,
    /// Samples refused at the floor since start.
    pub refused_samples: u64,
}

/// Bytes as MiB with one decimal (`3.2 MiB`).
fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / MIB as f64)
}

impl DiskStatus {
    /// For an alarm or an error: `data directory /x: 3.2 MiB free of 64.0 MiB, below the alarm
    /// threshold of 6.4 MiB`, and at the floor what is refused.
    pub fn describe(&self) -> String {
        let Some(space) = self.space else {
            return format!(
                "data directory {}: free space unknown ({})",
                self.path.display(),
                self.error.as_deref().unwrap_or("not measured yet")
            );
        };
        let head = format!(
            "data directory {}: {} free of {}",
            self.path.display(),
            mib(space.free_bytes),
            mib(space.total_bytes)
        );
        match self.level {
            DiskLevel::Ok => head,
            DiskLevel::Low => format!("{head}, below the alarm threshold of {}", mib(self.alarm_free_bytes)),
            DiskLevel::Floor => format!(
                "{head}, below the floor of {}: writes of samples are refused until space is freed ({} samples refused so far)",
                mib(self.floor_free_bytes),
                self.refused_samples
            ),
        }
    }
}

/// Watches the free space of the data directory and refuses writes at the floor (see the module
/// documentation). Shared by the engine, its watcher task and the ingest path.
#[derive(Debug)]
pub struct DiskGuard {
    path: PathBuf,
    source: RwLock<Arc<dyn FreeSpace>>,
    settings: RwLock<DiskSettings>,
    status: RwLock<DiskStatus>,
    refused: AtomicU64,
}

impl DiskGuard {
    /// A guard for `path`, measured once at once.
    pub fn new(path: &Path, source: Arc<dyn FreeSpace>, settings: DiskSettings) -> DiskGuard {
        let guard = DiskGuard {
            path: path.to_owned(),
            source: RwLock::new(source),
            settings: RwLock::new(settings),
            status: RwLock::new(DiskStatus {
                path: path.to_owned(),
                level: DiskLevel::Ok,
                space: None,
                alarm_free_bytes: settings.alarm_free_bytes,
                floor_free_bytes: settings.floor_free_bytes,
                error: None,
                refused_samples: 0,
            }),
            refused: AtomicU64::new(0),
        };
        guard.check();
        guard
    }

    /// Measures now and updates the level. A failed measurement keeps the level it had and is
    /// reported in [`DiskStatus::error`].
    pub fn check(&self) -> DiskStatus {
        let source = self.source.read().clone();
        let measured = source.measure(&self.path);
        let settings = *self.settings.read();
        let mut status = self.status.write();
        match measured {
            Ok(space) => {
                let alarm = settings.alarm_bytes(space.total_bytes);
                let level = next_level(status.level, space.free_bytes, alarm, settings.floor_free_bytes);
                status.space = Some(space);
                status.alarm_free_bytes = alarm;
                status.floor_free_bytes = settings.floor_free_bytes;
                status.error = None;
                if level != status.level {
                    status.level = level;
                    let line = status.describe();
                    match level {
                        DiskLevel::Ok => tracing::info!("{line}: back above the alarm threshold"),
                        DiskLevel::Low => tracing::warn!("{line}"),
                        DiskLevel::Floor => tracing::error!("{line}"),
                    }
                }
            }
            Err(e) => {
                if status.error.is_none() {
                    tracing::warn!(path = %self.path.display(), error = %e, "could not measure the free disk space");
                }
                status.error = Some(e.to_string());
            }
        }
        status.refused_samples = self.refused.load(Ordering::Relaxed);
        status.clone()
    }

    /// The latest measurement.
    pub fn status(&self) -> DiskStatus {
        let mut status = self.status.read().clone();
        status.refused_samples = self.refused.load(Ordering::Relaxed);
        status
    }

    /// The settings in force.
    pub fn settings(&self) -> DiskSettings {
        *self.settings.read()
    }

    /// Replaces the settings (a configuration reload) and measures again.
    pub fn set_settings(&self, settings: DiskSettings) -> DiskStatus {
        *self.settings.write() = settings;
        self.check()
    }

    /// Replaces where free space comes from (tests) and measures again.
    pub fn set_source(&self, source: Arc<dyn FreeSpace>) -> DiskStatus {
        *self.source.write() = source;
        self.check()
    }

    /// Whether writes are refused (the floor is reached).
    pub fn refusing(&self) -> bool {
        self.status.read().level == DiskLevel::Floor
    }

    /// Lets `samples` new samples be written, or refuses them (counted) at the floor.
    pub fn admit(&self, samples: usize) -> Result<()> {
        if !self.refusing() {
            return Ok(());
        }
        self.refused.fetch_add(samples as u64, Ordering::Relaxed);
        Err(Error::DiskFull(self.status().describe()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Fake = ManualSpace;

    trait SetMib {
        fn set_mib(&self, free_mib: u64);
    }

    impl SetMib for Fake {
        fn set_mib(&self, free_mib: u64) {
            self.set(Some(Space { free_bytes: free_mib * MIB, total_bytes: 100 * MIB }));
        }
    }

    fn settings(alarm_mib: u64, percent: u8, floor_mib: u64) -> DiskSettings {
        DiskSettings {
            alarm_free_bytes: alarm_mib * MIB,
            alarm_free_percent: percent,
            floor_free_bytes: floor_mib * MIB,
            check_interval_ms: 1000,
        }
    }

    /// Low below the alarm, refusing below the floor (counting what it refuses), and back only
    /// once free space is more than 10% above each threshold.
    #[test]
    fn levels_follow_free_space_with_hysteresis_and_the_floor_refuses_writes() {
        let fake = Arc::new(Fake::default());
        fake.set_mib(50);
        let guard = DiskGuard::new(Path::new("/data"), fake.clone(), settings(20, 0, 10));
        assert_eq!(guard.status().level, DiskLevel::Ok);
        assert!(guard.admit(5).is_ok());

        fake.set_mib(19);
        assert_eq!(guard.check().level, DiskLevel::Low);
        assert!(guard.admit(5).is_ok(), "low is an alarm, not a refusal");
        fake.set_mib(21);
        assert_eq!(guard.check().level, DiskLevel::Low, "not 10% above the alarm threshold yet");

        fake.set_mib(9);
        let status = guard.check();
        assert_eq!(status.level, DiskLevel::Floor);
        let err = guard.admit(7).unwrap_err();
        assert!(err.is_retryable(), "{err}");
        let message = err.to_string();
        assert!(message.contains("9.0 MiB free of 100.0 MiB, below the floor of 10.0 MiB"), "{message}");
        assert!(message.contains("7 samples refused"), "{message}");
        guard.admit(3).unwrap_err();
        assert_eq!(guard.status().refused_samples, 10);

        fake.set_mib(11);
        assert_eq!(guard.check().level, DiskLevel::Floor, "11 MiB is not more than 10% above the 10 MiB floor");
        fake.set_mib(12);
        assert_eq!(guard.check().level, DiskLevel::Low);
        assert!(guard.admit(1).is_ok());
        fake.set_mib(23);
        assert_eq!(guard.check().level, DiskLevel::Ok);
        assert_eq!(guard.status().describe(), "data directory /data: 23.0 MiB free of 100.0 MiB");
    }

    /// The percentage wins when it is more; a floor of 0 never refuses; new settings apply at
    /// once; a failed measurement keeps the level and says why.
    #[test]
    fn percentage_zero_floor_reconfiguration_and_failed_measurements() {
        let fake = Arc::new(Fake::default());
        fake.set_mib(15);
        let guard = DiskGuard::new(Path::new("/data"), fake.clone(), settings(10, 20, 0));
        let status = guard.status();
        assert_eq!((status.level, status.alarm_free_bytes), (DiskLevel::Low, 20 * MIB));
        fake.set_mib(0);
        assert_eq!(guard.check().level, DiskLevel::Low, "no floor: never refused");

        assert_eq!(guard.set_settings(settings(10, 0, 5)).level, DiskLevel::Floor);
        assert!(guard.refusing());

        fake.set(None);
        let status = guard.check();
        assert_eq!(status.level, DiskLevel::Floor, "a failed measurement changes nothing");
        assert_eq!(status.error.as_deref(), Some("no filesystem"));
        assert!(status.describe().contains("0.0 MiB free"), "{}", status.describe());
    }

    /// The real filesystem answers.
    #[test]
    fn statvfs_measures_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let space = StatVfs.measure(dir.path()).unwrap();
        assert!(space.total_bytes > 0 && space.free_bytes <= space.total_bytes, "{space:?}");
    }
}
