//! A Control BASIC program as a tree.
//!
//! Numbers are kept as the controller keeps them: fixed point, thousandths in an `i32`
//! ([`Milli`]), so `1.5` is `1500` and a decoded program prints back exactly what the panel holds.
//! Positions ([`Pos`]) say where a piece was in the text, for error messages; they never take part
//! in equality, so a program parsed from text equals the same program decoded from byte code.

use std::fmt;

/// A value in thousandths, as the controller computes with it (`1.5` is `Milli(1500)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Milli(pub i32);

/// Where something is in the program text: 1-based line and column (in characters). Two
/// positions are always equal, so positions never make two programs differ.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
}

impl PartialEq for Pos {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for Pos {}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// A whole program: its numbered lines, in the order written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Program {
    pub lines: Vec<Line>,
}

/// One numbered line (`10 IF ... THEN ...`). A line holds one statement; a THEN or ELSE clause
/// may hold several, separated by `,`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The BASIC line number (what GOTO names).
    pub number: u16,
    pub stmt: Stmt,
    /// Where the line starts in the text.
    pub pos: Pos,
}

/// The kinds of IF: plain, `IF+` (runs its THEN once when the condition turns true) and `IF-`
/// (once when it turns false).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IfKind {
    Plain,
    Rising,
    Falling,
}

/// A statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stmt {
    /// `REM text` (the text as written, without the keyword and the one space after it).
    Rem(String),
    /// `target = value` (`LET` optional).
    Assign {
        target: Target,
        value: Expr,
    },
    /// `START point` (writes 1, or turns a program on).
    Start(Target),
    /// `STOP point` (writes 0, or turns a program off).
    Stop(Target),
    /// `ENABLE` / `DISABLE` / `OPEN` / `CLOSE` of a point: like START / STOP.
    Enable(Target),
    Disable(Target),
    Open(Target),
    Close(Target),
    /// `GOTO n`; also a bare line number after THEN or ELSE.
    Goto(u16),
    /// `GOSUB n`.
    Gosub(u16),
    Return,
    End,
    /// `CLEAR`: clears the local variables.
    Clear,
    /// `ON expr GOTO a, b, ...` or `ON expr GOSUB a, b, ...`.
    On {
        selector: Expr,
        gosub: bool,
        targets: Vec<u16>,
    },
    /// `IF cond THEN a [ELSE b]`, `IF+`, `IF-`. `then` and `otherwise` hold one or more
    /// statements (a bare line number is a `Goto`); `otherwise` is empty without ELSE.
    If {
        kind: IfKind,
        cond: Expr,
        then: Vec<Stmt>,
        otherwise: Vec<Stmt>,
    },
    /// `FOR var = from TO to [STEP step]`.
    For {
        var: Target,
        from: Expr,
        to: Expr,
        step: Option<Expr>,
    },
    /// `NEXT [var]`.
    Next(Option<Target>),
    /// `WAIT seconds` (an expression; a time literal `0:00:10` is ten seconds).
    Wait(Expr),
    /// `ALARM left < right, hysteresis, message` (or `>`): raised when the comparison holds,
    /// cleared once it is past `right` by `hysteresis` the other way.
    Alarm {
        left: Expr,
        above: bool,
        right: Expr,
        hysteresis: Expr,
        message: String,
    },
    /// `DALARM cond, delay seconds, message`: raised once `cond` held for `delay` seconds.
    Dalarm {
        cond: Expr,
        delay: Expr,
        message: String,
    },
    /// `PRINT item; item ...`.
    Print(Vec<PrintItem>),
    /// `ON-ALARM n` / `ON-ERROR n`: where to go when an alarm is raised / an error happens.
    OnAlarm(u16),
    OnError(u16),
    /// `HANGUP`, `PHONE text`, `SET-PRINTER x`, `RUN-MACRO n`, `ALARM-AT ...`, `PRINT-AT ...`,
    /// `REMOTE-GET` / `REMOTE-SET`, `CALL PRGn ...`, `DIM` / `INTEGER` / ... declarations: kept
    /// with their words as written so they print back; the server does not act on them (nor does
    /// the controller's firmware on most of them).
    Other {
        keyword: String,
        text: String,
    },
}

/// An item of PRINT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrintItem {
    Text(String),
    Date,
    Time,
    UserA,
    UserB,
    Beep,
    Value(Expr),
}

/// What an assignment, START / STOP or FOR writes to: a point or a local variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Point(PointRef),
    /// A local variable (`A`..`Z`, or a declared name).
    Local(String),
    /// An element of a local array: `name(i)` or `name(i, j)`.
    LocalIndex(String, Vec<Expr>),
    /// A label: the name of a point given on the panel (`WH-SP`), resolved against the program's
    /// device when the program is bound. Which point it names is not known from the text alone.
    Label(String, Pos),
}

/// The kinds of points a program names (T3000's point types, with the names its text uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PointKind {
    Out,
    In,
    Var,
    /// A PID controller (`PID3`; also written `CON3`).
    Pid,
    /// A weekly routine (`SCH2`; also `WR2`).
    Sch,
    /// An annual routine (`HOL1`; also `AR1`).
    Hol,
    Prg,
    Tbl,
    Dmon,
    Amon,
    Grp,
    /// A point array element: `AY3[idx]` (index in `PointRef::index`).
    Ay,
    /// A variable register of another Modbus device, shown as `REGn` (`19.1.REG2`).
    Reg,
    /// Modbus objects of a sub-device, numbered as on the wire (0-based).
    MbCoil,
    MbDisInput,
    MbInputReg,
    MbReg,
    /// BACnet objects, numbered as on the wire.
    Av,
    Ai,
    Ao,
    Bo,
    Bv,
    Bi,
    Msv,
}

impl PointKind {
    /// Every kind, with the name the text uses (the first name is the one printed; later names
    /// are accepted aliases).
    pub const NAMES: &'static [(PointKind, &'static [&'static str])] = &[
        (PointKind::Out, &["OUT"]),
        (PointKind::In, &["IN"]),
        (PointKind::Var, &["VAR"]),
        (PointKind::Pid, &["PID", "CON"]),
        (PointKind::Sch, &["SCH", "WR"]),
        (PointKind::Hol, &["HOL", "AR"]),
        (PointKind::Prg, &["PRG"]),
        (PointKind::Tbl, &["TBL"]),
        (PointKind::Dmon, &["DMON"]),
        (PointKind::Amon, &["AMON"]),
        (PointKind::Grp, &["GRP"]),
        (PointKind::Ay, &["AY"]),
        (PointKind::Reg, &["REG"]),
        (PointKind::MbCoil, &["MB_COIL"]),
        (PointKind::MbDisInput, &["MB_DISINPUT"]),
        (PointKind::MbInputReg, &["MB_INPUTREG"]),
        (PointKind::MbReg, &["MB_REG"]),
        (PointKind::Av, &["AV"]),
        (PointKind::Ai, &["AI"]),
        (PointKind::Ao, &["AO"]),
        (PointKind::Bo, &["BO"]),
        (PointKind::Bv, &["BV"]),
        (PointKind::Bi, &["BI"]),
        (PointKind::Msv, &["MSV"]),
    ];

    /// The name the text uses (`VAR`).
    pub fn name(self) -> &'static str {
        Self::NAMES.iter().find(|(k, _)| *k == self).map(|(_, n)| n[0]).unwrap_or("?")
    }

    /// The kind a name (or alias) stands for, upper case (`CON` -> `Pid`).
    pub fn from_name(name: &str) -> Option<PointKind> {
        Self::NAMES.iter().find(|(_, names)| names.contains(&name)).map(|(k, _)| *k)
    }
}

/// A point named by type and number: `VAR12` (this panel), `2-VAR12` / `2.VAR12` (panel 2),
/// `19.1.REG2` (panel 19, sub-device 1), `AY3[VAR1]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointRef {
    /// The panel, when the text names one (`2-VAR12`); `None`: the program's own panel.
    pub panel: Option<u32>,
    /// The sub-device (Modbus id), when named (`19.1.REG2`).
    pub sub_panel: Option<u32>,
    pub kind: PointKind,
    /// The number as written (`VAR12` is 12; Modbus and BACnet objects as on the wire).
    pub number: u32,
    /// The element of a point array (`AY3[i]`).
    pub index: Option<Box<Expr>>,
    pub pos: Pos,
}

/// Unary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnOp {
    Neg,
    Not,
}

/// Binary operators, by precedence (lowest first): `AND OR XOR`; comparisons; `+ -`;
/// `* / \ MOD & |`; `^`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinOp {
    And,
    Or,
    Xor,
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    /// `\`: the integer part of the quotient.
    IntDiv,
    Mod,
    /// `&` and `|`: bitwise, on integer parts.
    BitAnd,
    BitOr,
    Pow,
}

/// Built-in functions and named constants (`SUN`, `JAN`, ...), as the text spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Func {
    Abs,
    Avg,
    Max,
    Min,
    Int,
    Sqr,
    /// `LN`, and `LN-1` (e to the power).
    Ln,
    Exp,
    Sin,
    Cos,
    Time,
    TimeOn,
    TimeOff,
    Interval,
    Dow,
    Dom,
    Doy,
    Moy,
    Scans,
    PowerLoss,
    Status,
    Tbl,
    WrOn,
    WrOff,
    Unack,
    UserA,
    UserB,
    Runtime,
    Com1,
    PidProp,
    PidRate,
    PidReset,
    SensorOn,
    SensorOff,
    /// A day constant: 0 Sunday .. 6 Saturday.
    Day(u8),
    /// A month constant: 1 January .. 12 December.
    Month(u8),
}

/// An expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// A number, in thousandths.
    Num(Milli),
    /// A time of day or duration written `H:MM[:SS]`, in seconds.
    Time(u32),
    Point(PointRef),
    Local(String),
    LocalIndex(String, Vec<Expr>),
    /// A label (see [`Target::Label`]).
    Label(String, Pos),
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// A function call or named constant (no arguments). Parentheses are not kept: the printer
    /// writes those the precedence needs.
    Call(Func, Vec<Expr>),
}
