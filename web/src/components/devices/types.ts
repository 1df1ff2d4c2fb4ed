// Small helpers the device components share: addresses for people, relative times, live status.
import { onScopeDispose, reactive, watch, type Ref } from 'vue'
import type { Building, Device, Floor, Room } from '../../api/types'
import type { DeviceStatus as LiveDeviceStatus } from '../../api/ws-types'
import { useWebSocket } from '../../composables/useWebSocket'

/** The status every device view shows: the REST answer, then the live DeviceStatus messages. */
export interface LiveStatus {
  online: boolean
  state: string
  /** Epoch milliseconds. */
  lastSeen: number | null
  rttMs: number | null
  quality: number | null
  lastError: string | null
}

export function statusOf(d: Device): LiveStatus {
  const s = d.status
  return {
    online: d.online,
    state: s?.state ?? (d.enabled ? 'connecting' : 'disabled'),
    lastSeen: s?.last_seen != null ? s.last_seen / 1000 : d.last_seen ? Date.parse(d.last_seen) : null,
    rttMs: s?.rtt_ms ?? null,
    quality: s ? s.connection_quality : null,
    lastError: s?.last_error ?? null,
  }
}

export function fromLive(m: LiveDeviceStatus): LiveStatus {
  return {
    online: m.online,
    state: m.state,
    lastSeen: m.last_seen || null,
    rttMs: m.rtt_ms,
    quality: m.connection_quality,
    lastError: m.last_error,
  }
}

/**
 * Live status of the devices in `ids`: follows exactly those (DeviceStatus messages) and keeps
 * the newest per device. Entries from the REST list are the starting point (`seed`).
 */
export function useDeviceStatus(ids: Ref<number[]>) {
  const conn = useWebSocket()
  const live = reactive(new Map<number, LiveStatus>())
  let wanted = new Set<number>()
  let release: () => void = () => {}
  const off = conn.on('DeviceStatus', (m) => {
    if (wanted.has(m.device_id)) live.set(m.device_id, fromLive(m))
  })
  const stop = watch(
    ids,
    (now) => {
      wanted = new Set(now)
      for (const k of [...live.keys()]) if (!wanted.has(k)) live.delete(k)
      const old = release
      release = conn.follow({ devices: [...wanted] })
      old()
    },
    { immediate: true },
  )
  onScopeDispose(() => {
    stop()
    off()
    release()
  })
  return { live }
}

/** `127.0.0.1:502 #1` or `/dev/ttyUSB0 @9600 #3`. */
export function addressOf(d: Pick<Device, 'protocol' | 'ip_address' | 'port' | 'serial_port' | 'baud_rate' | 'unit_id'>): string {
  if (d.protocol === 'modbus-rtu') return `${d.serial_port ?? '?'} @${d.baud_rate} #${d.unit_id}`
  return `${d.ip_address ?? '?'}:${d.port} #${d.unit_id}`
}

/** `just now`, `12 s ago`, `5 min ago`, `3 h ago`, or the date. */
export function ago(ms: number | null, now: number): string {
  if (ms == null || !Number.isFinite(ms)) return 'never'
  const s = Math.max(0, Math.round((now - ms) / 1000))
  if (s < 2) return 'just now'
  if (s < 60) return `${s} s ago`
  if (s < 3600) return `${Math.floor(s / 60)} min ago`
  if (s < 86_400) return `${Math.floor(s / 3600)} h ago`
  return new Date(ms).toLocaleString()
}

export function formatRtt(ms: number | null): string {
  if (ms == null) return '—'
  if (ms < 1) return `${ms.toFixed(2)} ms`
  if (ms < 100) return `${ms.toFixed(1)} ms`
  return `${Math.round(ms)} ms`
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
