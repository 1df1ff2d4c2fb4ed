//! Hot reload of the configuration: on SIGHUP, `POST /api/t3000/config/reload` (admin) or a change
//! of the file (`[server] watch_config`), the file and the environment are read again, validated as
//! at start, compared with the configuration in force, and what can change live is applied.
//!
//! # What a reload does ([`Reload::reload`])
//! 1. Reads the file and parses it with the environment overlaid, with every check of a start
//!    (the [`Source`] the composition root gives). An invalid file changes nothing: the error
//!    (key, line or environment variable) is logged, kept for `/healthz` and returned.
//! 2. Compares the new configuration with the one in force, key by key ([`diff`]): tables are
//!    compared down to their leaves, an array is one value (`auth.cors_origins`), and devices are
//!    compared one by one by name (`devices[ahu-1]`).
//! 3. Sorts each changed key: **live** when a registered handler takes it ([`Reload::on`]), else
//!    **restart needed**, with why ([`restart_reason`]). A key nobody takes is never ignored
//!    silently: it is reported as needing a restart, and keeps its running value.
//! 4. Builds the new effective configuration: the file's, with every restart-needed key at its
//!    running value; calls each handler whose keys changed, with it; keeps it as the current
//!    configuration ([`Reload::current`]).
//! 5. Audits one entry (`config.reload`: who or what triggered it, old and new values of the
//!    changed keys, secrets masked, the keys that need a restart, or the error), logs a line, and
//!    keeps the outcome for `/healthz` ([`Reload::last`]).
//!
//! # Making a section live
//! A service that owns settings gets a `reconfigure(&Settings)` method (interior mutability: a
//! `RwLock` or atomics), and the composition root (`cli/serve.rs`) registers it with one line:
//!
//! ```ignore
//! reload.on(&["alerts"], move |c| alerts.reconfigure(&c.alerts));
//! ```
//!
//! The keys are dotted prefixes (`auth.cors_origins`, or a whole section `websocket`). A handler
//! that can refuse uses [`Reload::try_on`], one that must await (devices) [`Reload::on_async`], one
//! that acts at every reload (the plugin folders' scan) [`Reload::on_each_reload`]. Handlers run in
//! the order they were registered. Until a key is registered, a change of it
//! is reported as "restart needed".

use crate::service::Issuer;
use crate::service::audit::AuditLog;
use futures::future::BoxFuture;
use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use t3_core::clock::Clock;
use t3_core::config::{Config, ConfigError};

/// What started a reload.
#[derive(Debug, Clone)]
pub enum Trigger {
    /// The process got SIGHUP.
    Sighup,
    /// The file changed (`[server] watch_config`).
    FileWatch,
    /// `POST /api/t3000/config/reload`, by this user.
    Api(Issuer),
}

impl Trigger {
    /// `sighup`, `file-watch` or `api`.
    pub fn name(&self) -> &'static str {
        match self {
            Trigger::Sighup => "sighup",
            Trigger::FileWatch => "file-watch",
            Trigger::Api(_) => "api",
        }
    }

    /// Who acts, for the audit log: the user, or the trigger's name.
    fn issuer(&self) -> Issuer {
        match self {
            Trigger::Api(who) => who.clone(),
            other => Issuer { actor: other.name().to_owned(), remote: None, role: None },
        }
    }
}

/// Parses the text of the configuration file (named by the second argument in errors) with the
/// environment overlaid, with every check a start makes.
pub type Parse = Box<dyn Fn(&str, &str) -> Result<Config, ConfigError> + Send + Sync>;

/// Where the configuration comes from: a file, and how its text becomes a [`Config`].
pub struct Source {
    pub path: PathBuf,
    pub parse: Parse,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source").field("path", &self.path).finish_non_exhaustive()
    }
}

/// Why a reload changed nothing.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReloadError {
    /// The server runs without a configuration file (`t3000 demo`).
    #[error(
        "this server runs without a configuration file (t3000 demo): there is nothing to reload; start it with `t3000 serve --config FILE`"
    )]
    NoFile,
    /// The file cannot be read, or is invalid: nothing changed.
    #[error("{0}")]
    Invalid(ConfigError),
}

/// One changed key: its value in force before and in the file now (masked for secrets).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct KeyChange {
    /// Dotted key: `auth.login_max_failures`, `devices[ahu-1]` (a device, by name).
    pub key: String,
    /// The value in force before the reload; absent when the key was unset (a new device).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<serde_json::Value>,
    /// The value in the file; absent when the key is gone (a removed device).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<serde_json::Value>,
    /// Why it needs a restart (restart-needed keys only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A live change that did not take: a device whose polling did not start, with why.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ApplyFailure {
    pub key: String,
    pub error: String,
}

/// What a reload did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReloadReport {
    /// `sighup`, `file-watch` or `api`.
    pub trigger: String,
    /// The user (API) or the trigger's name.
    pub actor: String,
    /// When, in epoch microseconds.
    pub at_us: i64,
    /// The configuration file read.
    pub file: String,
    /// Keys applied live: changed in the file, or not taken at an earlier reload and taken now.
    pub applied: Vec<KeyChange>,
    /// Keys that changed in the file and keep their running value until a restart.
    pub restart_needed: Vec<KeyChange>,
    /// Live changes that did not take (not listed under `applied`). They stay in the
    /// configuration in force, and the next reload tries them again, whether the file changed or
    /// not (a restart does too).
    pub failed: Vec<ApplyFailure>,
}

/// The last reload, for `/healthz`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LastReload {
    /// When, in epoch microseconds.
    pub at_us: i64,
    /// `sighup`, `file-watch` or `api`.
    pub trigger: String,
    /// Whether the file was valid (and applied).
    pub ok: bool,
    /// Keys applied live.
    pub applied: Vec<String>,
    /// Keys that changed in the file and need a restart.
    pub restart_needed: Vec<String>,
    /// Why the file was refused (nothing changed), or live changes that did not take.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Where in the file a refusal points.
    #[serde(flatten)]
    pub at: ErrorPlace,
}

/// Where a configuration error points: its key, line and environment variable, those known.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct ErrorPlace {
    /// The dotted key the error is about (`query.threads`, `devices[2].unit_id`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Its line in the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// The environment variable its value came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env_var: Option<String>,
}

impl From<&ConfigError> for ErrorPlace {
    fn from(e: &ConfigError) -> Self {
        ErrorPlace { key: e.key.clone().filter(|k| !k.is_empty()), line: e.line, env_var: e.env_var.clone() }
    }
}

type Failures = Vec<(String, String)>;
type ApplyFn = dyn Fn(Arc<Config>) -> BoxFuture<'static, Failures> + Send + Sync;

/// A part of the server that takes some keys live.
struct Handler {
    keys: Vec<String>,
    /// Runs at every reload that is applied, changed keys or not ([`Reload::on_each_reload`]).
    always: bool,
    apply: Box<ApplyFn>,
    /// The changes it failed to take at the last reload that ran it: the next reload runs it
    /// again even when the file did not change (the operator fixed what it needed: a folder's
    /// permissions, a plugin), and reports them as applied once it succeeds.
    owed: Mutex<Vec<KeyChange>>,
}

impl Handler {
    fn covers(&self, key: &str) -> bool {
        self.keys.iter().any(|p| covers(p, key))
    }
}

/// Whether the dotted prefix `prefix` covers `key` (itself, a key under it, a device of it).
fn covers(prefix: &str, key: &str) -> bool {
    key.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
}

/// Why a key nobody takes live needs a restart: the first matching prefix's reason.
const RESTART_REASONS: &[(&str, &str)] = &[
    ("server.listen", "the listener is bound at start"),
    ("server", "the HTTP listener's limits are set at start"),
    ("storage.data_dir", "the data directory is opened at start"),
    ("storage", "the storage engine takes it at start"),
    ("wal", "the storage engine takes it at start"),
    ("compaction", "the storage engine takes it at start"),
    ("rollups", "the storage engine takes it at start"),
    ("query", "the storage engine takes it at start"),
    ("ingest", "the storage engine takes it at start"),
    ("retention.check_interval_secs", "the maintenance timer is set at start"),
    ("log.format", "the format of log lines is set at start"),
    ("collector", "the collector takes it at start"),
    ("auth.admin_password", "only read at the first start, to create the user admin"),
    ("plugins.call_timeout_ms", "plugin devices are opened with it; a restart opens them again"),
];

/// Why `key` needs a restart.
pub fn restart_reason(key: &str) -> &'static str {
    RESTART_REASONS
        .iter()
        .find(|(p, _)| covers(p, key))
        .map_or("no part of the server takes it while running", |(_, why)| why)
}

/// The hot-reload service (see the module documentation).
pub struct Reload {
    source: Option<Source>,
    current: RwLock<Arc<Config>>,
    handlers: Mutex<Vec<Arc<Handler>>>,
    last: Mutex<Option<LastReload>>,
    /// One reload at a time.
    running: tokio::sync::Mutex<()>,
    /// A hash of the file's text as last read (at start or by a reload), for the file watch.
    seen: Mutex<Option<u64>>,
    audit: AuditLog,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Reload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reload").field("source", &self.source).field("last", &self.last).finish_non_exhaustive()
    }
}

fn hash_of(text: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

impl Reload {
    /// The service for a server started with `config` from `source` (none: `t3000 demo`).
    pub fn new(config: Config, source: Option<Source>, audit: AuditLog, clock: Arc<dyn Clock>) -> Arc<Reload> {
        let seen = source.as_ref().and_then(|s| std::fs::read(&s.path).ok()).map(|t| hash_of(&t));
        Arc::new(Reload {
            source,
            current: RwLock::new(Arc::new(config)),
            handlers: Mutex::default(),
            last: Mutex::default(),
            running: tokio::sync::Mutex::new(()),
            seen: Mutex::new(seen),
            audit,
            clock,
        })
    }

    /// Registers a part of the server that takes the keys under `keys` (dotted prefixes) live:
    /// `apply` gets the new effective configuration whenever one of them changed.
    pub fn on(&self, keys: &[&str], apply: impl Fn(&Config) + Send + Sync + 'static) {
        self.try_on(keys, move |c| {
            apply(c);
            Ok(())
        });
    }

    /// [`Reload::on`] for a part that can refuse: its error is reported as not taken for its keys
    /// (the reload goes on).
    pub fn try_on(&self, keys: &[&str], apply: impl Fn(&Config) -> Result<(), String> + Send + Sync + 'static) {
        let names: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
        let apply = Arc::new(apply);
        self.on_async(keys, move |cfg| {
            let (apply, names) = (apply.clone(), names.clone());
            async move {
                match apply(&cfg) {
                    Ok(()) => Vec::new(),
                    Err(e) => vec![(names.join(", "), e)],
                }
            }
        });
    }

    /// [`Reload::on`] for a part that must await; `apply` returns the keys that did not take,
    /// with why.
    pub fn on_async<F, Fut>(&self, keys: &[&str], apply: F)
    where
        F: Fn(Arc<Config>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Failures> + Send + 'static,
    {
        self.register(keys, false, apply);
    }

    /// [`Reload::on`] for a part that acts at every reload that is applied, whether its keys
    /// changed or not (the plugin folders are scanned again each time).
    pub fn on_each_reload(&self, keys: &[&str], apply: impl Fn(&Config) + Send + Sync + 'static) {
        let apply = Arc::new(apply);
        self.register(keys, true, move |cfg| {
            apply(&cfg);
            std::future::ready(Vec::new())
        });
    }

    fn register<F, Fut>(&self, keys: &[&str], always: bool, apply: F)
    where
        F: Fn(Arc<Config>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Failures> + Send + 'static,
    {
        let keys = keys.iter().map(|k| (*k).to_owned()).collect();
        let apply: Box<ApplyFn> = Box::new(move |cfg| Box::pin(apply(cfg)));
        self.handlers.lock().push(Arc::new(Handler { keys, always, apply, owed: Mutex::default() }));
    }

    /// The configuration in force.
    pub fn current(&self) -> Arc<Config> {
        self.current.read().clone()
    }

    /// The last reload's outcome (none since start).
    pub fn last(&self) -> Option<LastReload> {
        self.last.lock().clone()
    }

    /// Whether a key is taken live.
    fn is_live(&self, key: &str) -> bool {
        self.handlers.lock().iter().any(|h| h.covers(key))
    }

    /// Reads the file and the environment again and applies what changed (see the module
    /// documentation).
    pub async fn reload(&self, trigger: Trigger) -> Result<ReloadReport, ReloadError> {
        let _one = self.running.lock().await;
        let who = trigger.issuer();
        let at_us = self.clock.now_us();
        let Some(source) = &self.source else {
            self.refused(&trigger, at_us, &ReloadError::NoFile, None);
            return Err(ReloadError::NoFile);
        };
        let file = source.path.display().to_string();
        let parsed = match std::fs::read(&source.path) {
            Ok(bytes) => {
                *self.seen.lock() = Some(hash_of(&bytes));
                match String::from_utf8(bytes) {
                    // Caught between an editor's or `cp`'s truncation and its write, most likely;
                    // applied, it would remove every device.
                    Ok(text) if text.trim().is_empty() => Err(file_error(
                        &file,
                        "is empty (caught while being written?); a reload never applies an empty file",
                    )),
                    Ok(text) => (source.parse)(&text, &file),
                    Err(_) => Err(file_error(&file, "is not UTF-8 text")),
                }
            }
            Err(e) => Err(file_error(&file, &format!("cannot be read: {e}"))),
        };
        let new = match parsed {
            Ok(c) => c,
            Err(e) => {
                let err = ReloadError::Invalid(e);
                self.refused(&trigger, at_us, &err, Some(&file));
                return Err(err);
            }
        };
        let old = self.current();
        let (applied, restart_needed, effective) = match self.plan(&old, &new) {
            Ok(p) => p,
            Err(e) => {
                let err = ReloadError::Invalid(e);
                self.refused(&trigger, at_us, &err, Some(&file));
                return Err(err);
            }
        };
        let effective = Arc::new(effective);
        *self.current.write() = effective.clone();
        let handlers: Vec<Arc<Handler>> = self.handlers.lock().clone();
        let mut applied = applied;
        let mut failed = Vec::new();
        // In the order they were registered (the plugins are scanned before devices start).
        for h in handlers.iter() {
            let owed = std::mem::take(&mut *h.owed.lock());
            if !(h.always || !owed.is_empty() || applied.iter().any(|c| h.covers(&c.key))) {
                continue;
            }
            // What it failed to take before and the file has not changed since.
            let owed: Vec<KeyChange> = owed.into_iter().filter(|o| !applied.iter().any(|c| c.key == o.key)).collect();
            applied.extend(owed);
            let failures = (h.apply)(effective.clone()).await;
            if failures.is_empty() {
                continue;
            }
            // A failure names the keys it is about ("log.file, log.rotate, log.keep", "devices[b]").
            let failing = |c: &KeyChange| failures.iter().any(|(k, _)| k.split(", ").any(|k| covers(k, &c.key)));
            let (not_taken, taken): (Vec<KeyChange>, Vec<KeyChange>) =
                applied.drain(..).partition(|c| h.covers(&c.key) && failing(c));
            applied = taken;
            *h.owed.lock() = not_taken;
            failed.extend(failures.into_iter().map(|(key, error)| ApplyFailure { key, error }));
        }
        let report = ReloadReport {
            trigger: trigger.name().to_owned(),
            actor: who.actor.clone(),
            at_us,
            file: file.clone(),
            applied,
            restart_needed,
            failed,
        };
        self.succeeded(&who, &report);
        Ok(report)
    }

    /// The changed keys sorted into live and restart-needed, and the effective configuration:
    /// `new` with every restart-needed key at its value in `old`.
    fn plan(&self, old: &Config, new: &Config) -> Result<(Vec<KeyChange>, Vec<KeyChange>, Config), ConfigError> {
        let old_tree = tree(old);
        let mut effective = tree(new);
        let (mut live, mut restart) = (Vec::new(), Vec::new());
        for change in diff(&old_tree, &effective) {
            if self.is_live(&change.key) {
                live.push(change);
            } else {
                restart.push(KeyChange { reason: Some(restart_reason(&change.key).to_owned()), ..change });
            }
        }
        for c in &restart {
            set_key(&mut effective, &c.key, lookup(&old_tree, &c.key));
        }
        let config = toml::Value::Table(effective)
            .try_into::<Config>()
            .map_err(|e| ConfigError::new("", format!("the effective configuration does not hold together: {e}")))?;
        // What reports, the audit log and the log show: the values with secrets redacted.
        let (shown_old, shown_new) = (tree(&old.without_secrets()), tree(&new.without_secrets()));
        let shown = |c: KeyChange| KeyChange {
            old: c.old.and(lookup(&shown_old, &c.key)).map(|v| json(&v)),
            new: c.new.and(lookup(&shown_new, &c.key)).map(|v| json(&v)),
            ..c
        };
        Ok((live.into_iter().map(shown).collect(), restart.into_iter().map(shown).collect(), config))
    }

    /// Logs, audits and keeps a reload that changed nothing.
    fn refused(&self, trigger: &Trigger, at_us: i64, e: &ReloadError, file: Option<&str>) {
        let who = trigger.issuer();
        tracing::error!(trigger = trigger.name(), actor = %who.actor, error = %e, "configuration reload refused; nothing changed");
        let at = match e {
            ReloadError::Invalid(c) => ErrorPlace::from(c),
            ReloadError::NoFile => ErrorPlace::default(),
        };
        let target = file.map(|f| format!("config:{f}"));
        self.audit.record(who.remote, &who.actor, "config.reload", target, None, None, &format!("refused: {e}"));
        *self.last.lock() = Some(LastReload {
            at_us,
            trigger: trigger.name().to_owned(),
            ok: false,
            applied: Vec::new(),
            restart_needed: Vec::new(),
            error: Some(e.to_string()),
            at,
        });
    }

    /// Logs, audits and keeps a reload that was applied.
    fn succeeded(&self, who: &Issuer, r: &ReloadReport) {
        let keys = |v: &[KeyChange]| v.iter().map(|c| c.key.clone()).collect::<Vec<_>>();
        let (applied, restart) = (keys(&r.applied), keys(&r.restart_needed));
        let failures: Vec<String> = r.failed.iter().map(|f| format!("{}: {}", f.key, f.error)).collect();
        tracing::info!(trigger = %r.trigger, actor = %r.actor, applied = ?applied, "configuration reloaded");
        if !restart.is_empty() {
            tracing::warn!(keys = ?restart, "configuration keys changed that need a restart; they keep their running values");
        }
        if !failures.is_empty() {
            tracing::error!(failed = ?failures, "configuration reloaded, but some changes did not take");
        }
        let values = |pick: fn(&KeyChange) -> Option<serde_json::Value>| {
            let all = r.applied.iter().chain(&r.restart_needed);
            serde_json::Value::Object(all.map(|c| (c.key.clone(), pick(c).unwrap_or_default())).collect())
        };
        let mut result =
            if applied.is_empty() && restart.is_empty() { "ok: no change".to_owned() } else { "ok".into() };
        if !restart.is_empty() {
            result.push_str(&format!("; restart needed: {}", restart.join(", ")));
        }
        if !failures.is_empty() {
            result.push_str(&format!("; failed: {}", failures.join("; ")));
        }
        self.audit.record(
            who.remote.clone(),
            &who.actor,
            "config.reload",
            Some(format!("config:{}", r.file)),
            Some(values(|c| c.old.clone())),
            Some(values(|c| c.new.clone())),
            &result,
        );
        *self.last.lock() = Some(LastReload {
            at_us: r.at_us,
            trigger: r.trigger.clone(),
            ok: true,
            applied,
            restart_needed: restart,
            error: (!failures.is_empty()).then(|| failures.join("; ")),
            at: ErrorPlace::default(),
        });
    }

    /// Watches the file: every `period`, while `[server] watch_config` is on, reloads when the
    /// file's text differs from what was last read and has stayed the same for one period (so a
    /// file caught half-written by an editor is not applied). Runs as long as the server.
    pub fn spawn_watch(self: &Arc<Self>, period: Duration) {
        let Some(path) = self.source.as_ref().map(|s| s.path.clone()) else { return };
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // The hash of a new text seen at the previous look.
            let mut settling: Option<u64> = None;
            loop {
                tick.tick().await;
                if !me.current().server.watch_config {
                    continue;
                }
                // A file that cannot be read now (being replaced) is looked at again next time.
                let Ok(bytes) = tokio::fs::read(&path).await else { continue };
                let hash = Some(hash_of(&bytes));
                if *me.seen.lock() == hash {
                    settling = None;
                } else if settling != hash {
                    settling = hash;
                } else {
                    settling = None;
                    // The outcome is logged, audited and kept for /healthz.
                    let _ = me.reload(Trigger::FileWatch).await;
                }
            }
        });
    }
}

fn file_error(file: &str, message: &str) -> ConfigError {
    ConfigError { origin: file.to_owned(), key: None, line: None, env_var: None, message: message.to_owned() }
}

/// A configuration as a TOML table (what the file would hold, defaults written out).
fn tree(c: &Config) -> toml::Table {
    toml::Table::try_from(c).expect("a configuration serializes to TOML")
}

/// The leaves of `t` under `prefix`: a table's keys recursively, an array or scalar as one value,
/// the top-level `devices` array by device name (`devices[ahu-1]`).
fn leaves(t: &toml::Table, prefix: &str, out: &mut BTreeMap<String, toml::Value>) {
    for (k, v) in t {
        let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        match v {
            toml::Value::Table(sub) => leaves(sub, &key, out),
            toml::Value::Array(devices) if key == "devices" => {
                for d in devices {
                    let name = d.get("name").and_then(|n| n.as_str()).unwrap_or_default();
                    out.insert(format!("devices[{name}]"), d.clone());
                }
            }
            v => {
                out.insert(key, v.clone());
            }
        }
    }
}

fn json(v: &toml::Value) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or_default()
}

/// The keys whose values differ between `old` and `new`, in key order (values unmasked).
pub fn diff(old: &toml::Table, new: &toml::Table) -> Vec<KeyChange> {
    let (mut a, mut b) = (BTreeMap::new(), BTreeMap::new());
    leaves(old, "", &mut a);
    leaves(new, "", &mut b);
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| KeyChange { key: k.clone(), old: a.get(k).map(json), new: b.get(k).map(json), reason: None })
        .collect()
}

/// The value of a key [`diff`] names, in `t`.
fn lookup(t: &toml::Table, key: &str) -> Option<toml::Value> {
    if let Some(name) = device_name(key) {
        return devices(t).and_then(|ds| ds.iter().find(|d| is_device(d, name)).cloned());
    }
    let mut parts = key.split('.');
    let mut v = t.get(parts.next()?)?;
    for p in parts {
        v = v.get(p)?;
    }
    Some(v.clone())
}

/// Sets (or with `None` removes) a key [`diff`] names in `t`.
fn set_key(t: &mut toml::Table, key: &str, value: Option<toml::Value>) {
    if let Some(name) = device_name(key) {
        let list = match t.entry("devices").or_insert_with(|| toml::Value::Array(Vec::new())) {
            toml::Value::Array(list) => list,
            _ => return,
        };
        let at = list.iter().position(|d| is_device(d, name));
        match (at, value) {
            (Some(i), Some(v)) => list[i] = v,
            (Some(i), None) => {
                list.remove(i);
            }
            (None, Some(v)) => list.push(v),
            (None, None) => {}
        }
        return;
    }
    let (path, last) = key.rsplit_once('.').map_or(("", key), |(p, l)| (p, l));
    let mut table = t;
    for p in path.split('.').filter(|p| !p.is_empty()) {
        let next = table.entry(p).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let toml::Value::Table(next) = next else { return };
        table = next;
    }
    match value {
        Some(v) => {
            table.insert(last.to_owned(), v);
        }
        None => {
            table.remove(last);
        }
    }
}

fn device_name(key: &str) -> Option<&str> {
    key.strip_prefix("devices[").and_then(|k| k.strip_suffix(']'))
}

fn devices(t: &toml::Table) -> Option<&Vec<toml::Value>> {
    t.get("devices").and_then(|d| d.as_array())
}

fn is_device(d: &toml::Value, name: &str) -> bool {
    d.get("name").and_then(|n| n.as_str()) == Some(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use t3_storage::catalog::AuditFilter;

    const NOW: i64 = 1_795_651_200_000_000;

    fn device(name: &str, interval: u64) -> String {
        format!(
            "[[devices]]\nname = \"{name}\"\nprotocol = \"modbus-tcp\"\nip_address = \"127.0.0.1\"\nunit_id = 1\nprofile = \"T3-controller\"\npoll_interval_ms = {interval}\n"
        )
    }

    fn parse(text: &str) -> Config {
        Config::parse(text, "t.toml", Vec::new()).unwrap()
    }

    #[test]
    fn diff_names_leaves_whole_arrays_and_devices_by_name() {
        let old = parse(&format!(
            "[auth]\ncors_origins = [\"https://a.example\"]\n{}{}",
            device("a", 1000),
            device("b", 1000)
        ));
        let new = parse(&format!(
            "[auth]\ncors_origins = [\"https://b.example\"]\nlogin_max_failures = 2\n{}{}",
            device("a", 500),
            device("c", 1000)
        ));
        let keys: Vec<String> = diff(&tree(&old), &tree(&new)).into_iter().map(|c| c.key).collect();
        assert_eq!(
            keys,
            ["auth.cors_origins", "auth.login_max_failures", "devices[a]", "devices[b]", "devices[c]"],
            "one entry per leaf, per array, per device"
        );
        let changes = diff(&tree(&old), &tree(&new));
        let b = changes.iter().find(|c| c.key == "devices[b]").unwrap();
        assert!(b.old.is_some() && b.new.is_none(), "a removed device has no new value: {b:?}");
        let c = changes.iter().find(|c| c.key == "devices[c]").unwrap();
        assert!(c.old.is_none() && c.new.is_some(), "an added device has no old value: {c:?}");
        assert!(diff(&tree(&old), &tree(&old)).is_empty());
    }

    #[test]
    fn restart_reasons_cover_every_start_only_section() {
        assert_eq!(restart_reason("server.listen"), "the listener is bound at start");
        assert_eq!(restart_reason("server.idle_timeout_secs"), "the HTTP listener's limits are set at start");
        assert_eq!(restart_reason("storage.data_dir"), "the data directory is opened at start");
        assert_eq!(restart_reason("retention.check_interval_secs"), "the maintenance timer is set at start");
        assert_eq!(restart_reason("log.format"), "the format of log lines is set at start");
        assert_eq!(restart_reason("alerts.webhooks"), "no part of the server takes it while running");
        // A prefix covers whole segments only.
        assert!(covers("auth.cors_origins", "auth.cors_origins"));
        assert!(!covers("auth.cors", "auth.cors_origins"));
        assert!(covers("devices", "devices[a]"));
        assert!(covers("retention", "retention.points"));
    }

    struct World {
        reload: Arc<Reload>,
        file: PathBuf,
        catalog: Arc<t3_storage::catalog::Catalog>,
        auth_seen: Arc<Mutex<Vec<u32>>>,
        _base: crate::service::testing::Base,
    }

    /// A reload service over a file in a fresh directory, with a handler for
    /// `auth.login_max_failures` that records what it is given.
    fn world(text: &str) -> World {
        let base = crate::service::testing::base(NOW, Default::default());
        let file = base.dir.path().join("t3000.toml");
        std::fs::write(&file, text).unwrap();
        let audit = AuditLog::new(base.catalog.clone(), base.clock.clone());
        let parse: Parse = Box::new(|text, origin| Config::parse(text, origin, Vec::new()));
        let source = Source { path: file.clone(), parse };
        let reload = Reload::new(parse_ok(text), Some(source), audit, base.clock.clone());
        let auth_seen = Arc::new(Mutex::new(Vec::new()));
        let seen = auth_seen.clone();
        reload.on(&["auth.login_max_failures"], move |c| seen.lock().push(c.auth.login_max_failures));
        World { reload, file, catalog: base.catalog.clone(), auth_seen, _base: base }
    }

    fn parse_ok(text: &str) -> Config {
        Config::parse(text, "t.toml", Vec::new()).unwrap()
    }

    fn audits(catalog: &t3_storage::catalog::Catalog) -> Vec<t3_storage::catalog::AuditEntry> {
        catalog.audit(&AuditFilter { action: Some("config.reload".into()), limit: 100, ..Default::default() }).unwrap()
    }

    #[tokio::test]
    async fn live_keys_apply_and_restart_keys_keep_their_running_value() {
        let w = world("[server]\nlisten = \"127.0.0.1:9103\"\n");
        std::fs::write(
            &w.file,
            "[server]\nlisten = \"127.0.0.1:9200\"\n[auth]\nlogin_max_failures = 2\nadmin_password = \"secret-123\"\n",
        )
        .unwrap();
        let r = w.reload.reload(Trigger::Sighup).await.unwrap();
        let keys = |v: &[KeyChange]| v.iter().map(|c| c.key.clone()).collect::<Vec<_>>();
        assert_eq!(keys(&r.applied), ["auth.login_max_failures"]);
        assert_eq!(keys(&r.restart_needed), ["auth.admin_password", "server.listen"]);
        assert_eq!(r.restart_needed[1].reason.as_deref(), Some("the listener is bound at start"));
        assert_eq!(r.restart_needed[0].new, Some(serde_json::json!(t3_core::config::REDACTED)), "secrets are masked");
        assert_eq!(*w.auth_seen.lock(), [2], "the handler ran once with the new value");
        let now = w.reload.current();
        assert_eq!(now.auth.login_max_failures, 2);
        assert_eq!(now.server.listen, "127.0.0.1:9103", "the listener keeps its address");
        assert_eq!(now.auth.admin_password, "");

        // Reloading the same file again applies nothing more, and says again what needs a restart.
        let again = w.reload.reload(Trigger::Sighup).await.unwrap();
        assert!(again.applied.is_empty());
        assert_eq!(keys(&again.restart_needed), ["auth.admin_password", "server.listen"]);
        assert_eq!(w.auth_seen.lock().len(), 1, "a handler runs only when its keys change");

        let entries = audits(&w.catalog);
        assert_eq!(entries.len(), 2, "one audit entry per reload");
        let first = entries.iter().min_by_key(|e| e.seq).unwrap();
        assert_eq!(first.actor, "sighup");
        assert!(first.result.contains("restart needed: auth.admin_password, server.listen"), "{}", first.result);
        let text = serde_json::to_string(&first.new).unwrap();
        assert!(!text.contains("secret-123"), "no secret in the audit log: {text}");
        let last = w.reload.last().unwrap();
        assert!(last.ok);
        assert_eq!(last.restart_needed, ["auth.admin_password", "server.listen"]);
    }

    #[tokio::test]
    async fn an_invalid_file_changes_nothing_and_is_reported_with_key_and_line() {
        let w = world("[auth]\nlogin_max_failures = 4\n");
        std::fs::write(&w.file, "[auth]\nlogin_max_failures = 3\n\n[query]\nthreads = 0\n").unwrap();
        let who = Issuer { actor: "alice".into(), remote: Some("10.0.0.9".into()), role: None };
        let Err(ReloadError::Invalid(e)) = w.reload.reload(Trigger::Api(who)).await else { panic!("refused") };
        assert_eq!((e.key.as_deref(), e.line), (Some("query.threads"), Some(5)));
        assert_eq!(w.reload.current().auth.login_max_failures, 4, "nothing changed");
        assert!(w.auth_seen.lock().is_empty());
        let last = w.reload.last().unwrap();
        assert!(!last.ok);
        assert_eq!((last.at.key.as_deref(), last.at.line), (Some("query.threads"), Some(5)));
        assert!(last.error.unwrap().contains("t3000.toml:5: query.threads"));
        let entries = audits(&w.catalog);
        assert_eq!(entries.len(), 1);
        assert_eq!((entries[0].actor.as_str(), entries[0].remote.as_deref()), ("alice", Some("10.0.0.9")));
        assert!(entries[0].result.starts_with("refused: "), "{}", entries[0].result);

        // An empty file (a reload that caught `cp` or an editor between truncating and writing)
        // would remove every device: refused.
        for empty in ["", "\n  \n"] {
            std::fs::write(&w.file, empty).unwrap();
            let Err(ReloadError::Invalid(e)) = w.reload.reload(Trigger::Sighup).await else { panic!("refused") };
            assert!(e.to_string().contains("is empty"), "{e}");
        }

        // A file that cannot be read is refused the same way.
        std::fs::remove_file(&w.file).unwrap();
        let Err(ReloadError::Invalid(e)) = w.reload.reload(Trigger::Sighup).await else { panic!("refused") };
        assert!(e.to_string().contains("cannot be read"), "{e}");
    }

    #[tokio::test]
    async fn without_a_file_there_is_nothing_to_reload() {
        let base = crate::service::testing::base(NOW, Default::default());
        let audit = AuditLog::new(base.catalog.clone(), base.clock.clone());
        let reload = Reload::new(Config::default(), None, audit, base.clock.clone());
        assert!(matches!(reload.reload(Trigger::Sighup).await, Err(ReloadError::NoFile)));
        assert!(!reload.last().unwrap().ok);
        assert_eq!(audits(&base.catalog).len(), 1);
    }

    #[tokio::test]
    async fn devices_nobody_takes_are_restart_needed_and_keep_running_definitions() {
        let w = world(&device("a", 1000));
        std::fs::write(&w.file, format!("{}{}", device("a", 500), device("b", 1000))).unwrap();
        let r = w.reload.reload(Trigger::FileWatch).await.unwrap();
        assert_eq!(r.restart_needed.len(), 2);
        let now = w.reload.current();
        assert_eq!(now.devices.len(), 1);
        assert_eq!(now.devices[0].poll_interval_ms, 1000);
        // Once a handler takes devices, they are live.
        let seen = Arc::new(Mutex::new(0usize));
        let s = seen.clone();
        w.reload.on_async(&["devices"], move |c| {
            let s = s.clone();
            async move {
                *s.lock() = c.devices.len();
                vec![("devices[b]".to_owned(), "no".to_owned())]
            }
        });
        let r = w.reload.reload(Trigger::FileWatch).await.unwrap();
        let keys = |v: &[KeyChange]| v.iter().map(|c| c.key.clone()).collect::<Vec<_>>();
        assert_eq!(keys(&r.applied), ["devices[a]"], "what did not take is not listed as applied");
        assert_eq!(*seen.lock(), 2);
        assert_eq!(r.failed, [ApplyFailure { key: "devices[b]".into(), error: "no".into() }]);
        assert_eq!(w.reload.current().devices[0].poll_interval_ms, 500);
        assert!(w.reload.last().unwrap().error.unwrap().contains("devices[b]: no"));
    }

    /// A change that did not take is tried again at the next reload although the file is the
    /// same (the operator fixed what it needed), and reported as applied once it takes.
    #[tokio::test]
    async fn what_did_not_take_is_tried_again_at_the_next_reload() {
        let w = world("[log]\nlevel = \"info\"\n");
        let fixed = Arc::new(AtomicBool::new(false));
        let calls = Arc::new(AtomicUsize::new(0));
        let (f, n) = (fixed.clone(), calls.clone());
        w.reload.try_on(&["log.file", "log.rotate"], move |_| {
            n.fetch_add(1, Ordering::Relaxed);
            if f.load(Ordering::Relaxed) { Ok(()) } else { Err("permission denied".into()) }
        });
        let text = "[log]\nlevel = \"info\"\nfile = \"/var/log/t3000/t3000.log\"\n[auth]\nlogin_max_failures = 2\n";
        std::fs::write(&w.file, text).unwrap();
        let keys = |v: &[KeyChange]| v.iter().map(|c| c.key.clone()).collect::<Vec<_>>();
        let r = w.reload.reload(Trigger::Sighup).await.unwrap();
        assert_eq!(keys(&r.applied), ["auth.login_max_failures"]);
        assert_eq!(r.failed, [ApplyFailure { key: "log.file, log.rotate".into(), error: "permission denied".into() }]);

        // Still failing: tried again, still not applied.
        let r = w.reload.reload(Trigger::Sighup).await.unwrap();
        assert_eq!(calls.load(Ordering::Relaxed), 2);
        assert!(r.applied.is_empty());
        assert_eq!(r.failed.len(), 1);

        // Fixed: the same file takes now, and says so.
        fixed.store(true, Ordering::Relaxed);
        let r = w.reload.reload(Trigger::Sighup).await.unwrap();
        assert_eq!(calls.load(Ordering::Relaxed), 3);
        assert_eq!(keys(&r.applied), ["log.file"]);
        assert_eq!(r.applied[0].new, Some(serde_json::json!("/var/log/t3000/t3000.log")));
        assert!(r.failed.is_empty());
        assert!(w.reload.last().unwrap().error.is_none());

        // Taken: nothing is owed, so the next reload does not run it.
        let r = w.reload.reload(Trigger::Sighup).await.unwrap();
        assert_eq!(calls.load(Ordering::Relaxed), 3);
        assert!(r.applied.is_empty());
        assert_eq!(*w.auth_seen.lock(), [2], "the other handler ran once");
    }
}
