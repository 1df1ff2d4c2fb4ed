//! The fan-out: one task follows the live bus (every sample stored, collected or pushed), the
//! collector's device status, the alarm service, the scheduler and the program runner, encodes each event once and
//! hands the shared frame to the bounded queue of every client that follows it.
//!
//! The hub never waits for a client: a full queue drops the update for that client alone and
//! counts it ([`Client::push`]); the client's session then sends `Lagged` and a fresh snapshot.
//! A client that lags more than `websocket.max_lags_per_minute` times in a minute is cancelled.

use super::protocol::{self, ServerMessage};
use crate::http::AppState;
use axum::extract::ws::Utf8Bytes;
use parking_lot::{Mutex, RwLock};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use t3_core::Quality;
use t3_core::config::WebSocketConfig;
use t3_drivers::collector::{DeviceState, DeviceStatus};
use tokio::sync::{Notify, broadcast, mpsc};
use tokio_util::sync::CancellationToken;

/// One queued item: the changes of one bus batch that a client follows, or another message.
#[derive(Debug, Clone)]
pub enum Out {
    /// Shared by every client of the same subscription group.
    Points(Arc<Changes>),
    Frame(Utf8Bytes),
}

impl Out {
    /// Messages in the item (what the queue limit counts).
    pub fn messages(&self) -> usize {
        match self {
            Out::Points(c) => c.points.len(),
            Out::Frame(_) => 1,
        }
    }
}

/// The changes of one bus batch that one subscription group follows, oldest first.
#[derive(Debug)]
pub struct Changes {
    pub points: Vec<PointOut>,
    /// The same as `PointUpdates` frames, made by the first session that sends them so.
    packed: OnceLock<Vec<Utf8Bytes>>,
}

impl Changes {
    pub fn new(points: Vec<PointOut>) -> Changes {
        Changes { points, packed: OnceLock::new() }
    }

    /// The changes as `PointUpdates` frames (packed once, then shared).
    pub fn packed(&self) -> &[Utf8Bytes] {
        self.packed.get_or_init(|| {
            let frames: Vec<Utf8Bytes> = self.points.iter().map(|p| p.frame.clone()).collect();
            protocol::pack_point_updates(&frames)
        })
    }
}

/// A change of a point (dropped by the session when older than the snapshot it just sent).
#[derive(Debug, Clone)]
pub struct PointOut {
    pub point_id: u32,
    pub ts: i64,
    pub frame: Utf8Bytes,
}

/// What a client follows.
#[derive(Debug, Default, Clone)]
pub struct Subs {
    pub all_points: bool,
    pub points: HashSet<u32>,
    pub all_devices: bool,
    pub devices: HashSet<i64>,
    pub rooms: HashSet<i64>,
    pub floors: HashSet<i64>,
    pub buildings: HashSet<i64>,
    pub alarms: bool,
    pub schedules: bool,
    pub programs: bool,
    pub system: bool,
    /// The points in the hub's index for this client: `points` and the points of the devices in
    /// its rooms, floors and buildings (empty with `all_points`).
    pub indexed: HashSet<u32>,
}

impl Subs {
    fn has_places(&self) -> bool {
        !(self.rooms.is_empty() && self.floors.is_empty() && self.buildings.is_empty())
    }

    fn in_place(&self, p: &Place) -> bool {
        p.room.is_some_and(|r| self.rooms.contains(&r))
            || p.floor.is_some_and(|f| self.floors.contains(&f))
            || p.building.is_some_and(|b| self.buildings.contains(&b))
    }

    /// Whether the status of device `id` (placed at `place`) is followed.
    pub fn wants_device(&self, id: i64, place: Option<&Place>) -> bool {
        self.all_devices || self.devices.contains(&id) || place.is_some_and(|p| self.in_place(p))
    }
}

/// A connected client, shared by its session and the hub.
#[derive(Debug)]
pub struct Client {
    pub id: u64,
    tx: mpsc::Sender<Out>,
    /// Messages queued and not yet taken by the session, at most `limit`.
    queued: AtomicUsize,
    limit: usize,
    /// Messages dropped since the session last sent `Lagged`.
    missed: AtomicU64,
    /// Dropping now (set by the first drop, cleared by the session once it sent the snapshot).
    lagging: AtomicBool,
    /// When the lag episodes of the last minute began.
    lags: Mutex<VecDeque<Instant>>,
    max_lags: usize,
    /// Wakes the session when messages were dropped.
    pub lag_notify: Notify,
    /// Cancelled when the client lagged too often: the session ends.
    pub kicked: CancellationToken,
    pub subs: Mutex<Subs>,
}

impl Client {
    /// Queues an item without waiting; when its messages do not fit in the queue, counts them as
    /// missed.
    pub fn push(&self, out: Out) {
        let n = out.messages();
        if self.queued.fetch_add(n, Ordering::AcqRel) + n > self.limit {
            self.queued.fetch_sub(n, Ordering::AcqRel);
            self.dropped(n);
            return;
        }
        match self.tx.try_send(out) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.queued.fetch_sub(n, Ordering::AcqRel);
                self.dropped(n);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.queued.fetch_sub(n, Ordering::AcqRel);
            }
        }
    }

    /// The session took an item of `n` messages off the queue.
    pub fn taken(&self, n: usize) {
        self.queued.fetch_sub(n, Ordering::AcqRel);
    }

    fn dropped(&self, n: usize) {
        self.missed.fetch_add(n as u64, Ordering::Relaxed);
        if !self.lagging.swap(true, Ordering::AcqRel) {
            let mut lags = self.lags.lock();
            let now = Instant::now();
            while lags.front().is_some_and(|t| now.duration_since(*t) > Duration::from_secs(60)) {
                lags.pop_front();
            }
            if lags.len() >= self.max_lags {
                self.kicked.cancel();
            }
            lags.push_back(now);
        }
        self.lag_notify.notify_one();
    }

    /// Takes the count of dropped messages.
    pub fn take_missed(&self) -> u64 {
        self.missed.swap(0, Ordering::AcqRel)
    }

    /// The session sent `Lagged` and the snapshot: a later drop starts a new episode.
    pub fn caught_up(&self) {
        self.lagging.store(false, Ordering::Release);
    }
}

/// Where a device is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Place {
    pub building: Option<i64>,
    pub floor: Option<i64>,
    pub room: Option<i64>,
}

/// What the hub knows about a point.
#[derive(Debug, Clone, Copy)]
pub struct PointInfo {
    pub point_type: &'static str,
    pub device_id: Option<i64>,
}

/// Points, devices and places, rebuilt from the catalog and the collector every status interval
/// and when a subscription names places.
#[derive(Debug, Default)]
pub struct Directory {
    pub points: HashMap<u32, PointInfo>,
    pub device_by_name: HashMap<String, i64>,
    pub places: HashMap<i64, Place>,
    /// The points of each device.
    pub device_points: HashMap<i64, Vec<u32>>,
    pub built: Option<Instant>,
}

fn point_type(name: &str) -> &'static str {
    match name {
        "input" => "input",
        "output" => "output",
        "variable" => "variable",
        "register" => "register",
        _ => "manual",
    }
}

impl Directory {
    pub fn build(state: &AppState) -> Directory {
        let mut d = Directory { built: Some(Instant::now()), ..Default::default() };
        for rec in state.catalog.list::<crate::model::device::DeviceRecord>() {
            d.device_by_name.insert(rec.config.name.clone(), rec.id);
            d.places.insert(rec.id, Place { building: rec.building_id, floor: rec.floor_id, room: rec.room_id });
            let points = crate::service::collection::device_points(&state.collector, &rec.config.name);
            let ids = d.device_points.entry(rec.id).or_default();
            for p in points {
                ids.push(p.id);
                d.points.insert(p.id, PointInfo { point_type: point_type(&p.point_type), device_id: Some(rec.id) });
            }
        }
        d
    }

    pub fn info(&self, point: u32) -> PointInfo {
        self.points.get(&point).copied().unwrap_or(PointInfo { point_type: "manual", device_id: None })
    }

    fn points_in(&self, subs: &Subs) -> impl Iterator<Item = u32> + '_ {
        let devices: Vec<i64> = self.places.iter().filter(|(_, p)| subs.in_place(p)).map(|(id, _)| *id).collect();
        devices.into_iter().flat_map(|d| self.device_points.get(&d).into_iter().flatten().copied())
    }
}

/// Who follows which points. Clients that follow exactly the same points (every point, or the
/// same set) form one group: a change is matched to groups rather than clients, and each member
/// of a group is handed the same [`Changes`], so 500 dashboards on the same points cost the hub
/// about what one does.
#[derive(Debug, Default)]
struct Index {
    clients: HashMap<u64, Arc<Client>>,
    groups: HashMap<u64, Group>,
    group_of: HashMap<u64, u64>,
    /// Groups by a hash of their point set (several on a collision).
    by_key: HashMap<u64, Vec<u64>>,
    by_point: HashMap<u32, Vec<u64>>,
    /// The group of the clients that follow every point.
    all_points: Option<u64>,
    next_group: u64,
}

#[derive(Debug)]
struct Group {
    /// `None`: every point.
    points: Option<HashSet<u32>>,
    key: u64,
    members: Vec<Arc<Client>>,
}

fn set_key(points: &HashSet<u32>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut sorted: Vec<u32> = points.iter().copied().collect();
    sorted.sort_unstable();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    sorted.hash(&mut h);
    h.finish()
}

impl Index {
    /// Puts `client` in the group of clients following `points` (`None`: every point).
    fn join(&mut self, client: &Arc<Client>, points: Option<HashSet<u32>>) {
        if points.as_ref().is_some_and(HashSet::is_empty) {
            return;
        }
        let existing = match &points {
            None => self.all_points,
            Some(set) => {
                let key = set_key(set);
                self.by_key
                    .get(&key)
                    .into_iter()
                    .flatten()
                    .copied()
                    .find(|g| self.groups.get(g).is_some_and(|g| g.points.as_ref() == Some(set)))
            }
        };
        let gid = existing.unwrap_or_else(|| {
            self.next_group += 1;
            let gid = self.next_group;
            let key = points.as_ref().map_or(0, set_key);
            match &points {
                None => self.all_points = Some(gid),
                Some(set) => {
                    self.by_key.entry(key).or_default().push(gid);
                    for p in set {
                        self.by_point.entry(*p).or_default().push(gid);
                    }
                }
            }
            self.groups.insert(gid, Group { points, key, members: Vec::new() });
            gid
        });
        if let Some(g) = self.groups.get_mut(&gid) {
            g.members.push(client.clone());
        }
        self.group_of.insert(client.id, gid);
    }

    /// Takes `client` out of its group; an empty group is removed.
    fn leave(&mut self, client_id: u64) {
        let Some(gid) = self.group_of.remove(&client_id) else { return };
        let Some(g) = self.groups.get_mut(&gid) else { return };
        g.members.retain(|c| c.id != client_id);
        if !g.members.is_empty() {
            return;
        }
        let Some(g) = self.groups.remove(&gid) else { return };
        match g.points {
            None => self.all_points = None,
            Some(set) => {
                remove_id(&mut self.by_key, g.key, gid);
                for p in set {
                    remove_id(&mut self.by_point, p, gid);
                }
            }
        }
    }
}

fn remove_id<K: std::hash::Hash + Eq>(map: &mut HashMap<K, Vec<u64>>, key: K, id: u64) {
    if let Some(v) = map.get_mut(&key) {
        v.retain(|g| *g != id);
        if v.is_empty() {
            map.remove(&key);
        }
    }
}

/// The fan-out service (see the module documentation).
#[derive(Debug)]
pub struct Hub {
    /// `[websocket]`; a configuration reload swaps it ([`Hub::reconfigure`]).
    cfg: RwLock<WebSocketConfig>,
    index: RwLock<Index>,
    directory: RwLock<Arc<Directory>>,
    next_id: AtomicU64,
    /// The latest `SystemStatus`, sent to new subscribers.
    system: Mutex<Option<Utf8Bytes>>,
}

/// A point update frame.
pub fn point_frame(info: PointInfo, point_id: u32, ts: i64, value: f64, quality: u8, snapshot: bool) -> Utf8Bytes {
    ServerMessage::PointUpdate(protocol::PointUpdate {
        point_id,
        point_type: info.point_type,
        device_id: info.device_id,
        value: if value.is_finite() { value } else { 0.0 },
        has_value: value.is_finite(),
        timestamp: protocol::ms_of_us(ts),
        ts_us: ts,
        time: protocol::rfc3339_us(ts),
        quality,
        quality_name: Quality(quality).name(),
        snapshot,
    })
    .frame()
}

fn device_message(id: i64, s: &DeviceStatus, snapshot: bool) -> protocol::DeviceStatus {
    protocol::DeviceStatus {
        device_id: id,
        name: s.name.clone(),
        online: s.online,
        state: match s.state {
            DeviceState::Connecting => "connecting",
            DeviceState::Online => "online",
            DeviceState::Offline => "offline",
            DeviceState::Disabled => "disabled",
        }
        .to_owned(),
        last_seen: s.last_seen.map_or(0, protocol::ms_of_us),
        last_seen_time: s.last_seen.map(protocol::rfc3339_us),
        connection_quality: s.connection_quality as f32,
        rtt_ms: s.rtt_ms,
        last_error: s.last_error.clone(),
        snapshot,
    }
}

impl Hub {
    pub fn new(cfg: WebSocketConfig) -> Arc<Hub> {
        Arc::new(Hub {
            cfg: RwLock::new(cfg),
            index: RwLock::default(),
            directory: RwLock::default(),
            next_id: AtomicU64::new(1),
            system: Mutex::default(),
        })
    }

    /// The `[websocket]` settings in force.
    pub fn config(&self) -> WebSocketConfig {
        self.cfg.read().clone()
    }

    /// Takes new `[websocket]` settings (a configuration reload): `max_clients` and the
    /// `SystemStatus` interval apply at once; queue size, lag limit, ping interval and client
    /// timeout to clients that connect from now on (connected ones keep what they were told in
    /// their `Welcome`).
    pub fn reconfigure(&self, cfg: &WebSocketConfig) {
        *self.cfg.write() = cfg.clone();
    }

    pub fn clients(&self) -> usize {
        self.index.read().clients.len()
    }

    /// A new client with an empty subscription, and its queue.
    pub fn register(&self) -> (Arc<Client>, mpsc::Receiver<Out>) {
        let cfg = self.config();
        let (tx, rx) = mpsc::channel(cfg.queue_messages);
        let client = Arc::new(Client {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            tx,
            queued: AtomicUsize::new(0),
            limit: cfg.queue_messages,
            missed: AtomicU64::new(0),
            lagging: AtomicBool::new(false),
            lags: Mutex::default(),
            max_lags: cfg.max_lags_per_minute as usize,
            lag_notify: Notify::new(),
            kicked: CancellationToken::new(),
            subs: Mutex::default(),
        });
        self.index.write().clients.insert(client.id, client.clone());
        (client, rx)
    }

    pub fn unregister(&self, client: &Client) {
        let mut index = self.index.write();
        index.clients.remove(&client.id);
        index.leave(client.id);
        client.subs.lock().indexed.clear();
    }

    pub fn directory(&self) -> Arc<Directory> {
        self.directory.read().clone()
    }

    /// Rebuilds the directory from the catalog and the collector.
    pub fn rebuild_directory(&self, state: &AppState) -> Arc<Directory> {
        let d = Arc::new(Directory::build(state));
        *self.directory.write() = d.clone();
        d
    }

    /// Changes a client's subscription with `f` and brings the index in line with it. Returns
    /// the points newly indexed (for the snapshot).
    pub fn update_subs<R>(&self, client: &Arc<Client>, dir: &Directory, f: impl FnOnce(&mut Subs) -> R) -> R {
        let mut index = self.index.write();
        let mut subs = client.subs.lock();
        let before = (subs.all_points, subs.indexed.clone());
        let r = f(&mut subs);
        let want: HashSet<u32> = if subs.all_points {
            HashSet::new()
        } else {
            subs.points.iter().copied().chain(dir.points_in(&subs)).collect()
        };
        if before != (subs.all_points, want.clone()) {
            index.leave(client.id);
            index.join(client, (!subs.all_points).then(|| want.clone()));
        }
        subs.indexed = want;
        r
    }

    /// Re-resolves the places of every client that follows some (after a directory rebuild).
    fn refresh_places(&self, dir: &Directory) {
        let clients: Vec<Arc<Client>> =
            self.index.read().clients.values().filter(|c| c.subs.lock().has_places()).cloned().collect();
        for c in clients {
            self.update_subs(&c, dir, |_| ());
        }
    }

    /// The latest `SystemStatus` frame, if one was made yet.
    pub fn system_frame(&self) -> Option<Utf8Bytes> {
        self.system.lock().clone()
    }

    /// Device statuses (as messages with `snapshot: true`) of the devices `subs` follows.
    pub fn device_snapshot(&self, state: &AppState, subs: &Subs, dir: &Directory) -> Vec<Utf8Bytes> {
        let mut out = Vec::new();
        for s in state.collector.status().all() {
            let Some(&id) = dir.device_by_name.get(&s.name) else { continue };
            if subs.wants_device(id, dir.places.get(&id)) {
                out.push(ServerMessage::DeviceStatus(device_message(id, &s, true)).frame());
            }
        }
        out
    }

    fn deliver_samples(&self, batch: &[t3_core::Sample], active: &mut HashSet<u32>) {
        let dir = self.directory();
        let index = self.index.read();
        // One frame per change, matched to groups; then one queue item per client, shared by
        // its group.
        let mut per_group: HashMap<u64, Vec<PointOut>> = HashMap::new();
        for s in batch {
            let p = s.point_id.0;
            active.insert(p);
            let some = index.by_point.get(&p);
            if some.is_none() && index.all_points.is_none() {
                continue;
            }
            let frame = point_frame(dir.info(p), p, s.ts, s.value, s.quality.0, false);
            for g in index.all_points.iter().chain(some.into_iter().flatten()) {
                per_group.entry(*g).or_default().push(PointOut { point_id: p, ts: s.ts, frame: frame.clone() });
            }
        }
        for (gid, points) in per_group {
            let changes = Arc::new(Changes::new(points));
            for c in index.groups.get(&gid).map(|g| &g.members[..]).unwrap_or_default() {
                c.push(Out::Points(changes.clone()));
            }
        }
    }

    /// Sends `frame` to every client for which `wants` holds.
    fn deliver(&self, frame: Utf8Bytes, wants: impl Fn(&Subs) -> bool) {
        let index = self.index.read();
        for c in index.clients.values() {
            if wants(&c.subs.lock()) {
                c.push(Out::Frame(frame.clone()));
            }
        }
    }

    /// Every client with point subscriptions missed `n` bus batches (the hub fell behind).
    fn all_lagged(&self, n: u64) {
        let index = self.index.read();
        for c in index.clients.values() {
            c.missed.fetch_add(n, Ordering::Relaxed);
            c.lag_notify.notify_one();
        }
    }

    fn device_status(
        &self,
        state: &AppState,
        s: DeviceStatus,
        last: &mut HashMap<String, (Instant, bool, DeviceState)>,
    ) {
        // On- and offline changes at once; anything else (last_seen, quality) at most every 5 s.
        let significant = last.get(&s.name).is_none_or(|(t, online, state)| {
            *online != s.online || *state != s.state || t.elapsed() >= Duration::from_secs(5)
        });
        if !significant {
            return;
        }
        last.insert(s.name.clone(), (Instant::now(), s.online, s.state));
        let mut dir = self.directory();
        if !dir.device_by_name.contains_key(&s.name) {
            // A device added since the last rebuild: learn it (and its points and place) now.
            dir = self.rebuild_directory(state);
            self.refresh_places(&dir);
        }
        let Some(&id) = dir.device_by_name.get(&s.name) else { return };
        let msg = device_message(id, &s, false);
        let place = dir.places.get(&id).copied();
        self.deliver(ServerMessage::DeviceStatus(msg).frame(), |subs| subs.wants_device(id, place.as_ref()));
    }

    fn alarm(&self, e: crate::model::alarm::AlarmEvent) {
        let dir = self.directory();
        let t = &e.transition;
        let kind = serde_json::to_value(&t.kind).unwrap_or_default();
        let device_id = e.device_id.or_else(|| e.point_id.and_then(|p| dir.info(p).device_id));
        let by = kind["by"].as_str().map(str::to_owned);
        let msg = protocol::AlarmNotification::of(&e, device_id, kind["type"].as_str().unwrap_or(""), by);
        self.deliver(ServerMessage::AlarmNotification(msg).frame(), |s| s.alarms);
    }

    fn schedule(&self, e: crate::service::scheduler::ScheduleEvent, now: i64) {
        let msg = protocol::ScheduleUpdate {
            schedule_id: e.schedule_id,
            name: e.name,
            change: e.change.to_owned(),
            status: e.status,
            on: e.on,
            next_run: protocol::ms_of_rfc3339(e.next_run.as_deref()),
            next_run_time: e.next_run,
            timestamp: protocol::ms_of_us(now),
            time: protocol::rfc3339_us(now),
        };
        self.deliver(ServerMessage::ScheduleUpdate(msg).frame(), |s| s.schedules);
    }

    fn program(&self, e: crate::service::programs::ProgramEvent, now: i64) {
        let msg = protocol::ProgramUpdate {
            program_id: e.program_id,
            name: e.name,
            change: e.change.to_owned(),
            status: e.status,
            enabled: e.enabled,
            error: e.error,
            last_scan: e.last_scan,
            scan_us: e.scan_us,
            timestamp: protocol::ms_of_us(now),
            time: protocol::rfc3339_us(now),
        };
        self.deliver(ServerMessage::ProgramUpdate(msg).frame(), |s| s.programs);
    }

    /// Starts the fan-out task. It runs as long as the server.
    pub fn spawn(self: &Arc<Self>, state: AppState) {
        let me = self.clone();
        let mut live = state.storage.subscribe();
        let mut statuses = state.collector.status().subscribe();
        let mut alarms = state.alarms.subscribe();
        let mut schedules = state.scheduler.subscribe();
        let mut programs = state.programs.subscribe();
        self.rebuild_directory(&state);
        tokio::spawn(async move {
            let status_period = || Duration::from_secs(me.cfg.read().system_status_interval_secs);
            let every = |period| {
                let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                tick
            };
            let mut tick = every(status_period());
            let mut active: HashSet<u32> = HashSet::new();
            let mut last_status = HashMap::new();
            let mut sys = SystemCounters::new(&state);
            loop {
                tokio::select! {
                    batch = live.recv() => match batch {
                        Ok(batch) => me.deliver_samples(&batch, &mut active),
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            tracing::warn!(batches = n, "the WebSocket hub fell behind the live bus");
                            me.all_lagged(n);
                        }
                        Err(broadcast::error::RecvError::Closed) => return,
                    },
                    s = statuses.recv() => match s {
                        Ok(s) => me.device_status(&state, s, &mut last_status),
                        Err(broadcast::error::RecvError::Lagged(_)) => last_status.clear(),
                        Err(broadcast::error::RecvError::Closed) => {}
                    },
                    e = alarms.recv() => match e {
                        Ok(e) => me.alarm(e),
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            tracing::warn!(events = n, "the WebSocket hub missed alarm events");
                        }
                        Err(broadcast::error::RecvError::Closed) => {}
                    },
                    e = schedules.recv() => match e {
                        Ok(e) => me.schedule(e, state.now_us()),
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            tracing::warn!(events = n, "the WebSocket hub missed schedule events");
                        }
                        Err(broadcast::error::RecvError::Closed) => {}
                    },
                    e = programs.recv() => match e {
                        Ok(e) => me.program(e, state.now_us()),
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            tracing::warn!(events = n, "the WebSocket hub missed program events");
                        }
                        Err(broadcast::error::RecvError::Closed) => {}
                    },
                    _ = tick.tick() => {
                        let dir = me.rebuild_directory(&state);
                        me.refresh_places(&dir);
                        let msg = sys.sample(&state, active.len(), me.clients());
                        active.clear();
                        let frame = ServerMessage::SystemStatus(msg).frame();
                        *me.system.lock() = Some(frame.clone());
                        me.deliver(frame, |s| s.system);
                        // A reload may have changed the interval.
                        if tick.period() != status_period() {
                            tick = every(status_period());
                        }
                    }
                }
            }
        });
    }
}

/// Counters at the previous `SystemStatus`, to turn totals into rates.
struct SystemCounters {
    at: Instant,
    ingested: u64,
    flush_failures: u64,
    polls: HashMap<String, (u64, u64)>,
}

impl SystemCounters {
    fn new(state: &AppState) -> Self {
        let stats = state.storage.stats();
        SystemCounters {
            at: Instant::now(),
            ingested: stats.samples_ingested.load(Ordering::Relaxed),
            flush_failures: stats.flush_failures.load(Ordering::Relaxed),
            polls: state.collector.status().all().into_iter().map(|s| (s.name, (s.polls, s.failed_polls))).collect(),
        }
    }

    fn sample(&mut self, state: &AppState, active_points: usize, clients: usize) -> protocol::SystemStatus {
        let secs = self.at.elapsed().as_secs_f64().max(1e-3);
        let stats = state.storage.stats();
        let ingested = stats.samples_ingested.load(Ordering::Relaxed);
        let flush_failures = stats.flush_failures.load(Ordering::Relaxed);
        let devices = state.collector.status().all();
        let mut polls = 0u64;
        let mut errors = Vec::new();
        let mut error_count = 0u64;
        let mut now_polls = HashMap::new();
        for d in &devices {
            let (p0, f0) = self.polls.get(&d.name).copied().unwrap_or((0, 0));
            polls += d.polls.saturating_sub(p0);
            let failed = d.failed_polls.saturating_sub(f0);
            if failed > 0 {
                error_count += failed;
                errors.push(format!(
                    "device {}: {failed} failed poll(s): {}",
                    d.name,
                    d.last_error.as_deref().unwrap_or("no answer")
                ));
            }
            now_polls.insert(d.name.clone(), (d.polls, d.failed_polls));
        }
        if flush_failures > self.flush_failures {
            error_count += flush_failures - self.flush_failures;
            errors.push(format!("storage: {} failed flush(es)", flush_failures - self.flush_failures));
        }
        if let Some(reason) = state.storage.write_refusal() {
            error_count += 1;
            errors.push(format!("storage: writes refused: {reason}"));
        }
        let now = state.now_us();
        let msg = protocol::SystemStatus {
            active_devices: devices.iter().filter(|d| d.online).count(),
            total_devices: devices.len(),
            active_points,
            collection_rate: polls as f64 / secs,
            ingest_rate: ingested.saturating_sub(self.ingested) as f64 / secs,
            system_errors: errors,
            error_count,
            websocket_clients: clients,
            interval_secs: secs,
            timestamp: protocol::ms_of_us(now),
            time: protocol::rfc3339_us(now),
        };
        *self = SystemCounters { at: Instant::now(), ingested, flush_failures, polls: now_polls };
        msg
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use t3_core::Sample;

    fn follow(hub: &Hub, c: &Arc<Client>, points: &[u32]) {
        hub.update_subs(c, &Directory::default(), |s| s.points = points.iter().copied().collect());
    }

    fn received(rx: &mut mpsc::Receiver<Out>) -> Vec<Arc<Changes>> {
        let mut out = Vec::new();
        while let Ok(item) = rx.try_recv() {
            if let Out::Points(c) = item {
                out.push(c);
            }
        }
        out
    }

    fn ids(c: &Changes) -> Vec<u32> {
        c.points.iter().map(|p| p.point_id).collect()
    }

    #[test]
    fn clients_on_the_same_points_share_one_group_and_one_list_of_changes() {
        let hub = Hub::new(WebSocketConfig::default());
        let (a, mut ra) = hub.register();
        let (b, mut rb) = hub.register();
        let (c, mut rc) = hub.register();
        let (d, mut rd) = hub.register();
        follow(&hub, &a, &[1, 2, 3]);
        follow(&hub, &b, &[3, 2, 1]);
        follow(&hub, &c, &[2]);
        hub.update_subs(&d, &Directory::default(), |s| s.all_points = true);
        assert_eq!(hub.index.read().groups.len(), 3, "{{1,2,3}} twice, {{2}}, everything");

        let batch = [Sample::good(1, 10, 1.0), Sample::good(2, 10, 2.0), Sample::good(9, 10, 9.0)];
        hub.deliver_samples(&batch, &mut HashSet::new());
        let (ga, gb, gc, gd) = (received(&mut ra), received(&mut rb), received(&mut rc), received(&mut rd));
        assert_eq!((ga.len(), gb.len(), gc.len(), gd.len()), (1, 1, 1, 1));
        assert!(Arc::ptr_eq(&ga[0], &gb[0]), "one list for the group");
        assert_eq!(ids(&ga[0]), [1, 2]);
        assert_eq!(ids(&gc[0]), [2]);
        assert_eq!(ids(&gd[0]), [1, 2, 9]);
        let packed = ga[0].packed();
        assert_eq!(packed.len(), 1);
        assert!(std::ptr::eq(packed, gb[0].packed()), "packed once");

        // Changing one member's points moves it to another group; the others keep theirs.
        follow(&hub, &b, &[2]);
        hub.deliver_samples(&batch, &mut HashSet::new());
        assert_eq!(ids(&received(&mut ra)[0]), [1, 2]);
        let (gb, gc) = (received(&mut rb), received(&mut rc));
        assert!(Arc::ptr_eq(&gb[0], &gc[0]), "b joined c");
        assert_eq!(ids(&gb[0]), [2]);

        // Leaving empties groups and the point index with them.
        for client in [&a, &b, &c, &d] {
            hub.unregister(client);
        }
        let index = hub.index.read();
        assert!(index.groups.is_empty() && index.by_point.is_empty() && index.by_key.is_empty(), "{index:?}");
        assert!(index.group_of.is_empty() && index.all_points.is_none());
    }
}
