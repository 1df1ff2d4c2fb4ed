// Every device's status in one place, for the top bar (devices online / offline / in error) and
// the dashboard: GET /devices (every page), then the live DeviceStatus messages of all of them.
// One copy per page, shared by whoever uses it while anyone does: the top bar holds it as long as
// someone is logged in. The list is read again when the server counts another number of devices
// (SystemStatus: one was added or removed).
import { computed, effectScope, getCurrentScope, onScopeDispose, reactive, watch, type ComputedRef, type Ref } from 'vue'
import type { Device } from '../api/types'
import type { Problem } from '../lib/errors'
import { deviceHealth, type DeviceHealth } from '../lib/quality'
import { fromLive, statusOf, useDevices, type LiveStatus } from './useDevices'
import { useLoader } from './useT3000'
import { useWebSocket, type LiveConnection } from './useWebSocket'

export interface FleetDevice {
  id: number
  name: string
  status: LiveStatus
  health: DeviceHealth
}

export type FleetCounts = Record<DeviceHealth, number> & { total: number }

export interface Fleet {
  /** The devices by name, with their status now. */
  devices: ComputedRef<FleetDevice[]>
  counts: ComputedRef<FleetCounts>
  /** Whether every status came over the open connection (else the counts may be stale). */
  live: ComputedRef<boolean>
  /** The device list has been read at least once. */
  loaded: ComputedRef<boolean>
  loading: Ref<boolean>
  error: Ref<Problem | null>
  reload: () => Promise<void>
}

/** Counts devices by health. Pure. */
export function countHealth(devices: { health: DeviceHealth }[]): FleetCounts {
  const c: FleetCounts = { online: 0, error: 0, offline: 0, connecting: 0, disabled: 0, total: devices.length }
  for (const d of devices) c[d.health]++
  return c
}

function createFleet(conn: LiveConnection): { fleet: Fleet; stop: () => void } {
  const scope = effectScope(true)
  const fleet = scope.run(() => {
    const api = useDevices()
    const list = useLoader((signal) => api.all(signal))
    const live = reactive(new Map<number, LiveStatus>())
    const names = reactive(new Map<number, string>())

    let release: () => void = () => {}
    watch(list.data, (devices: Device[] | null) => {
      if (!devices) return
      const keep = new Set(devices.map((d) => d.id))
      for (const id of [...live.keys()]) if (!keep.has(id)) live.delete(id)
      names.clear()
      for (const d of devices) names.set(d.id, d.name)
      const old = release
      release = conn.follow({ devices: [...keep], system: true })
      old()
      for (const d of devices) {
        const m = live.has(d.id) ? undefined : conn.latestDevice(d.id)
        // A live status already received is newer than the list.
        if (m) live.set(d.id, fromLive(m, conn.epochOf(m)))
        else if (!live.has(d.id)) live.set(d.id, statusOf(d))
      }
    })
    const offDevice = conn.on('DeviceStatus', (m) => {
      if (!names.has(m.device_id)) return
      names.set(m.device_id, m.name)
      live.set(m.device_id, fromLive(m, conn.epochOf(m)))
    })
    const offSystem = conn.on('SystemStatus', (m) => {
      // The server knows another number of devices than the list: it changed, read it again.
      if (list.data.value && !list.loading.value && m.total_devices !== list.data.value.length) void list.reload()
    })
    onScopeDispose(() => {
      release()
      offDevice()
      offSystem()
    })

    const devices = computed<FleetDevice[]>(() =>
      [...live.entries()]
        .map(([id, status]) => ({ id, name: names.get(id) ?? `device ${id}`, status, health: deviceHealth(status) }))
        .sort((a, b) => a.name.localeCompare(b.name)),
    )
    return {
      devices,
      counts: computed(() => countHealth(devices.value)),
      live: computed(() => conn.state.value === 'open' && devices.value.every((d) => conn.isCurrent(d.status.epoch))),
      loaded: computed(() => list.data.value !== null),
      loading: list.loading,
      error: list.error,
      reload: list.reload,
    }
  })!
  return { fleet, stop: () => scope.stop() }
}

let shared: { fleet: Fleet; stop: () => void } | null = null
let users = 0

/** The page's device fleet (see above), kept while the calling component (scope) lives. */
export function useDeviceFleet(conn: LiveConnection = useWebSocket()): Fleet {
  if (!shared) shared = createFleet(conn)
  const mine = shared
  users++
  if (getCurrentScope()) {
    onScopeDispose(() => {
      if (--users === 0 && shared === mine) {
        mine.stop()
        shared = null
      }
    })
  }
  return mine.fleet
}
