//! The manifest: the versioned list of live Parquet files. Queries read exactly these files, never
//! a glob over whatever is on disk, so a half-written or stray file can never be read.
//!
//! The manifest is not the only record of a file: every file also carries its own description in
//! its Parquet key-value metadata ([`FileTag`]: table, day, sequence number, the WAL segments its
//! rows came from, the files it replaced). If the manifest is lost, start-up rebuilds it from the
//! files ([`crate::engine::recovery`]); no data file is ever deleted unless it is proven to be garbage.
//!
//! # Which row wins
//! Two files of a day may hold the same (point, ts); the newer row wins. "Newer" is what the file
//! contains, not when it was written: [`FileMeta::rank`] orders files by the highest WAL segment of
//! their rows. A compaction's output holds only rows that were in its inputs, so its rank is the
//! highest of theirs, and a flush published while the compaction ran (newer WAL segments) still
//! wins over it.

use crate::error::{Error, Result};
use crate::vfs::Vfs;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
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
    /// Days since the Unix epoch (UTC): the first day the file covers.
    pub day: i32,
    /// How many consecutive days the file covers, from `day` (1 for a one-day file, and for every
    /// file written before multi-day files existed). A file never covers days of two calendar
    /// months (see [`month_of`]). Every row of the file lies in the days it covers.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub days: u32,
    /// Unique, increasing across the data directory: a later file's rows win over an earlier one's.
    pub seq: u64,
    pub rows: u64,
    pub bytes: u64,
    pub min_ts: i64,
    pub max_ts: i64,
    pub min_point: u32,
    pub max_point: u32,
    /// For rollup files: [`source_digest`] of the day's sample files the rollup was computed from.
    /// Any change of that set (a late sample, compaction, a quarantined file, a deletion) makes the
    /// rollup stale.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub source_files: u64,
    /// For sample files: the lowest and highest WAL segment any of the rows came from (0 for files
    /// written before format 2, which rank below every newer file and among themselves by `seq`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub wal_min: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub wal_max: u64,
    /// CRC-32C of the whole file, checked before the file is first read by this process and by the
    /// background scrub. `None` for files written before format 2 (the scrub fills it in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crc32c: Option<u32>,
    /// Proven to share no (point, ts) with any file of lower [`rank`](Self::rank) that was live
    /// when it was written: a flush checked its keys against every file its bounds meet, a rewrite
    /// (compaction, retention, deletion) merged every file of its day. A query reads the rows of a
    /// file that no lower-ranked file can shadow or be shadowed by without resolving duplicates.
    /// `false` (the default, and for files written before this field existed) promises nothing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disjoint: bool,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn one() -> u32 {
    1
}

fn is_one(v: &u32) -> bool {
    *v == 1
}

/// What a published file holds ([`parquet_io`](super::parquet_io) computes it as it writes); recorded in
/// the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileStats {
    pub rows: u64,
    pub bytes: u64,
    pub min_ts: i64,
    pub max_ts: i64,
    pub min_point: u32,
    pub max_point: u32,
    /// CRC-32C of the whole file as written.
    pub crc32c: Option<u32>,
}

impl FileStats {
    /// Nothing yet: ready to [`add`](Self::add) to.
    pub(super) fn empty() -> Self {
        FileStats { min_ts: i64::MAX, max_ts: i64::MIN, min_point: u32::MAX, ..Default::default() }
    }

    pub(super) fn add(&mut self, s: &FileStats) {
        self.rows += s.rows;
        self.min_ts = self.min_ts.min(s.min_ts);
        self.max_ts = self.max_ts.max(s.max_ts);
        self.min_point = self.min_point.min(s.min_point);
        self.max_point = self.max_point.max(s.max_point);
    }
}

/// The calendar month (UTC) of a day, as `year * 12 + month0`: days of one month share it.
pub fn month_of(day: i32) -> i32 {
    use chrono::Datelike;
    let date = chrono::DateTime::from_timestamp(day as i64 * 86_400, 0).map(|d| d.date_naive()).unwrap_or_default();
    date.year() * 12 + date.month0() as i32
}

/// The day of a time stamp (microseconds since the epoch, UTC).
pub fn day_of_ts(ts: i64) -> i32 {
    ts.div_euclid(crate::buffer::DAY_US) as i32
}

impl FileMeta {
    pub fn new(table: Table, day: i32, seq: u64, s: FileStats) -> Self {
        FileMeta {
            table,
            day,
            days: 1,
            seq,
            rows: s.rows,
            bytes: s.bytes,
            min_ts: s.min_ts,
            max_ts: s.max_ts,
            min_point: s.min_point,
            max_point: s.max_point,
            source_files: 0,
            wal_min: 0,
            wal_max: 0,
            crc32c: s.crc32c,
            disjoint: false,
        }
    }

    /// The last day the file covers.
    pub fn last_day(&self) -> i32 {
        self.day + self.days.max(1) as i32 - 1
    }

    /// Whether the file covers day `d`.
    pub fn covers(&self, d: i32) -> bool {
        (self.day..=self.last_day()).contains(&d)
    }

    /// Whether the days this file covers and those `other` covers meet.
    pub fn shares_a_day(&self, other: &FileMeta) -> bool {
        self.day <= other.last_day() && other.day <= self.last_day()
    }

    /// Sets `day` and `days` to the days of the file's rows (`min_ts ..= max_ts`).
    pub fn cover_rows(&mut self) {
        let (first, last) = (day_of_ts(self.min_ts), day_of_ts(self.max_ts));
        self.day = first;
        self.days = (last - first + 1).max(1) as u32;
    }

    /// Whether rows of this file and of `other` could share a (point, ts): their time and point
    /// ranges meet.
    pub fn meets(&self, other: &FileMeta) -> bool {
        self.min_ts <= other.max_ts
            && other.min_ts <= self.max_ts
            && self.min_point <= other.max_point
            && other.min_point <= self.max_point
    }

    /// Orders files by what they contain: the later WAL segment wins, then the later file. Rows of
    /// one (point, ts) in two files resolve to the file of higher rank. Files of equal `wal_max`
    /// never share a key (they are days of one flush, or disjoint runs of one compaction).
    pub fn rank(&self) -> u64 {
        (self.wal_max.min(u32::MAX as u64) << 32) | self.seq.min(u32::MAX as u64)
    }

    /// `<table>/day=YYYY-MM-DD/part-<seq>.parquet`, relative to the data directory.
    pub fn rel_path(&self) -> PathBuf {
        rel_path(self.table, self.day, self.seq)
    }
}

/// Which of `files` (of one table) must be read with duplicates resolved: a file that is not
/// [`disjoint`](FileMeta::disjoint) and meets a file of lower rank, and every such file it meets.
/// The rest hold no (point, ts) that another of them holds.
pub fn overlapping(files: &[&FileMeta]) -> Vec<bool> {
    let mut out = vec![false; files.len()];
    // Files that meet share a day, so only files of a common day are compared (a file is listed
    // under every day it covers): linear in the files for a store of one file per day or month.
    let mut by_day: HashMap<i32, Vec<usize>> = HashMap::new();
    for (i, f) in files.iter().enumerate() {
        for d in f.day..=f.last_day() {
            by_day.entry(d).or_default().push(i);
        }
    }
    for idx in by_day.values().filter(|idx| idx.len() > 1) {
        for &g in idx.iter().filter(|&&g| !files[g].disjoint) {
            for &h in idx {
                if files[h].rank() < files[g].rank() && files[g].meets(files[h]) {
                    out[g] = true;
                    out[h] = true;
                }
            }
        }
    }
    out
}

pub fn day_string(day: i32) -> String {
    let date = chrono::DateTime::from_timestamp(day as i64 * 86_400, 0).map(|d| d.date_naive()).unwrap_or_default();
    date.format("%Y-%m-%d").to_string()
}

/// The stable digest of a set of sample files (by `seq`), recorded by the rollups computed from it.
pub fn source_digest<'a>(files: impl IntoIterator<Item = &'a FileMeta>) -> u64 {
    let mut seqs: Vec<u64> = files.into_iter().map(|f| f.seq).collect();
    seqs.sort_unstable();
    // FNV-1a over the sorted sequence numbers: stable across releases (unlike std's hasher).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for s in seqs {
        for b in s.to_le_bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h.max(1)
}

/// What a file says about itself, in its Parquet key-value metadata under [`FileTag::KEY`], so the
/// manifest can be rebuilt from the files alone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileTag {
    pub table: Option<Table>,
    pub day: i32,
    /// See [`FileMeta::days`].
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub days: u32,
    pub seq: u64,
    #[serde(default)]
    pub wal_min: u64,
    #[serde(default)]
    pub wal_max: u64,
    /// The files this one replaced (compaction, retention, deletion); empty for a flush.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replaces: Vec<u64>,
    /// For rollup files: the digest of the sample files they were computed from.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub source_files: u64,
    /// See [`FileMeta::disjoint`].
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disjoint: bool,
}

impl FileTag {
    pub const KEY: &'static str = "t3000.file";

    pub fn of(meta: &FileMeta) -> FileTag {
        FileTag {
            table: Some(meta.table),
            day: meta.day,
            days: meta.days,
            seq: meta.seq,
            wal_min: meta.wal_min,
            wal_max: meta.wal_max,
            replaces: Vec::new(),
            source_files: meta.source_files,
            disjoint: meta.disjoint,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A data file taken out of service because it failed a check. Kept in the manifest (and shown in
/// `/healthz` and as a system alarm) until an operator acknowledges it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quarantined {
    /// Where the file was, relative to the data directory.
    pub file: String,
    /// Where it is now (under `quarantine/`), relative to the data directory; empty if it could
    /// not be moved (then it was left where it was, out of the live set).
    pub moved_to: String,
    /// Why: the failed check.
    pub reason: String,
    /// When it was found (microseconds since the epoch, UTC).
    pub at_us: i64,
    /// What it held, from the manifest: the rows now missing from answers.
    pub table: Table,
    pub rows: u64,
    pub min_ts: i64,
    pub max_ts: i64,
    pub min_point: u32,
    pub max_point: u32,
    pub acknowledged: bool,
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
    /// Files taken out of the live set (by compaction, retention or deletion) and not yet known to
    /// be deleted from disk: a crash may leave them behind, and start-up deletes them as garbage.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired: Vec<String>,
    /// Damaged files found and taken out of service, until acknowledged and cleared.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quarantined: Vec<Quarantined>,
}

/// The on-disk form, versioned so later releases can read older manifests. Format 2 adds the WAL
/// range, checksum and rollup digest of each file, the retired list and the quarantine records;
/// format 1 reads as format 2 with those empty.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "format")]
enum Persisted {
    #[serde(rename = "1")]
    V1(Manifest),
    #[serde(rename = "2")]
    V2(Manifest),
}

impl Manifest {
    pub fn load(data_dir: &Path) -> Result<Option<Manifest>> {
        let path = data_dir.join(MANIFEST_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("read", &path, e)),
        };
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(Error::Corrupt { path, message: "the file is empty".into() });
        }
        let (Persisted::V1(m) | Persisted::V2(m)) = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Corrupt { path: path.clone(), message: e.to_string() })?;
        Ok(Some(m))
    }

    /// Replaces the manifest atomically (temporary file, fsync, rename, directory fsync).
    pub fn store(&self, vfs: &dyn Vfs, data_dir: &Path) -> Result<()> {
        let path = data_dir.join(MANIFEST_FILE);
        let tmp = data_dir.join("manifest.json.tmp");
        // Compact, not pretty: it is rewritten on every change, and a store lists thousands of files.
        let json = serde_json::to_vec(&Persisted::V2(self.clone()))
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

    fn file(day: i32, wal: u64, ts: (i64, i64), points: (u32, u32), disjoint: bool) -> FileMeta {
        let mut m = FileMeta::new(Table::Samples, day, wal, FileStats::default());
        (m.wal_min, m.wal_max, m.disjoint) = (wal, wal, disjoint);
        (m.min_ts, m.max_ts, m.min_point, m.max_point) = (ts.0, ts.1, points.0, points.1);
        m
    }

    #[test]
    fn only_files_that_may_share_a_row_are_overlapping() {
        let a = file(1, 1, (0, 10), (1, 5), true);
        // Meets `a` at t = 10 but proved it shares nothing.
        let b = file(1, 2, (10, 20), (1, 5), true);
        // Newer, not proven, meets `b` only: `a` stays out.
        let c = file(1, 3, (15, 16), (2, 2), false);
        // Not proven, but nothing older meets it (other points).
        let d = file(1, 4, (0, 20), (9, 9), false);
        // Another day entirely.
        let e = file(2, 5, (0, 20), (1, 9), false);
        let files = [&a, &b, &c, &d, &e];
        assert_eq!(overlapping(&files), [false, true, true, false, false]);
        // An unproven file is resolved against older files only: `c` older than `b` does not pull
        // `b` in.
        let old_c = file(1, 0, (15, 16), (2, 2), false);
        assert_eq!(overlapping(&[&a, &b, &old_c]), [false, false, false]);
        // Files from before the flag (all unproven) that meet are all overlapping.
        let (x, y) = (file(3, 1, (0, 5), (1, 1), false), file(3, 2, (5, 9), (1, 1), false));
        assert_eq!(overlapping(&[&x, &y]), [true, true]);
    }

    #[test]
    fn files_of_several_days_overlap_files_of_any_day_they_cover() {
        let mut month = file(10, 1, (10 * 86_400_000_000, 20 * 86_400_000_000), (1, 5), true);
        month.days = 11;
        assert_eq!((month.last_day(), month.covers(20), month.covers(21)), (20, true, false));
        // A newer unproven file of day 15 that meets it, and one of day 21 that does not share a day.
        let a = file(15, 2, (15 * 86_400_000_000, 15 * 86_400_000_000 + 5), (2, 2), false);
        let b = file(21, 3, (0, i64::MAX), (1, 5), false);
        assert_eq!(overlapping(&[&month, &a, &b]), [true, true, false]);
        // Written without `days` (an older manifest), a file covers one day.
        let json = r#"{"table":"samples","day":5,"seq":2,"rows":1,"bytes":9,"min_ts":0,"max_ts":0,"min_point":1,"max_point":1}"#;
        let m: FileMeta = serde_json::from_str(json).unwrap();
        assert_eq!(m.days, 1);
        assert!(!serde_json::to_string(&m).unwrap().contains("days"));
        assert!(serde_json::to_string(&month).unwrap().contains("\"days\":11"));
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
            ..Default::default()
        };
        m.store(&crate::vfs::RealFs, dir.path()).unwrap();
        assert_eq!(Manifest::load(dir.path()).unwrap(), Some(m));
        let text = std::fs::read_to_string(dir.path().join(MANIFEST_FILE)).unwrap();
        assert!(text.contains("\"format\":\"2\""), "{text}");
    }

    #[test]
    fn format_1_still_loads_and_empty_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let v1 = r#"{"format":"1","generation":2,"next_seq":3,"wal_persisted_through":1,"files":[
            {"table":"samples","day":5,"seq":2,"rows":1,"bytes":9,"min_ts":0,"max_ts":0,"min_point":1,"max_point":1}]}"#;
        std::fs::write(dir.path().join(MANIFEST_FILE), v1).unwrap();
        let m = Manifest::load(dir.path()).unwrap().unwrap();
        assert_eq!((m.files[0].wal_max, m.files[0].crc32c, m.retired.len()), (0, None, 0));
        std::fs::write(dir.path().join(MANIFEST_FILE), "").unwrap();
        assert!(matches!(Manifest::load(dir.path()), Err(Error::Corrupt { .. })));
    }

    /// A model check of the publish / compact protocol: every interleaving of a writer (three
    /// overwrites of one key, each in its own WAL segment), a flusher (freeze the buffer at a
    /// segment boundary, write a file, publish it) and a compactor run twice (choose the live
    /// files, write their merge, publish it in place of its inputs), explored exhaustively. In every
    /// reachable state, reading with [`FileMeta::rank`] (the buffer above every file) must answer
    /// the last value written. Numbering files by when they were written fails this check.
    #[test]
    fn every_interleaving_of_flush_and_compaction_reads_the_last_write() {
        #[derive(Clone, Debug)]
        struct F {
            meta: FileMeta,
            value: u32,
        }
        /// Rows as (WAL segment, value).
        type Rows = Vec<(u64, u32)>;
        #[derive(Clone, Debug, Default)]
        struct St {
            files: Vec<F>,
            next_seq: u64,
            /// Written values not yet flushed.
            buffer: Rows,
            written: u32,
            /// A flush in progress: the frozen rows and the file written, not yet published.
            frozen: Option<(Rows, Option<F>)>,
            flushes_left: u32,
            /// A compaction in progress: its inputs, then its output once written.
            compaction: Option<(Vec<F>, Option<F>)>,
            compactions_left: u32,
        }
        fn file(st: &mut St, wal_min: u64, wal_max: u64, value: u32) -> F {
            let seq = st.next_seq;
            st.next_seq += 1;
            F {
                meta: FileMeta { wal_min, wal_max, ..FileMeta::new(Table::Samples, 0, seq, FileStats::default()) },
                value,
            }
        }
        fn read(st: &St) -> Option<u32> {
            if let Some(&(_, v)) = st.buffer.last() {
                return Some(v);
            }
            if let Some((rows, _)) = &st.frozen
                && let Some(&(_, v)) = rows.last()
            {
                return Some(v);
            }
            st.files.iter().max_by_key(|f| f.meta.rank()).map(|f| f.value)
        }
        fn explore(st: St, states: &mut usize) {
            *states += 1;
            if st.written > 0 {
                assert_eq!(read(&st), Some(st.written), "read the last write in {st:#?}");
            }
            let mut moves: Vec<St> = Vec::new();
            if st.written < 3 {
                let mut n = st.clone();
                n.written += 1;
                // Each write lands in a new segment (a rotation between writes).
                n.buffer.push((n.written as u64, n.written));
                moves.push(n);
            }
            match &st.frozen {
                None if st.flushes_left > 0 && !st.buffer.is_empty() => {
                    let mut n = st.clone();
                    n.flushes_left -= 1;
                    n.frozen = Some((std::mem::take(&mut n.buffer), None));
                    moves.push(n);
                }
                Some((rows, None)) => {
                    let mut n = st.clone();
                    let (lo, hi, v) = (rows[0].0, rows[rows.len() - 1].0, rows[rows.len() - 1].1);
                    let f = file(&mut n, lo, hi, v);
                    n.frozen = Some((rows.clone(), Some(f)));
                    moves.push(n);
                }
                Some((_, Some(f))) => {
                    let mut n = st.clone();
                    n.files.push(f.clone());
                    n.frozen = None;
                    moves.push(n);
                }
                None => {}
            }
            match &st.compaction {
                None if st.compactions_left > 0 && st.files.len() >= 2 => {
                    let mut n = st.clone();
                    n.compactions_left -= 1;
                    n.compaction = Some((st.files.clone(), None));
                    moves.push(n);
                }
                Some((inputs, None)) => {
                    let mut n = st.clone();
                    let winner = inputs.iter().max_by_key(|f| f.meta.rank()).unwrap();
                    let lo = inputs.iter().map(|f| f.meta.wal_min).min().unwrap();
                    let hi = inputs.iter().map(|f| f.meta.wal_max).max().unwrap();
                    let f = file(&mut n, lo, hi, winner.value);
                    n.compaction = Some((inputs.clone(), Some(f)));
                    moves.push(n);
                }
                Some((inputs, Some(out))) => {
                    let mut n = st.clone();
                    let gone: Vec<u64> = inputs.iter().map(|f| f.meta.seq).collect();
                    n.files.retain(|f| !gone.contains(&f.meta.seq));
                    n.files.push(out.clone());
                    n.compaction = None;
                    moves.push(n);
                }
                None => {}
            }
            for n in moves {
                explore(n, states);
            }
        }
        let mut states = 0;
        explore(St { next_seq: 1, flushes_left: 3, compactions_left: 2, ..Default::default() }, &mut states);
        assert!(states > 1000, "explored {states} states");
    }

    #[test]
    fn rank_orders_by_content_then_file() {
        let f = |seq, wal_max| FileMeta { seq, wal_max, ..FileMeta::new(Table::Samples, 0, 0, FileStats::default()) };
        // A compaction output written later (seq 9) but holding older rows (WAL 3) ranks below a
        // flush of WAL 4 written earlier (seq 8).
        assert!(f(9, 3).rank() < f(8, 4).rank());
        // Format 1 files (no WAL range) rank below every newer file, among themselves by seq.
        assert!(f(7, 0).rank() < f(1, 1).rank());
        assert!(f(6, 0).rank() < f(7, 0).rank());
    }
}
