//! Opening a data directory: the lock, the manifest reconciled with the files ([`super::recovery`]),
//! the WAL replayed into the write buffer, then the WAL thread started.

use super::recovery::RecoveryReport;
use super::{BufState, Inner, LIVE_BATCHES, Shared, Stats, Storage, TestHooks};
use crate::error::{Error, Result};
use crate::files::LiveFile;
use crate::query::QueryEngine;
use crate::vfs::Vfs;
use crate::wal::{self, CommitSink, Wal, WalOptions};
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::time::{Duration, Instant};
use t3_core::clock::Clock;
use t3_core::config::Config;
use tokio::sync::{Notify, watch};

impl Storage {
    /// Opens (or creates) the data directory, recovers from the WAL and starts the WAL thread.
    /// Background work (time-based flush, compaction, retention) starts with [`Storage::start_background`].
    pub fn open(cfg: &Config, vfs: Arc<dyn Vfs>, clock: Arc<dyn Clock>) -> Result<Storage> {
        let started = Instant::now();
        let dir = &cfg.storage.data_dir;
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create data directory", dir, e))?;
        let data_dir = std::fs::canonicalize(dir).map_err(|e| Error::io("resolve", dir, e))?;
        // One process per data directory: two WAL writers would corrupt each other.
        let lock_path = data_dir.join("LOCK");
        let lock = std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::io("open", &lock_path, e))?;
        if lock.try_lock().is_err() {
            return Err(Error::Locked(data_dir));
        }
        super::backup::remove_stale_staging(&data_dir);
        let mut report = RecoveryReport::default();
        let wal_dir = data_dir.join("wal");
        let segments = wal::list_segments(&wal_dir)?;
        // The manifest and the files on disk are reconciled: listed files must be whole (a damaged
        // one is quarantined, never read), and nothing is deleted unless it is proven garbage.
        let stored = super::recovery::load_manifest(&data_dir)?;
        let (mut manifest, manifest_changed) =
            super::recovery::reconcile(&data_dir, stored, &segments, &mut report, clock.now_us())?;
        let live: Vec<Arc<LiveFile>> =
            manifest.files.iter().map(|meta| LiveFile::new(&data_dir, meta.clone(), false)).collect();

        let shared = Arc::new(Shared {
            clock: clock.clone(),
            state: Mutex::new(BufState {
                files: Arc::new(live),
                next_wal_from: manifest.wal_persisted_through + 1,
                ..Default::default()
            }),
            latest: RwLock::new(HashMap::new()),
            buffered_rows: AtomicUsize::new(0),
            flush_rows: cfg.storage.flush_rows,
            flush_wanted: Notify::new(),
        });
        let mut last_seq = manifest.wal_persisted_through;
        for (seq, path) in &segments {
            last_seq = last_seq.max(*seq);
            if *seq <= manifest.wal_persisted_through {
                // Already in Parquet: the crash came between the manifest and the truncation.
                let _ = std::fs::remove_file(path);
                continue;
            }
            let r = wal::replay_segment(*seq, path)?;
            report.wal_segments_replayed += 1;
            report.samples_replayed += r.samples.len();
            report.wal_samples_lost += r.lost_counted();
            report.wal_samples_lost_at_most += r.lost_at_most();
            report.wal_torn_samples += r.torn_samples();
            if let Some(mut line) = r.summary() {
                if r.damaged.is_empty() {
                    // A torn tail only: what every crash during a write leaves.
                    tracing::info!("{line}");
                } else {
                    // Kept until its records are in Parquet; a copy (once) for inspection.
                    match wal::quarantine_copy(&data_dir, &r) {
                        Ok((copy, new)) => {
                            line.push_str(&format!("; copy in {}", copy.display()));
                            if new {
                                report.quarantined.push(copy.display().to_string());
                            }
                        }
                        Err(e) => line.push_str(&format!("; could not copy it to quarantine/: {e}")),
                    }
                    tracing::warn!("{line}");
                }
                report.dropped.push(line);
            }
            // Replay in chunks so no single write-buffer append is huge.
            for chunk in r.samples.chunks(65_536) {
                shared.committed(chunk);
            }
        }
        if manifest_changed {
            manifest.generation += 1;
            manifest.store(&*vfs, &data_dir)?;
        }

        let stats = Stats::default();
        let wal_opts = WalOptions {
            dir: wal_dir,
            group_commit_max_delay: Duration::from_millis(cfg.wal.group_commit_max_delay_ms),
            group_commit_max_bytes: cfg.wal.group_commit_max_bytes,
            segment_bytes: cfg.wal.segment_bytes,
            retry_interval: Duration::from_secs(1),
            commit_seconds: stats.wal_commit_seconds.clone(),
        };
        let (wal, _wal_thread) = Wal::start(wal_opts, vfs.clone(), last_seq + 1, shared.clone())?;
        let query = Arc::new(QueryEngine::new(&data_dir, &cfg.query)?);
        report.duration_ms = started.elapsed().as_millis() as u64;
        if !report.dropped.is_empty() || report.samples_replayed > 0 {
            tracing::info!(
                replayed = report.samples_replayed,
                segments = report.wal_segments_replayed,
                dropped = ?report.dropped,
                quarantined = ?report.quarantined,
                "recovered from the write-ahead log"
            );
        }
        let (stop, _) = watch::channel(false);
        let disk = Arc::new(crate::disk::DiskGuard::new(
            &data_dir,
            Arc::new(crate::disk::StatVfs),
            crate::disk::DiskSettings::from_config(&cfg.storage),
        ));
        Ok(Storage {
            inner: Arc::new(Inner {
                cfg: cfg.clone(),
                data_dir,
                vfs,
                clock,
                shared,
                wal,
                quarantined: RwLock::new(Arc::new(manifest.quarantined.clone())),
                manifest: Mutex::new(manifest),
                persist_lock: tokio::sync::Mutex::new(()),
                maintenance_lock: tokio::sync::Mutex::new(()),
                persisted_gen: AtomicU64::new(0),
                query,
                recovery: report,
                stop,
                tasks: Mutex::new(Vec::new()),
                stats,
                live: tokio::sync::broadcast::channel(LIVE_BATCHES).0,
                point_retention: RwLock::new(Vec::new()),
                cfg_retention: RwLock::new(cfg.retention.clone()),
                disk,
                _lock: lock,
                test_hooks: TestHooks::default(),
                sparse_day_rows: AtomicUsize::new(cfg.storage.sparse_day_rows),
            }),
        })
    }
}
