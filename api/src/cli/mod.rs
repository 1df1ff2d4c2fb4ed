//! The command line and the server's lifecycle.

pub mod demo;
pub mod settings;
pub mod watch;

use crate::service::auth::Auth;
use crate::service::registry::Registry;

use crate::http::AppState;
use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};
use t3_core::clock::{Clock, SystemClock};
use t3_core::config::{Config, LogFormat};
use t3_drivers::collector::Collector;
use t3_storage::Storage;
use t3_storage::catalog::Catalog;
use t3_storage::vfs::RealFs;

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
    Simulate(crate::cli::demo::SimulateArgs),
    /// Find devices: Modbus TCP hosts or CIDR blocks, unit ids on a Modbus RTU bus, or T3000's UDP scan.
    Discover(crate::cli::demo::DiscoverArgs),
    /// Check a configuration file (and the environment) and print the effective configuration.
    CheckConfig { file: PathBuf },
    /// Export history to a file, from a data directory the server is not running on.
    Export(ExportArgs),
    /// Print live updates of points (WebSocket /api/t3000/ws) until Ctrl-C.
    Watch(crate::cli::watch::WatchArgs),
    /// Repair a data directory the server refuses to start on: a damaged manifest is moved to
    /// quarantine/ and rebuilt from the data files (nothing is deleted that is not proven garbage),
    /// the WAL is replayed and flushed. The server must not be running on it.
    Repair {
        /// The data directory.
        #[arg(long)]
        data_dir: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Configuration file naming the data directory.
    #[arg(long, short, conflicts_with = "data_dir")]
    pub config: Option<PathBuf>,
    /// The data directory (instead of --config).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Comma-separated point ids.
    #[arg(long)]
    pub points: String,
    /// Start: RFC 3339, epoch microseconds, now or now-7d.
    #[arg(long, default_value = "now-24h")]
    pub from: String,
    /// End (exclusive).
    #[arg(long, default_value = "now")]
    pub to: String,
    /// csv, xlsx or parquet.
    #[arg(long, default_value = "csv")]
    pub format: String,
    /// long or wide.
    #[arg(long, default_value = "long")]
    pub layout: String,
    /// Average per bucket (15m, 1h, ...; at least 1s) instead of raw rows.
    #[arg(long)]
    pub bucket: Option<String>,
    /// Output file.
    #[arg(long, short)]
    pub output: PathBuf,
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

enum Failure {
    Config(String),
    Runtime(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Runtime(e)
    }
}

fn run(cmd: Command) -> Result<(), Failure> {
    // Before the configuration is checked: `server.max_connections` is checked against it.
    let nofile = crate::http::server::raise_nofile_limit();
    match cmd {
        Command::Serve { config } => {
            let cfg = settings::load_file(&config).map_err(Failure::Config)?;
            init_tracing(&cfg);
            let rt = runtime()?;
            let result = rt.block_on(serve_async(cfg, Mode::Serve, nofile));
            end_runtime(rt);
            result?;
        }
        Command::Demo { data_dir, listen } => {
            let mut cfg = settings::parse(settings::DEMO_CONFIG, "<embedded demo config>").map_err(Failure::Config)?;
            cfg.storage.data_dir = data_dir;
            cfg.server.listen = listen.to_string();
            cfg.validate().map_err(|e| Failure::Config(e.to_string()))?;
            init_tracing(&cfg);
            let rt = runtime()?;
            let result = rt.block_on(async {
                let building = crate::cli::demo::start_building().await?;
                cfg.devices.extend(building.devices.iter().cloned());
                println!("t3000 demo: simulated building of {} devices on 127.0.0.1", building.devices.len());
                serve_async(cfg, Mode::Demo, nofile).await
            });
            end_runtime(rt);
            result?;
        }
        Command::CheckConfig { file } => {
            let cfg = settings::load_file(&file).map_err(Failure::Config)?;
            let text = toml::to_string_pretty(&cfg).map_err(|e| Failure::Runtime(e.into()))?;
            println!("# {}: OK. Effective configuration (defaults and environment applied):\n{text}", file.display());
        }
        Command::Export(args) => export(args)?,
        Command::Repair { data_dir } => repair(data_dir)?,
        Command::Watch(args) => {
            let mut cfg = Config::default();
            cfg.log.level = "warn".into();
            init_tracing(&cfg);
            runtime()?.block_on(crate::cli::watch::watch(args))?;
        }
        Command::Simulate(args) => {
            init_tracing(&Config::default());
            runtime()?.block_on(crate::cli::demo::simulate(args))?;
        }
        Command::Discover(args) => {
            let mut cfg = Config::default();
            cfg.log.level = "warn".into();
            init_tracing(&cfg);
            runtime()?.block_on(crate::cli::demo::discover(args)).map_err(|e| Failure::Config(format!("{e:#}")))?;
        }
    }
    Ok(())
}

fn init_tracing(cfg: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cfg.log.level));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match cfg.log.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("start the async runtime")
}

/// Ends the server's runtime without waiting long for blocking tasks still running (a query or an
/// export whose client is gone): by then the final flush has run.
fn end_runtime(rt: tokio::runtime::Runtime) {
    rt.shutdown_timeout(Duration::from_secs(2));
}

/// Creates the user `admin` at the first start. A generated password is printed once; the demo
/// keeps it in `<data dir>/demo-admin-password` and prints it at every start, so that a newcomer
/// can always log in to the demo.
fn admin_password(auth: &Auth, data_dir: &std::path::Path, mode: Mode) -> anyhow::Result<()> {
    let file = data_dir.join("demo-admin-password");
    let env = std::env::var("T3000_ADMIN_PASSWORD").ok();
    if let Some(generated) = auth.bootstrap(env)? {
        if mode == Mode::Demo {
            std::fs::write(&file, format!("{generated}\n")).with_context(|| format!("write {}", file.display()))?;
        } else {
            println!(
                "t3000: created the user `admin` with the password {generated} (shown once; change it with POST /api/t3000/auth/password)"
            );
        }
    }
    if mode == Mode::Demo {
        match std::fs::read_to_string(&file) {
            Ok(p) => println!("t3000 demo: log in as admin with the password {}", p.trim()),
            Err(_) => {
                println!("t3000 demo: log in as admin (its password was set by you: config or T3000_ADMIN_PASSWORD)")
            }
        }
    }
    Ok(())
}

/// How the server was started; the demo also lays out its building and keeps its admin password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Serve,
    Demo,
}

async fn serve_async(cfg: Config, mode: Mode, nofile: crate::http::server::NofileLimit) -> anyhow::Result<()> {
    // One wall clock for the storage engine, the collector and every service.
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let storage = Storage::open(&cfg, Arc::new(RealFs), clock.clone())
        .with_context(|| format!("open the data directory {}", cfg.storage.data_dir.display()))?;
    storage.start_background();
    // Before listening, so a client never sees "no value yet" for a point that has one.
    match storage.load_latest().await {
        Ok(n) => tracing::info!(points = n, "latest values loaded from storage"),
        Err(e) => tracing::error!(error = %e, "could not load latest values from storage"),
    }
    // New device points get ids above every stored series.
    let first_free = storage.latest(&[]).last().map_or(1, |(id, _)| id.saturating_add(1));
    let registry = Arc::new(Registry::open(storage.data_dir(), first_free)?);
    let catalog = Arc::new(
        Catalog::open(storage.data_dir())
            .with_context(|| format!("open the catalog in {}", storage.data_dir().display()))?,
    );
    crate::model::register(&catalog)?;
    let auth = Arc::new(Auth::new(catalog.clone(), cfg.auth.clone(), clock.clone()));
    admin_password(&auth, storage.data_dir(), mode)?;
    let plans = crate::service::floorplans::PlanStore::new(storage.data_dir());
    let devices = crate::service::collection::sync_config_devices(&catalog, &cfg.devices)?;
    crate::service::retention::push_retention(&catalog, &storage);
    if mode == Mode::Demo {
        crate::cli::demo::lay_out(&catalog, &registry, &plans, clock.now_us())?;
    }
    let listen: SocketAddr =
        cfg.server.listen.parse().with_context(|| format!("server.listen `{}`", cfg.server.listen))?;
    let listener = crate::http::server::bind(listen).with_context(|| format!("listen on {listen}"))?;
    let addr = listener.local_addr()?;
    let limits = crate::http::server::Limits::new(&cfg, nofile.now);
    if let Some(e) = &nofile.error {
        tracing::warn!(error = %e, "could not raise the open-files limit to the hard limit");
    }
    tracing::info!(
        %addr,
        data_dir = %storage.data_dir().display(),
        open_files_limit = nofile.now,
        raised_from = nofile.before,
        max_connections = limits.max_connections,
        "serving"
    );
    let sink = Arc::new(crate::service::collection::StorageSink::start(storage.clone()));
    let collector = Collector::new(cfg.collector.clone(), sink, clock.clone());
    crate::service::collection::start(&collector, &registry, &devices)?;
    let control = crate::service::control::Control::new(
        catalog.clone(),
        collector.clone(),
        registry.clone(),
        storage.clone(),
        clock.clone(),
        cfg.auth.point_writes_per_minute,
    );
    control.spawn_expiry();
    let alarms = crate::service::alarms::AlarmService::new(catalog.clone(), clock.clone());
    alarms.spawn(&storage, collector.clone());
    let scheduler = crate::service::scheduler::Scheduler::new(catalog.clone(), control.clone(), clock.clone());
    scheduler.spawn();
    let ranges = Arc::new(crate::service::ranges::Ranges::default());
    ranges.spawn(&collector);
    let state = AppState {
        storage: storage.clone(),
        collector: collector.clone(),
        catalog,
        auth,
        registry,
        control,
        alarms,
        scheduler,
        ranges,
        plans,
        started: Instant::now(),
        ws: crate::http::ws::Hub::new(cfg.websocket.clone()),
        metrics: Default::default(),
    };
    state.ws.spawn(state.clone());
    let http_stats = state.metrics.http.clone();
    let app = crate::http::app(state);
    // A machine-readable line for scripts and tests that start the server on port 0.
    println!("t3000 listening on http://{addr}");
    let drained = crate::http::server::serve(listener, app, limits, http_stats, shutdown_signal()).await;
    if drained.dropped > 0 {
        tracing::warn!(
            dropped = drained.dropped,
            "shutting down: connections with a request still in progress dropped after server.shutdown_timeout_secs"
        );
    }
    tracing::info!(open = drained.open, "shutting down: stopping the collector, persisting the write buffer");
    // One budget for the whole shutdown: requests had the first half, the collector may take up to
    // a quarter, the final flush has what is left.
    let limit = Duration::from_secs(cfg.server.shutdown_timeout_secs);
    let deadline = drained.since + limit;
    if tokio::time::timeout_at(deadline - limit / 4, collector.shutdown()).await.is_err() {
        tracing::warn!("the collector did not stop within its share of server.shutdown_timeout_secs; flushing anyway");
    }
    match tokio::time::timeout_at(deadline, storage.shutdown()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => bail!("shutdown: {e} (the data stays in the WAL and is replayed at the next start)"),
        Err(_) => bail!("shutdown took longer than {}s; the WAL is replayed at the next start", limit.as_secs()),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

fn repair(data_dir: PathBuf) -> Result<(), Failure> {
    let mut cfg = settings::parse("", "<defaults>").map_err(Failure::Config)?;
    cfg.storage.data_dir = data_dir.clone();
    cfg.log.level = "warn".into();
    init_tracing(&cfg);
    if !data_dir.is_dir() {
        return Err(Failure::Config(format!("{} is not a directory", data_dir.display())));
    }
    match t3_storage::manifest::Manifest::load(&data_dir) {
        Ok(_) => println!("t3000 repair: the manifest reads; checking it against the files"),
        Err(t3_storage::Error::Corrupt { message, .. }) => {
            let moved =
                t3_storage::recovery::set_aside_manifest(&data_dir).context("move the damaged manifest aside")?;
            println!("t3000 repair: the manifest is damaged ({message}); moved it to {}", moved.unwrap_or_default());
        }
        Err(e) => return Err(Failure::Runtime(anyhow::Error::new(e).context("read the manifest"))),
    }
    let rt = runtime()?;
    let report = rt.block_on(async {
        let storage = Storage::open(&cfg, Arc::new(RealFs), Arc::new(SystemClock))
            .with_context(|| format!("open the data directory {}", data_dir.display()))?;
        let report = storage.recovery().clone();
        storage.shutdown().await.context("flush what the WAL held")?;
        anyhow::Ok(report)
    })?;
    let json = serde_json::to_string_pretty(&report).map_err(|e| Failure::Runtime(e.into()))?;
    println!("t3000 repair: done; what start-up recovery did:\n{json}");
    Ok(())
}

fn export(args: ExportArgs) -> Result<(), Failure> {
    let mut cfg = match (&args.config, &args.data_dir) {
        (Some(path), _) => settings::load_file(path).map_err(Failure::Config)?,
        (None, Some(dir)) => {
            let mut c = settings::parse("", "<defaults>").map_err(Failure::Config)?;
            c.storage.data_dir = dir.clone();
            c
        }
        (None, None) => return Err(Failure::Config("give --config FILE or --data-dir DIR".into())),
    };
    cfg.log.level = "warn".into();
    init_tracing(&cfg);
    let params = crate::http::routes::export::ExportParams {
        points: args.points,
        from: Some(args.from),
        to: Some(args.to),
        format: Some(args.format),
        layout: Some(args.layout),
        bucket: args.bucket,
    };
    let req = crate::http::routes::export::export_request(&params, chrono::Utc::now().timestamp_micros())
        .map_err(Failure::Config)?;
    let rt = runtime()?;
    let storage = rt
        .block_on(async { Storage::open(&cfg, Arc::new(RealFs), Arc::new(SystemClock)) })
        .with_context(|| format!("open the data directory {}", cfg.storage.data_dir.display()))?;
    let file = std::fs::File::create(&args.output).with_context(|| format!("create {}", args.output.display()))?;
    let mut out = std::io::BufWriter::new(file);
    // A bar over the exported time range (seconds), with the rows written as its message.
    let span_secs = ((req.to - req.from) / 1_000_000).max(1) as u64;
    let bar = indicatif::ProgressBar::new(span_secs);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {percent:>3}% of the range, {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let from = req.from;
    let handle = rt.handle().clone();
    let summary = {
        let storage = storage.clone();
        let bar = bar.clone();
        rt.block_on(async move {
            tokio::task::spawn_blocking(move || {
                let mut progress = |p: t3_storage::export::ExportProgress| {
                    bar.set_position(((p.done_until - from) / 1_000_000).max(0) as u64);
                    bar.set_message(format!("{} rows", p.rows));
                };
                let r = storage.export_blocking(&handle, &req, &HashMap::new(), &mut out, &mut progress);
                use std::io::Write;
                r.map_err(anyhow::Error::from).and_then(|s| out.flush().map(|_| s).map_err(Into::into))
            })
            .await
        })
        .context("export task")??
    };
    bar.finish_with_message(format!("{} rows written to {}", summary.rows, args.output.display()));
    rt.block_on(storage.shutdown()).context("close storage")?;
    Ok(())
}
