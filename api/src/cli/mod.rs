//! The `t3000` binary: the command line and what each command runs. `serve` is the composition
//! root of the server; the others are tools around it: [`settings`] (the configuration file and
//! the environment), [`demo`] (the simulated building of `t3000 demo`), [`simulate`] (`simulate`,
//! `discover`), [`export`] and `repair` (a data directory the server is not running on), and the
//! clients of a running server, not part of it: [`watch`] (WebSocket), `t3000 import` ([`import_prog`],
//! [`import_webview`], [`import_csv`]) and [`sync`] (HTTP).

/// `println!` for what a command prints: when its reader has gone (`t3000 check-config f | head`)
/// the command ends there, quietly and with status 0, as Unix tools do, instead of panicking.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::cli::say(format_args!($($arg)*), true)
    };
}

/// [`say!`] without the new line.
macro_rules! say_part {
    ($($arg:tt)*) => {
        $crate::cli::say(format_args!($($arg)*), false)
    };
}

pub mod backup;
mod client;
pub mod demo;
pub mod export;
mod healthcheck;
pub mod import_csv;
pub mod import_prog;
pub mod import_webview;
pub mod logging;
mod repair;
mod sdnotify;
mod serve;
pub mod settings;
pub mod simulate;
pub mod sync;
pub mod watch;

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use t3_core::config::Config;

#[derive(Debug, Parser)]
#[command(name = "t3000", version, about = "Historian and control server for T3000 building controllers")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server with a configuration file (environment variables T3000__SECTION__KEY override it).
    Serve {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Run the server with the embedded demo configuration; no file needed.
    Demo {
        /// Where data is kept (kept across restarts).
        #[arg(long, default_value = "./t3000-data")]
        data_dir: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:9103")]
        listen: SocketAddr,
    },
    /// Serve simulated Temco devices over Modbus TCP (and RTU on a pseudo-terminal, and T3000's UDP scan).
    Simulate(simulate::SimulateArgs),
    /// Find devices: Modbus TCP hosts or CIDR blocks, unit ids on a Modbus RTU bus, T3000's UDP scan, or
    /// BACnet/IP devices answering a Who-Is (`--bacnet`, through the `bacnet-ip` plugin).
    Discover(simulate::DiscoverArgs),
    /// Check a configuration file (and the environment) and print the effective configuration.
    CheckConfig { file: PathBuf },
    /// List the protocol plugins found in the plugin folders: loaded, or refused and why.
    Plugins {
        /// The configuration whose `[plugins] dirs` (or data directory) to scan; without it, the
        /// defaults: `./t3000-data/plugins` and `plugins/` beside the binary.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Scan these folders instead.
        #[arg(long = "dir")]
        dirs: Vec<PathBuf>,
        /// Print JSON (as GET /api/t3000/plugins) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Export history to a file, from a data directory the server is not running on.
    Export(export::ExportArgs),
    /// Print live updates of points (WebSocket /api/t3000/ws) until Ctrl-C.
    Watch(watch::WatchArgs),
    /// Exports the devices or points of a running server as CSV.
    ExportConfig(import_csv::ExportConfigArgs),
    /// Show the differences between a T3 controller's point configuration and a running server's
    /// catalog, and apply them (`--apply`, with a strategy for conflicts).
    Sync(sync::SyncArgs),
    /// Repair a data directory the server refuses to start on: a damaged manifest is moved to
    /// quarantine/ and rebuilt from the data files (nothing is deleted that is not proven garbage),
    /// the WAL is replayed and flushed. The server must not be running on it.
    Repair {
        /// The data directory.
        #[arg(long)]
        data_dir: PathBuf,
    },
    /// Ask a running server's GET /healthz: exit 0 when healthy, 1 when not (container health checks).
    Healthcheck(healthcheck::HealthcheckArgs),
    /// Bring an existing T3000 site's files into a running server (admin token).
    #[command(subcommand)]
    Import(ImportCommand),
    /// Write a consistent backup archive of a running server (admin token): its data as of the
    /// moment of the request, while it goes on running.
    Backup(backup::BackupArgs),
    /// Restore a backup archive into an empty data directory, every checksum checked first.
    Restore(backup::RestoreArgs),
}

/// What `t3000 import` reads.
#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// A T3000 WebView database (webview_t3_device.db): places, devices, points, trend logs and
    /// their history; a preview unless --apply.
    Webview(import_webview::WebviewArgs),
    /// Devices, points or samples as CSV (`--kind`).
    Csv(import_csv::ImportCsvArgs),
    /// A T3000 panel file (.prog) into a configured device: points (labels, units, ranges), the
    /// panel's custom ranges, schedules, calendars, trend logs, programs.
    Prog(import_prog::ProgArgs),
}

/// Parses the command line and runs it; maps failures to exit codes (1 runtime, 2 configuration).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Config(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

pub(crate) enum Failure {
    Config(String),
    Runtime(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Runtime(e)
    }
}

/// Writes a command's output (see [`say!`]); any other failure to write ends it with status 1.
pub(crate) fn say(args: std::fmt::Arguments<'_>, line: bool) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let written = out.write_fmt(args).and_then(|()| if line { out.write_all(b"\n") } else { Ok(()) });
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            eprintln!("error: writing to standard output: {e}");
            std::process::exit(1);
        }
    }
}

/// A line the server prints at start (its address, the demo's password): one that cannot be
/// written (standard output closed) is no reason to stop serving; the log has what matters.
pub(crate) fn announce(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_fmt(args).and_then(|()| out.write_all(b"\n")).and_then(|()| out.flush());
}

/// The configuration of a client command: warnings only.
fn quiet_config() -> Config {
    let mut cfg = Config::default();
    cfg.log.level = "warn".into();
    cfg
}

fn run(cmd: Command) -> Result<(), Failure> {
    // Before the configuration is checked: `server.max_connections` is checked against it.
    let nofile = crate::http::server::raise_nofile_limit();
    match cmd {
        Command::Serve { config } => {
            let cfg = settings::load_file(&config).map_err(Failure::Config)?;
            let log = init_server_tracing(&cfg)?;
            let rt = runtime()?;
            let result = rt.block_on(serve::serve(cfg, serve::Mode::Serve, Some(config), nofile, log));
            end_runtime(rt);
            result?;
        }
        Command::Demo { data_dir, listen } => {
            let mut cfg = settings::parse(settings::DEMO_CONFIG, "<embedded demo config>").map_err(Failure::Config)?;
            cfg.storage.data_dir = data_dir;
            cfg.server.listen = listen.to_string();
            cfg.validate().map_err(|e| Failure::Config(e.to_string()))?;
            let log = init_server_tracing(&cfg)?;
            let rt = runtime()?;
            let result = rt.block_on(async {
                let building = demo::start_building().await?;
                cfg.devices.extend(building.devices.iter().cloned());
                announce(format_args!(
                    "t3000 demo: simulated building of {} devices on 127.0.0.1",
                    building.devices.len()
                ));
                serve::serve(cfg, serve::Mode::Demo, None, nofile, log).await
            });
            end_runtime(rt);
            result?;
        }
        Command::CheckConfig { file } => {
            let cfg = settings::load_file(&file).map_err(Failure::Config)?.without_secrets();
            let text = toml::to_string_pretty(&cfg).map_err(|e| Failure::Runtime(e.into()))?;
            say!("# {}: OK. Effective configuration (defaults and environment applied):\n{text}", file.display());
        }
        Command::Plugins { config, dirs, json } => {
            let mut cfg = match &config {
                Some(path) => settings::load_file(path).map_err(Failure::Config)?,
                None => settings::parse("", "<defaults>").map_err(Failure::Config)?,
            };
            if !dirs.is_empty() {
                cfg.plugins.dirs = Some(dirs);
            }
            let mut quiet = Config::default();
            quiet.log.level = "error".into();
            init_tracing(&quiet);
            let host = settings::plugin_host(&cfg);
            let abi = format!("{}.{}", t3_plugin_abi::ABI_MAJOR, t3_plugin_abi::ABI_MINOR);
            if json {
                let list = crate::http::routes::plugins::Plugins {
                    abi,
                    plugins: host.entries().iter().map(crate::http::routes::plugins::PluginInfo::from).collect(),
                };
                say!("{}", serde_json::to_string_pretty(&list).map_err(|e| Failure::Runtime(e.into()))?);
            } else {
                let folders: Vec<String> =
                    settings::plugin_dirs(&cfg).iter().map(|d| d.display().to_string()).collect();
                say!("plugin ABI {abi}; folders: {}", folders.join(", "));
                if host.entries().is_empty() {
                    say!("no plugin files found");
                }
                for e in host.entries() {
                    match (&e.protocol, &e.reason) {
                        (Some(p), _) => say!(
                            "loaded   {} {} (ABI {}, {}): {}",
                            e.name.as_deref().unwrap_or_default(),
                            e.version.as_deref().unwrap_or_default(),
                            e.abi.as_deref().unwrap_or_default(),
                            p.title,
                            e.file.display()
                        ),
                        (None, reason) => say!("refused  {}", reason.as_deref().unwrap_or("refused")),
                    }
                }
            }
        }
        Command::Healthcheck(args) => {
            // Every failure is "unhealthy" (exit 1), as a container runtime reads it.
            let base = healthcheck::base_url(&args).map_err(|e| Failure::Runtime(anyhow::anyhow!(e)))?;
            init_tracing(&quiet_config());
            runtime()?.block_on(healthcheck::check(&base, Duration::from_secs(args.timeout_secs)))?;
        }
        Command::Export(args) => export::export(args)?,
        Command::Repair { data_dir } => repair::repair(data_dir)?,
        Command::Import(ImportCommand::Webview(args)) => {
            init_tracing(&quiet_config());
            runtime()?.block_on(import_webview::run(args))?;
        }
        Command::Import(ImportCommand::Prog(args)) => {
            init_tracing(&quiet_config());
            runtime()?.block_on(import_prog::run(args))?;
        }
        Command::Import(ImportCommand::Csv(args)) => {
            init_tracing(&quiet_config());
            runtime()?.block_on(import_csv::import(args))?;
        }
        Command::ExportConfig(args) => {
            init_tracing(&quiet_config());
            runtime()?.block_on(import_csv::export_config(args))?;
        }
        Command::Backup(args) => {
            init_tracing(&quiet_config());
            runtime()?.block_on(backup::backup(args))?;
        }
        Command::Restore(args) => {
            init_tracing(&quiet_config());
            backup::run_restore(&args)?;
        }
        Command::Watch(args) => {
            let mut cfg = Config::default();
            cfg.log.level = "warn".into();
            init_tracing(&cfg);
            runtime()?.block_on(watch::watch(args))?;
        }
        Command::Sync(args) => {
            let mut cfg = Config::default();
            cfg.log.level = "warn".into();
            init_tracing(&cfg);
            runtime()?.block_on(sync::sync(args))?;
        }
        Command::Simulate(args) => {
            init_tracing(&Config::default());
            runtime()?.block_on(simulate::simulate(args))?;
        }
        Command::Discover(args) => {
            let mut cfg = Config::default();
            cfg.log.level = "warn".into();
            init_tracing(&cfg);
            runtime()?.block_on(simulate::discover(args)).map_err(|e| Failure::Config(format!("{e:#}")))?;
        }
    }
    Ok(())
}

/// Installs the log subscriber of a command other than the server: standard error only.
pub(crate) fn init_tracing(cfg: &Config) {
    let log = t3_core::config::LogConfig { file: None, ..cfg.log.clone() };
    // Without a file there is nothing to open, so nothing fails.
    let _ = logging::init(&log);
}

/// Installs the server's log subscriber (see [`logging`]): standard error and `[log] file`; a file
/// that cannot be opened is a configuration error naming `log.file`.
pub(crate) fn init_server_tracing(cfg: &Config) -> Result<logging::LogHandle, Failure> {
    logging::init(&cfg.log).map_err(Failure::Config)
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("start the async runtime")
}

/// Ends the server's runtime without waiting long for blocking tasks still running (a query or an
/// export whose client is gone): by then the final flush has run.
pub(crate) fn end_runtime(rt: tokio::runtime::Runtime) {
    rt.shutdown_timeout(Duration::from_secs(2));
}
