// The point functions against a mocked fetch: what the server sends made into page points, the
// shared description cache, label changes, commands, and the point search.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { effectScope, nextTick, ref } from 'vue'
import type { WirePoint } from '../api/types'

let fetchMock: ReturnType<typeof vi.fn>
// The description cache is module state: each test gets fresh modules.
let mod: typeof import('./usePoints')

function respond(status: number, body?: unknown) {
  return new Response(status === 204 ? null : JSON.stringify(body), { status })
}
function call(n = 0) {
  const [url, init] = fetchMock.mock.calls[n]
  return { url: url as string, method: init.method as string, body: init.body === undefined ? undefined : JSON.parse(init.body as string) }
}
const wire = (over: Partial<WirePoint> = {}): WirePoint => ({
  id: 5, device_id: 2, device: 'ahu', name: 'VAR1', point_number: 1, point_type: 'variable', value: 21.5, has_value: true,
  units: 'degC', range: null, range_name: null, digital: null, label: 'SAT', description: null, auto_manual: false, has_auto_manual: true,
  quality: 'good', updated_at: '2026-01-01T00:00:00.000Z', writable: true, class: 'setpoint', min: null, max: null,
  trend: { interval_ms: 1000, deadband: null, heartbeat_secs: null, retention_days: null }, ...over,
})

beforeEach(async () => {
  vi.resetModules()
  fetchMock = vi.fn()
  vi.stubGlobal('fetch', fetchMock)
  mod = await import('./usePoints')
  // The client of the fresh modules, with a session.
  ;(await import('../api/client')).configureClient(
    () => 'tok',
    () => {},
  )
})
afterEach(() => {
  vi.unstubAllGlobals()
  vi.useRealTimers()
})

describe('points as the server sends them', () => {
  it('keeps what a point has', () => {
    expect(mod.pointFromWire(wire())).toMatchObject({ device_id: 2, point_number: 1, value: 21.5, units: 'degC', label: 'SAT', updated_at: '2026-01-01T00:00:00.000Z' })
  })
  it("turns the plan's stand-ins for none (0, \"\", the epoch) back into null", () => {
    const manual = mod.pointFromWire(wire({ device_id: 0, device: null, point_number: 0, point_type: 'manual', value: 0, has_value: false, units: '', label: '', quality: null, updated_at: '1970-01-01T00:00:00.000Z' }))
    expect(manual).toMatchObject({ device_id: null, point_number: null, value: null, units: null, label: null, updated_at: null })
    // A failed read: a time and a quality, no value.
    const failed = mod.pointFromWire(wire({ value: 0, has_value: false, quality: 'bad/comm_failure' }))
    expect(failed).toMatchObject({ value: null, quality: 'bad/comm_failure', updated_at: '2026-01-01T00:00:00.000Z' })
  })
})

describe('reading points', () => {
  it('gets one point and a page of points, as page points', async () => {
    const points = mod.usePoints()
    fetchMock.mockResolvedValueOnce(respond(200, wire({ label: '' })))
    expect(await points.get(5)).toMatchObject({ id: 5, label: null })
    expect(call(0)).toMatchObject({ method: 'GET', url: '/api/t3000/points/5' })
    fetchMock.mockResolvedValueOnce(respond(200, { items: [wire({ has_value: false, value: 0 })], total: 1, offset: 0, limit: 10 }))
    const page = await points.list({ device_id: 2, limit: 10 })
    expect(page.items[0].value).toBeNull()
    expect(call(1).url).toBe('/api/t3000/points?device_id=2&limit=10')
  })

  it('describes a point once for every page; fresh asks again; a failure is asked again next time', async () => {
    const points = mod.usePoints()
    fetchMock.mockResolvedValue(respond(200, wire()))
    const [a, b] = await Promise.all([points.cached(5), points.cached(5)])
    expect(a).toBe(b)
    expect(fetchMock).toHaveBeenCalledTimes(1)
    fetchMock.mockResolvedValueOnce(respond(200, wire({ label: 'Supply air' })))
    expect((await points.cached(5, true)).label).toBe('Supply air')
    expect((await points.cached(5)).label).toBe('Supply air')
    expect(fetchMock).toHaveBeenCalledTimes(2)

    fetchMock.mockResolvedValueOnce(respond(500, { error: { code: 'internal', message: 'boom' } }))
    await expect(points.cached(6)).rejects.toMatchObject({ status: 500 })
    fetchMock.mockResolvedValueOnce(respond(200, wire({ id: 6 })))
    expect((await points.cached(6)).id).toBe(6)
  })

  it('tells a deleted point from other failures', async () => {
    const points = mod.usePoints()
    fetchMock.mockResolvedValueOnce(respond(404, { error: { code: 'not_found', message: 'no point 9' } }))
    expect(points.isMissing(await points.get(9).catch((e: unknown) => e))).toBe(true)
    fetchMock.mockResolvedValueOnce(respond(500, {}))
    expect(points.isMissing(await points.get(9).catch((e: unknown) => e))).toBe(false)
    expect(points.isMissing(new Error('network'))).toBe(false)
  })
})

describe('changing and commanding points', () => {
  it('a label change answers the changed point, and every page describes it so from then on', async () => {
    const points = mod.usePoints()
    fetchMock.mockResolvedValueOnce(respond(200, wire()))
    await points.cached(5)
    fetchMock.mockResolvedValueOnce(respond(200, wire({ label: 'Supply air' })))
    expect((await points.update(5, { label: 'Supply air' })).label).toBe('Supply air')
    expect(call(1)).toMatchObject({ method: 'PUT', url: '/api/t3000/points/5', body: { label: 'Supply air' } })
    expect((await points.cached(5)).label).toBe('Supply air')
    expect(fetchMock).toHaveBeenCalledTimes(2)
  })

  it('writes a value, relinquishes a priority and reads the commands in force', async () => {
    const points = mod.usePoints()
    const result = { point_id: 5, effective: { value: 22, priority: 8, source: 'admin' }, written: true, read_back: 22, switched_to_manual: false }
    fetchMock.mockImplementation(async () => respond(200, result))
    expect(await points.write(5, { value: 22, priority: 8, expires_in_secs: 900 })).toEqual(result)
    expect(call(0)).toMatchObject({ method: 'POST', url: '/api/t3000/points/5/value', body: { value: 22, priority: 8, expires_in_secs: 900 } })
    await points.relinquish(5, 8)
    expect(call(1)).toMatchObject({ method: 'POST', url: '/api/t3000/points/5/relinquish', body: { priority: 8 } })
    fetchMock.mockImplementation(async () => respond(200, [{ value: 22, priority: 8, source: 'admin', issued_us: 1 }]))
    expect(await points.commands(5)).toHaveLength(1)
    expect(call(2)).toMatchObject({ method: 'GET', url: '/api/t3000/points/5/commands' })
  })

  it('a point in auto is refused with its code, so that the page can offer to switch it to manual', async () => {
    const points = mod.usePoints()
    fetchMock.mockResolvedValue(respond(409, { error: { code: 'point_in_auto', message: 'OUT1 is in auto' } }))
    await expect(points.write(5, { value: 1 })).rejects.toMatchObject({ status: 409, code: 'point_in_auto', message: 'OUT1 is in auto' })
  })
})

describe('searching points', () => {
  it('a number also finds the point with that id, first', async () => {
    const points = mod.usePoints()
    fetchMock.mockImplementation(async (url: string) =>
      url.startsWith('/api/t3000/points/42') ? respond(200, wire({ id: 42, name: 'IN3' })) : respond(200, { items: [wire()], total: 1, offset: 0, limit: 10 }),
    )
    const r = await points.search({ q: ' 42 ' }, 10)
    expect(r.items.map((p) => p.id)).toEqual([42, 5])
    expect(r.total).toBe(2)
    expect(fetchMock.mock.calls.map((c) => c[0]).sort()).toEqual(['/api/t3000/points/42', '/api/t3000/points?q=42&limit=10'])
  })

  it('filtered by device or type, a number is only a word', async () => {
    const points = mod.usePoints()
    fetchMock.mockResolvedValue(respond(200, { items: [], total: 0, offset: 0, limit: 10 }))
    await points.search({ q: '42', device_id: 2, point_type: 'output' }, 10)
    expect(fetchMock.mock.calls.map((c) => c[0])).toEqual(['/api/t3000/points?q=42&device_id=2&point_type=output&limit=10'])
  })

  it('a search box: waits for a pause in typing, and empty means no results', async () => {
    vi.useFakeTimers()
    fetchMock.mockResolvedValue(respond(200, { items: [wire()], total: 1, offset: 0, limit: 5 }))
    const q = ref('')
    const scope = effectScope()
    const s = scope.run(() => mod.usePointSearch(() => (q.value.trim() ? { q: q.value } : null), 5, 250))!
    q.value = 'va'
    await nextTick()
    q.value = 'var'
    await nextTick()
    expect(s.loading.value).toBe(true)
    await vi.advanceTimersByTimeAsync(249)
    expect(fetchMock).not.toHaveBeenCalled()
    await vi.advanceTimersByTimeAsync(1)
    await vi.waitFor(() => expect(s.searched.value).toBe(true))
    expect(fetchMock.mock.calls.map((c) => c[0])).toEqual(['/api/t3000/points?q=var&limit=5'])
    expect(s.results.value.map((p) => p.id)).toEqual([5])
    q.value = ' '
    await nextTick()
    expect(s.results.value).toEqual([])
    expect(s.searched.value).toBe(false)
    scope.stop()
  })
})

describe('descriptions of the points on screen', () => {
  it('fetches each new point once, afresh, and null for one that failed', async () => {
    fetchMock.mockImplementation(async (url: string) => (url.endsWith('/7') ? respond(404, {}) : respond(200, wire())))
    const ids = ref([5, 7])
    const scope = effectScope()
    const info = scope.run(() => mod.usePointInfo(() => ids.value))!
    await vi.waitFor(() => expect(info.size).toBe(2))
    expect(info.get(5)?.label).toBe('SAT')
    expect(info.get(7)).toBeNull()
    ids.value = [5, 7, 8]
    await vi.waitFor(() => expect(info.size).toBe(3))
    expect(fetchMock.mock.calls.map((c) => c[0])).toEqual(['/api/t3000/points/5', '/api/t3000/points/7', '/api/t3000/points/8'])
    scope.stop()
  })
})

describe('auto / manual', () => {
  it('posts the mode, and lists the points in manual as page points', async () => {
    const points = mod.usePoints()
    const result = { point_id: 5, mode: 'auto', previous: 'manual', changed: true, value: 21.5, quality: 'good', cleared: [] }
    fetchMock.mockResolvedValueOnce(respond(200, result))
    expect(await points.setMode(5, 'auto')).toEqual(result)
    expect(call(0)).toMatchObject({ method: 'POST', url: '/api/t3000/points/5/mode', body: { mode: 'auto' } })
    // A point without a switch: the server's 409 reaches the caller with its code.
    fetchMock.mockResolvedValueOnce(respond(409, { error: { code: 'no_auto_manual', message: 'point 9 (PPM of co2) has no auto/manual switch' } }))
    await expect(points.setMode(9, 'manual')).rejects.toMatchObject({ status: 409, code: 'no_auto_manual' })

    const entry = { point: wire({ label: '', auto_manual: true }), at_controller: false, by: 'op', remote: '127.0.0.1', via: 'mode', since: '2026-01-01T00:00:00.000Z', commands: [] }
    fetchMock.mockResolvedValueOnce(respond(200, { items: [entry], total: 1, offset: 0, limit: 1000 }))
    const page = await points.inManual()
    expect(call(2)).toMatchObject({ method: 'GET', url: '/api/t3000/points/in-manual?limit=1000' })
    expect(page.items[0]).toMatchObject({ by: 'op', point: { id: 5, label: null, auto_manual: true } })
  })
})
