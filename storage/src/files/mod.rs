//! What is durable and visible: the manifest of live files, the Parquet files it lists (written by
//! [`parquet_io`], read through their [`page_index`]), and the snapshot a query reads: the live files
//! and the buffered rows.

pub mod manifest;
pub mod page_index;
pub mod parquet_io;

use crate::buffer::{Columns, RowFilter};
use crate::error::Result;
use manifest::{FileMeta, Table};
use page_index::FileIndex;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

/// A Parquet file in the live set. When it is retired (replaced by compaction or expired by
/// retention) it is deleted once the last query holding it lets go.
#[derive(Debug)]
pub struct LiveFile {
    pub meta: FileMeta,
    pub path: PathBuf,
    retired: AtomicBool,
    /// Its checksum has been verified by this process (files it wrote itself start verified).
    verified: AtomicBool,
    /// Footer and page index for the direct read path, parsed on first use and kept as long as
    /// the file is live (files are immutable once published).
    index: OnceLock<FileIndex>,
}

impl LiveFile {
    pub(crate) fn new(data_dir: &Path, meta: FileMeta, verified: bool) -> Arc<Self> {
        Arc::new(LiveFile {
            path: data_dir.join(meta.rel_path()),
            meta,
            retired: AtomicBool::new(false),
            verified: AtomicBool::new(verified),
            index: OnceLock::new(),
        })
    }

    /// Whether this process has checked the file since it started (or wrote it).
    pub fn is_verified(&self) -> bool {
        self.verified.load(Ordering::Relaxed)
    }

    /// Checks the file's bytes: against its recorded CRC-32C, or (a file written before checksums)
    /// by decoding every page. Marks it verified on success.
    pub(crate) fn check(&self) -> std::result::Result<(), String> {
        match self.meta.crc32c {
            Some(crc) => parquet_io::verify_checksum(&self.path, crc)?,
            None => parquet_io::verify_deep(&self.path, self.meta.rows)?,
        }
        self.verified.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// The parsed footer and page index, loaded on first use.
    pub(crate) fn index(&self) -> Result<&FileIndex> {
        if let Some(i) = self.index.get() {
            return Ok(i);
        }
        let loaded = FileIndex::load(&self.path)?;
        // Two readers may race to load it; either copy will do.
        Ok(self.index.get_or_init(|| loaded))
    }

    /// Bytes held by the cached index (0 if it has not been loaded).
    pub fn index_memory(&self) -> usize {
        self.index.get().map_or(0, FileIndex::memory_size)
    }

    pub(crate) fn retire(&self) {
        self.retired.store(true, Ordering::SeqCst);
    }
}

impl Drop for LiveFile {
    fn drop(&mut self) {
        if self.retired.load(Ordering::SeqCst)
            && let Err(e) = std::fs::remove_file(&self.path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.path.display(), error = %e, "could not delete a retired file");
        }
    }
}

/// What a query reads: the live files and the buffered rows that match.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub files: Arc<Vec<Arc<LiveFile>>>,
    pub buffered: Columns,
}

/// The files of `snap`, of any table, that may hold rows for `filter`.
pub(crate) fn touched_files(snap: &Snapshot, filter: &RowFilter<'_>) -> Vec<Arc<LiveFile>> {
    snap.files
        .iter()
        .filter(|f| f.meta.max_ts >= filter.from && f.meta.min_ts < filter.to)
        .filter(|f| filter.points.is_none_or(|p| p.iter().any(|p| (f.meta.min_point..=f.meta.max_point).contains(p))))
        .cloned()
        .collect()
}

/// The files of `snap` that may hold rows for `filter`.
pub(crate) fn candidate_files<'a>(snap: &'a Snapshot, filter: &RowFilter<'_>) -> Vec<&'a LiveFile> {
    snap.files
        .iter()
        .map(|f| &**f)
        .filter(|f| f.meta.table == Table::Samples)
        .filter(|f| f.meta.max_ts >= filter.from && f.meta.min_ts < filter.to)
        .filter(|f| {
            filter.points.is_none_or(|p| {
                let i = p.partition_point(|&x| x < f.meta.min_point);
                i < p.len() && p[i] <= f.meta.max_point
            })
        })
        .collect()
}
