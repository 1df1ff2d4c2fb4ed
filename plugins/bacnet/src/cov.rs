//! COV subscriptions: a socket of their own (so notifications never reach the request socket,
//! and request answers never reach this one), a thread that receives notifications, pushes
//! samples, answers confirmed notifications, and renews subscriptions before they expire.

use crate::client::{Client, RequestError};
use crate::codec::enums::property;
use crate::codec::pdu::{Apdu, Frame};
use crate::codec::services::{CovNotification, confirmed, decode_cov_notification, subscribe_cov, unconfirmed};
use crate::codec::tags::{ObjectId, Value};
use crate::config::Config;
use crate::points::{Kind, quality};
use crate::session::request_error;
use serde_json::{Value as Json, json};
use std::collections::HashMap;
use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use t3_plugin_abi::export::Error;
use t3_plugin_abi::{STATUS_UNREACHABLE, STATUS_UNSUPPORTED, Sample};

/// Subscriber process identifiers: distinct per subscription set in this process.
static NEXT_PROCESS_ID: AtomicU32 = AtomicU32::new(1);

/// One object to follow, and the points it feeds.
#[derive(Debug, Clone)]
pub struct Target {
    pub object: ObjectId,
    pub kind: Kind,
    pub points: Vec<u32>,
}

/// Counters for `health`.
#[derive(Debug, Default)]
struct CovStats {
    subscribed: usize,
    refused: usize,
    notifications: u64,
    renewals: u64,
    renewal_failures: u64,
}

/// Where pushed samples go: the server's push callback (`export::Pusher`), or a test's channel.
pub type Sink = Arc<dyn Fn(&[Sample]) + Send + Sync>;

/// Turns notifications into samples.
struct Dispatcher {
    targets: HashMap<ObjectId, (Kind, Vec<u32>)>,
    sink: Sink,
    process_id: u32,
    peer: SocketAddrV4,
    stats: Arc<Mutex<CovStats>>,
}

fn now_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
}

impl Dispatcher {
    fn handle(&mut self, client: &Client, frame: &Frame<'_>, from: SocketAddr) {
        if from != SocketAddr::V4(self.peer) {
            return;
        }
        let n = match frame.apdu {
            Apdu::UnconfirmedRequest { service: unconfirmed::UNCONFIRMED_COV_NOTIFICATION, data } => {
                decode_cov_notification(data).ok()
            }
            Apdu::ConfirmedRequest {
                service: confirmed::CONFIRMED_COV_NOTIFICATION,
                invoke_id,
                data,
                segmented: false,
                ..
            } => {
                let n = decode_cov_notification(data).ok();
                // Acknowledge it even if it is not for us: the device would otherwise retry.
                client.simple_ack(from, invoke_id, confirmed::CONFIRMED_COV_NOTIFICATION);
                n
            }
            _ => None,
        };
        if let Some(n) = n {
            self.push(&n);
        }
    }

    fn push(&self, n: &CovNotification) {
        if n.process_id != self.process_id {
            return;
        }
        let Some((kind, points)) = self.targets.get(&n.object) else { return };
        let find =
            |p: u32| n.values.iter().find(|v| v.property == p && v.index.is_none()).and_then(|v| v.value.first());
        let Some(value) = find(property::PRESENT_VALUE).and_then(|v| kind.sample_value(v)) else { return };
        let flags = match find(property::STATUS_FLAGS) {
            Some(Value::BitString(b)) => Some(b.as_slice()),
            _ => None,
        };
        let q = quality(flags);
        let ts = now_us();
        let samples: Vec<Sample> =
            points.iter().map(|&p| Sample { point: p, quality: q, reserved: [0; 3], value, ts_us: ts }).collect();
        self.stats.lock().map(|mut s| s.notifications += 1).ok();
        (self.sink)(&samples);
    }
}

/// A live subscription and when to renew it.
struct Subscription {
    object: ObjectId,
    renew_at: Instant,
}

/// The subscriptions of one device session: stops (and cancels them) when dropped.
pub struct Worker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<Mutex<CovStats>>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").field("stop", &self.stop).finish_non_exhaustive()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Worker {
    /// Subscribes to every target (answered before this returns) and starts the thread that
    /// receives notifications and renews. `STATUS_UNSUPPORTED` when the device refused them all.
    pub fn start(cfg: &Config, targets: Vec<Target>, sink: Sink) -> Result<Worker, Error> {
        let socket = UdpSocket::bind(SocketAddrV4::new(cfg.local_address, 0))
            .map_err(|e| Error::config("local_address", &format!("cannot bind a UDP socket for COV: {e}")))?;
        let peer = SocketAddrV4::new(cfg.ip_address, cfg.port);
        let mut client = Client::new(socket, peer, cfg.timeout, cfg.retries);
        let stop = Arc::new(AtomicBool::new(false));
        client.set_cancel(stop.clone());
        let stats = Arc::new(Mutex::new(CovStats::default()));
        let process_id = NEXT_PROCESS_ID.fetch_add(1, Ordering::Relaxed);
        let mut dispatcher = Dispatcher {
            targets: targets.iter().map(|t| (t.object, (t.kind, t.points.clone()))).collect(),
            sink,
            process_id,
            peer,
            stats: stats.clone(),
        };
        let lifetime = Duration::from_secs(u64::from(cfg.cov_lifetime_secs));
        let request = |object| subscribe_cov(process_id, object, Some((cfg.cov_confirmed, cfg.cov_lifetime_secs)));
        let mut subs = Vec::new();
        let mut last_error = None;
        for t in &targets {
            match client
                .confirmed(confirmed::SUBSCRIBE_COV, &request(t.object), &mut |c, f, a| dispatcher.handle(c, f, a))
            {
                Ok(_) => subs.push(Subscription { object: t.object, renew_at: Instant::now() + renew_after(lifetime) }),
                Err(e) if e.is_unreachable() => {
                    if subs.is_empty() {
                        return Err(request_error("subscribing to changes of value", &e));
                    }
                    // The device went quiet midway: the thread tries these again.
                    subs.push(Subscription { object: t.object, renew_at: Instant::now() + retry_after(lifetime) });
                }
                Err(e) => last_error = Some(e),
            }
        }
        if subs.is_empty() {
            let why = last_error.map_or_else(|| "no points were given".to_owned(), |e| e.to_string());
            return Err(Error::new(STATUS_UNSUPPORTED, format!("the device accepted no COV subscription: {why}")));
        }
        if let Ok(mut s) = stats.lock() {
            s.subscribed = subs.len();
            s.refused = targets.len() - subs.len();
        }
        let thread_stop = stop.clone();
        let confirmed_notifications = cfg.cov_confirmed;
        let lifetime_secs = cfg.cov_lifetime_secs;
        let thread = std::thread::Builder::new()
            .name(format!("bacnet-cov-{}", cfg.ip_address))
            .spawn(move || {
                run(client, dispatcher, subs, thread_stop, lifetime, move |object| {
                    subscribe_cov(process_id, object, Some((confirmed_notifications, lifetime_secs)))
                })
            })
            .map_err(|e| Error::new(STATUS_UNREACHABLE, format!("cannot start the COV thread: {e}")))?;
        Ok(Worker { stop, thread: Some(thread), stats })
    }

    pub fn health(&self) -> Json {
        match self.stats.lock() {
            Ok(s) => json!({
                "subscribed": s.subscribed,
                "refused": s.refused,
                "notifications": s.notifications,
                "renewals": s.renewals,
                "renewal_failures": s.renewal_failures,
            }),
            Err(_) => Json::Null,
        }
    }
}

/// Renew at two thirds of the lifetime.
fn renew_after(lifetime: Duration) -> Duration {
    lifetime * 2 / 3
}

/// After a renewal got no answer, try again at a tenth of the lifetime (at least a second).
fn retry_after(lifetime: Duration) -> Duration {
    (lifetime / 10).max(Duration::from_secs(1))
}

fn run(
    mut client: Client,
    mut dispatcher: Dispatcher,
    mut subs: Vec<Subscription>,
    stop: Arc<AtomicBool>,
    lifetime: Duration,
    request: impl Fn(ObjectId) -> Vec<u8>,
) {
    while !stop.load(Ordering::Relaxed) {
        let next = subs.iter().map(|s| s.renew_at).min().unwrap_or_else(|| Instant::now() + lifetime);
        let wait = next.saturating_duration_since(Instant::now()).min(Duration::from_secs(1));
        match client.poll(wait, &mut |c, f, a| dispatcher.handle(c, f, a)) {
            Err(RequestError::Cancelled) => break,
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
            Ok(()) => {}
        }
        let now = Instant::now();
        let mut refused = Vec::new();
        for (i, s) in subs.iter_mut().enumerate() {
            if s.renew_at > now || stop.load(Ordering::Relaxed) {
                continue;
            }
            let r = client
                .confirmed(confirmed::SUBSCRIBE_COV, &request(s.object), &mut |c, f, a| dispatcher.handle(c, f, a));
            let ok = r.is_ok();
            if let Ok(mut st) = dispatcher.stats.lock() {
                if ok {
                    st.renewals += 1;
                } else {
                    st.renewal_failures += 1;
                }
            }
            match r {
                Ok(_) => s.renew_at = Instant::now() + renew_after(lifetime),
                Err(RequestError::Cancelled) => break,
                Err(e) if e.is_unreachable() => s.renew_at = Instant::now() + retry_after(lifetime),
                // Refused now (the object was deleted, the device restarted without COV): polled.
                Err(_) => refused.push(i),
            }
        }
        for i in refused.into_iter().rev() {
            subs.remove(i);
        }
    }
    // Cancel the subscriptions without waiting for the answers.
    let process_id = dispatcher.process_id;
    for s in &subs {
        let data = subscribe_cov(process_id, s.object, None);
        let apdu = Apdu::ConfirmedRequest {
            segmented: false,
            more_follows: false,
            segmented_response_accepted: false,
            max_segments: 0,
            max_apdu: 5,
            invoke_id: 0,
            sequence: 0,
            window: 0,
            service: confirmed::SUBSCRIBE_COV,
            data: &data,
        };
        let _ = client.send_to(&apdu, client.peer, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::pdu::{decode_frame, encode_frame};
    use crate::codec::services::{NotifiedValue, PropertyValue, cov_notification};
    use std::sync::mpsc;
    use t3_plugin_abi::QUALITY_GOOD_LOCAL_OVERRIDE;

    fn notification(process_id: u32, value: f32) -> Vec<u8> {
        let v = |property, value| NotifiedValue {
            property,
            index: None,
            value: PropertyValue { values: vec![value], skipped: 0 },
        };
        cov_notification(&CovNotification {
            process_id,
            device: ObjectId::new(8, 1),
            object: ObjectId::new(0, 1),
            time_remaining: 100,
            values: vec![
                v(property::PRESENT_VALUE, Value::Real(value)),
                v(property::STATUS_FLAGS, Value::BitString(vec![false, false, true, false])),
            ],
        })
    }

    #[test]
    fn confirmed_notifications_are_acknowledged_and_pushed_and_strangers_ignored() {
        let device = UdpSocket::bind("127.0.0.1:0").unwrap();
        let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
        let SocketAddr::V4(device_addr) = device.local_addr().unwrap() else { panic!("not IPv4") };
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let ours = socket.local_addr().unwrap();
        let mut client = Client::new(socket, device_addr, Duration::from_millis(500), 0);
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        let mut d = Dispatcher {
            targets: [(ObjectId::new(0, 1), (Kind::Analog, vec![4, 9]))].into(),
            sink: Arc::new(move |s: &[Sample]| s.iter().for_each(|x| tx.lock().unwrap().send(*x).unwrap())),
            process_id: 7,
            peer: device_addr,
            stats: Arc::default(),
        };
        let request = |invoke_id, data: &[u8]| {
            encode_frame(
                false,
                &Apdu::ConfirmedRequest {
                    segmented: false,
                    more_follows: false,
                    segmented_response_accepted: false,
                    max_segments: 0,
                    max_apdu: 5,
                    invoke_id,
                    sequence: 0,
                    window: 0,
                    service: confirmed::CONFIRMED_COV_NOTIFICATION,
                    data,
                },
            )
        };
        // Another subscriber's notification, one from another address, then ours.
        device.send_to(&request(41, &notification(8, 1.0)), ours).unwrap();
        stranger.send_to(&request(40, &notification(7, 2.0)), ours).unwrap();
        device.send_to(&request(42, &notification(7, 3.5)), ours).unwrap();
        client.poll(Duration::from_millis(300), &mut |c, f, a| d.handle(c, f, a)).unwrap();
        let pushed: Vec<Sample> = rx.try_iter().collect();
        assert_eq!(
            pushed.iter().map(|s| (s.point, s.value, s.quality)).collect::<Vec<_>>(),
            [(4, 3.5, QUALITY_GOOD_LOCAL_OVERRIDE), (9, 3.5, QUALITY_GOOD_LOCAL_OVERRIDE)]
        );
        // Both of the device's confirmed notifications are acknowledged (the device would resend
        // them otherwise); the stranger gets nothing.
        device.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        let mut buf = [0u8; 64];
        for invoke_id in [41, 42] {
            let (n, _) = device.recv_from(&mut buf).unwrap();
            let frame = decode_frame(&buf[..n]).unwrap().unwrap();
            assert_eq!(frame.apdu, Apdu::SimpleAck { invoke_id, service: confirmed::CONFIRMED_COV_NOTIFICATION });
        }
        stranger.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        assert!(stranger.recv_from(&mut buf).is_err());
    }
}
