import { describe, expect, it } from 'vitest'
import {
  covered,
  emptyWeek,
  formatTime,
  intervalsToPairs,
  normalize,
  paint,
  paintWeek,
  pairsToIntervals,
  parsePairs,
  parseTime,
  sameWeek,
  wallClock,
  weekFromSchedule,
  weekToSchedule,
} from './model'

describe('times', () => {
  it('parses HH:MM from 00:00 to 24:00', () => {
    expect(parseTime('00:00')).toBe(0)
    expect(parseTime('8:30')).toBe(510)
    expect(parseTime(' 17:45 ')).toBe(1065)
    expect(parseTime('24:00')).toBe(1440)
    for (const bad of ['24:01', '25:00', '12:60', '12', '12:5', 'ab:cd', '', '-1:00']) expect(parseTime(bad), bad).toBeNull()
  })
  it('formats minutes', () => {
    expect(formatTime(0)).toBe('00:00')
    expect(formatTime(510)).toBe('08:30')
    expect(formatTime(1440)).toBe('24:00')
  })
})

describe('intervals', () => {
  it('unites overlapping and touching periods and sorts them', () => {
    expect(normalize([[600, 700], [480, 600], [900, 1000], [950, 1100], [0, 0]])).toEqual([[480, 700], [900, 1100]])
  })
  it('paints on and off', () => {
    const day = pairsToIntervals([{ on: '08:00', off: '17:00' }])
    expect(paint(day, 720, 780, false)).toEqual([[480, 720], [780, 1020]])
    expect(paint(day, 1020, 1080, true)).toEqual([[480, 1080]])
    expect(paint(day, 0, 1440, false)).toEqual([])
    expect(paint([], 1380, 1440, true)).toEqual([[1380, 1440]])
  })
  it('knows which cells are covered', () => {
    const day: [number, number][] = [[480, 1020]]
    expect(covered(day, 480, 510)).toBe(true)
    expect(covered(day, 1005, 1035)).toBe(false)
    expect(covered(day, 0, 30)).toBe(false)
  })
  it('converts to pairs and back', () => {
    const pairs = [{ on: '18:00', off: '24:00' }, { on: '06:00', off: '08:15' }]
    expect(intervalsToPairs(pairsToIntervals(pairs))).toEqual([{ on: '06:00', off: '08:15' }, { on: '18:00', off: '24:00' }])
  })
})

describe('week', () => {
  it('round-trips the API form with every day type present', () => {
    const w = weekFromSchedule({ days: { monday: [{ on: '08:00', off: '17:00' }], holiday1: [] } })
    expect(w.monday).toEqual([[480, 1020]])
    expect(w.sunday).toEqual([])
    const api = weekToSchedule(w)
    expect(Object.keys(api.days)).toHaveLength(9)
    expect(api.days.monday).toEqual([{ on: '08:00', off: '17:00' }])
    expect(api.days.holiday2).toEqual([])
  })
  it('paints several days at once', () => {
    const r = paintWeek(emptyWeek(), ['monday', 'tuesday'], 480, 1020, true)
    expect(r.error).toBeNull()
    expect(r.week.monday).toEqual([[480, 1020]])
    expect(r.week.tuesday).toEqual([[480, 1020]])
    expect(r.week.wednesday).toEqual([])
  })
  it('refuses a fifth period and keeps the week as it was', () => {
    let w = emptyWeek()
    for (const h of [1, 3, 5, 7]) w = paintWeek(w, ['friday'], h * 60, h * 60 + 30, true).week
    expect(w.friday).toHaveLength(4)
    const r = paintWeek(w, ['thursday', 'friday'], 600, 630, true)
    expect(r.error).toMatch(/Friday would have 5 on periods/)
    expect(r.week).toBe(w)
    expect(r.week.thursday).toEqual([])
    // Joining periods is fine: it leaves fewer.
    expect(paintWeek(w, ['friday'], 60, 480, true).week.friday).toEqual([[60, 480]])
  })
  it('compares weeks by what they switch', () => {
    const a = weekFromSchedule({ days: { monday: [{ on: '08:00', off: '12:00' }, { on: '12:00', off: '17:00' }] } })
    const b = weekFromSchedule({ days: { monday: [{ on: '08:00', off: '17:00' }] } })
    expect(sameWeek(a, b)).toBe(true)
    expect(sameWeek(a, emptyWeek())).toBe(false)
  })
})

describe('typed pairs', () => {
  it('accepts valid pairs', () => {
    expect(parsePairs('monday', [{ on: '12:00', off: '13:00' }, { on: '07:00', off: '12:00' }])).toEqual({ intervals: [[420, 780]] })
  })
  it('names the problem', () => {
    expect(parsePairs('monday', [{ on: '7', off: '12:00' }])).toEqual({ error: expect.stringContaining('“7” is not a time') })
    expect(parsePairs('tuesday', [{ on: '12:00', off: '08:00' }])).toEqual({ error: expect.stringContaining('must be before') })
    expect(parsePairs('sunday', [{ on: '08:00', off: '12:00' }, { on: '11:00', off: '13:00' }])).toEqual({ error: expect.stringContaining('overlap') })
    const five = [1, 3, 5, 7, 9].map((h) => ({ on: formatTime(h * 60), off: formatTime(h * 60 + 30) }))
    expect(parsePairs('holiday1', five)).toEqual({ error: expect.stringContaining('at most 4') })
  })
})

describe('wall clock', () => {
  it('reads the weekday and minute in a time zone', () => {
    // 2026-03-02 is a Monday; 23:30 UTC is already Tuesday 00:30 in Berlin (CET, +1).
    const at = new Date(Date.UTC(2026, 2, 2, 23, 30))
    expect(wallClock(at, 'UTC')).toEqual({ day: 'monday', minute: 1410 })
    expect(wallClock(at, 'Europe/Berlin')).toEqual({ day: 'tuesday', minute: 30 })
    expect(wallClock(at, 'Not/AZone')).toBeNull()
  })
})
