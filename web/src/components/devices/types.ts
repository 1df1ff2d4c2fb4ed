// Shapes of the device endpoints (api/src/routes/devices.rs) and small helpers the device
// components share: addresses for people, relative times, live status.
import { onScopeDispose, reactive, ref, watch, type Ref } from 'vue'
import { useWebSocket, type DeviceStatus as LiveDeviceStatus } from '../../composables/useWebSocket'

export type Protocol = 'modbus-tcp' | 'modbus-rtu'
export type Parity = 'none' | 'even' | 'odd'

/** The collector's view of a device (GET /devices `status`). */
export interface CollectorStatus {
  name: string
  protocol: string
  endpoint: string
  unit_id: number
  profile: string
  state: string
  online: boolean
  /** Epoch microseconds. */
  last_seen: number | null
  rtt_ms: number | null
  rtt_avg_ms: number | null
  polls: number
  failed_polls: number
  consecutive_failures: number
  timeouts: number
  exceptions: number
  protocol_errors: number
  connection_errors: number
  connection_quality: number
  last_error: string | null
}

/** A `[[devices]]` table, as stored. */
export interface DeviceConfig {
  name: string
  device_type: string
  protocol: Protocol
  ip_address: string | null
  port: number
  serial_port: string | null
  baud_rate: number
  parity: Parity
  unit_id: number
  profile: string
  poll_interval_ms: number
  timeout_ms: number | null
  enabled: boolean
  max_registers: number | null
  max_gap: number | null
  one_request_per_point: boolean
  record: Record<string, unknown>
  points: unknown[]
}

export interface Device {
  id: number
  name: string
  device_type: string
  protocol: Protocol
  ip_address: string | null
  port: number
  serial_port: string | null
  baud_rate: number
  unit_id: number
  profile: string
  poll_interval_ms: number
  enabled: boolean
  online: boolean
  last_seen: string | null
  point_counts: { inputs: number; outputs: number; variables: number; registers: number; total: number }
  building_id: number | null
  floor_id: number | null
  room_id: number | null
  description: string | null
  /** `config` (the configuration file) or `api`. */
  source: string
  status: CollectorStatus | null
  config: DeviceConfig
}

export interface Paged<T> {
  items: T[]
  total: number
  offset: number
  limit: number
}

/** What a scan found (POST /devices/discover). */
export interface Discovered {
  found: {
    endpoint: string
    unit_id: number
    serial_number: number
    firmware: number
    product_model: number
    hardware_rev: number
    profile: string | null
  }
  known_device_id: number | null
}

export interface Room {
  id: number
  floor_id: number
  name: string
}
export interface Floor {
  id: number
  building_id: number
  name: string
  level: number
  rooms: Room[]
}
export interface Building {
  id: number
  name: string
  floors: Floor[]
}

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
    lastSeen: m.last_seen ? Date.parse(m.last_seen) : null,
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

/** A clock that ticks every second while the component lives (for "12 s ago"). */
export function useNow(periodMs = 1000): Ref<number> {
  const now = ref(Date.now())
  const t = setInterval(() => (now.value = Date.now()), periodMs)
  onScopeDispose(() => clearInterval(t))
  return now
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
  if (ms == null) return '–'
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

/** Flattens the buildings into `Building / Floor / Room` labels by id. */
export function placeNames(buildings: Building[] | null) {
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
