//! How a question is answered from a snapshot of the live files and the buffered rows.

pub mod analytics;
pub mod direct;
mod duckdb;
pub mod export;
pub mod rollups;
mod types;

pub use direct::DIRECT_MAX_POINTS;
pub use duckdb::{CANCEL_GRACE, cell};
pub(crate) use duckdb::{HistoryPlan, QueryEngine, Reads, plan_rollups, sql_body, ts_literal};
pub use types::{
    Column, HistoryMode, HistoryRequest, HistoryResult, Latest, PRIOR_LOOKBACK_US, PriorRow, ReadPath, SeriesResult,
    SqlResult,
};
