// Buildings, floors, rooms, devices and floor plans as the API answers them, and the calls the
// building pages make.
import { api, API, ApiError } from '../../api/client'
import { useT3000 } from '../../composables/useT3000'

export interface Room {
  id: number
  floor_id: number
  name: string
  description: string | null
  updated_us?: number
}

export interface PlanInfo {
  content_type: string
  bytes: number
  updated_us: number
}

/** A badge on a floor plan: x and y are fractions (0..1) of the image's width and height. */
export interface PlanPoint {
  point_id: number
  x: number
  y: number
}

export interface Floor {
  id: number
  building_id: number
  name: string
  level: number
  description: string | null
  rooms: Room[]
  plan?: PlanInfo | null
  plan_points?: PlanPoint[]
}

export interface Building {
  id: number
  name: string
  description: string | null
  address: string | null
  time_zone: string
  floors: Floor[]
}

export interface Paged<T> {
  items: T[]
  total: number
  offset: number
  limit: number
}

export interface DeviceStatusInfo {
  state: string
  online: boolean
  rtt_ms: number | null
  connection_quality: number
  last_error: string | null
}

export interface Device {
  id: number
  name: string
  device_type: string
  protocol: string
  ip_address: string | null
  port: number
  serial_port: string | null
  unit_id: number
  profile: string
  enabled: boolean
  online: boolean
  last_seen: string | null
  building_id: number | null
  floor_id: number | null
  room_id: number | null
  description: string | null
  source: string
  status: DeviceStatusInfo | null
  point_counts: { total: number }
  config: Record<string, unknown>
}

export interface PointInfo {
  id: number
  device_id: number | null
  device: string | null
  name: string
  point_type: string
  value: number | null
  units: string | null
  label: string | null
  description: string | null
  quality: string | null
}

/** Where something is: a building, optionally a floor in it, optionally a room on that floor. */
export interface Place {
  building_id: number | null
  floor_id: number | null
  room_id: number | null
}

export const MAX_PLAN_BYTES = 8 * 1024 * 1024
export const PLAN_TYPES = ['image/png', 'image/jpeg', 'image/webp', 'image/svg+xml']

/** A point's name for people: its label, else device and name. */
export function pointName(p: PointInfo | undefined, id: number): string {
  if (!p) return `Point ${id}`
  if (p.label) return p.label
  return p.device ? `${p.device} ${p.name}` : p.name
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

/**
 * Sends a raw body (an image) with the session's token; errors become ApiErrors with the
 * server's message, like the JSON client's.
 */
export async function putRaw<T>(path: string, body: Blob, contentType: string): Promise<T> {
  const token = useT3000().session.value?.token
  let resp: Response
  try {
    resp = await fetch(path, {
      method: 'PUT',
      headers: { 'Content-Type': contentType, Accept: 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
      body,
    })
  } catch (e) {
    throw new ApiError(0, 'network', `the server cannot be reached (${(e as Error).message})`)
  }
  const text = await resp.text()
  if (!resp.ok) {
    let code = `http_${resp.status}`
    let message = resp.statusText || `HTTP ${resp.status}`
    try {
      const j = JSON.parse(text)
      if (j?.error) {
        code = j.error.code ?? code
        message = j.error.message ?? message
      }
    } catch {
      // Not JSON: keep the status line.
    }
    throw new ApiError(resp.status, code, message)
  }
  return (text ? JSON.parse(text) : undefined) as T
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

/** "3 s ago", "5 min ago", or the local date and time. */
export function ago(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return 'never'
  const t = Date.parse(iso)
  if (Number.isNaN(t)) return iso
  const s = Math.round((now - t) / 1000)
  if (s < 5) return 'just now'
  if (s < 60) return `${s} s ago`
  if (s < 3600) return `${Math.round(s / 60)} min ago`
  if (s < 86400) return `${Math.round(s / 3600)} h ago`
  return new Date(t).toLocaleString()
}

/** A device's communication status as the live connection last reported it. */
export interface LiveDevice {
  online: boolean
  state: string
  last_seen: string | null
  last_error: string | null
}
