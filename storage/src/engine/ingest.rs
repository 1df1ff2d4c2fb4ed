//! Ingest: a batch validated, appended to the WAL (whose thread puts committed samples in the
//! write buffer and the latest-value cache, see [`CommitSink`]), then acknowledged; the live bus and
//! the latest values.

use super::{Shared, Storage};
use crate::buffer::{DAY_US, Frozen, RowFilter};
use crate::error::{Error, Result};
use crate::files::LiveFile;
use crate::files::manifest::Table;
use crate::query::Latest;
use crate::wal::{CommitSink, WriteState};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use t3_core::Sample;
use t3_core::config::{AckLevel, IngestConfig};
use t3_core::model::{MAX_TS, MIN_TS};

/// Checks a batch before anything of it is stored: every time stamp within 1970 .. 9999 and at
/// most `rules.max_future_secs` ahead of `now_us`, values finite (NaN only with a bad quality),
/// and the batch on at most `rules.max_days_per_batch` distinct UTC days.
pub fn validate_samples(samples: &[Sample], now_us: i64, rules: &IngestConfig) -> Result<()> {
    let future_us = i64::try_from(rules.max_future_secs).unwrap_or(i64::MAX).saturating_mul(1_000_000);
    let latest_allowed = now_us.saturating_add(future_us);
    for (index, s) in samples.iter().enumerate() {
        let reason = if !(MIN_TS..=MAX_TS).contains(&s.ts) {
            Some(format!("ts {} is outside 1970-01-01 .. 9999-12-31", s.ts))
        } else if s.value.is_infinite() {
            Some("value is infinite".to_string())
        } else if s.value.is_nan() && s.quality.major() != t3_core::model::Major::Bad {
            Some("value is NaN; NaN is only allowed with a bad quality (no value available)".to_string())
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(Error::InvalidSample { index, reason });
        }
    }
    // What is wrong only now, by the clock, comes after what is wrong whenever.
    if let Some((index, s)) = samples.iter().enumerate().find(|(_, s)| s.ts > latest_allowed) {
        let reason = format!(
            "ts {} ({}) is more than ingest.max_future_secs = {} s ahead of the server clock ({}); \
             a clock or unit mistake?",
            s.ts,
            rfc3339(s.ts),
            rules.max_future_secs,
            rfc3339(now_us)
        );
        return Err(Error::AheadOfClock { index, reason });
    }
    // Batches are mostly in time order: look a day up only when it changes.
    let mut days = HashSet::new();
    let mut last = None;
    for s in samples {
        let day = s.ts.div_euclid(DAY_US);
        if last != Some(day) {
            days.insert(day);
            last = Some(day);
        }
    }
    if days.len() > rules.max_days_per_batch as usize {
        return Err(Error::TooManyDays { days: days.len(), limit: rules.max_days_per_batch });
    }
    Ok(())
}

fn rfc3339(ts: i64) -> String {
    chrono::DateTime::from_timestamp_micros(ts)
        .map_or_else(|| ts.to_string(), |t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
}

impl CommitSink for Shared {
    fn committed(&self, samples: &[Sample]) {
        let now = self.clock.now_us();
        let rows = {
            let mut st = self.state.lock();
            st.active.append(samples, now);
            st.commit_gen += 1;
            st.active.len()
        };
        self.buffered_rows.fetch_add(samples.len(), Ordering::Relaxed);
        {
            let mut latest = self.latest.write();
            // A sample stamped in the future is stored (within the accepted window) but never
            // becomes the latest value: one wrong clock must not pin a point's value.
            for s in samples.iter().filter(|s| s.ts <= now) {
                let e = latest.entry(s.point_id.0).or_insert(Latest { ts: i64::MIN, value: 0.0, quality: 0 });
                if s.ts >= e.ts {
                    *e = Latest { ts: s.ts, value: s.value, quality: s.quality.0 };
                }
            }
        }
        if rows >= self.flush_rows {
            self.flush_wanted.notify_one();
        }
    }

    fn rotated(&self, closed: u64) {
        let mut st = self.state.lock();
        let wal_from = std::mem::replace(&mut st.next_wal_from, closed + 1);
        if st.active.is_empty() {
            return;
        }
        let batch = st.active.freeze();
        let generation = st.commit_gen;
        st.frozen.push(Arc::new(Frozen { batch, wal_from, wal_through: closed }));
        st.frozen_gen.push(generation);
    }
}

impl Storage {
    /// The live bus: every batch acknowledged from now on (pushed or collected), once durable. A
    /// receiver that falls more than [`LIVE_BATCHES`](super::LIVE_BATCHES) batches behind gets `Lagged` and misses
    /// them; it can catch up from [`Storage::latest`].
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Arc<[Sample]>> {
        self.inner.live.subscribe()
    }

    /// The reason writes are refused, if they are: the WAL's (see [`Storage::write_state`]), or
    /// the disk's floor (see [`crate::disk`]).
    pub fn write_refusal(&self) -> Option<String> {
        match self.write_state() {
            WriteState::Ok => self.inner.disk.refusing().then(|| self.inner.disk.status().describe()),
            WriteState::Unavailable(why) | WriteState::Poisoned(why) => Some(why),
        }
    }

    /// Whether writes are accepted: refused for now and retried by the WAL (it cannot create a
    /// segment: a full disk, no file descriptors), or refused until restart (poisoned WAL).
    pub fn write_state(&self) -> WriteState {
        self.inner.wal.state()
    }

    /// Samples acknowledged but not yet in Parquet.
    pub fn buffered_rows(&self) -> usize {
        self.inner.shared.buffered_rows.load(Ordering::Relaxed)
    }

    fn backlog_limit(&self) -> usize {
        self.inner.cfg.storage.flush_rows.saturating_mul(8).max(1_000_000)
    }

    /// Stores a batch of samples. Returns once they are durable at the configured level:
    /// `wal` (fsynced to the write-ahead log) or `parquet` (in a published Parquet file).
    /// The batch is validated first; an invalid batch stores nothing.
    pub async fn ingest(&self, samples: Vec<Sample>) -> Result<()> {
        validate_samples(&samples, self.inner.clock.now_us(), &self.inner.cfg.ingest)?;
        if samples.is_empty() {
            return Ok(());
        }
        self.inner.disk.admit(samples.len())?;
        let buffered = self.buffered_rows();
        if buffered > self.backlog_limit() {
            return Err(Error::Backlog { buffered, limit: self.backlog_limit() });
        }
        let n = samples.len() as u64;
        // A copy for the live bus only while someone listens.
        let live = (self.inner.live.receiver_count() > 0).then(|| samples.clone());
        self.inner.wal.append(samples).await?;
        if let Some(batch) = live {
            let _ = self.inner.live.send(Arc::from(batch));
        }
        self.inner.stats.samples_ingested.fetch_add(n, Ordering::Relaxed);
        if self.inner.cfg.storage.ack == AckLevel::Parquet {
            let generation = self.inner.shared.state.lock().commit_gen;
            self.persist_through(generation).await?;
        }
        Ok(())
    }

    /// Latest value of each requested point (all points if `points` is empty), from memory.
    pub fn latest(&self, points: &[u32]) -> Vec<(u32, Latest)> {
        let map = self.inner.shared.latest.read();
        if points.is_empty() {
            let mut v: Vec<_> = map.iter().map(|(k, v)| (*k, *v)).collect();
            v.sort_by_key(|e| e.0);
            v
        } else {
            points.iter().filter_map(|p| map.get(p).map(|l| (*p, *l))).collect()
        }
    }

    /// Seeds the latest-value cache from the Parquet files (after a restart). Values that arrived
    /// since start-up are newer and are kept. A damaged file is quarantined and the rest is read.
    pub async fn load_latest(&self) -> Result<usize> {
        let rows = loop {
            let files = self.live_files();
            let me = self.clone();
            let now = self.inner.clock.now_us();
            let result = tokio::task::spawn_blocking(move || me.inner.query.latest_from_files(&files, now))
                .await
                .map_err(|e| Error::Internal(e.to_string()))?;
            match result {
                Ok(rows) => break rows,
                Err(e) if self.quarantine_after_error(&e.to_string(), Some((MIN_TS, MAX_TS + 1))).await => {
                    tracing::warn!(error = %e, "a damaged file was quarantined while loading latest values");
                }
                Err(e) => return Err(e),
            }
        };
        let mut map = self.inner.shared.latest.write();
        let n = rows.len();
        for (p, l) in rows {
            let e = map.entry(p).or_insert(l);
            if l.ts > e.ts {
                *e = l;
            }
        }
        Ok(n)
    }

    /// After samples of `point` in `[from, to)` were deleted: if the latest value was one of them,
    /// the newest remaining one (buffered or in a file, not in the future) takes its place.
    pub(super) async fn forget_latest_in(&self, point: u32, from: i64, to: i64) -> Result<()> {
        let hit = self.inner.shared.latest.read().get(&point).is_some_and(|l| (from..to).contains(&l.ts));
        if !hit {
            return Ok(());
        }
        let now = self.inner.clock.now_us();
        let filter = RowFilter { points: Some(&[point]), from: MIN_TS, to: now.saturating_add(1) };
        let snap = self.snapshot(&filter, true);
        let newest_buffered = (0..snap.buffered.len()).rev().find(|&i| snap.buffered.point[i] == point).map(|i| {
            Latest { ts: snap.buffered.ts[i], value: snap.buffered.value[i], quality: snap.buffered.quality[i] }
        });
        let files: Vec<Arc<LiveFile>> = snap
            .files
            .iter()
            .filter(|f| f.meta.table == Table::Samples && (f.meta.min_point..=f.meta.max_point).contains(&point))
            .cloned()
            .collect();
        let me = self.clone();
        let from_files = tokio::task::spawn_blocking(move || me.inner.query.latest_from_files(&files, now))
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
        let newest = from_files
            .into_iter()
            .find(|(p, _)| *p == point)
            .map(|(_, l)| l)
            .into_iter()
            .chain(newest_buffered)
            .max_by_key(|l| l.ts);
        let mut map = self.inner.shared.latest.write();
        match newest {
            Some(l) => map.insert(point, l),
            None => map.remove(&point),
        };
        Ok(())
    }
}
