//! What a query is asked and what it answers.

use crate::buffer::DAY_US;
use crate::query::analytics::{Agg, Fill};
use serde::Serialize;

/// How far back the value in force at the start of a range is looked for.
pub const PRIOR_LOOKBACK_US: i64 = 7 * DAY_US;

/// What a history query returns for its points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum HistoryMode {
    /// Every row.
    Raw,
    /// Bucketed aggregates.
    Aggregate { bucket_us: i64, aggs: Vec<Agg> },
    /// Values on a regular grid.
    Interpolate { step_us: i64, fill: Fill, max_gap_us: i64 },
    /// At most `max_points` rows per series, keeping each bucket's first, last, min and max.
    Downsample { max_points: usize },
}

/// A history request: several points, one time range `[from, to)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRequest {
    pub points: Vec<u32>,
    pub from: i64,
    pub to: i64,
    pub mode: HistoryMode,
    /// Also answer each point's last row before `from` (looked up to [`PRIOR_LOOKBACK_US`]
    /// back): the value in force where a chart starts. Raw and downsampled rows only.
    pub prior: bool,
}

/// One column of a series.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Column {
    F64(Vec<Option<f64>>),
    U8(Vec<u8>),
}

/// One point's result, columnar: `{"point_id": 7, "ts": [...], "avg": [...], ...}`.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesResult {
    pub point_id: u32,
    pub ts: Vec<i64>,
    pub columns: Vec<(String, Column)>,
    /// With [`HistoryRequest::prior`]: the point's last row before `from`, if any
    /// (`"prior": {"ts", "value"}` or `"prior": null`).
    pub prior: Option<Option<PriorRow>>,
}

/// A point's last row before a history request's `from`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PriorRow {
    pub ts: i64,
    /// `null` when the row carried no usable value (bad quality).
    pub value: Option<f64>,
}

impl Serialize for SeriesResult {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(2 + self.columns.len() + usize::from(self.prior.is_some())))?;
        m.serialize_entry("point_id", &self.point_id)?;
        m.serialize_entry("ts", &self.ts)?;
        for (k, v) in &self.columns {
            m.serialize_entry(k, v)?;
        }
        if let Some(prior) = &self.prior {
            m.serialize_entry("prior", prior)?;
        }
        m.end()
    }
}

/// The answer to a history request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryResult {
    pub from: i64,
    pub to: i64,
    pub series: Vec<SeriesResult>,
    /// Some data could not be read (a damaged file was quarantined during this query).
    pub partial: bool,
}

/// The answer to a SQL query.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SqlResult {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<serde_json::Value>>,
    /// The result was cut at the row limit.
    pub truncated: bool,
    /// Some data could not be read (a damaged file was quarantined during this query).
    pub partial: bool,
}

/// Which reader answers a history request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadPath {
    /// The direct Parquet reader for requests naming at most [`DIRECT_MAX_POINTS`](super::DIRECT_MAX_POINTS) distinct
    /// points, DuckDB for more.
    #[default]
    Auto,
    /// The direct Parquet reader ([`crate::query::direct`]), whatever the number of points.
    Direct,
    /// DuckDB, whatever the number of points.
    DuckDb,
}

/// The latest value of a point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Latest {
    pub ts: i64,
    pub value: f64,
    pub quality: u8,
}
