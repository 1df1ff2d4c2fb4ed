//! t3-core: the domain model shared by every other crate, with no I/O.
//!
//! # Data flow
//! A building controller reports values; every value becomes a [`Sample`]
//! `(point_id, ts, value, quality)` and flows drivers → ingest → WAL → write buffer → Parquet.
//! This crate holds the types that travel that path and the configuration that shapes it.
//!
//! # Layout
//! - [`model`]: point ids, samples and their quality codes.
//! - [`clock`]: the source of time, so tests can control it.
//! - [`config`]: the server configuration: serde types, defaults, environment overlay and `validate()`.
//! - [`arbiter`]: command arbitration: BACnet-style priority arrays, expiry and relinquish.
//! - [`schedule`]: T3000 weekly schedules and annual routines, evaluated in a site's time zone.
//! - [`alarm`]: alarm rules and their state machines.
//! - [`range`]: T3000 range codes (units, digital state names).
//! - [`recording`]: how trend logs change the way a point is polled and recorded (the fastest
//!   rate wins).
//! - [`sink`]: the ingest seam: [`SampleSink`], where drivers send samples, and its typed error.

pub mod alarm;
pub mod arbiter;
pub mod basic;
pub mod clock;
pub mod config;
pub mod model;
pub mod range;
pub mod recording;
pub mod schedule;
pub mod sink;

pub use model::{PointId, Quality, Sample};
pub use sink::{SampleSink, SinkError};
