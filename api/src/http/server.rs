//! The HTTP listener: accepts connections up to a cap, closes slow and idle ones, and shuts down
//! within a bound; and the open-files limit those connections share with storage.
//!
//! axum's own `serve` has no header-read or idle timeout and no connection cap, and its graceful
//! shutdown waits for every connection without bound: a client that had sent half a request kept
//! SIGTERM from ever finishing, and a flood of idle connections took every file descriptor, so the
//! next WAL segment could not be created. [`serve`] drives hyper's HTTP/1.1 connections itself:
//!
//! - **Cap.** A permit is taken before each `accept`. At `server.max_connections` the server stops
//!   accepting, so further clients wait in the kernel's listen queue (1,024 deep, see [`bind`])
//!   and hold no descriptor of ours. The permit lives in the connection's I/O object and is given back when the
//!   socket closes, also when that is after a WebSocket upgrade.
//! - **Timeouts.** A watchdog per connection: while no request is in progress, the connection is
//!   closed `header_read_timeout` after the first byte of a request head that is still incomplete
//!   (a slowloris client), or `idle_timeout` after it opened or its last response ended if nothing
//!   arrives. A request in progress is bounded by its handler (query time limits, the WebSocket's
//!   own heartbeat once upgraded).
//! - **Shutdown.** Once `signal` fires: the listener is closed, connections with no request in
//!   progress are closed at once, the others may finish their request for half of
//!   `shutdown_timeout` (the rest is the collector's and the final flush's, see `cli`), then they
//!   are dropped. Upgraded (WebSocket) connections are not waited for.
//!
//! [`raise_nofile_limit`] lifts the soft `RLIMIT_NOFILE` to the hard limit at start;
//! [`fd_reserve`] is what the cap must leave of it for the WAL, Parquet files, queries and devices.

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use t3_core::config::{Config, ConfigError};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower::ServiceExt;

/// The bounds [`serve`] enforces.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `server.header_read_timeout_secs`.
    pub header_read_timeout: Duration,
    /// `server.idle_timeout_secs`.
    pub idle_timeout: Duration,
    /// Connections open at once (`server.max_connections`, or derived from the open-files limit).
    pub max_connections: usize,
    /// How long requests in progress may go on after the shutdown signal.
    pub shutdown_timeout: Duration,
}

impl Limits {
    /// The limits of `cfg`, with `max_connections` resolved against the open-files limit `nofile`.
    pub fn new(cfg: &Config, nofile: u64) -> Limits {
        let s = &cfg.server;
        let max = if s.max_connections == 0 { nofile.saturating_sub(fd_reserve(nofile)) } else { s.max_connections };
        Limits {
            header_read_timeout: Duration::from_secs(s.header_read_timeout_secs),
            idle_timeout: Duration::from_secs(s.idle_timeout_secs),
            max_connections: usize::try_from(max).unwrap_or(usize::MAX).clamp(1, Semaphore::MAX_PERMITS),
            shutdown_timeout: Duration::from_secs(s.shutdown_timeout_secs),
        }
    }
}

/// What the shutdown of [`serve`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drained {
    /// Connections still open at the signal (idle ones included).
    pub open: usize,
    /// Connections dropped with a request unfinished when their share of `shutdown_timeout` ran out.
    pub dropped: usize,
    /// When the shutdown signal came: the whole shutdown ends `shutdown_timeout` after it.
    pub since: Instant,
}

/// Connections the kernel completes and queues for us while we do not accept (at the cap); the
/// 128 of `TcpListener::bind` would refuse a burst of clients that only had to wait.
const LISTEN_BACKLOG: u32 = 1024;

/// Binds the HTTP listener to `addr` with a listen queue of [`LISTEN_BACKLOG`] connections.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    // A restarted server can bind at once, with the old one's connections still in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Counters of the HTTP connections, for `GET /metrics`.
#[derive(Debug, Default)]
pub struct HttpStats {
    /// Connections open (WebSocket ones included, until their socket closes).
    pub open: AtomicUsize,
    /// The connection cap in force.
    pub max_connections: AtomicUsize,
    /// Requests whose response has not ended.
    pub in_progress: AtomicUsize,
    /// Connections closed because a request head took longer than `header_read_timeout`.
    pub closed_header_timeout: AtomicU64,
    /// Connections closed after `idle_timeout` without a request.
    pub closed_idle: AtomicU64,
    /// Connections closed because the client read nothing of a response for `idle_timeout`.
    pub closed_stalled: AtomicU64,
}

/// Serves `app` on `listener` until `signal` completes, then shuts down as the module docs say.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    stats: Arc<HttpStats>,
    signal: impl Future<Output = ()>,
) -> Drained {
    stats.max_connections.store(limits.max_connections, Ordering::Relaxed);
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut conns: JoinSet<()> = JoinSet::new();
    let mut signal = pin!(signal);
    let mut permit: Option<OwnedSemaphorePermit> = None;
    let mut cap_reported: Option<Instant> = None;
    loop {
        tokio::select! {
            biased;
            () = &mut signal => break,
            Some(done) = conns.join_next(), if !conns.is_empty() => {
                if let Err(e) = done
                    && e.is_panic()
                {
                    tracing::error!(error = %e, "an HTTP connection task panicked");
                }
            }
            p = permits.clone().acquire_owned(), if permit.is_none() => {
                permit = p.ok();
                if permits.available_permits() == 0 && cap_reported.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                    cap_reported = Some(Instant::now());
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "HTTP connection cap reached: new clients wait until a connection closes"
                    );
                }
            }
            accepted = listener.accept(), if permit.is_some() => match accepted {
                Ok((tcp, addr)) => {
                    if let Err(e) = tcp.set_nodelay(true) {
                        tracing::debug!(error = %e, "TCP_NODELAY not set");
                    }
                    let Some(p) = permit.take() else { continue };
                    let io = ConnIo::new(tcp, p, stats.clone());
                    conns.spawn(connection(io, addr, app.clone(), limits, stop_rx.clone()));
                }
                // The client gave up before we took it: nothing of ours is used up.
                Err(e) if is_connection_error(&e) => {}
                Err(e) => {
                    // EMFILE, ENFILE, ENOBUFS: something else holds the descriptors; retry later
                    // instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed; retrying in 1 s");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        () = &mut signal => break,
                    }
                }
            }
        }
    }
    let since = Instant::now();
    drop(listener);
    let open = conns.len();
    let _ = stop_tx.send(true);
    let finished =
        tokio::time::timeout(limits.shutdown_timeout / 2, async { while conns.join_next().await.is_some() {} })
            .await
            .is_ok();
    let dropped = if finished { 0 } else { conns.len() };
    conns.abort_all();
    while conns.join_next().await.is_some() {}
    Drained { open, dropped, since }
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

/// One HTTP/1.1 connection (upgrades to WebSocket included), closed by its watchdog or the shutdown.
async fn connection(io: ConnIo, addr: SocketAddr, app: Router, limits: Limits, mut stop: watch::Receiver<bool>) {
    let state = io.state.clone();
    let for_requests = state.clone();
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        // Until the response body is done (or dropped), the connection has a request in progress.
        let guard = RequestGuard::begin(for_requests.clone());
        req.extensions_mut().insert(ConnectInfo(addr));
        let app = app.clone();
        async move {
            let Ok(resp) = app.oneshot(req).await;
            Ok::<_, Infallible>(resp.map(|body| {
                Body::new(body.map_frame(move |frame| {
                    let _held = &guard;
                    frame
                }))
            }))
        }
    });
    let http = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(io), service).with_upgrades();
    let mut http = pin!(http);
    let mut stopping = false;
    loop {
        tokio::select! {
            done = http.as_mut() => {
                if let Err(e) = done {
                    tracing::debug!(%addr, error = %e, "HTTP connection ended with an error");
                }
                return;
            }
            why = watchdog(&state, &limits) => {
                let counter = match why {
                    Expired::HeaderTimeout => &state.stats.closed_header_timeout,
                    Expired::Idle => &state.stats.closed_idle,
                    Expired::Stalled => &state.stats.closed_stalled,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%addr, ?why, "closing an HTTP connection");
                return;
            }
            _ = stop.wait_for(|s| *s), if !stopping => {
                stopping = true;
                if !state.busy() {
                    return;
                }
                // Answer the request in progress, then close.
                http.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Why the watchdog closes a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expired {
    /// A request head was not complete within `server.header_read_timeout_secs` of its first byte.
    HeaderTimeout,
    /// No request for `server.idle_timeout_secs`.
    Idle,
    /// The client read nothing of a response for `server.idle_timeout_secs` (a backup or an
    /// export would otherwise hold its files and its thread as long as the socket stays open).
    Stalled,
}

/// Resolves when the connection is to be closed: too long idle, or too long in a request head.
async fn watchdog(state: &ConnState, limits: &Limits) -> Expired {
    loop {
        let changed = state.changed.notified();
        match state.deadline(limits) {
            Some((at, why)) => {
                tokio::select! {
                    () = tokio::time::sleep_until(at) => {
                        if state.deadline(limits).is_some_and(|(at, _)| at <= Instant::now()) {
                            return why;
                        }
                    }
                    () = changed => {}
                }
            }
            None => changed.await,
        }
    }
}

/// What the watchdog of one connection watches.
#[derive(Debug)]
struct ConnState {
    times: Mutex<Times>,
    /// Signalled on every change of `times` that can move the deadline.
    changed: Notify,
    /// Whether `times.write_blocked_since` is set: every write reads it, and takes the lock only
    /// when it changes.
    write_blocked: AtomicBool,
    stats: Arc<HttpStats>,
}

#[derive(Debug)]
struct Times {
    /// Requests whose response has not ended (HTTP/1.1: at most one, but pipelining may overlap).
    in_flight: usize,
    /// Since when no request has been in progress (the connection opened or a response ended).
    idle_since: Instant,
    /// When the first byte of the next request head arrived (none in progress until it is whole).
    head_since: Option<Instant>,
    /// Since when the socket has taken no byte of a response (its send buffer full).
    write_blocked_since: Option<Instant>,
}

impl ConnState {
    fn new(stats: Arc<HttpStats>) -> Self {
        stats.open.fetch_add(1, Ordering::Relaxed);
        ConnState {
            times: Mutex::new(Times {
                in_flight: 0,
                idle_since: Instant::now(),
                head_since: None,
                write_blocked_since: None,
            }),
            changed: Notify::new(),
            write_blocked: AtomicBool::new(false),
            stats,
        }
    }

    fn busy(&self) -> bool {
        self.times.lock().in_flight > 0
    }

    fn on_read(&self) {
        let mut t = self.times.lock();
        if t.in_flight == 0 && t.head_since.is_none() {
            t.head_since = Some(Instant::now());
            drop(t);
            self.changed.notify_one();
        }
    }

    /// A write found the socket full (`blocked`) or went through.
    fn on_write(&self, blocked: bool) {
        if self.write_blocked.swap(blocked, Ordering::Relaxed) == blocked {
            return;
        }
        let mut t = self.times.lock();
        if t.write_blocked_since.is_some() != blocked {
            t.write_blocked_since = blocked.then(Instant::now);
            drop(t);
            self.changed.notify_one();
        }
    }

    /// When the connection is to be closed, and why; while a request is in progress, only when
    /// its response has not moved for the idle timeout.
    fn deadline(&self, limits: &Limits) -> Option<(Instant, Expired)> {
        let t = self.times.lock();
        if t.in_flight > 0 {
            return t.write_blocked_since.map(|since| (since + limits.idle_timeout, Expired::Stalled));
        }
        Some(match t.head_since {
            Some(since) => (since + limits.header_read_timeout, Expired::HeaderTimeout),
            None => (t.idle_since + limits.idle_timeout, Expired::Idle),
        })
    }
}

impl Drop for ConnState {
    /// The state lives as long as the socket (the I/O object holds it), upgraded ones included.
    fn drop(&mut self) {
        self.stats.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Marks a request in progress on its connection from when its head is parsed until its response
/// body is done or dropped.
#[derive(Debug)]
struct RequestGuard(Arc<ConnState>);

impl RequestGuard {
    fn begin(state: Arc<ConnState>) -> Self {
        {
            let mut t = state.times.lock();
            t.in_flight += 1;
            t.head_since = None;
        }
        state.stats.in_progress.fetch_add(1, Ordering::Relaxed);
        state.changed.notify_one();
        RequestGuard(state)
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        {
            let mut t = self.0.times.lock();
            t.in_flight = t.in_flight.saturating_sub(1);
            if t.in_flight == 0 {
                t.idle_since = Instant::now();
            }
        }
        self.0.stats.in_progress.fetch_sub(1, Ordering::Relaxed);
        self.0.changed.notify_one();
    }
}

/// A connection's socket, holding its place under the cap and telling the watchdog when bytes
/// arrive.
#[derive(Debug)]
struct ConnIo {
    tcp: TcpStream,
    state: Arc<ConnState>,
    _permit: OwnedSemaphorePermit,
}

impl ConnIo {
    fn new(tcp: TcpStream, permit: OwnedSemaphorePermit, stats: Arc<HttpStats>) -> Self {
        ConnIo { tcp, state: Arc::new(ConnState::new(stats)), _permit: permit }
    }
}

impl AsyncRead for ConnIo {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.tcp).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.state.on_read();
        }
        r
    }
}

impl AsyncWrite for ConnIo {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.tcp).poll_write(cx, buf);
        this.state.on_write(r.is_pending());
        r
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.tcp).poll_write_vectored(cx, bufs);
        this.state.on_write(r.is_pending());
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

// ---- the open-files limit ----

/// Linux refuses a soft `RLIMIT_NOFILE` above `fs.nr_open` (1,048,576 unless raised), even under an
/// unlimited hard limit.
const NR_OPEN_DEFAULT: u64 = 1 << 20;

/// The open-files limit before and after [`raise_nofile_limit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NofileLimit {
    /// The soft limit the process started with.
    pub before: u64,
    /// The soft limit now.
    pub now: u64,
    /// Why it could not be raised, if it could not.
    pub error: Option<String>,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (the usual soft limit of 1,024 is far below
/// what a server with many clients needs; the hard limit is what the administrator allows).
pub fn raise_nofile_limit() -> NofileLimit {
    use rlimit::Resource;
    let (soft, hard) = match Resource::NOFILE.get() {
        Ok(limits) => limits,
        Err(e) => return NofileLimit { before: 0, now: nofile_limit(), error: Some(e.to_string()) },
    };
    let mut out = NofileLimit { before: soft, now: soft, error: None };
    for target in [hard, hard.min(NR_OPEN_DEFAULT)] {
        if target <= out.now {
            continue;
        }
        match Resource::NOFILE.set(target, hard) {
            Ok(()) => {
                out.now = target;
                out.error = None;
                break;
            }
            Err(e) => out.error = Some(format!("setrlimit(RLIMIT_NOFILE, {target}): {e}")),
        }
    }
    out
}

/// The soft open-files limit in force (1,024 if it cannot be read).
pub fn nofile_limit() -> u64 {
    rlimit::Resource::NOFILE.get().map_or(1024, |(soft, _)| soft)
}

/// File descriptors the HTTP connections must leave of the open-files limit `nofile` for the WAL,
/// Parquet files, queries, the catalog and devices: a quarter of the limit, at least 256 (half the
/// limit below 512).
pub fn fd_reserve(nofile: u64) -> u64 {
    (nofile / 4).max(256.min(nofile / 2))
}

/// The configuration check of `server.max_connections` against the open-files limit `nofile`.
pub fn check_max_connections(cfg: &Config, nofile: u64) -> Result<(), ConfigError> {
    let reserve = fd_reserve(nofile);
    let most = nofile.saturating_sub(reserve);
    if cfg.server.max_connections > most {
        return Err(ConfigError::new(
            "server.max_connections",
            format!(
                "{} leaves too few of the {nofile} open files this process may have (RLIMIT_NOFILE, raised to \
                 the hard limit) for the WAL, Parquet files, queries and devices, which keep {reserve}: at most \
                 {most}, or 0 to derive it; raise the limit (ulimit -n, systemd LimitNOFILE) for more",
                cfg.server.max_connections
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserve_leaves_storage_room_at_any_limit() {
        assert_eq!(fd_reserve(256), 128);
        assert_eq!(fd_reserve(512), 256);
        assert_eq!(fd_reserve(1024), 256);
        assert_eq!(fd_reserve(4096), 1024);
        assert_eq!(fd_reserve(1 << 20), 1 << 18);
        let mut cfg = Config::default();
        assert_eq!(Limits::new(&cfg, 1024).max_connections, 768);
        assert_eq!(Limits::new(&cfg, 512).max_connections, 256);
        check_max_connections(&cfg, 64).unwrap();
        cfg.server.max_connections = 768;
        check_max_connections(&cfg, 1024).unwrap();
        assert_eq!(Limits::new(&cfg, 1024).max_connections, 768);
        cfg.server.max_connections = 769;
        let e = check_max_connections(&cfg, 1024).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("server.max_connections"));
        assert!(e.message.contains("at most 768"), "{e}");
    }

    #[test]
    fn raising_the_limit_reaches_the_hard_limit() {
        let r = raise_nofile_limit();
        let (soft, hard) = rlimit::Resource::NOFILE.get().unwrap();
        assert_eq!(r.now, soft);
        assert!(r.now >= r.before);
        assert!(soft == hard || soft == NR_OPEN_DEFAULT || r.error.is_some(), "{r:?}, hard {hard}");
    }
}
