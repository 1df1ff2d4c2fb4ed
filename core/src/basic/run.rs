//! Running a Control BASIC program: [`Machine::new`] binds the program's point names and lays it
//! out once; [`Machine::scan`] runs it from the top (or from a pending WAIT) to END or its last
//! line against an [`Env`] that reads and writes points, as a T3 controller does once a second.
//!
//! # Layout
//! The tree is compiled to a flat list of statements with resolved jump indices (`Instr`) and
//! each expression to a run of postfix operations (`Op`) in one shared vector, so a scan walks
//! two arrays and a small value stack that keeps its capacity between scans: no allocation and no
//! name look-up per scan. Every piece of state a statement keeps between scans (an IF+ edge, an
//! ALARM's raised flag, a TIME-ON timer, what is left of an INTERVAL's period) has its own slot, numbered at
//! compile time.
//!
//! # Semantics (the controller's, from its firmware interpreter, with the deviations named)
//! - Values are fixed point, thousandths in an `i32`, as on the controller: point values are
//!   rounded to thousandths when read; `*` is `(a / 1000) * b + (a % 1000) * b / 1000` and `/`
//!   keeps three decimals truncated toward zero, as the firmware computes them. A result outside
//!   the `i32` range (±2,147,483.647) stops the program with an error (the controller wraps
//!   around silently), as does a point value outside that range.
//! - Comparisons and `NOT` give a raw 1 (0.001) or 0, `AND` / `OR` give 1 (1000) or 0, as on the
//!   controller; a condition is true when it is not zero. `XOR`, `&`, `|` work on integer parts.
//! - `x ^ n` multiplies `x` by itself `n - 1` times with the integer part of `n`, so `x ^ 0` and
//!   `x ^ 1` are both `x` (the firmware's rule).
//! - `/`, `\` and `MOD` by zero stop the program with an error (the controller gives 1.0). So do
//!   `SQR` of a negative number and `LN` of a number that is not positive (the controller's result
//!   is undefined there).
//! - `SQR`, `LN`, `LN-1`, `SIN`, `COS` go through single precision and truncate to thousandths,
//!   and `SIN` / `COS` take degrees with the firmware's pi of 3.14159, so they give the
//!   controller's digits (`SIN(30)` is 0.499).
//! - `TIME` is seconds since midnight, `DOW` 0 (Sunday) .. 6, `DOM`, `DOY` (1-based), `MOY`
//!   1 .. 12, all from the `now` each scan is given.
//! - `TIME-ON(x)` / `TIME-OFF(x)`: every call site keeps a timer; as on the controller, all of
//!   them look at `x` at the start of each scan (before the program runs) and count how long it
//!   has been true / false, in seconds; 0 while it is the other way. A timer starts at 0 after
//!   a (re)start.
//! - `INTERVAL(t)`: false when first evaluated after a (re)start, then true once every `t`
//!   seconds (raw 1, as the firmware pushes). As on the controller, every evaluation counts the
//!   scan's `elapsed_ms` off the period: evaluated once a scan it is true once every `t` seconds;
//!   in a loop inside one scan it comes true after a few rounds (real programs wait for it that
//!   way: `390 IF INTERVAL(0:00:01) THEN GOTO 400 ELSE GOTO 130`); skipped in a scan, it loses
//!   that scan's time. Unlike the firmware, which restarts every INTERVAL at each evaluation of
//!   the first scan (so such a loop runs into its statement limit there), only the first
//!   evaluation after a (re)start does.
//! - `IF+` / `IF-` fire on the transition of their condition; the state before the first scan
//!   after a (re)start counts as false. When they do not fire, their ELSE runs.
//! - `ON n GOTO/GOSUB`: `n` is the integer part of the value; out of range goes on with the next
//!   line (the firmware compares the raw thousandths, so `ON 2 ...` would never jump there).
//! - `FOR v = a TO b [STEP s]`: `v` is set to `a`; the body is skipped when `a > b` (when
//!   `a < b` for a negative step, which the firmware never runs); `NEXT` adds the step (1 by
//!   default) and loops while `v <= b` (`v >= b` for a negative step), evaluating `b` and `s`
//!   again each time as the firmware does. NEXT closes the innermost FOR (checked when bound).
//! - `WAIT t`: the scan ends at the WAIT; later scans resume at the WAIT itself (not at the top)
//!   and go on once `t` seconds have passed on the machine's clock. A pending GOSUB return
//!   survives the wait (the firmware loses it).
//! - `GOSUB` nests at most [`MAX_GOSUB_DEPTH`] deep; `RETURN` without a GOSUB is an error.
//! - `START` / `OPEN` / `ENABLE` write 1, `STOP` / `CLOSE` / `DISABLE` write 0.
//! - `ALARM a < b, h, text` (or `>`) raises once when the comparison holds and clears once `a`
//!   is past `b` by `h` the other way; `DALARM c, d, text` raises once `c` has held for `d`
//!   seconds and clears when `c` is false. Both call [`Env::alarm`] on raise and on clear, and a
//!   raise this scan makes the next `ON-ALARM n` jump to `n`.
//! - `POWER-LOSS` is 1 (raw, as the firmware) in the first scan after [`Machine::new`] or
//!   [`Machine::restart`], then 0. `SCANS` is the number of this scan since then (1, 2, ...).
//! - `CLEAR` sets every local to 0. Locals (`A`..`Z` and declared names) keep their values across
//!   scans and start at 0; declared INTEGER / BYTE types are not narrowed (all hold thousandths).
//! - `REM`, `PRINT`, `ON-ERROR` and the other statements the server does not act on (`PHONE`,
//!   declarations, ...) do nothing, as on the controller.
//! - Functions that need the controller's own I/O (`STATUS`, `TBL`, `WR-ON`, `COM1`, `PIDPROP`,
//!   ...) and arrays (`AY1[i]`, `X(i)`) are refused when the program is bound, naming them.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use chrono::{Datelike, NaiveDateTime, Timelike};

use super::ast::{BinOp, Expr, Func, IfKind, Line, PointRef, Pos, Program, Stmt, Target, UnOp};
use super::print::print_expr;

/// How deep GOSUBs may nest before the program stops with an error (a GOSUB that never
/// RETURNs, or one that calls itself).
pub const MAX_GOSUB_DEPTH: usize = 64;

/// What the first scan after a (re)start counts for INTERVAL when it is given no elapsed time:
/// T3000's scan period.
pub const FIRST_SCAN_MS: u32 = 1000;

/// A point name the program uses, handed to the resolver when the program is bound.
#[derive(Debug, Clone, Copy)]
pub enum PointName<'a> {
    /// A point named by type and number (`VAR12`, `2-OUT3`, `19.1.REG2`).
    Ref(&'a PointRef),
    /// A point named by its label on the panel (`WH-SP`).
    Label(&'a str),
}

/// What one scan may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// At most this many statements in one scan; more stops the program with an error (an
    /// endless loop, `10 GOTO 10`). The controller stops at 2,000 without a word.
    pub max_steps: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_steps: 10_000 }
    }
}

/// Why a program could not be bound or stopped while running: where (the BASIC line number and
/// the position in the text) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunError {
    /// The BASIC line number (`30`); 0 when the error is not on a line.
    pub line_number: u16,
    /// Where in the text: the point's name for a point's error, else the line's start.
    pub pos: Pos,
    pub message: String,
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line_number == 0 {
            write!(f, "{}: {}", self.pos, self.message)
        } else {
            write!(f, "{} (BASIC line {}): {}", self.pos, self.line_number, self.message)
        }
    }
}

impl std::error::Error for RunError {}

/// The world a program runs in: the points it reads and writes, and where its alarms go.
pub trait Env {
    /// The value of point `id` now; None when it has none (the program stops with an error naming
    /// the point). A read after a write of the same point in the same scan should see the written
    /// value, as a controller's own variables do.
    fn read(&mut self, id: u32) -> Option<f64>;
    /// Commands `value` to point `id` (START/STOP write 1/0).
    fn write(&mut self, id: u32, value: f64);
    /// An ALARM / DALARM statement was raised (true) or cleared (false).
    fn alarm(&mut self, line_number: u16, message: &str, raised: bool);
}

/// What one scan did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scan {
    /// Statements run (IF, a THEN clause's assignment and GOTO each count one).
    pub steps: u32,
    /// The scan ended at a WAIT that has not run out: the next scan resumes there.
    pub waiting: bool,
}

/// A bound program and its state between scans.
#[derive(Debug)]
pub struct Machine {
    code: Code,
    state: State,
    limits: Limits,
}

impl Machine {
    /// Binds every point name (unknown point/label -> RunError with its position), lays the program out for running.
    ///
    /// Also refused here: a GOTO / GOSUB / ON / THEN target that is not a line, NEXT without FOR
    /// (or naming another variable than the innermost FOR's), FOR without NEXT, arrays, and the
    /// functions the server cannot compute (see the module documentation).
    pub fn new(
        p: &Program,
        limits: Limits,
        resolve: &mut dyn FnMut(PointName<'_>) -> Result<u32, String>,
    ) -> Result<Machine, RunError> {
        let code = Compiler::new(p, resolve).compile()?;
        let state = State::new(&code);
        Ok(Machine { code, state, limits })
    }

    /// One scan: `now` is the local wall-clock time of the program's site (TIME, DOW, DOM, DOY, MOY),
    /// `elapsed_ms` the time since the previous scan (timers, INTERVAL, WAIT, DALARM).
    ///
    /// The timers start at the first scan after [`Machine::new`] or [`Machine::restart`], so its
    /// `elapsed_ms` only serves INTERVAL, which counts it at every evaluation: a loop that waits
    /// for an INTERVAL within one scan needs it to move. 0 there (no previous scan) is taken as
    /// T3000's scan period, [`FIRST_SCAN_MS`], which the controller's counter holds then.
    ///
    /// After an error the next scan starts again from the top with the locals and timers as they
    /// were; [`Machine::restart`] starts over completely.
    pub fn scan(&mut self, env: &mut dyn Env, now: NaiveDateTime, elapsed_ms: u32) -> Result<Scan, RunError> {
        let result =
            Run { code: &self.code, st: &mut self.state, env, now: Now::of(now), limits: self.limits }.scan(elapsed_ms);
        if result.is_err() {
            // An error can leave an expression half evaluated and a WAIT or GOSUB pending.
            self.state.stack.clear();
            self.state.wait = None;
            self.state.calls.clear();
        }
        result
    }

    /// The point ids the program reads and writes (sorted, unique).
    pub fn reads(&self) -> Vec<u32> {
        self.code.reads.clone()
    }

    pub fn writes(&self) -> Vec<u32> {
        self.code.writes.clone()
    }

    /// As after a (re)start: timers, edges and WAIT start over (T3000's `just_load`).
    ///
    /// Locals go back to 0 too, and alarms count as cleared (without a call to [`Env::alarm`]:
    /// whoever restarts the program owns what it raised).
    pub fn restart(&mut self) {
        self.state = State::new(&self.code);
    }
}

// ---------------------------------------------------------------------------------------------
// The compiled form.

/// A run of postfix operations in [`Code::ops`]: `start..end`.
#[derive(Debug, Clone, Copy, Default)]
struct Ops {
    start: u32,
    end: u32,
}

/// One postfix operation on the value stack.
#[derive(Debug, Clone, Copy)]
enum Op {
    Const(i32),
    Local(u16),
    /// A point, by its index in [`Code::points`].
    Point(u32),
    Neg,
    Not,
    Bin(BinOp),
    Abs,
    Int,
    Sqr,
    Ln,
    Exp,
    Sin,
    Cos,
    /// AVG / MAX / MIN of the top `n` values.
    Avg(u16),
    Max(u16),
    Min(u16),
    Time,
    Dow,
    Dom,
    Doy,
    Moy,
    Scans,
    PowerLoss,
    /// The timer of a time-table entry (its argument is evaluated at the start of the scan).
    TimeOn(u16),
    TimeOff(u16),
    /// Pops the period (seconds); state slot.
    Interval(u16),
}

impl Op {
    /// How many values the operation takes off the stack and puts on it.
    fn effect(self) -> (usize, usize) {
        match self {
            Op::Const(_)
            | Op::Local(_)
            | Op::Point(_)
            | Op::Time
            | Op::Dow
            | Op::Dom
            | Op::Doy
            | Op::Moy
            | Op::Scans
            | Op::PowerLoss
            | Op::TimeOn(_)
            | Op::TimeOff(_) => (0, 1),
            Op::Bin(_) => (2, 1),
            Op::Avg(n) | Op::Max(n) | Op::Min(n) => (usize::from(n), 1),
            _ => (1, 1),
        }
    }
}

/// Where a value goes: a local or a point (index in [`Code::points`]).
#[derive(Debug, Clone, Copy)]
enum Place {
    Local(u16),
    Point(u32),
}

/// A statement of the flat layout. Jump targets are indices into [`Code::instrs`].
#[derive(Debug, Clone, Copy)]
enum Instr {
    Assign {
        to: Place,
        value: Ops,
    },
    /// START / STOP and their kin: a constant.
    Set {
        to: Place,
        value: i32,
    },
    /// Laid out by the compiler (over an ELSE clause); not a statement of the program.
    Jump(u32),
    Goto(u32),
    Gosub(u32),
    Return,
    End,
    Clear,
    /// `targets` indexes [`Code::targets`]; `next_line` is where an out-of-range selector goes.
    On {
        selector: Ops,
        gosub: bool,
        first: u32,
        count: u32,
        next_line: u32,
    },
    If {
        kind: IfKind,
        cond: Ops,
        otherwise: u32,
        edge: u16,
    },
    For {
        var: Place,
        from: Ops,
        to: Ops,
        step: Option<Ops>,
        exit: u32,
    },
    /// `head` is the FOR's index.
    Next {
        head: u32,
    },
    Wait {
        seconds: Ops,
    },
    Alarm {
        left: Ops,
        above: bool,
        right: Ops,
        hysteresis: Ops,
        message: u16,
        slot: u16,
    },
    Dalarm {
        cond: Ops,
        delay: Ops,
        message: u16,
        slot: u16,
    },
    OnAlarm(u32),
}

/// A statement and the index of its line in [`Code::lines`].
#[derive(Debug, Clone, Copy)]
struct Step {
    instr: Instr,
    line: u32,
}

/// A bound point: its id and, for error messages, its name as written.
#[derive(Debug, Clone)]
struct PointSlot {
    id: u32,
    name: String,
    pos: Pos,
}

/// A TIME-ON / TIME-OFF call site: its argument and line.
#[derive(Debug, Clone, Copy)]
struct TimerSite {
    arg: Ops,
    line: u32,
}

#[derive(Debug, Default)]
struct Code {
    instrs: Vec<Step>,
    ops: Vec<Op>,
    /// BASIC line number and position of every line, by index.
    lines: Vec<(u16, Pos)>,
    points: Vec<PointSlot>,
    targets: Vec<u32>,
    messages: Vec<String>,
    timers: Vec<TimerSite>,
    locals: usize,
    edges: usize,
    alarms: usize,
    dalarms: usize,
    intervals: usize,
    max_depth: usize,
    reads: Vec<u32>,
    writes: Vec<u32>,
}

impl Code {
    fn error(&self, line: u32, fault: Fault) -> RunError {
        let (line_number, line_pos) = self.lines.get(line as usize).copied().unwrap_or_default();
        let (pos, message) = match fault {
            Fault::DivZero => (line_pos, "division by zero".to_string()),
            Fault::Overflow => (line_pos, "a result is out of the range a program's values have (±2147483.647)".into()),
            Fault::NoValue(p) => {
                let p = &self.points[p as usize];
                (p.pos, format!("{} has no value", p.name))
            }
            Fault::OutOfRange(p, v) => {
                let p = &self.points[p as usize];
                (
                    p.pos,
                    format!("the value of {} ({v}) is out of the range a program's values have (±2147483.647)", p.name),
                )
            }
            Fault::Sqr(v) => (line_pos, format!("SQR of a negative number ({})", milli_text(v))),
            Fault::Ln(v) => (line_pos, format!("LN of a number that is not above zero ({})", milli_text(v))),
            Fault::Steps(max) => (line_pos, format!("more than {max} statements in one scan (an endless loop?)")),
            Fault::GosubDepth => {
                (line_pos, format!("GOSUB nested more than {MAX_GOSUB_DEPTH} deep (a GOSUB that never returns?)"))
            }
            Fault::Return => (line_pos, "RETURN without GOSUB".into()),
        };
        RunError { line_number, pos, message }
    }
}

/// A run-time error before it is placed on a line.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    DivZero,
    Overflow,
    NoValue(u32),
    OutOfRange(u32, f64),
    Sqr(i32),
    Ln(i32),
    Steps(u32),
    GosubDepth,
    Return,
}

/// A number in thousandths as text (`-1.5`).
fn milli_text(v: i32) -> String {
    let sign = if v < 0 { "-" } else { "" };
    let a = i64::from(v).abs();
    let (int, frac) = (a / 1000, a % 1000);
    if frac == 0 {
        format!("{sign}{int}")
    } else {
        format!("{sign}{int}.{}", format!("{frac:03}").trim_end_matches('0'))
    }
}

/// A point's name as the text writes it (`VAR12`, `2-OUT3`, `19.1.REG2`).
fn point_text(p: &PointRef) -> String {
    print_expr(&Expr::Point(p.clone()))
}

fn target_text(t: &Target) -> String {
    match t {
        Target::Point(p) => point_text(p),
        Target::Local(n) | Target::LocalIndex(n, _) | Target::Label(n, _) => n.clone(),
    }
}

/// The name the text uses for a function.
fn func_name(f: Func) -> &'static str {
    match f {
        Func::Abs => "ABS",
        Func::Avg => "AVG",
        Func::Max => "MAX",
        Func::Min => "MIN",
        Func::Int => "INT",
        Func::Sqr => "SQR",
        Func::Ln => "LN",
        Func::Exp => "LN-1",
        Func::Sin => "SIN",
        Func::Cos => "COS",
        Func::Time => "TIME",
        Func::TimeOn => "TIME-ON",
        Func::TimeOff => "TIME-OFF",
        Func::Interval => "INTERVAL",
        Func::Dow => "DOW",
        Func::Dom => "DOM",
        Func::Doy => "DOY",
        Func::Moy => "MOY",
        Func::Scans => "SCANS",
        Func::PowerLoss => "POWER-LOSS",
        Func::Status => "STATUS",
        Func::Tbl => "TBL",
        Func::WrOn => "WR-ON",
        Func::WrOff => "WR-OFF",
        Func::Unack => "UNACK",
        Func::UserA => "USER-A",
        Func::UserB => "USER-B",
        Func::Runtime => "RUNTIME",
        Func::Com1 => "COM1",
        Func::PidProp => "PIDPROP",
        Func::PidRate => "PIDRATE",
        Func::PidReset => "PIDRESET",
        Func::SensorOn => "SENSOR-ON",
        Func::SensorOff => "SENSOR-OFF",
        Func::Day(_) => "a day name",
        Func::Month(_) => "a month name",
    }
}

/// Why the server cannot compute a function, or None when it can.
fn unsupported(f: Func) -> Option<&'static str> {
    Some(match f {
        Func::Status => "it asks the controller whether a panel or device is online",
        Func::Tbl => "it looks values up in the controller's custom tables",
        Func::WrOn | Func::WrOff => "it reads the times of the controller's weekly routines",
        Func::Unack => "it counts the controller's unacknowledged alarms",
        Func::UserA | Func::UserB => "it reports the controller's own connections",
        Func::Runtime => "it reads the controller's run-time counters",
        Func::Com1 => "it talks to the controller's serial port",
        Func::PidProp | Func::PidRate | Func::PidReset => "it sets the controller's PID loops",
        Func::SensorOn | Func::SensorOff => "it reads the controller's input sensor state",
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------------
// Binding and layout.

/// Where a jump target is written once every line's place is known.
#[derive(Debug, Clone, Copy)]
enum FixAt {
    Instr(usize),
    Target(usize),
}

struct Compiler<'a, 'r> {
    program: &'a Program,
    resolve: &'r mut dyn FnMut(PointName<'_>) -> Result<u32, String>,
    code: Code,
    locals: HashMap<&'a str, u16>,
    /// The current line's index.
    line: u32,
    /// Where each line's first statement is.
    line_start: Vec<u32>,
    fixups: Vec<(FixAt, u16, u32)>,
    /// Open FORs: instruction index, variable, line.
    fors: Vec<(usize, &'a Target, u32)>,
    /// ON statements whose `next_line` is filled in at the end.
    ons: Vec<usize>,
    reads: BTreeSet<u32>,
    writes: BTreeSet<u32>,
}

impl<'a, 'r> Compiler<'a, 'r> {
    fn new(program: &'a Program, resolve: &'r mut dyn FnMut(PointName<'_>) -> Result<u32, String>) -> Self {
        Compiler {
            program,
            resolve,
            code: Code::default(),
            locals: HashMap::new(),
            line: 0,
            line_start: Vec::with_capacity(program.lines.len()),
            fixups: Vec::new(),
            fors: Vec::new(),
            ons: Vec::new(),
            reads: BTreeSet::new(),
            writes: BTreeSet::new(),
        }
    }

    fn compile(mut self) -> Result<Code, RunError> {
        let program = self.program;
        self.code.lines = program.lines.iter().map(|l| (l.number, l.pos)).collect();
        for (i, line) in program.lines.iter().enumerate() {
            self.line = i as u32;
            self.line_start.push(self.code.instrs.len() as u32);
            self.stmt(&line.stmt)?;
        }
        if let Some(&(_, var, line)) = self.fors.last() {
            self.line = line;
            return Err(self.error(None, format!("FOR {} without NEXT", target_text(var))));
        }
        self.fix_jumps()?;
        self.code.locals = self.locals.len();
        self.code.reads = self.reads.into_iter().collect();
        self.code.writes = self.writes.into_iter().collect();
        Ok(self.code)
    }

    /// Writes every jump target: the first line with that number.
    fn fix_jumps(&mut self) -> Result<(), RunError> {
        let mut first: HashMap<u16, u32> = HashMap::new();
        for (i, line) in self.program.lines.iter().enumerate() {
            first.entry(line.number).or_insert(self.line_start[i]);
        }
        let end = self.code.instrs.len() as u32;
        for &(at, number, line) in &self.fixups {
            let Some(&to) = first.get(&number) else {
                self.line = line;
                return Err(self.error(None, format!("there is no line {number} to go to")));
            };
            match at {
                FixAt::Target(i) => self.code.targets[i] = to,
                FixAt::Instr(i) => match &mut self.code.instrs[i].instr {
                    Instr::Goto(t) | Instr::Gosub(t) | Instr::OnAlarm(t) => *t = to,
                    _ => {}
                },
            }
        }
        for &i in &self.ons {
            let line = self.code.instrs[i].line as usize;
            let next = self.line_start.get(line + 1).copied().unwrap_or(end);
            if let Instr::On { next_line, .. } = &mut self.code.instrs[i].instr {
                *next_line = next;
            }
        }
        Ok(())
    }

    fn error(&self, pos: Option<Pos>, message: String) -> RunError {
        let line: Option<&Line> = self.program.lines.get(self.line as usize);
        RunError {
            line_number: line.map(|l| l.number).unwrap_or(0),
            pos: pos.or(line.map(|l| l.pos)).unwrap_or_default(),
            message,
        }
    }

    fn push(&mut self, instr: Instr) -> usize {
        self.code.instrs.push(Step { instr, line: self.line });
        self.code.instrs.len() - 1
    }

    fn here(&self) -> u32 {
        self.code.instrs.len() as u32
    }

    /// A jump to BASIC line `number`, filled in by [`Compiler::fix_jumps`].
    fn jump(&mut self, instr: Instr, number: u16) {
        let at = self.push(instr);
        self.fixups.push((FixAt::Instr(at), number, self.line));
    }

    fn stmt(&mut self, stmt: &'a Stmt) -> Result<(), RunError> {
        match stmt {
            Stmt::Rem(_) | Stmt::Print(_) | Stmt::Other { .. } => {}
            Stmt::OnError(n) => {
                // A no-op, as on the controller; its target must still be a line.
                self.fixups.push((FixAt::Target(self.code.targets.len()), *n, self.line));
                self.code.targets.push(0);
            }
            Stmt::Assign { target, value } => {
                let value = self.expr(value)?;
                let to = self.place(target, false)?;
                self.push(Instr::Assign { to, value });
            }
            Stmt::Start(t) | Stmt::Enable(t) | Stmt::Open(t) => {
                let to = self.place(t, false)?;
                self.push(Instr::Set { to, value: 1000 });
            }
            Stmt::Stop(t) | Stmt::Disable(t) | Stmt::Close(t) => {
                let to = self.place(t, false)?;
                self.push(Instr::Set { to, value: 0 });
            }
            Stmt::Goto(n) => self.jump(Instr::Goto(0), *n),
            Stmt::Gosub(n) => self.jump(Instr::Gosub(0), *n),
            Stmt::OnAlarm(n) => self.jump(Instr::OnAlarm(0), *n),
            Stmt::Return => {
                self.push(Instr::Return);
            }
            Stmt::End => {
                self.push(Instr::End);
            }
            Stmt::Clear => {
                self.push(Instr::Clear);
            }
            Stmt::On { selector, gosub, targets } => {
                let selector = self.expr(selector)?;
                let first = self.code.targets.len() as u32;
                for &n in targets {
                    self.fixups.push((FixAt::Target(self.code.targets.len()), n, self.line));
                    self.code.targets.push(0);
                }
                let at =
                    self.push(Instr::On { selector, gosub: *gosub, first, count: targets.len() as u32, next_line: 0 });
                self.ons.push(at);
            }
            Stmt::If { kind, cond, then, otherwise } => self.if_stmt(*kind, cond, then, otherwise)?,
            Stmt::For { var, from, to, step } => {
                let from = self.expr(from)?;
                let to = self.expr(to)?;
                let step = step.as_ref().map(|s| self.expr(s)).transpose()?;
                let place = self.place(var, true)?;
                let at = self.push(Instr::For { var: place, from, to, step, exit: 0 });
                self.fors.push((at, var, self.line));
            }
            Stmt::Next(var) => {
                let Some(&(head, open, _)) = self.fors.last() else {
                    return Err(self.error(None, "NEXT without FOR".into()));
                };
                if let Some(v) = var
                    && v != open
                {
                    return Err(self.error(
                        None,
                        format!("NEXT {} does not close the innermost FOR {}", target_text(v), target_text(open)),
                    ));
                }
                self.fors.pop();
                self.push(Instr::Next { head: head as u32 });
                let exit = self.here();
                if let Instr::For { exit: e, .. } = &mut self.code.instrs[head].instr {
                    *e = exit;
                }
            }
            Stmt::Wait(seconds) => {
                let seconds = self.expr(seconds)?;
                self.push(Instr::Wait { seconds });
            }
            Stmt::Alarm { left, above, right, hysteresis, message } => {
                let left = self.expr(left)?;
                let right = self.expr(right)?;
                let hysteresis = self.expr(hysteresis)?;
                let message = self.message(message);
                let slot = self.slot(|c| &mut c.alarms);
                self.push(Instr::Alarm { left, above: *above, right, hysteresis, message, slot });
            }
            Stmt::Dalarm { cond, delay, message } => {
                let cond = self.expr(cond)?;
                let delay = self.expr(delay)?;
                let message = self.message(message);
                let slot = self.slot(|c| &mut c.dalarms);
                self.push(Instr::Dalarm { cond, delay, message, slot });
            }
        }
        Ok(())
    }

    /// `IF cond THEN a ELSE b` as: If (to b when not taken), a, Jump (to the end), b.
    fn if_stmt(
        &mut self,
        kind: IfKind,
        cond: &'a Expr,
        then: &'a [Stmt],
        otherwise: &'a [Stmt],
    ) -> Result<(), RunError> {
        let cond = self.expr(cond)?;
        let edge = if kind == IfKind::Plain { 0 } else { self.slot(|c| &mut c.edges) };
        let at = self.push(Instr::If { kind, cond, otherwise: 0, edge });
        for s in then {
            self.stmt(s)?;
        }
        let jump = (!otherwise.is_empty()).then(|| self.push(Instr::Jump(0)));
        let else_at = self.here();
        if let Instr::If { otherwise: o, .. } = &mut self.code.instrs[at].instr {
            *o = else_at;
        }
        if let Some(jump) = jump {
            for s in otherwise {
                self.stmt(s)?;
            }
            let end = self.here();
            self.code.instrs[jump].instr = Instr::Jump(end);
        }
        Ok(())
    }

    fn message(&mut self, text: &str) -> u16 {
        self.code.messages.push(text.to_string());
        (self.code.messages.len() - 1) as u16
    }

    /// A new state slot of the kind `count` selects.
    fn slot(&mut self, count: impl FnOnce(&mut Code) -> &mut usize) -> u16 {
        let n = count(&mut self.code);
        *n += 1;
        (*n - 1) as u16
    }

    fn local(&mut self, name: &'a str) -> u16 {
        let next = self.locals.len() as u16;
        *self.locals.entry(name).or_insert(next)
    }

    /// Binds a point name to a slot in [`Code::points`].
    fn point(&mut self, name: PointName<'a>, pos: Pos, read: bool, write: bool) -> Result<u32, RunError> {
        let text = match name {
            PointName::Ref(p) => {
                if p.index.is_some() {
                    return Err(self
                        .error(Some(pos), format!("{}: point arrays are not supported by the server", point_text(p))));
                }
                point_text(p)
            }
            PointName::Label(l) => l.to_string(),
        };
        let id = (self.resolve)(name).map_err(|m| self.error(Some(pos), m))?;
        if read {
            self.reads.insert(id);
        }
        if write {
            self.writes.insert(id);
        }
        self.code.points.push(PointSlot { id, name: text, pos });
        Ok((self.code.points.len() - 1) as u32)
    }

    /// Where an assignment, START / STOP or FOR writes (a FOR's variable is read too).
    fn place(&mut self, t: &'a Target, read: bool) -> Result<Place, RunError> {
        Ok(match t {
            Target::Local(n) => Place::Local(self.local(n)),
            Target::Point(p) => Place::Point(self.point(PointName::Ref(p), p.pos, read, true)?),
            Target::Label(l, pos) => Place::Point(self.point(PointName::Label(l), *pos, read, true)?),
            Target::LocalIndex(n, _) => {
                return Err(self.error(None, format!("{n}(...): local arrays are not supported by the server")));
            }
        })
    }

    /// Compiles an expression into its own run of [`Code::ops`].
    fn expr(&mut self, e: &'a Expr) -> Result<Ops, RunError> {
        let mut buf = Vec::new();
        self.emit(e, &mut buf)?;
        let mut depth = 0usize;
        for op in &buf {
            let (take, put) = op.effect();
            depth = depth - take + put;
            self.code.max_depth = self.code.max_depth.max(depth);
        }
        let start = self.code.ops.len() as u32;
        self.code.ops.extend(buf);
        Ok(Ops { start, end: self.code.ops.len() as u32 })
    }

    fn emit(&mut self, e: &'a Expr, out: &mut Vec<Op>) -> Result<(), RunError> {
        match e {
            Expr::Num(m) => out.push(Op::Const(m.0)),
            Expr::Time(secs) => {
                let v = i32::try_from(i64::from(*secs) * 1000)
                    .map_err(|_| self.error(None, format!("the time {secs} s is too long")))?;
                out.push(Op::Const(v));
            }
            Expr::Point(p) => out.push(Op::Point(self.point(PointName::Ref(p), p.pos, true, false)?)),
            Expr::Label(l, pos) => out.push(Op::Point(self.point(PointName::Label(l), *pos, true, false)?)),
            Expr::Local(n) => out.push(Op::Local(self.local(n))),
            Expr::LocalIndex(n, _) => {
                return Err(self.error(None, format!("{n}(...): local arrays are not supported by the server")));
            }
            Expr::Unary(op, x) => {
                self.emit(x, out)?;
                out.push(match op {
                    UnOp::Neg => Op::Neg,
                    UnOp::Not => Op::Not,
                });
            }
            Expr::Binary(op, a, b) => {
                self.emit(a, out)?;
                self.emit(b, out)?;
                out.push(Op::Bin(*op));
            }
            Expr::Call(f, args) => self.call(*f, args, out)?,
        }
        Ok(())
    }

    fn call(&mut self, f: Func, args: &'a [Expr], out: &mut Vec<Op>) -> Result<(), RunError> {
        if let Some(why) = unsupported(f) {
            return Err(self.error(None, format!("{} is not supported by the server: {why}", func_name(f))));
        }
        let arity = |n: usize| -> Result<(), RunError> {
            if args.len() == n {
                Ok(())
            } else {
                Err(self.error(None, format!("{} takes {n} argument(s), not {}", func_name(f), args.len())))
            }
        };
        let op = match f {
            Func::Day(d) => {
                arity(0)?;
                Op::Const(i32::from(d) * 1000)
            }
            Func::Month(m) => {
                arity(0)?;
                Op::Const(i32::from(m) * 1000)
            }
            Func::Time | Func::Dow | Func::Dom | Func::Doy | Func::Moy | Func::Scans | Func::PowerLoss => {
                arity(0)?;
                match f {
                    Func::Time => Op::Time,
                    Func::Dow => Op::Dow,
                    Func::Dom => Op::Dom,
                    Func::Doy => Op::Doy,
                    Func::Moy => Op::Moy,
                    Func::Scans => Op::Scans,
                    _ => Op::PowerLoss,
                }
            }
            Func::TimeOn | Func::TimeOff => {
                arity(1)?;
                // The argument runs at the start of every scan, not here.
                let arg = self.expr(&args[0])?;
                self.code.timers.push(TimerSite { arg, line: self.line });
                let slot = (self.code.timers.len() - 1) as u16;
                out.push(if f == Func::TimeOn { Op::TimeOn(slot) } else { Op::TimeOff(slot) });
                return Ok(());
            }
            Func::Avg | Func::Max | Func::Min => {
                if args.is_empty() || args.len() > usize::from(u16::MAX) {
                    return Err(self.error(None, format!("{} takes one or more arguments", func_name(f))));
                }
                let n = args.len() as u16;
                match f {
                    Func::Avg => Op::Avg(n),
                    Func::Max => Op::Max(n),
                    _ => Op::Min(n),
                }
            }
            _ => {
                arity(1)?;
                match f {
                    Func::Abs => Op::Abs,
                    Func::Int => Op::Int,
                    Func::Sqr => Op::Sqr,
                    Func::Ln => Op::Ln,
                    Func::Exp => Op::Exp,
                    Func::Sin => Op::Sin,
                    Func::Cos => Op::Cos,
                    _ => Op::Interval(self.slot(|c| &mut c.intervals)),
                }
            }
        };
        for a in args {
            self.emit(a, out)?;
        }
        out.push(op);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// State and one scan.

/// A TIME-ON / TIME-OFF timer: the argument's state and since when (machine clock, ms).
#[derive(Debug, Clone, Copy, Default)]
struct Timer {
    on: bool,
    since: u64,
}

/// A DALARM: since when its condition holds, and whether it raised.
#[derive(Debug, Clone, Copy, Default)]
struct Delay {
    since: Option<u64>,
    raised: bool,
}

/// A pending WAIT: the statement and when it was first reached (machine clock, ms).
#[derive(Debug, Clone, Copy)]
struct Pending {
    at: u32,
    since: u64,
}

#[derive(Debug)]
struct State {
    locals: Vec<i32>,
    stack: Vec<i32>,
    calls: Vec<u32>,
    edges: Vec<bool>,
    alarms: Vec<bool>,
    dalarms: Vec<Delay>,
    /// What is left of each INTERVAL's period (ms); None before its first evaluation.
    intervals: Vec<Option<i64>>,
    timers: Vec<Timer>,
    /// Milliseconds since the first scan after the (re)start: the sum of `elapsed_ms`.
    clock: u64,
    /// Scans since the (re)start, this one included.
    scans: u64,
    /// This scan's `elapsed_ms`, which every INTERVAL evaluation counts.
    dt: u32,
    wait: Option<Pending>,
    /// An ALARM or DALARM raised in this scan (ON-ALARM).
    alarm_flag: bool,
}

impl State {
    fn new(code: &Code) -> State {
        State {
            locals: vec![0; code.locals],
            stack: Vec::with_capacity(code.max_depth),
            calls: Vec::with_capacity(MAX_GOSUB_DEPTH),
            edges: vec![false; code.edges],
            alarms: vec![false; code.alarms],
            dalarms: vec![Delay::default(); code.dalarms],
            intervals: vec![None; code.intervals],
            timers: vec![Timer::default(); code.timers.len()],
            clock: 0,
            scans: 0,
            dt: 0,
            wait: None,
            alarm_flag: false,
        }
    }
}

/// The calendar values of one scan, in thousandths.
#[derive(Debug, Clone, Copy)]
struct Now {
    time: i32,
    dow: i32,
    dom: i32,
    doy: i32,
    moy: i32,
}

impl Now {
    fn of(t: NaiveDateTime) -> Now {
        let secs = t.hour() * 3600 + t.minute() * 60 + t.second();
        Now {
            time: secs as i32 * 1000,
            dow: t.weekday().num_days_from_sunday() as i32 * 1000,
            dom: t.day() as i32 * 1000,
            doy: t.ordinal() as i32 * 1000,
            moy: t.month() as i32 * 1000,
        }
    }
}

/// One scan in progress.
struct Run<'m, 'e> {
    code: &'m Code,
    st: &'m mut State,
    env: &'e mut dyn Env,
    now: Now,
    limits: Limits,
}

/// Milliseconds on the machine clock as a value in thousandths of a second (saturating).
fn clock_value(ms: u64) -> i32 {
    i32::try_from(ms).unwrap_or(i32::MAX)
}

fn fits(v: i64) -> Result<i32, Fault> {
    i32::try_from(v).map_err(|_| Fault::Overflow)
}

/// `a * b` in thousandths, as the firmware computes it.
fn mul(a: i32, b: i32) -> Result<i32, Fault> {
    let (a, b) = (i64::from(a), i64::from(b));
    fits((a / 1000) * b + (a % 1000) * b / 1000)
}

/// The firmware's pi (SIN and COS take degrees: `sin(FIRMWARE_PI * x / 180)`); kept so the server
/// gives the controller's digits.
#[allow(clippy::approx_constant)]
const FIRMWARE_PI: f64 = 3.14159;

/// A single-precision result in thousandths, truncated as the firmware's conversion does.
fn from_f32(v: f32) -> Result<i32, Fault> {
    let v = v * 1000.0;
    if v.is_finite() && v >= i32::MIN as f32 && v < i32::MAX as f32 { Ok(v as i32) } else { Err(Fault::Overflow) }
}

fn binary(op: BinOp, a: i32, b: i32) -> Result<i32, Fault> {
    let (x, y) = (i64::from(a), i64::from(b));
    Ok(match op {
        BinOp::Add => fits(x + y)?,
        BinOp::Sub => fits(x - y)?,
        BinOp::Mul => mul(a, b)?,
        BinOp::Div => {
            if b == 0 {
                return Err(Fault::DivZero);
            }
            fits((x / y) * 1000 + (x % y) * 1000 / y)?
        }
        BinOp::IntDiv => {
            if b == 0 {
                return Err(Fault::DivZero);
            }
            fits((x / y) * 1000)?
        }
        BinOp::Mod => {
            if b == 0 {
                return Err(Fault::DivZero);
            }
            fits((x % y) / 1000 * 1000)?
        }
        BinOp::Pow => pow(a, b)?,
        BinOp::And => i32::from(a != 0 && b != 0) * 1000,
        BinOp::Or => i32::from(a != 0 || b != 0) * 1000,
        BinOp::Xor => fits(((x / 1000) ^ (y / 1000)) * 1000)?,
        BinOp::BitAnd => fits(((x / 1000) & (y / 1000)) * 1000)?,
        BinOp::BitOr => fits(((x / 1000) | (y / 1000)) * 1000)?,
        BinOp::Eq => i32::from(a == b),
        BinOp::Ne => i32::from(a != b),
        BinOp::Lt => i32::from(a < b),
        BinOp::Gt => i32::from(a > b),
        BinOp::Le => i32::from(a <= b),
        BinOp::Ge => i32::from(a >= b),
    })
}

/// `a ^ b`: `a` multiplied by itself `int(b) - 1` times (so `a ^ 0` is `a`), as the firmware.
fn pow(a: i32, b: i32) -> Result<i32, Fault> {
    let times = b / 1000 - 1;
    match a {
        // Fixed points of the firmware's multiplication: answered without the loop.
        0 | 1000 => return Ok(a),
        -1000 => return Ok(if times > 0 && times % 2 == 1 { 1000 } else { -1000 }),
        _ => {}
    }
    let mut n = a;
    for _ in 0..times.max(0) {
        n = mul(n, a)?;
        // Any other base leaves the range or reaches 0 within a few thousand rounds.
        if n == 0 {
            break;
        }
    }
    Ok(n)
}

impl Run<'_, '_> {
    fn scan(mut self, elapsed_ms: u32) -> Result<Scan, RunError> {
        let st = &mut *self.st;
        if st.scans > 0 {
            st.clock += u64::from(elapsed_ms);
        }
        st.scans += 1;
        st.dt = if st.scans == 1 && elapsed_ms == 0 { FIRST_SCAN_MS } else { elapsed_ms };
        st.alarm_flag = false;
        let code = self.code;
        // The time table first, as the controller does.
        for (i, site) in code.timers.iter().enumerate() {
            let on = self.eval(site.arg).map_err(|f| code.error(site.line, f))? != 0;
            let (clock, t) = (self.st.clock, &mut self.st.timers[i]);
            if on != t.on {
                *t = Timer { on, since: clock };
            }
        }
        let mut pc = match self.st.wait {
            Some(w) => w.at,
            None => {
                self.st.calls.clear();
                0
            }
        };
        let mut steps = 0u32;
        while let Some(step) = code.instrs.get(pc as usize) {
            let at = pc;
            pc += 1;
            if !matches!(step.instr, Instr::Jump(_)) {
                steps += 1;
                if steps > self.limits.max_steps {
                    return Err(code.error(step.line, Fault::Steps(self.limits.max_steps)));
                }
            }
            match self.exec(step.instr, at, &mut pc) {
                Ok(Flow::Go) => {}
                Ok(Flow::End) => break,
                Ok(Flow::Wait) => return Ok(Scan { steps, waiting: true }),
                Err(f) => return Err(code.error(step.line, f)),
            }
        }
        self.st.wait = None;
        Ok(Scan { steps, waiting: false })
    }

    /// Runs the statement at `at`; `pc` already points at the next one.
    fn exec(&mut self, instr: Instr, at: u32, pc: &mut u32) -> Result<Flow, Fault> {
        match instr {
            Instr::Assign { to, value } => {
                let v = self.eval(value)?;
                self.store(to, v);
            }
            Instr::Set { to, value } => self.store(to, value),
            Instr::Jump(t) | Instr::Goto(t) => *pc = t,
            Instr::Gosub(t) => {
                if self.st.calls.len() >= MAX_GOSUB_DEPTH {
                    return Err(Fault::GosubDepth);
                }
                self.st.calls.push(*pc);
                *pc = t;
            }
            Instr::Return => *pc = self.st.calls.pop().ok_or(Fault::Return)?,
            Instr::End => return Ok(Flow::End),
            Instr::Clear => self.st.locals.iter_mut().for_each(|v| *v = 0),
            Instr::On { selector, gosub, first, count, next_line } => {
                let n = self.eval(selector)? / 1000;
                if n < 1 || n as u32 > count {
                    *pc = next_line;
                } else {
                    if gosub {
                        if self.st.calls.len() >= MAX_GOSUB_DEPTH {
                            return Err(Fault::GosubDepth);
                        }
                        self.st.calls.push(*pc);
                    }
                    *pc = self.code.targets[(first + n as u32 - 1) as usize];
                }
            }
            Instr::If { kind, cond, otherwise, edge } => {
                let c = self.eval(cond)? != 0;
                let taken = match kind {
                    IfKind::Plain => c,
                    IfKind::Rising | IfKind::Falling => {
                        let last = std::mem::replace(&mut self.st.edges[usize::from(edge)], c);
                        if kind == IfKind::Rising { c && !last } else { !c && last }
                    }
                };
                if !taken {
                    *pc = otherwise;
                }
            }
            Instr::For { var, from, to, step, exit } => {
                let from = self.eval(from)?;
                let to = self.eval(to)?;
                let step = self.eval_step(step)?;
                if (step >= 0 && from <= to) || (step < 0 && from >= to) {
                    self.store(var, from);
                } else {
                    *pc = exit;
                }
            }
            Instr::Next { head } => {
                if let Instr::For { var, to, step, .. } = self.code.instrs[head as usize].instr {
                    let to = self.eval(to)?;
                    let step = self.eval_step(step)?;
                    let v = binary(BinOp::Add, self.load(var)?, step)?;
                    self.store(var, v);
                    if (step >= 0 && v <= to) || (step < 0 && v >= to) {
                        *pc = head + 1;
                    }
                }
            }
            Instr::Wait { seconds } => {
                let ms = i64::from(self.eval(seconds)?);
                let clock = self.st.clock;
                let since = match self.st.wait {
                    Some(w) if w.at == at => w.since,
                    _ => clock,
                };
                if (clock - since) as i64 >= ms {
                    self.st.wait = None;
                } else {
                    self.st.wait = Some(Pending { at, since });
                    return Ok(Flow::Wait);
                }
            }
            Instr::Alarm { left, above, right, hysteresis, message, slot } => {
                let l = i64::from(self.eval(left)?);
                let r = i64::from(self.eval(right)?);
                let h = i64::from(self.eval(hysteresis)?);
                let raised = self.st.alarms[usize::from(slot)];
                let now = if raised {
                    // Stays raised until past the limit by the hysteresis the other way.
                    if above { l >= r - h } else { l <= r + h }
                } else if above {
                    l > r
                } else {
                    l < r
                };
                if now != raised {
                    self.st.alarms[usize::from(slot)] = now;
                    self.alarm(at, message, now);
                }
            }
            Instr::Dalarm { cond, delay, message, slot } => {
                let c = self.eval(cond)? != 0;
                let delay = i64::from(self.eval(delay)?);
                let clock = self.st.clock;
                let d = self.st.dalarms[usize::from(slot)];
                if c {
                    let since = d.since.unwrap_or(clock);
                    let raise = !d.raised && (clock - since) as i64 >= delay;
                    self.st.dalarms[usize::from(slot)] = Delay { since: Some(since), raised: d.raised || raise };
                    if raise {
                        self.alarm(at, message, true);
                    }
                } else {
                    self.st.dalarms[usize::from(slot)] = Delay::default();
                    if d.raised {
                        self.alarm(at, message, false);
                    }
                }
            }
            Instr::OnAlarm(t) => {
                if self.st.alarm_flag {
                    self.st.alarm_flag = false;
                    *pc = t;
                }
            }
        }
        Ok(Flow::Go)
    }

    fn alarm(&mut self, at: u32, message: u16, raised: bool) {
        let line = self.code.instrs[at as usize].line as usize;
        let number = self.code.lines[line].0;
        if raised {
            self.st.alarm_flag = true;
        }
        self.env.alarm(number, &self.code.messages[usize::from(message)], raised);
    }

    fn eval_step(&mut self, step: Option<Ops>) -> Result<i32, Fault> {
        step.map_or(Ok(1000), |s| self.eval(s))
    }

    fn store(&mut self, to: Place, v: i32) {
        match to {
            Place::Local(i) => self.st.locals[usize::from(i)] = v,
            Place::Point(p) => self.env.write(self.code.points[p as usize].id, f64::from(v) / 1000.0),
        }
    }

    fn load(&mut self, from: Place) -> Result<i32, Fault> {
        match from {
            Place::Local(i) => Ok(self.st.locals[usize::from(i)]),
            Place::Point(p) => self.read(p),
        }
    }

    /// A point's value, rounded to thousandths.
    fn read(&mut self, p: u32) -> Result<i32, Fault> {
        let v = self.env.read(self.code.points[p as usize].id).ok_or(Fault::NoValue(p))?;
        if v.is_nan() {
            return Err(Fault::NoValue(p));
        }
        let m = (v * 1000.0).round();
        if m >= f64::from(i32::MIN) && m <= f64::from(i32::MAX) { Ok(m as i32) } else { Err(Fault::OutOfRange(p, v)) }
    }

    fn pop(&mut self) -> i32 {
        // The compiler balanced every expression; an empty stack cannot happen.
        self.st.stack.pop().unwrap_or(0)
    }

    fn eval(&mut self, ops: Ops) -> Result<i32, Fault> {
        let code = self.code;
        for &op in &code.ops[ops.start as usize..ops.end as usize] {
            let v = match op {
                Op::Const(v) => v,
                Op::Local(i) => self.st.locals[usize::from(i)],
                Op::Point(p) => self.read(p)?,
                Op::Neg => {
                    let a = self.pop();
                    a.checked_neg().ok_or(Fault::Overflow)?
                }
                Op::Not => {
                    let a = self.pop();
                    i32::from(a == 0)
                }
                Op::Bin(op) => {
                    let b = self.pop();
                    let a = self.pop();
                    binary(op, a, b)?
                }
                Op::Abs => {
                    let a = self.pop();
                    a.checked_abs().ok_or(Fault::Overflow)?
                }
                Op::Int => self.pop() / 1000 * 1000,
                Op::Sqr => {
                    let a = self.pop();
                    if a < 0 {
                        return Err(Fault::Sqr(a));
                    }
                    from_f32((f64::from(a) / 1000.0).sqrt() as f32)?
                }
                Op::Ln => {
                    let a = self.pop();
                    if a <= 0 {
                        return Err(Fault::Ln(a));
                    }
                    from_f32((f64::from(a) / 1000.0).ln() as f32)?
                }
                Op::Exp => {
                    let a = self.pop();
                    from_f32((f64::from(a) / 1000.0).exp() as f32)?
                }
                Op::Sin => {
                    let a = self.pop();
                    from_f32((FIRMWARE_PI * f64::from(a) / 180000.0).sin() as f32)?
                }
                Op::Cos => {
                    let a = self.pop();
                    from_f32((FIRMWARE_PI * f64::from(a) / 180000.0).cos() as f32)?
                }
                Op::Avg(n) => {
                    let mut sum = 0i64;
                    for _ in 0..n {
                        sum += i64::from(self.pop());
                    }
                    fits(sum / i64::from(n))?
                }
                Op::Max(n) => {
                    let mut m = self.pop();
                    for _ in 1..n {
                        m = m.max(self.pop());
                    }
                    m
                }
                Op::Min(n) => {
                    let mut m = self.pop();
                    for _ in 1..n {
                        m = m.min(self.pop());
                    }
                    m
                }
                Op::Time => self.now.time,
                Op::Dow => self.now.dow,
                Op::Dom => self.now.dom,
                Op::Doy => self.now.doy,
                Op::Moy => self.now.moy,
                Op::Scans => i32::try_from(self.st.scans.saturating_mul(1000)).unwrap_or(i32::MAX),
                Op::PowerLoss => i32::from(self.st.scans == 1),
                Op::TimeOn(i) => {
                    let t = self.st.timers[usize::from(i)];
                    if t.on { clock_value(self.st.clock - t.since) } else { 0 }
                }
                Op::TimeOff(i) => {
                    let t = self.st.timers[usize::from(i)];
                    if t.on { 0 } else { clock_value(self.st.clock - t.since) }
                }
                Op::Interval(i) => {
                    let period = i64::from(self.pop());
                    let dt = i64::from(self.st.dt);
                    let left = &mut self.st.intervals[usize::from(i)];
                    match *left {
                        Some(n) if n - dt > 0 => {
                            *left = Some(n - dt);
                            0
                        }
                        Some(_) => {
                            *left = Some(period);
                            1
                        }
                        None => {
                            *left = Some(period);
                            0
                        }
                    }
                }
            };
            self.st.stack.push(v);
        }
        Ok(self.pop())
    }
}

/// What the scan does after a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Go,
    End,
    Wait,
}

#[cfg(test)]
mod tests {
    //! The arithmetic and a few programs built as trees; `core/tests/basic_run.rs` runs programs
    //! written as text.
    use super::*;
    use crate::basic::ast::{Milli, PointKind};

    #[test]
    fn arithmetic_follows_the_firmware() {
        assert_eq!(binary(BinOp::Mul, 333, 3000), Ok(999));
        assert_eq!(binary(BinOp::Mul, 7, 500), Ok(3));
        assert_eq!(binary(BinOp::Mul, -1500, 1500), Ok(-2250));
        assert_eq!(binary(BinOp::Div, 10_000, 3000), Ok(3333));
        assert_eq!(binary(BinOp::Div, -10_000, 3000), Ok(-3333));
        assert_eq!(binary(BinOp::Div, 1, 0), Err(Fault::DivZero));
        assert_eq!(binary(BinOp::IntDiv, 7000, 2000), Ok(3000));
        assert_eq!(binary(BinOp::Mod, 7500, 2000), Ok(1000));
        assert_eq!(binary(BinOp::Mod, -7500, 2000), Ok(-1000));
        assert_eq!(binary(BinOp::Gt, 2, 1), Ok(1));
        assert_eq!(binary(BinOp::And, 2, 1), Ok(1000));
        assert_eq!(binary(BinOp::Xor, 6500, 3000), Ok(5000));
        assert_eq!(binary(BinOp::Add, i32::MAX, 1), Err(Fault::Overflow));
        assert_eq!(binary(BinOp::Div, i32::MIN, -1000), Err(Fault::Overflow));
        assert_eq!(binary(BinOp::Mod, i32::MIN, -1), Ok(0));
    }

    #[test]
    fn power_is_bounded_and_keeps_the_firmware_rule() {
        assert_eq!(pow(5000, 0), Ok(5000));
        assert_eq!(pow(5000, 1000), Ok(5000));
        assert_eq!(pow(2000, 10_000), Ok(1_024_000));
        assert_eq!(pow(-1000, 3000), Ok(-1000));
        assert_eq!(pow(-1000, 4000), Ok(1000));
        assert_eq!(pow(-1000, i32::MAX), Ok(-1000));
        assert_eq!(pow(1000, i32::MAX), Ok(1000));
        assert_eq!(pow(999, i32::MAX), Ok(0));
        assert_eq!(pow(1001, i32::MAX), Err(Fault::Overflow));
        assert_eq!(pow(-1001, i32::MAX), Err(Fault::Overflow));
    }

    #[test]
    fn a_machine_moves_between_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Machine>();
    }

    #[test]
    fn numbers_print_as_the_text_writes_them() {
        assert_eq!(milli_text(-1500), "-1.5");
        assert_eq!(milli_text(2), "0.002");
        assert_eq!(milli_text(i32::MIN), "-2147483.648");
    }

    fn line(number: u16, stmt: Stmt) -> Line {
        Line { number, stmt, pos: Pos { line: u32::from(number / 10), column: 1 } }
    }

    fn var(n: u32) -> Expr {
        Expr::Point(PointRef {
            panel: None,
            sub_panel: None,
            kind: PointKind::Var,
            number: n,
            index: None,
            pos: Pos::default(),
        })
    }

    fn assign(n: u32, value: Expr) -> Stmt {
        match var(n) {
            Expr::Point(p) => Stmt::Assign { target: Target::Point(p), value },
            _ => unreachable!(),
        }
    }

    #[derive(Default)]
    struct Points(HashMap<u32, f64>, Vec<(u32, f64)>);

    impl Env for Points {
        fn read(&mut self, id: u32) -> Option<f64> {
            self.0.get(&id).copied()
        }
        fn write(&mut self, id: u32, value: f64) {
            self.0.insert(id, value);
            self.1.push((id, value));
        }
        fn alarm(&mut self, _: u16, _: &str, _: bool) {}
    }

    fn by_number(name: PointName<'_>) -> Result<u32, String> {
        match name {
            PointName::Ref(p) if p.number < 100 => Ok(p.number),
            PointName::Ref(p) => Err(format!("unknown point {}", point_text(p))),
            PointName::Label(l) => Err(format!("unknown label {l}")),
        }
    }

    fn now() -> NaiveDateTime {
        chrono::NaiveDate::from_ymd_opt(2026, 12, 6).unwrap().and_hms_opt(12, 0, 0).unwrap()
    }

    #[test]
    fn a_tree_runs_and_loops_are_cut_off() {
        // 10 VAR1 = VAR1 + 1.5
        // 20 IF VAR1 > 2 THEN 40
        // 30 GOTO 30
        // 40 END
        let p = Program {
            lines: vec![
                line(10, assign(1, Expr::Binary(BinOp::Add, Box::new(var(1)), Box::new(Expr::Num(Milli(1500)))))),
                line(
                    20,
                    Stmt::If {
                        kind: IfKind::Plain,
                        cond: Expr::Binary(BinOp::Gt, Box::new(var(1)), Box::new(Expr::Num(Milli(2000)))),
                        then: vec![Stmt::Goto(40)],
                        otherwise: vec![],
                    },
                ),
                line(30, Stmt::Goto(30)),
                line(40, Stmt::End),
            ],
        };
        let mut m = Machine::new(&p, Limits { max_steps: 100 }, &mut by_number).unwrap();
        assert_eq!((m.reads(), m.writes()), (vec![1], vec![1]));
        let mut env = Points::default();
        env.0.insert(1, 0.0);
        let e = m.scan(&mut env, now(), 1000).unwrap_err();
        assert_eq!((e.line_number, e.pos.line), (30, 3));
        assert_eq!(e.message, "more than 100 statements in one scan (an endless loop?)");
        // VAR1 is 1.5 now: this scan goes to 40.
        assert_eq!(m.scan(&mut env, now(), 1000), Ok(Scan { steps: 4, waiting: false }));
        assert_eq!(env.1, vec![(1, 1.5), (1, 3.0)]);
    }

    #[test]
    fn an_error_inside_an_expression_leaves_nothing_on_the_stack() {
        // 10 VAR1 = 1 + 1 / 0
        let num = |v| Box::new(Expr::Num(Milli(v)));
        let p = Program {
            lines: vec![line(
                10,
                assign(1, Expr::Binary(BinOp::Add, num(1000), Box::new(Expr::Binary(BinOp::Div, num(1000), num(0))))),
            )],
        };
        let mut m = Machine::new(&p, Limits::default(), &mut by_number).unwrap();
        for _ in 0..3 {
            let e = m.scan(&mut Points::default(), now(), 1000).unwrap_err();
            assert_eq!((e.line_number, e.message.as_str()), (10, "division by zero"));
            assert!(m.state.stack.is_empty());
        }
    }

    #[test]
    fn a_tree_with_an_unknown_point_is_refused() {
        let mut p = Program { lines: vec![line(10, assign(1, var(100)))] };
        if let Stmt::Assign { value: Expr::Point(r), .. } = &mut p.lines[0].stmt {
            r.pos = Pos { line: 1, column: 11 };
        }
        let e = Machine::new(&p, Limits::default(), &mut by_number).unwrap_err();
        assert_eq!((e.line_number, e.pos.line, e.pos.column), (10, 1, 11));
        assert_eq!(e.message, "unknown point VAR100");
    }
}
