//! Alarm rules and their state machines.
//!
//! A point has at most one [`AlarmRule`]; the server keeps one [`AlarmEvaluator`] per rule, feeds it
//! every sample of the point ([`AlarmEvaluator::observe`]) or, for a device-offline rule, every
//! change of the device's online flag ([`AlarmEvaluator::observe_online`]), and calls
//! [`AlarmEvaluator::tick`] periodically so that delayed alarms are raised even when no sample
//! arrives. Every call returns the [`Transition`]s it caused, in order; the server stores them in the
//! alarm history and publishes them.
//!
//! # States
//!
//! | state | condition | acknowledged |
//! |---|---|---|
//! | [`AlarmState::Normal`] | absent (or present but its delay has not run out) | — |
//! | [`AlarmState::Active`] | present | no |
//! | [`AlarmState::Acknowledged`] | present | yes |
//! | [`AlarmState::Cleared`] | gone | no: stays visible until someone acknowledges it |
//!
//! | from | event | to | [`TransitionKind`] |
//! |---|---|---|---|
//! | normal or cleared | the condition held for the rule's delay | active | `raised` |
//! | active | a user acknowledges | acknowledged | `acknowledged` |
//! | active | the condition is gone | cleared | `cleared` |
//! | acknowledged | the condition is gone | normal | `normal` |
//! | cleared | a user acknowledges | normal | `acknowledged` |
//! | active or acknowledged | the condition moves to another level | see [`TransitionKind::LevelChanged`] | `level_changed` |
//!
//! A built-in alarm that gathers several faults in one ([`FaultAlarm`]: devices offline, programs
//! in error, plugin files refused) has two more: a new fault while it is on raises it again
//! (active or acknowledged to active, `raised`: nobody acknowledged the new fault), and one fault
//! ending while others remain is a `cleared` that keeps the state (active stays active,
//! acknowledged stays acknowledged).
//!
//! # Conditions
//!
//! The condition is a comparator with hysteresis: a [`AlarmCondition::Limits`] level is entered when
//! the value reaches its limit (`>= high`, `<= low`) and left only when the value is past the limit
//! by more than the deadband (`< high - deadband`, `> low + deadband`). The alarm is an on-delayed
//! view of that comparator: the condition (at any level) must hold without interruption for
//! [`AlarmRule::delay_secs`] before the alarm is raised; once raised, a change of level and the
//! end of the condition take effect at once. Samples are held: a value holds until the next
//! accepted sample replaces it.
//!
//! Samples whose quality is not good ([`Quality::is_good`]) and NaN values are ignored by value
//! rules: they neither raise nor clear, and a running delay keeps running. A device-offline rule
//! covers communication failures.
//!
//! # Time
//!
//! Timestamps are microseconds since the Unix epoch. A delayed alarm is stamped with the instant its
//! delay ran out (so the history does not depend on how often [`AlarmEvaluator::tick`] runs), and no
//! transition is stamped earlier than the one before it. Inputs (samples and online flags) older
//! than the newest input already accepted are ignored.

use serde::{Deserialize, Serialize};

use crate::model::Quality;

/// Longest accepted [`AlarmRule::delay_secs`]: seven days.
pub const MAX_DELAY_SECS: u64 = 7 * 24 * 3600;

/// What makes a point be in alarm.
///
/// In TOML: `kind = "limits"` with `waylow`, `low`, `high`, `wayhigh` and `deadband`;
/// `kind = "digital"` with `alarm_when`; `kind = "device_offline"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum AlarmCondition {
    /// Analog limits, T3000's way-low / low / high / way-high. At least one must be set, and
    /// `waylow <= low < high <= wayhigh` for those that are.
    Limits {
        /// Way-low limit: in alarm at or below it.
        waylow: Option<f64>,
        /// Low limit: in alarm at or below it.
        low: Option<f64>,
        /// High limit: in alarm at or above it.
        high: Option<f64>,
        /// Way-high limit: in alarm at or above it.
        wayhigh: Option<f64>,
        /// Hysteresis in engineering units, at least 0: a level is left only when the value is past
        /// its limit by more than this (default 0).
        #[serde(default)]
        deadband: f64,
    },
    /// A binary point: in alarm while its state equals `alarm_when` (a value other than 0 is `true`).
    Digital {
        /// The state that is the alarm.
        alarm_when: bool,
    },
    /// The point's device does not answer; fed through [`AlarmEvaluator::observe_online`].
    DeviceOffline,
}

impl AlarmCondition {
    /// Whether this condition can produce `level`.
    pub fn produces(&self, level: Level) -> bool {
        match self {
            AlarmCondition::Limits { .. } => level.side() != 0,
            AlarmCondition::Digital { .. } => level == Level::State,
            AlarmCondition::DeviceOffline => level == Level::Offline,
        }
    }
}

/// An alarm rule of one point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmRule {
    /// What makes the point be in alarm.
    pub condition: AlarmCondition,
    /// How long, in seconds, the condition must hold without interruption before the alarm is
    /// raised; 0 raises on the first sample (default 0, at most [`MAX_DELAY_SECS`]).
    #[serde(default)]
    pub delay_secs: u64,
    /// Text shown with the alarm, if any.
    #[serde(default)]
    pub message: Option<String>,
}

impl AlarmRule {
    /// Checks every field; the error names the first wrong one (`condition.high`, `delay_secs`, ...).
    pub fn validate(&self) -> Result<(), AlarmError> {
        if self.delay_secs > MAX_DELAY_SECS {
            return Err(invalid("delay_secs", format!("must be at most {MAX_DELAY_SECS} (got {})", self.delay_secs)));
        }
        let AlarmCondition::Limits { waylow, low, high, wayhigh, deadband } = self.condition else {
            return Ok(());
        };
        let limits = [
            ("condition.waylow", waylow),
            ("condition.low", low),
            ("condition.high", high),
            ("condition.wayhigh", wayhigh),
        ];
        if limits.iter().all(|(_, v)| v.is_none()) {
            return Err(invalid("condition", "needs at least one of waylow, low, high, wayhigh".into()));
        }
        for (field, value) in limits {
            if value.is_some_and(|v| !v.is_finite()) {
                return Err(invalid(field, "must be a finite number".into()));
            }
        }
        if !(deadband.is_finite() && deadband >= 0.0) {
            return Err(invalid("condition.deadband", "must be a finite number >= 0".into()));
        }
        // Each later limit must be above (the low/high pair) or not below (within a side) each earlier one.
        for (i, (lower_field, lower)) in limits.iter().enumerate() {
            for (j, (upper_field, upper)) in limits.iter().enumerate().skip(i + 1) {
                let (Some(lower), Some(upper)) = (lower, upper) else { continue };
                let crosses_sides = i < 2 && j >= 2;
                if crosses_sides && lower >= upper {
                    return Err(invalid(upper_field, format!("must be above {lower_field} ({lower})")));
                }
                if lower > upper {
                    return Err(invalid(upper_field, format!("must not be below {lower_field} ({lower})")));
                }
            }
        }
        Ok(())
    }
}

/// The level of an alarm: which limit or condition it is about.
///
/// Serialized in lower case: `waylow`, `low`, `high`, `wayhigh`, `state`, `offline`, `data_loss`,
/// `warning`, `fault`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// At or below the way-low limit.
    WayLow,
    /// At or below the low limit.
    Low,
    /// At or above the high limit.
    High,
    /// At or above the way-high limit.
    WayHigh,
    /// A digital point is in its alarm state.
    State,
    /// The device does not answer.
    Offline,
    /// Stored data was found damaged and taken out of service (the built-in storage alarm).
    #[serde(rename = "data_loss")]
    DataLoss,
    /// A fault of the server itself that needs attention soon but stops nothing yet (disk space
    /// low, a plugin refused): a built-in system alarm ([`FaultAlarm`]).
    Warning,
    /// A fault of the server itself that stops part of its work now (writes refused, a program
    /// in error): a built-in system alarm ([`FaultAlarm`]).
    Fault,
}

impl Level {
    /// Severity for sorting, escalation and routing: 2 for way-low, way-high, offline, data loss
    /// and fault, 1 for low, high, digital state and warning.
    pub fn severity(self) -> u8 {
        match self {
            Level::WayLow | Level::WayHigh | Level::Offline | Level::DataLoss | Level::Fault => 2,
            Level::Low | Level::High | Level::State | Level::Warning => 1,
        }
    }

    /// The serialized name (`waylow`, `low`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Level::WayLow => "waylow",
            Level::Low => "low",
            Level::High => "high",
            Level::WayHigh => "wayhigh",
            Level::State => "state",
            Level::Offline => "offline",
            Level::DataLoss => "data_loss",
            Level::Warning => "warning",
            Level::Fault => "fault",
        }
    }

    /// 1 for the high limits, -1 for the low limits, 0 for the others.
    fn side(self) -> i8 {
        match self {
            Level::High | Level::WayHigh => 1,
            Level::Low | Level::WayLow => -1,
            Level::State | Level::Offline | Level::DataLoss | Level::Warning | Level::Fault => 0,
        }
    }

    /// A move to a less severe limit on the same side (way-high to high, way-low to low).
    fn is_deescalation_to(self, to: Level) -> bool {
        self.side() == to.side() && to.severity() < self.severity()
    }
}

/// The state of an alarm (see the [module documentation](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmState {
    /// No alarm (the condition may be present while its delay runs).
    #[default]
    Normal,
    /// The condition is present and nobody has acknowledged the alarm.
    Active,
    /// The condition is present and a user has acknowledged the alarm.
    Acknowledged,
    /// The condition is gone but nobody acknowledged the alarm; it stays until acknowledged.
    Cleared,
}

impl AlarmState {
    /// The serialized name (`normal`, `active`, `acknowledged`, `cleared`).
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmState::Normal => "normal",
            AlarmState::Active => "active",
            AlarmState::Acknowledged => "acknowledged",
            AlarmState::Cleared => "cleared",
        }
    }
}

/// What caused a [`Transition`].
///
/// Serialized with a `type` tag: `{"type": "acknowledged", "by": "alice"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TransitionKind {
    /// The condition held for the rule's delay: [`AlarmState::Normal`] or [`AlarmState::Cleared`]
    /// to [`AlarmState::Active`]. For a [`FaultAlarm`] that gathers several faults, also a new
    /// fault while it is on: [`AlarmState::Active`] or [`AlarmState::Acknowledged`] to
    /// [`AlarmState::Active`] ([`FaultAlarm::raise_again`]).
    Raised,
    /// The condition moved to another level while the alarm was on. It stays
    /// [`AlarmState::Acknowledged`] only when it moved to a less severe limit on the same side
    /// (way-high to high, way-low to low); any other change (to a more severe level, or to the
    /// other side) needs a new acknowledgement, so it becomes [`AlarmState::Active`].
    LevelChanged {
        /// The level before the change.
        from: Level,
    },
    /// A user acknowledged the alarm: [`AlarmState::Active`] to [`AlarmState::Acknowledged`], or
    /// [`AlarmState::Cleared`] to [`AlarmState::Normal`].
    Acknowledged {
        /// The user who acknowledged.
        by: String,
    },
    /// The condition went away before anyone acknowledged: [`AlarmState::Active`] to
    /// [`AlarmState::Cleared`]. For a [`FaultAlarm`] that gathers several faults, also one of them
    /// ending while others remain: the state stays [`AlarmState::Active`] or
    /// [`AlarmState::Acknowledged`] ([`FaultAlarm::ease`]).
    Cleared,
    /// The condition went away after it was acknowledged: [`AlarmState::Acknowledged`] to
    /// [`AlarmState::Normal`].
    Normal,
}

/// One change of an alarm, for the alarm history and the WebSocket feed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    /// When it happened, microseconds since the Unix epoch; never earlier than the transition before.
    pub at_us: i64,
    /// State before.
    pub from: AlarmState,
    /// State after.
    pub to: AlarmState,
    /// The alarm's level after the transition; for a transition to [`AlarmState::Normal`] or
    /// [`AlarmState::Cleared`], the level of the alarm that ended.
    pub level: Level,
    /// The value of the sample that caused the transition; for a delayed raise or an
    /// acknowledgement, the latest accepted value. `None` for device-offline rules.
    pub value: Option<f64>,
    /// What caused it.
    pub kind: TransitionKind,
}

/// A rule that does not validate, or an acknowledgement that is not possible.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlarmError {
    /// A field of an [`AlarmRule`] is wrong; `field` is its dotted name (`condition.deadband`).
    #[error("{field}: {message}")]
    InvalidRule {
        /// Dotted name of the field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// Acknowledgement of an alarm that is [`AlarmState::Normal`].
    #[error("there is no alarm to acknowledge")]
    NothingToAcknowledge,
    /// Acknowledgement of an alarm that is already [`AlarmState::Acknowledged`].
    #[error("the alarm is already acknowledged")]
    AlreadyAcknowledged,
    /// Acknowledgement with an empty user name.
    #[error("an acknowledgement needs a user name")]
    NoUser,
    /// [`AlarmEvaluator::resume`] got a transition whose level the rule cannot produce (the rule
    /// changed since).
    #[error("the rule cannot produce an alarm of level {}", .0.as_str())]
    LevelMismatch(Level),
}

fn invalid(field: &'static str, message: String) -> AlarmError {
    AlarmError::InvalidRule { field, message }
}

/// The alarm state together with its level.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Status {
    Normal,
    Active(Level),
    Acknowledged(Level),
    Cleared(Level),
}

impl Status {
    /// Where an acknowledgement by `user` leads: active to acknowledged, cleared to normal; an
    /// error for a normal or already acknowledged alarm, or a blank `user`.
    fn acknowledged(self, user: &str) -> Result<Status, AlarmError> {
        if user.trim().is_empty() {
            return Err(AlarmError::NoUser);
        }
        match self {
            Status::Normal => Err(AlarmError::NothingToAcknowledge),
            Status::Acknowledged(_) => Err(AlarmError::AlreadyAcknowledged),
            Status::Active(level) => Ok(Status::Acknowledged(level)),
            Status::Cleared(_) => Ok(Status::Normal),
        }
    }

    fn state(self) -> AlarmState {
        match self {
            Status::Normal => AlarmState::Normal,
            Status::Active(_) => AlarmState::Active,
            Status::Acknowledged(_) => AlarmState::Acknowledged,
            Status::Cleared(_) => AlarmState::Cleared,
        }
    }

    fn level(self) -> Option<Level> {
        match self {
            Status::Normal => None,
            Status::Active(l) | Status::Acknowledged(l) | Status::Cleared(l) => Some(l),
        }
    }
}

/// The state machine of one [`AlarmRule`].
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmEvaluator {
    rule: AlarmRule,
    delay_us: i64,
    status: Status,
    /// Time of the latest transition.
    since_us: Option<i64>,
    /// The condition as of the latest accepted input, after hysteresis.
    condition: Option<Level>,
    /// Since when `condition` has been present without interruption (meaningful when it is).
    condition_since_us: i64,
    /// The latest accepted value (value rules only).
    last_value: Option<f64>,
    /// Timestamp of the latest accepted input.
    last_input_us: Option<i64>,
}

impl AlarmEvaluator {
    /// An evaluator in [`AlarmState::Normal`] for a rule, which must validate.
    pub fn new(rule: AlarmRule) -> Result<Self, AlarmError> {
        rule.validate()?;
        Ok(Self {
            delay_us: rule.delay_secs as i64 * 1_000_000,
            rule,
            status: Status::Normal,
            since_us: None,
            condition: None,
            condition_since_us: 0,
            last_value: None,
            last_input_us: None,
        })
    }

    /// An evaluator that continues from the latest transition of the alarm history (after a restart).
    ///
    /// An active or acknowledged alarm resumes with its condition present at its level, so the
    /// deadband applies to the next sample. Fails when the rule does not validate or cannot produce
    /// the transition's level.
    pub fn resume(rule: AlarmRule, last: &Transition) -> Result<Self, AlarmError> {
        let mut evaluator = Self::new(rule)?;
        if !evaluator.rule.condition.produces(last.level) {
            return Err(AlarmError::LevelMismatch(last.level));
        }
        evaluator.status = match last.to {
            AlarmState::Normal => Status::Normal,
            AlarmState::Active => Status::Active(last.level),
            AlarmState::Acknowledged => Status::Acknowledged(last.level),
            AlarmState::Cleared => Status::Cleared(last.level),
        };
        if matches!(last.to, AlarmState::Active | AlarmState::Acknowledged) {
            evaluator.condition = Some(last.level);
            evaluator.condition_since_us = last.at_us;
        }
        evaluator.since_us = Some(last.at_us);
        evaluator.last_value = last.value;
        Ok(evaluator)
    }

    /// The rule this evaluator applies.
    pub fn rule(&self) -> &AlarmRule {
        &self.rule
    }

    /// The current state.
    pub fn state(&self) -> AlarmState {
        self.status.state()
    }

    /// The level of the current alarm (also while [`AlarmState::Cleared`]); `None` when
    /// [`AlarmState::Normal`].
    pub fn level(&self) -> Option<Level> {
        self.status.level()
    }

    /// When the latest transition happened; `None` before the first one.
    pub fn since_us(&self) -> Option<i64> {
        self.since_us
    }

    /// Feeds one sample of the point. Ignored (no transitions) when the quality is not good, the
    /// value is NaN, the sample is older than the newest accepted input, or the rule is
    /// [`AlarmCondition::DeviceOffline`].
    ///
    /// May return two transitions: a delayed raise whose delay ran out before this sample, then
    /// the change this sample causes.
    pub fn observe(&mut self, value: f64, quality: Quality, ts_us: i64) -> Vec<Transition> {
        if !quality.is_good() || value.is_nan() || self.is_stale(ts_us) {
            return Vec::new();
        }
        let condition = match self.rule.condition {
            AlarmCondition::Limits { waylow, low, high, wayhigh, deadband } => {
                limits_level([waylow, low, high, wayhigh], deadband, value, self.condition)
            }
            AlarmCondition::Digital { alarm_when } => ((value != 0.0) == alarm_when).then_some(Level::State),
            AlarmCondition::DeviceOffline => return Vec::new(),
        };
        self.apply(condition, ts_us, Some(value))
    }

    /// Feeds the online flag of the point's device. Only [`AlarmCondition::DeviceOffline`] rules
    /// use it; others ignore it, as they ignore flags older than the newest accepted input.
    pub fn observe_online(&mut self, online: bool, ts_us: i64) -> Vec<Transition> {
        if self.rule.condition != AlarmCondition::DeviceOffline || self.is_stale(ts_us) {
            return Vec::new();
        }
        self.apply((!online).then_some(Level::Offline), ts_us, None)
    }

    /// Raises the alarm if its condition has held for the rule's delay by `now_us`, without a new
    /// sample. The raise is stamped with the instant the delay ran out.
    pub fn tick(&mut self, now_us: i64) -> Vec<Transition> {
        let mut out = Vec::new();
        self.raise_if_due(now_us, self.last_value, &mut out);
        out
    }

    /// A user acknowledges the alarm: [`AlarmState::Active`] becomes [`AlarmState::Acknowledged`],
    /// [`AlarmState::Cleared`] becomes [`AlarmState::Normal`].
    ///
    /// Errors (and changes nothing) when the alarm is normal or already acknowledged, or `user` is
    /// blank.
    pub fn acknowledge(&mut self, user: &str, ts_us: i64) -> Result<Transition, AlarmError> {
        let to = self.status.acknowledged(user)?;
        Ok(self.go(to, ts_us, self.last_value, TransitionKind::Acknowledged { by: user.to_owned() }))
    }

    fn is_stale(&self, ts_us: i64) -> bool {
        self.last_input_us.is_some_and(|last| ts_us < last)
    }

    /// Applies the condition of an accepted input at `ts_us`.
    fn apply(&mut self, condition: Option<Level>, ts_us: i64, value: Option<f64>) -> Vec<Transition> {
        let mut out = Vec::new();
        // The previous condition held until now: raise first if its delay ran out meanwhile.
        self.raise_if_due(ts_us, self.last_value, &mut out);
        self.last_input_us = Some(ts_us);
        if value.is_some() {
            self.last_value = value;
        }
        if self.condition.is_none() {
            self.condition_since_us = ts_us;
        }
        self.condition = condition;
        match self.status {
            Status::Active(level) | Status::Acknowledged(level) => {
                let acknowledged = matches!(self.status, Status::Acknowledged(_));
                match condition {
                    None if acknowledged => out.push(self.go(Status::Normal, ts_us, value, TransitionKind::Normal)),
                    None => out.push(self.go(Status::Cleared(level), ts_us, value, TransitionKind::Cleared)),
                    Some(new) if new != level => {
                        let to = if acknowledged && level.is_deescalation_to(new) {
                            Status::Acknowledged(new)
                        } else {
                            Status::Active(new)
                        };
                        out.push(self.go(to, ts_us, value, TransitionKind::LevelChanged { from: level }));
                    }
                    Some(_) => {}
                }
            }
            Status::Normal | Status::Cleared(_) => self.raise_if_due(ts_us, value, &mut out),
        }
        out
    }

    /// Raises the alarm when it is not on and its condition has held for the delay by `now_us`.
    fn raise_if_due(&mut self, now_us: i64, value: Option<f64>, out: &mut Vec<Transition>) {
        let (Status::Normal | Status::Cleared(_), Some(level)) = (self.status, self.condition) else {
            return;
        };
        let due_us = self.condition_since_us.saturating_add(self.delay_us);
        if now_us >= due_us {
            out.push(self.go(Status::Active(level), due_us, value, TransitionKind::Raised));
        }
    }

    /// Moves to `to` and describes the move; `at_us` is clamped so time never goes backwards.
    fn go(&mut self, to: Status, at_us: i64, value: Option<f64>, kind: TransitionKind) -> Transition {
        let from = self.status;
        let at_us = self.since_us.map_or(at_us, |since| at_us.max(since));
        // Every transition involves an alarm, so one of the two sides has a level.
        let level = to.level().or(from.level()).unwrap_or(Level::State);
        self.status = to;
        self.since_us = Some(at_us);
        Transition { at_us, from: from.state(), to: to.state(), level, value, kind }
    }
}

/// The state machine of a built-in alarm on a fault the server reports about itself (disk space,
/// the WAL, plugins, programs): the fault is present or gone, at one fixed level, without delay.
/// Its states and transitions are those of the [module documentation](self) (raised, cleared or
/// normal, acknowledged); there are no level changes. One alarm may stand for several faults of a
/// kind (every device that does not answer): a new one raises it again
/// ([`FaultAlarm::raise_again`]), one that ends while others remain eases it ([`FaultAlarm::ease`]).
#[derive(Debug, Clone, PartialEq)]
pub struct FaultAlarm {
    level: Level,
    status: Status,
    since_us: Option<i64>,
}

impl FaultAlarm {
    /// A fault alarm in [`AlarmState::Normal`].
    pub fn new(level: Level) -> Self {
        Self { level, status: Status::Normal, since_us: None }
    }

    /// Continues from the latest transition of the alarm history (after a restart).
    pub fn resume(level: Level, last: &Transition) -> Self {
        let status = match last.to {
            AlarmState::Normal => Status::Normal,
            AlarmState::Active => Status::Active(level),
            AlarmState::Acknowledged => Status::Acknowledged(level),
            AlarmState::Cleared => Status::Cleared(level),
        };
        Self { level, status, since_us: Some(last.at_us) }
    }

    /// The current state.
    pub fn state(&self) -> AlarmState {
        self.status.state()
    }

    /// The alarm's level (also while [`AlarmState::Normal`]).
    pub fn level(&self) -> Level {
        self.level
    }

    /// When the latest transition happened; `None` before the first one.
    pub fn since_us(&self) -> Option<i64> {
        self.since_us
    }

    /// The fault is `present` (or not) at `at_us`: raises the alarm when it is not on, ends it
    /// (cleared, or normal once acknowledged) when the fault is gone; `None` when nothing changes.
    pub fn set(&mut self, present: bool, at_us: i64) -> Option<Transition> {
        let (to, kind) = match (self.status, present) {
            (Status::Normal | Status::Cleared(_), true) => (Status::Active(self.level), TransitionKind::Raised),
            (Status::Active(_), false) => (Status::Cleared(self.level), TransitionKind::Cleared),
            (Status::Acknowledged(_), false) => (Status::Normal, TransitionKind::Normal),
            _ => return None,
        };
        Some(self.go(to, at_us, kind))
    }

    /// A new fault joins those the alarm stands for at `at_us`: it is raised (again), active and
    /// not acknowledged whatever it was, because nobody acknowledged the new fault. A raise from
    /// active or acknowledged continues the same alarm (its `from` says so).
    pub fn raise_again(&mut self, at_us: i64) -> Transition {
        self.go(Status::Active(self.level), at_us, TransitionKind::Raised)
    }

    /// One of the faults the alarm stands for ended at `at_us` while others remain: a `cleared`
    /// transition that keeps the state (active stays active, acknowledged stays acknowledged), so
    /// that it is published and stored. `None` when the alarm is not on (normal or cleared).
    pub fn ease(&mut self, at_us: i64) -> Option<Transition> {
        match self.status {
            Status::Active(_) | Status::Acknowledged(_) => Some(self.go(self.status, at_us, TransitionKind::Cleared)),
            Status::Normal | Status::Cleared(_) => None,
        }
    }

    /// A user acknowledges the alarm: active becomes acknowledged, cleared becomes normal. Errors
    /// (and changes nothing) when it is normal or already acknowledged, or `user` is blank.
    pub fn acknowledge(&mut self, user: &str, at_us: i64) -> Result<Transition, AlarmError> {
        let to = self.status.acknowledged(user)?;
        Ok(self.go(to, at_us, TransitionKind::Acknowledged { by: user.to_owned() }))
    }

    fn go(&mut self, to: Status, at_us: i64, kind: TransitionKind) -> Transition {
        let from = self.status;
        let at_us = self.since_us.map_or(at_us, |since| at_us.max(since));
        self.status = to;
        self.since_us = Some(at_us);
        Transition { at_us, from: from.state(), to: to.state(), level: self.level, value: None, kind }
    }
}

/// The level of `value` under limits `[waylow, low, high, wayhigh]`, given the level `held` before.
///
/// A level is entered at its limit and kept until the value is past it by more than `deadband`. A
/// limit reached outright wins over a kept level when it is more severe or on the other side.
fn limits_level(limits: [Option<f64>; 4], deadband: f64, value: f64, held: Option<Level>) -> Option<Level> {
    let [waylow, low, high, wayhigh] = limits;
    let at_or_above = |limit: Option<f64>, margin: f64| limit.is_some_and(|l| value >= l - margin);
    let at_or_below = |limit: Option<f64>, margin: f64| limit.is_some_and(|l| value <= l + margin);
    let reached = if at_or_above(wayhigh, 0.0) {
        Some(Level::WayHigh)
    } else if at_or_above(high, 0.0) {
        Some(Level::High)
    } else if at_or_below(waylow, 0.0) {
        Some(Level::WayLow)
    } else if at_or_below(low, 0.0) {
        Some(Level::Low)
    } else {
        None
    };
    let kept = match held {
        Some(Level::WayHigh) if at_or_above(wayhigh, deadband) => Some(Level::WayHigh),
        Some(Level::WayHigh | Level::High) if at_or_above(high, deadband) => Some(Level::High),
        Some(Level::WayLow) if at_or_below(waylow, deadband) => Some(Level::WayLow),
        Some(Level::WayLow | Level::Low) if at_or_below(low, deadband) => Some(Level::Low),
        _ => None,
    };
    match (reached, kept) {
        (Some(r), Some(k)) if r.side() == k.side() && k.severity() >= r.severity() => Some(k),
        (Some(r), _) => Some(r),
        (None, k) => k,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const S: i64 = 1_000_000;

    fn limits(
        waylow: Option<f64>,
        low: Option<f64>,
        high: Option<f64>,
        wayhigh: Option<f64>,
        deadband: f64,
    ) -> AlarmCondition {
        AlarmCondition::Limits { waylow, low, high, wayhigh, deadband }
    }

    fn rule(condition: AlarmCondition, delay_secs: u64) -> AlarmRule {
        AlarmRule { condition, delay_secs, message: None }
    }

    /// waylow 0, low 10, high 30, wayhigh 40, deadband 2, no delay.
    fn four_limits() -> AlarmEvaluator {
        AlarmEvaluator::new(rule(limits(Some(0.0), Some(10.0), Some(30.0), Some(40.0), 2.0), 0)).unwrap()
    }

    /// Feeds good samples one second apart from `start` seconds and returns every transition.
    fn feed(e: &mut AlarmEvaluator, start: i64, values: &[f64]) -> Vec<Transition> {
        let mut out = Vec::new();
        for (i, &v) in values.iter().enumerate() {
            out.extend(e.observe(v, Quality::GOOD, (start + i as i64) * S));
        }
        out
    }

    fn kinds(ts: &[Transition]) -> Vec<(AlarmState, Level, TransitionKind)> {
        ts.iter().map(|t| (t.to, t.level, t.kind.clone())).collect()
    }

    fn ack(by: &str) -> TransitionKind {
        TransitionKind::Acknowledged { by: by.into() }
    }

    #[test]
    fn high_raised_and_cleared_with_deadband() {
        let mut e = four_limits();
        assert!(feed(&mut e, 0, &[20.0, 29.9]).is_empty());
        let t = e.observe(30.0, Quality::GOOD, 2 * S);
        assert_eq!(
            t,
            vec![Transition {
                at_us: 2 * S,
                from: AlarmState::Normal,
                to: AlarmState::Active,
                level: Level::High,
                value: Some(30.0),
                kind: TransitionKind::Raised,
            }]
        );
        assert_eq!((e.state(), e.level(), e.since_us()), (AlarmState::Active, Some(Level::High), Some(2 * S)));
        // Hovering around the limit, inside the deadband: no chatter.
        assert!(feed(&mut e, 3, &[29.0, 30.5, 28.0, 29.9, 28.5, 31.0]).is_empty());
        let t = e.observe(27.9, Quality::GOOD, 10 * S);
        assert_eq!(kinds(&t), vec![(AlarmState::Cleared, Level::High, TransitionKind::Cleared)]);
        assert_eq!((t[0].at_us, t[0].value), (10 * S, Some(27.9)));
        assert_eq!((e.state(), e.level()), (AlarmState::Cleared, Some(Level::High)));
        // Below the limit again: nothing, even inside the old deadband.
        assert!(feed(&mut e, 11, &[29.0, 29.9]).is_empty());
    }

    #[test]
    fn low_raised_and_cleared_with_deadband() {
        let mut e = four_limits();
        assert!(feed(&mut e, 0, &[20.0, 10.1]).is_empty());
        let t = e.observe(10.0, Quality::GOOD, 2 * S);
        assert_eq!(kinds(&t), vec![(AlarmState::Active, Level::Low, TransitionKind::Raised)]);
        assert!(feed(&mut e, 3, &[11.0, 9.0, 12.0, 10.5]).is_empty());
        let t = e.observe(12.1, Quality::GOOD, 7 * S);
        assert_eq!(kinds(&t), vec![(AlarmState::Cleared, Level::Low, TransitionKind::Cleared)]);
    }

    #[test]
    fn wayhigh_escalation_and_deescalation_are_level_changes() {
        let mut e = four_limits();
        let t = feed(&mut e, 0, &[31.0, 40.0, 39.0, 38.0, 37.9, 29.0, 27.0]);
        assert_eq!(
            kinds(&t),
            vec![
                (AlarmState::Active, Level::High, TransitionKind::Raised),
                (AlarmState::Active, Level::WayHigh, TransitionKind::LevelChanged { from: Level::High }),
                // 39 and 38 are inside the way-high deadband; 37.9 is below it but above 28.
                (AlarmState::Active, Level::High, TransitionKind::LevelChanged { from: Level::WayHigh }),
                (AlarmState::Cleared, Level::High, TransitionKind::Cleared),
            ]
        );
        assert_eq!(t[2].at_us, 4 * S);
        assert_eq!(t[3].at_us, 6 * S);
    }

    #[test]
    fn waylow_straight_from_normal_and_back() {
        let mut e = four_limits();
        let t = feed(&mut e, 0, &[20.0, -5.0, 1.0, 2.1, 12.5]);
        assert_eq!(
            kinds(&t),
            vec![
                (AlarmState::Active, Level::WayLow, TransitionKind::Raised),
                (AlarmState::Active, Level::Low, TransitionKind::LevelChanged { from: Level::WayLow }),
                (AlarmState::Cleared, Level::Low, TransitionKind::Cleared),
            ]
        );
        assert_eq!(t.iter().map(|t| t.at_us).collect::<Vec<_>>(), vec![S, 3 * S, 4 * S]);
        // Straight from way-high to normal in one sample.
        let t = feed(&mut e, 10, &[45.0, 20.0]);
        assert_eq!(
            kinds(&t),
            vec![
                (AlarmState::Active, Level::WayHigh, TransitionKind::Raised),
                (AlarmState::Cleared, Level::WayHigh, TransitionKind::Cleared),
            ]
        );
    }

    #[test]
    fn only_way_limits() {
        let mut e = AlarmEvaluator::new(rule(limits(Some(-10.0), None, None, Some(50.0), 1.0), 0)).unwrap();
        let t = feed(&mut e, 0, &[40.0, 50.0, 49.0, 48.9, -10.0, -9.0, -8.9]);
        assert_eq!(
            kinds(&t),
            vec![
                (AlarmState::Active, Level::WayHigh, TransitionKind::Raised),
                (AlarmState::Cleared, Level::WayHigh, TransitionKind::Cleared),
                (AlarmState::Active, Level::WayLow, TransitionKind::Raised),
                (AlarmState::Cleared, Level::WayLow, TransitionKind::Cleared),
            ]
        );
    }

    #[test]
    fn jump_to_the_other_side_changes_level() {
        let mut e = four_limits();
        let t = feed(&mut e, 0, &[35.0, 5.0]);
        assert_eq!(t[1].kind, TransitionKind::LevelChanged { from: Level::High });
        assert_eq!((t[1].to, t[1].level), (AlarmState::Active, Level::Low));
        // A deadband wider than the gap between low and high: a value below low is low, not a kept high.
        let mut e = AlarmEvaluator::new(rule(limits(None, Some(10.0), Some(20.0), None, 15.0), 0)).unwrap();
        let t = feed(&mut e, 0, &[20.0, 12.0, 10.0]);
        assert_eq!(kinds(&t)[1], (AlarmState::Active, Level::Low, TransitionKind::LevelChanged { from: Level::High }));
    }

    #[test]
    fn escalation_after_acknowledgement_needs_a_new_one() {
        let mut e = four_limits();
        feed(&mut e, 0, &[31.0]);
        e.acknowledge("alice", S).unwrap();
        let t = feed(&mut e, 2, &[41.0]);
        assert_eq!(
            kinds(&t),
            vec![(AlarmState::Active, Level::WayHigh, TransitionKind::LevelChanged { from: Level::High })]
        );
        e.acknowledge("bob", 3 * S).unwrap();
        // Down to high while acknowledged: stays acknowledged.
        let t = feed(&mut e, 4, &[35.0]);
        assert_eq!(
            kinds(&t),
            vec![(AlarmState::Acknowledged, Level::High, TransitionKind::LevelChanged { from: Level::WayHigh })]
        );
        // Over to the other side: a new acknowledgement is needed.
        let t = feed(&mut e, 5, &[5.0]);
        assert_eq!(
            kinds(&t),
            vec![(AlarmState::Active, Level::Low, TransitionKind::LevelChanged { from: Level::High })]
        );
    }

    #[test]
    fn acknowledgement_rules() {
        let mut e = four_limits();
        assert_eq!(e.acknowledge("alice", 0), Err(AlarmError::NothingToAcknowledge));
        feed(&mut e, 0, &[35.0]);
        assert_eq!(e.acknowledge("  ", S), Err(AlarmError::NoUser));
        assert_eq!(e.state(), AlarmState::Active);
        let t = e.acknowledge("alice", 2 * S).unwrap();
        assert_eq!(
            t,
            Transition {
                at_us: 2 * S,
                from: AlarmState::Active,
                to: AlarmState::Acknowledged,
                level: Level::High,
                value: Some(35.0),
                kind: ack("alice"),
            }
        );
        assert_eq!(e.acknowledge("bob", 3 * S), Err(AlarmError::AlreadyAcknowledged));
        assert_eq!((e.state(), e.since_us()), (AlarmState::Acknowledged, Some(2 * S)));
        // Acknowledged, then the condition goes away: normal.
        let t = feed(&mut e, 4, &[20.0]);
        assert_eq!(kinds(&t), vec![(AlarmState::Normal, Level::High, TransitionKind::Normal)]);
        assert_eq!((e.state(), e.level()), (AlarmState::Normal, None));
        assert_eq!(e.acknowledge("alice", 5 * S), Err(AlarmError::NothingToAcknowledge));
        // Cleared before acknowledgement: stays until acknowledged, then normal.
        feed(&mut e, 6, &[35.0, 20.0]);
        assert_eq!(e.state(), AlarmState::Cleared);
        let t = e.acknowledge("bob", 9 * S).unwrap();
        assert_eq!((t.from, t.to, t.level, t.kind), (AlarmState::Cleared, AlarmState::Normal, Level::High, ack("bob")));
        assert_eq!((e.state(), e.level()), (AlarmState::Normal, None));
    }

    #[test]
    fn raised_again_while_cleared() {
        let mut e = four_limits();
        let t = feed(&mut e, 0, &[35.0, 20.0, 36.0]);
        assert_eq!(
            t.iter().map(|t| (t.from, t.to)).collect::<Vec<_>>(),
            vec![
                (AlarmState::Normal, AlarmState::Active),
                (AlarmState::Active, AlarmState::Cleared),
                (AlarmState::Cleared, AlarmState::Active),
            ]
        );
        assert_eq!(t[2].kind, TransitionKind::Raised);
    }

    #[test]
    fn delay_ignores_a_short_excursion_and_raises_a_long_one_at_tick() {
        let mut e = AlarmEvaluator::new(rule(limits(None, None, Some(30.0), None, 1.0), 60)).unwrap();
        // 50 s above, then back below the deadband: nothing.
        assert!(e.observe(35.0, Quality::GOOD, 100 * S).is_empty());
        assert!(e.tick(149 * S).is_empty());
        assert!(e.observe(28.0, Quality::GOOD, 150 * S).is_empty());
        assert!(e.tick(300 * S).is_empty());
        assert_eq!(e.state(), AlarmState::Normal);
        // Above again from 400 s; staying inside the deadband counts as holding.
        assert!(e.observe(31.0, Quality::GOOD, 400 * S).is_empty());
        assert!(e.observe(29.5, Quality::GOOD, 430 * S).is_empty());
        assert!(e.tick(459 * S).is_empty());
        let t = e.tick(465 * S);
        assert_eq!(
            t,
            vec![Transition {
                at_us: 460 * S,
                from: AlarmState::Normal,
                to: AlarmState::Active,
                level: Level::High,
                value: Some(29.5),
                kind: TransitionKind::Raised,
            }]
        );
        assert!(e.tick(500 * S).is_empty());
        let t = e.observe(28.9, Quality::GOOD, 510 * S);
        assert_eq!(kinds(&t), vec![(AlarmState::Cleared, Level::High, TransitionKind::Cleared)]);
    }

    #[test]
    fn delay_ran_out_between_samples_without_a_tick() {
        let mut e = AlarmEvaluator::new(rule(limits(None, None, Some(30.0), Some(40.0), 0.0), 10)).unwrap();
        assert!(e.observe(35.0, Quality::GOOD, 0).is_empty());
        // The delay ran out at 10 s; the next sample (already back to normal) reports it first.
        let t = e.observe(20.0, Quality::GOOD, 15 * S);
        assert_eq!(
            t.iter().map(|t| (t.at_us, t.to, t.value, t.kind.clone())).collect::<Vec<_>>(),
            vec![
                (10 * S, AlarmState::Active, Some(35.0), TransitionKind::Raised),
                (15 * S, AlarmState::Cleared, Some(20.0), TransitionKind::Cleared),
            ]
        );
        // A change of level while pending keeps the delay running; the raise has the new level.
        assert!(e.observe(31.0, Quality::GOOD, 20 * S).is_empty());
        assert!(e.observe(45.0, Quality::GOOD, 25 * S).is_empty());
        let t = e.observe(46.0, Quality::GOOD, 30 * S);
        assert_eq!(kinds(&t), vec![(AlarmState::Active, Level::WayHigh, TransitionKind::Raised)]);
        assert_eq!(t[0].at_us, 30 * S);
    }

    #[test]
    fn bad_quality_and_nan_are_ignored() {
        let mut e = four_limits();
        for q in [Quality::BAD_COMM_FAILURE, Quality::BAD_LAST_KNOWN, Quality::UNCERTAIN_LAST_USABLE, Quality::BAD] {
            assert!(e.observe(99.0, q, 0).is_empty());
        }
        assert!(e.observe(f64::NAN, Quality::GOOD, 0).is_empty());
        assert_eq!(e.state(), AlarmState::Normal);
        // A manual override is still good.
        assert_eq!(e.observe(35.0, Quality::GOOD_LOCAL_OVERRIDE, S).len(), 1);
        // Bad or NaN samples do not clear either.
        assert!(e.observe(20.0, Quality::BAD_COMM_FAILURE, 2 * S).is_empty());
        assert!(e.observe(f64::NAN, Quality::GOOD, 3 * S).is_empty());
        assert_eq!((e.state(), e.level()), (AlarmState::Active, Some(Level::High)));
        // The deadband is still judged from the held level.
        assert!(e.observe(29.0, Quality::GOOD, 4 * S).is_empty());
    }

    #[test]
    fn older_samples_are_ignored() {
        let mut e = four_limits();
        feed(&mut e, 10, &[35.0]);
        assert!(e.observe(20.0, Quality::GOOD, 5 * S).is_empty());
        assert_eq!(e.state(), AlarmState::Active);
        // The same timestamp is accepted.
        assert_eq!(e.observe(20.0, Quality::GOOD, 10 * S).len(), 1);
    }

    #[test]
    fn digital_state_alarm() {
        let mut e = AlarmEvaluator::new(rule(AlarmCondition::Digital { alarm_when: true }, 0)).unwrap();
        let t = feed(&mut e, 0, &[0.0, 1.0, 2.0, 0.0]);
        assert_eq!(
            kinds(&t),
            vec![
                (AlarmState::Active, Level::State, TransitionKind::Raised),
                (AlarmState::Cleared, Level::State, TransitionKind::Cleared),
            ]
        );
        let mut e = AlarmEvaluator::new(rule(AlarmCondition::Digital { alarm_when: false }, 5)).unwrap();
        assert!(feed(&mut e, 0, &[1.0, 0.0, 0.0, 1.0]).is_empty());
        assert!(feed(&mut e, 10, &[0.0]).is_empty());
        let t = e.tick(15 * S);
        assert_eq!(kinds(&t), vec![(AlarmState::Active, Level::State, TransitionKind::Raised)]);
        assert_eq!(t[0].value, Some(0.0));
        // A digital rule ignores online flags.
        assert!(e.observe_online(false, 20 * S).is_empty());
    }

    #[test]
    fn device_offline_with_delay() {
        let mut e = AlarmEvaluator::new(rule(AlarmCondition::DeviceOffline, 30)).unwrap();
        assert!(e.observe_online(true, 0).is_empty());
        // A 20 s outage: nothing.
        assert!(e.observe_online(false, 10 * S).is_empty());
        assert!(e.tick(35 * S).is_empty());
        assert!(e.observe_online(true, 30 * S).is_empty());
        assert!(e.tick(100 * S).is_empty());
        // Values (even bad ones) do not matter to an offline rule.
        assert!(e.observe(0.0, Quality::BAD_COMM_FAILURE, 100 * S).is_empty());
        // A long outage.
        assert!(e.observe_online(false, 200 * S).is_empty());
        assert!(e.observe_online(false, 220 * S).is_empty());
        let t = e.tick(231 * S);
        assert_eq!(
            t,
            vec![Transition {
                at_us: 230 * S,
                from: AlarmState::Normal,
                to: AlarmState::Active,
                level: Level::Offline,
                value: None,
                kind: TransitionKind::Raised,
            }]
        );
        let t = e.observe_online(true, 300 * S);
        assert_eq!(kinds(&t), vec![(AlarmState::Cleared, Level::Offline, TransitionKind::Cleared)]);
        assert!(e.observe_online(false, 250 * S).is_empty(), "older than the latest flag");
        // A limit rule ignores online flags.
        let mut e = four_limits();
        assert!(e.observe_online(false, 0).is_empty());
        assert!(e.tick(i64::MAX).is_empty());
    }

    #[test]
    fn transitions_never_go_back_in_time() {
        let mut e = AlarmEvaluator::new(rule(limits(None, None, Some(30.0), None, 0.0), 10)).unwrap();
        feed(&mut e, 0, &[35.0]);
        e.tick(20 * S); // raised at 10 s
        e.acknowledge("alice", 12 * S).unwrap();
        // A sample from a device whose clock is behind.
        let t = e.observe(20.0, Quality::GOOD, 5 * S);
        assert_eq!((t[0].at_us, t[0].to), (12 * S, AlarmState::Normal));
    }

    #[test]
    fn rule_validation_names_the_field() {
        let field = |condition: AlarmCondition, delay_secs: u64| match rule(condition, delay_secs).validate() {
            Err(AlarmError::InvalidRule { field, .. }) => field,
            other => panic!("expected an invalid rule, got {other:?}"),
        };
        assert_eq!(field(limits(None, None, None, None, 0.0), 0), "condition");
        assert_eq!(field(limits(None, Some(f64::NAN), None, None, 0.0), 0), "condition.low");
        assert_eq!(field(limits(None, None, Some(f64::INFINITY), None, 0.0), 0), "condition.high");
        assert_eq!(field(limits(None, None, Some(1.0), None, -1.0), 0), "condition.deadband");
        assert_eq!(field(limits(None, None, Some(1.0), None, f64::NAN), 0), "condition.deadband");
        assert_eq!(field(limits(Some(5.0), Some(4.0), None, None, 0.0), 0), "condition.low");
        assert_eq!(field(limits(None, Some(5.0), Some(5.0), None, 0.0), 0), "condition.high");
        assert_eq!(field(limits(Some(5.0), None, Some(5.0), None, 0.0), 0), "condition.high");
        assert_eq!(field(limits(None, Some(5.0), None, Some(5.0), 0.0), 0), "condition.wayhigh");
        assert_eq!(field(limits(None, None, Some(50.0), Some(40.0), 0.0), 0), "condition.wayhigh");
        assert_eq!(field(AlarmCondition::DeviceOffline, MAX_DELAY_SECS + 1), "delay_secs");
        let e = rule(limits(None, Some(5.0), Some(5.0), None, 0.0), 0).validate().unwrap_err();
        assert_eq!(e.to_string(), "condition.high: must be above condition.low (5)");
        assert!(AlarmEvaluator::new(rule(limits(None, None, None, None, 0.0), 0)).is_err());
        // Equal limits within a side are allowed.
        rule(limits(Some(5.0), Some(5.0), Some(6.0), Some(6.0), 0.0), MAX_DELAY_SECS).validate().unwrap();
        rule(AlarmCondition::Digital { alarm_when: false }, 0).validate().unwrap();
    }

    #[test]
    fn rules_from_toml() {
        let r: AlarmRule = toml::from_str(
            "delay_secs = 60\nmessage = \"Supply air too hot\"\n[condition]\nkind = \"limits\"\nhigh = 30\nwayhigh = 40.5\n",
        )
        .unwrap();
        assert_eq!(
            r,
            AlarmRule {
                message: Some("Supply air too hot".into()),
                ..rule(limits(None, None, Some(30.0), Some(40.5), 0.0), 60)
            }
        );
        let r: AlarmRule = toml::from_str("condition = { kind = \"device_offline\" }").unwrap();
        assert_eq!(r, rule(AlarmCondition::DeviceOffline, 0));
        let r: AlarmRule = toml::from_str("condition = { kind = \"digital\", alarm_when = true }").unwrap();
        assert_eq!(r, rule(AlarmCondition::Digital { alarm_when: true }, 0));
        assert!(toml::from_str::<AlarmRule>("condition = { kind = \"limits\", hi = 30 }").is_err());
        assert!(toml::from_str::<AlarmRule>("condition = { kind = \"device_offline\" }\ndelay = 5").is_err());
    }

    #[test]
    fn transitions_round_trip_through_serde() {
        let mut e = four_limits();
        let mut all = feed(&mut e, 0, &[41.0, 35.0]);
        all.push(e.acknowledge("alice", 3 * S).unwrap());
        for t in all {
            let text = toml::to_string(&t).unwrap();
            assert_eq!(toml::from_str::<Transition>(&text).unwrap(), t, "{text}");
        }
        let t = toml::to_string(&Transition {
            at_us: 1,
            from: AlarmState::Normal,
            to: AlarmState::Active,
            level: Level::WayHigh,
            value: None,
            kind: TransitionKind::LevelChanged { from: Level::High },
        })
        .unwrap();
        assert!(t.contains("level = \"wayhigh\"") && t.contains("type = \"level_changed\""), "{t}");
    }

    #[test]
    fn resume_from_history() {
        let r = rule(limits(None, None, Some(30.0), None, 2.0), 0);
        let mut e = AlarmEvaluator::new(r.clone()).unwrap();
        feed(&mut e, 0, &[35.0]);
        let last = e.acknowledge("alice", S).unwrap();
        let mut resumed = AlarmEvaluator::resume(r.clone(), &last).unwrap();
        assert_eq!((resumed.state(), resumed.level(), resumed.since_us()), (e.state(), e.level(), e.since_us()));
        // Inside the deadband: still acknowledged; below it: normal.
        assert!(resumed.observe(29.0, Quality::GOOD, 2 * S).is_empty());
        assert_eq!(kinds(&resumed.observe(27.0, Quality::GOOD, 3 * S))[0].0, AlarmState::Normal);
        let offline = AlarmEvaluator::resume(rule(AlarmCondition::DeviceOffline, 0), &last);
        assert_eq!(offline, Err(AlarmError::LevelMismatch(Level::High)));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Sample { value: f64, good: bool, dt: i64 },
        Online { online: bool, dt: i64 },
        Tick { dt: i64 },
        Ack { dt: i64 },
    }

    fn op() -> impl Strategy<Value = Op> {
        let value = prop_oneof![
            (-20.0..60.0f64),
            prop::sample::select(vec![-10.0, 0.0, 2.0, 10.0, 12.0, 28.0, 30.0, 38.0, 40.0, 50.0]),
        ];
        prop_oneof![
            6 => (value, prop::bool::weighted(0.9), 0..20i64).prop_map(|(value, good, dt)| Op::Sample { value, good, dt }),
            1 => (any::<bool>(), 0..20i64).prop_map(|(online, dt)| Op::Online { online, dt }),
            2 => (0..30i64).prop_map(|dt| Op::Tick { dt }),
            2 => (0..5i64).prop_map(|dt| Op::Ack { dt }),
        ]
    }

    fn any_rule() -> impl Strategy<Value = AlarmRule> {
        let condition = prop_oneof![
            4 => (any::<[bool; 4]>(), 0.0..5.0f64).prop_map(|(on, deadband)| {
                let pick = |i: usize, v: f64| on[i].then_some(v);
                let (waylow, low, high, wayhigh) = (pick(0, 0.0), pick(1, 10.0), pick(2, 30.0), pick(3, 40.0));
                let high = if on.iter().all(|b| !b) { Some(30.0) } else { high };
                AlarmCondition::Limits { waylow, low, high, wayhigh, deadband }
            }),
            1 => any::<bool>().prop_map(|alarm_when| AlarmCondition::Digital { alarm_when }),
            1 => Just(AlarmCondition::DeviceOffline),
        ];
        (condition, prop::sample::select(vec![0u64, 5, 30]))
            .prop_map(|(condition, delay_secs)| rule(condition, delay_secs))
    }

    /// Applies one op at the running clock `now` (seconds advance by each op's `dt`); ticks only
    /// when `with_ticks`.
    fn step(e: &mut AlarmEvaluator, now: &mut i64, op: &Op, with_ticks: bool) -> Vec<Transition> {
        let (Op::Sample { dt, .. } | Op::Online { dt, .. } | Op::Tick { dt } | Op::Ack { dt }) = *op;
        *now += dt * S;
        match *op {
            Op::Sample { value, good, .. } => {
                let quality = if good { Quality::GOOD } else { Quality::BAD_COMM_FAILURE };
                e.observe(value, quality, *now)
            }
            Op::Online { online, .. } => e.observe_online(online, *now),
            Op::Tick { .. } if with_ticks => e.tick(*now),
            Op::Tick { .. } => Vec::new(),
            Op::Ack { .. } => {
                let before = e.clone();
                match e.acknowledge("op", *now) {
                    Ok(t) => vec![t],
                    Err(_) => {
                        assert_eq!(*e, before, "a refused acknowledgement changes nothing");
                        Vec::new()
                    }
                }
            }
        }
    }

    proptest! {
        #[test]
        fn transitions_are_consistent(r in any_rule(), ops in prop::collection::vec(op(), 0..80)) {
            let mut e = AlarmEvaluator::new(r).unwrap();
            let mut now = 0;
            let mut previous: Option<Transition> = None;
            let mut raised = false;
            for op in &ops {
                for t in step(&mut e, &mut now, op, true) {
                    match &previous {
                        Some(p) => {
                            prop_assert_eq!(t.from, p.to, "chained");
                            prop_assert!(t.at_us >= p.at_us, "time goes forward");
                        }
                        None => prop_assert_eq!(t.from, AlarmState::Normal),
                    }
                    prop_assert!(t.from != t.to || matches!(t.kind, TransitionKind::LevelChanged { .. }), "a state change");
                    prop_assert!(e.rule().condition.produces(t.level));
                    match t.kind {
                        TransitionKind::Raised => {
                            prop_assert!(!raised, "raised twice without a clear");
                            raised = true;
                        }
                        TransitionKind::Cleared | TransitionKind::Normal => raised = false,
                        _ => {}
                    }
                    previous = Some(t);
                }
                prop_assert_eq!(e.state(), previous.as_ref().map_or(AlarmState::Normal, |p| p.to));
                prop_assert_eq!(e.since_us(), previous.as_ref().map(|p| p.at_us));
                let expected_level = previous.as_ref().filter(|p| p.to != AlarmState::Normal).map(|p| p.level);
                prop_assert_eq!(e.level(), expected_level);
            }
        }

        #[test]
        fn history_does_not_depend_on_ticks(r in any_rule(), ops in prop::collection::vec(op(), 0..80)) {
            // Acknowledgements are left out: what they acknowledge depends on what was raised by then.
            let ops: Vec<Op> = ops.into_iter().filter(|op| !matches!(op, Op::Ack { .. })).collect();
            let mut histories = Vec::new();
            for with_ticks in [true, false] {
                let mut e = AlarmEvaluator::new(r.clone()).unwrap();
                let mut now = 0;
                let mut history: Vec<Transition> = ops.iter().flat_map(|op| step(&mut e, &mut now, op, with_ticks)).collect();
                history.extend(e.tick(i64::MAX));
                histories.push(history);
            }
            prop_assert_eq!(&histories[0], &histories[1]);
        }
    }

    /// A fault alarm goes normal -> active -> acknowledged -> normal, or active -> cleared ->
    /// normal by acknowledgement; repeated reports change nothing, and it resumes from history.
    #[test]
    fn a_fault_alarm_follows_its_fault_and_its_acknowledgement() {
        let mut a = FaultAlarm::new(Level::Fault);
        assert_eq!(a.set(false, 1), None);
        let raised = a.set(true, 2).unwrap();
        assert_eq!(
            (raised.from, raised.to, raised.kind.clone()),
            (AlarmState::Normal, AlarmState::Active, TransitionKind::Raised)
        );
        assert_eq!(raised.level, Level::Fault);
        assert_eq!(a.set(true, 3), None, "still present: no new transition");
        let ack = a.acknowledge("alice", 4).unwrap();
        assert_eq!(ack.to, AlarmState::Acknowledged);
        assert_eq!(a.acknowledge("bob", 5), Err(AlarmError::AlreadyAcknowledged));
        assert_eq!(a.set(false, 6).unwrap().kind, TransitionKind::Normal);
        assert_eq!(a.acknowledge("alice", 7), Err(AlarmError::NothingToAcknowledge));

        a.set(true, 8).unwrap();
        let cleared = a.set(false, 9).unwrap();
        assert_eq!((cleared.to, cleared.kind.clone()), (AlarmState::Cleared, TransitionKind::Cleared));
        // Back while cleared: raised again.
        assert_eq!(a.set(true, 10).unwrap().kind, TransitionKind::Raised);
        a.set(false, 11).unwrap();
        assert_eq!(a.acknowledge(" ", 12), Err(AlarmError::NoUser));
        let ack = a.acknowledge("alice", 12).unwrap();
        assert_eq!((ack.from, ack.to), (AlarmState::Cleared, AlarmState::Normal));

        // Time never goes backwards; a restart resumes the state and when it began.
        let raised = a.set(true, 5).unwrap();
        assert_eq!(raised.at_us, 12);
        let resumed = FaultAlarm::resume(Level::Fault, &raised);
        assert_eq!((resumed.state(), resumed.since_us()), (AlarmState::Active, Some(12)));
        assert_eq!(Level::Warning.severity(), 1);
        assert_eq!(Level::Fault.severity(), 2);
    }

    /// An alarm that gathers several faults: a new fault raises it again from active or
    /// acknowledged (active, unacknowledged), one fault ending while others remain is a `cleared`
    /// that keeps the state; neither happens to an alarm that is not on.
    #[test]
    fn a_fault_alarm_is_raised_again_by_a_new_fault_and_eased_by_one_that_ends() {
        let mut a = FaultAlarm::new(Level::Offline);
        assert_eq!(a.ease(1), None, "nothing to ease while normal");
        let first = a.raise_again(2);
        assert_eq!(
            (first.from, first.to, first.kind),
            (AlarmState::Normal, AlarmState::Active, TransitionKind::Raised)
        );
        let again = a.raise_again(3);
        assert_eq!(
            (again.from, again.to, again.kind),
            (AlarmState::Active, AlarmState::Active, TransitionKind::Raised)
        );
        let eased = a.ease(4).unwrap();
        assert_eq!(
            (eased.from, eased.to, eased.kind),
            (AlarmState::Active, AlarmState::Active, TransitionKind::Cleared)
        );
        assert_eq!(eased.level, Level::Offline);
        a.acknowledge("alice", 5).unwrap();
        let eased = a.ease(6).unwrap();
        assert_eq!((eased.from, eased.to), (AlarmState::Acknowledged, AlarmState::Acknowledged));
        let again = a.raise_again(7);
        assert_eq!(
            (again.from, again.to),
            (AlarmState::Acknowledged, AlarmState::Active),
            "needs a new acknowledgement"
        );
        assert_eq!(a.since_us(), Some(7));
        a.set(false, 8).unwrap();
        assert_eq!(a.ease(9), None, "nothing to ease once cleared");
        let resumed = FaultAlarm::resume(Level::Offline, &eased);
        assert_eq!(resumed.state(), AlarmState::Acknowledged, "an eased alarm resumes in the state it kept");
    }
}
