// The arithmetic of the week grid of weekly schedules: a day's ON periods as sorted, disjoint minute intervals, painted on or off, converted to
// and from T3000's ON/OFF pairs ("HH:MM", at most four per day type).

import type { DayName, Pair, WeeklySchedule } from '../../api/types'

export const DAYS: readonly DayName[] = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday', 'holiday1', 'holiday2']
export const DAY_LABEL: Record<DayName, string> = {
  monday: 'Monday',
  tuesday: 'Tuesday',
  wednesday: 'Wednesday',
  thursday: 'Thursday',
  friday: 'Friday',
  saturday: 'Saturday',
  sunday: 'Sunday',
  holiday1: 'Holiday 1',
  holiday2: 'Holiday 2',
}
export const DAY_SHORT: Record<DayName, string> = {
  monday: 'Mon',
  tuesday: 'Tue',
  wednesday: 'Wed',
  thursday: 'Thu',
  friday: 'Fri',
  saturday: 'Sat',
  sunday: 'Sun',
  holiday1: 'Hol 1',
  holiday2: 'Hol 2',
}

/** At most this many ON/OFF pairs per day type, as on a T3 controller. */
export const MAX_PAIRS = 4
const DAY_MINUTES = 1440

/** An ON period in minutes after midnight: [start, end), 0 <= start < end <= 1440. */
export type Interval = [number, number]
export type Week = Record<DayName, Interval[]>

/** Minutes after midnight of "HH:MM" (or "H:MM"), 00:00 to 24:00; null if it is not a time. */
export function parseTime(s: string): number | null {
  const m = /^\s*(\d{1,2}):(\d{2})\s*$/.exec(s)
  if (!m) return null
  const h = Number(m[1])
  const min = Number(m[2])
  if (min > 59 || h > 24 || (h === 24 && min > 0)) return null
  return h * 60 + min
}

/** "HH:MM" of minutes after midnight (1440 is "24:00"). */
export function formatTime(minutes: number): string {
  const h = Math.floor(minutes / 60)
  const m = minutes % 60
  return `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}`
}

/** Sorts and unites intervals (touching ones too); drops empty ones; clamps to the day. */
export function normalize(intervals: Interval[]): Interval[] {
  const sorted = intervals
    .map(([a, b]) => [Math.max(0, Math.min(DAY_MINUTES, a)), Math.max(0, Math.min(DAY_MINUTES, b))] as Interval)
    .filter(([a, b]) => a < b)
    .sort((x, y) => x[0] - y[0] || x[1] - y[1])
  const out: Interval[] = []
  for (const [a, b] of sorted) {
    const last = out[out.length - 1]
    if (last && a <= last[1]) last[1] = Math.max(last[1], b)
    else out.push([a, b])
  }
  return out
}

/** A day's pairs as intervals (pairs that are not times, or not ON before OFF, are dropped). */
export function pairsToIntervals(pairs: Pair[] | undefined): Interval[] {
  const out: Interval[] = []
  for (const p of pairs ?? []) {
    const a = parseTime(p.on)
    const b = parseTime(p.off)
    if (a !== null && b !== null && a < b) out.push([a, b])
  }
  return normalize(out)
}

export function intervalsToPairs(intervals: Interval[]): Pair[] {
  return normalize(intervals).map(([a, b]) => ({ on: formatTime(a), off: formatTime(b) }))
}

export function weekFromSchedule(w: WeeklySchedule | undefined): Week {
  const out = {} as Week
  for (const d of DAYS) out[d] = pairsToIntervals(w?.days?.[d])
  return out
}

/** The API's weekly_schedule: every day type, with its pairs (none: OFF all day). */
export function weekToSchedule(week: Week): WeeklySchedule {
  const days: Partial<Record<DayName, Pair[]>> = {}
  for (const d of DAYS) days[d] = intervalsToPairs(week[d])
  return { days }
}

export function emptyWeek(): Week {
  const out = {} as Week
  for (const d of DAYS) out[d] = []
  return out
}

export function sameWeek(a: Week, b: Week): boolean {
  return DAYS.every((d) => {
    const x = normalize(a[d])
    const y = normalize(b[d])
    return x.length === y.length && x.every((iv, i) => iv[0] === y[i][0] && iv[1] === y[i][1])
  })
}

/** `intervals` with [start, end) turned ON (`on`) or OFF. */
export function paint(intervals: Interval[], start: number, end: number, on: boolean): Interval[] {
  if (start >= end) return normalize(intervals)
  if (on) return normalize([...intervals, [start, end]])
  const out: Interval[] = []
  for (const [a, b] of normalize(intervals)) {
    if (b <= start || a >= end) out.push([a, b])
    else {
      if (a < start) out.push([a, start])
      if (b > end) out.push([end, b])
    }
  }
  return out
}

/** Whether the whole of [start, end) is ON. */
export function covered(intervals: Interval[], start: number, end: number): boolean {
  return intervals.some(([a, b]) => a <= start && b >= end)
}

export interface PaintResult {
  week: Week
  /** Set when the paint was refused (the week is unchanged). */
  error: string | null
}

/**
 * Paints [start, end) ON or OFF on each of `days`. Refused as a whole, with a message naming the
 * day, when a day would get more than four ON periods.
 */
export function paintWeek(week: Week, days: DayName[], start: number, end: number, on: boolean): PaintResult {
  const next = { ...week }
  for (const d of days) {
    const iv = paint(week[d], start, end, on)
    if (iv.length > MAX_PAIRS) {
      return {
        week,
        error: `${DAY_LABEL[d]} would have ${iv.length} on periods; a schedule allows at most ${MAX_PAIRS} per day. Join or remove periods first, or edit the times as text.`,
      }
    }
    next[d] = iv
  }
  return { week: next, error: null }
}

/**
 * Checks a day's pairs typed as text: every time valid, ON before OFF, no overlaps, at most four.
 * Returns the intervals, or the problem.
 */
export function parsePairs(day: DayName, pairs: Pair[]): { intervals: Interval[] } | { error: string } {
  const out: Interval[] = []
  for (const [i, p] of pairs.entries()) {
    const a = parseTime(p.on)
    const b = parseTime(p.off)
    if (a === null) return { error: `${DAY_LABEL[day]} pair ${i + 1}: “${p.on}” is not a time (HH:MM, 00:00 to 24:00)` }
    if (b === null) return { error: `${DAY_LABEL[day]} pair ${i + 1}: “${p.off}” is not a time (HH:MM, 00:00 to 24:00)` }
    if (a >= b) return { error: `${DAY_LABEL[day]} pair ${i + 1}: on ${p.on} must be before off ${p.off}` }
    out.push([a, b])
  }
  if (pairs.length > MAX_PAIRS) return { error: `${DAY_LABEL[day]}: at most ${MAX_PAIRS} on/off pairs` }
  const sorted = [...out].sort((x, y) => x[0] - y[0])
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i][0] < sorted[i - 1][1]) return { error: `${DAY_LABEL[day]}: ${formatTime(sorted[i - 1][0])}–${formatTime(sorted[i - 1][1])} and ${formatTime(sorted[i][0])}–${formatTime(sorted[i][1])} overlap` }
  }
  return { intervals: normalize(out) }
}

/** Total ON minutes of a day. */
export function onMinutes(intervals: Interval[]): number {
  return intervals.reduce((n, [a, b]) => n + b - a, 0)
}

/** The day type and minute of `at` on the wall clock of `timeZone` (holidays are not known here). */
export function wallClock(at: Date, timeZone: string): { day: DayName; minute: number } | null {
  try {
    const parts = new Intl.DateTimeFormat('en-US', { timeZone, weekday: 'long', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).formatToParts(at)
    const get = (t: string) => parts.find((p) => p.type === t)?.value ?? ''
    const day = get('weekday').toLowerCase() as DayName
    if (!DAYS.includes(day)) return null
    return { day, minute: Number(get('hour')) * 60 + Number(get('minute')) }
  } catch {
    return null
  }
}
