//! Hardware sync: the configuration a T3 controller keeps for its points (label, description, range
//! code, digital / analog, auto / manual: [`t3_drivers::panel`]) and its weekly and annual routines
//! (label, description, times, holiday links; label, days: [`routines`]) compared with the catalog's
//! points, schedules and holiday calendars, field by field, and applied in either direction.
//!
//! # Incremental, with a baseline
//! Every time a sync applies, the value each field had on both sides when they agreed is stored
//! ([`SyncBaseline`], one per device). The next sync compares each field's device value, server
//! value and that baseline: equal sides are in sync and not shown; a side that differs from the
//! baseline changed since, and its value goes to the other side; both changed is a conflict, which
//! the [`Strategy`] decides (device wins, server wins, or per field: the request names a direction
//! for each, and a conflict it does not name is left for later). A field never synced has a null
//! baseline, so a value only one side has goes to the other, and two different values conflict.
//! A [`Choice`] names the direction of any one row, conflicts or not.
//!
//! # Writes
//! Every applied change is audited (`sync.apply`, target `point:<id>`, the fields' old and new values;
//! the catalog's changes of one apply in one transaction, one entry per point). Labels,
//! descriptions, range codes and digital flags are configuration and are written to the device's
//! registers directly (read back, confirmed; audited before the write, its result after); auto /
//! manual goes through the control service ([`Control::set_mode`]), so the arbiter follows it (back
//! in auto, the point's commands are cleared) and it is audited as `point.mode` too. No value is
//! synced: values are the arbiter's. Text is compared as the device can hold it (8 and 20 Latin-1
//! characters), so a longer label on the server does not differ for ever. A routine's changes are
//! written as whole records (see [`routines`]) and audited with target `schedule:<id>` or
//! `calendar:<id>` (`device:<id>` for a routine the catalog has no record of yet).

use crate::model::command::Mode;
use crate::model::device::DeviceRecord;
use crate::model::point::PointRecord;
use crate::model::sync::SyncBaseline;
use crate::service::Issuer;
use crate::service::control::Control;
use crate::service::ranges::Ranges;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use t3_drivers::collector::{CollectError, Collector};
use t3_drivers::driver::DriverError;
use t3_drivers::labels::PointText;
use t3_drivers::panel::{PanelPoint, PanelRoutines};
use t3_drivers::profile::PointType;
use t3_storage::catalog::{AuditEntry, Catalog};

mod routines;

/// Why a sync could not be shown or applied.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// No device with this id in the catalog.
    #[error("no device {0}")]
    UnknownDevice(i64),
    /// The device is in the catalog but not polled (disabled, or its connection not set up).
    #[error("device \"{0}\" is not polled (disabled, or not started): nothing to read its configuration from")]
    NotPolled(String),
    /// The device keeps no T3 point configuration (a library product, a plugin device).
    #[error(
        "device \"{0}\" has no T3 inputs, outputs or variables to sync (only T3 controllers keep labels, ranges and auto/manual in their registers)"
    )]
    NotT3(String),
    /// The device did not answer, or refused a read: nothing is compared with a half-read panel.
    #[error("could not read the configuration of \"{device}\": {error}")]
    Unreadable { device: String, error: String },
    /// A choice names a point the device does not sync.
    #[error("{0}")]
    InvalidChoice(String),
    #[error(transparent)]
    Storage(#[from] t3_storage::Error),
}

/// A field that sync compares: of a T3 point, or of a weekly or annual routine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// The label (8 characters on the device).
    Label,
    /// The description, T3000's "full label" (20 characters on the device; 18 for an output).
    Description,
    /// T3000's range (unit) code.
    Range,
    /// Digital (true) or analog (false).
    Digital,
    /// In manual (true) or auto (false).
    Manual,
    /// A weekly routine's ON/OFF times by day type (its schedule's `weekly`).
    Times,
    /// The annual routines a weekly routine follows on holidays (`["AR1"]`: its schedule's calendars).
    Holidays,
    /// The days an annual routine marks (`["01-01", "12-25"]`: its calendar's recurring days).
    Days,
}

impl Field {
    /// The fields of a point.
    pub const POINT: [Field; 5] = [Field::Label, Field::Description, Field::Range, Field::Digital, Field::Manual];

    pub fn name(self) -> &'static str {
        match self {
            Field::Label => "label",
            Field::Description => "description",
            Field::Range => "range",
            Field::Digital => "digital",
            Field::Manual => "manual",
            Field::Times => "times",
            Field::Holidays => "holidays",
            Field::Days => "days",
        }
    }

    /// What the device holds for a point (null for none: an empty text, a register the point lacks).
    fn device(self, p: &PanelPoint) -> Value {
        match self {
            Field::Label => text(&p.text.label),
            Field::Description => text(&p.text.description),
            Field::Range => p.range.map_or(Value::Null, Value::from),
            Field::Digital => p.digital.map_or(Value::Null, Value::from),
            Field::Manual => p.manual.map_or(Value::Null, Value::from),
            Field::Times | Field::Holidays | Field::Days => Value::Null,
        }
    }

    /// What the catalog holds for a point, as it is.
    fn server(self, r: Option<&PointRecord>) -> Value {
        let Some(r) = r else { return Value::Null };
        match self {
            Field::Label => text(r.label.as_deref().unwrap_or("")),
            Field::Description => text(r.description.as_deref().unwrap_or("")),
            Field::Range => r.range.map_or(Value::Null, Value::from),
            Field::Digital => r.digital.map_or(Value::Null, Value::from),
            Field::Manual => r.manual.map_or(Value::Null, Value::from),
            Field::Times | Field::Holidays | Field::Days => Value::Null,
        }
    }

    /// A server value as a device's point of kind `kind` would hold it (text cut to its field, an
    /// output's description to 18 characters, Latin-1).
    fn fit(self, kind: PointType, v: &Value) -> Value {
        let Some(s) = v.as_str() else { return v.clone() };
        let held = |t: PointText| PointText::decode(kind, &t.encode(kind, &[]));
        let held = match self {
            Field::Label => held(PointText::new(s, "")).label,
            Field::Description => held(PointText::new("", s)).description,
            _ => return v.clone(),
        };
        text(&held)
    }

    /// Sets the catalog's point field to `v` (null clears it).
    fn set(self, r: &mut PointRecord, v: &Value) {
        let s = || v.as_str().map(str::to_owned).filter(|s| !s.is_empty());
        match self {
            Field::Label => r.label = s(),
            Field::Description => r.description = s(),
            Field::Range => r.range = v.as_u64().and_then(|n| u16::try_from(n).ok()),
            Field::Digital => r.digital = v.as_bool(),
            Field::Manual => r.manual = v.as_bool(),
            Field::Times | Field::Holidays | Field::Days => {}
        }
    }
}

fn text(s: &str) -> Value {
    let s = s.trim();
    if s.is_empty() { Value::Null } else { Value::from(s) }
}

/// Which way a change goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// The device's value goes to the catalog.
    ToServer,
    /// The catalog's value is written to the device.
    ToDevice,
    /// Left as it is (shown again next time).
    Skip,
}

/// How conflicts (fields changed on both sides since the last sync) are decided.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// The device's value goes to the catalog.
    DeviceWins,
    /// The catalog's value is written to the device.
    ServerWins,
    /// Each conflict goes the way its [`Choice`] says; one without a choice is left unresolved.
    #[default]
    PerField,
}

/// Which side changed a field since the last sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Changed {
    Device,
    Server,
    /// Both: a conflict.
    Both,
}

/// The direction a person chose for one row, named by its point's id or by the panel's object
/// (`IN1`, `WR1`, `AR2`; routines have no point id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Choice {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point_id: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point: Option<String>,
    pub field: Field,
    pub direction: Direction,
}

/// What to apply: the strategy for conflicts and directions chosen per row.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyRequest {
    #[serde(default)]
    pub strategy: Strategy,
    /// Directions for single rows (any row, conflict or not); a later choice for the same row wins.
    #[serde(default)]
    pub choices: Vec<Choice>,
}

/// One field that differs between the device and the catalog.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Difference {
    /// The point's id; none for a routine.
    pub point_id: Option<u32>,
    /// The panel's object: `IN1`, `OUT3`, `VAR12`, or a routine, `WR1` (weekly) or `AR2` (annual).
    pub point: String,
    pub field: Field,
    /// The device's value (null: none).
    pub device: Value,
    /// The catalog's value (null: none).
    pub server: Value,
    /// The value both had at the last sync (null: never synced, or none then).
    pub last_synced: Value,
    pub changed: Changed,
    /// What applying does with this row under the strategy asked for; none: a conflict left
    /// unresolved (per field, no choice).
    pub direction: Option<Direction>,
}

/// `GET /api/t3000/devices/{id}/sync`: the differences and what applying would do.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SyncReport {
    pub device_id: i64,
    pub device: String,
    pub strategy: Strategy,
    /// Fields that differ: points, then weekly routines, then annual routines, each by field.
    pub differences: Vec<Difference>,
    /// Fields equal on both sides.
    pub in_sync: usize,
    /// When a sync last applied (microseconds since the epoch); none: never.
    pub last_synced_us: Option<i64>,
    /// Why the controller's routines were not compared (it refused their registers); none: they were.
    pub routines_error: Option<String>,
}

/// One change made by applying.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Applied {
    /// The point's id; none for a routine.
    pub point_id: Option<u32>,
    pub point: String,
    pub field: Field,
    pub direction: Direction,
    /// The value written to the other side.
    pub value: Value,
    /// Why it failed; none: it was applied.
    pub error: Option<String>,
}

/// `POST /api/t3000/devices/{id}/sync`: what was applied, what failed and what is left.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ApplyReport {
    pub device_id: i64,
    pub device: String,
    pub strategy: Strategy,
    /// Every change tried, in order, with its error if it failed.
    pub applied: Vec<Applied>,
    /// Rows skipped or left unresolved (conflicts without a choice under `per_field`).
    pub unresolved: Vec<Difference>,
    /// Fields equal on both sides after applying.
    pub in_sync: usize,
    /// Why the controller's routines were not compared (it refused their registers); none: they were.
    pub routines_error: Option<String>,
}

/// One field of one object of the panel, as each side holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Compared {
    pub point_id: Option<u32>,
    /// `IN1`, `WR1`, `AR2`.
    pub object: String,
    pub field: Field,
    pub device: Value,
    /// The catalog's value, as it is.
    pub server: Value,
    /// The catalog's value as the device would hold it (what is compared).
    pub fitted: Value,
}

impl Compared {
    fn new(point_id: Option<u32>, object: &str, field: Field, device: Value, server: Value, fitted: Value) -> Self {
        Compared { point_id, object: object.to_owned(), field, device, server, fitted }
    }
}

/// Every field of every point of `panel` with the catalog's `records`.
pub fn compare_points(panel: &[PanelPoint], records: &HashMap<u32, PointRecord>) -> Vec<Compared> {
    let mut out = Vec::with_capacity(panel.len() * Field::POINT.len());
    for p in panel {
        let r = records.get(&p.point);
        for f in Field::POINT {
            let server = f.server(r);
            let fitted = f.fit(p.point_type, &server);
            out.push(Compared::new(Some(p.point), &p.name, f, f.device(p), server, fitted));
        }
    }
    out
}

/// The rows that differ under `strategy` and `chosen` directions (by object and field), and how
/// many fields are in sync.
pub fn differences(
    compared: &[Compared],
    base: &SyncBaseline,
    strategy: Strategy,
    chosen: &HashMap<(String, Field), Direction>,
) -> (Vec<Difference>, usize) {
    let mut rows = Vec::new();
    let mut in_sync = 0;
    for c in compared {
        if c.device == c.fitted {
            in_sync += 1;
            continue;
        }
        let last = base.fields.get(&SyncBaseline::key(&c.object, c.field.name())).cloned().unwrap_or(Value::Null);
        // The baseline is the device's value when both agreed: already as the device holds it.
        let changed = match (c.device != last, c.fitted != last) {
            (true, false) => Changed::Device,
            (false, true) => Changed::Server,
            _ => Changed::Both,
        };
        let direction = chosen.get(&(c.object.clone(), c.field)).copied().or(match (changed, strategy) {
            (Changed::Device, _) | (Changed::Both, Strategy::DeviceWins) => Some(Direction::ToServer),
            (Changed::Server, _) | (Changed::Both, Strategy::ServerWins) => Some(Direction::ToDevice),
            (Changed::Both, Strategy::PerField) => None,
        });
        rows.push(Difference {
            point_id: c.point_id,
            point: c.object.clone(),
            field: c.field,
            device: c.device.clone(),
            server: c.server.clone(),
            last_synced: last,
            changed,
            direction,
        });
    }
    (rows, in_sync)
}

/// The baseline after a sync: every field now equal on both sides takes that value; the others keep
/// what they had.
pub fn next_baseline(compared: &[Compared], mut base: SyncBaseline, now_us: i64) -> SyncBaseline {
    for c in compared {
        if c.device == c.fitted {
            base.fields.insert(SyncBaseline::key(&c.object, c.field.name()), c.device.clone());
        }
    }
    base.synced_us = now_us;
    base
}

/// What sync works with, borrowed from the server's state.
#[derive(Debug, Clone, Copy)]
pub struct Sync<'a> {
    pub catalog: &'a Catalog,
    pub collector: &'a Collector,
    pub control: &'a Control,
    pub ranges: &'a Ranges,
    pub now_us: i64,
}

/// One apply at a time: two at once would each take the other's half-written state for a change.
static APPLYING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// What the device holds, read now.
struct Panel {
    points: Vec<PanelPoint>,
    /// Its routines, or why the device refused to give them.
    routines: Result<PanelRoutines, String>,
}

impl Sync<'_> {
    fn device(&self, device_id: i64) -> Result<DeviceRecord, SyncError> {
        self.catalog.get::<DeviceRecord>(device_id).ok_or(SyncError::UnknownDevice(device_id))
    }

    /// Reads the device's points and routines.
    async fn read(&self, name: &str) -> Result<Panel, SyncError> {
        let unreadable = |e| match e {
            CollectError::UnknownDevice(_) => SyncError::NotPolled(name.to_owned()),
            e => SyncError::Unreadable { device: name.to_owned(), error: e.to_string() },
        };
        let points = self.collector.read_panel(name).await.map_err(unreadable)?;
        if points.is_empty() {
            return Err(SyncError::NotT3(name.to_owned()));
        }
        // A controller that refuses its routines' registers (firmware without them) still syncs its
        // points; one that does not answer fails the whole read.
        let routines = match self.collector.read_routines(name).await {
            Ok(r) => Ok(r),
            Err(CollectError::Driver(e @ DriverError::Exception(_))) => Err(format!(
                "the controller refused to give its weekly and annual routines ({e}): they were not compared"
            )),
            Err(e) => return Err(unreadable(e)),
        };
        Ok(Panel { points, routines })
    }

    /// The device's points and routines compared with the catalog's.
    fn compare(&self, name: &str, panel: &Panel) -> Vec<Compared> {
        let records = self.catalog.read::<PointRecord, _>(|rows| {
            panel.points.iter().filter_map(|p| rows.get(&i64::from(p.point)).map(|r| (p.point, r.clone()))).collect()
        });
        let mut compared = compare_points(&panel.points, &records);
        if let Ok(r) = &panel.routines {
            compared.extend(routines::compare(self.catalog, name, r));
        }
        compared
    }

    /// The choices by object and field; a choice must name a point or routine of the panel.
    fn chosen(panel: &Panel, name: &str, choices: &[Choice]) -> Result<HashMap<(String, Field), Direction>, SyncError> {
        let mut out = HashMap::new();
        for (i, c) in choices.iter().enumerate() {
            let object = match (&c.point, c.point_id) {
                (Some(object), _) => panel
                    .points
                    .iter()
                    .any(|p| &p.name == object)
                    .then(|| object.clone())
                    .or_else(|| (panel.routines.is_ok() && routines::is_routine(object)).then(|| object.clone())),
                (None, Some(id)) => panel.points.iter().find(|p| p.point == id).map(|p| p.name.clone()),
                (None, None) => {
                    return Err(SyncError::InvalidChoice(format!("choices[{i}]: name a point_id or a point")));
                }
            };
            let Some(object) = object else {
                let what = c.point.clone().or(c.point_id.map(|id| id.to_string())).unwrap_or_default();
                return Err(SyncError::InvalidChoice(format!(
                    "choices[{i}]: {what} is not a T3 input, output, variable or routine of \"{name}\""
                )));
            };
            out.insert((object, c.field), c.direction);
        }
        Ok(out)
    }

    /// The differences between device `device_id` and the catalog, and what applying them with
    /// `strategy` would do. Reads the device; changes nothing.
    pub async fn diff(&self, device_id: i64, strategy: Strategy, choices: &[Choice]) -> Result<SyncReport, SyncError> {
        let d = self.device(device_id)?;
        let name = d.config.name;
        let panel = self.read(&name).await?;
        let chosen = Self::chosen(&panel, &name, choices)?;
        let base = self.catalog.get::<SyncBaseline>(device_id).unwrap_or_default();
        let (differences, in_sync) = differences(&self.compare(&name, &panel), &base, strategy, &chosen);
        Ok(SyncReport {
            device_id,
            device: name,
            strategy,
            differences,
            in_sync,
            last_synced_us: (base.synced_us > 0).then_some(base.synced_us),
            routines_error: panel.routines.err(),
        })
    }

    /// Applies the differences with `req`'s strategy and choices (see the module documentation),
    /// audits every change as `sync.apply` by `who`, then stores the new baseline.
    pub async fn apply(&self, who: &Issuer, device_id: i64, req: &ApplyRequest) -> Result<ApplyReport, SyncError> {
        let _one = APPLYING.lock().await;
        let d = self.device(device_id)?;
        let name = d.config.name.clone();
        let panel = self.read(&name).await?;
        let chosen = Self::chosen(&panel, &name, &req.choices)?;
        let base = self.catalog.get::<SyncBaseline>(device_id).unwrap_or_default();
        let (rows, _) = differences(&self.compare(&name, &panel), &base, req.strategy, &chosen);
        let mut unresolved = Vec::new();
        let (mut to_catalog, mut routines_to_catalog) = (Vec::new(), Vec::new());
        let (mut to_device, mut routines_to_device) = (Vec::new(), Vec::new());
        for row in rows {
            let point = row.point_id.is_some();
            match (row.direction, point) {
                (Some(Direction::ToServer), true) => to_catalog.push(row),
                (Some(Direction::ToServer), false) => routines_to_catalog.push(row),
                (Some(Direction::ToDevice), true) => to_device.push(row),
                (Some(Direction::ToDevice), false) => routines_to_device.push(row),
                (Some(Direction::Skip) | None, _) => unresolved.push(row),
            }
        }
        // The catalog's changes in one transaction (a first sync of a panel changes a thousand fields).
        let stored = self.apply_to_catalog(who, &d, &to_catalog);
        let mut applied: Vec<Applied> =
            to_catalog.iter().map(|row| applied_row(row, Direction::ToServer, stored.clone().err())).collect();
        let stored = match &panel.routines {
            Ok(r) => routines::apply_to_catalog(self, who, &d, r, &routines_to_catalog),
            Err(e) => Err(e.clone()),
        };
        applied
            .extend(routines_to_catalog.iter().map(|row| applied_row(row, Direction::ToServer, stored.clone().err())));
        for row in &to_device {
            let result = self.apply_to_device(who, &name, row).await;
            applied.push(applied_row(row, Direction::ToDevice, result.err()));
        }
        for (object, rows) in by_object(&routines_to_device) {
            let result = match &panel.routines {
                Ok(r) => routines::apply_to_device(self, who, &d, r, object, &rows).await,
                Err(e) => Err(e.clone()),
            };
            applied.extend(rows.iter().map(|row| applied_row(row, Direction::ToDevice, result.clone().err())));
        }
        let wrote_device = !to_device.is_empty() || !routines_to_device.is_empty();
        // What both sides hold now: the device read again if it was written.
        let panel = if wrote_device {
            self.ranges.read_device(self.collector, &name).await;
            self.read(&name).await?
        } else {
            panel
        };
        let compared = self.compare(&name, &panel);
        let base = next_baseline(&compared, SyncBaseline { id: device_id, ..base }, self.now_us);
        self.catalog.put(base.clone())?;
        let (_, in_sync) = differences(&compared, &base, req.strategy, &chosen);
        Ok(ApplyReport {
            device_id,
            device: name,
            strategy: req.strategy,
            applied,
            unresolved,
            in_sync,
            routines_error: panel.routines.err(),
        })
    }

    /// The audit entry of changes to one object's fields, all going one way: old and new values by
    /// field.
    fn audit_entry(
        &self,
        who: &Issuer,
        target: String,
        rows: &[&Difference],
        direction: Direction,
        result: &str,
    ) -> AuditEntry {
        let values = |to: bool| -> serde_json::Map<String, Value> {
            rows.iter()
                .map(|r| {
                    let (old, new) =
                        if direction == Direction::ToServer { (&r.server, &r.device) } else { (&r.device, &r.server) };
                    (r.field.name().to_owned(), if to { new.clone() } else { old.clone() })
                })
                .collect()
        };
        let point = rows.first().map(|r| r.point.as_str()).unwrap_or_default();
        AuditEntry {
            seq: 0,
            ts: self.now_us,
            actor: who.actor.clone(),
            remote: who.remote.clone(),
            action: "sync.apply".into(),
            target: Some(target),
            old: Some(serde_json::json!({ "point": point, "fields": values(false) })),
            new: Some(serde_json::json!({ "point": point, "fields": values(true), "direction": direction })),
            result: result.into(),
        }
    }

    /// The device's values into the catalog's point records (made for points that have none), in one
    /// transaction; one audit entry per point.
    fn apply_to_catalog(&self, who: &Issuer, d: &DeviceRecord, rows: &[Difference]) -> Result<(), String> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut by_point: std::collections::BTreeMap<u32, Vec<&Difference>> = std::collections::BTreeMap::new();
        for row in rows {
            by_point.entry(row.point_id.unwrap_or_default()).or_default().push(row);
        }
        let result = self
            .catalog
            .transaction(|tx| {
                for (&point_id, rows) in &by_point {
                    let id = i64::from(point_id);
                    let mut r = tx.rows::<PointRecord>().get(&id).cloned().unwrap_or_else(|| PointRecord {
                        id,
                        device_id: Some(d.id),
                        name: rows[0].point.clone(),
                        ..PointRecord::default()
                    });
                    for row in rows {
                        row.field.set(&mut r, &row.device);
                    }
                    tx.put(r)?;
                }
                Ok(())
            })
            .map_err(|e| e.to_string());
        let outcome = match &result {
            Ok(()) => "ok".to_owned(),
            Err(e) => format!("failed: {e}"),
        };
        for (id, rows) in &by_point {
            let entry = self.audit_entry(who, format!("point:{id}"), rows, Direction::ToServer, &outcome);
            if let Err(e) = self.catalog.audit_record(entry) {
                tracing::error!(error = %e, "could not write the audit log");
            }
        }
        result
    }

    /// The catalog's value written to the device: audited before, its result after.
    async fn apply_to_device(&self, who: &Issuer, device: &str, row: &Difference) -> Result<(), String> {
        let target = format!("point:{}", row.point_id.unwrap_or_default());
        self.audited(who, target, &[row], self.write_device(who, device, row)).await
    }

    /// Runs `write` (a change of the device, with the catalog's values of `rows`), audited before it
    /// runs and finished with its result.
    async fn audited(
        &self,
        who: &Issuer,
        target: String,
        rows: &[&Difference],
        write: impl std::future::Future<Output = Result<(), String>>,
    ) -> Result<(), String> {
        let seq = self.catalog.audit_begin(self.audit_entry(who, target, rows, Direction::ToDevice, "pending")).ok();
        let result = write.await;
        if let Some(seq) = seq {
            let outcome = match &result {
                Ok(()) => "ok".to_owned(),
                Err(e) => format!("failed: {e}"),
            };
            if let Err(e) = self.catalog.audit_finish(seq, &outcome, None) {
                tracing::error!(error = %e, "could not finish the audit entry");
            }
        }
        result
    }

    async fn write_device(&self, who: &Issuer, device: &str, row: &Difference) -> Result<(), String> {
        let v = &row.server;
        let missing = || format!("the server has no {} for {} to write", row.field.name(), row.point);
        let point = row.point.as_str();
        let c = self.collector;
        match row.field {
            Field::Times | Field::Holidays | Field::Days => return Err(missing()),
            Field::Label => c.write_point_text(device, point, Some(v.as_str().unwrap_or("")), None).await.map(drop),
            Field::Description => {
                c.write_point_text(device, point, None, Some(v.as_str().unwrap_or(""))).await.map(drop)
            }
            Field::Range => {
                let code = v.as_u64().and_then(|n| u16::try_from(n).ok()).ok_or_else(missing)?;
                c.write_range(device, point, Some(code), None).await
            }
            Field::Digital => c.write_range(device, point, None, Some(v.as_bool().ok_or_else(missing)?)).await,
            Field::Manual => {
                let mode = Mode::of(v.as_bool().ok_or_else(missing)?);
                let point_id = row.point_id.ok_or_else(missing)?;
                return self.control.set_mode(who, point_id, mode).await.map(drop).map_err(|e| e.to_string());
            }
        }
        .map_err(|e| e.to_string())
    }
}

/// An applied row.
fn applied_row(row: &Difference, direction: Direction, error: Option<String>) -> Applied {
    let value = if direction == Direction::ToServer { &row.device } else { &row.server };
    Applied {
        point_id: row.point_id,
        point: row.point.clone(),
        field: row.field,
        direction,
        value: value.clone(),
        error,
    }
}

/// Rows grouped by their object, in order.
fn by_object(rows: &[Difference]) -> Vec<(&str, Vec<&Difference>)> {
    let mut out: Vec<(&str, Vec<&Difference>)> = Vec::new();
    for row in rows {
        match out.iter_mut().find(|(o, _)| *o == row.point) {
            Some((_, list)) => list.push(row),
            None => out.push((row.point.as_str(), vec![row])),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use t3_drivers::profile::PointType;

    fn panel(label: &str, range: u16, manual: bool) -> PanelPoint {
        PanelPoint {
            point: 7,
            name: "IN1".into(),
            point_type: PointType::Input,
            text: PointText::new(label, "Zone 1 temperature"),
            range: Some(range),
            digital: Some(false),
            manual: Some(manual),
        }
    }

    fn record(label: Option<&str>, range: Option<u16>) -> HashMap<u32, PointRecord> {
        let r = PointRecord {
            id: 7,
            device_id: Some(1),
            name: "IN1".into(),
            label: label.map(str::to_owned),
            description: Some("Zone 1 temperature".into()),
            range,
            digital: Some(false),
            manual: Some(false),
            ..PointRecord::default()
        };
        HashMap::from([(7, r)])
    }

    fn rows(
        p: &PanelPoint,
        r: &HashMap<u32, PointRecord>,
        base: &SyncBaseline,
        s: Strategy,
        c: &[(Field, Direction)],
    ) -> Vec<(Field, Changed, Option<Direction>)> {
        let chosen = c.iter().map(|&(f, d)| ((p.name.clone(), f), d)).collect();
        differences(&compare_points(std::slice::from_ref(p), r), base, s, &chosen)
            .0
            .iter()
            .map(|d| (d.field, d.changed, d.direction))
            .collect()
    }

    #[test]
    fn a_first_sync_takes_what_one_side_has_and_conflicts_on_what_both_have() {
        let p = panel("ZN1 TEMP", 1, false);
        // The catalog has no label or range yet: the device's go to the server.
        let r = record(None, None);
        let base = SyncBaseline::default();
        assert_eq!(
            rows(&p, &r, &base, Strategy::PerField, &[]),
            vec![
                (Field::Label, Changed::Device, Some(Direction::ToServer)),
                (Field::Range, Changed::Device, Some(Direction::ToServer)),
            ]
        );
        // Both have a different label: a conflict, left open per field, decided by the strategy.
        let r = record(Some("Zone one"), Some(1));
        assert_eq!(rows(&p, &r, &base, Strategy::PerField, &[]), vec![(Field::Label, Changed::Both, None)]);
        assert_eq!(
            rows(&p, &r, &base, Strategy::DeviceWins, &[]),
            vec![(Field::Label, Changed::Both, Some(Direction::ToServer))]
        );
        assert_eq!(
            rows(&p, &r, &base, Strategy::ServerWins, &[]),
            vec![(Field::Label, Changed::Both, Some(Direction::ToDevice))]
        );
        let (_, in_sync) = differences(&compare_points(&[p], &r), &base, Strategy::PerField, &HashMap::new());
        assert_eq!(in_sync, 4);
    }

    #[test]
    fn after_a_sync_only_the_side_that_changed_goes_whatever_the_strategy() {
        let p = panel("ZN1 TEMP", 1, false);
        let r = record(Some("ZN1 TEMP"), Some(1));
        let base = next_baseline(
            &compare_points(std::slice::from_ref(&p), &r),
            SyncBaseline { id: 1, ..Default::default() },
            5,
        );
        assert_eq!(base.fields.get("IN1.label"), Some(&Value::from("ZN1 TEMP")));
        assert_eq!(base.fields.get("IN1.manual"), Some(&Value::from(false)));
        assert_eq!(base.synced_us, 5);
        assert!(rows(&p, &r, &base, Strategy::ServerWins, &[]).is_empty(), "nothing to do");
        // The device was renamed: it goes to the server even under server-wins (no conflict).
        let renamed = panel("ZONE 1", 1, false);
        assert_eq!(
            rows(&renamed, &r, &base, Strategy::ServerWins, &[]),
            vec![(Field::Label, Changed::Device, Some(Direction::ToServer))]
        );
        // The server changed the range: it goes to the device even under device-wins.
        let r2 = record(Some("ZN1 TEMP"), Some(2));
        assert_eq!(
            rows(&p, &r2, &base, Strategy::DeviceWins, &[]),
            vec![(Field::Range, Changed::Server, Some(Direction::ToDevice))]
        );
        // Both changed the label: a conflict; a choice decides it, and can turn any row around.
        let r3 = record(Some("Zone one"), Some(2));
        let choose = |field, direction| (field, direction);
        assert_eq!(
            rows(
                &renamed,
                &r3,
                &base,
                Strategy::PerField,
                &[choose(Field::Label, Direction::ToDevice), choose(Field::Range, Direction::Skip)]
            ),
            vec![
                (Field::Label, Changed::Both, Some(Direction::ToDevice)),
                (Field::Range, Changed::Server, Some(Direction::Skip)),
            ]
        );
        // A manual switch at the controller is a device change.
        let manual = panel("ZN1 TEMP", 1, true);
        assert_eq!(
            rows(&manual, &r, &base, Strategy::PerField, &[]),
            vec![(Field::Manual, Changed::Device, Some(Direction::ToServer))]
        );
    }

    #[test]
    fn text_is_compared_as_the_device_holds_it() {
        // The device keeps 8 characters of the label: a longer one on the server that starts the same
        // is in sync, not a difference for ever.
        let p = panel("SUPPLY A", 1, false);
        let r = record(Some("SUPPLY AIR TEMP"), Some(1));
        assert!(rows(&p, &r, &SyncBaseline::default(), Strategy::ServerWins, &[]).is_empty());
        // An empty label on the device and none in the catalog agree.
        let p = panel("", 1, false);
        assert!(rows(&p, &record(Some("  "), Some(1)), &SyncBaseline::default(), Strategy::PerField, &[]).is_empty());
    }

    #[test]
    fn values_go_into_the_catalog_record() {
        let mut r = PointRecord::default();
        Field::Label.set(&mut r, &Value::from("ZN1"));
        Field::Range.set(&mut r, &Value::from(28));
        Field::Digital.set(&mut r, &Value::from(true));
        Field::Manual.set(&mut r, &Value::from(false));
        assert_eq!(
            (r.label.as_deref(), r.range, r.digital, r.manual),
            (Some("ZN1"), Some(28), Some(true), Some(false))
        );
        Field::Label.set(&mut r, &Value::Null);
        assert_eq!(r.label, None);
    }
}
