//! The Control BASIC runner (`t3_core::basic::run`) against a mock world: points in a map, every
//! write and alarm recorded, and a clock the test moves (`now` and `elapsed_ms` are passed in).
//! Programs are written as text and parsed.

use std::collections::HashMap;

use chrono::{NaiveDate, NaiveDateTime};
use t3_core::basic::ast::{PointKind, Program};
use t3_core::basic::parse::parse;
use t3_core::basic::run::{Env, Limits, Machine, PointName, RunError, Scan};

/// Point ids: VARn is 1000 + n, INn 2000 + n, OUTn 3000 + n; labels below.
fn resolve(name: PointName<'_>) -> Result<u32, String> {
    match name {
        PointName::Ref(p) => {
            if p.panel.is_some() {
                return Err(format!("panel {} is not known", p.panel.unwrap_or(0)));
            }
            let base = match p.kind {
                PointKind::Var => 1000,
                PointKind::In => 2000,
                PointKind::Out => 3000,
                _ => return Err(format!("{} points are not known here", p.kind.name())),
            };
            if p.number == 0 || p.number > 128 {
                return Err(format!("{}{} does not exist", p.kind.name(), p.number));
            }
            Ok(base + p.number)
        }
        PointName::Label(l) => match l {
            "WH-SP" => Ok(1010),
            "FAN" => Ok(3009),
            _ => Err(format!("no point is labelled {l}")),
        },
    }
}

fn var(n: u32) -> u32 {
    1000 + n
}
fn input(n: u32) -> u32 {
    2000 + n
}
fn out(n: u32) -> u32 {
    3000 + n
}

/// The points, with every write and alarm the program made. A write is seen by later reads, as a
/// controller's variables are.
#[derive(Debug, Default)]
struct World {
    values: HashMap<u32, f64>,
    writes: Vec<(u32, f64)>,
    alarms: Vec<(u16, String, bool)>,
}

impl World {
    fn with(points: &[(u32, f64)]) -> World {
        World { values: points.iter().copied().collect(), ..World::default() }
    }
    fn set(&mut self, id: u32, v: f64) {
        self.values.insert(id, v);
    }
    fn get(&self, id: u32) -> f64 {
        self.values.get(&id).copied().unwrap_or(f64::NAN)
    }
}

impl Env for World {
    fn read(&mut self, id: u32) -> Option<f64> {
        self.values.get(&id).copied()
    }
    fn write(&mut self, id: u32, value: f64) {
        self.values.insert(id, value);
        self.writes.push((id, value));
    }
    fn alarm(&mut self, line_number: u16, message: &str, raised: bool) {
        self.alarms.push((line_number, message.to_string(), raised));
    }
}

fn program(text: &str) -> Program {
    parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn bind(text: &str) -> Result<Machine, RunError> {
    Machine::new(&program(text), Limits::default(), &mut resolve)
}

fn machine(text: &str) -> Machine {
    bind(text).unwrap_or_else(|e| panic!("{e}"))
}

/// Sunday 6 December 2026, 08:30:15.
fn morning() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2026, 12, 6).unwrap().and_hms_opt(8, 30, 15).unwrap()
}

fn scan(m: &mut Machine, w: &mut World) -> Scan {
    m.scan(w, morning(), 1000).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs one scan of `text` and answers the world.
fn once(text: &str, points: &[(u32, f64)]) -> World {
    let mut w = World::with(points);
    scan(&mut machine(text), &mut w);
    w
}

#[test]
fn fixed_point_arithmetic_as_the_controller_computes_it() {
    let w = once(
        "10 VAR1 = 1.5 * 3\n\
         20 VAR2 = 10 / 3\n\
         30 VAR3 = -10 / 3\n\
         40 VAR4 = 7 \\ 2\n\
         50 VAR5 = 7.5 MOD 2\n\
         60 VAR6 = 0.333 * 3\n\
         70 VAR7 = 0.007 * 0.5\n\
         80 VAR8 = 2 / 3\n\
         90 VAR9 = 2.5 * 2.5\n\
         100 VAR10 = 1 - 2.25 + 0.5\n\
         110 VAR11 = -1.5 * 1.5\n",
        &[],
    );
    assert_eq!(w.get(var(1)), 4.5);
    assert_eq!(w.get(var(2)), 3.333);
    assert_eq!(w.get(var(3)), -3.333);
    assert_eq!(w.get(var(4)), 3.0);
    // MOD keeps the integer part of the remainder (7.5 MOD 2 is 1.5 exactly, the firmware says 1).
    assert_eq!(w.get(var(5)), 1.0);
    // Multiplication truncates: 0.333 * 3 = 0.999; 0.007 * 0.5 = 0.003 (0.0035 exactly).
    assert_eq!(w.get(var(6)), 0.999);
    assert_eq!(w.get(var(7)), 0.003);
    assert_eq!(w.get(var(8)), 0.666);
    assert_eq!(w.get(var(9)), 6.25);
    assert_eq!(w.get(var(10)), -0.75);
    assert_eq!(w.get(var(11)), -2.25);
}

#[test]
fn power_multiplies_integer_times_and_x_to_the_0_is_x() {
    let w = once(
        "10 VAR1 = 2 ^ 3\n\
         20 VAR2 = 5 ^ 0\n\
         30 VAR3 = 5 ^ 1\n\
         40 VAR4 = 1.5 ^ 2\n\
         50 VAR5 = 2 ^ 2.9\n\
         60 VAR6 = -1 ^ 3\n\
         70 VAR7 = 0.5 ^ 100000\n",
        &[],
    );
    assert_eq!(w.get(var(1)), 8.0);
    assert_eq!(w.get(var(2)), 5.0);
    assert_eq!(w.get(var(3)), 5.0);
    assert_eq!(w.get(var(4)), 2.25);
    assert_eq!(w.get(var(5)), 4.0);
    // Unary minus binds to its operand: (-1) ^ 3.
    assert_eq!(w.get(var(6)), -1.0);
    assert_eq!(w.get(var(7)), 0.0);
}

#[test]
fn comparisons_give_a_raw_one_and_logic_gives_a_whole_one() {
    let w = once(
        "10 VAR1 = 5 > 3\n\
         20 VAR2 = 5 < 3\n\
         30 VAR3 = 5 > 3 AND 2 > 1\n\
         40 VAR4 = 0 OR 0\n\
         50 VAR5 = NOT 0\n\
         60 VAR6 = NOT 5\n\
         70 VAR7 = 6 XOR 3\n\
         80 VAR8 = 6 & 3\n\
         90 VAR9 = 6 | 3\n\
         100 VAR10 = 3 = 3\n\
         110 VAR11 = 3 <> 3\n\
         120 VAR12 = 2 >= 2\n\
         130 VAR13 = 2 <= 1\n\
         140 IF 5 > 3 THEN VAR14 = 1\n\
         150 IF 0.001 THEN VAR15 = 1\n",
        &[],
    );
    // `VAR1 = 5 > 3` stores 0.001 on the controller.
    assert_eq!(w.get(var(1)), 0.001);
    assert_eq!(w.get(var(2)), 0.0);
    assert_eq!(w.get(var(3)), 1.0);
    assert_eq!(w.get(var(4)), 0.0);
    assert_eq!(w.get(var(5)), 0.001);
    assert_eq!(w.get(var(6)), 0.0);
    assert_eq!(w.get(var(7)), 5.0);
    assert_eq!(w.get(var(8)), 2.0);
    assert_eq!(w.get(var(9)), 7.0);
    assert_eq!(w.get(var(10)), 0.001);
    assert_eq!(w.get(var(11)), 0.0);
    assert_eq!(w.get(var(12)), 0.001);
    assert_eq!(w.get(var(13)), 0.0);
    assert_eq!(w.get(var(14)), 1.0);
    assert_eq!(w.get(var(15)), 1.0);
}

#[test]
#[allow(clippy::approx_constant)] // e truncated to thousandths is what the controller gives
fn functions() {
    let w = once(
        "10 VAR1 = ABS(-2.5)\n\
         20 VAR2 = INT(-2.7)\n\
         30 VAR3 = INT(2.7)\n\
         40 VAR4 = AVG(1, 2, 4)\n\
         50 VAR5 = MAX(1, 5, 3)\n\
         60 VAR6 = MIN(4, -1, 3)\n\
         70 VAR7 = SQR(2)\n\
         80 VAR8 = SQR(16)\n\
         90 VAR9 = LN(1)\n\
         100 VAR10 = LN-1(1)\n\
         110 VAR11 = SIN(30)\n\
         120 VAR12 = COS(0)\n\
         130 VAR13 = SIN(90)\n\
         140 VAR14 = MAX(IN1)\n\
         150 VAR15 = LN(10)\n",
        &[(input(1), 7.0)],
    );
    assert_eq!(w.get(var(1)), 2.5);
    assert_eq!(w.get(var(2)), -2.0);
    assert_eq!(w.get(var(3)), 2.0);
    assert_eq!(w.get(var(4)), 2.333);
    assert_eq!(w.get(var(5)), 5.0);
    assert_eq!(w.get(var(6)), -1.0);
    assert_eq!(w.get(var(7)), 1.414);
    assert_eq!(w.get(var(8)), 4.0);
    assert_eq!(w.get(var(9)), 0.0);
    assert_eq!(w.get(var(10)), 2.718);
    // The firmware's pi (3.14159) and truncation: SIN(30) is 0.499 on the controller.
    assert_eq!(w.get(var(11)), 0.499);
    assert_eq!(w.get(var(12)), 1.0);
    assert_eq!(w.get(var(13)), 1.0);
    assert_eq!(w.get(var(14)), 7.0);
    assert_eq!(w.get(var(15)), 2.302);
}

#[test]
fn calendar_functions_come_from_now() {
    let w = once(
        "10 VAR1 = TIME\n\
         20 VAR2 = DOW\n\
         30 VAR3 = DOM\n\
         40 VAR4 = DOY\n\
         50 VAR5 = MOY\n\
         60 IF DOW = SUNDAY THEN VAR6 = 1\n\
         70 IF MOY = DECEMBER THEN VAR7 = 1\n\
         80 IF TIME > 8:30 AND TIME < 8:31 THEN VAR8 = 1\n\
         90 VAR9 = SATURDAY\n",
        &[],
    );
    assert_eq!(w.get(var(1)), 30615.0);
    assert_eq!(w.get(var(2)), 0.0);
    assert_eq!(w.get(var(3)), 6.0);
    assert_eq!(w.get(var(4)), 340.0);
    assert_eq!(w.get(var(5)), 12.0);
    assert_eq!(w.get(var(6)), 1.0);
    assert_eq!(w.get(var(7)), 1.0);
    assert_eq!(w.get(var(8)), 1.0);
    assert_eq!(w.get(var(9)), 6.0);

    // Saturday 2 January 2027, 23:59:59.
    let mut m = machine("10 VAR1 = DOW\n20 VAR2 = DOY\n30 VAR3 = TIME\n40 VAR4 = MOY\n");
    let mut w = World::default();
    let t = NaiveDate::from_ymd_opt(2027, 1, 2).unwrap().and_hms_opt(23, 59, 59).unwrap();
    m.scan(&mut w, t, 1000).unwrap();
    assert_eq!((w.get(var(1)), w.get(var(2)), w.get(var(3)), w.get(var(4))), (6.0, 2.0, 86399.0, 1.0));
}

#[test]
fn point_values_are_rounded_to_thousandths_when_read() {
    let w = once("10 VAR1 = IN1\n20 VAR2 = IN2 * 2\n", &[(input(1), 1.23456), (input(2), -0.0005)]);
    assert_eq!(w.get(var(1)), 1.235);
    assert_eq!(w.get(var(2)), -0.002);
}

#[test]
fn timers_accumulate_across_scans() {
    let mut m = machine(
        "10 VAR1 = TIME-ON(IN1)\n\
         20 VAR2 = TIME-OFF(IN1)\n\
         30 IF TIME-ON(IN1) > 0:00:02 THEN START OUT1 ELSE STOP OUT1\n",
    );
    let mut w = World::with(&[(input(1), 0.0)]);
    let mut seen = Vec::new();
    for input_on in [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0] {
        w.set(input(1), input_on);
        scan(&mut m, &mut w);
        seen.push((w.get(var(1)), w.get(var(2)), w.get(out(1))));
    }
    assert_eq!(
        seen,
        vec![
            (0.0, 0.0, 0.0),
            (0.0, 1.0, 0.0),
            (0.0, 2.0, 0.0),
            (0.0, 0.0, 0.0),
            (1.0, 0.0, 0.0),
            (2.0, 0.0, 0.0),
            (3.0, 0.0, 1.0),
            (0.0, 0.0, 0.0),
            (0.0, 1.0, 0.0),
        ]
    );
    // Uneven scans: the time is the sum of elapsed_ms.
    let mut m = machine("10 VAR1 = TIME-ON(IN1)\n");
    let mut w = World::with(&[(input(1), 1.0)]);
    for ms in [0, 250, 1500, 20] {
        m.scan(&mut w, morning(), ms).unwrap();
    }
    assert_eq!(w.get(var(1)), 1.77);
}

#[test]
fn timers_look_at_their_argument_when_the_scan_starts() {
    // A is 0 when the first scan starts: the timer sees it set only from the second scan on.
    let mut m = machine("10 A = 1\n20 VAR1 = TIME-ON(A)\n30 VAR2 = TIME-OFF(A)\n");
    let mut w = World::default();
    let mut seen = Vec::new();
    for _ in 0..3 {
        scan(&mut m, &mut w);
        seen.push((w.get(var(1)), w.get(var(2))));
    }
    assert_eq!(seen, vec![(0.0, 0.0), (0.0, 0.0), (1.0, 0.0)]);
}

#[test]
fn interval_is_false_first_then_true_once_every_period() {
    let mut m = machine("10 IF INTERVAL(3) THEN VAR1 = VAR1 + 1\n20 VAR2 = INTERVAL(1)\n");
    let mut w = World::with(&[(var(1), 0.0)]);
    let mut seen = Vec::new();
    for _ in 0..8 {
        scan(&mut m, &mut w);
        seen.push((w.get(var(1)), w.get(var(2))));
    }
    // The clock reads 0, 1, ... 7 s: true at 3 s and 6 s; INTERVAL(1) pushes a raw 1 (0.001).
    assert_eq!(
        seen,
        vec![
            (0.0, 0.0),
            (0.0, 0.001),
            (0.0, 0.001),
            (1.0, 0.001),
            (1.0, 0.001),
            (1.0, 0.001),
            (2.0, 0.001),
            (2.0, 0.001)
        ]
    );
}

#[test]
fn interval_counts_every_evaluation_as_the_controller_does() {
    // A loop that waits for INTERVAL within one scan (as BTUMeter5 line 390 does): every
    // evaluation counts the scan's elapsed time, so the loop ends.
    let mut m = machine("10 A = A + 1\n20 IF INTERVAL(1) THEN 30 ELSE 10\n30 VAR1 = A\n");
    let mut w = World::default();
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(scan(&mut m, &mut w).steps);
        seen.push(w.get(var(1)) as u32);
    }
    // First scan: false at the first evaluation, true at the second (A = 2); then true at once.
    assert_eq!(seen, vec![7, 2, 4, 3, 4, 4]);
    // A first scan given no elapsed time (there was no scan before) counts T3000's 1 s period.
    m.restart();
    assert_eq!(m.scan(&mut w, morning(), 0).unwrap().steps, 7);

    // Skipped in a scan, INTERVAL loses that scan's time: line 20 runs only on even scans.
    let mut m = machine("10 IF IN1 THEN 30\n20 IF INTERVAL(4) THEN VAR1 = VAR1 + 1\n30 END\n");
    let mut w = World::with(&[(var(1), 0.0)]);
    let mut fired = Vec::new();
    for i in 0..12 {
        w.set(input(1), f64::from(i % 2));
        scan(&mut m, &mut w);
        fired.push(w.get(var(1)));
    }
    assert_eq!(fired, vec![0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0]);
}

#[test]
fn edges_fire_once_per_transition_and_the_first_scan_counts_from_false() {
    let mut m = machine(
        "10 IF+ IN1 THEN VAR1 = VAR1 + 1 ELSE VAR3 = VAR3 + 1\n\
         20 IF- IN1 THEN VAR2 = VAR2 + 1\n",
    );
    let mut w = World::with(&[(var(1), 0.0), (var(2), 0.0), (var(3), 0.0)]);
    let mut seen = Vec::new();
    for v in [1.0, 1.0, 0.0, 0.0, 1.0] {
        w.set(input(1), v);
        scan(&mut m, &mut w);
        seen.push((w.get(var(1)), w.get(var(2)), w.get(var(3))));
    }
    assert_eq!(seen, vec![(1.0, 0.0, 0.0), (1.0, 0.0, 1.0), (1.0, 1.0, 2.0), (1.0, 1.0, 3.0), (2.0, 1.0, 3.0)]);

    // IF- does not fire on the first scan when the condition is false.
    let mut m = machine("10 IF- IN1 THEN VAR1 = 1\n");
    let mut w = World::with(&[(input(1), 0.0)]);
    scan(&mut m, &mut w);
    assert!(w.writes.is_empty());
    // A restart forgets the edge: IF+ fires again although IN1 stayed true.
    let mut m = machine("10 IF+ IN1 THEN VAR1 = VAR1 + 1\n");
    let mut w = World::with(&[(input(1), 1.0), (var(1), 0.0)]);
    scan(&mut m, &mut w);
    scan(&mut m, &mut w);
    m.restart();
    scan(&mut m, &mut w);
    assert_eq!(w.get(var(1)), 2.0);
}

#[test]
fn wait_suspends_the_program_and_resumes_at_the_wait() {
    let mut m = machine("10 VAR1 = VAR1 + 1\n20 WAIT 3\n30 VAR2 = VAR2 + 1\n");
    let mut w = World::with(&[(var(1), 0.0), (var(2), 0.0)]);
    let mut seen = Vec::new();
    for _ in 0..6 {
        let s = scan(&mut m, &mut w);
        seen.push((w.get(var(1)), w.get(var(2)), s.waiting));
    }
    assert_eq!(
        seen,
        vec![
            (1.0, 0.0, true),
            (1.0, 0.0, true),
            (1.0, 0.0, true),
            (1.0, 1.0, false),
            (2.0, 1.0, true),
            (2.0, 1.0, true)
        ]
    );
    // A time literal, uneven scans, and a restart that forgets the WAIT.
    let mut m = machine("10 WAIT 0:00:02\n20 START OUT1\n");
    let mut w = World::default();
    assert!(m.scan(&mut w, morning(), 0).unwrap().waiting);
    assert!(m.scan(&mut w, morning(), 1999).unwrap().waiting);
    m.restart();
    assert!(m.scan(&mut w, morning(), 5000).unwrap().waiting, "a restart starts the WAIT over");
    assert!(!m.scan(&mut w, morning(), 2000).unwrap().waiting);
    assert_eq!(w.writes, vec![(out(1), 1.0)]);
}

#[test]
fn a_wait_inside_a_subroutine_returns_after_it() {
    let mut m = machine("10 GOSUB 100\n20 VAR1 = 1\n30 END\n100 WAIT 1\n110 RETURN\n");
    let mut w = World::default();
    assert!(scan(&mut m, &mut w).waiting);
    assert!(!scan(&mut m, &mut w).waiting);
    assert_eq!(w.get(var(1)), 1.0);
}

#[test]
fn gosub_and_return_nest() {
    let mut m = machine(
        "10 GOSUB 100\n\
         20 VAR1 = A\n\
         30 END\n\
         100 A = A + 1\n\
         110 GOSUB 200\n\
         120 RETURN\n\
         200 A = A * 10\n\
         210 RETURN\n",
    );
    let mut w = World::default();
    scan(&mut m, &mut w);
    assert_eq!(w.get(var(1)), 10.0);
    // Locals keep their values across scans.
    scan(&mut m, &mut w);
    assert_eq!(w.get(var(1)), 110.0);
}

#[test]
fn return_without_gosub_and_endless_recursion_are_errors() {
    let mut m = machine("10 VAR1 = 1\n20 RETURN\n");
    let e = m.scan(&mut World::default(), morning(), 1000).unwrap_err();
    assert_eq!((e.line_number, e.message.as_str()), (20, "RETURN without GOSUB"));
    assert_eq!(e.pos.line, 2);

    let mut m = machine("10 A = A + 1\n20 GOSUB 10\n");
    let e = m.scan(&mut World::default(), morning(), 1000).unwrap_err();
    assert_eq!(e.line_number, 20);
    assert!(e.message.contains("GOSUB nested more than 64 deep"), "{e}");
}

#[test]
fn on_goto_and_gosub_take_the_integer_part() {
    let text = "10 ON IN1 GOTO 20, 30\n15 VAR1 = 9\n16 END\n20 VAR1 = 1\n25 END\n30 VAR1 = 2\n";
    for (selector, expect) in [(1.0, 1.0), (1.7, 1.0), (2.0, 2.0), (3.0, 9.0), (0.0, 9.0), (-1.0, 9.0)] {
        let w = once(text, &[(input(1), selector)]);
        assert_eq!(w.get(var(1)), expect, "ON {selector}");
    }
    let w = once(
        "10 ON IN1 GOSUB 100, 200\n20 VAR2 = A\n30 END\n100 A = 1\n110 RETURN\n200 A = 2\n210 RETURN\n",
        &[(input(1), 2.0)],
    );
    assert_eq!(w.get(var(2)), 2.0);
}

#[test]
fn for_next_loops() {
    let w = once(
        "10 FOR I = 1 TO 5\n\
         20 A = A + I\n\
         30 NEXT I\n\
         40 VAR1 = A\n\
         50 VAR2 = I\n\
         60 FOR J = 1 TO 6 STEP 2\n\
         70 B = B + J\n\
         80 NEXT J\n\
         90 VAR3 = B\n\
         100 FOR K = 5 TO 1\n\
         110 VAR4 = 99\n\
         120 NEXT K\n\
         130 FOR L = 5 TO 1 STEP -1\n\
         140 C = C * 10 + L\n\
         150 NEXT\n\
         160 VAR5 = C\n\
         170 VAR6 = L\n\
         180 FOR I = 1 TO 3\n\
         190 FOR J = 1 TO 4\n\
         200 D = D + 1\n\
         210 NEXT J\n\
         220 NEXT I\n\
         230 VAR7 = D\n",
        &[],
    );
    assert_eq!(w.get(var(1)), 15.0);
    assert_eq!(w.get(var(2)), 6.0);
    assert_eq!(w.get(var(3)), 9.0);
    assert!(w.get(var(4)).is_nan(), "FOR 5 TO 1 skips its body");
    assert_eq!(w.get(var(5)), 54321.0);
    assert_eq!(w.get(var(6)), 0.0);
    assert_eq!(w.get(var(7)), 12.0);
}

#[test]
fn for_and_next_must_pair() {
    let e = bind("10 A = 1\n20 NEXT I\n").unwrap_err();
    assert_eq!((e.line_number, e.message.as_str()), (20, "NEXT without FOR"));
    let e = bind("10 FOR I = 1 TO 2\n20 A = 1\n").unwrap_err();
    assert_eq!((e.line_number, e.message.as_str()), (10, "FOR I without NEXT"));
    let e = bind("10 FOR I = 1 TO 2\n20 FOR J = 1 TO 2\n30 NEXT I\n40 NEXT J\n").unwrap_err();
    assert_eq!(e.line_number, 30);
    assert!(e.message.contains("innermost FOR J"), "{e}");
}

#[test]
fn the_step_budget_stops_an_endless_loop() {
    let mut m = machine("10 GOTO 10\n");
    let e = m.scan(&mut World::default(), morning(), 1000).unwrap_err();
    assert_eq!(e.line_number, 10);
    assert_eq!(e.message, "more than 10000 statements in one scan (an endless loop?)");

    let p = program("10 A = A + 1\n20 IF A < 100 THEN GOTO 10\n30 VAR1 = A\n");
    let mut m = Machine::new(&p, Limits { max_steps: 299 }, &mut resolve).unwrap();
    let e = m.scan(&mut World::default(), morning(), 1000).unwrap_err();
    assert!(e.message.starts_with("more than 299 statements"), "{e}");
    // 99 rounds of three statements (assignment, IF, the GOTO of its THEN), then three: 300.
    let mut m = Machine::new(&p, Limits { max_steps: 300 }, &mut resolve).unwrap();
    let mut w = World::default();
    assert_eq!(m.scan(&mut w, morning(), 1000).unwrap().steps, 300);
    assert_eq!(w.get(var(1)), 100.0);
}

#[test]
fn division_by_zero_stops_the_program_at_its_line() {
    for (op, line) in [("/", 20), ("\\", 20), ("MOD", 20)] {
        let mut m = machine(&format!("10 VAR1 = 1\n20 VAR2 = VAR1 {op} 0\n30 VAR3 = 1\n"));
        let mut w = World::default();
        let e = m.scan(&mut w, morning(), 1000).unwrap_err();
        assert_eq!((e.line_number, e.message.as_str()), (line, "division by zero"), "{op}");
        assert_eq!((e.pos.line, e.pos.column), (2, 1));
        assert_eq!(w.writes, vec![(var(1), 1.0)], "line 10 ran, line 30 did not");
    }
}

#[test]
fn unknown_points_and_lines_are_refused_when_bound() {
    let e = bind("10 VAR1 = 1\n20 VAR2 = NOPE + 1\n").unwrap_err();
    assert_eq!((e.line_number, e.message.as_str()), (20, "no point is labelled NOPE"));
    assert_eq!((e.pos.line, e.pos.column), (2, 11));
    let e = bind("10 VAR1 = 1\n20 IF VAR1 > 0 THEN VAR200 = 1\n").unwrap_err();
    assert_eq!((e.line_number, e.message.as_str()), (20, "VAR200 does not exist"));
    assert_eq!((e.pos.line, e.pos.column), (2, 21));
    for text in
        ["10 GOTO 70\n", "10 GOSUB 70\n", "10 IF 1 THEN 70\n", "10 ON 1 GOTO 10, 70\n", "10 IF 1 THEN 10 ELSE 70\n"]
    {
        let e = bind(text).unwrap_err();
        assert_eq!((e.line_number, e.message.as_str()), (10, "there is no line 70 to go to"), "{text}");
    }
}

#[test]
fn functions_the_server_cannot_compute_are_refused_when_bound() {
    for (text, name) in [
        ("10 VAR1 = STATUS(3)\n", "STATUS"),
        ("10 VAR1 = TBL(IN1, 2)\n", "TBL"),
        ("10 IF TIME > WR-ON(1, 1) THEN START OUT1\n", "WR-ON"),
        ("10 VAR1 = UNACK\n", "UNACK"),
        ("10 VAR1 = USER-A\n", "USER-A"),
    ] {
        let e = bind(text).unwrap_err();
        assert_eq!(e.line_number, 10);
        assert!(e.message.starts_with(&format!("{name} is not supported by the server")), "{e}");
    }
}

#[test]
fn a_point_without_a_value_stops_the_program_naming_it() {
    let mut m = machine("10 VAR1 = 1\n20 VAR2 = VAR1 + IN5\n");
    let e = m.scan(&mut World::default(), morning(), 1000).unwrap_err();
    assert_eq!((e.line_number, e.message.as_str()), (20, "IN5 has no value"));
    assert_eq!((e.pos.line, e.pos.column), (2, 18));
}

#[test]
fn values_out_of_the_fixed_point_range_are_errors() {
    let mut m = machine("10 VAR1 = 2000000 + 2000000\n");
    let e = m.scan(&mut World::default(), morning(), 1000).unwrap_err();
    assert!(e.message.contains("out of the range"), "{e}");
    let mut m = machine("10 VAR1 = IN1\n");
    let e = m.scan(&mut World::with(&[(input(1), 3e9)]), morning(), 1000).unwrap_err();
    assert!(e.message.starts_with("the value of IN1 (3000000000) is out of the range"), "{e}");
    let mut m = machine("10 VAR1 = SQR(IN1)\n");
    let e = m.scan(&mut World::with(&[(input(1), -1.5)]), morning(), 1000).unwrap_err();
    assert_eq!(e.message, "SQR of a negative number (-1.5)");
}

#[test]
fn start_stop_and_their_kin_write_one_and_zero() {
    let w = once(
        "10 START OUT1\n20 STOP OUT2\n30 OPEN OUT3\n40 CLOSE OUT4\n50 ENABLE VAR5\n60 DISABLE VAR6\n70 START FAN\n",
        &[],
    );
    assert_eq!(
        w.writes,
        vec![(out(1), 1.0), (out(2), 0.0), (out(3), 1.0), (out(4), 0.0), (var(5), 1.0), (var(6), 0.0), (out(9), 1.0)]
    );
}

#[test]
fn alarms_raise_and_clear_with_hysteresis() {
    let mut m = machine("10 ALARM IN1 > 30, 2, TOO HOT\n20 ALARM IN2 < 10, 1, TOO COLD\n");
    let mut w = World::with(&[(input(2), 20.0)]);
    for v in [25.0, 31.0, 32.0, 29.0, 28.0, 27.9, 31.0] {
        w.set(input(1), v);
        scan(&mut m, &mut w);
    }
    let hot = |raised| (10, "TOO HOT".to_string(), raised);
    assert_eq!(w.alarms, vec![hot(true), hot(false), hot(true)]);
    w.alarms.clear();
    for v in [9.0, 10.5, 11.1] {
        w.set(input(2), v);
        scan(&mut m, &mut w);
    }
    let cold = |raised| (20, "TOO COLD".to_string(), raised);
    assert_eq!(w.alarms, vec![cold(true), cold(false)]);
}

#[test]
fn dalarm_waits_for_its_delay() {
    let mut m = machine("10 DALARM IN1 > 5, 3, STILL HIGH\n");
    let mut w = World::default();
    let mut when = Vec::new();
    for (i, v) in [6.0, 6.0, 6.0, 6.0, 6.0, 0.0, 6.0, 6.0].into_iter().enumerate() {
        w.set(input(1), v);
        scan(&mut m, &mut w);
        when.extend(w.alarms.drain(..).map(|(_, _, raised)| (i, raised)));
    }
    // Held from scan 0 (0 s): raised at 3 s, cleared when the condition drops.
    assert_eq!(when, vec![(3, true), (5, false)]);
}

#[test]
fn on_alarm_jumps_when_an_alarm_was_raised_this_scan() {
    let mut m = machine("10 ALARM IN1 > 30, 1, HOT\n20 ON-ALARM 100\n30 END\n100 VAR1 = VAR1 + 1\n");
    let mut w = World::with(&[(var(1), 0.0)]);
    for v in [31.0, 31.0, 0.0, 31.0] {
        w.set(input(1), v);
        scan(&mut m, &mut w);
    }
    assert_eq!(w.get(var(1)), 2.0);
}

#[test]
fn power_loss_and_scans_count_from_the_start() {
    let mut m = machine("10 VAR1 = POWER-LOSS\n20 VAR2 = SCANS\n30 IF POWER-LOSS THEN VAR3 = VAR3 + 1\n");
    let mut w = World::with(&[(var(3), 0.0)]);
    scan(&mut m, &mut w);
    assert_eq!((w.get(var(1)), w.get(var(2)), w.get(var(3))), (0.001, 1.0, 1.0));
    scan(&mut m, &mut w);
    scan(&mut m, &mut w);
    assert_eq!((w.get(var(1)), w.get(var(2)), w.get(var(3))), (0.0, 3.0, 1.0));
    m.restart();
    scan(&mut m, &mut w);
    assert_eq!((w.get(var(1)), w.get(var(2)), w.get(var(3))), (0.001, 1.0, 2.0));
}

#[test]
fn clauses_else_labels_and_no_ops() {
    let text = "10 REM a comment\n\
                20 IF IN1 > 2 THEN VAR1 = 1, VAR2 = 2 ELSE VAR1 = 0, GOTO 50\n\
                30 PRINT \"HELLO\"\n\
                40 WH-SP = 21.5\n\
                50 END\n\
                60 VAR3 = 1\n";
    let w = once(text, &[(input(1), 3.0)]);
    assert_eq!(w.writes, vec![(var(1), 1.0), (var(2), 2.0), (var(10), 21.5)]);
    let w = once(text, &[(input(1), 1.0)]);
    assert_eq!(w.writes, vec![(var(1), 0.0)]);
}

#[test]
fn clear_sets_every_local_to_zero() {
    let mut m = machine("10 A = A + 1\n20 B = B + 2\n30 VAR1 = A + B\n40 IF A > 1 THEN CLEAR\n");
    let mut w = World::default();
    let mut seen = Vec::new();
    for _ in 0..4 {
        scan(&mut m, &mut w);
        seen.push(w.get(var(1)));
    }
    assert_eq!(seen, vec![3.0, 6.0, 3.0, 6.0]);
}

#[test]
fn reads_and_writes_list_the_points_once() {
    let m =
        machine("10 VAR1 = IN1 + IN2 + IN1\n20 IF WH-SP > IN3 THEN START OUT1\n30 FOR VAR4 = 1 TO 2\n40 NEXT VAR4\n");
    assert_eq!(m.reads(), vec![var(4), var(10), input(1), input(2), input(3)]);
    assert_eq!(m.writes(), vec![var(1), var(4), out(1)]);
}

#[test]
fn after_an_error_the_next_scan_starts_at_the_top_and_restart_starts_over() {
    let mut m = machine("10 A = A + 1\n20 VAR1 = A\n30 WAIT 1\n40 VAR2 = 10 / IN1\n");
    let mut w = World::with(&[(input(1), 0.0)]);
    assert!(scan(&mut m, &mut w).waiting);
    let e = m.scan(&mut w, morning(), 1000).unwrap_err();
    assert_eq!(e.line_number, 40);
    // The next scan runs from the top (A kept its value), not from the WAIT.
    assert!(scan(&mut m, &mut w).waiting);
    assert_eq!(w.get(var(1)), 2.0);
    m.restart();
    w.set(input(1), 4.0);
    assert!(scan(&mut m, &mut w).waiting);
    assert_eq!(w.get(var(1)), 1.0, "restart sets the locals back to 0");
    assert!(!scan(&mut m, &mut w).waiting);
    assert_eq!(w.get(var(2)), 2.5);
}

#[test]
fn end_stops_the_scan_and_steps_are_counted() {
    let mut m = machine("10 VAR1 = 1\n20 IF 1 THEN VAR2 = 2, END\n30 VAR3 = 3\n");
    let mut w = World::default();
    assert_eq!(scan(&mut m, &mut w), Scan { steps: 4, waiting: false });
    assert!(w.get(var(3)).is_nan());
}

#[test]
fn the_error_message_names_the_place() {
    let mut m = machine("10 VAR1 = 1\n20 VAR2 = 1 / 0\n");
    let e = m.scan(&mut World::default(), morning(), 1000).unwrap_err();
    assert_eq!(e.to_string(), "line 2, column 1 (BASIC line 20): division by zero");
}

#[test]
fn arrays_are_refused_when_bound() {
    let e = bind("10 DIM X(3)\n20 X(1) = 1\n").unwrap_err();
    assert_eq!(e.line_number, 20);
    assert!(e.message.contains("local arrays are not supported by the server"), "{e}");
}

#[test]
fn point_arrays_are_refused_when_bound() {
    let mut names = Vec::new();
    let e = Machine::new(&program("10 VAR1 = AY3[VAR2]\n"), Limits::default(), &mut |n| {
        names.push(format!("{n:?}"));
        Ok(1)
    })
    .unwrap_err();
    assert_eq!(e.message, "AY3[ VAR2 ]: point arrays are not supported by the server");
    assert_eq!((e.pos.line, e.pos.column), (1, 11));
}

#[test]
fn every_real_program_binds_or_names_what_the_server_does_not_run() {
    // Every program text committed as test data that parses: bound with every name known, it
    // runs a scan, or its refusal names a function or statement.
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/basic/text");
    let mut ran = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        let Ok(p) = parse(&text) else { continue };
        let mut ids: HashMap<String, u32> = HashMap::new();
        let bound = Machine::new(&p, Limits::default(), &mut |n| {
            let key = format!("{n:?}");
            let next = ids.len() as u32;
            Ok(*ids.entry(key).or_insert(next))
        });
        match bound {
            Ok(mut m) => {
                let mut w = World::with(&(0..ids.len() as u32).map(|id| (id, 1.0 + f64::from(id))).collect::<Vec<_>>());
                // A program may stop at a data-dependent error; it must not panic.
                let _ = m.scan(&mut w, morning(), 1000);
                ran += 1;
            }
            Err(e) => assert!(e.message.contains("not supported by the server"), "{}: {e}", path.display()),
        }
    }
    assert!(ran >= 15, "only {ran} programs ran");
}

#[test]
fn a_real_program_that_waits_for_interval_in_a_loop_runs() {
    // BTUMeter5 (T3000's decompiled text of a real panel program) loops back from line 390 until
    // INTERVAL(1 s) comes true; the controller leaves the loop within the scan, and so do we.
    let text = include_str!("data/basic/text/BTUMeter5.txt");
    let mut ids: HashMap<String, u32> = HashMap::new();
    let mut m = Machine::new(&program(text), Limits::default(), &mut |n| {
        let next = ids.len() as u32;
        Ok(*ids.entry(format!("{n:?}")).or_insert(next))
    })
    .unwrap();
    let mut w = World::with(&(0..ids.len() as u32).map(|id| (id, 2.0 + f64::from(id))).collect::<Vec<_>>());
    for elapsed in [0, 1000, 1000, 1000] {
        let s = m.scan(&mut w, morning(), elapsed).unwrap_or_else(|e| panic!("{e}"));
        assert!(s.steps < 200, "{s:?}");
    }
}
