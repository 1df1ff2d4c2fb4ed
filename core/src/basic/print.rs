//! [`Program`] -> text, in the layout T3000's editor shows decoded programs: spaces around every
//! operator, `MAX ( 0 , 100 - WEIGHT )`, `THEN GOTO 30 ELSE GOTO 80`, clause statements joined by
//! ` , `, times as `HH:MM:SS`, numbers without needless decimals (`1.5`, `20`). Parentheses are
//! written only where the precedence needs them, so [`super::parse::parse`] reads the text back
//! to the same program.

use std::fmt::Write as _;

use super::ast::{BinOp, Expr, IfKind, Milli, PointKind, PointRef, PrintItem, Program, Stmt, Target, UnOp};
use super::lex;

/// The whole program, one line per [`super::ast::Line`], each ending in `\n`.
pub fn print(p: &Program) -> String {
    let mut out = String::new();
    for line in &p.lines {
        let _ = writeln!(out, "{} {}", line.number, stmt(&line.stmt));
    }
    out
}

/// One expression, as it stands on the right of `=`.
pub fn print_expr(e: &Expr) -> String {
    expr(e, LOGIC)
}

/// One statement, without its line number.
pub fn print_stmt(s: &Stmt) -> String {
    stmt(s)
}

fn stmt(s: &Stmt) -> String {
    match s {
        Stmt::Rem(text) if text.is_empty() => "REM".to_string(),
        Stmt::Rem(text) => format!("REM {text}"),
        Stmt::Assign { target: t, value } => format!("{} = {}", target(t), print_expr(value)),
        Stmt::Start(t) => format!("START {}", target(t)),
        Stmt::Stop(t) => format!("STOP {}", target(t)),
        Stmt::Enable(t) => format!("ENABLE {}", target(t)),
        Stmt::Disable(t) => format!("DISABLE {}", target(t)),
        Stmt::Open(t) => format!("OPEN {}", target(t)),
        Stmt::Close(t) => format!("CLOSE {}", target(t)),
        Stmt::Goto(n) => format!("GOTO {n}"),
        Stmt::Gosub(n) => format!("GOSUB {n}"),
        Stmt::Return => "RETURN".to_string(),
        Stmt::End => "END".to_string(),
        Stmt::Clear => "CLEAR".to_string(),
        Stmt::On { selector, gosub, targets } => {
            let targets: Vec<String> = targets.iter().map(u16::to_string).collect();
            let verb = if *gosub { "GOSUB" } else { "GOTO" };
            format!("ON {} {verb} {}", print_expr(selector), targets.join(" , "))
        }
        Stmt::If { kind, cond, then, otherwise } => {
            let word = match kind {
                IfKind::Plain => "IF",
                IfKind::Rising => "IF+",
                IfKind::Falling => "IF-",
            };
            let mut s = format!("{word} {} THEN {}", print_expr(cond), clause(then));
            if !otherwise.is_empty() {
                let _ = write!(s, " ELSE {}", clause(otherwise));
            }
            s
        }
        Stmt::For { var, from, to, step } => {
            let mut s = format!("FOR {} = {} TO {}", target(var), print_expr(from), print_expr(to));
            if let Some(step) = step {
                let _ = write!(s, " STEP {}", print_expr(step));
            }
            s
        }
        Stmt::Next(None) => "NEXT".to_string(),
        Stmt::Next(Some(t)) => format!("NEXT {}", target(t)),
        Stmt::Wait(e) => format!("WAIT {}", print_expr(e)),
        Stmt::Alarm { left, above, right, hysteresis, message } => format!(
            "ALARM {} {} {} , {} , {message}",
            expr(left, SUM),
            if *above { ">" } else { "<" },
            expr(right, SUM),
            print_expr(hysteresis)
        ),
        Stmt::Dalarm { cond, delay, message } => {
            format!("DALARM {} , {} , {message}", print_expr(cond), print_expr(delay))
        }
        Stmt::Print(items) => {
            let items: Vec<String> = items.iter().map(print_item).collect();
            format!("PRINT {}", items.join(" ; "))
        }
        Stmt::OnAlarm(n) => format!("ON-ALARM {n}"),
        Stmt::OnError(n) => format!("ON-ERROR {n}"),
        Stmt::Other { keyword, text } if text.is_empty() => keyword.clone(),
        Stmt::Other { keyword, text } => format!("{keyword} {text}"),
    }
    .trim_end()
    .to_string()
}

fn clause(stmts: &[Stmt]) -> String {
    stmts.iter().map(stmt).collect::<Vec<_>>().join(" , ")
}

fn print_item(item: &PrintItem) -> String {
    match item {
        PrintItem::Text(t) => format!("\"{t}\""),
        PrintItem::Date => "DATE".to_string(),
        PrintItem::Time => "TIME".to_string(),
        PrintItem::UserA => "USER-A".to_string(),
        PrintItem::UserB => "USER-B".to_string(),
        PrintItem::Beep => "BEEP".to_string(),
        PrintItem::Value(e) => print_expr(e),
    }
}

fn target(t: &Target) -> String {
    match t {
        Target::Point(p) => point(p),
        Target::Local(name) | Target::Label(name, _) => name.clone(),
        Target::LocalIndex(name, idx) => indexed(name, idx),
    }
}

fn indexed(name: &str, idx: &[Expr]) -> String {
    let idx: Vec<String> = idx.iter().map(print_expr).collect();
    format!("{name} ( {} )", idx.join(" , "))
}

/// `VAR12`, `2-VAR12`, `19.1.REG2`, `123456AV3`, `AY3[ VAR1 ]`.
fn point(p: &PointRef) -> String {
    let bacnet = matches!(
        p.kind,
        PointKind::Av | PointKind::Ai | PointKind::Ao | PointKind::Bo | PointKind::Bv | PointKind::Bi | PointKind::Msv
    );
    let mut s = match (p.panel, p.sub_panel) {
        (Some(panel), Some(sub)) => format!("{panel}.{sub}."),
        (Some(panel), None) if bacnet => panel.to_string(),
        (Some(panel), None) => format!("{panel}-"),
        // A sub-device without a panel has no text form; the sub-device is written as the panel.
        (None, Some(sub)) => format!("{sub}-"),
        (None, None) => String::new(),
    };
    let _ = write!(s, "{}{}", p.kind.name(), p.number);
    if let Some(idx) = &p.index {
        let _ = write!(s, "[ {} ]", print_expr(idx));
    }
    s
}

// Precedence levels, lowest first (see the parser).
const LOGIC: u8 = 1;
const COMPARE: u8 = 2;
const SUM: u8 = 3;
const PRODUCT: u8 = 4;
const POWER: u8 = 5;
const OPERAND: u8 = 6;

fn level(op: BinOp) -> u8 {
    use BinOp::*;
    match op {
        And | Or | Xor => LOGIC,
        Eq | Ne | Lt | Gt | Le | Ge => COMPARE,
        Add | Sub => SUM,
        Mul | Div | IntDiv | Mod | BitAnd | BitOr => PRODUCT,
        Pow => POWER,
    }
}

fn symbol(op: BinOp) -> &'static str {
    use BinOp::*;
    match op {
        And => "AND",
        Or => "OR",
        Xor => "XOR",
        Eq => "=",
        Ne => "<>",
        Lt => "<",
        Gt => ">",
        Le => "<=",
        Ge => ">=",
        Add => "+",
        Sub => "-",
        Mul => "*",
        Div => "/",
        IntDiv => "\\",
        Mod => "MOD",
        BitAnd => "&",
        BitOr => "|",
        Pow => "^",
    }
}

fn expr_level(e: &Expr) -> u8 {
    match e {
        Expr::Binary(op, ..) => level(*op),
        _ => OPERAND,
    }
}

/// `e` where an expression of at least level `min` may stand; in parentheses otherwise.
fn expr(e: &Expr, min: u8) -> String {
    let s = bare(e);
    if expr_level(e) < min { format!("( {s} )") } else { s }
}

fn bare(e: &Expr) -> String {
    match e {
        Expr::Num(m) => number(*m),
        Expr::Time(secs) => time(*secs),
        Expr::Point(p) => point(p),
        Expr::Local(name) | Expr::Label(name, _) => name.clone(),
        Expr::LocalIndex(name, idx) => indexed(name, idx),
        Expr::Unary(UnOp::Neg, x) => format!("-{}", expr(x, OPERAND)),
        Expr::Unary(UnOp::Not, x) => format!("NOT {}", expr(x, OPERAND)),
        Expr::Binary(op, l, r) => {
            let at = level(*op);
            // AND / OR / XOR group to the right, + - * / ^ to the left; a comparison holds no
            // other comparison without parentheses.
            let (left_min, right_min) = match at {
                LOGIC => (LOGIC + 1, LOGIC),
                COMPARE => (COMPARE + 1, COMPARE + 1),
                _ => (at, at + 1),
            };
            format!("{} {} {}", expr(l, left_min), symbol(*op), expr(r, right_min))
        }
        Expr::Call(f, args) if args.is_empty() => lex::func_name(*f).to_string(),
        Expr::Call(f, args) => {
            let args: Vec<String> = args.iter().map(print_expr).collect();
            format!("{} ( {} )", lex::func_name(*f), args.join(" , "))
        }
    }
}

/// `20`, `1.5`, `-0.001`.
fn number(m: Milli) -> String {
    let v = i64::from(m.0);
    let sign = if v < 0 { "-" } else { "" };
    let (int, frac) = (v.abs() / 1000, v.abs() % 1000);
    if frac == 0 {
        format!("{sign}{int}")
    } else {
        let frac = format!("{frac:03}");
        format!("{sign}{int}.{}", frac.trim_end_matches('0'))
    }
}

/// `HH:MM:SS` (hours past 99 take more digits).
fn time(secs: u32) -> String {
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_times() {
        assert_eq!(number(Milli(1500)), "1.5");
        assert_eq!(number(Milli(20000)), "20");
        assert_eq!(number(Milli(-1)), "-0.001");
        assert_eq!(number(Milli(i32::MIN)), "-2147483.648");
        assert_eq!(time(60), "00:01:00");
        assert_eq!(time(30610), "08:30:10");
    }
}
