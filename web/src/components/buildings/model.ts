// What the building pages share: places, floor plan uploads, and the calls they make.
import { api, API } from '../../api/client'
import type { Device, Point } from '../../api/types'
import { deviceAndName } from '../../points'

/** Where something is: a building, optionally a floor in it, optionally a room on that floor. */
export interface Place {
  building_id: number | null
  floor_id: number | null
  room_id: number | null
}

export const MAX_PLAN_BYTES = 8 * 1024 * 1024
export const PLAN_TYPES = ['image/png', 'image/jpeg', 'image/webp', 'image/svg+xml']

/** A point's name for people: its label, else device and name. */
export function pointName(p: Point | undefined, id: number): string {
  if (!p) return `Point ${id}`
  return p.label || deviceAndName(p)
}

/** Moves a device to `place` (a PUT of its whole definition with the new place). */
export function placeDevice(d: Device, place: Place): Promise<Device> {
  return api.put<Device>(`${API}/devices/${d.id}`, {
    ...d.config,
    building_id: place.building_id,
    floor_id: place.floor_id,
    room_id: place.room_id,
    description: d.description,
  })
}

/** The content type of an image file, from the browser or else the file name. */
export function imageType(f: File): string {
  if (f.type) return f.type
  const ext = f.name.toLowerCase().split('.').pop() ?? ''
  return { png: 'image/png', jpg: 'image/jpeg', jpeg: 'image/jpeg', webp: 'image/webp', svg: 'image/svg+xml' }[ext] ?? ''
}

/** Every IANA time zone the browser knows (for suggestions; the server decides). */
export function timeZones(): string[] {
  const intl = Intl as unknown as { supportedValuesOf?: (k: string) => string[] }
  try {
    return intl.supportedValuesOf?.('timeZone') ?? []
  } catch {
    return []
  }
}
