//! Pure computations over one point's sorted samples: bucketed aggregates (including the
//! time-weighted average and the integral), interpolation with a maximum gap, and M4 downsampling.
//! No I/O: the query engine fetches the rows and these functions shape them.
//!
//! Conventions:
//! - Buckets are aligned to multiples of the bucket width since the Unix epoch (UTC), so a day
//!   bucket starts at midnight UTC and results of overlapping queries line up. Every bucket that
//!   overlaps `[from, to)` is returned; time inside a bucket but outside `[from, to)` is not used.
//! - Samples with bad quality (or a NaN value) carry no value: they are left out of avg / min / max
//!   / first / last / count, and from a bad sample until the next good one the series is unknown
//!   (that time counts neither for the time-weighted average nor the integral).
//! - Time-weighted average and integral use step (sample-and-hold) semantics: a value holds until
//!   the next sample. The value in force when a bucket starts is the last good value before it
//!   (`prior`, looked up before `from` by the query engine). The last value holds to the end of its
//!   bucket, but never past `now`: the future is unknown.
//! - The integral is in value x seconds.

use serde::{Deserialize, Serialize};

/// One point's rows, sorted by time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    pub point_id: u32,
    pub ts: Vec<i64>,
    pub value: Vec<f64>,
    pub quality: Vec<u8>,
}

impl Series {
    pub fn new(point_id: u32) -> Self {
        Series { point_id, ..Default::default() }
    }

    pub fn len(&self) -> usize {
        self.ts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }

    pub fn push(&mut self, ts: i64, value: f64, quality: u8) {
        self.ts.push(ts);
        self.value.push(value);
        self.quality.push(quality);
    }

    fn usable(&self, i: usize) -> bool {
        usable(self.value[i], self.quality[i])
    }
}

pub fn usable(value: f64, quality: u8) -> bool {
    quality >= 0x40 && !value.is_nan()
}

/// An aggregate function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Agg {
    Avg,
    Min,
    Max,
    First,
    Last,
    Count,
    /// Time-weighted average.
    Twa,
    /// Integral over time, value x seconds.
    Integral,
}

impl Agg {
    pub const ALL: [Agg; 8] =
        [Agg::Avg, Agg::Min, Agg::Max, Agg::First, Agg::Last, Agg::Count, Agg::Twa, Agg::Integral];

    pub fn name(self) -> &'static str {
        match self {
            Agg::Avg => "avg",
            Agg::Min => "min",
            Agg::Max => "max",
            Agg::First => "first",
            Agg::Last => "last",
            Agg::Count => "count",
            Agg::Twa => "twa",
            Agg::Integral => "integral",
        }
    }

    pub fn parse(s: &str) -> Option<Agg> {
        Agg::ALL.into_iter().find(|a| a.name() == s)
    }
}

/// Bucketed aggregates of one series: `ts` holds bucket starts; each column is parallel to it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Buckets {
    pub ts: Vec<i64>,
    pub columns: Vec<(Agg, Vec<Option<f64>>)>,
}

/// The mergeable state of one bucket: enough to finish every [`Agg`], and to combine adjacent
/// buckets (rollups) into wider ones.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Partial {
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    pub first: Option<f64>,
    pub last: Option<f64>,
    /// Integral of the held value over time, value x microseconds.
    pub area: f64,
    /// Microseconds of the bucket during which a value was known.
    pub covered: i64,
}

impl Default for Partial {
    fn default() -> Self {
        Partial {
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            first: None,
            last: None,
            area: 0.0,
            covered: 0,
        }
    }
}

impl Partial {
    /// Folds in the state of a bucket that comes later in time.
    pub fn merge(&mut self, later: &Partial) {
        self.count += later.count;
        self.sum += later.sum;
        self.min = self.min.min(later.min);
        self.max = self.max.max(later.max);
        if self.first.is_none() {
            self.first = later.first;
        }
        if later.last.is_some() {
            self.last = later.last;
        }
        self.area += later.area;
        self.covered += later.covered;
    }

    pub fn finish(&self, agg: Agg) -> Option<f64> {
        let some = self.count > 0;
        match agg {
            Agg::Avg => some.then(|| self.sum / self.count as f64),
            Agg::Min => some.then_some(self.min),
            Agg::Max => some.then_some(self.max),
            Agg::First => self.first,
            Agg::Last => self.last,
            Agg::Count => Some(self.count as f64),
            Agg::Twa => (self.covered > 0).then(|| self.area / self.covered as f64),
            Agg::Integral => (self.covered > 0).then(|| self.area / 1e6),
        }
    }
}

/// Start of the epoch-aligned bucket of width `width` holding `t`.
pub fn bucket_start(t: i64, width: i64) -> i64 {
    t.div_euclid(width) * width
}

/// Per-bucket [`Partial`]s of `s` (sorted, inside `[from, to)`) for buckets of `width`
/// microseconds; returns the first bucket's start and one partial per bucket overlapping the range.
pub fn partials(s: &Series, prior: Option<f64>, from: i64, to: i64, width: i64, now: i64) -> (i64, Vec<Partial>) {
    assert!(width > 0 && from < to);
    let first = bucket_start(from, width);
    let n = ((to - 1 - first) / width + 1) as usize;
    let mut out = vec![Partial::default(); n];
    for i in 0..s.len() {
        if !s.usable(i) {
            continue;
        }
        let p = &mut out[((s.ts[i] - first) / width) as usize];
        let v = s.value[i];
        p.count += 1;
        p.sum += v;
        p.min = p.min.min(v);
        p.max = p.max.max(v);
        p.first.get_or_insert(v);
        p.last = Some(v);
    }
    // Time-weighted: walk the step function once, splitting each held segment at bucket edges.
    let end = to.min(now.max(from));
    let mut add = |v: f64, a: i64, b: i64| {
        let mut t = a;
        while t < b {
            let k = ((t - first) / width) as usize;
            let edge = (first + (k as i64 + 1) * width).min(b);
            out[k].area += v * (edge - t) as f64;
            out[k].covered += edge - t;
            t = edge;
        }
    };
    let mut held: Option<f64> = prior;
    let mut since = from;
    for i in 0..s.len() {
        let t = s.ts[i].clamp(from, end);
        if let Some(v) = held {
            add(v, since, t);
        }
        held = if s.usable(i) { Some(s.value[i]) } else { None };
        since = t;
    }
    if let Some(v) = held {
        add(v, since, end);
    }
    (first, out)
}

/// Finishes partials (bucket `k` starting at `first + k * width`) into the requested aggregates.
pub fn finish(first: i64, width: i64, parts: &[Partial], aggs: &[Agg]) -> Buckets {
    Buckets {
        ts: (0..parts.len()).map(|k| first + k as i64 * width).collect(),
        columns: aggs.iter().map(|a| (*a, parts.iter().map(|p| p.finish(*a)).collect())).collect(),
    }
}

/// Aggregates `s` (sorted, inside `[from, to)`) into buckets of `width` microseconds.
pub fn aggregate(s: &Series, prior: Option<f64>, from: i64, to: i64, width: i64, aggs: &[Agg], now: i64) -> Buckets {
    let (first, parts) = partials(s, prior, from, to, width, now);
    finish(first, width, &parts, aggs)
}

/// How to fill between samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fill {
    /// Straight line between the samples on either side.
    Linear,
    /// The previous sample's value (sample-and-hold).
    Step,
}

/// Values at `from, from + step, ...` (< `to`). A value is given only where the samples it uses are
/// at most `max_gap` apart (linear) or the previous sample is at most `max_gap` old (step).
/// `prior` is the last good sample before `from`, `next` the first good one at or after `to`.
#[allow(clippy::too_many_arguments)]
pub fn interpolate(
    s: &Series,
    prior: Option<(i64, f64)>,
    next: Option<(i64, f64)>,
    from: i64,
    to: i64,
    step: i64,
    fill: Fill,
    max_gap: i64,
) -> (Vec<i64>, Vec<Option<f64>>) {
    assert!(step > 0 && from < to);
    let mut pts: Vec<(i64, f64)> = Vec::with_capacity(s.len() + 2);
    pts.extend(prior);
    pts.extend((0..s.len()).filter(|&i| s.usable(i)).map(|i| (s.ts[i], s.value[i])));
    pts.extend(next);
    let mut ts = Vec::new();
    let mut vals = Vec::new();
    let mut j = 0; // pts[j] is the first sample with ts > t
    let mut t = from;
    while t < to {
        while j < pts.len() && pts[j].0 <= t {
            j += 1;
        }
        let before = j.checked_sub(1).map(|k| pts[k]);
        let after = pts.get(j).copied();
        let v = match (fill, before, after) {
            (_, Some((bt, bv)), _) if bt == t => Some(bv),
            (Fill::Step, Some((bt, bv)), _) if t - bt <= max_gap => Some(bv),
            (Fill::Linear, Some((bt, bv)), Some((at, av))) if at - bt <= max_gap => {
                Some(bv + (av - bv) * (t - bt) as f64 / (at - bt) as f64)
            }
            _ => None,
        };
        ts.push(t);
        vals.push(v);
        t += step;
    }
    (ts, vals)
}

/// M4 downsampling: splits `[from, to)` into `max_points / 4` equal buckets and keeps, in each,
/// the first, last, minimum and maximum sample (each once). Every spike survives; a chart drawn
/// from the result is pixel-identical to one drawn from all the rows at that width. Series with at
/// most `max_points` rows are returned as they are.
pub fn m4(s: &Series, from: i64, to: i64, max_points: usize) -> Series {
    if s.len() <= max_points {
        return s.clone();
    }
    let buckets = (max_points / 4).max(1) as i64;
    let span = (to - from).max(1) as i128;
    let bucket_of = |t: i64| (((t - from) as i128 * buckets as i128) / span).clamp(0, buckets as i128 - 1) as i64;
    let mut out = Series::new(s.point_id);
    let mut i = 0;
    let mut keep: Vec<usize> = Vec::with_capacity(4);
    while i < s.len() {
        let b = bucket_of(s.ts[i]);
        let start = i;
        let (mut lo, mut hi) = (None::<usize>, None::<usize>);
        while i < s.len() && bucket_of(s.ts[i]) == b {
            if s.usable(i) {
                if lo.is_none_or(|l| s.value[i] < s.value[l]) {
                    lo = Some(i);
                }
                if hi.is_none_or(|h| s.value[i] > s.value[h]) {
                    hi = Some(i);
                }
            }
            i += 1;
        }
        keep.clear();
        keep.extend([start, i - 1]);
        keep.extend(lo);
        keep.extend(hi);
        keep.sort_unstable();
        keep.dedup();
        for &k in &keep {
            out.push(s.ts[k], s.value[k], s.quality[k]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const M: i64 = 60_000_000; // one minute

    fn series(rows: &[(i64, f64)]) -> Series {
        let mut s = Series::new(1);
        for &(t, v) in rows {
            s.push(t, v, 0xC0);
        }
        s
    }

    fn col(b: &Buckets, a: Agg) -> Vec<Option<f64>> {
        b.columns.iter().find(|c| c.0 == a).unwrap().1.clone()
    }

    #[test]
    fn twa_uses_the_value_before_the_bucket() {
        // Buckets of 10 min from 0. Prior value 10 holds until 2 min; 20 until 8 min; 30 to 10 min.
        let s = series(&[(2 * M, 20.0), (8 * M, 30.0), (15 * M, 40.0)]);
        let b = aggregate(&s, Some(10.0), 0, 20 * M, 10 * M, &[Agg::Twa, Agg::Avg, Agg::Integral], i64::MAX);
        let twa = col(&b, Agg::Twa);
        assert_eq!(twa[0], Some((10.0 * 2.0 + 20.0 * 6.0 + 30.0 * 2.0) / 10.0));
        // Second bucket: 30 from 10 to 15 min, 40 from 15 to 20 min.
        assert_eq!(twa[1], Some((30.0 * 5.0 + 40.0 * 5.0) / 10.0));
        assert_eq!(col(&b, Agg::Avg), vec![Some(25.0), Some(40.0)]);
        assert_eq!(col(&b, Agg::Integral)[1], Some((30.0 * 5.0 + 40.0 * 5.0) * 60.0));
    }

    #[test]
    fn twa_without_prior_starts_at_first_sample_and_stops_at_now() {
        let s = series(&[(4 * M, 10.0), (6 * M, 20.0)]);
        let b = aggregate(&s, None, 0, 10 * M, 10 * M, &[Agg::Twa], 8 * M);
        // 10 for 2 min, 20 for 2 min (until now = 8 min).
        assert_eq!(col(&b, Agg::Twa)[0], Some(15.0));
    }

    #[test]
    fn bad_samples_leave_a_gap() {
        let mut s = series(&[(0, 10.0)]);
        s.push(5 * M, f64::NAN, 0x18);
        s.push(8 * M, 20.0, 0xC0);
        let b = aggregate(&s, None, 0, 10 * M, 10 * M, &[Agg::Twa, Agg::Count, Agg::Max], i64::MAX);
        assert_eq!(col(&b, Agg::Twa)[0], Some((10.0 * 5.0 + 20.0 * 2.0) / 7.0));
        assert_eq!(col(&b, Agg::Count)[0], Some(2.0));
        assert_eq!(col(&b, Agg::Max)[0], Some(20.0));
    }

    #[test]
    fn buckets_align_to_the_epoch_and_cover_the_range() {
        let s = series(&[(65 * M, 1.0)]);
        let b = aggregate(&s, None, 61 * M, 75 * M, 10 * M, &[Agg::Count, Agg::First], i64::MAX);
        assert_eq!(b.ts, vec![60 * M, 70 * M]);
        assert_eq!(col(&b, Agg::Count), vec![Some(1.0), Some(0.0)]);
        assert_eq!(col(&b, Agg::First), vec![Some(1.0), None]);
    }

    #[test]
    fn interpolation_linear_step_and_max_gap() {
        let s = series(&[(10 * M, 10.0), (20 * M, 20.0), (60 * M, 0.0)]);
        let (ts, lin) = interpolate(&s, Some((0, 0.0)), None, 0, 70 * M, 5 * M, Fill::Linear, 15 * M);
        assert_eq!(ts.len(), 14);
        assert_eq!(lin[0], Some(0.0)); // exactly on the prior sample
        assert_eq!(lin[1], Some(5.0)); // halfway between 0 @0 and 10 @10
        assert_eq!(lin[3], Some(15.0));
        assert_eq!(lin[5], None); // 20 -> 60 is a 40 min gap
        assert_eq!(lin[12], Some(0.0));
        assert_eq!(lin[13], None); // nothing after
        let (_, st) = interpolate(&s, None, None, 0, 70 * M, 5 * M, Fill::Step, 15 * M);
        assert_eq!(st[0], None);
        assert_eq!(st[3], Some(10.0));
        assert_eq!(st[7], Some(20.0)); // 35 min: 15 min after the sample at 20
        assert_eq!(st[8], None); // 40 min: 20 min old
    }

    #[test]
    fn m4_keeps_the_spike() {
        let mut rows: Vec<(i64, f64)> = (0..10_000).map(|i| (i * M, 20.0 + (i % 7) as f64 * 0.01)).collect();
        rows[4321].1 = 95.0;
        rows[7000].1 = -40.0;
        let s = series(&rows);
        let d = m4(&s, 0, 10_000 * M, 400);
        assert!(d.len() <= 400, "{}", d.len());
        assert!(d.value.contains(&95.0));
        assert!(d.value.contains(&-40.0));
        assert_eq!(d.ts.first(), Some(&0));
        assert_eq!(d.ts.last(), Some(&(9_999 * M)));
        assert!(d.ts.windows(2).all(|w| w[0] < w[1]));
    }

    /// Naive reference: evaluate the step function minute by minute in microsecond units.
    fn naive_twa(rows: &[(i64, f64)], prior: Option<f64>, a: i64, b: i64) -> Option<f64> {
        let mut area = 0.0;
        let mut cov = 0;
        let mut t = a;
        while t < b {
            let held = rows.iter().rev().find(|r| r.0 <= t).map(|r| r.1).or(prior);
            if let Some(v) = held {
                area += v;
                cov += 1;
            }
            t += 1;
        }
        (cov > 0).then(|| area / cov as f64)
    }

    proptest! {
        #[test]
        fn aggregates_match_a_naive_computation(
            mut ts in proptest::collection::btree_set(0i64..600, 0..40),
            vals in proptest::collection::vec(-100.0f64..100.0, 40),
            prior in proptest::option::of(-100.0f64..100.0),
            width in 1i64..200,
            from in 0i64..300,
            len in 1i64..300,
        ) {
            let to = from + len;
            ts.retain(|t| *t >= from && *t < to);
            let rows: Vec<(i64, f64)> = ts.iter().zip(vals.iter()).map(|(t, v)| (*t, *v)).collect();
            let s = series(&rows);
            let b = aggregate(&s, prior, from, to, width, &Agg::ALL, i64::MAX);
            for (k, &bs) in b.ts.iter().enumerate() {
                let (lo, hi) = (bs.max(from), (bs + width).min(to));
                let inside: Vec<f64> = rows.iter().filter(|r| r.0 >= lo && r.0 < hi).map(|r| r.1).collect();
                prop_assert_eq!(col(&b, Agg::Count)[k], Some(inside.len() as f64));
                prop_assert_eq!(col(&b, Agg::First)[k], inside.first().copied());
                prop_assert_eq!(col(&b, Agg::Last)[k], inside.last().copied());
                let mx = inside.iter().copied().fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
                prop_assert_eq!(col(&b, Agg::Max)[k], mx);
                if !inside.is_empty() {
                    let avg = inside.iter().sum::<f64>() / inside.len() as f64;
                    prop_assert!((col(&b, Agg::Avg)[k].unwrap() - avg).abs() < 1e-9);
                }
                let before: Vec<(i64, f64)> = rows.iter().copied().filter(|r| r.0 < hi).collect();
                let want = naive_twa(&before, prior, lo, hi);
                match (col(&b, Agg::Twa)[k], want) {
                    (Some(g), Some(w)) => prop_assert!((g - w).abs() < 1e-9, "bucket {} got {} want {}", k, g, w),
                    (g, w) => prop_assert_eq!(g, w),
                }
            }
        }

        #[test]
        fn merged_fine_buckets_equal_coarse_buckets(
            ts in proptest::collection::btree_set(0i64..6000, 0..60),
            vals in proptest::collection::vec(-100.0f64..100.0, 60),
            prior in proptest::option::of(-100.0f64..100.0),
            fine in 1i64..50,
            k in 1i64..8,
            from in 0i64..500,
            len in 1i64..5000,
        ) {
            // Rollups are fine buckets merged into coarse ones; the result must not depend on it.
            let to = from + len;
            let rows: Vec<(i64, f64)> = ts.iter().filter(|t| **t >= from && **t < to).zip(vals.iter()).map(|(t, v)| (*t, *v)).collect();
            let s = series(&rows);
            let coarse = fine * k;
            let (f0, fine_parts) = partials(&s, prior, from, to, fine, i64::MAX);
            let (c0, want) = partials(&s, prior, from, to, coarse, i64::MAX);
            let mut got = vec![Partial::default(); want.len()];
            for (i, p) in fine_parts.iter().enumerate() {
                let t = f0 + i as i64 * fine;
                got[((bucket_start(t, coarse) - c0) / coarse) as usize].merge(p);
            }
            for (g, w) in got.iter().zip(&want) {
                for a in Agg::ALL {
                    match (g.finish(a), w.finish(a)) {
                        (Some(x), Some(y)) => prop_assert!((x - y).abs() <= 1e-9 * (1.0 + y.abs()), "{:?}: {} vs {}", a, x, y),
                        (x, y) => prop_assert_eq!(x, y),
                    }
                }
            }
        }

        #[test]
        fn m4_keeps_min_max_first_last(vals in proptest::collection::vec(-1e6f64..1e6, 1..3000), max_points in 4usize..200) {
            let rows: Vec<(i64, f64)> = vals.iter().enumerate().map(|(i, v)| (i as i64 * 7, *v)).collect();
            let s = series(&rows);
            let to = rows.len() as i64 * 7;
            let d = m4(&s, 0, to, max_points);
            prop_assert!(d.len() <= max_points.max(4));
            let gmax = vals.iter().copied().fold(f64::MIN, f64::max);
            let gmin = vals.iter().copied().fold(f64::MAX, f64::min);
            prop_assert!(d.value.contains(&gmax) && d.value.contains(&gmin));
            prop_assert_eq!(d.ts[0], 0);
            prop_assert_eq!(*d.ts.last().unwrap(), (rows.len() as i64 - 1) * 7);
        }
    }
}
