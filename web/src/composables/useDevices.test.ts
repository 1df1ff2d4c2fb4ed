// The device functions against a mocked fetch (method, path, query and body of each call, and
// what comes back), and the live device status against a fake connection.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { effectScope, nextTick, ref } from 'vue'
import { ApiError, configureClient } from '../api/client'
import type { Device, DeviceConfig } from '../api/types'
import type { DeviceStatus } from '../api/ws-types'
import { fromLive, statusOf, useDevices, useDeviceStatus } from './useDevices'
import type { Interest, LiveConnection } from './useWebSocket'

let fetchMock: ReturnType<typeof vi.fn>

function respond(status: number, body?: unknown) {
  return new Response(status === 204 ? null : JSON.stringify(body), { status })
}
/** The n-th call: method, path with query, and parsed body. */
function call(n = 0) {
  const [url, init] = fetchMock.mock.calls[n]
  return { url: url as string, method: init.method as string, body: init.body === undefined ? undefined : JSON.parse(init.body as string), signal: init.signal }
}

const config: DeviceConfig = {
  name: 'ahu-1',
  device_type: 'controller',
  protocol: 'modbus-tcp',
  ip_address: '127.0.0.1',
  port: 5020,
  serial_port: null,
  baud_rate: 9600,
  parity: 'none',
  unit_id: 1,
  profile: 'T3-controller',
  poll_interval_ms: 1000,
  enabled: true,
  timeout_ms: null,
  max_registers: null,
  max_gap: null,
  one_request_per_point: false,
  record: {},
  points: [],
}
function device(over: Partial<Device> = {}): Device {
  return {
    ...config,
    options: {},
    id: 3,
    online: true,
    last_seen: '2026-01-15T12:00:00Z',
    point_counts: { inputs: 1, outputs: 1, variables: 0, registers: 0, total: 2 },
    building_id: null,
    floor_id: null,
    room_id: null,
    description: 'the AHU',
    source: 'api',
    status: null,
    config,
    ...over,
  }
}

beforeEach(() => {
  configureClient(
    () => 'tok',
    () => {},
  )
  fetchMock = vi.fn()
  vi.stubGlobal('fetch', fetchMock)
})
afterEach(() => {
  vi.unstubAllGlobals()
})

describe('device functions', () => {
  const devices = useDevices()

  it('lists a page with the filters given, leaving out empty ones', async () => {
    fetchMock.mockResolvedValue(respond(200, { items: [device()], total: 1, offset: 0, limit: 100 }))
    const ctl = new AbortController()
    const page = await devices.list({ q: 'ahu', online: 'true', building_id: '', limit: 100 }, ctl.signal)
    expect(page.items.map((d) => d.id)).toEqual([3])
    expect(call()).toMatchObject({ method: 'GET', url: '/api/t3000/devices?q=ahu&online=true&limit=100', signal: ctl.signal })
  })

  it('reads every device page by page', async () => {
    const many = (from: number, n: number) => Array.from({ length: n }, (_, i) => device({ id: from + i }))
    fetchMock
      .mockResolvedValueOnce(respond(200, { items: many(1, 1000), total: 1002, offset: 0, limit: 1000 }))
      .mockResolvedValueOnce(respond(200, { items: many(1001, 2), total: 1002, offset: 1000, limit: 1000 }))
    const all = await devices.all()
    expect(all).toHaveLength(1002)
    expect(all.at(-1)!.id).toBe(1002)
    expect(fetchMock.mock.calls.map((c) => c[0])).toEqual(['/api/t3000/devices?offset=0&limit=1000', '/api/t3000/devices?offset=1000&limit=1000'])
  })

  it('stops at an empty page even if the total promised more (a device deleted meanwhile)', async () => {
    fetchMock
      .mockResolvedValueOnce(respond(200, { items: [device()], total: 2, offset: 0, limit: 1000 }))
      .mockResolvedValueOnce(respond(200, { items: [], total: 1, offset: 1, limit: 1000 }))
    expect(await devices.all()).toHaveLength(1)
    expect(fetchMock).toHaveBeenCalledTimes(2)
  })

  it('gets a device by id or by name', async () => {
    fetchMock.mockImplementation(async () => respond(200, device()))
    await devices.get(3)
    await devices.get('floor 1/ahu')
    expect(call(0).url).toBe('/api/t3000/devices/3')
    expect(call(1).url).toBe('/api/t3000/devices/floor%201%2Fahu')
  })

  it('creates, updates and places with the whole definition', async () => {
    fetchMock.mockImplementation(async () => respond(200, device()))
    await devices.create({ name: 'new', protocol: 'modbus-tcp', ip_address: '10.0.0.2', port: 502, unit_id: 4, profile: 'T3-controller' })
    expect(call(0)).toMatchObject({ method: 'POST', url: '/api/t3000/devices', body: { name: 'new', ip_address: '10.0.0.2', unit_id: 4 } })
    await devices.update(3, { ...config, description: 'moved', building_id: 1 })
    expect(call(1)).toMatchObject({ method: 'PUT', url: '/api/t3000/devices/3', body: { name: 'ahu-1', description: 'moved', building_id: 1 } })
    await devices.place(device(), { building_id: 1, floor_id: 2, room_id: null })
    expect(call(2)).toMatchObject({ method: 'PUT', url: '/api/t3000/devices/3' })
    // The definition goes along unchanged, so that a device of the configuration file may move.
    expect(call(2).body).toEqual({ ...config, building_id: 1, floor_id: 2, room_id: null, description: 'the AHU' })
  })

  it("deletes, and passes the server's refusal on", async () => {
    fetchMock.mockResolvedValueOnce(respond(204))
    await expect(devices.remove(3)).resolves.toBeUndefined()
    expect(call()).toMatchObject({ method: 'DELETE', url: '/api/t3000/devices/3' })
    fetchMock.mockResolvedValueOnce(respond(409, { error: { code: 'defined_in_config', message: 'device ahu-1 is defined in the configuration file' } }))
    const e = await devices.remove(3).catch((x: unknown) => x)
    expect(e).toBeInstanceOf(ApiError)
    expect(e).toMatchObject({ status: 409, code: 'defined_in_config', message: 'device ahu-1 is defined in the configuration file' })
  })

  it('discovers with the scan request and returns what answered', async () => {
    const found = [{ found: { endpoint: 'tcp://127.0.0.1:5020', unit_id: 1, serial_number: 7, firmware: 1, product_model: 44, hardware_rev: 1, profile: 'T3-controller' }, known_device_id: null }]
    fetchMock.mockResolvedValue(respond(200, found))
    const ctl = new AbortController()
    expect(await devices.discover({ protocol: 'modbus-tcp', hosts: ['127.0.0.1'], port: 5020, unit_ids: [1], timeout_ms: 300 }, ctl.signal)).toEqual(found)
    expect(call()).toMatchObject({ method: 'POST', url: '/api/t3000/devices/discover', body: { protocol: 'modbus-tcp', hosts: ['127.0.0.1'], port: 5020, unit_ids: [1] }, signal: ctl.signal })
  })

  it('reads the profiles', async () => {
    const profiles = [{ name: 'T3-controller', description: 'T3 controller', product_models: [44], points: 256 }]
    fetchMock.mockResolvedValue(respond(200, profiles))
    expect(await devices.profiles()).toEqual(profiles)
    expect(call()).toMatchObject({ method: 'GET', url: '/api/t3000/profiles' })
  })
})

describe('device status', () => {
  it("the REST answer's status: the collector's microseconds become milliseconds", () => {
    const status = {
      name: 'ahu-1', protocol: 'modbus-tcp', endpoint: 'tcp://127.0.0.1:5020', unit_id: 1, profile: 'T3-controller', state: 'online', online: true,
      last_seen: 1_768_478_400_000_000, rtt_ms: 1.5, rtt_avg_ms: 1.2, polls: 10, failed_polls: 1, consecutive_failures: 0, timeouts: 1, exceptions: 0,
      protocol_errors: 0, connection_errors: 0, connection_quality: 0.9, last_error: null,
    }
    expect(statusOf(device({ status }))).toEqual({ online: true, state: 'online', lastSeen: 1_768_478_400_000, rttMs: 1.5, quality: 0.9, lastError: null, epoch: -1 })
    // Without a collector status: the device's own last_seen, and connecting or disabled.
    expect(statusOf(device({ online: false, status: null }))).toMatchObject({ state: 'connecting', lastSeen: Date.parse('2026-01-15T12:00:00Z'), quality: null })
    expect(statusOf(device({ enabled: false, online: false, last_seen: null }))).toMatchObject({ state: 'disabled', lastSeen: null })
  })

  it('a DeviceStatus message: last_seen 0 is never', () => {
    const m: DeviceStatus = { type: 'DeviceStatus', device_id: 3, name: 'ahu-1', online: false, state: 'offline', last_seen: 0, last_seen_time: null, connection_quality: 0.5, rtt_ms: null, last_error: 'timeout', snapshot: false }
    expect(fromLive(m, 3)).toEqual({ online: false, state: 'offline', lastSeen: null, rttMs: null, quality: 0.5, lastError: 'timeout', epoch: 3 })
    expect(fromLive({ ...m, last_seen: 1234 }).lastSeen).toBe(1234)
  })

  /** A connection that records what is followed and lets the test send DeviceStatus messages. */
  function fakeConnection() {
    const followed: number[][] = []
    const released: number[][] = []
    const handlers = new Set<(m: DeviceStatus) => void>()
    const latest = new Map<number, DeviceStatus>()
    const conn = {
      latestDevice: (id: number) => latest.get(id),
      on(type: string, fn: (m: DeviceStatus) => void) {
        expect(type).toBe('DeviceStatus')
        handlers.add(fn)
        return () => handlers.delete(fn)
      },
      epochOf: () => 7,
      follow(i: Interest) {
        const ids = i.devices ?? []
        followed.push(ids)
        return () => released.push(ids)
      },
    }
    const send = (device_id: number, state: string) => {
      for (const h of handlers) h({ type: 'DeviceStatus', device_id, name: `d${device_id}`, online: state === 'online', state, last_seen: 5000, last_seen_time: null, connection_quality: 1, rtt_ms: 2, last_error: null, snapshot: false })
    }
    return { conn: conn as unknown as LiveConnection, followed, released, handlers, send, latest }
  }

  it('starts from the latest status of a device that is followed already (no new snapshot comes)', () => {
    const f = fakeConnection()
    f.latest.set(2, { type: 'DeviceStatus', device_id: 2, name: 'd2', online: false, state: 'offline', last_seen: 0, last_seen_time: null, connection_quality: 0, rtt_ms: null, last_error: 'timeout', snapshot: true })
    const scope = effectScope()
    const { live } = scope.run(() => useDeviceStatus(ref([1, 2]), f.conn))!
    expect([...live.keys()]).toEqual([2])
    expect(live.get(2)).toMatchObject({ state: 'offline', lastError: 'timeout', epoch: 7 })
    scope.stop()
  })

  it('follows exactly the devices shown, keeps their newest status, and lets go of the others', async () => {
    const f = fakeConnection()
    const ids = ref([1, 2])
    const scope = effectScope()
    const { live } = scope.run(() => useDeviceStatus(ids, f.conn))!
    expect(f.followed).toEqual([[1, 2]])
    f.send(1, 'online')
    f.send(9, 'online') // Not shown: ignored.
    expect([...live.keys()]).toEqual([1])
    expect(live.get(1)).toMatchObject({ online: true, state: 'online', lastSeen: 5000, rttMs: 2, epoch: 7 })
    f.send(1, 'offline')
    expect(live.get(1)!.state).toBe('offline')

    ids.value = [2, 3]
    await nextTick()
    expect(f.followed).toEqual([[1, 2], [2, 3]])
    expect(f.released).toEqual([[1, 2]])
    expect(live.has(1)).toBe(false)
    f.send(1, 'online')
    expect(live.has(1)).toBe(false)

    scope.stop()
    expect(f.released).toEqual([[1, 2], [2, 3]])
    expect(f.handlers.size).toBe(0)
  })
})
