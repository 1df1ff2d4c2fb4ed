//! Server configuration: serde types, defaults, environment overlay and [`Config::validate`].
//!
//! The configuration is one TOML document (see `config/t3000.example.toml`, which documents every
//! key with its default). [`Config::parse`] turns its text into a [`Config`]:
//!
//! 1. the text is parsed as TOML, keeping the byte span of every key and value;
//! 2. environment variables named `T3000__SECTION__KEY` replace single keys;
//! 3. the result is deserialized (unknown keys and wrong types are errors);
//! 4. [`Config::validate`] checks every range.
//!
//! Every error is a [`ConfigError`] that names the dotted key and where its value came from: the
//! line in the file, or the environment variable. This crate does no I/O: the caller reads the file
//! and passes `std::env::vars()` (or anything else in tests).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

mod alerts;
pub use alerts::{AlertEvent, AlertsConfig, ChannelConfig, RuleRef, Secret, SmtpConfig, SmtpTls};

/// What [`Config::without_secrets`] shows in place of a secret.
pub const REDACTED: &str = "<redacted>";

/// Prefix of the environment variables that override configuration keys.
pub const ENV_PREFIX: &str = "T3000__";

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// The whole server configuration, one field per TOML section.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `[server]`: the HTTP listener.
    pub server: ServerConfig,
    /// `[storage]`: where and how samples are persisted.
    pub storage: StorageConfig,
    /// `[wal]`: the write-ahead log.
    pub wal: WalConfig,
    /// `[compaction]`: merging of small Parquet files.
    pub compaction: CompactionConfig,
    /// `[retention]`: deletion of old data.
    pub retention: RetentionConfig,
    /// `[rollups]`: precomputed aggregates.
    pub rollups: RollupConfig,
    /// `[query]`: limits of the query endpoints.
    pub query: QueryConfig,
    /// `[log]`: diagnostics output.
    pub log: LogConfig,
    /// `[collector]`: defaults of the device polling service.
    pub collector: CollectorConfig,
    /// `[auth]`: users, sessions, login throttling, CORS.
    pub auth: AuthConfig,
    /// `[websocket]`: live updates on `/api/t3000/ws`.
    pub websocket: WebSocketConfig,
    /// `[ingest]`: what one batch of samples may hold.
    pub ingest: IngestConfig,
    /// `[plugins]`: where protocol plugins are loaded from.
    pub plugins: PluginsConfig,
    /// `[alerts]`: outbound alarm notifications (webhooks, e-mail).
    pub alerts: AlertsConfig,
    /// `[programs]`: the Control BASIC programs the server runs.
    pub programs: ProgramsConfig,
    /// `[[devices]]`: field devices polled by the collector.
    pub devices: Vec<DeviceConfig>,
}

/// `[plugins]`: loadable protocol drivers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginsConfig {
    /// Folders whose shared libraries (`.so`, `.dylib`, `.dll`) are loaded as plugins, not
    /// recursively; relative paths are relative to the working directory. When absent:
    /// `<storage.data_dir>/plugins` and `plugins/` beside the `t3000` binary. An empty list loads
    /// none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dirs: Option<Vec<PathBuf>>,
    /// The longest a plugin call may take, 100 ..= 600_000 ms; past it the device is marked offline
    /// and nothing more is asked of it until the call returns.
    pub call_timeout_ms: u64,
}

impl Default for PluginsConfig {
    fn default() -> Self {
        PluginsConfig { dirs: None, call_timeout_ms: 15_000 }
    }
}

/// `[server]`: the HTTP listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on; must parse as a socket address (`ip:port`).
    pub listen: String,
    /// Largest accepted request body, 1 KiB ..= 1 GiB; larger bodies get 413.
    pub max_body_bytes: u64,
    /// The most a shutdown (SIGTERM) takes, 1 ..= 3600 s: open requests get half of it (then their
    /// connections are dropped), the collector's stop and the final flush the rest.
    pub shutdown_timeout_secs: u64,
    /// A client must send a whole request head within this time of its first byte, 1 ..= 3600 s;
    /// else its connection is closed (a slowloris client holds nothing for long).
    pub header_read_timeout_secs: u64,
    /// A connection with no request in progress for this long is closed, and so is one whose
    /// client reads nothing of a response for as long, 1 ..= 86_400 s.
    pub idle_timeout_secs: u64,
    /// Most HTTP connections (WebSocket included) open at once; more wait until one closes.
    /// 0 (the default): derived at start from the open-files limit, leaving a reserve of file
    /// descriptors for storage and devices. A value that leaves no reserve is refused at start.
    pub max_connections: u64,
    /// Reload the configuration by itself when this file changes (looked at every 2 s, applied
    /// once the new text stayed the same for one look), as SIGHUP and
    /// `POST /api/t3000/config/reload` do.
    pub watch_config: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9103".to_owned(),
            max_body_bytes: 64 * MIB,
            shutdown_timeout_secs: 30,
            header_read_timeout_secs: 30,
            idle_timeout_secs: 60,
            max_connections: 0,
            watch_config: false,
        }
    }
}

/// `[ingest]`: what one batch of samples (a `POST /api/t3000/samples`, a library `ingest` call, a
/// round of device polls) may hold; a batch that breaks a rule is refused whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// A sample time stamped more than this far ahead of the server's clock is refused,
    /// 0 ..= 315_576_000_000 s (10,000 years: no limit).
    pub max_future_secs: u64,
    /// Distinct UTC days the samples of one batch may fall on (each becomes a Parquet file at the
    /// next flush), 1 ..= 36_500.
    pub max_days_per_batch: u32,
}

/// The largest `ingest.max_future_secs`: 10,000 years, past the last representable time stamp.
pub const MAX_FUTURE_SECS_LIMIT: u64 = 315_576_000_000;

impl Default for IngestConfig {
    fn default() -> Self {
        Self { max_future_secs: 300, max_days_per_batch: 31 }
    }
}

/// When a write is acknowledged to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AckLevel {
    /// Once the samples are durable in the write-ahead log.
    #[default]
    Wal,
    /// Only once the samples are in a Parquet file (slow; for tests and tooling).
    Parquet,
}

/// `[storage]`: where and how samples are persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Root directory of the WAL, Parquet files and catalog; non-empty.
    pub data_dir: PathBuf,
    /// When a write is acknowledged.
    pub ack: AckLevel,
    /// Persist the write buffer to Parquet at this many rows, 1_000 ..= 50_000_000.
    pub flush_rows: usize,
    /// A day with fewer rows than this in a flush is sparse: consecutive sparse days of one month
    /// share one file (opening a file costs about as much as reading some thousands of rows, so
    /// below this a day's own file costs more than it saves). 0 ..= 50_000_000; 0: every day its
    /// own file.
    pub sparse_day_rows: usize,
    /// ... or when the oldest buffered sample is this old, 1 ..= 86_400 s.
    pub flush_interval_secs: u64,
    /// Rows per Parquet row group, 1_024 ..= 1_048_576.
    pub row_group_rows: usize,
    /// Rows per Parquet data page, the unit the page index lets a read skip, 1_024 ..= 1_048_576.
    pub page_rows: usize,
    /// Zstandard level of Parquet pages, 1 ..= 22.
    pub zstd_level: i32,
    /// How often every data file's checksum is verified again in the background (a scrub), in
    /// seconds; 0 turns the periodic scrub off (files are still verified before their first read
    /// after a start). 0 or 60 ..= 31_536_000.
    pub scrub_interval_secs: u64,
    /// How fast the scrub reads, in MiB/s, so it never starves queries, 1 ..= 10_000.
    pub scrub_mib_per_sec: u64,
    /// The disk-space alarm is raised when the data directory's filesystem has less free space
    /// than this many MiB (or than `disk_alarm_free_percent`, whichever is more), 1 ..= 16_777_216.
    pub disk_alarm_free_mb: u64,
    /// ... or than this percentage of the filesystem's size, 0 ..= 50 (0: the MiB only).
    pub disk_alarm_free_percent: u8,
    /// Below this many MiB free, writes of samples are refused (503) before the disk is full, and
    /// compaction waits; below `disk_alarm_free_mb`. 0 ..= 16_777_215 (0: never refused).
    pub disk_floor_free_mb: u64,
    /// How often the free space is measured (also after every flush), 100 ..= 600_000 ms.
    pub disk_check_interval_ms: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./t3000-data"),
            ack: AckLevel::Wal,
            flush_rows: 500_000,
            sparse_day_rows: 10_000,
            flush_interval_secs: 60,
            row_group_rows: 131_072,
            page_rows: 8_192,
            zstd_level: 3,
            scrub_interval_secs: 86_400,
            scrub_mib_per_sec: 64,
            disk_alarm_free_mb: 1024,
            disk_alarm_free_percent: 5,
            disk_floor_free_mb: 128,
            disk_check_interval_ms: 5000,
        }
    }
}

/// `[wal]`: the write-ahead log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WalConfig {
    /// Bound on how long a write waits for its group commit, 1 ..= 10_000 ms.
    pub group_commit_max_delay_ms: u64,
    /// A group commit is written once it holds this many bytes, 4 KiB ..= 256 MiB.
    pub group_commit_max_bytes: usize,
    /// Size at which a WAL segment is closed and a new one started, 1 MiB ..= 4 GiB.
    pub segment_bytes: u64,
}

impl Default for WalConfig {
    fn default() -> Self {
        Self { group_commit_max_delay_ms: 100, group_commit_max_bytes: 8 * MIB as usize, segment_bytes: 64 * MIB }
    }
}

/// `[compaction]`: merging of small Parquet files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CompactionConfig {
    /// Whether compaction runs at all.
    pub enabled: bool,
    /// Time between compaction passes, 1 ..= 86_400 s.
    pub interval_secs: u64,
    /// A day is compacted once it has at least this many files, 2 ..= 10_000.
    pub min_files_per_day: usize,
    /// Rows per compacted file, 100_000 ..= 1_000_000_000.
    pub target_file_rows: usize,
}

impl Default for CompactionConfig {
    fn default() -> Self {
        Self { enabled: true, interval_secs: 300, min_files_per_day: 4, target_file_rows: 20_000_000 }
    }
}

/// `[retention]`: deletion of old data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Days of data kept for points without an override; 0 keeps data forever.
    pub max_age_days: u32,
    /// Time between retention passes, 1 ..= 604_800 s.
    pub check_interval_secs: u64,
    /// Per-point overrides (`[[retention.points]]`); a point may appear in at most one.
    pub points: Vec<PointRetention>,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self { max_age_days: 0, check_interval_secs: 3600, points: Vec::new() }
    }
}

impl RetentionConfig {
    /// Days of data kept for `point`: its override if it has one, else the global `max_age_days`
    /// (0 = forever).
    pub fn max_age_days_for(&self, point: u32) -> u32 {
        self.points.iter().find(|o| o.points.contains(&point)).map_or(self.max_age_days, |o| o.max_age_days)
    }
}

/// One `[[retention.points]]` override.
///
/// Both fields are required: an override without points or without an age means nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PointRetention {
    /// Point ids this override applies to; non-empty.
    pub points: Vec<u32>,
    /// Days of data kept for these points, at least 1.
    pub max_age_days: u32,
}

/// `[rollups]`: precomputed aggregates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RollupConfig {
    /// Whether rollups are maintained and used by queries.
    pub enabled: bool,
}

impl Default for RollupConfig {
    fn default() -> Self {
        Self { enabled: true }
    }
}

/// `[query]`: limits of the query endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueryConfig {
    /// Time limit of a history/raw query, 100 ..= 3_600_000 ms.
    pub timeout_ms: u64,
    /// Rows a history/raw query may return, at least 1.
    pub max_rows: usize,
    /// Time limit of an SQL query, 100 ..= 3_600_000 ms.
    pub sql_timeout_ms: u64,
    /// Rows an SQL query may return, at least 1.
    pub sql_max_rows: usize,
    /// Threads a query may use (DuckDB workers; files read in parallel by the direct reader), 1 ..= 256.
    pub threads: usize,
    /// DuckDB memory limit, 64 ..= 1_048_576 MiB.
    pub memory_limit_mb: u64,
    /// Disk a query may spill to (under `<data_dir>/tmp/`) when its state outgrows the memory
    /// limit, 0 ..= 16_777_216 MiB; 0: a query that outgrows memory fails instead.
    pub spill_limit_mb: u64,
}

impl Default for QueryConfig {
    fn default() -> Self {
        Self {
            timeout_ms: 30_000,
            max_rows: 5_000_000,
            sql_timeout_ms: 10_000,
            sql_max_rows: 100_000,
            threads: 2,
            memory_limit_mb: 2048,
            spill_limit_mb: 8192,
        }
    }
}

/// Format of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `[log]`: diagnostics output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A `tracing` EnvFilter directive such as `info` or `info,t3_storage=debug`; non-empty.
    pub level: String,
    /// Format of log lines, on standard error and in the file.
    pub format: LogFormat,
    /// A file that gets every log line too (standard error always does); its folder is created if
    /// missing. Absent: standard error only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// When the file is rotated: `daily` (at midnight UTC) or a size such as `100MB` (`KB`, `MB`,
    /// `GB`: powers of 1024; 1 KB ..= 1024 GB). The rotated file becomes `<file>.1`, the one before
    /// `<file>.2`, and so on.
    pub rotate: String,
    /// Rotated files kept besides the current one, 0 ..= 1000; older ones are deleted.
    pub keep: u32,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { level: "info".to_owned(), format: LogFormat::Text, file: None, rotate: "daily".to_owned(), keep: 7 }
    }
}

impl LogConfig {
    /// `rotate` read: `daily`, or a size with its unit.
    pub fn rotation(&self) -> Result<LogRotation, String> {
        LogRotation::parse(&self.rotate)
    }
}

/// When the log file is rotated (`[log] rotate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogRotation {
    /// At the first line written on a new day (UTC).
    Daily,
    /// Before a line would make the file larger than this many bytes.
    Size(u64),
}

impl LogRotation {
    /// Reads `daily` or a size such as `100MB`, `512 KB`, `1GB` (case-insensitive, powers of 1024).
    pub fn parse(text: &str) -> Result<LogRotation, String> {
        let t = text.trim().to_ascii_uppercase();
        if t == "DAILY" {
            return Ok(LogRotation::Daily);
        }
        let bad = || format!("must be \"daily\" or a size like \"100MB\" (KB, MB or GB; got `{text}`)");
        let (digits, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?);
        let scale = match unit.trim() {
            "KB" | "KIB" => KIB,
            "MB" | "MIB" => MIB,
            "GB" | "GIB" => GIB,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        if !(1..=1024 * GIB / scale).contains(&n) {
            return Err(format!("must be between 1 KB and 1024 GB (got `{text}`)"));
        }
        Ok(LogRotation::Size(n * scale))
    }
}

/// `[auth]`: users, sessions, login throttling and which browser origins may call the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Password of the `admin` user created at the first start (only then). Empty: taken from the
    /// environment variable `T3000_ADMIN_PASSWORD`, else generated and printed once. At least 8
    /// characters when set.
    pub admin_password: String,
    /// Lifetime of a login session, 1 ..= 8760 hours.
    pub session_hours: u64,
    /// Failed logins from one address for one user name before further attempts get 429, 1 ..= 100.
    pub login_max_failures: u32,
    /// How long those failures are remembered (and the lockout lasts), 1 ..= 86400 s.
    pub login_lockout_secs: u64,
    /// Origins (`https://bms.example.com`) whose pages may call the API from a browser; none by
    /// default (same-origin pages, such as the built-in UI, need no entry).
    pub cors_origins: Vec<String>,
    /// Most value writes one point accepts per minute (all users together), 1 ..= 10000.
    pub point_writes_per_minute: u32,
    /// Lifetime of a WebSocket ticket (`POST /api/t3000/ws/ticket`: single use, opens one live-update
    /// connection), 1 ..= 300 s.
    pub ws_ticket_secs: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            admin_password: String::new(),
            session_hours: 12,
            login_max_failures: 5,
            login_lockout_secs: 300,
            cors_origins: Vec::new(),
            point_writes_per_minute: 60,
            ws_ticket_secs: 30,
        }
    }
}

/// `[websocket]`: the live-update endpoint `/api/t3000/ws`: per-client buffers, heartbeat and the
/// system status interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebSocketConfig {
    /// Messages queued for one client before it counts as lagging (updates are then dropped for it,
    /// counted, and followed by `Lagged` and a fresh snapshot), 16 ..= 1_000_000.
    pub queue_messages: usize,
    /// Times a client may lag within a minute; the next time it is disconnected, 1 ..= 1000.
    pub max_lags_per_minute: u32,
    /// How often the server pings each client, 1 ..= 3600 s.
    pub ping_interval_secs: u64,
    /// A client that sends nothing (not even a pong) for this long, or whose socket takes this
    /// long to accept a write, is disconnected, 2 ..= 86400 s; at least twice the ping interval.
    pub client_timeout_secs: u64,
    /// How often subscribers get a `SystemStatus`, 1 ..= 3600 s.
    pub system_status_interval_secs: u64,
    /// Most WebSocket clients at once (more get 503), 1 ..= 100_000.
    pub max_clients: usize,
}

impl Default for WebSocketConfig {
    fn default() -> Self {
        Self {
            queue_messages: 4096,
            max_lags_per_minute: 3,
            ping_interval_secs: 15,
            client_timeout_secs: 45,
            system_status_interval_secs: 5,
            max_clients: 2000,
        }
    }
}

/// `[collector]`: defaults of the device polling service; a device may override the timeout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CollectorConfig {
    /// Whether configured devices are polled at all.
    pub enabled: bool,
    /// Time a device has to answer one request, 10 ..= 60_000 ms.
    pub timeout_ms: u64,
    /// Consecutive failed polls after which a device is marked offline and only probed, 1 ..= 1000.
    pub offline_after_failures: u32,
    /// First retry delay after a failure, 10 ..= 600_000 ms; doubled per failure (with jitter).
    pub backoff_initial_ms: u64,
    /// Longest delay between probes of an offline device, 100 ..= 3_600_000 ms.
    pub backoff_max_ms: u64,
}

impl Default for CollectorConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            timeout_ms: 1000,
            offline_after_failures: 3,
            backoff_initial_ms: 500,
            backoff_max_ms: 60_000,
        }
    }
}

/// `[programs]`: how the server runs Control BASIC programs (see the README, "Programs").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProgramsConfig {
    /// Time between two scans of every enabled program, 100 ..= 60_000 ms; T3 controllers scan
    /// once a second.
    pub scan_ms: u64,
    /// The priority programs command points at, 1 ..= 16 (1 wins); 16 as on BACnet and T3000.
    pub priority: u8,
    /// Most statements one program may run in one scan, 1 ..= 10_000_000; past it the program
    /// stops with an error (an endless loop).
    pub max_steps: u32,
}

impl Default for ProgramsConfig {
    fn default() -> Self {
        Self { scan_ms: 1000, priority: 16, max_steps: 10_000 }
    }
}

/// How a field device is reached: Modbus, built in, or the protocol a loaded plugin serves.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// Modbus TCP: `ip_address` and `port`.
    ModbusTcp,
    /// Modbus RTU on a serial line: `serial_port`, `baud_rate`, `parity`.
    ModbusRtu,
    /// A plugin's protocol (`bacnet-ip`): its keys are in the device's `options`, checked by the
    /// plugin.
    Plugin(String),
}

/// The longest plugin protocol name.
pub const PROTOCOL_NAME_MAX: usize = 32;

impl Protocol {
    /// The protocol's name as configured: `modbus-tcp`, `modbus-rtu` or the plugin's.
    pub fn name(&self) -> &str {
        match self {
            Protocol::ModbusTcp => "modbus-tcp",
            Protocol::ModbusRtu => "modbus-rtu",
            Protocol::Plugin(name) => name,
        }
    }

    /// The plugin protocol's name; none for Modbus.
    pub fn plugin(&self) -> Option<&str> {
        match self {
            Protocol::Plugin(name) => Some(name),
            _ => None,
        }
    }

    /// Whether `name` can name a plugin protocol: 1 ..= 32 lowercase ASCII letters, digits and
    /// `-`, starting with a letter.
    pub fn is_plugin_name(name: &str) -> bool {
        name.len() <= PROTOCOL_NAME_MAX
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    }
}

impl std::str::FromStr for Protocol {
    type Err = String;

    fn from_str(s: &str) -> Result<Protocol, String> {
        match s {
            "modbus-tcp" => Ok(Protocol::ModbusTcp),
            "modbus-rtu" => Ok(Protocol::ModbusRtu),
            s if s.starts_with("modbus") => {
                Err(format!("unknown Modbus protocol \"{s}\": use modbus-tcp or modbus-rtu"))
            }
            s if Protocol::is_plugin_name(s) => Ok(Protocol::Plugin(s.to_owned())),
            s => Err(format!(
                "invalid protocol \"{s}\": expected modbus-tcp, modbus-rtu or a plugin's protocol name (lowercase letters, digits and -)"
            )),
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Protocol {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Protocol {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Protocol, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Parity of a serial line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Parity {
    #[default]
    None,
    Even,
    Odd,
}

/// What the collector keeps of the values it polls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordMode {
    /// Every poll becomes a sample.
    #[default]
    Every,
    /// A sample only when the value moved past the deadband, the quality changed, or
    /// `heartbeat_secs` passed since the last recorded sample.
    Change,
}

/// Recording settings of a device or of one of its points.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecordConfig {
    /// `every` poll, or on `change`.
    pub mode: RecordMode,
    /// Absolute deadband in engineering units (change mode), at least 0.
    pub deadband: f64,
    /// Deadband in percent of the last recorded value (change mode), 0 ..= 100. A change passes when
    /// it exceeds either deadband that is set.
    pub deadband_percent: f64,
    /// Longest time without a recorded sample (change mode), 0 (never) ..= 86_400 s.
    pub heartbeat_secs: u64,
}

/// `[[devices.points]]`: settings of one point of a device's profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PointOverride {
    /// Point name in the profile (`IN1`, `OUT3`, `VAR12`, or a register name).
    pub name: String,
    /// Whether the point is polled.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Poll interval of this point (T3000's "timebase"), 100 ms ..= 24 h; the device's when absent.
    pub poll_interval_ms: Option<u64>,
    /// Recording of this point; the device's when absent.
    pub record: Option<RecordConfig>,
}

fn yes() -> bool {
    true
}

// The ranges of a device's settings, used by [`DeviceConfig::validate`] and stated by the API's
// OpenAPI document.

/// Longest device name, in characters.
pub const DEVICE_NAME_MAX: usize = 64;
/// `baud_rate` of a Modbus RTU device.
pub const BAUD_RATES: std::ops::RangeInclusive<u32> = 300..=921_600;
/// `unit_id` of a Modbus RTU device (0 is broadcast, 248 ..= 255 reserved).
pub const RTU_UNIT_IDS: std::ops::RangeInclusive<u8> = 1..=247;
/// `poll_interval_ms` of a device or point: 100 ms to 24 h.
pub const POLL_INTERVAL_MS: std::ops::RangeInclusive<u64> = 100..=86_400_000;
/// `timeout_ms` of a device (and `collector.timeout_ms`).
pub const DEVICE_TIMEOUT_MS: std::ops::RangeInclusive<u64> = 10..=60_000;
/// `max_registers` of a device.
pub const MAX_REGISTERS: std::ops::RangeInclusive<u16> = 1..=125;
/// `max_gap` of a device.
pub const MAX_GAP: std::ops::RangeInclusive<u16> = 0..=124;
/// `record.deadband_percent`.
pub const DEADBAND_PERCENT: std::ops::RangeInclusive<f64> = 0.0..=100.0;
/// `record.heartbeat_secs`: 0 (never) to a day.
pub const HEARTBEAT_SECS: std::ops::RangeInclusive<u64> = 0..=86_400;

/// `[[devices]]`: one field device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceConfig {
    /// Unique name; 1 ..= 64 characters.
    pub name: String,
    /// What the device is, for people (`controller`, `thermostat`, `meter`, ...).
    #[serde(default = "default_device_type")]
    pub device_type: String,
    /// `modbus-tcp`, `modbus-rtu`, or the protocol of a loaded plugin (`bacnet-ip`).
    pub protocol: Protocol,
    /// Host name or IP address (Modbus TCP, and plugins that use one).
    #[serde(default)]
    pub ip_address: Option<String>,
    /// TCP or UDP port, 1 ..= 65535; 502 for Modbus TCP when absent, the plugin's default for a
    /// plugin protocol.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Serial device path such as `/dev/ttyUSB0` (Modbus RTU).
    #[serde(default)]
    pub serial_port: Option<String>,
    /// Serial speed (Modbus RTU), 300 ..= 921_600.
    #[serde(default = "default_baud_rate")]
    pub baud_rate: u32,
    /// Serial parity (Modbus RTU): `none`, `even` or `odd`.
    #[serde(default)]
    pub parity: Parity,
    /// Modbus unit (slave) id, 0 ..= 255 (1 ..= 247 on RTU).
    pub unit_id: u8,
    /// Device profile: `T3-controller` or a product name of the Temco register library. Required
    /// for Modbus; a plugin device's points come from the plugin.
    #[serde(default)]
    pub profile: String,
    /// Default poll interval of the device's points, 100 ms ..= 24 h.
    #[serde(default = "default_poll_interval_ms")]
    pub poll_interval_ms: u64,
    /// Time the device has to answer one request, 10 ..= 60_000 ms; `collector.timeout_ms` when absent.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Whether the device is polled.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Registers per read request, 1 ..= 125, for devices that accept fewer than Modbus allows.
    #[serde(default)]
    pub max_registers: Option<u16>,
    /// Unused registers a read may bridge to merge two points, 0 (never) ..= 124.
    #[serde(default)]
    pub max_gap: Option<u16>,
    /// One read request per point, for devices that refuse block reads.
    #[serde(default)]
    pub one_request_per_point: bool,
    /// Recording of the device's points.
    #[serde(default)]
    pub record: RecordConfig,
    /// Per-point settings.
    #[serde(default)]
    pub points: Vec<PointOverride>,
    /// A plugin device's own keys (BACnet's `device_instance`), checked by the plugin. In the file
    /// they are written beside the others (`device_instance = 1234`) and gathered here.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, toml::Value>,
}

/// The keys of `[[devices]]` the server itself reads; a plugin device's other keys are its
/// `options`.
pub const DEVICE_KEYS: &[&str] = &[
    "name",
    "device_type",
    "protocol",
    "ip_address",
    "port",
    "serial_port",
    "baud_rate",
    "parity",
    "unit_id",
    "profile",
    "poll_interval_ms",
    "timeout_ms",
    "enabled",
    "max_registers",
    "max_gap",
    "one_request_per_point",
    "record",
    "points",
    "options",
];

/// The Modbus TCP port.
pub const MODBUS_TCP_PORT: u16 = 502;

fn default_device_type() -> String {
    "controller".to_owned()
}
fn default_baud_rate() -> u32 {
    9600
}
fn default_poll_interval_ms() -> u64 {
    1000
}

impl DeviceConfig {
    /// Checks one device's fields; `key` is its dotted prefix (`devices[3]`).
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        let k = |f: &str| format!("{key}.{f}");
        if self.name.trim().is_empty() || self.name.chars().count() > DEVICE_NAME_MAX {
            return Err(ConfigError::new(k("name"), format!("must be 1 to {DEVICE_NAME_MAX} characters")));
        }
        if let Some(port) = self.port {
            check_min(&k("port"), port, 1)?;
        }
        match &self.protocol {
            Protocol::ModbusTcp => {
                let address = self.ip_address.as_deref().unwrap_or("").trim();
                if address.is_empty() {
                    return Err(ConfigError::new(k("ip_address"), "is required for protocol \"modbus-tcp\""));
                }
                // Digits and dots are meant as an IPv4 address (a host name has a letter).
                if address.bytes().all(|b| b.is_ascii_digit() || b == b'.')
                    && address.parse::<std::net::Ipv4Addr>().is_err()
                {
                    return Err(ConfigError::new(k("ip_address"), format!("`{address}` is not an IPv4 address")));
                }
            }
            Protocol::ModbusRtu => {
                if self.serial_port.as_deref().is_none_or(|p| p.trim().is_empty()) {
                    return Err(ConfigError::new(k("serial_port"), "is required for protocol \"modbus-rtu\""));
                }
                check_in(&k("baud_rate"), self.baud_rate, &BAUD_RATES)?;
                check_in(&k("unit_id"), self.unit_id, &RTU_UNIT_IDS)?;
            }
            // The plugin checks its own keys (`Config::parse_with`'s check, in the server).
            Protocol::Plugin(_) => {}
        }
        if self.protocol.plugin().is_none() {
            if self.profile.trim().is_empty() {
                return Err(ConfigError::new(k("profile"), "must name a device profile"));
            }
            if let Some(key) = self.options.keys().next() {
                return Err(ConfigError::new(
                    k(key),
                    format!(
                        "unknown key for protocol \"{}\" (only plugin protocols take keys of their own)",
                        self.protocol
                    ),
                ));
            }
        }
        check_in(&k("poll_interval_ms"), self.poll_interval_ms, &POLL_INTERVAL_MS)?;
        if let Some(t) = self.timeout_ms {
            check_in(&k("timeout_ms"), t, &DEVICE_TIMEOUT_MS)?;
        }
        if let Some(m) = self.max_registers {
            check_in(&k("max_registers"), m, &MAX_REGISTERS)?;
        }
        if let Some(g) = self.max_gap {
            check_in(&k("max_gap"), g, &MAX_GAP)?;
        }
        self.record.validate(&k("record"))?;
        let mut seen = std::collections::BTreeSet::new();
        for (i, p) in self.points.iter().enumerate() {
            let pk = |f: &str| format!("{key}.points[{i}].{f}");
            if !seen.insert(p.name.to_ascii_uppercase()) {
                return Err(ConfigError::new(pk("name"), format!("point `{}` is listed twice", p.name)));
            }
            if let Some(ms) = p.poll_interval_ms {
                check_in(&pk("poll_interval_ms"), ms, &POLL_INTERVAL_MS)?;
            }
            if let Some(r) = &p.record {
                r.validate(&pk("record"))?;
            }
        }
        Ok(())
    }
}

impl RecordConfig {
    fn validate(&self, key: &str) -> Result<(), ConfigError> {
        if !(self.deadband >= 0.0 && self.deadband.is_finite()) {
            return Err(ConfigError::new(format!("{key}.deadband"), "must be a finite number >= 0"));
        }
        if !DEADBAND_PERCENT.contains(&self.deadband_percent) {
            return Err(ConfigError::new(format!("{key}.deadband_percent"), "must be between 0 and 100"));
        }
        check_in(&format!("{key}.heartbeat_secs"), self.heartbeat_secs, &HEARTBEAT_SECS)
    }
}

/// A configuration that could not be loaded, with where the offending value came from.
///
/// Displays as `config/t3000.toml:12: storage.flush_rows: must be between 1000 and 50000000 (got 5)`,
/// `environment T3000__WAL__SEGMENT_BYTES: wal.segment_bytes: ...`, or without the line when it is
/// not known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct ConfigError {
    /// Name of the configuration source (a file name, or `<embedded>`); empty when the error comes
    /// from [`Config::validate`] called on its own.
    pub origin: String,
    /// Dotted key of the offending value, e.g. `storage.flush_rows` or `retention.points[1].points`.
    pub key: Option<String>,
    /// 1-based line in the source text.
    pub line: Option<usize>,
    /// Environment variable the offending value came from.
    pub env_var: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl ConfigError {
    /// An error about the value of the dotted `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self { origin: String::new(), key: Some(key.into()), line: None, env_var: None, message: message.into() }
    }

    fn render(&self) -> String {
        let mut out = String::new();
        if let Some(var) = &self.env_var {
            out.push_str(&format!("environment {var}: "));
        } else if !self.origin.is_empty() {
            out.push_str(&self.origin);
            if let Some(line) = self.line {
                out.push_str(&format!(":{line}"));
            }
            out.push_str(": ");
        }
        if let Some(key) = &self.key {
            out.push_str(&format!("{key}: "));
        }
        out.push_str(&self.message);
        out
    }
}

fn check_range<T: PartialOrd + fmt::Display>(key: &str, value: T, min: T, max: T) -> Result<(), ConfigError> {
    if value < min || value > max {
        return Err(ConfigError::new(key, format!("must be between {min} and {max} (got {value})")));
    }
    Ok(())
}

fn check_in<T: PartialOrd + fmt::Display + Copy>(
    key: &str,
    value: T,
    range: &std::ops::RangeInclusive<T>,
) -> Result<(), ConfigError> {
    check_range(key, value, *range.start(), *range.end())
}

fn check_min<T: PartialOrd + fmt::Display>(key: &str, value: T, min: T) -> Result<(), ConfigError> {
    if value < min {
        return Err(ConfigError::new(key, format!("must be at least {min} (got {value})")));
    }
    Ok(())
}

impl Config {
    /// The same configuration with every secret (the first admin password, webhook keys and URL
    /// paths, the SMTP password) replaced by `<redacted>`: what may be printed, audited or put in a
    /// backup archive.
    pub fn without_secrets(&self) -> Config {
        let mut c = self.clone();
        if !c.auth.admin_password.is_empty() {
            c.auth.admin_password = REDACTED.to_owned();
        }
        c.alerts = c.alerts.without_secrets();
        c
    }

    /// Loads a configuration from TOML `text`, overlaid with the `T3000__SECTION__KEY` variables of
    /// `env`, and validates it.
    ///
    /// `origin` names the source in error messages (the file name, or `<embedded>`). `env` is
    /// usually `std::env::vars()`; variables without the `T3000__` prefix are ignored. An override's
    /// value is read as a TOML value (`50`, `true`, `[1, 2]`, `"x"`) when it parses as one, and
    /// otherwise, or when the key holds a string, as the literal text.
    pub fn parse(
        text: &str,
        origin: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        Self::parse_with(text, origin, env, |_| Ok(()))
    }

    /// [`Config::parse`] with a further check that needs knowledge this crate lacks (for example
    /// which device profiles exist); its error is located like a [`Config::validate`] error.
    pub fn parse_with(
        text: &str,
        origin: &str,
        env: impl IntoIterator<Item = (String, String)>,
        check: impl FnOnce(&Config) -> Result<(), ConfigError>,
    ) -> Result<Config, ConfigError> {
        // Sorted so that overlay order, and so error messages, do not depend on the environment's order.
        let mut vars: Vec<(String, String)> =
            env.into_iter().filter(|(name, _)| name.starts_with(ENV_PREFIX)).collect();
        vars.sort();

        let mut doc = DeTable::parse(text).map_err(|e| ConfigError {
            origin: origin.to_owned(),
            key: None,
            line: e.span().map(|s| line_of(text, s.start)),
            env_var: None,
            message: format!("invalid TOML: {}", e.message()),
        })?;
        let slots = overlay_env(&mut doc, &vars, text.len()).map_err(|mut e| {
            e.origin = origin.to_owned();
            e
        })?;
        let sources = Sources::new(text, origin, &doc, slots);
        gather_plugin_options(&mut doc);

        let config =
            Config::deserialize(toml::de::Deserializer::from(doc)).map_err(|e| sources.deserialize_error(&e))?;
        config.validate().and_then(|()| check(&config)).map_err(|e| sources.locate(e))?;
        Ok(config)
    }

    /// Checks every value against its allowed range; the error names the dotted key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let Config {
            server,
            storage,
            wal,
            compaction,
            retention,
            rollups: _,
            query,
            log,
            collector,
            auth,
            websocket,
            ingest,
            plugins,
            alerts,
            programs,
            devices,
        } = self;
        alerts.validate()?;
        // A file made from a backup's t3000.effective.toml still holds its placeholders.
        let placeholder = |key: String, value: &str| match value.contains(REDACTED) {
            true => Err(ConfigError::new(
                key,
                format!("holds `{REDACTED}`, a placeholder of a backup's t3000.effective.toml: put the real value"),
            )),
            false => Ok(()),
        };
        placeholder("auth.admin_password".into(), &auth.admin_password)?;
        if let Some(smtp) = &alerts.smtp {
            placeholder("alerts.smtp.password".into(), smtp.password.expose())?;
        }
        for (i, w) in alerts.webhook.iter().enumerate() {
            placeholder(format!("alerts.webhook[{i}].secret"), w.secret.expose())?;
            placeholder(format!("alerts.webhook[{i}].url"), &w.url)?;
        }
        check_range("programs.scan_ms", programs.scan_ms, 100, 60_000)?;
        check_range("programs.priority", programs.priority, 1, 16)?;
        check_range("programs.max_steps", programs.max_steps, 1, 10_000_000)?;
        check_range("plugins.call_timeout_ms", plugins.call_timeout_ms, 100, 600_000)?;

        if let Err(e) = server.listen.parse::<SocketAddr>() {
            return Err(ConfigError::new(
                "server.listen",
                format!("must be a socket address like 127.0.0.1:9103 (got `{}`: {e})", server.listen),
            ));
        }
        check_range("server.max_body_bytes", server.max_body_bytes, KIB, GIB)?;
        check_range("server.shutdown_timeout_secs", server.shutdown_timeout_secs, 1, 3600)?;
        check_range("server.header_read_timeout_secs", server.header_read_timeout_secs, 1, 3600)?;
        check_range("server.idle_timeout_secs", server.idle_timeout_secs, 1, 86_400)?;
        check_range("server.max_connections", server.max_connections, 0, 10_000_000)?;

        check_range("ingest.max_future_secs", ingest.max_future_secs, 0, MAX_FUTURE_SECS_LIMIT)?;
        check_range("ingest.max_days_per_batch", ingest.max_days_per_batch, 1, 36_500)?;

        if !auth.admin_password.is_empty() && auth.admin_password.chars().count() < 8 {
            return Err(ConfigError::new("auth.admin_password", "must be at least 8 characters (or empty)"));
        }
        check_range("auth.session_hours", auth.session_hours, 1, 8760)?;
        check_range("auth.login_max_failures", auth.login_max_failures, 1, 100)?;
        check_range("auth.login_lockout_secs", auth.login_lockout_secs, 1, 86_400)?;
        check_range("auth.point_writes_per_minute", auth.point_writes_per_minute, 1, 10_000)?;
        check_range("auth.ws_ticket_secs", auth.ws_ticket_secs, 1, 300)?;
        for (i, o) in auth.cors_origins.iter().enumerate() {
            let host = o.strip_prefix("https://").or_else(|| o.strip_prefix("http://"));
            if host.is_none_or(|h| h.is_empty() || h.contains(['/', ' '])) {
                return Err(ConfigError::new(
                    format!("auth.cors_origins[{i}]"),
                    format!("must be an origin like https://bms.example.com, without a path (got `{o}`)"),
                ));
            }
        }

        check_range("websocket.queue_messages", websocket.queue_messages, 16, 1_000_000)?;
        check_range("websocket.max_lags_per_minute", websocket.max_lags_per_minute, 1, 1000)?;
        check_range("websocket.ping_interval_secs", websocket.ping_interval_secs, 1, 3600)?;
        check_range("websocket.client_timeout_secs", websocket.client_timeout_secs, 2, 86_400)?;
        if websocket.client_timeout_secs < 2 * websocket.ping_interval_secs {
            return Err(ConfigError::new(
                "websocket.client_timeout_secs",
                "must be at least twice websocket.ping_interval_secs",
            ));
        }
        check_range("websocket.system_status_interval_secs", websocket.system_status_interval_secs, 1, 3600)?;
        check_range("websocket.max_clients", websocket.max_clients, 1, 100_000)?;

        if storage.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::new("storage.data_dir", "must not be empty"));
        }
        check_range("storage.flush_rows", storage.flush_rows, 1_000, 50_000_000)?;
        check_range("storage.sparse_day_rows", storage.sparse_day_rows, 0, 50_000_000)?;
        check_range("storage.flush_interval_secs", storage.flush_interval_secs, 1, 86_400)?;
        check_range("storage.row_group_rows", storage.row_group_rows, 1_024, 1_048_576)?;
        check_range("storage.page_rows", storage.page_rows, 1_024, 1_048_576)?;
        check_range("storage.zstd_level", storage.zstd_level, 1, 22)?;
        if storage.scrub_interval_secs != 0 {
            check_range("storage.scrub_interval_secs", storage.scrub_interval_secs, 60, 31_536_000)?;
        }
        check_range("storage.scrub_mib_per_sec", storage.scrub_mib_per_sec, 1, 10_000)?;
        check_range("storage.disk_alarm_free_mb", storage.disk_alarm_free_mb, 1, 16_777_216)?;
        check_range("storage.disk_alarm_free_percent", storage.disk_alarm_free_percent, 0, 50)?;
        check_range("storage.disk_floor_free_mb", storage.disk_floor_free_mb, 0, 16_777_215)?;
        if storage.disk_floor_free_mb >= storage.disk_alarm_free_mb {
            return Err(ConfigError::new(
                "storage.disk_floor_free_mb",
                format!(
                    "must be below storage.disk_alarm_free_mb ({}): the alarm comes before writes are refused",
                    storage.disk_alarm_free_mb
                ),
            ));
        }
        check_range("storage.disk_check_interval_ms", storage.disk_check_interval_ms, 100, 600_000)?;

        check_range("wal.group_commit_max_delay_ms", wal.group_commit_max_delay_ms, 1, 10_000)?;
        check_range("wal.group_commit_max_bytes", wal.group_commit_max_bytes, 4 * KIB as usize, 256 * MIB as usize)?;
        check_range("wal.segment_bytes", wal.segment_bytes, MIB, 4 * GIB)?;

        check_range("compaction.interval_secs", compaction.interval_secs, 1, 86_400)?;
        check_range("compaction.min_files_per_day", compaction.min_files_per_day, 2, 10_000)?;
        check_range("compaction.target_file_rows", compaction.target_file_rows, 100_000, 1_000_000_000)?;

        check_range("retention.check_interval_secs", retention.check_interval_secs, 1, 604_800)?;
        // Point id -> index of the override that lists it, to catch a point with two ages.
        let mut owner: BTreeMap<u32, usize> = BTreeMap::new();
        for (i, o) in retention.points.iter().enumerate() {
            if o.points.is_empty() {
                return Err(ConfigError::new(format!("retention.points[{i}].points"), "must list at least one point"));
            }
            check_min(&format!("retention.points[{i}].max_age_days"), o.max_age_days, 1)?;
            for &p in &o.points {
                if let Some(&first) = owner.get(&p) {
                    let message = if first == i {
                        format!("point {p} is listed twice")
                    } else {
                        format!("point {p} is already listed in retention.points[{first}]")
                    };
                    return Err(ConfigError::new(format!("retention.points[{i}].points"), message));
                }
                owner.insert(p, i);
            }
        }

        check_range("query.timeout_ms", query.timeout_ms, 100, 3_600_000)?;
        check_min("query.max_rows", query.max_rows, 1)?;
        check_range("query.sql_timeout_ms", query.sql_timeout_ms, 100, 3_600_000)?;
        check_min("query.sql_max_rows", query.sql_max_rows, 1)?;
        check_range("query.threads", query.threads, 1, 256)?;
        check_range("query.memory_limit_mb", query.memory_limit_mb, 64, 1_048_576)?;
        check_range("query.spill_limit_mb", query.spill_limit_mb, 0, 16_777_216)?;

        if log.level.trim().is_empty() {
            return Err(ConfigError::new("log.level", "must not be empty"));
        }
        if log.file.as_ref().is_some_and(|f| f.as_os_str().is_empty()) {
            return Err(ConfigError::new("log.file", "must not be empty (leave it out for standard error only)"));
        }
        log.rotation().map_err(|e| ConfigError::new("log.rotate", e))?;
        check_range("log.keep", log.keep, 0, 1000)?;

        check_in("collector.timeout_ms", collector.timeout_ms, &DEVICE_TIMEOUT_MS)?;
        check_range("collector.offline_after_failures", collector.offline_after_failures, 1, 1000)?;
        check_range("collector.backoff_initial_ms", collector.backoff_initial_ms, 10, 600_000)?;
        check_range("collector.backoff_max_ms", collector.backoff_max_ms, 100, 3_600_000)?;
        if collector.backoff_max_ms < collector.backoff_initial_ms {
            return Err(ConfigError::new("collector.backoff_max_ms", "must not be below collector.backoff_initial_ms"));
        }
        let mut names = BTreeMap::new();
        // Serial port -> index of the first device on it: one bus has one speed and parity.
        let mut buses: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, d) in devices.iter().enumerate() {
            d.validate(&format!("devices[{i}]"))?;
            if d.protocol == Protocol::ModbusRtu
                && let Some(port) = d.serial_port.as_deref()
            {
                let first = *buses.entry(port).or_insert(i);
                let f = &devices[first];
                if (f.baud_rate, f.parity) != (d.baud_rate, d.parity) {
                    return Err(ConfigError::new(
                        format!("devices[{i}].baud_rate"),
                        format!(
                            "{port} is already used by devices[{first}] at {} baud, parity {:?}; devices on one bus share its settings",
                            f.baud_rate, f.parity
                        ),
                    ));
                }
            }
            if let Some(first) = names.insert(d.name.as_str(), i) {
                return Err(ConfigError::new(
                    format!("devices[{i}].name"),
                    format!("`{}` is already the name of devices[{first}]", d.name),
                ));
            }
        }
        Ok(())
    }
}

/// 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
}

/// The byte range given to the value of one environment override.
///
/// Override values are parsed from their own strings, so their spans are moved past the end of the
/// file text (each into its own range): an error's span then tells whether it points into the file
/// or at which variable.
#[derive(Debug)]
struct EnvSlot {
    span: Range<usize>,
    var: String,
}

/// The keys of a section that are unset by default, so absent from the serialized defaults, which
/// an environment variable may still set (`T3000__PLUGINS__DIRS='["/opt/t3000/plugins"]'`).
const UNSET_KEYS: &[&str] = &["plugins.dirs"];

/// Replaces keys of `doc` with the values of the `T3000__SECTION__KEY` variables in `vars`.
fn overlay_env<'i>(
    doc: &mut Spanned<DeTable<'i>>,
    vars: &'i [(String, String)],
    text_len: usize,
) -> Result<Vec<EnvSlot>, ConfigError> {
    // The defaults serialized give the set of known sections and keys, and each key's type.
    let known = toml::Table::try_from(Config::default()).expect("the default config serializes to TOML");
    let env_error = |var: &str, key: Option<String>, message: String| ConfigError {
        origin: String::new(),
        key,
        line: None,
        env_var: Some(var.to_owned()),
        message,
    };

    let mut slots: Vec<EnvSlot> = Vec::new();
    // Dotted key -> variable that set it, to reject two spellings of one key.
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    // Past the end of the text, and past the empty span the parser may give the end of input.
    let mut next_start = text_len + 1;

    for (var, raw) in vars {
        let rest = &var[ENV_PREFIX.len()..];
        let lower = rest.to_ascii_lowercase();
        let (section, key) = match lower.split_once("__") {
            Some((s, k)) if !s.is_empty() && !k.is_empty() && !k.contains("__") => (s, k),
            _ => {
                return Err(env_error(var, None, format!("expected a name of the form {ENV_PREFIX}<SECTION>__<KEY>")));
            }
        };
        let dotted = format!("{section}.{key}");
        let Some(section_keys) = known.get(section).and_then(toml::Value::as_table) else {
            return Err(env_error(var, Some(dotted), format!("unknown section `{section}`")));
        };
        let default = match section_keys.get(key) {
            Some(d) => d,
            // Keys without a default (absent from the serialized defaults) take TOML.
            None if UNSET_KEYS.contains(&dotted.as_str()) => &toml::Value::Boolean(false),
            None => return Err(env_error(var, Some(dotted.clone()), format!("unknown key `{dotted}`"))),
        };
        if let Some(other) = seen.insert(dotted.clone(), var) {
            return Err(env_error(var, Some(dotted), format!("also set by {other}")));
        }

        let slot = next_start..next_start + raw.len().max(1);
        next_start = slot.end + 1;
        // A string key takes the text as is, so `T3000__LOG__LEVEL=debug` and a path like `inf`
        // are not read as TOML (which would make `inf` a float).
        let value = match DeValue::parse(raw) {
            Ok(v) if !default.is_str() || v.get_ref().is_str() => shift_spans(v, slot.start),
            _ => Spanned::new(slot.clone(), DeValue::String(Cow::Borrowed(raw.as_str()))),
        };

        let root = doc.get_mut();
        if !root.contains_key(section) {
            root.insert(
                Spanned::new(slot.clone(), Cow::Owned(section.to_owned())),
                Spanned::new(slot.clone(), DeValue::Table(DeTable::new())),
            );
        }
        let Some(DeValue::Table(table)) = root.get_mut(section).map(Spanned::get_mut) else {
            return Err(env_error(var, Some(dotted), format!("`{section}` in the file is not a table")));
        };
        // Removed first so the key's span, too, points at the variable.
        table.remove(key);
        table.insert(Spanned::new(slot.clone(), Cow::Owned(key.to_owned())), value);
        slots.push(EnvSlot { span: slot, var: var.clone() });
    }
    Ok(slots)
}

/// Gathers the keys of each plugin device (`protocol` not Modbus) that the server does not read
/// itself into its `options` table, keeping their spans so errors still point at their lines, and
/// gives such a device `unit_id = 0` when it has none. Modbus devices are left alone, so an
/// unknown key there stays an error.
fn gather_plugin_options(doc: &mut Spanned<DeTable<'_>>) {
    let Some(DeValue::Array(devices)) = doc.get_mut().get_mut("devices").map(Spanned::get_mut) else { return };
    for device in devices.iter_mut() {
        let span = device.span();
        let DeValue::Table(table) = device.get_mut() else { continue };
        let plugin = match table.get("protocol").map(Spanned::get_ref) {
            Some(DeValue::String(p)) => matches!(p.parse(), Ok(Protocol::Plugin(_))),
            _ => false,
        };
        if !plugin {
            continue;
        }
        let own: Vec<_> = table.keys().filter(|k| !DEVICE_KEYS.contains(&k.get_ref().as_ref())).cloned().collect();
        if !own.is_empty() {
            if !table.contains_key("options") {
                table.insert(
                    Spanned::new(span.clone(), Cow::Borrowed("options")),
                    Spanned::new(span.clone(), DeValue::Table(DeTable::new())),
                );
            }
            let mut moved = Vec::new();
            for key in own {
                if let Some(value) = table.remove(key.get_ref().as_ref()) {
                    moved.push((key, value));
                }
            }
            if let Some(DeValue::Table(options)) = table.get_mut("options").map(Spanned::get_mut) {
                for (key, value) in moved {
                    options.insert(key, value);
                }
            }
        }
        if !table.contains_key("unit_id") {
            table.insert(
                Spanned::new(span.clone(), Cow::Borrowed("unit_id")),
                Spanned::new(span.clone(), DeValue::Integer(toml::de::DeInteger::default())),
            );
        }
    }
}

/// Moves every span in `value` (parsed from its own string) `by` bytes.
fn shift_spans(value: Spanned<DeValue<'_>>, by: usize) -> Spanned<DeValue<'_>> {
    let span = value.span();
    let inner = match value.into_inner() {
        DeValue::Array(items) => DeValue::Array(items.into_iter().map(|v| shift_spans(v, by)).collect()),
        DeValue::Table(table) => DeValue::Table(
            table
                .into_iter()
                .map(|(k, v)| {
                    let ks = k.span();
                    (Spanned::new(ks.start + by..ks.end + by, k.into_inner()), shift_spans(v, by))
                })
                .collect(),
        ),
        other => other,
    };
    Spanned::new(span.start + by..span.end + by, inner)
}

/// One key or array element of the merged document, with where it stands.
#[derive(Debug)]
struct Entry {
    /// Dotted key, with `[i]` for array elements.
    path: String,
    depth: usize,
    key_span: Range<usize>,
    value_span: Range<usize>,
}

/// Where every key of the merged document came from, to turn spans and keys into error locations.
#[derive(Debug)]
struct Sources<'a> {
    text: &'a str,
    origin: &'a str,
    slots: Vec<EnvSlot>,
    entries: Vec<Entry>,
}

impl<'a> Sources<'a> {
    fn new(text: &'a str, origin: &'a str, doc: &Spanned<DeTable<'_>>, slots: Vec<EnvSlot>) -> Self {
        let mut entries = Vec::new();
        collect_table(doc.get_ref(), "", 0, &mut entries);
        Self { text, origin, slots, entries }
    }

    fn error(&self, key: Option<String>, offset: Option<usize>, message: String) -> ConfigError {
        let mut error = ConfigError { origin: self.origin.to_owned(), key, line: None, env_var: None, message };
        match offset {
            Some(off) if off > self.text.len() => {
                error.env_var = self.slots.iter().find(|s| contains(&s.span, off)).map(|s| s.var.clone());
            }
            Some(off) => error.line = Some(line_of(self.text, off)),
            None => {}
        }
        error
    }

    /// A deserialization error, located by its span.
    fn deserialize_error(&self, e: &toml::de::Error) -> ConfigError {
        let offset = e.span().map(|s| s.start);
        // The deepest key or element whose span holds the error is the one it is about.
        let key = offset.and_then(|off| {
            self.entries
                .iter()
                .filter(|en| contains(&en.key_span, off) || contains(&en.value_span, off))
                .max_by_key(|en| en.depth)
                .map(|en| en.path.clone())
        });
        self.error(key, offset, e.message().to_owned())
    }

    /// A [`Config::validate`] error, located by its key; a key left at its default gets no location.
    fn locate(&self, e: ConfigError) -> ConfigError {
        let offset = e.key.as_deref().and_then(|key| {
            self.entries.iter().find(|en| en.path == key).map(|en| {
                // A key replaced from the environment has its value there; otherwise point at the key.
                if en.value_span.start > self.text.len() { en.value_span.start } else { en.key_span.start }
            })
        });
        self.error(e.key, offset, e.message)
    }
}

fn contains(span: &Range<usize>, offset: usize) -> bool {
    span.contains(&offset) || (span.is_empty() && span.start == offset)
}

fn collect_table(table: &DeTable<'_>, prefix: &str, depth: usize, out: &mut Vec<Entry>) {
    for (key, value) in table.iter() {
        let path = if prefix.is_empty() { key.get_ref().to_string() } else { format!("{prefix}.{}", key.get_ref()) };
        out.push(Entry { path: path.clone(), depth, key_span: key.span(), value_span: value.span() });
        collect_value(value.get_ref(), &path, depth + 1, out);
    }
}

fn collect_value(value: &DeValue<'_>, path: &str, depth: usize, out: &mut Vec<Entry>) {
    match value {
        DeValue::Table(table) => collect_table(table, path, depth, out),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let path = format!("{path}[{i}]");
                out.push(Entry { path: path.clone(), depth, key_span: item.span(), value_span: item.span() });
                collect_value(item.get_ref(), &path, depth + 1, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../config/t3000.example.toml");

    fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
        vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, "t3000.toml", Vec::new())
    }

    #[test]
    fn example_file_documents_the_defaults() {
        let config = Config::parse(EXAMPLE, "config/t3000.example.toml", Vec::new()).unwrap();
        assert_eq!(config, Config::default());
        Config::default().validate().unwrap();
    }

    #[test]
    fn example_device_parses_when_uncommented() {
        let start = EXAMPLE.find("# [[devices]]").expect("the example documents [[devices]]");
        let block: String = EXAMPLE[start..]
            .lines()
            .map(|l| l.strip_prefix("# ").unwrap_or(l))
            .map(|l| l.split("  #").next().unwrap_or(l).trim_end())
            .collect::<Vec<_>>()
            .join("\n");
        let config = parse(&format!("{}\n{block}\n", &EXAMPLE[..start])).unwrap();
        let d = &config.devices[0];
        assert_eq!(d.name, "ahu-1");
        assert_eq!(d.protocol, Protocol::ModbusTcp);
        assert_eq!(d.profile, "T3-controller");
        assert_eq!(d.points[0].name, "IN1");
        assert_eq!(d.points[0].record.as_ref().map(|r| r.mode), Some(RecordMode::Change));
        assert_eq!(Config { devices: Vec::new(), ..config }, Config::default());
    }

    #[test]
    fn a_plugin_device_keeps_its_own_keys_as_options() {
        let text = "[[devices]]\nname = \"ahu\"\nprotocol = \"bacnet-ip\"\nip_address = \"127.0.0.1\"\ndevice_instance = 1234\nuse_rpm = false\n";
        let c = parse(text).unwrap();
        let d = &c.devices[0];
        assert_eq!(d.protocol, Protocol::Plugin("bacnet-ip".into()));
        assert_eq!((d.unit_id, d.port, d.profile.as_str()), (0, None, ""));
        assert_eq!(d.options.get("device_instance"), Some(&toml::Value::Integer(1234)));
        assert_eq!(d.options.get("use_rpm"), Some(&toml::Value::Boolean(false)));
        // The options survive a round trip through JSON-like serialization, nested.
        let back: DeviceConfig = toml::from_str(&toml::to_string(d).unwrap()).unwrap();
        assert_eq!(&back, d);

        // A device-level check of the server still applies, with its line.
        let e = parse(&text.replace("use_rpm = false", "poll_interval_ms = 5")).unwrap_err();
        assert_eq!((e.key.as_deref(), e.line), (Some("devices[0].poll_interval_ms"), Some(6)), "{e}");
        // Options on a Modbus device are refused.
        let e = parse("[[devices]]\nname = \"a\"\nprotocol = \"modbus-tcp\"\nip_address = \"h\"\nunit_id = 1\nprofile = \"T3-controller\"\n[devices.options]\nx = 1\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("devices[0].x"), "{e}");
    }

    #[test]
    fn device_keys_are_the_fields_the_server_reads() {
        let mut d: DeviceConfig = toml::from_str(
            "name = \"a\"\nprotocol = \"modbus-tcp\"\nip_address = \"h\"\nport = 1\nserial_port = \"s\"\nunit_id = 1\nprofile = \"p\"\ntimeout_ms = 10\nmax_registers = 1\nmax_gap = 1\n",
        )
        .unwrap();
        d.options.insert("x".into(), toml::Value::Integer(1));
        d.points = toml::from_str::<DeviceConfig>(
            "name = \"a\"\nprotocol = \"modbus-rtu\"\nunit_id = 1\n[[points]]\nname = \"IN1\"\n",
        )
        .unwrap()
        .points;
        let keys: Vec<String> = toml::Table::try_from(&d).unwrap().keys().cloned().collect();
        let mut expected: Vec<String> = DEVICE_KEYS.iter().map(|k| k.to_string()).collect();
        expected.sort();
        assert_eq!(keys, expected);
    }

    #[test]
    fn device_errors_name_the_key_and_line() {
        let tcp = "[[devices]]\nname = \"a\"\nprotocol = \"modbus-tcp\"\nip_address = \"10.0.0.1\"\nunit_id = 1\nprofile = \"T3-controller\"\n";
        parse(tcp).unwrap();
        let e = parse(&format!("{tcp}{tcp}")).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("devices[1].name"));
        assert_eq!(e.line, Some(8), "{e}");
        assert!(e.message.contains("already the name of devices[0]"), "{e}");

        let e =
            parse("[[devices]]\nname = \"a\"\nprotocol = \"modbus-rtu\"\nunit_id = 1\nprofile = \"x\"\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("devices[0].serial_port"), "{e}");

        let e = parse(&tcp.replace("unit_id = 1", "unit_id = 1\npoll_interval_ms = 5")).unwrap_err();
        assert_eq!((e.key.as_deref(), e.line), (Some("devices[0].poll_interval_ms"), Some(6)), "{e}");

        let e = parse(&tcp.replace("modbus-tcp", "modbus-udp")).unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        let e = parse(&tcp.replace("modbus-tcp", "BACnet/IP")).unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        assert!(e.message.contains("plugin's protocol name"), "{e}");

        // A key the server does not read is an error on a Modbus device, with its line.
        let e = parse(&tcp.replace(
            "unit_id = 1",
            "unit_id = 1
device_instance = 7",
        ))
        .unwrap_err();
        assert_eq!(e.line, Some(6), "{e}");
        assert!(e.message.contains("device_instance"), "{e}");

        let e = parse(&format!("{tcp}[devices.record]\nmode = \"change\"\ndeadband = -1\n")).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("devices[0].record.deadband"), "{e}");

        let e = parse(&format!("{tcp}[[devices.points]]\nname = \"IN1\"\n[[devices.points]]\nname = \"IN1\"\n"))
            .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("devices[0].points[1].name"), "{e}");

        let rtu = |name: &str, baud: u32| {
            format!(
                "[[devices]]\nname = \"{name}\"\nprotocol = \"modbus-rtu\"\nserial_port = \"/dev/ttyS0\"\nbaud_rate = {baud}\nunit_id = 1\nprofile = \"x\"\n"
            )
        };
        parse(&format!("{}{}", rtu("a", 9600), rtu("b", 9600))).unwrap();
        let e = parse(&format!("{}{}", rtu("a", 9600), rtu("b", 19200))).unwrap_err();
        assert_eq!((e.key.as_deref(), e.line), (Some("devices[1].baud_rate"), Some(12)), "{e}");

        let e = parse("[collector]\nbackoff_initial_ms = 5000\nbackoff_max_ms = 1000\n").unwrap_err();
        assert_eq!((e.key.as_deref(), e.line), (Some("collector.backoff_max_ms"), Some(3)), "{e}");
    }

    #[test]
    fn example_retention_override_parses_when_uncommented() {
        let commented = "# [[retention.points]]\n# points = [1, 2, 3]\n# max_age_days = 7\n";
        assert!(EXAMPLE.contains(commented), "the example keeps its commented-out override");
        let text = EXAMPLE.replace(commented, "[[retention.points]]\npoints = [1, 2, 3]\nmax_age_days = 7\n");
        let config = parse(&text).unwrap();
        assert_eq!(config.retention.points, vec![PointRetention { points: vec![1, 2, 3], max_age_days: 7 }]);
        assert_eq!(config.retention.max_age_days_for(2), 7);
        assert_eq!(config.retention.max_age_days_for(4), 0);
        // Everything else is unchanged.
        assert_eq!(Config { retention: RetentionConfig::default(), ..config }, Config::default());
    }

    #[test]
    fn empty_text_gives_defaults_and_serialization_round_trips() {
        assert_eq!(Config::parse("", "<embedded>", Vec::new()).unwrap(), Config::default());
        let text = toml::to_string(&Config::default()).unwrap();
        assert_eq!(parse(&text).unwrap(), Config::default());
    }

    #[test]
    fn env_overlays_number_path_and_bool() {
        let text = "[storage]\ndata_dir = \"/var/lib/t3000\"\n\n[wal]\ngroup_commit_max_delay_ms = 200\n";
        let config = Config::parse(
            text,
            "t3000.toml",
            env(&[
                ("T3000__STORAGE__DATA_DIR", "/srv/t3"),
                ("T3000__wal__Group_Commit_Max_Delay_Ms", "50"),
                ("T3000__COMPACTION__ENABLED", "false"),
                ("T3000__LOG__LEVEL", "debug,t3_storage=trace"),
                ("T3000__STORAGE__ACK", "parquet"),
                ("T3000__RETENTION__POINTS", "[{ points = [5], max_age_days = 2 }]"),
                ("PATH", "/usr/bin"),
                ("T3000_CONFIG", "ignored.toml"),
            ]),
        )
        .unwrap();
        assert_eq!(config.storage.data_dir, PathBuf::from("/srv/t3"));
        assert_eq!(config.wal.group_commit_max_delay_ms, 50);
        assert!(!config.compaction.enabled);
        assert_eq!(config.log.level, "debug,t3_storage=trace");
        assert_eq!(config.storage.ack, AckLevel::Parquet);
        assert_eq!(config.retention.max_age_days_for(5), 2);
    }

    /// `[plugins] dirs` is unset by default, and an environment variable can still set it.
    #[test]
    fn env_sets_the_plugin_folders() {
        let c = Config::parse("", "t.toml", env(&[("T3000__PLUGINS__DIRS", r#"["/tmp/x", "/opt/p"]"#)])).unwrap();
        assert_eq!(c.plugins.dirs, Some(vec![PathBuf::from("/tmp/x"), PathBuf::from("/opt/p")]));
        let e = Config::parse("", "t.toml", env(&[("T3000__PLUGINS__DIRS", "/tmp/x")])).unwrap_err();
        assert_eq!(e.env_var.as_deref(), Some("T3000__PLUGINS__DIRS"), "{e}");
        let e = Config::parse("", "t.toml", env(&[("T3000__PLUGINS__FOLDERS", "[]")])).unwrap_err();
        assert!(e.to_string().contains("unknown key `plugins.folders`"), "{e}");
    }

    #[test]
    fn env_quoted_string_and_numeric_looking_string() {
        let config = Config::parse(
            "",
            "<embedded>",
            env(&[("T3000__SERVER__LISTEN", "\"0.0.0.0:80\""), ("T3000__STORAGE__DATA_DIR", "inf")]),
        )
        .unwrap();
        assert_eq!(config.server.listen, "0.0.0.0:80");
        assert_eq!(config.storage.data_dir, PathBuf::from("inf"));
    }

    #[test]
    fn unknown_key_in_file_names_key_and_line() {
        let text = "[server]\nlisten = \"127.0.0.1:9103\"\n\n[storage]\nflush_rows = 100000\nflush_rowz = 5\n";
        let e = parse(text).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("storage.flush_rowz"));
        assert_eq!(e.line, Some(6));
        assert_eq!(e.env_var, None);
        assert!(e.message.contains("unknown field `flush_rowz`"), "{e}");
        assert!(e.to_string().starts_with("t3000.toml:6: storage.flush_rowz: unknown field"), "{e}");
    }

    #[test]
    fn unknown_section_in_file_names_it() {
        let e = parse("[server]\n\n[storage.extra]\nx = 1\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("storage.extra"));
        assert_eq!(e.line, Some(3));
        let e = parse("[sever]\nlisten = \"x\"\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("sever"));
        assert_eq!(e.line, Some(1));
    }

    #[test]
    fn wrong_type_names_key_and_line() {
        let e = parse("# comment\n[wal]\nsegment_bytes = 67108864\n\n[storage]\nflush_rows = \"lots\"\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("storage.flush_rows"));
        assert_eq!(e.line, Some(6));
        assert!(e.message.contains("invalid type"), "{e}");

        let e = parse("[storage]\nack = \"disk\"\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("storage.ack"));
        assert_eq!(e.line, Some(2));

        // Inside an array, in an array of tables spread over lines.
        let text = "[retention]\nmax_age_days = 30\n\n[[retention.points]]\npoints = [1, 2]\nmax_age_days = 3\n\n\
                    [[retention.points]]\npoints = [\n  3,\n  \"four\",\n]\nmax_age_days = 4\n";
        let e = parse(text).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("retention.points[1].points[1]"));
        assert_eq!(e.line, Some(11));
    }

    #[test]
    fn missing_required_override_field_is_located() {
        let e = parse("[retention]\n\n[[retention.points]]\npoints = [1]\n").unwrap_err();
        assert!(e.message.contains("max_age_days"), "{e}");
        assert_eq!(e.key.as_deref(), Some("retention.points[0]"));
        assert!(e.line.is_some(), "{e}");
    }

    #[test]
    fn out_of_range_names_key_and_line() {
        let text = "[server]\nlisten = \"127.0.0.1:9103\"\n\n[storage]\ndata_dir = \"/srv\"\nflush_rows = 5\n";
        let e = Config::parse(text, "config/t3000.toml", Vec::new()).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("storage.flush_rows"));
        assert_eq!(e.line, Some(6));
        assert_eq!(e.to_string(), "config/t3000.toml:6: storage.flush_rows: must be between 1000 and 50000000 (got 5)");
    }

    #[test]
    fn out_of_range_in_dotted_and_inline_forms() {
        let e = parse("wal.segment_bytes = 1\n").unwrap_err();
        assert_eq!((e.key.as_deref(), e.line), (Some("wal.segment_bytes"), Some(1)));
        let e = parse("\nquery = { threads = 0 }\n").unwrap_err();
        assert_eq!((e.key.as_deref(), e.line), (Some("query.threads"), Some(2)));
    }

    #[test]
    fn out_of_range_from_env_names_the_variable() {
        let text = "[wal]\nsegment_bytes = 67108864\n";
        let e = Config::parse(text, "config/t3000.toml", env(&[("T3000__WAL__SEGMENT_BYTES", "10")])).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("wal.segment_bytes"));
        assert_eq!(e.env_var.as_deref(), Some("T3000__WAL__SEGMENT_BYTES"));
        assert_eq!(e.line, None);
        assert_eq!(
            e.to_string(),
            "environment T3000__WAL__SEGMENT_BYTES: wal.segment_bytes: must be between 1048576 and 4294967296 (got 10)"
        );
    }

    #[test]
    fn wrong_type_from_env_names_the_variable() {
        let e = Config::parse("", "t3000.toml", env(&[("T3000__STORAGE__FLUSH_ROWS", "many")])).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("storage.flush_rows"));
        assert_eq!(e.env_var.as_deref(), Some("T3000__STORAGE__FLUSH_ROWS"));
        // The second variable's slot is distinct from the first's.
        let e = Config::parse(
            "",
            "t3000.toml",
            env(&[
                ("T3000__QUERY__THREADS", "4"),
                ("T3000__RETENTION__POINTS", "[{ points = [1], max_age_days = \"x\" }]"),
            ]),
        )
        .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("retention.points[0].max_age_days"));
        assert_eq!(e.env_var.as_deref(), Some("T3000__RETENTION__POINTS"));
    }

    #[test]
    fn env_for_unknown_key_or_section_names_the_variable() {
        let e = Config::parse("", "t3000.toml", env(&[("T3000__WAL__SEGMENT_SIZE", "1")])).unwrap_err();
        assert_eq!(e.env_var.as_deref(), Some("T3000__WAL__SEGMENT_SIZE"));
        assert!(e.to_string().contains("T3000__WAL__SEGMENT_SIZE"), "{e}");
        assert!(e.message.contains("unknown key `wal.segment_size`"), "{e}");

        let e = Config::parse("", "t3000.toml", env(&[("T3000__NOPE__X", "1")])).unwrap_err();
        assert_eq!(e.env_var.as_deref(), Some("T3000__NOPE__X"));
        assert!(e.message.contains("unknown section"), "{e}");

        let e = Config::parse("", "t3000.toml", env(&[("T3000__STORAGE", "1")])).unwrap_err();
        assert_eq!(e.env_var.as_deref(), Some("T3000__STORAGE"));
    }

    #[test]
    fn env_setting_one_key_twice_is_an_error() {
        let vars = env(&[("T3000__QUERY__THREADS", "4"), ("T3000__query__threads", "8")]);
        let e = Config::parse("", "t3000.toml", vars).unwrap_err();
        assert!(e.message.contains("also set by"), "{e}");
    }

    #[test]
    fn duplicate_point_in_two_overrides_is_an_error() {
        let text = "[retention]\nmax_age_days = 365\n\n[[retention.points]]\npoints = [1, 2]\nmax_age_days = 7\n\n\
                    [[retention.points]]\npoints = [3, 2]\nmax_age_days = 30\n";
        let e = parse(text).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("retention.points[1].points"));
        assert_eq!(e.line, Some(9));
        assert!(e.message.contains("point 2 is already listed in retention.points[0]"), "{e}");
    }

    #[test]
    fn override_rules() {
        let e = parse("[[retention.points]]\npoints = []\nmax_age_days = 3\n").unwrap_err();
        assert_eq!((e.key.as_deref(), e.line), (Some("retention.points[0].points"), Some(2)));
        let e = parse("[[retention.points]]\npoints = [1]\nmax_age_days = 0\n").unwrap_err();
        assert_eq!((e.key.as_deref(), e.line), (Some("retention.points[0].max_age_days"), Some(3)));
    }

    #[test]
    fn invalid_listen_address_is_an_error() {
        let e = parse("[server]\nlisten = \"localhost\"\n").unwrap_err();
        assert_eq!((e.key.as_deref(), e.line), (Some("server.listen"), Some(2)));
        assert!(e.message.contains("socket address"), "{e}");
    }

    #[test]
    fn an_address_of_digits_and_dots_must_be_ipv4() {
        let device = |a: &str| {
            format!(
                "[[devices]]\nname = \"a\"\nprotocol = \"modbus-tcp\"\nip_address = \"{a}\"\nunit_id = 1\nprofile = \"T3-controller\"\n"
            )
        };
        let e = parse(&device("999.1.1.1")).unwrap_err();
        assert_eq!((e.key.as_deref(), e.line), (Some("devices[0].ip_address"), Some(4)), "{e}");
        assert!(e.to_string().contains("not an IPv4 address"), "{e}");
        for ok in ["10.0.0.1", "plc-7.site.local", "::1"] {
            parse(&device(ok)).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }

    /// A configuration made from a backup's `t3000.effective.toml` is refused until its redacted
    /// secrets are put back.
    #[test]
    fn redacted_placeholders_are_refused() {
        let c = Config::default().without_secrets();
        let mut text = toml::to_string(&c).unwrap();
        text.push_str("[alerts.smtp]\nhost = \"h\"\nfrom = \"t@x.org\"\nusername = \"u\"\npassword = \"<redacted>\"\n");
        let e = Config::parse_with(&text, "t3000.effective.toml", std::iter::empty(), |_| Ok(())).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("alerts.smtp.password"), "{e}");
        let text = "[[alerts.webhook]]\nname = \"a\"\nurl = \"https://hooks.example.com/<redacted>\"\n";
        let e = Config::parse_with(text, "t.toml", std::iter::empty(), |_| Ok(())).unwrap_err();
        assert_eq!((e.key.as_deref(), e.line), (Some("alerts.webhook[0].url"), Some(3)), "{e}");
    }

    #[test]
    fn validate_error_for_a_default_key_has_no_line() {
        let mut config = Config::default();
        config.query.threads = 0;
        let e = config.validate().unwrap_err();
        assert_eq!(e.to_string(), "query.threads: must be between 1 and 256 (got 0)");
    }

    #[test]
    fn syntax_error_has_a_line() {
        let e = Config::parse("[server]\nlisten = \n", "t3000.toml", Vec::new()).unwrap_err();
        assert_eq!(e.line, Some(2));
        assert!(e.to_string().starts_with("t3000.toml:2: invalid TOML"), "{e}");
    }

    #[test]
    fn every_range_is_checked() {
        let cases: &[(&str, &str)] = &[
            ("[server]\nmax_body_bytes = 1000", "server.max_body_bytes"),
            ("[server]\nshutdown_timeout_secs = 0", "server.shutdown_timeout_secs"),
            ("[server]\nheader_read_timeout_secs = 0", "server.header_read_timeout_secs"),
            ("[server]\nidle_timeout_secs = 86401", "server.idle_timeout_secs"),
            ("[server]\nmax_connections = 10000001", "server.max_connections"),
            ("[ingest]\nmax_future_secs = 315576000001", "ingest.max_future_secs"),
            ("[ingest]\nmax_days_per_batch = 0", "ingest.max_days_per_batch"),
            ("[storage]\ndata_dir = \"\"", "storage.data_dir"),
            ("[storage]\nflush_interval_secs = 86401", "storage.flush_interval_secs"),
            ("[storage]\nsparse_day_rows = 50000001", "storage.sparse_day_rows"),
            ("[storage]\nrow_group_rows = 1000", "storage.row_group_rows"),
            ("[storage]\npage_rows = 1000", "storage.page_rows"),
            ("[storage]\nzstd_level = 23", "storage.zstd_level"),
            ("[storage]\nscrub_interval_secs = 5", "storage.scrub_interval_secs"),
            ("[storage]\nscrub_mib_per_sec = 0", "storage.scrub_mib_per_sec"),
            ("[storage]\ndisk_alarm_free_mb = 0", "storage.disk_alarm_free_mb"),
            ("[storage]\ndisk_alarm_free_percent = 51", "storage.disk_alarm_free_percent"),
            // The floor must be below the alarm threshold (1024 MiB by default).
            ("[storage]\ndisk_floor_free_mb = 1024", "storage.disk_floor_free_mb"),
            ("[storage]\ndisk_check_interval_ms = 99", "storage.disk_check_interval_ms"),
            ("[wal]\ngroup_commit_max_delay_ms = 0", "wal.group_commit_max_delay_ms"),
            ("[wal]\ngroup_commit_max_bytes = 4095", "wal.group_commit_max_bytes"),
            ("[wal]\nsegment_bytes = 4294967297", "wal.segment_bytes"),
            ("[compaction]\ninterval_secs = 0", "compaction.interval_secs"),
            ("[compaction]\nmin_files_per_day = 1", "compaction.min_files_per_day"),
            ("[compaction]\ntarget_file_rows = 99999", "compaction.target_file_rows"),
            ("[retention]\ncheck_interval_secs = 604801", "retention.check_interval_secs"),
            ("[query]\ntimeout_ms = 99", "query.timeout_ms"),
            ("[query]\nmax_rows = 0", "query.max_rows"),
            ("[query]\nsql_timeout_ms = 3600001", "query.sql_timeout_ms"),
            ("[query]\nsql_max_rows = 0", "query.sql_max_rows"),
            ("[query]\nthreads = 257", "query.threads"),
            ("[query]\nmemory_limit_mb = 63", "query.memory_limit_mb"),
            ("[query]\nspill_limit_mb = 16777217", "query.spill_limit_mb"),
            ("[log]\nlevel = \" \"", "log.level"),
            ("[log]\nfile = \"\"", "log.file"),
            ("[log]\nrotate = \"weekly\"", "log.rotate"),
            ("[log]\nrotate = \"0MB\"", "log.rotate"),
            ("[log]\nkeep = 1001", "log.keep"),
            ("[auth]\nws_ticket_secs = 0", "auth.ws_ticket_secs"),
            ("[auth]\nws_ticket_secs = 301", "auth.ws_ticket_secs"),
            ("[programs]\nscan_ms = 99", "programs.scan_ms"),
            ("[programs]\npriority = 0", "programs.priority"),
            ("[programs]\npriority = 17", "programs.priority"),
            ("[programs]\nmax_steps = 0", "programs.max_steps"),
        ];
        for (text, key) in cases {
            let e = parse(text).unwrap_err();
            assert_eq!((e.key.as_deref(), e.line), (Some(*key), Some(2)), "{text}: {e}");
        }
    }

    #[test]
    fn log_rotation_is_daily_or_a_size() {
        use super::LogRotation::{Daily, Size};
        assert_eq!(LogRotation::parse("daily"), Ok(Daily));
        assert_eq!(LogRotation::parse(" Daily "), Ok(Daily));
        assert_eq!(LogRotation::parse("100MB"), Ok(Size(100 * MIB)));
        assert_eq!(LogRotation::parse("512 kb"), Ok(Size(512 * KIB)));
        assert_eq!(LogRotation::parse("1GiB"), Ok(Size(GIB)));
        assert_eq!(LogRotation::parse("1024GB"), Ok(Size(1024 * GIB)));
        for bad in ["", "100", "MB", "10 TB", "1.5MB", "-1MB", "1025GB", "0KB", "hourly"] {
            assert!(LogRotation::parse(bad).is_err(), "{bad:?} was taken");
        }
        assert_eq!(LogConfig::default().rotation(), Ok(Daily));
    }
}
