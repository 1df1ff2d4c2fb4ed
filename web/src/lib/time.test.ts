// Times: one unit for numbers (epoch milliseconds), one way to say how long ago.
import { describe, expect, it } from 'vitest'
import { formatDateTime, formatTime, timeAgo, timeUntil, toMs, usToMs } from './time'

const NOON = Date.UTC(2026, 0, 15, 12, 0, 0)

describe('instants', () => {
  it('reads RFC 3339, Dates and epoch milliseconds; microseconds only through usToMs', () => {
    expect(toMs('2026-01-15T12:00:00Z')).toBe(NOON)
    expect(toMs(new Date(NOON))).toBe(NOON)
    expect(toMs(NOON)).toBe(NOON)
    expect(toMs(usToMs(NOON * 1000))).toBe(NOON)
    expect(usToMs(1_500_999)).toBe(1500)
  })
  it('none or unreadable is null', () => {
    expect(toMs(null)).toBeNull()
    expect(toMs(undefined)).toBeNull()
    expect(toMs('')).toBeNull()
    expect(toMs('yesterday')).toBeNull()
    expect(toMs(Number.NaN)).toBeNull()
    expect(toMs(new Date(Number.NaN))).toBeNull()
    expect(usToMs(null)).toBeNull()
  })
})

describe('time ago', () => {
  it('never, just now, seconds, minutes, hours, days', () => {
    expect(timeAgo(null, NOON)).toBe('never')
    expect(timeAgo(NOON - 1400, NOON)).toBe('just now')
    expect(timeAgo(NOON - 12_000, NOON)).toBe('12 s ago')
    expect(timeAgo(NOON - 5 * 60_000, NOON)).toBe('5 min ago')
    expect(timeAgo(NOON - 3 * 3_600_000, NOON)).toBe('3 h ago')
    expect(timeAgo(NOON - 40 * 86_400_000, NOON)).toBe('40 d ago')
  })
  it('takes strings and Dates alike, and never says a time is in the future', () => {
    expect(timeAgo('2026-01-15T11:59:30Z', NOON)).toBe('30 s ago')
    expect(timeAgo(new Date(NOON - 120_000), NOON)).toBe('2 min ago')
    expect(timeAgo(NOON + 5000, NOON)).toBe('just now')
  })
  it('epoch microseconds given as microseconds would be years off: they go through usToMs', () => {
    expect(timeAgo(usToMs((NOON - 60_000) * 1000), NOON)).toBe('1 min ago')
  })
})

describe('time until', () => {
  it('under a minute, minutes, hours and minutes up to two days, then days', () => {
    expect(timeUntil(null, NOON)).toBe('')
    expect(timeUntil(NOON + 30_000, NOON)).toBe('in < 1 min')
    expect(timeUntil(NOON - 30_000, NOON)).toBe('in < 1 min')
    expect(timeUntil(NOON + 5 * 60_000, NOON)).toBe('in 5 min')
    expect(timeUntil(NOON + 3 * 3_600_000 + 20 * 60_000, NOON)).toBe('in 3 h 20 min')
    expect(timeUntil(NOON + 3 * 3_600_000, NOON)).toBe('in 3 h')
    expect(timeUntil(NOON + 3 * 3_600_000 + 59 * 60_000 + 40_000, NOON)).toBe('in 4 h')
    expect(timeUntil(NOON + 4 * 86_400_000, NOON)).toBe('in 4 d')
  })
})

describe('date and time', () => {
  it("today's times alone, other days with their date", () => {
    const today = formatTime(NOON, NOON + 60_000)
    expect(today).toBe(new Date(NOON).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' }))
    const earlier = formatTime(NOON - 3 * 86_400_000, NOON)
    expect(earlier.endsWith(today)).toBe(true)
    expect(earlier.length).toBeGreaterThan(today.length)
    expect(formatTime(null, NOON)).toBe('—')
  })
  it('tooltips: the full local date and time, empty for none', () => {
    expect(formatDateTime(NOON)).toBe(new Date(NOON).toLocaleString())
    expect(formatDateTime('2026-01-15T12:00:00Z')).toBe(new Date(NOON).toLocaleString())
    expect(formatDateTime(null)).toBe('')
  })
})
