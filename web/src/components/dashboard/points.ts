// Point and device descriptions for the dashboard and the alarm page, fetched once per page
// load and shared (a name or unit rarely changes while someone looks at it).
import { api, API, ApiError } from '../../api/client'

export interface PointInfo {
  id: number
  device_id: number | null
  device: string | null
  name: string
  point_number: number | null
  point_type: string
  value: number | null
  units: string | null
  label: string | null
  description: string | null
  quality: string | null
  updated_at: string | null
  writable: boolean
}

export interface DeviceInfo {
  id: number
  name: string
  device_type: string
  protocol: string
  enabled: boolean
  online: boolean
  last_seen: string | null
  description: string | null
  status?: { state?: string; last_error?: string | null } | null
}

export interface Paged<T> {
  items: T[]
  total: number
  offset: number
  limit: number
}

const points = new Map<number, Promise<PointInfo>>()

/** One point's description (cached; a failed fetch is retried on the next call). */
export function fetchPoint(id: number, fresh = false): Promise<PointInfo> {
  let p = fresh ? undefined : points.get(id)
  if (!p) {
    p = api.get<PointInfo>(`${API}/points/${id}`)
    points.set(id, p)
    p.catch(() => {
      if (points.get(id) === p) points.delete(id)
    })
  }
  return p
}

/** True when the error says the point does not exist (deleted since it was pinned). */
export function isMissing(e: unknown): boolean {
  return e instanceof ApiError && e.status === 404
}

/** What people call a point: its label, else device and register name. */
export function pointTitle(p: Pick<PointInfo, 'label' | 'name' | 'device'>): string {
  return p.label?.trim() || p.name
}

/** The line under the title: device and name (when the title is a label), or the device. */
export function pointSubtitle(p: Pick<PointInfo, 'label' | 'name' | 'device' | 'point_type'>): string {
  const dev = p.device ?? 'manual point'
  return p.label?.trim() ? `${dev} · ${p.name}` : `${dev} · ${p.point_type}`
}

/**
 * Points matching every word of `q` (`ahu var7`) in their name, label, device or description (the
 * Points API's search); a number also finds the point with that id.
 */
export async function searchPoints(q: string, signal?: AbortSignal, limit = 12): Promise<PointInfo[]> {
  const text = q.trim()
  if (!text) return []
  const byId = /^\d+$/.test(text) ? fetchPoint(Number(text)).catch(() => null) : Promise.resolve(null)
  const page = await api.get<Paged<PointInfo>>(`${API}/points`, { query: { q: text, limit }, signal })
  const found = page.items
  const exact = await byId
  if (exact && !found.some((p) => p.id === exact.id)) found.unshift(exact)
  return found.slice(0, limit)
}

/** Every device (the dashboard's device tiles and the alarm rule form). */
export async function fetchDevices(signal?: AbortSignal): Promise<DeviceInfo[]> {
  const out: DeviceInfo[] = []
  for (let offset = 0; ; ) {
    const page = await api.get<Paged<DeviceInfo>>(`${API}/devices`, { query: { offset, limit: 1000 }, signal })
    out.push(...page.items)
    offset += page.items.length
    if (page.items.length === 0 || offset >= page.total) return out
  }
}
