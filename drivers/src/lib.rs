//! t3-drivers: talking to field devices.
//!
//! # Data flow
//! A device's [`profile`](profile::Profile) lists its points (register, kind, [`codec`]). The
//! [`collector`] groups a device's points by poll interval, merges each group's registers into as
//! few reads as possible ([`planner`]), reads them through the device's [`Driver`](driver::Driver)
//! ([`modbus`] for Modbus TCP and RTU), decodes the words with each point's codec and hands the
//! samples to a [`SampleSink`](collector::SampleSink) — the storage engine's ingest in the server.
//!
//! # Layout
//! - [`codec`]: register encodings (integer widths, floats, strings, bits; word and byte orders;
//!   scale and offset).
//! - [`planner`]: merging point reads into Modbus requests within per-device limits.
//! - [`profile`]: the T3 controller profile and the Temco register library (24 products).
//! - [`labels`]: the labels and descriptions T3 controllers keep in their point records.
//! - [`panel`]: a T3 controller's point configuration (labels, ranges, digital, auto/manual) read and
//!   written over Modbus, for hardware sync.
//! - [`classify`]: measurement, setpoint / command or configuration for every profile point, and
//!   the values a write to one may carry.
//! - [`driver`]: the protocol-neutral [`Driver`](driver::Driver) trait and its error type.
//! - [`modbus`]: Modbus TCP and RTU drivers on tokio-modbus / tokio-serial.
//! - [`collector`]: scheduling, on-change recording, backoff, offline detection, device status and
//!   confirmed writes.
//! - [`discovery`]: finding devices by Modbus scan (TCP hosts, RTU unit ids) and T3000's UDP scan.
//! - [`simulator`]: simulated Temco devices over Modbus TCP, RTU and UDP, with fault injection.
//! - [`t3`]: the packed records of T3 panels (inputs, outputs, routines, monitors ...) and the `.prog`
//!   panel file.
//! - [`units`]: the units (and scales) the register library's texts state for its registers.
//! - [`plugin`]: the plugin host: protocol drivers loaded from shared libraries (the only
//!   `unsafe` of the server, in [`plugin::ffi`]), behind the same [`Driver`](driver::Driver) trait.

pub mod classify;
pub mod codec;
pub mod collector;
pub mod discovery;
pub mod driver;
pub mod labels;
pub mod modbus;
pub mod panel;
pub mod planner;
pub mod plugin;
pub mod profile;
pub mod simulator;
pub mod t3;
pub mod units;
