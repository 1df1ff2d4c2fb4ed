//! Integration tests of the storage engine through its public API. One binary; add new tests as
//! modules here: one file per feature.

mod backup;
mod checksums;
mod common;
mod dedup;
mod direct;
mod durability;
mod ingest_rules;
mod layout;
mod maintenance;
mod ordering;
mod queries;
mod recovery;
mod rollups;
mod sparse;
mod sql_sandbox;
mod sql_time_limit;
mod wal_recovery;
