//! One connection: reads client messages, writes what the hub queued for it, pings, and handles
//! lagging (see the module documentation of [`super`]).

use super::hub::{Client, Directory, Hub, Out, PointOut, Subs};
use super::protocol::{self, ClientMessage, IdsOrAll, Selection, ServerMessage};
use crate::http::AppState;
use crate::http::access::required_role;
use crate::http::error::ApiError;
use crate::model::user::Role;
use crate::service::auth::Principal;
use crate::service::control::UserWrite;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, close_code};
use axum::http::Method;
use futures::stream::SplitSink;
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Queued messages written to the socket per flush.
const WRITE_BATCH: usize = 256;
/// How long after a snapshot queued changes are checked against it.
const FENCE_LIFE: Duration = Duration::from_secs(5);
/// Writes and acknowledgements one client may have running at once.
const MAX_IN_FLIGHT: usize = 16;

/// Unregisters the client and counts it out, however the session ends.
struct Registration {
    hub: Arc<Hub>,
    client: Arc<Client>,
    metrics: Arc<crate::http::routes::metrics::Metrics>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.hub.unregister(&self.client);
        self.metrics.websocket_clients.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Per-point coalescing to a client's requested rate.
struct Coalesce {
    interval: Duration,
    last: HashMap<u32, Instant>,
    pending: HashMap<u32, Utf8Bytes>,
}

struct Session {
    state: AppState,
    hub: Arc<Hub>,
    client: Arc<Client>,
    who: Principal,
    sink: SplitSink<WebSocket, Message>,
    timeout: Duration,
    /// After a snapshot: a queued change of one of these points at or before this time is older
    /// than what the client already has, and is skipped.
    fence: HashMap<u32, i64>,
    /// When the last snapshot was taken: by [`FENCE_LIFE`] after it, every change queued before
    /// it has been taken, so the fence is dropped (points that never changed would keep it).
    fenced_at: Instant,
    coalesce: Option<Coalesce>,
    /// Point changes go out as `PointUpdates` frames (`Subscribe` with `batch: true`).
    batch: bool,
    replies: mpsc::Sender<ServerMessage>,
    in_flight: Arc<AtomicUsize>,
}

pub(super) async fn run(state: AppState, socket: WebSocket, who: Principal) {
    let hub = state.ws.clone();
    let (client, mut rx) = hub.register();
    state.metrics.websocket_clients.fetch_add(1, Ordering::Relaxed);
    let _registration = Registration { hub: hub.clone(), client: client.clone(), metrics: state.metrics.clone() };
    let (sink, mut stream) = socket.split();
    let (replies, mut replies_rx) = mpsc::channel(MAX_IN_FLIGHT);
    let cfg = hub.config();
    let mut s = Session {
        state,
        hub,
        client: client.clone(),
        who,
        sink,
        timeout: Duration::from_secs(cfg.client_timeout_secs),
        fence: HashMap::new(),
        fenced_at: Instant::now(),
        coalesce: None,
        batch: false,
        replies,
        in_flight: Arc::default(),
    };
    tracing::debug!(client = client.id, user = %s.who.username, "WebSocket client connected");
    let welcome = ServerMessage::Welcome(protocol::Welcome {
        username: s.who.username.clone(),
        role: s.who.role.name().to_owned(),
        server_version: env!("CARGO_PKG_VERSION").to_owned(),
        ping_interval_secs: cfg.ping_interval_secs,
        client_timeout_secs: cfg.client_timeout_secs,
        queue_messages: cfg.queue_messages,
    });
    if !s.write(vec![welcome.frame()]).await {
        return;
    }
    let ping_period = Duration::from_secs(cfg.ping_interval_secs);
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + ping_period, ping_period);
    let mut flush_tick: Option<tokio::time::Interval> = None;
    let mut last_heard = Instant::now();
    let kicked = client.kicked.clone();
    let reason = loop {
        let flush = async {
            match flush_tick.as_mut() {
                Some(t) => t.tick().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            _ = kicked.cancelled() => {
                s.close(close_code::POLICY, "lagged too often").await;
                break "lagged too often";
            }
            _ = client.lag_notify.notified() => {
                if !s.lagged(&mut rx).await {
                    break "write failed or timed out";
                }
            }
            msg = stream.next() => {
                let m = match msg {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break "closed by the client",
                    Some(Ok(m)) => m,
                };
                last_heard = Instant::now();
                let ok = match m {
                    Message::Text(t) => s.on_text(t.as_str()).await,
                    Message::Binary(_) => {
                        let e = ServerMessage::error(Value::Null, "invalid_message", "binary frames are not understood; send JSON text");
                        s.write(vec![e.frame()]).await
                    }
                    _ => true,
                };
                if !ok {
                    break "write failed or the token ended";
                }
                let want = s.coalesce.as_ref().map(|c| c.interval);
                if flush_tick.as_ref().map(|t| t.period()) != want {
                    flush_tick = want.map(|p| {
                        let mut t = tokio::time::interval(p);
                        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                        t
                    });
                }
            }
            Some(reply) = replies_rx.recv() => {
                if !s.write(vec![reply.frame()]).await {
                    break "write failed or timed out";
                }
            }
            item = rx.recv() => {
                let Some(item) = item else { break "hub gone" };
                let (mut frames, mut points) = (Vec::new(), Vec::new());
                s.take(item, &mut frames, &mut points);
                let most = if s.batch { protocol::MAX_BATCH_UPDATES } else { WRITE_BATCH };
                while frames.len() + points.len() < most {
                    match rx.try_recv() {
                        Ok(item) => s.take(item, &mut frames, &mut points),
                        Err(_) => break,
                    }
                }
                let frames = s.with_points(frames, points);
                if !frames.is_empty() && !s.write(frames).await {
                    break "write failed or timed out";
                }
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > s.timeout {
                    s.close(close_code::AWAY, "no message or pong within websocket.client_timeout_secs").await;
                    break "silent too long";
                }
                if !s.token_valid() {
                    let e = ServerMessage::error(Value::Null, "unauthorized", "the token is no longer valid");
                    s.write(vec![e.frame()]).await;
                    s.close(close_code::POLICY, "token no longer valid").await;
                    break "token ended";
                }
                if !s.write_message(Message::Ping(Default::default())).await {
                    break "write failed or timed out";
                }
            }
            _ = flush => {
                let points: Vec<Utf8Bytes> = match s.coalesce.as_mut() {
                    Some(c) => {
                        let now = Instant::now();
                        let pending: Vec<(u32, Utf8Bytes)> = c.pending.drain().collect();
                        pending.into_iter().map(|(p, f)| { c.last.insert(p, now); f }).collect()
                    }
                    None => Vec::new(),
                };
                let frames = s.with_points(Vec::new(), points);
                if !frames.is_empty() && !s.write(frames).await {
                    break "write failed or timed out";
                }
            }
        }
    };
    tracing::debug!(client = client.id, reason, "WebSocket client disconnected");
}

/// Applies a `Subscribe` selection.
fn subscribe(subs: &mut Subs, sel: &Selection) {
    match &sel.points {
        Some(IdsOrAll::All) => subs.all_points = true,
        Some(IdsOrAll::Ids(ids)) => subs.points.extend(ids),
        None => {}
    }
    match &sel.devices {
        Some(IdsOrAll::All) => subs.all_devices = true,
        Some(IdsOrAll::Ids(ids)) => subs.devices.extend(ids),
        None => {}
    }
    subs.rooms.extend(sel.rooms.iter().flatten());
    subs.floors.extend(sel.floors.iter().flatten());
    subs.buildings.extend(sel.buildings.iter().flatten());
    if let Some(b) = sel.alarms {
        subs.alarms = b;
    }
    if let Some(b) = sel.schedules {
        subs.schedules = b;
    }
    if let Some(b) = sel.programs {
        subs.programs = b;
    }
    if let Some(b) = sel.system {
        subs.system = b;
    }
}

/// Applies an `Unsubscribe` selection; an empty one stops everything.
fn unsubscribe(subs: &mut Subs, sel: &Selection) {
    if *sel == Selection::default() {
        let indexed = std::mem::take(&mut subs.indexed);
        *subs = Subs { indexed, ..Subs::default() };
        return;
    }
    match &sel.points {
        Some(IdsOrAll::All) => {
            subs.all_points = false;
            subs.points.clear();
        }
        Some(IdsOrAll::Ids(ids)) => ids.iter().for_each(|p| {
            subs.points.remove(p);
        }),
        None => {}
    }
    match &sel.devices {
        Some(IdsOrAll::All) => {
            subs.all_devices = false;
            subs.devices.clear();
        }
        Some(IdsOrAll::Ids(ids)) => ids.iter().for_each(|d| {
            subs.devices.remove(d);
        }),
        None => {}
    }
    for r in sel.rooms.iter().flatten() {
        subs.rooms.remove(r);
    }
    for f in sel.floors.iter().flatten() {
        subs.floors.remove(f);
    }
    for b in sel.buildings.iter().flatten() {
        subs.buildings.remove(b);
    }
    if sel.alarms == Some(true) {
        subs.alarms = false;
    }
    if sel.schedules == Some(true) {
        subs.schedules = false;
    }
    if sel.programs == Some(true) {
        subs.programs = false;
    }
    if sel.system == Some(true) {
        subs.system = false;
    }
}

impl Session {
    /// Writes frames (one flush), within the client timeout; false when the client is gone, too
    /// slow, or was cancelled.
    async fn write(&mut self, frames: Vec<Utf8Bytes>) -> bool {
        let sink = &mut self.sink;
        let kicked = self.client.kicked.clone();
        let work = async move {
            for f in frames {
                sink.feed(Message::Text(f)).await?;
            }
            sink.flush().await
        };
        tokio::select! {
            r = tokio::time::timeout(self.timeout, work) => matches!(r, Ok(Ok(()))),
            _ = kicked.cancelled() => false,
        }
    }

    async fn write_message(&mut self, m: Message) -> bool {
        matches!(tokio::time::timeout(self.timeout, self.sink.send(m)).await, Ok(Ok(())))
    }

    async fn close(&mut self, code: u16, reason: &'static str) {
        let frame = CloseFrame { code, reason: Utf8Bytes::from_static(reason) };
        let _ = tokio::time::timeout(Duration::from_secs(1), self.sink.send(Message::Close(Some(frame)))).await;
    }

    /// Whether the connection's token still stands (not revoked or expired, user not disabled).
    fn token_valid(&self) -> bool {
        self.state.auth.token_valid(self.who.token_id)
    }

    /// A queued item: its point changes to `points` now, held back for coalescing, or skipped
    /// (older than the snapshot); other messages to `frames`.
    fn take(&mut self, item: Out, frames: &mut Vec<Utf8Bytes>, points: &mut Vec<Utf8Bytes>) {
        self.client.taken(item.messages());
        let changes = match item {
            Out::Frame(f) => return frames.push(f),
            Out::Points(changes) => changes,
        };
        if !self.fence.is_empty() && self.fenced_at.elapsed() > FENCE_LIFE {
            self.fence.clear();
        }
        if self.batch && self.coalesce.is_none() && self.fence.is_empty() {
            // Nothing to hold back or skip: the group's frames as they are, after what came first.
            let earlier = std::mem::take(points);
            frames.extend(protocol::pack_point_updates(&earlier));
            frames.extend(changes.packed().iter().cloned());
            return;
        }
        for &PointOut { point_id, ts, ref frame } in &changes.points {
            let frame = frame.clone();
            if let Some(&fence) = self.fence.get(&point_id) {
                if ts <= fence {
                    continue;
                }
                self.fence.remove(&point_id);
            }
            match self.coalesce.as_mut() {
                None => points.push(frame),
                Some(c) => {
                    let now = Instant::now();
                    let due = c.last.get(&point_id).is_none_or(|t| now.duration_since(*t) >= c.interval);
                    if due && !c.pending.contains_key(&point_id) {
                        c.last.insert(point_id, now);
                        points.push(frame);
                    } else {
                        c.pending.insert(point_id, frame);
                    }
                }
            }
        }
    }

    /// `frames` followed by the point changes: one frame each, or packed into `PointUpdates`.
    fn with_points(&self, mut frames: Vec<Utf8Bytes>, points: Vec<Utf8Bytes>) -> Vec<Utf8Bytes> {
        if self.batch {
            frames.extend(protocol::pack_point_updates(&points));
        } else {
            frames.extend(points);
        }
        frames
    }

    /// The current values of `points` (every point with `None`) as snapshot frames; fences them.
    fn point_snapshot(&mut self, dir: &Directory, points: Option<&[u32]>) -> Vec<Utf8Bytes> {
        let latest = match points {
            None => self.state.storage.latest(&[]),
            Some([]) => return Vec::new(),
            Some(ids) => self.state.storage.latest(ids),
        };
        let mut frames = Vec::with_capacity(latest.len());
        for (p, l) in latest {
            self.fence.insert(p, l.ts);
            self.fenced_at = Instant::now();
            if let Some(c) = self.coalesce.as_mut() {
                c.pending.remove(&p);
                c.last.insert(p, Instant::now());
            }
            frames.push(super::hub::point_frame(dir.info(p), p, l.ts, l.value, l.quality, true));
        }
        frames
    }

    /// The client missed messages: drops what is still queued (older than what follows), sends
    /// `Lagged` and a fresh snapshot of everything it follows.
    async fn lagged(&mut self, rx: &mut mpsc::Receiver<Out>) -> bool {
        let mut missed = self.client.take_missed();
        if missed == 0 {
            return true;
        }
        while let Ok(item) = rx.try_recv() {
            missed += item.messages() as u64;
            self.client.taken(item.messages());
        }
        if let Some(c) = self.coalesce.as_mut() {
            c.pending.clear();
        }
        let subs = self.client.subs.lock().clone();
        let dir = self.hub.directory();
        let points: Vec<u32> = subs.indexed.iter().copied().collect();
        let snapshot = self.point_snapshot(&dir, (!subs.all_points).then_some(&points[..]));
        let mut frames = self.with_points(vec![ServerMessage::Lagged(protocol::Lagged { missed }).frame()], snapshot);
        frames.extend(self.hub.device_snapshot(&self.state, &subs, &dir));
        self.client.caught_up();
        self.write(frames).await
    }

    /// Handles one text frame; false ends the session.
    async fn on_text(&mut self, text: &str) -> bool {
        let (request_id, msg) = match protocol::parse_client(text) {
            Ok(m) => m,
            Err(e) => return self.write(vec![ServerMessage::error(e.request_id, e.code, e.message).frame()]).await,
        };
        match msg {
            ClientMessage::Ping => self.write(vec![ServerMessage::Pong(protocol::Reply { request_id }).frame()]).await,
            ClientMessage::Subscribe(sel) => self.subscribe(request_id, sel).await,
            ClientMessage::Unsubscribe(sel) => {
                let dir = self.hub.directory();
                self.hub.update_subs(&self.client, &dir, |s| unsubscribe(s, &sel));
                if sel == Selection::default() {
                    self.coalesce = None;
                }
                self.write(vec![ServerMessage::Unsubscribed(protocol::Reply { request_id }).frame()]).await
            }
            ClientMessage::AckAlarm(a) => {
                let path = format!("/api/t3000/alarms/{}/ack", a.alarm_id);
                let state = self.state.clone();
                let dir = self.hub.directory();
                self.command(request_id, &path, move |who, request_id| async move {
                    match state.alarms.acknowledge(&who.issuer(), a.alarm_id) {
                        Ok(e) => ServerMessage::AlarmAcknowledged(protocol::AlarmAcknowledged {
                            request_id,
                            alarm: protocol::AlarmNotification::of(
                                &e,
                                e.device_id.or_else(|| e.point_id.and_then(|p| dir.info(p).device_id)),
                                "acknowledged",
                                Some(who_name(&e.transition.kind)),
                            ),
                        }),
                        Err(e) => refused(request_id, e),
                    }
                })
                .await
            }
            ClientMessage::WriteValue(w) => {
                let path = format!("/api/t3000/points/{}/value", w.point_id);
                let state = self.state.clone();
                self.command(request_id, &path, move |who, request_id| async move {
                    let write = UserWrite {
                        value: w.value,
                        priority: w.priority,
                        expires_in_secs: w.expires_in_secs,
                        switch_to_manual: w.switch_to_manual,
                    };
                    match state.control.user_write(&who.issuer(), w.point_id, write).await {
                        Ok(r) => ServerMessage::ValueWritten(protocol::ValueWritten {
                            request_id,
                            result: serde_json::to_value(r).unwrap_or_default(),
                        }),
                        Err(e) => refused(request_id, e),
                    }
                })
                .await
            }
        }
    }

    /// Runs a command (as the REST endpoint `POST path` would, with its role) in a task of its
    /// own; its reply comes back through `replies`.
    async fn command<F, Fut>(&mut self, request_id: Value, path: &str, f: F) -> bool
    where
        F: FnOnce(Principal, Value) -> Fut + Send + 'static,
        Fut: Future<Output = ServerMessage> + Send + 'static,
    {
        let need = required_role(&Method::POST, path).unwrap_or(Role::Admin);
        if !self.token_valid() {
            let e = ServerMessage::error(request_id, "unauthorized", "the token is no longer valid");
            self.write(vec![e.frame()]).await;
            self.close(close_code::POLICY, "token no longer valid").await;
            return false;
        }
        if self.who.role < need {
            let e = ServerMessage::error(
                request_id,
                "forbidden",
                format!("this needs the role {} (you are {})", need.name(), self.who.role.name()),
            );
            return self.write(vec![e.frame()]).await;
        }
        if self.in_flight.fetch_add(1, Ordering::AcqRel) >= MAX_IN_FLIGHT {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            let e = ServerMessage::error(
                request_id,
                "too_many_requests",
                format!("at most {MAX_IN_FLIGHT} writes and acknowledgements at once"),
            );
            return self.write(vec![e.frame()]).await;
        }
        let (who, replies, in_flight) = (self.who.clone(), self.replies.clone(), self.in_flight.clone());
        tokio::spawn(async move {
            let reply = f(who, request_id).await;
            in_flight.fetch_sub(1, Ordering::AcqRel);
            let _ = replies.send(reply).await;
        });
        true
    }

    async fn subscribe(&mut self, request_id: Value, sel: Selection) -> bool {
        // Rebuilt for every subscription, so that devices, points and places added a moment ago count.
        let dir = self.hub.rebuild_directory(&self.state);
        let (was_all, before) = self.hub.update_subs(&self.client, &dir, |s| {
            let before = (s.all_points, s.indexed.clone());
            subscribe(s, &sel);
            before
        });
        if let Some(batch) = sel.batch {
            self.batch = batch;
        }
        if let Some(rate) = sel.max_rate_hz {
            let interval = Duration::from_secs_f64(1.0 / rate);
            match self.coalesce.as_mut() {
                Some(c) => c.interval = interval,
                None => self.coalesce = Some(Coalesce { interval, last: HashMap::new(), pending: HashMap::new() }),
            }
        }
        let subs = self.client.subs.lock().clone();
        // The snapshot: the points (and device statuses) this request added.
        let points = match (subs.all_points, was_all) {
            (true, true) => Vec::new(),
            (true, false) => self.point_snapshot(&dir, None),
            _ => {
                let mut new: Vec<u32> = subs.indexed.difference(&before).copied().collect();
                new.sort_unstable();
                self.point_snapshot(&dir, Some(&new))
            }
        };
        let snapshot_points = points.len();
        let mut only_this = Subs::default();
        subscribe(&mut only_this, &sel);
        let mut snapshot = self.hub.device_snapshot(&self.state, &only_this, &dir);
        if sel.system == Some(true)
            && let Some(f) = self.hub.system_frame()
        {
            snapshot.push(f);
        }
        let reply = ServerMessage::Subscribed(protocol::Subscribed {
            request_id,
            points: (!subs.all_points).then_some(subs.indexed.len()),
            all_points: subs.all_points,
            devices: (!subs.all_devices).then_some(subs.devices.len()),
            alarms: subs.alarms,
            schedules: subs.schedules,
            programs: subs.programs,
            system: subs.system,
            snapshot_points,
            max_rate_hz: self.coalesce.as_ref().map(|c| 1.0 / c.interval.as_secs_f64()),
            batch: self.batch,
        });
        let mut frames = self.with_points(vec![reply.frame()], points);
        frames.extend(snapshot);
        self.write(frames).await
    }
}

/// The error a service's refusal gets: the code and message its REST endpoint answers with.
fn refused(request_id: Value, e: impl Into<ApiError>) -> ServerMessage {
    let e = e.into();
    ServerMessage::error(request_id, e.code, e.message)
}

/// Who acknowledged, from a transition kind.
fn who_name(kind: &t3_core::alarm::TransitionKind) -> String {
    serde_json::to_value(kind).ok().and_then(|k| k["by"].as_str().map(str::to_owned)).unwrap_or_default()
}
