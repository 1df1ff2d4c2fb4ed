//! A T3 panel's weekly and annual routines as the server's schedules and holiday calendars, and back:
//! what the `.prog` import and hardware sync share.
//!
//! # Weekly routine times
//! A routine keeps, for each of the nine day types, eight events in four ON/OFF pairs
//! ([`ScheduleTimes`]). A pair of 00:00 / 00:00 is unused; an OFF of 00:00 after an ON is the end of
//! the day (24:00). So a pair that is ON all day (00:00 to 24:00) cannot be held: it would read as
//! unused, and [`times_of`] refuses it. Newer firmware also keeps a flag per event
//! ([`ScheduleFlags`], `wr_time_on_off`: 1 ON, 0 OFF, 0xFF unused); [`flags_of`] gives the flags that
//! say what the times say.
//!
//! # Annual routine days
//! One bit per day of the year ([`HolidayBitmap`]), days numbered as in a leap year (1 = January 1,
//! 60 = February 29, 366 = December 31), so each bit is one month-day of every year.

use super::records::{DAY_TYPES, EVENTS, HolidayBitmap, ScheduleFlags, ScheduleTimes};
use t3_core::schedule::{DayType, MAX_PERIODS_PER_DAY, MonthDay, Period, TimeOfDay, WeeklySchedule};

/// Days of each month in a leap year, whose day numbers the holiday bitmap uses.
const MONTH_DAYS: [u16; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/// The schedule a routine's times make, and a warning for each pair that is not a time span (left
/// out: an OFF before its ON, hours or minutes out of range).
pub fn weekly_of(times: &ScheduleTimes) -> (WeeklySchedule, Vec<String>) {
    let mut weekly = WeeklySchedule::default();
    let mut warnings = Vec::new();
    for (d, day) in times.days.iter().enumerate() {
        let mut periods = Vec::new();
        for (k, pair) in day.chunks(2).enumerate() {
            let ((on_h, on_m), (off_h, off_m)) = (pair[0], pair[1]);
            if (on_h, on_m, off_h, off_m) == (0, 0, 0, 0) {
                continue;
            }
            let on = TimeOfDay::new(u32::from(on_h), u32::from(on_m));
            let off = if (off_h, off_m) == (0, 0) {
                Ok(TimeOfDay::END_OF_DAY)
            } else {
                TimeOfDay::new(u32::from(off_h), u32::from(off_m))
            };
            match (on, off) {
                (Ok(on), Ok(off)) if on < off => periods.push(Period::new(on, off)),
                _ => warnings.push(format!(
                    "{} pair {}: ON {on_h:02}:{on_m:02} / OFF {off_h:02}:{off_m:02} is not a time span: left out",
                    DAY_TYPES[d],
                    k + 1
                )),
            }
        }
        if !periods.is_empty() {
            weekly.days.insert(DayType::ALL[d], periods);
        }
    }
    weekly.sort();
    (weekly, warnings)
}

/// The times a panel holds for `weekly`: each day type's pairs in ON order, unused pairs 00:00 /
/// 00:00, an OFF at 24:00 as 00:00. Refuses what a panel cannot hold (more than four pairs on a day,
/// a pair ON all day), naming the day type.
pub fn times_of(weekly: &WeeklySchedule) -> Result<ScheduleTimes, String> {
    let mut times = ScheduleTimes::default();
    for (d, &day) in DayType::ALL.iter().enumerate() {
        let mut periods = weekly.periods(day).to_vec();
        periods.sort_by_key(|p| (p.on, p.off));
        if periods.len() > MAX_PERIODS_PER_DAY {
            return Err(format!("{}: {} ON/OFF pairs, a T3 panel holds 4", DAY_TYPES[d], periods.len()));
        }
        for (k, p) in periods.iter().enumerate() {
            if !p.is_valid() {
                return Err(format!("{} pair {}: ON {} is not before OFF {}", DAY_TYPES[d], k + 1, p.on, p.off));
            }
            if p.on == TimeOfDay::MIDNIGHT && p.off == TimeOfDay::END_OF_DAY {
                return Err(format!(
                    "{} pair {}: ON all day (00:00 to 24:00) reads as an unused pair on a T3 panel; use 00:00 to 23:59",
                    DAY_TYPES[d],
                    k + 1
                ));
            }
            let hm =
                |t: TimeOfDay| if t == TimeOfDay::END_OF_DAY { (0, 0) } else { (t.hour() as u8, t.minute() as u8) };
            times.days[d][2 * k] = hm(p.on);
            times.days[d][2 * k + 1] = hm(p.off);
        }
    }
    Ok(times)
}

/// The per-event flags that agree with `times`, in the firmware's order (`wr_time_on_off[day][event]`,
/// 72 bytes): 1 for the ON and 0 for the OFF of a used pair, 0xFF for an unused one.
pub fn flags_of(times: &ScheduleTimes) -> [[u8; EVENTS]; 9] {
    std::array::from_fn(|d| {
        std::array::from_fn(|e| {
            let pair = &times.days[d][e & !1..(e & !1) + 2];
            if pair.iter().all(|&t| t == (0, 0)) { 0xFF } else { u8::from(e % 2 == 0) }
        })
    })
}

/// The firmware-order flags (`[day][event]`) as the `.prog` file keeps them (`[event][day]`).
pub fn file_flags(flags: &[[u8; EVENTS]; 9]) -> ScheduleFlags {
    ScheduleFlags { flags: std::array::from_fn(|e| std::array::from_fn(|d| flags[d][e])) }
}

/// The month-days an annual routine's bitmap marks, in calendar order.
pub fn days_of(bitmap: &HolidayBitmap) -> Vec<MonthDay> {
    bitmap
        .days()
        .into_iter()
        .filter_map(|d| {
            let mut day = d;
            for (m, &len) in MONTH_DAYS.iter().enumerate() {
                if day <= len {
                    return MonthDay::new(m as u32 + 1, u32::from(day)).ok();
                }
                day -= len;
            }
            None
        })
        .collect()
}

/// The bitmap marking `days`.
pub fn bitmap_of(days: &[MonthDay]) -> HolidayBitmap {
    let mut bitmap = HolidayBitmap::default();
    for d in days {
        let before: u16 = MONTH_DAYS[..d.month() as usize - 1].iter().sum();
        bitmap.insert(before + d.day() as u16);
    }
    bitmap
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(h: u32, m: u32) -> TimeOfDay {
        TimeOfDay::new(h, m).unwrap()
    }

    #[test]
    fn times_round_trip_through_a_schedule() {
        let mut weekly = WeeklySchedule::default();
        weekly.days.insert(DayType::Monday, vec![Period::new(t(12, 30), t(24, 0)), Period::new(t(7, 0), t(11, 15))]);
        weekly.days.insert(DayType::Holiday2, vec![Period::new(t(0, 0), t(6, 0))]);
        let times = times_of(&weekly).unwrap();
        // Monday: pairs in ON order; 24:00 held as 00:00.
        assert_eq!(times.days[0][..4], [(7, 0), (11, 15), (12, 30), (0, 0)]);
        assert_eq!(times.days[0][4..], [(0, 0); 4]);
        assert_eq!(times.days[8][..2], [(0, 0), (6, 0)]);
        let (back, warnings) = weekly_of(&times);
        assert!(warnings.is_empty());
        let mut sorted = weekly.clone();
        sorted.sort();
        assert_eq!(back, sorted);
        // The flags say the same.
        let flags = flags_of(&times);
        assert_eq!(flags[0], [1, 0, 1, 0, 0xFF, 0xFF, 0xFF, 0xFF]);
        assert_eq!(flags[1], [0xFF; 8]);
        assert_eq!(file_flags(&flags).flags[2][0], 1);
        assert_eq!(file_flags(&flags).flags[4][0], 0xFF);
    }

    #[test]
    fn what_a_panel_cannot_hold_is_refused_by_day() {
        let mut weekly = WeeklySchedule::default();
        weekly.days.insert(DayType::Sunday, vec![Period::new(t(0, 0), t(24, 0))]);
        assert!(times_of(&weekly).unwrap_err().contains("Sunday pair 1: ON all day"));
        let five: Vec<Period> = (0..5).map(|h| Period::new(t(h * 2, 0), t(h * 2 + 1, 0))).collect();
        weekly.days.insert(DayType::Sunday, five);
        assert!(times_of(&weekly).unwrap_err().contains("Sunday: 5 ON/OFF pairs"));
    }

    #[test]
    fn a_backwards_pair_is_left_out_with_a_warning() {
        let mut times = ScheduleTimes::default();
        times.days[2][0] = (9, 0);
        times.days[2][1] = (8, 0);
        times.days[2][2] = (25, 0);
        times.days[2][3] = (26, 0);
        let (weekly, warnings) = weekly_of(&times);
        assert!(weekly.days.is_empty());
        assert_eq!(warnings.len(), 2);
        assert!(warnings[0].starts_with("Wednesday pair 1: ON 09:00 / OFF 08:00"), "{warnings:?}");
    }

    #[test]
    fn holiday_days_use_leap_year_numbers() {
        let days = [MonthDay::new(1, 1).unwrap(), MonthDay::new(2, 29).unwrap(), MonthDay::new(12, 31).unwrap()];
        let bitmap = bitmap_of(&days);
        assert_eq!(bitmap.days(), vec![1, 60, 366]);
        assert_eq!(days_of(&bitmap), days.to_vec());
    }
}
