//! The manifest: the versioned list of live Parquet files. Queries read exactly these files, never
//! a glob over whatever is on disk, so a half-written or stray file can never be read.

use crate::error::{Error, Result};
use crate::parquet_io::FileStats;
use crate::vfs::Vfs;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

pub const MANIFEST_FILE: &str = "manifest.json";

/// Which table a file belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Table {
    Samples,
    Rollups1m,
    Rollups1h,
}

impl Table {
    pub fn dir_name(self) -> &'static str {
        match self {
            Table::Samples => "samples",
            Table::Rollups1m => "rollups_1m",
            Table::Rollups1h => "rollups_1h",
        }
    }
}

/// One live file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMeta {
    pub table: Table,
    /// Days since the Unix epoch (UTC) of every row in the file.
    pub day: i32,
    /// Unique, increasing across the data directory: a later file's rows win over an earlier one's.
    pub seq: u64,
    pub rows: u64,
    pub bytes: u64,
    pub min_ts: i64,
    pub max_ts: i64,
    pub min_point: u32,
    pub max_point: u32,
    /// For rollup files: the highest sample-file `seq` of the day when the rollup was computed.
    #[serde(default)]
    pub source_seq: u64,
}

impl FileMeta {
    pub fn new(table: Table, day: i32, seq: u64, s: FileStats) -> Self {
        FileMeta {
            table,
            day,
            seq,
            rows: s.rows,
            bytes: s.bytes,
            min_ts: s.min_ts,
            max_ts: s.max_ts,
            min_point: s.min_point,
            max_point: s.max_point,
            source_seq: 0,
        }
    }

    /// `<table>/day=YYYY-MM-DD/part-<seq>.parquet`, relative to the data directory.
    pub fn rel_path(&self) -> PathBuf {
        rel_path(self.table, self.day, self.seq)
    }
}

pub fn day_string(day: i32) -> String {
    let date = chrono::DateTime::from_timestamp(day as i64 * 86_400, 0).map(|d| d.date_naive()).unwrap_or_default();
    date.format("%Y-%m-%d").to_string()
}

pub fn rel_path(table: Table, day: i32, seq: u64) -> PathBuf {
    PathBuf::from(table.dir_name()).join(format!("day={}", day_string(day))).join(format!("part-{seq:020}.parquet"))
}

/// The manifest's content.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Bumped on every change.
    pub generation: u64,
    /// The next file sequence number to hand out.
    pub next_seq: u64,
    /// Every sample in WAL segments up to and including this one is in the files below.
    pub wal_persisted_through: u64,
    pub files: Vec<FileMeta>,
}

/// The on-disk form, versioned so later releases can read older manifests.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "format")]
enum Persisted {
    #[serde(rename = "1")]
    V1(Manifest),
}

impl Manifest {
    pub fn load(data_dir: &Path) -> Result<Option<Manifest>> {
        let path = data_dir.join(MANIFEST_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("read", &path, e)),
        };
        let Persisted::V1(m) = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Corrupt { path: path.clone(), message: e.to_string() })?;
        Ok(Some(m))
    }

    /// Replaces the manifest atomically (temporary file, fsync, rename, directory fsync).
    pub fn store(&self, vfs: &dyn Vfs, data_dir: &Path) -> Result<()> {
        let path = data_dir.join(MANIFEST_FILE);
        let tmp = data_dir.join("manifest.json.tmp");
        let json = serde_json::to_vec_pretty(&Persisted::V1(self.clone()))
            .map_err(|e| Error::Internal(format!("serialise manifest: {e}")))?;
        let mut f = vfs.create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
        f.write_all(&json).map_err(|e| Error::io("write", &tmp, e))?;
        f.sync().map_err(|e| Error::io("fsync", &tmp, e))?;
        drop(f);
        vfs.rename(&tmp, &path).map_err(|e| Error::io("rename", &tmp, e))?;
        vfs.sync_dir(data_dir).map_err(|e| Error::io("fsync directory", data_dir, e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_hive_style() {
        let p = rel_path(Table::Samples, 20_000, 42);
        assert_eq!(p, PathBuf::from("samples/day=2024-10-04/part-00000000000000000042.parquet"));
    }

    #[test]
    fn store_and_load_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Manifest::load(dir.path()).unwrap(), None);
        let m = Manifest {
            generation: 3,
            next_seq: 9,
            wal_persisted_through: 4,
            files: vec![FileMeta::new(Table::Samples, 1, 8, FileStats { rows: 5, ..Default::default() })],
        };
        m.store(&crate::vfs::RealFs, dir.path()).unwrap();
        assert_eq!(Manifest::load(dir.path()).unwrap(), Some(m));
        let text = std::fs::read_to_string(dir.path().join(MANIFEST_FILE)).unwrap();
        assert!(text.contains("\"format\": \"1\""), "{text}");
    }
}
