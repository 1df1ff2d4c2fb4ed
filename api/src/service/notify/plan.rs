//! What a channel sends and when, without I/O: which alarms it takes ([`routes`]), the digest
//! window that folds a burst of alarms into one message, and the rate limits. Every decision takes
//! the time as an argument, so the tests drive it with made-up times.

use crate::model::alarm::AlarmEvent;
use std::collections::VecDeque;
use t3_core::alarm::TransitionKind;
use t3_core::config::{AlertEvent, ChannelConfig, RuleRef};

const MINUTE_US: i64 = 60_000_000;
const HOUR_US: i64 = 60 * MINUTE_US;

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
    /// Over the rate limit: not sent (logged and counted).
    RateLimited(Message),
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

impl ChannelPlan {
    /// Alarms held for the next digest.
    pub fn held(&self) -> usize {
        self.held.len()
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
        out
    }

    /// Closes the digest window when it has ended at `now`: the held alarms go out as one digest
    /// (or as themselves, when only one is held).
    pub fn tick(&mut self, c: &ChannelConfig, digest: DigestRule, now: i64) -> Vec<Outcome> {
        let Some(start) = self.window_start else { return Vec::new() };
        if now < start.saturating_add(digest.window_us) {
            return Vec::new();
        }
        self.window_start = None;
        self.sent_in_window = 0;
        let mut held = std::mem::take(&mut self.held);
        let message = match held.len() {
            0 => return Vec::new(),
            1 => Message::Alarm(Box::new(held.remove(0))),
            _ => Message::Digest(held),
        };
        vec![self.limit(c, now, message)]
    }

    /// Lets a message out unless the channel's per-minute or per-hour limit is reached.
    fn limit(&mut self, c: &ChannelConfig, now: i64, m: Message) -> Outcome {
        while self.recent.front().is_some_and(|&t| t <= now - HOUR_US) {
            self.recent.pop_front();
        }
        let last_minute = self.recent.iter().filter(|&&t| t > now - MINUTE_US).count();
        let over = (c.max_per_minute > 0 && last_minute >= c.max_per_minute as usize)
            || (c.max_per_hour > 0 && self.recent.len() >= c.max_per_hour as usize);
        if over {
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
                Outcome::RateLimited(_) => None,
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

    #[test]
    fn rate_limits_per_minute_and_per_hour() {
        let c = ChannelConfig { max_per_minute: 2, max_per_hour: 3, ..Default::default() };
        let d = DigestRule { after: 1000, window_us: SEC };
        let mut p = ChannelPlan::default();
        let mut outcomes = Vec::new();
        for (i, at) in [0, 1, 2, 61, 62, 3599, 3601].into_iter().enumerate() {
            outcomes.extend(p.offer(&c, d, T0 + at * SEC, raised(i as i64)));
        }
        let kinds: Vec<bool> = outcomes.iter().map(|o| matches!(o, Outcome::Send(_))).collect();
        // 0 and 1 sent; 2 over the minute; 61 sent (3 this hour); 62 and 3599 over the hour;
        // 3601: the first has left the hour.
        assert_eq!(kinds, vec![true, true, false, true, false, false, true]);
    }
}
