// Small helpers the device components share: addresses and places for people, unit id lists.
// (A device's status is composables/useDevices.ts; times and round trips are lib/.)
import type { Building, Device, Floor, Room } from '../../api/types'
import { optionsSummary } from './plugins'

/**
 * `127.0.0.1:502 #1` or `/dev/ttyUSB0 @9600 #3`; a plugin device: `example-c 10.0.0.5:47808`
 * (its address and port, when it has them) or `example-c seed=3` (its options).
 */
export function addressOf(d: Pick<Device, 'protocol' | 'ip_address' | 'port' | 'serial_port' | 'baud_rate' | 'unit_id'> & { options?: Record<string, unknown> }): string {
  if (d.protocol === 'modbus-rtu') return `${d.serial_port ?? '?'} @${d.baud_rate} #${d.unit_id}`
  if (d.protocol === 'modbus-tcp') return `${d.ip_address ?? '?'}:${d.port ?? 502} #${d.unit_id}`
  if (d.ip_address) return `${d.protocol} ${d.ip_address}${d.port != null ? `:${d.port}` : ''}`
  const options = Object.keys(d.options ?? {}).length ? optionsSummary(d.options) : ''
  return [d.protocol, d.port != null ? `port ${d.port}` : '', options].filter(Boolean).join(' ')
}

/** Parses unit ids such as `1, 3-5, 10` (1 ..= 255). Throws with a message for people. */
export function parseUnitIds(text: string): number[] {
  const out = new Set<number>()
  for (const part of text.split(/[\s,;]+/).filter(Boolean)) {
    const m = /^(\d+)(?:\s*-\s*(\d+))?$/.exec(part)
    if (!m) throw new Error(`unit ids: \`${part}\` is not a number or a range like 1-5`)
    const a = Number(m[1])
    const b = m[2] === undefined ? a : Number(m[2])
    if (a < 0 || b > 255 || a > b) throw new Error(`unit ids: \`${part}\` must be within 0 to 255, low to high`)
    for (let i = a; i <= b; i++) out.add(i)
  }
  return [...out].sort((x, y) => x - y)
}

/** The names of buildings, floors and rooms (as GET /buildings has them). */
type PlaceTree = Pick<Building, 'id' | 'name'> & { floors: (Pick<Floor, 'id' | 'name'> & { rooms: Pick<Room, 'id' | 'name'>[] })[] }

/** Flattens the buildings into `Building / Floor / Room` labels by id. */
export function placeNames(buildings: PlaceTree[] | null) {
  const b = new Map<number, string>()
  const f = new Map<number, string>()
  const r = new Map<number, string>()
  for (const x of buildings ?? []) {
    b.set(x.id, x.name)
    for (const fl of x.floors ?? []) {
      f.set(fl.id, fl.name)
      for (const ro of fl.rooms ?? []) r.set(ro.id, ro.name)
    }
  }
  return (d: Pick<Device, 'building_id' | 'floor_id' | 'room_id'>) =>
    [d.building_id != null ? b.get(d.building_id) : null, d.floor_id != null ? f.get(d.floor_id) : null, d.room_id != null ? r.get(d.room_id) : null]
      .filter(Boolean)
      .join(' / ')
}
