//! The direct read path: history requests that name few points ([`DIRECT_MAX_POINTS`]) read the
//! Parquet files with the `parquet` crate, page by page, instead of through DuckDB.
//!
//! A one-point question over a long range touches one file per day and, in each file, the one or
//! two pages that hold the point. DuckDB cannot skip below a row group (32,768 rows, about 23
//! points at one sample a minute), so it decodes a whole group per file. Here:
//!
//! - each file is read through its page index ([`crate::files::page_index`]): row groups pruned by
//!   their point_id and ts statistics, then only the pages that may hold the requested points in
//!   the requested range read and decoded, and the decoded rows filtered exactly;
//! - rows of several sources are merged as the DuckDB path does: on a duplicate (point, ts) the
//!   newest file wins, and the write buffer wins over every file.
//!
//! Files are read in parallel on up to `min(query.threads, available cores)` threads. Any error
//! while reading a file is reported as [`Error::DataFile`] naming it, so the caller can check
//! the file and quarantine it if it is damaged.
//!
//! Why at most [`DIRECT_MAX_POINTS`] = 64 points: on the benchmark store (1,000 points x 90 days,
//! one file per day, a 2-core machine) the direct reader answered 1 to 64 points 1.9x (64 points,
//! 24 h raw) to 20x (one point) faster than DuckDB, over 90 days downsampled, 24 h raw and 7 days of
//! hourly time-weighted averages, and still 1.5x to 3.6x faster at 128 and 1,000 points. Each
//! requested point costs about one page per column and file (a page of 8,192 rows holds about six
//! points' day), so the advantage shrinks as requests approach whole files. Large batch and export
//! requests stay with DuckDB, which scans within `query.memory_limit_mb`, as do the SQL endpoint,
//! compaction and rollup computation.

use crate::buffer::{Columns, DAY_US, RowFilter};
use crate::error::{Error, Result};
use crate::files::page_index::{downcast, file_error, read_rows};
use crate::files::{LiveFile, Snapshot};
use crate::query::analytics::{self, Partial, Series};
use arrow::array::{
    Array, Float64Array, Int64Array, RecordBatch, TimestampMicrosecondArray, UInt8Array, UInt32Array, UInt64Array,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// History requests naming at most this many distinct points use the direct path.
pub const DIRECT_MAX_POINTS: usize = 64;

/// Runs `f` over every file on up to `threads` threads (the calling one included), stopping at
/// the first error or when `cancel` is set. Results come back in the order of `files`.
fn for_each_file<T: Send>(
    files: &[&LiveFile],
    threads: usize,
    cancel: &AtomicBool,
    f: impl Fn(&LiveFile) -> Result<T> + Sync,
) -> Result<Vec<T>> {
    let threads = threads.clamp(1, files.len().max(1));
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let work = || {
        let mut done = Vec::new();
        while !failed.load(Ordering::Relaxed) {
            if cancel.load(Ordering::Relaxed) {
                done.push((usize::MAX, Err(Error::Timeout(0))));
                break;
            }
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(file) = files.get(i) else { break };
            let r = f(file);
            if r.is_err() {
                failed.store(true, Ordering::Relaxed);
            }
            done.push((i, r));
        }
        done
    };
    let mut done = if threads == 1 {
        work()
    } else {
        std::thread::scope(|s| {
            let helpers: Vec<_> = (1..threads).map(|_| s.spawn(work)).collect();
            let mut done = work();
            for h in helpers {
                match h.join() {
                    Ok(d) => done.extend(d),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
            done
        })
    };
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

/// One source's rows of one point: a file (its [`FileMeta::rank`](crate::files::manifest::FileMeta::rank)) or the write buffer (`u64::MAX`).
#[derive(Debug, Default)]
struct Chunk {
    src: u64,
    ts: Vec<i64>,
    value: Vec<f64>,
    quality: Vec<u8>,
}

impl Chunk {
    fn new(src: u64) -> Self {
        Chunk { src, ..Default::default() }
    }

    fn push(&mut self, ts: i64, value: f64, quality: u8) {
        self.ts.push(ts);
        self.value.push(value);
        self.quality.push(quality);
    }

    /// Sorts by time if it is not already, keeping the later row of a duplicate time.
    fn normalise(&mut self) {
        if self.ts.windows(2).all(|w| w[0] < w[1]) {
            return;
        }
        let mut idx: Vec<usize> = (0..self.ts.len()).collect();
        idx.sort_by_key(|&i| (self.ts[i], i));
        let keep: Vec<usize> = idx
            .iter()
            .enumerate()
            .filter(|(k, i)| idx.get(k + 1).is_none_or(|&j| self.ts[j] != self.ts[**i]))
            .map(|(_, &i)| i)
            .collect();
        let mut c = Chunk::new(self.src);
        for i in keep {
            c.push(self.ts[i], self.value[i], self.quality[i]);
        }
        *self = c;
    }
}

/// Splits sample batches of one source into per-point chunks.
fn chunks_of(batches: &[RecordBatch], src: u64) -> Result<Vec<(u32, Chunk)>> {
    let mut out: Vec<(u32, Chunk)> = Vec::new();
    for b in batches {
        let p = downcast::<UInt32Array>(b, 0, "point_id")?.values();
        let t = downcast::<TimestampMicrosecondArray>(b, 1, "ts")?.values();
        let v = downcast::<Float64Array>(b, 2, "value")?.values();
        let q = downcast::<UInt8Array>(b, 3, "quality")?.values();
        for i in 0..b.num_rows() {
            if out.last().is_none_or(|(last, _)| *last != p[i]) {
                out.push((p[i], Chunk::new(src)));
            }
            out.last_mut().expect("pushed above").1.push(t[i], v[i], q[i]);
        }
    }
    Ok(out)
}

/// The buffered rows of `filter`, per point, as chunks that win over every file.
fn buffer_chunks(buffered: &Columns, filter: &RowFilter<'_>) -> Vec<(u32, Chunk)> {
    let mut out: Vec<(u32, Chunk)> = Vec::new();
    for i in 0..buffered.len() {
        let (p, t) = (buffered.point[i], buffered.ts[i]);
        if !filter.matches(p, t) {
            continue;
        }
        if out.last().is_none_or(|(last, _)| *last != p) {
            out.push((p, Chunk::new(u64::MAX)));
        }
        out.last_mut().expect("pushed above").1.push(t, buffered.value[i], buffered.quality[i]);
    }
    out
}

/// Merges one point's chunks into its series: sorted by time, one row per time, the row of the
/// newest source winning. Chunks whose time spans do not overlap (different days, the usual case)
/// are appended as they are; only overlapping ones are merged row by row.
fn merge(point: u32, mut chunks: Vec<Chunk>) -> Series {
    chunks.iter_mut().for_each(Chunk::normalise);
    chunks.retain(|c| !c.ts.is_empty());
    chunks.sort_by_key(|c| (c.ts[0], c.src));
    let mut s = Series::new(point);
    let total: usize = chunks.iter().map(|c| c.ts.len()).sum();
    s.ts.reserve(total);
    s.value.reserve(total);
    s.quality.reserve(total);
    let mut i = 0;
    while i < chunks.len() {
        let mut end = *chunks[i].ts.last().expect("not empty");
        let mut j = i + 1;
        while j < chunks.len() && chunks[j].ts[0] <= end {
            end = end.max(*chunks[j].ts.last().expect("not empty"));
            j += 1;
        }
        if j == i + 1 {
            let c = &chunks[i];
            s.ts.extend_from_slice(&c.ts);
            s.value.extend_from_slice(&c.value);
            s.quality.extend_from_slice(&c.quality);
        } else {
            // (ts, source, chunk, row): for each time, the last entry is the newest source's row.
            let mut rows: Vec<(i64, u64, usize, usize)> = Vec::new();
            for (k, c) in chunks[i..j].iter().enumerate() {
                rows.extend(c.ts.iter().enumerate().map(|(r, &t)| (t, c.src, i + k, r)));
            }
            rows.sort_unstable();
            for (n, &(t, _, k, r)) in rows.iter().enumerate() {
                if rows.get(n + 1).is_none_or(|next| next.0 != t) {
                    s.push(t, chunks[k].value[r], chunks[k].quality[r]);
                }
            }
        }
        i = j;
    }
    s
}

/// Reads rows for history queries straight from the files of a snapshot (plus its buffered rows).
#[derive(Debug)]
pub(crate) struct DirectReader<'a> {
    pub snap: &'a Snapshot,
    pub threads: usize,
    pub cancel: &'a AtomicBool,
}

impl DirectReader<'_> {
    /// The rows of each requested point in `filter` (only points that have rows), sorted by time.
    /// Errors with [`Error::TooManyRows`] past `max_rows`.
    pub fn series(&self, filter: &RowFilter<'_>, max_rows: usize) -> Result<Vec<Series>> {
        let files = crate::files::candidate_files(self.snap, filter);
        let buffered = buffer_chunks(&self.snap.buffered, filter);
        // When no two sources share a day, no row is a duplicate, so a query past the row limit
        // stops as soon as it has read that many rows instead of reading everything first.
        let mut file_days: Vec<(i32, i32)> = files.iter().map(|f| (f.meta.day, f.meta.last_day())).collect();
        file_days.sort_unstable();
        let covered = |d: i32| {
            let i = file_days.partition_point(|r| r.1 < d);
            i < file_days.len() && file_days[i].0 <= d
        };
        let distinct = file_days.windows(2).all(|w| w[0].1 < w[1].0)
            && buffered.iter().all(|(_, c)| c.ts.iter().all(|t| !covered(t.div_euclid(DAY_US) as i32)));
        let read = AtomicUsize::new(buffered.iter().map(|(_, c)| c.ts.len()).sum());
        let per_file = for_each_file(&files, self.threads, self.cancel, |f| {
            let chunks = chunks_of(&read_rows(f, filter, self.cancel)?, f.meta.rank()).map_err(|e| file_error(f, e))?;
            let n: usize = chunks.iter().map(|(_, c)| c.ts.len()).sum();
            if distinct && read.fetch_add(n, Ordering::Relaxed) + n > max_rows {
                return Err(Error::TooManyRows(max_rows));
            }
            Ok(chunks)
        })?;
        let mut by_point: BTreeMap<u32, Vec<Chunk>> = BTreeMap::new();
        for (p, c) in per_file.into_iter().flatten().chain(buffered) {
            by_point.entry(p).or_default().push(c);
        }
        let mut out = Vec::with_capacity(by_point.len());
        let mut total = 0usize;
        for (p, chunks) in by_point {
            let s = merge(p, chunks);
            total += s.len();
            if total > max_rows {
                return Err(Error::TooManyRows(max_rows));
            }
            out.push(s);
        }
        Ok(out)
    }

    /// The last (or first) row per point in `filter`, with its value if that row is usable. Files
    /// are read newest first (oldest first for the first row), and reading stops once no remaining
    /// file can hold a later (earlier) row for any point.
    pub fn edges(&self, filter: &RowFilter<'_>, last: bool) -> Result<HashMap<u32, (i64, Option<f64>)>> {
        // Per point: (ts, source, value, quality) of the best row so far.
        let mut best: HashMap<u32, Best> = HashMap::new();
        for (p, c) in buffer_chunks(&self.snap.buffered, filter) {
            offer(&mut best, last, p, &c);
        }
        let mut files = crate::files::candidate_files(self.snap, filter);
        if last {
            files.sort_by_key(|f| std::cmp::Reverse(f.meta.max_ts));
        } else {
            files.sort_by_key(|f| f.meta.min_ts);
        }
        let all: Vec<u32> = match filter.points {
            Some(p) => p.to_vec(),
            None => Vec::new(),
        };
        for f in files {
            if self.cancel.load(Ordering::Relaxed) {
                return Err(Error::Timeout(0));
            }
            // Points this file may still improve on (a tie on ts goes to the newer file).
            let open =
                |p: &u32| best.get(p).is_none_or(|b| if last { b.0 <= f.meta.max_ts } else { b.0 >= f.meta.min_ts });
            let wanted: Vec<u32> = all.iter().copied().filter(open).collect();
            if filter.points.is_some() && wanted.is_empty() {
                break;
            }
            let sub = RowFilter { points: filter.points.map(|_| wanted.as_slice()), ..*filter };
            let batches = read_rows(f, &sub, self.cancel)?;
            for (p, c) in chunks_of(&batches, f.meta.rank()).map_err(|e| file_error(f, e))? {
                offer(&mut best, last, p, &c);
            }
        }
        Ok(best.into_iter().map(|(p, (t, _, v, q))| (p, (t, analytics::usable(v, q).then_some(v)))).collect())
    }

    /// The rollup rows of `points` in `files` (rollup files) as (point, bucket start, partial).
    pub fn rollup_rows(
        &self,
        files: &[&LiveFile],
        points: &[u32],
        window: (i64, i64),
    ) -> Result<Vec<(u32, i64, Partial)>> {
        let filter = RowFilter { points: Some(points), from: window.0, to: window.1 };
        let per_file = for_each_file(files, self.threads, self.cancel, |f| {
            let batches = read_rows(f, &filter, self.cancel)?;
            rollup_partials(&batches).map_err(|e| file_error(f, e))
        })?;
        Ok(per_file.into_iter().flatten().collect())
    }
}

/// The best edge row of a point so far: (ts, source, value, quality).
type Best = (i64, u64, f64, u8);

/// Offers the rows of `c` as the last (or first) row of point `p`: a later (earlier) time wins,
/// and on the same time the newer source.
fn offer(best: &mut HashMap<u32, Best>, last: bool, p: u32, c: &Chunk) {
    for i in 0..c.ts.len() {
        let (t, src) = (c.ts[i], c.src);
        let row = (t, src, c.value[i], c.quality[i]);
        match best.get_mut(&p) {
            Some(b) => {
                let better = if last { (t, src) > (b.0, b.1) } else { t < b.0 || (t == b.0 && src > b.1) };
                if better {
                    *b = row;
                }
            }
            None => {
                best.insert(p, row);
            }
        }
    }
}

/// Rollup rows (see [`crate::query::rollups::rollup_schema`]) as partials.
fn rollup_partials(batches: &[RecordBatch]) -> Result<Vec<(u32, i64, Partial)>> {
    let mut out = Vec::new();
    for b in batches {
        let p = downcast::<UInt32Array>(b, 0, "point_id")?;
        let t = downcast::<TimestampMicrosecondArray>(b, 1, "ts")?;
        let count = downcast::<UInt64Array>(b, 2, "count")?;
        let f = |i: usize, name: &str| downcast::<Float64Array>(b, i, name);
        let (min, max, avg, first, last, twa) =
            (f(3, "min")?, f(4, "max")?, f(5, "avg")?, f(6, "first")?, f(7, "last")?, f(8, "twa")?);
        let covered = downcast::<Int64Array>(b, 9, "covered_us")?;
        let opt = |a: &Float64Array, i: usize| a.is_valid(i).then(|| a.value(i));
        for i in 0..b.num_rows() {
            let part = crate::query::rollups::partial_of(
                count.value(i),
                opt(min, i),
                opt(max, i),
                opt(avg, i),
                opt(first, i),
                opt(last, i),
                opt(twa, i),
                covered.value(i),
            );
            out.push((p.value(i), t.value(i), part));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(src: u64, rows: &[(i64, f64)]) -> Chunk {
        let mut c = Chunk::new(src);
        for &(t, v) in rows {
            c.push(t, v, 0xC0);
        }
        c
    }

    #[test]
    fn merge_keeps_the_newest_source_per_time() {
        let s = merge(
            7,
            vec![
                chunk(5, &[(10, 1.0), (20, 2.0), (30, 3.0)]),
                chunk(u64::MAX, &[(20, 20.0)]),
                chunk(9, &[(30, 30.0), (40, 40.0)]),
                chunk(2, &[(100, 100.0)]),
                chunk(1, &[(1, -1.0)]),
            ],
        );
        assert_eq!(s.ts, vec![1, 10, 20, 30, 40, 100]);
        assert_eq!(s.value, vec![-1.0, 1.0, 20.0, 30.0, 40.0, 100.0]);
    }

    #[test]
    fn unsorted_chunk_keeps_the_later_row() {
        let s = merge(1, vec![chunk(1, &[(5, 1.0), (3, 2.0), (5, 3.0)])]);
        assert_eq!(s.ts, vec![3, 5]);
        assert_eq!(s.value, vec![2.0, 3.0]);
    }
}
