//! t3-tests: the end-to-end tests of the `t3000` binary, and the helpers they share.
//!
//! # Data flow
//! A test starts the real binary as a child process ([`TestServer`]) on a temporary data directory
//! (port 0, the port read from the `t3000 listening on http://...` line it prints), talks to it over
//! HTTP and WebSocket as a client would, with peers we did not write where a site has them
//! (pymodbus, socat ptys, Schemathesis), can kill it (`SIGKILL`), stop it (`SIGTERM`) and restart
//! it on the same data directory, and then looks at what the server answered and what it left on
//! disk (WAL segments, the manifest, Parquet files).
//!
//! The binary is `$T3000_BIN` if set, else `t3000` next to the test executable's directory
//! (`target/release/deps/main-*` -> `target/release/t3000`). It is not built by `cargo test`: run
//! `cargo build --release --bin t3000` first.
//!
//! # Layout
//! - `src/lib.rs` (this file): [`TestServer`], the tools to look at a data directory, and request
//!   bodies (JSON samples, Arrow IPC streams); `src/webhook.rs` a webhook receiver for the
//!   outbound-alert tests.
//! - `tests/main.rs`: one module per area: `alarms` (rules judged at once,
//!   acknowledgements), `analytics` (SQL over a whole store), `api_input` (bad
//!   input to every endpoint), `bacnet` (the BACnet/IP plugin in the real server against
//!   bacpypes3), `catalog` (catalog and control API), `connections` (HTTP limits and
//!   shutdown), `corruption` (damaged files), `crash` (SIGKILL during ingest), `deploy` (the
//!   systemd unit, readiness, the container image with podman, log files), `devices` (simulate,
//!   discover, serve, demo), `disk_full`, `export` (names, units and file names of exports),
//!   `lifecycle` (process and command line), `metrics`, `modes` (auto / manual),
//!   `plan_types` (the plan's REST and WebSocket types), `safety` (data safety), `sandbox` (the
//!   SQL sandbox), `schemathesis` (the OpenAPI document, with `schemathesis_hooks.py`), `semantics`
//!   (what stored data means), `timestamps` (time stamps nobody meant), `write_safety` (who may write
//!   a device's configuration, values outside a point's range), `ws` (live updates).

pub mod webhook;
pub mod webview_db;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use std::ffi::OsString;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub use reqwest::StatusCode;

/// How long a server may take to print its listening line (recovery included).
pub const START_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a graceful stop may take.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(90);

/// 2024-01-01T00:00:00Z in epoch microseconds: the start of the tests' data.
pub const BASE_TS: i64 = 1_704_067_200_000_000;
pub const SECOND_US: i64 = 1_000_000;
pub const MINUTE_US: i64 = 60 * SECOND_US;
pub const HOUR_US: i64 = 60 * MINUTE_US;
pub const DAY_US: i64 = 24 * HOUR_US;

/// The `t3000` binary under test.
pub fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("T3000_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("the test executable's path");
    let dir = exe.parent().expect("the test executable's directory");
    let candidate = dir.join("..").join("t3000");
    assert!(
        candidate.is_file(),
        "the t3000 binary is not at {} (build it with `cargo build --release --bin t3000`, or set T3000_BIN)",
        candidate.display()
    );
    candidate
}

/// A `Command` for the binary with an environment that cannot change its configuration: every
/// `T3000__*` override and `RUST_LOG` of the caller's environment are removed.
pub fn command() -> Command {
    let mut c = Command::new(binary());
    clean_env(&mut c);
    c
}

/// Like [`command`], with the binary started by `sh` under the open-files limits `soft` and `hard`
/// (`ulimit -n`: the workspace forbids the `unsafe` a `pre_exec` hook would need). The `exec` keeps
/// the process id, so signals reach the server.
pub fn command_with_nofile(soft: u64, hard: u64) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c").arg(format!("ulimit -Sn {soft} && ulimit -Hn {hard} && exec \"$0\" \"$@\"")).arg(binary());
    clean_env(&mut c);
    c
}

fn clean_env(c: &mut Command) {
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("T3000__") {
            c.env_remove(&k);
        }
    }
    c.env_remove("RUST_LOG");
    c.env("T3000_ADMIN_PASSWORD", ADMIN_PASSWORD);
    c.stdin(Stdio::null());
}

/// The password of `admin` on every test server (set through `T3000_ADMIN_PASSWORD`).
/// A loopback port nothing listens on, so connections to it are refused. Privileged, so no test
/// running beside another can be given it by `bind(0)`: a port freed right after `bind(0)` may be
/// another test's (or the server's own) listener a moment later.
pub const REFUSED_PORT: u16 = 1;

pub const ADMIN_PASSWORD: &str = "test-admin-password";

/// Logs in with a plain HTTP/1.1 request (usable before any async runtime exists) and returns
/// the bearer token.
pub fn login_blocking(base: &str, username: &str, password: &str) -> Result<String, String> {
    use std::io::{Read, Write};
    let host = base.trim_start_matches("http://");
    let body = serde_json::json!({ "username": username, "password": password }).to_string();
    let mut stream = std::net::TcpStream::connect(host).map_err(|e| format!("connect {host}: {e}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).map_err(|e| e.to_string())?;
    write!(
        stream,
        "POST /api/t3000/auth/login HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| e.to_string())?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).map_err(|e| e.to_string())?;
    let (head, body) = reply.split_once("\r\n\r\n").ok_or_else(|| format!("no HTTP reply: {reply}"))?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!("login refused: {head}\n{body}"));
    }
    let v: Value = serde_json::from_str(body).map_err(|e| format!("login reply is not JSON ({e}): {body}"))?;
    v["token"].as_str().map(str::to_owned).ok_or_else(|| format!("no token in {v}"))
}

/// What a finished command did.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the binary with `args` to completion (at most `STOP_TIMEOUT`).
pub fn run(args: &[&str]) -> Output {
    run_cmd(command().args(args))
}

/// Runs a prepared command to completion (at most `STOP_TIMEOUT`), capturing its output.
pub fn run_cmd(cmd: &mut Command) -> Output {
    let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn t3000");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(STOP_TIMEOUT) {
        Ok(r) => r.expect("wait for t3000"),
        Err(_) => {
            signal(pid, "KILL");
            panic!("t3000 {cmd:?} did not finish within {STOP_TIMEOUT:?}");
        }
    };
    Output {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Sends a signal by name (`TERM`, `KILL`) with `kill(1)`: the workspace forbids `unsafe`.
fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill").arg(format!("-{name}")).arg(pid.to_string()).status();
}

/// Merges `extra` into `base`: tables merge key by key, anything else in `extra` wins.
fn merge(base: &mut toml::Table, extra: toml::Table) {
    for (k, v) in extra {
        match v {
            toml::Value::Table(e) if matches!(base.get(&k), Some(toml::Value::Table(_))) => {
                if let Some(toml::Value::Table(b)) = base.get_mut(&k) {
                    merge(b, e);
                }
            }
            v => {
                base.insert(k, v);
            }
        }
    }
}

/// The configuration every test server starts from; `extra` (TOML, may repeat sections) overrides it.
pub fn config_text(data_dir: &Path, extra: &str) -> String {
    let mut base: toml::Table = toml::from_str(
        r#"
        [server]
        listen = "127.0.0.1:0"
        shutdown_timeout_secs = 60
        [query]
        memory_limit_mb = 256
        [log]
        level = "info"
        "#,
    )
    .expect("base config");
    base.insert("storage".into(), toml::Value::Table(toml::Table::new()));
    if let Some(toml::Value::Table(s)) = base.get_mut("storage") {
        s.insert("data_dir".into(), toml::Value::String(data_dir.display().to_string()));
        // Small disk thresholds, so that how full the test machine's disk is never raises the
        // disk-space alarm (or refuses writes) in a test about something else; tests/diskspace.rs
        // sets its own on a file system of its own.
        s.insert("disk_alarm_free_mb".into(), toml::Value::Integer(64));
        s.insert("disk_alarm_free_percent".into(), toml::Value::Integer(0));
        s.insert("disk_floor_free_mb".into(), toml::Value::Integer(16));
    }
    let extra: toml::Table = toml::from_str(extra).unwrap_or_else(|e| panic!("test config is not TOML: {e}\n{extra}"));
    merge(&mut base, extra);
    toml::to_string(&base).expect("serialise config")
}

/// Why a server did not start.
#[derive(Debug)]
pub enum StartError {
    /// The process ended before printing its listening line.
    Exited {
        status: ExitStatus,
        stderr: String,
    },
    /// No listening line within `START_TIMEOUT`; the process was killed.
    Timeout {
        stderr: String,
    },
    Io(std::io::Error),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Exited { status, stderr } => {
                write!(f, "t3000 exited with {status} before listening:\n{stderr}")
            }
            StartError::Timeout { stderr } => write!(f, "t3000 did not listen within {START_TIMEOUT:?}:\n{stderr}"),
            StartError::Io(e) => write!(f, "spawn t3000: {e}"),
        }
    }
}

/// One reply: status, headers and body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics (showing the body) if it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("reply ({}) is not JSON ({e}): {}", self.status, self.text()))
    }

    /// The JSON body of a 200 reply; panics with the body otherwise.
    pub fn ok_json(&self) -> Value {
        assert_eq!(self.status, StatusCode::OK, "expected 200, got {}: {}", self.status, self.text());
        self.json()
    }

    pub fn content_type(&self) -> String {
        self.headers.get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
    }

    /// Asserts this is an error reply with `status` and a JSON body `{"error": {"code", "message"}}`
    /// (and `code` if given). `what` names the request in failure messages. Returns the error code.
    pub fn assert_error(&self, what: &str, status: StatusCode, code: Option<&str>) -> String {
        self.check_error(Some(status), code).unwrap_or_else(|e| panic!("{what}: {e}"))
    }

    /// Asserts this is a 4xx reply with a JSON error body; returns the error code.
    pub fn assert_client_error(&self, what: &str) -> String {
        self.check_error(None, None).unwrap_or_else(|e| panic!("{what}: {e}"))
    }

    /// Checks this is an error reply: `status` (any 4xx if `None`), a JSON content type and body
    /// `{"error": {"code", "message"}}` with non-empty strings, and `code` if given. Returns the
    /// error code, or what is wrong.
    pub fn check_error(&self, status: Option<StatusCode>, code: Option<&str>) -> Result<String, String> {
        match status {
            Some(st) if self.status != st => {
                return Err(format!("expected {st}, got {}: {}", self.status, self.text()));
            }
            None if !self.status.is_client_error() => {
                return Err(format!("expected a 4xx, got {}: {}", self.status, self.text()));
            }
            _ => {}
        }
        if !self.content_type().starts_with("application/json") {
            return Err(format!(
                "{}: error content type is '{}', body: {:?}",
                self.status,
                self.content_type(),
                self.text()
            ));
        }
        let body: Value = serde_json::from_slice(&self.body)
            .map_err(|e| format!("{}: error body is not JSON ({e}): {}", self.status, self.text()))?;
        let c = body["error"]["code"].as_str().ok_or_else(|| format!("no error.code in {body}"))?;
        let m = body["error"]["message"].as_str().ok_or_else(|| format!("no error.message in {body}"))?;
        if c.is_empty() || m.is_empty() {
            return Err(format!("empty error code or message: {body}"));
        }
        if let Some(want) = code
            && c != want
        {
            return Err(format!("error code '{c}', expected '{want}': {body}"));
        }
        Ok(c.to_string())
    }
}

/// An HTTP client sending `Authorization: Bearer <token>` with every request.
pub fn client_with_token(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")).expect("token header");
    headers.insert(reqwest::header::AUTHORIZATION, value);
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(8)
        .default_headers(headers)
        .build()
        .expect("HTTP client")
}

/// A `t3000` process on a temporary directory.
#[derive(Debug)]
pub struct TestServer {
    /// Holds the config file, the server logs and (unless given) the data directory.
    root: PathBuf,
    _tmp: tempfile::TempDir,
    /// The data directory the server runs on.
    pub data_dir: PathBuf,
    /// The command line (after the binary) that starts it; `restart` reuses it.
    args: Vec<OsString>,
    child: Option<Child>,
    base: String,
    /// Sends `Authorization: Bearer <admin token>` with every request.
    pub client: reqwest::Client,
    /// The admin's bearer token.
    pub token: String,
    /// How long the last start took, from spawn to the listening line (recovery included).
    pub startup: Duration,
    starts: usize,
    /// Open-files limits (soft, hard) the server is started under, if not the caller's.
    nofile: Option<(u64, u64)>,
}

impl TestServer {
    /// Starts `t3000 serve` with the base test configuration plus `extra` (TOML) on a new data directory.
    pub fn start(extra: &str) -> TestServer {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = tmp.path().join("data");
        Self::try_start_with(tmp, data, extra).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts `t3000 serve` on an existing (or to-be-created) data directory `data_dir`.
    pub fn start_in(data_dir: &Path, extra: &str) -> TestServer {
        Self::try_start_in(data_dir, extra).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`TestServer::start_in`], returning why the server did not start instead of panicking.
    pub fn try_start_in(data_dir: &Path, extra: &str) -> Result<TestServer, StartError> {
        let tmp = tempfile::tempdir().map_err(StartError::Io)?;
        Self::try_start_with(tmp, data_dir.to_owned(), extra)
    }

    fn try_start_with(tmp: tempfile::TempDir, data_dir: PathBuf, extra: &str) -> Result<TestServer, StartError> {
        Self::try_start_limited(tmp, data_dir, extra, None)
    }

    /// Starts `t3000 serve` like [`TestServer::start`] under the open-files limits `soft` and `hard`
    /// (restarts keep them).
    pub fn start_with_nofile(extra: &str, soft: u64, hard: u64) -> TestServer {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = tmp.path().join("data");
        Self::try_start_limited(tmp, data, extra, Some((soft, hard))).unwrap_or_else(|e| panic!("{e}"))
    }

    fn try_start_limited(
        tmp: tempfile::TempDir,
        data_dir: PathBuf,
        extra: &str,
        nofile: Option<(u64, u64)>,
    ) -> Result<TestServer, StartError> {
        let config = tmp.path().join("t3000.toml");
        std::fs::write(&config, config_text(&data_dir, extra)).map_err(StartError::Io)?;
        let args = vec![OsString::from("serve"), OsString::from("--config"), config.into_os_string()];
        Self::spawn_new(tmp, data_dir, args, nofile)
    }

    /// Starts `t3000 demo --data-dir <data_dir> --listen 127.0.0.1:0`.
    pub fn start_demo(data_dir: &Path) -> TestServer {
        let tmp = tempfile::tempdir().expect("tempdir");
        let args = vec![
            OsString::from("demo"),
            OsString::from("--data-dir"),
            data_dir.as_os_str().to_owned(),
            OsString::from("--listen"),
            OsString::from("127.0.0.1:0"),
        ];
        Self::spawn_new(tmp, data_dir.to_owned(), args, None).unwrap_or_else(|e| panic!("{e}"))
    }

    fn spawn_new(
        tmp: tempfile::TempDir,
        data_dir: PathBuf,
        args: Vec<OsString>,
        nofile: Option<(u64, u64)>,
    ) -> Result<TestServer, StartError> {
        let client = reqwest::Client::new();
        let mut s = TestServer {
            root: tmp.path().to_owned(),
            _tmp: tmp,
            data_dir,
            args,
            child: None,
            base: String::new(),
            client,
            token: String::new(),
            startup: Duration::ZERO,
            starts: 0,
            nofile,
        };
        s.spawn()?;
        s.token = login_blocking(&s.base, "admin", ADMIN_PASSWORD).unwrap_or_else(|e| panic!("{e}\n{}", s.stderr()));
        s.client = client_with_token(&s.token);
        Ok(s)
    }

    fn spawn(&mut self) -> Result<(), StartError> {
        assert!(self.child.is_none(), "the server is already running");
        self.starts += 1;
        let log_path = self.log_path(self.starts);
        let log = File::create(&log_path).map_err(StartError::Io)?;
        let mut cmd = match self.nofile {
            Some((soft, hard)) => command_with_nofile(soft, hard),
            None => command(),
        };
        cmd.args(&self.args).stdout(Stdio::piped()).stderr(log);
        let t0 = Instant::now();
        let mut child = cmd.spawn().map_err(StartError::Io)?;
        let stdout = child.stdout.take().expect("piped stdout");
        let mut copy = File::create(self.stdout_path(self.starts)).map_err(StartError::Io)?;
        let (tx, rx) = mpsc::channel::<String>();
        // Reads the listening line, then keeps draining stdout so the server never blocks on it;
        // every line goes to a file too ([`TestServer::stdout`]).
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let mut sent = false;
            loop {
                line.clear();
                let read = reader.read_line(&mut line);
                let _ = std::io::Write::write_all(&mut copy, line.as_bytes());
                match read {
                    Ok(0) | Err(_) => return,
                    Ok(_) if !sent => {
                        if let Some(url) = line.trim().strip_prefix("t3000 listening on ") {
                            let _ = tx.send(url.trim_end_matches('/').to_string());
                            sent = true;
                        }
                    }
                    Ok(_) => {}
                }
            }
        });
        let deadline = t0 + START_TIMEOUT;
        loop {
            match rx.recv_timeout(Duration::from_millis(20)) {
                Ok(url) => {
                    self.startup = t0.elapsed();
                    self.base = url;
                    self.child = Some(child);
                    return Ok(());
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    // Stdout closed without the line: the process is ending.
                    let status = wait_until(&mut child, deadline);
                    let stderr = std::fs::read_to_string(&log_path).unwrap_or_default();
                    return match status {
                        Some(status) => Err(StartError::Exited { status, stderr }),
                        None => Err(StartError::Timeout { stderr }),
                    };
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                let stderr = std::fs::read_to_string(&log_path).unwrap_or_default();
                return Err(StartError::Exited { status, stderr });
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                let stderr = std::fs::read_to_string(&log_path).unwrap_or_default();
                return Err(StartError::Timeout { stderr });
            }
        }
    }

    fn log_path(&self, start: usize) -> PathBuf {
        self.root.join(format!("server-{start}.log"))
    }

    fn stdout_path(&self, start: usize) -> PathBuf {
        self.root.join(format!("server-{start}.out"))
    }

    /// Everything the server wrote to stdout since its last start (so far as it has been read).
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.stdout_path(self.starts)).unwrap_or_default()
    }

    /// Everything the server wrote to stderr since its last start.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.log_path(self.starts)).unwrap_or_default()
    }

    /// The server's process id (while it runs).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `127.0.0.1:PORT`, for raw TCP clients.
    pub fn addr(&self) -> String {
        self.base.trim_start_matches("http://").to_string()
    }

    /// The temporary directory holding the config file and logs (and by default the data directory).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Kills the server with SIGKILL (if it is still running) and reaps it.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("the server is not running");
        if matches!(child.try_wait(), Ok(None)) {
            signal(child.id(), "KILL");
        }
        child.wait().expect("reap the server");
    }

    /// Sends SIGHUP (reload the configuration) without waiting for anything.
    pub fn sighup(&self) {
        signal(self.child.as_ref().expect("the server is not running").id(), "HUP");
    }

    /// Replaces the configuration file of a server started with [`TestServer::start`] with the
    /// base test configuration plus `extra`, as [`config_text`] makes it; nothing reloads it.
    pub fn rewrite_config(&self, extra: &str) {
        std::fs::write(self.root.join("t3000.toml"), config_text(&self.data_dir, extra)).expect("write the config");
    }

    /// Sends SIGTERM without waiting for the process to end.
    pub fn send_sigterm(&self) {
        signal(self.child.as_ref().expect("the server is not running").id(), "TERM");
    }

    /// Sends SIGTERM and waits (at most `STOP_TIMEOUT`) for the process to end.
    pub fn sigterm(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("the server is not running");
        signal(child.id(), "TERM");
        match wait_until(&mut child, Instant::now() + STOP_TIMEOUT) {
            Some(status) => status,
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the server did not stop within {STOP_TIMEOUT:?} of SIGTERM:\n{}", self.stderr());
            }
        }
    }

    /// Waits at most `timeout` for the process to end (after [`TestServer::send_sigterm`]) and reaps
    /// it; `None`, with the process killed, if it was still running then.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take().expect("the server is not running");
        let status = wait_until(&mut child, Instant::now() + timeout);
        if status.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        status
    }

    /// Stops the server with SIGTERM and asserts it exited with code 0.
    pub fn stop(&mut self) {
        let status = self.sigterm();
        assert_eq!(status.code(), Some(0), "graceful stop exit status {status}; stderr:\n{}", self.stderr());
    }

    /// Starts the server again with the same command line and data directory (after `kill9` or `sigterm`).
    pub fn restart(&mut self) {
        self.try_restart().unwrap_or_else(|e| panic!("restart: {e}"));
    }

    pub fn try_restart(&mut self) -> Result<(), StartError> {
        self.spawn()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    // ---- HTTP ----

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        let resp = req.send().await.unwrap_or_else(|e| panic!("request failed: {e}\nserver log:\n{}", self.stderr()));
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.map(|b| b.to_vec()).unwrap_or_else(|e| panic!("read body: {e}"));
        Reply { status, headers, body }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.client.get(self.url(path))).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Reply {
        self.send(self.client.post(self.url(path)).json(body)).await
    }

    /// Creates the alarm rule `body` (`POST /api/t3000/alarms/rules`, 201 expected); its id.
    pub async fn create_alarm_rule(&self, body: &Value) -> i64 {
        let r = self.post_json("/api/t3000/alarms/rules", body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        r.json()["id"].as_i64().expect("the new rule's id")
    }

    /// Sends `method path` with an optional JSON body through `client` (another user's, or
    /// `reqwest::Client::new()` for no token).
    pub async fn call(
        &self,
        client: &reqwest::Client,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Reply {
        let mut req = client.request(method, self.url(path)).timeout(Duration::from_secs(60));
        if let Some(b) = body {
            req = req.json(b);
        }
        self.send(req).await
    }

    pub async fn put_json(&self, path: &str, body: &Value) -> Reply {
        self.send(self.client.put(self.url(path)).json(body)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(self.client.delete(self.url(path))).await
    }

    /// Creates a user with `role` (as admin) and returns a client logged in as them.
    pub async fn user_client(&self, username: &str, role: &str) -> reqwest::Client {
        let password = format!("{username}-password");
        let r = self
            .post_json("/api/t3000/users", &json!({ "username": username, "password": password, "role": role }))
            .await;
        assert_eq!(r.status, reqwest::StatusCode::CREATED, "create user {username}: {}", r.text());
        let r = self
            .call(
                &reqwest::Client::new(),
                reqwest::Method::POST,
                "/api/t3000/auth/login",
                Some(&json!({ "username": username, "password": password })),
            )
            .await;
        client_with_token(r.ok_json()["token"].as_str().expect("token"))
    }

    /// POSTs raw bytes with the given content type (none if `None`).
    pub async fn post_raw(&self, path: &str, content_type: Option<&str>, body: Vec<u8>) -> Reply {
        let mut req = self.client.post(self.url(path)).body(body);
        if let Some(ct) = content_type {
            req = req.header(reqwest::header::CONTENT_TYPE, ct);
        }
        self.send(req).await
    }

    /// `GET /healthz`, asserting 200.
    pub async fn health(&self) -> Value {
        self.get("/healthz").await.ok_json()
    }

    /// Posts samples as JSON.
    pub async fn ingest(&self, samples: &[Sample]) -> Reply {
        self.post_json("/api/t3000/samples", &samples_json(samples)).await
    }

    /// Posts samples as JSON and asserts they were accepted.
    pub async fn ingest_ok(&self, samples: &[Sample]) {
        let r = self.ingest(samples).await;
        let body = r.ok_json();
        assert_eq!(body["accepted"], json!(samples.len()), "ingest reply {body}");
    }

    /// Runs SQL through `POST /api/t3000/query`.
    pub async fn sql_reply(&self, sql: &str) -> Reply {
        self.post_json("/api/t3000/query", &json!({ "sql": sql })).await
    }

    /// Runs SQL and returns its rows, asserting 200 and no truncation.
    pub async fn sql(&self, sql: &str) -> Vec<Vec<Value>> {
        let r = self.sql_reply(sql).await;
        assert_eq!(r.status, StatusCode::OK, "SQL `{sql}` failed with {}: {}", r.status, r.text());
        let body = r.json();
        assert_eq!(body["truncated"], json!(false), "SQL `{sql}` was truncated");
        serde_json::from_value(body["rows"].clone()).expect("rows is an array of arrays")
    }

    /// `SELECT count(*) FROM samples`.
    pub async fn count(&self) -> i64 {
        let rows = self.sql("SELECT count(*) FROM samples").await;
        rows[0][0].as_i64().expect("count is an integer")
    }

    /// Every stored sample as (point, ts µs, value, quality), sorted.
    pub async fn all_samples(&self) -> Vec<Sample> {
        self.samples_where("true").await
    }

    /// The stored samples of one point, in time order.
    pub async fn samples_of(&self, point: u32) -> Vec<Sample> {
        self.samples_where(&format!("point_id = {point}")).await
    }

    async fn samples_where(&self, cond: &str) -> Vec<Sample> {
        let rows = self
            .sql(&format!(
                "SELECT point_id, epoch_us(ts), value, quality FROM samples WHERE {cond} ORDER BY point_id, ts"
            ))
            .await;
        rows.iter()
            .map(|r| Sample {
                point_id: r[0].as_u64().expect("point_id") as u32,
                ts: r[1].as_i64().expect("ts"),
                value: r[2].as_f64().unwrap_or(f64::NAN),
                quality: r[3].as_u64().expect("quality") as u8,
            })
            .collect()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Waits for `child` to exit until `deadline`; `None` if it is still running then.
fn wait_until(child: &mut Child, deadline: Instant) -> Option<ExitStatus> {
    loop {
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Polls `check` until it returns true, at most `timeout`; panics naming `what` after that.
pub async fn poll_until<F, Fut>(what: &str, timeout: Duration, check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    assert!(wait_for(timeout, check).await, "timed out after {timeout:?} waiting for {what}");
}

/// Polls `check` until it returns true (then returns true), at most `timeout` (then returns false).
pub async fn wait_for<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

// ---- samples ----

/// One sample as the tests know it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub point_id: u32,
    pub ts: i64,
    pub value: f64,
    pub quality: u8,
}

impl Sample {
    pub fn good(point_id: u32, ts: i64, value: f64) -> Self {
        Sample { point_id, ts, value, quality: 192 }
    }
}

/// The JSON body of `POST /api/t3000/samples` (ts as epoch microseconds).
pub fn samples_json(samples: &[Sample]) -> Value {
    Value::Array(
        samples
            .iter()
            .map(|s| {
                let value = if s.value.is_nan() { Value::Null } else { json!(s.value) };
                json!({ "point_id": s.point_id, "ts": s.ts, "value": value, "quality": s.quality })
            })
            .collect(),
    )
}

/// An Arrow IPC stream with columns point_id (UInt32), ts (Timestamp µs, or Int64 when
/// `ts_as_int`), value (Float64, nullable) and quality (UInt8) if given.
pub fn arrow_stream(
    point: &[u32],
    ts: &[i64],
    value: &[Option<f64>],
    quality: Option<&[u8]>,
    ts_as_int: bool,
) -> Vec<u8> {
    use arrow::array::{ArrayRef, Float64Array, Int64Array, TimestampMicrosecondArray, UInt8Array, UInt32Array};
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use arrow::ipc::writer::StreamWriter;
    use arrow::record_batch::RecordBatch;
    let mut fields = vec![
        Field::new("point_id", DataType::UInt32, false),
        if ts_as_int {
            Field::new("ts", DataType::Int64, false)
        } else {
            Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, None), false)
        },
        Field::new("value", DataType::Float64, true),
    ];
    let ts_col: ArrayRef = if ts_as_int {
        Arc::new(Int64Array::from(ts.to_vec()))
    } else {
        Arc::new(TimestampMicrosecondArray::from(ts.to_vec()))
    };
    let mut cols: Vec<ArrayRef> =
        vec![Arc::new(UInt32Array::from(point.to_vec())), ts_col, Arc::new(Float64Array::from(value.to_vec()))];
    if let Some(q) = quality {
        fields.push(Field::new("quality", DataType::UInt8, false));
        cols.push(Arc::new(UInt8Array::from(q.to_vec())));
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), cols).expect("record batch");
    let mut out = Vec::new();
    {
        let mut w = StreamWriter::try_new(&mut out, &schema).expect("stream writer");
        w.write(&batch).expect("write batch");
        w.finish().expect("finish stream");
    }
    out
}

// ---- what the server leaves on disk ----

/// WAL segments `wal/<seq>.wal` as (seq, path, size), oldest first.
pub fn wal_segments(data_dir: &Path) -> Vec<(u64, PathBuf, u64)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(data_dir.join("wal")) else {
        return out;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(seq) = name.strip_suffix(".wal").and_then(|s| s.parse::<u64>().ok()) {
            let size = e.metadata().map(|m| m.len()).unwrap_or(0);
            out.push((seq, e.path(), size));
        }
    }
    out.sort();
    out
}

/// Bytes of a WAL segment's header (`T3W2`, salt, sequence number).
pub const WAL_HEADER_LEN: usize = 16;
/// Bytes of a WAL record's header (marker, length, count, kind, two checksums); its samples follow,
/// 21 bytes each.
pub const WAL_RECORD_HEADER_LEN: usize = 24;

/// Byte ranges `[start, end)` of the records of a WAL segment (after its header), as far as their
/// length fields say; stops at the first record that does not fit.
pub fn wal_records(bytes: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut pos = WAL_HEADER_LEN;
    while pos + WAL_RECORD_HEADER_LEN <= bytes.len() {
        let len = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().expect("4 bytes")) as usize;
        let end = pos + WAL_RECORD_HEADER_LEN + len;
        if end > bytes.len() {
            break;
        }
        out.push(pos..end);
        pos = end;
    }
    out
}

/// One file the manifest lists.
#[derive(Debug, Clone)]
pub struct ManifestFile {
    /// `samples`, `rollups1m` or `rollups1h`.
    pub table: String,
    pub day: i64,
    pub seq: u64,
    pub rows: u64,
    /// Relative to the data directory: `samples/day=YYYY-MM-DD/part-<seq>.parquet`.
    pub rel_path: PathBuf,
}

/// The files `manifest.json` lists (empty if there is no manifest).
pub fn manifest_files(data_dir: &Path) -> Vec<ManifestFile> {
    let path = data_dir.join("manifest.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Vec::new();
    };
    let m: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
    m["files"]
        .as_array()
        .unwrap_or_else(|| panic!("manifest has no files array: {m}"))
        .iter()
        .map(|f| {
            let table = f["table"].as_str().expect("table").to_string();
            let day = f["day"].as_i64().expect("day");
            let seq = f["seq"].as_u64().expect("seq");
            let date = date_of_day(day);
            // The manifest says `rollups1m`; the folder is `rollups_1m`.
            let dir = match table.as_str() {
                "rollups1m" => "rollups_1m",
                "rollups1h" => "rollups_1h",
                other => other,
            };
            ManifestFile {
                rel_path: PathBuf::from(dir).join(format!("day={date}")).join(format!("part-{seq:020}.parquet")),
                table,
                day,
                seq,
                rows: f["rows"].as_u64().expect("rows"),
            }
        })
        .collect()
}

/// `YYYY-MM-DD` of a day number (days since 1970-01-01).
pub fn date_of_day(day: i64) -> String {
    // Howard Hinnant's civil_from_days.
    let z = day + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}")
}

/// The rows of a Parquet sample file, in file order.
pub fn read_parquet_samples(path: &Path) -> Result<Vec<Sample>> {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Float64Type, TimestampMicrosecondType, UInt8Type, UInt32Type};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let file = File::open(path).with_context(|| format!("open {}", path.display()))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)?.build()?;
    let mut out = Vec::new();
    for batch in reader {
        let b = batch?;
        let col = |name: &str| b.column_by_name(name).cloned().ok_or_else(|| anyhow!("no column {name}"));
        let (p, t, v, q) = (col("point_id")?, col("ts")?, col("value")?, col("quality")?);
        let p = p.as_primitive_opt::<UInt32Type>().ok_or_else(|| anyhow!("point_id type {}", p.data_type()))?;
        let t = t.as_primitive_opt::<TimestampMicrosecondType>().ok_or_else(|| anyhow!("ts type {}", t.data_type()))?;
        let v = v.as_primitive_opt::<Float64Type>().ok_or_else(|| anyhow!("value type {}", v.data_type()))?;
        let q = q.as_primitive_opt::<UInt8Type>().ok_or_else(|| anyhow!("quality type {}", q.data_type()))?;
        if p.null_count() + t.null_count() + q.null_count() > 0 {
            bail!("{}: nulls in a non-null column", path.display());
        }
        for i in 0..b.num_rows() {
            out.push(Sample { point_id: p.value(i), ts: t.value(i), value: v.value(i), quality: q.value(i) });
        }
    }
    Ok(out)
}

/// Every file under `dir`, recursively, relative to it.
pub fn list_files(dir: &Path) -> Vec<PathBuf> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).unwrap_or(&p).to_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// A JSON value as indented text, for failure messages.
pub fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

/// A running `t3000 simulate`, killed on drop.
#[derive(Debug)]
pub struct Sim {
    child: Child,
    /// Lines it printed at start: `modbus-tcp ADDR ...`, `udp-scan ADDR`.
    pub tcp: String,
    pub udp: Option<String>,
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn simulate(args: &[&str]) -> Sim {
    let mut child = command()
        .arg("simulate")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn t3000 simulate");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let want_udp = args.contains(&"--udp");
    let (mut tcp, mut udp) = (None, None);
    while tcp.is_none() || (want_udp && udp.is_none()) {
        let line = rx.recv_timeout(START_TIMEOUT).expect("t3000 simulate printed its addresses");
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("modbus-tcp"), Some(addr)) => tcp = Some(addr.to_owned()),
            (Some("udp-scan"), Some(addr)) => udp = Some(addr.to_owned()),
            _ => {}
        }
    }
    Sim { child, tcp: tcp.expect("tcp"), udp }
}

pub fn port_of(addr: &str) -> u16 {
    addr.rsplit(':').next().and_then(|p| p.parse().ok()).expect("a port")
}

/// The bytes of a Parquet file's `value` column chunk (row group 0): its data pages, which damage
/// can hit while the footer stays readable.
pub fn value_pages(path: &Path) -> std::ops::Range<usize> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let reader = SerializedFileReader::new(std::fs::File::open(path).expect("open")).expect("a Parquet footer");
    let rg = reader.metadata().row_group(0);
    let col = rg.columns().iter().find(|c| c.column_path().string() == "value").expect("a value column");
    let (start, len) = col.byte_range();
    start as usize..(start + len) as usize
}

/// A `[[devices]]` table for one simulated T3 controller `ahu-1` (unit 1, polled every 200 ms) at
/// `127.0.0.1:port` (a `t3000 simulate` listener).
pub fn simulated_ahu(port: u16) -> String {
    format!(
        r#"
        [[devices]]
        name = "ahu-1"
        protocol = "modbus-tcp"
        ip_address = "127.0.0.1"
        port = {port}
        unit_id = 1
        profile = "T3-controller"
        poll_interval_ms = 200
        "#
    )
}

/// A schedule body for `POST /api/t3000/schedules`: on every day from 00:00 to `off`, switching
/// `point` to 1 when on and 0 when off (taking it to manual).
pub fn all_week_schedule(name: &str, point: u64, off: &str) -> Value {
    let days: serde_json::Map<String, Value> =
        ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
            .iter()
            .map(|d| (d.to_string(), json!([{"on": "00:00", "off": off}])))
            .collect();
    json!({"name": name, "weekly_schedule": {"days": days},
        "outputs": [{"point_id": point, "on_value": 1.0, "off_value": 0.0, "switch_to_manual": true}]})
}

/// A tmpfs of a few MB mounted on a new temporary directory for one test, to fill up; unmounted
/// when dropped. Mounting needs root (`.ci/run` runs as root): a test that needs one fails, never
/// skips, when it cannot mount.
#[derive(Debug)]
pub struct SmallFs {
    dir: tempfile::TempDir,
}

impl SmallFs {
    /// Mounts a tmpfs of `size` (`8m`, `24m`).
    pub fn mount(size: &str) -> SmallFs {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .unwrap_or_else(|e| panic!("this test mounts a small tmpfs to fill it and needs `mount` (as root): {e}"));
        assert!(
            out.status.success(),
            "this test fills a small file system of its own and mounts a tmpfs for it, which needs root \
             (`.ci/run` runs as root): `mount -t tmpfs -o size={size} tmpfs {}` failed: {}",
            dir.path().display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        SmallFs { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Bytes free, as `df` sees them.
    pub fn free(&self) -> u64 {
        let out = Command::new("df").args(["--output=avail", "-B1"]).arg(self.path()).output().expect("df");
        String::from_utf8_lossy(&out.stdout).lines().nth(1).and_then(|l| l.trim().parse().ok()).expect("df output")
    }

    /// Fills the file system with one file until not a byte more fits; returns its path.
    pub fn fill(&self) -> PathBuf {
        let path = self.fill_to(0);
        assert_eq!(self.free(), 0, "the filler left space free");
        path
    }

    /// Grows one ballast file (`filler`) until at most `free` bytes are left, or not a byte more
    /// fits; returns its path. Remove it to give the space back.
    pub fn fill_to(&self, free: u64) -> PathBuf {
        use std::io::Write;
        let path = self.path().join("filler");
        let mut f = File::options().create(true).append(true).open(&path).expect("open the filler");
        let mut chunk: u64 = 1 << 20;
        while chunk > 0 {
            let excess = self.free().saturating_sub(free);
            if excess == 0 {
                break;
            }
            match f.write(&vec![0xAB; chunk.min(excess) as usize]) {
                Ok(0) | Err(_) => chunk /= 2,
                Ok(_) => {}
            }
        }
        let _ = f.sync_all();
        path
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// The rule ids of the server's own alarms (`model::alarm::SystemAlarm`): the top of the 32-bit
/// range.
pub mod system_alarm {
    pub const DISK_LOW: i64 = 4_294_967_295;
    pub const DISK_FLOOR: i64 = 4_294_967_294;
    pub const WAL_REFUSING: i64 = 4_294_967_293;
    pub const PLUGIN_REFUSED: i64 = 4_294_967_292;
    pub const DEVICES_OFFLINE: i64 = 4_294_967_291;
    pub const PROGRAM_ERROR: i64 = 4_294_967_290;
}
