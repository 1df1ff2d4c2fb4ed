// Devices as every page lists, changes and watches them (the plan's C2.1 device functions): the
// calls of /devices, /devices/discover and /profiles, and the status of the devices on screen
// (the REST answer, then the live DeviceStatus messages of exactly those devices).
import { getCurrentScope, onScopeDispose, reactive, watch, type Ref } from 'vue'
import { api, API, type RequestOptions } from '../api/client'
import type { Device, DeviceBody, DevicePoints, Discovered, DiscoverRequest, Paged, Plugins, PluginFound, ProfileInfo } from '../api/types'
import type { DeviceStatus } from '../api/ws-types'
import { useWebSocket, type LiveConnection } from './useWebSocket'

/** The filters of GET /devices (`q`, `online`, `building_id`, `floor_id`, `room_id`, `device_type`, `profile`, `offset`, `limit`). */
export type DeviceQuery = NonNullable<RequestOptions['query']>

/** Where a device is placed (null: not placed at that level). */
export interface Place {
  building_id: number | null
  floor_id: number | null
  room_id: number | null
}

/** GET /devices with `query`: a page of devices. */
function list(query: DeviceQuery, signal?: AbortSignal): Promise<Paged<Device>> {
  return api.get<Paged<Device>>(`${API}/devices`, { query, signal })
}

/** Every device (device choices, device names), page by page; `query` filters them. */
async function all(signal?: AbortSignal, query: DeviceQuery = {}): Promise<Device[]> {
  const out: Device[] = []
  for (let offset = 0; ; ) {
    const page = await list({ ...query, offset, limit: 1000 }, signal)
    out.push(...page.items)
    offset += page.items.length
    if (page.items.length === 0 || offset >= page.total) return out
  }
}

/** GET /devices/{id}: `key` is the id or the device's name. */
function get(key: number | string, signal?: AbortSignal): Promise<Device> {
  return api.get<Device>(`${API}/devices/${encodeURIComponent(String(key))}`, { signal })
}

/** POST /devices: the device added (polling starts at once). */
function create(body: DeviceBody): Promise<Device> {
  return api.post<Device>(`${API}/devices`, body)
}

/** PUT /devices/{id}: the whole definition (a device of the configuration file only changes its place and description). */
function update(id: number, body: DeviceBody): Promise<Device> {
  return api.put<Device>(`${API}/devices/${id}`, body)
}

/** Moves a device to `place`: a PUT of its whole definition with the new place. */
function place(d: Device, to: Place): Promise<Device> {
  return update(d.id, { ...d.config, building_id: to.building_id, floor_id: to.floor_id, room_id: to.room_id, description: d.description })
}

/** DELETE /devices/{id}: polling stops, the history stays (409 for a device of the configuration file). */
function remove(id: number): Promise<void> {
  return api.delete(`${API}/devices/${id}`)
}

/** POST /devices/discover: what answered (nothing is added). */
function discover(req: DiscoverRequest, signal?: AbortSignal): Promise<Discovered[]> {
  return api.post<Discovered[]>(`${API}/devices/discover`, req, { signal })
}

/** POST /devices/discover with a plugin protocol: the devices the plugin found. */
function discoverPlugin(protocol: string, options: Record<string, unknown>, signal?: AbortSignal): Promise<Discovered<PluginFound>[]> {
  return api.post<Discovered<PluginFound>[]>(`${API}/devices/discover`, { protocol, options }, { signal })
}

/** GET /devices/{id}/points: the points a device is polled for (a plugin point's `object`). */
function points(key: number | string, signal?: AbortSignal): Promise<DevicePoints> {
  return api.get<DevicePoints>(`${API}/devices/${encodeURIComponent(String(key))}/points`, { signal })
}

/** GET /plugins: the protocol plugins found at start, loaded or refused and why. */
function plugins(signal?: AbortSignal): Promise<Plugins> {
  return api.get<Plugins>(`${API}/plugins`, { signal })
}

/** GET /profiles: the device profiles a device can be polled with. */
function profiles(signal?: AbortSignal): Promise<ProfileInfo[]> {
  return api.get<ProfileInfo[]>(`${API}/profiles`, { signal })
}

/** The device functions every page uses. */
export function useDevices() {
  return { list, all, get, create, update, place, remove, discover, discoverPlugin, points, plugins, profiles }
}

// ---- status ---------------------------------------------------------------------------------

/** The status every device view shows: the REST answer, then the live DeviceStatus messages. */
export interface LiveStatus {
  online: boolean
  state: string
  /** Epoch milliseconds. */
  lastSeen: number | null
  rttMs: number | null
  /** Share of the recent polls that succeeded, 0 ..= 1. */
  quality: number | null
  lastError: string | null
  /** The live connection the status came over (LiveConnection.epochOf); -1 for a REST answer. */
  epoch: number
}

/** A device's status as the REST answer has it. */
export function statusOf(d: Device): LiveStatus {
  const s = d.status
  return {
    online: d.online,
    state: s?.state ?? (d.enabled ? 'connecting' : 'disabled'),
    lastSeen: s?.last_seen != null ? s.last_seen / 1000 : d.last_seen ? Date.parse(d.last_seen) : null,
    rttMs: s?.rtt_ms ?? null,
    quality: s ? s.connection_quality : null,
    lastError: s?.last_error ?? null,
    epoch: -1,
  }
}

/** A device's status as a DeviceStatus message has it (`epoch`: the connection it came over). */
export function fromLive(m: DeviceStatus, epoch = -1): LiveStatus {
  return {
    online: m.online,
    state: m.state,
    lastSeen: m.last_seen || null,
    rttMs: m.rtt_ms,
    quality: m.connection_quality,
    lastError: m.last_error,
    epoch,
  }
}

/**
 * Live status of the devices in `ids`: follows exactly those (DeviceStatus messages) and keeps
 * the newest per device; a device without a message yet is not in `live` (use statusOf then).
 * Stops following when the calling component goes away (or on `dispose`).
 */
export function useDeviceStatus(ids: Ref<number[]>, conn: LiveConnection = useWebSocket()) {
  const live = reactive(new Map<number, LiveStatus>())
  let wanted = new Set<number>()
  let release: () => void = () => {}
  const off = conn.on('DeviceStatus', (m) => {
    if (wanted.has(m.device_id)) live.set(m.device_id, fromLive(m, conn.epochOf(m)))
  })
  const stop = watch(
    ids,
    (now) => {
      wanted = new Set(now)
      for (const k of [...live.keys()]) if (!wanted.has(k)) live.delete(k)
      const old = release
      release = conn.follow({ devices: [...wanted] })
      old()
      // Devices another component follows already get no new snapshot: start from the latest.
      for (const id of wanted) {
        const m = live.has(id) ? undefined : conn.latestDevice(id)
        if (m) live.set(id, fromLive(m, conn.epochOf(m)))
      }
    },
    { immediate: true },
  )
  const dispose = () => {
    stop()
    off()
    release()
  }
  if (getCurrentScope()) onScopeDispose(dispose)
  return { live, dispose }
}
