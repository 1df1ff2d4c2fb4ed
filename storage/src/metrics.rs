//! Lock-free latency histograms for the metrics endpoint.
//!
//! A [`Histogram`] has fixed bucket bounds ([`LATENCY_BOUNDS`], seconds) and one `AtomicU64` per
//! bucket plus the sum of observations in microseconds, so recording is a few relaxed atomic adds
//! and never blocks the WAL thread or a query. [`Histogram::snapshot`] returns the cumulative counts
//! Prometheus expects (`le` buckets, each counting every observation at or below its bound).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, in seconds (a last, implicit bucket is `+Inf`).
pub const LATENCY_BOUNDS: [f64; 14] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The same bounds in microseconds, the unit observations are compared in.
const BOUNDS_US: [u64; 14] = [
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000,
    10_000_000,
];

/// A latency histogram with [`LATENCY_BOUNDS`] buckets.
#[derive(Debug, Default)]
pub struct Histogram {
    /// Observations per bucket (not cumulative); the last is above the largest bound.
    buckets: [AtomicU64; LATENCY_BOUNDS.len() + 1],
    sum_us: AtomicU64,
}

/// A point-in-time copy of a [`Histogram`].
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// `(upper bound in seconds, observations at or below it)`, cumulative, for every finite bound.
    pub buckets: Vec<(f64, u64)>,
    /// Every observation (the `+Inf` bucket).
    pub count: u64,
    /// Sum of the observations, seconds.
    pub sum_secs: f64,
}

impl Histogram {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let i = BOUNDS_US.partition_point(|&b| b < us);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// Cumulative bucket counts, the count and the sum. `count` is the sum of the buckets read, so
    /// the `+Inf` bucket always equals it even while others record.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut running = 0;
        let mut buckets = Vec::with_capacity(LATENCY_BOUNDS.len());
        for (i, bound) in LATENCY_BOUNDS.iter().enumerate() {
            running += self.buckets[i].load(Ordering::Relaxed);
            buckets.push((*bound, running));
        }
        running += self.buckets[LATENCY_BOUNDS.len()].load(Ordering::Relaxed);
        HistogramSnapshot { buckets, count: running, sum_secs: self.sum_us.load(Ordering::Relaxed) as f64 / 1e6 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_agree() {
        for (s, us) in LATENCY_BOUNDS.iter().zip(BOUNDS_US) {
            assert_eq!((s * 1e6).round() as u64, us);
        }
    }

    #[test]
    fn buckets_are_cumulative_and_inclusive() {
        let h = Histogram::new();
        h.observe(Duration::from_micros(100)); // <= 0.0005
        h.observe(Duration::from_micros(500)); // exactly 0.0005: le is inclusive
        h.observe(Duration::from_millis(3)); // <= 0.005
        h.observe(Duration::from_secs(60)); // +Inf only
        let s = h.snapshot();
        assert_eq!(s.count, 4);
        assert_eq!(s.buckets[0], (0.0005, 2));
        assert_eq!(s.buckets[1], (0.001, 2));
        assert_eq!(s.buckets[2], (0.0025, 2));
        assert_eq!(s.buckets[3], (0.005, 3));
        assert_eq!(s.buckets.last(), Some(&(10.0, 3)));
        assert!(s.buckets.windows(2).all(|w| w[0].1 <= w[1].1));
        assert!((s.sum_secs - 60.0036).abs() < 1e-9, "{}", s.sum_secs);
    }
}
