import { describe, expect, test } from 'vitest'
import { holdGaps, limitHold, stepBandOf, visibleStats } from './steps'

const MIN = 60

describe('step traces', () => {
  test('an unknown value stays a gap until the trace has its next row', () => {
    // undefined: another trace's time (the step holds); null: a bad-quality row.
    expect(holdGaps([1, undefined, null, undefined, undefined, 2, undefined])).toEqual([1, undefined, null, null, null, 2, undefined])
  })

  test('a value holds no longer than the point promises a new row: after a longer silence, a gap', () => {
    // A heartbeat of 300 s (a row at least every 5 min), held at most 600 s.
    const s = { ts: [0, 300, 3000, 3300], values: [1, 2, 3, 4] }
    expect(limitHold(s, 600, 3400)).toEqual({ ts: [0, 300, 900, 3000, 3300], values: [1, 2, null, 3, 4] })
    // After the last row too, when now is further than that.
    expect(limitHold(s, 600, 4000)).toEqual({ ts: [0, 300, 900, 3000, 3300, 3900], values: [1, 2, null, 3, 4, null] })
    // Nothing cut (the same rows), or no promise: as they are.
    expect(limitHold(s, 3000, 3400)).toBe(s)
    expect(limitHold(s, null, 99_999)).toBe(s)
    // The statistics leave the silence out.
    expect(visibleStats(limitHold(s, 600, 3400), 0, 3400, 3400, true)).toEqual({ min: 1, max: 4, avg: (300 + 2 * 600 + 3 * 300 + 4 * 100) / 1300, seconds: 1300 })
  })

  test('a thinned step trace jumps where it changed and holds flat between its buckets', () => {
    // 10 buckets of 10 s over [0, 100): a burst of changes in bucket 1, then nothing until 85 s.
    const s = { ts: [0, 12, 13, 14, 18, 85], values: [35, 40, 90, 20, 75, 50] }
    const x = [0, 5, 12, 13, 14, 18, 40, 85, 100]
    const { lo, hi } = stepBandOf(s, x, 0, 100, 10)
    // Bucket 0 (one row): its value. Bucket 1: its range at its first row, its last value at its
    // last row, held (undefined) across the other traces' times up to the row at 85 s.
    expect(lo).toEqual([35, undefined, 20, undefined, undefined, 75, undefined, 50, undefined])
    expect(hi).toEqual([35, undefined, 90, undefined, undefined, 75, undefined, 50, undefined])
  })

  test('rows after the grid (live, the hold to now) are single values; an unknown last value is a gap', () => {
    const s = { ts: [0, 4, 10, 12], values: [1, null, 3, 4] }
    const { lo, hi } = stepBandOf(s, [0, 4, 6, 10, 12], 0, 10, 2)
    // Bucket 0 holds 1 and then nothing known from 4 s (a gap until the row at 10 s).
    expect(lo).toEqual([1, null, null, 3, 4])
    expect(hi).toEqual([1, null, null, 3, 4])
  })
})

describe('minimum, average and maximum of the visible range', () => {
  test('35 then 75: the average weighs each value by how long it held', () => {
    const s = { ts: [0, 60], values: [35, 75] }
    // Visible 30..90 s: 35 for 30 s, 75 for 30 s.
    expect(visibleStats(s, 30, 90, 90, true)).toEqual({ min: 35, max: 75, avg: 55, seconds: 60 })
    // A value held 59 min counts 59 times as much as one held 1 min (the mean of rows says 15).
    const held = visibleStats({ ts: [0, 59 * MIN], values: [10, 20] }, 0, 60 * MIN, 60 * MIN, true)!
    expect(held.avg).toBeCloseTo((10 * 59 + 20) / 60, 10)
  })

  test('the value in force at the left edge counts from there; the last one holds until now, not beyond', () => {
    const s = { ts: [0, 100], values: [5, 7] }
    // Window 50..200 s, now at 150 s: 5 for 50 s, 7 for 50 s.
    expect(visibleStats(s, 50, 200, 150, true)).toEqual({ min: 5, max: 7, avg: 6, seconds: 100 })
    // Zoomed in between two rows: the value in force, nothing else.
    expect(visibleStats(s, 20, 30, 150, true)).toEqual({ min: 5, max: 5, avg: 5, seconds: 10 })
    // A row outside the window does not count toward min or max.
    expect(visibleStats({ ts: [0, 10, 20], values: [1, 100, 2] }, 25, 40, 40, true)).toEqual({ min: 2, max: 2, avg: 2, seconds: 15 })
  })

  test('unknown values and the time before the first row count for nothing', () => {
    const s = { ts: [10, 20, 30], values: [4, null, 8] }
    // 0..40: nothing known before 10 s, 4 for 10 s, unknown for 10 s, 8 for 10 s.
    expect(visibleStats(s, 0, 40, 40, true)).toEqual({ min: 4, max: 8, avg: 6, seconds: 20 })
    expect(visibleStats({ ts: [10], values: [null] }, 0, 40, 40, true)).toBeNull()
    expect(visibleStats({ ts: [], values: [] }, 0, 40, 40, true)).toBeNull()
    // A window wholly after now has nothing yet.
    expect(visibleStats({ ts: [0], values: [1] }, 50, 60, 40, true)).toBeNull()
  })

  test('a linear trace: the line between rows, cut at the window edges', () => {
    const s = { ts: [0, 100], values: [0, 100] }
    expect(visibleStats(s, 25, 75, 1000, false)).toEqual({ min: 25, max: 75, avg: 50, seconds: 50 })
    // Unlike a step trace, which holds 0 until 100 s.
    expect(visibleStats(s, 25, 75, 1000, true)).toEqual({ min: 0, max: 0, avg: 0, seconds: 50 })
    // No line into an unknown value; the lone row in the window is still seen.
    const g = visibleStats({ ts: [0, 10, 20], values: [0, 10, null] }, 0, 30, 30, false)!
    expect([g.min, g.max, g.avg, g.seconds]).toEqual([0, 10, 5, 10])
  })
})
