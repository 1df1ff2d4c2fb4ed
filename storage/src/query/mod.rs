//! How a question is answered from a snapshot of the live files and the buffered rows
//! (`files::Snapshot`); the engine takes the snapshot and calls in here, nothing here knows
//! the engine.
//!
//! History requests are read by DuckDB (`sql`: also user SQL, in a sandbox) or, naming at most
//! [`DIRECT_MAX_POINTS`] points, by the direct Parquet reader ([`direct`]). Either reader scans and
//! filters (DuckDB prunes by row-group statistics, the direct reader down to pages), removes
//! duplicates (the newest file wins, the write buffer over every file) and sorts; the shaping into
//! buckets, interpolation or chart points happens in [`analytics`] in one pass, the same for both.
//!
//! - `types`: requests and answers; `plan`: what a history request reads, where rollups stand
//!   in for raw samples ([`rollups`]: their format), and the answer through either reader.
//! - `sql`, [`direct`]: the two readers; [`analytics`]: buckets, interpolation, downsampling.
//! - [`export`]: a history written out as CSV, xlsx or Parquet in bounded memory.

pub mod analytics;
pub mod direct;
pub mod export;
mod plan;
pub mod rollups;
mod sql;
mod types;

pub use direct::DIRECT_MAX_POINTS;
pub(crate) use plan::{HistoryPlan, Reads, empty_series, plan_rollups};
pub use sql::{CANCEL_GRACE, cell, sql_statement};
pub(crate) use sql::{QueryEngine, ts_literal};
pub use types::{
    Column, HistoryMode, HistoryRequest, HistoryResult, Latest, PRIOR_LOOKBACK_US, PriorRow, ReadPath, SeriesResult,
    SqlResult,
};
