//! The program runner: runs the Control BASIC programs of the catalog on the server, as a T3
//! controller runs its own.
//!
//! Each program belongs to a device (a T3 panel). When a program starts (the server starts, it is
//! enabled, created or changed) its text is parsed and bound against the points the server knows
//! ([`Plant::panels`]): `IN3`, `OUT1`, `VAR12` are its device's points by name, a label (`FAN`) the
//! device's point with that label, and a panel prefix (`2-VAR12`) the device whose panel number
//! (its Modbus address) it is. Then every `programs.scan_ms` (1 s, T3000's scan) each enabled
//! program runs one scan ([`t3_core::basic::run::Machine::scan`]) with the local time of its
//! device's building and the time since its previous scan (timers, `WAIT`, `INTERVAL`).
//!
//! A scan reads point values from the last-value cache, and its writes are collected; after the
//! scan the runner commands, through the command arbiter at `programs.priority` (16) as
//! `program:<id>`, each point whose commanded value changed — never the same value again, so the
//! audit log gets a row per change, not per scan. A point someone else holds in manual (an
//! operator at the panel, or through the server) is left alone, as a T3 controller's programs leave
//! points in manual alone ([`Plant::held`]); a point in auto is taken over (switched to manual at
//! its controller, as a schedule output with `switch_to_manual` is), so the controller's own logic
//! stops driving it. A failed write is tried again after [`RETRY`].
//!
//! A point without a value (its device offline, or never read yet) is not the program's fault: the
//! scan of an enabled program stops there, the program shows `error` naming the point (and the
//! system alarm is raised) but keeps what it commanded and is scanned again every scan, so it runs
//! on by itself once the value is back, as a controller goes on with its last values.
//!
//! Any other run-time error (division by zero, more than `programs.max_steps` statements in a
//! scan, ...) stops that program alone: its status becomes `error` with the line,
//! every point it commanded is relinquished (and given back to its controller if the program had
//! put it in manual), its `ALARM`s are cleared, and the system alarm "program in error" is raised
//! with the program and line (again for each new program in error while it is on; after a server
//! start it is judged once every program was bound and scanned, so a program still in error
//! neither clears nor raises it at a restart); the others keep running. Disabling or deleting a program
//! relinquishes its points the same way. `ALARM` / `DALARM` statements raise alarms in the alarm
//! list ([`AlarmService::set_program_alarm`]).
//!
//! Changes of a program's status (running, stopped, error), of its error and of `enabled`, and
//! programs created, changed or deleted, are published ([`Runner::subscribe`]) for the WebSocket.

use crate::model::alarm::{SystemAlarm, program_alarm_id};
use crate::model::program::{PointUse, Program, ProgramErrorView, ProgramView};
use crate::service::Issuer;
use crate::service::alarms::{AlarmService, Member, ProgramAlarmReport};
use futures::future::BoxFuture;
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use t3_core::alarm::Level;
use t3_core::arbiter::Priority;
use t3_core::basic::ast::{self, PointKind, Stmt};
use t3_core::basic::run::{Env, Limits, Machine, PointName, RunError};
use t3_core::clock::Clock;
use t3_core::config::ProgramsConfig;
use t3_core::schedule::Tz;
use t3_storage::catalog::Catalog;
use tokio::sync::broadcast;

/// How long after a failed write the runner tries the point again.
pub const RETRY: Duration = Duration::from_secs(30);
/// How long the runner leaves a point held in manual by someone else before it looks again.
pub const HELD_RECHECK: Duration = Duration::from_secs(5);

/// A point as programs name it.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedPoint {
    pub id: u32,
    /// `IN1`, `OUT3`, `VAR12`.
    pub name: String,
    /// The label people gave it, else its panel's.
    pub label: Option<String>,
}

/// A device as programs see it: its panel number, the time zone of its building, its points.
#[derive(Debug, Clone)]
pub struct Panel {
    pub device_id: i64,
    pub name: String,
    /// The panel number its points' references carry (a T3 panel's Modbus address).
    pub panel: u32,
    pub tz: Tz,
    pub points: Vec<NamedPoint>,
}

/// What the runner reads, commands and binds names against: the server's devices, last-value
/// cache and command arbiter ([`ServerPlant`]), or a stand-in in tests.
pub trait Plant: Send + Sync + 'static {
    /// Every device programs may name.
    fn panels(&self) -> Vec<Panel>;
    /// The latest value of each of `ids` that has one (a failed read has none).
    fn values(&self, ids: &[u32]) -> HashMap<u32, f64>;
    /// Whether someone other than a program holds `point` in manual (an operator at the panel or
    /// through the server): programs leave it alone.
    fn held(&self, point: u32) -> bool;
    /// Whether `point` is digital (a program's non-zero is ON, 1).
    fn is_digital(&self, point: u32) -> bool;
    /// Commands `value` to `point` at `priority` for `who`.
    fn command<'a>(
        &'a self,
        who: &'a Issuer,
        point: u32,
        value: f64,
        priority: Priority,
    ) -> BoxFuture<'a, Result<(), String>>;
    /// Takes back `who`'s command at `priority` on `point` (and gives the point back to its
    /// controller when `who` had put it in manual).
    fn release<'a>(&'a self, who: &'a Issuer, point: u32, priority: Priority) -> BoxFuture<'a, ()>;
    /// Stops program `number` (1..=16) on device `device_id`'s own panel, so that the panel's copy
    /// of a program the server now runs does not run too.
    fn stop_on_panel(&self, device_id: i64, number: u16) -> BoxFuture<'_, Result<(), String>>;
}

/// Why a program text was refused: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct Placed {
    /// `syntax_error`, `unknown_point` or `invalid_program` (a GOTO to a line that does not exist).
    pub code: &'static str,
    pub line: u32,
    pub column: u32,
    /// What is wrong, without the place.
    pub message: String,
}

/// Why a program could not be checked, stored or run.
#[derive(Debug, thiserror::Error)]
pub enum ProgramError {
    /// No such program.
    #[error("no program {0}")]
    NotFound(i64),
    /// No such device.
    #[error("no device {0}")]
    UnknownDevice(i64),
    /// A program needs a device (its unprefixed point names are that device's).
    #[error("a program needs a device_id: its point names without a panel prefix are that device's")]
    NoDevice,
    /// The text does not parse or bind.
    #[error("{0}")]
    Invalid(Placed),
    #[error(transparent)]
    Storage(#[from] t3_storage::Error),
}

/// A change of a program, for the WebSocket's `ProgramUpdate`.
#[derive(Debug, Clone)]
pub struct ProgramEvent {
    pub program_id: i64,
    pub name: String,
    /// `created`, `updated`, `deleted` or `state` (status, error or enabled changed).
    pub change: &'static str,
    /// `running`, `stopped`, `error` or `deleted`.
    pub status: String,
    pub enabled: bool,
    pub error: Option<ProgramErrorView>,
    /// RFC 3339 (UTC).
    pub last_scan: Option<String>,
    pub scan_us: Option<u64>,
}

/// A program bound to points and ready to scan.
struct Compiled {
    machine: Machine,
    tree: ast::Program,
    tz: Tz,
    reads: Vec<PointUse>,
    writes: Vec<PointUse>,
}

/// What the runner shows of a program (read without waiting for a scan).
#[derive(Debug, Clone, Default, PartialEq)]
struct Status {
    error: Option<ProgramErrorView>,
    /// The error came from running (a scan), not from binding the text.
    ran_into_error: bool,
    last_scan_us: Option<i64>,
    scan_us: Option<u64>,
    scans: u64,
    reads: Vec<PointUse>,
    writes: Vec<PointUse>,
}

/// A program's running state, held while it scans.
struct Engine {
    program: Program,
    compiled: Option<Compiled>,
    last_scan_us: Option<i64>,
    /// What the program has in force at the arbiter: value and priority, by point.
    commanded: HashMap<u32, (f64, Priority)>,
    /// Points not to try before this time (a failed write, a point held in manual).
    retry_at: HashMap<u32, i64>,
}

struct Slot {
    engine: tokio::sync::Mutex<Engine>,
    status: Mutex<Status>,
}

/// The program runner (see the module documentation).
pub struct Runner {
    catalog: Arc<Catalog>,
    plant: Arc<dyn Plant>,
    alarms: Arc<AlarmService>,
    clock: Arc<dyn Clock>,
    cfg: RwLock<ProgramsConfig>,
    slots: Mutex<BTreeMap<i64, Arc<Slot>>>,
    /// The `updated_us` of each program as last loaded, to notice changes made to the catalog
    /// by others (an import) at the next scan.
    loaded: Mutex<HashMap<i64, i64>>,
    events: broadcast::Sender<ProgramEvent>,
    /// From [`Runner::start_all`] to the end of the first scan ([`Runner::tick`]): the system
    /// alarm "program in error" is not judged before every program was bound and scanned once,
    /// so a restart neither clears it for a program still in error nor raises it afresh.
    starting: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner").field("programs", &self.slots.lock().len()).finish()
    }
}

/// The issuer (and command source) of program `id`: `program:<id>`.
pub fn issuer(id: i64) -> Issuer {
    Issuer { actor: format!("program:{id}"), remote: None, role: None }
}

fn rfc3339(us: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_micros(us).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// `VAR12`, `OUT3`: the name a point of a kind and number has on a T3 panel (only inputs, outputs
/// and variables are points the server polls).
fn point_name(kind: PointKind, number: u32) -> Option<String> {
    matches!(kind, PointKind::In | PointKind::Out | PointKind::Var).then(|| format!("{}{number}", kind.name()))
}

/// Binds a point name of a program of `device` to a point id (see the module documentation).
fn resolve(device: &Panel, panels: &[Panel], name: PointName<'_>) -> Result<u32, String> {
    match name {
        PointName::Label(label) => device
            .points
            .iter()
            .find(|p| p.label.as_deref().is_some_and(|l| l.trim().eq_ignore_ascii_case(label.trim())))
            .map(|p| p.id)
            .ok_or_else(|| format!("unknown point or label {label} on {}", device.name)),
        PointName::Ref(r) => {
            let text = format!("{}{}", r.kind.name(), r.number);
            if r.sub_panel.is_some() || r.index.is_some() {
                return Err(format!("{text}: points of sub-devices and point arrays are not run by the server"));
            }
            let panel = match r.panel {
                None => device,
                Some(n) if n == device.panel => device,
                Some(n) => panels
                    .iter()
                    .find(|p| p.panel == n)
                    .ok_or_else(|| format!("unknown point {n}-{text}: no device has panel number {n}"))?,
            };
            let wanted = point_name(r.kind, r.number)
                .ok_or_else(|| format!("{text}: the server runs programs on inputs, outputs and variables only"))?;
            panel
                .points
                .iter()
                .find(|p| p.name.eq_ignore_ascii_case(&wanted))
                .map(|p| p.id)
                .ok_or_else(|| format!("unknown point {wanted} on {}", panel.name))
        }
    }
}

/// Parses and binds `source` for `device`.
fn compile(source: &str, device: &Panel, panels: &[Panel], max_steps: u32) -> Result<Compiled, Placed> {
    let tree = t3_core::basic::parse::parse(source).map_err(|e| Placed {
        code: "syntax_error",
        line: e.pos.line,
        column: e.pos.column,
        message: e.message,
    })?;
    let mut unknown = false;
    let mut bind = |name: PointName<'_>| {
        let r = resolve(device, panels, name);
        unknown |= r.is_err();
        r
    };
    let machine = Machine::new(&tree, Limits { max_steps }, &mut bind).map_err(|e| Placed {
        code: if unknown { "unknown_point" } else { "invalid_program" },
        line: e.pos.line,
        column: e.pos.column,
        message: e.message,
    })?;
    let uses = |ids: Vec<u32>| -> Vec<PointUse> {
        ids.into_iter()
            .map(|id| {
                let p = panels.iter().flat_map(|d| &d.points).find(|p| p.id == id);
                PointUse {
                    point_id: id,
                    name: p.map(|p| p.name.clone()).unwrap_or_default(),
                    label: p.and_then(|p| p.label.clone()),
                }
            })
            .collect()
    };
    let (reads, writes) = (uses(machine.reads()), uses(machine.writes()));
    Ok(Compiled { machine, tree, tz: device.tz, reads, writes })
}

/// The level of the alarm the ALARM / DALARM statement on line `number` raises: `high` for
/// `ALARM a > b`, `low` for `ALARM a < b`, `state` for DALARM.
fn alarm_level(tree: &ast::Program, number: u16) -> Level {
    fn find(stmts: &[Stmt]) -> Option<Level> {
        stmts.iter().find_map(|s| match s {
            Stmt::Alarm { above, .. } => Some(if *above { Level::High } else { Level::Low }),
            Stmt::Dalarm { .. } => Some(Level::State),
            Stmt::If { then, otherwise, .. } => find(then).or_else(|| find(otherwise)),
            _ => None,
        })
    }
    tree.lines
        .iter()
        .filter(|l| l.number == number)
        .find_map(|l| find(std::slice::from_ref(&l.stmt)))
        .unwrap_or(Level::State)
}

/// The environment of one scan: values read before it, what it writes, the alarms it raises, and
/// a point it found without a value.
struct ScanEnv {
    values: HashMap<u32, f64>,
    written: BTreeMap<u32, f64>,
    alarms: Vec<(u16, String, bool)>,
    missing: Option<u32>,
}

impl Env for ScanEnv {
    fn read(&mut self, id: u32) -> Option<f64> {
        let v = self.written.get(&id).or_else(|| self.values.get(&id)).copied();
        if v.is_none() {
            self.missing = Some(id);
        }
        v
    }

    fn write(&mut self, id: u32, value: f64) {
        self.written.insert(id, value);
    }

    fn alarm(&mut self, line_number: u16, message: &str, raised: bool) {
        self.alarms.push((line_number, message.to_owned(), raised));
    }
}

fn error_view(line_number: u16, p: &Placed) -> ProgramErrorView {
    ProgramErrorView { line_number, line: p.line, column: p.column, message: p.message.clone() }
}

fn run_error_view(e: &RunError) -> ProgramErrorView {
    ProgramErrorView { line_number: e.line_number, line: e.pos.line, column: e.pos.column, message: e.message.clone() }
}

impl Runner {
    /// The runner of the programs in `catalog` (registered by `model::register`); nothing runs
    /// before [`Runner::start_all`].
    pub fn new(
        catalog: Arc<Catalog>,
        plant: Arc<dyn Plant>,
        alarms: Arc<AlarmService>,
        clock: Arc<dyn Clock>,
        cfg: ProgramsConfig,
    ) -> Arc<Runner> {
        Arc::new(Runner {
            catalog,
            plant,
            alarms,
            clock,
            cfg: RwLock::new(cfg),
            slots: Mutex::default(),
            loaded: Mutex::default(),
            events: broadcast::channel(256).0,
            starting: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Takes new `[programs]` settings (a configuration reload): the scan period from the next
    /// scan, the priority from the next write of each point (the command at the old priority is
    /// taken back then), `max_steps` for programs started from now on.
    pub fn reconfigure(&self, cfg: &ProgramsConfig) {
        *self.cfg.write() = cfg.clone();
    }

    /// The `[programs]` settings in force.
    pub fn config(&self) -> ProgramsConfig {
        self.cfg.read().clone()
    }

    /// Every later change of a program.
    pub fn subscribe(&self) -> broadcast::Receiver<ProgramEvent> {
        self.events.subscribe()
    }

    fn priority(&self) -> Priority {
        Priority::new(self.cfg.read().priority).unwrap_or(Priority::new(16).expect("16 is a priority"))
    }

    /// Checks `source` for a program of device `device_id`: it parses and every point name binds.
    pub fn check(&self, source: &str, device_id: i64) -> Result<(), ProgramError> {
        let panels = self.plant.panels();
        let device = panels.iter().find(|p| p.device_id == device_id).ok_or(ProgramError::UnknownDevice(device_id))?;
        compile(source, device, &panels, self.cfg.read().max_steps).map(|_| ()).map_err(ProgramError::Invalid)
    }

    /// Starts every stored program (at server start): the enabled ones run from the next scan.
    /// The system alarm "program in error" keeps what it said before the start until that scan
    /// has run (see [`Runner::tick`]).
    pub async fn start_all(&self) {
        self.starting.store(true, std::sync::atomic::Ordering::SeqCst);
        for p in self.catalog.list::<Program>() {
            self.load(p, None).await;
        }
    }

    /// A program as the API shows it now.
    pub fn view(&self, p: &Program) -> ProgramView {
        let slot = self.slots.lock().get(&p.id).cloned();
        let status = slot.map(|s| s.status.lock().clone()).unwrap_or_default();
        ProgramView {
            id: p.id,
            name: p.name.clone(),
            device_id: p.device_id,
            source: p.source.clone(),
            enabled: p.enabled,
            status: Self::state_name(p.enabled, &status).to_owned(),
            error: status.error.clone(),
            last_scan: status.last_scan_us.and_then(rfc3339),
            scan_us: status.scan_us,
            scans: status.scans,
            reads: status.reads,
            writes: status.writes,
            updated_us: p.updated_us,
            t3000: p.t3000.clone(),
            panel: None,
        }
    }

    /// `error` for a program that stopped running with an error or is enabled and does not bind;
    /// a disabled program whose text does not bind is `stopped` (its `error` says why it could
    /// not start).
    fn state_name(enabled: bool, s: &Status) -> &'static str {
        match (&s.error, enabled) {
            (Some(_), true) => "error",
            (Some(_), false) if s.ran_into_error => "error",
            (_, true) => "running",
            (_, false) => "stopped",
        }
    }

    /// Every program as the API shows it.
    pub fn views(&self) -> Vec<ProgramView> {
        self.catalog.list::<Program>().iter().map(|p| self.view(p)).collect()
    }

    /// Takes a created or changed program: (re)binds it and runs it from the next scan if it is
    /// enabled; points the old version commanded that the new one does not write are released.
    /// `change` is announced (`created`, `updated`).
    pub async fn upsert(&self, p: Program, change: &'static str) {
        self.load(p.clone(), Some(change)).await;
        self.report_errors();
    }

    /// Loads `p` into its slot (new or replacing) and announces `change` if any, else a state
    /// change when the status moved.
    async fn load(&self, p: Program, change: Option<&'static str>) {
        let slot = self.slots.lock().get(&p.id).cloned();
        let slot = match slot {
            Some(s) => s,
            None => {
                let s = Arc::new(Slot {
                    engine: tokio::sync::Mutex::new(Engine {
                        program: p.clone(),
                        compiled: None,
                        last_scan_us: None,
                        commanded: HashMap::new(),
                        retry_at: HashMap::new(),
                    }),
                    status: Mutex::default(),
                });
                self.slots.lock().insert(p.id, s.clone());
                s
            }
        };
        let mut engine = slot.engine.lock().await;
        let before = (engine.program.enabled, slot.status.lock().clone());
        engine.program = p.clone();
        self.loaded.lock().insert(p.id, p.updated_us);
        self.restart(&slot, &mut engine).await;
        let after = (p.enabled, slot.status.lock().clone());
        drop(engine);
        match change {
            Some(c) => self.publish(&p, c),
            None if Self::state_name(before.0, &before.1) != Self::state_name(after.0, &after.1) => {
                self.publish(&p, "state")
            }
            None => {}
        }
    }

    /// Binds the engine's program afresh (timers, edges and WAIT start over), clears its alarms
    /// and releases what it commanded that it no longer writes (everything when it is disabled or
    /// does not bind).
    async fn restart(&self, slot: &Slot, engine: &mut Engine) {
        let p = engine.program.clone();
        self.alarms.clear_program_alarms(p.id);
        engine.last_scan_us = None;
        engine.retry_at.clear();
        let compiled = match p.device_id {
            None => {
                Err(Placed { code: "invalid_program", line: 0, column: 0, message: ProgramError::NoDevice.to_string() })
            }
            Some(d) => {
                let panels = self.plant.panels();
                match panels.iter().find(|x| x.device_id == d) {
                    Some(device) => compile(&p.source, device, &panels, self.cfg.read().max_steps),
                    None => Err(Placed {
                        code: "invalid_program",
                        line: 0,
                        column: 0,
                        message: format!("device {d} is gone"),
                    }),
                }
            }
        };
        let mut status = Status::default();
        match compiled {
            Ok(c) => {
                status.reads = c.reads.clone();
                status.writes = c.writes.clone();
                engine.compiled = Some(c);
            }
            Err(e) => {
                status.error = Some(error_view(0, &e));
                engine.compiled = None;
            }
        }
        let keep: Vec<u32> = match (&engine.compiled, p.enabled) {
            (Some(c), true) => c.writes.iter().map(|w| w.point_id).collect(),
            _ => Vec::new(),
        };
        self.release(engine, |point| !keep.contains(&point)).await;
        *slot.status.lock() = status;
    }

    /// Releases the points of `engine` for which `which` holds.
    async fn release(&self, engine: &mut Engine, which: impl Fn(u32) -> bool) {
        let who = issuer(engine.program.id);
        let points: Vec<(u32, Priority)> =
            engine.commanded.iter().filter(|(p, _)| which(**p)).map(|(p, (_, prio))| (*p, *prio)).collect();
        for (point, prio) in points {
            self.plant.release(&who, point, prio).await;
            engine.commanded.remove(&point);
            engine.retry_at.remove(&point);
        }
    }

    /// The slot of program `id`, loaded from the catalog if the runner has not seen it yet.
    async fn slot(&self, id: i64) -> Result<Arc<Slot>, ProgramError> {
        if let Some(s) = self.slots.lock().get(&id).cloned() {
            return Ok(s);
        }
        let p = self.catalog.get::<Program>(id).ok_or(ProgramError::NotFound(id))?;
        self.load(p, None).await;
        self.slots.lock().get(&id).cloned().ok_or(ProgramError::NotFound(id))
    }

    /// Takes the changes others made to the catalog (an import that added or changed programs, a
    /// program deleted): each is loaded (or removed) as if changed through the API.
    /// It runs every scan: only the changed programs are copied out of the catalog.
    pub async fn sync_catalog(&self) {
        let loaded = self.loaded.lock().clone();
        let (changed, gone) = self.catalog.read::<Program, _>(|rows| {
            let changed: Vec<(Program, &'static str)> = rows
                .values()
                .filter_map(|p| match loaded.get(&p.id) {
                    Some(us) if *us == p.updated_us => None,
                    Some(_) => Some((p.clone(), "updated")),
                    None => Some((p.clone(), "created")),
                })
                .collect();
            let gone: Vec<i64> = loaded.keys().filter(|id| !rows.contains_key(id)).copied().collect();
            (changed, gone)
        });
        for (p, change) in changed {
            self.upsert(p, change).await;
        }
        for id in &gone {
            let slot = self.slots.lock().get(id).cloned();
            if let Some(slot) = slot {
                let p = slot.engine.lock().await.program.clone();
                self.remove(&p).await;
            }
        }
    }

    /// Enables or disables a stored program: enabling starts it afresh (also one in error),
    /// disabling stops it and releases every point it commanded. Enabling a program imported from
    /// a panel also stops the panel's own copy where the panel allows it: what happened is the
    /// second value (none for other programs). Returns the stored program.
    pub async fn set_enabled(&self, id: i64, enabled: bool) -> Result<(Program, Option<String>), ProgramError> {
        let mut p = self.catalog.get::<Program>(id).ok_or(ProgramError::NotFound(id))?;
        let changed = p.enabled != enabled;
        p.enabled = enabled;
        if changed {
            p.updated_us = self.clock.now_us();
            self.catalog.put(p.clone())?;
        }
        self.load(p.clone(), None).await;
        self.report_errors();
        let panel = if enabled { self.take_over_from_panel(&p).await } else { None };
        Ok((p, panel))
    }

    /// Stops the panel's own copy of a program imported from that panel, now that the server runs
    /// it, where the panel allows it (its program table): what happened, for the answer and the
    /// audit log; none for a program that did not come from a panel.
    pub async fn take_over_from_panel(&self, p: &Program) -> Option<String> {
        let (Some(t), Some(device)) = (&p.t3000, p.device_id) else { return None };
        let note = match self.plant.stop_on_panel(device, t.number).await {
            Ok(()) => format!("PRG{} is stopped on the panel (device {device}): the server runs it", t.number),
            Err(e) => format!(
                "PRG{} could not be stopped on the panel (device {device}): {e}; the panel may still run its own copy",
                t.number
            ),
        };
        tracing::info!(program = p.id, "{note}");
        Some(note)
    }

    /// Forgets a deleted program: stops it, releases every point it commanded, clears its alarms.
    pub async fn remove(&self, p: &Program) {
        let slot = self.slots.lock().remove(&p.id);
        self.loaded.lock().remove(&p.id);
        if let Some(slot) = slot {
            let mut engine = slot.engine.lock().await;
            self.release(&mut engine, |_| true).await;
        }
        self.alarms.clear_program_alarms(p.id);
        self.publish(p, "deleted");
        self.report_errors();
    }

    /// One scan of program `id` now, enabled or not (a program in error, or one that did not bind,
    /// is bound afresh first). Returns the program.
    pub async fn run_once(&self, id: i64) -> Result<Program, ProgramError> {
        let slot = self.slot(id).await?;
        let mut engine = slot.engine.lock().await;
        let before = slot.status.lock().clone();
        if engine.compiled.is_none() || before.error.is_some() {
            self.restart(&slot, &mut engine).await;
        }
        if engine.compiled.is_some() {
            self.scan(&slot, &mut engine).await;
        }
        let p = engine.program.clone();
        drop(engine);
        self.after_change(&p, before);
        Ok(p)
    }

    /// Announces a state change of `p` if its status or error moved from `before`, and updates
    /// the system alarm.
    fn after_change(&self, p: &Program, before: Status) {
        let now = self.slots.lock().get(&p.id).map(|s| s.status.lock().clone()).unwrap_or_default();
        if Self::state_name(p.enabled, &before) != Self::state_name(p.enabled, &now) || before.error != now.error {
            self.publish(p, "state");
        }
        self.report_errors();
    }

    /// One scan of every enabled program that did not stop with an error (each on its own, at
    /// once), after taking the catalog's changes ([`Runner::sync_catalog`]); an enabled program
    /// that does not bind is bound again first (and runs once it binds). The first after
    /// [`Runner::start_all`] judges the system alarm "program in error" once it has run.
    pub async fn tick(&self) {
        self.scan_all().await;
        if self.starting.swap(false, std::sync::atomic::Ordering::SeqCst) {
            self.report_errors();
        }
    }

    /// The scans of [`Runner::tick`].
    async fn scan_all(&self) {
        self.sync_catalog().await;
        let slots: Vec<Arc<Slot>> = self.slots.lock().values().cloned().collect();
        let work = slots.into_iter().map(|slot| async move {
            let mut engine = slot.engine.lock().await;
            if !engine.program.enabled || slot.status.lock().ran_into_error {
                return;
            }
            let before = slot.status.lock().clone();
            if engine.compiled.is_none() {
                // An enabled program that did not bind (its device not polled yet, a panel label
                // not read yet after a start) is bound again until it does.
                self.restart(&slot, &mut engine).await;
                if engine.compiled.is_none() {
                    return;
                }
                let p = engine.program.clone();
                self.after_change(&p, before.clone());
            }
            self.scan(&slot, &mut engine).await;
            let p = engine.program.clone();
            drop(engine);
            if slot.status.lock().error != before.error {
                self.after_change(&p, before);
            }
        });
        futures::future::join_all(work).await;
    }

    /// Runs one scan of the engine's program and applies what it wrote and raised; a run-time
    /// error stops it (see the module documentation).
    async fn scan(&self, slot: &Slot, engine: &mut Engine) {
        let now_us = self.clock.now_us();
        let elapsed_ms = engine.last_scan_us.map_or(0, |t| ((now_us - t).max(0) / 1000).min(u32::MAX as i64) as u32);
        let Some(c) = engine.compiled.as_mut() else { return };
        let reads = c.machine.reads();
        let values = if reads.is_empty() { HashMap::new() } else { self.plant.values(&reads) };
        let local =
            chrono::DateTime::from_timestamp_micros(now_us).unwrap_or_default().with_timezone(&c.tz).naive_local();
        let mut env = ScanEnv { values, written: BTreeMap::new(), alarms: Vec::new(), missing: None };
        let started = Instant::now();
        let result = c.machine.scan(&mut env, local, elapsed_ms);
        let took = started.elapsed().as_micros() as u64;
        engine.last_scan_us = Some(now_us);
        let p = engine.program.clone();
        for (line_number, message, raised) in env.alarms {
            let Some(id) = program_alarm_id(p.id, line_number) else {
                tracing::warn!(
                    program = p.id,
                    line_number,
                    "program id too high for alarms of its own; alarm not shown"
                );
                continue;
            };
            let level = engine.compiled.as_ref().map_or(Level::State, |c| alarm_level(&c.tree, line_number));
            self.alarms.set_program_alarm(ProgramAlarmReport {
                id,
                program_name: p.name.clone(),
                device_id: p.device_id,
                line_number,
                level,
                message,
                raised,
            });
        }
        {
            let mut s = slot.status.lock();
            s.scans += 1;
            s.last_scan_us = Some(now_us);
            s.scan_us = Some(took);
        }
        match result {
            Ok(_) => {
                // Scanned through: a wait for a value (below) is over.
                slot.status.lock().error = None;
                self.apply(engine, env.written, now_us).await
            }
            // Only an enabled program has next scans to wait in; a disabled one run once stops.
            Err(e) if env.missing.is_some() && p.enabled => {
                tracing::warn!(program = p.id, name = %p.name, line = e.line_number, error = %e.message, "program waits for a point's value");
                slot.status.lock().error = Some(run_error_view(&e));
            }
            Err(e) => {
                tracing::warn!(program = p.id, name = %p.name, line = e.line_number, error = %e.message, "program stopped with an error");
                {
                    let mut s = slot.status.lock();
                    s.error = Some(run_error_view(&e));
                    s.ran_into_error = true;
                }
                self.release(engine, |_| true).await;
                self.alarms.clear_program_alarms(p.id);
            }
        }
    }

    /// Commands the points whose value changed (see the module documentation).
    async fn apply(&self, engine: &mut Engine, written: BTreeMap<u32, f64>, now_us: i64) {
        let priority = self.priority();
        let who = issuer(engine.program.id);
        for (point, value) in written {
            let value = if self.plant.is_digital(point) { f64::from(u8::from(value != 0.0)) } else { value };
            if engine.commanded.get(&point) == Some(&(value, priority)) {
                continue;
            }
            if engine.retry_at.get(&point).is_some_and(|t| *t > now_us) {
                continue;
            }
            if self.plant.held(point) {
                engine.retry_at.insert(point, now_us + HELD_RECHECK.as_micros() as i64);
                continue;
            }
            if let Some((_, old)) = engine.commanded.get(&point).copied()
                && old != priority
            {
                self.plant.release(&who, point, old).await;
                engine.commanded.remove(&point);
            }
            match self.plant.command(&who, point, value, priority).await {
                Ok(()) => {
                    engine.commanded.insert(point, (value, priority));
                    engine.retry_at.remove(&point);
                }
                Err(e) => {
                    tracing::warn!(program = engine.program.id, point, value, error = %e, "a program's write failed; tried again later");
                    engine.retry_at.insert(point, now_us + RETRY.as_micros() as i64);
                }
            }
        }
    }

    /// Tells the system alarm "program in error" every program in error (it stopped running, or
    /// it is enabled and its text does not bind), each named with its line: a new one raises it,
    /// none clears it (see [`AlarmService::set_system_members`]). Nothing while the runner starts
    /// (see [`Runner::starting`]).
    fn report_errors(&self) {
        if self.starting.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let slots: Vec<(i64, Arc<Slot>)> = self.slots.lock().iter().map(|(id, s)| (*id, s.clone())).collect();
        let mut members = Vec::new();
        for (id, slot) in slots {
            let status = slot.status.lock().clone();
            let Some(e) = status.error else { continue };
            let Some(p) = self.catalog.get::<Program>(id) else { continue };
            if p.enabled || status.ran_into_error {
                let name = format!("program {id} \"{}\"", p.name);
                members.push(Member { detail: format!("{name} line {}: {}", e.line_number, e.message), name });
            }
        }
        self.alarms.set_system_members(SystemAlarm::ProgramError, members);
    }

    /// Announces a change of `p` (`deleted`: it is gone).
    pub fn publish(&self, p: &Program, change: &'static str) {
        let event = if change == "deleted" {
            ProgramEvent {
                program_id: p.id,
                name: p.name.clone(),
                change,
                status: "deleted".into(),
                enabled: false,
                error: None,
                last_scan: None,
                scan_us: None,
            }
        } else {
            let v = self.view(p);
            ProgramEvent {
                program_id: p.id,
                name: p.name.clone(),
                change,
                status: v.status,
                enabled: v.enabled,
                error: v.error,
                last_scan: v.last_scan,
                scan_us: v.scan_us,
            }
        };
        let _ = self.events.send(event);
    }

    /// Scans every `programs.scan_ms` while the runner exists.
    pub fn spawn(self: &Arc<Self>) {
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            let period = |ms: u64| Duration::from_millis(ms);
            let Some(first) = me.upgrade().map(|m| m.cfg.read().scan_ms) else { return };
            let mut every = first;
            let mut tick = tokio::time::interval(period(every));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(me) = me.upgrade() else { return };
                me.tick().await;
                let now = me.cfg.read().scan_ms;
                if now != every {
                    every = now;
                    tick = tokio::time::interval_at(tokio::time::Instant::now() + period(every), period(every));
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                }
            }
        });
    }
}

/// The server's [`Plant`]: devices and labels from the catalog and the collector, values from
/// the last-value cache, commands through the command arbiter.
#[derive(Debug)]
pub struct ServerPlant {
    pub catalog: Arc<Catalog>,
    pub collector: Arc<t3_drivers::collector::Collector>,
    pub storage: t3_storage::Storage,
    pub control: Arc<crate::service::control::Control>,
    pub ranges: Arc<crate::service::ranges::Ranges>,
    pub overrides: Arc<crate::service::overrides::Overrides>,
}

impl Plant for ServerPlant {
    fn panels(&self) -> Vec<Panel> {
        use crate::model::device::DeviceRecord;
        use crate::model::place::Building;
        use crate::model::point::PointRecord;
        let records: HashMap<i64, PointRecord> =
            self.catalog.read::<PointRecord, _>(|r| r.iter().map(|(k, v)| (*k, v.clone())).collect());
        self.catalog
            .list::<DeviceRecord>()
            .into_iter()
            .map(|d| {
                let tz = d
                    .building_id
                    .and_then(|b| self.catalog.get::<Building>(b))
                    .and_then(|b| t3_core::schedule::parse_tz(&b.time_zone).ok())
                    .unwrap_or(Tz::UTC);
                let points = crate::service::collection::device_points(&self.collector, &d.config.name)
                    .into_iter()
                    .map(|p| {
                        let label = records
                            .get(&i64::from(p.id))
                            .and_then(|r| r.label.clone())
                            .or_else(|| self.ranges.text(p.id).map(|t| t.label.trim().to_owned()))
                            .filter(|l| !l.is_empty());
                        NamedPoint { id: p.id, name: p.name, label }
                    })
                    .collect();
                Panel { device_id: d.id, name: d.config.name.clone(), panel: u32::from(d.config.unit_id), tz, points }
            })
            .collect()
    }

    fn values(&self, ids: &[u32]) -> HashMap<u32, f64> {
        if ids.is_empty() {
            return HashMap::new();
        }
        self.storage.latest(ids).into_iter().filter(|(_, l)| l.value.is_finite()).map(|(id, l)| (id, l.value)).collect()
    }

    fn held(&self, point: u32) -> bool {
        let manual = self
            .storage
            .latest(&[point])
            .first()
            .is_some_and(|(_, l)| t3_core::Quality(l.quality) == t3_core::Quality::GOOD_LOCAL_OVERRIDE);
        manual && self.overrides.reason(point).by.is_none_or(|by| !by.starts_with("program:"))
    }

    fn is_digital(&self, point: u32) -> bool {
        self.ranges.get(point).and_then(|r| r.digital) == Some(true)
    }

    fn command<'a>(
        &'a self,
        who: &'a Issuer,
        point: u32,
        value: f64,
        priority: Priority,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let command = t3_core::arbiter::Command::new(value, priority, who.actor.clone(), self.clock_now(), None)
                .map_err(|e| e.to_string())?;
            let in_manual = self
                .storage
                .latest(&[point])
                .first()
                .is_some_and(|(_, l)| t3_core::Quality(l.quality) == t3_core::Quality::GOOD_LOCAL_OVERRIDE);
            self.control.write(who, point, command, true, in_manual).await.map(|_| ()).map_err(|e| e.to_string())
        })
    }

    fn release<'a>(&'a self, who: &'a Issuer, point: u32, priority: Priority) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let holds = self.control.array(point).iter().any(|c| c.priority == priority && c.source == who.actor);
            if holds && let Err(e) = self.control.relinquish(who, point, priority).await {
                tracing::warn!(actor = %who.actor, point, error = %e, "relinquishing a program's command failed");
                return;
            }
            crate::service::overrides::give_back(&self.control, &self.catalog, who, point).await;
        })
    }

    fn stop_on_panel(&self, device_id: i64, number: u16) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let device = self
                .catalog
                .get::<crate::model::device::DeviceRecord>(device_id)
                .ok_or_else(|| format!("no device {device_id}"))?;
            self.collector
                .set_program_running(&device.config.name, usize::from(number), false)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

impl ServerPlant {
    fn clock_now(&self) -> i64 {
        self.storage.clock().now_us()
    }
}

#[cfg(test)]
mod sim_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::alarm::AlarmView;
    use std::collections::HashSet;
    use t3_core::clock::ManualClock;

    const NOW: i64 = 1_795_651_200_000_000;
    const SECOND: i64 = 1_000_000;
    // Device 1 (panel 1): IN1 1, OUT1 2 (label FAN, digital), OUT2 3, VAR1 4, VAR2 5; device 2
    // (panel 2): VAR1 100.
    const IN1: u32 = 1;
    const OUT1: u32 = 2;
    const OUT2: u32 = 3;
    const VAR1: u32 = 4;
    const VAR2: u32 = 5;

    /// A stand-in plant: values in a map (a command sets the value, as a read-back would), the
    /// commands and releases in a log.
    #[derive(Debug, Default)]
    struct Fake {
        values: Mutex<HashMap<u32, f64>>,
        held: Mutex<HashSet<u32>>,
        /// Labels learnt later (as a panel's are read after a start).
        labels: Mutex<HashMap<u32, String>>,
        log: Mutex<Vec<String>>,
    }

    impl Fake {
        fn set(&self, point: u32, v: f64) {
            self.values.lock().insert(point, v);
        }
        fn take_log(&self) -> Vec<String> {
            std::mem::take(&mut *self.log.lock())
        }
    }

    impl Plant for Fake {
        fn panels(&self) -> Vec<Panel> {
            let learnt = self.labels.lock().clone();
            let p = |id, name: &str, label: Option<&str>| NamedPoint {
                id,
                name: name.into(),
                label: label.map(str::to_owned).or_else(|| learnt.get(&id).cloned()),
            };
            vec![
                Panel {
                    device_id: 1,
                    name: "ahu".into(),
                    panel: 1,
                    tz: Tz::UTC,
                    points: vec![
                        p(IN1, "IN1", Some("ROOM-T")),
                        p(OUT1, "OUT1", Some("FAN")),
                        p(OUT2, "OUT2", None),
                        p(VAR1, "VAR1", None),
                        p(VAR2, "VAR2", None),
                    ],
                },
                Panel {
                    device_id: 2,
                    name: "boiler".into(),
                    panel: 2,
                    tz: Tz::UTC,
                    points: vec![p(100, "VAR1", None)],
                },
            ]
        }

        fn values(&self, ids: &[u32]) -> HashMap<u32, f64> {
            let v = self.values.lock();
            ids.iter().filter_map(|id| v.get(id).map(|x| (*id, *x))).collect()
        }

        fn held(&self, point: u32) -> bool {
            self.held.lock().contains(&point)
        }

        fn is_digital(&self, point: u32) -> bool {
            point == OUT1
        }

        fn command<'a>(
            &'a self,
            who: &'a Issuer,
            point: u32,
            value: f64,
            priority: Priority,
        ) -> BoxFuture<'a, Result<(), String>> {
            self.set(point, value);
            self.log.lock().push(format!("{} {point}={value}@{}", who.actor, priority.get()));
            Box::pin(async { Ok(()) })
        }

        fn release<'a>(&'a self, who: &'a Issuer, point: u32, priority: Priority) -> BoxFuture<'a, ()> {
            self.log.lock().push(format!("{} release {point}@{}", who.actor, priority.get()));
            Box::pin(async {})
        }

        fn stop_on_panel(&self, device_id: i64, number: u16) -> BoxFuture<'_, Result<(), String>> {
            self.log.lock().push(format!("stop PRG{number} on {device_id}"));
            Box::pin(async { Ok(()) })
        }
    }

    struct World {
        _dir: tempfile::TempDir,
        catalog: Arc<Catalog>,
        clock: Arc<ManualClock>,
        plant: Arc<Fake>,
        alarms: Arc<AlarmService>,
        runner: Arc<Runner>,
    }

    fn world() -> World {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Arc::new(Catalog::open(dir.path()).unwrap());
        crate::model::register(&catalog).unwrap();
        let clock = ManualClock::new(NOW);
        let plant = Arc::new(Fake::default());
        let alarms = AlarmService::new(catalog.clone(), clock.clone());
        let runner =
            Runner::new(catalog.clone(), plant.clone(), alarms.clone(), clock.clone(), ProgramsConfig::default());
        World { _dir: dir, catalog, clock, plant, alarms, runner }
    }

    impl World {
        async fn program(&self, name: &str, source: &str) -> Program {
            let p = self
                .catalog
                .insert(Program {
                    id: 0,
                    name: name.into(),
                    device_id: Some(1),
                    source: source.into(),
                    enabled: true,
                    status: "stopped".into(),
                    updated_us: NOW,
                    t3000: None,
                })
                .unwrap();
            self.runner.upsert(p.clone(), "created").await;
            p
        }

        /// One second passes, then every program scans.
        async fn second(&self) {
            self.clock.advance(SECOND);
            self.runner.tick().await;
        }

        fn view(&self, p: &Program) -> ProgramView {
            self.runner.view(&self.catalog.get::<Program>(p.id).unwrap())
        }

        fn alarm(&self, id: i64) -> Option<AlarmView> {
            self.alarms.views().into_iter().find(|v| v.rule_id == id)
        }
    }

    /// IF+ fires once on the rising edge, TIME-ON counts the seconds its condition held across
    /// scans, a digital output gets 1 for the comparison's raw 0.001, and a value commanded again
    /// and again is written once.
    #[tokio::test]
    async fn edges_and_timers_across_scans_and_writes_only_on_change() {
        let w = world();
        w.plant.set(IN1, 25.0);
        w.plant.set(VAR1, 0.0);
        let p = w
            .program("edges", "10 IF+ IN1 > 20 THEN VAR1 = VAR1 + 1\n20 FAN = TIME-ON ( IN1 > 20 ) > 4\n30 VAR2 = 7\n")
            .await;
        assert_eq!(w.view(&p).status, "running");
        let mut log = Vec::new();
        for _ in 0..8 {
            w.second().await;
            log.extend(w.plant.take_log());
        }
        let a = "program:1";
        assert_eq!(
            log,
            vec![
                format!("{a} {OUT1}=0@16"),
                format!("{a} {VAR1}=1@16"),
                format!("{a} {VAR2}=7@16"),
                // TIME-ON passed 4 s at the sixth scan (0, 1, .. 5 s).
                format!("{a} {OUT1}=1@16"),
            ],
            "{log:#?}"
        );
        let v = w.view(&p);
        assert_eq!((v.scans, v.error.is_none()), (8, true));
        assert_eq!(v.writes.iter().map(|u| u.name.as_str()).collect::<Vec<_>>(), ["OUT1", "VAR1", "VAR2"]);
        assert_eq!(v.writes[0].label.as_deref(), Some("FAN"));
        assert!(v.reads.iter().any(|u| u.point_id == IN1), "{v:?}");
        // The falling edge does not fire IF+; a new rising edge does.
        w.plant.set(IN1, 10.0);
        w.second().await;
        w.plant.set(IN1, 30.0);
        w.second().await;
        let log = w.plant.take_log();
        assert!(log.contains(&format!("{a} {VAR1}=2@16")), "{log:?}");
    }

    /// GOSUB into a FOR loop, then a WAIT that ends the scan: later scans resume at the WAIT
    /// and go on after its time, and the program starts from the top again after END.
    #[tokio::test]
    async fn gosub_for_next_and_wait() {
        let w = world();
        w.plant.set(VAR1, 0.0);
        w.plant.set(VAR2, 0.0);
        w.program(
            "loops",
            "10 GOSUB 100\n20 WAIT 0:00:03\n30 VAR2 = VAR2 + 1\n40 END\n100 FOR I = 1 TO 5\n110 VAR1 = VAR1 + I\n120 NEXT I\n130 RETURN\n",
        )
        .await;
        w.second().await;
        assert_eq!(w.plant.take_log(), vec![format!("program:1 {VAR1}=15@16")], "1 + 2 + 3 + 4 + 5");
        let mut waited = 0;
        while w.plant.log.lock().is_empty() {
            w.second().await;
            waited += 1;
            assert!(waited < 10, "the WAIT never ended");
        }
        assert!((3..=4).contains(&waited), "waited {waited} scans");
        assert_eq!(w.plant.take_log(), vec![format!("program:1 {VAR2}=1@16")]);
        w.second().await;
        assert_eq!(w.plant.take_log(), vec![format!("program:1 {VAR1}=30@16")], "from the top again");
    }

    /// A division by zero stops that program (error with its line and place, the system alarm
    /// raised naming it, its points released), while another keeps running; enabling it again
    /// starts it afresh and the alarm clears once it runs.
    #[tokio::test]
    async fn an_erroring_program_stops_alone() {
        let w = world();
        w.plant.set(VAR2, 0.0);
        let bad = w.program("bad", "10 OUT2 = 1\n20 VAR1 = 10 / VAR2\n").await;
        let good = w.program("good", "10 VAR1 = VAR1 + 1\n").await;
        w.plant.set(VAR1, 0.0);
        w.second().await;
        let v = w.view(&bad);
        assert_eq!(v.status, "error");
        let e = v.error.unwrap();
        assert_eq!((e.line_number, e.line, e.message.as_str()), (20, 2, "division by zero"), "{e:?}");
        let system = w.alarm(SystemAlarm::ProgramError.rule_id()).expect("the system alarm is raised");
        assert!(
            system.message.as_deref().unwrap().contains("program 1 \"bad\" line 20: division by zero"),
            "{system:?}"
        );
        // What the bad program wrote before its error is not commanded.
        let log = w.plant.take_log();
        assert_eq!(log, vec![format!("program:2 {VAR1}=1@16")], "{log:?}");
        for _ in 0..3 {
            w.second().await;
        }
        assert_eq!((w.view(&bad).scans, w.view(&good).scans), (1, 4));
        assert_eq!(w.view(&good).status, "running");

        // Fixed: enabled again, it runs and the system alarm clears.
        w.plant.set(VAR2, 5.0);
        w.runner.set_enabled(bad.id, true).await.unwrap();
        assert_eq!(w.view(&bad).status, "running");
        w.second().await;
        assert_eq!(w.view(&bad).status, "running");
        assert_ne!(w.alarm(SystemAlarm::ProgramError.rule_id()).map(|a| a.state).as_deref(), Some("active"));
    }

    /// A second program in error raises the system alarm again, naming it; a restart with the
    /// programs still in error neither clears nor raises it (it is judged after the first scan);
    /// a program fixed while another stays in error is published, and the last one's end clears
    /// it saying so.
    #[tokio::test]
    async fn each_new_program_in_error_is_announced_and_a_restart_does_not_flap() {
        use t3_core::alarm::{AlarmState, TransitionKind};
        let w = world();
        w.plant.set(VAR2, 0.0);
        let mut events = w.alarms.subscribe();
        let a = w.program("a", "10 VAR1 = 10 / VAR2\n").await;
        w.second().await;
        let first = events.try_recv().expect("the first program in error raises the alarm");
        assert_eq!(first.message.as_deref(), Some("program 1 \"a\" line 10: division by zero"));
        let b = w.program("b", "10 VAR1 = 1 / VAR2\n").await;
        w.second().await;
        let second = events.try_recv().expect("the second program in error raises it again");
        assert_eq!((second.transition.from, second.transition.kind), (AlarmState::Active, TransitionKind::Raised));
        assert_eq!(
            second.message.as_deref(),
            Some(
                "program 1 \"a\" line 10: division by zero; program 2 \"b\" line 10: division by zero (new: program 2 \"b\")"
            )
        );

        // The server restarts: a new alarm service and runner over the same catalog.
        let alarms = AlarmService::new(w.catalog.clone(), w.clock.clone());
        let mut after = alarms.subscribe();
        let runner =
            Runner::new(w.catalog.clone(), w.plant.clone(), alarms.clone(), w.clock.clone(), ProgramsConfig::default());
        runner.start_all().await;
        w.clock.advance(SECOND);
        runner.tick().await;
        w.clock.advance(SECOND);
        runner.tick().await;
        assert!(after.try_recv().is_err(), "nothing published at the restart");
        let id = SystemAlarm::ProgramError.rule_id();
        let state = |alarms: &AlarmService| alarms.views().into_iter().find(|v| v.rule_id == id).map(|v| v.state);
        assert_eq!(state(&alarms).as_deref(), Some("active"));

        // One fixed, the other not yet; then both.
        w.plant.set(VAR2, 5.0);
        runner.set_enabled(a.id, true).await.unwrap();
        let eased = after.try_recv().expect("a program fixed is published");
        assert_eq!((eased.transition.to, eased.transition.kind), (AlarmState::Active, TransitionKind::Cleared));
        assert_eq!(
            eased.message.as_deref(),
            Some("program 1 \"a\" no longer in error; program 2 \"b\" line 10: division by zero")
        );
        runner.set_enabled(b.id, true).await.unwrap();
        let cleared = after.try_recv().expect("the last one fixed clears the alarm");
        assert_eq!(
            (cleared.transition.to, cleared.message.as_deref()),
            (AlarmState::Cleared, Some("no program is in error any more"))
        );
    }

    /// A point without a value (its device offline) makes the program wait, not stop: it shows the
    /// error and the system alarm is raised, what it commanded stays commanded, and it runs on by
    /// itself (the alarm clearing) once the value is back.
    #[tokio::test]
    async fn a_point_without_a_value_makes_the_program_wait_and_it_runs_on_by_itself() {
        let w = world();
        w.plant.set(VAR1, 1.0);
        let p = w.program("copy", "10 OUT2 = 7\n20 VAR2 = VAR1 * 2\n").await;
        w.second().await;
        assert_eq!(w.plant.take_log(), vec![format!("program:1 {OUT2}=7@16"), format!("program:1 {VAR2}=2@16")]);
        w.plant.values.lock().remove(&VAR1);
        w.second().await;
        let v = w.view(&p);
        assert_eq!(v.status, "error");
        assert_eq!(v.error.as_ref().map(|e| e.line_number), Some(20), "{v:?}");
        assert!(w.alarm(SystemAlarm::ProgramError.rule_id()).is_some_and(|a| a.state == "active"));
        assert!(w.plant.take_log().is_empty(), "nothing released or written while it waits");
        w.second().await;
        assert_eq!(w.view(&p).scans, 3, "scanned again while waiting");
        w.plant.set(VAR1, 5.0);
        w.second().await;
        let v = w.view(&p);
        assert_eq!((v.status.as_str(), v.error.is_none()), ("running", true), "{v:?}");
        assert_eq!(w.plant.take_log(), vec![format!("program:1 {VAR2}=10@16")]);
        assert_ne!(w.alarm(SystemAlarm::ProgramError.rule_id()).map(|a| a.state).as_deref(), Some("active"));

        // A disabled program run once has no next scan to wait in: it stops with the error.
        w.runner.set_enabled(p.id, false).await.unwrap();
        w.plant.values.lock().remove(&VAR1);
        w.runner.run_once(p.id).await.unwrap();
        let v = w.view(&p);
        assert_eq!((v.status.as_str(), v.error.map(|e| e.line_number)), ("error", Some(20)));
    }

    /// Disabling a program relinquishes every point it commanded at its priority, and deleting
    /// one does too; a disabled program does not scan, but runs once when asked.
    #[tokio::test]
    async fn disable_and_delete_relinquish() {
        let w = world();
        let p = w.program("outs", "10 START OUT1\n20 OUT2 = 42\n").await;
        w.second().await;
        assert_eq!(w.plant.take_log().len(), 2);
        w.runner.set_enabled(p.id, false).await.unwrap();
        let mut log = w.plant.take_log();
        log.sort();
        assert_eq!(log, vec![format!("program:1 release {OUT1}@16"), format!("program:1 release {OUT2}@16")]);
        assert_eq!(w.view(&p).status, "stopped");
        w.second().await;
        assert!(w.plant.take_log().is_empty(), "a disabled program does not scan");
        w.runner.run_once(p.id).await.unwrap();
        assert_eq!(w.plant.take_log().len(), 2, "run once");
        w.runner.remove(&p).await;
        assert_eq!(w.plant.take_log().len(), 2, "deleted: released");
    }

    /// A point someone else holds in manual is not written; once it is back in auto the
    /// program's value goes out.
    #[tokio::test]
    async fn points_held_in_manual_are_left_alone() {
        let w = world();
        w.plant.held.lock().insert(OUT2);
        w.program("m", "10 OUT2 = 5\n20 VAR1 = 1\n").await;
        w.second().await;
        assert_eq!(w.plant.take_log(), vec![format!("program:1 {VAR1}=1@16")]);
        w.plant.held.lock().clear();
        w.second().await;
        assert!(w.plant.take_log().is_empty(), "looked at again only after {HELD_RECHECK:?}");
        for _ in 0..5 {
            w.second().await;
        }
        assert_eq!(w.plant.take_log(), vec![format!("program:1 {OUT2}=5@16")]);
    }

    /// ALARM raises an alarm in the alarm list with the statement's message and clears it past
    /// the hysteresis; disabling the program clears what it raised.
    #[tokio::test]
    async fn alarm_statements_raise_alarms() {
        let w = world();
        w.plant.set(IN1, 20.0);
        let p = w.program("alarms", "10 ALARM IN1 > 25 , 2 , ROOM TOO WARM\n").await;
        let id = program_alarm_id(p.id, 10).unwrap();
        w.second().await;
        assert!(w.alarm(id).is_none());
        w.plant.set(IN1, 26.0);
        w.second().await;
        let a = w.alarm(id).expect("raised");
        assert_eq!((a.state.as_str(), a.level.as_deref()), ("active", Some("high")));
        assert_eq!(a.message.as_deref(), Some("ROOM TOO WARM"));
        assert_eq!(a.name, "alarms line 10");
        w.plant.set(IN1, 24.0);
        w.second().await;
        assert_eq!(w.alarm(id).unwrap().state, "active", "within the hysteresis");
        w.plant.set(IN1, 22.0);
        w.second().await;
        assert_eq!(w.alarm(id).unwrap().state, "cleared");
        w.plant.set(IN1, 30.0);
        w.second().await;
        assert_eq!(w.alarm(id).unwrap().state, "active");
        w.runner.set_enabled(p.id, false).await.unwrap();
        assert_eq!(w.alarm(id).unwrap().state, "cleared", "stopped: cleared, waiting for an acknowledgement");
    }

    /// Programs others write to the catalog (an import) are taken at the next scan, and dropped
    /// when deleted there; enabling one imported from a panel stops the panel's own copy.
    #[tokio::test]
    async fn imported_programs_are_taken_and_enabling_stops_the_panels_copy() {
        let w = world();
        let panel = crate::model::program::PanelProgram {
            number: 2,
            label: "BOILER".into(),
            description: String::new(),
            code_bytes: 10,
            code_hex: String::new(),
            panel_status: "on".into(),
            auto_manual: "auto".into(),
        };
        let p = w
            .catalog
            .insert(Program {
                id: 0,
                name: "ahu PRG2 BOILER".into(),
                device_id: Some(1),
                source: "10 VAR1 = 3\n".into(),
                enabled: false,
                status: "stopped".into(),
                updated_us: NOW,
                t3000: Some(panel),
            })
            .unwrap();
        w.second().await;
        let v = w.view(&p);
        assert_eq!((v.status.as_str(), v.writes.len()), ("stopped", 1), "{v:?}");
        assert!(w.plant.take_log().is_empty(), "imported programs do not run");
        let (_, note) = w.runner.set_enabled(p.id, true).await.unwrap();
        assert!(note.unwrap().starts_with("PRG2 is stopped on the panel"));
        w.second().await;
        assert_eq!(w.plant.take_log(), vec!["stop PRG2 on 1".to_owned(), format!("program:1 {VAR1}=3@16")]);
        w.catalog.delete::<Program>(p.id).unwrap();
        w.second().await;
        assert_eq!(w.plant.take_log(), vec![format!("program:1 release {VAR1}@16")]);
        assert!(w.runner.views().is_empty());
    }

    /// An enabled program whose names do not bind yet (a label the server does not know yet) is
    /// in error and bound again at every scan; once it binds it runs and the system alarm ends.
    #[tokio::test]
    async fn an_enabled_program_that_does_not_bind_yet_starts_once_it_does() {
        let w = world();
        let p = w.program("later", "10 SUPPLY = 1\n").await;
        let v = w.view(&p);
        assert_eq!((v.status.as_str(), v.error.as_ref().map(|e| e.line)), ("error", Some(1)), "{v:?}");
        assert!(w.alarm(SystemAlarm::ProgramError.rule_id()).is_some_and(|a| a.state == "active"));
        w.second().await;
        assert!(w.plant.take_log().is_empty());
        w.plant.labels.lock().insert(VAR2, "SUPPLY".into());
        w.second().await;
        assert_eq!(w.view(&p).status, "running");
        assert_eq!(w.plant.take_log(), vec![format!("program:1 {VAR2}=1@16")]);
        assert_ne!(w.alarm(SystemAlarm::ProgramError.rule_id()).map(|a| a.state).as_deref(), Some("active"));
    }

    /// Names bind to the device's points by name and label, panel prefixes to the device with
    /// that panel number; errors say where.
    #[test]
    fn check_binds_names_and_places_errors() {
        let w = world();
        w.runner.check("10 FAN = VAR1 + 2-VAR1 + 1-VAR2\n", 1).unwrap();
        let placed = |source: &str| match w.runner.check(source, 1) {
            Err(ProgramError::Invalid(p)) => p,
            other => panic!("{source}: {other:?}"),
        };
        let p = placed("10 VAR1 = 1\n20 IF VAR1 > 2 VAR2 = 3\n");
        assert_eq!((p.code, p.line), ("syntax_error", 2), "{p}");
        assert!(p.to_string().starts_with("line 2, column "), "{p}");
        let p = placed("10 VAR1 = 1\n20 VAR2 = VAR999\n");
        assert_eq!((p.code, p.line, p.column), ("unknown_point", 2, 11), "{p}");
        assert!(p.message.contains("VAR999"), "{p}");
        let p = placed("10 VAR1 = 9-VAR1\n");
        assert_eq!(p.code, "unknown_point");
        assert!(p.message.contains("panel number 9"), "{p}");
        assert_eq!(placed("10 GOTO 99\n").code, "invalid_program");
        assert!(matches!(w.runner.check("10 END\n", 7), Err(ProgramError::UnknownDevice(7))));
    }
}
