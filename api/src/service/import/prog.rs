//! Importing a T3000 panel file (`.prog`) into a configured device: a preview of what would be created
//! or changed, point by point and record by record, with warnings; then the same plan applied to the
//! catalog and the audit log (`import.prog`).
//!
//! What a file brings and where it goes:
//! - inputs, outputs, variables: the point's label, full label (description) and units (from the range
//!   code: T3000's tables, the panel's custom variable units). A text the file leaves empty does not
//!   clear the catalog's. Range code, analog/digital, auto/manual, value, calibration and filter are
//!   the panel's state: shown, not written (the device reports them itself).
//! - weekly routines: schedules (`<device> WR<n> <label>`, the routine's description as theirs) with
//!   the routine's day types and ON/OFF pairs; the annual routines the routine links (its override
//!   points) become its calendars.
//! - annual routines: holiday calendars (`<device> AR<n> <label>`) with the days of their bitmap as
//!   recurring month-days (day-of-year numbered as in a leap year, 1..=366).
//!
//! Routines are named and converted as hardware sync names and converts them
//! ([`panel_names`], [`routines`]), so a sync after an import finds them in step.
//! - monitors: trend logs (`<device> MON<n> <label>`) of the monitor's points at its interval, through
//!   [`TrendLogs::store`].
//! - programs: program records (`<device> PRG<n> <label>`) keeping the 2000-byte code block verbatim
//!   ([`PanelProgram`]), with the panel's on/off and auto/manual.
//!
//! Records are found again by their name's prefix (`<device> WR1`), programs by their panel number,
//! so importing the same file twice changes nothing the second time. `.prog` files hold no alarm set
//! points (T3000 keeps alarms out of them).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};
use t3_core::range::{RangeMeaning, RangeTable, t3_range};
use t3_core::schedule::{AnnualRoutine, DayType, WeeklySchedule};
use t3_drivers::profile::{PointType, ProfileLibrary};
use t3_drivers::t3::prog::ProgFile;
use t3_drivers::t3::records::point_type;
use t3_drivers::t3::routines;
use t3_storage::catalog::Catalog;

use crate::model::device::DeviceRecord;
use crate::model::point::PointRecord;
use crate::model::program::{PanelProgram, Program, TrendLog};
use crate::model::schedule::{Calendar, Schedule, panel_names};
use crate::service::Issuer;
use crate::service::audit::AuditLog;
use crate::service::registry::Registry;
use crate::service::trendlogs::TrendLogs;

/// Why an import cannot be previewed or applied.
#[derive(Debug, thiserror::Error)]
pub enum ProgImportError {
    /// The file is not a `.prog` this server reads.
    #[error("{0}")]
    BadFile(#[from] t3_drivers::t3::prog::ProgError),
    #[error("no device named \"{0}\"")]
    UnknownDevice(String),
    #[error(
        "device \"{device}\" (profile {profile}) has no T3 inputs, outputs or variables: a .prog file describes a T3 panel"
    )]
    NotAPanel { device: String, profile: String },
    #[error("could not write the catalog: {0}")]
    Catalog(#[from] t3_storage::Error),
    #[error("could not save the point registry: {0}")]
    Registry(String),
    /// A monitor's trend log was refused (the message names the field).
    #[error("trend log: {0}")]
    TrendLog(#[from] crate::service::trendlogs::TrendLogError),
}

/// What an import does to one thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = ProgAction)]
pub enum Action {
    Create,
    Update,
    Unchanged,
}

/// One field that changes: its value in the catalog now (null: none) and from the file.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = ProgFieldChange)]
pub struct FieldChange {
    pub field: String,
    #[schema(value_type = Object)]
    pub old: Value,
    #[schema(value_type = Object)]
    pub new: Value,
}

/// A point of the device as the file describes it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = ProgPointPreview)]
pub struct PointPreview {
    /// `IN1`, `OUT3`, `VAR12`.
    pub point: String,
    /// The point's id; null when the device has no id for it yet (given on apply).
    pub point_id: Option<u32>,
    pub action: Action,
    pub changes: Vec<FieldChange>,
    pub label: Option<String>,
    pub description: Option<String>,
    pub units: Option<String>,
    /// The panel's range code and whether the point is digital, as saved (device state: not written).
    pub range_code: u8,
    pub digital: bool,
    /// How T3000 shows the range: `°C`, `0-10 V`, `Off/On`, a custom range's texts; null when unknown.
    pub range: Option<String>,
    /// `auto` or `manual` on the panel when the file was saved (device state: not written).
    pub auto_manual: String,
    /// The value when the file was saved.
    pub value: f64,
}

/// A schedule, calendar, trend log or program the file brings.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ItemPreview {
    /// The panel's object: `WR1`, `AR2`, `MON3`, `PRG4`.
    pub source: String,
    /// The record's name in the catalog.
    pub name: String,
    /// The record's id; null when it is created.
    pub id: Option<i64>,
    pub action: Action,
    pub changes: Vec<FieldChange>,
}

/// Something of the file that is not imported as it is, and why.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Warning {
    /// The panel's object: `IN3`, `WR1`, `MON2`, `file`.
    pub item: String,
    pub message: String,
}

/// The file in brief.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FileSummary {
    pub version: u8,
    pub panel_name: String,
    pub panel_number: u8,
}

/// What an import creates or changes (the preview), or did (`applied`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ImportPreview {
    pub device: String,
    pub device_id: i64,
    pub file: FileSummary,
    /// Whether this was applied (false: a preview).
    pub applied: bool,
    /// How many points and records are created or changed.
    pub changes: usize,
    pub points: Vec<PointPreview>,
    pub calendars: Vec<ItemPreview>,
    pub schedules: Vec<ItemPreview>,
    pub trendlogs: Vec<ItemPreview>,
    pub programs: Vec<ItemPreview>,
    pub warnings: Vec<Warning>,
}

/// What the import service works with.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub catalog: &'a Catalog,
    pub registry: &'a Registry,
    /// Monitors become trend logs through it, so their points are recorded as the monitor says.
    pub trendlogs: &'a TrendLogs,
    pub now_us: i64,
}

/// The plan: the preview plus what applying it writes.
struct Plan {
    preview: ImportPreview,
    points: Vec<(String, Option<u32>, PointRecord)>,
    calendars: Vec<Calendar>,
    /// Schedules and the calendars (indexes into `calendars`) they use.
    schedules: Vec<(Schedule, Vec<usize>)>,
    trendlogs: Vec<(TrendLog, Vec<String>)>,
    programs: Vec<Program>,
}

/// What the file would create or change on device `device`.
pub fn preview(cx: Context<'_>, device: &str, file: &ProgFile) -> Result<ImportPreview, ProgImportError> {
    Ok(plan(cx, device, file)?.preview)
}

/// Applies the file to device `device`: points, calendars, schedules, trend logs and programs, each
/// change in the audit log as `import.prog`. Returns what it did.
pub fn apply(
    cx: Context<'_>,
    audit: &AuditLog,
    who: &Issuer,
    device: &str,
    file: &ProgFile,
) -> Result<ImportPreview, ProgImportError> {
    let plan = plan(cx, device, file)?;
    let mut preview = plan.preview;
    let record = |target: String, old: Option<Value>, new: Option<Value>| {
        audit.record(who.remote.clone(), &who.actor, "import.prog", Some(target), old, new, "ok");
    };
    // Points: ids first (a point the device has no id for yet gets one), then their records.
    let mut ids = Vec::new();
    for (name, id, _) in &plan.points {
        ids.push(id.unwrap_or_else(|| cx.registry.id(device, name)));
    }
    cx.registry.save().map_err(|e| ProgImportError::Registry(format!("{e:#}")))?;
    for ((view, (_, _, rec)), id) in preview.points.iter_mut().zip(&plan.points).zip(ids) {
        view.point_id = Some(id);
        if view.action == Action::Unchanged {
            continue;
        }
        let old = cx.catalog.get::<PointRecord>(i64::from(id));
        cx.catalog.put(PointRecord { id: i64::from(id), ..rec.clone() })?;
        record(
            format!("point:{id}"),
            old.map(|o| json!(o)),
            Some(json!(PointRecord { id: i64::from(id), ..rec.clone() })),
        );
    }
    let mut calendar_ids = Vec::new();
    for (view, cal) in preview.calendars.iter_mut().zip(plan.calendars) {
        let saved = upsert(cx.catalog, view, cal)?;
        if view.action != Action::Unchanged {
            record(format!("calendar:{}", saved.id), None, Some(json!(saved)));
        }
        calendar_ids.push(saved.id);
    }
    for (view, (mut schedule, cals)) in preview.schedules.iter_mut().zip(plan.schedules) {
        schedule.calendar_ids = cals.iter().filter_map(|&i| calendar_ids.get(i).copied()).collect();
        let saved = upsert(cx.catalog, view, schedule)?;
        if view.action != Action::Unchanged {
            record(format!("schedule:{}", saved.id), None, Some(json!(saved)));
        }
    }
    for (view, (mut log, points)) in preview.trendlogs.iter_mut().zip(plan.trendlogs) {
        log.point_ids = points.iter().map(|p| cx.registry.id(device, p)).collect();
        if view.action == Action::Unchanged {
            continue;
        }
        let saved = cx.trendlogs.store(log)?;
        view.id = Some(saved.id);
        record(format!("trendlog:{}", saved.id), None, Some(json!(saved)));
    }
    cx.registry.save().map_err(|e| ProgImportError::Registry(format!("{e:#}")))?;
    for (view, program) in preview.programs.iter_mut().zip(plan.programs) {
        let saved = upsert(cx.catalog, view, program)?;
        if view.action != Action::Unchanged {
            let summary = json!({"name": saved.name, "device_id": saved.device_id,
                "panel_program": saved.t3000.as_ref().map(|p| p.number)});
            record(format!("program:{}", saved.id), None, Some(summary));
        }
    }
    preview.applied = true;
    record(
        format!("device:{}", preview.device_id),
        None,
        Some(json!({"file_version": file.version, "panel": file.settings.panel_name, "changes": preview.changes})),
    );
    Ok(preview)
}

/// Inserts or replaces `rec` as `view` says; returns it with its id.
fn upsert<T: t3_storage::catalog::Record + Clone>(
    catalog: &Catalog,
    view: &mut ItemPreview,
    mut rec: T,
) -> Result<T, ProgImportError> {
    match (view.action, view.id) {
        (Action::Unchanged, Some(_)) => Ok(rec),
        (_, Some(id)) => {
            rec.set_id(id);
            catalog.put(rec.clone())?;
            Ok(rec)
        }
        (_, None) => {
            let saved = catalog.insert(rec)?;
            view.id = Some(saved.id());
            Ok(saved)
        }
    }
}

fn text(s: &str) -> Option<String> {
    Some(s.trim().to_owned()).filter(|s| !s.is_empty())
}

fn change(changes: &mut Vec<FieldChange>, field: &str, old: Value, new: Value) {
    if old != new {
        changes.push(FieldChange { field: field.to_owned(), old, new });
    }
}

fn action(exists: bool, changes: &[FieldChange]) -> Action {
    match (exists, changes.is_empty()) {
        (false, _) => Action::Create,
        (true, false) => Action::Update,
        (true, true) => Action::Unchanged,
    }
}

fn named(prefix: &str, label: &str, description: &str) -> String {
    match text(label).or_else(|| text(description)) {
        Some(l) => format!("{prefix} {l}"),
        None => prefix.to_owned(),
    }
}

/// The units and range name of a point with range `code`, T3000's tables and the file's custom ones.
fn range_of(table: RangeTable, digital: bool, code: u8, file: &ProgFile) -> (Option<String>, Option<String>) {
    if digital {
        // 23..=30: the panel's custom digital ranges 1..=8.
        if let Some(u) = usize::from(code).checked_sub(23).and_then(|i| file.digital_units.get(i)) {
            return (None, Some(format!("{}/{}", u.off, u.on)));
        }
    } else if table == RangeTable::Variable
        && let Some(u) = usize::from(code).checked_sub(34).and_then(|i| file.variable_units.get(i))
    {
        return (text(&u.text), text(&u.text));
    } else if table == RangeTable::Input
        && let Some(t) =
            usize::from(code).checked_sub(20).and_then(|i| file.analog_tables.get(i)).filter(|_| code <= 24)
    {
        return (None, Some(format!("custom table {}", t.name())));
    }
    match t3_range(table, digital, u16::from(code)) {
        Some(m @ RangeMeaning::Analog { .. }) => (m.units().map(str::to_owned), Some(m.name())),
        Some(m) => (None, Some(m.name())),
        None => (None, None),
    }
}

fn plan(cx: Context<'_>, device: &str, file: &ProgFile) -> Result<Plan, ProgImportError> {
    let dev = cx
        .catalog
        .list::<DeviceRecord>()
        .into_iter()
        .find(|d| d.config.name == device)
        .ok_or_else(|| ProgImportError::UnknownDevice(device.to_owned()))?;
    let panel_points = |p: &t3_drivers::profile::Profile| {
        p.points.iter().any(|x| {
            x.plugin.is_none() && matches!(x.point_type, PointType::Input | PointType::Output | PointType::Variable)
        })
    };
    let Some(profile) = ProfileLibrary::builtin().get(&dev.config.profile).filter(|p| panel_points(p)) else {
        return Err(ProgImportError::NotAPanel { device: device.to_owned(), profile: dev.config.profile.clone() });
    };
    let has = |name: &str| profile.point(name).is_some_and(|p| p.plugin.is_none());
    let ids: BTreeMap<String, u32> =
        cx.registry.entries().into_iter().filter(|e| e.device == device).map(|e| (e.point, e.id)).collect();
    let mut warnings = Vec::new();
    let mut warn = |item: &str, message: String| warnings.push(Warning { item: item.to_owned(), message });

    // ---- points ----
    struct Source<'f> {
        name: String,
        table: RangeTable,
        label: &'f str,
        description: &'f str,
        range: u8,
        digital: bool,
        auto_manual: u8,
        value: i32,
        decom: Option<&'static str>,
    }
    let mut sources = Vec::new();
    for (i, p) in file.inputs.iter().enumerate() {
        let decom = match (p.range, p.decom_status()) {
            (0, _) | (_, 0) => None,
            (_, 1) => Some("open"),
            (_, 2) => Some("shorted"),
            _ => None,
        };
        sources.push(Source {
            name: format!("IN{}", i + 1),
            table: RangeTable::Input,
            label: &p.label,
            description: &p.description,
            range: p.range,
            digital: p.digital_analog == 0,
            auto_manual: p.auto_manual,
            value: p.value,
            decom,
        });
    }
    for (i, p) in file.outputs.iter().enumerate() {
        sources.push(Source {
            name: format!("OUT{}", i + 1),
            table: RangeTable::Output,
            label: &p.label,
            description: &p.description,
            range: p.range,
            digital: p.digital_analog == 0,
            auto_manual: p.auto_manual,
            value: p.value,
            decom: (p.decom != 0).then_some("decommissioned"),
        });
    }
    for (i, p) in file.variables.iter().enumerate() {
        sources.push(Source {
            name: format!("VAR{}", i + 1),
            table: RangeTable::Variable,
            label: &p.label,
            description: &p.description,
            range: p.range,
            digital: p.digital_analog == 0,
            auto_manual: p.auto_manual,
            value: p.value,
            decom: None,
        });
    }
    let mut points = Vec::new();
    let mut point_views = Vec::new();
    for s in sources {
        let (label, description) = (text(s.label), text(s.description));
        if label.is_none() && description.is_none() && s.range == 0 {
            continue;
        }
        if !has(&s.name) {
            warn(
                &s.name,
                format!("the device's profile ({}) has no point {}: not imported", dev.config.profile, s.name),
            );
            continue;
        }
        if let Some(state) = s.decom {
            warn(&s.name, format!("the panel reported this point {state} when the file was saved"));
        }
        let (units, range) = range_of(s.table, s.digital, s.range, file);
        if range.is_none() && s.range != 0 {
            warn(
                &s.name,
                format!("range code {} is not one T3000 defines for this point type: units left as they are", s.range),
            );
        }
        let id = ids.get(&s.name).copied();
        let old = id.and_then(|id| cx.catalog.get::<PointRecord>(i64::from(id)));
        let mut rec = old.clone().unwrap_or_else(|| PointRecord {
            id: id.map_or(0, i64::from),
            device_id: Some(dev.id),
            name: s.name.clone(),
            ..Default::default()
        });
        let mut changes = Vec::new();
        for (field, slot, new) in [
            ("label", &mut rec.label, &label),
            ("description", &mut rec.description, &description),
            ("units", &mut rec.units, &units),
        ] {
            if let Some(new) = new
                && slot.as_ref() != Some(new)
            {
                change(&mut changes, field, json!(slot), json!(new));
                *slot = Some(new.clone());
            }
        }
        let act = match (&old, changes.is_empty()) {
            (_, true) => Action::Unchanged,
            (None, false) => Action::Create,
            (Some(_), false) => Action::Update,
        };
        point_views.push(PointPreview {
            point: s.name.clone(),
            point_id: id,
            action: act,
            changes,
            label,
            description,
            units,
            range_code: s.range,
            digital: s.digital,
            range,
            auto_manual: if s.auto_manual == 1 { "manual" } else { "auto" }.to_owned(),
            value: f64::from(s.value) / 1000.0,
        });
        points.push((s.name, id, rec));
    }

    // ---- calendars (annual routines) ----
    let panel = file.settings.panel_number;
    let existing_cals = cx.catalog.list::<Calendar>();
    let mut holiday_of = [DayType::Holiday1; 4];
    let mut links: Vec<Vec<usize>> = Vec::new();
    for (i, w) in file.weekly_routines.iter().enumerate() {
        let mut used = Vec::new();
        for (slot, r) in [(DayType::Holiday1, &w.override_1), (DayType::Holiday2, &w.override_2)] {
            match r.target() {
                None => {}
                Some((point_type::HOLIDAY, n)) if (1..=4).contains(&n) && (r.panel == panel || r.panel == 0) => {
                    holiday_of[usize::from(n - 1)] = slot;
                    used.push(usize::from(n - 1));
                }
                Some((t, n)) => warn(
                    &format!("WR{}", i + 1),
                    format!(
                        "its {} link refers to point type {t} number {n} of panel {}, not an annual routine of this panel: not linked",
                        slot.name(),
                        r.panel
                    ),
                ),
            }
        }
        links.push(used);
    }
    let mut calendars = Vec::new();
    let mut calendar_views = Vec::new();
    let mut calendar_index = [None; 4];
    for (i, (a, days)) in file.annual_routines.iter().zip(&file.holiday_days).enumerate() {
        let used = links.iter().any(|l| l.contains(&i));
        if text(&a.label).is_none() && text(&a.description).is_none() && days.days().is_empty() && !used {
            continue;
        }
        let prefix = panel_names::prefix(device, &format!("AR{}", i + 1));
        let recurring = routines::days_of(days);
        let routine = AnnualRoutine {
            name: panel_names::name(&prefix, &a.label),
            holiday: holiday_of[i],
            dates: Vec::new(),
            recurring,
        };
        let old = panel_names::find(&existing_cals, |c| c.routine.name.as_str(), &prefix);
        let mut changes = Vec::new();
        let old_r = old.map(|c| &c.routine);
        change(&mut changes, "name", json!(old_r.map(|r| &r.name)), json!(routine.name));
        change(&mut changes, "holiday", json!(old_r.map(|r| r.holiday)), json!(routine.holiday));
        change(&mut changes, "recurring", json!(old_r.map(|r| &r.recurring)), json!(routine.recurring));
        change(&mut changes, "dates", json!(old_r.map(|r| &r.dates)), json!(routine.dates));
        calendar_index[i] = Some(calendars.len());
        calendar_views.push(ItemPreview {
            source: format!("AR{}", i + 1),
            name: routine.name.clone(),
            id: old.map(|c| c.id),
            action: action(old.is_some(), &changes),
            changes,
        });
        calendars.push(Calendar { id: old.map_or(0, |c| c.id), routine, updated_us: cx.now_us });
    }

    // ---- schedules (weekly routines) ----
    let existing_schedules = cx.catalog.list::<Schedule>();
    let mut schedules = Vec::new();
    let mut schedule_views = Vec::new();
    for (i, (w, times)) in file.weekly_routines.iter().zip(&file.schedule_times).enumerate() {
        let item = format!("WR{}", i + 1);
        let (weekly, warnings) = routines::weekly_of(times);
        for w in warnings {
            warn(&item, w);
        }
        let cal_refs: Vec<usize> = links[i].iter().filter_map(|&a| calendar_index[a]).collect();
        if text(&w.label).is_none() && text(&w.description).is_none() && weekly.days.is_empty() {
            continue;
        }
        if let Err(e) = weekly.validate() {
            warn(&item, format!("its times do not make a valid schedule ({e}): not imported"));
            continue;
        }
        let prefix = panel_names::prefix(device, &item);
        let name = panel_names::name(&prefix, &w.label);
        let description = text(&w.description);
        let old = panel_names::find(&existing_schedules, |s| s.name.as_str(), &prefix);
        let mut changes = Vec::new();
        let nonempty = |w: &WeeklySchedule| {
            let mut w = w.clone();
            w.days.retain(|_, v| !v.is_empty());
            w
        };
        change(&mut changes, "name", json!(old.map(|s| &s.name)), json!(name));
        change(&mut changes, "description", json!(old.map(|s| &s.description)), json!(description));
        change(&mut changes, "weekly_schedule", json!(old.map(|s| nonempty(&s.weekly))), json!(weekly));
        let new_cal_names: Vec<&str> = cal_refs.iter().map(|&c| calendars[c].routine.name.as_str()).collect();
        let old_cal_names: Option<Vec<String>> = old.map(|s| {
            s.calendar_ids
                .iter()
                .map(|id| existing_cals.iter().find(|c| c.id == *id).map_or(id.to_string(), |c| c.routine.name.clone()))
                .collect()
        });
        let cals_same = old.is_some_and(|s| {
            s.calendar_ids.len() == cal_refs.len()
                && cal_refs.iter().all(|&c| calendars[c].id != 0 && s.calendar_ids.contains(&calendars[c].id))
        });
        if !cals_same && (old.is_some() || !cal_refs.is_empty()) {
            changes.push(FieldChange {
                field: "calendars".into(),
                old: json!(old_cal_names),
                new: json!(new_cal_names),
            });
        }
        let schedule = match old {
            Some(o) => Schedule { name: name.clone(), description, weekly, updated_us: cx.now_us, ..o.clone() },
            None => Schedule {
                id: 0,
                name: name.clone(),
                description,
                building_id: dev.building_id,
                enabled: true,
                weekly,
                calendar_ids: Vec::new(),
                outputs: Vec::new(),
                priority: t3_core::arbiter::Priority::SCHEDULE.get(),
                updated_us: cx.now_us,
            },
        };
        schedule_views.push(ItemPreview {
            source: item,
            name,
            id: old.map(|s| s.id),
            action: action(old.is_some(), &changes),
            changes,
        });
        schedules.push((schedule, cal_refs));
    }

    // ---- trend logs (monitors) ----
    let existing_logs = cx.catalog.list::<TrendLog>();
    let mut trendlogs = Vec::new();
    let mut trendlog_views = Vec::new();
    for (i, m) in file.monitors.iter().enumerate() {
        let item = format!("MON{}", i + 1);
        let mut names = Vec::new();
        for p in m.points() {
            let Some((t, n)) = p.target() else { continue };
            let name = match t {
                point_type::OUTPUT => format!("OUT{n}"),
                point_type::INPUT => format!("IN{n}"),
                point_type::VARIABLE => format!("VAR{n}"),
                other => {
                    warn(
                        &item,
                        format!(
                            "logs a point of type {other} (number {n}), which is not an input, output or variable: left out"
                        ),
                    );
                    continue;
                }
            };
            if p.panel != panel {
                warn(&item, format!("logs {name} of panel {}, not of this panel ({panel}): left out", p.panel));
            } else if !has(&name) {
                warn(&item, format!("logs {name}, which the device's profile does not have: left out"));
            } else if !names.contains(&name) {
                names.push(name);
            }
        }
        if names.is_empty() {
            if m.num_inputs > 0 || text(&m.label).is_some() {
                warn(&item, "none of its points is a point of this device: no trend log".to_owned());
            }
            continue;
        }
        let secs = u64::from(m.interval_seconds());
        let interval_ms = secs.clamp(1, 86_400) * 1000;
        if secs == 0 || secs > 86_400 {
            warn(&item, format!("interval {secs} s is outside 1 s ..= 24 h: recorded every {} s", interval_ms / 1000));
        }
        if m.status == 0 {
            warn(&item, "the monitor was off on the panel; its trend log records anyway".to_owned());
        }
        let prefix = panel_names::prefix(device, &item);
        let name = named(&prefix, &m.label, "");
        let description = Some(format!("Monitor {item} of T3000 panel {panel}: {}", names.join(", ")));
        let old = panel_names::find(&existing_logs, |t| t.name.as_str(), &prefix);
        let new_ids: Option<Vec<u32>> = names.iter().map(|n| ids.get(n).copied()).collect();
        let mut changes = Vec::new();
        change(&mut changes, "name", json!(old.map(|t| &t.name)), json!(name));
        change(&mut changes, "description", json!(old.map(|t| &t.description)), json!(description));
        change(&mut changes, "interval_ms", json!(old.map(|t| t.interval_ms)), json!(interval_ms));
        if old.map(|t| &t.point_ids) != new_ids.as_ref() {
            changes.push(FieldChange {
                field: "points".into(),
                old: json!(old.map(|t| &t.point_ids)),
                new: json!(names),
            });
        }
        let log = TrendLog {
            id: old.map_or(0, |t| t.id),
            name: name.clone(),
            description,
            point_ids: Vec::new(),
            interval_ms,
            // A monitor records every sample at its interval; a user's on-change choice stays.
            on_change: old.is_some_and(|t| t.on_change),
            deadband: old.map_or(0.0, |t| t.deadband),
            range: old.and_then(|t| t.range.clone()),
            updated_us: cx.now_us,
        };
        trendlog_views.push(ItemPreview {
            source: item,
            name,
            id: old.map(|t| t.id),
            action: action(old.is_some(), &changes),
            changes,
        });
        trendlogs.push((log, names));
    }

    // ---- programs ----
    let existing_programs = cx.catalog.list::<Program>();
    let mut programs = Vec::new();
    let mut program_views = Vec::new();
    for (i, (p, code)) in file.programs.iter().zip(&file.program_code).enumerate() {
        let number = i as u16 + 1;
        if p.bytes == 0 && text(&p.label).is_none() && text(&p.description).is_none() {
            continue;
        }
        let item = format!("PRG{number}");
        let name = named(&format!("{device} {item}"), &p.label, &p.description);
        let panel_program = PanelProgram {
            number,
            label: p.label.clone(),
            description: p.description.clone(),
            code_bytes: p.bytes,
            code_hex: code.iter().map(|b| format!("{b:02x}")).collect(),
            panel_status: if p.on_off == 1 { "on" } else { "off" }.to_owned(),
            auto_manual: if p.auto_manual == 1 { "manual" } else { "auto" }.to_owned(),
        };
        if usize::from(p.bytes) > code.len() {
            warn(&item, format!("states {} bytes of code; a program block holds {}", p.bytes, code.len()));
        }
        let old = existing_programs
            .iter()
            .find(|x| x.device_id == Some(dev.id) && x.t3000.as_ref().is_some_and(|t| t.number == number));
        let mut changes = Vec::new();
        change(&mut changes, "name", json!(old.map(|x| &x.name)), json!(name));
        let old_t = old.and_then(|x| x.t3000.as_ref());
        for (field, o, n) in [
            ("label", json!(old_t.map(|t| &t.label)), json!(panel_program.label)),
            ("description", json!(old_t.map(|t| &t.description)), json!(panel_program.description)),
            ("code_bytes", json!(old_t.map(|t| t.code_bytes)), json!(panel_program.code_bytes)),
            ("panel_status", json!(old_t.map(|t| &t.panel_status)), json!(panel_program.panel_status)),
            ("auto_manual", json!(old_t.map(|t| &t.auto_manual)), json!(panel_program.auto_manual)),
        ] {
            change(&mut changes, field, o, n);
        }
        if old_t.map(|t| &t.code_hex) != Some(&panel_program.code_hex) {
            changes.push(FieldChange {
                field: "code".into(),
                old: json!(old_t.map(|t| t.code_hex.len() / 2)),
                new: json!(format!("{} bytes", code.len())),
            });
        }
        let program = match old {
            Some(o) => Program { name: name.clone(), t3000: Some(panel_program), updated_us: cx.now_us, ..o.clone() },
            None => Program {
                id: 0,
                name: name.clone(),
                device_id: Some(dev.id),
                source: String::new(),
                status: "stopped".into(),
                updated_us: cx.now_us,
                t3000: Some(panel_program),
            },
        };
        program_views.push(ItemPreview {
            source: item,
            name,
            id: old.map(|x| x.id),
            action: action(old.is_some(), &changes),
            changes,
        });
        programs.push(program);
    }

    let changed = |a: Action| a != Action::Unchanged;
    let changes = point_views.iter().filter(|p| changed(p.action)).count()
        + [&calendar_views, &schedule_views, &trendlog_views, &program_views]
            .iter()
            .flat_map(|v| v.iter())
            .filter(|v| changed(v.action))
            .count();
    Ok(Plan {
        preview: ImportPreview {
            device: device.to_owned(),
            device_id: dev.id,
            file: FileSummary {
                version: file.version,
                panel_name: file.settings.panel_name.clone(),
                panel_number: file.settings.panel_number,
            },
            applied: false,
            changes,
            points: point_views,
            calendars: calendar_views,
            schedules: schedule_views,
            trendlogs: trendlog_views,
            programs: program_views,
            warnings,
        },
        points,
        calendars,
        schedules,
        trendlogs,
        programs,
    })
}
