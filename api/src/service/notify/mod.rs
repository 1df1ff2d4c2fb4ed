//! Outbound alarm notifications: every alarm transition published by the alarm service
//! ([`AlarmService::subscribe`], the server's own faults included) is offered to each channel of
//! `[alerts]` that takes it ([`plan::routes`]), folded into a digest when many come at once and
//! held to the channel's rate limits ([`plan::ChannelPlan`]), then delivered by the channel's own
//! task: a webhook ([`webhook`]) or an e-mail ([`smtp`]), with retries and a doubling backoff.
//!
//! Each channel has a bounded queue; a message that finds it full is dropped and counted, so a slow
//! or dead endpoint never holds up the alarm service or another channel. What happened to every
//! message is kept in a delivery log in memory (the newest `alerts.log_entries`; it starts empty at
//! each start) with counters per channel for `GET /metrics`. [`Notifier::reconfigure`] swaps the
//! channels while running; a channel that keeps its name keeps its digest window, rate-limit
//! history and counters, and a removed one sends what it held at once.
//!
//! Messages name each alarm's point and device as the injected [`message::Names`] finds them, and
//! the site (`alerts.site`). At a graceful shutdown [`Notifier::shutdown`] sends every held alarm
//! at once and gives the queues `alerts.shutdown_grace_secs` to empty, then logs what is left.

pub mod message;
pub mod plan;
pub mod smtp;
pub mod tls;
pub mod webhook;

use crate::model::alarm::AlarmEvent;
use crate::model::alert::{AlertChannel, AlertDelivery};
use crate::service::alarms::AlarmService;
use message::{Context, Names};
use parking_lot::Mutex;
use plan::{ChannelPlan, DigestRule, Message, Outcome};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;
use t3_core::clock::Clock;
use t3_core::config::{AlertsConfig, ChannelConfig, RuleRef, SmtpConfig};
use tokio::sync::{broadcast, mpsc, watch};

/// Why a request to the notifier was refused.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("no alert channel named \"{0}\"")]
    UnknownChannel(String),
}

/// Where a channel sends.
#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Webhook,
    Email(SmtpConfig),
}

/// A channel's settings, shared by its plan and its delivery task.
#[derive(Debug, PartialEq)]
struct Endpoint {
    cfg: ChannelConfig,
    kind: Kind,
}

impl Endpoint {
    fn kind_name(&self) -> &'static str {
        match self.kind {
            Kind::Webhook => "webhook",
            Kind::Email(_) => "email",
        }
    }
}

/// Counters of one channel since start (kept by name across reconfigurations).
#[derive(Debug, Default)]
struct Stats {
    sent: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    rate_limited: AtomicU64,
    last_failure: Mutex<Option<(i64, String)>>,
}

/// A message waiting in a channel's queue.
#[derive(Debug)]
struct Job {
    id: u64,
    message: Message,
    /// `alerts.site` when it was queued.
    site: Arc<str>,
    /// When it was queued (epoch microseconds): an e-mail's `Date` and `Message-ID`, the same at
    /// every attempt.
    made_us: i64,
}

#[derive(Debug)]
struct Channel {
    ep: Arc<Endpoint>,
    plan: ChannelPlan,
    queue: mpsc::Sender<Job>,
    /// Messages queued or being delivered (with their retries): a shutdown waits for 0.
    pending: Arc<watch::Sender<usize>>,
    stats: Arc<Stats>,
}

#[derive(Debug)]
struct State {
    digest: DigestRule,
    queue: usize,
    site: Arc<str>,
    /// `alerts.shutdown_grace_secs`.
    grace: Duration,
    channels: Vec<Channel>,
}

/// The counters of one channel, for `GET /metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelCounters {
    pub channel: String,
    pub sent: u64,
    pub failed: u64,
    pub dropped: u64,
    pub rate_limited: u64,
    /// Messages waiting in its queue (0 for a channel no longer configured).
    pub queued: usize,
}

/// The notifier (see the module documentation).
pub struct Notifier {
    clock: Arc<dyn Clock>,
    /// The names of points and devices, for the messages.
    names: Arc<dyn Names>,
    /// Set at shutdown: the digest windows are closed and retries wait no more.
    stopping: watch::Sender<bool>,
    /// The clients, built on the trust of `alerts.ca_file` ([`Notifier::set_trust`]).
    transport: Mutex<Arc<tls::Transport>>,
    state: Mutex<State>,
    log: Mutex<(VecDeque<AlertDelivery>, usize)>,
    next_id: AtomicU64,
    stats: Mutex<BTreeMap<String, Arc<Stats>>>,
    /// Alarm transitions missed because the notifier fell behind the alarm service's broadcast.
    missed: AtomicU64,
    /// The alarm service it follows (from [`Notifier::spawn`]): what a channel's `rules` name is
    /// checked against.
    alarms: std::sync::OnceLock<Arc<AlarmService>>,
    me: Weak<Notifier>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier").field("channels", &self.state.lock().channels.len()).finish()
    }
}

/// An entry of a channel's `rules` as written: an id or a name.
fn rule_text(r: &RuleRef) -> String {
    match r {
        RuleRef::Id(id) => id.to_string(),
        RuleRef::Name(n) => n.clone(),
    }
}

/// The wait before retry `n` (1-based): `backoff_ms` doubled `n - 1` times, at most an hour.
fn backoff(cfg: &ChannelConfig, n: u32) -> Duration {
    let ms = cfg.backoff_ms.saturating_mul(1u64 << (n.saturating_sub(1)).min(20));
    Duration::from_millis(ms.min(3_600_000))
}

impl Notifier {
    /// A notifier with the channels of `cfg`, naming points and devices with `names`; call within
    /// a Tokio runtime (each channel's delivery task is spawned).
    pub fn new(cfg: &AlertsConfig, clock: Arc<dyn Clock>, names: Arc<dyn Names>) -> Arc<Notifier> {
        let transport = tls::Transport::new(cfg.ca_file.as_deref()).unwrap_or_else(|e| {
            // The file was checked with the configuration; it changed since.
            tracing::error!(error = %e, "alerts.ca_file: only the built-in root certificates are trusted");
            tls::Transport::new(None).expect("the built-in roots make a transport")
        });
        let me = Arc::new_cyclic(|me| Notifier {
            clock,
            names,
            stopping: watch::Sender::new(false),
            transport: Mutex::new(Arc::new(transport)),
            state: Mutex::new(State {
                digest: DigestRule { after: 1, window_us: 1 },
                queue: 1,
                site: Arc::from(""),
                grace: Duration::ZERO,
                channels: Vec::new(),
            }),
            log: Mutex::new((VecDeque::new(), cfg.log_entries)),
            next_id: AtomicU64::new(1),
            stats: Mutex::default(),
            missed: AtomicU64::new(0),
            alarms: std::sync::OnceLock::new(),
            me: me.clone(),
        });
        me.reconfigure(cfg);
        me
    }

    /// Applies new `[alerts]` settings (already validated). A channel whose name and settings are
    /// unchanged goes on as it is; one whose name stays keeps its digest window, held alarms, rate
    /// history and counters (messages already queued go out with the old settings); a removed
    /// channel sends what it held at once, and its task ends when its queue is empty.
    pub fn reconfigure(&self, cfg: &AlertsConfig) {
        if let Some(smtp) =
            cfg.smtp.as_ref().filter(|s| s.tls == t3_core::config::SmtpTls::None && !s.username.is_empty())
        {
            let local =
                smtp.host == "localhost" || smtp.host.parse::<std::net::IpAddr>().is_ok_and(|a| a.is_loopback());
            if !local {
                tracing::warn!(host = %smtp.host, "alerts.smtp: tls = \"none\" sends the SMTP password in plain text over the network");
            }
        }
        let now = self.clock.now_us();
        let mut st = self.state.lock();
        st.site = Arc::from(cfg.site.as_str());
        st.grace = Duration::from_secs(cfg.shutdown_grace_secs);
        st.digest = DigestRule {
            after: cfg.digest_after,
            window_us: i64::try_from(cfg.digest_window_secs).unwrap_or(i64::MAX / 2).saturating_mul(1_000_000),
        };
        let queue_changed = st.queue != cfg.queue;
        st.queue = cfg.queue;
        let mut old: Vec<Channel> = std::mem::take(&mut st.channels);
        let wanted = cfg
            .webhook
            .iter()
            .map(|c| (c, Kind::Webhook))
            .chain(cfg.email.iter().filter_map(|c| cfg.smtp.as_ref().map(|s| (c, Kind::Email(s.clone())))));
        for (c, kind) in wanted {
            let ep = Endpoint { cfg: c.clone(), kind };
            let same_name = old.iter().position(|o| o.ep.cfg.name == c.name);
            let channel = match same_name.map(|i| old.swap_remove(i)) {
                Some(o) if *o.ep == ep && !queue_changed => o,
                previous => {
                    let plan = previous.map(|o| o.plan).unwrap_or_default();
                    self.start_channel(ep, plan, cfg.queue)
                }
            };
            st.channels.push(channel);
        }
        let site = st.site.clone();
        drop(st);
        for mut removed in old {
            let held = removed.plan.flush(now).map(Outcome::Send);
            self.dispatch(&removed, held.into_iter().collect(), &site, now);
        }
        self.log.lock().1 = cfg.log_entries;
        tracing::info!(channels = self.state.lock().channels.len(), "alert channels configured");
        self.warn_unmatched();
    }

    /// The entries of a channel's `rules` that name no alarm this server has now (none before
    /// [`Notifier::spawn`]).
    fn unmatched(&self, c: &ChannelConfig) -> Vec<String> {
        let Some(alarms) = self.alarms.get() else { return Vec::new() };
        c.rules.iter().filter(|r| !alarms.names_an_alarm(r)).map(rule_text).collect()
    }

    /// Logs, per channel, the entries of its `rules` that name no alarm: a typo there would
    /// otherwise keep every alarm from the channel without a word.
    fn warn_unmatched(&self) {
        let channels: Vec<ChannelConfig> = self.state.lock().channels.iter().map(|c| c.ep.cfg.clone()).collect();
        for c in channels {
            let unmatched = self.unmatched(&c);
            if !unmatched.is_empty() {
                tracing::warn!(
                    channel = %c.name,
                    rules = %unmatched.join(", "),
                    "alert channel: these entries of its rules name no alarm rule or server alarm (a typo, or a rule not made yet?); the channel takes only the alarms its rules name"
                );
            }
        }
    }

    /// Reads `alerts.ca_file` again (a reload calls it every time, so a replaced file at the same
    /// path is read); on failure the trust in force stays and the error is returned.
    pub fn set_trust(&self, ca_file: Option<&std::path::Path>) -> Result<(), String> {
        let transport = tls::Transport::new(ca_file)?;
        *self.transport.lock() = Arc::new(transport);
        Ok(())
    }

    fn start_channel(&self, ep: Endpoint, plan: ChannelPlan, queue: usize) -> Channel {
        let stats = self.stats.lock().entry(ep.cfg.name.clone()).or_default().clone();
        let (tx, rx) = mpsc::channel(queue.max(1));
        let ep = Arc::new(ep);
        let pending = Arc::new(watch::Sender::new(0));
        let task = Delivery {
            me: self.me.clone(),
            ep: ep.clone(),
            stats: stats.clone(),
            pending: pending.clone(),
            stopping: self.stopping.subscribe(),
        };
        tokio::spawn(task.run(rx));
        Channel { ep, plan, queue: tx, pending, stats }
    }

    /// Follows the alarm service's transitions and closes digest windows every second, until the
    /// notifier goes away.
    pub fn spawn(self: &Arc<Self>, alarms: &Arc<AlarmService>) {
        let mut events = alarms.subscribe();
        if self.alarms.set(alarms.clone()).is_ok() {
            self.warn_unmatched();
        }
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    e = events.recv() => {
                        let Some(me) = me.upgrade() else { return };
                        match e {
                            Ok(e) => me.offer(e),
                            Err(broadcast::error::RecvError::Lagged(n)) => {
                                me.missed.fetch_add(n, Ordering::Relaxed);
                                tracing::warn!(transitions = n, "the notifier fell behind the alarm service; transitions not notified");
                            }
                            Err(broadcast::error::RecvError::Closed) => return,
                        }
                    }
                    _ = tick.tick() => {
                        let Some(me) = me.upgrade() else { return };
                        me.tick();
                    }
                }
            }
        });
    }

    /// Offers one alarm transition to every channel that takes it. Once the server is shutting
    /// down, nothing is held: what a channel would hold goes out at once.
    pub fn offer(&self, e: AlarmEvent) {
        let now = self.clock.now_us();
        let mut st = self.state.lock();
        // Read under the lock `shutdown` sets it under: no alarm is held after its flush.
        let stopping = *self.stopping.borrow();
        let (digest, site) = (st.digest, st.site.clone());
        for ch in st.channels.iter_mut() {
            if plan::routes(&ch.ep.cfg, &e) {
                let mut out = ch.plan.offer(&ch.ep.cfg, digest, now, e.clone());
                if stopping {
                    out.retain(|o| matches!(o, Outcome::Send(_)));
                    out.extend(ch.plan.flush(now).map(Outcome::Send));
                }
                self.dispatch(ch, out, &site, now);
            }
        }
    }

    /// Closes the digest windows that have ended, and lets out what the rate limits held back
    /// once they allow it.
    pub fn tick(&self) {
        let now = self.clock.now_us();
        let mut st = self.state.lock();
        let (digest, site) = (st.digest, st.site.clone());
        for ch in st.channels.iter_mut() {
            let out = ch.plan.tick(&ch.ep.cfg, digest, now);
            self.dispatch(ch, out, &site, now);
        }
    }

    /// The graceful end (the server got SIGTERM): every channel sends what it holds at once, as
    /// one message past its rate limits, and retries wait no more; then the queues have
    /// `alerts.shutdown_grace_secs` (at most until `deadline`) to empty. What is still queued or
    /// being sent then, and what failed meanwhile, is logged at warn per channel. Alarms offered
    /// meanwhile go out at once too.
    pub async fn shutdown(&self, deadline: tokio::time::Instant) {
        let now = self.clock.now_us();
        let (mut channels, grace) = {
            let mut st = self.state.lock();
            // Counted before the retries stop waiting, so every failure from here on is counted.
            let channels: Vec<_> = st
                .channels
                .iter()
                .map(|ch| {
                    let failed = ch.stats.failed.load(Ordering::Relaxed);
                    (ch.ep.cfg.name.clone(), ch.pending.subscribe(), ch.stats.clone(), failed)
                })
                .collect();
            self.stopping.send_replace(true);
            let site = st.site.clone();
            for ch in st.channels.iter_mut() {
                let held = ch.plan.flush(now).map(Outcome::Send);
                self.dispatch(ch, held.into_iter().collect(), &site, now);
            }
            (channels, st.grace)
        };
        let queued: usize = channels.iter().map(|c| *c.1.borrow()).sum();
        if queued > 0 {
            tracing::info!(
                messages = queued,
                grace_secs = grace.as_secs(),
                "shutting down: sending the alert messages"
            );
        }
        let all_sent = async {
            for (_, pending, ..) in channels.iter_mut() {
                let _ = pending.wait_for(|&n| n == 0).await;
            }
        };
        let _ = tokio::time::timeout_at(deadline.min(tokio::time::Instant::now() + grace), all_sent).await;
        for (name, pending, stats, failed_before) in channels {
            let unsent = *pending.borrow();
            let failed = stats.failed.load(Ordering::Relaxed).saturating_sub(failed_before);
            if unsent > 0 || failed > 0 {
                tracing::warn!(
                    channel = %name,
                    undelivered = unsent as u64 + failed,
                    unsent,
                    failed,
                    "shutting down: alert messages not delivered (unsent: still queued or being sent when alerts.shutdown_grace_secs ran out)"
                );
            }
        }
    }

    /// Queues what a plan let out, or logs it as rate limited or dropped.
    fn dispatch(&self, ch: &Channel, out: Vec<Outcome>, site: &Arc<str>, now: i64) {
        for o in out {
            match o {
                Outcome::Send(m) => {
                    let id = self.log_new(&ch.ep, &m, site, "queued", now);
                    ch.pending.send_modify(|n| *n += 1);
                    if ch.queue.try_send(Job { id, message: m, site: site.clone(), made_us: now }).is_err() {
                        ch.pending.send_modify(|n| *n = n.saturating_sub(1));
                        ch.stats.dropped.fetch_add(1, Ordering::Relaxed);
                        self.log_update(id, |d| {
                            d.status = "dropped".into();
                            d.last_error = Some("the channel's queue is full (alerts.queue)".into());
                            d.finished_us = Some(now);
                        });
                        tracing::warn!(channel = %ch.ep.cfg.name, "alert queue full; message dropped");
                    }
                }
                Outcome::RateLimited(m) => {
                    ch.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
                    let id = self.log_new(&ch.ep, &m, site, "rate_limited", now);
                    self.log_update(id, |d| d.finished_us = Some(now));
                }
                Outcome::Dropped(m) => {
                    ch.stats.dropped.fetch_add(1, Ordering::Relaxed);
                    let id = self.log_new(&ch.ep, &m, site, "dropped", now);
                    let why = format!("the channel holds at most {} alarms for later; the oldest went", plan::MAX_HELD);
                    self.log_update(id, |d| {
                        d.last_error = Some(why);
                        d.finished_us = Some(now);
                    });
                    tracing::warn!(channel = %ch.ep.cfg.name, held = plan::MAX_HELD, "alert channel holds too many alarms; the oldest dropped");
                }
            }
        }
    }

    /// Sends a test message to channel `name` now, one attempt, past its routing, digest and rate
    /// limits; logged and counted like any message. Returns its delivery.
    pub async fn test(&self, name: &str) -> Result<AlertDelivery, NotifyError> {
        let (ep, stats, site) = {
            let st = self.state.lock();
            let ch = st
                .channels
                .iter()
                .find(|c| c.ep.cfg.name == name)
                .ok_or_else(|| NotifyError::UnknownChannel(name.to_owned()))?;
            (ch.ep.clone(), ch.stats.clone(), st.site.clone())
        };
        let message = Message::Test;
        let now = self.clock.now_us();
        let id = self.log_new(&ep, &message, &site, "queued", now);
        let cx = Context::new(&site, &*self.names, &message);
        let mut tries = Tries { n: 1, of: 1, rcpt: None, delivered: false, refused: Vec::new(), made_us: now };
        self.attempt_and_log(&ep, &stats, id, &message, &cx, &mut tries).await;
        Ok(self.delivery(id).expect("the test delivery was just logged"))
    }

    /// One attempt of a delivery (`tries.n` of `tries.of`), logged and counted. True when done:
    /// delivered (to some recipients of an e-mail: the refused ones are its `last_error` and a
    /// warning), or not and no attempt is left. Recipients a mail server refused for now (4xx)
    /// while it took the message for others are tried again, alone, while attempts are left.
    async fn attempt_and_log(
        &self,
        ep: &Endpoint,
        stats: &Stats,
        id: u64,
        m: &Message,
        cx: &Context,
        tries: &mut Tries,
    ) -> bool {
        let (n, of) = (tries.n, tries.of);
        self.log_update(id, |d| {
            d.status = "sending".into();
            d.attempts = n;
        });
        let result = self.attempt(ep, id, m, cx, tries).await;
        let now = self.clock.now_us();
        match result {
            Ok(refused) => {
                if !std::mem::replace(&mut tries.delivered, true) {
                    stats.sent.fetch_add(1, Ordering::Relaxed);
                }
                // Refused for now, with an attempt left: tried again, alone.
                let (later, gone): (Vec<smtp::Refused>, Vec<smtp::Refused>) =
                    refused.into_iter().partition(|r| r.temporary() && n < of);
                tries.refused.extend(gone.iter().map(smtp::Refused::to_string));
                let mut said = Vec::new();
                if !tries.refused.is_empty() {
                    said.push(format!("recipients refused: {}", tries.refused.join("; ")));
                }
                if !later.is_empty() {
                    let each: Vec<String> = later.iter().map(smtp::Refused::to_string).collect();
                    said.push(format!("refused for now, tried again: {}", each.join("; ")));
                }
                let warning = (!said.is_empty()).then(|| said.join("; "));
                let later: Vec<String> = later.into_iter().map(|r| r.to).collect();
                if let Some(w) = &warning {
                    tracing::warn!(channel = %ep.cfg.name, delivery = id, attempt = n, of, "alert sent, but {w}");
                    *stats.last_failure.lock() = Some((now, w.clone()));
                }
                let done = later.is_empty();
                self.log_update(id, |d| {
                    d.status = if done { "sent" } else { "retrying" }.into();
                    d.last_error = warning;
                    if done {
                        d.finished_us = Some(now);
                    }
                });
                tries.rcpt = Some(later);
                done
            }
            Err(error) => {
                let last = n >= of;
                // Sent to some recipients before, and those left were not taken this time.
                let partly = tries.delivered;
                if last && !partly {
                    stats.failed.fetch_add(1, Ordering::Relaxed);
                }
                let error = match (partly, tries.refused.is_empty()) {
                    (false, _) => error,
                    (true, true) => format!("sent to the others; not to these: {error}"),
                    (true, false) => {
                        format!(
                            "sent to the others; recipients refused: {}; not to these: {error}",
                            tries.refused.join("; ")
                        )
                    }
                };
                tracing::warn!(channel = %ep.cfg.name, attempt = n, of, error = %error, "alert delivery failed");
                *stats.last_failure.lock() = Some((now, error.clone()));
                self.log_update(id, |d| {
                    d.status = match (last, partly) {
                        (false, _) => "retrying",
                        (true, true) => "sent",
                        (true, false) => "failed",
                    }
                    .into();
                    d.last_error = Some(error);
                    if last {
                        d.finished_us = Some(now);
                    }
                });
                last
            }
        }
    }

    /// One attempt, within the channel's timeout, to every recipient of an e-mail channel or
    /// only to `tries.rcpt`. `Ok` lists the recipients the mail server refused while it took the
    /// message for the others.
    async fn attempt(
        &self,
        ep: &Endpoint,
        id: u64,
        m: &Message,
        cx: &Context,
        tries: &Tries,
    ) -> Result<Vec<smtp::Refused>, String> {
        let now = self.clock.now_us();
        let timeout = Duration::from_millis(ep.cfg.timeout_ms);
        let subject = message::subject(&cx.site, m);
        let transport = self.transport.lock().clone();
        match &ep.kind {
            Kind::Webhook => {
                let body = message::webhook_body(&ep.cfg.name, id, m, cx, now);
                webhook::post(&transport.http, &ep.cfg.url, ep.cfg.secret.expose(), id, now, body, timeout)
                    .await
                    .map(|()| Vec::new())
            }
            Kind::Email(smtp) => {
                let text = message::text(&ep.cfg.name, m, cx);
                let mail = smtp::Mail { to: &ep.cfg.to, subject: &subject, text: &text, id, made_us: tries.made_us };
                let rcpt = tries.rcpt.as_deref().unwrap_or(&ep.cfg.to);
                match tokio::time::timeout(timeout, smtp::send(smtp, &transport.tls, &mail, rcpt)).await {
                    Ok(result) => result,
                    Err(_) => Err(format!("{}:{}: no answer within {} ms", smtp.host, smtp.port, ep.cfg.timeout_ms)),
                }
            }
        }
    }

    fn log_new(&self, ep: &Endpoint, m: &Message, site: &str, status: &str, now: i64) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let d = AlertDelivery {
            id,
            channel: ep.cfg.name.clone(),
            channel_kind: ep.kind_name().into(),
            kind: m.kind().into(),
            rule_ids: m.events().iter().map(|e| e.rule_id).collect(),
            subject: message::subject(site, m),
            status: status.into(),
            attempts: 0,
            last_error: None,
            created_us: now,
            finished_us: None,
        };
        let mut log = self.log.lock();
        log.0.push_back(d);
        while log.0.len() > log.1 {
            log.0.pop_front();
        }
        id
    }

    fn log_update(&self, id: u64, f: impl FnOnce(&mut AlertDelivery)) {
        if let Some(d) = self.log.lock().0.iter_mut().rev().find(|d| d.id == id) {
            f(d);
        }
    }

    fn delivery(&self, id: u64) -> Option<AlertDelivery> {
        self.log.lock().0.iter().rev().find(|d| d.id == id).cloned()
    }

    /// The delivery log, newest first: at most `limit`, of one channel and one status if given.
    pub fn deliveries(&self, channel: Option<&str>, status: Option<&str>, limit: usize) -> Vec<AlertDelivery> {
        self.log
            .lock()
            .0
            .iter()
            .rev()
            .filter(|d| channel.is_none_or(|c| d.channel == c) && status.is_none_or(|s| d.status == s))
            .take(limit)
            .cloned()
            .collect()
    }

    /// The configured channels with their settings (no secrets) and counters.
    pub fn channels(&self) -> Vec<AlertChannel> {
        let st = self.state.lock();
        st.channels
            .iter()
            .map(|ch| {
                let c = &ch.ep.cfg;
                let (target, signed) = match &ch.ep.kind {
                    Kind::Webhook => (webhook::shown_url(&c.url), !c.secret.is_empty()),
                    Kind::Email(_) => (c.to.join(", "), false),
                };
                let last_failure = ch.stats.last_failure.lock().clone();
                AlertChannel {
                    name: c.name.clone(),
                    kind: ch.ep.kind_name().into(),
                    target,
                    signed,
                    rules: c.rules.iter().map(rule_text).collect(),
                    unmatched_rules: self.unmatched(c),
                    min_severity: c.min_severity,
                    events: c.events.iter().map(|e| e.as_str().to_owned()).collect(),
                    max_per_minute: c.max_per_minute,
                    max_per_hour: c.max_per_hour,
                    sent: ch.stats.sent.load(Ordering::Relaxed),
                    failed: ch.stats.failed.load(Ordering::Relaxed),
                    dropped: ch.stats.dropped.load(Ordering::Relaxed),
                    rate_limited: ch.stats.rate_limited.load(Ordering::Relaxed),
                    queued: ch.queue.max_capacity() - ch.queue.capacity(),
                    held: ch.plan.held(),
                    last_delivery: self.deliveries(Some(&c.name), None, 1).pop(),
                    last_failure_us: last_failure.as_ref().map(|f| f.0),
                    last_error: last_failure.map(|f| f.1),
                }
            })
            .collect()
    }

    /// Every channel's counters since start, also of channels no longer configured.
    pub fn counters(&self) -> Vec<ChannelCounters> {
        let queued: BTreeMap<String, usize> = self
            .state
            .lock()
            .channels
            .iter()
            .map(|c| (c.ep.cfg.name.clone(), c.queue.max_capacity() - c.queue.capacity()))
            .collect();
        self.stats
            .lock()
            .iter()
            .map(|(name, s)| ChannelCounters {
                channel: name.clone(),
                sent: s.sent.load(Ordering::Relaxed),
                failed: s.failed.load(Ordering::Relaxed),
                dropped: s.dropped.load(Ordering::Relaxed),
                rate_limited: s.rate_limited.load(Ordering::Relaxed),
                queued: queued.get(name).copied().unwrap_or(0),
            })
            .collect()
    }

    /// Alarm transitions missed because the notifier fell behind.
    pub fn missed(&self) -> u64 {
        self.missed.load(Ordering::Relaxed)
    }
}

/// Where a message's delivery stands between its attempts.
struct Tries {
    /// This attempt's number, from 1, of `of`.
    n: u32,
    of: u32,
    /// The recipients to try (an e-mail's); `None`: all of the channel's.
    rcpt: Option<Vec<String>>,
    /// Delivered to someone at an earlier attempt (counted as sent then).
    delivered: bool,
    /// Recipients refused for good at earlier attempts, with the server's replies.
    refused: Vec<String>,
    /// When the message was made (see [`Job::made_us`]).
    made_us: i64,
}

/// A channel's delivery task.
struct Delivery {
    me: Weak<Notifier>,
    ep: Arc<Endpoint>,
    stats: Arc<Stats>,
    pending: Arc<watch::Sender<usize>>,
    stopping: watch::Receiver<bool>,
}

impl Delivery {
    /// Takes the queue in order, each message with its retries (at once, without the backoff,
    /// once the server is shutting down), until the channel is removed (its queue closed and
    /// empty) or the notifier goes away.
    async fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        while let Some(job) = rx.recv().await {
            let Some(notifier) = self.me.upgrade() else { return };
            // Looked up once per message, off the notifier's locks.
            let cx = Context::new(&job.site, &*notifier.names, &job.message);
            let of = self.ep.cfg.retries + 1;
            let mut tries = Tries { n: 1, of, rcpt: None, delivered: false, refused: Vec::new(), made_us: job.made_us };
            while !notifier.attempt_and_log(&self.ep, &self.stats, job.id, &job.message, &cx, &mut tries).await {
                tokio::select! {
                    _ = tokio::time::sleep(backoff(&self.ep.cfg, tries.n)) => {}
                    _ = self.stopping.wait_for(|&s| s) => {}
                }
                tries.n += 1;
            }
            self.pending.send_modify(|n| *n = n.saturating_sub(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::plan::tests::{T0, raised};
    use super::*;
    use t3_core::clock::ManualClock;

    fn webhook(name: &str, url: String) -> ChannelConfig {
        ChannelConfig { name: name.into(), url, retries: 2, backoff_ms: 10, ..Default::default() }
    }

    /// A port nothing listens on: privileged, so no other test can be given it by `bind(0)` in
    /// the meantime (a port freed by one test may be another's listener a moment later).
    const CLOSED_PORT: u16 = 1;

    async fn until(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !done() {
            assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Five alarms at once with `digest_after = 1`: the first alone, the other four as one digest
    /// when the window ends; a third message within the hour is over `max_per_hour = 2`. Both
    /// sent ones fail against a closed port after 1 + 2 attempts, visible in the log and counters.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_burst_is_digested_rate_limited_and_failures_are_logged() {
        let clock = ManualClock::new(T0);
        let url = format!("http://127.0.0.1:{}/hook/secret-path", CLOSED_PORT);
        let cfg = AlertsConfig {
            digest_after: 1,
            digest_window_secs: 60,
            webhook: vec![ChannelConfig { max_per_hour: 2, ..webhook("dead", url) }],
            ..Default::default()
        };
        let n = Notifier::new(&cfg, clock.clone(), Arc::new(message::NoNames));
        for id in 1..=5 {
            n.offer(raised(id));
        }
        assert_eq!(n.channels()[0].held, 4);
        clock.advance(60_000_000);
        n.tick();
        clock.advance(1_000_000);
        n.offer(raised(6));
        until("both deliveries to fail", || n.deliveries(None, Some("failed"), 10).len() == 2).await;

        let log = n.deliveries(None, None, 10);
        let kinds: Vec<(&str, &str, usize)> =
            log.iter().map(|d| (d.kind.as_str(), d.status.as_str(), d.rule_ids.len())).collect();
        assert_eq!(kinds, vec![("alarm", "rate_limited", 1), ("digest", "failed", 4), ("alarm", "failed", 1)]);
        assert_eq!(log[1].subject, "[T3000] 4 alarms");
        for d in &log[1..] {
            assert_eq!(d.attempts, 3);
            let e = d.last_error.as_deref().unwrap();
            assert!(e.contains("cannot connect") && !e.contains("secret-path"), "{e}");
        }
        let c = &n.counters()[0];
        assert_eq!((c.sent, c.failed, c.dropped, c.rate_limited), (0, 2, 0, 1));
        let view = &n.channels()[0];
        assert!(view.target.starts_with("http://127.0.0.1:") && !view.target.contains("secret"));
        assert!(view.last_error.is_some() && view.last_delivery.is_some());
    }

    /// A channel whose endpoint never answers holds its one queue slot; the rest are dropped and
    /// counted, and another channel is not held up.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_full_queue_drops_and_does_not_hold_up_other_channels() {
        let clock = ManualClock::new(T0);
        // Accepts connections (the kernel's backlog) but never answers.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let slow = format!("http://{}/", silent.local_addr().unwrap());
        let cfg = AlertsConfig {
            digest_after: 100,
            queue: 1,
            webhook: vec![
                ChannelConfig { timeout_ms: 30_000, ..webhook("slow", slow) },
                webhook("dead", format!("http://127.0.0.1:{}/", CLOSED_PORT)),
            ],
            ..Default::default()
        };
        let n = Notifier::new(&cfg, clock.clone(), Arc::new(message::NoNames));
        // One message in flight (or none yet) and one queued: at least three of five are dropped.
        for id in 1..=5 {
            n.offer(raised(id));
        }
        let slow_dropped = || n.counters().iter().find(|c| c.channel == "slow").unwrap().dropped;
        assert!(slow_dropped() >= 3, "dropped {}", slow_dropped());
        let dropped = n.deliveries(Some("slow"), Some("dropped"), 10);
        assert_eq!(dropped.len() as u64, slow_dropped());
        // The dead channel went through its own queue meanwhile.
        until("the dead channel's deliveries", || {
            n.deliveries(Some("dead"), Some("failed"), 10).len() + n.counters()[0].dropped as usize >= 5
        })
        .await;
    }

    /// A reconfiguration keeps a channel that keeps its name (and its counters), starts new ones
    /// and removes the rest; counters of a removed channel stay for the metrics.
    #[tokio::test(flavor = "multi_thread")]
    async fn reconfigure_swaps_channels_and_keeps_counters() {
        let clock = ManualClock::new(T0);
        let dead = format!("http://127.0.0.1:{}/", CLOSED_PORT);
        let one = AlertsConfig {
            webhook: vec![ChannelConfig { retries: 0, ..webhook("a", dead.clone()) }, webhook("b", dead.clone())],
            ..Default::default()
        };
        let n = Notifier::new(&one, clock.clone(), Arc::new(message::NoNames));
        n.offer(raised(1));
        until("a's delivery", || n.deliveries(Some("a"), Some("failed"), 1).len() == 1).await;
        let two = AlertsConfig {
            webhook: vec![
                ChannelConfig { retries: 0, min_severity: 2, ..webhook("a", dead.clone()) },
                webhook("c", dead),
            ],
            ..Default::default()
        };
        n.reconfigure(&two);
        let names: Vec<String> = n.channels().into_iter().map(|c| c.name).collect();
        assert_eq!(names, vec!["a", "c"]);
        let a = n.channels().into_iter().find(|c| c.name == "a").unwrap();
        assert_eq!((a.failed, a.min_severity), (1, 2));
        assert!(n.counters().iter().any(|c| c.channel == "b"), "b's counters stay");
        assert!(matches!(n.test("b").await, Err(NotifyError::UnknownChannel(_))));
        let t = n.test("c").await.unwrap();
        assert_eq!((t.kind.as_str(), t.status.as_str(), t.attempts), ("test", "failed", 1));
    }

    /// A webhook receiver that answers 200 to every request; the JSON bodies it got.
    async fn receiver() -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let got: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
        let seen = got.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let body = loop {
                        let mut chunk = [0u8; 4096];
                        let n = sock.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
                        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            break buf[end + 4..end + 4 + len].to_vec();
                        }
                    };
                    seen.lock().push(serde_json::from_slice(&body).unwrap());
                    let _ = sock.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
                });
            }
        });
        (url, got)
    }

    /// Rule `rule_id` cleared.
    fn cleared(rule_id: i64) -> AlarmEvent {
        let mut e = raised(rule_id);
        e.transition.kind = t3_core::alarm::TransitionKind::Cleared;
        e.transition.to = t3_core::alarm::AlarmState::Cleared;
        e
    }

    /// The tester's case: a graceful shutdown 1 s after five alarms at once (`digest_after = 3`,
    /// a 60 s window): the two held alarms go out at once as a digest, and `shutdown` returns once
    /// every message is delivered, long before its deadline.
    #[tokio::test(flavor = "multi_thread")]
    async fn shutdown_sends_the_held_alarms_and_waits_for_the_queue() {
        let clock = ManualClock::new(T0);
        let (url, got) = receiver().await;
        let cfg = AlertsConfig {
            digest_after: 3,
            digest_window_secs: 60,
            webhook: vec![webhook("ok", url)],
            ..Default::default()
        };
        let n = Notifier::new(&cfg, clock.clone(), Arc::new(message::NoNames));
        for id in 1..=5 {
            n.offer(raised(id));
        }
        assert_eq!(n.channels()[0].held, 2);
        clock.advance(1_000_000);
        let far = tokio::time::Instant::now() + Duration::from_secs(60);
        let started = std::time::Instant::now();
        n.shutdown(far).await;
        assert!(started.elapsed() < Duration::from_secs(30), "returned when the queue was empty");
        let sent = n.deliveries(Some("ok"), Some("sent"), 10);
        let kinds: Vec<(&str, Vec<i64>)> = sent.iter().map(|d| (d.kind.as_str(), d.rule_ids.clone())).collect();
        assert_eq!(kinds[0], ("digest", vec![4, 5]), "{kinds:?}");
        assert_eq!(kinds.len(), 4, "{kinds:?}");
        assert_eq!(got.lock().len(), 4);
        assert_eq!(n.channels()[0].held, 0);
        // Alarms offered while stopping are not held either.
        for id in 6..=9 {
            n.offer(raised(id));
        }
        assert_eq!(n.channels()[0].held, 0);
        until("the alarms offered while stopping", || n.deliveries(Some("ok"), Some("sent"), 10).len() == 8).await;
    }

    /// A message whose endpoint never answers holds the shutdown up only until its deadline; a
    /// retry's backoff is not waited for once stopping.
    #[tokio::test(flavor = "multi_thread")]
    async fn shutdown_gives_up_at_its_deadline_and_cuts_backoffs() {
        let clock = ManualClock::new(T0);
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let cfg = AlertsConfig {
            webhook: vec![
                ChannelConfig {
                    timeout_ms: 600_000,
                    ..webhook("silent", format!("http://{}/", silent.local_addr().unwrap()))
                },
                ChannelConfig {
                    retries: 2,
                    backoff_ms: 3_600_000,
                    ..webhook("dead", format!("http://127.0.0.1:{}/", CLOSED_PORT))
                },
            ],
            ..Default::default()
        };
        let n = Notifier::new(&cfg, clock.clone(), Arc::new(message::NoNames));
        n.offer(raised(1));
        until("the first failed attempt", || n.deliveries(Some("dead"), Some("retrying"), 1).len() == 1).await;
        n.shutdown(tokio::time::Instant::now() + Duration::from_millis(300)).await;
        // The dead channel's retries ran at once, without their hour of backoff.
        let dead = n.deliveries(Some("dead"), None, 1);
        assert_eq!((dead[0].status.as_str(), dead[0].attempts), ("failed", 3), "{dead:?}");
        assert_eq!(n.deliveries(Some("silent"), Some("sending"), 1).len(), 1, "still waiting for an answer");
    }

    /// The tester's case: with `max_per_minute = 2`, cleared, cleared, raised: the alarm coming
    /// back is held back, not lost, and sent once the minute allows.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_message_over_the_rate_limit_is_sent_when_the_limit_allows() {
        let clock = ManualClock::new(T0);
        let (url, got) = receiver().await;
        let cfg = AlertsConfig {
            digest_after: 100,
            webhook: vec![ChannelConfig { max_per_minute: 2, ..webhook("ok", url) }],
            ..Default::default()
        };
        let n = Notifier::new(&cfg, clock.clone(), Arc::new(message::NoNames));
        n.offer(cleared(259));
        n.offer(cleared(260));
        n.offer(raised(259));
        assert_eq!((n.channels()[0].held, n.counters()[0].rate_limited), (1, 1));
        assert_eq!(n.deliveries(None, Some("rate_limited"), 10).len(), 1);
        clock.advance(59_000_000);
        n.tick();
        assert_eq!(n.channels()[0].held, 1, "two messages in the last minute");
        clock.advance(1_000_000);
        n.tick();
        assert_eq!(n.channels()[0].held, 0);
        until("three messages", || got.lock().len() == 3).await;
        let last = got.lock().iter().find(|b| b["alarms"][0]["event"] == "raised").cloned().unwrap();
        assert_eq!(last["alarms"][0]["rule_id"], 259);
    }

    /// Point 1 is `VAR1` of `ahu`, labelled `Boiler supply`, in °C.
    struct Plant;

    impl Names for Plant {
        fn point(&self, id: u32) -> Option<message::PointInfo> {
            (id == 1).then(|| message::PointInfo {
                name: "VAR1".into(),
                label: Some("Boiler supply".into()),
                device: Some("ahu".into()),
                units: Some("°C".into()),
            })
        }
        fn device(&self, _: i64) -> Option<String> {
            None
        }
    }

    /// The site and the point's names reach the webhook, and a new `alerts.site` applies to the
    /// next message.
    #[tokio::test(flavor = "multi_thread")]
    async fn messages_carry_the_site_and_the_points_names_and_a_reload_changes_the_site() {
        let clock = ManualClock::new(T0);
        let (url, got) = receiver().await;
        let mut cfg = AlertsConfig { site: "Main St".into(), webhook: vec![webhook("ok", url)], ..Default::default() };
        let n = Notifier::new(&cfg, clock.clone(), Arc::new(Plant));
        n.offer(raised(1));
        until("the first message", || got.lock().len() == 1).await;
        let v = got.lock()[0].clone();
        assert_eq!(
            (v["site"].as_str(), v["subject"].as_str()),
            (Some("Main St"), Some("[T3000 Main St] ACTIVE high: r1"))
        );
        let a = &v["alarms"][0];
        assert_eq!(
            (a["point_name"].as_str(), a["point_label"].as_str(), a["device_name"].as_str(), a["units"].as_str()),
            (Some("VAR1"), Some("Boiler supply"), Some("ahu"), Some("°C"))
        );
        cfg.site = "Depot".into();
        n.reconfigure(&cfg);
        n.offer(raised(2));
        until("the second message", || got.lock().len() == 2).await;
        assert_eq!(got.lock()[1]["subject"], "[T3000 Depot] ACTIVE high: r2");
        assert_eq!(n.deliveries(None, None, 1)[0].subject, "[T3000 Depot] ACTIVE high: r2");
    }
}
