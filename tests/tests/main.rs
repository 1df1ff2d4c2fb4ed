//! End-to-end tests of the `t3000` binary: each test starts real server processes on temporary data
//! directories (port 0) and drives them over HTTP, with signals and by damaging their files.
//!
//! Build the binary first: `cargo build --release --bin t3000` (or point `T3000_BIN` at one).

mod alarms;
mod alerts;
mod analytics;
mod api_input;
mod backup;
mod bacnet;
mod catalog;
mod connections;
mod corruption;
mod crash;
mod deploy;
mod devices;
mod disk_full;
mod diskspace;
mod export;
mod import_csv;
mod import_prog;
mod import_webview;
mod lifecycle;
mod metrics;
mod modes;
mod plan_types;
mod plugins;
mod programs;
mod reload;
mod safety;
mod sandbox;
mod schemathesis;
mod semantics;
mod sync;
mod system_alerts;
mod timestamps;
mod trendlog_recording;
mod write_safety;
mod ws;
