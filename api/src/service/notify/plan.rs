//! What a channel sends and when, without I/O: which alarms it takes ([`routes`]), the digest
//! window that folds a burst of alarms into one message, and the rate limits. Every decision takes
//! the time as an argument, so the tests drive it with made-up times.

use crate::model::alarm::AlarmEvent;
use std::collections::VecDeque;
use t3_core::alarm::TransitionKind;
use t3_core::config::{AlertEvent, ChannelConfig, RuleRef};

const MINUTE_US: i64 = 60_000_000;
const HOUR_US: i64 = 60 * MINUTE_US;
/// At most this many alarms a channel holds for later (a digest, or back by its rate limits);
/// past it, in an alarm storm, the oldest are dropped, so memory and the one message that carries
/// them stay bounded.
pub const MAX_HELD: usize = 1_000;

/// The kind of transition an alarm event is, as channels choose them.
pub fn event_kind(e: &AlarmEvent) -> AlertEvent {
    match e.transition.kind {
        TransitionKind::Raised => AlertEvent::Raised,
        TransitionKind::LevelChanged { .. } => AlertEvent::LevelChanged,
        TransitionKind::Cleared | TransitionKind::Normal => AlertEvent::Cleared,
        TransitionKind::Acknowledged { .. } => AlertEvent::Acknowledged,
    }
}

/// Whether channel `c` takes alarm event `e`: its rule is listed (by id or name) or none are, its
/// severity is high enough, and its kind of transition is chosen.
pub fn routes(c: &ChannelConfig, e: &AlarmEvent) -> bool {
    let rule_ok = c.rules.is_empty()
        || c.rules.iter().any(|r| match r {
            RuleRef::Id(id) => *id == e.rule_id,
            RuleRef::Name(n) => *n == e.name,
        });
    rule_ok && e.transition.level.severity() >= c.min_severity && c.events.contains(&event_kind(e))
}

/// A message for one channel: one alarm, several (a digest), or a test.
#[derive(Debug, Clone)]
pub enum Message {
    Alarm(Box<AlarmEvent>),
    Digest(Vec<AlarmEvent>),
    Test,
}

impl Message {
    /// `alarm`, `digest` or `test`.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Alarm(_) => "alarm",
            Message::Digest(_) => "digest",
            Message::Test => "test",
        }
    }

    /// The alarms in it.
    pub fn events(&self) -> &[AlarmEvent] {
        match self {
            Message::Alarm(e) => std::slice::from_ref(e),
            Message::Digest(v) => v,
            Message::Test => &[],
        }
    }
}

/// What became of a message the plan let out.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// To be delivered.
    Send(Message),
    /// Over the rate limit: held back (logged and counted); its alarms go out in one message as
    /// soon as the limit allows again.
    RateLimited(Message),
    /// Held alarms past [`MAX_HELD`], the oldest: never sent (logged and counted).
    Dropped(Message),
}

/// The digest and rate-limit state of one channel.
#[derive(Debug, Default)]
pub struct ChannelPlan {
    /// When the present digest window started, if one is open.
    window_start: Option<i64>,
    /// Alarms sent one by one in the present window.
    sent_in_window: u32,
    /// Alarms held for the digest at the window's end.
    held: Vec<AlarmEvent>,
    /// Alarms of messages held back by the rate limits, oldest first: they go out as one message
    /// as soon as the limits allow one.
    limited: Vec<AlarmEvent>,
    /// When the messages of the last hour were let out, oldest first.
    recent: VecDeque<i64>,
}

/// The digest settings, from `[alerts]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigestRule {
    /// Alarms sent one by one within a window before the rest are held.
    pub after: u32,
    pub window_us: i64,
}

/// One alarm as itself, several as a digest; none: no message.
fn message_of(mut events: Vec<AlarmEvent>) -> Option<Message> {
    match events.len() {
        0 => None,
        1 => Some(Message::Alarm(Box::new(events.remove(0)))),
        _ => Some(Message::Digest(events)),
    }
}

impl ChannelPlan {
    /// Alarms held: for the digest at the end of the present window, or back by the rate limits.
    pub fn held(&self) -> usize {
        self.held.len() + self.limited.len()
    }

    /// Takes one alarm at `now`: it goes out at once while fewer than `digest.after` did in the
    /// present window, else it is held for the window's digest. An ended window is closed first.
    pub fn offer(&mut self, c: &ChannelConfig, digest: DigestRule, now: i64, e: AlarmEvent) -> Vec<Outcome> {
        let mut out = self.tick(c, digest, now);
        let start = *self.window_start.get_or_insert(now);
        debug_assert!(now >= start);
        if self.sent_in_window < digest.after {
            self.sent_in_window += 1;
            out.push(self.limit(c, now, Message::Alarm(Box::new(e))));
        } else {
            self.held.push(e);
        }
        let mut over = Vec::new();
        while self.limited.len() + self.held.len() > MAX_HELD {
            let oldest = if self.limited.is_empty() { &mut self.held } else { &mut self.limited };
            over.push(oldest.remove(0));
        }
        out.extend(message_of(over).map(Outcome::Dropped));
        out
    }

    /// What is due at `now`: the alarms held back by the rate limits, as one message, once the
    /// limits allow it; and the digest of a window that has ended (the held alarms as one message,
    /// or as themselves when only one is held).
    pub fn tick(&mut self, c: &ChannelConfig, digest: DigestRule, now: i64) -> Vec<Outcome> {
        let mut out = Vec::new();
        if !self.limited.is_empty() && !self.over_limit(c, now) {
            let m = message_of(std::mem::take(&mut self.limited)).expect("not empty");
            out.push(self.limit(c, now, m));
        }
        let Some(start) = self.window_start else { return out };
        if now < start.saturating_add(digest.window_us) {
            return out;
        }
        self.window_start = None;
        self.sent_in_window = 0;
        if let Some(m) = message_of(std::mem::take(&mut self.held)) {
            out.push(self.limit(c, now, m));
        }
        out
    }

    /// Everything held, at once and past the rate limits, as one message (the server is shutting
    /// down or the channel was removed): what is held back by the limits first, then the present
    /// window's digest. The window closes.
    pub fn flush(&mut self, now: i64) -> Option<Message> {
        self.window_start = None;
        self.sent_in_window = 0;
        let mut events = std::mem::take(&mut self.limited);
        events.append(&mut self.held);
        let m = message_of(events)?;
        self.recent.push_back(now);
        Some(m)
    }

    /// Whether the channel's per-minute or per-hour limit is reached at `now` (forgetting what
    /// left the hour).
    fn over_limit(&mut self, c: &ChannelConfig, now: i64) -> bool {
        while self.recent.front().is_some_and(|&t| t <= now - HOUR_US) {
            self.recent.pop_front();
        }
        let last_minute = self.recent.iter().filter(|&&t| t > now - MINUTE_US).count();
        (c.max_per_minute > 0 && last_minute >= c.max_per_minute as usize)
            || (c.max_per_hour > 0 && self.recent.len() >= c.max_per_hour as usize)
    }

    /// Lets a message out unless the channel's limit is reached; else holds its alarms back.
    fn limit(&mut self, c: &ChannelConfig, now: i64, m: Message) -> Outcome {
        if self.over_limit(c, now) {
            self.limited.extend(m.events().iter().cloned());
            return Outcome::RateLimited(m);
        }
        self.recent.push_back(now);
        Outcome::Send(m)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use t3_core::alarm::{AlarmState, Level, Transition};

    pub(in crate::service::notify) const T0: i64 = 1_795_651_200_000_000;
    const SEC: i64 = 1_000_000;

    fn event(rule_id: i64, name: &str, level: Level, kind: TransitionKind) -> AlarmEvent {
        AlarmEvent {
            rule_id,
            name: name.into(),
            point_id: Some(1),
            device_id: None,
            message: None,
            transition: Transition {
                at_us: T0,
                from: AlarmState::Normal,
                to: AlarmState::Active,
                level,
                value: Some(1.0),
                kind,
            },
        }
    }

    /// Rule `rule_id` (named `r<id>`) raised at [`T0`] at level high.
    pub(in crate::service::notify) fn raised(rule_id: i64) -> AlarmEvent {
        event(rule_id, &format!("r{rule_id}"), Level::High, TransitionKind::Raised)
    }

    const DIGEST: DigestRule = DigestRule { after: 2, window_us: 60 * SEC };

    fn sent(out: &[Outcome]) -> Vec<Vec<i64>> {
        out.iter()
            .filter_map(|o| match o {
                Outcome::Send(m) => Some(m.events().iter().map(|e| e.rule_id).collect()),
                Outcome::RateLimited(_) | Outcome::Dropped(_) => None,
            })
            .collect()
    }

    #[test]
    fn routing_by_rule_severity_and_transition() {
        let mut c = ChannelConfig::default();
        assert!(routes(&c, &raised(1)), "no rules listed: every rule");
        assert!(routes(&c, &event(-3, "Disk nearly full", Level::DataLoss, TransitionKind::Raised)));
        assert!(!routes(&c, &event(1, "a", Level::High, TransitionKind::Acknowledged { by: "x".into() })));
        assert!(routes(&c, &event(1, "a", Level::High, TransitionKind::Normal)), "normal counts as cleared");

        c.rules = vec![RuleRef::Id(7), RuleRef::Name("Boiler".into())];
        assert!(routes(&c, &raised(7)));
        assert!(routes(&c, &event(9, "Boiler", Level::Low, TransitionKind::Raised)));
        assert!(!routes(&c, &raised(8)));

        c.rules.clear();
        c.min_severity = 2;
        assert!(!routes(&c, &raised(1)), "high is severity 1");
        assert!(routes(&c, &event(1, "a", Level::WayHigh, TransitionKind::Raised)));
        assert!(routes(&c, &event(1, "a", Level::Offline, TransitionKind::Raised)));

        c.events = vec![AlertEvent::Acknowledged];
        assert!(!routes(&c, &event(1, "a", Level::WayHigh, TransitionKind::Raised)));
        assert!(routes(&c, &event(1, "a", Level::WayHigh, TransitionKind::Acknowledged { by: "x".into() })));
        let lc = event(1, "a", Level::WayHigh, TransitionKind::LevelChanged { from: Level::High });
        assert_eq!(event_kind(&lc), AlertEvent::LevelChanged);
    }

    #[test]
    fn a_burst_becomes_one_digest_at_the_end_of_the_window() {
        let c = ChannelConfig::default();
        let mut p = ChannelPlan::default();
        assert_eq!(sent(&p.offer(&c, DIGEST, T0, raised(1))), vec![vec![1]]);
        assert_eq!(sent(&p.offer(&c, DIGEST, T0 + SEC, raised(2))), vec![vec![2]]);
        for id in 3..=10 {
            assert!(p.offer(&c, DIGEST, T0 + 2 * SEC, raised(id)).is_empty(), "held");
        }
        assert_eq!(p.held(), 8);
        assert!(p.tick(&c, DIGEST, T0 + 59 * SEC).is_empty(), "the window is still open");
        let out = p.tick(&c, DIGEST, T0 + 60 * SEC);
        assert_eq!(out.len(), 1);
        assert!(matches!(&out[0], Outcome::Send(Message::Digest(v)) if v.len() == 8));
        assert_eq!(sent(&out), vec![(3..=10).collect::<Vec<_>>()]);
        assert_eq!(p.held(), 0);
        // A quiet period: the next alarm opens a new window and goes out at once.
        assert_eq!(sent(&p.offer(&c, DIGEST, T0 + 200 * SEC, raised(11))), vec![vec![11]]);
    }

    #[test]
    fn one_held_alarm_goes_as_itself_and_an_ended_window_closes_before_the_next_alarm() {
        let c = ChannelConfig::default();
        let mut p = ChannelPlan::default();
        p.offer(&c, DIGEST, T0, raised(1));
        p.offer(&c, DIGEST, T0, raised(2));
        assert!(p.offer(&c, DIGEST, T0, raised(3)).is_empty());
        // No tick ran; the next alarm, after the window, first closes it.
        let out = p.offer(&c, DIGEST, T0 + 61 * SEC, raised(4));
        assert!(matches!(&out[0], Outcome::Send(Message::Alarm(e)) if e.rule_id == 3));
        assert_eq!(sent(&out), vec![vec![3], vec![4]]);
    }

    /// What came out, in order: `(sent, rule ids)` (held back or dropped: not sent).
    fn outcomes(out: &[Outcome]) -> Vec<(bool, Vec<i64>)> {
        out.iter()
            .map(|o| match o {
                Outcome::Send(m) => (true, m.events().iter().map(|e| e.rule_id).collect()),
                Outcome::RateLimited(m) | Outcome::Dropped(m) => {
                    (false, m.events().iter().map(|e| e.rule_id).collect())
                }
            })
            .collect()
    }

    #[test]
    fn rate_limits_per_minute_and_per_hour_hold_back_and_send_later() {
        let c = ChannelConfig { max_per_minute: 2, max_per_hour: 3, ..Default::default() };
        let d = DigestRule { after: 1000, window_us: SEC };
        let mut p = ChannelPlan::default();
        let mut got = Vec::new();
        for (i, at) in [0, 1, 2, 61, 62, 3599, 3601].into_iter().enumerate() {
            got.push(outcomes(&p.offer(&c, d, T0 + at * SEC, raised(i as i64))));
        }
        let (sent, held) = (true, false);
        assert_eq!(
            got,
            vec![
                vec![(sent, vec![0])],
                vec![(sent, vec![1])],
                // Over the minute: held back.
                vec![(held, vec![2])],
                // The minute allows again: the held one goes first, then this one is over the hour.
                vec![(sent, vec![2]), (held, vec![3])],
                vec![(held, vec![4])],
                vec![(held, vec![5])],
                // The first two left the hour: the three held go as one digest, then this one.
                vec![(sent, vec![3, 4, 5]), (sent, vec![6])],
            ]
        );
        assert_eq!(p.held(), 0);
    }

    /// An alarm storm over a channel's limits: it holds at most [`MAX_HELD`] alarms, the newest,
    /// and the oldest come out as dropped.
    #[test]
    fn a_storm_holds_at_most_max_held_alarms() {
        let c = ChannelConfig { max_per_minute: 1, max_per_hour: 1, ..Default::default() };
        let d = DigestRule { after: 1, window_us: HOUR_US };
        let mut p = ChannelPlan::default();
        let mut dropped = Vec::new();
        for id in 0..(MAX_HELD as i64 + 11) {
            for o in p.offer(&c, d, T0 + id, raised(id)) {
                if let Outcome::Dropped(m) = o {
                    dropped.extend(m.events().iter().map(|e| e.rule_id));
                }
            }
        }
        assert_eq!(p.held(), MAX_HELD);
        assert_eq!(dropped, (1..=10).collect::<Vec<i64>>(), "the oldest held, after the one sent");
        let m = p.flush(T0 + HOUR_US).unwrap();
        assert_eq!(m.events().first().map(|e| e.rule_id), Some(11));
    }

    /// The tester's case: with `max_per_minute = 2`, cleared, cleared, then raised again: the
    /// third is held back, not lost, and goes out as soon as the minute allows, from a tick.
    #[test]
    fn an_alarm_over_the_limit_goes_out_when_the_limit_allows() {
        let c = ChannelConfig { max_per_minute: 2, ..Default::default() };
        let d = DigestRule { after: 1000, window_us: SEC };
        let cleared = |id| event(id, "r", Level::High, TransitionKind::Cleared);
        let mut p = ChannelPlan::default();
        assert_eq!(sent(&p.offer(&c, d, T0, cleared(259))), vec![vec![259]]);
        assert_eq!(sent(&p.offer(&c, d, T0 + SEC, cleared(260))), vec![vec![260]]);
        let out = p.offer(&c, d, T0 + 2 * SEC, raised(259));
        assert!(matches!(&out[..], [Outcome::RateLimited(Message::Alarm(e))] if e.rule_id == 259));
        assert_eq!(p.held(), 1);
        assert!(p.tick(&c, d, T0 + 59 * SEC).is_empty(), "two messages in the last minute");
        let out = p.tick(&c, d, T0 + 60 * SEC);
        assert!(
            matches!(&out[..], [Outcome::Send(Message::Alarm(e))] if e.rule_id == 259 && event_kind(e) == AlertEvent::Raised),
            "{out:?}"
        );
        assert_eq!(p.held(), 0);
        assert!(p.tick(&c, d, T0 + 120 * SEC).is_empty(), "sent once");
    }

    /// A digest whose window ends over the limit is held back like any message, and goes out
    /// whole (a digest counts as one) when the limit allows.
    #[test]
    fn a_digest_over_the_limit_joins_the_held_back_alarms() {
        let c = ChannelConfig { max_per_minute: 1, ..Default::default() };
        let mut p = ChannelPlan::default();
        assert_eq!(sent(&p.offer(&c, DIGEST, T0, raised(1))), vec![vec![1]]);
        assert!(matches!(&p.offer(&c, DIGEST, T0, raised(2))[..], [Outcome::RateLimited(_)]));
        for id in 3..=5 {
            assert!(p.offer(&c, DIGEST, T0 + SEC, raised(id)).is_empty());
        }
        assert_eq!(p.held(), 4);
        // The window and the minute end together: the held-back alarm takes the minute's one
        // message, the digest is held back in its turn.
        let out = p.tick(&c, DIGEST, T0 + 60 * SEC);
        assert_eq!(outcomes(&out), vec![(true, vec![2]), (false, vec![3, 4, 5])]);
        let out = p.tick(&c, DIGEST, T0 + 120 * SEC);
        assert_eq!(outcomes(&out), vec![(true, vec![3, 4, 5])]);
        assert!(matches!(&out[0], Outcome::Send(Message::Digest(_))));
    }

    /// At shutdown everything held goes at once, past the limits, as one message.
    #[test]
    fn flush_sends_everything_held_past_the_limits() {
        let c = ChannelConfig { max_per_minute: 1, ..Default::default() };
        let mut p = ChannelPlan::default();
        p.offer(&c, DIGEST, T0, raised(1));
        p.offer(&c, DIGEST, T0, raised(2));
        p.offer(&c, DIGEST, T0, raised(3));
        p.offer(&c, DIGEST, T0, raised(4));
        assert_eq!(p.held(), 3);
        let m = p.flush(T0 + SEC).expect("a digest");
        assert_eq!(m.events().iter().map(|e| e.rule_id).collect::<Vec<_>>(), vec![2, 3, 4]);
        assert_eq!(p.held(), 0);
        assert!(p.flush(T0 + SEC).is_none(), "nothing left");
        // The window closed: the next alarm opens a new one (and is over the minute).
        assert!(matches!(&p.offer(&c, DIGEST, T0 + 2 * SEC, raised(5))[..], [Outcome::RateLimited(_)]));
    }
}
