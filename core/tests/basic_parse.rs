//! The Control BASIC parser and printer against every real program text found in Temco's
//! repositories (`tests/data/basic/text`, sources in its SOURCES.md), plus error, precedence and
//! layout cases and random inputs.

use std::path::PathBuf;

use proptest::prelude::*;
use t3_core::basic::ast::{
    BinOp, Expr, Func, IfKind, Line, Milli, PointKind, PointRef, Pos, PrintItem, Program, Stmt, Target, UnOp,
};
use t3_core::basic::parse::{is_label, parse};
use t3_core::basic::print::{print, print_expr};

fn data(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/basic/text").join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    String::from_utf8(bytes).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Every real file, and what parsing it gives: the number of lines, or the exact first error.
const REAL: &[(&str, Result<usize, &str>)] = &[
    ("BTUMeter1.txt", Ok(38)),
    ("BTUMeter3.txt", Ok(30)),
    ("BTUMeter4.txt", Ok(10)),
    ("BTUMeter5.txt", Ok(41)),
    // Hand-edited parser test file: PRINT, PRINT-AT, SET-PRINTER (also lower case), REMOTE-GET /
    // REMOTE-SET, PHONE, HANGUP, WAIT, RETURN, ON-ALARM, ON-ERROR; line numbers out of order.
    ("BTUMeter6.txt", Ok(43)),
    ("NEWFILE.TXT", Ok(30)),
    // A test file of Temco's C# editor grammar, not T3000 text: it puts REM after statements,
    // which T3000's encoder does not read.
    ("BEGINNER.txt", Err("line 2, column 26: expected the end of the line (a REM takes a line of its own), found REM")),
    // The 1998 DOS printout as a whole holds the panel's tables too; its program listings are
    // PRINT_P*.TXT.
    ("PRINT.TXT", Err("line 3, column 2: a line must start with its line number, found [")),
    ("PRINT_P1.TXT", Ok(12)),
    ("PRINT_P2.TXT", Ok(5)),
    ("PRINT_P3.TXT", Ok(5)),
    // Lines 20 and 400 appear twice: T3000 printed it so.
    ("PRINT_P4.TXT", Ok(51)),
    ("PRINT_P5.TXT", Ok(1)),
    ("PRINT_P6.TXT", Ok(32)),
    ("PRINT_P7.TXT", Ok(31)),
    ("PRINT_P8.TXT", Ok(36)),
    ("PRINT_P9.TXT", Ok(2)),
    ("PRINT_P11.TXT", Ok(10)),
    ("PRINT_P12.TXT", Ok(22)),
    ("PRINT_P13.TXT", Ok(15)),
    ("PRINT_P14.TXT", Ok(36)),
    ("PRINT_P15.TXT", Ok(26)),
    ("2P1.BAS", Ok(14)),
    ("TEST.BAS", Ok(153)),
    ("X.BAS", Ok(2)),
    ("Y.BAS", Ok(5)),
    // Modbus float registers, MB_BLOCKWRITE, PVAR and RGB are T3000 features the server does not
    // run; DemoPrg-supported.txt is the same file without those lines.
    (
        "DemoPrg.txt",
        Err(
            "line 6, column 13: 1.2.MB_REG_FLOAT_ABCD33: T3000's point type MB_REG_FLOAT_ABCD is not supported by this server",
        ),
    ),
    ("DemoPrg-supported.txt", Ok(36)),
    ("90185_prg1_16_07_04_13_09_58.txt", Ok(2)),
    ("90185_prg1_16_07_04_13_11_32.txt", Ok(2)),
    ("90185_prg1_16_07_05_12_35_10.txt", Ok(3)),
    ("90185_prg1_16_07_05_12_37_38.txt", Ok(3)),
    ("90185_prg1_16_07_05_12_42_10.txt", Ok(2)),
    ("90185_prg1_16_07_06_14_53_19.txt", Ok(3)),
    ("90185_prg1_16_07_06_15_06_48.txt", Ok(4)),
    ("tp_editbuf_1.txt", Ok(4)),
    ("tp_editbuf_2.txt", Ok(2)),
    ("tp_editbuf_3.txt", Ok(3)),
    ("tp_editbuf_4.txt", Ok(4)),
    ("tp_editbuf_5.txt", Ok(4)),
    ("tp_editbuf_6.txt", Ok(2)),
    ("tp_editbuf_7.txt", Ok(3)),
    ("T3000Form_SetCode.txt", Ok(1)),
    ("ProgramEditorForm_text.txt", Ok(1)),
];

#[test]
fn the_table_names_every_data_file() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/basic/text");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != "SOURCES.md")
        .collect();
    files.sort();
    let mut listed: Vec<String> = REAL.iter().map(|(n, _)| n.to_string()).collect();
    listed.sort();
    assert_eq!(files, listed);
}

#[test]
fn every_real_program_parses_or_fails_as_expected() {
    for (name, expected) in REAL {
        let got = parse(&data(name)).map(|p| p.lines.len()).map_err(|e| e.to_string());
        assert_eq!(got, expected.map_err(str::to_string), "{name}");
    }
}

/// parse(print(p)) == p, and printing again gives the same text.
fn assert_round_trip(p: &Program, what: &str) {
    let text = print(p);
    let again = parse(&text).unwrap_or_else(|e| panic!("{what}: the printed text does not parse: {e}\n{text}"));
    assert_eq!(&again, p, "{what}: printed as\n{text}");
    assert_eq!(print(&again), text, "{what}: printing is not stable");
}

#[test]
fn every_real_program_prints_back_to_itself() {
    for (name, expected) in REAL {
        if expected.is_ok() {
            assert_round_trip(&parse(&data(name)).unwrap(), name);
        }
    }
}

/// A text as T3000's editor shows it, for comparing layouts: no byte order mark, no NUL, LF line
/// ends, no trailing spaces, no blank lines.
fn normalized(text: &str) -> String {
    let text = text.trim_start_matches('\u{feff}').replace('\0', "").replace("\r\n", "\n").replace('\r', "\n");
    text.lines().map(str::trim_end).filter(|l| !l.is_empty()).map(|l| format!("{l}\n")).collect()
}

#[test]
fn prints_in_the_layout_t3000_decompiles_to() {
    // These files are T3000's own decompiled text; the printer writes them byte for byte (up to
    // trailing spaces and line ends).
    for name in [
        "BTUMeter1.txt",
        "BTUMeter3.txt",
        "BTUMeter4.txt",
        "NEWFILE.TXT",
        "90185_prg1_16_07_04_13_11_32.txt",
        "90185_prg1_16_07_05_12_35_10.txt",
        "90185_prg1_16_07_05_12_37_38.txt",
        "90185_prg1_16_07_05_12_42_10.txt",
        "90185_prg1_16_07_06_14_53_19.txt",
    ] {
        let text = data(name);
        assert_eq!(print(&parse(&text).unwrap()), normalized(&text), "{name}");
    }
    // T3000 saved this program again later as `1.252.REG102` (90185_prg1_16_07_04_13_11_32.txt).
    assert_eq!(
        print(&parse(&data("90185_prg1_16_07_04_13_09_58.txt")).unwrap()),
        "10 VAR1 = 1.252.REG102\n20 VAR2 = 1.252.REG374\n"
    );
    // BTUMeter5 writes fractions with three decimals (`0.900`); the printer drops needless zeros.
    let text = data("BTUMeter5.txt");
    assert_eq!(print(&parse(&text).unwrap()), normalized(&text).replace("0.900", "0.9").replace("0.100", "0.1"));
}

#[test]
fn reads_the_dos_printout_forms() {
    let p = parse(&data("PRINT_P4.TXT")).unwrap();
    // `130 IF  NOT 1-WR2 AND  NOT OVERRIDE THEN STOP COOLMODE`
    let line = p.lines.iter().find(|l| l.number == 130).unwrap();
    let Stmt::If { kind: IfKind::Plain, cond, then, otherwise } = &line.stmt else { panic!("{:?}", line.stmt) };
    assert_eq!(print_expr(cond), "NOT 1-SCH2 AND NOT OVERRIDE");
    match cond {
        Expr::Binary(BinOp::And, l, _) => match &**l {
            Expr::Unary(UnOp::Not, x) => match &**x {
                Expr::Point(PointRef { panel: Some(1), sub_panel: None, kind: PointKind::Sch, number: 2, .. }) => {}
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
    assert_eq!(then, &vec![Stmt::Stop(Target::Label("COOLMODE".into(), Pos::default()))]);
    assert!(otherwise.is_empty());
    // `320 IF OAT >= OATLL AND OAT <= DEWTMP THEN  RF = (PDTR - (OAT - DLT)) * 1000 / PDTR , GOTO 360`
    let p6 = parse(&data("PRINT_P6.TXT")).unwrap();
    let line = p6.lines.iter().find(|l| l.number == 320).unwrap();
    let Stmt::If { then, .. } = &line.stmt else { panic!() };
    assert_eq!(then.len(), 2);
    assert_eq!(then[1], Stmt::Goto(360));
    // `60 IF TIME > 500 AND TIME < 1500 THEN  70 ELSE  320`: bare line numbers are GOTOs.
    let p7 = parse(&data("PRINT_P7.TXT")).unwrap();
    let line = p7.lines.iter().find(|l| l.number == 60).unwrap();
    let Stmt::If { then, otherwise, .. } = &line.stmt else { panic!() };
    assert_eq!((then.as_slice(), otherwise.as_slice()), (&[Stmt::Goto(70)][..], &[Stmt::Goto(320)][..]));
    // `350 PHONE 439-6140,,,,,,,911-0000` is kept as written.
    let p14 = parse(&data("PRINT_P14.TXT")).unwrap();
    let line = p14.lines.iter().find(|l| l.number == 350).unwrap();
    assert_eq!(line.stmt, Stmt::Other { keyword: "PHONE".into(), text: "439-6140,,,,,,,911-0000".into() });
}

/// The labels of the 1998 panel's point tables (PRINT.TXT: the `Label` column of each table).
fn labels_of_the_1998_panel() -> Vec<String> {
    let text = data("PRINT.TXT");
    let mut labels = Vec::new();
    let mut column = None;
    for line in text.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.first() == Some(&"Num") {
            column = cells.iter().position(|c| *c == "Label");
        } else if line.trim().is_empty() {
            column = None;
        } else if let Some(c) = column
            && cells[0].parse::<u32>().is_ok()
            && let Some(label) = cells.get(c).filter(|l| !l.is_empty())
        {
            labels.push(label.to_string());
        }
    }
    labels
}

#[test]
fn the_1998_panel_labels_read_as_labels() {
    let labels = labels_of_the_1998_panel();
    assert!(labels.len() > 100, "{labels:?}");
    for label in &labels {
        // A label that starts with a digit reads as a number in T3000 too, and a single letter
        // is a local variable (the DOS panel's programs use A..Z undeclared): programs name those
        // points by their numbers (OUT14, GRP2).
        let expected = !label.starts_with(|c: char| c.is_ascii_digit()) && label.len() > 1;
        assert_eq!(is_label(label), expected, "{label}");
    }
    for label in ["SAT", "HOT/COLD", "CH-3VAR", "WH-SP", "DC", "TR"] {
        assert!(labels.iter().any(|l| l == label), "{label}");
    }
}

#[test]
fn reads_the_hand_written_statements_of_btumeter6() {
    let p = parse(&data("BTUMeter6.txt")).unwrap();
    let at = |i: usize| &p.lines[i];
    assert_eq!((at(6).number, &at(6).stmt), (65, &Stmt::OnAlarm(140)));
    assert_eq!(at(7).stmt, Stmt::Other { keyword: "SET-PRINTER".into(), text: "B".into() });
    assert_eq!(at(10).stmt, Stmt::Other { keyword: "SET-PRINTER".into(), text: "0".into() });
    assert_eq!(
        print(&Program { lines: vec![at(9).clone()] }),
        "66 PRINT \"ACTIVE USER: \" ; USER-A ; \"ON TIME :\" ; TIME\n"
    );
    assert_eq!(at(18).stmt, Stmt::Wait(Expr::Time(13 * 60)));
}

#[test]
fn errors_name_line_column_and_what_was_expected() {
    let cases: &[(&str, &str)] = &[
        ("VAR1 = 1", "line 1, column 1: a line must start with its line number, found VAR1"),
        ("10 A = 1\n  = 2", "line 2, column 3: a line must start with its line number, found ="),
        ("10 IF A > 1 ELSE 20", "line 1, column 13: expected THEN after the IF condition, found ELSE"),
        (
            "10 IF A THEN B = 1 ELSE",
            "line 1, column 24: expected a statement or a line number after ELSE, found the end of the line",
        ),
        (
            "10 IF A THEN IF B THEN C = 1",
            "line 1, column 14: expected a statement, found IF: an IF cannot stand in a THEN or ELSE clause",
        ),
        ("10 IF A THEN B = 1 C = 2", "line 1, column 20: expected ELSE, a comma or the end of the line, found C"),
        ("10 A = TAN(1)", "line 1, column 8: unknown function TAN: T3000 has no TAN (it has SIN and COS, in degrees)"),
        ("10 A = atn(1)", "line 1, column 8: unknown function ATN: T3000 has no ATN (arc tangent)"),
        ("10 A = FOO(1)", "line 1, column 8: unknown function FOO"),
        ("10 A = RGB(1, 2, 3, 4)", "line 1, column 8: RGB is a T3000 function this server does not run"),
        ("\n\n10 A = 1\n20 B = (1 + 2", "line 4, column 14: expected an operator or ), found the end of the line"),
        ("10 GOTO 70000", "line 1, column 9: line number 70000 is out of range: line numbers go from 1 to 65535"),
        ("0 A = 1", "line 1, column 1: line number 0 is out of range: line numbers go from 1 to 65535"),
        ("10 GOTO", "line 1, column 8: expected a line number after GOTO, found the end of the line"),
        ("10 A = 1 +", "line 1, column 11: expected a value, found the end of the line"),
        ("10 A = B < C < D", "line 1, column 14: expected the end of the line, found <"),
        ("10 ABS = 1", "line 1, column 4: ABS is a function: it cannot be written to"),
        ("10 LET", "line 1, column 7: expected a point or variable after LET, found the end of the line"),
        ("10 THEN = 1", "line 1, column 4: expected a statement, found THEN"),
        ("10 A = MAX()", "line 1, column 12: expected a value, found )"),
        ("10 A = ABS(1, 2)", "line 1, column 8: ABS takes 1 argument, found 2"),
        ("10 A = WR-ON(1)", "line 1, column 8: WR-ON takes 2 arguments, found 1"),
        ("10 A = TIME-ON VAR1", "line 1, column 16: expected ( after TIME-ON, found VAR1"),
        (
            "10 A = VAR1+1",
            "line 1, column 8: VAR1+1 is read as one name: put spaces around + (T3000 joins + - / & | to the word they touch)",
        ),
        (
            "10 A = IN2-OUT3/2",
            "line 1, column 8: IN2-OUT3/2 is read as one name: put spaces around - (T3000 joins + - / & | to the word they touch)",
        ),
        ("10 A = 8:75", "line 1, column 8: 8:75 is not a time: minutes and seconds go up to 59"),
        ("10 WAIT 0:5", "line 1, column 9: 0:5 is not a time: minutes and seconds take two digits (H:MM or H:MM:SS)"),
        ("10 FOR I = 1 STEP 2", "line 1, column 14: expected TO after the FOR start value, found STEP"),
        ("10 ON A GOSAB 10", "line 1, column 9: expected GOTO or GOSUB after the ON expression, found GOSAB"),
        ("10 ALARM A = 1 , 2 , hot", "line 1, column 12: expected < or > in the ALARM condition, found ="),
        (
            "10 DALARM A , 5",
            "line 1, column 16: expected a comma and the message after the DALARM delay, found the end of the line",
        ),
        ("10 PRINT \"abc", "line 1, column 10: this string has no closing \""),
        ("10 START 5", "line 1, column 10: expected a point or variable after START, found 5"),
        ("10 A = VAR0", "line 1, column 8: VAR0: VAR points are numbered from 1"),
        (
            "10 A = 99999999999",
            "line 1, column 8: number 99999999999 is out of range: the controller keeps numbers as thousandths in 32 bits (at most 2147483.647)",
        ),
        (
            "10 FOR A = 1 TO 2 REM count",
            "line 1, column 19: expected the end of the line (a REM takes a line of its own), found REM",
        ),
        // Columns count characters, not bytes.
        ("10 PRINT \"é\" ; ?", "line 1, column 16: expected a value, found ?"),
    ];
    for (text, message) in cases {
        let e = parse(text).expect_err(text);
        assert_eq!(e.to_string(), *message, "{text:?}");
    }
    let e = parse("10 A = 1\r\n20 B = (").unwrap_err();
    assert_eq!((e.pos.line, e.pos.column), (2, 9));
}

/// An expression with every operation in parentheses, to show how it was grouped.
fn grouped(e: &Expr) -> String {
    match e {
        Expr::Binary(op, l, r) => {
            let op =
                print_expr(&Expr::Binary(*op, Box::new(Expr::Local("X".into())), Box::new(Expr::Local("X".into()))));
            let op = op.trim_start_matches("X ").trim_end_matches(" X").to_string();
            format!("({} {op} {})", grouped(l), grouped(r))
        }
        Expr::Unary(UnOp::Neg, x) => format!("(-{})", grouped(x)),
        Expr::Unary(UnOp::Not, x) => format!("(NOT {})", grouped(x)),
        other => print_expr(other),
    }
}

fn expr_of(text: &str) -> Expr {
    match parse(&format!("10 Z = {text}")).unwrap_or_else(|e| panic!("{text}: {e}")).lines.remove(0).stmt {
        Stmt::Assign { value, .. } => value,
        other => panic!("{other:?}"),
    }
}

#[test]
fn precedence_follows_t3000s_encoder() {
    let cases: &[(&str, &str, &str)] = &[
        // (text, grouping, printed)
        ("A AND B OR C", "(A AND (B OR C))", "A AND B OR C"),
        ("(A AND B) OR C", "((A AND B) OR C)", "( A AND B ) OR C"),
        ("A OR B AND C XOR D", "(A OR (B AND (C XOR D)))", "A OR B AND C XOR D"),
        ("A = 1 AND B > 2", "((A = 1) AND (B > 2))", "A = 1 AND B > 2"),
        ("A + B * C ^ 2", "(A + (B * (C ^ 2)))", "A + B * C ^ 2"),
        ("A - B - C", "((A - B) - C)", "A - B - C"),
        ("A - (B - C)", "(A - (B - C))", "A - ( B - C )"),
        ("A / B * C", "((A / B) * C)", "A / B * C"),
        ("A / (B * C)", "(A / (B * C))", "A / ( B * C )"),
        ("A ^ B ^ C", "((A ^ B) ^ C)", "A ^ B ^ C"),
        ("A ^ (B ^ C)", "(A ^ (B ^ C))", "A ^ ( B ^ C )"),
        ("A MOD B \\ C % D", "(((A MOD B) \\ C) MOD D)", "A MOD B \\ C MOD D"),
        ("A & 1 | B + 2", "(((A & 1) | B) + 2)", "A & 1 | B + 2"),
        ("NOT A AND B", "((NOT A) AND B)", "NOT A AND B"),
        ("NOT (A AND B)", "(NOT (A AND B))", "NOT ( A AND B )"),
        ("NOT A = 1", "((NOT A) = 1)", "NOT A = 1"),
        ("-A ^ 2", "((-A) ^ 2)", "-A ^ 2"),
        ("-(A + 1)", "(-(A + 1))", "-( A + 1 )"),
        ("- -1", "(-(-1))", "--1"),
        ("(A < B) = (C > D)", "((A < B) = (C > D))", "( A < B ) = ( C > D )"),
        ("A + (B = C)", "(A + (B = C))", "A + ( B = C )"),
        ("MAX(0, 100 - WEIGHT)", "MAX ( 0 , 100 - WEIGHT )", "MAX ( 0 , 100 - WEIGHT )"),
        ("TIME-ON(INIT) > 0:00:05", "(TIME-ON ( INIT ) > 00:00:05)", "TIME-ON ( INIT ) > 00:00:05"),
        ("exp(1) + LN-1(2)", "(LN-1 ( 1 ) + LN-1 ( 2 ))", "LN-1 ( 1 ) + LN-1 ( 2 )"),
        ("DOW = sunday OR MOY = January", "((DOW = SUNDAY) OR (MOY = JANUARY))", "DOW = SUNDAY OR MOY = JANUARY"),
        ("MOY = MAY AND DOW <> SATURDAY", "((MOY = MAY) AND (DOW <> SATURDAY))", "MOY = MAY AND DOW <> SATURDAY"),
        // Short day and month names are labels, as in T3000 (SAT: supply air temperature).
        ("SAT > 20 AND EXP", "((SAT > 20) AND EXP)", "SAT > 20 AND EXP"),
        ("AY3[A + 1] * 2", "(AY3[ A + 1 ] * 2)", "AY3[ A + 1 ] * 2"),
    ];
    for (text, grouping, printed) in cases {
        let e = expr_of(text);
        assert_eq!(grouped(&e), *grouping, "{text}");
        assert_eq!(print_expr(&e), *printed, "{text}");
        assert_eq!(expr_of(printed), e, "{text}");
    }
}

#[test]
fn statements_of_every_kind_round_trip() {
    let text = "\u{feff}10 REM  two spaces kept\r\n\
                20 LET A = 1\r\n\
                \r\n\
                30 start OUT3   \r\n\
                40 STOP 2-OUT4\n\
                50 ENABLE PRG2\n\
                60 DISABLE PRG2\n\
                70 OPEN VAR1\n\
                80 CLOSE VAR1\n\
                90 GOSUB 200\n\
                100 ON A GOTO 10, 20, 30\n\
                110 ON A + 1 GOSUB 200\n\
                120 IF+ IN1 THEN START OUT1 , B = B + 1 ELSE 130\n\
                130 IF- IN1 THEN GOTO 10\n\
                140 FOR I = 1 TO 10 STEP 2\n\
                150 NEXT I\n\
                160 NEXT\n\
                170 WAIT 0:00:10\n\
                180 ALARM IN1 > 30 , 2 , Room too hot, check the fan\n\
                190 DALARM NOT IN2 , 10 , No flow\n\
                195 PRINT DATE ; TIME ; \"T=\" ; IN1 ; BEEP ; TIME + 1\n\
                200 RETURN\n\
                210 END\n\
                220 CLEAR\n\
                230 ON-ALARM 10\n\
                240 ON_ERROR 20\n\
                250 HANGUP\n\
                255 run-system 3\n\
                260 CALL PRG2 = 1, 2\n\
                270 INTEGER COUNT, T(10)\n\
                280 COUNT = COUNT + T(2) + VAR1\n\
                290 IF A THEN REM nothing, ELSE here\n\
                300 IF A THEN ON B GOTO 10, 20 , STOP OUT1\n\
                310 19.1.REG2 = 2.1.MB_REG1 / 10\n\
                320 VAR1 = 123456AV3 + 1.2.BI4\0\0";
    let p = parse(text).unwrap();
    assert_eq!(p.lines.len(), 34);
    assert_eq!(p.lines[0].stmt, Stmt::Rem(" two spaces kept".into()));
    assert_eq!(p.lines[1].stmt, Stmt::Assign { target: Target::Local("A".into()), value: Expr::Num(Milli(1000)) });
    assert_eq!(p.lines[2].pos.line, 4);
    assert_eq!(
        p.lines[17].stmt,
        Stmt::Alarm {
            left: Expr::Point(PointRef {
                panel: None,
                sub_panel: None,
                kind: PointKind::In,
                number: 1,
                index: None,
                pos: Pos::default()
            }),
            above: true,
            right: Expr::Num(Milli(30000)),
            hysteresis: Expr::Num(Milli(2000)),
            message: "Room too hot, check the fan".into(),
        }
    );
    assert_eq!(
        p.lines[29].stmt,
        Stmt::Assign {
            target: Target::Local("COUNT".into()),
            value: Expr::Binary(
                BinOp::Add,
                Box::new(Expr::Binary(
                    BinOp::Add,
                    Box::new(Expr::Local("COUNT".into())),
                    Box::new(Expr::LocalIndex("T".into(), vec![Expr::Num(Milli(2000))]))
                )),
                Box::new(Expr::Point(PointRef {
                    panel: None,
                    sub_panel: None,
                    kind: PointKind::Var,
                    number: 1,
                    index: None,
                    pos: Pos::default()
                }))
            )
        }
    );
    assert_eq!(p.lines[26].stmt, Stmt::Other { keyword: "RUN-MACRO".into(), text: "3".into() });
    let Stmt::If { then, .. } = &p.lines[31].stmt else { panic!() };
    assert_eq!(then.len(), 2, "{then:?}");
    assert_round_trip(&p, "every statement");
    assert_eq!(print(&p).lines().take(3).collect::<Vec<_>>(), ["10 REM  two spaces kept", "20 A = 1", "30 START OUT3"]);
}

#[test]
fn statements_kept_as_written_end_at_else_in_a_then_clause() {
    let p = parse(
        "10 IF A THEN HANGUP ELSE GOTO 10\n\
         20 IF A THEN B = 1 , DALARM B > 2 , 5 , Pump off ELSE STOP OUT1 , PHONE 439-6140,,911\n\
         30 IF A THEN REM all of it ELSE GOTO 10",
    )
    .unwrap();
    let clauses = |i: usize| match &p.lines[i].stmt {
        Stmt::If { then, otherwise, .. } => (then.clone(), otherwise.clone()),
        other => panic!("{other:?}"),
    };
    assert_eq!(clauses(0), (vec![Stmt::Other { keyword: "HANGUP".into(), text: String::new() }], vec![Stmt::Goto(10)]));
    let (then, otherwise) = clauses(1);
    assert!(matches!(&then[1], Stmt::Dalarm { message, .. } if message == "Pump off"), "{then:?}");
    assert_eq!(otherwise[1], Stmt::Other { keyword: "PHONE".into(), text: "439-6140,,911".into() });
    assert_eq!(clauses(2), (vec![Stmt::Rem("all of it ELSE GOTO 10".into())], vec![]));
    assert_round_trip(&p, "clauses with statements kept as written");
}

#[test]
fn labels_keep_their_position() {
    let p = parse("10 A = 1\n20  WH-SP = WHN-SP - 1.50").unwrap();
    let Stmt::Assign { target: Target::Label(name, pos), value } = &p.lines[1].stmt else { panic!() };
    assert_eq!((name.as_str(), pos.line, pos.column), ("WH-SP", 2, 5));
    let Expr::Binary(BinOp::Sub, l, r) = value else { panic!() };
    let Expr::Label(name, pos) = &**l else { panic!() };
    assert_eq!((name.as_str(), pos.line, pos.column), ("WHN-SP", 2, 13));
    assert_eq!(**r, Expr::Num(Milli(1500)));
}

#[test]
fn deep_or_long_expressions_are_refused_not_overflowing_the_stack() {
    let deep = [
        format!("10 A = {}1{}", "(".repeat(100_000), ")".repeat(100_000)),
        format!("10 A = {}1", "NOT ".repeat(100_000)),
        format!("10 A = {}1", "- ".repeat(100_000)),
        format!("10 A = 1{}", " AND 1".repeat(100_000)),
        format!("10 A = 1{}", " + 1".repeat(100_000)),
        format!("10 A = 1{}", " * 1".repeat(100_000)),
        format!("10 A = 1{}", " ^ 1".repeat(100_000)),
        format!("10 A = {}1{}", "ABS(".repeat(100_000), ")".repeat(100_000)),
        format!("10 A = {}1{}", "AY1[".repeat(100_000), "]".repeat(100_000)),
    ];
    for text in &deep {
        let e = parse(text).expect_err(&text[..20]);
        assert!(e.message.contains("nests more than 120 operations deep"), "{}: {e}", &text[..20]);
    }
    // Real lines stay far below the limit: 50 conditions joined by AND, 100 terms.
    let wide = format!("10 IF A{} THEN B = 1{}", " AND NOT A = 1".repeat(50), " + 1".repeat(100));
    assert_round_trip(&parse(&wide).unwrap(), "50 ANDs");
}

// ---- random inputs ----

fn real_texts() -> &'static [String] {
    static TEXTS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    TEXTS.get_or_init(|| REAL.iter().map(|(n, _)| data(n)).collect())
}

/// Pieces that make mutations likely to stay near the language.
const SNIPPETS: &[&str] = &[
    " ",
    "\n",
    "\r\n",
    "-",
    "+",
    "*",
    "/",
    "\\",
    "^",
    "=",
    "<>",
    "<=",
    "(",
    ")",
    "[",
    "]",
    ",",
    ";",
    ":",
    "\"",
    "IF ",
    " THEN ",
    " ELSE ",
    "IF+ ",
    "NOT ",
    " AND ",
    " OR ",
    "VAR",
    "1-",
    "2.",
    "19.1.REG",
    "AY3[",
    "TIME-ON(",
    "MAX(",
    "0:00:",
    "12",
    "1.5",
    "E+9",
    "REM ",
    "GOTO ",
    "ON ",
    "FOR I = 1 TO ",
    "NEXT",
    "PRINT ",
    "ALARM ",
    "DALARM ",
    "WAIT ",
    "é",
    "\0",
    "`",
    "'",
    "!",
    "99999999999",
];

#[derive(Debug, Clone)]
enum Edit {
    Delete(usize, usize),
    Insert(usize, usize),
    Swap(usize, usize),
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for e in edits {
        let n = chars.len().max(1);
        match *e {
            Edit::Delete(at, len) => {
                let at = at % n;
                let end = (at + len % 8).min(chars.len());
                if at < chars.len() {
                    chars.drain(at..end);
                }
            }
            Edit::Insert(at, piece) => {
                let at = (at % n).min(chars.len());
                let piece = SNIPPETS[piece % SNIPPETS.len()];
                chars.splice(at..at, piece.chars());
            }
            Edit::Swap(a, b) => {
                if !chars.is_empty() {
                    let (a, b) = (a % chars.len(), b % chars.len());
                    chars.swap(a, b);
                }
            }
        }
    }
    chars.into_iter().collect()
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::Delete(a, b)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::Insert(a, b)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::Swap(a, b)),
    ]
}

/// Parsing never panics; whatever parses prints back to itself.
fn check_any(text: &str) {
    if let Ok(p) = parse(text) {
        assert_round_trip(&p, text);
    }
}

/// Expressions of the kinds the parser builds (non-negative numbers, functions with their
/// arities), to check that printing keeps every grouping.
fn any_expr() -> impl Strategy<Value = Expr> {
    let point = (
        prop::option::of(1u32..200),
        prop::bool::ANY,
        prop::sample::select(vec![
            PointKind::Var,
            PointKind::In,
            PointKind::Out,
            PointKind::Reg,
            PointKind::MbReg,
            PointKind::Av,
        ]),
        1u32..300,
    )
        .prop_map(|(panel, sub, kind, number)| {
            let sub_panel = panel.filter(|_| sub).map(|p| p + 1);
            // The parser reads a VAR of a sub-network device as a REG.
            let kind = if kind == PointKind::Var && sub_panel.is_some() { PointKind::Reg } else { kind };
            Expr::Point(PointRef { panel, sub_panel, kind, number, index: None, pos: Pos::default() })
        });
    let leaf = prop_oneof![
        (0i32..i32::MAX).prop_map(|v| Expr::Num(Milli(v))),
        (0u32..360_000).prop_map(Expr::Time),
        point,
        prop::sample::select(vec!["A", "B", "Z"]).prop_map(|s| Expr::Local(s.into())),
        prop::sample::select(vec!["WH-SP", "OAT", "T2_TOP", "SF.S/S"])
            .prop_map(|s| Expr::Label(s.into(), Pos::default())),
        prop::sample::select(vec![Func::Time, Func::Dow, Func::PowerLoss, Func::Day(3), Func::Month(5), Func::UserA])
            .prop_map(|f| Expr::Call(f, vec![])),
    ];
    leaf.prop_recursive(5, 48, 4, |inner| {
        let ops = vec![
            BinOp::And,
            BinOp::Or,
            BinOp::Xor,
            BinOp::Eq,
            BinOp::Ne,
            BinOp::Lt,
            BinOp::Gt,
            BinOp::Le,
            BinOp::Ge,
            BinOp::Add,
            BinOp::Sub,
            BinOp::Mul,
            BinOp::Div,
            BinOp::IntDiv,
            BinOp::Mod,
            BinOp::BitAnd,
            BinOp::BitOr,
            BinOp::Pow,
        ];
        prop_oneof![
            (prop::sample::select(ops), inner.clone(), inner.clone()).prop_map(|(op, l, r)| Expr::Binary(
                op,
                Box::new(l),
                Box::new(r)
            )),
            (prop::bool::ANY, inner.clone())
                .prop_map(|(neg, x)| Expr::Unary(if neg { UnOp::Neg } else { UnOp::Not }, Box::new(x))),
            (prop::sample::select(vec![Func::Abs, Func::Exp, Func::TimeOn, Func::Interval]), inner.clone())
                .prop_map(|(f, x)| Expr::Call(f, vec![x])),
            (prop::sample::select(vec![Func::Max, Func::Avg, Func::Com1]), prop::collection::vec(inner.clone(), 1..4))
                .prop_map(|(f, xs)| Expr::Call(f, xs)),
            (prop::sample::select(vec![Func::Tbl, Func::WrOn, Func::PidRate]), inner.clone(), inner)
                .prop_map(|(f, a, b)| Expr::Call(f, vec![a, b])),
        ]
    })
}

fn any_target() -> impl Strategy<Value = Target> {
    prop_oneof![
        prop::sample::select(vec!["A", "I", "Z"]).prop_map(|s| Target::Local(s.into())),
        prop::sample::select(vec!["WH-SP", "FAN", "T2_TOP"]).prop_map(|s| Target::Label(s.into(), Pos::default())),
        (prop::option::of(1u32..20), 1u32..128).prop_map(|(panel, number)| {
            Target::Point(PointRef {
                panel,
                sub_panel: None,
                kind: PointKind::Out,
                number,
                index: None,
                pos: Pos::default(),
            })
        }),
    ]
}

/// Free text as REM, ALARM and DALARM keep it (no line end, no white space at its end).
fn free_text(first: &'static str) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("({first}[A-Za-z0-9 *,.;:!?()=<>\"-]{{0,24}})?"))
        .expect("a valid pattern")
        .prop_map(|s| s.trim_end().to_string())
}

/// Statements that may stand in a THEN / ELSE clause, followed by `,` or ELSE.
fn clause_stmt() -> impl Strategy<Value = Stmt> {
    let print_item = prop_oneof![
        "[A-Za-z0-9 :;,]{0,10}".prop_map(PrintItem::Text),
        Just(PrintItem::Date),
        Just(PrintItem::Time),
        Just(PrintItem::UserA),
        Just(PrintItem::UserB),
        Just(PrintItem::Beep),
        any_expr()
            .prop_filter("reads as a print item", |e| {
                !matches!(e, Expr::Call(Func::Time | Func::UserA | Func::UserB, args) if args.is_empty())
            })
            .prop_map(PrintItem::Value),
    ];
    prop_oneof![
        (any_target(), any_expr()).prop_map(|(target, value)| Stmt::Assign { target, value }),
        any_target().prop_map(Stmt::Start),
        any_target().prop_map(Stmt::Stop),
        any_target().prop_map(Stmt::Enable),
        any_target().prop_map(Stmt::Close),
        (1u16..=65535).prop_map(Stmt::Goto),
        (1u16..=65535).prop_map(Stmt::Gosub),
        Just(Stmt::Return),
        Just(Stmt::End),
        Just(Stmt::Clear),
        any_expr().prop_map(Stmt::Wait),
        (any_expr(), prop::bool::ANY, prop::collection::vec(1u16..=65535, 1..4))
            .prop_map(|(selector, gosub, targets)| Stmt::On { selector, gosub, targets }),
        prop::collection::vec(print_item, 1..4).prop_map(Stmt::Print),
        (1u16..=65535).prop_map(Stmt::OnAlarm),
        (1u16..=65535).prop_map(Stmt::OnError),
    ]
}

/// Statements that run to the end of the line, or of a THEN clause at its ELSE: they end a
/// clause.
fn clause_tail() -> impl Strategy<Value = Stmt> {
    let text = |first| free_text(first).prop_filter("no ELSE in it", |t| !t.to_uppercase().contains("ELSE"));
    prop_oneof![
        (prop::sample::select(vec!["HANGUP", "PHONE", "SET-PRINTER", "CALL"]), text("[A-Za-z0-9]"))
            .prop_map(|(k, text)| Stmt::Other { keyword: k.into(), text }),
        (any_expr(), prop::bool::ANY, any_expr(), any_expr(), text("[A-Za-z]")).prop_map(
            |(left, above, right, hysteresis, message)| Stmt::Alarm { left, above, right, hysteresis, message }
        ),
        (any_expr(), any_expr(), text("[A-Za-z]")).prop_map(|(cond, delay, message)| Stmt::Dalarm {
            cond,
            delay,
            message
        }),
    ]
}

/// Statements of a line of their own.
fn any_stmt() -> impl Strategy<Value = Stmt> {
    let clause = || {
        (prop::collection::vec(clause_stmt(), 1..4), prop::option::of(clause_tail())).prop_map(|(mut stmts, tail)| {
            stmts.extend(tail);
            stmts
        })
    };
    prop_oneof![
        clause_stmt(),
        free_text("[A-Za-z* ]").prop_map(Stmt::Rem),
        (
            prop::sample::select(vec![IfKind::Plain, IfKind::Rising, IfKind::Falling]),
            any_expr(),
            clause(),
            prop::option::of(clause())
        )
            .prop_map(|(kind, cond, then, otherwise)| Stmt::If {
                kind,
                cond,
                then,
                otherwise: otherwise.unwrap_or_default()
            }),
        (any_target(), any_expr(), any_expr(), prop::option::of(any_expr()))
            .prop_map(|(var, from, to, step)| Stmt::For { var, from, to, step }),
        prop::option::of(any_target()).prop_map(Stmt::Next),
        (any_expr(), prop::bool::ANY, any_expr(), any_expr(), free_text("[A-Za-z]")).prop_map(
            |(left, above, right, hysteresis, message)| Stmt::Alarm { left, above, right, hysteresis, message }
        ),
        (any_expr(), any_expr(), free_text("[A-Za-z]")).prop_map(|(cond, delay, message)| Stmt::Dalarm {
            cond,
            delay,
            message
        }),
        (prop::sample::select(vec!["HANGUP", "PHONE", "SET-PRINTER", "CALL", "INTEGER"]), free_text("[A-Za-z0-9]"))
            .prop_map(|(k, text)| Stmt::Other { keyword: k.into(), text }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_text_never_panics(text in "[0-9A-Za-z +\\-*/^=<>(),;:.\"\\[\\]\n\r\t&|%!'`\\\\_é\u{feff}\u{0}]{0,160}") {
        check_any(&text);
    }

    #[test]
    fn random_lines_never_panic(text in "(([0-9]{1,6} )?[0-9A-Z +\\-*/^=<>(),;:.\\[\\]&|%_]{0,40}\n){0,6}") {
        check_any(&text);
    }

    #[test]
    fn mutated_real_programs_never_panic(file in 0usize..REAL.len(), edits in prop::collection::vec(edit(), 1..6)) {
        check_any(&apply(&real_texts()[file], &edits));
    }

    #[test]
    fn printed_expressions_read_back_the_same(e in any_expr()) {
        let text = format!("10 Z = {}", print_expr(&e));
        let p = parse(&text).map_err(|err| TestCaseError::fail(format!("{text}: {err}")))?;
        let Stmt::Assign { value, .. } = &p.lines[0].stmt else { panic!() };
        prop_assert_eq!(value, &e, "{}", text);
    }

    #[test]
    fn printed_programs_read_back_the_same(
        lines in prop::collection::vec((1u16..=65535, any_stmt()), 1..6)
    ) {
        let p = Program {
            lines: lines.into_iter().map(|(number, stmt)| Line { number, stmt, pos: Pos::default() }).collect(),
        };
        let text = print(&p);
        let again = parse(&text).map_err(|err| TestCaseError::fail(format!("{text}: {err}")))?;
        prop_assert_eq!(&again, &p, "{}", text);
    }
}
