//! How trend logs (T3000's monitors) change the way a point is polled and recorded.
//!
//! A point has its own settings: its device's poll interval and recording, or the point's
//! override of them. Each trend log holding the point asks for it to be recorded at the log's
//! interval, every sample or on change past a deadband ([`Ask`]). The asks of every log holding a
//! point merge into one [`Demand`]: the fastest interval, every sample if any log wants every
//! sample, else the smallest deadband. A demand then changes the point's own settings
//! ([`Demand::apply`]): it is polled at the faster of its own interval and the demand's (a trend
//! log never slows the polling that live values, alarms and schedules see), and recorded as the
//! trend logs say. Without a demand the point has its own settings again.

use crate::config::{RecordConfig, RecordMode};
use std::time::Duration;

/// What one trend log asks of each of its points.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ask {
    /// Record at least this often (milliseconds).
    pub interval_ms: u64,
    /// Record a polled value only when it moved past `deadband` (absolute, in the point's units)
    /// since the last recorded one; every polled value when false.
    pub on_change: bool,
    /// The deadband of on-change recording, at least 0 (0: any change).
    pub deadband: f64,
}

/// What the trend logs holding a point ask of it together.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Demand {
    /// The fastest interval asked for (milliseconds).
    pub interval_ms: u64,
    /// The smallest deadband when every log records on change; `None` (every sample) when any
    /// log wants every sample.
    pub deadband: Option<f64>,
}

impl Demand {
    /// The demand of `asks` together; `None` when there is none (the point is in no trend log).
    pub fn merge(asks: impl IntoIterator<Item = Ask>) -> Option<Demand> {
        asks.into_iter().fold(None, |acc: Option<Demand>, a| {
            let own = Demand { interval_ms: a.interval_ms, deadband: a.on_change.then_some(a.deadband.max(0.0)) };
            Some(match acc {
                None => own,
                Some(d) => Demand {
                    interval_ms: d.interval_ms.min(own.interval_ms),
                    deadband: match (d.deadband, own.deadband) {
                        (Some(x), Some(y)) => Some(x.min(y)),
                        _ => None,
                    },
                },
            })
        })
    }

    /// The interval and recording of a point whose own settings are `interval` and `record`,
    /// under this demand: the faster interval; every sample, or on change past the demand's
    /// deadband with the point's own heartbeat (absolute deadband only).
    pub fn apply(&self, interval: Duration, record: &RecordConfig) -> (Duration, RecordConfig) {
        let interval = interval.min(Duration::from_millis(self.interval_ms));
        let record = match self.deadband {
            None => RecordConfig { mode: RecordMode::Every, ..record.clone() },
            Some(deadband) => RecordConfig {
                mode: RecordMode::Change,
                deadband,
                deadband_percent: 0.0,
                heartbeat_secs: if record.mode == RecordMode::Change { record.heartbeat_secs } else { 0 },
            },
        };
        (interval, record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every(interval_ms: u64) -> Ask {
        Ask { interval_ms, on_change: false, deadband: 0.0 }
    }

    fn change(interval_ms: u64, deadband: f64) -> Ask {
        Ask { interval_ms, on_change: true, deadband }
    }

    fn own_change(heartbeat_secs: u64) -> RecordConfig {
        RecordConfig { mode: RecordMode::Change, deadband: 2.0, deadband_percent: 5.0, heartbeat_secs }
    }

    #[test]
    fn no_trend_log_no_demand() {
        assert_eq!(Demand::merge([]), None);
    }

    #[test]
    fn the_fastest_interval_wins() {
        let d = Demand::merge([every(60_000), every(1_000), every(15_000)]).unwrap();
        assert_eq!(d.interval_ms, 1_000);
        let d = Demand::merge([change(5_000, 1.0), change(2_000, 1.0)]).unwrap();
        assert_eq!(d.interval_ms, 2_000);
    }

    #[test]
    fn every_sample_wins_over_on_change() {
        assert_eq!(Demand::merge([change(1_000, 0.5), every(60_000)]).unwrap().deadband, None);
        assert_eq!(Demand::merge([every(60_000), change(1_000, 0.5)]).unwrap().deadband, None);
    }

    #[test]
    fn the_smallest_deadband_wins() {
        let d = Demand::merge([change(1_000, 0.5), change(1_000, 0.1), change(1_000, 2.0)]).unwrap();
        assert_eq!(d.deadband, Some(0.1));
        assert_eq!(Demand::merge([change(1_000, 0.0), change(1_000, 3.0)]).unwrap().deadband, Some(0.0));
    }

    #[test]
    fn a_demand_polls_faster_never_slower() {
        let own = RecordConfig::default();
        let d = Demand::merge([every(1_000)]).unwrap();
        assert_eq!(d.apply(Duration::from_secs(10), &own).0, Duration::from_secs(1));
        let d = Demand::merge([every(60_000)]).unwrap();
        assert_eq!(d.apply(Duration::from_millis(200), &own).0, Duration::from_millis(200));
    }

    #[test]
    fn a_demand_decides_the_recording() {
        // Every sample: a point of its own on change records every poll.
        let (_, r) = Demand::merge([every(1_000)]).unwrap().apply(Duration::from_secs(1), &own_change(30));
        assert_eq!(r.mode, RecordMode::Every);
        // On change: the demand's deadband, the point's own heartbeat, no percent deadband.
        let (_, r) = Demand::merge([change(1_000, 0.25)]).unwrap().apply(Duration::from_secs(1), &own_change(30));
        assert_eq!(
            r,
            RecordConfig { mode: RecordMode::Change, deadband: 0.25, deadband_percent: 0.0, heartbeat_secs: 30 }
        );
        // A point of its own recorded every poll has no heartbeat to keep.
        let own = RecordConfig { heartbeat_secs: 99, ..RecordConfig::default() };
        let (_, r) = Demand::merge([change(1_000, 0.25)]).unwrap().apply(Duration::from_secs(1), &own);
        assert_eq!((r.mode, r.heartbeat_secs), (RecordMode::Change, 0));
    }

    #[test]
    fn removing_a_log_restores_what_the_others_ask() {
        let logs = [every(1_000), change(10_000, 0.5)];
        assert_eq!(Demand::merge(logs), Some(Demand { interval_ms: 1_000, deadband: None }));
        assert_eq!(Demand::merge(logs[1..].iter().copied()), Some(Demand { interval_ms: 10_000, deadband: Some(0.5) }));
        assert_eq!(Demand::merge(logs[..0].iter().copied()), None);
    }
}
