//! t3-plugin-bacnet: the BACnet/IP protocol plugin of t3000 (`protocol = "bacnet-ip"`), a
//! `cdylib` the server loads through the plugin ABI (`t3-plugin-abi`), and an `rlib` for tests.
//!
//! # Design
//! - **Codec** ([`codec`]): written from ASHRAE 135 (no crate on crates.io was both synchronous
//!   and complete enough; the maintained ones are async stacks with their own runtime). BVLC
//!   Original-Unicast/Original-Broadcast-NPDU out, those and Forwarded-NPDU in; NPDU version 1
//!   with DNET/SNET parsed and skipped (network-layer messages ignored); every APDU type; all 13
//!   application tags (character strings decoded from UTF-8, UCS-2, UCS-4 and ISO 8859-1,
//!   encoded as UTF-8), context tags and opening/closing tags; Who-Is/I-Am, ReadProperty,
//!   ReadPropertyMultiple, WriteProperty, SubscribeCOV and (Un)ConfirmedCOVNotification. The
//!   decoders never panic on any input (property-tested).
//! - **Sockets and threads.** A session owns one blocking `std::net::UdpSocket` for its requests
//!   (bound at `open`, on `local_port`, nothing sent until `points`). The host calls a device
//!   from one thread at a time, so requests are strictly sequential: each gets the next invoke
//!   id, and only an answer of that invoke id from the device's address counts (anything else is
//!   ignored). Each attempt waits `timeout_ms`, and an unanswered request is resent `retries`
//!   times (same invoke id) before the call fails with `STATUS_UNREACHABLE`.
//!   `subscribe` binds a **second socket** for COV: the SubscribeCOV requests go out from it, so
//!   the device sends its notifications there, and a background thread owns it — it receives
//!   notifications, pushes samples, answers confirmed notifications with SimpleACK, and renews
//!   each subscription at two thirds of `cov_lifetime_secs`. The two sockets never see each
//!   other's traffic. Dropping the device (the ABI's `close`) stops and joins that thread within
//!   about 100 ms, and it sends cancellations (SubscribeCOV without lifetime) on its way out.
//! - **Segmentation.** Requests are never segmented (they are kept within the device's max APDU).
//!   Answers may be: every request accepts segmented ComplexACKs (up to 64 segments), which are
//!   reassembled with SegmentACKs (window of at most 16, negative ACK on a gap). The object list
//!   is read whole; a device that cannot send it in one APDU (it aborts or rejects) is read
//!   element by element (array index 0 for the length, then each index, batched in RPMs).
//! - **Batching.** ReadPropertyMultiple requests are cut to fit the device's max APDU
//!   (`max_apdu`, else its `max-apdu-length-accepted`) and, for a device that cannot segment, an
//!   answer estimated to fit too; a batch the device still finds too large (abort
//!   segmentation-not-supported / buffer-overflow) is halved. A device that rejects RPM
//!   (unrecognized-service) is read with ReadProperty from then on; `use_rpm = false` does so
//!   from the start.
//! - **Points.** The analog, binary and multi-state input/output/value objects of the object
//!   list, in object-identifier order. See [`points`] for kinds, classes, names, units and how
//!   status flags become qualities.
//!
//! # Not supported
//! Devices behind a BACnet router (reached through DNET/DADR) — discovery skips their I-Ams;
//! BBMD foreign-device registration; segmented *requests*; BACnet/IPv6, MS/TP and BACnet/SC;
//! other object types (schedules, trend logs, accumulators...); writing properties other than the
//! present value; COV on properties (SubscribeCOVProperty).

pub mod client;
pub mod codec;
pub mod config;
pub mod cov;
pub mod discover;
pub mod points;
pub mod session;

use std::sync::Arc;
use t3_plugin_abi::Sample;
use t3_plugin_abi::export::{Device, Error, Plugin, Pusher};

/// The plugin.
#[derive(Debug)]
pub struct Bacnet;

/// One device session.
#[derive(Debug)]
pub struct BacnetDevice {
    session: session::Session,
}

impl BacnetDevice {
    /// The session underneath, for what the ABI does not carry (writing any property with any
    /// value type).
    pub fn session_mut(&mut self) -> &mut session::Session {
        &mut self.session
    }

    /// Subscribes `points` with samples going to `sink` (what [`Device::subscribe`] does with the
    /// server's push callback; usable from Rust code and tests, which cannot make a `Pusher`).
    pub fn subscribe_with(&mut self, points: &[u32], sink: cov::Sink) -> Result<(), Error> {
        self.session.subscribe(points, sink)
    }
}

impl Plugin for Bacnet {
    type Device = BacnetDevice;

    fn describe() -> String {
        config::describe()
    }

    fn check_config(config: &[u8]) -> Result<(), Error> {
        config::Config::parse(config).map(|_| ())
    }

    fn open(config: &[u8]) -> Result<BacnetDevice, Error> {
        Ok(BacnetDevice { session: session::Session::open(config::Config::parse(config)?)? })
    }

    fn discover(request: &[u8]) -> Result<String, Error> {
        discover::discover(request)
    }
}

impl Device for BacnetDevice {
    fn points(&mut self) -> Result<String, Error> {
        self.session.points_json()
    }

    fn read(&mut self, points: &[u32], out: &mut [Sample]) -> Result<(), Error> {
        self.session.read(points, out)
    }

    fn write(&mut self, point: u32, value: f64, priority: u8) -> Result<(), Error> {
        self.session.write(point, Some(value), priority)
    }

    fn relinquish(&mut self, point: u32, priority: u8) -> Result<(), Error> {
        self.session.write(point, None, priority)
    }

    fn health(&mut self) -> String {
        self.session.health()
    }

    fn subscribe(&mut self, points: &[u32], push: Pusher) -> Result<(), Error> {
        self.session.subscribe(points, Arc::new(move |samples: &[Sample]| push.push(samples)))
    }
}

t3_plugin_abi::export_plugin!(Bacnet, "bacnet-ip");
