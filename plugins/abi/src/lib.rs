//! t3-plugin-abi: the frozen C ABI between the t3000 server and its protocol plugins.
//!
//! A plugin is a shared library (`.so`, `.dylib`, `.dll`) that exports one symbol,
//! [`DECLARE_SYMBOL`] (`t3000_plugin_declare`): a function without arguments that returns a pointer
//! to a static [`PluginDecl`]. Everything else the server learns about the plugin comes through the
//! function pointers of that declaration. The same definitions, for C, C++, Zig or Go, are in
//! `plugins/abi/t3000_plugin.h`; a test compiles the header and checks that sizes, offsets and
//! constants agree with this crate.
//!
//! # Rules of the boundary
//! - **Versioning.** [`PluginDecl::abi_major`] must equal the server's [`ABI_MAJOR`] or the plugin is
//!   refused before any other call, with a message naming both versions and the file. A minor version
//!   only appends fields to [`PluginDecl`] (optional functions, which may be null);
//!   [`PluginDecl::size`] tells the server which fields the plugin knows. Version 1.0 has no
//!   optional field: every function is present and answers [`STATUS_UNSUPPORTED`] for what the
//!   plugin cannot do.
//! - **Data.** Configuration, point lists, discovery results and health cross as UTF-8 JSON bytes
//!   (documented on each function); samples cross as fixed 24-byte [`Sample`] records in arrays the
//!   server allocates. No Rust type crosses the boundary.
//! - **Memory.** Whoever allocates frees. Bytes a plugin returns in a [`Buf`] are the plugin's and
//!   the server hands them back through [`PluginDecl::free_buf`] once it has copied them; arrays and
//!   bytes the server passes in are the server's and are only valid during the call.
//! - **Errors.** Every function returns a status ([`STATUS_OK`] or one of the `STATUS_*` errors) and,
//!   on error, may put a UTF-8 message in its `out` buffer; [`STATUS_CONFIG`] carries JSON
//!   `{"key": "...", "message": "..."}` naming the configuration key at fault. Every function
//!   catches panics (or C++ exceptions) and answers [`STATUS_PANIC`]: nothing unwinds into the server.
//! - **Threads.** The server calls the functions of one device from one thread at a time, never two
//!   at once; different devices, [`PluginDecl::describe`], [`PluginDecl::check_config`] and
//!   [`PluginDecl::discover`] may be called concurrently from other threads. A push callback given
//!   to [`PluginDecl::subscribe`] may be called from any thread until [`PluginDecl::close`] returns.
//! - **Time.** A call should return within the device's `timeout_ms` times its `retries` plus one;
//!   the server stops waiting after its own limit and marks the device offline, and calls nothing
//!   more on that device until the call returns.
//!
//! # Writing a plugin in Rust
//! Implement [`export::Plugin`] and [`export::Device`] and call [`export_plugin!`]: the glue in
//! [`export`] does the pointer handling and panic catching, so the plugin itself needs no `unsafe`.

#![allow(non_camel_case_types)]

use std::ffi::{c_char, c_void};

pub mod export;

/// The major version of this ABI. A plugin built for another major version is refused.
pub const ABI_MAJOR: u16 = 1;
/// The minor version of this ABI: minor versions only append optional functions to [`PluginDecl`].
pub const ABI_MINOR: u16 = 0;
/// The symbol every plugin exports: `const T3PluginDecl *t3000_plugin_declare(void)`.
pub const DECLARE_SYMBOL: &str = "t3000_plugin_declare";

/// A function's result. `0` is success; the others are errors.
pub type Status = i32;
/// Success.
pub const STATUS_OK: Status = 0;
/// The configuration was refused; `out` holds `{"key": "...", "message": "..."}`.
pub const STATUS_CONFIG: Status = 1;
/// The device did not answer (timeout, no route, connection refused): it counts towards offline.
pub const STATUS_UNREACHABLE: Status = 2;
/// The device answered with an error (refused, rejected, aborted the request).
pub const STATUS_DEVICE: Status = 3;
/// The plugin or the device cannot do this (no discovery, a read-only point, no subscriptions).
pub const STATUS_UNSUPPORTED: Status = 4;
/// An argument is wrong: an unknown point index, a value the point cannot take, a bad priority.
pub const STATUS_INVALID: Status = 5;
/// The plugin caught a panic (or exception) inside the call.
pub const STATUS_PANIC: Status = 6;
/// Anything else that went wrong inside the plugin.
pub const STATUS_INTERNAL: Status = 7;

/// Quality codes a [`Sample`] carries (OPC-DA style, the same byte the server stores).
pub const QUALITY_GOOD: u8 = 0xC0;
/// Good, but the value is overridden at the device (BACnet's OVERRIDDEN flag, a point in manual).
pub const QUALITY_GOOD_LOCAL_OVERRIDE: u8 = 0xD8;
/// Uncertain.
pub const QUALITY_UNCERTAIN: u8 = 0x40;
/// Bad, no reason given.
pub const QUALITY_BAD: u8 = 0x00;
/// Bad: the point is misconfigured (unknown object, property refused).
pub const QUALITY_BAD_CONFIG_ERROR: u8 = 0x04;
/// Bad: the device reports a fault (BACnet's FAULT flag).
pub const QUALITY_BAD_DEVICE_FAILURE: u8 = 0x0C;
/// Bad: the sensor failed.
pub const QUALITY_BAD_SENSOR_FAILURE: u8 = 0x10;
/// Bad: the device could not be reached.
pub const QUALITY_BAD_COMM_FAILURE: u8 = 0x18;
/// Bad: the point is out of service (BACnet's OUT_OF_SERVICE flag).
pub const QUALITY_BAD_OUT_OF_SERVICE: u8 = 0x1C;

/// Bytes a plugin allocated and returns to the server, which gives them back with
/// [`PluginDecl::free_buf`]. An empty buffer has a null `ptr` (or any pointer with `len` 0).
#[repr(C)]
#[derive(Debug)]
pub struct Buf {
    pub ptr: *mut u8,
    pub len: usize,
}

impl Buf {
    /// A buffer holding nothing.
    pub const EMPTY: Buf = Buf { ptr: std::ptr::null_mut(), len: 0 };
}

/// One value of one point: 24 bytes, 8-byte aligned.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// The point's index in the list [`PluginDecl::points`] returned.
    pub point: u32,
    /// One of the `QUALITY_*` codes.
    pub quality: u8,
    /// Zero.
    pub reserved: [u8; 3],
    /// The value in the point's units; digital points 0 or 1, multistate points their state number
    /// (1-based, as BACnet counts). NaN with a bad quality when there is no value.
    pub value: f64,
    /// When the device measured the value, microseconds since the Unix epoch; 0 lets the server
    /// stamp it with the time the call returned.
    pub ts_us: i64,
}

impl Sample {
    /// A sample of `point` with `value` and `quality`, stamped by the server.
    pub const fn new(point: u32, value: f64, quality: u8) -> Sample {
        Sample { point, quality, reserved: [0; 3], value, ts_us: 0 }
    }
}

/// The server's callback for values a device pushes (subscriptions, change of value).
pub type PushFn = unsafe extern "C" fn(ctx: *mut c_void, samples: *const Sample, n: usize);

/// `free_buf(buf)`: frees a buffer the plugin returned.
pub type FreeBufFn = unsafe extern "C" fn(buf: Buf);
/// `describe(out)`: the protocol and its configuration keys, as JSON (see [`PluginDecl::describe`]).
pub type DescribeFn = unsafe extern "C" fn(out: *mut Buf) -> Status;
/// `check_config(config, len, out)`: validates a device's configuration without any I/O.
pub type CheckConfigFn = unsafe extern "C" fn(config: *const u8, len: usize, out: *mut Buf) -> Status;
/// `open(config, len, device, out)`: creates a device session.
pub type OpenFn =
    unsafe extern "C" fn(config: *const u8, len: usize, device: *mut *mut c_void, out: *mut Buf) -> Status;
/// `close(device)`: ends a device session and frees it.
pub type CloseFn = unsafe extern "C" fn(device: *mut c_void);
/// `points(device, out)`: the device's points, as JSON.
pub type PointsFn = unsafe extern "C" fn(device: *mut c_void, out: *mut Buf) -> Status;
/// `read(device, points, n, samples, out)`: reads `n` points into `samples[0..n]`.
pub type ReadFn = unsafe extern "C" fn(
    device: *mut c_void,
    points: *const u32,
    n: usize,
    samples: *mut Sample,
    out: *mut Buf,
) -> Status;
/// `write(device, point, value, priority, out)`: writes a point's value at a priority.
pub type WriteFn =
    unsafe extern "C" fn(device: *mut c_void, point: u32, value: f64, priority: u8, out: *mut Buf) -> Status;
/// `relinquish(device, point, priority, out)`: gives up the command at a priority.
pub type RelinquishFn = unsafe extern "C" fn(device: *mut c_void, point: u32, priority: u8, out: *mut Buf) -> Status;
/// `health(device, out)`: the connection's state, as JSON.
pub type HealthFn = unsafe extern "C" fn(device: *mut c_void, out: *mut Buf) -> Status;
/// `discover(request, len, out)`: looks for devices on the network.
pub type DiscoverFn = unsafe extern "C" fn(request: *const u8, len: usize, out: *mut Buf) -> Status;
/// `subscribe(device, points, n, push, ctx, out)`: asks the device to push changes of `n` points.
pub type SubscribeFn = unsafe extern "C" fn(
    device: *mut c_void,
    points: *const u32,
    n: usize,
    push: PushFn,
    ctx: *mut c_void,
    out: *mut Buf,
) -> Status;

/// What a plugin declares: its ABI version, name and version, and its functions. Returned by
/// `t3000_plugin_declare`; must stay valid (usually a `static`) while the library is loaded.
#[repr(C)]
#[derive(Debug)]
pub struct PluginDecl {
    /// [`ABI_MAJOR`] as the plugin was built.
    pub abi_major: u16,
    /// [`ABI_MINOR`] as the plugin was built.
    pub abi_minor: u16,
    /// `sizeof(T3PluginDecl)` as the plugin was built: fields past it are absent.
    pub size: u32,
    /// The plugin's name, NUL-terminated UTF-8; it is also the protocol name devices select
    /// (`protocol = "bacnet-ip"`): 1 ..= 32 lowercase letters, digits and `-`, starting with a
    /// letter, not `modbus-*`.
    pub name: *const c_char,
    /// The plugin's own version, NUL-terminated UTF-8 (`"0.3.1"`).
    pub version: *const c_char,
    /// Frees a [`Buf`] the plugin returned from any function.
    pub free_buf: FreeBufFn,
    /// The protocol, as JSON:
    /// `{"title": "BACnet/IP", "description": "...", "discovery": true, "writes": true,
    ///   "keys": [{"name": "device_instance", "type": "integer", "required": true,
    ///             "default": null, "description": "..."}]}`.
    /// `type` is `string`, `integer`, `number`, `boolean` or `array`.
    pub describe: DescribeFn,
    /// Validates a device's configuration (the JSON object described for [`PluginDecl::open`])
    /// without any I/O. [`STATUS_OK`] or [`STATUS_CONFIG`] with `{"key", "message"}`.
    pub check_config: CheckConfigFn,
    /// Creates a session for one device and stores its handle in `*device`. `config` is a JSON
    /// object: the device's keys from the server's configuration that the server does not use
    /// itself, plus `name` (the device's name), `ip_address` and `port` when set, `timeout_ms` (per
    /// request) and `retries`. Must not wait for the device: the first I/O belongs to `points`.
    pub open: OpenFn,
    /// Ends a session: stops subscriptions, closes sockets, frees the handle. Called once.
    pub close: CloseFn,
    /// The device's points, as a JSON array, in a stable order (the index in this array is the
    /// point's number in `read`, `write` and samples):
    /// `[{"name": "ZN-T", "description": "Zone temperature", "kind": "analog",
    ///    "units": "°C", "writable": false, "min": null, "max": null, "states": [],
    ///    "address": "analog-input,1", "class": "input"}]`.
    /// `name` is unique within the device, 1 ..= 64 characters; `kind` is `analog`, `digital` or
    /// `multistate`; `states` names the states of digital (`[inactive, active]`) and multistate
    /// (state 1 first) points; `address` is where the point lives in the protocol's terms; `class`
    /// is `input`, `output` or `variable` (or null).
    pub points: PointsFn,
    /// Reads the points `points[0..n]` (indexes into the point list) and fills `samples[0..n]`,
    /// one per point in the same order. A point that could not be read (an unknown index included)
    /// gets a NaN value and a bad quality (`QUALITY_BAD_CONFIG_ERROR` for an unknown index); the call
    /// itself fails ([`STATUS_UNREACHABLE`]) only when the device did not answer.
    pub read: ReadFn,
    /// Writes `value` to a point at `priority` (1 ..= 16, 1 the highest; BACnet's priority array,
    /// which the server's command priorities map to one to one). Returns once the device accepted it.
    pub write: WriteFn,
    /// Relinquishes the command at `priority` (BACnet: writes NULL at that priority).
    pub relinquish: RelinquishFn,
    /// The connection's state, as JSON:
    /// `{"connected": true, "requests": 10, "answered": 9, "timeouts": 1, "failures": 0}`.
    pub health: HealthFn,
    /// Looks for devices. `request` is a JSON object of the plugin's discovery options (BACnet:
    /// `port`, `broadcast`, `low`, `high`, `timeout_ms`); the answer is a JSON array of
    /// `{"name": "...", "address": "...", "model": "...", "vendor": "...", "config": {...}}` where
    /// `config` holds the keys that add the device (`protocol` excepted).
    pub discover: DiscoverFn,
    /// Asks the device to push changes of `points[0..n]` through `push(ctx, samples, n)` until
    /// `close`; the plugin renews what needs renewing. [`STATUS_UNSUPPORTED`] when the device
    /// cannot, and the server keeps polling.
    pub subscribe: SubscribeFn,
}

/// The signature of [`DECLARE_SYMBOL`].
pub type DeclareFn = unsafe extern "C" fn() -> *const PluginDecl;

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{align_of, offset_of, size_of};

    #[test]
    fn the_records_have_the_documented_layout() {
        assert_eq!(size_of::<Sample>(), 24);
        assert_eq!(align_of::<Sample>(), 8);
        assert_eq!(offset_of!(Sample, quality), 4);
        assert_eq!(offset_of!(Sample, value), 8);
        assert_eq!(offset_of!(Sample, ts_us), 16);
        assert_eq!(size_of::<Buf>(), 2 * size_of::<usize>());
        assert_eq!(offset_of!(PluginDecl, name), 8);
        assert_eq!(size_of::<PluginDecl>(), 8 + 14 * size_of::<usize>());
    }
}
