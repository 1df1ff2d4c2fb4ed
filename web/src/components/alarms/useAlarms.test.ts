// The shared open-alarm list: REST load, live notifications, the new-alarm cue (flash and one
// beep), reload after a reconnection, release of the feed.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { effectScope } from 'vue'
import type { LiveConnection } from '../../composables/useWebSocket'

class FakeSocket {
  readyState = 0
  sent: Record<string, unknown>[] = []
  onopen: ((ev: unknown) => void) | null = null
  onclose: ((ev: { code: number; reason: string }) => void) | null = null
  onmessage: ((ev: { data: unknown }) => void) | null = null
  onerror: ((ev: unknown) => void) | null = null
  send(data: string) {
    this.sent.push(JSON.parse(data))
  }
  close() {
    this.readyState = 3
  }
  open() {
    this.readyState = 1
    this.onopen?.({})
    this.receive({ type: 'Welcome', username: 'op', role: 'operator' })
  }
  receive(m: Record<string, unknown>) {
    this.onmessage?.({ data: JSON.stringify(m) })
  }
}

/** Counts the tones the alarm sound plays. */
class FakeAudio {
  static tones = 0
  state = 'running'
  currentTime = 0
  destination = {}
  async resume() {}
  createGain() {
    const p = { setValueAtTime() {}, exponentialRampToValueAtTime() {} }
    return { gain: p, connect() {} }
  }
  createOscillator() {
    return {
      type: '',
      frequency: { setValueAtTime() {} },
      connect() {},
      start() {
        FakeAudio.tones++
      },
      stop() {},
    }
  }
}

type Mod = typeof import('./useAlarms')
let mod: Mod
let sound: typeof import('./alarmSound')
let socket: FakeSocket
let conn: LiveConnection
let alarmsOnServer: unknown[]
let fetchMock: ReturnType<typeof vi.fn>

// Lets fetch answers and queued work settle (a real timer, so that it also works with fake ones).
const realSetTimeout = globalThis.setTimeout
const flush = async () => {
  for (let i = 0; i < 3; i++) await new Promise((ok) => realSetTimeout(ok, 0))
}

function notification(over: Record<string, unknown>) {
  return {
    type: 'AlarmNotification',
    alarm_id: 1,
    name: 'AHU supply high',
    device_id: 1,
    point_id: 135,
    alarm_type: 'raised',
    state: 'active',
    level: 'high',
    message: 'AHU supply high',
    severity: 1,
    severity_name: 'warning',
    value: 31.5,
    by: null,
    timestamp: Date.parse('2026-11-27T03:00:00.000Z'),
    time: '2026-11-27T03:00:00.000Z',
    ...over,
  }
}

beforeEach(async () => {
  vi.resetModules()
  FakeAudio.tones = 0
  vi.stubGlobal('AudioContext', FakeAudio)
  const stored = new Map<string, string>()
  vi.stubGlobal('localStorage', {
    getItem: (k: string) => stored.get(k) ?? null,
    setItem: (k: string, v: string) => stored.set(k, v),
    removeItem: (k: string) => stored.delete(k),
  })
  alarmsOnServer = []
  fetchMock = vi.fn(async (url: string, init: RequestInit) => {
    if (url === '/api/t3000/alarms' && init.method === 'GET') return new Response(JSON.stringify(alarmsOnServer), { status: 200 })
    const ack = /^\/api\/t3000\/alarms\/(\d+)\/ack$/.exec(url)
    if (ack) {
      return new Response(
        JSON.stringify({ rule_id: Number(ack[1]), name: 'x', point_id: 135, device_id: 1, message: null, transition: { at_us: 1, from: 'active', to: 'acknowledged', level: 'high', value: 31, kind: { type: 'acknowledged', by: 'op' } } }),
        { status: 200 },
      )
    }
    return new Response(JSON.stringify({ error: { code: 'not_found', message: `no route ${url}` } }), { status: 404 })
  })
  vi.stubGlobal('fetch', fetchMock)
  mod = await import('./useAlarms')
  sound = await import('./alarmSound')
  const ws = await import('../../composables/useWebSocket')
  conn = new ws.LiveConnection({
    url: () => 'ws://x',
    token: () => 't',
    ticket: () => 'tk',
    createSocket: () => (socket = new FakeSocket()),
  })
  conn.start()
  socket.open()
  await sound.unlock()
})
afterEach(() => {
  conn.stop()
  vi.unstubAllGlobals()
  vi.useRealTimers()
})

function use(opts: { sound?: boolean } = {}) {
  const scope = effectScope()
  const store = scope.run(() => mod.useAlarms({ ...opts, conn }))!
  return { store, stop: () => scope.stop() }
}

describe('useAlarms', () => {
  it('loads the open alarms and follows the alarm feed', async () => {
    alarmsOnServer = [
      { rule_id: 1, name: 'a', point_id: 1, device_id: null, message: null, state: 'acknowledged', level: 'high', since_us: 10 },
      { rule_id: 2, name: 'b', point_id: 2, device_id: null, message: null, state: 'active', level: 'wayhigh', since_us: 5 },
      { rule_id: 3, name: 'c', point_id: 3, device_id: null, message: null, state: 'cleared', level: 'low', since_us: 20 },
    ]
    const { store } = use()
    await flush()
    expect(store.loaded.value).toBe(true)
    // Waiting for an acknowledgement first, the most severe first among them.
    expect(store.list.value.map((r) => r.rule_id)).toEqual([2, 3, 1])
    expect([store.activeCount.value, store.clearedCount.value, store.acknowledgedCount.value, store.unackedCount.value]).toEqual([1, 1, 1, 2])
    expect(socket.sent.filter((m) => m.type === 'Subscribe')).toEqual([expect.objectContaining({ alarms: true })])
  })

  it('applies notifications: new alarm, acknowledgement, back to normal', async () => {
    const { store } = use()
    await flush()
    expect(store.list.value).toEqual([])
    socket.receive(notification({}))
    expect(store.list.value).toHaveLength(1)
    expect(store.list.value[0]).toMatchObject({ rule_id: 1, state: 'active', level: 'high', value: 31.5, point_id: 135 })
    expect(store.list.value[0].since_us).toBe(Date.parse('2026-11-27T03:00:00.000Z') * 1000)
    socket.receive(notification({ alarm_type: 'acknowledged', state: 'acknowledged', by: 'op', value: 32 }))
    expect(store.list.value[0]).toMatchObject({ state: 'acknowledged', by: 'op', value: 32 })
    socket.receive(notification({ alarm_type: 'normal', state: 'normal' }))
    expect(store.list.value).toEqual([])
  })

  it('a new fault under a system alarm that is on needs a new acknowledgement and keeps its start', async () => {
    const { store } = use()
    await flush()
    const t0 = Date.parse('2026-11-27T03:00:00.000Z')
    const system = { alarm_id: 4294967291, name: 'System: devices offline', point_id: 0, device_id: 0, level: 'offline' }
    socket.receive(notification({ ...system, timestamp: t0, message: '1 device(s) do not answer: ahu-1' }))
    socket.receive(notification({ ...system, alarm_type: 'acknowledged', state: 'acknowledged', by: 'op', timestamp: t0 + 1000 }))
    const again = '2 device(s) do not answer: ahu-1, ahu-2 (new: ahu-2)'
    socket.receive(notification({ ...system, alarm_type: 'raised', state: 'active', timestamp: t0 + 2000, message: again }))
    expect(store.list.value[0]).toMatchObject({ state: 'active', message: again, started_us: t0 * 1000, acknowledged_by: null, acknowledged_us: null })
    expect(store.activeCount.value).toBe(1)
    const back = 'ahu-1 answers again; 1 device(s) do not answer: ahu-2'
    socket.receive(notification({ ...system, alarm_type: 'cleared', state: 'active', timestamp: t0 + 3000, message: back }))
    expect(store.list.value[0]).toMatchObject({ state: 'active', message: back, started_us: t0 * 1000, since_us: (t0 + 3000) * 1000 })
    // Raised after it cleared: a new alarm.
    socket.receive(notification({ ...system, alarm_type: 'cleared', state: 'cleared', timestamp: t0 + 4000, message: 'every device answers again' }))
    socket.receive(notification({ ...system, alarm_type: 'raised', state: 'active', timestamp: t0 + 5000 }))
    expect(store.list.value[0].started_us).toBe((t0 + 5000) * 1000)
  })

  it('keeps when an alarm started through its acknowledgement, and counts it as still in alarm', async () => {
    const { store } = use()
    await flush()
    const raised = Date.parse('2026-11-27T03:00:00.000Z')
    const acked = Date.parse('2026-11-27T03:05:00.000Z')
    socket.receive(notification({ timestamp: raised }))
    socket.receive(notification({ alarm_type: 'acknowledged', state: 'acknowledged', by: 'op', timestamp: acked }))
    expect(store.list.value[0]).toMatchObject({ state: 'acknowledged', started_us: raised * 1000, since_us: acked * 1000, acknowledged_us: acked * 1000, acknowledged_by: 'op' })
    expect(mod.startOf(store.list.value[0])).toBe(raised * 1000)
    expect([store.inAlarmCount.value, store.activeCount.value, store.acknowledgedCount.value]).toEqual([1, 0, 1])
    // Acknowledged through the REST API: the same.
    socket.receive(notification({ alarm_id: 2, timestamp: raised }))
    await store.acknowledge(2)
    const two = store.list.value.find((r) => r.rule_id === 2)!
    expect(mod.startOf(two)).toBe(raised * 1000)
    expect([store.inAlarmCount.value, store.activeCount.value, store.acknowledgedCount.value]).toEqual([2, 0, 2])
    // From the server after a reload: its started_us.
    alarmsOnServer = [{ rule_id: 3, name: 'c', point_id: 1, device_id: null, message: null, state: 'acknowledged', level: 'high', since_us: 50, started_us: 10, acknowledged_us: 50, acknowledged_by: 'op' }]
    await store.reload()
    expect(mod.startOf(store.list.value.find((r) => r.rule_id === 3)!)).toBe(10)
  })

  it('reads the wire forms: 0 for no point or device, the name as message, the severity by name', async () => {
    const { store } = use()
    await flush()
    socket.receive(notification({ alarm_id: 7, name: 'ahu offline', point_id: 0, device_id: 3, level: 'offline', severity: 2, severity_name: 'critical', message: 'ahu offline' }))
    expect(store.list.value[0]).toMatchObject({ rule_id: 7, point_id: null, device_id: 3, message: null, severity: 'critical' })
    socket.receive(notification({ alarm_id: 8, device_id: 0, message: 'too warm' }))
    expect(store.list.value.find((r) => r.rule_id === 8)).toMatchObject({ device_id: null, point_id: 135, message: 'too warm' })
  })

  it('ranks the server\'s own faults as critical and its warnings as warnings, as the server does', () => {
    expect(mod.severityOf('fault')).toBe('critical')
    expect(mod.severityOf('data_loss')).toBe('critical')
    expect(mod.severityOf('warning')).toBe('warning')
    expect(mod.severityOf('high')).toBe('warning')
  })

  it('flashes and beeps once per new alarm, however many components show alarms', async () => {
    vi.useFakeTimers()
    const a = use({ sound: true })
    use({ sound: true })
    use()
    await flush()
    socket.receive(notification({}))
    expect(a.store.isFlashing(1)).toBe(true)
    expect(sound.played.value).toBe(1)
    expect(FakeAudio.tones).toBe(2) // Two short tones make one beep.
    // An acknowledgement or a clearing is no new alarm.
    socket.receive(notification({ alarm_type: 'acknowledged', state: 'acknowledged', by: 'op' }))
    socket.receive(notification({ alarm_type: 'normal', state: 'normal' }))
    expect(sound.played.value).toBe(1)
    socket.receive(notification({ alarm_id: 2 }))
    expect(sound.played.value).toBe(2)
    vi.advanceTimersByTime(mod.FLASH_MS)
    expect(a.store.isFlashing(2)).toBe(false)
  })

  it('is silent when muted, or when no component asked for sound', async () => {
    const quiet = use()
    await flush()
    socket.receive(notification({}))
    expect(sound.played.value).toBe(0)
    quiet.stop()
    use({ sound: true })
    await flush()
    sound.setMuted(true)
    socket.receive(notification({ alarm_id: 3 }))
    expect(sound.played.value).toBe(0)
    expect(localStorage.getItem('t3000.alarms.muted')).toBe('1')
    sound.setMuted(false)
    socket.receive(notification({ alarm_id: 4 }))
    expect(sound.played.value).toBe(1)
  })

  it('keeps a notification that arrived while an older list was on its way', async () => {
    let answer: (r: Response) => void = () => {}
    fetchMock.mockImplementationOnce(() => new Promise<Response>((ok) => (answer = ok)))
    const { store } = use()
    await flush()
    socket.receive(notification({ alarm_id: 7 }))
    // The list was read before rule 7 was raised, and still shows rule 8 that has since ended.
    socket.receive(notification({ alarm_id: 8, alarm_type: 'normal', state: 'normal' }))
    answer(
      new Response(
        JSON.stringify([{ rule_id: 8, name: 'old', point_id: 2, device_id: null, message: null, state: 'active', level: 'high', since_us: 1 }]),
        { status: 200 },
      ),
    )
    await flush()
    expect(store.list.value.map((r) => [r.rule_id, r.state])).toEqual([[7, 'active']])
  })

  it('loads again after a reconnection once the feed is subscribed', async () => {
    use()
    await flush()
    const gets = () => fetchMock.mock.calls.filter(([u]) => u === '/api/t3000/alarms').length
    socket.receive({ type: 'Subscribed', request_id: 'r1', alarms: true })
    await flush()
    const before = gets()
    // Other subscriptions change: no reload.
    socket.receive({ type: 'Subscribed', request_id: 'r2', alarms: true })
    await flush()
    expect(gets()).toBe(before)
    // A new connection: reload once it is subscribed again.
    socket.receive({ type: 'Welcome', username: 'op', role: 'operator' })
    socket.receive({ type: 'Subscribed', request_id: 'r3', alarms: true })
    await flush()
    expect(gets()).toBe(before + 1)
  })

  it('shows the error of a failed load and keeps the feed', async () => {
    fetchMock.mockImplementationOnce(async () => new Response(JSON.stringify({ error: { code: 'internal', message: 'catalog unavailable' } }), { status: 500 }))
    const { store } = use()
    await flush()
    expect(store.error.value?.detail).toContain('catalog unavailable')
    expect(store.error.value?.retryable).toBe(true)
    socket.receive(notification({}))
    expect(store.list.value).toHaveLength(1)
    await store.reload()
    expect(store.error.value).toBeNull()
  })

  it('acknowledges through the REST API and shows the new state at once', async () => {
    const { store } = use()
    await flush()
    socket.receive(notification({}))
    await store.acknowledge(1)
    expect(fetchMock).toHaveBeenCalledWith('/api/t3000/alarms/1/ack', expect.objectContaining({ method: 'POST' }))
    expect(store.list.value[0]).toMatchObject({ state: 'acknowledged', by: 'op' })
  })

  it('stops following the feed when the last user goes', async () => {
    const a = use()
    const b = use()
    await flush()
    a.stop()
    await flush()
    expect(socket.sent.filter((m) => m.type === 'Unsubscribe')).toEqual([])
    b.stop()
    await flush()
    expect(socket.sent.filter((m) => m.type === 'Unsubscribe')).toEqual([expect.objectContaining({ alarms: true })])
  })
})
