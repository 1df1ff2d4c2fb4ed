//! `t3000 serve` and `t3000 demo`: the composition root. Opens storage and the catalog, builds
//! every service with what it depends on (one clock for all), starts the collector and the
//! background tasks, serves HTTP until a signal, then shuts down within `server.shutdown_timeout_secs`.

use crate::cli::settings;
use crate::http::AppState;
use crate::service::auth::Auth;
use crate::service::registry::Registry;
use crate::service::reload::{Reload, Source, Trigger};
use anyhow::{Context, bail};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use t3_core::clock::{Clock, SystemClock};
use t3_core::config::{Config, ConfigError};
use t3_drivers::collector::Collector;
use t3_drivers::plugin::PluginHost;
use t3_storage::Storage;
use t3_storage::catalog::Catalog;
use t3_storage::vfs::RealFs;

/// How the server was started; the demo also lays out its building and keeps its admin password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Serve,
    Demo,
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
            super::announce(format_args!(
                "t3000: created the user `admin` with the password {generated} (shown once; change it with POST /api/t3000/auth/password)"
            ));
        }
    }
    if mode == Mode::Demo {
        match std::fs::read_to_string(&file) {
            Ok(p) => super::announce(format_args!("t3000 demo: log in as admin with the password {}", p.trim())),
            Err(_) => super::announce(format_args!(
                "t3000 demo: log in as admin (its password was set by you: config or T3000_ADMIN_PASSWORD)"
            )),
        }
    }
    Ok(())
}

/// The hot-reload service (`service::reload`) of a server started from `file` (none: the demo),
/// with the parts that take settings live registered: what a reload can change at once.
fn live_config(
    cfg: &Config,
    file: Option<std::path::PathBuf>,
    audit: &crate::service::audit::AuditLog,
    clock: &Arc<dyn Clock>,
    parts: LiveParts,
) -> Arc<Reload> {
    let LiveParts { auth, control, storage, ws, devices, plugins, log, alarms, notifier, programs } = parts;
    // The plugin folders as a reload's check scanned them, put in place once the reload applies.
    let scanned: Arc<parking_lot::Mutex<Option<Arc<PluginHost>>>> = Arc::default();
    let source = file.map(|path| {
        let (devices, scanned) = (devices.clone(), scanned.clone());
        let parse: crate::service::reload::Parse = Box::new(move |text, origin| {
            let scan = |c: &Config| scanned.lock().insert(Arc::new(settings::scan_plugins(c))).clone();
            *scanned.lock() = None;
            let cfg = settings::parse_checked(text, origin, scan, |c| {
                for (i, d) in c.devices.iter().enumerate() {
                    devices.check_pollable(d).map_err(|e| ConfigError::new(format!("devices[{i}]"), e))?;
                }
                Ok(())
            })?;
            if scanned.lock().is_none() {
                scan(&cfg);
            }
            Ok(cfg)
        });
        Source { path, parse }
    });
    let reload = Reload::new(cfg.clone(), source, audit.clone(), clock.clone());
    const AUTH_LIVE: &[&str] = &[
        "auth.session_hours",
        "auth.login_max_failures",
        "auth.login_lockout_secs",
        "auth.cors_origins",
        "auth.ws_ticket_secs",
    ];
    // Before the devices: a new device may need a plugin that was not there at start.
    reload.on_each_reload(&["plugins.dirs"], move |_| {
        if let Some(scan) = scanned.lock().take() {
            plugins.take_scan(&scan);
        }
        alarms.report_plugins(&plugins.entries());
    });
    reload.on(AUTH_LIVE, move |c| auth.reconfigure(&c.auth));
    reload.on(&["auth.point_writes_per_minute"], move |c| control.reconfigure(c.auth.point_writes_per_minute));
    let disk = storage.clone();
    reload.on(&["retention.max_age_days", "retention.points"], move |c| storage.set_retention(&c.retention));
    reload.on(
        &[
            "storage.disk_alarm_free_mb",
            "storage.disk_alarm_free_percent",
            "storage.disk_floor_free_mb",
            "storage.disk_check_interval_ms",
        ],
        move |c| {
            disk.set_disk_settings(t3_storage::DiskSettings::from_config(&c.storage));
        },
    );
    let trust = notifier.clone();
    reload.on(&["alerts"], move |c| notifier.reconfigure(&c.alerts));
    // Every reload reads the CA file again: a renewed CA is put at the same path.
    reload.on_each_reload(&["alerts.ca_file"], move |c| {
        if let Err(e) = trust.set_trust(c.alerts.ca_file.as_deref()) {
            tracing::error!(error = %e, "alerts.ca_file: the trust in force stays");
        }
    });
    reload.on(&["websocket"], move |c| ws.reconfigure(&c.websocket));
    reload.on(&["programs"], move |c| programs.reconfigure(&c.programs));
    let level = log.clone();
    reload.try_on(&["log.level"], move |c| match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => Err(format!("RUST_LOG (`{v}`) is set and replaces log.level")),
        _ => level.set_level(&c.log.level),
    });
    reload.try_on(&["log.file", "log.rotate", "log.keep"], move |c| log.set_file(&c.log));
    // The file watch reads it from the configuration in force.
    reload.on(&["server.watch_config"], |_| {});
    reload.on_async(&["devices"], move |c| {
        let devices = devices.clone();
        async move {
            let who = crate::service::Issuer { actor: "config-reload".into(), remote: None, role: None };
            match devices.sync_file(&who, &c.devices).await {
                Ok(failed) => failed.into_iter().map(|(name, e)| (format!("devices[{name}]"), e)).collect(),
                Err(e) => vec![("devices".to_owned(), e.to_string())],
            }
        }
    });
    reload
}

/// The services a reload reconfigures.
struct LiveParts {
    auth: Arc<Auth>,
    control: Arc<crate::service::control::Control>,
    storage: Storage,
    ws: Arc<crate::http::ws::Hub>,
    devices: crate::service::devices::Devices,
    plugins: Arc<PluginHost>,
    log: super::logging::LogHandle,
    alarms: Arc<crate::service::alarms::AlarmService>,
    notifier: Arc<crate::service::notify::Notifier>,
    programs: Arc<crate::service::programs::Runner>,
}

/// How often the file watch (`[server] watch_config`) looks at the file.
const WATCH_PERIOD: Duration = Duration::from_secs(2);

/// Reloads the configuration at every SIGHUP, as long as the server runs.
fn reload_on_sighup(reload: &Arc<Reload>) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hup = signal(SignalKind::hangup()).context("listen for SIGHUP")?;
        let reload = reload.clone();
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                // The outcome is logged, audited and shown in /healthz.
                let _ = reload.reload(Trigger::Sighup).await;
            }
        });
    }
    #[cfg(not(unix))]
    let _ = reload;
    Ok(())
}

pub(super) async fn serve(
    cfg: Config,
    mode: Mode,
    file: Option<std::path::PathBuf>,
    nofile: crate::http::server::NofileLimit,
    log: super::logging::LogHandle,
) -> anyhow::Result<()> {
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
    let sink = Arc::new(t3_storage::BatchingSink::start(storage.clone()));
    let collector = Collector::new(cfg.collector.clone(), sink, clock.clone());
    let plugins = crate::cli::settings::plugin_host(&cfg);
    // The trend logs' recording settings, before any device polls (each starts with them).
    let trendlogs = crate::service::trendlogs::TrendLogs::new(
        catalog.clone(),
        collector.clone(),
        crate::service::audit::AuditLog::new(catalog.clone(), clock.clone()),
        clock.clone(),
    );
    let held = trendlogs.apply();
    tracing::info!(points = held, "trend logs applied");
    crate::service::collection::start(&collector, &registry, &plugins, &devices)?;
    let ranges = Arc::new(crate::service::ranges::Ranges::default());
    let control = crate::service::control::Control::new(
        catalog.clone(),
        collector.clone(),
        registry.clone(),
        storage.clone(),
        clock.clone(),
        cfg.auth.point_writes_per_minute,
        ranges.clone(),
    );
    control.spawn_expiry();
    let alarms = crate::service::alarms::AlarmService::new(catalog.clone(), clock.clone());
    // Subscribed before the alarm service starts, so the alarms it raises at once reach it too;
    // a configuration reload applies `[alerts]` with `notifier.reconfigure`.
    let names = crate::service::point_names::PointNames {
        catalog: catalog.clone(),
        registry: registry.clone(),
        collector: collector.clone(),
        ranges: ranges.clone(),
    };
    let notifier = crate::service::notify::Notifier::new(&cfg.alerts, clock.clone(), Arc::new(names));
    notifier.spawn(&alarms);
    alarms.spawn(&storage, collector.clone());
    alarms.report_plugins(&plugins.entries());
    let scheduler = crate::service::scheduler::Scheduler::new(catalog.clone(), control.clone(), clock.clone());
    scheduler.spawn();
    ranges.spawn(&collector);
    let overrides = crate::service::overrides::Overrides::new(catalog.clone(), storage.clone(), registry.clone());
    overrides.spawn();
    let plant = Arc::new(crate::service::programs::ServerPlant {
        catalog: catalog.clone(),
        collector: collector.clone(),
        storage: storage.clone(),
        control: control.clone(),
        ranges: ranges.clone(),
        overrides: overrides.clone(),
    });
    let programs = crate::service::programs::Runner::new(
        catalog.clone(),
        plant,
        alarms.clone(),
        clock.clone(),
        cfg.programs.clone(),
    );
    programs.start_all().await;
    programs.spawn();
    let audit = crate::service::audit::AuditLog::new(catalog.clone(), clock.clone());
    let devices = crate::service::devices::Devices::new(
        catalog.clone(),
        collector.clone(),
        registry.clone(),
        plugins.clone(),
        audit.clone(),
    );
    let webview = crate::service::import::webview::WebviewImports::new(
        catalog.clone(),
        storage.clone(),
        registry.clone(),
        devices.clone(),
        audit.clone(),
        trendlogs.clone(),
    );
    let ws = crate::http::ws::Hub::new(cfg.websocket.clone());
    let parts = LiveParts {
        auth: auth.clone(),
        control: control.clone(),
        storage: storage.clone(),
        ws: ws.clone(),
        devices: devices.clone(),
        plugins: plugins.clone(),
        log,
        alarms: alarms.clone(),
        notifier: notifier.clone(),
        programs: programs.clone(),
    };
    let reload = live_config(&cfg, file, &audit, &clock, parts);
    reload_on_sighup(&reload)?;
    reload.spawn_watch(WATCH_PERIOD);
    let alerts = notifier.clone();
    let state = AppState {
        storage: storage.clone(),
        collector: collector.clone(),
        plugins,
        audit,
        devices,
        trendlogs,
        webview,
        catalog,
        auth,
        registry,
        control,
        alarms,
        notifier,
        scheduler,
        programs,
        ranges,
        overrides,
        plans,
        started: Instant::now(),
        ws,
        reload,
        metrics: Default::default(),
    };
    state.ws.spawn(state.clone());
    let http_stats = state.metrics.http.clone();
    let app = crate::http::app(state);
    // A machine-readable line for scripts and tests that start the server on port 0.
    super::announce(format_args!("t3000 listening on http://{addr}"));
    // systemd (`Type=notify`): started once the socket listens; stopping from the signal on.
    super::sdnotify::notify(&format!("READY=1\nSTATUS=serving on http://{addr}"));
    let stop = async {
        shutdown_signal().await;
        super::sdnotify::notify("STOPPING=1");
    };
    let drained = crate::http::server::serve(listener, app, limits, http_stats, stop).await;
    if drained.dropped > 0 {
        tracing::warn!(
            dropped = drained.dropped,
            "shutting down: connections with a request still in progress dropped after server.shutdown_timeout_secs"
        );
    }
    tracing::info!(open = drained.open, "shutting down: stopping the collector, persisting the write buffer");
    // One budget for the whole shutdown: requests had the first half, the collector may take up to
    // a quarter, the final flush has what is left. Meanwhile the notifier sends the alarms it held
    // and what is queued, for alerts.shutdown_grace_secs at most.
    let limit = Duration::from_secs(cfg.server.shutdown_timeout_secs);
    let deadline = drained.since + limit;
    let stop_storage = async {
        if tokio::time::timeout_at(deadline - limit / 4, collector.shutdown()).await.is_err() {
            tracing::warn!(
                "the collector did not stop within its share of server.shutdown_timeout_secs; flushing anyway"
            );
        }
        tokio::time::timeout_at(deadline, storage.shutdown()).await
    };
    let ((), stopped) = tokio::join!(alerts.shutdown(deadline), stop_storage);
    match stopped {
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
