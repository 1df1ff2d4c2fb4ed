// Point names and digital states: what people call a point and how its value reads, everywhere.
import { describe, expect, it } from 'vitest'
import { deviceAndName, pointFullName, pointName, pointSubtitle, pointTitle, pointWithDevice, stateNames, unknownPoint, valueText, valueWithUnits } from './points'

const num = (v: number | null | undefined) => (v == null ? '–' : String(v))

describe('digital states', () => {
  it('reads the names of 0 and 1 from the range name of a digital point', () => {
    expect(stateNames({ digital: true, range_name: 'Off/On' })).toEqual(['Off', 'On'])
    expect(stateNames({ digital: true, range_name: 'Unoccupied/Occupied' })).toEqual(['Unoccupied', 'Occupied'])
  })
  it('takes the states the server names (a panel custom text may hold a slash)', () => {
    expect(stateNames({ digital: true, range_name: 'Stop/ped/Running', states: ['Stop/ped', 'Running'] })).toEqual(['Stop/ped', 'Running'])
    expect(stateNames({ digital: true, range_name: 'Off/On', states: [] })).toEqual(['Off', 'On'])
    expect(stateNames({ digital: false, range_name: null, states: ['Off', 'On'] })).toBeNull()
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
  it('writes numbers with formatValue unless told, and adds the units', () => {
    expect(valueText(21.456789, null)).toBe('21.457')
    expect(valueText(null, null)).toBe('—')
    expect(valueWithUnits(21.5, { digital: false, range_name: '°C', units: '°C' })).toBe('21.5 °C')
    expect(valueWithUnits(1, { digital: true, range_name: 'Off/On', units: null })).toBe('On')
    expect(valueWithUnits(null, { digital: false, range_name: null, units: '%' })).toBe('— %')
    expect(valueWithUnits(3, undefined)).toBe('3')
  })
})

describe('names', () => {
  const p = { label: null, name: 'VAR7', device: 'floor1-ahu', point_type: 'variable' }
  const labelled = { ...p, label: ' Supply temp ' }
  it('title, subtitle, device and name', () => {
    expect(pointTitle(p)).toBe('VAR7')
    expect(pointTitle(labelled)).toBe('Supply temp')
    expect(pointSubtitle(p)).toBe('floor1-ahu · variable')
    expect(pointSubtitle(labelled)).toBe('floor1-ahu · VAR7')
    expect(pointSubtitle({ ...p, device: null })).toBe('manual point · variable')
    expect(deviceAndName(p)).toBe('floor1-ahu VAR7')
    expect(deviceAndName({ ...p, device: null })).toBe('VAR7')
  })
  it('a short name: the label, else device and name', () => {
    expect(pointName(labelled, 7)).toBe('Supply temp')
    expect(pointName(p, 7)).toBe('floor1-ahu VAR7')
    expect(pointName({ ...p, label: '  ' }, 7)).toBe('floor1-ahu VAR7')
  })
  it('a full name: the label with device and name, else device and name', () => {
    expect(pointFullName(labelled, 7)).toBe('Supply temp (floor1-ahu VAR7)')
    expect(pointFullName(p, 7)).toBe('floor1-ahu VAR7')
    expect(pointFullName({ ...labelled, device: null }, 7)).toBe('Supply temp (VAR7)')
  })
  it('the device, then the title', () => {
    expect(pointWithDevice(labelled)).toBe('floor1-ahu · Supply temp')
    expect(pointWithDevice({ ...p, device: null })).toBe('VAR7')
  })
  it('a point not known (yet) is named the same way everywhere', () => {
    expect(unknownPoint(12)).toBe('Point #12')
    expect(pointName(undefined, 12)).toBe('Point #12')
    expect(pointFullName(null, 12)).toBe('Point #12')
  })
})
