// Point names and digital states.
import { describe, expect, it } from 'vitest'
import { legendValue } from './components/trends/types'
import { deviceAndName, pointFromWire, pointSubtitle, pointTitle, stateNames, valueText } from './points'
import type { WirePoint } from './api/types'

const num = (v: number | null | undefined) => (v == null ? '–' : String(v))

describe('digital states', () => {
  it('reads the names of 0 and 1 from the range name of a digital point', () => {
    expect(stateNames({ digital: true, range_name: 'Off/On' })).toEqual(['Off', 'On'])
    expect(stateNames({ digital: true, range_name: 'Unoccupied/Occupied' })).toEqual(['Unoccupied', 'Occupied'])
  })
  it('has none for analog points, unknown ranges and names that are not two states', () => {
    expect(stateNames({ digital: false, range_name: '°C' })).toBeNull()
    expect(stateNames({ digital: null, range_name: 'Off/On' })).toBeNull()
    expect(stateNames({ digital: true, range_name: null })).toBeNull()
    expect(stateNames({ digital: true, range_name: 'custom table' })).toBeNull()
    expect(stateNames({ digital: true, range_name: 'a/b/c' })).toBeNull()
    expect(stateNames(undefined)).toBeNull()
  })
  it('shows a digital value as its state, anything but 0 as the state of 1, else the number', () => {
    const p = { digital: true, range_name: 'Unoccupied/Occupied' }
    expect(valueText(0, p, num)).toBe('Unoccupied')
    expect(valueText(1, p, num)).toBe('Occupied')
    expect(valueText(1000, p, num)).toBe('Occupied')
    expect(valueText(null, p, num)).toBe('–')
    expect(valueText(1, { digital: true, range_name: null }, num)).toBe('1')
    expect(valueText(21.5, { digital: false, range_name: '°C' }, num)).toBe('21.5')
  })
  it('the trend legend keeps the 0/1 with the name, and On/Off without names', () => {
    expect(legendValue(1, true, ['Unoccupied', 'Occupied'])).toBe('Occupied (1)')
    expect(legendValue([0, 1], true, ['Close', 'Open'])).toBe('Close (0) … Open (1)')
    expect(legendValue(0, true)).toBe('Off (0)')
    expect(legendValue(1, true, null)).toBe('On (1)')
  })
})

describe('names', () => {
  const p = { label: null, name: 'VAR7', device: 'floor1-ahu', point_type: 'variable' }
  it('title, subtitle, device and name', () => {
    expect(pointTitle(p)).toBe('VAR7')
    expect(pointTitle({ ...p, label: ' Supply temp ' })).toBe('Supply temp')
    expect(pointSubtitle(p)).toBe('floor1-ahu · variable')
    expect(pointSubtitle({ ...p, label: 'Supply temp' })).toBe('floor1-ahu · VAR7')
    expect(pointSubtitle({ ...p, device: null })).toBe('manual point · variable')
    expect(deviceAndName(p)).toBe('floor1-ahu VAR7')
    expect(deviceAndName({ ...p, device: null })).toBe('VAR7')
  })
})

describe('points as the server sends them', () => {
  const wire = (over: Partial<WirePoint> = {}): WirePoint => ({
    id: 5, device_id: 2, device: 'ahu', name: 'VAR1', point_number: 1, point_type: 'variable', value: 21.5, has_value: true,
    units: 'degC', range: null, range_name: null, digital: null, label: 'SAT', description: null, auto_manual: false,
    quality: 'good', updated_at: '2026-01-01T00:00:00.000Z', writable: true,
    trend: { interval_ms: 1000, deadband: null, heartbeat_secs: null, retention_days: null }, ...over,
  })
  it('keeps what a point has', () => {
    expect(pointFromWire(wire())).toMatchObject({ device_id: 2, point_number: 1, value: 21.5, units: 'degC', label: 'SAT', updated_at: '2026-01-01T00:00:00.000Z' })
  })
  it("turns the plan's stand-ins for none (0, \"\", the epoch) back into null", () => {
    const manual = pointFromWire(wire({ device_id: 0, device: null, point_number: 0, point_type: 'manual', value: 0, has_value: false, units: '', label: '', quality: null, updated_at: '1970-01-01T00:00:00.000Z' }))
    expect(manual).toMatchObject({ device_id: null, point_number: null, value: null, units: null, label: null, updated_at: null })
    // A failed read: a time and a quality, no value.
    const failed = pointFromWire(wire({ value: 0, has_value: false, quality: 'bad/comm_failure' }))
    expect(failed).toMatchObject({ value: null, quality: 'bad/comm_failure', updated_at: '2026-01-01T00:00:00.000Z' })
  })
})
