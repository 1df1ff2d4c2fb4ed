//! t3-plugin-testkit: a t3000 protocol plugin (`protocol = "testkit"`) that misbehaves on request,
//! for the server's isolation tests. It is built as a `cdylib` the server loads like any plugin,
//! and it is written with the ABI's Rust glue ([`t3_plugin_abi::export`]), so it needs no `unsafe`.
//!
//! # What a device does
//! A device has `point_count` analog points `P0` .. `P{point_count-1}` (all writable, class `variable`).
//! Every successful `read` adds one to the device's read count, and point `i` reads `i + count`
//! (the first read gives `i + 1`), stamped with the time of the read; a point with a command reads
//! as its highest-priority command instead (16-level priority array, `relinquish` clears a level).
//! Unknown point indexes read as NaN with `QUALITY_BAD_CONFIG_ERROR`. Writes take a finite value
//! at priority 1 ..= 16 to a known point, else `STATUS_INVALID`. `health` answers
//! `{"connected", "requests", "answered", "timeouts", "failures", "reads", "pushes"}`. There is no
//! discovery (`STATUS_UNSUPPORTED`).
//!
//! # The faults a configuration asks for
//! - `panic_in`: `"open"`, `"points"`, `"read"`, `"write"` or `"health"` panics; the glue turns
//!   the panic into `STATUS_PANIC` with "the plugin panicked: testkit: panic_in = read".
//! - `hang_in`: the same set; that call never returns (it parks its thread for good).
//! - `garbage_in`: `"points"` answers bytes that are not JSON (a point list cut short);
//!   `"points_shape"` answers valid JSON of the wrong shape (an object, not an array); `"read"`
//!   answers samples whose point numbers are wrong: even slots name a point past the list
//!   (`points + slot`), odd slots another point than the one asked for (`(asked + 1) % points`, or
//!   `u32::MAX` on a one-point device).
//! - `fail_reads_after`: after that many successful reads, every read answers
//!   `STATUS_UNREACHABLE` (0: every read).
//! - `subscribe`: `true` makes `subscribe` succeed: a thread pushes one sample of every subscribed
//!   point every `push_ms` (default 100) ms, value `point + round` (round 1, 2, ...), until the
//!   device is closed; `close` stops and joins it, so nothing is pushed once `close` returned.
//!   Else `subscribe` answers `STATUS_UNSUPPORTED`.
//!
//! Every key is checked by `check_config` (and `open`): wrong types, out-of-range values and
//! unknown keys are refused with `{"key", "message"}` naming the key; the server's `name`,
//! `ip_address`, `port`, `timeout_ms` and `retries` are accepted.
//!
//! # Layout
//! - `config`: the configuration keys and their checks.
//! - `device`: a device session, its faults and its push thread.

mod config;
mod device;

pub use config::{Config, Garbage, Stage};
pub use device::TestDevice;

use serde_json::json;
use t3_plugin_abi::export::{Error, Plugin};

/// The testkit protocol.
#[derive(Debug)]
pub struct Testkit;

impl Plugin for Testkit {
    type Device = TestDevice;

    fn describe() -> String {
        json!({
            "title": "Testkit",
            "description": "A plugin that misbehaves on request (panics, hangs, garbage answers, \
                            offline reads), for testing how the server isolates plugins.",
            "discovery": false,
            "writes": true,
            "keys": config::describe_keys(),
        })
        .to_string()
    }

    fn check_config(config: &[u8]) -> Result<(), Error> {
        Config::parse(config).map(|_| ())
    }

    fn open(config: &[u8]) -> Result<TestDevice, Error> {
        let config = Config::parse(config)?;
        device::fault(&config, Stage::Open);
        Ok(TestDevice::new(config))
    }
}

t3_plugin_abi::export_plugin!(Testkit, "testkit");

#[cfg(test)]
mod tests;
