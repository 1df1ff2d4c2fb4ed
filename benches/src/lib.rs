//! t3-benches: the end-to-end benchmarks (`src/bin/*.rs`) and the pieces they share.
//!
//! # Data flow
//! A benchmark generates believable building data ([`datagen`], cached on disk by [`cache`]),
//! loads it into our storage ([`ours`], or a `t3000` process over HTTP: [`server`]) and into the
//! peers it is measured against ([`sqlite`]: T3000 WebView's storage; [`duck`]: a native DuckDB
//! table), asks each the same questions, and writes a Markdown report ([`report`]) of the figures
//! ([`stats`], [`sys`]) to `benches/results/`.
//!
//! # Layout
//! - `src/bin/`: `ingest`, `query`, `analytics`, `files`, `poll`, `bacnet`, `ws_fanout`, `webview_import`, `programs` (see the README's
//!   benchmark section for what each measures and the command that runs it).
//! - [`datagen`]: a deterministic, random-access generator of believable building data.
//! - [`cache`]: generated stores kept between runs, each with a marker file saying what built it.
//! - [`ours`]: pushing generated data through `t3_storage` with concurrent writers.
//! - [`sqlite`]: the T3000 WebView storage style (TRENDLOG_DATA / TRENDLOG_DATA_DETAIL).
//! - [`duck`]: a native DuckDB table fed by the Arrow appender.
//! - [`stats`], [`report`], [`sys`], [`args`]: percentiles, Markdown tables, RSS and disk usage,
//!   command-line parsing.
//! - [`server`]: HTTP requests to a `t3000` process, logging in, its CPU time and memory.

#![forbid(unsafe_code)]

pub mod datagen {
    //! Believable building-automation values, computed as a pure function of (point, minute) so any
    //! batch can be generated independently (and regenerated after a rejected write).
    //!
    //! Points are numbered 1..=P. Samples arrive time-major, as a poller delivers them: minute 0 of
    //! every point, then minute 1 of every point, and so on. Sample number `k` is point
    //! `k % P + 1` at minute `k / P`.
    //!
    //! Point kinds by `(id - 1) % 10`: 0-3 room temperature (18-26 C, daily cycle, occupancy,
    //! slow drift, 0.1 C resolution), 4 relative humidity (30-60 %), 5 CO2 (ppm), 6 valve
    //! position (0-100 %), 7 supply-air temperature, 8 fan status (digital 0/1 following the
    //! occupancy schedule), 9 alarm (digital, mostly 0). So 20 % of points are digital.
    //!
    //! The analytics profile ([`Workload::analytics`], used by `src/bin/analytics.rs`) numbers its
    //! kinds differently ([`Kind::of_analytics`]): each block of 10 points is a zone with 4 room
    //! temperatures, an occupancy sensor (digital 0/1), an electricity meter (power in kW), CO2, a
    //! valve position, a supply-air temperature and a fan status (digital).

    use t3_core::Sample;

    /// 2024-01-01T00:00:00Z (a Monday), in microseconds.
    pub const START_US: i64 = 1_704_067_200_000_000;
    pub const MINUTE_US: i64 = 60_000_000;
    pub const DAY_US: i64 = 1440 * MINUTE_US;
    const SEED: u64 = 0x7300_0B3C_4D17_2024;

    #[inline]
    pub fn splitmix64(mut x: u64) -> u64 {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^ (x >> 31)
    }

    #[inline]
    fn hash3(a: u64, b: u64, c: u64) -> u64 {
        splitmix64(a ^ splitmix64(b ^ splitmix64(c)))
    }

    /// Uniform in [0, 1).
    #[inline]
    fn unit(h: u64) -> f64 {
        (h >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Smooth noise in [-1, 1]: random knots every `period` minutes, smoothstep in between.
    #[inline]
    fn noise(stream: u64, point: u32, minute: u64, period: u64) -> f64 {
        let k = minute / period;
        let f = (minute % period) as f64 / period as f64;
        let a = unit(hash3(stream, point as u64, k)) * 2.0 - 1.0;
        let b = unit(hash3(stream, point as u64, k + 1)) * 2.0 - 1.0;
        let w = f * f * (3.0 - 2.0 * f);
        a + (b - a) * w
    }

    /// Rounds to `1 / per_unit` (10.0: one decimal), the resolution a controller reports; the
    /// division keeps the shortest decimal form (`20.2`, not `20.200000000000003`).
    #[inline]
    fn round_to(v: f64, per_unit: f64) -> f64 {
        (v * per_unit).round() / per_unit
    }

    /// What a point measures.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Kind {
        RoomTemp,
        Humidity,
        Co2,
        Valve,
        SupplyAir,
        Fan,
        Alarm,
        /// Occupancy sensor of a zone: digital 0/1, mostly 1 during occupied hours.
        Occupancy,
        /// Electrical power of a zone's meter, kW (0.01 kW resolution); its integral is energy.
        Power,
    }

    impl Kind {
        pub fn of(point: u32) -> Kind {
            match (point.wrapping_sub(1)) % 10 {
                0..=3 => Kind::RoomTemp,
                4 => Kind::Humidity,
                5 => Kind::Co2,
                6 => Kind::Valve,
                7 => Kind::SupplyAir,
                8 => Kind::Fan,
                _ => Kind::Alarm,
            }
        }

        /// The analytics profile's kinds by `(id - 1) % 10`: 0-3 room temperature, 4 occupancy,
        /// 5 power (kW), 6 CO2, 7 valve, 8 supply air, 9 fan status.
        pub fn of_analytics(point: u32) -> Kind {
            match (point.wrapping_sub(1)) % 10 {
                0..=3 => Kind::RoomTemp,
                4 => Kind::Occupancy,
                5 => Kind::Power,
                6 => Kind::Co2,
                7 => Kind::Valve,
                8 => Kind::SupplyAir,
                _ => Kind::Fan,
            }
        }

        pub fn is_digital(self) -> bool {
            matches!(self, Kind::Fan | Kind::Alarm | Kind::Occupancy)
        }
    }

    /// Which mix of point kinds a workload generates.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Profile {
        /// [`Kind::of`]: the ingest and query benchmarks.
        Classic,
        /// [`Kind::of_analytics`]: the analytics benchmark.
        Analytics,
    }

    /// P points sampled once a minute from [`START_US`].
    #[derive(Debug, Clone, Copy)]
    pub struct Workload {
        pub points: u32,
        pub profile: Profile,
    }

    impl Workload {
        pub fn new(points: u32) -> Self {
            assert!(points > 0, "at least one point");
            Workload { points, profile: Profile::Classic }
        }

        /// The analytics benchmark's mix of points ([`Kind::of_analytics`]).
        pub fn analytics(points: u32) -> Self {
            Workload { profile: Profile::Analytics, ..Workload::new(points) }
        }

        /// What `point` measures in this workload.
        pub fn kind(&self, point: u32) -> Kind {
            match self.profile {
                Profile::Classic => Kind::of(point),
                Profile::Analytics => Kind::of_analytics(point),
            }
        }

        /// Samples per day (P x 1440).
        pub fn per_day(&self) -> u64 {
            self.points as u64 * 1440
        }

        /// Timestamp of minute `minute`.
        pub fn ts(&self, minute: u64) -> i64 {
            START_US + minute as i64 * MINUTE_US
        }

        /// The end (exclusive) of the time covered by the first `n` samples.
        pub fn end_us(&self, n: u64) -> i64 {
            self.ts(n.div_ceil(self.points as u64))
        }

        /// Whether the building is occupied at `minute` for `point` (weekdays about 06:00-19:00,
        /// each point's schedule shifted by up to half an hour).
        #[inline]
        fn occupied(point: u32, minute: u64) -> bool {
            let day = minute / 1440;
            if day % 7 >= 5 {
                return false;
            }
            let shift = (splitmix64(SEED ^ point as u64) % 61) as i64 - 30;
            let m = (minute % 1440) as i64 - shift;
            (6 * 60..19 * 60).contains(&m)
        }

        /// The value of `point` at `minute`.
        pub fn value(&self, point: u32, minute: u64) -> f64 {
            let h = splitmix64(SEED.wrapping_add(point as u64));
            let offset = unit(h) * 2.0 - 1.0; // per-point, [-1, 1)
            let phase = unit(splitmix64(h)) * 0.6;
            let occ = Self::occupied(point, minute);
            let day_frac = (minute % 1440) as f64 / 1440.0;
            match self.kind(point) {
                Kind::RoomTemp => {
                    // Warmest mid-afternoon; set back at night and at weekends.
                    let solar = 0.9 * (std::f64::consts::TAU * (day_frac - 0.375 - phase * 0.1)).sin();
                    let v = 21.5
                        + 1.2 * offset
                        + solar
                        + if occ { 0.4 } else { -0.9 }
                        + 0.9 * noise(1, point, minute, 240)
                        + 0.25 * noise(2, point, minute, 17)
                        + 0.05 * (unit(hash3(3, point as u64, minute)) - 0.5);
                    round_to(v.clamp(18.0, 26.0), 10.0)
                }
                Kind::Humidity => {
                    let v =
                        45.0 + 4.0 * offset + 7.0 * noise(4, point, minute, 720) + 2.0 * noise(5, point, minute, 45);
                    round_to(v.clamp(30.0, 60.0), 10.0)
                }
                Kind::Co2 => {
                    let v = if occ {
                        650.0 + 150.0 * offset + 220.0 * noise(6, point, minute, 90)
                    } else {
                        430.0 + 20.0 * noise(7, point, minute, 180).abs()
                    };
                    round_to(v.max(400.0), 1.0)
                }
                Kind::Valve => {
                    let v = if occ {
                        45.0 + 40.0 * noise(8, point, minute, 30)
                    } else {
                        8.0 * noise(9, point, minute, 120)
                    };
                    round_to(v.clamp(0.0, 100.0), 10.0)
                }
                Kind::SupplyAir => {
                    let v = if occ {
                        14.0 + offset + 1.2 * noise(10, point, minute, 25)
                    } else {
                        19.5 + offset + 1.0 * noise(11, point, minute, 300)
                    };
                    round_to(v, 10.0)
                }
                Kind::Fan => {
                    // Follows occupancy, with the odd manual override.
                    let flip = unit(hash3(12, point as u64, minute / 60)) < 0.02;
                    f64::from(u8::from(occ != flip))
                }
                Kind::Alarm => f64::from(u8::from(unit(hash3(13, point as u64, minute / 30)) < 0.01)),
                Kind::Occupancy => {
                    // Per quarter hour: usually someone there when the building is open, rarely not.
                    let p = if occ { 0.85 } else { 0.03 };
                    f64::from(u8::from(unit(hash3(14, point as u64, minute / 15)) < p))
                }
                Kind::Power => {
                    // Base load 3-7 kW; lighting, plug loads and HVAC on top when occupied.
                    let base = 5.0 + 2.0 * offset;
                    let v = if occ {
                        base + 10.0
                            + 3.0 * noise(15, point, minute, 45)
                            + 1.5 * noise(16, point, minute, 7)
                            + 1.5 * (std::f64::consts::TAU * (day_frac - 0.3)).sin()
                    } else {
                        base + 0.8 * noise(17, point, minute, 120)
                    };
                    round_to(v.max(0.5), 100.0)
                }
            }
        }

        /// Sample number `k` in arrival order.
        #[inline]
        pub fn sample(&self, k: u64) -> Sample {
            let p = self.points as u64;
            let minute = k / p;
            let point = (k % p) as u32 + 1;
            Sample::good(point, self.ts(minute), self.value(point, minute))
        }

        /// Replaces `out` with samples `first .. first + n`.
        pub fn fill(&self, first: u64, n: usize, out: &mut Vec<Sample>) {
            out.clear();
            out.reserve(n);
            out.extend((first..first + n as u64).map(|k| self.sample(k)));
        }
    }

    /// Formats a timestamp the way T3000 stores `LoggingTime_Fmt`: `YYYY-MM-DD HH:MM:SS` (UTC).
    pub fn logging_time_fmt(ts_us: i64) -> String {
        chrono::DateTime::from_timestamp_micros(ts_us)
            .unwrap_or_default()
            .naive_utc()
            .format("%Y-%m-%d %H:%M:%S")
            .to_string()
    }

    /// Parses `YYYY-MM-DD HH:MM:SS` (UTC) into microseconds since the epoch.
    pub fn parse_logging_time(s: &str) -> Option<i64> {
        let b = s.as_bytes();
        if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<i64> {
            let mut v = 0i64;
            for &c in &b[r] {
                if !c.is_ascii_digit() {
                    return None;
                }
                v = v * 10 + i64::from(c - b'0');
            }
            Some(v)
        };
        let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
        // Days from civil (Howard Hinnant's algorithm).
        let y = if mo <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (mo + 9) % 12;
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        Some(((days * 86_400) + h * 3600 + mi * 60 + sec) * 1_000_000)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn time_text_round_trips() {
            for ts in [START_US, START_US + 90 * DAY_US + 59 * MINUTE_US, 951_782_400_000_000] {
                assert_eq!(parse_logging_time(&logging_time_fmt(ts)), Some(ts));
            }
        }

        #[test]
        fn values_are_believable() {
            let w = Workload::new(100);
            for k in 0..100 * 1440 * 8 {
                let s = w.sample(k);
                let v = s.value;
                match Kind::of(s.point_id.0) {
                    Kind::RoomTemp => assert!((18.0..=26.0).contains(&v), "{v}"),
                    Kind::Humidity => assert!((30.0..=60.0).contains(&v)),
                    Kind::Fan | Kind::Alarm => assert!(v == 0.0 || v == 1.0),
                    Kind::Valve => assert!((0.0..=100.0).contains(&v)),
                    _ => assert!(v.is_finite()),
                }
            }
            assert_eq!(w.sample(12_345).value, w.sample(12_345).value);
        }

        #[test]
        fn analytics_values_are_believable() {
            let w = Workload::analytics(100);
            let mut occupied = 0;
            for k in 0..100 * 1440 * 8 {
                let s = w.sample(k);
                let v = s.value;
                match Kind::of_analytics(s.point_id.0) {
                    Kind::RoomTemp => assert!((18.0..=26.0).contains(&v), "{v}"),
                    Kind::Occupancy | Kind::Fan => {
                        assert!(v == 0.0 || v == 1.0);
                        occupied += u64::from(v == 1.0);
                    }
                    Kind::Power => assert!((0.5..=30.0).contains(&v), "{v}"),
                    Kind::Valve => assert!((0.0..=100.0).contains(&v)),
                    _ => assert!(v.is_finite()),
                }
            }
            assert!(occupied > 0);
            // The classic profile is unchanged by the analytics one.
            assert_eq!(Workload::new(100).sample(4).value, Workload::new(100).sample(4).value);
            assert_eq!(Kind::of(5), Kind::Humidity);
        }
    }
}

/// Completion markers of cached stores: a store is reused only if its marker (`<path><suffix>`,
/// written last) exists and says it was built from the same inputs.
pub mod cache {
    use std::collections::HashMap;
    use std::path::{Path, PathBuf};

    fn marker(path: &Path, suffix: &str) -> PathBuf {
        let mut m = path.as_os_str().to_owned();
        m.push(suffix);
        PathBuf::from(m)
    }

    /// Reads the `key=value` lines of a store's marker.
    pub fn read_marker(path: &Path, suffix: &str) -> Option<HashMap<String, String>> {
        let text = std::fs::read_to_string(marker(path, suffix)).ok()?;
        Some(text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    pub fn write_marker(path: &Path, suffix: &str, fields: &[(&str, String)]) -> anyhow::Result<()> {
        let text: String = fields.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        std::fs::write(marker(path, suffix), text)?;
        Ok(())
    }

    /// Removes a store (a folder, or a database file with its journal files) and its marker.
    pub fn remove_store(path: &Path, suffix: &str) -> anyhow::Result<()> {
        let _ = std::fs::remove_file(marker(path, suffix));
        if path.is_dir() {
            std::fs::remove_dir_all(path)?;
        }
        for extra in ["", ".wal", "-wal", "-shm"] {
            let mut f = path.as_os_str().to_owned();
            f.push(extra);
            let f = PathBuf::from(f);
            if f.is_file() {
                std::fs::remove_file(&f)?;
            }
        }
        Ok(())
    }
}

pub mod stats {
    //! Percentiles over measured durations.

    /// Nearest-rank percentile of sorted values, `q` in [0, 1].
    pub fn percentile(sorted: &[f64], q: f64) -> f64 {
        if sorted.is_empty() {
            return f64::NAN;
        }
        let rank = (q * sorted.len() as f64).ceil() as usize;
        sorted[rank.clamp(1, sorted.len()) - 1]
    }

    /// Median (mean of the two middle values for an even count).
    pub fn median(sorted: &[f64]) -> f64 {
        let n = sorted.len();
        if n == 0 {
            return f64::NAN;
        }
        if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 }
    }

    /// Summary of repeated timings, in milliseconds.
    #[derive(Debug, Clone, Copy)]
    pub struct Summary {
        pub n: usize,
        pub min: f64,
        pub median: f64,
        pub p95: f64,
        pub max: f64,
    }

    impl Summary {
        pub fn of(mut ms: Vec<f64>) -> Summary {
            ms.sort_by(f64::total_cmp);
            Summary {
                n: ms.len(),
                min: ms.first().copied().unwrap_or(f64::NAN),
                median: median(&ms),
                p95: percentile(&ms, 0.95),
                max: ms.last().copied().unwrap_or(f64::NAN),
            }
        }
    }

    /// M4 downsampling of a time-sorted series, as `t3_storage::analytics::m4` does it: `[from, to)`
    /// in `max_points / 4` equal buckets, keeping each bucket's first, last, minimum and maximum
    /// row (each once). Series with at most `max_points` rows are returned as they are.
    pub fn m4(ts: &[i64], values: &[f64], from: i64, to: i64, max_points: usize) -> Vec<(i64, f64)> {
        if ts.len() <= max_points {
            return ts.iter().copied().zip(values.iter().copied()).collect();
        }
        let buckets = (max_points / 4).max(1) as i64;
        let mut out = Vec::with_capacity(max_points);
        let mut i = 0;
        let mut keep: Vec<usize> = Vec::with_capacity(4);
        while i < ts.len() {
            let b = bucket_of(ts[i], from, to, buckets);
            let start = i;
            let (mut lo, mut hi) = (start, start);
            while i < ts.len() && bucket_of(ts[i], from, to, buckets) == b {
                if values[i] < values[lo] {
                    lo = i;
                }
                if values[i] > values[hi] {
                    hi = i;
                }
                i += 1;
            }
            keep.clear();
            keep.extend([start, i - 1, lo, hi]);
            keep.sort_unstable();
            keep.dedup();
            out.extend(keep.iter().map(|&k| (ts[k], values[k])));
        }
        out
    }

    /// The bucket of `t` when `[from, to)` is split into `buckets` equal parts.
    #[inline]
    pub fn bucket_of(t: i64, from: i64, to: i64, buckets: i64) -> i64 {
        let span = (to - from).max(1) as i128;
        (((t - from) as i128 * buckets as i128) / span).clamp(0, buckets as i128 - 1) as i64
    }

    /// A check value for a downsampled series: the sum over buckets of (minimum + maximum). Any
    /// correct M4 (or min/max per bucket) answer over the same rows gives the same number.
    pub fn minmax_checksum(rows: impl IntoIterator<Item = (i64, f64)>, from: i64, to: i64, buckets: i64) -> f64 {
        let mut mm: std::collections::BTreeMap<i64, (f64, f64)> = std::collections::BTreeMap::new();
        for (t, v) in rows {
            let e = mm.entry(bucket_of(t, from, to, buckets)).or_insert((v, v));
            e.0 = e.0.min(v);
            e.1 = e.1.max(v);
        }
        mm.values().map(|(a, b)| a + b).sum()
    }

    /// Runs `f` once to warm up, then `runs` times, timing each run. Returns the summary and the
    /// value of the last run.
    pub fn time_runs<T>(runs: usize, mut f: impl FnMut() -> anyhow::Result<T>) -> anyhow::Result<(Summary, T)> {
        let mut last = f()?;
        let mut ms = Vec::with_capacity(runs);
        for _ in 0..runs {
            let t = std::time::Instant::now();
            last = f()?;
            ms.push(t.elapsed().as_secs_f64() * 1e3);
        }
        Ok((Summary::of(ms), last))
    }
}

/// Measurements a benchmark's child process hands its parent as `RESULT<TAB>key<TAB>value` lines.
pub mod measured {
    use std::collections::BTreeMap;

    /// One run's measurements, by name.
    pub type Measured = BTreeMap<String, String>;

    pub fn put(m: &mut Measured, k: &str, v: impl ToString) {
        m.insert(k.to_string(), v.to_string());
    }

    /// A number, NaN when absent.
    pub fn get_f(m: &Measured, k: &str) -> f64 {
        m.get(k).and_then(|v| v.parse().ok()).unwrap_or(f64::NAN)
    }

    /// A count, 0 when absent.
    pub fn get_u(m: &Measured, k: &str) -> u64 {
        m.get(k).and_then(|v| v.parse().ok()).unwrap_or(0)
    }

    /// The child's side: prints `m` as `RESULT` lines on standard output.
    pub fn print(m: &Measured) {
        for (k, v) in m {
            println!("RESULT\t{k}\t{v}");
        }
    }

    /// The parent's side: runs the child `cmd` (`what` names it in errors), its standard error passed
    /// through, and reads what it measured from its `RESULT` lines.
    pub fn run_child(cmd: &mut std::process::Command, what: &str) -> anyhow::Result<Measured> {
        use anyhow::Context;
        let out = cmd
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .output()
            .with_context(|| format!("run the {what}"))?;
        if !out.status.success() {
            anyhow::bail!("the {what} failed ({}); its output:\n{}", out.status, String::from_utf8_lossy(&out.stdout));
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("RESULT\t")?.split_once('\t'))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect())
    }
}

pub mod report {
    //! Markdown tables and number formatting.

    use std::path::PathBuf;

    /// A Markdown table whose columns are padded for reading in a terminal.
    #[derive(Debug, Default)]
    pub struct Table {
        header: Vec<String>,
        rows: Vec<Vec<String>>,
    }

    impl Table {
        pub fn new(header: &[&str]) -> Table {
            Table { header: header.iter().map(|s| s.to_string()).collect(), rows: Vec::new() }
        }

        pub fn row(&mut self, cells: Vec<String>) {
            self.rows.push(cells);
        }

        pub fn render(&self) -> String {
            let cols = self.header.len();
            let mut width: Vec<usize> = self.header.iter().map(|h| h.chars().count().max(3)).collect();
            for r in &self.rows {
                for (i, c) in r.iter().enumerate().take(cols) {
                    width[i] = width[i].max(c.chars().count());
                }
            }
            let line = |cells: &[String]| {
                let mut s = String::from("|");
                for (i, w) in width.iter().enumerate() {
                    let c = cells.get(i).map(String::as_str).unwrap_or("");
                    let pad = w - c.chars().count();
                    // First column left-aligned, the others right-aligned (numbers).
                    if i == 0 {
                        s.push_str(&format!(" {c}{} |", " ".repeat(pad)));
                    } else {
                        s.push_str(&format!(" {}{c} |", " ".repeat(pad)));
                    }
                }
                s.push('\n');
                s
            };
            let mut out = line(&self.header);
            out.push('|');
            for (i, w) in width.iter().enumerate() {
                if i == 0 {
                    out.push_str(&format!(" {} |", "-".repeat(*w)));
                } else {
                    out.push_str(&format!(" {}: |", "-".repeat(w - 1)));
                }
            }
            out.push('\n');
            for r in &self.rows {
                out.push_str(&line(r));
            }
            out
        }
    }

    /// `20,000,000`.
    pub fn count(n: u64) -> String {
        let s = n.to_string();
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        out
    }

    /// `2,345,678 /s`.
    pub fn rate(per_sec: f64) -> String {
        if !per_sec.is_finite() {
            return "n/a".into();
        }
        format!("{} /s", count(per_sec.round() as u64))
    }

    /// Milliseconds with sensible precision.
    pub fn ms(v: f64) -> String {
        if !v.is_finite() {
            "n/a".into()
        } else if v < 1.0 {
            format!("{v:.3} ms")
        } else if v < 100.0 {
            format!("{v:.2} ms")
        } else {
            format!("{v:.0} ms")
        }
    }

    /// Microseconds shown as milliseconds.
    pub fn us_as_ms(us: u64) -> String {
        ms(us as f64 / 1e3)
    }

    pub fn bytes(b: u64) -> String {
        const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
        let mut v = b as f64;
        let mut u = 0;
        while v >= 1024.0 && u < UNITS.len() - 1 {
            v /= 1024.0;
            u += 1;
        }
        if u == 0 { format!("{b} B") } else { format!("{v:.1} {}", UNITS[u]) }
    }

    /// `a / b` as `12.3x`.
    pub fn ratio(a: f64, b: f64) -> String {
        if !(a.is_finite() && b.is_finite()) || b == 0.0 {
            return "n/a".into();
        }
        let r = a / b;
        if r >= 100.0 {
            format!("{r:.0}x")
        } else if r >= 10.0 {
            format!("{r:.1}x")
        } else {
            format!("{r:.2}x")
        }
    }

    pub fn pass(ok: bool) -> String {
        if ok { "PASS".into() } else { "FAIL".into() }
    }

    /// `benches/results/<name>.md`.
    pub fn results_path(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("results").join(format!("{name}.md"))
    }

    /// Writes the report to `benches/results/<name>.md` and returns the path.
    pub fn write_results(name: &str, markdown: &str) -> anyhow::Result<PathBuf> {
        let path = results_path(name);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&path, markdown)?;
        Ok(path)
    }

    /// The command line this process was started with (program name shortened).
    pub fn command_line() -> String {
        let mut args: Vec<String> = std::env::args().collect();
        if let Some(first) = args.first_mut()
            && let Some(name) = std::path::Path::new(first).file_name()
        {
            *first = name.to_string_lossy().into_owned();
        }
        args.join(" ")
    }
}

pub mod sys {
    //! Process memory, machine description, disk usage.

    use std::path::Path;

    fn status_kb(field: &str) -> Option<u64> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        status.lines().find_map(|l| {
            let rest = l.strip_prefix(field)?.strip_prefix(':')?;
            rest.trim().trim_end_matches("kB").trim().parse().ok()
        })
    }

    /// Peak resident set size of this process so far (VmHWM), in bytes.
    pub fn peak_rss() -> u64 {
        status_kb("VmHWM").unwrap_or(0) * 1024
    }

    /// Current resident set size (VmRSS), in bytes.
    pub fn current_rss() -> u64 {
        status_kb("VmRSS").unwrap_or(0) * 1024
    }

    /// Sum of the sizes of all files under `path` (or of the file itself).
    pub fn disk_usage(path: &Path) -> u64 {
        let Ok(meta) = std::fs::symlink_metadata(path) else { return 0 };
        if meta.is_file() {
            return meta.len();
        }
        if !meta.is_dir() {
            return 0;
        }
        let Ok(entries) = std::fs::read_dir(path) else { return 0 };
        entries.flatten().map(|e| disk_usage(&e.path())).sum()
    }

    /// Number of files under `path` whose name ends with `suffix`.
    pub fn count_files(path: &Path, suffix: &str) -> usize {
        let Ok(entries) = std::fs::read_dir(path) else { return 0 };
        entries
            .flatten()
            .map(|e| {
                let p = e.path();
                if p.is_dir() { count_files(&p, suffix) } else { usize::from(p.to_string_lossy().ends_with(suffix)) }
            })
            .sum()
    }

    /// One line describing the machine: CPU model, cores, memory, kernel.
    pub fn machine() -> String {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
            })
            .unwrap_or_else(|| "unknown CPU".into());
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
        let mem = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("MemTotal"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            })
            .map(|kb| format!("{:.1} GiB RAM", kb as f64 / 1024.0 / 1024.0))
            .unwrap_or_default();
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        format!("{cpu}, {cores} cores, {mem}, Linux {}", kernel.trim())
    }

    /// The 1, 5 and 15 minute load averages, as `/proc/loadavg` shows them.
    pub fn loadavg() -> String {
        std::fs::read_to_string("/proc/loadavg")
            .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|_| "?".into())
    }

    /// `$HOME/.cache/t3000/bench-data`.
    pub fn default_work_dir() -> std::path::PathBuf {
        let home = std::env::var_os("HOME").map(std::path::PathBuf::from).unwrap_or_else(std::env::temp_dir);
        home.join(".cache/t3000/bench-data")
    }
}

pub mod args {
    //! `--key value`, `--key=value` and `--flag` arguments.

    use anyhow::{Context, bail};
    use std::collections::HashMap;
    use std::str::FromStr;

    #[derive(Debug, Default)]
    pub struct Args {
        values: HashMap<String, String>,
        flags: Vec<String>,
    }

    impl Args {
        /// Parses `std::env::args()`. `flags` are the options that take no value; `keys` the ones
        /// that do. Anything else is an error that prints `usage`.
        pub fn parse(keys: &[&str], flags: &[&str], usage: &str) -> anyhow::Result<Args> {
            let mut out = Args::default();
            let mut it = std::env::args().skip(1);
            while let Some(a) = it.next() {
                if a == "-h" || a == "--help" {
                    println!("{usage}");
                    std::process::exit(0);
                }
                let Some(name) = a.strip_prefix("--") else { bail!("unexpected argument `{a}`\n\n{usage}") };
                let (name, inline) = match name.split_once('=') {
                    Some((n, v)) => (n.to_string(), Some(v.to_string())),
                    None => (name.to_string(), None),
                };
                if flags.contains(&name.as_str()) {
                    out.flags.push(name);
                } else if keys.contains(&name.as_str()) {
                    let v = match inline {
                        Some(v) => v,
                        None => it.next().with_context(|| format!("--{name} needs a value"))?,
                    };
                    out.values.insert(name, v);
                } else {
                    bail!("unknown option `--{name}`\n\n{usage}");
                }
            }
            Ok(out)
        }

        pub fn get<T: FromStr>(&self, key: &str, default: T) -> anyhow::Result<T>
        where
            T::Err: std::fmt::Display,
        {
            Ok(self.opt(key)?.unwrap_or(default))
        }

        pub fn opt<T: FromStr>(&self, key: &str) -> anyhow::Result<Option<T>>
        where
            T::Err: std::fmt::Display,
        {
            match self.values.get(key) {
                None => Ok(None),
                // `20_000_000` is accepted for numbers.
                Some(v) => match v.parse() {
                    Ok(x) => Ok(Some(x)),
                    Err(e) => v.replace('_', "").parse().map(Some).map_err(|_| anyhow::anyhow!("--{key} {v}: {e}")),
                },
            }
        }

        pub fn string(&self, key: &str) -> Option<String> {
            self.values.get(key).cloned()
        }

        pub fn flag(&self, name: &str) -> bool {
            self.flags.iter().any(|f| f == name)
        }
    }
}

pub mod ours {
    //! Pushing generated samples through `t3_storage`.

    use crate::datagen::Workload;
    use anyhow::Context;
    use hdrhistogram::Histogram;
    use std::path::Path;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};
    use t3_core::clock::SystemClock;
    use t3_core::config::Config;
    use t3_storage::Storage;
    use t3_storage::vfs::RealFs;

    /// The default configuration with the data directory set.
    pub fn config(data_dir: &Path) -> Config {
        let mut cfg = Config::default();
        cfg.storage.data_dir = data_dir.to_path_buf();
        cfg
    }

    pub fn open(data_dir: &Path) -> anyhow::Result<Storage> {
        Storage::open(&config(data_dir), Arc::new(RealFs), Arc::new(SystemClock))
            .with_context(|| format!("open storage in {}", data_dir.display()))
    }

    /// Histogram of per-batch ack latencies in microseconds.
    pub fn latency_histogram() -> Histogram<u64> {
        Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
    }

    /// What [`ingest`] measured.
    #[derive(Debug)]
    pub struct IngestRun {
        /// Ack latency per batch (first attempt to acknowledgement), microseconds.
        pub latency_us: Histogram<u64>,
        /// Writes refused with `Backlog` (the flusher was behind) and retried.
        pub backlog_rejections: u64,
    }

    /// What to do when the store refuses a batch because too much is waiting for Parquet.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum OnBacklog {
        /// Wait briefly for the background flusher and retry.
        Wait,
        /// Persist ourselves (no background flusher running) and retry.
        Flush,
    }

    /// Ingests samples `first .. first + count` of `wl` in batches of `batch` with `writers`
    /// concurrent tasks, each awaiting its acknowledgement before generating its next batch.
    /// Batches are handed out in order from a shared counter.
    pub async fn ingest(
        storage: &Storage,
        wl: Workload,
        first: u64,
        count: u64,
        batch: usize,
        writers: usize,
        on_backlog: OnBacklog,
    ) -> anyhow::Result<IngestRun> {
        let batches = count.div_ceil(batch as u64);
        let next = Arc::new(AtomicU64::new(0));
        let hist = Arc::new(Mutex::new(latency_histogram()));
        let rejections = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for _ in 0..writers.max(1) {
            let (storage, next, hist, rejections) = (storage.clone(), next.clone(), hist.clone(), rejections.clone());
            tasks.push(tokio::spawn(async move {
                let mut local = latency_histogram();
                loop {
                    let b = next.fetch_add(1, Ordering::Relaxed);
                    if b >= batches {
                        break;
                    }
                    let start = first + b * batch as u64;
                    let n = (first + count - start).min(batch as u64) as usize;
                    let mut samples = Vec::new();
                    wl.fill(start, n, &mut samples);
                    let t = Instant::now();
                    loop {
                        match storage.ingest(samples).await {
                            Ok(()) => break,
                            Err(t3_storage::Error::Backlog { .. }) => {
                                rejections.fetch_add(1, Ordering::Relaxed);
                                match on_backlog {
                                    OnBacklog::Wait => tokio::time::sleep(Duration::from_millis(2)).await,
                                    OnBacklog::Flush => storage.flush().await?,
                                }
                                // The batch was consumed; the generator is deterministic.
                                samples = Vec::new();
                                wl.fill(start, n, &mut samples);
                            }
                            Err(e) => return Err(anyhow::Error::new(e).context("ingest")),
                        }
                    }
                    local.saturating_record(t.elapsed().as_micros() as u64);
                }
                hist.lock().expect("histogram lock").add(&local).expect("same bounds");
                Ok::<(), anyhow::Error>(())
            }));
        }
        for t in tasks {
            t.await.context("writer task panicked")??;
        }
        let latency_us = hist.lock().expect("histogram lock").clone();
        Ok(IngestRun { latency_us, backlog_rejections: rejections.load(Ordering::Relaxed) })
    }
}

pub mod sqlite {
    //! The storage style of T3000 WebView: SQLite with a parent table per point
    //! (`TRENDLOG_DATA`) and one row per value in `TRENDLOG_DATA_DETAIL`, values and times as text.

    use crate::datagen::{Workload, logging_time_fmt};
    use rusqlite::{Connection, params};
    use std::fmt::Write as _;
    use std::path::Path;

    /// Which indexes `TRENDLOG_DATA_DETAIL` gets.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Indexes {
        /// Only (ParentId, LoggingTime_Fmt), which the history queries use.
        Minimal,
        /// T3000 WebView's full set: (ParentId), (LoggingTime_Fmt DESC),
        /// (ParentId, LoggingTime_Fmt DESC), (LoggingTime_Fmt, ParentId).
        T3000,
    }

    impl std::str::FromStr for Indexes {
        type Err = String;
        fn from_str(s: &str) -> Result<Self, String> {
            match s {
                "minimal" => Ok(Indexes::Minimal),
                "t3000" => Ok(Indexes::T3000),
                _ => Err("expected minimal or t3000".into()),
            }
        }
    }

    /// The `synchronous` pragma.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Sync {
        Normal,
        Full,
    }

    impl Sync {
        pub fn name(self) -> &'static str {
            match self {
                Sync::Normal => "NORMAL",
                Sync::Full => "FULL",
            }
        }
    }

    impl std::str::FromStr for Sync {
        type Err = String;
        fn from_str(s: &str) -> Result<Self, String> {
            match s.to_ascii_lowercase().as_str() {
                "normal" => Ok(Sync::Normal),
                "full" => Ok(Sync::Full),
                _ => Err("expected normal or full".into()),
            }
        }
    }

    /// SQLite page cache per connection.
    pub const CACHE_MIB: u64 = 256;

    /// Opens `path` in WAL mode with the given `synchronous` level and a generous page cache.
    pub fn open(path: &Path, sync: Sync) -> anyhow::Result<Connection> {
        let conn = Connection::open(path)?;
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = {};
             PRAGMA cache_size = -{};
             PRAGMA temp_store = MEMORY;",
            sync.name(),
            CACHE_MIB * 1024
        ))?;
        Ok(conn)
    }

    /// Creates the two tables (without the detail indexes, see [`create_indexes`]) and one parent
    /// row per point. Returns the parent id of each point (index = point id - 1).
    pub fn create_schema(conn: &Connection, points: u32) -> anyhow::Result<Vec<i64>> {
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS TRENDLOG_DATA (
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 SerialNumber INTEGER NOT NULL,
                 PanelId INTEGER NOT NULL,
                 PointId TEXT NOT NULL,
                 PointIndex INTEGER NOT NULL,
                 PointType TEXT NOT NULL,
                 Digital_Analog TEXT,
                 Units TEXT,
                 UNIQUE(SerialNumber, PanelId, PointId, PointIndex, PointType)
             );
             CREATE TABLE IF NOT EXISTS TRENDLOG_DATA_DETAIL (
                 id INTEGER PRIMARY KEY,
                 ParentId INTEGER NOT NULL,
                 Value TEXT NOT NULL,
                 LoggingTime_Fmt TEXT NOT NULL
             );",
        )?;
        let tx = conn.unchecked_transaction()?;
        let mut ids = Vec::with_capacity(points as usize);
        {
            let mut stmt = tx.prepare(
                "INSERT INTO TRENDLOG_DATA (SerialNumber, PanelId, PointId, PointIndex, PointType, Digital_Analog, Units)
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
            )?;
            for p in 1..=points {
                // 256 points per panel: IN1-64, OUT1-64, VAR1-128.
                let device = (p - 1) / 256;
                let i = (p - 1) % 256;
                let (ty, prefix, index) = match i {
                    0..=63 => ("INPUT", "IN", i + 1),
                    64..=127 => ("OUTPUT", "OUT", i - 63),
                    _ => ("VARIABLE", "VAR", i - 127),
                };
                let kind = crate::datagen::Kind::of(p);
                stmt.execute(params![
                    237_000 + device,
                    device + 1,
                    format!("{prefix}{index}"),
                    index,
                    ty,
                    if kind.is_digital() { "0" } else { "1" },
                    if kind.is_digital() { "" } else { "C" },
                ])?;
                ids.push(tx.last_insert_rowid());
            }
        }
        tx.commit()?;
        Ok(ids)
    }

    /// Creates the indexes of `TRENDLOG_DATA_DETAIL`.
    pub fn create_indexes(conn: &Connection, indexes: Indexes) -> anyhow::Result<()> {
        conn.execute_batch(
            "CREATE INDEX IF NOT EXISTS IDX_TRENDLOG_DETAIL_PARENT_TIME
                 ON TRENDLOG_DATA_DETAIL(ParentId, LoggingTime_Fmt);",
        )?;
        if indexes == Indexes::T3000 {
            conn.execute_batch(
                "CREATE INDEX IF NOT EXISTS IDX_TRENDLOG_DETAIL_PARENT ON TRENDLOG_DATA_DETAIL(ParentId);
                 CREATE INDEX IF NOT EXISTS IDX_TRENDLOG_DETAIL_TIME_FMT ON TRENDLOG_DATA_DETAIL(LoggingTime_Fmt DESC);
                 CREATE INDEX IF NOT EXISTS IDX_TRENDLOG_DETAIL_TIME_RANGE ON TRENDLOG_DATA_DETAIL(LoggingTime_Fmt, ParentId);",
            )?;
        }
        Ok(())
    }

    /// Inserts samples `first .. first + n` in one transaction, values and times as text.
    pub fn insert_batch(conn: &Connection, parents: &[i64], wl: &Workload, first: u64, n: u64) -> anyhow::Result<()> {
        let tx = conn.unchecked_transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO TRENDLOG_DATA_DETAIL (ParentId, Value, LoggingTime_Fmt) VALUES (?, ?, ?)",
            )?;
            let mut value = String::new();
            let mut time_ts = i64::MIN;
            let mut time = String::new();
            for k in first..first + n {
                let s = wl.sample(k);
                if s.ts != time_ts {
                    time_ts = s.ts;
                    time = logging_time_fmt(s.ts);
                }
                value.clear();
                let _ = write!(value, "{}", s.value);
                stmt.execute(params![parents[s.point_id.0 as usize - 1], value, time])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Database file plus its `-wal` and `-shm` companions.
    pub fn files_size(db: &Path) -> u64 {
        let mut total = crate::sys::disk_usage(db);
        for suffix in ["-wal", "-shm"] {
            let mut p = db.as_os_str().to_owned();
            p.push(suffix);
            total += crate::sys::disk_usage(Path::new(&p));
        }
        total
    }
}

pub mod duck {
    //! A native DuckDB table fed through the Arrow appender.

    use crate::datagen::Workload;
    use arrow::array::{Float64Array, TimestampMicrosecondArray, UInt8Array, UInt32Array};
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use arrow::record_batch::RecordBatch;
    use duckdb::Connection;
    use std::sync::Arc;

    pub const CREATE: &str =
        "CREATE TABLE IF NOT EXISTS samples (point_id UINTEGER, ts TIMESTAMP, value DOUBLE, quality UTINYINT)";

    /// Appends the workload's first `days` days to `samples`, in batches of `batch_rows`, one
    /// commit per day; `each_day` is called after each.
    pub fn append_days(
        conn: &Connection,
        wl: &Workload,
        days: u32,
        batch_rows: u64,
        mut each_day: impl FnMut(u32),
    ) -> anyhow::Result<()> {
        let mut app = conn.appender("samples")?;
        for d in 0..days {
            let first = d as u64 * wl.per_day();
            let end = first + wl.per_day();
            let mut k = first;
            while k < end {
                let n = (end - k).min(batch_rows);
                app.append_record_batch(batch(wl, k, n))?;
                k += n;
            }
            app.flush()?;
            each_day(d);
        }
        Ok(())
    }

    /// Samples `first .. first + n` as an Arrow batch matching [`CREATE`].
    pub fn batch(wl: &Workload, first: u64, n: u64) -> RecordBatch {
        let mut p = Vec::with_capacity(n as usize);
        let mut t = Vec::with_capacity(n as usize);
        let mut v = Vec::with_capacity(n as usize);
        let mut q = Vec::with_capacity(n as usize);
        for k in first..first + n {
            let s = wl.sample(k);
            p.push(s.point_id.0);
            t.push(s.ts);
            v.push(s.value);
            q.push(s.quality.0);
        }
        let schema = Schema::new(vec![
            Field::new("point_id", DataType::UInt32, false),
            Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, None), false),
            Field::new("value", DataType::Float64, false),
            Field::new("quality", DataType::UInt8, false),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(UInt32Array::from(p)),
                Arc::new(TimestampMicrosecondArray::from(t)),
                Arc::new(Float64Array::from(v)),
                Arc::new(UInt8Array::from(q)),
            ],
        )
        .expect("columns match the schema")
    }

    pub fn open(path: &std::path::Path) -> anyhow::Result<Connection> {
        let conn = Connection::open(path)?;
        conn.execute_batch(CREATE)?;
        Ok(conn)
    }

    /// Database file plus its `.wal`.
    pub fn files_size(db: &std::path::Path) -> u64 {
        let mut p = db.as_os_str().to_owned();
        p.push(".wal");
        crate::sys::disk_usage(db) + crate::sys::disk_usage(std::path::Path::new(&p))
    }
}

pub mod server {
    //! Driving a `t3000` process from a benchmark: plain HTTP/1.1 requests (usable from any thread,
    //! no runtime), logging in, and the process's CPU time and memory from /proc.

    use anyhow::Context;
    use std::io::{Read, Write};
    use std::process::Command;
    use std::time::Duration;

    /// The `admin` password of the benchmarks' servers (set with `[auth] admin_password`).
    pub const ADMIN_PASSWORD: &str = "bench-admin-password";

    /// Microseconds since the Unix epoch.
    pub fn now_us() -> i64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
    }

    /// One HTTP/1.1 request with `Connection: close`; returns the status and the body.
    pub fn http(
        addr: &str,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> anyhow::Result<(u16, String)> {
        let mut s = std::net::TcpStream::connect(addr).with_context(|| format!("connect to {addr}"))?;
        s.set_read_timeout(Some(Duration::from_secs(60)))?;
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        if let Some(t) = token {
            req.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        match body {
            Some(b) => {
                req.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}", b.len()))
            }
            None => req.push_str("\r\n"),
        }
        s.write_all(req.as_bytes())?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf)?;
        let text = String::from_utf8_lossy(&buf).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").context("no HTTP header")?;
        let status: u16 = head.split_whitespace().nth(1).context("no status")?.parse()?;
        let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
            let mut out = String::new();
            let mut rest = body;
            while let Some((size, after)) = rest.split_once("\r\n") {
                let n = usize::from_str_radix(size.split(';').next().unwrap_or("0").trim(), 16)?;
                if n == 0 {
                    break;
                }
                out.push_str(after.get(..n).context("short chunk")?);
                rest = after.get(n + 2..).unwrap_or("");
            }
            out
        } else {
            body.to_owned()
        };
        Ok((status, body))
    }

    /// Logs in as `admin` with [`ADMIN_PASSWORD`]; returns the bearer token.
    pub fn login(addr: &str) -> anyhow::Result<String> {
        let body = serde_json::json!({ "username": "admin", "password": ADMIN_PASSWORD }).to_string();
        let (status, reply) = http(addr, None, "POST", "/api/t3000/auth/login", Some(&body))?;
        anyhow::ensure!(status == 200, "POST /api/t3000/auth/login: {status} {reply}");
        let v: serde_json::Value = serde_json::from_str(&reply)?;
        Ok(v["token"].as_str().context("no token in the login reply")?.to_owned())
    }

    /// Clock ticks per second (`getconf CLK_TCK`).
    pub fn clk_tck() -> f64 {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse::<f64>().ok())
            .filter(|&t| t > 0.0)
            .unwrap_or(100.0)
    }

    /// User plus system CPU time of a process (all its threads), or of one task
    /// (`PID/task/TID`), in clock ticks.
    pub fn cpu_ticks(pid: &str) -> anyhow::Result<u64> {
        let stat =
            std::fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("read /proc/{pid}/stat"))?;
        // Fields after the command name (which may hold spaces) start at field 3 (state).
        let rest = stat.rsplit_once(')').map(|(_, r)| r).context("malformed stat")?;
        let f: Vec<&str> = rest.split_whitespace().collect();
        let utime: u64 = f.get(11).context("utime")?.parse()?;
        let stime: u64 = f.get(12).context("stime")?.parse()?;
        Ok(utime + stime)
    }

    /// A string as a TOML (and JSON) string literal.
    pub fn toml_str(s: &str) -> String {
        serde_json::Value::String(s.to_owned()).to_string()
    }

    /// A running `t3000 serve`: started with a configuration file, stopped with SIGTERM (the
    /// server persists its buffer and exits; killed after 60 s) when dropped.
    #[derive(Debug)]
    pub struct Serve {
        child: std::process::Child,
        /// `127.0.0.1:PORT`.
        pub addr: String,
        /// The process id, as /proc names it.
        pub pid: String,
        log: std::path::PathBuf,
    }

    impl Serve {
        /// Starts `bin serve --config <config>`, its standard error into `log`; returns once it
        /// listens.
        pub fn start(bin: &std::path::Path, config: &std::path::Path, log: &std::path::Path) -> anyhow::Result<Serve> {
            use std::io::BufRead;
            let mut child = Command::new(bin)
                .arg("serve")
                .arg("--config")
                .arg(config)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::fs::File::create(log)?)
                .spawn()
                .with_context(|| {
                    format!("start {} (build it with `cargo build --release --bin t3000`)", bin.display())
                })?;
            let pid = child.id().to_string();
            let mut out = std::io::BufReader::new(child.stdout.take().context("server stdout")?);
            let mut line = String::new();
            out.read_line(&mut line)?;
            // Whatever else it prints is read and dropped, so it never writes into a closed pipe.
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut out, &mut std::io::sink());
            });
            let mut serve = Serve { child, addr: String::new(), pid, log: log.to_owned() };
            match line.trim().strip_prefix("t3000 listening on http://") {
                Some(addr) => serve.addr = addr.to_owned(),
                None => anyhow::bail!("the server did not start; its log:\n{}", serve.log_tail()),
            }
            Ok(serve)
        }

        /// The last 20 lines of its log.
        pub fn log_tail(&self) -> String {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(20)..].join("\n")
        }
    }

    impl Drop for Serve {
        fn drop(&mut self) {
            let _ = Command::new("kill").args(["-TERM", &self.pid]).status();
            let t = std::time::Instant::now();
            while t.elapsed() < Duration::from_secs(60) {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    /// A `kB` field of /proc/PID/status (`VmRSS`, `VmHWM`), in bytes; 0 when unreadable.
    pub fn status_bytes(pid: &str, field: &str) -> u64 {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines().find_map(|l| {
                    let rest = l.strip_prefix(field)?.strip_prefix(':')?;
                    rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok()
                })
            })
            .unwrap_or(0)
            * 1024
    }
}
