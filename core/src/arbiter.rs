//! Command arbitration for writable points, the way BACnet priority arrays do it.
//!
//! Every writable point (an output or variable of a T3 controller) has a [`PriorityArray`] of 16
//! slots. A [`Command`] occupies the slot of its [`Priority`] (1 is the most important, 16 the
//! least); a later command at the same priority replaces the earlier one. The point's
//! [`Effective`] value is the command in the most important slot that is still in force. When
//! every slot is empty there is no effective value and the device keeps its own.
//!
//! A command may carry an expiry: it is in force while `now_us < expires_us` and is relinquished
//! automatically after that, even if [`PriorityArray::expire`] has not been called yet. Callers
//! schedule [`Arbiter::expire`] at [`Arbiter::next_expiry`] to learn about the changes that expiry
//! causes.
//!
//! Times are microseconds since the Unix epoch, UTC, and are expected not to go backwards: a command
//! that expired is gone for good.
//!
//! # Changes
//!
//! Every call that modifies an array returns a [`Change`]. `before` is the effective value as the
//! previous modifying call left it (what that call reported as `after`), so the changes of one point
//! form an unbroken chain even when an expiry was noticed late: the expiry is folded into the next
//! change.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize, Serializer};

/// Number of slots in a priority array.
const SLOTS: usize = 16;

/// Why a priority or command was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ArbiterError {
    /// The priority is not within 1..=16.
    #[error("priority {0} is out of range 1..=16")]
    InvalidPriority(u8),
    /// The commanded value is NaN or infinite.
    #[error("command value {0} is not a finite number")]
    NonFiniteValue(f64),
    /// The expiry is at or before the time the command was issued.
    #[error("command expires at {expires_us} us, not after it was issued at {issued_us} us")]
    ExpiryNotAfterIssue {
        /// When the command was issued, microseconds since the epoch.
        issued_us: i64,
        /// When the command would expire, microseconds since the epoch.
        expires_us: i64,
    },
    /// The command's expiry has already passed, so it would never be in force.
    #[error("command expired at {expires_us} us, at or before now ({now_us} us)")]
    AlreadyExpired {
        /// When the command expires, microseconds since the epoch.
        expires_us: i64,
        /// The time of the write, microseconds since the epoch.
        now_us: i64,
    },
    /// Two commands of one priority array share a priority (when deserializing an array).
    #[error("priority {0} appears more than once in the priority array")]
    DuplicatePriority(Priority),
}

/// A command priority, 1 (most important) to 16 (least important).
///
/// Ordering follows the number, so a *smaller* priority is the *more important* one. Serialized as
/// a plain number; deserialization refuses numbers outside 1..=16.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Priority(u8);

impl Priority {
    /// The most important priority (BACnet "manual life safety").
    pub const HIGHEST: Priority = Priority(1);
    /// Default priority of an operator's manual command.
    pub const OPERATOR: Priority = Priority(8);
    /// Default priority of a schedule.
    pub const SCHEDULE: Priority = Priority(15);
    /// Default priority of a control program.
    pub const PROGRAM: Priority = Priority(16);
    /// The least important priority.
    pub const LOWEST: Priority = Priority(16);

    /// A priority from its number, which must be within 1..=16.
    pub const fn new(priority: u8) -> Result<Priority, ArbiterError> {
        if priority >= 1 && priority as usize <= SLOTS {
            Ok(Priority(priority))
        } else {
            Err(ArbiterError::InvalidPriority(priority))
        }
    }

    /// The priority's number, 1..=16.
    pub const fn get(self) -> u8 {
        self.0
    }

    /// Index of this priority's slot, 0..16.
    fn index(self) -> usize {
        usize::from(self.0) - 1
    }
}

impl TryFrom<u8> for Priority {
    type Error = ArbiterError;

    fn try_from(priority: u8) -> Result<Self, Self::Error> {
        Priority::new(priority)
    }
}

impl From<Priority> for u8 {
    fn from(priority: Priority) -> u8 {
        priority.0
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// One write to a point at one priority.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Command {
    /// The commanded value, in the point's engineering units. Must be finite.
    pub value: f64,
    /// The slot this command occupies.
    pub priority: Priority,
    /// Who issued it: `user:alice`, `schedule:3`, `program:2`, ...
    pub source: String,
    /// When it was issued, microseconds since the epoch.
    pub issued_us: i64,
    /// When it is relinquished automatically, microseconds since the epoch; `None` for never.
    /// The command is in force while `now_us < expires_us`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_us: Option<i64>,
}

impl Command {
    /// A validated command: see [`Command::validate`].
    pub fn new(
        value: f64,
        priority: Priority,
        source: impl Into<String>,
        issued_us: i64,
        expires_us: Option<i64>,
    ) -> Result<Command, ArbiterError> {
        let command = Command { value, priority, source: source.into(), issued_us, expires_us };
        command.validate()?;
        Ok(command)
    }

    /// Checks that the value is finite and that the expiry, if any, is after the issue time.
    pub fn validate(&self) -> Result<(), ArbiterError> {
        if !self.value.is_finite() {
            return Err(ArbiterError::NonFiniteValue(self.value));
        }
        match self.expires_us {
            Some(expires_us) if expires_us <= self.issued_us => {
                Err(ArbiterError::ExpiryNotAfterIssue { issued_us: self.issued_us, expires_us })
            }
            _ => Ok(()),
        }
    }

    /// Whether the command has not expired at `now_us` (`now_us < expires_us`).
    pub fn in_force(&self, now_us: i64) -> bool {
        self.expires_us.is_none_or(|expires_us| now_us < expires_us)
    }
}

/// The command that currently wins a point's priority array.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Effective {
    /// The value the point should be driven to.
    pub value: f64,
    /// The priority of the winning command.
    pub priority: Priority,
    /// Who issued the winning command.
    pub source: String,
    /// When the winning command expires, microseconds since the epoch; `None` for never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_us: Option<i64>,
}

impl From<&Command> for Effective {
    fn from(command: &Command) -> Self {
        Effective {
            value: command.value,
            priority: command.priority,
            source: command.source.clone(),
            expires_us: command.expires_us,
        }
    }
}

/// The effective value of a point before and after a modification.
///
/// `None` means no command is in force and the device keeps its own value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// The effective value as the previous modification left it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Effective>,
    /// The effective value now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Effective>,
}

impl Change {
    /// Whether the effective value or the winning priority differs between `before` and `after`.
    ///
    /// A new source or expiry with the same value at the same priority is not a change: the device
    /// needs no new write.
    pub fn changed(&self) -> bool {
        match (&self.before, &self.after) {
            (None, None) => false,
            (Some(before), Some(after)) => before.value != after.value || before.priority != after.priority,
            _ => true,
        }
    }
}

/// The 16 command slots of one point.
///
/// Serialized as the list of occupied slots' commands, most important first; deserialization
/// validates every command and refuses duplicate priorities.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(try_from = "Vec<Command>")]
pub struct PriorityArray {
    slots: [Option<Command>; SLOTS],
}

impl PriorityArray {
    /// An array with every slot empty.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether every slot is empty (expired commands not yet removed count as occupying their slot).
    pub fn is_empty(&self) -> bool {
        self.slots.iter().all(Option::is_none)
    }

    /// The command in one slot, which may have expired if [`PriorityArray::expire`] was not called.
    pub fn get(&self, priority: Priority) -> Option<&Command> {
        self.slots[priority.index()].as_ref()
    }

    /// The occupied slots' commands, most important first, for display. Expired commands stay
    /// listed until the next modification or [`PriorityArray::expire`]; see [`Command::in_force`].
    pub fn slots(&self) -> impl Iterator<Item = &Command> + '_ {
        self.slots.iter().flatten()
    }

    /// Writes `command` into the slot of its priority, replacing what was there.
    ///
    /// Commands expired at `now_us` are removed first. Refuses an invalid command
    /// ([`Command::validate`]) and one whose expiry is at or before `now_us`; on error the array is
    /// unchanged.
    pub fn command(&mut self, command: Command, now_us: i64) -> Result<Change, ArbiterError> {
        command.validate()?;
        if let Some(expires_us) = command.expires_us
            && expires_us <= now_us
        {
            return Err(ArbiterError::AlreadyExpired { expires_us, now_us });
        }
        let before = self.last_effective();
        self.expire(now_us);
        let index = command.priority.index();
        self.slots[index] = Some(command);
        Ok(Change { before, after: self.effective(now_us) })
    }

    /// Empties the slot of `priority`. Commands expired at `now_us` are removed first.
    ///
    /// Relinquishing an empty slot is not an error: the change is then unchanged, unless removing
    /// expired commands changed the effective value.
    pub fn relinquish(&mut self, priority: Priority, now_us: i64) -> Change {
        let before = self.last_effective();
        self.expire(now_us);
        self.slots[priority.index()] = None;
        Change { before, after: self.effective(now_us) }
    }

    /// Removes every command expired at `now_us` and returns them, most important first.
    pub fn expire(&mut self, now_us: i64) -> Vec<Command> {
        self.slots.iter_mut().filter_map(|slot| slot.take_if(|command| !command.in_force(now_us))).collect()
    }

    /// The most important command in force at `now_us`; `None` when there is none and the device
    /// keeps its own value. Expired commands never count, whether or not they were removed yet.
    pub fn effective(&self, now_us: i64) -> Option<Effective> {
        self.slots().find(|command| command.in_force(now_us)).map(Effective::from)
    }

    /// The earliest expiry among the stored commands (possibly already past), if any.
    pub fn next_expiry(&self) -> Option<i64> {
        self.slots().filter_map(|command| command.expires_us).min()
    }

    /// The effective value as the last modification left it: the most important stored command,
    /// since every modification removes what expired by then.
    fn last_effective(&self) -> Option<Effective> {
        self.slots().next().map(Effective::from)
    }
}

impl Serialize for PriorityArray {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.slots())
    }
}

impl TryFrom<Vec<Command>> for PriorityArray {
    type Error = ArbiterError;

    fn try_from(commands: Vec<Command>) -> Result<Self, Self::Error> {
        let mut array = PriorityArray::new();
        for command in commands {
            command.validate()?;
            let slot = &mut array.slots[command.priority.index()];
            if slot.is_some() {
                return Err(ArbiterError::DuplicatePriority(command.priority));
            }
            *slot = Some(command);
        }
        Ok(array)
    }
}

/// The priority arrays of many points, keyed by point id. Points without commands have no array.
///
/// Serialized as a map from point id to [`PriorityArray`].
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(from = "BTreeMap<u32, PriorityArray>")]
pub struct Arbiter {
    arrays: BTreeMap<u32, PriorityArray>,
}

impl Arbiter {
    /// An arbiter with no commands.
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes `command` to `point`; see [`PriorityArray::command`]. On error nothing changes.
    pub fn command(&mut self, point: u32, command: Command, now_us: i64) -> Result<Change, ArbiterError> {
        let array = self.arrays.entry(point).or_default();
        let result = array.command(command, now_us);
        if array.is_empty() {
            // Only when the array was created for a refused command.
            self.arrays.remove(&point);
        }
        result
    }

    /// Empties one slot of `point`; see [`PriorityArray::relinquish`]. A point without commands
    /// gives an unchanged change.
    pub fn relinquish(&mut self, point: u32, priority: Priority, now_us: i64) -> Change {
        let Some(array) = self.arrays.get_mut(&point) else {
            return Change::default();
        };
        let change = array.relinquish(priority, now_us);
        if array.is_empty() {
            self.arrays.remove(&point);
        }
        change
    }

    /// Removes every command expired at `now_us` and returns the changes of the points whose
    /// effective value or winning priority changed, in point order.
    pub fn expire(&mut self, now_us: i64) -> Vec<(u32, Change)> {
        let mut changes = Vec::new();
        self.arrays.retain(|&point, array| {
            let before = array.last_effective();
            if !array.expire(now_us).is_empty() {
                let change = Change { before, after: array.effective(now_us) };
                if change.changed() {
                    changes.push((point, change));
                }
            }
            !array.is_empty()
        });
        changes
    }

    /// The effective value of `point` at `now_us`; see [`PriorityArray::effective`].
    pub fn effective(&self, point: u32, now_us: i64) -> Option<Effective> {
        self.arrays.get(&point).and_then(|array| array.effective(now_us))
    }

    /// Puts back a point's array as it was before a change that could not be carried out (the
    /// device refused the value): `None` for a point that had no commands.
    pub fn restore(&mut self, point: u32, array: Option<PriorityArray>) {
        match array {
            Some(array) if !array.is_empty() => {
                self.arrays.insert(point, array);
            }
            _ => {
                self.arrays.remove(&point);
            }
        }
    }

    /// The priority array of `point`, if it has any command.
    pub fn array(&self, point: u32) -> Option<&PriorityArray> {
        self.arrays.get(&point)
    }

    /// Every point with commands and its array, in point order.
    pub fn points(&self) -> impl Iterator<Item = (u32, &PriorityArray)> + '_ {
        self.arrays.iter().map(|(&point, array)| (point, array))
    }

    /// The earliest expiry over all points (possibly already past): when to call
    /// [`Arbiter::expire`] next.
    pub fn next_expiry(&self) -> Option<i64> {
        self.arrays.values().filter_map(PriorityArray::next_expiry).min()
    }
}

impl Serialize for Arbiter {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.arrays.serialize(serializer)
    }
}

impl From<BTreeMap<u32, PriorityArray>> for Arbiter {
    fn from(mut arrays: BTreeMap<u32, PriorityArray>) -> Self {
        arrays.retain(|_, array| !array.is_empty());
        Arbiter { arrays }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(priority: u8) -> Priority {
        Priority::new(priority).unwrap()
    }

    fn cmd(value: f64, priority: u8, source: &str, issued_us: i64, expires_us: Option<i64>) -> Command {
        Command::new(value, p(priority), source, issued_us, expires_us).unwrap()
    }

    fn eff(value: f64, priority: u8) -> impl Fn(&Option<Effective>) -> bool {
        move |e| e.as_ref().is_some_and(|e| e.value == value && e.priority.get() == priority)
    }

    #[test]
    fn priority_range_and_defaults() {
        assert_eq!(Priority::new(0), Err(ArbiterError::InvalidPriority(0)));
        assert_eq!(Priority::new(17), Err(ArbiterError::InvalidPriority(17)));
        assert_eq!(Priority::new(1).unwrap(), Priority::HIGHEST);
        assert_eq!(Priority::new(16).unwrap(), Priority::LOWEST);
        assert_eq!((Priority::OPERATOR.get(), Priority::SCHEDULE.get(), Priority::PROGRAM.get()), (8, 15, 16));
        assert!(Priority::OPERATOR < Priority::SCHEDULE, "smaller is more important");
        assert_eq!(Priority::OPERATOR.to_string(), "8");
    }

    #[test]
    fn higher_priority_wins_and_lower_is_kept_underneath() {
        let mut array = PriorityArray::new();
        let change = array.command(cmd(20.0, 15, "schedule:3", 0, None), 0).unwrap();
        assert_eq!(change.before, None);
        assert!(eff(20.0, 15)(&change.after) && change.changed());

        let change = array.command(cmd(22.0, 8, "user:alice", 10, None), 10).unwrap();
        assert!(eff(20.0, 15)(&change.before) && eff(22.0, 8)(&change.after) && change.changed());
        assert_eq!(array.effective(10).unwrap().source, "user:alice");

        // A less important command does not change what wins.
        let change = array.command(cmd(18.0, 16, "program:2", 20, None), 20).unwrap();
        assert!(!change.changed());
        assert_eq!(array.slots().map(|c| c.priority.get()).collect::<Vec<_>>(), [8, 15, 16]);

        let change = array.relinquish(Priority::OPERATOR, 30);
        assert!(eff(22.0, 8)(&change.before) && eff(20.0, 15)(&change.after) && change.changed());
        let change = array.relinquish(Priority::SCHEDULE, 40);
        assert!(eff(18.0, 16)(&change.after));
        let change = array.relinquish(Priority::PROGRAM, 50);
        assert!(eff(18.0, 16)(&change.before) && change.after.is_none() && change.changed());
        assert!(array.is_empty());
    }

    #[test]
    fn same_priority_replaces() {
        let mut array = PriorityArray::new();
        array.command(cmd(21.0, 8, "user:alice", 0, None), 0).unwrap();
        let change = array.command(cmd(21.0, 8, "user:bob", 5, Some(100)), 5).unwrap();
        assert!(!change.changed(), "same value, same priority: nothing to write");
        assert_eq!(change.after.as_ref().unwrap().source, "user:bob");
        let change = array.command(cmd(23.0, 8, "user:carol", 6, None), 6).unwrap();
        assert!(change.changed());
        assert_eq!(array.slots().count(), 1);
        assert_eq!(array.get(Priority::OPERATOR).unwrap().source, "user:carol");
        assert_eq!(array.next_expiry(), None);
    }

    #[test]
    fn priority_change_with_same_value_is_a_change() {
        let mut array = PriorityArray::new();
        array.command(cmd(1.0, 15, "schedule:1", 0, None), 0).unwrap();
        let change = array.command(cmd(1.0, 8, "user:alice", 0, None), 0).unwrap();
        assert!(change.changed());
    }

    #[test]
    fn command_is_in_force_until_exactly_its_expiry() {
        let mut array = PriorityArray::new();
        array.command(cmd(5.0, 16, "program:1", 0, None), 0).unwrap();
        array.command(cmd(9.0, 8, "user:alice", 0, Some(100)), 0).unwrap();
        assert_eq!(array.next_expiry(), Some(100));
        assert!(eff(9.0, 8)(&array.effective(99)));
        // Not removed yet, but no longer in force.
        assert!(eff(5.0, 16)(&array.effective(100)));
        assert_eq!(array.slots().count(), 2);
        assert_eq!(array.expire(99), []);
        let expired = array.expire(100);
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].source, "user:alice");
        assert_eq!(array.next_expiry(), None);
        assert_eq!(array.slots().count(), 1);
    }

    #[test]
    fn invalid_commands_are_refused_and_change_nothing() {
        assert_eq!(
            Command::new(f64::NAN, p(8), "u", 0, None).unwrap_err().to_string(),
            "command value NaN is not a finite number"
        );
        assert!(matches!(
            Command::new(f64::INFINITY, p(8), "u", 0, None),
            Err(ArbiterError::NonFiniteValue(v)) if v == f64::INFINITY
        ));
        assert_eq!(
            Command::new(1.0, p(8), "u", 10, Some(10)),
            Err(ArbiterError::ExpiryNotAfterIssue { issued_us: 10, expires_us: 10 })
        );
        assert!(Command::new(1.0, p(8), "u", 10, Some(9)).is_err());

        let mut array = PriorityArray::new();
        array.command(cmd(1.0, 8, "user:alice", 0, Some(50)), 0).unwrap();
        let saved = array.clone();
        // Fields are public, so the array validates too.
        let nan = Command { value: f64::NAN, priority: p(8), source: "x".into(), issued_us: 0, expires_us: None };
        assert!(matches!(array.command(nan, 60), Err(ArbiterError::NonFiniteValue(_))));
        let late = cmd(2.0, 4, "user:bob", 0, Some(60));
        assert_eq!(array.command(late, 60), Err(ArbiterError::AlreadyExpired { expires_us: 60, now_us: 60 }));
        // The refused calls did not even remove the expired command.
        assert_eq!(array, saved);

        let mut arbiter = Arbiter::new();
        assert!(arbiter.command(7, cmd(1.0, 8, "u", 0, Some(5)), 5).is_err());
        assert_eq!(arbiter, Arbiter::new());
    }

    #[test]
    fn relinquish_empty_slot_is_unchanged() {
        let mut array = PriorityArray::new();
        assert_eq!(array.relinquish(Priority::OPERATOR, 0), Change::default());
        array.command(cmd(3.0, 15, "schedule:1", 0, None), 0).unwrap();
        let change = array.relinquish(Priority::OPERATOR, 1);
        assert!(!change.changed());
        assert_eq!(change.before, change.after);

        let mut arbiter = Arbiter::new();
        assert_eq!(arbiter.relinquish(3, Priority::OPERATOR, 0), Change::default());
        arbiter.command(3, cmd(3.0, 8, "user:alice", 0, None), 0).unwrap();
        assert!(arbiter.relinquish(3, Priority::OPERATOR, 1).changed());
        assert_eq!(arbiter.array(3), None, "empty arrays are dropped");
    }

    #[test]
    fn late_expiry_is_folded_into_the_next_change() {
        let mut array = PriorityArray::new();
        array.command(cmd(10.0, 16, "program:1", 0, None), 0).unwrap();
        array.command(cmd(20.0, 8, "user:alice", 0, Some(100)), 0).unwrap();
        // Nobody called expire() at 100; the next write reports from what was last reported.
        let change = array.command(cmd(10.0, 12, "user:bob", 150, None), 150).unwrap();
        assert!(eff(20.0, 8)(&change.before) && eff(10.0, 12)(&change.after));
        assert_eq!(array.get(Priority::OPERATOR), None, "removed by the write");
        // Relinquishing an empty slot also removes what expired.
        array.command(cmd(30.0, 2, "user:carol", 200, Some(300)), 200).unwrap();
        let change = array.relinquish(Priority::HIGHEST, 400);
        assert!(eff(30.0, 2)(&change.before) && eff(10.0, 12)(&change.after));
    }

    #[test]
    fn arbiter_expire_reports_only_real_changes() {
        let mut arbiter = Arbiter::new();
        // 1: the winner expires and reveals the schedule.
        arbiter.command(1, cmd(15.0, 15, "schedule:1", 0, None), 0).unwrap();
        arbiter.command(1, cmd(22.0, 8, "user:alice", 0, Some(100)), 0).unwrap();
        // 2: a command underneath the winner expires.
        arbiter.command(2, cmd(1.0, 8, "user:alice", 0, None), 0).unwrap();
        arbiter.command(2, cmd(0.0, 16, "program:2", 0, Some(100)), 0).unwrap();
        // 3: the only command expires.
        arbiter.command(3, cmd(50.0, 8, "user:bob", 0, Some(90)), 0).unwrap();
        // 4: expires later.
        arbiter.command(4, cmd(7.0, 8, "user:bob", 0, Some(500)), 0).unwrap();
        // 5: the winner expires, revealing the same value at another priority.
        arbiter.command(5, cmd(4.0, 16, "program:5", 0, None), 0).unwrap();
        arbiter.command(5, cmd(4.0, 8, "user:bob", 0, Some(100)), 0).unwrap();

        assert_eq!(arbiter.next_expiry(), Some(90));
        assert_eq!(arbiter.expire(89), []);
        let changes = arbiter.expire(100);
        assert_eq!(changes.iter().map(|(point, _)| *point).collect::<Vec<_>>(), [1, 3, 5]);
        assert!(eff(22.0, 8)(&changes[0].1.before) && eff(15.0, 15)(&changes[0].1.after));
        assert!(eff(50.0, 8)(&changes[1].1.before) && changes[1].1.after.is_none());
        assert!(eff(4.0, 16)(&changes[2].1.after));
        assert_eq!(arbiter.array(2).unwrap().slots().count(), 1, "expired but unreported");
        assert_eq!(arbiter.array(3), None, "empty arrays are dropped");
        assert_eq!(arbiter.points().map(|(point, _)| point).collect::<Vec<_>>(), [1, 2, 4, 5]);
        assert_eq!(arbiter.next_expiry(), Some(500));
        assert_eq!(arbiter.expire(100), []);
        assert!(eff(7.0, 8)(&arbiter.effective(4, 499)));
        assert_eq!(arbiter.effective(4, 500), None);
        assert_eq!(arbiter.effective(99, 0), None);
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Doc {
        priority: Priority,
        command: Command,
        array: PriorityArray,
        arbiter: Arbiter,
        change: Change,
        empty: Change,
    }

    #[test]
    fn serde_round_trip() {
        let mut arbiter = Arbiter::new();
        arbiter.command(12, cmd(21.5, 8, "user:alice", 1_000, Some(2_000)), 1_000).unwrap();
        let change = arbiter.command(12, cmd(19.0, 15, "schedule:3", 1_000, None), 1_000).unwrap();
        arbiter.command(40, cmd(-3.25, 16, "program:2", 1_000, None), 1_000).unwrap();
        let doc = Doc {
            priority: Priority::SCHEDULE,
            command: cmd(1.0, 3, "user:bob", 5, Some(6)),
            array: arbiter.array(12).unwrap().clone(),
            arbiter,
            change,
            empty: Change::default(),
        };
        let text = toml::to_string(&doc).unwrap();
        assert!(text.contains("priority = 15\n"), "{text}");
        assert_eq!(toml::from_str::<Doc>(&text).unwrap(), doc);

        #[derive(Debug, Deserialize)]
        struct One<T> {
            x: T,
        }
        for bad in ["x = 0", "x = 17", "x = -1"] {
            assert!(toml::from_str::<One<Priority>>(bad).is_err(), "{bad}");
        }
        let duplicate = "x = [{ value = 1.0, priority = 8, source = 'a', issued_us = 0 },
                              { value = 2.0, priority = 8, source = 'b', issued_us = 0 }]";
        let err = toml::from_str::<One<PriorityArray>>(duplicate).unwrap_err();
        assert!(err.to_string().contains("priority 8 appears more than once"), "{err}");
        let bad_expiry = "x = [{ value = 1.0, priority = 8, source = 'a', issued_us = 5, expires_us = 5 }]";
        assert!(toml::from_str::<One<PriorityArray>>(bad_expiry).is_err());
        let empty: Arbiter = toml::from_str::<One<Arbiter>>("[x]\n7 = []").unwrap().x;
        assert_eq!(empty, Arbiter::new(), "empty arrays are dropped");
    }

    // --- property test against a naive model ---

    #[derive(Debug, Clone)]
    enum Op {
        Command { value: f64, priority: u8, issued_back: i64, expires_in: Option<i64> },
        Relinquish(u8),
        Advance(i64),
        Expire,
    }

    fn priority_strategy() -> impl Strategy<Value = u8> {
        prop_oneof![Just(8u8), Just(15), Just(16), 1u8..=16]
    }

    fn op_strategy() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (
                prop::sample::select(vec![0.0, 1.0, 20.5, 22.0]),
                priority_strategy(),
                0i64..5,
                prop::option::of(-6i64..40),
            )
                .prop_map(|(value, priority, issued_back, expires_in)| Op::Command {
                    value,
                    priority,
                    issued_back,
                    expires_in
                }),
            2 => priority_strategy().prop_map(Op::Relinquish),
            3 => (0i64..25).prop_map(Op::Advance),
            1 => Just(Op::Expire),
        ]
    }

    /// Every accepted write in order; relinquish deletes the writes of its priority.
    #[derive(Debug, Default)]
    struct Model {
        writes: Vec<Command>,
    }

    impl Model {
        /// The last write of each priority, most important first.
        fn latest(&self) -> Vec<Command> {
            let mut latest: Vec<Command> = Vec::new();
            for write in self.writes.iter().rev() {
                if !latest.iter().any(|c| c.priority == write.priority) {
                    latest.push(write.clone());
                }
            }
            latest.sort_by_key(|c| c.priority);
            latest
        }

        fn effective(&self, now_us: i64) -> Option<Effective> {
            self.latest().iter().filter(|c| c.in_force(now_us)).min_by_key(|c| c.priority).map(Effective::from)
        }
    }

    proptest! {
        #[test]
        fn priority_array_matches_naive_model(ops in prop::collection::vec(op_strategy(), 0..80)) {
            const POINT: u32 = 7;
            let mut array = PriorityArray::new();
            let mut arbiter = Arbiter::new();
            let mut model = Model::default();
            let mut now = 1_000i64;
            // Time of the last call that modified the array: everything expired by then is gone.
            let mut last_mut = i64::MIN;
            for (i, op) in ops.into_iter().enumerate() {
                match op {
                    Op::Command { value, priority, issued_back, expires_in } => {
                        let command = Command {
                            value,
                            priority: p(priority),
                            source: format!("op:{i}"),
                            issued_us: now - issued_back,
                            expires_us: expires_in.map(|d| now + d),
                        };
                        let expected_err = match command.expires_us {
                            Some(e) if e <= command.issued_us => {
                                Some(ArbiterError::ExpiryNotAfterIssue { issued_us: command.issued_us, expires_us: e })
                            }
                            Some(e) if e <= now => Some(ArbiterError::AlreadyExpired { expires_us: e, now_us: now }),
                            _ => None,
                        };
                        let saved = array.clone();
                        let result = array.command(command.clone(), now);
                        let arbiter_result = arbiter.command(POINT, command.clone(), now);
                        prop_assert_eq!(&result, &arbiter_result);
                        match expected_err {
                            Some(err) => {
                                prop_assert_eq!(result, Err(err));
                                prop_assert_eq!(&array, &saved);
                            }
                            None => {
                                let before = model.effective(last_mut);
                                model.writes.push(command);
                                last_mut = now;
                                let change = result.unwrap();
                                prop_assert_eq!(&change.before, &before);
                                prop_assert_eq!(&change.after, &model.effective(now));
                            }
                        }
                    }
                    Op::Relinquish(priority) => {
                        let before = model.effective(last_mut);
                        model.writes.retain(|c| c.priority.get() != priority);
                        last_mut = now;
                        let change = array.relinquish(p(priority), now);
                        prop_assert_eq!(&arbiter.relinquish(POINT, p(priority), now), &change);
                        prop_assert_eq!(&change.before, &before);
                        prop_assert_eq!(&change.after, &model.effective(now));
                    }
                    Op::Advance(us) => now += us,
                    Op::Expire => {
                        let expected: Vec<Command> = model
                            .latest()
                            .into_iter()
                            .filter(|c| c.expires_us.is_some_and(|e| last_mut < e && e <= now))
                            .collect();
                        let change = Change { before: model.effective(last_mut), after: model.effective(now) };
                        last_mut = now;
                        prop_assert_eq!(array.expire(now), expected);
                        let expected_changes = if change.changed() { vec![(POINT, change)] } else { vec![] };
                        prop_assert_eq!(arbiter.expire(now), expected_changes);
                    }
                }
                // What is stored: the last write of each priority that had not expired at the last modification.
                let stored: Vec<Command> =
                    model.latest().into_iter().filter(|c| c.in_force(last_mut)).collect();
                prop_assert_eq!(array.slots().cloned().collect::<Vec<_>>(), stored.clone());
                prop_assert_eq!(array.effective(now), model.effective(now));
                prop_assert_eq!(arbiter.effective(POINT, now), model.effective(now));
                prop_assert_eq!(array.next_expiry(), stored.iter().filter_map(|c| c.expires_us).min());
                prop_assert_eq!(arbiter.next_expiry(), array.next_expiry());
                prop_assert_eq!(arbiter.array(POINT), (!array.is_empty()).then_some(&array));
            }
        }
    }
}
