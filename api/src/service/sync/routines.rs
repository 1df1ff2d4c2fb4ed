//! Hardware sync of a T3 controller's routines: weekly routine `WR<n>` is the schedule named
//! `<device> WR<n> [label]`, annual routine `AR<n>` the holiday calendar named `<device> AR<n>
//! [label]` (the names the `.prog` import gives them, [`panel_names`]).
//!
//! | object | field | on the device | in the catalog |
//! |---|---|---|---|
//! | `WR<n>` | `label` | the routine's label (8 characters) | the schedule's name after the prefix |
//! | | `description` | its description (20 characters) | the schedule's description |
//! | | `times` | its ON/OFF times by day type | the schedule's weekly times |
//! | | `holidays` | the annual routines in its two override points | the schedule's calendars of this panel |
//! | `AR<n>` | `label` | the routine's label | the calendar's name after the prefix |
//! | | `days` | the days of its bitmap | the calendar's recurring days |
//!
//! A routine empty on the device (no text, no times, no days, no link) and absent from the catalog
//! is not compared. What only one side can hold stays on its side: an annual routine's description
//! (a calendar has a name only), a calendar's single dates (a panel marks days of every year), a
//! schedule's calendars of other devices and its outputs, an override point that is not an annual
//! routine. A change going to the device rewrites the routine's record (and its times or days) whole,
//! as T3000 does; one going to the catalog creates the schedule or calendar if there is none.

use super::{Compared, Difference, Direction, Field, Issuer, Sync, text};
use crate::model::device::DeviceRecord;
use crate::model::schedule::{Calendar, Schedule, panel_names};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use t3_core::schedule::{AnnualRoutine, DayType, MonthDay, Period, WeeklySchedule};
use t3_drivers::panel::{ANNUAL_ROUTINES, PanelRoutines, WEEKLY_ROUTINES};
use t3_drivers::t3::records::{PointRef, point_type};
use t3_drivers::t3::{latin1, latin1_field, routines};
use t3_storage::catalog::Catalog;

/// A routine of the panel: weekly (`WR`) or annual (`AR`), numbered from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Routine {
    Weekly(usize),
    Annual(usize),
}

impl Routine {
    fn parse(object: &str) -> Option<Routine> {
        let n = |rest: &str, count: usize| rest.parse::<usize>().ok().filter(|n| (1..=count).contains(n));
        if let Some(rest) = object.strip_prefix("WR") {
            n(rest, WEEKLY_ROUTINES).map(Routine::Weekly)
        } else {
            n(object.strip_prefix("AR")?, ANNUAL_ROUTINES).map(Routine::Annual)
        }
    }
}

/// Whether `object` names a routine of a T3 panel (`WR1`..`WR8`, `AR1`..`AR4`).
pub(super) fn is_routine(object: &str) -> bool {
    Routine::parse(object).is_some()
}

/// Text as a field of `bytes` bytes holds it (Latin-1, cut).
fn fit_text(v: &Value, bytes: usize) -> Value {
    v.as_str().map_or(Value::Null, |s| text(&latin1(&latin1_field(s, bytes))))
}

/// A weekly schedule's days with pairs, in ON order, as JSON (`{"monday": [{"on", "off"}]}`);
/// null for none.
fn weekly_value(weekly: &WeeklySchedule) -> Value {
    let mut days: BTreeMap<DayType, Vec<Period>> =
        weekly.days.iter().filter(|(_, p)| !p.is_empty()).map(|(d, p)| (*d, p.clone())).collect();
    for periods in days.values_mut() {
        periods.sort_by_key(|p| (p.on, p.off));
    }
    if days.is_empty() { Value::Null } else { json!(days) }
}

fn weekly_from(v: &Value) -> Result<WeeklySchedule, String> {
    if v.is_null() {
        return Ok(WeeklySchedule::default());
    }
    let days: BTreeMap<DayType, Vec<Period>> = serde_json::from_value(v.clone()).map_err(|e| format!("times: {e}"))?;
    Ok(WeeklySchedule { days })
}

/// Month-days as a sorted JSON list of `MM-DD`; null for none.
fn days_value(days: &[MonthDay]) -> Value {
    let mut days = days.to_vec();
    days.sort();
    days.dedup();
    if days.is_empty() { Value::Null } else { json!(days) }
}

fn days_from(v: &Value) -> Result<Vec<MonthDay>, String> {
    if v.is_null() { Ok(Vec::new()) } else { serde_json::from_value(v.clone()).map_err(|e| format!("days: {e}")) }
}

/// A JSON list of names, sorted; null for none.
fn names_value(mut names: Vec<String>) -> Value {
    names.sort();
    names.dedup();
    if names.is_empty() { Value::Null } else { json!(names) }
}

/// The annual routines (1-based) a weekly routine's override points link, by slot (0, 1).
fn links(panel: &PanelRoutines, w: usize) -> [Option<usize>; 2] {
    let r = &panel.weekly[w].record;
    [r.override_1, r.override_2].map(|p| match p.target() {
        Some((point_type::HOLIDAY, n)) if (1..=ANNUAL_ROUTINES as u16).contains(&n) => Some(usize::from(n)),
        _ => None,
    })
}

/// What the catalog keeps for one device's routines.
struct Catalogued {
    schedules: Vec<Schedule>,
    calendars: Vec<Calendar>,
}

impl Catalogued {
    fn read(catalog: &Catalog) -> Catalogued {
        Catalogued { schedules: catalog.list::<Schedule>(), calendars: catalog.list::<Calendar>() }
    }

    fn schedule(&self, prefix: &str) -> Option<&Schedule> {
        panel_names::find(&self.schedules, |s| s.name.as_str(), prefix)
    }

    fn calendar(&self, prefix: &str) -> Option<&Calendar> {
        panel_names::find(&self.calendars, |c| c.routine.name.as_str(), prefix)
    }

    /// The annual routine (1-based) of device `device` a calendar id is kept for.
    fn annual_of(&self, device: &str, id: i64) -> Option<usize> {
        let c = self.calendars.iter().find(|c| c.id == id)?;
        (1..=ANNUAL_ROUTINES)
            .find(|&n| panel_names::label(&c.routine.name, &panel_names::prefix(device, &format!("AR{n}"))).is_some())
    }
}

/// Every field of every routine of `panel` with the catalog's schedules and calendars.
pub(super) fn compare(catalog: &Catalog, device: &str, panel: &PanelRoutines) -> Vec<Compared> {
    let cat = Catalogued::read(catalog);
    let mut out = Vec::new();
    let mut linked = [false; ANNUAL_ROUTINES];
    for (i, w) in panel.weekly.iter().enumerate() {
        let object = format!("WR{}", i + 1);
        let prefix = panel_names::prefix(device, &object);
        let (weekly, _) = routines::weekly_of(&w.times);
        let link_names: Vec<String> = links(panel, i).into_iter().flatten().map(|n| format!("AR{n}")).collect();
        for n in links(panel, i).into_iter().flatten() {
            linked[n - 1] = true;
        }
        let device_values = [
            (Field::Label, text(&w.record.label)),
            (Field::Description, text(&w.record.description)),
            (Field::Times, weekly_value(&weekly)),
            (Field::Holidays, names_value(link_names)),
        ];
        let s = cat.schedule(&prefix);
        if s.is_none() && device_values.iter().all(|(_, v)| v.is_null()) {
            continue;
        }
        for (field, dev) in device_values {
            let (server, fitted) = match (field, s) {
                (_, None) => (Value::Null, Value::Null),
                (Field::Label, Some(s)) => {
                    let v = text(panel_names::label(&s.name, &prefix).unwrap_or_default());
                    let fitted = fit_text(&v, 9);
                    (v, fitted)
                }
                (Field::Description, Some(s)) => {
                    let v = text(s.description.as_deref().unwrap_or_default());
                    let fitted = fit_text(&v, 21);
                    (v, fitted)
                }
                (Field::Times, Some(s)) => {
                    let v = weekly_value(&s.weekly);
                    let fitted = routines::times_of(&s.weekly)
                        .map_or_else(|_| v.clone(), |t| weekly_value(&routines::weekly_of(&t).0));
                    (v, fitted)
                }
                (_, Some(s)) => {
                    let ars: Vec<String> = s
                        .calendar_ids
                        .iter()
                        .filter_map(|&id| cat.annual_of(device, id))
                        .map(|n| format!("AR{n}"))
                        .collect();
                    let v = names_value(ars);
                    let fitted = match v.as_array() {
                        Some(a) if a.len() > 2 => Value::from(a[..2].to_vec()),
                        _ => v.clone(),
                    };
                    (v, fitted)
                }
            };
            out.push(Compared::new(None, &object, field, dev, server, fitted));
        }
    }
    for (i, a) in panel.annual.iter().enumerate() {
        let object = format!("AR{}", i + 1);
        let prefix = panel_names::prefix(device, &object);
        let days = routines::days_of(&a.days);
        let c = cat.calendar(&prefix);
        let empty = text(&a.record.label).is_null() && text(&a.record.description).is_null() && days.is_empty();
        if c.is_none() && empty && !linked[i] {
            continue;
        }
        let label = c.map_or(Value::Null, |c| text(panel_names::label(&c.routine.name, &prefix).unwrap_or_default()));
        let fitted = fit_text(&label, 9);
        out.push(Compared::new(None, &object, Field::Label, text(&a.record.label), label, fitted));
        let server = c.map_or(Value::Null, |c| days_value(&c.routine.recurring));
        out.push(Compared::new(None, &object, Field::Days, days_value(&days), server.clone(), server));
    }
    out
}

/// The day type an annual routine stands for: the slot a weekly routine links it in (override 2:
/// holiday 2), else holiday 1.
fn holiday_of(panel: &PanelRoutines, ar: usize) -> DayType {
    let in_slot_2 = (0..panel.weekly.len()).any(|w| links(panel, w)[1] == Some(ar));
    if in_slot_2 { DayType::Holiday2 } else { DayType::Holiday1 }
}

/// The device's values of `rows` into the catalog: calendars first (a schedule's holidays name
/// them), then schedules, each created if the catalog has none; one transaction, one audit entry
/// per routine.
pub(super) fn apply_to_catalog(
    sync: &Sync<'_>,
    who: &Issuer,
    d: &DeviceRecord,
    panel: &PanelRoutines,
    rows: &[Difference],
) -> Result<(), String> {
    if rows.is_empty() {
        return Ok(());
    }
    let device = d.config.name.as_str();
    let cat = Catalogued::read(sync.catalog);
    let groups = super::by_object(rows);
    let mut targets: Vec<(String, Vec<&Difference>)> = Vec::new();
    let result = sync
        .catalog
        .transaction(|tx| {
            // Calendars of this panel by annual routine, as they stand in this transaction.
            let mut calendars: HashMap<usize, Calendar> = HashMap::new();
            for n in 1..=ANNUAL_ROUTINES {
                if let Some(c) = cat.calendar(&panel_names::prefix(device, &format!("AR{n}"))) {
                    calendars.insert(n, c.clone());
                }
            }
            let new_calendar = |n: usize| Calendar {
                id: 0,
                routine: AnnualRoutine {
                    name: panel_names::prefix(device, &format!("AR{n}")),
                    holiday: holiday_of(panel, n),
                    dates: Vec::new(),
                    recurring: Vec::new(),
                },
                updated_us: sync.now_us,
            };
            for (object, rows) in groups.iter().filter(|(o, _)| o.starts_with("AR")) {
                let Some(Routine::Annual(n)) = Routine::parse(object) else { continue };
                let prefix = panel_names::prefix(device, object);
                let mut c = calendars.remove(&n).unwrap_or_else(|| new_calendar(n));
                for row in rows {
                    match row.field {
                        Field::Label => c.routine.name = panel_names::name(&prefix, row.device.as_str().unwrap_or("")),
                        Field::Days => c.routine.recurring = days_from(&row.device).map_err(bad)?,
                        _ => {}
                    }
                }
                c.updated_us = sync.now_us;
                let c = save(tx, c)?;
                targets.push((format!("calendar:{}", c.id), rows.clone()));
                calendars.insert(n, c);
            }
            for (object, rows) in groups.iter().filter(|(o, _)| o.starts_with("WR")) {
                let Some(Routine::Weekly(n)) = Routine::parse(object) else { continue };
                let prefix = panel_names::prefix(device, object);
                let mut s = cat.schedule(&prefix).cloned().unwrap_or_else(|| Schedule {
                    id: 0,
                    name: prefix.clone(),
                    description: None,
                    building_id: d.building_id,
                    enabled: true,
                    weekly: WeeklySchedule::default(),
                    calendar_ids: Vec::new(),
                    outputs: Vec::new(),
                    priority: t3_core::arbiter::Priority::SCHEDULE.get(),
                    updated_us: sync.now_us,
                });
                for row in rows {
                    match row.field {
                        Field::Label => s.name = panel_names::name(&prefix, row.device.as_str().unwrap_or("")),
                        Field::Description => {
                            s.description = row.device.as_str().map(str::to_owned).filter(|t| !t.is_empty());
                        }
                        Field::Times => s.weekly = weekly_from(&row.device).map_err(bad)?,
                        Field::Holidays => {
                            // This panel's calendars follow the device; others stay.
                            s.calendar_ids.retain(|&id| cat.annual_of(device, id).is_none());
                            for (slot, ar) in links(panel, n - 1).into_iter().enumerate() {
                                let Some(ar) = ar else { continue };
                                let mut c = calendars.remove(&ar).unwrap_or_else(|| new_calendar(ar));
                                let holiday = if slot == 1 { DayType::Holiday2 } else { DayType::Holiday1 };
                                if c.id == 0 || c.routine.holiday != holiday {
                                    c.routine.holiday = holiday;
                                    c.updated_us = sync.now_us;
                                    c = save(tx, c)?;
                                }
                                s.calendar_ids.push(c.id);
                                calendars.insert(ar, c);
                            }
                        }
                        _ => {}
                    }
                }
                s.weekly.validate().map_err(|e| bad(format!("{object} times: {e}")))?;
                s.updated_us = sync.now_us;
                let s = if s.id == 0 { tx.insert(s)? } else { tx.put(s.clone()).map(|()| s)? };
                targets.push((format!("schedule:{}", s.id), rows.clone()));
            }
            Ok(())
        })
        .map_err(|e| e.to_string());
    let outcome = match &result {
        Ok(()) => "ok".to_owned(),
        Err(e) => format!("failed: {e}"),
    };
    if result.is_err() {
        targets = groups.into_iter().map(|(_, rows)| (format!("device:{}", d.id), rows)).collect();
    }
    for (target, rows) in targets {
        let entry = sync.audit_entry(who, target, &rows, Direction::ToServer, &outcome);
        if let Err(e) = sync.catalog.audit_record(entry) {
            tracing::error!(error = %e, "could not write the audit log");
        }
    }
    result
}

/// Stages a calendar, new (it gets its id) or not.
fn save(tx: &mut t3_storage::catalog::Transaction<'_>, c: Calendar) -> t3_storage::Result<Calendar> {
    if c.id == 0 { tx.insert(c) } else { tx.put(c.clone()).map(|()| c) }
}

/// A value from the device the catalog cannot take (it never is, for values read from a panel).
fn bad(e: impl std::fmt::Display) -> t3_storage::Error {
    t3_storage::Error::Internal(e.to_string())
}

/// The catalog's values of `rows` (all of one routine) written to the device: the routine's record
/// with those fields changed, and its times or days, whole; audited before, its result after.
pub(super) async fn apply_to_device(
    sync: &Sync<'_>,
    who: &Issuer,
    d: &DeviceRecord,
    panel: &PanelRoutines,
    object: &str,
    rows: &[&Difference],
) -> Result<(), String> {
    let device = d.config.name.as_str();
    let cat = Catalogued::read(sync.catalog);
    let prefix = panel_names::prefix(device, object);
    let target = match Routine::parse(object) {
        Some(Routine::Weekly(_)) => cat.schedule(&prefix).map(|s| format!("schedule:{}", s.id)),
        Some(Routine::Annual(_)) => cat.calendar(&prefix).map(|c| format!("calendar:{}", c.id)),
        None => None,
    }
    .unwrap_or_else(|| format!("device:{}", d.id));
    sync.audited(who, target, rows, write(sync, &cat, device, panel, object, rows)).await
}

async fn write(
    sync: &Sync<'_>,
    cat: &Catalogued,
    device: &str,
    panel: &PanelRoutines,
    object: &str,
    rows: &[&Difference],
) -> Result<(), String> {
    let text_of = |v: &Value| v.as_str().unwrap_or("").to_owned();
    match Routine::parse(object) {
        Some(Routine::Weekly(n)) => {
            let w = &panel.weekly[n - 1];
            let mut record = w.record.clone();
            let mut times = None;
            for row in rows {
                match row.field {
                    Field::Label => record.label = text_of(&row.server),
                    Field::Description => record.description = text_of(&row.server),
                    Field::Times => times = Some(routines::times_of(&weekly_from(&row.server)?)?),
                    Field::Holidays => set_links(&mut record, panel.panel, cat, device, &row.server)?,
                    _ => {}
                }
            }
            let c = sync.collector;
            c.write_weekly(device, n, &record, times.as_ref(), w.flags.is_some()).await.map_err(|e| e.to_string())
        }
        Some(Routine::Annual(n)) => {
            let a = &panel.annual[n - 1];
            let mut record = a.record.clone();
            let mut days = a.days.clone();
            for row in rows {
                match row.field {
                    Field::Label => record.label = text_of(&row.server),
                    Field::Days => days = routines::bitmap_of(&days_from(&row.server)?),
                    _ => {}
                }
            }
            sync.collector.write_annual(device, n, &record, &days).await.map_err(|e| e.to_string())
        }
        None => Err(format!("{object} is not a routine")),
    }
}

/// Puts the annual routines `names` (`["AR1"]`) in a weekly routine's override points: an override
/// point holding another kind of point is kept; a routine whose calendar stands for holiday 2 goes
/// to the second point if it is free.
fn set_links(
    record: &mut t3_drivers::t3::records::WeeklyRoutine,
    panel: u8,
    cat: &Catalogued,
    device: &str,
    names: &Value,
) -> Result<(), String> {
    let names: Vec<String> = if names.is_null() {
        Vec::new()
    } else {
        serde_json::from_value(names.clone()).map_err(|e| format!("holidays: {e}"))?
    };
    let holiday = |p: &PointRef| p.point_type == point_type::HOLIDAY + 1;
    let mut slots = [record.override_1, record.override_2].map(|p| if holiday(&p) { None } else { Some(p) });
    let free = |slots: &[Option<PointRef>; 2], i: usize| slots[i].is_none_or(|p| p.point_type == 0);
    for name in names.iter().take(2) {
        let Some(Routine::Annual(n)) = Routine::parse(name) else {
            return Err(format!("holidays: {name} is not an annual routine (AR1 to AR4)"));
        };
        let wants_2 =
            cat.calendar(&panel_names::prefix(device, name)).is_some_and(|c| c.routine.holiday == DayType::Holiday2);
        let order = if wants_2 { [1, 0] } else { [0, 1] };
        let Some(i) = order.into_iter().find(|&i| free(&slots, i)) else {
            return Err(format!(
                "holidays: both override points of the weekly routine hold other points; {name} cannot be linked"
            ));
        };
        slots[i] = Some(PointRef { number: (n - 1) as u8, point_type: point_type::HOLIDAY + 1, panel });
    }
    [record.override_1, record.override_2] = slots.map(Option::unwrap_or_default);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use t3_drivers::panel::{PanelAnnual, PanelWeekly};
    use t3_drivers::t3::records::{AnnualRoutine as ArRecord, HolidayBitmap, ScheduleTimes, WeeklyRoutine};

    fn panel() -> PanelRoutines {
        let mut times = ScheduleTimes::default();
        times.days[0][0] = (7, 0);
        times.days[0][1] = (18, 0);
        let mut weekly =
            vec![
                PanelWeekly { record: WeeklyRoutine::default(), times: ScheduleTimes::default(), flags: None };
                WEEKLY_ROUTINES
            ];
        weekly[0] = PanelWeekly {
            record: WeeklyRoutine {
                label: "OCC".into(),
                description: "Occupied hours".into(),
                override_2: PointRef { number: 1, point_type: point_type::HOLIDAY + 1, panel: 3 },
                ..WeeklyRoutine::default()
            },
            times,
            flags: None,
        };
        let mut annual =
            vec![PanelAnnual { record: ArRecord::default(), days: HolidayBitmap::default() }; ANNUAL_ROUTINES];
        annual[1].record.label = "XMAS".into();
        annual[1].days = routines::bitmap_of(&[MonthDay::new(12, 25).unwrap()]);
        PanelRoutines { panel: 3, weekly, annual }
    }

    #[test]
    fn routines_parse_by_object_name() {
        assert_eq!(Routine::parse("WR8"), Some(Routine::Weekly(8)));
        assert_eq!(Routine::parse("AR1"), Some(Routine::Annual(1)));
        for bad in ["WR9", "WR0", "AR5", "IN1", "WR", "WRx"] {
            assert!(!is_routine(bad), "{bad}");
        }
    }

    #[test]
    fn a_panel_routine_the_catalog_lacks_is_compared_field_by_field() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::open(dir.path()).unwrap();
        crate::model::register(&catalog).unwrap();
        let rows = compare(&catalog, "ahu", &panel());
        let got: Vec<(&str, Field, &Value)> = rows.iter().map(|c| (c.object.as_str(), c.field, &c.device)).collect();
        assert_eq!(
            got,
            vec![
                ("WR1", Field::Label, &json!("OCC")),
                ("WR1", Field::Description, &json!("Occupied hours")),
                ("WR1", Field::Times, &json!({"monday": [{"on": "07:00", "off": "18:00"}]})),
                ("WR1", Field::Holidays, &json!(["AR2"])),
                ("AR2", Field::Label, &json!("XMAS")),
                ("AR2", Field::Days, &json!(["12-25"])),
            ]
        );
        assert!(rows.iter().all(|c| c.server.is_null()));
        assert_eq!(holiday_of(&panel(), 2), DayType::Holiday2);
    }

    #[test]
    fn links_keep_other_override_points_and_honour_holiday_2() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::open(dir.path()).unwrap();
        crate::model::register(&catalog).unwrap();
        let cat = Catalogued::read(&catalog);
        let input = PointRef { number: 4, point_type: point_type::INPUT + 1, panel: 3 };
        let mut r = WeeklyRoutine { override_1: input, ..WeeklyRoutine::default() };
        set_links(&mut r, 3, &cat, "ahu", &json!(["AR3"])).unwrap();
        assert_eq!(r.override_1, input, "an input override is kept");
        assert_eq!(r.override_2.target(), Some((point_type::HOLIDAY, 3)));
        assert!(
            set_links(&mut r, 3, &cat, "ahu", &json!(["AR1", "AR2"])).unwrap_err().contains("AR2 cannot be linked")
        );
        set_links(&mut r, 3, &cat, "ahu", &Value::Null).unwrap();
        assert_eq!((r.override_1, r.override_2), (input, PointRef::default()));
    }
}
