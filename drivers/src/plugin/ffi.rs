//! The one module of the server that calls into plugin libraries: loading them with libloading,
//! checking their declaration, and safe wrappers for each function of the ABI
//! ([`t3_plugin_abi`]). Every `unsafe` block of the server's plugin host is here, each with its
//! SAFETY comment; the rest of the host sees [`Library`] and [`Session`] only.
//!
//! A library is never unloaded: its handle is leaked, so the declaration and the functions stay
//! valid for the life of the process (a thread still stuck in a hung call keeps its code mapped).
#![allow(unsafe_code)]

use std::ffi::{CStr, c_void};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use t3_core::config::Protocol;
use t3_plugin_abi as abi;

/// Why a file was not taken as a plugin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    #[error("cannot be loaded: {0}")]
    Open(String),
    #[error("not a t3000 plugin: it has no {} symbol", abi::DECLARE_SYMBOL)]
    NoSymbol,
    #[error("{} returned no declaration", abi::DECLARE_SYMBOL)]
    NullDeclaration,
    #[error(
        "built for plugin ABI {plugin_major}.{plugin_minor}, but this server speaks ABI {}.{}: rebuild the plugin against plugins/abi of this server",
        abi::ABI_MAJOR,
        abi::ABI_MINOR
    )]
    AbiMajor { plugin_major: u16, plugin_minor: u16 },
    #[error("its declaration is {size} bytes, smaller than ABI {}.0 needs ({needed})", abi::ABI_MAJOR)]
    Size { size: u32, needed: usize },
    #[error("its declaration has no {0} function")]
    MissingFunction(&'static str),
    #[error("invalid {what}: {reason}")]
    Name { what: &'static str, reason: String },
}

/// A failed call: the plugin's status and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallError {
    pub status: abi::Status,
    pub message: String,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.status {
            abi::STATUS_CONFIG => "configuration refused",
            abi::STATUS_UNREACHABLE => "device unreachable",
            abi::STATUS_DEVICE => "device error",
            abi::STATUS_UNSUPPORTED => "not supported",
            abi::STATUS_INVALID => "invalid argument",
            abi::STATUS_PANIC => "plugin panicked",
            abi::STATUS_INTERNAL => "plugin error",
            _ => "unknown status",
        };
        if self.message.is_empty() {
            write!(f, "{what} (status {})", self.status)
        } else {
            write!(f, "{what}: {}", self.message)
        }
    }
}

impl CallError {
    /// An answer that breaks the ABI (bad JSON, wrong sample count, an unknown status).
    pub fn garbage(message: impl Into<String>) -> CallError {
        CallError { status: abi::STATUS_INTERNAL, message: message.into() }
    }
}

/// The fields every ABI version starts with.
#[repr(C)]
struct Header {
    abi_major: u16,
    abi_minor: u16,
    size: u32,
}

/// A loaded plugin library and its checked declaration.
#[derive(Debug)]
pub struct Library {
    path: PathBuf,
    decl: &'static abi::PluginDecl,
    name: String,
    version: String,
}

// SAFETY: the declaration is immutable data the library keeps for as long as it is loaded
// (forever), and the ABI lets `describe`, `check_config` and `discover` be called from any thread
// at any time; device calls go through `Session`, which is not `Sync`.
unsafe impl Send for Library {}
// SAFETY: as for `Send`.
unsafe impl Sync for Library {}

impl Library {
    /// Loads `path`, runs its declaration function, and checks the declaration before anything
    /// else is called: the ABI major version, the declaration's size, every function present, and
    /// the name and version strings.
    pub fn load(path: &Path) -> Result<Arc<Library>, LoadError> {
        // SAFETY: loading runs the library's initialisers; only files from the configured plugin
        // folders are loaded (the operator's trust decision, like installing any driver).
        let lib = unsafe { libloading::Library::new(path) }.map_err(|e| LoadError::Open(e.to_string()))?;
        // Never unloaded: the declaration, its strings and functions live as long as the process.
        let lib: &'static libloading::Library = Box::leak(Box::new(lib));
        let symbol = format!("{}\0", abi::DECLARE_SYMBOL);
        // SAFETY: the symbol is declared by the ABI as `const T3PluginDecl *(*)(void)`.
        let declare: libloading::Symbol<'static, abi::DeclareFn> =
            unsafe { lib.get(symbol.as_bytes()) }.map_err(|_| LoadError::NoSymbol)?;
        // SAFETY: calling the declaration function the ABI requires; it takes no arguments.
        let ptr = unsafe { declare() };
        if ptr.is_null() {
            return Err(LoadError::NullDeclaration);
        }
        // SAFETY: every ABI version starts with this 8-byte header, so a non-null declaration
        // pointer is readable for it.
        let header = unsafe { std::ptr::read(ptr as *const Header) };
        if header.abi_major != abi::ABI_MAJOR {
            return Err(LoadError::AbiMajor { plugin_major: header.abi_major, plugin_minor: header.abi_minor });
        }
        let needed = size_of::<abi::PluginDecl>();
        if (header.size as usize) < needed {
            return Err(LoadError::Size { size: header.size, needed });
        }
        // SAFETY: the plugin states (`size`) that its declaration has at least the fields of this
        // ABI; read them as raw pointers first, so a null function is refused before it is ever
        // typed as a Rust function pointer (which may not be null).
        let raw = unsafe { std::ptr::read(ptr.cast::<u8>().add(8) as *const [*const c_void; 14]) };
        const FIELDS: [&str; 14] = [
            "name",
            "version",
            "free_buf",
            "describe",
            "check_config",
            "open",
            "close",
            "points",
            "read",
            "write",
            "relinquish",
            "health",
            "discover",
            "subscribe",
        ];
        if let Some(i) = raw.iter().position(|p| p.is_null()) {
            return Err(match i {
                0 | 1 => LoadError::Name { what: FIELDS[i], reason: "null".into() },
                _ => LoadError::MissingFunction(FIELDS[i]),
            });
        }
        // SAFETY: the declaration is at least `PluginDecl`'s size, none of its pointers is null,
        // and it stays valid while the library is loaded (forever).
        let decl: &'static abi::PluginDecl = unsafe { &*ptr };
        let text = |what: &'static str, p: *const std::ffi::c_char| -> Result<String, LoadError> {
            // SAFETY: the ABI makes `name` and `version` NUL-terminated strings valid while loaded.
            let s = unsafe { CStr::from_ptr(p) };
            let s = s.to_str().map_err(|_| LoadError::Name { what, reason: "not UTF-8".into() })?;
            if s.is_empty() || s.len() > 64 {
                return Err(LoadError::Name { what, reason: format!("{:?} must be 1 to 64 bytes", s) });
            }
            Ok(s.to_owned())
        };
        let name = text("name", decl.name)?;
        let version = text("version", decl.version)?;
        if !Protocol::is_plugin_name(&name) || name.starts_with("modbus") {
            return Err(LoadError::Name {
                what: "name",
                reason: format!(
                    "{name:?}: a protocol name is 1 to 32 lowercase letters, digits and -, starting with a letter, and not modbus-*"
                ),
            });
        }
        Ok(Arc::new(Library { path: path.to_owned(), decl, name, version }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    /// The ABI version the plugin was built for.
    pub fn abi(&self) -> (u16, u16) {
        (self.decl.abi_major, self.decl.abi_minor)
    }

    /// Runs one call with an output buffer: the plugin's bytes are copied and handed back to it.
    fn call(&self, f: impl FnOnce(*mut abi::Buf) -> abi::Status) -> (abi::Status, Vec<u8>) {
        let mut out = abi::Buf::EMPTY;
        let status = f(&mut out);
        let bytes = if out.ptr.is_null() || out.len == 0 {
            Vec::new()
        } else {
            // SAFETY: the plugin returned `len` readable bytes at `ptr`, valid until `free_buf`.
            unsafe { std::slice::from_raw_parts(out.ptr, out.len) }.to_vec()
        };
        if !out.ptr.is_null() {
            // SAFETY: the buffer came from this plugin and is freed once, as the ABI says.
            unsafe { (self.decl.free_buf)(out) };
        }
        (status, bytes)
    }

    fn result(&self, (status, bytes): (abi::Status, Vec<u8>)) -> Result<Vec<u8>, CallError> {
        if status == abi::STATUS_OK {
            return Ok(bytes);
        }
        let message = String::from_utf8_lossy(&bytes).into_owned();
        if !(abi::STATUS_CONFIG..=abi::STATUS_INTERNAL).contains(&status) {
            return Err(CallError::garbage(format!("unknown status {status}: {message}")));
        }
        Err(CallError { status, message })
    }

    /// `describe`: the protocol as JSON.
    pub fn describe(&self) -> Result<Vec<u8>, CallError> {
        // SAFETY: `describe` takes a valid out buffer, as `call` provides.
        self.result(self.call(|out| unsafe { (self.decl.describe)(out) }))
    }

    /// `check_config`: validates a device's JSON configuration.
    pub fn check_config(&self, config: &[u8]) -> Result<(), CallError> {
        // SAFETY: the config bytes are valid for the call; `out` is valid.
        self.result(self.call(|out| unsafe { (self.decl.check_config)(config.as_ptr(), config.len(), out) })).map(drop)
    }

    /// `discover`: looks for devices; the JSON array.
    pub fn discover(&self, request: &[u8]) -> Result<Vec<u8>, CallError> {
        // SAFETY: the request bytes are valid for the call; `out` is valid.
        self.result(self.call(|out| unsafe { (self.decl.discover)(request.as_ptr(), request.len(), out) }))
    }

    /// `open`: a session with one device.
    pub fn open(self: &Arc<Self>, config: &[u8]) -> Result<Session, CallError> {
        let mut handle: *mut c_void = std::ptr::null_mut();
        // SAFETY: the config bytes and the handle slot are valid for the call; `out` is valid.
        let r =
            self.result(self.call(|out| unsafe { (self.decl.open)(config.as_ptr(), config.len(), &mut handle, out) }));
        r?;
        if handle.is_null() {
            return Err(CallError::garbage("open succeeded without a device handle"));
        }
        Ok(Session { lib: self.clone(), handle, push: None })
    }
}

/// What the plugin's pushes are handed to.
pub type PushSink = Box<dyn Fn(&[abi::Sample]) + Send + Sync>;

/// One device session: the handle `open` returned. Calls take `&mut self`, so one thread at a
/// time calls the device, as the ABI requires. Dropping it closes the device.
#[derive(Debug)]
pub struct Session {
    lib: Arc<Library>,
    handle: *mut c_void,
    /// The push context given to `subscribe`, freed after `close`.
    push: Option<*mut PushSink>,
}

// SAFETY: the ABI lets a device be called from any thread as long as one thread calls it at a
// time; `Session` is not `Sync` and its calls take `&mut self`.
unsafe impl Send for Session {}

/// Receives a plugin's pushes; never unwinds into the plugin.
unsafe extern "C" fn push_trampoline(ctx: *mut c_void, samples: *const abi::Sample, n: usize) {
    if ctx.is_null() || (samples.is_null() && n > 0) || n > 1_000_000 {
        return;
    }
    // SAFETY: `ctx` is the `PushSink` this session gave to `subscribe`, alive until after `close`;
    // the plugin passes `n` readable samples for the call.
    let (sink, samples) =
        unsafe { (&*(ctx as *const PushSink), if n == 0 { &[][..] } else { std::slice::from_raw_parts(samples, n) }) };
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sink(samples)));
}

impl Session {
    pub fn library(&self) -> &Arc<Library> {
        &self.lib
    }

    /// `points`: the device's point list as JSON.
    pub fn points(&mut self) -> Result<Vec<u8>, CallError> {
        let (lib, h) = (&self.lib, self.handle);
        // SAFETY: a live handle from `open`, called from one thread at a time (`&mut self`).
        lib.result(lib.call(|out| unsafe { (lib.decl.points)(h, out) }))
    }

    /// `read`: one sample per point, checked to name the points asked for, in order.
    pub fn read(&mut self, points: &[u32]) -> Result<Vec<abi::Sample>, CallError> {
        let mut samples = vec![abi::Sample::new(u32::MAX, f64::NAN, abi::QUALITY_BAD); points.len()];
        let (lib, h) = (&self.lib, self.handle);
        // SAFETY: `points` and `samples` are valid for `points.len()` elements for the call, and
        // the handle is live and used by one thread at a time.
        lib.result(
            lib.call(|out| unsafe { (lib.decl.read)(h, points.as_ptr(), points.len(), samples.as_mut_ptr(), out) }),
        )?;
        if let Some((s, p)) = samples.iter().zip(points).find(|(s, p)| s.point != **p) {
            return Err(CallError::garbage(format!(
                "read returned a sample of point {} where point {p} was asked for",
                s.point
            )));
        }
        Ok(samples)
    }

    /// `write`.
    pub fn write(&mut self, point: u32, value: f64, priority: u8) -> Result<(), CallError> {
        let (lib, h) = (&self.lib, self.handle);
        // SAFETY: a live handle, one thread at a time; `out` is valid.
        lib.result(lib.call(|out| unsafe { (lib.decl.write)(h, point, value, priority, out) })).map(drop)
    }

    /// `relinquish`.
    pub fn relinquish(&mut self, point: u32, priority: u8) -> Result<(), CallError> {
        let (lib, h) = (&self.lib, self.handle);
        // SAFETY: a live handle, one thread at a time; `out` is valid.
        lib.result(lib.call(|out| unsafe { (lib.decl.relinquish)(h, point, priority, out) })).map(drop)
    }

    /// `health`: JSON.
    pub fn health(&mut self) -> Result<Vec<u8>, CallError> {
        let (lib, h) = (&self.lib, self.handle);
        // SAFETY: a live handle, one thread at a time; `out` is valid.
        lib.result(lib.call(|out| unsafe { (lib.decl.health)(h, out) }))
    }

    /// `subscribe`: the plugin pushes changes of `points` to `sink` until the session closes.
    pub fn subscribe(&mut self, points: &[u32], sink: PushSink) -> Result<(), CallError> {
        if self.push.is_some() {
            return Err(CallError { status: abi::STATUS_INVALID, message: "already subscribed".into() });
        }
        let ctx: *mut PushSink = Box::into_raw(Box::new(sink));
        let (lib, h) = (&self.lib, self.handle);
        // SAFETY: `points` is valid for the call; `ctx` stays valid until after `close` (freed in
        // `drop`), as the ABI promises the plugin; the handle is live.
        let r = lib.result(lib.call(|out| unsafe {
            (lib.decl.subscribe)(h, points.as_ptr(), points.len(), push_trampoline, ctx as *mut c_void, out)
        }));
        // Kept even when refused: the plugin may have started a subscription before failing.
        self.push = Some(ctx);
        r.map(drop)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // SAFETY: the handle came from `open` and is closed once, after the last call.
        unsafe { (self.lib.decl.close)(self.handle) };
        if let Some(ctx) = self.push.take() {
            // SAFETY: `close` has returned, so the plugin calls the push callback no more; the
            // context was made by `Box::into_raw` in `subscribe` and is freed once.
            drop(unsafe { Box::from_raw(ctx) });
        }
    }
}
