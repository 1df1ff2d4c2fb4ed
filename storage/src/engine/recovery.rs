//! Start-up reconciliation of the manifest with the files on disk.
//!
//! The manifest says which files are live, but it can be lost (deleted by hand, restored from an
//! older backup) while the files are intact, and a crash can leave files it does not list. No data
//! file is deleted unless it is proven to be garbage:
//!
//! - a temporary file (`*.tmp`): never renamed into place, so never published;
//! - a file the manifest lists as retired (replaced by compaction, retention or a deletion);
//! - a rollup file it does not list: derived data, recomputed from the samples;
//! - a flushed file whose rows are all still in the WAL (its segments are present and not yet
//!   persisted): the crash came before its publication, and replay writes the rows again;
//! - a rewritten file (compaction, retention, deletion) whose inputs are all still live: the crash
//!   came before its publication (which removes the inputs in the same manifest edit);
//! - a file that a present, adopted file replaced.
//!
//! Every other readable sample file the manifest does not list is adopted into it (with rows of one
//! (point, ts) in two files resolved by [`FileMeta::rank`], adopting a file twice over its
//! replacement is harmless), and an unreadable one is moved to `quarantine/` and reported. Without
//! a manifest, the same rules rebuild one from the files' own descriptions ([`FileTag`]).

use crate::error::{Error, Result};
use crate::files::manifest::{FileMeta, FileTag, MANIFEST_FILE, Manifest, Quarantined, Table};
use crate::files::parquet_io;
use serde::Serialize;
use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

/// What start-up recovery did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RecoveryReport {
    pub wal_segments_replayed: usize,
    pub samples_replayed: usize,
    /// Samples in damaged WAL records whose header is intact: an exact count. Replay skips a
    /// damaged record and goes on at the next valid one.
    pub wal_samples_lost: u64,
    /// Samples in damaged WAL records whose header is damaged too: not countable, at most this many
    /// (estimated from the damaged bytes).
    pub wal_samples_lost_at_most: u64,
    /// Samples of WAL writes cut short by a crash (a torn tail; never acknowledged, since a write
    /// is acknowledged only once complete and fsynced).
    pub wal_torn_samples: u64,
    /// One line per WAL segment or file that lost data, saying what and why.
    pub dropped: Vec<String>,
    /// Files moved to `quarantine/`.
    pub quarantined: Vec<String>,
    pub stray_files_removed: usize,
    /// One line per file removed at start, saying why it was proven garbage.
    pub strays: Vec<String>,
    /// Files the manifest did not list that were taken into it (see the [module](self) documentation).
    pub adopted: Vec<String>,
    /// The manifest was missing and was rebuilt from the data files.
    pub manifest_rebuilt: bool,
    pub duration_ms: u64,
}

/// A file found under a table folder.
#[derive(Debug)]
struct Found {
    path: PathBuf,
    /// Relative to the data directory, with `/`.
    rel: String,
    table: Table,
    /// From `day=YYYY-MM-DD` and `part-<seq>.parquet`; `None` if the names are not ours.
    day: Option<i32>,
    seq: Option<u64>,
}

/// The relative path of a file as the manifest's records spell it.
pub(super) fn rel_string(meta: &FileMeta) -> String {
    meta.rel_path().to_string_lossy().replace('\\', "/")
}

fn scan(data_dir: &Path) -> Vec<Found> {
    let mut out = Vec::new();
    for table in [Table::Samples, Table::Rollups1m, Table::Rollups1h] {
        let Ok(days) = std::fs::read_dir(data_dir.join(table.dir_name())) else { continue };
        for day in days.flatten() {
            let day_name = day.file_name().to_string_lossy().into_owned();
            let day_num = day_name
                .strip_prefix("day=")
                .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
                .map(|d| (d - chrono::NaiveDate::default()).num_days() as i32);
            let Ok(files) = std::fs::read_dir(day.path()) else { continue };
            for f in files.flatten() {
                let name = f.file_name().to_string_lossy().into_owned();
                let seq =
                    name.strip_prefix("part-").and_then(|n| n.strip_suffix(".parquet")).and_then(|n| n.parse().ok());
                out.push(Found {
                    path: f.path(),
                    rel: format!("{}/{day_name}/{name}", table.dir_name()),
                    table,
                    day: day_num,
                    seq,
                });
            }
        }
    }
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    out
}

fn remove(f: &Found, why: &str, report: &mut RecoveryReport) {
    tracing::info!(path = %f.path.display(), "removing a file the manifest does not list: {why}");
    match std::fs::remove_file(&f.path) {
        Ok(()) => {
            report.stray_files_removed += 1;
            report.strays.push(format!("removed {}: {why}", f.rel));
        }
        Err(e) => tracing::warn!(path = %f.path.display(), error = %e, "could not remove"),
    }
}

/// A quarantine record for a file, with what the manifest (or the file itself) says it held.
pub(super) fn record(
    data_dir: &Path,
    rel: String,
    moved: Option<String>,
    reason: String,
    meta: &FileMeta,
    now_us: i64,
) -> Quarantined {
    let moved_to = moved
        .map(|m| Path::new(&m).strip_prefix(data_dir).map(|p| p.to_string_lossy().into_owned()).unwrap_or(m))
        .unwrap_or_default();
    Quarantined {
        file: rel,
        moved_to,
        reason,
        at_us: now_us,
        table: meta.table,
        rows: meta.rows,
        min_ts: meta.min_ts,
        max_ts: meta.max_ts,
        min_point: meta.min_point,
        max_point: meta.max_point,
        acknowledged: false,
    }
}

/// Loads the manifest, or rebuilds it from the files if there is none. A manifest that exists but
/// cannot be read stops the start with the way out: `t3000 repair`, which moves it aside and
/// rebuilds it (start-up never guesses over a damaged manifest by itself).
pub(super) fn load_manifest(data_dir: &Path) -> Result<Option<Manifest>> {
    match Manifest::load(data_dir) {
        Err(Error::Corrupt { path, message }) => Err(Error::Corrupt {
            path,
            message: format!(
                "{message}. The data files are not touched; to rebuild the manifest from them run \
                 `t3000 repair --data-dir {}` (it keeps the damaged manifest in quarantine/)",
                data_dir.display()
            ),
        }),
        other => other,
    }
}

/// Moves a damaged manifest into `quarantine/` so the next start rebuilds it from the files.
/// Returns where it went (`None` if there was no manifest).
pub fn set_aside_manifest(data_dir: &Path) -> Result<Option<String>> {
    let path = data_dir.join(MANIFEST_FILE);
    if !path.exists() {
        return Ok(None);
    }
    match quarantine(data_dir, &path) {
        Some(to) => Ok(Some(to)),
        None => Err(Error::io("move to quarantine/", &path, std::io::Error::other("rename failed"))),
    }
}

/// Reconciles `manifest` (`None`: rebuild) with the files on disk and the WAL segments present.
/// Returns the manifest to start from and whether it differs from the one stored.
pub(super) fn reconcile(
    data_dir: &Path,
    manifest: Option<Manifest>,
    wal_segments: &[(u64, PathBuf)],
    report: &mut RecoveryReport,
    now_us: i64,
) -> Result<(Manifest, bool)> {
    let rebuilding = manifest.is_none();
    let mut m = manifest.unwrap_or(Manifest { next_seq: 1, ..Default::default() });
    let mut changed = rebuilding;
    let found = scan(data_dir);
    let segments: BTreeSet<u64> = wal_segments.iter().map(|(s, _)| *s).collect();

    // The listed files must be whole: a missing or damaged one is set aside (below, unless an
    // adopted file replaced it).
    let mut ok: Vec<FileMeta> = Vec::new();
    let mut bad: Vec<(FileMeta, String)> = Vec::new();
    for meta in std::mem::take(&mut m.files) {
        match parquet_io::verify(&data_dir.join(meta.rel_path()), meta.rows) {
            Ok(()) => ok.push(meta),
            Err(why) => bad.push((meta, why)),
        }
    }
    let listed: HashSet<String> = ok.iter().chain(bad.iter().map(|(f, _)| f)).map(rel_string).collect();
    let live_seqs: HashSet<u64> = ok.iter().map(|f| f.seq).collect();
    let retired: HashSet<String> = m.retired.iter().cloned().collect();
    let mut max_seq = m.next_seq.saturating_sub(1);
    let mut adopted: Vec<(FileMeta, Vec<u64>, String)> = Vec::new();
    for f in found.iter().filter(|f| !listed.contains(&f.rel)) {
        max_seq = max_seq.max(f.seq.unwrap_or(0));
        if f.rel.ends_with(".tmp") {
            remove(f, "a temporary file, never published", report);
            continue;
        }
        if retired.contains(&f.rel) {
            remove(f, "replaced (compaction, retention or a deletion) and retired", report);
            continue;
        }
        if f.table != Table::Samples {
            remove(f, "a rollup the manifest does not list (rollups are recomputed from the samples)", report);
            continue;
        }
        let (Some(day), Some(seq)) = (f.day, f.seq) else {
            set_aside(data_dir, f, "not a file this server writes (unexpected name)", report, &mut m, now_us);
            continue;
        };
        let (tag, stats) = match parquet_io::describe(&f.path) {
            Ok(d) => d,
            Err(why) => {
                set_aside(data_dir, f, &format!("unreadable: {why}"), report, &mut m, now_us);
                continue;
            }
        };
        let mut meta = FileMeta::new(Table::Samples, day, seq, stats);
        let replaces = match &tag {
            Some(t) if t.table != Some(Table::Samples) || t.day != day || t.seq != seq => {
                set_aside(data_dir, f, "its description does not match its name", report, &mut m, now_us);
                continue;
            }
            Some(FileTag { wal_min, wal_max, replaces, days, .. }) => {
                meta.days = (*days).max(1);
                meta.wal_min = *wal_min;
                meta.wal_max = *wal_max;
                replaces.clone()
            }
            None if rebuilding => Vec::new(),
            None => {
                set_aside(
                    data_dir,
                    f,
                    "not in the manifest and without a description (kept for inspection)",
                    report,
                    &mut m,
                    now_us,
                );
                continue;
            }
        };
        let in_wal = tag.is_some()
            && replaces.is_empty()
            && meta.wal_min > m.wal_persisted_through
            && (meta.wal_min..=meta.wal_max).all(|s| segments.contains(&s));
        if in_wal {
            remove(f, "an unpublished flush: its rows are still in the WAL and are replayed", report);
            continue;
        }
        if !rebuilding && !replaces.is_empty() && replaces.iter().all(|s| live_seqs.contains(s)) {
            remove(f, "an unpublished rewrite: the files it would replace are still live", report);
            continue;
        }
        adopted.push((meta, replaces, f.rel.clone()));
    }

    // What an adopted file replaced is garbage, wherever it is. A rewrite names the files it
    // replaced, but those may themselves have replaced older ones since deleted; so a sample file
    // of the same day whose WAL range lies inside a rewrite's, and that is older, is replaced too
    // (every file of the day from those segments was among the rewrite's inputs, directly or
    // through an earlier rewrite, or was removed on purpose).
    let rewrites: Vec<FileMeta> = adopted.iter().filter(|(_, r, _)| !r.is_empty()).map(|(m, _, _)| m.clone()).collect();
    let named: HashSet<u64> = adopted.iter().flat_map(|(_, r, _)| r.iter().copied()).collect();
    let replaced = |m: &FileMeta| {
        named.contains(&m.seq)
            || rewrites.iter().any(|y| {
                y.seq > m.seq && y.shares_a_day(m) && m.wal_max > 0 && y.wal_min <= m.wal_min && m.wal_max <= y.wal_max
            })
    };
    let (gone, kept): (Vec<_>, Vec<_>) = adopted.into_iter().partition(|(meta, _, _)| replaced(meta));
    for (meta, _, rel) in gone {
        let f = Found { path: data_dir.join(meta.rel_path()), rel, table: meta.table, day: None, seq: None };
        remove(&f, "replaced by another file found beside it", report);
    }
    let adopted = kept;
    let (gone, kept): (Vec<_>, Vec<_>) =
        ok.into_iter().partition(|meta| meta.table == Table::Samples && replaced(meta));
    for meta in gone {
        let f = Found {
            path: data_dir.join(meta.rel_path()),
            rel: rel_string(&meta),
            table: meta.table,
            day: None,
            seq: None,
        };
        remove(&f, "listed, but replaced by a newer file the manifest had lost", report);
        changed = true;
    }
    let mut ok = kept;
    for (meta, why) in bad {
        changed = true;
        if meta.table == Table::Samples && replaced(&meta) {
            continue;
        }
        let path = data_dir.join(meta.rel_path());
        let line = format!("{}: {why}; {} rows lost", rel_string(&meta), meta.rows);
        tracing::error!("{line}");
        report.dropped.push(line);
        let moved = if path.exists() { quarantine(data_dir, &path) } else { None };
        if let Some(q) = &moved {
            report.quarantined.push(q.clone());
        }
        m.quarantined.push(record(data_dir, rel_string(&meta), moved, why, &meta, now_us));
    }
    for (meta, _, rel) in &adopted {
        tracing::warn!(file = %rel, rows = meta.rows, "adopting a data file the manifest did not list");
        report.adopted.push(format!("{rel}: {} rows", meta.rows));
        changed = true;
    }
    // A file back from outside the manifest was not there when the listed files proved
    // themselves disjoint (and adopted files promise nothing), so the days it touches resolve
    // duplicates again until they are next compacted.
    let adopted_metas: Vec<FileMeta> = adopted.iter().map(|(meta, _, _)| meta.clone()).collect();
    for meta in ok.iter_mut().filter(|m| adopted_metas.iter().any(|a| a.shares_a_day(m))) {
        meta.disjoint = false;
    }
    ok.extend(adopted.into_iter().map(|(meta, _, _)| meta));
    ok.sort_by_key(|f| (f.table, f.day, f.seq));
    m.files = ok;
    m.next_seq = m.next_seq.max(max_seq + 1).max(m.files.iter().map(|f| f.seq + 1).max().unwrap_or(1));
    if !m.retired.is_empty() {
        m.retired.clear();
        changed = true;
    }
    if rebuilding {
        // Every WAL segment still present is replayed: a flushed segment's rows are then in both
        // a file and the write buffer, and the buffer (the same rows, or newer) wins.
        m.wal_persisted_through = match segments.first() {
            Some(first) => first - 1,
            None => m.files.iter().map(|f| f.wal_max).max().unwrap_or(0),
        };
        // A new data directory has no manifest and nothing to rebuild it from.
        if !found.is_empty() || !segments.is_empty() {
            report.manifest_rebuilt = true;
            tracing::warn!(files = m.files.len(), "the manifest was missing; rebuilt it from the data files");
        }
    }
    remove_empty_day_dirs(data_dir);
    Ok((m, changed))
}

fn set_aside(data_dir: &Path, f: &Found, why: &str, report: &mut RecoveryReport, m: &mut Manifest, now_us: i64) {
    tracing::error!(path = %f.path.display(), "moving a doubtful data file to quarantine/: {why}");
    let moved = quarantine(data_dir, &f.path);
    if let Some(q) = &moved {
        report.quarantined.push(q.clone());
    }
    let meta = FileMeta::new(f.table, f.day.unwrap_or(0), f.seq.unwrap_or(0), Default::default());
    m.quarantined.push(record(data_dir, f.rel.clone(), moved, why.to_string(), &meta, now_us));
}

fn remove_empty_day_dirs(data_dir: &Path) {
    for table in [Table::Samples, Table::Rollups1m, Table::Rollups1h] {
        let Ok(days) = std::fs::read_dir(data_dir.join(table.dir_name())) else { continue };
        for day in days.flatten() {
            // Fails (and is meant to) unless the folder is empty.
            let _ = std::fs::remove_dir(day.path());
        }
    }
    let _ = std::fs::remove_file(data_dir.join(format!("{MANIFEST_FILE}.tmp")));
}

fn quarantine_dir(data_dir: &Path) -> Option<PathBuf> {
    let q = data_dir.join("quarantine");
    std::fs::create_dir_all(&q).ok()?;
    Some(q)
}

fn quarantine_name(data_dir: &Path, path: &Path) -> Option<PathBuf> {
    let rel = path.strip_prefix(data_dir).unwrap_or(path);
    let flat = rel.to_string_lossy().replace(['/', '\\'], "_");
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S");
    Some(quarantine_dir(data_dir)?.join(format!("{stamp}-{flat}")))
}

/// Moves a damaged file into `quarantine/`; returns its new name.
pub(super) fn quarantine(data_dir: &Path, path: &Path) -> Option<String> {
    let to = quarantine_name(data_dir, path)?;
    match std::fs::rename(path, &to) {
        Ok(()) => Some(to.display().to_string()),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "could not quarantine");
            None
        }
    }
}
