//! The scheduler: drives the outputs of weekly schedules and holiday calendars (T3000's weekly and
//! annual routines) through the command arbiter.
//!
//! A schedule has T3000's day types (Monday..Sunday, Holiday1, Holiday2) with up to four ON/OFF
//! pairs each, the calendars (annual routines) that turn dates into holidays, and output bindings:
//! points commanded to `on_value` / `off_value` at the schedule's priority (15 by default). Times
//! are wall-clock times of the schedule's building (`time_zone`, UTC without a building), evaluated
//! by `t3_core::schedule`, which handles daylight-saving changes.
//!
//! The scheduler compares each enabled schedule's state with the state it last applied once a
//! second ([`due`]); on a change (a transition, a start, an edit) it writes the outputs. A failed
//! write is retried after [`RETRY`]. Disabling or deleting a schedule, or unbinding an output,
//! relinquishes the schedule's commands; an output the schedule had switched to manual (the last
//! auto/manual change of the point is the schedule's) goes back to auto then, unless another
//! command is still in force on it or an enabled schedule still switches it to manual.

use crate::model::place::Building;
use crate::model::schedule::{Calendar, Schedule, ScheduleResponse, TransitionView};
use crate::service::Issuer;
use crate::service::control::{Control, ControlError};
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use t3_core::arbiter::{Command, Priority};
use t3_core::clock::Clock;
use t3_core::schedule::{self, AnnualRoutine, Tz};
use t3_storage::catalog::Catalog;

/// How long after a failed output write the scheduler tries again.
pub const RETRY: Duration = Duration::from_secs(30);

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The time zone and the calendars a schedule is evaluated with.
pub fn context(catalog: &Catalog, s: &Schedule) -> (Tz, Vec<AnnualRoutine>) {
    let tz = s
        .building_id
        .and_then(|b| catalog.get::<Building>(b))
        .and_then(|b| schedule::parse_tz(&b.time_zone).ok())
        .unwrap_or(Tz::UTC);
    let routines = catalog
        .read::<Calendar, _>(|c| s.calendar_ids.iter().filter_map(|id| c.get(id)).map(|c| c.routine.clone()).collect());
    (tz, routines)
}

/// A schedule as the API shows it at `now`: its state, next transitions and time zone.
pub fn view(catalog: &Catalog, s: &Schedule, now: DateTime<Utc>) -> ScheduleResponse {
    let (tz, routines) = context(catalog, s);
    let next = schedule::transitions(&s.weekly, &routines, tz, now, 4);
    ScheduleResponse {
        id: s.id,
        name: s.name.clone(),
        description: s.description.clone(),
        schedule_type: "weekly".into(),
        status: if s.enabled { "active" } else { "inactive" }.into(),
        on: schedule::state_at(&s.weekly, &routines, tz, now),
        next_run: next.first().map(|t| rfc3339(t.at)),
        next_transitions: next.iter().map(|t| TransitionView { at: rfc3339(t.at), on: t.on }).collect(),
        time_zone: tz.name().to_owned(),
        building_id: s.building_id,
        weekly_schedule: s.weekly.clone(),
        calendar_ids: s.calendar_ids.clone(),
        outputs: s.outputs.clone(),
        priority: s.priority,
    }
}

/// What the scheduler applied last to each schedule, and when a failed one may be retried.
#[derive(Debug, Default)]
pub struct Applied {
    state: HashMap<i64, bool>,
    retry_at: HashMap<i64, DateTime<Utc>>,
}

/// The schedules whose outputs must be written at `now`, with the state to write: enabled ones
/// whose state differs from the one last applied (or that were never applied), unless a failed
/// write waits for its retry time.
pub fn due(catalog: &Catalog, applied: &Applied, now: DateTime<Utc>) -> Vec<(Schedule, bool)> {
    catalog
        .list::<Schedule>()
        .into_iter()
        .filter(|s| s.enabled && !s.outputs.is_empty())
        .filter(|s| applied.retry_at.get(&s.id).is_none_or(|t| *t <= now))
        .filter_map(|s| {
            let (tz, routines) = context(catalog, &s);
            let on = schedule::state_at(&s.weekly, &routines, tz, now);
            (applied.state.get(&s.id) != Some(&on)).then_some((s, on))
        })
        .collect()
}

/// A schedule changed state, or was created, changed or deleted (for the WebSocket's
/// `ScheduleUpdate`).
#[derive(Debug, Clone)]
pub struct ScheduleEvent {
    pub schedule_id: i64,
    pub name: String,
    /// `state`, `created`, `updated` or `deleted`.
    pub change: &'static str,
    /// `active`, `inactive` or `deleted`.
    pub status: String,
    pub on: bool,
    pub next_run: Option<String>,
}

/// The scheduler.
#[derive(Debug)]
pub struct Scheduler {
    catalog: Arc<Catalog>,
    control: Arc<Control>,
    clock: Arc<dyn Clock>,
    applied: Mutex<Applied>,
    events: tokio::sync::broadcast::Sender<ScheduleEvent>,
}

impl Scheduler {
    /// The scheduler of the schedules and calendars in `catalog` (registered by `model::register`).
    pub fn new(catalog: Arc<Catalog>, control: Arc<Control>, clock: Arc<dyn Clock>) -> Arc<Scheduler> {
        Arc::new(Scheduler {
            catalog,
            control,
            clock,
            applied: Mutex::default(),
            events: tokio::sync::broadcast::channel(256).0,
        })
    }

    /// The time now, from the clock.
    pub fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.clock.now_us()).unwrap_or_default()
    }

    /// A schedule as the API shows it now.
    pub fn view(&self, s: &Schedule) -> ScheduleResponse {
        view(&self.catalog, s, self.now())
    }

    /// Every later schedule change.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<ScheduleEvent> {
        self.events.subscribe()
    }

    /// Announces a change of `s` (`deleted`: it is gone).
    pub fn publish(&self, s: &Schedule, change: &'static str) {
        let event = if change == "deleted" {
            ScheduleEvent {
                schedule_id: s.id,
                name: s.name.clone(),
                change,
                status: "deleted".into(),
                on: false,
                next_run: None,
            }
        } else {
            let r = self.view(s);
            ScheduleEvent {
                schedule_id: s.id,
                name: s.name.clone(),
                change,
                status: r.status,
                on: r.on,
                next_run: r.next_run,
            }
        };
        let _ = self.events.send(event);
    }

    fn issuer(s: &Schedule) -> Issuer {
        Issuer { actor: format!("schedule:{}", s.id), remote: None, role: None }
    }

    /// Writes a schedule's current state to its outputs now: the state written, and the outputs
    /// that could not be written with why.
    pub async fn run(&self, s: &Schedule) -> (bool, Vec<(u32, ControlError)>) {
        let (tz, routines) = context(&self.catalog, s);
        let on = schedule::state_at(&s.weekly, &routines, tz, self.now());
        (on, self.apply(s, on).await)
    }

    /// Writes a schedule's outputs for `on`; returns the errors (point id, why).
    async fn apply(&self, s: &Schedule, on: bool) -> Vec<(u32, ControlError)> {
        let mut errors = Vec::new();
        let Ok(priority) = Priority::new(s.priority) else {
            return vec![(0, ControlError::InvalidPriority("invalid priority".into()))];
        };
        for o in &s.outputs {
            let value = if on { o.on_value } else { o.off_value };
            let result = match Command::new(value, priority, format!("schedule:{}", s.id), self.clock.now_us(), None) {
                Ok(cmd) => {
                    self.control.write(&Self::issuer(s), o.point_id, cmd, o.switch_to_manual, true).await.map(|_| ())
                }
                Err(e) => Err(ControlError::InvalidCommand(e.to_string())),
            };
            if let Err(e) = result {
                tracing::warn!(schedule = s.id, point = o.point_id, error = %e, "schedule output write failed");
                errors.push((o.point_id, e));
            }
        }
        let changed = {
            let mut applied = self.applied.lock();
            if errors.is_empty() {
                applied.retry_at.remove(&s.id);
                applied.state.insert(s.id, on) != Some(on)
            } else {
                applied.retry_at.insert(s.id, self.now() + RETRY);
                false
            }
        };
        if changed {
            self.publish(s, "state");
        }
        errors
    }

    /// Relinquishes the commands a schedule holds on `points`, and gives back to their
    /// controller (auto) the points it had switched to manual (see the module documentation).
    pub async fn release(&self, s: &Schedule, points: &[u32]) {
        let Ok(priority) = Priority::new(s.priority) else { return };
        let source = format!("schedule:{}", s.id);
        for &p in points {
            if self.control.array(p).iter().any(|c| c.priority == priority && c.source == source)
                && let Err(e) = self.control.relinquish(&Self::issuer(s), p, priority).await
            {
                tracing::warn!(schedule = s.id, point = p, error = %e, "relinquishing a schedule's command failed");
                continue;
            }
            self.give_back(s, p).await;
        }
        self.applied.lock().state.remove(&s.id);
    }

    /// Puts `point` back in auto if schedule `s` is what put it in manual, no command is in force
    /// on it any more, and no enabled schedule (`s` as it is now included) switches it to manual.
    async fn give_back(&self, s: &Schedule, point: u32) {
        let bound = self
            .catalog
            .list::<Schedule>()
            .into_iter()
            .any(|o| o.enabled && o.outputs.iter().any(|b| b.point_id == point && b.switch_to_manual));
        if !bound {
            crate::service::overrides::give_back(&self.control, &self.catalog, &Self::issuer(s), point).await;
        }
    }

    /// Writes whatever is due once a second.
    pub fn spawn(self: &Arc<Self>) {
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let Some(me) = me.upgrade() else { return };
                let work = due(&me.catalog, &me.applied.lock(), me.now());
                for (s, on) in work {
                    me.apply(&s, on).await;
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::schedule::OutputBinding;
    use chrono::TimeZone;
    use t3_core::schedule::{DayType, Period, TimeOfDay, WeeklySchedule};

    fn t(h: u32, m: u32) -> TimeOfDay {
        TimeOfDay::new(h, m).unwrap()
    }

    /// The scheduler's decisions, minute by minute through both 2026 daylight-saving changes in
    /// Europe/Berlin, with the clock under the test's control: the outputs are written exactly at
    /// the instants the wall-clock times fall on.
    #[test]
    fn writes_happen_at_the_right_instants_across_dst() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::open(dir.path()).unwrap();
        catalog.register::<Building>().unwrap();
        catalog.register::<Calendar>().unwrap();
        catalog.register::<Schedule>().unwrap();
        let b = catalog
            .insert(Building {
                id: 0,
                name: "B".into(),
                description: None,
                address: None,
                time_zone: "Europe/Berlin".into(),
                updated_us: 0,
            })
            .unwrap();
        let mut weekly = WeeklySchedule::default();
        // Sunday: ON 01:00-02:30 (02:30 does not exist on 2026-03-29) and 02:30-05:00 on
        // 2026-10-25 (02:30 happens twice: the first one counts).
        weekly.days.insert(DayType::Sunday, vec![Period::new(t(1, 0), t(2, 30)), Period::new(t(4, 0), t(5, 0))]);
        let s = catalog
            .insert(Schedule {
                id: 0,
                name: "s".into(),
                description: None,
                building_id: Some(b.id),
                enabled: true,
                weekly,
                calendar_ids: vec![],
                outputs: vec![OutputBinding { point_id: 1, on_value: 1.0, off_value: 0.0, switch_to_manual: false }],
                priority: 15,
                updated_us: 0,
            })
            .unwrap();
        let run = |from: DateTime<Utc>, hours: i64| {
            let mut applied = Applied::default();
            let mut writes = Vec::new();
            let mut now = from;
            while now < from + chrono::Duration::hours(hours) {
                for (sched, on) in due(&catalog, &applied, now) {
                    assert_eq!(sched.id, s.id);
                    applied.state.insert(sched.id, on);
                    writes.push((now, on));
                }
                now += chrono::Duration::minutes(1);
            }
            writes
        };
        let utc = |d: u32, m: u32, h: u32, min: u32| Utc.with_ymd_and_hms(2026, m, d, h, min, 0).unwrap();
        // Spring: CET (+1) until 01:00 UTC, then CEST (+2).
        let spring = run(utc(28, 3, 22, 0), 5);
        assert_eq!(
            spring,
            vec![
                (utc(28, 3, 22, 0), false), // the first decision writes OFF
                (utc(29, 3, 0, 0), true),   // 01:00 CET
                (utc(29, 3, 1, 0), false),  // 02:30 does not exist: 03:00 CEST
                (utc(29, 3, 2, 0), true),   // 04:00 CEST
            ],
            "{spring:#?}"
        );
        let spring = run(utc(29, 3, 2, 30), 2);
        assert_eq!(spring, vec![(utc(29, 3, 2, 30), true), (utc(29, 3, 3, 0), false)], "05:00 CEST: {spring:#?}");
        // Autumn: CEST (+2) until 01:00 UTC, then CET (+1); 02:00-03:00 local happens twice.
        let autumn = run(utc(24, 10, 22, 0), 6);
        assert_eq!(
            autumn,
            vec![
                (utc(24, 10, 22, 0), false),
                (utc(24, 10, 23, 0), true),  // 01:00 CEST
                (utc(25, 10, 0, 30), false), // the first 02:30 (CEST)
                (utc(25, 10, 3, 0), true),   // 04:00 CET
            ],
            "{autumn:#?}"
        );
    }
}
