//! Glue for plugins written in Rust: implement [`Plugin`] and [`Device`], then
//! `t3_plugin_abi::export_plugin!(MyPlugin, "my-protocol");` in the crate root (a `cdylib`). The
//! functions here turn the C calls into calls of those traits: they check pointers, copy bytes,
//! catch panics, and own the buffers they return. This module is the only `unsafe` a Rust plugin
//! needs, and it is here, once, with a SAFETY comment on every block.
#![allow(unsafe_code)]

use crate::{Buf, PluginDecl, PushFn, STATUS_INVALID, STATUS_OK, STATUS_PANIC, STATUS_UNSUPPORTED, Sample, Status};
use std::ffi::{c_char, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// An error a plugin function returns: a `STATUS_*` code and a message (for
/// [`crate::STATUS_CONFIG`], JSON `{"key": "...", "message": "..."}`; use [`Error::config`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub status: Status,
    pub message: String,
}

impl Error {
    pub fn new(status: Status, message: impl Into<String>) -> Error {
        Error { status, message: message.into() }
    }

    /// The configuration key `key` is wrong.
    pub fn config(key: &str, message: &str) -> Error {
        Error {
            status: crate::STATUS_CONFIG,
            message: format!("{{\"key\":{},\"message\":{}}}", quote(key), quote(message)),
        }
    }

    pub fn unsupported(what: &str) -> Error {
        Error::new(STATUS_UNSUPPORTED, format!("{what} is not supported"))
    }
}

/// `s` as a JSON string literal.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The protocol side of a plugin: what it serves and how devices are opened.
pub trait Plugin: 'static {
    type Device: Device;
    /// See [`PluginDecl::describe`].
    fn describe() -> String;
    /// See [`PluginDecl::check_config`]; `config` is a JSON object.
    fn check_config(config: &[u8]) -> Result<(), Error>;
    /// See [`PluginDecl::open`].
    fn open(config: &[u8]) -> Result<Self::Device, Error>;
    /// See [`PluginDecl::discover`]; returns the JSON array.
    fn discover(_request: &[u8]) -> Result<String, Error> {
        Err(Error::unsupported("discovery"))
    }
}

/// One device session.
pub trait Device: Send + 'static {
    /// See [`PluginDecl::points`]; returns the JSON array.
    fn points(&mut self) -> Result<String, Error>;
    /// See [`PluginDecl::read`]: `out` has one slot per entry of `points`, pre-filled with the
    /// point's index, a NaN value and a bad quality.
    fn read(&mut self, points: &[u32], out: &mut [Sample]) -> Result<(), Error>;
    /// See [`PluginDecl::write`].
    fn write(&mut self, _point: u32, _value: f64, _priority: u8) -> Result<(), Error> {
        Err(Error::unsupported("writing"))
    }
    /// See [`PluginDecl::relinquish`].
    fn relinquish(&mut self, _point: u32, _priority: u8) -> Result<(), Error> {
        Err(Error::unsupported("relinquishing"))
    }
    /// See [`PluginDecl::health`]; returns the JSON object.
    fn health(&mut self) -> String;
    /// See [`PluginDecl::subscribe`].
    fn subscribe(&mut self, _points: &[u32], _push: Pusher) -> Result<(), Error> {
        Err(Error::unsupported("subscribing"))
    }
}

/// The server's push callback, to call from any thread until the device is closed.
#[derive(Debug, Clone, Copy)]
pub struct Pusher {
    push: PushFn,
    ctx: *mut c_void,
}

// SAFETY: the ABI lets a plugin call the push callback from any thread until `close` returns; the
// server's `ctx` is built for that (it is a thread-safe queue).
unsafe impl Send for Pusher {}
// SAFETY: as for `Send`: the callback may be called concurrently.
unsafe impl Sync for Pusher {}

impl Pusher {
    /// Hands `samples` to the server.
    pub fn push(&self, samples: &[Sample]) {
        // SAFETY: `push` and `ctx` came from the server's `subscribe` call for this device, which
        // keeps them valid until `close`; the slice is valid for the call.
        unsafe { (self.push)(self.ctx, samples.as_ptr(), samples.len()) }
    }
}

/// A [`PluginDecl`] in a `static`: the raw pointers in it point to `'static` strings.
#[repr(transparent)]
#[derive(Debug)]
pub struct Declaration(PluginDecl);

// SAFETY: the declaration is immutable and its pointers point to `'static` NUL-terminated strings.
unsafe impl Sync for Declaration {}

impl Declaration {
    pub const fn as_ptr(&'static self) -> *const PluginDecl {
        &self.0
    }
}

/// The declaration of plugin `P`; `name` and `version` must end with a NUL (the
/// [`export_plugin!`](crate::export_plugin) macro adds it).
pub const fn declaration<P: Plugin>(name: &'static str, version: &'static str) -> Declaration {
    assert!(!name.is_empty() && name.as_bytes()[name.len() - 1] == 0, "name must end with NUL");
    assert!(!version.is_empty() && version.as_bytes()[version.len() - 1] == 0, "version must end with NUL");
    Declaration(PluginDecl {
        abi_major: crate::ABI_MAJOR,
        abi_minor: crate::ABI_MINOR,
        size: size_of::<PluginDecl>() as u32,
        name: name.as_ptr() as *const c_char,
        version: version.as_ptr() as *const c_char,
        free_buf,
        describe: describe::<P>,
        check_config: check_config::<P>,
        open: open::<P>,
        close: close::<P>,
        points: points::<P>,
        read: read::<P>,
        write: write::<P>,
        relinquish: relinquish::<P>,
        health: health::<P>,
        discover: discover::<P>,
        subscribe: subscribe::<P>,
    })
}

/// Exports `t3000_plugin_declare` for a type implementing [`Plugin`]:
/// `t3_plugin_abi::export_plugin!(Bacnet, "bacnet-ip");` (the version is the crate's).
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty, $name:literal) => {
        /// The plugin's declaration (t3000 plugin ABI).
        #[allow(unsafe_code)]
        #[unsafe(no_mangle)]
        pub extern "C" fn t3000_plugin_declare() -> *const $crate::PluginDecl {
            static DECLARATION: $crate::export::Declaration =
                $crate::export::declaration::<$plugin>(concat!($name, "\0"), concat!(env!("CARGO_PKG_VERSION"), "\0"));
            DECLARATION.as_ptr()
        }
    };
}

/// Runs `f`, turning its error or panic into a status and a message in `*out`.
fn guard(out: *mut Buf, f: impl FnOnce() -> Result<Option<String>, Error>) -> Status {
    let (status, text) = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(text)) => (STATUS_OK, text),
        Ok(Err(e)) => (e.status, Some(e.message)),
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".to_owned());
            (STATUS_PANIC, Some(format!("the plugin panicked: {what}")))
        }
    };
    if let Some(text) = text
        && !out.is_null()
    {
        let bytes = text.into_bytes().into_boxed_slice();
        let len = bytes.len();
        let ptr = Box::into_raw(bytes) as *mut u8;
        // SAFETY: `out` is not null and points to the caller's `Buf` for the duration of the call.
        unsafe { out.write(Buf { ptr, len }) };
    }
    status
}

/// The bytes `ptr[0..len]`, or none for a null pointer.
///
/// # Safety
/// `ptr` must be null or valid for reads of `len` bytes for the duration of the call.
unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if ptr.is_null() || len == 0 {
        &[]
    } else {
        // SAFETY: guaranteed by the caller.
        unsafe { std::slice::from_raw_parts(ptr, len) }
    }
}

/// The device behind a handle from `open`.
///
/// # Safety
/// `device` must be a handle `open::<P>` returned and `close` not yet called, used by one thread at
/// a time (the ABI's rule).
unsafe fn device<'a, P: Plugin>(device: *mut c_void) -> Result<&'a mut P::Device, Error> {
    if device.is_null() {
        return Err(Error::new(STATUS_INVALID, "null device handle"));
    }
    // SAFETY: guaranteed by the caller.
    Ok(unsafe { &mut *(device as *mut P::Device) })
}

unsafe extern "C" fn free_buf(buf: Buf) {
    if !buf.ptr.is_null() {
        // SAFETY: every non-null `Buf` this module hands out is a leaked `Box<[u8]>` of `len` bytes,
        // and the ABI lets the server free it once.
        drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(buf.ptr, buf.len)) });
    }
}

unsafe extern "C" fn describe<P: Plugin>(out: *mut Buf) -> Status {
    guard(out, || Ok(Some(P::describe())))
}

unsafe extern "C" fn check_config<P: Plugin>(config: *const u8, len: usize, out: *mut Buf) -> Status {
    // SAFETY: the server passes `len` readable bytes.
    let config = unsafe { bytes(config, len) };
    guard(out, || P::check_config(config).map(|()| None))
}

unsafe extern "C" fn open<P: Plugin>(config: *const u8, len: usize, handle: *mut *mut c_void, out: *mut Buf) -> Status {
    // SAFETY: the server passes `len` readable bytes.
    let config = unsafe { bytes(config, len) };
    guard(out, || {
        if handle.is_null() {
            return Err(Error::new(STATUS_INVALID, "null device slot"));
        }
        let device = Box::new(P::open(config)?);
        // SAFETY: `handle` is not null and points to the server's slot for the call's duration.
        unsafe { handle.write(Box::into_raw(device) as *mut c_void) };
        Ok(None)
    })
}

unsafe extern "C" fn close<P: Plugin>(handle: *mut c_void) {
    if handle.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the server calls `close` once per handle `open::<P>` made, after its last call.
        drop(unsafe { Box::from_raw(handle as *mut P::Device) });
    }));
}

unsafe extern "C" fn points<P: Plugin>(handle: *mut c_void, out: *mut Buf) -> Status {
    // SAFETY: the server passes a live handle from `open`, from one thread at a time.
    guard(out, || unsafe { device::<P>(handle) }?.points().map(Some))
}

unsafe extern "C" fn read<P: Plugin>(
    handle: *mut c_void,
    points: *const u32,
    n: usize,
    samples: *mut Sample,
    out: *mut Buf,
) -> Status {
    guard(out, || {
        if n > 0 && (points.is_null() || samples.is_null()) {
            return Err(Error::new(STATUS_INVALID, "null point or sample array"));
        }
        if n == 0 {
            return Ok(None);
        }
        // SAFETY: the server passes `n` readable point indexes and `n` writable samples, not
        // overlapping, valid for the call.
        let (points, samples) =
            unsafe { (std::slice::from_raw_parts(points, n), std::slice::from_raw_parts_mut(samples, n)) };
        for (s, &p) in samples.iter_mut().zip(points) {
            *s = Sample::new(p, f64::NAN, crate::QUALITY_BAD);
        }
        // SAFETY: as in `points`.
        unsafe { device::<P>(handle) }?.read(points, samples).map(|()| None)
    })
}

unsafe extern "C" fn write<P: Plugin>(
    handle: *mut c_void,
    point: u32,
    value: f64,
    priority: u8,
    out: *mut Buf,
) -> Status {
    // SAFETY: as in `points`.
    guard(out, || unsafe { device::<P>(handle) }?.write(point, value, priority).map(|()| None))
}

unsafe extern "C" fn relinquish<P: Plugin>(handle: *mut c_void, point: u32, priority: u8, out: *mut Buf) -> Status {
    // SAFETY: as in `points`.
    guard(out, || unsafe { device::<P>(handle) }?.relinquish(point, priority).map(|()| None))
}

unsafe extern "C" fn health<P: Plugin>(handle: *mut c_void, out: *mut Buf) -> Status {
    // SAFETY: as in `points`.
    guard(out, || Ok(Some(unsafe { device::<P>(handle) }?.health())))
}

unsafe extern "C" fn discover<P: Plugin>(request: *const u8, len: usize, out: *mut Buf) -> Status {
    // SAFETY: the server passes `len` readable bytes.
    let request = unsafe { bytes(request, len) };
    guard(out, || P::discover(request).map(Some))
}

unsafe extern "C" fn subscribe<P: Plugin>(
    handle: *mut c_void,
    points: *const u32,
    n: usize,
    push: PushFn,
    ctx: *mut c_void,
    out: *mut Buf,
) -> Status {
    guard(out, || {
        if n > 0 && points.is_null() {
            return Err(Error::new(STATUS_INVALID, "null point array"));
        }
        // SAFETY: the server passes `n` readable point indexes, valid for the call.
        let points = if n == 0 { &[][..] } else { unsafe { std::slice::from_raw_parts(points, n) } };
        // SAFETY: as in `points`.
        unsafe { device::<P>(handle) }?.subscribe(points, Pusher { push, ctx }).map(|()| None)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(quote("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c\\nd\\u0001\"");
        assert_eq!(Error::config("port", "bad \"x\"").message, "{\"key\":\"port\",\"message\":\"bad \\\"x\\\"\"}");
    }
}
