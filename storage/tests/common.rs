use std::path::Path;
use std::sync::Arc;
use t3_core::clock::ManualClock;
use t3_core::config::Config;
use t3_storage::vfs::{RealFs, Vfs};
use t3_storage::{HistoryMode, HistoryRequest, Storage};

pub const MIN: i64 = 60_000_000;
pub const DAY: i64 = 86_400_000_000;
/// 2026-11-26T00:00:00Z
pub const T0: i64 = 1_795_651_200_000_000;

pub fn config(dir: &Path) -> Config {
    let mut c = Config::default();
    c.storage.data_dir = dir.to_owned();
    c.storage.flush_rows = 1_000;
    c.query.threads = 1;
    c.query.memory_limit_mb = 256;
    c
}

pub fn open(cfg: &Config, clock: &Arc<ManualClock>) -> Storage {
    open_with(cfg, clock, Arc::new(RealFs))
}

pub fn open_with(cfg: &Config, clock: &Arc<ManualClock>, vfs: Arc<dyn Vfs>) -> Storage {
    Storage::open(cfg, vfs, clock.clone()).expect("open storage")
}

/// Every raw row of one point as (ts, value, quality).
pub async fn raw(s: &Storage, point: u32, from: i64, to: i64) -> Vec<(i64, Option<f64>, u8)> {
    let r = s
        .history(HistoryRequest { points: vec![point], from, to, mode: HistoryMode::Raw, prior: false })
        .await
        .expect("history");
    let series = &r.series[0];
    let values = match &series.columns[0].1 {
        t3_storage::query::Column::F64(v) => v.clone(),
        _ => panic!("value column"),
    };
    let quality = match &series.columns[1].1 {
        t3_storage::query::Column::U8(v) => v.clone(),
        _ => panic!("quality column"),
    };
    series.ts.iter().zip(values).zip(quality).map(|((t, v), q)| (*t, v, q)).collect()
}

pub fn column(r: &t3_storage::SeriesResult, name: &str) -> Vec<Option<f64>> {
    match &r.columns.iter().find(|c| c.0 == name).expect("column").1 {
        t3_storage::query::Column::F64(v) => v.clone(),
        _ => panic!("not f64"),
    }
}

/// Number of live sample files (rollup files not counted).
pub fn file_count(s: &Storage) -> usize {
    s.live_files().iter().filter(|f| f.meta.table == t3_storage::manifest::Table::Samples).count()
}
