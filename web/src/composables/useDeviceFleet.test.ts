// The device fleet behind the top bar's counts, against a mocked fetch and a fake connection:
// counts by health from the list, then from live DeviceStatus messages; live only while every
// status came over the open connection; one copy shared by its users and let go by the last.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { effectScope, nextTick, ref } from 'vue'
import type { DeviceStatus } from '../api/ws-types'
import type { Interest, LiveConnection } from './useWebSocket'

let fetchMock: ReturnType<typeof vi.fn>
let mod: typeof import('./useDeviceFleet')

function device(id: number, name: string, status: Record<string, unknown> | null, over: Record<string, unknown> = {}) {
  return { id, name, enabled: true, online: !!status?.online, last_seen: null, status, ...over }
}
function status(state: string, last_error: string | null = null) {
  return { state, online: state === 'online', last_seen: null, rtt_ms: 1, connection_quality: 1, last_error }
}

/** A connection that records follows and lets the test send messages stamped with an epoch. */
function fakeConnection() {
  const followed: Interest[] = []
  let released = 0
  const handlers = new Map<string, Set<(m: unknown) => void>>()
  const stamps = new WeakMap<object, number>()
  const state = ref('open')
  const epoch = ref(1)
  const conn = {
    state,
    on(type: string, fn: (m: unknown) => void) {
      if (!handlers.has(type)) handlers.set(type, new Set())
      handlers.get(type)!.add(fn)
      return () => handlers.get(type)!.delete(fn)
    },
    follow(i: Interest) {
      followed.push(i)
      return () => released++
    },
    latestDevice: () => undefined,
    epochOf: (m: object) => stamps.get(m) ?? -1,
    isCurrent: (e: number) => state.value === 'open' && e === epoch.value,
  }
  const send = (type: string, m: Record<string, unknown>) => {
    const msg = { type, ...m }
    stamps.set(msg, epoch.value)
    for (const h of handlers.get(type) ?? []) h(msg)
  }
  const deviceStatus = (device_id: number, state: string, last_error: string | null = null) =>
    send('DeviceStatus', { device_id, name: `d${device_id}`, online: state === 'online', state, last_seen: 1, last_seen_time: null, connection_quality: 1, rtt_ms: 1, last_error, snapshot: true } satisfies Omit<DeviceStatus, 'type'>)
  return { conn: conn as unknown as LiveConnection, followed, released: () => released, handlers, send, deviceStatus, state, epoch }
}

async function settle() {
  for (let i = 0; i < 5; i++) {
    await Promise.resolve()
    await nextTick()
  }
}

beforeEach(async () => {
  vi.resetModules()
  fetchMock = vi.fn()
  vi.stubGlobal('fetch', fetchMock)
  mod = await import('./useDeviceFleet')
  ;(await import('../api/client')).configureClient(
    () => 'tok',
    () => {},
  )
})
afterEach(() => {
  vi.unstubAllGlobals()
})

describe('countHealth', () => {
  it('counts each health and the total', () => {
    const c = mod.countHealth([{ health: 'online' }, { health: 'online' }, { health: 'error' }, { health: 'offline' }, { health: 'disabled' }])
    expect(c).toEqual({ online: 2, error: 1, offline: 1, connecting: 0, disabled: 1, total: 5 })
  })
})

describe('the device fleet', () => {
  it('counts the listed devices, then follows their live status; live once every status came over the open connection', async () => {
    const items = [
      device(1, 'ahu', status('online')),
      device(2, 'co2', status('offline', 'connection refused')),
      device(3, 'tstat', status('online', 'exception 0x02')),
      device(4, 'spare', null, { enabled: false }),
    ]
    fetchMock.mockResolvedValueOnce(new Response(JSON.stringify({ items, total: 4, offset: 0, limit: 1000 }), { status: 200 }))
    const f = fakeConnection()
    const scope = effectScope()
    const fleet = scope.run(() => mod.useDeviceFleet(f.conn))!
    await settle()
    expect(fleet.loaded.value).toBe(true)
    expect(fleet.counts.value).toEqual({ online: 1, error: 1, offline: 1, connecting: 0, disabled: 1, total: 4 })
    expect(f.followed).toEqual([{ devices: [1, 2, 3, 4], system: true }])
    // The REST statuses are not live until the snapshot comes.
    expect(fleet.live.value).toBe(false)
    for (const id of [1, 3, 4]) f.deviceStatus(id, id === 4 ? 'disabled' : 'online')
    expect(fleet.live.value).toBe(false)
    f.deviceStatus(2, 'online')
    expect(fleet.live.value).toBe(true)
    expect(fleet.counts.value).toMatchObject({ online: 3, error: 0, offline: 0, disabled: 1 })
    expect(fleet.devices.value.map((d) => d.name)).toEqual(['d1', 'd2', 'd3', 'd4'])

    // The connection drops: not live; a new connection is live again only after its snapshot.
    f.state.value = 'reconnecting'
    expect(fleet.live.value).toBe(false)
    f.epoch.value = 2
    f.state.value = 'open'
    expect(fleet.live.value).toBe(false)
    for (const id of [1, 2, 3, 4]) f.deviceStatus(id, id === 4 ? 'disabled' : 'offline')
    expect(fleet.live.value).toBe(true)
    expect(fleet.counts.value.offline).toBe(3)
    scope.stop()
  })

  it('is one copy for all its users, let go when the last one goes', async () => {
    fetchMock.mockResolvedValue(new Response(JSON.stringify({ items: [device(1, 'ahu', status('online'))], total: 1, offset: 0, limit: 1000 }), { status: 200 }))
    const f = fakeConnection()
    const a = effectScope()
    const b = effectScope()
    const one = a.run(() => mod.useDeviceFleet(f.conn))!
    const two = b.run(() => mod.useDeviceFleet(f.conn))!
    expect(one).toBe(two)
    await settle()
    expect(fetchMock).toHaveBeenCalledTimes(1)
    a.stop()
    expect(f.released()).toBe(0)
    expect(f.handlers.get('DeviceStatus')?.size).toBe(1)
    b.stop()
    expect(f.released()).toBe(1)
    expect(f.handlers.get('DeviceStatus')?.size).toBe(0)
  })

  it('reads the list again when the server counts another number of devices', async () => {
    fetchMock.mockResolvedValueOnce(new Response(JSON.stringify({ items: [device(1, 'ahu', status('online'))], total: 1, offset: 0, limit: 1000 }), { status: 200 }))
    const f = fakeConnection()
    const scope = effectScope()
    const fleet = scope.run(() => mod.useDeviceFleet(f.conn))!
    await settle()
    fetchMock.mockResolvedValueOnce(
      new Response(JSON.stringify({ items: [device(1, 'ahu', status('online')), device(2, 'new', status('offline'))], total: 2, offset: 0, limit: 1000 }), { status: 200 }),
    )
    f.send('SystemStatus', { total_devices: 2 })
    await settle()
    expect(fleet.counts.value.total).toBe(2)
    expect(f.followed.at(-1)).toEqual({ devices: [1, 2], system: true })
    scope.stop()
  })
})
