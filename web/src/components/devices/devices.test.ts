import { describe, expect, test } from 'vitest'
import { addressOf, parseUnitIds, placeNames } from './types'

describe('unit ids', () => {
  test('lists and ranges, sorted without repeats', () => {
    expect(parseUnitIds('3, 1-2 ; 2')).toEqual([1, 2, 3])
    expect(parseUnitIds('')).toEqual([])
  })
  test('refuses what is not a unit id', () => {
    expect(() => parseUnitIds('x')).toThrow(/not a number/)
    expect(() => parseUnitIds('5-2')).toThrow(/0 to 255/)
    expect(() => parseUnitIds('250-256')).toThrow(/0 to 255/)
  })
})

describe('device text', () => {
  test('addresses', () => {
    expect(addressOf({ protocol: 'modbus-tcp', ip_address: '10.0.0.5', port: 502, serial_port: null, baud_rate: 9600, unit_id: 3 })).toBe('10.0.0.5:502 #3')
    expect(addressOf({ protocol: 'modbus-rtu', ip_address: null, port: 502, serial_port: '/dev/ttyUSB0', baud_rate: 19200, unit_id: 7 })).toBe('/dev/ttyUSB0 @19200 #7')
  })
  test('places by name', () => {
    const place = placeNames([{ id: 1, name: 'HQ', floors: [{ id: 2, name: 'L1', rooms: [{ id: 3, name: 'Lobby' }] }] }])
    expect(place({ building_id: 1, floor_id: 2, room_id: 3 })).toBe('HQ / L1 / Lobby')
    expect(place({ building_id: 1, floor_id: null, room_id: null })).toBe('HQ')
    expect(place({ building_id: null, floor_id: null, room_id: null })).toBe('')
  })
})

describe('plugin devices', () => {
  const base = { serial_port: null, baud_rate: 9600, unit_id: 0 }
  test('addresses: ip and port, else the options, never ?:null', () => {
    expect(addressOf({ ...base, protocol: 'bacnet-ip', ip_address: '10.0.0.5', port: 47808, options: { device_instance: 7 } })).toBe('bacnet-ip 10.0.0.5:47808')
    expect(addressOf({ ...base, protocol: 'bacnet-ip', ip_address: '10.0.0.5', port: null })).toBe('bacnet-ip 10.0.0.5')
    expect(addressOf({ ...base, protocol: 'example-c', ip_address: null, port: null, options: { seed: 3, fail_reads: true } })).toBe('example-c seed=3, fail_reads=true')
    expect(addressOf({ ...base, protocol: 'example-c', ip_address: null, port: null, options: {} })).toBe('example-c')
    expect(addressOf({ ...base, protocol: 'example-c', ip_address: null, port: 9, options: {} })).toBe('example-c port 9')
    expect(addressOf({ ...base, protocol: 'modbus-tcp', ip_address: '10.0.0.5', port: null, unit_id: 1 })).toBe('10.0.0.5:502 #1')
  })
})
