//! The plugin host: protocol drivers loaded from shared libraries (the ABI is
//! [`t3_plugin_abi`]).
//!
//! [`PluginHost::load`] scans the configured folders at start: every `.so` / `.dylib` / `.dll` in
//! them (not in subfolders) is loaded, its declaration checked before any other call
//! ([`ffi::Library::load`]), and its protocol described. What was found, loaded or refused, and
//! why, is kept for `t3000 plugins`, `GET /api/t3000/plugins` and `/healthz`. A configuration
//! reload scans the folders again and puts the new scan in place ([`PluginHost::take_scan`]):
//! devices opened before keep their plugin. A library is never unloaded (a changed library file
//! at a path already loaded needs a restart).
//!
//! A device whose `protocol` names a plugin gets a [`PluginDriver`] ([`PluginHost::open`]): a
//! thread of its own that owns the plugin's device session, so a call that hangs blocks neither
//! the async runtime nor other devices. Each call is awaited at most `[plugins] call_timeout_ms`;
//! past it the call counts as a timeout (the device goes offline like a Modbus device that stops
//! answering) and the device is not called again until the hung call returns. A panic inside the
//! plugin comes back as a status (the ABI requires every function to catch it), an answer that
//! breaks the ABI (bad JSON, samples of other points, an unknown status) as a plugin error: both
//! count as failed polls, never as a crash. What cannot be contained in-process is a plugin that
//! corrupts memory or aborts (a segfault): the process dies, every sample acknowledged before is
//! in the WAL, and the supervisor (systemd) restarts the server.

pub mod ffi;

mod device;

pub use device::{PluginDriver, PluginPoint, PointKind, PushedValue};

use ffi::{CallError, Library};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use t3_core::config::{ConfigError, DeviceConfig};
use t3_plugin_abi as abi;

/// One configuration key of a plugin protocol, as its `describe` states it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigKey {
    pub name: String,
    /// `string`, `integer`, `number`, `boolean` or `array`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub default: Option<serde_json::Value>,
    #[serde(default)]
    pub description: String,
}

/// What a plugin's protocol is, from its `describe`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProtocolInfo {
    /// For people: `BACnet/IP`.
    pub title: String,
    #[serde(default)]
    pub description: String,
    /// The plugin can look for devices.
    #[serde(default)]
    pub discovery: bool,
    /// The plugin can write points.
    #[serde(default)]
    pub writes: bool,
    /// The device keys of the protocol.
    #[serde(default)]
    pub keys: Vec<ConfigKey>,
}

/// The server's device keys a plugin receives too (the rest of `DEVICE_KEYS` are the server's own).
const SHARED_KEYS: [&str; 4] = ["name", "ip_address", "port", "timeout_ms"];

impl ProtocolInfo {
    /// Refuses keys a device could never give the plugin: a key the server reads itself (`points`,
    /// `unit_id`, ...) is never gathered into the plugin's options. The keys the server shares
    /// (`name`, `ip_address`, `port`, `timeout_ms`) may be described.
    fn check_keys(&self) -> Result<(), String> {
        for k in &self.keys {
            if t3_core::config::DEVICE_KEYS.contains(&k.name.as_str()) && !SHARED_KEYS.contains(&k.name.as_str()) {
                return Err(format!(
                    "its key \"{}\" is a key the server reads itself in [[devices]]; a plugin key needs a name of its own",
                    k.name
                ));
            }
        }
        Ok(())
    }
}

/// A loaded plugin.
#[derive(Debug)]
pub struct Plugin {
    pub lib: Arc<Library>,
    pub info: ProtocolInfo,
}

/// Whether a file became a plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryState {
    Loaded,
    Refused,
}

/// One file found in a plugin folder.
#[derive(Debug, Clone, Serialize)]
pub struct PluginEntry {
    pub file: PathBuf,
    pub state: EntryState,
    /// The protocol it serves (a loaded plugin, or one refused after its declaration was read).
    pub name: Option<String>,
    pub version: Option<String>,
    /// The ABI version it was built for, `major.minor`.
    pub abi: Option<String>,
    /// Why it was refused.
    pub reason: Option<String>,
    /// Its protocol, when loaded.
    pub protocol: Option<ProtocolInfo>,
}

/// The plugins of this server.
#[derive(Debug, Default)]
pub struct PluginHost {
    /// The last scan of the folders; a reload replaces it.
    scan: parking_lot::RwLock<Arc<Scan>>,
    call_timeout: Duration,
}

/// What one scan of the plugin folders found.
#[derive(Debug, Default)]
struct Scan {
    entries: Vec<PluginEntry>,
    plugins: BTreeMap<String, Arc<Plugin>>,
}

impl Scan {
    fn load_one(&mut self, file: PathBuf, call_timeout: Duration) {
        let mut entry = PluginEntry {
            file: file.clone(),
            state: EntryState::Refused,
            name: None,
            version: None,
            abi: None,
            reason: None,
            protocol: None,
        };
        let lib = match Library::load(&file) {
            Ok(lib) => lib,
            Err(e) => {
                if let ffi::LoadError::AbiMajor { plugin_major, plugin_minor } = &e {
                    entry.abi = Some(format!("{plugin_major}.{plugin_minor}"));
                }
                entry.reason = Some(format!("{}: {e}", file.display()));
                self.entries.push(entry);
                return;
            }
        };
        let (major, minor) = lib.abi();
        entry.name = Some(lib.name().to_owned());
        entry.version = Some(lib.version().to_owned());
        entry.abi = Some(format!("{major}.{minor}"));
        if let Some(other) = self.plugins.get(lib.name()) {
            entry.reason = Some(format!(
                "{}: protocol \"{}\" is already served by {}",
                file.display(),
                lib.name(),
                other.lib.path().display()
            ));
            self.entries.push(entry);
            return;
        }
        let describing = lib.clone();
        let info = match bounded(call_timeout, move || describing.describe()) {
            None => Err(format!("describe did not return within {} ms", call_timeout.as_millis())),
            Some(Err(e)) => Err(format!("describe failed: {e}")),
            Some(Ok(json)) => serde_json::from_slice::<ProtocolInfo>(&json)
                .map_err(|e| format!("describe returned an invalid protocol description: {e}"))
                .and_then(|info| info.check_keys().map(|()| info)),
        };
        match info {
            Ok(info) => {
                entry.state = EntryState::Loaded;
                entry.protocol = Some(info.clone());
                self.plugins.insert(lib.name().to_owned(), Arc::new(Plugin { lib, info }));
            }
            Err(reason) => entry.reason = Some(format!("{}: {reason}", file.display())),
        }
        self.entries.push(entry);
    }
}

/// Whether `path` looks like a shared library of this platform.
fn is_library(path: &Path) -> bool {
    matches!(path.extension().and_then(|e| e.to_str()), Some("so" | "dylib" | "dll"))
}

/// Runs `f` on a thread of its own and waits at most `timeout` for it; a call that does not
/// return in time is left running (its thread is leaked) and reported as a timeout.
fn bounded<T: Send + 'static>(timeout: Duration, f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("t3000-plugin-call".into())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .ok()?;
    rx.recv_timeout(timeout).ok()
}

impl PluginHost {
    /// A host without plugins.
    pub fn empty() -> PluginHost {
        PluginHost::default()
    }

    /// The folders to scan when `[plugins] dirs` is absent: `<data_dir>/plugins` and `plugins/`
    /// beside the running binary (not the binary's own folder: a cargo build leaves every cdylib of
    /// the workspace there, test plugins included).
    pub fn default_dirs(data_dir: &Path) -> Vec<PathBuf> {
        let mut dirs = vec![data_dir.join("plugins")];
        if let Some(exe_dir) = std::env::current_exe().ok().and_then(|e| e.parent().map(Path::to_owned)) {
            dirs.push(exe_dir.join("plugins"));
        }
        dirs
    }

    /// Loads every library in `dirs` (each file once, in name order; folders that do not exist are
    /// skipped). Never fails: what could not be loaded is an entry with its reason.
    pub fn load(dirs: &[PathBuf], call_timeout: Duration) -> PluginHost {
        let mut scan = Scan::default();
        let mut seen = std::collections::BTreeSet::new();
        for dir in dirs {
            let Ok(read) = std::fs::read_dir(dir) else { continue };
            let mut files: Vec<PathBuf> =
                read.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_file() && is_library(p)).collect();
            files.sort();
            for file in files {
                let canonical = file.canonicalize().unwrap_or_else(|_| file.clone());
                if seen.insert(canonical) {
                    scan.load_one(file, call_timeout);
                }
            }
        }
        for e in &scan.entries {
            match e.state {
                EntryState::Loaded => tracing::info!(
                    file = %e.file.display(),
                    protocol = e.name.as_deref().unwrap_or_default(),
                    version = e.version.as_deref().unwrap_or_default(),
                    "plugin loaded"
                ),
                EntryState::Refused => tracing::warn!(
                    file = %e.file.display(),
                    reason = e.reason.as_deref().unwrap_or_default(),
                    "plugin refused"
                ),
            }
        }
        PluginHost { scan: parking_lot::RwLock::new(Arc::new(scan)), call_timeout }
    }

    /// Puts `other`'s scan in place of this host's (a configuration reload scanned the folders
    /// again); the call timeout stays this host's.
    pub fn take_scan(&self, other: &PluginHost) {
        *self.scan.write() = other.scan();
    }

    fn scan(&self) -> Arc<Scan> {
        self.scan.read().clone()
    }

    /// Every file found, loaded or refused, in the order they were loaded.
    pub fn entries(&self) -> Vec<PluginEntry> {
        self.scan().entries.clone()
    }

    /// The plugin serving `protocol`.
    pub fn get(&self, protocol: &str) -> Option<Arc<Plugin>> {
        self.scan().plugins.get(protocol).cloned()
    }

    /// The loaded plugins, by protocol name.
    pub fn plugins(&self) -> Vec<Arc<Plugin>> {
        self.scan().plugins.values().cloned().collect()
    }

    pub fn call_timeout(&self) -> Duration {
        self.call_timeout
    }

    /// The JSON object a plugin device is opened (and checked) with: its options, plus `name`,
    /// `ip_address` and `port` when set, `timeout_ms` and `retries`.
    pub fn device_json(d: &DeviceConfig, default_timeout_ms: u64) -> serde_json::Value {
        let mut obj = serde_json::Map::new();
        for (k, v) in &d.options {
            obj.insert(k.clone(), serde_json::to_value(v).unwrap_or(serde_json::Value::Null));
        }
        obj.insert("name".into(), d.name.clone().into());
        if let Some(ip) = &d.ip_address {
            obj.insert("ip_address".into(), ip.clone().into());
        }
        if let Some(port) = d.port {
            obj.insert("port".into(), port.into());
        }
        obj.insert("timeout_ms".into(), d.timeout_ms.unwrap_or(default_timeout_ms).into());
        obj.insert("retries".into(), DEVICE_RETRIES.into());
        serde_json::Value::Object(obj)
    }

    /// Checks a plugin device's configuration with its plugin: the protocol must be loaded, and
    /// the plugin's error names the key (`devices[2].device_instance`). `key` is the device's
    /// dotted prefix.
    pub fn check_device(&self, d: &DeviceConfig, key: &str, default_timeout_ms: u64) -> Result<(), ConfigError> {
        let Some(protocol) = d.protocol.plugin() else { return Ok(()) };
        let plugin =
            self.get(protocol).ok_or_else(|| ConfigError::new(format!("{key}.protocol"), self.unknown(protocol)))?;
        let json = serde_json::to_vec(&Self::device_json(d, default_timeout_ms)).unwrap_or_default();
        let lib = plugin.lib.clone();
        match bounded(self.call_timeout, move || lib.check_config(&json)) {
            Some(Ok(())) => Ok(()),
            None => Err(ConfigError::new(
                format!("{key}.protocol"),
                format!("the {protocol} plugin did not check the device within {} ms", self.call_timeout.as_millis()),
            )),
            Some(Err(e)) => Err(config_error(key, protocol, &e)),
        }
    }

    /// Why no plugin serves `protocol`, naming the ones that are loaded.
    pub fn unknown(&self, protocol: &str) -> String {
        let scan = self.scan();
        let loaded: Vec<&str> = scan.plugins.keys().map(String::as_str).collect();
        let refused =
            scan.entries.iter().filter(|e| e.state == EntryState::Refused && e.name.as_deref() == Some(protocol));
        let mut msg = format!(
            "no loaded plugin serves protocol \"{protocol}\" (built in: modbus-tcp, modbus-rtu; plugins: {})",
            if loaded.is_empty() { "none".to_owned() } else { loaded.join(", ") }
        );
        for e in refused {
            msg.push_str(&format!("; {}", e.reason.as_deref().unwrap_or("refused")));
        }
        msg.push_str("; `t3000 plugins` lists what was found");
        msg
    }

    /// Opens a plugin device: its session on a thread of its own, its point list read, changes
    /// subscribed where the plugin can. Fails when the protocol is not loaded, the plugin refuses
    /// the configuration, or the point list cannot be read (the device may be offline). `opening`
    /// is the device's own flag across attempts: while an earlier attempt is stuck in the plugin,
    /// a new one fails at once instead of starting another thread.
    pub async fn open(
        &self,
        d: &DeviceConfig,
        default_timeout_ms: u64,
        opening: &Arc<std::sync::atomic::AtomicBool>,
    ) -> Result<Arc<PluginDriver>, crate::driver::DriverError> {
        let protocol = d.protocol.plugin().unwrap_or_default();
        let plugin = self.get(protocol).ok_or_else(|| crate::driver::DriverError::Invalid(self.unknown(protocol)))?;
        let json = serde_json::to_vec(&Self::device_json(d, default_timeout_ms)).unwrap_or_default();
        PluginDriver::open(plugin, &d.name, json, self.call_timeout, opening).await
    }

    /// Asks `protocol`'s plugin for devices; `request` holds its discovery options.
    pub async fn discover(&self, protocol: &str, request: &serde_json::Value) -> Result<Vec<Discovered>, String> {
        let plugin = self.get(protocol).ok_or_else(|| self.unknown(protocol))?;
        let bytes = serde_json::to_vec(request).unwrap_or_default();
        let lib = plugin.lib.clone();
        let timeout = self.call_timeout;
        let answer = tokio::task::spawn_blocking(move || bounded(timeout, move || lib.discover(&bytes)))
            .await
            .map_err(|e| e.to_string())?;
        match answer {
            None => Err(format!("the {protocol} plugin did not finish discovery within {} ms", timeout.as_millis())),
            Some(Err(e)) => Err(e.to_string()),
            Some(Ok(json)) => serde_json::from_slice(&json)
                .map_err(|e| format!("the {protocol} plugin returned an invalid discovery answer: {e}")),
        }
    }
}

/// How often a plugin retries a request before it reports the device unreachable.
pub const DEVICE_RETRIES: u32 = 1;

/// A device a plugin found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Discovered {
    pub name: String,
    pub address: String,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub vendor: Option<String>,
    /// The keys that add the device (`protocol` excepted).
    #[serde(default)]
    pub config: serde_json::Map<String, serde_json::Value>,
}

/// A plugin's configuration error as a located config error: its `key` becomes
/// `<device key>.<key>`.
fn config_error(key: &str, protocol: &str, e: &CallError) -> ConfigError {
    #[derive(Deserialize)]
    struct KeyMessage {
        key: String,
        message: String,
    }
    if e.status == abi::STATUS_CONFIG
        && let Ok(km) = serde_json::from_str::<KeyMessage>(&e.message)
    {
        let sub = if km.key.is_empty() { "protocol".to_owned() } else { km.key };
        return ConfigError::new(format!("{key}.{sub}"), km.message);
    }
    ConfigError::new(format!("{key}.protocol"), format!("the {protocol} plugin refused the device: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plugin_key_may_not_be_one_the_server_reads_itself() {
        let key = |name: &str| ConfigKey {
            name: name.into(),
            kind: "integer".into(),
            required: false,
            default: None,
            description: String::new(),
        };
        let info = |keys: Vec<ConfigKey>| ProtocolInfo {
            title: "T".into(),
            description: String::new(),
            discovery: false,
            writes: false,
            keys,
        };
        info(vec![key("device_instance"), key("port"), key("ip_address")]).check_keys().unwrap();
        let e = info(vec![key("points")]).check_keys().unwrap_err();
        assert!(e.contains("\"points\""), "{e}");
        assert!(info(vec![key("unit_id")]).check_keys().is_err());
    }
}
