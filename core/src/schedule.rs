//! T3000 weekly schedules and annual routines, evaluated in a site's time zone.
//!
//! A T3 controller's weekly schedule has nine day types: Monday to Sunday plus [`DayType::Holiday1`]
//! and [`DayType::Holiday2`]. Each day type has up to four ON/OFF pairs ([`Period`]s) of
//! [`TimeOfDay`]s. An annual routine ([`AnnualRoutine`], T3000's "holiday calendar") marks dates of
//! the year; a marked date uses the routine's holiday day type instead of its weekday.
//!
//! The schedule's output is ON while the site's wall clock is inside a period of the current local
//! date's day type, and OFF otherwise. Periods that touch, also across midnight (Monday
//! 18:00-24:00 followed by Tuesday 00:00-06:00), form one ON interval with no transition between
//! them.
//!
//! # Daylight-saving time
//!
//! Every ON or OFF time takes effect at the *first instant the wall clock reads that time or a later
//! one*:
//! - a time that does not exist (in the spring-forward gap, such as 02:30 on 2026-03-29 in
//!   Europe/Berlin) takes effect when the gap ends (03:00 CEST, 01:00 UTC); a period lying wholly
//!   inside the gap never turns the output on;
//! - a time that occurs twice (in the fall-back hour, such as 02:30 on 2026-10-25 in Europe/Berlin)
//!   takes effect at its first occurrence (02:30 CEST, 00:30 UTC); while the hour repeats, the
//!   output keeps the state it had at the end of the first pass.
//!
//! [`state_at`] and [`transitions`] follow the same rule, so the state at any instant is the state
//! set by the last transition at or before it.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeZone, Utc, Weekday};
pub use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// At most this many ON/OFF pairs per day type, as on a T3 controller.
pub const MAX_PERIODS_PER_DAY: usize = 4;

/// [`transitions`] looks at most this many days past the local date of its `after` instant.
pub const HORIZON_DAYS: u64 = 400;

/// Minutes in a day; [`TimeOfDay::END_OF_DAY`] ("24:00").
const DAY_MINUTES: u16 = 1440;

/// Why a schedule, routine, time or time zone was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// Text that is not a time of day from 00:00 to 24:00.
    #[error("{0} is not a time of day (expected HH:MM from 00:00 to 24:00)")]
    InvalidTime(String),
    /// Text that is not a day of the year.
    #[error("{0} is not a day of the year (expected MM-DD, such as 12-25)")]
    InvalidMonthDay(String),
    /// A day type has more than [`MAX_PERIODS_PER_DAY`] ON/OFF pairs.
    #[error("{day}: {count} on/off pairs, at most 4 are allowed")]
    TooManyPeriods {
        /// The day type.
        day: DayType,
        /// How many pairs it has.
        count: usize,
    },
    /// A pair whose ON time is not before its OFF time.
    #[error("{day} pair {pair}: on time {on} is not before off time {off}")]
    EmptyPeriod {
        /// The day type.
        day: DayType,
        /// The pair's number, counting from 1 in the order stored.
        pair: usize,
        /// Its ON time.
        on: TimeOfDay,
        /// Its OFF time.
        off: TimeOfDay,
    },
    /// Two pairs of one day type overlap (touching is allowed).
    #[error("{day}: pairs {first} and {second} overlap")]
    Overlap {
        /// The day type.
        day: DayType,
        /// The number of the pair that starts first, counting from 1 in the order stored.
        first: usize,
        /// The number of the other pair.
        second: usize,
    },
    /// An annual routine whose day type is not a holiday.
    #[error("annual routine {routine:?}: day type {day} is not holiday1 or holiday2")]
    NotAHoliday {
        /// The routine's name.
        routine: String,
        /// The day type it names.
        day: DayType,
    },
    /// A time zone name that is not in the IANA database.
    #[error("unknown time zone {0:?} (expected an IANA name such as Europe/Berlin or America/New_York)")]
    UnknownTimeZone(String),
}

/// One of the nine day types of a weekly schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DayType {
    /// Monday.
    Monday,
    /// Tuesday.
    Tuesday,
    /// Wednesday.
    Wednesday,
    /// Thursday.
    Thursday,
    /// Friday.
    Friday,
    /// Saturday.
    Saturday,
    /// Sunday.
    Sunday,
    /// The first holiday day type, used on dates an annual routine marks as such.
    Holiday1,
    /// The second holiday day type.
    Holiday2,
}

impl DayType {
    /// All day types, in T3000's order.
    pub const ALL: [DayType; 9] = [
        DayType::Monday,
        DayType::Tuesday,
        DayType::Wednesday,
        DayType::Thursday,
        DayType::Friday,
        DayType::Saturday,
        DayType::Sunday,
        DayType::Holiday1,
        DayType::Holiday2,
    ];

    /// The day type of a weekday that no annual routine marks.
    pub fn of_weekday(weekday: Weekday) -> DayType {
        match weekday {
            Weekday::Mon => DayType::Monday,
            Weekday::Tue => DayType::Tuesday,
            Weekday::Wed => DayType::Wednesday,
            Weekday::Thu => DayType::Thursday,
            Weekday::Fri => DayType::Friday,
            Weekday::Sat => DayType::Saturday,
            Weekday::Sun => DayType::Sunday,
        }
    }

    /// Whether this is [`DayType::Holiday1`] or [`DayType::Holiday2`].
    pub fn is_holiday(self) -> bool {
        matches!(self, DayType::Holiday1 | DayType::Holiday2)
    }

    /// The name used in serde and messages: `monday` ... `sunday`, `holiday1`, `holiday2`.
    pub fn name(self) -> &'static str {
        match self {
            DayType::Monday => "monday",
            DayType::Tuesday => "tuesday",
            DayType::Wednesday => "wednesday",
            DayType::Thursday => "thursday",
            DayType::Friday => "friday",
            DayType::Saturday => "saturday",
            DayType::Sunday => "sunday",
            DayType::Holiday1 => "holiday1",
            DayType::Holiday2 => "holiday2",
        }
    }
}

impl fmt::Display for DayType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A wall-clock time of day with minute resolution, from 00:00 to 24:00.
///
/// 24:00 is the end of the day and is useful only as an OFF time. Serialized as `"HH:MM"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TimeOfDay {
    minutes: u16,
}

impl TimeOfDay {
    /// 00:00, the start of the day.
    pub const MIDNIGHT: TimeOfDay = TimeOfDay { minutes: 0 };
    /// 24:00, the end of the day.
    pub const END_OF_DAY: TimeOfDay = TimeOfDay { minutes: DAY_MINUTES };

    /// `hour:minute`, with `hour` 0..=23 and `minute` 0..=59, or 24:00.
    pub fn new(hour: u32, minute: u32) -> Result<TimeOfDay, ScheduleError> {
        if minute < 60 && (hour < 24 || (hour == 24 && minute == 0)) {
            Ok(TimeOfDay { minutes: (hour * 60 + minute) as u16 })
        } else {
            Err(ScheduleError::InvalidTime(format!("{hour:02}:{minute:02}")))
        }
    }

    /// The time `minutes` after midnight, 0..=1440.
    pub fn from_minutes(minutes: u16) -> Result<TimeOfDay, ScheduleError> {
        if minutes <= DAY_MINUTES {
            Ok(TimeOfDay { minutes })
        } else {
            Err(ScheduleError::InvalidTime(format!("{:02}:{:02}", minutes / 60, minutes % 60)))
        }
    }

    /// Minutes after midnight, 0..=1440.
    pub fn minutes(self) -> u16 {
        self.minutes
    }

    /// The hour, 0..=24.
    pub fn hour(self) -> u32 {
        u32::from(self.minutes / 60)
    }

    /// The minute within the hour, 0..=59.
    pub fn minute(self) -> u32 {
        u32::from(self.minutes % 60)
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.hour(), self.minute())
    }
}

/// Parses `min_len` to `max_len` decimal digits and nothing else.
fn parse_digits(s: &str, min_len: usize, max_len: usize) -> Option<u32> {
    if (min_len..=max_len).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) { s.parse().ok() } else { None }
}

impl FromStr for TimeOfDay {
    type Err = ScheduleError;

    /// Parses `HH:MM` (or `H:MM`), 00:00 to 24:00.
    fn from_str(s: &str) -> Result<TimeOfDay, ScheduleError> {
        let invalid = || ScheduleError::InvalidTime(s.to_string());
        let (h, m) = s.trim().split_once(':').ok_or_else(invalid)?;
        let hour = parse_digits(h, 1, 2).ok_or_else(invalid)?;
        let minute = parse_digits(m, 2, 2).ok_or_else(invalid)?;
        TimeOfDay::new(hour, minute).map_err(|_| invalid())
    }
}

impl TryFrom<String> for TimeOfDay {
    type Error = ScheduleError;

    fn try_from(s: String) -> Result<TimeOfDay, ScheduleError> {
        s.parse()
    }
}

impl From<TimeOfDay> for String {
    fn from(t: TimeOfDay) -> String {
        t.to_string()
    }
}

/// A day of the year that recurs every year, such as 12-25. Serialized as `"MM-DD"`.
///
/// 02-29 is allowed and matches only in leap years.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MonthDay {
    month: u8,
    day: u8,
}

impl MonthDay {
    /// `month` 1..=12 and a `day` that month can have (02-29 included).
    pub fn new(month: u32, day: u32) -> Result<MonthDay, ScheduleError> {
        // 2000 is a leap year, so every day that any year has exists in it.
        if NaiveDate::from_ymd_opt(2000, month, day).is_some() {
            Ok(MonthDay { month: month as u8, day: day as u8 })
        } else {
            Err(ScheduleError::InvalidMonthDay(format!("{month:02}-{day:02}")))
        }
    }

    /// The month, 1..=12.
    pub fn month(self) -> u32 {
        u32::from(self.month)
    }

    /// The day of the month, 1..=31.
    pub fn day(self) -> u32 {
        u32::from(self.day)
    }

    /// Whether `date` falls on this day of the year.
    pub fn matches(self, date: NaiveDate) -> bool {
        date.month() == self.month() && date.day() == self.day()
    }
}

impl fmt::Display for MonthDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}-{:02}", self.month, self.day)
    }
}

impl FromStr for MonthDay {
    type Err = ScheduleError;

    /// Parses `MM-DD` (one or two digits each).
    fn from_str(s: &str) -> Result<MonthDay, ScheduleError> {
        let invalid = || ScheduleError::InvalidMonthDay(s.to_string());
        let (m, d) = s.trim().split_once('-').ok_or_else(invalid)?;
        let month = parse_digits(m, 1, 2).ok_or_else(invalid)?;
        let day = parse_digits(d, 1, 2).ok_or_else(invalid)?;
        MonthDay::new(month, day).map_err(|_| invalid())
    }
}

impl TryFrom<String> for MonthDay {
    type Error = ScheduleError;

    fn try_from(s: String) -> Result<MonthDay, ScheduleError> {
        s.parse()
    }
}

impl From<MonthDay> for String {
    fn from(d: MonthDay) -> String {
        d.to_string()
    }
}

/// One ON/OFF pair: the output is ON from `on` (inclusive) to `off` (exclusive), local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Period {
    /// When the output turns ON.
    pub on: TimeOfDay,
    /// When the output turns OFF; 24:00 runs to the end of the day.
    pub off: TimeOfDay,
}

impl Period {
    /// The pair `on`..`off`.
    pub fn new(on: TimeOfDay, off: TimeOfDay) -> Period {
        Period { on, off }
    }

    /// Whether `on` is before `off`.
    pub fn is_valid(self) -> bool {
        self.on < self.off
    }
}

/// A weekly schedule: the ON/OFF pairs of each day type. A day type without an entry is OFF all day.
///
/// Evaluation accepts any schedule (invalid pairs are ignored, overlapping ones united);
/// [`WeeklySchedule::validate`] is what refuses a schedule before it is saved.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeeklySchedule {
    /// The pairs of each day type, in any order.
    #[serde(default)]
    pub days: BTreeMap<DayType, Vec<Period>>,
}

impl WeeklySchedule {
    /// The pairs of `day`, empty if it has none.
    pub fn periods(&self, day: DayType) -> &[Period] {
        self.days.get(&day).map_or(&[], Vec::as_slice)
    }

    /// Sorts each day type's pairs by ON time (what to store after [`WeeklySchedule::validate`]).
    pub fn sort(&mut self) {
        for periods in self.days.values_mut() {
            periods.sort_by_key(|p| (p.on, p.off));
        }
    }

    /// Checks every day type: at most [`MAX_PERIODS_PER_DAY`] pairs, each ON before its OFF, and no two
    /// overlapping (pairs may touch). The error names the day type and the pair numbers (from 1, in
    /// the order stored).
    pub fn validate(&self) -> Result<(), ScheduleError> {
        for (&day, periods) in &self.days {
            if periods.len() > MAX_PERIODS_PER_DAY {
                return Err(ScheduleError::TooManyPeriods { day, count: periods.len() });
            }
            for (i, p) in periods.iter().enumerate() {
                if !p.is_valid() {
                    return Err(ScheduleError::EmptyPeriod { day, pair: i + 1, on: p.on, off: p.off });
                }
            }
            let mut order: Vec<usize> = (0..periods.len()).collect();
            order.sort_by_key(|&i| (periods[i].on, periods[i].off, i));
            for w in order.windows(2) {
                if periods[w[0]].off > periods[w[1]].on {
                    return Err(ScheduleError::Overlap { day, first: w[0] + 1, second: w[1] + 1 });
                }
            }
        }
        Ok(())
    }
}

/// An annual routine (T3000's holiday calendar): dates on which `holiday` replaces the weekday.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnualRoutine {
    /// The routine's label.
    pub name: String,
    /// [`DayType::Holiday1`] or [`DayType::Holiday2`]; other day types are refused by
    /// [`AnnualRoutine::validate`] and ignored by evaluation.
    pub holiday: DayType,
    /// Single dates, such as 2026-04-03.
    #[serde(default)]
    pub dates: Vec<NaiveDate>,
    /// Days marked every year, such as 12-25.
    #[serde(default)]
    pub recurring: Vec<MonthDay>,
}

impl AnnualRoutine {
    /// Whether the routine marks `date` (regardless of its day type).
    pub fn marks(&self, date: NaiveDate) -> bool {
        self.dates.contains(&date) || self.recurring.iter().any(|d| d.matches(date))
    }

    /// Checks that the routine's day type is a holiday.
    pub fn validate(&self) -> Result<(), ScheduleError> {
        if self.holiday.is_holiday() {
            Ok(())
        } else {
            Err(ScheduleError::NotAHoliday { routine: self.name.clone(), day: self.holiday })
        }
    }
}

/// A change of a schedule's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Transition {
    /// When the output changes.
    pub at: DateTime<Utc>,
    /// The output from `at` on: `true` is ON.
    pub on: bool,
}

/// Every IANA time zone name [`parse_tz`] knows, as written (`Europe/Berlin`), in the order of the
/// time zone database.
pub fn time_zone_names() -> impl Iterator<Item = &'static str> {
    chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name())
}

/// Looks up an IANA time zone name, such as `Europe/Berlin`.
pub fn parse_tz(name: &str) -> Result<Tz, ScheduleError> {
    name.trim().parse().map_err(|_| ScheduleError::UnknownTimeZone(name.to_string()))
}

/// The day type of a local `date`: [`DayType::Holiday1`] if a routine with that day type marks it,
/// else [`DayType::Holiday2`] if one with that day type does, else the date's weekday.
pub fn day_type(date: NaiveDate, routines: &[AnnualRoutine]) -> DayType {
    let mut holiday2 = false;
    for routine in routines.iter().filter(|r| r.marks(date)) {
        match routine.holiday {
            DayType::Holiday1 => return DayType::Holiday1,
            DayType::Holiday2 => holiday2 = true,
            _ => {}
        }
    }
    if holiday2 { DayType::Holiday2 } else { DayType::of_weekday(date.weekday()) }
}

/// Whether the output is ON at `at`, for a site in time zone `tz`.
///
/// ON when the site's wall clock is inside a pair of the local date's day type, with the rules for
/// daylight-saving changes described in the [module documentation](self).
pub fn state_at(schedule: &WeeklySchedule, routines: &[AnnualRoutine], tz: Tz, at: DateTime<Utc>) -> bool {
    let local_date = at.with_timezone(&tz).date_naive();
    // Edges of the days around `at`: two days back so that any edge of the local date (even one
    // resolved across a fall-back hour) comes after the start, up to two days ahead.
    let (Some(mut date), Some(end)) =
        (local_date.checked_sub_days(chrono::Days::new(2)), local_date.checked_add_days(chrono::Days::new(3)))
    else {
        return false;
    };
    let mut carried = ends_on(schedule, routines, date.pred_opt());
    let mut state = carried;
    let mut edges = Vec::new();
    while date < end {
        edges.clear();
        carried = day_edges(schedule, routines, date, carried, &mut edges);
        for &(local, on) in &edges {
            if resolve(tz, local) > at {
                return state;
            }
            state = on;
        }
        let Some(next) = date.succ_opt() else { break };
        date = next;
    }
    state
}

/// The next `limit` changes of the output strictly after `after`, for a site in time zone `tz`.
///
/// Looks at most [`HORIZON_DAYS`] days ahead and returns what it found: a schedule that is always
/// OFF (or always ON) has none. Consecutive ON intervals, also across midnight, make no transition.
pub fn transitions(
    schedule: &WeeklySchedule,
    routines: &[AnnualRoutine],
    tz: Tz,
    after: DateTime<Utc>,
    limit: usize,
) -> Vec<Transition> {
    let mut found: Vec<Transition> = Vec::new();
    if limit == 0 {
        return found;
    }
    let local_date = after.with_timezone(&tz).date_naive();
    let (Some(mut date), Some(end)) = (
        local_date.checked_sub_days(chrono::Days::new(2)),
        local_date.checked_add_days(chrono::Days::new(HORIZON_DAYS + 1)),
    ) else {
        return found;
    };
    let mut carried = ends_on(schedule, routines, date.pred_opt());
    let mut edges = Vec::new();
    // One more than `limit`: an edge at the same instant as the last one found cancels it (an OFF
    // period inside a spring-forward gap), and it cannot once a later one has been found.
    while date < end && found.len() <= limit {
        edges.clear();
        carried = day_edges(schedule, routines, date, carried, &mut edges);
        for &(local, on) in &edges {
            let at = resolve(tz, local);
            if at <= after {
                continue;
            }
            // Edges alternate, so an edge at the instant of the previous one undoes it.
            if found.last().is_some_and(|last| last.at == at) {
                found.pop();
            } else {
                found.push(Transition { at, on });
            }
        }
        let Some(next) = date.succ_opt() else { break };
        date = next;
    }
    found.truncate(limit);
    found
}

/// The first change of the output strictly after `after`, if there is one within [`HORIZON_DAYS`].
pub fn next_run(
    schedule: &WeeklySchedule,
    routines: &[AnnualRoutine],
    tz: Tz,
    after: DateTime<Utc>,
) -> Option<Transition> {
    transitions(schedule, routines, tz, after, 1).into_iter().next()
}

/// The ON intervals of a day type in minutes, sorted, with invalid pairs dropped and overlapping or
/// touching ones united.
fn intervals(periods: &[Period]) -> Vec<(u16, u16)> {
    let mut v: Vec<(u16, u16)> = periods
        .iter()
        .map(|p| (p.on.minutes(), p.off.minutes().min(DAY_MINUTES)))
        .filter(|&(on, off)| on < off)
        .collect();
    v.sort_unstable();
    let mut merged: Vec<(u16, u16)> = Vec::with_capacity(v.len());
    for (on, off) in v {
        match merged.last_mut() {
            Some(last) if on <= last.1 => last.1 = last.1.max(off),
            _ => merged.push((on, off)),
        }
    }
    merged
}

/// Whether the output is ON at the end of local `date` (its last pair runs to 24:00).
fn ends_on(schedule: &WeeklySchedule, routines: &[AnnualRoutine], date: Option<NaiveDate>) -> bool {
    date.is_some_and(|d| {
        intervals(schedule.periods(day_type(d, routines))).last().is_some_and(|&(_, off)| off == DAY_MINUTES)
    })
}

/// Appends the local instants of `date` at which the wall-clock state changes, given whether it was
/// ON just before midnight (`carried`), and returns whether it is ON at the end of the day.
fn day_edges(
    schedule: &WeeklySchedule,
    routines: &[AnnualRoutine],
    date: NaiveDate,
    carried: bool,
    out: &mut Vec<(NaiveDateTime, bool)>,
) -> bool {
    let at = |minutes: u16| date.and_hms_opt(u32::from(minutes / 60), u32::from(minutes % 60), 0).unwrap();
    let iv = intervals(schedule.periods(day_type(date, routines)));
    let mut on = carried;
    if on && iv.first().is_none_or(|&(start, _)| start > 0) {
        out.push((at(0), false));
        on = false;
    }
    for (start, end) in iv {
        if !on {
            out.push((at(start), true));
            on = true;
        }
        if end < DAY_MINUTES {
            out.push((at(end), false));
            on = false;
        }
    }
    on
}

/// The first instant at which the wall clock in `tz` reads `local` or later: the instant itself if
/// it exists once, its first occurrence if it exists twice, the end of the gap if it does not exist.
fn resolve(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        chrono::LocalResult::Single(t) => t.to_utc(),
        chrono::LocalResult::Ambiguous(a, b) => a.to_utc().min(b.to_utc()),
        chrono::LocalResult::None => gap_end(tz, local),
    }
}

/// The first instant whose wall-clock time in `tz` is at or after `local`, for a `local` inside a gap.
fn gap_end(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    let wall = |secs: i64| DateTime::from_timestamp(secs, 0).map(|t| t.with_timezone(&tz).naive_local());
    let naive_secs = local.and_utc().timestamp();
    // No zone is 48 hours off UTC, so the wall clock is before `local` at `lo` and after it at `hi`.
    let (mut lo, mut hi) = (naive_secs - 2 * 86_400, naive_secs + 2 * 86_400);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        match wall(mid) {
            Some(w) if w >= local => hi = mid,
            Some(_) => lo = mid,
            None => return local.and_utc(),
        }
    }
    DateTime::from_timestamp(hi, 0).unwrap_or_else(|| local.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Timelike;
    use proptest::prelude::*;
    use serde::de::IntoDeserializer;

    fn t(s: &str) -> TimeOfDay {
        s.parse().unwrap()
    }

    fn p(on: &str, off: &str) -> Period {
        Period::new(t(on), t(off))
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn sched(days: &[(DayType, &[(&str, &str)])]) -> WeeklySchedule {
        WeeklySchedule { days: days.iter().map(|(d, ps)| (*d, ps.iter().map(|(a, b)| p(a, b)).collect())).collect() }
    }

    fn tr(at: &str, on: bool) -> Transition {
        Transition { at: utc(at), on }
    }

    fn berlin() -> Tz {
        chrono_tz::Europe::Berlin
    }

    #[test]
    fn weekday_vs_holiday_routine() {
        let s = sched(&[
            (DayType::Monday, &[("08:00", "17:00")]),
            (DayType::Holiday1, &[("10:00", "12:00")]),
            (DayType::Holiday2, &[("09:00", "10:00")]),
        ]);
        let routines = vec![
            AnnualRoutine {
                name: "closures".into(),
                holiday: DayType::Holiday2,
                dates: vec![date("2026-01-05"), date("2026-01-19")],
                recurring: vec![],
            },
            AnnualRoutine {
                name: "public".into(),
                holiday: DayType::Holiday1,
                dates: vec![date("2026-01-05")],
                recurring: vec![MonthDay::new(1, 26).unwrap()],
            },
        ];
        assert_eq!(day_type(date("2026-01-05"), &routines), DayType::Holiday1);
        assert_eq!(day_type(date("2026-01-12"), &routines), DayType::Monday);
        assert_eq!(day_type(date("2026-01-19"), &routines), DayType::Holiday2);
        assert_eq!(day_type(date("2027-01-26"), &routines), DayType::Holiday1);
        assert_eq!(day_type(date("2026-01-06"), &[]), DayType::Tuesday);

        let got = transitions(&s, &routines, Tz::UTC, utc("2026-01-05T00:00:00Z"), 6);
        assert_eq!(
            got,
            vec![
                tr("2026-01-05T10:00:00Z", true),
                tr("2026-01-05T12:00:00Z", false),
                tr("2026-01-12T08:00:00Z", true),
                tr("2026-01-12T17:00:00Z", false),
                tr("2026-01-19T09:00:00Z", true),
                tr("2026-01-19T10:00:00Z", false),
            ]
        );
        assert!(!state_at(&s, &routines, Tz::UTC, utc("2026-01-05T09:00:00Z")));
        assert!(state_at(&s, &routines, Tz::UTC, utc("2026-01-05T11:00:00Z")));
        assert!(state_at(&s, &[], Tz::UTC, utc("2026-01-05T09:00:00Z")));
    }

    #[test]
    fn berlin_winter_and_summer() {
        let s = sched(&[(DayType::Monday, &[("08:00", "17:00")])]);
        let winter = transitions(&s, &[], berlin(), utc("2026-01-04T12:00:00Z"), 2);
        assert_eq!(winter, vec![tr("2026-01-05T07:00:00Z", true), tr("2026-01-05T16:00:00Z", false)]);
        let summer = transitions(&s, &[], berlin(), utc("2026-07-05T12:00:00Z"), 2);
        assert_eq!(summer, vec![tr("2026-07-06T06:00:00Z", true), tr("2026-07-06T15:00:00Z", false)]);
        assert_eq!(next_run(&s, &[], berlin(), utc("2026-07-06T06:00:00Z")), Some(tr("2026-07-06T15:00:00Z", false)));
        assert!(state_at(&s, &[], berlin(), utc("2026-07-06T06:00:00Z")));
        assert!(!state_at(&s, &[], berlin(), utc("2026-07-06T05:59:59Z")));
        assert!(!state_at(&s, &[], berlin(), utc("2026-07-06T15:00:00Z")));
    }

    #[test]
    fn period_starting_in_the_spring_gap() {
        // 2026-03-29 is a Sunday; Berlin goes from 02:00 CET to 03:00 CEST at 01:00 UTC.
        let s = sched(&[(DayType::Sunday, &[("02:30", "05:00")])]);
        let got = transitions(&s, &[], berlin(), utc("2026-03-28T12:00:00Z"), 2);
        assert_eq!(got, vec![tr("2026-03-29T01:00:00Z", true), tr("2026-03-29T03:00:00Z", false)]);
        assert!(!state_at(&s, &[], berlin(), utc("2026-03-29T00:59:59Z")));
        assert!(state_at(&s, &[], berlin(), utc("2026-03-29T01:00:00Z")));

        // A period wholly inside the gap never turns the output on.
        let inside = sched(&[(DayType::Sunday, &[("02:10", "02:40")])]);
        let got = transitions(&inside, &[], berlin(), utc("2026-03-28T12:00:00Z"), 1);
        assert_eq!(got, vec![tr("2026-04-05T00:10:00Z", true)]);
        assert!(!state_at(&inside, &[], berlin(), utc("2026-03-29T01:00:00Z")));

        // An OFF interval inside the gap disappears: the output stays ON through it.
        let around = sched(&[(DayType::Sunday, &[("01:00", "02:10"), ("02:40", "04:00")])]);
        let got = transitions(&around, &[], berlin(), utc("2026-03-28T12:00:00Z"), 2);
        assert_eq!(got, vec![tr("2026-03-29T00:00:00Z", true), tr("2026-03-29T02:00:00Z", false)]);
    }

    #[test]
    fn period_ending_in_the_ambiguous_hour() {
        // 2026-10-25 is a Sunday; Berlin goes from 03:00 CEST back to 02:00 CET at 01:00 UTC.
        let s = sched(&[(DayType::Sunday, &[("01:00", "02:30")])]);
        let got = transitions(&s, &[], berlin(), utc("2026-10-24T12:00:00Z"), 3);
        assert_eq!(
            got,
            vec![tr("2026-10-24T23:00:00Z", true), tr("2026-10-25T00:30:00Z", false), tr("2026-11-01T00:00:00Z", true),]
        );
        // 02:15 CET, the second pass: the OFF already happened.
        assert!(!state_at(&s, &[], berlin(), utc("2026-10-25T01:15:00Z")));

        let s = sched(&[(DayType::Sunday, &[("02:30", "04:00")])]);
        let got = transitions(&s, &[], berlin(), utc("2026-10-24T12:00:00Z"), 2);
        assert_eq!(got, vec![tr("2026-10-25T00:30:00Z", true), tr("2026-10-25T03:00:00Z", false)]);
        assert!(state_at(&s, &[], berlin(), utc("2026-10-25T01:15:00Z")));
        assert!(!state_at(&s, &[], berlin(), utc("2026-10-25T00:29:59Z")));
    }

    #[test]
    fn end_of_day_merges_with_next_day_midnight() {
        let s = sched(&[(DayType::Monday, &[("18:00", "24:00")]), (DayType::Tuesday, &[("00:00", "06:00")])]);
        let got = transitions(&s, &[], berlin(), utc("2026-01-05T00:00:00Z"), 3);
        assert_eq!(
            got,
            vec![tr("2026-01-05T17:00:00Z", true), tr("2026-01-06T05:00:00Z", false), tr("2026-01-12T17:00:00Z", true),]
        );
        assert!(state_at(&s, &[], berlin(), utc("2026-01-05T23:00:00Z")));
        // Without Tuesday's pair the output turns off at midnight.
        let s = sched(&[(DayType::Monday, &[("18:00", "24:00")])]);
        let got = transitions(&s, &[], berlin(), utc("2026-01-05T00:00:00Z"), 2);
        assert_eq!(got, vec![tr("2026-01-05T17:00:00Z", true), tr("2026-01-05T23:00:00Z", false)]);
    }

    #[test]
    fn week_wraps_from_sunday_to_monday() {
        let s = sched(&[(DayType::Sunday, &[("20:00", "24:00")]), (DayType::Monday, &[("00:00", "07:00")])]);
        let got = transitions(&s, &[], Tz::UTC, utc("2026-01-10T00:00:00Z"), 2);
        assert_eq!(got, vec![tr("2026-01-11T20:00:00Z", true), tr("2026-01-12T07:00:00Z", false)]);
        // Starting while ON: the state carries over from Sunday.
        assert!(state_at(&s, &[], Tz::UTC, utc("2026-01-12T03:00:00Z")));
        let got = transitions(&s, &[], Tz::UTC, utc("2026-01-12T03:00:00Z"), 1);
        assert_eq!(got, vec![tr("2026-01-12T07:00:00Z", false)]);
    }

    #[test]
    fn transitions_are_strictly_after() {
        let s = sched(&[(DayType::Monday, &[("08:00", "17:00")])]);
        let got = transitions(&s, &[], Tz::UTC, utc("2026-01-05T08:00:00Z"), 1);
        assert_eq!(got, vec![tr("2026-01-05T17:00:00Z", false)]);
        assert!(transitions(&s, &[], Tz::UTC, utc("2026-01-05T08:00:00Z"), 0).is_empty());
    }

    #[test]
    fn empty_and_constant_schedules() {
        let empty = WeeklySchedule::default();
        let at = utc("2026-03-29T01:00:00Z");
        assert!(transitions(&empty, &[], berlin(), at, 10).is_empty());
        assert_eq!(next_run(&empty, &[], berlin(), at), None);
        assert!(!state_at(&empty, &[], berlin(), at));

        let always = WeeklySchedule { days: DayType::ALL.iter().map(|&d| (d, vec![p("00:00", "24:00")])).collect() };
        assert!(transitions(&always, &[], berlin(), at, 10).is_empty());
        assert!(state_at(&always, &[], berlin(), at));

        // Holiday1 without pairs: the marked day is off, one holiday within the horizon.
        let weekdays =
            WeeklySchedule { days: DayType::ALL[..7].iter().map(|&d| (d, vec![p("00:00", "24:00")])).collect() };
        let xmas = AnnualRoutine {
            name: "xmas".into(),
            holiday: DayType::Holiday1,
            dates: vec![],
            recurring: vec!["12-25".parse().unwrap()],
        };
        let got = transitions(&weekdays, std::slice::from_ref(&xmas), Tz::UTC, at, 10);
        assert_eq!(got, vec![tr("2026-12-25T00:00:00Z", false), tr("2026-12-26T00:00:00Z", true)]);
    }

    #[test]
    fn search_stops_at_the_horizon() {
        let s = sched(&[(DayType::Holiday2, &[("08:00", "09:00")])]);
        let far = AnnualRoutine {
            name: "far".into(),
            holiday: DayType::Holiday2,
            dates: vec![date("2028-01-03")],
            recurring: vec![],
        };
        let at = utc("2026-01-01T00:00:00Z");
        assert!(transitions(&s, std::slice::from_ref(&far), Tz::UTC, at, 2).is_empty());
        let near = AnnualRoutine { dates: vec![date("2027-01-03")], ..far };
        assert_eq!(transitions(&s, &[near], Tz::UTC, at, 2).len(), 2);
    }

    #[test]
    fn a_skipped_day_has_no_transitions() {
        // Samoa skipped Friday 2011-12-30: Thursday 23:59:59 (-10:00) was followed by Saturday 00:00 (+14:00).
        let s = sched(&[(DayType::Friday, &[("08:00", "17:00")])]);
        let apia = chrono_tz::Pacific::Apia;
        let got = transitions(&s, &[], apia, utc("2011-12-25T00:00:00Z"), 2);
        assert_eq!(got, vec![tr("2012-01-05T18:00:00Z", true), tr("2012-01-06T03:00:00Z", false)]);
        assert_eq!(resolve(apia, date("2011-12-30").and_hms_opt(8, 0, 0).unwrap()), utc("2011-12-30T10:00:00Z"));
    }

    #[test]
    fn validation_errors() {
        let ok = sched(&[(DayType::Monday, &[("12:00", "17:00"), ("08:00", "12:00"), ("18:00", "24:00")])]);
        assert_eq!(ok.validate(), Ok(()));
        let mut sorted = ok.clone();
        sorted.sort();
        assert_eq!(sorted.periods(DayType::Monday)[0], p("08:00", "12:00"));

        let five = sched(&[(
            DayType::Friday,
            &[("01:00", "02:00"), ("03:00", "04:00"), ("05:00", "06:00"), ("07:00", "08:00"), ("09:00", "10:00")],
        )]);
        let err = five.validate().unwrap_err();
        assert_eq!(err, ScheduleError::TooManyPeriods { day: DayType::Friday, count: 5 });
        assert_eq!(err.to_string(), "friday: 5 on/off pairs, at most 4 are allowed");

        let backwards = sched(&[(DayType::Holiday2, &[("06:00", "07:00"), ("17:00", "08:00")])]);
        let err = backwards.validate().unwrap_err();
        assert_eq!(err.to_string(), "holiday2 pair 2: on time 17:00 is not before off time 08:00");

        let on_at_end = sched(&[(DayType::Sunday, &[("24:00", "24:00")])]);
        assert!(matches!(on_at_end.validate(), Err(ScheduleError::EmptyPeriod { pair: 1, .. })));

        let overlap = sched(&[(DayType::Tuesday, &[("12:00", "18:00"), ("06:00", "07:00"), ("08:00", "12:30")])]);
        let err = overlap.validate().unwrap_err();
        assert_eq!(err, ScheduleError::Overlap { day: DayType::Tuesday, first: 3, second: 1 });
        assert_eq!(err.to_string(), "tuesday: pairs 3 and 1 overlap");

        let routine = AnnualRoutine { name: "bad".into(), holiday: DayType::Monday, dates: vec![], recurring: vec![] };
        assert_eq!(
            routine.validate().unwrap_err().to_string(),
            "annual routine \"bad\": day type monday is not holiday1 or holiday2"
        );
        // An invalid routine is ignored by evaluation.
        assert_eq!(
            day_type(date("2026-01-06"), &[AnnualRoutine { dates: vec![date("2026-01-06")], ..routine }]),
            DayType::Tuesday
        );

        // Evaluation tolerates what validation refuses: overlapping pairs are united.
        let s = sched(&[(DayType::Monday, &[("08:00", "12:00"), ("10:00", "14:00"), ("15:00", "09:00")])]);
        let got = transitions(&s, &[], Tz::UTC, utc("2026-01-05T00:00:00Z"), 2);
        assert_eq!(got, vec![tr("2026-01-05T08:00:00Z", true), tr("2026-01-05T14:00:00Z", false)]);
    }

    #[test]
    fn time_of_day_text() {
        assert_eq!(t("08:00").minutes(), 480);
        assert_eq!(t("8:05").minutes(), 485);
        assert_eq!(t("24:00"), TimeOfDay::END_OF_DAY);
        assert_eq!(t("00:00"), TimeOfDay::MIDNIGHT);
        assert_eq!(t("23:59").to_string(), "23:59");
        assert_eq!(TimeOfDay::new(7, 5).unwrap().to_string(), "07:05");
        assert_eq!(
            "25:00".parse::<TimeOfDay>().unwrap_err().to_string(),
            "25:00 is not a time of day (expected HH:MM from 00:00 to 24:00)"
        );
        for bad in ["24:01", "12:60", "12", "ab:cd", "12:5", "-1:00", "123:00", "12:00:00", ""] {
            assert_eq!(bad.parse::<TimeOfDay>(), Err(ScheduleError::InvalidTime(bad.into())), "{bad}");
        }
        assert!(TimeOfDay::new(24, 1).is_err());
        assert!(TimeOfDay::from_minutes(1441).is_err());
        assert_eq!(TimeOfDay::from_minutes(1440), Ok(TimeOfDay::END_OF_DAY));

        type De = serde::de::value::StrDeserializer<'static, serde::de::value::Error>;
        let de: De = "17:30".into_deserializer();
        assert_eq!(TimeOfDay::deserialize(de), Ok(t("17:30")));
        let de: De = "25:00".into_deserializer();
        assert!(TimeOfDay::deserialize(de).unwrap_err().to_string().contains("25:00 is not a time of day"));

        assert_eq!("12-25".parse::<MonthDay>().unwrap(), MonthDay::new(12, 25).unwrap());
        assert_eq!(MonthDay::new(2, 29).unwrap().to_string(), "02-29");
        assert!(MonthDay::new(2, 29).unwrap().matches(date("2028-02-29")));
        assert!("02-30".parse::<MonthDay>().is_err());
        assert_eq!(
            "13-01".parse::<MonthDay>().unwrap_err().to_string(),
            "13-01 is not a day of the year (expected MM-DD, such as 12-25)"
        );
    }

    #[test]
    fn serde_round_trip() {
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        struct Doc {
            schedule: WeeklySchedule,
            routines: Vec<AnnualRoutine>,
            next: Transition,
        }
        let doc = Doc {
            schedule: sched(&[(DayType::Monday, &[("08:00", "17:00")]), (DayType::Holiday1, &[("10:00", "24:00")])]),
            routines: vec![AnnualRoutine {
                name: "public".into(),
                holiday: DayType::Holiday1,
                dates: vec![date("2026-04-03")],
                recurring: vec!["12-25".parse().unwrap()],
            }],
            next: tr("2026-01-05T07:00:00Z", true),
        };
        let text = toml::to_string(&doc).unwrap();
        assert!(text.contains("on = \"08:00\""), "{text}");
        assert!(text.contains("off = \"24:00\""), "{text}");
        assert!(text.contains("holiday1"), "{text}");
        assert!(text.contains("\"12-25\""), "{text}");
        assert_eq!(toml::from_str::<Doc>(&text).unwrap(), doc);

        let minimal: AnnualRoutine = toml::from_str("name = \"x\"\nholiday = \"holiday2\"").unwrap();
        assert_eq!(minimal.holiday, DayType::Holiday2);
        assert!(minimal.dates.is_empty() && minimal.recurring.is_empty());
        let err = toml::from_str::<Period>("on = \"25:00\"\noff = \"12:00\"").unwrap_err();
        assert!(err.to_string().contains("25:00 is not a time of day"), "{err}");
    }

    #[test]
    fn time_zone_names() {
        assert_eq!(parse_tz("Europe/Berlin"), Ok(berlin()));
        assert_eq!(parse_tz("America/New_York"), Ok(chrono_tz::America::New_York));
        let err = parse_tz("Europe/Berln").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown time zone \"Europe/Berln\" (expected an IANA name such as Europe/Berlin or America/New_York)"
        );
        assert!(parse_tz("").is_err());
    }

    /// Time zones and the daylight-saving changes of 2026 (UTC) the property test clusters around.
    const ZONES: [(Tz, [&str; 2]); 3] = [
        (chrono_tz::Europe::Berlin, ["2026-03-29T01:00:00Z", "2026-10-25T01:00:00Z"]),
        (chrono_tz::America::New_York, ["2026-03-08T07:00:00Z", "2026-11-01T06:00:00Z"]),
        // Half-hour changes: 02:00 -> 01:30 in April, 02:00 -> 02:30 in October.
        (chrono_tz::Australia::Lord_Howe, ["2026-04-04T15:00:00Z", "2026-10-03T15:30:00Z"]),
    ];

    #[test]
    fn dst_changes_are_where_the_property_test_expects() {
        use chrono::Offset;
        for (tz, changes) in ZONES {
            for c in changes {
                let c = utc(c);
                let before = tz.offset_from_utc_datetime(&(c - chrono::Duration::seconds(1)).naive_utc()).fix();
                let after = tz.offset_from_utc_datetime(&c.naive_utc()).fix();
                assert_ne!(before, after, "{tz} {c}");
            }
        }
    }

    /// The wall-clock definition, without any daylight-saving handling.
    fn wall_on(schedule: &WeeklySchedule, routines: &[AnnualRoutine], local: NaiveDateTime) -> bool {
        let m = local.hour() * 60 + local.minute();
        schedule
            .periods(day_type(local.date(), routines))
            .iter()
            .any(|p| u32::from(p.on.minutes()) <= m && m < u32::from(p.off.minutes()))
    }

    /// Whether `at` is the second occurrence of an ambiguous wall-clock time.
    fn second_pass(tz: Tz, at: DateTime<Utc>) -> bool {
        match tz.from_local_datetime(&at.with_timezone(&tz).naive_local()) {
            chrono::LocalResult::Ambiguous(a, b) => at != a.to_utc().min(b.to_utc()),
            _ => false,
        }
    }

    /// The expected state, from the wall clock: during a repeated hour, the state at the end of its
    /// first pass.
    fn oracle(schedule: &WeeklySchedule, routines: &[AnnualRoutine], tz: Tz, at: DateTime<Utc>) -> bool {
        let mut u = at;
        while second_pass(tz, u) {
            u -= chrono::Duration::seconds(1);
        }
        wall_on(schedule, routines, u.with_timezone(&tz).naive_local())
    }

    /// Up to four pairs on a quarter-hour grid, often touching, often at 00:00 or 24:00.
    fn day_periods() -> impl Strategy<Value = Vec<Period>> {
        let start = prop_oneof![Just(0u16), 0u16..=96];
        (start, prop::collection::vec((1u16..=24, prop_oneof![Just(0u16), 0u16..=24]), 0..=4)).prop_map(
            |(start, lens)| {
                let q = |n: u16| TimeOfDay::from_minutes(n * 15).unwrap();
                let mut v = Vec::new();
                let mut at = start;
                for (on_len, off_len) in lens {
                    let end = (at + on_len).min(96);
                    if end <= at {
                        break;
                    }
                    v.push(Period::new(q(at), q(end)));
                    at = end + off_len;
                }
                v
            },
        )
    }

    fn schedule() -> impl Strategy<Value = WeeklySchedule> {
        prop::collection::vec(day_periods(), 9)
            .prop_map(|days| WeeklySchedule { days: DayType::ALL.into_iter().zip(days).collect() })
    }

    /// An instant near a change: at it, just before it, within 3 hours, within 2 days, or a whole
    /// minute within 3 hours.
    fn near() -> impl Strategy<Value = i64> {
        prop_oneof![
            Just(0i64),
            Just(-1i64),
            -10_800i64..10_800,
            -172_800i64..172_800,
            (-180i64..180).prop_map(|m| m * 60),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn state_agrees_with_transitions(
            zone in 0usize..ZONES.len(),
            change in 0usize..2,
            schedule in schedule(),
            h1 in prop::collection::vec(-3i64..=3, 0..3),
            h2 in prop::collection::vec(-3i64..=3, 0..3),
            a in near(),
            b in near(),
            nanos in prop_oneof![Just(0u32), 0u32..1_000_000_000],
        ) {
            let (tz, changes) = ZONES[zone];
            let base = utc(changes[change]);
            let base_date = base.with_timezone(&tz).date_naive();
            let dates = |offsets: &[i64]| offsets.iter().map(|&d| base_date + chrono::Duration::days(d)).collect();
            let routines = vec![
                AnnualRoutine { name: "h2".into(), holiday: DayType::Holiday2, dates: dates(&h2), recurring: vec![] },
                AnnualRoutine { name: "h1".into(), holiday: DayType::Holiday1, dates: dates(&h1), recurring: vec![] },
            ];
            let (a, b) = (a.min(b), a.max(b));
            let after = base + chrono::Duration::seconds(a);
            let at = base + chrono::Duration::seconds(b) + chrono::Duration::nanoseconds(i64::from(nanos));

            let limit = 100;
            let trs = transitions(&schedule, &routines, tz, after, limit);
            prop_assert_eq!(next_run(&schedule, &routines, tz, after), trs.first().copied());
            let start = state_at(&schedule, &routines, tz, after);
            let mut prev_at = after;
            let mut prev_on = start;
            for x in &trs {
                prop_assert!(x.at > prev_at, "{:?} not after {}", x, prev_at);
                prop_assert_ne!(x.on, prev_on, "{:?} does not change the state", x);
                prop_assert_eq!(state_at(&schedule, &routines, tz, x.at), x.on, "at {:?}", x);
                prop_assert_eq!(state_at(&schedule, &routines, tz, x.at - chrono::Duration::nanoseconds(1)), !x.on, "before {:?}", x);
                prev_at = x.at;
                prev_on = x.on;
            }
            prop_assert!(trs.len() < limit || trs[limit - 1].at > at);

            let expected = trs.iter().rev().find(|x| x.at <= at).map_or(start, |x| x.on);
            let got = state_at(&schedule, &routines, tz, at);
            prop_assert_eq!(got, expected, "state at {} (local {})", at, at.with_timezone(&tz));
            prop_assert_eq!(got, oracle(&schedule, &routines, tz, at), "wall clock at {} (local {})", at, at.with_timezone(&tz));
            prop_assert_eq!(start, oracle(&schedule, &routines, tz, after));
        }
    }
}
