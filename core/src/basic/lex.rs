//! Words and tokens of Control BASIC, as T3000's own tokenizer cuts a line.
//!
//! T3000 ends a word only at white space and at `: ! ; , < > ' * ^ = ( ) [ ]`, so `+ - / . & | _`
//! belong to the word they are in: `WH-SP`, `TIME-ON`, `IF+`, `LN-1`, `19.1.REG2` are single words
//! and `A-B` is one name (operators between names need spaces, as T3000 prints them). A token that
//! starts with an operator character is that operator. `H:MM[:SS]` is a time literal.
//!
//! The vocabulary (functions and their spellings) lives here too, so the parser and the printer
//! read and write the same names.

use super::ast::Func;

/// One token of a line, with where it is (character indexes into the line).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub kind: Tok,
    /// Index of the first character in the line (0-based; the column is `start + 1`).
    pub start: usize,
    /// Index just past the last character.
    pub end: usize,
    /// The token as written (for messages).
    pub raw: String,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// A word, upper-cased: a keyword, a name, a number or a panel-prefixed point.
    Word(String),
    /// A time literal `H:MM[:SS]`, in seconds.
    Time(u32),
    /// A `"string"` (without the quotes).
    Str(String),
    /// An operator or punctuation: `+ - * / \ ^ % & | = <> < > <= >= ( ) [ ] , ; ' : !`.
    Op(&'static str),
    /// Something the tokenizer cannot read; the message says why.
    Bad(String),
    /// The end of the line.
    End,
}

/// Characters that end a word (besides white space).
pub(crate) fn ends_word(c: char) -> bool {
    matches!(c, ':' | '!' | ';' | ',' | '<' | '>' | '\'' | '*' | '^' | '=' | '(' | ')' | '[' | ']' | '"')
}

/// White space for the tokenizer: T3000 also skips the backquote; a NUL (the C string end some
/// saved files carry) is skipped too.
pub(crate) fn is_space(c: char) -> bool {
    c.is_whitespace() || c == '`' || c == '\0'
}

/// Operators, longest first.
const OPS: &[&str] = &[
    "<>", "<=", ">=", "+", "-", "*", "/", "\\", "^", "%", "&", "|", "=", "<", ">", "(", ")", "[", "]", ",", ";", "'",
    ":", "!",
];

/// Cuts one line (without its line end) into tokens. The last token is [`Tok::End`]. What cannot
/// be read becomes a [`Tok::Bad`] token and the rest of the line is read on (a message or a
/// kept-as-written statement may hold anything, and what follows it still counts).
pub(crate) fn tokenize(line: &[char]) -> Vec<Token> {
    tokenize_from(line, 0)
}

/// [`tokenize`] from character `from` on.
pub(crate) fn tokenize_from(line: &[char], from: usize) -> Vec<Token> {
    let mut out = Vec::new();
    let mut i = from;
    while i < line.len() {
        let c = line[i];
        if is_space(c) {
            i += 1;
            continue;
        }
        let start = i;
        let kind = if c == '"' {
            match line[i + 1..].iter().position(|&q| q == '"') {
                Some(n) => {
                    i += n + 2;
                    Tok::Str(line[start + 1..i - 1].iter().collect())
                }
                None => {
                    i += 1;
                    Tok::Bad("this string has no closing \"".into())
                }
            }
        } else if let Some(op) = OPS.iter().find(|op| starts_with(line, i, op)) {
            i += op.chars().count();
            Tok::Op(op)
        } else {
            while i < line.len() && !is_space(line[i]) && !ends_word(line[i]) {
                i += 1;
            }
            let word: String = line[start..i].iter().collect();
            if word.chars().all(|d| d.is_ascii_digit()) && line.get(i) == Some(&':') {
                let (kind, end) = time_literal(line, start);
                i = end;
                kind
            } else {
                Tok::Word(word.to_uppercase())
            }
        };
        out.push(Token { kind, start, end: i, raw: line[start..i].iter().collect() });
    }
    out.push(Token { kind: Tok::End, start: line.len(), end: line.len(), raw: String::new() });
    out
}

fn starts_with(line: &[char], at: usize, s: &str) -> bool {
    let n = s.chars().count();
    line.get(at..at + n).is_some_and(|w| w.iter().copied().eq(s.chars()))
}

/// Reads `H:MM` or `H:MM:SS` at `start` (the hours are digits followed by `:`). Minutes and
/// seconds are two digits below 60.
fn time_literal(line: &[char], start: usize) -> (Tok, usize) {
    let digits = |from: usize| {
        let mut k = from;
        while k < line.len() && line[k].is_ascii_digit() {
            k += 1;
        }
        k
    };
    let h_end = digits(start);
    let m_end = digits(h_end + 1);
    let mut end = m_end;
    let mut fields = vec![(start, h_end), (h_end + 1, m_end)];
    if line.get(m_end) == Some(&':') {
        end = digits(m_end + 1);
        fields.push((m_end + 1, end));
    }
    // The literal runs to the end of the word it is in, so `8:30AM` is reported whole.
    let mut word_end = end;
    while word_end < line.len() && !is_space(line[word_end]) && !ends_word(line[word_end]) {
        word_end += 1;
    }
    let raw: String = line[start..word_end].iter().collect();
    let bad = |why: &str| (Tok::Bad(format!("{raw} is not a time: {why}")), word_end);
    if word_end != end {
        return bad("write H:MM or H:MM:SS");
    }
    let value = |(a, b): (usize, usize)| line[a..b].iter().collect::<String>().parse::<u64>().ok();
    let mut parts = Vec::new();
    for (n, f) in fields.iter().enumerate() {
        if n > 0 && f.1 - f.0 != 2 {
            return bad("minutes and seconds take two digits (H:MM or H:MM:SS)");
        }
        match value(*f) {
            Some(v) => parts.push(v),
            None => return bad("write H:MM or H:MM:SS"),
        }
    }
    if parts[1..].iter().any(|&v| v >= 60) {
        return bad("minutes and seconds go up to 59");
    }
    let secs = parts[0].saturating_mul(3600) + parts[1] * 60 + parts.get(2).copied().unwrap_or(0);
    if secs > MAX_TIME_SECONDS {
        return bad("the controller keeps times in thousandths of a second in 32 bits (at most 596:31:23)");
    }
    (Tok::Time(secs as u32), end)
}

/// The longest time a program can hold: seconds x 1000 must fit an `i32`.
pub(crate) const MAX_TIME_SECONDS: u64 = (i32::MAX / 1000) as u64;

/// How many arguments a function takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arity {
    /// None, and no parentheses: `TIME`, `DOW`, `SUNDAY`.
    Zero,
    /// Exactly this many, in parentheses.
    Exactly(usize),
    /// One or more, in parentheses: `MAX(a, b, c)`.
    AtLeastOne,
}

/// Every function: the name printed first, then the other spellings T3000 accepts (its `_`
/// forms, the EBNF's `CON...` names, `EXP` for `LN-1`), and how many arguments it takes.
///
/// Days and months are spelled out, as T3000's encoder and decompiler know them: the EBNF's
/// `SUN`, `SAT`, `DEC`... are not taken, so they stay free for labels (`SAT` is the supply air
/// temperature in many a panel).
pub(crate) const FUNCS: &[(Func, &[&str], Arity)] = &[
    (Func::Abs, &["ABS"], Arity::Exactly(1)),
    (Func::Avg, &["AVG"], Arity::AtLeastOne),
    (Func::Max, &["MAX"], Arity::AtLeastOne),
    (Func::Min, &["MIN"], Arity::AtLeastOne),
    (Func::Int, &["INT"], Arity::Exactly(1)),
    (Func::Sqr, &["SQR"], Arity::Exactly(1)),
    (Func::Ln, &["LN"], Arity::Exactly(1)),
    (Func::Exp, &["LN-1", "LN_1", "EXP"], Arity::Exactly(1)),
    (Func::Sin, &["SIN"], Arity::Exactly(1)),
    (Func::Cos, &["COS"], Arity::Exactly(1)),
    (Func::Time, &["TIME"], Arity::Zero),
    (Func::TimeOn, &["TIME-ON", "TIME_ON"], Arity::Exactly(1)),
    (Func::TimeOff, &["TIME-OFF", "TIME_OFF"], Arity::Exactly(1)),
    (Func::Interval, &["INTERVAL"], Arity::Exactly(1)),
    (Func::Dow, &["DOW"], Arity::Zero),
    (Func::Dom, &["DOM"], Arity::Zero),
    (Func::Doy, &["DOY"], Arity::Zero),
    (Func::Moy, &["MOY"], Arity::Zero),
    (Func::Scans, &["SCANS"], Arity::Zero),
    (Func::PowerLoss, &["POWER-LOSS", "POWER_LOSS"], Arity::Zero),
    (Func::Status, &["STATUS"], Arity::Exactly(1)),
    (Func::Tbl, &["TBL"], Arity::Exactly(2)),
    (Func::WrOn, &["WR-ON", "WR_ON", "SCH-ON", "SCH_ON"], Arity::Exactly(2)),
    (Func::WrOff, &["WR-OFF", "WR_OFF", "SCH-OFF", "SCH_OFF"], Arity::Exactly(2)),
    (Func::Unack, &["UNACK"], Arity::Zero),
    (Func::UserA, &["USER-A", "USER_A"], Arity::Zero),
    (Func::UserB, &["USER-B", "USER_B"], Arity::Zero),
    (Func::Runtime, &["RUNTIME"], Arity::Exactly(1)),
    (Func::Com1, &["COM1"], Arity::AtLeastOne),
    (Func::PidProp, &["PIDPROP", "CONPROP"], Arity::Exactly(2)),
    (Func::PidRate, &["PIDRATE", "CONRATE"], Arity::Exactly(2)),
    (Func::PidReset, &["PIDRESET", "CONRESET"], Arity::Exactly(2)),
    (Func::SensorOn, &["SENSOR-ON", "SENSOR_ON"], Arity::Exactly(1)),
    (Func::SensorOff, &["SENSOR-OFF", "SENSOR_OFF"], Arity::Exactly(1)),
    (Func::Day(0), &["SUNDAY"], Arity::Zero),
    (Func::Day(1), &["MONDAY"], Arity::Zero),
    (Func::Day(2), &["TUESDAY"], Arity::Zero),
    (Func::Day(3), &["WEDNESDAY"], Arity::Zero),
    (Func::Day(4), &["THURSDAY"], Arity::Zero),
    (Func::Day(5), &["FRIDAY"], Arity::Zero),
    (Func::Day(6), &["SATURDAY"], Arity::Zero),
    (Func::Month(1), &["JANUARY"], Arity::Zero),
    (Func::Month(2), &["FEBRUARY"], Arity::Zero),
    (Func::Month(3), &["MARCH"], Arity::Zero),
    (Func::Month(4), &["APRIL"], Arity::Zero),
    (Func::Month(5), &["MAY"], Arity::Zero),
    (Func::Month(6), &["JUNE"], Arity::Zero),
    (Func::Month(7), &["JULY"], Arity::Zero),
    (Func::Month(8), &["AUGUST"], Arity::Zero),
    (Func::Month(9), &["SEPTEMBER"], Arity::Zero),
    (Func::Month(10), &["OCTOBER"], Arity::Zero),
    (Func::Month(11), &["NOVEMBER"], Arity::Zero),
    (Func::Month(12), &["DECEMBER"], Arity::Zero),
];

/// The EBNF's short day and month names, which T3000's encoder does not know (they are labels),
/// with the spelling it does know.
pub(crate) const SHORT_DAYS_AND_MONTHS: &[(&str, &str)] = &[
    ("SUN", "SUNDAY"),
    ("MON", "MONDAY"),
    ("TUE", "TUESDAY"),
    ("WED", "WEDNESDAY"),
    ("THU", "THURSDAY"),
    ("FRI", "FRIDAY"),
    ("SAT", "SATURDAY"),
    ("JAN", "JANUARY"),
    ("FEB", "FEBRUARY"),
    ("MAR", "MARCH"),
    ("APR", "APRIL"),
    ("JUN", "JUNE"),
    ("JUL", "JULY"),
    ("AUG", "AUGUST"),
    ("SEP", "SEPTEMBER"),
    ("OCT", "OCTOBER"),
    ("NOV", "NOVEMBER"),
    ("DEC", "DECEMBER"),
];

/// The function an upper-case word names, with its arity.
pub(crate) fn func_by_name(word: &str) -> Option<(Func, Arity)> {
    FUNCS.iter().find(|(_, names, _)| names.contains(&word)).map(|(f, _, a)| (*f, *a))
}

/// The name a function prints as (`LN-1` for [`Func::Exp`]).
pub(crate) fn func_name(f: Func) -> &'static str {
    FUNCS.iter().find(|(g, _, _)| *g == f).map(|(_, names, _)| names[0]).unwrap_or("?")
}

/// T3000 functions the server does not run (Modbus block transfers, the network-health `PVAR`,
/// the lighting `RGB`, serial-port and keypad helpers): named in errors instead of "unknown".
pub(crate) const UNSUPPORTED_FUNCS: &[&str] =
    &["MB_BLOCKREAD", "MB_BLOCKWRITE", "MB_BWCOIL", "PVAR", "RGB", "CLEARPORT", "INPUT", "OUTPUT", "TIME_FORMAT"];

/// T3000 point types the server does not read or write (Modbus registers read as 32-bit floats,
/// the panel's alarm, unit and password tables): named in errors instead of taken for labels.
pub(crate) const UNSUPPORTED_POINT_TYPES: &[&str] = &[
    "MB_REG_FLOAT_ABCD",
    "MB_REG_FLOAT_CDAB",
    "MB_REG_FLOAT_BADC",
    "MB_REG_FLOAT_DCBA",
    "MB_INPUT_FLOAT_ABCD",
    "MB_INPUT_FLOAT_CDAB",
    "MB_INPUT_FLOAT_BADC",
    "MB_INPUT_FLOAT_DCBA",
    "ALR",
    "UNITS",
    "PASS",
    "ALRS",
    "WR_T",
    "AR_D",
];

/// Functions other BASICs have and T3000 does not (named in the error when they are called).
pub(crate) const FOREIGN_FUNCS: &[(&str, &str)] = &[
    ("TAN", "T3000 has no TAN (it has SIN and COS, in degrees)"),
    ("ATN", "T3000 has no ATN (arc tangent)"),
    ("ATAN", "T3000 has no ATAN (arc tangent)"),
    ("LOG", "T3000 has no LOG: LN is the natural logarithm"),
    ("SQRT", "T3000 spells the square root SQR"),
];

/// Statements kept as written ([`super::ast::Stmt::Other`]): the printed keyword, then the other
/// spellings.
pub(crate) const OTHER_STATEMENTS: &[&[&str]] = &[
    &["HANGUP"],
    &["PHONE"],
    &["SET-PRINTER", "SET_PRINTER"],
    // `RUN-SYSTEM` is the EBNF's name of it.
    &["RUN-MACRO", "RUN_MACRO", "RUN-SYSTEM", "RUN_SYSTEM"],
    &["ALARM-AT", "ALARM_AT"],
    &["PRINT-AT", "PRINT_AT"],
    &["REMOTE-GET", "REMOTE_GET"],
    &["REMOTE-SET", "REMOTE_SET"],
    &["CALL"],
    &["DECLARE"],
    &["DIM"],
    &["INTEGER"],
    &["STRING"],
    &["BYTE"],
    &["FLOAT"],
    &["LONG"],
];

/// The printed keyword of a statement kept as written (`SET_PRINTER` -> `SET-PRINTER`).
pub(crate) fn other_statement(word: &str) -> Option<&'static str> {
    OTHER_STATEMENTS.iter().find(|names| names.contains(&word)).map(|names| names[0])
}

/// Declarations of local variables (their names become locals, not labels).
pub(crate) const DECLARATIONS: &[&str] = &["DIM", "INTEGER", "STRING", "BYTE", "FLOAT", "LONG"];

/// Words that are part of the language and so never a label.
pub(crate) const KEYWORDS: &[&str] = &[
    "ALARM", "CLEAR", "CLOSE", "DALARM", "DISABLE", "ENABLE", "END", "FOR", "TO", "STEP", "GOSUB", "GOTO", "IF", "IF+",
    "IF-", "THEN", "ELSE", "LET", "MOD", "NEXT", "ON", "ON-ALARM", "ON_ALARM", "ON-ERROR", "ON_ERROR", "OPEN", "PRINT",
    "REM", "RETURN", "START", "STOP", "WAIT", "AND", "OR", "XOR", "NOT",
];

/// Whether `word` is reserved by the language (a keyword, a statement or a function name).
pub(crate) fn is_reserved(word: &str) -> bool {
    KEYWORDS.contains(&word)
        || other_statement(word).is_some()
        || func_by_name(word).is_some()
        || UNSUPPORTED_FUNCS.contains(&word)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> Vec<Tok> {
        let chars: Vec<char> = s.chars().collect();
        tokenize(&chars).into_iter().map(|t| t.kind).collect()
    }

    fn w(s: &str) -> Tok {
        Tok::Word(s.into())
    }

    #[test]
    fn hyphens_dots_and_plus_stay_in_words() {
        assert_eq!(
            kinds("IF+ WH-SP>19.1.REG2 - LN-1(A-B)"),
            vec![
                w("IF+"),
                w("WH-SP"),
                Tok::Op(">"),
                w("19.1.REG2"),
                Tok::Op("-"),
                w("LN-1"),
                Tok::Op("("),
                w("A-B"),
                Tok::Op(")"),
                Tok::End
            ]
        );
    }

    #[test]
    fn operators_start_tokens_and_times_are_read() {
        assert_eq!(
            kinds("-1<=00:30:10<>8:05"),
            vec![Tok::Op("-"), w("1"), Tok::Op("<="), Tok::Time(1810), Tok::Op("<>"), Tok::Time(29100), Tok::End]
        );
        assert_eq!(
            kinds("print \"a;b\"; time"),
            vec![w("PRINT"), Tok::Str("a;b".into()), Tok::Op(";"), w("TIME"), Tok::End]
        );
    }

    #[test]
    fn bad_times_and_strings_are_named() {
        assert_eq!(
            kinds("8:5"),
            vec![Tok::Bad("8:5 is not a time: minutes and seconds take two digits (H:MM or H:MM:SS)".into()), Tok::End]
        );
        assert_eq!(
            kinds("8:75"),
            vec![Tok::Bad("8:75 is not a time: minutes and seconds go up to 59".into()), Tok::End]
        );
        assert_eq!(kinds("\"open"), vec![Tok::Bad("this string has no closing \"".into()), w("OPEN"), Tok::End]);
    }
}
