//! The compiled form of a Control BASIC program, as a T3 panel stores it, back to the program tree.
//!
//! T3000's editor compiles the text itself and sends the panel only byte code; the text it shows
//! is always decompiled again from that code, with the panel's labels in place of point names. A
//! `.prog` panel file keeps one 2000-byte block per program:
//!
//! ```text
//! u16 LE  code length n (0: no program)
//! n bytes lines: 01, u16 LE line number, one statement (an IF carries its whole THEN / ELSE)
//! FE      end of the code
//! u16 LE  where a pending WAIT resumes (run-time state)
//! u16 LE  length of the local variables, then their table: type, [rows, cols], storage, name, NUL
//! u16 LE  length of the time table, then its entries: expression, FF, state byte, i32 milliseconds
//! ```
//!
//! Expressions are postfix (operands first, then the operator), numbers are thousandths in an
//! i32, and an expression ends at an `FF` (consumed), or where the next line (`01`) or the end of
//! the code (`FE`) starts. Jumps are byte offsets from the start of the block (its length
//! included); [`decode`] turns those that land on a line into that line's number and refuses any
//! other. `TIME-ON(x)` / `TIME-OFF(x)` keep `x` in the time table: the code holds the offset of the
//! entry's accumulator.
//!
//! [`encode`] writes a program back the way T3000's editor compiles it; every program block of
//! Temco's panel files encodes back byte for byte, except the bytes the controller changes as it
//! runs ([`run_time_state`]).
//!
//! The layout and token values are T3000's (`PARSER.H`, the decompiler of
//! `BacNetProgram_transplant.cpp`, the firmware interpreter `decode.c`); nothing was copied.
//! [`decode`] never panics: anything it cannot read is a [`DecodeError`] naming the byte offset
//! and what was there.

use std::collections::BTreeMap;
use std::fmt;

use super::ast::{
    BinOp, Expr, Func, IfKind, Line, Milli, PointKind, PointRef, Pos, PrintItem, Program, Stmt, Target, UnOp,
};
use super::parse::is_label;

/// Why a program block could not be decoded, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// Byte offset in the block (its 2-byte length prefix included).
    pub offset: usize,
    /// What was expected and what was found.
    pub message: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "program code, byte {}: {}", self.offset, self.message)
    }
}

impl std::error::Error for DecodeError {}

type Result<T> = std::result::Result<T, DecodeError>;

/// Decodes a panel's program block (the u16 code length first) into the program it holds. An
/// empty block (length 0) is an empty program.
pub fn decode(block: &[u8]) -> Result<Program> {
    let Some(len) = block.get(..2) else {
        return Err(DecodeError {
            offset: 0,
            message: format!("a program block starts with its 2-byte length, found only {} bytes", block.len()),
        });
    };
    let code_end = 2 + usize::from(u16::from_le_bytes([len[0], len[1]]));
    if code_end == 2 {
        return Ok(Program::default());
    }
    let mut d = Decoder::new(block, code_end)?;
    d.tables()?;
    Ok(d.lines()?.0)
}

/// The bytes of a program block that change as the controller runs the program (and that T3000
/// writes with starting values): the WAIT resume offset, the state and accumulator of every
/// time-table entry, the state byte of every IF+ / IF- and ALARM, the countdowns of INTERVAL and
/// DALARM and the counter of WAIT. Two blocks of the same program differ only there.
pub fn run_time_state(block: &[u8]) -> Result<Vec<std::ops::Range<usize>>> {
    let Some(len) = block.get(..2) else {
        return decode(block).map(|_| Vec::new());
    };
    let code_end = 2 + usize::from(u16::from_le_bytes([len[0], len[1]]));
    if code_end == 2 {
        return Ok(Vec::new());
    }
    let mut d = Decoder::new(block, code_end)?;
    d.tables()?;
    let mut state = d.lines()?.1;
    state.sort_by_key(|r| r.start);
    Ok(state)
}

/// Replaces every point that `label_of` names by its label (`VAR13` -> `BVLVWRTE`), as T3000's
/// editor shows a decompiled program. Array elements (`AY3[i]`) keep their names, and so does a
/// point whose label would not read back as that label ([`is_label`]: `IN1`, `TIME`, `A B`), so
/// the printed program always parses to the same points.
pub fn apply_labels(p: &mut Program, label_of: &dyn Fn(&PointRef) -> Option<String>) {
    for line in &mut p.lines {
        label_stmt(&mut line.stmt, label_of);
    }
}

/// Replaces the control characters (line breaks, tabs, ...) of every text, REM, alarm message,
/// PRINT text and the like, by spaces. A panel may hold a REM with a line break in it (Temco's
/// Building3.prog has one, followed by a statement's text); printed as it is, the rest of the REM
/// would become a line of its own, a statement the controller never ran.
pub fn texts_on_one_line(p: &mut Program) {
    fn clean(text: &mut String) {
        if text.chars().any(char::is_control) {
            *text = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        }
    }
    fn stmt(s: &mut Stmt) {
        match s {
            Stmt::Rem(text) | Stmt::Alarm { message: text, .. } | Stmt::Dalarm { message: text, .. } => clean(text),
            Stmt::Other { text, .. } => clean(text),
            Stmt::Print(items) => items.iter_mut().for_each(|i| {
                if let PrintItem::Text(text) = i {
                    clean(text);
                }
            }),
            Stmt::If { then, otherwise, .. } => then.iter_mut().chain(otherwise.iter_mut()).for_each(stmt),
            _ => {}
        }
    }
    p.lines.iter_mut().for_each(|l| stmt(&mut l.stmt));
}

fn label_stmt(s: &mut Stmt, label_of: &dyn Fn(&PointRef) -> Option<String>) {
    let e = |x: &mut Expr| label_expr(x, label_of);
    match s {
        Stmt::Assign { target, value } => {
            label_target(target, label_of);
            e(value);
        }
        Stmt::Start(t) | Stmt::Stop(t) | Stmt::Enable(t) | Stmt::Disable(t) | Stmt::Open(t) | Stmt::Close(t) => {
            label_target(t, label_of)
        }
        Stmt::Next(Some(t)) => label_target(t, label_of),
        Stmt::On { selector, .. } => e(selector),
        Stmt::If { cond, then, otherwise, .. } => {
            e(cond);
            for s in then.iter_mut().chain(otherwise.iter_mut()) {
                label_stmt(s, label_of);
            }
        }
        Stmt::For { var, from, to, step } => {
            label_target(var, label_of);
            e(from);
            e(to);
            if let Some(step) = step {
                e(step);
            }
        }
        Stmt::Wait(x) => e(x),
        Stmt::Alarm { left, right, hysteresis, .. } => {
            e(left);
            e(right);
            e(hysteresis);
        }
        Stmt::Dalarm { cond, delay, .. } => {
            e(cond);
            e(delay);
        }
        Stmt::Print(items) => {
            for item in items {
                if let PrintItem::Value(x) = item {
                    e(x);
                }
            }
        }
        Stmt::Rem(_)
        | Stmt::Goto(_)
        | Stmt::Gosub(_)
        | Stmt::Return
        | Stmt::End
        | Stmt::Clear
        | Stmt::Next(None)
        | Stmt::OnAlarm(_)
        | Stmt::OnError(_)
        | Stmt::Other { .. } => {}
    }
}

fn label_target(t: &mut Target, label_of: &dyn Fn(&PointRef) -> Option<String>) {
    match t {
        Target::Point(p) if p.index.is_none() => {
            if let Some(label) = label_of(p).filter(|l| is_label(l)) {
                *t = Target::Label(label, p.pos);
            }
        }
        Target::Point(p) => {
            if let Some(index) = p.index.as_deref_mut() {
                label_expr(index, label_of);
            }
        }
        Target::LocalIndex(_, index) => index.iter_mut().for_each(|x| label_expr(x, label_of)),
        Target::Local(_) | Target::Label(..) => {}
    }
}

fn label_expr(x: &mut Expr, label_of: &dyn Fn(&PointRef) -> Option<String>) {
    match x {
        Expr::Point(p) if p.index.is_none() => {
            if let Some(label) = label_of(p).filter(|l| is_label(l)) {
                *x = Expr::Label(label, p.pos);
            }
        }
        Expr::Point(p) => {
            if let Some(index) = p.index.as_deref_mut() {
                label_expr(index, label_of);
            }
        }
        Expr::LocalIndex(_, args) | Expr::Call(_, args) => args.iter_mut().for_each(|a| label_expr(a, label_of)),
        Expr::Unary(_, a) => label_expr(a, label_of),
        Expr::Binary(_, a, b) => {
            label_expr(a, label_of);
            label_expr(b, label_of);
        }
        Expr::Num(_) | Expr::Time(_) | Expr::Local(_) | Expr::Label(..) => {}
    }
}

/// Token values (T3000's `PARSER.H`).
mod tok {
    pub const LINE: u8 = 0x01;
    pub const END_EXPR: u8 = 0xFF;
    pub const END_CODE: u8 = 0xFE;
    pub const ASSIGN: u8 = 0x09;
    pub const ASSIGN_AR: u8 = 0x08;
    pub const CLEAR: u8 = 0x0A;
    pub const FOR: u8 = 0x0B;
    pub const NEXT: u8 = 0x0D;
    pub const IF: u8 = 0x0E;
    pub const ELSE: u8 = 0x10;
    pub const IF_RISING: u8 = 0x11;
    pub const IF_FALLING: u8 = 0x12;
    pub const GOTO: u8 = 0x13;
    pub const GOSUB: u8 = 0x14;
    pub const RETURN: u8 = 0x15;
    pub const END: u8 = 0x17;
    pub const PRINT: u8 = 0x18;
    pub const REM: u8 = 0x1A;
    pub const PRINT_AT: u8 = 0x1B;
    pub const START: u8 = 0x1C;
    pub const STOP: u8 = 0x1D;
    pub const WAIT: u8 = 0x1E;
    pub const HANGUP: u8 = 0x1F;
    pub const PHONE: u8 = 0x20;
    pub const ALARM_AT: u8 = 0x21;
    pub const REMOTE_SET: u8 = 0x22;
    pub const RUN_MACRO: u8 = 0x23;
    pub const REMOTE_GET: u8 = 0x24;
    pub const ENABLE: u8 = 0x25;
    pub const DISABLE: u8 = 0x26;
    pub const ON_ERROR: u8 = 0x27;
    pub const SET_PRINTER: u8 = 0x28;
    pub const ASSIGN_ARRAY_1: u8 = 0x29;
    pub const GOTO_IF: u8 = 0x2A;
    pub const ON_ALARM: u8 = 0x2B;
    pub const ASSIGN_ARRAY_2: u8 = 0x2C;
    pub const OPEN: u8 = 0x2D;
    pub const CLOSE: u8 = 0x2E;
    pub const CALL: u8 = 0x2F;
    pub const DECLARE: u8 = 0x30;
    pub const ON: u8 = 0x40;
    pub const ALARM: u8 = 0x41;
    pub const DALARM: u8 = 0x43;
    pub const DATE: u8 = 0xA0;
    /// TIME as a PRINT item; before a u32 of whole seconds after WAIT.
    pub const PTIME: u8 = 0xA1;
    pub const STRING: u8 = 0xB3;
    pub const BEEP: u8 = 0x07;
    pub const USER_A: u8 = 0x45;
    pub const USER_B: u8 = 0x46;
    /// The first and last local variable types (scalars 82..87, arrays 88..8C).
    pub const LOCAL_FIRST: u8 = 0x82;
    pub const LOCAL_LAST: u8 = 0x8C;
    pub const LOCAL_POINT: u8 = 0x9C;
    pub const CONST: u8 = 0x9D;
    pub const REMOTE_POINT: u8 = 0x9E;
    pub const NEG: u8 = 0x69;
    pub const NOT: u8 = 0x76;
    pub const TIME_FORMAT: u8 = 0x3F;
    pub const TIME_ON: u8 = 0x3C;
    pub const TIME_OFF: u8 = 0x3D;
    pub const INTERVAL: u8 = 0x3E;
    pub const LT: u8 = 0x6D;
    pub const GT: u8 = 0x6E;
}

/// The declaration statements that carry their text: token, keyword.
const TEXT_STATEMENTS: &[(u8, &str)] = &[
    (tok::PHONE, "PHONE"),
    (0x83, "FLOAT"),
    (0x84, "LONG"),
    (0x85, "INTEGER"),
    (0x86, "BYTE"),
    (0x87, "STRING"),
    (0x8A, "DIM"),
];

/// Statement tokens the decoder does not turn into a tree (nothing in T3000's firmware runs
/// them), by name for the error.
const UNSUPPORTED_STATEMENTS: &[(u8, &str)] = &[
    (tok::ASSIGN_AR, "an assignment with an analog/digital flag (ASSIGNAR)"),
    (tok::CALL, "CALL"),
    (tok::DECLARE, "DECLARE"),
    (tok::REMOTE_GET, "REMOTE-GET"),
    (tok::REMOTE_SET, "REMOTE-SET"),
    (0xB4, "ICON1"),
    (0xB5, "ICON2"),
    (0xB6, "ICON3"),
    (0xB7, "ICON4"),
];

/// Binary operator tokens.
const BINARY: &[(u8, BinOp)] = &[
    (0x60, BinOp::Ge),
    (0x61, BinOp::Le),
    (0x65, BinOp::Pow),
    (0x66, BinOp::Mod),
    (0x67, BinOp::Mul),
    (0x68, BinOp::Div),
    (0x6B, BinOp::Add),
    (0x6C, BinOp::Sub),
    (tok::LT, BinOp::Lt),
    (tok::GT, BinOp::Gt),
    (0x71, BinOp::Eq),
    (0x72, BinOp::Ne),
    (0x73, BinOp::Xor),
    (0x74, BinOp::And),
    (0x75, BinOp::Or),
    (0x79, BinOp::BitAnd),
    (0x7A, BinOp::BitOr),
    (0x7B, BinOp::IntDiv),
];

/// How many arguments a function token takes from the stack.
#[derive(Clone, Copy)]
enum Arity {
    Fixed(usize),
    /// A count byte follows the token (AVG, MAX, MIN, COM1).
    Counted,
}

/// Function and named-constant tokens inside an expression (TIME-ON, TIME-OFF and INTERVAL,
/// which carry more bytes, are handled apart).
const FUNCTIONS: &[(u8, Func, Arity)] = &[
    (0x07, Func::Day(0), Arity::Fixed(0)),
    (0x08, Func::Day(1), Arity::Fixed(0)),
    (0x02, Func::Day(2), Arity::Fixed(0)),
    (0x03, Func::Day(3), Arity::Fixed(0)),
    (0x04, Func::Day(4), Arity::Fixed(0)),
    (0x05, Func::Day(5), Arity::Fixed(0)),
    (0x06, Func::Day(6), Arity::Fixed(0)),
    (0x10, Func::Com1, Arity::Counted),
    (0x32, Func::Abs, Arity::Fixed(1)),
    (0x33, Func::Avg, Arity::Counted),
    (0x34, Func::Doy, Arity::Fixed(0)),
    (0x35, Func::Dow, Arity::Fixed(0)),
    (0x36, Func::Int, Arity::Fixed(1)),
    (0x37, Func::Max, Arity::Counted),
    (0x38, Func::Min, Arity::Counted),
    (0x39, Func::Sqr, Arity::Fixed(1)),
    (0x3A, Func::Tbl, Arity::Fixed(2)),
    (0x3B, Func::Time, Arity::Fixed(0)),
    (0x40, Func::WrOn, Arity::Fixed(2)),
    (0x41, Func::WrOff, Arity::Fixed(2)),
    (0x42, Func::Unack, Arity::Fixed(0)),
    (0x45, Func::UserA, Arity::Fixed(0)),
    (0x46, Func::UserB, Arity::Fixed(0)),
    (0x47, Func::Status, Arity::Fixed(1)),
    (0x48, Func::Runtime, Arity::Fixed(1)),
    (0x4B, Func::Scans, Arity::Fixed(0)),
    (0x4C, Func::PowerLoss, Arity::Fixed(0)),
    (0x4D, Func::Ln, Arity::Fixed(1)),
    (0x4E, Func::Exp, Arity::Fixed(1)),
    (0x52, Func::Dom, Arity::Fixed(0)),
    (0x53, Func::Moy, Arity::Fixed(0)),
    (0x56, Func::PidProp, Arity::Fixed(2)),
    (0x57, Func::PidRate, Arity::Fixed(2)),
    (0x58, Func::PidReset, Arity::Fixed(2)),
    (0xA4, Func::SensorOn, Arity::Fixed(1)),
    (0xA5, Func::SensorOff, Arity::Fixed(1)),
    (0xD1, Func::Sin, Arity::Fixed(1)),
    (0xD2, Func::Cos, Arity::Fixed(1)),
    (0xC1, Func::Month(1), Arity::Fixed(0)),
    (0xC2, Func::Month(2), Arity::Fixed(0)),
    (0xC3, Func::Month(3), Arity::Fixed(0)),
    (0xC4, Func::Month(4), Arity::Fixed(0)),
    (0xC5, Func::Month(5), Arity::Fixed(0)),
    (0xC6, Func::Month(6), Arity::Fixed(0)),
    (0xC7, Func::Month(7), Arity::Fixed(0)),
    (0xC8, Func::Month(8), Arity::Fixed(0)),
    (0xC9, Func::Month(9), Arity::Fixed(0)),
    (0xCA, Func::Month(10), Arity::Fixed(0)),
    (0xCB, Func::Month(11), Arity::Fixed(0)),
    (0xCC, Func::Month(12), Arity::Fixed(0)),
];

/// Function tokens T3000 knows that the tree has no place for, by name for the error.
const UNSUPPORTED_FUNCTIONS: &[(u8, &str)] = &[
    (0x50, "OUTPUT"),
    (0x51, "INPUT"),
    (0x59, "CLEARPORT"),
    (0x31, "a local array address"),
    (0xCD, "MB_BLOCKREAD"),
    (0xCE, "MB_BLOCKWRITE"),
    (0xCF, "MB_BWCOIL"),
    (0xD0, "PVAR"),
    (0xD3, "RGB"),
];

/// The point kinds by T3000's type code (the byte code stores code + 1).
fn point_kind(code: u8) -> Option<PointKind> {
    Some(match code {
        0 => PointKind::Out,
        1 => PointKind::In,
        2 => PointKind::Var,
        3 => PointKind::Pid,
        4 => PointKind::Sch,
        5 => PointKind::Hol,
        6 => PointKind::Prg,
        7 => PointKind::Tbl,
        8 => PointKind::Dmon,
        9 => PointKind::Amon,
        10 => PointKind::Grp,
        11 => PointKind::Ay,
        20 => PointKind::Bi,
        21 => PointKind::Bv,
        22 => PointKind::Msv,
        23 => PointKind::MbCoil,
        24 => PointKind::MbDisInput,
        25 => PointKind::MbInputReg,
        26 => PointKind::MbReg,
        27 => PointKind::Av,
        28 => PointKind::Ai,
        29 => PointKind::Ao,
        30 => PointKind::Bo,
        _ => return None,
    })
}

/// Modbus and BACnet objects are numbered in the text as on the wire; T3000's own points from 1
/// (stored from 0).
fn numbered_as_stored(kind: PointKind) -> bool {
    matches!(
        kind,
        PointKind::MbCoil
            | PointKind::MbDisInput
            | PointKind::MbInputReg
            | PointKind::MbReg
            | PointKind::Av
            | PointKind::Ai
            | PointKind::Ao
            | PointKind::Bo
            | PointKind::Bv
            | PointKind::Bi
            | PointKind::Msv
    )
}

fn is_modbus(kind: PointKind) -> bool {
    matches!(kind, PointKind::MbCoil | PointKind::MbDisInput | PointKind::MbInputReg | PointKind::MbReg)
}

/// A byte as T3000 shows text: one character per byte (Latin-1).
fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// One local variable of the locals table.
struct LocalVar {
    /// Offset of its entry (its type byte) in the table.
    start: usize,
    /// Offset of its name in the table: operands point before it.
    name_at: usize,
    name: String,
}

/// Where a jump may land.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dest {
    /// The start of a line.
    Line,
    /// The start of a line or the end of the code.
    LineOrEnd,
}

struct Decoder<'a> {
    b: &'a [u8],
    at: usize,
    /// Bytes at or past `limit` are not part of what is being read (the code, or the time table).
    limit: usize,
    /// Offset of the code's closing `FE`.
    code_end: usize,
    locals: Vec<LocalVar>,
    /// Time-table expressions by the offset of their accumulator (what TIME-ON / TIME-OFF hold).
    timers: BTreeMap<usize, Expr>,
    /// Every jump: where its target is written, the target, where it may land, what it is.
    jumps: Vec<(usize, u16, Dest, &'static str)>,
    /// Line number of every line, by the block offset of its `01`.
    line_starts: BTreeMap<usize, u16>,
    /// Where the run-time state is (see [`run_time_state`]).
    state: Vec<std::ops::Range<usize>>,
    /// Expressions being read inside each other, IFs inside THEN / ELSE.
    nesting: usize,
    if_nesting: usize,
}

fn hex(b: u8) -> String {
    format!("{b:02X}")
}

impl<'a> Decoder<'a> {
    fn new(b: &'a [u8], code_end: usize) -> Result<Decoder<'a>> {
        if b.len() <= code_end {
            return Err(DecodeError {
                offset: b.len(),
                message: format!(
                    "the block says its code is {} bytes, but the block ends after {} bytes",
                    code_end - 2,
                    b.len().saturating_sub(2)
                ),
            });
        }
        if b[2] != tok::LINE {
            return Err(DecodeError {
                offset: 2,
                message: format!("expected the start of a line (01) at the start of the code, found {}", hex(b[2])),
            });
        }
        if b[code_end] != tok::END_CODE {
            let zeros_from = b.iter().rposition(|&x| x != 0).map_or(0, |last| last + 1);
            let cut = if zeros_from < code_end {
                format!(": the block is zeros from byte {zeros_from} on, the code was cut short")
            } else {
                String::new()
            };
            return Err(DecodeError {
                offset: code_end,
                message: format!(
                    "expected FE (the end of the code) after {} bytes of code, found {}{cut}",
                    code_end - 2,
                    hex(b[code_end])
                ),
            });
        }
        Ok(Decoder {
            b,
            at: 2,
            limit: code_end,
            code_end,
            locals: Vec::new(),
            timers: BTreeMap::new(),
            jumps: Vec::new(),
            line_starts: BTreeMap::new(),
            state: Vec::new(),
            nesting: 0,
            if_nesting: 0,
        })
    }

    fn err<T>(&self, offset: usize, message: impl Into<String>) -> Result<T> {
        Err(DecodeError { offset, message: message.into() })
    }

    /// The next byte if it is part of what is being read.
    fn peek(&self) -> Option<u8> {
        (self.at < self.limit).then(|| self.b[self.at])
    }

    /// The next `n` bytes of `what`.
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if self.at + n > self.limit || self.at + n > self.b.len() {
            return self.err(
                self.at,
                format!(
                    "{what} needs {n} bytes, but only {} are left",
                    self.limit.min(self.b.len()).saturating_sub(self.at)
                ),
            );
        }
        let slice = &self.b[self.at..self.at + n];
        self.at += n;
        Ok(slice)
    }

    fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<u16> {
        let s = self.take(2, what)?;
        Ok(u16::from_le_bytes([s[0], s[1]]))
    }

    fn i32(&mut self, what: &str) -> Result<i32> {
        let s = self.take(4, what)?;
        Ok(i32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }

    /// Skips `n` bytes of run-time state.
    fn skip_state(&mut self, n: usize, what: &str) -> Result<()> {
        let at = self.at;
        self.take(n, what)?;
        self.state.push(at..self.at);
        Ok(())
    }

    /// A jump target, checked once every line is known.
    fn jump(&mut self, dest: Dest, what: &'static str) -> Result<u16> {
        let at = self.at;
        let target = self.u16(what)?;
        self.jumps.push((at, target, dest, what));
        Ok(target)
    }

    /// Reads the locals table and the time table that follow the code.
    fn tables(&mut self) -> Result<()> {
        self.limit = self.b.len();
        self.at = self.code_end + 1;
        self.skip_state(2, "the WAIT resume offset")?;
        let locals_len = usize::from(self.u16("the length of the local variables")?);
        let locals_at = self.at;
        self.take(locals_len, "the local variables")?;
        self.read_locals(locals_at, locals_len)?;
        let time_len = usize::from(self.u16("the length of the time table")?);
        let time_at = self.at;
        self.take(time_len, "the time table")?;
        self.at = time_at;
        self.limit = time_at + time_len;
        while self.at < self.limit {
            let start = self.at;
            let (x, ended_by_ff) = self.expr_ending()?;
            if !ended_by_ff {
                return self.err(self.at, "expected FF after a time-table expression");
            }
            let acc = self.at + 1 - time_at;
            self.skip_state(5, "the state and accumulator of a time-table entry")?;
            if self.at == start {
                return self.err(start, "empty time-table entry");
            }
            self.timers.insert(acc, x);
        }
        self.at = 2;
        self.limit = self.code_end;
        Ok(())
    }

    /// The locals table: entries of type, dimensions (arrays and strings), storage, name, NUL.
    fn read_locals(&mut self, at: usize, len: usize) -> Result<()> {
        let t = &self.b[at..at + len];
        let mut j = 0;
        while j < t.len() {
            let start = j;
            let ty = t[j];
            let size = match ty {
                0x83 | 0x84 => 4,
                0x85 => 2,
                0x86 => 1,
                0x87..=0x8C => {
                    let Some(dims) = t.get(j + 1..j + 5) else {
                        return self.err(at + j, "the local variables end inside an array's dimensions");
                    };
                    let rows = usize::from(u16::from_le_bytes([dims[0], dims[1]]));
                    let cols = usize::from(u16::from_le_bytes([dims[2], dims[3]]));
                    j += 4;
                    let k = match ty {
                        0x88 | 0x89 => 4,
                        0x8A => 2,
                        _ => 1,
                    };
                    k * if rows > 0 { rows * cols } else { cols }
                }
                other => {
                    return self
                        .err(at + j, format!("expected the type of a local variable (83..8C), found {}", hex(other)));
                }
            };
            let name_at = j + 1 + size;
            let Some(nul) = t.get(name_at..).and_then(|rest| rest.iter().position(|&c| c == 0)) else {
                return self.err(at + j, "a local variable's name runs past the end of the local variables");
            };
            self.locals.push(LocalVar { start, name_at, name: latin1(&t[name_at..name_at + nul]) });
            j = name_at + nul + 1;
        }
        Ok(())
    }

    /// Every line of the code, then every jump checked and turned into a line number.
    fn lines(mut self) -> Result<(Program, Vec<std::ops::Range<usize>>)> {
        let mut lines = Vec::new();
        while self.at < self.code_end {
            let start = self.at;
            let header = self.u8("a line")?;
            if header != tok::LINE {
                return self.err(start, format!("expected the start of a line (01), found {}", hex(header)));
            }
            let number = self.u16("a line number")?;
            self.line_starts.insert(start, number);
            let stmt = self.statement(false)?;
            if let Some(next) = self.peek().filter(|&b| b != tok::LINE) {
                return self.err(
                    self.at,
                    format!(
                        "expected the next line (01) or the end of the code after line {number}, found {}",
                        hex(next)
                    ),
                );
            }
            lines.push(Line { number, stmt, pos: Pos::default() });
        }
        for &(at, target, dest, what) in &self.jumps {
            let target = usize::from(target);
            let ok = self.line_starts.contains_key(&target) || (dest == Dest::LineOrEnd && target == self.code_end);
            if !ok {
                return self.err(at, format!("{what} jumps to byte {target}, which is not the start of a line"));
            }
        }
        let map = &self.line_starts;
        let line_of = |raw: &mut u16| {
            if let Some(&n) = map.get(&usize::from(*raw)) {
                *raw = n;
            }
        };
        for line in &mut lines {
            jumps_to_lines(&mut line.stmt, &line_of);
        }
        Ok((Program { lines }, self.state))
    }

    /// One statement; `in_clause`: inside a THEN or ELSE (no line header).
    fn statement(&mut self, in_clause: bool) -> Result<Stmt> {
        let start = self.at;
        let Some(t) = self.peek() else {
            return self.err(self.at, "expected a statement, found the end of the code");
        };
        self.at += 1;
        Ok(match t {
            tok::ASSIGN => {
                let target = self.target()?;
                Stmt::Assign { target, value: self.expr()? }
            }
            tok::ASSIGN_ARRAY_1 | tok::ASSIGN_ARRAY_2 => {
                let name = self.local_name()?;
                let count = if t == tok::ASSIGN_ARRAY_1 { 1 } else { 2 };
                let mut index = Vec::new();
                for _ in 0..count {
                    index.push(self.expr()?);
                }
                Stmt::Assign { target: Target::LocalIndex(name, index), value: self.expr()? }
            }
            tok::START => Stmt::Start(self.target()?),
            tok::STOP => Stmt::Stop(self.target()?),
            tok::ENABLE => Stmt::Enable(self.target()?),
            tok::DISABLE => Stmt::Disable(self.target()?),
            tok::OPEN => Stmt::Open(self.target()?),
            tok::CLOSE => Stmt::Close(self.target()?),
            tok::REM => Stmt::Rem(self.counted_text("REM")?),
            tok::GOTO => Stmt::Goto(self.jump(Dest::Line, "GOTO")?),
            tok::GOTO_IF => {
                let target = self.jump(Dest::Line, "GOTO")?;
                self.expect(tok::END_EXPR, "FF after a GOTO")?;
                Stmt::Goto(target)
            }
            tok::GOSUB => Stmt::Gosub(self.jump(Dest::Line, "GOSUB")?),
            tok::ON_ALARM => Stmt::OnAlarm(self.jump(Dest::Line, "ON-ALARM")?),
            tok::ON_ERROR => Stmt::OnError(self.jump(Dest::Line, "ON-ERROR")?),
            tok::RETURN | tok::END | tok::CLEAR | tok::HANGUP => {
                // Inside THEN / ELSE T3000 ends these with FF, like an expression.
                if in_clause && self.peek() == Some(tok::END_EXPR) {
                    self.at += 1;
                }
                match t {
                    tok::RETURN => Stmt::Return,
                    tok::END => Stmt::End,
                    tok::CLEAR => Stmt::Clear,
                    _ => Stmt::Other { keyword: "HANGUP".to_owned(), text: String::new() },
                }
            }
            tok::SET_PRINTER => {
                Stmt::Other { keyword: "SET-PRINTER".to_owned(), text: latin1(&[self.u8("SET-PRINTER")?]) }
            }
            tok::RUN_MACRO => Stmt::Other { keyword: "RUN-MACRO".to_owned(), text: self.u8("RUN-MACRO")?.to_string() },
            tok::ALARM_AT | tok::PRINT_AT => self.alarm_at(t)?,
            tok::ON => self.on()?,
            tok::IF | tok::IF_RISING | tok::IF_FALLING => self.if_statement(t)?,
            tok::FOR => self.for_statement()?,
            tok::NEXT => self.next_statement()?,
            tok::WAIT => self.wait()?,
            tok::PRINT => {
                let print = self.print()?;
                if in_clause && self.peek() == Some(tok::END_EXPR) {
                    self.at += 1;
                }
                print
            }
            tok::ALARM => self.alarm()?,
            tok::DALARM => {
                let cond = self.expr()?;
                let delay = self.i32("the DALARM delay")?;
                let message = self.counted_text("the DALARM message")?;
                self.skip_state(4, "the DALARM countdown")?;
                Stmt::Dalarm { cond, delay: Expr::Num(Milli(delay)), message }
            }
            tok::ELSE if in_clause => return self.err(start, "ELSE after ELSE"),
            _ => {
                if let Some((_, keyword)) = TEXT_STATEMENTS.iter().find(|(k, _)| *k == t) {
                    let text = self.counted_text(keyword)?;
                    return Ok(Stmt::Other { keyword: (*keyword).to_owned(), text });
                }
                if let Some((_, name)) = UNSUPPORTED_STATEMENTS.iter().find(|(k, _)| *k == t) {
                    return self.err(start, format!("{name} (statement {}) is not supported", hex(t)));
                }
                return self.err(start, format!("expected a statement, found {}", hex(t)));
            }
        })
    }

    fn expect(&mut self, byte: u8, what: &str) -> Result<()> {
        let at = self.at;
        let found = self.u8(what)?;
        if found != byte {
            return self.err(at, format!("expected {what}, found {}", hex(found)));
        }
        Ok(())
    }

    /// A length byte and that many bytes of text.
    fn counted_text(&mut self, what: &str) -> Result<String> {
        let len = usize::from(self.u8(what)?);
        Ok(latin1(self.take(len, what)?))
    }

    fn alarm_at(&mut self, t: u8) -> Result<Stmt> {
        let keyword = if t == tok::ALARM_AT { "ALARM-AT" } else { "PRINT-AT" };
        if self.peek() == Some(tok::END_EXPR) {
            self.at += 1;
            return Ok(Stmt::Other { keyword: keyword.to_owned(), text: "ALL".to_owned() });
        }
        let mut panels = Vec::new();
        loop {
            let b = self.u8(keyword)?;
            if b == 0 {
                break;
            }
            if panels.len() == 3 {
                return self.err(self.at - 1, format!("expected 0 after three panels of {keyword}, found {}", hex(b)));
            }
            panels.push(b.to_string());
        }
        Ok(Stmt::Other { keyword: keyword.to_owned(), text: panels.join(" ") })
    }

    fn on(&mut self) -> Result<Stmt> {
        let selector = self.expr()?;
        let at = self.at;
        let gosub = match self.u8("ON")? {
            tok::GOTO => false,
            tok::GOSUB => true,
            other => return self.err(at, format!("expected GOTO (13) or GOSUB (14) after ON, found {}", hex(other))),
        };
        let count = self.u8("the number of ON targets")?;
        let mut targets = Vec::new();
        for _ in 0..count {
            targets.push(self.jump(Dest::Line, if gosub { "ON ... GOSUB" } else { "ON ... GOTO" })?);
        }
        Ok(Stmt::On { selector, gosub, targets })
    }

    fn if_statement(&mut self, t: u8) -> Result<Stmt> {
        if self.if_nesting >= MAX_NESTING {
            return self.err(self.at - 1, format!("IFs inside THEN / ELSE deeper than {MAX_NESTING}"));
        }
        self.if_nesting += 1;
        let result = self.if_parts(t);
        self.if_nesting -= 1;
        result
    }

    fn if_parts(&mut self, t: u8) -> Result<Stmt> {
        let kind = match t {
            tok::IF_RISING => IfKind::Rising,
            tok::IF_FALLING => IfKind::Falling,
            _ => IfKind::Plain,
        };
        let (cond, ended_by_ff) = self.expr_ending()?;
        if !ended_by_ff {
            return self.err(self.at, "expected FF after the condition of an IF");
        }
        if kind != IfKind::Plain {
            self.skip_state(1, "the state of IF+ / IF-")?;
        }
        let false_at = self.at;
        let false_jump = self.u16("the jump of an IF")?;
        let then = self.clause(true)?;
        let mut otherwise = Vec::new();
        if self.peek() == Some(tok::ELSE) {
            self.at += 1;
            self.expect(tok::END_EXPR, "FF after ELSE")?;
            let end_at = self.at;
            let end_jump = self.u16("the jump of an ELSE")?;
            self.expect_jump(false_at, false_jump, "the IF's jump past THEN to ELSE")?;
            otherwise = self.clause(false)?;
            self.expect_jump(end_at, end_jump, "the jump past ELSE")?;
        } else {
            self.expect_jump(false_at, false_jump, "the IF's jump past THEN")?;
        }
        Ok(Stmt::If { kind, cond, then, otherwise })
    }

    /// A jump that must land here.
    fn expect_jump(&self, at: usize, target: u16, what: &str) -> Result<()> {
        if usize::from(target) != self.at {
            return self.err(at, format!("{what} goes to byte {target}, expected byte {}", self.at));
        }
        Ok(())
    }

    /// The statements of a THEN (`then`: it may end at ELSE) or ELSE clause.
    fn clause(&mut self, then: bool) -> Result<Vec<Stmt>> {
        let mut out = Vec::new();
        while let Some(b) = self.peek() {
            if b == tok::LINE || (then && b == tok::ELSE) {
                break;
            }
            out.push(self.statement(true)?);
        }
        if out.is_empty() {
            return self.err(self.at, format!("expected a statement after {}", if then { "THEN" } else { "ELSE" }));
        }
        Ok(out)
    }

    fn for_statement(&mut self) -> Result<Stmt> {
        let var = self.target()?;
        let from = self.expr()?;
        let to = self.expr()?;
        let step = self.expr()?;
        self.jump(Dest::LineOrEnd, "the end of a FOR")?;
        Ok(Stmt::For { var, from, to, step: Some(step) })
    }

    /// NEXT holds the offset of its FOR's line; its variable is read from there.
    fn next_statement(&mut self) -> Result<Stmt> {
        let at = self.at;
        let target = usize::from(self.jump(Dest::Line, "NEXT")?);
        let (b, here) = (self.b, self.at);
        if b.get(target) != Some(&tok::LINE) || b.get(target + 3) != Some(&tok::FOR) {
            return self.err(at, format!("NEXT goes to byte {target}, which is not a line that starts with FOR"));
        }
        self.at = target + 4;
        let var = self.target();
        self.at = here;
        Ok(Stmt::Next(Some(var?)))
    }

    fn wait(&mut self) -> Result<Stmt> {
        let seconds = if self.peek() == Some(tok::PTIME) {
            self.at += 1;
            let s = self.take(4, "the WAIT seconds")?;
            Expr::Time(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        } else {
            self.expr()?
        };
        self.skip_state(4, "the WAIT counter")?;
        Ok(Stmt::Wait(seconds))
    }

    fn print(&mut self) -> Result<Stmt> {
        let count = self.u8("the number of PRINT items")?;
        let mut items = Vec::new();
        for _ in 0..count {
            let item = match self.peek() {
                Some(tok::STRING) => {
                    self.at += 1;
                    PrintItem::Text(self.counted_text("a PRINT text")?)
                }
                Some(tok::DATE) => PrintItem::Date,
                Some(tok::PTIME) => PrintItem::Time,
                Some(tok::USER_A) => PrintItem::UserA,
                Some(tok::USER_B) => PrintItem::UserB,
                Some(tok::BEEP) => PrintItem::Beep,
                _ => PrintItem::Value(self.expr()?),
            };
            if !matches!(item, PrintItem::Value(_) | PrintItem::Text(_)) {
                self.at += 1;
            }
            items.push(item);
        }
        Ok(Stmt::Print(items))
    }

    /// `ALARM left < right, hysteresis, message`: the comparison byte ends the left expression
    /// (the firmware finds it as the first 6D or 6E byte within 30 bytes).
    fn alarm(&mut self) -> Result<Stmt> {
        let start = self.at;
        let window = &self.b[start..(start + 30).min(self.limit)];
        let Some(cmp_at) = window.iter().position(|&b| b == tok::LT || b == tok::GT).map(|p| start + p) else {
            return self.err(start, "expected the comparison (< or >) of an ALARM within 30 bytes");
        };
        let limit = self.limit;
        self.limit = cmp_at;
        let left = self.expr();
        self.limit = limit;
        let left = left?;
        if self.at != cmp_at {
            return self.err(self.at, "the left side of an ALARM ends before its comparison");
        }
        let above = self.b[cmp_at] == tok::GT;
        self.at += 1;
        let right = self.expr()?;
        let hysteresis = self.expr()?;
        let message = self.counted_text("the ALARM message")?;
        self.skip_state(1, "the ALARM state")?;
        Ok(Stmt::Alarm { left, above, right, hysteresis, message })
    }

    /// What an assignment, START / STOP or FOR writes to.
    fn target(&mut self) -> Result<Target> {
        let at = self.at;
        match self.peek() {
            Some(tok::LOCAL_FIRST..=tok::LOCAL_LAST) => Ok(Target::Local(self.local_name()?)),
            Some(tok::LOCAL_POINT | tok::REMOTE_POINT) => Ok(Target::Point(self.point()?)),
            Some(other) => self.err(at, format!("expected a point or a local variable, found {}", hex(other))),
            None => self.err(at, "expected a point or a local variable, found the end of the code"),
        }
    }

    /// A local variable operand (type byte, u16 offset into the locals table): its name.
    fn local_name(&mut self) -> Result<String> {
        let at = self.at;
        let ty = self.u8("a local variable")?;
        if !(tok::LOCAL_FIRST..=tok::LOCAL_LAST).contains(&ty) {
            return self.err(at, format!("expected a local variable (82..8C), found {}", hex(ty)));
        }
        let offset = usize::from(self.u16("a local variable")?);
        match self.locals.iter().find(|v| offset >= v.start && offset < v.name_at) {
            Some(v) => Ok(v.name.clone()),
            None => self.err(at, format!("no local variable at offset {offset} of the local variables")),
        }
    }

    /// A point: `9C` number type (this panel) or `9E` and T3000's network point (5 bytes, or 14
    /// for a BACnet object of a large instance); an array element's index expression follows.
    fn point(&mut self) -> Result<PointRef> {
        let at = self.at;
        let prefix = self.u8("a point")?;
        let mut p = if prefix == tok::LOCAL_POINT {
            let s = self.take(2, "a point")?;
            let (number, code) = (s[0], s[1].wrapping_sub(1));
            let Some(kind) = point_kind(code) else {
                return self.err(at, format!("point type {} is not one the program language names", s[1]));
            };
            let number = u32::from(number) + u32::from(!numbered_as_stored(kind));
            PointRef { panel: None, sub_panel: None, kind, number, index: None, pos: Pos::default() }
        } else if self.b.get(self.at..self.at + 4) == Some(&[0x55, 0xFF, 0x55, 0xFF]) {
            self.large_instance(at)?
        } else {
            self.network_point(at)?
        };
        if p.kind == PointKind::Ay {
            p.index = Some(Box::new(self.expr()?));
        }
        Ok(p)
    }

    /// T3000's `Point_Net`: number (low 8 bits), type + 1 (low 5 bits; the high 3 bits extend the
    /// number), panel, sub-panel, network (bit 7: new format: bits 5..6 extend the type, bits 0..4
    /// the Modbus register number; BACnet objects: the instance is network 0..6, panel, sub-panel).
    fn network_point(&mut self, at: usize) -> Result<PointRef> {
        let s = self.take(5, "a network point")?;
        let (low, type_byte, panel, sub, network) = (s[0], s[1].wrapping_sub(1), s[2], s[3], s[4]);
        let high3 = u32::from(type_byte >> 5);
        let new_format = network >= 0x80;
        let code = (type_byte & 0x1F) | (if new_format { network & 0x60 } else { 0 });
        let Some(kind) = point_kind(code) else {
            return self.err(at, format!("network point type {code} is not one the program language names"));
        };
        let mut number = u32::from(low) + (high3 << 8);
        if new_format && (is_modbus(kind) || kind == PointKind::Var) {
            // The network byte extends the number; T3000 shows a variable's extended number as
            // stored (it takes one off and adds it back).
            number = u32::from(low) + ((u32::from(network & 0x1F) * 8 + high3) << 8);
        } else if !numbered_as_stored(kind) {
            number += 1;
        }
        let pos = Pos::default();
        if new_format && !is_modbus(kind) && kind != PointKind::Var {
            if !numbered_as_stored(kind) {
                return self.err(at, format!("a {} point named by a BACnet instance is not supported", kind.name()));
            }
            let instance = (u32::from(network & 0x7F) << 16) | (u32::from(panel) << 8) | u32::from(sub);
            return Ok(PointRef { panel: Some(instance), sub_panel: None, kind, number, index: None, pos });
        }
        let kind = if kind == PointKind::Var && sub != 0 && panel != sub { PointKind::Reg } else { kind };
        let sub_panel = (sub != 0).then_some(u32::from(sub));
        Ok(PointRef { panel: Some(u32::from(panel)), sub_panel, kind, number, index: None, pos })
    }

    /// T3000's `Point_Bacnet`: 55 FF 55 FF, instance (3 bytes, high first), type, object number
    /// (3 bytes, high first), 3 reserved.
    fn large_instance(&mut self, at: usize) -> Result<PointRef> {
        let s = self.take(14, "a BACnet point")?;
        let instance = u32::from_be_bytes([0, s[4], s[5], s[6]]);
        let Some(kind) = point_kind(s[7]).filter(|&k| numbered_as_stored(k) && !is_modbus(k)) else {
            return self.err(at, format!("BACnet object type {} is not one the program language names", s[7]));
        };
        let number = u32::from_be_bytes([0, s[8], s[9], s[10]]);
        Ok(PointRef { panel: Some(instance), sub_panel: None, kind, number, index: None, pos: Pos::default() })
    }

    /// An expression; an `FF` after it is consumed.
    fn expr(&mut self) -> Result<Expr> {
        Ok(self.expr_ending()?.0)
    }

    /// An expression, and whether an `FF` ended it.
    fn expr_ending(&mut self) -> Result<(Expr, bool)> {
        let start = self.at;
        if self.nesting >= MAX_NESTING {
            return self.err(start, format!("expressions nested inside each other deeper than {MAX_NESTING}"));
        }
        self.nesting += 1;
        let result = self.postfix(start);
        self.nesting -= 1;
        result
    }

    fn postfix(&mut self, start: usize) -> Result<(Expr, bool)> {
        let mut stack = Operands::default();
        let ended_by_ff = loop {
            let at = self.at;
            let Some(t) = self.peek() else { break false };
            match t {
                tok::LINE | tok::END_CODE => break false,
                tok::END_EXPR => {
                    self.at += 1;
                    break true;
                }
                tok::LOCAL_FIRST..=tok::LOCAL_LAST => stack.push(Expr::Local(self.local_name()?), 1, at)?,
                tok::LOCAL_POINT | tok::REMOTE_POINT => stack.push(Expr::Point(self.point()?), 1, at)?,
                tok::CONST => {
                    self.at += 1;
                    let value = self.i32("a number")?;
                    if self.peek() == Some(tok::TIME_FORMAT) {
                        if value < 0 || value % 1000 != 0 {
                            return self.err(at, format!("a time of {value} ms is not whole seconds"));
                        }
                        self.at += 1;
                        stack.push(Expr::Time(value.unsigned_abs() / 1000), 1, at)?;
                    } else {
                        stack.push(Expr::Num(Milli(value)), 1, at)?;
                    }
                }
                tok::NEG | tok::NOT => {
                    self.at += 1;
                    let (mut a, depth) = stack.pop(1, at, t)?;
                    let op = if t == tok::NEG { UnOp::Neg } else { UnOp::Not };
                    stack.push(Expr::Unary(op, Box::new(a.remove(0))), depth + 1, at)?;
                }
                tok::TIME_ON | tok::TIME_OFF => {
                    self.at += 1;
                    let offset = usize::from(self.u16("the time-table offset of TIME-ON / TIME-OFF")?);
                    let Some(arg) = self.timers.get(&offset).cloned() else {
                        return self.err(at, format!("no time-table entry at offset {offset}"));
                    };
                    let func = if t == tok::TIME_ON { Func::TimeOn } else { Func::TimeOff };
                    stack.push(Expr::Call(func, vec![arg]), 2, at)?;
                }
                tok::INTERVAL => {
                    self.at += 1;
                    self.skip_state(4, "the INTERVAL countdown")?;
                    let (args, depth) = stack.pop(1, at, t)?;
                    stack.push(Expr::Call(Func::Interval, args), depth + 1, at)?;
                }
                tok::ASSIGN_ARRAY_1 | tok::ASSIGN_ARRAY_2 => {
                    self.at += 1;
                    let (index, depth) = stack.pop(if t == tok::ASSIGN_ARRAY_1 { 1 } else { 2 }, at, t)?;
                    stack.push(Expr::LocalIndex(self.local_name()?, index), depth + 1, at)?;
                }
                tok::TIME_FORMAT => return self.err(at, "a time format (3F) that does not follow a number"),
                _ => {
                    self.at += 1;
                    if let Some(&(_, op)) = BINARY.iter().find(|(k, _)| *k == t) {
                        let (mut ab, depth) = stack.pop(2, at, t)?;
                        let b = ab.pop();
                        let a = ab.pop();
                        if let (Some(a), Some(b)) = (a, b) {
                            stack.push(Expr::Binary(op, Box::new(a), Box::new(b)), depth + 1, at)?;
                        }
                    } else if let Some(&(_, func, arity)) = FUNCTIONS.iter().find(|(k, ..)| *k == t) {
                        let n = match arity {
                            Arity::Fixed(n) => n,
                            Arity::Counted => usize::from(self.u8("the number of arguments")?),
                        };
                        if matches!(arity, Arity::Counted) && n == 0 {
                            return self.err(at, format!("function {} with no arguments", hex(t)));
                        }
                        let (args, depth) = stack.pop(n, at, t)?;
                        stack.push(Expr::Call(func, args), depth + 1, at)?;
                    } else if let Some((_, name)) = UNSUPPORTED_FUNCTIONS.iter().find(|(k, _)| *k == t) {
                        return self.err(at, format!("{name} (function {}) is not supported", hex(t)));
                    } else {
                        return self
                            .err(at, format!("expected an operand, an operator or a function, found {}", hex(t)));
                    }
                }
            }
        };
        match stack.0.len() {
            1 => Ok((stack.0.remove(0).0, ended_by_ff)),
            0 => self.err(start, format!("expected an expression, found {}", self.found(start))),
            n => self.err(start, format!("the expression leaves {n} values instead of one (an operator is missing)")),
        }
    }

    fn found(&self, at: usize) -> String {
        match self.b.get(at) {
            Some(&b) if at < self.limit => hex(b),
            _ => "the end of the code".to_owned(),
        }
    }
}

/// How deep an expression tree may be, and how deep expressions may sit inside each other (array
/// indexes) and IFs inside THEN / ELSE: far more than T3000's editor writes, few enough that
/// nothing that walks a program runs out of stack.
const MAX_DEPTH: usize = 100;
const MAX_NESTING: usize = 4;

/// The operands of a postfix expression, each with the depth of its tree.
#[derive(Default)]
struct Operands(Vec<(Expr, usize)>);

impl Operands {
    fn push(&mut self, e: Expr, depth: usize, at: usize) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(DecodeError { offset: at, message: format!("an expression nested deeper than {MAX_DEPTH}") });
        }
        self.0.push((e, depth));
        Ok(())
    }

    /// The last `n` operands, in the order they were pushed, and the depth of the deepest.
    fn pop(&mut self, n: usize, at: usize, t: u8) -> Result<(Vec<Expr>, usize)> {
        if self.0.len() < n {
            return Err(DecodeError {
                offset: at,
                message: format!("{} needs {n} operands, but only {} precede it", hex(t), self.0.len()),
            });
        }
        let popped = self.0.split_off(self.0.len() - n);
        let depth = popped.iter().map(|(_, d)| *d).max().unwrap_or(0);
        Ok((popped.into_iter().map(|(e, _)| e).collect(), depth))
    }
}

/// Turns the byte offsets the decoder left in jumps into line numbers.
fn jumps_to_lines(s: &mut Stmt, line_of: &dyn Fn(&mut u16)) {
    match s {
        Stmt::Goto(t) | Stmt::Gosub(t) | Stmt::OnAlarm(t) | Stmt::OnError(t) => line_of(t),
        Stmt::On { targets, .. } => targets.iter_mut().for_each(line_of),
        Stmt::If { then, otherwise, .. } => {
            for s in then.iter_mut().chain(otherwise.iter_mut()) {
                jumps_to_lines(s, line_of);
            }
        }
        _ => {}
    }
}

/// Why a program could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodeError {
    /// The BASIC line number of the statement (0: the program as a whole).
    pub line_number: u16,
    pub message: String,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line_number == 0 {
            write!(f, "{}", self.message)
        } else {
            write!(f, "line {}: {}", self.line_number, self.message)
        }
    }
}

impl std::error::Error for EncodeError {}

/// The value INTERVAL's countdown starts with: "not started yet" (T3000's `LONGTIMETEST`).
const INTERVAL_NOT_STARTED: i32 = -123_456_789;
/// What a program block may hold at most (T3000's `PROGRAM_SIZE`).
pub const BLOCK_BYTES: usize = 2000;

/// Compiles a program to the block a panel runs, as T3000's editor does: the code, `FE`, a WAIT
/// resume offset of 0, no local variables, the time table; run-time state with T3000's starting
/// values (IF+ / IF- and ALARM states 0, INTERVAL "not started", WAIT counters numbered 1, 2, ...
/// in order, DALARM countdowns at their delay). Points must be named by type and number: resolve
/// labels first. Local variables, FOR / NEXT inside THEN / ELSE and the statements [`decode`]
/// does not read are refused.
///
/// Where the byte code has two forms for one text, the encoder writes the one T3000 writes today:
/// a BACnet object of another device in the 5-byte network form when its instance and number fit,
/// the 14-byte form otherwise; `WAIT` of a time literal as whole seconds (`A1`); a `GOTO` as `13`
/// (never the older `2A` form, which [`decode`] reads as GOTO too).
pub fn encode(p: &Program) -> std::result::Result<Vec<u8>, EncodeError> {
    if p.lines.is_empty() {
        return Ok(vec![0, 0]);
    }
    let mut e = Encoder::default();
    e.loops(p)?;
    for (i, line) in p.lines.iter().enumerate() {
        e.line = line.number;
        e.line_at.push(e.code.len() + 2);
        e.line_of.entry(line.number).or_insert(e.code.len() + 2);
        e.code.extend([tok::LINE, line.number.to_le_bytes()[0], line.number.to_le_bytes()[1]]);
        e.stmt(&line.stmt, i, false)?;
    }
    let end = e.code.len() + 2;
    e.line_at.push(end);
    e.line = 0;
    for (at, fix, line) in std::mem::take(&mut e.fixups) {
        let target = match fix {
            Fix::Line(n) => match e.line_of.get(&n) {
                Some(&t) => t,
                None => return Err(EncodeError { line_number: line, message: format!("there is no line {n}") }),
            },
            Fix::LineIndex(i) => e.line_at[i],
        };
        let target = u16::try_from(target).map_err(|_| e.error("the code is longer than 65535 bytes"))?;
        e.code[at..at + 2].copy_from_slice(&target.to_le_bytes());
    }
    let len = u16::try_from(e.code.len()).map_err(|_| e.error("the code is longer than 65535 bytes"))?;
    let time_len = u16::try_from(e.time.len()).map_err(|_| e.error("the time table is longer than 65535 bytes"))?;
    let mut block = len.to_le_bytes().to_vec();
    block.extend(&e.code);
    block.extend([tok::END_CODE, 0, 0, 0, 0]);
    block.extend(time_len.to_le_bytes());
    block.extend(&e.time);
    if block.len() > BLOCK_BYTES {
        return Err(
            e.error(format!("the program needs {} bytes, a panel holds {BLOCK_BYTES} per program", block.len()))
        );
    }
    Ok(block)
}

/// A jump to fill in once every line's place is known.
enum Fix {
    /// To the line of that number.
    Line(u16),
    /// To the line at that index of the program (one past the last: the end of the code).
    LineIndex(usize),
}

#[derive(Default)]
struct Encoder {
    code: Vec<u8>,
    time: Vec<u8>,
    /// Time-table entries: the expression and the offset of its accumulator.
    timers: Vec<(Expr, usize)>,
    /// Where each jump's u16 is in the code, what it jumps to, on which line.
    fixups: Vec<(usize, Fix, u16)>,
    /// Block offset of each line, by index, then of the end of the code.
    line_at: Vec<usize>,
    /// Block offset of the first line of each number.
    line_of: BTreeMap<u16, usize>,
    /// FOR line index -> index of the line after its NEXT; NEXT line index -> its FOR's index.
    for_exit: BTreeMap<usize, usize>,
    next_for: BTreeMap<usize, usize>,
    waits: i32,
    line: u16,
}

impl Encoder {
    fn error(&self, message: impl Into<String>) -> EncodeError {
        EncodeError { line_number: self.line, message: message.into() }
    }

    /// Pairs every NEXT with the FOR it closes (the innermost open one of its variable).
    fn loops(&mut self, p: &Program) -> std::result::Result<(), EncodeError> {
        let mut open: Vec<(usize, &Target)> = Vec::new();
        for (i, line) in p.lines.iter().enumerate() {
            self.line = line.number;
            match &line.stmt {
                Stmt::For { var, .. } => open.push((i, var)),
                Stmt::Next(var) => {
                    let pos = open.iter().rposition(|(_, v)| var.as_ref().is_none_or(|var| var == *v));
                    let Some(pos) = pos else { return Err(self.error("NEXT without a FOR")) };
                    let (f, _) = open.remove(pos);
                    open.truncate(pos);
                    self.for_exit.insert(f, i + 1);
                    self.next_for.insert(i, f);
                }
                _ => {}
            }
        }
        if let Some(&(i, _)) = open.first() {
            self.line = p.lines[i].number;
            return Err(self.error("FOR without a NEXT"));
        }
        Ok(())
    }

    fn u16_placeholder(&mut self, fix: Fix) {
        self.fixups.push((self.code.len(), fix, self.line));
        self.code.extend([0, 0]);
    }

    /// A statement of line `index`; `clause`: inside THEN / ELSE.
    fn stmt(&mut self, s: &Stmt, index: usize, clause: bool) -> std::result::Result<(), EncodeError> {
        let end_in_clause = |e: &mut Encoder| {
            if clause {
                e.code.push(tok::END_EXPR);
            }
        };
        match s {
            Stmt::Rem(text) => {
                self.code.push(tok::REM);
                self.text(text)?;
            }
            Stmt::Assign { target, value } => {
                self.code.push(tok::ASSIGN);
                self.target(target)?;
                let mut value_bytes = Vec::new();
                self.expr(value, &mut value_bytes)?;
                self.code.extend(value_bytes);
                end_in_clause(self);
            }
            Stmt::Start(t) | Stmt::Stop(t) | Stmt::Enable(t) | Stmt::Disable(t) | Stmt::Open(t) | Stmt::Close(t) => {
                self.code.push(match s {
                    Stmt::Start(_) => tok::START,
                    Stmt::Stop(_) => tok::STOP,
                    Stmt::Enable(_) => tok::ENABLE,
                    Stmt::Disable(_) => tok::DISABLE,
                    Stmt::Open(_) => tok::OPEN,
                    _ => tok::CLOSE,
                });
                self.target(t)?;
            }
            Stmt::Goto(n) | Stmt::Gosub(n) | Stmt::OnAlarm(n) | Stmt::OnError(n) => {
                self.code.push(match s {
                    Stmt::Goto(_) => tok::GOTO,
                    Stmt::Gosub(_) => tok::GOSUB,
                    Stmt::OnAlarm(_) => tok::ON_ALARM,
                    _ => tok::ON_ERROR,
                });
                self.u16_placeholder(Fix::Line(*n));
            }
            Stmt::Return | Stmt::End | Stmt::Clear => {
                self.code.push(match s {
                    Stmt::Return => tok::RETURN,
                    Stmt::End => tok::END,
                    _ => tok::CLEAR,
                });
                end_in_clause(self);
            }
            Stmt::On { selector, gosub, targets } => {
                self.code.push(tok::ON);
                self.expr_ff(selector)?;
                self.code.push(if *gosub { tok::GOSUB } else { tok::GOTO });
                let count =
                    u8::try_from(targets.len()).map_err(|_| self.error("ON with more than 255 line numbers"))?;
                self.code.push(count);
                for &t in targets {
                    self.u16_placeholder(Fix::Line(t));
                }
            }
            Stmt::If { kind, cond, then, otherwise } => self.if_stmt(*kind, cond, then, otherwise, index)?,
            Stmt::For { var, from, to, step } => {
                if clause {
                    return Err(self.error("FOR inside THEN or ELSE"));
                }
                self.code.push(tok::FOR);
                self.target(var)?;
                self.expr_ff(from)?;
                self.expr_ff(to)?;
                self.expr_ff(step.as_ref().unwrap_or(&Expr::Num(Milli(1000))))?;
                let exit = self.for_exit.get(&index).copied().ok_or_else(|| self.error("FOR without a NEXT"))?;
                self.u16_placeholder(Fix::LineIndex(exit));
            }
            Stmt::Next(_) => {
                let f = self.next_for.get(&index).copied().filter(|_| !clause);
                let f = f.ok_or_else(|| self.error("NEXT inside THEN or ELSE, or without a FOR"))?;
                self.code.push(tok::NEXT);
                self.u16_placeholder(Fix::LineIndex(f));
            }
            Stmt::Wait(x) => {
                self.code.push(tok::WAIT);
                match x {
                    Expr::Time(seconds) => {
                        self.code.push(tok::PTIME);
                        self.code.extend(seconds.to_le_bytes());
                    }
                    x => self.expr_ff(x)?,
                }
                self.waits += 1;
                self.code.extend(self.waits.to_le_bytes());
            }
            Stmt::Alarm { left, above, right, hysteresis, message } => {
                self.code.push(tok::ALARM);
                let mut b = Vec::new();
                self.expr(left, &mut b)?;
                // The panel finds the comparison as the first 6D / 6E byte within 30 bytes.
                if b.len() >= 30 || b.iter().any(|&x| x == tok::LT || x == tok::GT) {
                    return Err(self.error("the left side of this ALARM is one the panel would misread (too long, or holds a 6D / 6E byte)"));
                }
                self.code.extend(b);
                self.code.push(if *above { tok::GT } else { tok::LT });
                self.expr_ff(right)?;
                self.expr_ff(hysteresis)?;
                self.text(message)?;
                self.code.push(0);
            }
            Stmt::Dalarm { cond, delay, message } => {
                let Expr::Num(Milli(delay)) = delay else {
                    return Err(self.error("the delay of DALARM must be a number of seconds"));
                };
                self.code.push(tok::DALARM);
                self.expr_ff(cond)?;
                self.code.extend(delay.to_le_bytes());
                self.text(message)?;
                self.code.extend(delay.to_le_bytes());
            }
            Stmt::Print(items) => {
                self.code.push(tok::PRINT);
                let count = u8::try_from(items.len()).map_err(|_| self.error("PRINT with more than 255 items"))?;
                self.code.push(count);
                for item in items {
                    match item {
                        PrintItem::Text(t) => {
                            self.code.push(tok::STRING);
                            self.text(t)?;
                        }
                        PrintItem::Date => self.code.push(tok::DATE),
                        PrintItem::Time => self.code.push(tok::PTIME),
                        PrintItem::UserA => self.code.push(tok::USER_A),
                        PrintItem::UserB => self.code.push(tok::USER_B),
                        PrintItem::Beep => self.code.push(tok::BEEP),
                        PrintItem::Value(x) => self.expr_ff(x)?,
                    }
                }
                end_in_clause(self);
            }
            Stmt::Other { keyword, text } => self.other(keyword, text, clause)?,
        }
        Ok(())
    }

    fn if_stmt(
        &mut self,
        kind: IfKind,
        cond: &Expr,
        then: &[Stmt],
        otherwise: &[Stmt],
        index: usize,
    ) -> std::result::Result<(), EncodeError> {
        self.code.push(match kind {
            IfKind::Plain => tok::IF,
            IfKind::Rising => tok::IF_RISING,
            IfKind::Falling => tok::IF_FALLING,
        });
        self.expr_ff(cond)?;
        if kind != IfKind::Plain {
            self.code.push(0);
        }
        let false_jump = self.code.len();
        self.code.extend([0, 0]);
        if then.is_empty() {
            return Err(self.error("IF without a statement after THEN"));
        }
        for s in then {
            self.stmt(s, index, true)?;
        }
        let mut end_jump = None;
        if !otherwise.is_empty() {
            self.code.extend([tok::ELSE, tok::END_EXPR]);
            end_jump = Some(self.code.len());
            self.code.extend([0, 0]);
        }
        self.patch_here(false_jump)?;
        for s in otherwise {
            self.stmt(s, index, true)?;
        }
        if let Some(at) = end_jump {
            self.patch_here(at)?;
        }
        Ok(())
    }

    /// Makes the u16 at code position `at` jump to here.
    fn patch_here(&mut self, at: usize) -> std::result::Result<(), EncodeError> {
        let here = u16::try_from(self.code.len() + 2).map_err(|_| self.error("the code is longer than 65535 bytes"))?;
        self.code[at..at + 2].copy_from_slice(&here.to_le_bytes());
        Ok(())
    }

    fn other(&mut self, keyword: &str, text: &str, clause: bool) -> std::result::Result<(), EncodeError> {
        if let Some(&(t, _)) = TEXT_STATEMENTS.iter().find(|(_, k)| *k == keyword) {
            self.code.push(t);
            return self.text(text);
        }
        match keyword {
            "HANGUP" => {
                self.code.push(tok::HANGUP);
                if clause {
                    self.code.push(tok::END_EXPR);
                }
            }
            "SET-PRINTER" => {
                let c = latin1_bytes(text).and_then(|b| (b.len() == 1).then(|| b[0]));
                let c = c.ok_or_else(|| self.error(format!("SET-PRINTER takes one letter, not {text:?}")))?;
                self.code.extend([tok::SET_PRINTER, c]);
            }
            "RUN-MACRO" => {
                let n = text
                    .trim()
                    .parse::<u8>()
                    .map_err(|_| self.error(format!("RUN-MACRO takes a number 0..255, not {text:?}")))?;
                self.code.extend([tok::RUN_MACRO, n]);
            }
            "ALARM-AT" | "PRINT-AT" => {
                self.code.push(if keyword == "ALARM-AT" { tok::ALARM_AT } else { tok::PRINT_AT });
                if text.trim() == "ALL" {
                    self.code.push(tok::END_EXPR);
                } else {
                    let panels: std::result::Result<Vec<u8>, _> =
                        text.split_whitespace().map(str::parse::<u8>).collect();
                    match panels {
                        Ok(p) if (1..=3).contains(&p.len()) && !p.contains(&0) => self.code.extend(p),
                        _ => {
                            return Err(
                                self.error(format!("{keyword} takes ALL or one to three panel numbers, not {text:?}"))
                            );
                        }
                    }
                    self.code.push(0);
                }
            }
            _ => return Err(self.error(format!("{keyword} cannot be encoded"))),
        }
        Ok(())
    }

    /// A length byte and the text.
    fn text(&mut self, text: &str) -> std::result::Result<(), EncodeError> {
        let bytes =
            latin1_bytes(text).ok_or_else(|| self.error(format!("{text:?} has characters a panel cannot hold")))?;
        let len = u8::try_from(bytes.len()).map_err(|_| self.error("a text longer than 255 characters"))?;
        self.code.push(len);
        self.code.extend(bytes);
        Ok(())
    }

    fn target(&mut self, t: &Target) -> std::result::Result<(), EncodeError> {
        match t {
            Target::Point(p) => {
                let mut b = Vec::new();
                self.point(p, &mut b)?;
                self.code.extend(b);
                Ok(())
            }
            Target::Label(name, _) => {
                Err(self.error(format!("{name} is a label: name its point to encode the program")))
            }
            Target::Local(name) | Target::LocalIndex(name, _) => {
                Err(self.error(format!("local variable {name}: programs with local variables cannot be encoded")))
            }
        }
    }

    fn expr_ff(&mut self, x: &Expr) -> std::result::Result<(), EncodeError> {
        let mut b = Vec::new();
        self.expr(x, &mut b)?;
        self.code.extend(b);
        self.code.push(tok::END_EXPR);
        Ok(())
    }

    /// An expression in postfix order, into `out` (the time table may grow meanwhile).
    fn expr(&mut self, x: &Expr, out: &mut Vec<u8>) -> std::result::Result<(), EncodeError> {
        match x {
            Expr::Num(Milli(v)) => {
                out.push(tok::CONST);
                out.extend(v.to_le_bytes());
            }
            Expr::Time(seconds) => {
                let ms = seconds.checked_mul(1000).and_then(|ms| i32::try_from(ms).ok());
                let ms = ms.ok_or_else(|| self.error(format!("a time of {seconds} s is too long")))?;
                out.push(tok::CONST);
                out.extend(ms.to_le_bytes());
                out.push(tok::TIME_FORMAT);
            }
            Expr::Point(p) => self.point(p, out)?,
            Expr::Label(name, _) => {
                return Err(self.error(format!("{name} is a label: name its point to encode the program")));
            }
            Expr::Local(name) | Expr::LocalIndex(name, _) => {
                return Err(
                    self.error(format!("local variable {name}: programs with local variables cannot be encoded"))
                );
            }
            Expr::Unary(op, a) => {
                self.expr(a, out)?;
                out.push(if *op == UnOp::Neg { tok::NEG } else { tok::NOT });
            }
            Expr::Binary(op, a, b) => {
                self.expr(a, out)?;
                self.expr(b, out)?;
                let t = BINARY.iter().find(|(_, o)| o == op).map(|(t, _)| *t);
                out.push(t.ok_or_else(|| self.error("an operator without a byte code"))?);
            }
            Expr::Call(f @ (Func::TimeOn | Func::TimeOff), args) => {
                let [arg] = args.as_slice() else {
                    return Err(self.error("TIME-ON and TIME-OFF take one argument"));
                };
                let acc = self.timer(arg)?;
                out.push(if *f == Func::TimeOn { tok::TIME_ON } else { tok::TIME_OFF });
                out.extend(acc.to_le_bytes());
            }
            Expr::Call(Func::Interval, args) => {
                let [arg] = args.as_slice() else {
                    return Err(self.error("INTERVAL takes one argument"));
                };
                self.expr(arg, out)?;
                out.push(tok::INTERVAL);
                out.extend(INTERVAL_NOT_STARTED.to_le_bytes());
            }
            Expr::Call(f, args) => {
                let Some(&(t, _, arity)) = FUNCTIONS.iter().find(|(_, g, _)| g == f) else {
                    return Err(self.error(format!("function {f:?} has no byte code")));
                };
                let ok = match arity {
                    Arity::Fixed(n) => args.len() == n,
                    Arity::Counted => !args.is_empty() && args.len() <= 255,
                };
                if !ok {
                    return Err(self.error(format!("function {f:?} with {} arguments", args.len())));
                }
                for a in args {
                    self.expr(a, out)?;
                }
                out.push(t);
                if matches!(arity, Arity::Counted) {
                    out.push(u8::try_from(args.len()).unwrap_or(u8::MAX));
                }
            }
        }
        Ok(())
    }

    /// The accumulator offset of `x`'s time-table entry (identical expressions share one).
    fn timer(&mut self, x: &Expr) -> std::result::Result<u16, EncodeError> {
        let acc = match self.timers.iter().find(|(e, _)| e == x) {
            Some(&(_, acc)) => acc,
            None => {
                let mut b = Vec::new();
                self.expr(x, &mut b)?;
                self.time.extend(b);
                self.time.extend([tok::END_EXPR, 0]);
                let acc = self.time.len();
                self.time.extend([0; 4]);
                self.timers.push((x.clone(), acc));
                acc
            }
        };
        u16::try_from(acc).map_err(|_| self.error("the time table is longer than 65535 bytes"))
    }

    /// A point: `9C` on this panel, `9E` and T3000's network point elsewhere.
    fn point(&mut self, p: &PointRef, out: &mut Vec<u8>) -> std::result::Result<(), EncodeError> {
        let name = || format!("{}{}", p.kind.name(), p.number);
        let code = if p.kind == PointKind::Reg { Some(2) } else { (0..=30).find(|&c| point_kind(c) == Some(p.kind)) };
        let code = code.ok_or_else(|| self.error(format!("{} has no byte code", name())))?;
        let stored = if numbered_as_stored(p.kind) { Some(p.number) } else { p.number.checked_sub(1) };
        let stored = stored.ok_or_else(|| self.error(format!("{} does not exist (numbers start at 1)", name())))?;
        match (p.panel, p.sub_panel) {
            (None, None) if p.kind != PointKind::Reg => {
                let n = u8::try_from(stored).map_err(|_| self.error(format!("{} is out of range", name())))?;
                out.extend([tok::LOCAL_POINT, n, code + 1]);
            }
            (Some(instance), None) if numbered_as_stored(p.kind) && !is_modbus(p.kind) => {
                if instance < 1 << 21 && p.number < 1 << 11 {
                    let [_, i2, i1, i0] = instance.to_be_bytes();
                    let [.., n1, n0] = p.number.to_be_bytes();
                    out.extend([tok::REMOTE_POINT, n0, (code + 1) | (n1 << 5), i1, i0, 0x80 | i2]);
                } else if instance < 1 << 24 && p.number < 1 << 24 {
                    let [_, i2, i1, i0] = instance.to_be_bytes();
                    let [_, n2, n1, n0] = p.number.to_be_bytes();
                    out.extend([tok::REMOTE_POINT, 0x55, 0xFF, 0x55, 0xFF, i2, i1, i0, code, n2, n1, n0, 0, 0, 0]);
                } else {
                    return Err(self.error(format!("{instance}{} is out of range", name())));
                }
            }
            (Some(panel), sub) => {
                let sub = sub.unwrap_or(0);
                let (Ok(panel), Ok(sub)) = (u8::try_from(panel), u8::try_from(sub)) else {
                    return Err(self.error(format!("panel {panel}.{sub} is out of range")));
                };
                if p.kind == PointKind::Reg && (sub == 0 || sub == panel) {
                    return Err(self.error("REG names a register of a sub-device (panel.sub-device.REGn)"));
                }
                let extended = is_modbus(p.kind) || code == 2;
                if stored < 1 << 11 {
                    let [.., n1, n0] = stored.to_be_bytes();
                    out.extend([tok::REMOTE_POINT, n0, (code + 1) | (n1 << 5), panel, sub, 1]);
                } else if extended && p.number < 1 << 16 {
                    let [.., n1, n0] = p.number.to_be_bytes();
                    out.extend([tok::REMOTE_POINT, n0, (code + 1) | ((n1 & 7) << 5), panel, sub, 0x80 | (n1 >> 3)]);
                } else {
                    return Err(self.error(format!("{} is out of range", name())));
                }
            }
            _ => return Err(self.error(format!("{} names no panel", name()))),
        }
        if let Some(index) = &p.index {
            self.expr(index, out)?;
            out.push(tok::END_EXPR);
        }
        Ok(())
    }
}

/// Text as the panel holds it, one byte a character (Latin-1); `None` if a character has no byte.
fn latin1_bytes(text: &str) -> Option<Vec<u8>> {
    text.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A statement's bytes, given where each line starts (`to(n)`: line n's offset, `to(END)`:
    /// the end of the code) as u16 LE bytes.
    type Asm = Box<dyn Fn(&dyn Fn(u16) -> Vec<u8>) -> Vec<u8>>;
    const END: u16 = u16::MAX;

    /// Lines assembled into code: each `01`, its number, its statement.
    fn code(lines: &[(u16, Asm)]) -> Vec<u8> {
        let dummy = |_: u16| vec![0, 0];
        let mut starts = BTreeMap::new();
        let mut at = 2;
        for (n, s) in lines {
            starts.insert(*n, at);
            at += 3 + s(&dummy).len();
        }
        let to = |n: u16| {
            let offset = if n == END { at } else { starts[&n] };
            u16::try_from(offset).unwrap().to_le_bytes().to_vec()
        };
        lines.iter().flat_map(|(n, s)| [vec![tok::LINE], n.to_le_bytes().to_vec(), s(&to)].concat()).collect()
    }

    /// A whole block: length, code, FE, WAIT resume offset 0, locals, time table.
    fn block(code: &[u8], locals: &[u8], time: &[u8]) -> Vec<u8> {
        let len = |b: &[u8]| u16::try_from(b.len()).unwrap().to_le_bytes().to_vec();
        [len(code), code.to_vec(), vec![tok::END_CODE, 0, 0], len(locals), locals.to_vec(), len(time), time.to_vec()]
            .concat()
    }

    fn stmt(bytes: Vec<u8>) -> Asm {
        Box::new(move |_| bytes.clone())
    }

    fn num(v: i32) -> Vec<u8> {
        [vec![tok::CONST], v.to_le_bytes().to_vec()].concat()
    }

    /// `VARn` of this panel.
    fn var(n: u8) -> Vec<u8> {
        vec![tok::LOCAL_POINT, n - 1, 3]
    }

    fn point(kind: PointKind, number: u32) -> PointRef {
        PointRef { panel: None, sub_panel: None, kind, number, index: None, pos: Pos::default() }
    }

    fn remote(panel: u32, sub_panel: Option<u32>, kind: PointKind, number: u32) -> Expr {
        Expr::Point(PointRef { panel: Some(panel), sub_panel, kind, number, index: None, pos: Pos::default() })
    }

    fn v(n: u32) -> Expr {
        Expr::Point(point(PointKind::Var, n))
    }

    fn tv(n: u32) -> Target {
        Target::Point(point(PointKind::Var, n))
    }

    fn n(x: i32) -> Expr {
        Expr::Num(Milli(x * 1000))
    }

    fn bin(op: BinOp, a: Expr, b: Expr) -> Expr {
        Expr::Binary(op, Box::new(a), Box::new(b))
    }

    fn stmts(p: &Program) -> Vec<(u16, Stmt)> {
        p.lines.iter().map(|l| (l.number, l.stmt.clone())).collect()
    }

    #[test]
    fn an_empty_block_is_an_empty_program() {
        assert_eq!(decode(&[0, 0]).unwrap(), Program::default());
        assert_eq!(decode(&[0; 2000]).unwrap(), Program::default());
        let e = decode(&[7]).unwrap_err();
        assert_eq!(e.offset, 0);
        assert!(e.message.contains("found only 1 bytes"), "{e}");
    }

    #[test]
    fn assignments_numbers_times_and_operators() {
        // 10 VAR1 = -10 + VAR2 * 1.5 ; 20 VAR3 = NOT VAR1 AND VAR2 >= 0:01:30 ; 30 VAR4 = 2 ^ 3 \ 4 MOD 5
        let c = code(&[
            (
                10,
                stmt(
                    [vec![tok::ASSIGN], var(1), num(10_000), vec![tok::NEG], var(2), num(1500), vec![0x67, 0x6B]]
                        .concat(),
                ),
            ),
            (
                20,
                stmt(
                    [vec![tok::ASSIGN], var(3), var(1), vec![tok::NOT], var(2), num(90_000), vec![0x3F, 0x60, 0x74]]
                        .concat(),
                ),
            ),
            (
                30,
                stmt(
                    [
                        vec![tok::ASSIGN],
                        var(4),
                        num(2000),
                        num(3000),
                        vec![0x65],
                        num(4000),
                        vec![0x7B],
                        num(5000),
                        vec![0x66],
                    ]
                    .concat(),
                ),
            ),
        ]);
        let p = decode(&block(&c, &[], &[])).unwrap();
        let neg10 = Expr::Unary(UnOp::Neg, Box::new(n(10)));
        assert_eq!(
            stmts(&p),
            vec![
                (
                    10,
                    Stmt::Assign {
                        target: tv(1),
                        value: bin(BinOp::Add, neg10, bin(BinOp::Mul, v(2), Expr::Num(Milli(1500))))
                    }
                ),
                (
                    20,
                    Stmt::Assign {
                        target: tv(3),
                        value: bin(
                            BinOp::And,
                            Expr::Unary(UnOp::Not, Box::new(v(1))),
                            bin(BinOp::Ge, v(2), Expr::Time(90))
                        ),
                    }
                ),
                (
                    30,
                    Stmt::Assign {
                        target: tv(4),
                        value: bin(BinOp::Mod, bin(BinOp::IntDiv, bin(BinOp::Pow, n(2), n(3)), n(4)), n(5)),
                    }
                ),
            ]
        );
    }

    #[test]
    fn if_then_else_with_several_statements_and_bare_line_numbers() {
        // 10 IF VAR1 > 1 THEN VAR2 = 1 , START OUT3 , END ELSE 30
        // 20 IF+ VAR1 THEN 10
        // 30 IF- VAR1 THEN STOP OUT3
        let then =
            [vec![tok::ASSIGN], var(2), num(1000), vec![0xFF, tok::START, tok::LOCAL_POINT, 2, 1, tok::END, 0xFF]]
                .concat();
        let cond = [var(1), num(1000), vec![tok::GT, 0xFF]].concat();
        let c = code(&[
            (
                10,
                Box::new(move |to| {
                    // Offset of the ELSE body: line start (2) + 01 nn nn + IF + cond + jump + then + ELSE FF jump.
                    let else_at = 2 + 3 + 1 + cond.len() + 2 + then.len() + 4;
                    let else_at = u16::try_from(else_at).unwrap().to_le_bytes().to_vec();
                    let end = 2 + 3 + 1 + cond.len() + 2 + then.len() + 4 + 3;
                    let end = u16::try_from(end).unwrap().to_le_bytes().to_vec();
                    [
                        vec![tok::IF],
                        cond.clone(),
                        else_at,
                        then.clone(),
                        vec![tok::ELSE, 0xFF],
                        end,
                        vec![tok::GOTO],
                        to(30),
                    ]
                    .concat()
                }),
            ),
            (
                20,
                Box::new(|to| [vec![tok::IF_RISING], var(1), vec![0xFF, 1], to(30), vec![tok::GOTO], to(10)].concat()),
            ),
            (
                30,
                Box::new(|to| {
                    [vec![tok::IF_FALLING], var(1), vec![0xFF, 0], to(END), vec![tok::STOP, tok::LOCAL_POINT, 2, 1]]
                        .concat()
                }),
            ),
        ]);
        let p = decode(&block(&c, &[], &[])).unwrap();
        let out3 = Target::Point(point(PointKind::Out, 3));
        assert_eq!(
            stmts(&p),
            vec![
                (
                    10,
                    Stmt::If {
                        kind: IfKind::Plain,
                        cond: bin(BinOp::Gt, v(1), n(1)),
                        then: vec![Stmt::Assign { target: tv(2), value: n(1) }, Stmt::Start(out3.clone()), Stmt::End],
                        otherwise: vec![Stmt::Goto(30)],
                    }
                ),
                (20, Stmt::If { kind: IfKind::Rising, cond: v(1), then: vec![Stmt::Goto(10)], otherwise: vec![] }),
                (30, Stmt::If { kind: IfKind::Falling, cond: v(1), then: vec![Stmt::Stop(out3)], otherwise: vec![] }),
            ]
        );
    }

    #[test]
    fn jumps_that_miss_a_line_are_errors() {
        // GOTO into the middle of line 10.
        let c = code(&[(
            10,
            Box::new(|to| {
                [vec![tok::GOTO], (u16::from_le_bytes([to(10)[0], to(10)[1]]) + 1).to_le_bytes().to_vec()].concat()
            }),
        )]);
        let e = decode(&block(&c, &[], &[])).unwrap_err();
        assert_eq!(e.offset, 6);
        assert!(e.message.contains("GOTO jumps to byte 3, which is not the start of a line"), "{e}");
        // An IF whose jump does not land after its THEN.
        let c = code(&[(10, Box::new(|_| [vec![tok::IF], var(1), vec![0xFF, 2, 0, tok::END]].concat()))]);
        let e = decode(&block(&c, &[], &[])).unwrap_err();
        assert!(e.message.contains("the IF's jump past THEN goes to byte 2, expected byte 13"), "{e}");
    }

    #[test]
    fn on_gosub_return_for_next_and_locals() {
        // Locals: FLOAT I (storage 4), INTEGER COUNT (2), a 2x3 BYTE array T.
        let locals = [
            vec![0x83, 0, 0, 0, 0],
            b"I\0".to_vec(),
            vec![0x85, 0, 0],
            b"COUNT\0".to_vec(),
            vec![0x8B, 2, 0, 3, 0, 0, 0, 0, 0, 0, 0],
            b"T\0".to_vec(),
        ]
        .concat();
        let c = code(&[
            (10, Box::new(|to| [vec![tok::ON, 0x83, 1, 0, 0xFF, tok::GOSUB, 2], to(40), to(50)].concat())),
            (
                20,
                Box::new(|to| {
                    [
                        vec![tok::FOR, 0x83, 1, 0],
                        num(1000),
                        vec![0xFF],
                        num(10_000),
                        vec![0xFF],
                        num(2000),
                        vec![0xFF],
                        to(40),
                    ]
                    .concat()
                }),
            ),
            (
                25,
                stmt(
                    [
                        vec![tok::ASSIGN_ARRAY_2, 0x8B, 18, 0],
                        num(1000),
                        vec![0xFF],
                        num(2000),
                        vec![0xFF],
                        vec![0x85, 8, 0],
                    ]
                    .concat(),
                ),
            ),
            (30, Box::new(|to| [vec![tok::NEXT], to(20)].concat())),
            (
                40,
                stmt(
                    [vec![tok::ASSIGN, 0x85, 8, 0], num(1000), num(2000), vec![tok::ASSIGN_ARRAY_2, 0x8B, 18, 0]]
                        .concat(),
                ),
            ),
            (50, Box::new(|_| vec![tok::RETURN])),
        ]);
        let p = decode(&block(&c, &locals, &[])).unwrap();
        let local = |s: &str| Expr::Local(s.to_owned());
        assert_eq!(
            stmts(&p),
            vec![
                (10, Stmt::On { selector: local("I"), gosub: true, targets: vec![40, 50] }),
                (20, Stmt::For { var: Target::Local("I".to_owned()), from: n(1), to: n(10), step: Some(n(2)) }),
                (
                    25,
                    Stmt::Assign {
                        target: Target::LocalIndex("T".to_owned(), vec![n(1), n(2)]),
                        value: local("COUNT")
                    }
                ),
                (30, Stmt::Next(Some(Target::Local("I".to_owned())))),
                (
                    40,
                    Stmt::Assign {
                        target: Target::Local("COUNT".to_owned()),
                        value: Expr::LocalIndex("T".to_owned(), vec![n(1), n(2)])
                    }
                ),
                (50, Stmt::Return),
            ]
        );
    }

    #[test]
    fn timers_wait_alarms_and_print() {
        // Time table: TIME-ON(VAR1) (accumulator at offset 5), TIME-OFF(VAR2 > 1) (at offset 20).
        let time =
            [var(1), vec![0xFF, 1, 0x10, 0x27, 0, 0], var(2), num(1000), vec![tok::GT, 0xFF, 0, 0, 0, 0, 0]].concat();
        let c = code(&[
            (10, stmt([vec![tok::ASSIGN], var(3), vec![tok::TIME_ON, 5, 0, tok::TIME_OFF, 20, 0, 0x6B]].concat())),
            (
                20,
                stmt(
                    [
                        vec![tok::IF],
                        num(60_000),
                        vec![0x3F, tok::INTERVAL],
                        (-123_456_789i32).to_le_bytes().to_vec(),
                        vec![0xFF],
                        vec![20, 0],
                        vec![tok::WAIT, tok::PTIME, 10, 0, 0, 0, 1, 0, 0, 0],
                    ]
                    .concat(),
                ),
            ),
            (30, stmt([vec![tok::WAIT], var(4), vec![0xFF, 0, 0, 0, 0]].concat())),
            (
                40,
                stmt(
                    [
                        vec![tok::ALARM],
                        var(1),
                        vec![tok::GT],
                        num(30_000),
                        vec![0xFF],
                        num(2000),
                        vec![0xFF, 3],
                        b"HOT".to_vec(),
                        vec![0],
                    ]
                    .concat(),
                ),
            ),
            (
                50,
                stmt(
                    [
                        vec![tok::DALARM],
                        var(2),
                        vec![0xFF],
                        5000i32.to_le_bytes().to_vec(),
                        vec![2],
                        b"NO".to_vec(),
                        vec![0, 0, 0, 0],
                    ]
                    .concat(),
                ),
            ),
            (
                60,
                stmt(
                    [vec![tok::PRINT, 4, tok::STRING, 2], b"T=".to_vec(), var(1), vec![0xFF, tok::DATE, tok::BEEP]]
                        .concat(),
                ),
            ),
            (
                70,
                stmt(
                    [vec![tok::ASSIGN], var(5), vec![0x35, 0x08, 0x71], var(6), var(7), num(3000), vec![0x37, 3, 0x6B]]
                        .concat(),
                ),
            ),
        ]);
        let mut c = c;
        // Line 20's IF jumps to line 30: fix the placeholder now that offsets are known.
        let line30 = 2 + c.windows(3).position(|w| w == [1, 30, 0]).unwrap();
        let jump_at = 2 + c.windows(3).position(|w| w == [1, 20, 0]).unwrap() + 3 + 1 + 5 + 1 + 1 + 4 + 1;
        c[jump_at - 2..jump_at].copy_from_slice(&u16::try_from(line30).unwrap().to_le_bytes());
        let p = decode(&block(&c, &[], &time)).unwrap();
        assert_eq!(
            stmts(&p),
            vec![
                (
                    10,
                    Stmt::Assign {
                        target: tv(3),
                        value: bin(
                            BinOp::Add,
                            Expr::Call(Func::TimeOn, vec![v(1)]),
                            Expr::Call(Func::TimeOff, vec![bin(BinOp::Gt, v(2), n(1))])
                        ),
                    }
                ),
                (
                    20,
                    Stmt::If {
                        kind: IfKind::Plain,
                        cond: Expr::Call(Func::Interval, vec![Expr::Time(60)]),
                        then: vec![Stmt::Wait(Expr::Time(10))],
                        otherwise: vec![]
                    }
                ),
                (30, Stmt::Wait(v(4))),
                (
                    40,
                    Stmt::Alarm { left: v(1), above: true, right: n(30), hysteresis: n(2), message: "HOT".to_owned() }
                ),
                (50, Stmt::Dalarm { cond: v(2), delay: n(5), message: "NO".to_owned() }),
                (
                    60,
                    Stmt::Print(vec![
                        PrintItem::Text("T=".to_owned()),
                        PrintItem::Value(v(1)),
                        PrintItem::Date,
                        PrintItem::Beep
                    ])
                ),
                (
                    70,
                    Stmt::Assign {
                        target: tv(5),
                        value: bin(
                            BinOp::Add,
                            bin(BinOp::Eq, Expr::Call(Func::Dow, vec![]), Expr::Call(Func::Day(1), vec![])),
                            Expr::Call(Func::Max, vec![v(6), v(7), n(3)])
                        ),
                    }
                ),
            ]
        );
    }

    #[test]
    fn network_points() {
        let rp = |bytes: [u8; 5]| [vec![tok::REMOTE_POINT], bytes.to_vec()].concat();
        let c = code(&[
            // 2.1.MB_REG1 = 19.1.REG2 (T3000's own text of BTUMeter.prg PRG4)
            (10, stmt([vec![tok::ASSIGN], rp([0x01, 0x1B, 2, 1, 1]), rp([0x01, 0x03, 19, 1, 1])].concat())),
            // START 2-OUT3 (another panel, no sub-device); VAR1 = 19.253.REG300 (number 299 = 0x12B: high bits 1)
            (20, stmt([vec![tok::START], rp([2, 1, 2, 0, 1])].concat())),
            (30, stmt([vec![tok::ASSIGN], var(1), rp([0x2B, 0x23, 19, 253, 1])].concat())),
            // VAR1 = 260AV5: BACnet AV5 of device 260 (new format: instance in network, panel, sub-panel)
            (40, stmt([vec![tok::ASSIGN], var(1), rp([5, 28, 1, 4, 0x80])].concat())),
            // VAR1 = 70000AI3, the 14-byte large-instance form
            (
                50,
                stmt(
                    [
                        vec![tok::ASSIGN],
                        var(1),
                        vec![tok::REMOTE_POINT, 0x55, 0xFF, 0x55, 0xFF, 0x01, 0x11, 0x70, 28, 0, 0, 3, 0, 0, 0],
                    ]
                    .concat(),
                ),
            ),
            // VAR1 = AY2[VAR3]
            (60, stmt([vec![tok::ASSIGN], var(1), vec![tok::LOCAL_POINT, 1, 12], var(3), vec![0xFF]].concat())),
        ]);
        let p = decode(&block(&c, &[], &[])).unwrap();
        let ay = Expr::Point(PointRef { index: Some(Box::new(v(3))), ..point(PointKind::Ay, 2) });
        let assign = |value| Stmt::Assign { target: tv(1), value };
        let Expr::Point(mb_reg1) = remote(2, Some(1), PointKind::MbReg, 1) else { unreachable!() };
        assert_eq!(
            stmts(&p),
            vec![
                (10, Stmt::Assign { target: Target::Point(mb_reg1), value: remote(19, Some(1), PointKind::Reg, 2) }),
                (20, Stmt::Start(Target::Point(PointRef { panel: Some(2), ..point(PointKind::Out, 3) }))),
                (30, assign(remote(19, Some(253), PointKind::Reg, 300))),
                (40, assign(remote(260, None, PointKind::Av, 5))),
                (50, assign(remote(70_000, None, PointKind::Ai, 3))),
                (60, assign(ay)),
            ]
        );
    }

    #[test]
    fn bad_blocks_say_where_and_what() {
        let cases: Vec<(Vec<u8>, usize, &str)> = vec![
            (block(&[1, 10, 0, 0x5A], &[], &[]), 5, "expected a statement, found 5A"),
            (
                block(&[1, 10, 0, tok::ASSIGN, 0x9C, 0, 3, 0x9D, 1, 2], &[], &[]),
                10,
                "a number needs 4 bytes, but only 2 are left",
            ),
            (
                block(&[1, 10, 0, tok::ASSIGN, 0x9C, 0, 3, 0x9C, 1, 3, 0x6B], &[], &[]),
                12,
                "6B needs 2 operands, but only 1 precede it",
            ),
            (block(&[1, 10, 0, tok::ASSIGN, 0x9C, 0, 3, 0x9C, 0, 3, 0x9C, 1, 3], &[], &[]), 9, "leaves 2 values"),
            (block(&[1, 10, 0, tok::ASSIGN, 0x9C, 0, 3, 0x3C, 9, 0], &[], &[]), 9, "no time-table entry at offset 9"),
            (block(&[1, 10, 0, tok::ASSIGN, 0x9C, 0, 3, 0x83, 9, 0], &[], &[]), 9, "no local variable at offset 9"),
            (
                block(&[1, 10, 0, tok::ASSIGN, 0x9C, 0, 3, 0xCE, 9, 0], &[], &[]),
                9,
                "MB_BLOCKWRITE (function CE) is not supported",
            ),
            (
                block(&[1, 10, 0, tok::ASSIGN, 0x9C, 0, 0x40], &[], &[]),
                6,
                "point type 64 is not one the program language names",
            ),
            (block(&[1, 10, 0, tok::CALL, 0, 0], &[], &[]), 5, "CALL (statement 2F) is not supported"),
            (block(&[1, 10, 0, tok::IF, 0x9C, 0, 3, 0xFF, 13, 0], &[], &[]), 12, "expected a statement after THEN"),
            (
                block(&[1, 10, 0, tok::END], &[0x99], &[]),
                11,
                "expected the type of a local variable (83..8C), found 99",
            ),
            (vec![4, 0, 1, 10, 0, tok::END, 0xFE, 0, 0, 0, 0, 9], 11, "the length of the time table needs 2 bytes"),
            (
                block(&[[1, 10, 0, tok::ASSIGN, 0x9C, 0, 3].as_slice(), &num(1), &[tok::NOT; 100]].concat(), &[], &[]),
                113,
                "nested deeper than 100",
            ),
            (
                block(&[[1, 10, 0, tok::ASSIGN, 0x9C, 0, 3].as_slice(), &[0x9C, 0, 12].repeat(5)].concat(), &[], &[]),
                21,
                "deeper than 4",
            ),
            (
                block(&[[1, 10, 0].as_slice(), &[tok::IF, 0x9C, 0, 3, 0xFF, 0, 0].repeat(5)].concat(), &[], &[]),
                33,
                "IFs inside THEN / ELSE deeper than 4",
            ),
            (
                block(&[1, 10, 0, tok::END, tok::END], &[], &[]),
                6,
                "expected the next line (01) or the end of the code after line 10, found 17",
            ),
            (vec![4, 0, 1, 10, 0, tok::END], 6, "the block says its code is 4 bytes, but the block ends after 4 bytes"),
        ];
        let mut wrong = Vec::new();
        for (b, offset, what) in cases {
            let e = decode(&b).unwrap_err();
            if !e.message.contains(what) || e.offset != offset {
                wrong.push(format!("{b:02X?}: {e} (expected byte {offset}: {what})"));
            }
            assert_eq!(e.to_string(), format!("program code, byte {}: {}", e.offset, e.message));
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn labels_replace_the_points_the_panel_names() {
        let c = code(&[
            (10, stmt([vec![tok::ASSIGN], var(1), var(2), vec![tok::LOCAL_POINT, 0, 2, 0x6B]].concat())),
            (20, Box::new(|to| [vec![tok::IF], var(2), vec![0xFF], to(END), vec![tok::STOP], var(1)].concat())),
        ]);
        let mut p = decode(&block(&c, &[], &[])).unwrap();
        let label_of = |p: &PointRef| match (p.kind, p.number) {
            (PointKind::Var, 1) => Some("FAN".to_owned()),
            (PointKind::Var, 2) => Some("IN3".to_owned()),
            (PointKind::In, 1) => Some("TIME".to_owned()),
            _ => None,
        };
        apply_labels(&mut p, &label_of);
        let fan = || Target::Label("FAN".to_owned(), Pos::default());
        assert_eq!(
            stmts(&p),
            vec![
                (
                    10,
                    Stmt::Assign { target: fan(), value: bin(BinOp::Add, v(2), Expr::Point(point(PointKind::In, 1))) }
                ),
                (20, Stmt::If { kind: IfKind::Plain, cond: v(2), then: vec![Stmt::Stop(fan())], otherwise: vec![] }),
            ]
        );
    }

    /// A program of every statement the encoder writes, with points of every form.
    fn everything() -> Program {
        let line = |number, stmt| Line { number, stmt, pos: Pos::default() };
        let out = |n| Target::Point(point(PointKind::Out, n));
        let reg = |n| remote(19, Some(253), PointKind::Reg, n);
        let Expr::Point(mb) = remote(2, Some(1), PointKind::MbReg, 70) else { unreachable!() };
        let ay = Expr::Point(PointRef { index: Some(Box::new(v(3))), ..point(PointKind::Ay, 2) });
        Program {
            lines: vec![
                line(10, Stmt::Rem("START".to_owned())),
                line(20, Stmt::For { var: tv(9), from: n(1), to: n(10), step: None }),
                line(30, Stmt::Assign { target: tv(1), value: bin(BinOp::Add, reg(3000), reg(2)) }),
                line(40, Stmt::Next(Some(tv(9)))),
                line(50, Stmt::On { selector: v(1), gosub: false, targets: vec![10, 60] }),
                line(
                    60,
                    Stmt::If {
                        kind: IfKind::Rising,
                        cond: Expr::Call(Func::TimeOn, vec![v(2)]),
                        then: vec![
                            Stmt::Start(out(1)),
                            Stmt::Gosub(100),
                            Stmt::Print(vec![PrintItem::Time, PrintItem::Value(v(1))]),
                        ],
                        otherwise: vec![
                            Stmt::Assign { target: Target::Point(mb), value: Expr::Call(Func::TimeOn, vec![v(2)]) },
                            Stmt::End,
                        ],
                    },
                ),
                line(70, Stmt::Wait(Expr::Time(5))),
                line(
                    80,
                    Stmt::Alarm { left: ay, above: false, right: n(3), hysteresis: n(1), message: "LOW".to_owned() },
                ),
                line(
                    90,
                    Stmt::Dalarm {
                        cond: remote(260, None, PointKind::Av, 5),
                        delay: n(30),
                        message: "LATE".to_owned(),
                    },
                ),
                line(
                    95,
                    Stmt::Assign {
                        target: tv(4),
                        value: bin(
                            BinOp::Mul,
                            remote(70_000, None, PointKind::Ai, 3),
                            Expr::Call(Func::Month(3), vec![]),
                        ),
                    },
                ),
                line(100, Stmt::Other { keyword: "ALARM-AT".to_owned(), text: "1 2".to_owned() }),
                line(110, Stmt::Return),
            ],
        }
    }

    #[test]
    fn encoded_programs_decode_to_themselves() {
        let mut p = everything();
        let b = encode(&p).unwrap();
        // FOR without STEP is written with STEP 1 (T3000's encoder does the same).
        let Stmt::For { step, .. } = &mut p.lines[1].stmt else { unreachable!() };
        *step = Some(n(1));
        assert_eq!(decode(&b).unwrap(), p);
        // TIME-ON(VAR2) twice shares one time-table entry: 3 bytes, FF, state, accumulator.
        let time_len = usize::from(u16::from_le_bytes([b[b.len() - 9 - 2], b[b.len() - 9 - 1]]));
        assert_eq!(time_len, 9);
        assert_eq!(encode(&Program::default()).unwrap(), vec![0, 0]);
    }

    #[test]
    fn the_assembled_blocks_encode_back() {
        let c = code(&[
            (
                10,
                stmt(
                    [vec![tok::ASSIGN], var(1), num(10_000), vec![tok::NEG], var(2), num(1500), vec![0x67, 0x6B]]
                        .concat(),
                ),
            ),
            (
                20,
                Box::new(|to| [vec![tok::IF_RISING], var(1), vec![0xFF, 0], to(30), vec![tok::GOTO], to(10)].concat()),
            ),
            (
                30,
                Box::new(|to| {
                    [vec![tok::IF_FALLING], var(1), vec![0xFF, 0], to(END), vec![tok::STOP, tok::LOCAL_POINT, 2, 1]]
                        .concat()
                }),
            ),
        ]);
        let b = block(&c, &[], &[]);
        assert_eq!(encode(&decode(&b).unwrap()).unwrap(), b);
    }

    #[test]
    fn what_cannot_be_encoded_says_so() {
        let one = |stmt| Program { lines: vec![Line { number: 10, stmt, pos: Pos::default() }] };
        let cases = [
            (one(Stmt::Goto(20)), "line 10: there is no line 20"),
            (one(Stmt::Start(Target::Label("FAN".to_owned(), Pos::default()))), "line 10: FAN is a label"),
            (one(Stmt::Assign { target: tv(1), value: Expr::Local("A".to_owned()) }), "local variable A"),
            (one(Stmt::Next(None)), "NEXT without a FOR"),
            (one(Stmt::For { var: tv(1), from: n(1), to: n(2), step: None }), "FOR without a NEXT"),
            (one(Stmt::Assign { target: tv(0), value: n(1) }), "VAR0 does not exist"),
            (one(Stmt::Assign { target: tv(300), value: n(1) }), "VAR300 is out of range"),
            (one(Stmt::Rem("\u{20AC}".to_owned())), "has characters a panel cannot hold"),
            (one(Stmt::Rem("x".repeat(256))), "a text longer than 255 characters"),
            (
                one(Stmt::Alarm { left: v(110), above: true, right: n(1), hysteresis: n(1), message: String::new() }),
                "the left side of this ALARM is one the panel would misread",
            ),
            (one(Stmt::Other { keyword: "CALL".to_owned(), text: "PRG1".to_owned() }), "CALL cannot be encoded"),
            (
                one(Stmt::Assign { target: tv(1), value: Expr::Call(Func::Abs, vec![]) }),
                "function Abs with 0 arguments",
            ),
            (
                Program {
                    lines: (1..=200)
                        .map(|i| Line { number: i, stmt: Stmt::Rem("x".repeat(20)), pos: Pos::default() })
                        .collect(),
                },
                "a panel holds 2000",
            ),
        ];
        for (p, what) in cases {
            let e = encode(&p).unwrap_err();
            assert!(e.to_string().contains(what), "{e} (expected {what})");
        }
    }

    #[test]
    fn texts_with_line_breaks_become_one_line() {
        let c = code(&[(30, stmt([vec![tok::REM, 9], b"A\r\n40 B=1".to_vec()].concat()))]);
        let mut p = decode(&block(&c, &[], &[])).unwrap();
        assert_eq!(p.lines[0].stmt, Stmt::Rem("A\r\n40 B=1".to_owned()));
        texts_on_one_line(&mut p);
        assert_eq!(p.lines[0].stmt, Stmt::Rem("A  40 B=1".to_owned()));
    }
}
