//! Program text as T3000 writes it -> [`Program`].
//!
//! What is read (facts from T3000's grammar, its encoder and real printouts):
//! - One statement per numbered line; line ends CR LF, LF or CR; a UTF-8 byte order mark, blank
//!   lines, trailing spaces and a trailing NUL are ignored. Line numbers go from 1 to 65535. They
//!   may repeat or go down: T3000's own printouts hold such programs (the 1998 panel printout lists
//!   line 20 and line 400 twice), and the controller keeps lines in the order written.
//! - Words are upper-cased (operators type lower case; T3000's editor upper-cases). `+ - / . & |
//!   _` are part of a word (see `lex.rs`), so `A-B` is one name and `A - B` a subtraction.
//! - Precedence, lowest first: `AND OR XOR` (one level, right to left: `a AND b OR c` is
//!   `a AND (b OR c)`), one comparison `= <> < > <= >=`, `+ -`, `* / \ MOD & |`, `^`; `NOT` and
//!   unary `-` bind to the operand right after them. `-1` is unary minus applied to `1`, as the
//!   controller's byte code holds it.
//! - Numbers become thousandths as the encoder makes them (`x * 1000 + 0.1`, truncated).
//! - Points: `VAR12`, with a panel `2-VAR12` / `2.VAR12` / `2VAR12`, with a panel and a device of
//!   its sub-network `19.1.REG2` / `1-252-VAR102` (a VAR there is a REG, as T3000 prints it),
//!   BACnet objects of another device `123456AV3`, point arrays `AY3[i]`.
//! - A name that is no keyword, function, point or local variable is a label (a point's name on
//!   the panel), resolved when the program is bound to its device.
//!
//! Errors stop at the first one and name its line, column and what was expected.

use std::collections::HashSet;
use std::fmt;

use super::ast::{
    BinOp, Expr, Func, IfKind, Line, Milli, PointKind, PointRef, Pos, PrintItem, Program, Stmt, Target, UnOp,
};
use super::lex::{self, Arity, Tok, Token};

/// Why a text is not a program: where (1-based line and column, in characters) and what was
/// expected and found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub pos: Pos,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.pos, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Reads a whole program.
pub fn parse(text: &str) -> Result<Program, ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<Vec<char>> = split_lines(text).into_iter().map(|l| trim_end(l.chars().collect())).collect();
    let locals = declared_locals(&lines);
    let mut program = Program::default();
    for (n, chars) in lines.iter().enumerate() {
        if chars.iter().all(|&c| lex::is_space(c)) {
            continue;
        }
        let line_no = u32::try_from(n + 1).unwrap_or(u32::MAX);
        let mut p = LineParser { toks: lex::tokenize(chars), at: 0, line: line_no, chars, locals: &locals, depth: 0 };
        program.lines.push(p.line()?);
    }
    Ok(program)
}

/// Whether `name`, written in a program, reads back as the label `name` (and not as a keyword, a
/// function, a point, a local variable, a number or several words): what a decoder checks before
/// it shows a point by its panel label.
pub fn is_label(name: &str) -> bool {
    let Ok(p) = parse(&format!("1 {name} = 0")) else {
        return false;
    };
    matches!(&p.lines[..], [Line { stmt: Stmt::Assign { target: Target::Label(l, _), .. }, .. }] if l == name)
}

/// A hint for a label no point of the device has, when the name looks like something else:
/// `SUN` -> "for the day, T3000 writes SUNDAY". For the binder's "unknown label" message.
pub fn unknown_label_hint(name: &str) -> Option<String> {
    let (_, long) = lex::SHORT_DAYS_AND_MONTHS.iter().find(|(short, _)| *short == name)?;
    let what = if lex::func_by_name(long).is_some_and(|(f, _)| matches!(f, Func::Day(_))) { "day" } else { "month" };
    Some(format!("for the {what}, T3000 writes {long}"))
}

/// Splits at CR LF, LF or CR.
fn split_lines(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            b'\r' => {
                out.push(&text[start..i]);
                if bytes.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    out.push(&text[start..]);
    out
}

fn trim_end(mut chars: Vec<char>) -> Vec<char> {
    while chars.last().is_some_and(|&c| lex::is_space(c)) {
        chars.pop();
    }
    chars
}

/// Names declared as local variables anywhere in the program (`INTEGER COUNT, I`, `DIM T(10)`):
/// they are locals wherever they appear, not labels.
fn declared_locals(lines: &[Vec<char>]) -> HashSet<String> {
    let mut names = HashSet::new();
    for chars in lines {
        let toks = lex::tokenize(chars);
        let (Some(Tok::Word(number)), Some(Tok::Word(kw))) =
            (toks.first().map(|t| &t.kind), toks.get(1).map(|t| &t.kind))
        else {
            continue;
        };
        if !number.chars().all(|c| c.is_ascii_digit()) || !lex::DECLARATIONS.contains(&kw.as_str()) {
            continue;
        }
        let mut depth = 0usize;
        for t in &toks[2..] {
            match &t.kind {
                Tok::Op("(") | Tok::Op("[") => depth += 1,
                Tok::Op(")") | Tok::Op("]") => depth = depth.saturating_sub(1),
                Tok::Word(w) if depth == 0 && is_local_name(w) => {
                    names.insert(w.clone());
                }
                _ => {}
            }
        }
    }
    names
}

/// Whether a word can name a local variable: letters, digits and `_`, starting with a letter,
/// and not reserved.
fn is_local_name(w: &str) -> bool {
    w.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !lex::is_reserved(w)
        && point_of_word(w).is_none()
}

/// The lowest line number and the highest.
const LINE_NUMBERS: std::ops::RangeInclusive<u32> = 1..=65535;

/// What a word stands for in an expression or as a target.
enum Name {
    Number(Milli),
    Point(PointRef),
    Local(String),
    Label(String),
    Func(Func, Arity),
}

/// Where a statement stands: alone on its line, or in a THEN or ELSE clause.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    Line,
    Then,
    Else,
}

struct LineParser<'a> {
    toks: Vec<Token>,
    at: usize,
    line: u32,
    chars: &'a [char],
    locals: &'a HashSet<String>,
    /// How deep the expression being read nests (see [`MAX_DEPTH`]).
    depth: usize,
}

/// The deepest an expression may nest (operators inside operators, parentheses, NOT and unary
/// minus): far beyond real programs, and it keeps reading, printing and running a program within
/// a bounded stack whatever the input.
const MAX_DEPTH: usize = 120;

type Res<T> = Result<T, ParseError>;

impl LineParser<'_> {
    // ---- tokens ----

    fn peek(&self) -> &Token {
        &self.toks[self.at.min(self.toks.len() - 1)]
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        if self.at < self.toks.len() - 1 {
            self.at += 1;
        }
        t
    }

    fn pos_of(&self, t: &Token) -> Pos {
        Pos { line: self.line, column: u32::try_from(t.start + 1).unwrap_or(u32::MAX) }
    }

    fn error_at(&self, t: &Token, message: String) -> ParseError {
        ParseError { pos: self.pos_of(t), message }
    }

    /// "expected X, found Y" at the next token.
    fn expected(&self, what: &str) -> ParseError {
        let t = self.peek();
        if let Tok::Bad(why) = &t.kind {
            return self.error_at(t, why.clone());
        }
        self.error_at(t, format!("expected {what}, found {}", describe(t)))
    }

    fn is_word(&self, w: &str) -> bool {
        matches!(&self.peek().kind, Tok::Word(x) if x == w)
    }

    fn is_op(&self, op: &str) -> bool {
        matches!(&self.peek().kind, Tok::Op(x) if *x == op)
    }

    fn eat_op(&mut self, op: &str) -> bool {
        let yes = self.is_op(op);
        if yes {
            self.next();
        }
        yes
    }

    fn expect_op(&mut self, op: &str, what: &str) -> Res<()> {
        if self.eat_op(op) { Ok(()) } else { Err(self.expected(what)) }
    }

    fn at_end(&self) -> bool {
        matches!(self.peek().kind, Tok::End)
    }

    /// The text after token `t` as written, white space around it dropped: up to the end of the
    /// line, or in a THEN clause up to the word ELSE (`IF A THEN HANGUP ELSE GOTO 10`). The text
    /// may hold anything (quotes too), so ELSE is looked for in the characters, and the line is
    /// read on from there.
    fn rest_after(&mut self, t: &Token, place: Place) -> String {
        let stop = match place {
            Place::Then => self.word_else_after(t.end),
            Place::Line | Place::Else => None,
        };
        let end = stop.unwrap_or(self.chars.len());
        self.toks = lex::tokenize_from(self.chars, end);
        self.at = 0;
        let text: String = self.chars[t.end.min(end)..end].iter().collect();
        text.trim_matches(lex::is_space).to_string()
    }

    /// Where the first word ELSE (any case) starts at or after character `from`.
    fn word_else_after(&self, from: usize) -> Option<usize> {
        let c = self.chars;
        let boundary = |k: Option<&char>| k.is_none_or(|&ch| lex::is_space(ch) || lex::ends_word(ch));
        (from..c.len().saturating_sub(3)).find(|&k| {
            c[k..k + 4].iter().map(|ch| ch.to_ascii_uppercase()).eq("ELSE".chars())
                && (k == from || boundary(c.get(k - 1)))
                && boundary(c.get(k + 4))
        })
    }

    // ---- lines and statements ----

    fn line(&mut self) -> Res<Line> {
        let first = self.next();
        let number = match &first.kind {
            Tok::Word(w) if w.chars().all(|c| c.is_ascii_digit()) => self.line_number(&first, w)?,
            Tok::Bad(why) => return Err(self.error_at(&first, why.clone())),
            _ => {
                return Err(self
                    .error_at(&first, format!("a line must start with its line number, found {}", describe(&first))));
            }
        };
        let pos = self.pos_of(&first);
        let stmt = self.statement(Place::Line)?;
        if self.is_word("REM") {
            return Err(self.expected("the end of the line (a REM takes a line of its own)"));
        }
        if !self.at_end() {
            return Err(self.expected("the end of the line"));
        }
        Ok(Line { number, stmt, pos })
    }

    /// A line number (`GOTO 30`, `THEN 30`, the number a line starts with).
    fn line_number(&self, t: &Token, digits: &str) -> Res<u16> {
        match digits.parse::<u32>() {
            Ok(n) if LINE_NUMBERS.contains(&n) => Ok(n as u16),
            _ => {
                Err(self.error_at(t, format!("line number {digits} is out of range: line numbers go from 1 to 65535")))
            }
        }
    }

    fn expect_line_number(&mut self, after: &str) -> Res<u16> {
        let t = self.peek().clone();
        match &t.kind {
            Tok::Word(w) if w.chars().all(|c| c.is_ascii_digit()) => {
                self.next();
                self.line_number(&t, w)
            }
            _ => Err(self.expected(&format!("a line number after {after}"))),
        }
    }

    fn statement(&mut self, place: Place) -> Res<Stmt> {
        let t = self.peek().clone();
        let word = match &t.kind {
            Tok::Word(w) => w.clone(),
            _ => return Err(self.expected("a statement")),
        };
        if word.chars().all(|c| c.is_ascii_digit()) {
            return Err(self.expected("a statement"));
        }
        if word == "REM" {
            self.next();
            return Ok(Stmt::Rem(self.rem_text(&t)));
        }
        if let Some(kw) = lex::other_statement(&word) {
            self.next();
            let text = self.rest_after(&t, place);
            return Ok(Stmt::Other { keyword: kw.to_string(), text });
        }
        let stmt = match word.as_str() {
            "LET" => {
                self.next();
                self.assignment("LET")?
            }
            "START" | "STOP" | "ENABLE" | "DISABLE" | "OPEN" | "CLOSE" => {
                self.next();
                let target = self.target(&word)?;
                match word.as_str() {
                    "START" => Stmt::Start(target),
                    "STOP" => Stmt::Stop(target),
                    "ENABLE" => Stmt::Enable(target),
                    "DISABLE" => Stmt::Disable(target),
                    "OPEN" => Stmt::Open(target),
                    _ => Stmt::Close(target),
                }
            }
            "GOTO" | "GOSUB" | "ON-ALARM" | "ON_ALARM" | "ON-ERROR" | "ON_ERROR" => {
                self.next();
                let n = self.expect_line_number(&word)?;
                match word.as_str() {
                    "GOTO" => Stmt::Goto(n),
                    "GOSUB" => Stmt::Gosub(n),
                    "ON-ALARM" | "ON_ALARM" => Stmt::OnAlarm(n),
                    _ => Stmt::OnError(n),
                }
            }
            "RETURN" => {
                self.next();
                Stmt::Return
            }
            "END" => {
                self.next();
                Stmt::End
            }
            "CLEAR" => {
                self.next();
                Stmt::Clear
            }
            "ON" => {
                self.next();
                self.on()?
            }
            "IF" | "IF+" | "IF-" => {
                if place != Place::Line {
                    return Err(self.error_at(
                        &t,
                        format!("expected a statement, found {word}: an IF cannot stand in a THEN or ELSE clause"),
                    ));
                }
                self.next();
                let kind = match word.as_str() {
                    "IF" => IfKind::Plain,
                    "IF+" => IfKind::Rising,
                    _ => IfKind::Falling,
                };
                self.if_statement(kind)?
            }
            "FOR" => {
                self.next();
                self.for_statement()?
            }
            "NEXT" => {
                self.next();
                if self.at_end() || self.is_word("ELSE") || self.is_op(",") {
                    Stmt::Next(None)
                } else {
                    Stmt::Next(Some(self.target("NEXT")?))
                }
            }
            "WAIT" => {
                self.next();
                Stmt::Wait(self.expr()?)
            }
            "ALARM" => {
                self.next();
                self.alarm(place)?
            }
            "DALARM" => {
                self.next();
                self.dalarm(place)?
            }
            "PRINT" => {
                self.next();
                self.print()?
            }
            "THEN" | "ELSE" | "TO" | "STEP" | "MOD" | "AND" | "OR" | "XOR" | "NOT" => {
                return Err(self.expected("a statement"));
            }
            _ => self.assignment("")?,
        };
        Ok(stmt)
    }

    /// The text of a REM: as written, after the keyword and the one space that follows it.
    fn rem_text(&mut self, rem: &Token) -> String {
        let mut i = rem.end;
        if self.chars.get(i).is_some_and(|&c| c == ' ' || c == '\t') {
            i += 1;
        }
        self.at = self.toks.len() - 1;
        self.chars[i..].iter().collect()
    }

    /// `target = value`; `after` is the keyword before it (`LET`), if any.
    fn assignment(&mut self, after: &str) -> Res<Stmt> {
        let target = self.target(after)?;
        if !self.eat_op("=") {
            return Err(self.expected("= after the name assigned to"));
        }
        let value = self.expr()?;
        Ok(Stmt::Assign { target, value })
    }

    /// What a statement writes to: a point, a local variable or a label.
    fn target(&mut self, after: &str) -> Res<Target> {
        let what =
            if after.is_empty() { "a statement".to_string() } else { format!("a point or variable after {after}") };
        let t = self.peek().clone();
        let Tok::Word(w) = &t.kind else {
            return Err(self.expected(&what));
        };
        if w.chars().all(|c| c.is_ascii_digit()) || lex::KEYWORDS.contains(&w.as_str()) {
            return Err(self.expected(&what));
        }
        self.next();
        match self.name(&t, w)? {
            Name::Point(p) => Ok(Target::Point(p)),
            Name::Label(l) => Ok(Target::Label(l, self.pos_of(&t))),
            Name::Local(l) => {
                if self.is_op("(") {
                    let idx = self.local_index(&l)?;
                    Ok(Target::LocalIndex(l, idx))
                } else {
                    Ok(Target::Local(l))
                }
            }
            Name::Func(..) => Err(self.error_at(&t, format!("{} is a function: it cannot be written to", t.raw))),
            Name::Number(_) => Err(self.expected(&what)),
        }
    }

    fn on(&mut self) -> Res<Stmt> {
        let selector = self.expr()?;
        let gosub = if self.is_word("GOTO") {
            false
        } else if self.is_word("GOSUB") {
            true
        } else {
            return Err(self.expected("GOTO or GOSUB after the ON expression"));
        };
        self.next();
        let mut targets = vec![self.expect_line_number(if gosub { "GOSUB" } else { "GOTO" })?];
        // In a clause a `,` may also start the next statement: the list goes on while a line
        // number follows the comma.
        while self.is_op(",")
            && matches!(&self.toks.get(self.at + 1).map(|t| &t.kind), Some(Tok::Word(w)) if w.chars().all(|c| c.is_ascii_digit()))
        {
            self.next();
            targets.push(self.expect_line_number(",")?);
        }
        Ok(Stmt::On { selector, gosub, targets })
    }

    fn if_statement(&mut self, kind: IfKind) -> Res<Stmt> {
        let cond = self.expr()?;
        if !self.is_word("THEN") {
            return Err(self.expected("THEN after the IF condition"));
        }
        self.next();
        let then = self.clause("THEN")?;
        let otherwise = if self.is_word("ELSE") {
            self.next();
            self.clause("ELSE")?
        } else {
            Vec::new()
        };
        Ok(Stmt::If { kind, cond, then, otherwise })
    }

    /// A THEN or ELSE clause: a bare line number (a GOTO), or statements separated by `,`.
    fn clause(&mut self, after: &str) -> Res<Vec<Stmt>> {
        if let Tok::Word(w) = self.peek().kind.clone()
            && w.chars().all(|c| c.is_ascii_digit())
        {
            let t = self.next();
            return Ok(vec![Stmt::Goto(self.line_number(&t, &w)?)]);
        }
        if self.at_end() || self.is_word("ELSE") {
            return Err(self.expected(&format!("a statement or a line number after {after}")));
        }
        let place = if after == "THEN" { Place::Then } else { Place::Else };
        let mut stmts = vec![self.statement(place)?];
        while self.eat_op(",") {
            stmts.push(self.statement(place)?);
        }
        if !(self.at_end() || after == "THEN" && self.is_word("ELSE")) {
            let what =
                if after == "THEN" { "ELSE, a comma or the end of the line" } else { "a comma or the end of the line" };
            return Err(self.expected(what));
        }
        Ok(stmts)
    }

    fn for_statement(&mut self) -> Res<Stmt> {
        let var = self.target("FOR")?;
        self.expect_op("=", "= after the FOR variable")?;
        let from = self.expr()?;
        if !self.is_word("TO") {
            return Err(self.expected("TO after the FOR start value"));
        }
        self.next();
        let to = self.expr()?;
        let step = if self.is_word("STEP") {
            self.next();
            Some(self.expr()?)
        } else {
            None
        };
        Ok(Stmt::For { var, from, to, step })
    }

    fn alarm(&mut self, place: Place) -> Res<Stmt> {
        let left = self.sum()?;
        let above = if self.eat_op(">") {
            true
        } else if self.eat_op("<") {
            false
        } else {
            return Err(self.expected("< or > in the ALARM condition"));
        };
        let right = self.sum()?;
        self.expect_op(",", "a comma and the hysteresis after the ALARM condition")?;
        let hysteresis = self.expr()?;
        let comma = self.peek().clone();
        self.expect_op(",", "a comma and the message after the ALARM hysteresis")?;
        let message = self.rest_after(&comma, place);
        Ok(Stmt::Alarm { left, above, right, hysteresis, message })
    }

    fn dalarm(&mut self, place: Place) -> Res<Stmt> {
        let cond = self.expr()?;
        self.expect_op(",", "a comma and the delay after the DALARM condition")?;
        let delay = self.expr()?;
        let comma = self.peek().clone();
        self.expect_op(",", "a comma and the message after the DALARM delay")?;
        let message = self.rest_after(&comma, place);
        Ok(Stmt::Dalarm { cond, delay, message })
    }

    fn print(&mut self) -> Res<Stmt> {
        let mut items = Vec::new();
        loop {
            let t = self.peek().clone();
            // DATE, TIME, USER-A, USER-B and BEEP are print items when they stand alone.
            let alone = match self.toks.get(self.at + 1).map(|n| &n.kind) {
                Some(Tok::Op(";") | Tok::Op(",") | Tok::End) => true,
                Some(Tok::Word(w)) => w == "ELSE",
                _ => false,
            };
            let special = match &t.kind {
                Tok::Str(s) => Some(PrintItem::Text(s.clone())),
                Tok::Word(w) if alone => match w.as_str() {
                    "DATE" => Some(PrintItem::Date),
                    "TIME" => Some(PrintItem::Time),
                    "USER-A" | "USER_A" => Some(PrintItem::UserA),
                    "USER-B" | "USER_B" => Some(PrintItem::UserB),
                    "BEEP" => Some(PrintItem::Beep),
                    _ => None,
                },
                _ => None,
            };
            match special {
                Some(item) => {
                    self.next();
                    items.push(item);
                }
                None => items.push(PrintItem::Value(self.expr()?)),
            }
            if !self.eat_op(";") {
                break;
            }
        }
        Ok(Stmt::Print(items))
    }

    // ---- expressions ----

    /// One level deeper into the expression being read.
    fn deeper(&mut self) -> Res<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error_at(
                self.peek(),
                format!("this expression nests more than {MAX_DEPTH} operations deep: split it over several lines"),
            ));
        }
        Ok(())
    }

    /// A whole expression: the logic level, `a AND b OR c` read as `a AND (b OR c)`.
    fn expr(&mut self) -> Res<Expr> {
        let base = self.depth;
        self.deeper()?;
        let e = self.logic()?;
        self.depth = base;
        Ok(e)
    }

    fn logic(&mut self) -> Res<Expr> {
        let left = self.comparison()?;
        let op = match &self.peek().kind {
            Tok::Word(w) if w == "AND" => BinOp::And,
            Tok::Word(w) if w == "OR" => BinOp::Or,
            Tok::Word(w) if w == "XOR" => BinOp::Xor,
            _ => return Ok(left),
        };
        self.next();
        let right = self.expr()?;
        Ok(Expr::Binary(op, Box::new(left), Box::new(right)))
    }

    /// One comparison at most (`a < b`, never `a < b < c`).
    fn comparison(&mut self) -> Res<Expr> {
        let left = self.sum()?;
        let op = match &self.peek().kind {
            Tok::Op("=") => BinOp::Eq,
            Tok::Op("<>") => BinOp::Ne,
            Tok::Op("<") => BinOp::Lt,
            Tok::Op(">") => BinOp::Gt,
            Tok::Op("<=") => BinOp::Le,
            Tok::Op(">=") => BinOp::Ge,
            _ => return Ok(left),
        };
        self.next();
        let base = self.depth;
        self.deeper()?;
        let right = self.sum()?;
        self.depth = base;
        Ok(Expr::Binary(op, Box::new(left), Box::new(right)))
    }

    fn sum(&mut self) -> Res<Expr> {
        let base = self.depth;
        let mut left = self.product()?;
        loop {
            let op = match &self.peek().kind {
                Tok::Op("+") => BinOp::Add,
                Tok::Op("-") => BinOp::Sub,
                _ => {
                    self.depth = base;
                    return Ok(left);
                }
            };
            self.next();
            self.deeper()?;
            let right = self.product()?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
    }

    fn product(&mut self) -> Res<Expr> {
        let base = self.depth;
        let mut left = self.power()?;
        loop {
            let op = match &self.peek().kind {
                Tok::Op("*") => BinOp::Mul,
                Tok::Op("/") => BinOp::Div,
                Tok::Op("\\") => BinOp::IntDiv,
                Tok::Op("%") => BinOp::Mod,
                Tok::Word(w) if w == "MOD" => BinOp::Mod,
                Tok::Op("&") => BinOp::BitAnd,
                Tok::Op("|") => BinOp::BitOr,
                _ => {
                    self.depth = base;
                    return Ok(left);
                }
            };
            self.next();
            self.deeper()?;
            let right = self.power()?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
    }

    fn power(&mut self) -> Res<Expr> {
        let base = self.depth;
        let mut left = self.operand()?;
        while self.eat_op("^") {
            self.deeper()?;
            let right = self.operand()?;
            left = Expr::Binary(BinOp::Pow, Box::new(left), Box::new(right));
        }
        self.depth = base;
        Ok(left)
    }

    /// An operand: `NOT x`, `-x`, `( e )`, a number, a time, a point, a local, a label or a
    /// function call.
    fn operand(&mut self) -> Res<Expr> {
        let t = self.peek().clone();
        match &t.kind {
            Tok::Op("-") => self.unary(UnOp::Neg),
            Tok::Word(w) if w == "NOT" => self.unary(UnOp::Not),
            Tok::Op("(") => {
                self.next();
                let e = self.expr()?;
                self.expect_op(")", "an operator or )")?;
                Ok(e)
            }
            Tok::Time(s) => {
                self.next();
                Ok(Expr::Time(*s))
            }
            Tok::Word(w) if !lex::KEYWORDS.contains(&w.as_str()) => {
                self.next();
                match self.name(&t, w)? {
                    Name::Number(m) => Ok(Expr::Num(m)),
                    Name::Point(p) => Ok(Expr::Point(p)),
                    Name::Label(l) => Ok(Expr::Label(l, self.pos_of(&t))),
                    Name::Local(l) => {
                        if self.is_op("(") {
                            let idx = self.local_index(&l)?;
                            Ok(Expr::LocalIndex(l, idx))
                        } else {
                            Ok(Expr::Local(l))
                        }
                    }
                    Name::Func(f, arity) => self.call(&t, f, arity),
                }
            }
            _ => Err(self.expected("a value")),
        }
    }

    /// `-x` or `NOT x`: the operator applies to the operand right after it.
    fn unary(&mut self, op: UnOp) -> Res<Expr> {
        self.next();
        let base = self.depth;
        self.deeper()?;
        let x = self.operand()?;
        self.depth = base;
        Ok(Expr::Unary(op, Box::new(x)))
    }

    fn call(&mut self, t: &Token, f: Func, arity: Arity) -> Res<Expr> {
        let name = lex::func_name(f);
        let n = match arity {
            Arity::Zero => return Ok(Expr::Call(f, Vec::new())),
            Arity::Exactly(n) => Some(n),
            Arity::AtLeastOne => None,
        };
        self.expect_op("(", &format!("( after {name}"))?;
        let mut args = vec![self.expr()?];
        while self.eat_op(",") {
            args.push(self.expr()?);
        }
        if !self.is_op(")") {
            return Err(self.expected(&format!("a comma or ) in the arguments of {name}")));
        }
        if let Some(n) = n.filter(|&n| n != args.len()) {
            let plural = if n == 1 { "" } else { "s" };
            return Err(self.error_at(t, format!("{name} takes {n} argument{plural}, found {}", args.len())));
        }
        self.next();
        Ok(Expr::Call(f, args))
    }

    /// `( i )` or `( i , j )` after a local array's name.
    fn local_index(&mut self, name: &str) -> Res<Vec<Expr>> {
        self.next();
        let mut idx = vec![self.expr()?];
        if self.eat_op(",") {
            idx.push(self.expr()?);
        }
        if !self.eat_op(")") {
            return Err(self.expected(&format!("a comma or ) after the index of {name}")));
        }
        Ok(idx)
    }

    /// What word `w` (token `t`) names.
    fn name(&mut self, t: &Token, w: &str) -> Res<Name> {
        if w.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
            return self.number_or_point(t, w);
        }
        // `EXP` (other BASICs' name of LN-1) is a function only when called, so a label `EXP`
        // stays a label.
        if let Some((f, arity)) = lex::func_by_name(w).filter(|_| w != "EXP" || self.is_op("(")) {
            return Ok(Name::Func(f, arity));
        }
        if let Some(mut p) = point_of_word(w) {
            p.pos = self.pos_of(t);
            return self.finish_point(t, p);
        }
        if (w.len() == 1 && w.chars().all(|c| c.is_ascii_uppercase())) || self.locals.contains(w) {
            return Ok(Name::Local(w.to_string()));
        }
        if lex::UNSUPPORTED_FUNCS.contains(&w) {
            return Err(self.error_at(t, format!("{w} is a T3000 function this server does not run")));
        }
        if lex::other_statement(w).is_some() {
            return Err(self.error_at(t, format!("expected a value, found the statement {w}")));
        }
        if self.is_op("(") {
            return Err(self.error_at(
                t,
                match lex::FOREIGN_FUNCS.iter().find(|(n, _)| *n == w) {
                    Some((_, why)) => format!("unknown function {w}: {why}"),
                    None => format!("unknown function {w}"),
                },
            ));
        }
        if let Some(kind) = unsupported_point_type(w) {
            return Err(
                self.error_at(t, format!("{}: T3000's point type {kind} is not supported by this server", t.raw))
            );
        }
        if !w.starts_with(|c: char| c.is_alphabetic() || c == '_') {
            return Err(self.error_at(t, format!("expected a value, found {}", t.raw)));
        }
        if let Some(op) = operator_inside(w) {
            return Err(self.error_at(
                t,
                format!(
                    "{} is read as one name: put spaces around {op} (T3000 joins + - / & | to the word they touch)",
                    t.raw
                ),
            ));
        }
        Ok(Name::Label(w.to_string()))
    }

    /// A word that starts with a digit: a number (`12`, `1.5`, `10E3`) or a point with its panel
    /// (`2-VAR12`, `2.VAR12`, `19.1.REG2`, `1-252-VAR102`, `123456AV3`).
    fn number_or_point(&mut self, t: &Token, w: &str) -> Res<Name> {
        if is_number(w) {
            return number_value(w).map(Name::Number).map_err(|m| self.error_at(t, m));
        }
        let (prefix, rest) = split_panels(w);
        let point = match (prefix.as_deref(), point_of_word(rest)) {
            (Some(&[panel]), Some(p)) => Some(PointRef { panel: Some(panel), ..p }),
            // A VAR of another device on a panel's sub-network is what T3000 calls a REG (its
            // decompiler writes `1-252-VAR102` back as `1.252.REG102`).
            (Some(&[panel, sub]), Some(p)) => {
                let kind = if p.kind == PointKind::Var && sub != 0 && sub != panel { PointKind::Reg } else { p.kind };
                Some(PointRef { panel: Some(panel), sub_panel: Some(sub), kind, ..p })
            }
            _ => None,
        };
        match point {
            Some(mut p) => {
                p.pos = self.pos_of(t);
                self.finish_point(t, p)
            }
            None => Err(self.error_at(
                t,
                match unsupported_point_type(rest) {
                    Some(kind) => format!("{}: T3000's point type {kind} is not supported by this server", t.raw),
                    None => format!(
                    "{} is neither a number nor a point (a point with its panel is written 2-VAR12, 2.VAR12 or 19.1.REG2; put spaces around operators)",
                    t.raw
                ),
                },
            )),
        }
    }

    /// Checks a point's number and reads `[index]` after `AY`.
    fn finish_point(&mut self, t: &Token, mut p: PointRef) -> Res<Name> {
        if p.number == 0 && one_based(p.kind) {
            return Err(self.error_at(t, format!("{}: {} points are numbered from 1", t.raw, p.kind.name())));
        }
        if self.is_op("[") {
            if p.kind != PointKind::Ay {
                return Err(self.error_at(t, format!("{}: only AY points take an index in [ ]", t.raw)));
            }
            self.next();
            let idx = self.expr()?;
            self.expect_op("]", "an operator or ] after the AY index")?;
            p.index = Some(Box::new(idx));
        }
        Ok(Name::Point(p))
    }
}

/// The operator in a word such as `VAR1+1` or `IN2-OUT3` (points and numbers joined by an
/// operator without spaces), which T3000 reads as one name: most likely meant as arithmetic.
/// Real labels hold these characters too (`R&D`, `WH-SP`, `HOT/COLD`), so only words made of
/// points and numbers alone are refused.
fn operator_inside(w: &str) -> Option<char> {
    const OPS: [char; 7] = ['+', '-', '/', '&', '|', '\\', '%'];
    let parts: Vec<&str> = w.split(OPS).collect();
    let all_values = parts.len() > 1 && parts.iter().all(|p| point_of_word(p).is_some() || is_number(p));
    all_values.then(|| w.chars().find(|c| OPS.contains(c))).flatten()
}

/// Kinds numbered from 1 in text (Modbus and BACnet objects are numbered as on the wire, from 0).
fn one_based(kind: PointKind) -> bool {
    use PointKind::*;
    matches!(kind, Out | In | Var | Pid | Sch | Hol | Prg | Tbl | Dmon | Amon | Grp | Ay | Reg)
}

/// `VAR12` -> the point (without panel). The type name and its number, nothing else.
fn point_of_word(w: &str) -> Option<PointRef> {
    let digits_at = w.find(|c: char| c.is_ascii_digit())?;
    let (kind, number) = w.split_at(digits_at);
    if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let kind = PointKind::from_name(kind)?;
    let number = number.parse::<u32>().ok()?;
    Some(PointRef { panel: None, sub_panel: None, kind, number, index: None, pos: Pos::default() })
}

/// The T3000 point type a word like `MB_REG_FLOAT_ABCD33` names, when the server does not
/// support it.
fn unsupported_point_type(w: &str) -> Option<&'static str> {
    let kind = w.trim_end_matches(|c: char| c.is_ascii_digit());
    (kind.len() < w.len()).then(|| lex::UNSUPPORTED_POINT_TYPES.iter().find(|k| **k == kind).copied()).flatten()
}

/// Splits the panel numbers off a point word: `19.1.REG2` -> ([19, 1], "REG2"); `2-VAR12` ->
/// ([2], "VAR12"); `123456AV3` -> ([123456], "AV3"). Numbers are separated by `.` or `-`.
fn split_panels(w: &str) -> (Option<Vec<u32>>, &str) {
    let mut numbers = Vec::new();
    let mut rest = w;
    loop {
        let end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if end == 0 {
            break;
        }
        let Ok(n) = rest[..end].parse::<u32>() else {
            return (None, w);
        };
        numbers.push(n);
        rest = &rest[end..];
        match rest.chars().next() {
            Some('.') | Some('-') => rest = &rest[1..],
            _ => break,
        }
    }
    if numbers.is_empty() || numbers.len() > 2 {
        return (None, w);
    }
    (Some(numbers), rest)
}

/// `12`, `1.5`, `.5`, `1.`, `10E3`, `1.5E-2`.
fn is_number(w: &str) -> bool {
    let (mantissa, exponent) = match w.find('E') {
        Some(i) => (&w[..i], Some(&w[i + 1..])),
        None => (w, None),
    };
    let mut parts = mantissa.splitn(2, '.');
    let int = parts.next().unwrap_or("");
    let frac = parts.next().unwrap_or("");
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    let mantissa_ok = digits(int) && digits(frac) && !(int.is_empty() && frac.is_empty());
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exponent_ok
}

/// A number in thousandths, as T3000's encoder makes it: `x * 1000 + 0.1`, truncated.
fn number_value(w: &str) -> Result<Milli, String> {
    let value: f64 = w.parse().map_err(|_| format!("{w} is not a number"))?;
    let milli = (value * 1000.0 + 0.1).trunc();
    if !(0.0..=f64::from(i32::MAX)).contains(&milli) {
        return Err(format!(
            "number {w} is out of range: the controller keeps numbers as thousandths in 32 bits (at most 2147483.647)"
        ));
    }
    Ok(Milli(milli as i32))
}

/// A token as messages show it.
fn describe(t: &Token) -> String {
    match &t.kind {
        Tok::End => "the end of the line".to_string(),
        Tok::Str(_) => format!("the text {}", t.raw),
        _ => t.raw.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(v: i32) -> Expr {
        Expr::Num(Milli(v))
    }

    fn one(text: &str) -> Stmt {
        let p = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(p.lines.len(), 1);
        p.lines[0].stmt.clone()
    }

    fn value(expr: &str) -> Expr {
        match one(&format!("10 A = {expr}")) {
            Stmt::Assign { value, .. } => value,
            other => panic!("{other:?}"),
        }
    }

    fn err(text: &str) -> String {
        parse(text).expect_err(text).to_string()
    }

    #[test]
    fn numbers_become_thousandths_as_the_encoder_rounds() {
        assert_eq!(value("1.5"), num(1500));
        assert_eq!(value("0.0005"), num(0));
        assert_eq!(value("0.0009"), num(1));
        assert_eq!(value("2147483.647"), num(i32::MAX));
        assert_eq!(value("1E3"), num(1_000_000));
        assert_eq!(value("-1"), Expr::Unary(UnOp::Neg, Box::new(num(1000))));
        assert_eq!(
            err("10 A = 10E+21"),
            "line 1, column 8: number 10E+21 is out of range: the controller keeps numbers as thousandths in 32 bits (at most 2147483.647)"
        );
    }

    #[test]
    fn panel_prefixed_points() {
        let p = |e: Expr| match e {
            Expr::Point(p) => (p.panel, p.sub_panel, p.kind, p.number),
            other => panic!("{other:?}"),
        };
        assert_eq!(p(value("2-VAR12")), (Some(2), None, PointKind::Var, 12));
        assert_eq!(p(value("2.VAR12")), (Some(2), None, PointKind::Var, 12));
        assert_eq!(p(value("19.1.REG2")), (Some(19), Some(1), PointKind::Reg, 2));
        assert_eq!(p(value("1-252-VAR102")), (Some(1), Some(252), PointKind::Reg, 102));
        assert_eq!(p(value("1.2-VAR1")), (Some(1), Some(2), PointKind::Reg, 1));
        assert_eq!(p(value("3.3.VAR1")), (Some(3), Some(3), PointKind::Var, 1));
        assert_eq!(p(value("3.0.VAR1")), (Some(3), Some(0), PointKind::Var, 1));
        assert_eq!(p(value("2VAR12")), (Some(2), None, PointKind::Var, 12));
        assert_eq!(p(value("123456AV3")), (Some(123456), None, PointKind::Av, 3));
        assert_eq!(p(value("con2")), (None, None, PointKind::Pid, 2));
        assert_eq!(p(value("MB_REG0")), (None, None, PointKind::MbReg, 0));
        assert_eq!(err("10 A = VAR0"), "line 1, column 8: VAR0: VAR points are numbered from 1");
        assert_eq!(
            err("10 A = 2-1"),
            "line 1, column 8: 2-1 is neither a number nor a point (a point with its panel is written 2-VAR12, 2.VAR12 or 19.1.REG2; put spaces around operators)"
        );
    }

    #[test]
    fn labels_are_names_that_read_back_as_labels() {
        for yes in ["WH-SP", "T2_TOP", "SF.S/S", "OAT-HI", "AB", "HTP.SP", "SAT", "DEC", "TAN", "EXP"] {
            assert!(is_label(yes), "{yes}");
        }
        for no in
            ["wh-sp", "A", "VAR1", "TIME", "THEN", "2-VAR1", "WH SP", "VAR1+1", "", "X(1)", "RGB", "SUNDAY", "X\nY"]
        {
            assert!(!is_label(no), "{no}");
        }
    }

    #[test]
    fn short_day_and_month_names_get_a_hint() {
        assert_eq!(unknown_label_hint("SUN").as_deref(), Some("for the day, T3000 writes SUNDAY"));
        assert_eq!(unknown_label_hint("DEC").as_deref(), Some("for the month, T3000 writes DECEMBER"));
        assert_eq!(unknown_label_hint("WH-SP"), None);
        assert!(is_label("SUN"));
    }

    #[test]
    fn ay_index_locals_and_labels() {
        match value("AY3[VAR1 + 1]") {
            Expr::Point(p) => {
                assert_eq!((p.kind, p.number), (PointKind::Ay, 3));
                assert!(p.index.is_some());
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(value("b"), Expr::Local("B".into()));
        assert_eq!(value("wh-sp"), Expr::Label("WH-SP".into(), Pos::default()));
        assert_eq!(value("R&D"), Expr::Label("R&D".into(), Pos::default()));
        assert_eq!(value("HOT/COLD"), Expr::Label("HOT/COLD".into(), Pos::default()));
        assert_eq!(err("10 A = VAR1[2]"), "line 1, column 8: VAR1: only AY points take an index in [ ]");
    }
}
