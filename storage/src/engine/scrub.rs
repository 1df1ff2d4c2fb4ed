//! The scrub: every live file's bytes checked again against its CRC-32C, in the background.
//!
//! Reads check a file only the first time this process uses it; a disk can rot a file later, and a
//! file nobody reads would never be checked. The scrub reads every live file at a bounded rate
//! (`storage.scrub_mib_per_sec`) once soon after start and then every `storage.scrub_interval_secs`.
//! A file that fails is quarantined (and reported, see [`Storage::quarantined`]); the rollups of
//! its day become stale and are recomputed from what is left. A file written before checksums
//! were recorded is decoded whole instead, and its checksum is recorded once it passes.

use crate::engine::Storage;
use crate::error::{Error, Result};
use serde::Serialize;
use std::time::{Duration, Instant};

/// What one scrub pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ScrubReport {
    pub files_checked: usize,
    pub bytes_checked: u64,
    /// Files that failed and were quarantined (relative paths).
    pub quarantined: Vec<String>,
    /// Files written before checksums whose checksum was recorded now.
    pub checksums_recorded: usize,
}

impl Storage {
    /// One pass over every live file. `mib_per_sec` bounds the read rate (`None`: as fast as the
    /// disk goes).
    pub async fn scrub(&self, mib_per_sec: Option<u64>) -> Result<ScrubReport> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.scrub_blocking(mib_per_sec))
            .await
            .map_err(|e| Error::Internal(format!("scrub task: {e}")))?
    }

    fn scrub_blocking(&self, mib_per_sec: Option<u64>) -> Result<ScrubReport> {
        let mut report = ScrubReport::default();
        let started = Instant::now();
        let mut recorded = Vec::new();
        for f in self.live_files().iter() {
            if self.is_stopping() {
                break;
            }
            let had_checksum = f.meta.crc32c.is_some();
            match f.check() {
                Ok(()) if had_checksum => {}
                Ok(()) => match crate::files::parquet_io::checksum(&f.path) {
                    Ok(crc) => recorded.push((f.meta.seq, crc)),
                    Err(e) => {
                        tracing::warn!(path = %f.path.display(), error = %e, "scrub: could not read a checked file")
                    }
                },
                Err(why) => {
                    report.quarantined.push(crate::engine::recovery::rel_string(&f.meta));
                    self.quarantine_file(f, &why)?;
                }
            }
            report.files_checked += 1;
            report.bytes_checked += f.meta.bytes;
            if let Some(rate) = mib_per_sec {
                // Sleep until the bytes read so far fit the rate.
                let due = Duration::from_secs_f64(report.bytes_checked as f64 / (rate.max(1) as f64 * 1_048_576.0));
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    std::thread::sleep(wait.min(Duration::from_secs(5)));
                }
            }
        }
        if !recorded.is_empty() {
            report.checksums_recorded = self.record_checksums(&recorded.into_iter().collect())?;
        }
        if !report.quarantined.is_empty() || report.checksums_recorded > 0 {
            tracing::info!(?report, "scrub pass");
        }
        Ok(report)
    }
}
