import { describe, expect, test } from 'vitest'
import { emptyTrend, trendBody } from './trend'
import type { Point } from '../../api/types'
import { canWrite, groupByClass, outOfRange, parseTsv, rangeText, shown, toTsv } from './types'

const point = (over: Partial<Point> = {}): Point => ({
  id: 1,
  device_id: 1,
  device: 'd',
  name: 'OUT1',
  point_number: 1,
  point_type: 'output',
  value: 5,
  units: null,
  range: null,
  range_name: null,
  digital: null,
  label: null,
  description: null,
  auto_manual: false,
  has_auto_manual: true,
  quality: 'good',
  updated_at: '2026-01-01T00:00:00.000Z',
  writable: true,
  trend: { interval_ms: 1000, deadband: null, heartbeat_secs: null, retention_days: null },
  class: 'setpoint',
  min: null,
  max: null,
  ...over,
})

describe('TSV', () => {
  test('reads spreadsheet text: CRLF, a final newline, tabs', () => {
    expect(parseTsv('a\tb\r\nc\r\n')).toEqual([['a', 'b'], ['c']])
    expect(parseTsv('one')).toEqual([['one']])
    expect(parseTsv('')).toEqual([])
  })
  test('writes cells without breaking rows on tabs or line breaks inside cells', () => {
    expect(toTsv([['a\tb', 'c\nd'], ['e', '']])).toBe('a b\tc d\ne\t')
    expect(parseTsv(toTsv([['x', 'y'], ['z', 'w']]))).toEqual([['x', 'y'], ['z', 'w']])
  })
})

describe('trend settings', () => {
  test('empty fields change nothing', () => {
    expect(trendBody(emptyTrend())).toBeNull()
  })
  test('seconds become milliseconds; numbers from number inputs are taken as they are', () => {
    expect(trendBody({ interval_s: '2.5', deadband: 0, heartbeat_secs: '', retention_days: 30, line: '' })).toEqual({ interval_ms: 2500, deadband: 0, retention_days: 30 })
  })
  test('the trend line is sent when chosen, `default` included', () => {
    expect(trendBody({ ...emptyTrend(), line: 'linear' })).toEqual({ line: 'linear' })
    expect(trendBody({ ...emptyTrend(), line: 'default' })).toEqual({ line: 'default' })
  })
  test('out of range values are refused with a message', () => {
    expect(() => trendBody({ ...emptyTrend(), interval_s: '0.01' })).toThrow(/Poll interval/)
    expect(() => trendBody({ ...emptyTrend(), deadband: '-1' })).toThrow(/Deadband/)
    expect(() => trendBody({ ...emptyTrend(), heartbeat_secs: '1.5' })).toThrow(/Heartbeat/)
    expect(() => trendBody({ ...emptyTrend(), retention_days: '0' })).toThrow(/Retention/)
  })
})

describe('rows', () => {
  test('a live update overrides the REST value and tells manual by its quality code', () => {
    const p = point()
    expect(shown(p, undefined)).toMatchObject({ value: 5, manual: false, live: false })
    const u = { type: 'PointUpdate' as const, point_id: 1, point_type: 'output', value: 7, has_value: true, timestamp: 1_767_225_601_000, time: '2026-01-01T00:00:01Z', ts_us: 1_767_225_601_000_000, quality: 0xd8, quality_name: 'good/local_override', snapshot: false }
    expect(shown(p, u, true)).toEqual({ value: 7, quality: 'good/local_override', manual: true, updated: 1_767_225_601_000, live: true })
    // An update from a connection that is gone is shown, but not as live.
    expect(shown(p, u, false).live).toBe(false)
    // A REST value is never live.
    expect(shown(p, undefined, true).live).toBe(false)
    // A failed read carries no value: 0 on the wire, none on screen.
    const bad = { ...u, value: 0, has_value: false, quality: 0x18, quality_name: 'bad/comm_failure' }
    expect(shown(p, bad, true)).toEqual({ value: null, quality: 'bad/comm_failure', manual: false, updated: 1_767_225_601_000, live: true })
  })
  test('inputs take writes only in manual; read-only points never', () => {
    expect(canWrite(point({ point_type: 'input' }), false)).toBe(false)
    expect(canWrite(point({ point_type: 'input' }), true)).toBe(true)
    expect(canWrite(point({ point_type: 'variable' }), false)).toBe(true)
    expect(canWrite(point({ writable: false }), true)).toBe(false)
  })
  test('a configuration point takes writes from admins only', () => {
    const cfg = point({ point_type: 'register', name: 'MODBUS_ADDRESS', class: 'configuration' })
    expect(canWrite(cfg, false)).toBe(false)
    expect(canWrite(cfg, false, true)).toBe(true)
    expect(canWrite(point({ point_type: 'register', class: 'setpoint' }), false)).toBe(true)
  })
})

describe('classes and ranges', () => {
  test('points group by class: measurements, then setpoints and commands, then configuration', () => {
    const ps = [
      point({ id: 1, class: 'configuration' }),
      point({ id: 2, class: 'measurement' }),
      point({ id: 3, class: 'setpoint' }),
      point({ id: 4, class: 'measurement' }),
    ]
    const g = groupByClass(ps)
    expect(g.map((x) => [x.key, x.points.map((p) => p.id)])).toEqual([
      ['measurement', [2, 4]],
      ['setpoint', [3]],
      ['configuration', [1]],
    ])
    expect(groupByClass([point({ class: 'setpoint' })]).map((x) => x.title)).toEqual(['Setpoints & commands'])
  })
  test('a value outside the range is refused with the range and units', () => {
    const pct = point({ min: 0, max: 100, units: '%' })
    expect(rangeText(pct)).toBe('0 to 100 %')
    expect(outOfRange(pct, 150)).toBe('150 is outside the range of OUT1: 0 to 100 %')
    expect(outOfRange(pct, 100)).toBeNull()
    expect(outOfRange(pct, 0)).toBeNull()
    expect(outOfRange(point({ name: 'MODBUS_FILTER', min: 0, max: 65535 }), -1)).toBe('-1 is outside the range of MODBUS_FILTER: 0 to 65535')
    expect(rangeText(point())).toBeNull()
    expect(outOfRange(point(), 1e12)).toBeNull()
    expect(rangeText(point({ min: 0 }))).toBe('from 0')
  })
})
