//! The typical 100-line program the server runs in the benchmark: one zone of a small air handler
//! on a simulated T3 controller, written with the panel's own point names and the patterns of the
//! printout's real listings (set points with set-back, START / STOP with hysteresis, `TIME-ON` /
//! `TIME-OFF` timers, `IF+` / `IF-` edges, `INTERVAL`, `MAX` / `MIN` / `AVG`, a `GOSUB`, arithmetic
//! into locals and VARs).
//!
//! What the simulated controller's points are (`drivers/src/simulator/model.rs`): IN1-IN4 zone
//! temperatures, IN5 outside air, IN7 CO2, IN8 supply air, IN9 occupancy, IN10 a door contact;
//! OUT1-OUT4 the zones' heating valves, OUT6 the supply fan, OUT8 the lights; VAR1-VAR4 the zones'
//! set points, VAR5 the occupied mode, VAR6 the CO2 limit.
//!
//! Program `k` of `devices` runs on device `k % devices`; it looks after zone `j % 4 + 1` (with `j
//! = k / devices`, its place on the device) and writes six VARs of its own, `VAR8` onwards in
//! blocks of six, so up to 20 programs of a device write distinct VARs (beyond that, programs
//! share blocks). Its set point carries a small offset of its own, so programs of the same zone do
//! not command exactly the same values. What it commands changes rarely, as a real program's
//! outputs do: states with hysteresis, the demand and valve once a minute, the statistics every 5
//! minutes; the runner commands a point only when the program's value for it changes.

/// VARs of its own each program writes.
const OWN_VARS: u32 = 6;
/// Blocks of [`OWN_VARS`] VARs from VAR8 to VAR127.
const BLOCKS: u32 = 20;

/// Program `k`'s text when programs are spread over `devices` devices.
pub fn program(k: u32, devices: u32) -> String {
    let j = k / devices.max(1);
    let z = j % 4 + 1;
    let b = 8 + OWN_VARS * (j % BLOCKS);
    let [b0, b1, b2, b3, b4, b5] = [b, b + 1, b + 2, b + 3, b + 4, b + 5];
    let off = format!("{:.1}", f64::from(k % 5) * 0.1 - 0.2);
    format!(
        "\
10 REM ********** PROGRAM {k}: ZONE {z} **********
20 REM *** SET POINT: OCCUPIED, SET BACK, PEOPLE AFTER HOURS ***
30 IF VAR5 THEN S = VAR{z} + {off} ELSE S = VAR{z} - 4
40 IF IN9 AND NOT VAR5 THEN S = VAR{z} - 1
50 IF DOW > 5 AND NOT IN9 THEN S = S - 1
60 IF+ IN9 THEN O = O + 1
70 IF TIME-OFF( IN9 ) > 00:30:00 THEN O = 0
80 VAR{b0} = S
90 REM *** HEATING: START BELOW SET POINT - 1.5, STOP AT SET POINT ***
100 IF IN{z} < S - 1.5 THEN START H
110 IF IN{z} > S THEN STOP H
120 IF IN5 > 17 THEN STOP H
130 REM *** COOLING: START ABOVE SET POINT + 2, STOP BELOW + 1 ***
140 IF IN{z} > S + 2 THEN START C
150 IF IN{z} < S + 1 THEN STOP C
160 IF IN5 < 10 OR H THEN STOP C
170 VAR{b1} = H - C
180 REM *** HEATING DEMAND 0..100 % ***
190 D = ( S - IN{z} ) * 25
200 D = MAX( 0 , MIN( 100 , D ) )
210 IF NOT H THEN D = 0
220 IF INTERVAL( 00:01:00 ) THEN GOSUB 900
230 REM *** COOLING DEMAND 0..100 % ***
240 K = MAX( 0 , MIN( 100 , ( IN{z} - S - 1 ) * 30 ) )
250 IF NOT C THEN K = 0
260 IF IN8 < 12 THEN K = MIN( K , 50 )
270 REM *** AIR QUALITY: CO2 AGAINST ITS LIMIT ***
280 IF IN7 > VAR6 THEN START Q
290 IF IN7 < VAR6 - 100 THEN STOP Q
300 IF Q THEN R = 100 ELSE R = 20
310 IF IN5 < 0 THEN R = MIN( R , 40 )
320 IF NOT VAR5 AND NOT IN9 THEN R = 0
330 REM *** SUPPLY FAN ***
340 IF VAR5 OR IN9 OR H OR C OR Q THEN START F ELSE STOP F
350 IF TIME-ON( F ) > 00:00:30 THEN START OUT6
360 IF TIME-OFF( F ) > 00:05:00 THEN STOP OUT6
370 IF IN8 > 45 THEN STOP OUT6
380 REM *** LIGHTS: ON WITH PEOPLE, OFF 15 MIN AFTER THE LAST ***
390 IF+ IN9 THEN START OUT8
400 IF TIME-OFF( IN9 ) > 00:15:00 AND NOT VAR5 THEN STOP OUT8
410 REM *** DOOR LEFT OPEN ***
420 IF TIME-ON( IN10 ) > 00:02:00 THEN START W
430 IF NOT IN10 THEN STOP W
440 IF W THEN D = 0 , K = 0
450 VAR{b5} = W + 2 * Q
460 REM *** DAILY HIGH AND LOW OF THE ZONE, ZONE SPREAD ***
470 IF+ TIME > 00:00:10 THEN X = IN{z}
480 IF+ TIME > 00:00:10 THEN Y = IN{z}
490 IF X = 0 THEN X = IN{z}
500 IF Y = 0 THEN Y = IN{z}
510 IF INTERVAL( 300 ) THEN 520 ELSE 580
520 X = MAX( X , IN{z} )
530 Y = MIN( Y , IN{z} )
540 A = AVG( IN1 , IN2 , IN3 , IN4 )
550 M = MAX( IN1 , IN2 , IN3 , IN4 ) - MIN( IN1 , IN2 , IN3 , IN4 )
560 VAR{b3} = X
570 VAR{b4} = Y
580 REM *** HEAT MODE FROM THE OUTSIDE TEMPERATURE ***
590 IF+ TIME > 23:55:00 THEN P = IN5
600 IF+ TIME > 00:00:10 THEN N = IN5
610 B = 12
620 G = ( B - P + B - N ) / 2
630 IF IN5 > G + B THEN STOP V ELSE START V
640 IF NOT V THEN STOP H
650 REM *** RUN TIME OF THE HEATING, MINUTES ***
660 IF H THEN U = U + 1
670 IF U > 59 THEN U = 0 , T = T + 1
680 IF+ TIME > 23:59:00 THEN T = 0
690 REM *** MORE AIR: ZONES SPREAD, THIS ZONE OFF THE AVERAGE, HUMID ***
700 IF M > 4 OR ABS( IN{z} - A ) > 3 THEN R = MAX( R , 60 )
710 IF IN6 > 70 THEN R = MAX( R , 40 )
720 REM *** SUPPLY AIR TARGET FROM THE OUTSIDE AIR (RESET) ***
730 E = 35 - ( IN5 + 10 ) * 0.68
740 E = MAX( 18 , MIN( 35 , E ) )
750 IF C THEN E = 14
760 REM *** SUPPLY AIR FAULT: FAR FROM ITS TARGET WITH THE FAN ON ***
770 IF ABS( IN8 - E ) > 8 AND OUT6 THEN START L ELSE STOP L
780 IF TIME-ON( L ) > 00:10:00 THEN D = 0 , K = 0
790 REM *** COUNT OCCUPIED STARTS, RESET ON MONDAYS ***
800 IF+ VAR5 THEN I = I + 1
810 IF DOW = 1 AND TIME < 00:00:10 THEN I = 0
820 REM *** NIGHT PURGE: COOL OUTSIDE, WARM INSIDE ***
830 IF TIME > 02:00:00 AND TIME < 05:00:00 THEN 840 ELSE 860
840 IF IN5 < IN{z} - 3 AND IN5 > 12 THEN R = 100
850 IF IN5 < IN{z} - 3 AND IN5 > 12 THEN START OUT6
860 IF R > 100 THEN R = 100
870 END
880 REM *************************************************
890 REM *** ONCE A MINUTE: DEMAND AND VALVE, 10 % STEPS ***
900 VAR{b2} = D
910 J = INT( D / 10 ) * 10
920 IF J > 100 THEN J = 100
930 IF NOT VAR5 AND NOT IN9 AND J > 50 THEN J = 50
940 OUT{z} = J
950 RETURN
"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn about_a_hundred_lines_that_parse() {
        for k in [0, 1, 17, 999, 4095] {
            let text = program(k, 16);
            let p = t3_core::basic::parse::parse(&text).unwrap_or_else(|e| panic!("program {k}: {e}"));
            assert!((90..=110).contains(&p.lines.len()), "{} lines", p.lines.len());
        }
    }
}
