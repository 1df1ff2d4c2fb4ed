//! Importing a T3000 panel file (`.prog`) into a configured device: a preview of what would be created
//! or changed, point by point and record by record, with warnings; then the same plan applied to the
//! catalog and the audit log (`import.prog`).
//!
//! What a file brings and where it goes:
//! - inputs, outputs, variables: the point's label, full label (description), units (from the range
//!   code: T3000's tables, the panel's custom units and tables), range code and analog/digital flag
//!   ([`PointRecord::range`], [`PointRecord::digital`]: the configuration hardware sync compares
//!   with the controller's, so a sync can then push the file's ranges to it). A text the file
//!   leaves empty does not clear the catalog's. Auto/manual, value, calibration and filter are
//!   shown, not written: they are the panel's operating state when the file was saved, not its
//!   configuration (writing `manual` would make a sync switch the live controller's points to
//!   manual or back to the state of an old file).
//! - the panel's custom ranges: its custom digital ranges' off/on texts (range codes 23..=30), its
//!   custom variable units (34..=38) and the names of its custom analog tables (input codes
//!   20..=24), as one [`CustomRanges`] record of the device, which the server reads wherever it
//!   says what a point's range means (units, digital state names). The ones the file leaves empty
//!   are not kept.
//! - weekly routines: schedules (`<device> WR<n> <label>`, the routine's description as theirs) with
//!   the routine's day types and ON/OFF pairs; the annual routines the routine links (its override
//!   points) become its calendars.
//! - annual routines: holiday calendars (`<device> AR<n> <label>`) with the days of their bitmap as
//!   recurring month-days (day-of-year numbered as in a leap year, 1..=366).
//! - monitors: trend logs (`<device> MON<n> <label>`) of the monitor's points at its interval, through
//!   [`TrendLogs::store`].
//! - programs: program records (`<device> PRG<n> <label>`) keeping the 2000-byte code block verbatim
//!   ([`PanelProgram`]), with the panel's on/off and auto/manual, and its text decoded from the code
//!   as T3000 shows it (labels for the panel's points; empty, with a warning, when the block does
//!   not decode). Imported programs are disabled: the panel may still run its own copy, and an
//!   operator enables one on the server when it should run there (`service::programs`).
//!
//! Routines are named and converted as hardware sync names and converts them ([`panel_names`],
//! [`routines`]), so a sync after an import finds them in step.
//!
//! Records are found again by their name's prefix (`<device> WR1`), programs by their panel number,
//! so importing the same file twice changes nothing the second time. `.prog` files hold no alarm set
//! points (T3000 keeps alarms out of them).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};
use t3_core::range::RangeTable;
use t3_core::schedule::{AnnualRoutine, DayType, WeeklySchedule};
use t3_drivers::profile::{PointType, ProfileLibrary};
use t3_drivers::t3::prog::ProgFile;
use t3_drivers::t3::records::point_type;
use t3_drivers::t3::routines;
use t3_storage::catalog::Catalog;

use crate::model::custom_range::{
    CustomDigitalRange, CustomRangeName, CustomRanges, DIGITAL_COUNT, DIGITAL_FIRST, TABLE_FIRST, VARIABLE_FIRST,
    panel_text, range_meaning,
};
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
    /// The panel's range code and whether the point is digital (written to the point's record).
    pub range_code: u8,
    pub digital: bool,
    /// What the range means: `°C`, `0-10 V`, a digital point's states 0 then 1 (`Off/On`, a custom
    /// range's texts); null when unknown.
    pub range: Option<String>,
    /// `auto` or `manual` on the panel when the file was saved (device state: not written).
    pub auto_manual: String,
    /// The value when the file was saved.
    pub value: f64,
}

/// A schedule, calendar, trend log, program or the custom ranges the file brings.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ItemPreview {
    /// The panel's object: `WR1`, `AR2`, `MON3`, `PRG4`, `custom ranges`.
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
    /// The panel's custom ranges, one record of the device (`GET /api/t3000/devices/{id}/ranges`):
    /// one item, none when neither the file nor the catalog has any. Its id is the device's.
    pub custom_ranges: Vec<ItemPreview>,
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
    /// The custom ranges to write, as `preview.custom_ranges` says.
    custom_ranges: Option<CustomRanges>,
}

/// What the file would create or change on device `device`.
pub fn preview(cx: Context<'_>, device: &str, file: &ProgFile) -> Result<ImportPreview, ProgImportError> {
    Ok(plan(cx, device, file)?.preview)
}

/// Applies the file to device `device`: points, custom ranges, calendars, schedules, trend logs and
/// programs, each change in the audit log as `import.prog`. Returns what it did.
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
    for (view, custom) in preview.custom_ranges.iter_mut().zip(plan.custom_ranges) {
        view.id = Some(custom.id);
        if view.action == Action::Unchanged {
            continue;
        }
        let old = cx.catalog.get::<CustomRanges>(custom.id);
        cx.catalog.put(custom.clone())?;
        record(format!("custom_ranges:{}", custom.id), old.map(|o| json!(o)), Some(json!(custom)));
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

/// The units and range name of a point with range `code`: T3000's tables and the panel's custom ones.
fn range_of(table: RangeTable, digital: bool, code: u8, custom: &CustomRanges) -> (Option<String>, Option<String>) {
    match range_meaning(Some(custom), table, digital, u16::from(code)) {
        Some(m) => (m.units().map(str::to_owned), Some(m.name())),
        None => (None, None),
    }
}

/// The custom ranges numbered from code `first` that have a text.
fn range_names(first: u16, texts: impl Iterator<Item = String>) -> Vec<CustomRangeName> {
    texts
        .enumerate()
        .filter_map(|(i, t)| Some(CustomRangeName { code: first + i as u16, name: panel_text(&t)? }))
        .collect()
}

/// The panel's custom ranges that have a text, as device `device_id` keeps them.
fn custom_ranges(file: &ProgFile, device_id: i64, now_us: i64) -> CustomRanges {
    let digital = file
        .digital_units
        .iter()
        .enumerate()
        .filter_map(|(i, u)| {
            let (off, on) = (panel_text(&u.off), panel_text(&u.on));
            (off.is_some() || on.is_some()).then(|| CustomDigitalRange {
                code: DIGITAL_FIRST + i as u16,
                off: off.unwrap_or_default(),
                on: on.unwrap_or_default(),
                direct: u.direct == 1,
            })
        })
        .collect();
    CustomRanges {
        id: device_id,
        digital,
        variable_units: range_names(VARIABLE_FIRST, file.variable_units.iter().map(|u| u.text.clone())),
        // The name is 8 characters; T3000 keeps a precision marker in the field's 9th byte.
        analog_tables: range_names(
            TABLE_FIRST,
            file.analog_tables.iter().map(|t| t3_drivers::t3::latin1(&t.name[..8])),
        ),
        updated_us: Some(now_us),
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
    let custom = custom_ranges(file, dev.id, cx.now_us);

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
        let (units, range) = range_of(s.table, s.digital, s.range, &custom);
        if range.is_none() && s.range != 0 {
            let custom_digital =
                u16::from(s.range).checked_sub(DIGITAL_FIRST).filter(|&n| s.digital && n < DIGITAL_COUNT);
            let message = match custom_digital {
                Some(n) => {
                    format!("range code {} is custom digital range {}, which has no texts in this file", s.range, n + 1)
                }
                None => format!(
                    "range code {} is not one T3000 defines for this point type: units left as they are",
                    s.range
                ),
            };
            warn(&s.name, message);
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
        let (range_code, digital) = (Some(u16::from(s.range)), Some(s.digital));
        change(&mut changes, "range", json!(rec.range), json!(range_code));
        change(&mut changes, "digital", json!(rec.digital), json!(digital));
        (rec.range, rec.digital) = (range_code, digital);
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

    // ---- the panel's custom ranges ----
    let old_custom = cx.catalog.get::<CustomRanges>(dev.id);
    let mut custom_views = Vec::new();
    let mut custom_record = None;
    if !custom.is_empty() || old_custom.is_some() {
        let old = old_custom.as_ref();
        let mut changes = Vec::new();
        change(&mut changes, "digital", json!(old.map(|c| &c.digital)), json!(custom.digital));
        change(&mut changes, "variable_units", json!(old.map(|c| &c.variable_units)), json!(custom.variable_units));
        change(&mut changes, "analog_tables", json!(old.map(|c| &c.analog_tables)), json!(custom.analog_tables));
        custom_views.push(ItemPreview {
            source: "custom ranges".into(),
            name: format!("{device} custom ranges"),
            id: old.map(|c| c.id),
            action: action(old.is_some(), &changes),
            changes,
        });
        custom_record = Some(custom);
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
        let code_changed = old_t.map(|t| &t.code_hex) != Some(&panel_program.code_hex);
        if code_changed {
            changes.push(FieldChange {
                field: "code".into(),
                old: json!(old_t.map(|t| t.code_hex.len() / 2)),
                new: json!(format!("{} bytes", code.len())),
            });
        }
        // The text T3000 shows, decoded from the code block: for a new program, and when the
        // panel's code changed (an edit made on the server is kept otherwise).
        let source = if code_changed || old.is_none() {
            match file.program_source(i) {
                Ok(text) => Some(text),
                Err(e) => {
                    warn(&item, format!("its code does not decode ({e}): stored without text"));
                    Some(String::new())
                }
            }
        } else {
            None
        };
        if let (Some(text), Some(o)) = (&source, old)
            && *text != o.source
        {
            changes.push(FieldChange { field: "source".into(), old: json!(o.source.len()), new: json!(text.len()) });
        }
        let program = match old {
            Some(o) => Program {
                name: name.clone(),
                source: source.unwrap_or_else(|| o.source.clone()),
                t3000: Some(panel_program),
                updated_us: cx.now_us,
                ..o.clone()
            },
            None => Program {
                id: 0,
                name: name.clone(),
                device_id: Some(dev.id),
                source: source.unwrap_or_default(),
                // The panel may still run its own copy: an operator enables it on the server.
                enabled: false,
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
        + [&custom_views, &calendar_views, &schedule_views, &trendlog_views, &program_views]
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
            custom_ranges: custom_views,
            warnings,
        },
        points,
        calendars,
        schedules,
        trendlogs,
        programs,
        custom_ranges: custom_record,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use t3_core::config::{CollectorConfig, DeviceConfig};

    const NOW: i64 = 1_750_000_000_000_000;

    /// A catalog with one T3 controller, `btu`, and what an import works with.
    struct Fixture {
        _dir: tempfile::TempDir,
        catalog: Arc<Catalog>,
        registry: Registry,
        trendlogs: TrendLogs,
        audit: AuditLog,
        device_id: i64,
    }

    impl Fixture {
        fn new() -> Fixture {
            let crate::service::testing::Base { dir, catalog, collector, clock, .. } =
                crate::service::testing::base(NOW, CollectorConfig::default());
            let audit = AuditLog::new(catalog.clone(), clock.clone());
            let trendlogs = TrendLogs::new(catalog.clone(), collector, audit.clone(), clock);
            let config: DeviceConfig = serde_json::from_value(json!({"name": "btu", "protocol": "modbus-tcp",
                "ip_address": "127.0.0.1", "port": 1502, "unit_id": 1, "profile": "T3-controller"}))
            .unwrap();
            let device = catalog
                .insert(DeviceRecord {
                    id: 0,
                    config,
                    building_id: None,
                    floor_id: None,
                    room_id: None,
                    description: None,
                    source: "api".into(),
                })
                .unwrap();
            let registry = Registry::open(dir.path(), 1).unwrap();
            Fixture { _dir: dir, catalog, registry, trendlogs, audit, device_id: device.id }
        }

        fn cx(&self) -> Context<'_> {
            Context { catalog: &self.catalog, registry: &self.registry, trendlogs: &self.trendlogs, now_us: NOW }
        }

        fn apply(&self, file: &ProgFile) -> ImportPreview {
            let who = Issuer { actor: "test".into(), remote: None, role: None };
            apply(self.cx(), &self.audit, &who, "btu", file).unwrap()
        }

        fn point(&self, name: &str) -> PointRecord {
            let id = self.registry.entries().into_iter().find(|e| e.device == "btu" && e.point == name).unwrap().id;
            self.catalog.get::<PointRecord>(i64::from(id)).unwrap()
        }
    }

    /// One of Temco's example panel files (`drivers/tests/data/prog/`).
    fn prog(name: &str) -> ProgFile {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../drivers/tests/data/prog").join(name);
        t3_drivers::t3::prog::parse(&std::fs::read(path).unwrap()).unwrap()
    }

    fn field<'a>(changes: &'a [FieldChange], name: &str) -> Option<&'a FieldChange> {
        changes.iter().find(|c| c.field == name)
    }

    /// BTUMeterRev22.prog (values from `read_prog.py`): custom digital range 1 TANK1/TANK2 (direct
    /// 1), 2 CUSTOFF/CUSTON (direct 0); VAR10 "FILLTANK" is digital in custom range 1 (code 23);
    /// custom analog tables 1 and 2 are named "Pa"; its one custom variable unit is never written
    /// (0xFF bytes).
    #[tokio::test]
    async fn ranges_and_custom_ranges_are_stored_once() {
        let f = Fixture::new();
        let file = prog("BTUMeterRev22.prog");

        let p = preview(f.cx(), "btu", &file).unwrap();
        let var10 = p.points.iter().find(|x| x.point == "VAR10").unwrap();
        assert_eq!((var10.range_code, var10.digital, var10.range.as_deref()), (23, true, Some("TANK2/TANK1")));
        assert_eq!(field(&var10.changes, "range").map(|c| (&c.old, &c.new)), Some((&json!(null), &json!(23))));
        assert_eq!(field(&var10.changes, "digital").map(|c| &c.new), Some(&json!(true)));
        let [item] = p.custom_ranges.as_slice() else { panic!("{:?}", p.custom_ranges) };
        assert_eq!((item.action, item.id, item.name.as_str()), (Action::Create, None, "btu custom ranges"));
        assert_eq!(
            field(&item.changes, "digital").map(|c| &c.new),
            Some(&json!([{"code": 23, "off": "TANK1", "on": "TANK2", "direct": true},
                {"code": 24, "off": "CUSTOFF", "on": "CUSTON", "direct": false}]))
        );
        assert!(f.catalog.get::<CustomRanges>(f.device_id).is_none(), "a preview writes nothing");

        let applied = f.apply(&file);
        assert_eq!(applied.changes, p.changes);
        assert_eq!(applied.custom_ranges[0].id, Some(f.device_id));
        let var10 = f.point("VAR10");
        assert_eq!(
            (var10.label.as_deref(), var10.range, var10.digital, var10.manual),
            (Some("FILLTANK"), Some(23), Some(true), None)
        );
        let stored = f.catalog.get::<CustomRanges>(f.device_id).unwrap();
        let texts: Vec<_> = stored.digital.iter().map(|d| (d.code, d.off.as_str(), d.on.as_str(), d.direct)).collect();
        assert_eq!(texts, [(23, "TANK1", "TANK2", true), (24, "CUSTOFF", "CUSTON", false)]);
        assert_eq!(stored.variable_units, []);
        let tables: Vec<_> = stored.analog_tables.iter().map(|t| (t.code, t.name.as_str())).collect();
        assert_eq!(tables, [(20, "Pa"), (21, "Pa")]);
        let audited = f
            .catalog
            .audit(&t3_storage::catalog::AuditFilter {
                action: Some("import.prog".into()),
                limit: 10_000,
                ..Default::default()
            })
            .unwrap();
        assert!(audited.iter().any(|e| e.target.as_deref() == Some(&*format!("custom_ranges:{}", f.device_id))));

        // Twice: nothing changes.
        let again = f.apply(&file);
        assert_eq!(again.changes, 0, "{:?}", again.custom_ranges);
        assert!(again.points.iter().all(|x| x.action == Action::Unchanged));
        assert_eq!(again.custom_ranges[0].action, Action::Unchanged);
        assert_eq!(f.catalog.get::<CustomRanges>(f.device_id), Some(stored));

        // The panel changed: its range and digital flag are the file's again; a panel without
        // custom ranges leaves none.
        f.catalog.put(PointRecord { range: Some(1), digital: Some(false), ..var10 }).unwrap();
        let p = preview(f.cx(), "btu", &file).unwrap();
        let var10 = p.points.iter().find(|x| x.point == "VAR10").unwrap();
        assert_eq!(var10.action, Action::Update);
        assert_eq!(field(&var10.changes, "range").map(|c| (&c.old, &c.new)), Some((&json!(1), &json!(23))));
        let other = f.apply(&prog("Building1.prog"));
        assert_eq!(other.custom_ranges[0].action, Action::Update);
        assert!(f.catalog.get::<CustomRanges>(f.device_id).unwrap().is_empty());
    }

    /// BOILER.prog: variables 2 and 6 in the panel's custom units 1 "PSI" and 2 "LEAD" (codes 34, 35).
    #[tokio::test]
    async fn custom_variable_units_are_the_points_units() {
        let f = Fixture::new();
        let applied = f.apply(&prog("BOILER.prog"));
        let var2 = f.point("VAR2");
        assert_eq!((var2.units.as_deref(), var2.range, var2.digital), (Some("PSI"), Some(34), Some(false)));
        assert_eq!(f.point("VAR6").units.as_deref(), Some("LEAD"));
        let stored = f.catalog.get::<CustomRanges>(f.device_id).unwrap();
        let units: Vec<_> = stored.variable_units.iter().map(|u| (u.code, u.name.as_str())).collect();
        assert_eq!(units, [(34, "PSI"), (35, "LEAD")]);
        assert!(stored.digital.is_empty() && stored.analog_tables.is_empty());
        assert_eq!(applied.custom_ranges[0].action, Action::Create);

        // A digital point in a custom range the panel gave no texts: said so, its code stored.
        let mut file = prog("BOILER.prog");
        (file.variables[0].range, file.variables[0].digital_analog) = (25, 0);
        let p = preview(f.cx(), "btu", &file).unwrap();
        let warning = p.warnings.iter().find(|w| w.item == "VAR1").unwrap();
        assert_eq!(warning.message, "range code 25 is custom digital range 3, which has no texts in this file");
        let var1 = p.points.iter().find(|x| x.point == "VAR1").unwrap();
        assert_eq!((var1.range.as_deref(), field(&var1.changes, "range").map(|c| &c.new)), (None, Some(&json!(25))));
    }
}
