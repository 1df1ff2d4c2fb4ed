//! A consistent copy of the engine's state for a backup, taken while ingest, flushes and
//! maintenance go on.
//!
//! At one moment (under the lock queries take their snapshots with) the live files and the
//! buffered rows are taken together: exactly what a query at that moment reads. The live files are
//! pinned by holding them ([`LiveFile`] deletes a retired file only when the last holder lets go),
//! so compaction and retention can replace them meanwhile without deleting what the copy still has
//! to read. The buffered rows (acknowledged, in the WAL, not yet in Parquet) are written as
//! Parquet files of their own into a staging folder, ranked above every live file, and a manifest
//! listing both is written beside them: the copy needs no WAL, and a server started on it reads
//! the same rows as the source did at that moment.

use super::Storage;
use crate::buffer::RowFilter;
use crate::error::{Error, Result};
use crate::files::LiveFile;
use crate::files::manifest::{FileMeta, FileTag, MANIFEST_FILE, Manifest, Table, day_of_ts, rel_path};
use crate::files::parquet_io;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One file of a [`BackupSnapshot`].
#[derive(Debug, Clone)]
pub struct SnapshotFile {
    /// Where it goes, relative to the data directory, with `/`.
    pub rel: String,
    /// Where to read it now.
    pub path: PathBuf,
    /// A Parquet data file (immutable once published): its CRC-32C, which tells an incremental
    /// backup whether a previous archive holds the same file. `None` for the manifest.
    pub crc32c: Option<u32>,
    /// A Parquet data file (as opposed to the manifest).
    pub data: bool,
}

/// The engine's state at one moment, ready to copy. The files it lists stay on disk until it is
/// dropped (even when compaction or retention replaces them meanwhile); the staging folder (the
/// buffered rows' files, the manifest and whatever [`BackupSnapshot::staging_dir`] receives) is
/// deleted on drop.
#[derive(Debug)]
pub struct BackupSnapshot {
    /// Every file a data directory restored from it needs, the manifest first.
    pub files: Vec<SnapshotFile>,
    /// Rows that were buffered at the moment and are in files of the staging folder.
    pub buffered_rows: usize,
    /// When the snapshot was taken (microseconds since the epoch, UTC).
    pub taken_us: i64,
    staging: tempfile::TempDir,
    _pinned: Arc<Vec<Arc<LiveFile>>>,
}

impl BackupSnapshot {
    /// A folder deleted with the snapshot, for other consistent copies that belong with it (the
    /// catalog's).
    pub fn staging_dir(&self) -> &Path {
        self.staging.path()
    }
}

/// The prefix of a staging folder under `<data_dir>/tmp/`.
const STAGING_PREFIX: &str = "backup-";

/// Removes the staging folders a backup left when the process died during it (at start, under the
/// data directory's lock: no backup of this directory runs).
pub(super) fn remove_stale_staging(data_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(data_dir.join("tmp")) else { return };
    for e in entries.flatten() {
        let stale =
            e.file_name().to_string_lossy().starts_with(STAGING_PREFIX) && e.file_type().is_ok_and(|t| t.is_dir());
        if stale && let Err(err) = std::fs::remove_dir_all(e.path()) {
            tracing::warn!(path = %e.path().display(), error = %err, "could not remove a backup's staging folder");
        }
    }
}

impl Storage {
    /// Takes a [`BackupSnapshot`]: what every query answered at the moment of the call, every
    /// acknowledged sample included, as files that can be copied at leisure.
    pub async fn backup_snapshot(&self) -> Result<BackupSnapshot> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.backup_snapshot_blocking())
            .await
            .map_err(|e| Error::Internal(format!("backup snapshot task: {e}")))?
    }

    fn backup_snapshot_blocking(&self) -> Result<BackupSnapshot> {
        // The copy stages the buffered rows (and the server the catalog) in the data directory:
        // below the floor that could fill the disk the floor protects.
        self.ensure_space_for("a backup, which stages files in the data directory (or take a filesystem snapshot),")?;
        let tmp = self.data_dir().join("tmp");
        std::fs::create_dir_all(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
        let staging = tempfile::Builder::new()
            .prefix(STAGING_PREFIX)
            .tempdir_in(&tmp)
            .map_err(|e| Error::io("create in", &tmp, e))?;
        let all = RowFilter { points: None, from: i64::MIN, to: i64::MAX };
        // The moment: the live files and the buffered rows, taken under one lock. Its time is read
        // first: every sample acknowledged before it is in the snapshot (and perhaps a few after).
        let taken_us = self.clock().now_us();
        let snap = self.snapshot(&all, true);
        let (next_seq, quarantined) = {
            let m = self.inner.manifest.lock();
            (m.next_seq, m.quarantined.clone())
        };
        // The buffered rows come from WAL segments newer than every file's; in the copy they rank
        // above all of them, and the copy's WAL starts after them.
        let wal = snap.files.iter().map(|f| f.meta.wal_max).max().unwrap_or(0) + 1;
        let buffered_rows = snap.buffered.len();
        let tail = self.write_tail(staging.path(), snap.buffered.into_batch(), wal)?;
        let mut metas: Vec<FileMeta> = snap.files.iter().map(|f| f.meta.clone()).collect();
        metas.extend(tail.iter().cloned());
        let manifest = Manifest {
            generation: 1,
            next_seq: metas.iter().map(|f| f.seq + 1).max().unwrap_or(1).max(next_seq),
            wal_persisted_through: wal,
            files: metas,
            retired: Vec::new(),
            quarantined,
        };
        manifest.store(&**self.vfs(), staging.path())?;
        let mut files = vec![SnapshotFile {
            rel: MANIFEST_FILE.to_string(),
            path: staging.path().join(MANIFEST_FILE),
            crc32c: None,
            data: false,
        }];
        let data_file = |meta: &FileMeta, dir: &Path| SnapshotFile {
            rel: super::recovery::rel_string(meta),
            path: dir.join(meta.rel_path()),
            crc32c: meta.crc32c,
            data: true,
        };
        files.extend(snap.files.iter().map(|f| data_file(&f.meta, self.data_dir())));
        files.extend(tail.iter().map(|meta| data_file(meta, staging.path())));
        Ok(BackupSnapshot { files, buffered_rows, taken_us, staging, _pinned: snap.files })
    }

    /// Writes buffered rows (sorted by point and time, no key twice) as one sample file per day
    /// under `dir`, in the data directory's layout, ranked at WAL segment `wal`.
    fn write_tail(&self, dir: &Path, batch: arrow::record_batch::RecordBatch, wal: u64) -> Result<Vec<FileMeta>> {
        let ts = crate::buffer::as_ts(batch.column(1)).values();
        let mut days: BTreeMap<i32, Vec<u32>> = BTreeMap::new();
        for (i, &t) in ts.iter().enumerate() {
            days.entry(day_of_ts(t)).or_default().push(i as u32);
        }
        if days.is_empty() {
            return Ok(Vec::new());
        }
        let first_seq = self.allocate_seqs(days.len() as u64);
        let mut out = Vec::with_capacity(days.len());
        for (k, (day, idx)) in days.into_iter().enumerate() {
            let part = arrow::compute::take_record_batch(&batch, &arrow::array::UInt32Array::from(idx))?;
            let seq = first_seq + k as u64;
            let tag =
                FileTag { table: Some(Table::Samples), day, seq, wal_min: wal, wal_max: wal, ..Default::default() };
            let path = dir.join(rel_path(Table::Samples, day, seq));
            let parent = path.parent().unwrap_or(dir);
            std::fs::create_dir_all(parent).map_err(|e| Error::io("create", parent, e))?;
            let stats = parquet_io::write_atomic(&**self.vfs(), &path, &tag, &[part], self.parquet_options())?;
            let mut meta = FileMeta::new(Table::Samples, day, seq, stats);
            (meta.wal_min, meta.wal_max) = (wal, wal);
            out.push(meta);
        }
        Ok(out)
    }
}
