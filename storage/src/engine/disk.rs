//! The data directory's free space: the watcher task and the engine's entry points (see
//! [`crate::disk`]).

use super::Storage;
use crate::disk::{DiskSettings, DiskStatus, FreeSpace};
use std::sync::Arc;
use std::time::Duration;

impl Storage {
    /// The latest measurement of the data directory's free space, and whether writes are refused.
    pub fn disk(&self) -> DiskStatus {
        self.inner.disk.status()
    }

    /// Measures the free space now (the watcher does every `storage.disk_check_interval_ms`, and
    /// every flush does after it).
    pub fn check_disk(&self) -> DiskStatus {
        self.inner.disk.check()
    }

    /// Refuses, below the floor, a write to the data directory other than samples (a backup's
    /// staging, a floor plan): `Err(DiskFull)` saying what waits for space.
    pub fn ensure_space_for(&self, what: &str) -> crate::Result<()> {
        if !self.inner.disk.refusing() {
            return Ok(());
        }
        Err(crate::Error::DiskFull(format!(
            "{}; {what} waits until space is freed",
            self.inner.disk.status().describe()
        )))
    }

    /// The disk thresholds in force.
    pub fn disk_settings(&self) -> DiskSettings {
        self.inner.disk.settings()
    }

    /// Replaces the disk thresholds and the watcher's interval (a configuration reload); they
    /// apply at once.
    pub fn set_disk_settings(&self, settings: DiskSettings) -> DiskStatus {
        self.inner.disk.set_settings(settings)
    }

    /// Replaces where free space comes from. For tests.
    #[doc(hidden)]
    pub fn set_free_space_source(&self, source: Arc<dyn FreeSpace>) -> DiskStatus {
        self.inner.disk.set_source(source)
    }

    /// The watcher: measures every `check_interval_ms` (read again each time, so a reload takes
    /// effect) until the engine stops.
    pub(super) fn spawn_disk_watcher(&self) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        let mut stop = self.inner.stop.subscribe();
        tokio::spawn(async move {
            loop {
                let wait = Duration::from_millis(me.inner.disk.settings().check_interval_ms);
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
                let guard = me.inner.disk.clone();
                // statvfs can block on a hung network filesystem: never on a runtime thread.
                let _ = tokio::task::spawn_blocking(move || guard.check()).await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::{DiskLevel, ManualSpace, Space};
    use crate::error::Error;
    use crate::query::{HistoryMode, HistoryRequest};
    use crate::vfs::RealFs;
    use t3_core::Sample;
    use t3_core::clock::ManualClock;
    use t3_core::config::Config;

    const NOW: i64 = 1_795_651_200_000_000;
    const MIB: u64 = crate::disk::MIB;

    fn space(free_mib: u64) -> Option<Space> {
        Some(Space { free_bytes: free_mib * MIB, total_bytes: 100 * MIB })
    }

    /// At the floor every write is refused with a retryable error and counted, while reads and
    /// flushes go on; when space returns the same write succeeds, and nothing acknowledged is lost.
    #[tokio::test(flavor = "multi_thread")]
    async fn writes_are_refused_at_the_floor_and_resume_when_space_returns() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = Config::default();
        cfg.storage.data_dir = dir.path().to_path_buf();
        cfg.storage.disk_alarm_free_mb = 20;
        cfg.storage.disk_alarm_free_percent = 0;
        cfg.storage.disk_floor_free_mb = 10;
        let storage = Storage::open(&cfg, Arc::new(RealFs), ManualClock::new(NOW)).unwrap();
        let fake = Arc::new(ManualSpace::default());
        fake.set(space(50));
        assert_eq!(storage.set_free_space_source(fake.clone()).level, DiskLevel::Ok);
        storage.ingest(vec![Sample::good(1, NOW - 2_000_000, 1.0)]).await.unwrap();

        fake.set(space(5));
        assert_eq!(storage.check_disk().level, DiskLevel::Floor);
        let err = storage.ingest(vec![Sample::good(1, NOW - 1_000_000, 2.0)]).await.unwrap_err();
        assert!(matches!(err, Error::DiskFull(_)) && err.is_retryable(), "{err}");
        assert!(storage.write_refusal().is_some_and(|r| r.contains("below the floor")));
        assert_eq!(storage.disk().refused_samples, 1);
        // Reads and flushes go on.
        storage.flush().await.unwrap();
        let req = || HistoryRequest {
            points: vec![1],
            from: NOW - 10_000_000,
            to: NOW,
            mode: HistoryMode::Raw,
            prior: false,
        };
        assert_eq!(storage.history(req()).await.unwrap().series[0].ts, vec![NOW - 2_000_000]);

        fake.set(space(30));
        assert_eq!(storage.check_disk().level, DiskLevel::Ok);
        assert_eq!(storage.write_refusal(), None);
        storage.ingest(vec![Sample::good(1, NOW - 1_000_000, 2.0)]).await.unwrap();
        assert_eq!(storage.history(req()).await.unwrap().series[0].ts, vec![NOW - 2_000_000, NOW - 1_000_000]);
        storage.shutdown().await.unwrap();
    }
}
