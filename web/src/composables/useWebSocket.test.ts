// The live connection against a fake socket and fake timers: a fresh single-use ticket for every
// attempt (never the token in the address), reconnection with backoff and jitter, resubscription, batching and reference counting of subscriptions, routing, request
// replies, Lagged, dead-connection detection and what is live.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { computed, effectScope, nextTick, ref } from 'vue'
import { ApiError, configureClient } from '../api/client'
import { LiveConnection, useLivePoints, type LiveOptions } from './useWebSocket'

type Sent = Record<string, unknown> & { type: string; request_id?: string }

class FakeSocket {
  readyState = 0
  sent: Sent[] = []
  closed: { code?: number; reason?: string } | null = null
  onopen: ((ev: unknown) => void) | null = null
  onclose: ((ev: { code: number; reason: string }) => void) | null = null
  onmessage: ((ev: { data: unknown }) => void) | null = null
  onerror: ((ev: unknown) => void) | null = null
  constructor(public url: string) {}
  send(data: string) {
    if (this.readyState !== 1) throw new Error('send on a socket that is not open')
    this.sent.push(JSON.parse(data) as Sent)
  }
  close(code?: number, reason?: string) {
    // A browser reports the close later, through onclose; the tests do that with drop().
    this.closed = { code, reason }
    this.readyState = 2
  }
  // ---- test side ----
  open() {
    this.readyState = 1
    this.onopen?.({})
  }
  receive(m: Record<string, unknown>) {
    this.onmessage?.({ data: JSON.stringify(m) })
  }
  welcome() {
    this.receive({ type: 'Welcome', username: 'u', role: 'viewer', server_version: 't', ping_interval_secs: 15, client_timeout_secs: 45, queue_messages: 10 })
  }
  drop(code = 1006) {
    this.readyState = 3
    this.onclose?.({ code, reason: '' })
  }
  ofType(t: string) {
    return this.sent.filter((m) => m.type === t)
  }
}

let sockets: FakeSocket[]
let token: string | null
/** Tickets handed out so far (`tk1`, `tk2`, ...). */
let tickets: number

function connection(extra: Partial<LiveOptions> = {}) {
  return new LiveConnection({
    url: () => 'ws://test/api/t3000/ws',
    token: () => token,
    ticket: () => `tk${++tickets}`,
    createSocket: (url) => {
      const s = new FakeSocket(url)
      sockets.push(s)
      return s
    },
    initialDelayMs: 500,
    maxDelayMs: 30_000,
    requestTimeoutMs: 5_000,
    random: () => 0.5,
    ...extra,
  })
}

/** Lets queued microtasks (the per-tick flush) run. */
async function flush() {
  await Promise.resolve()
  await Promise.resolve()
}

/** A started connection whose socket is open and welcomed. */
async function opened(extra: Partial<LiveOptions> = {}) {
  const c = connection(extra)
  c.start()
  const s = sockets[sockets.length - 1]
  s.open()
  s.welcome()
  await flush()
  return { c, s }
}

function last<T>(a: T[]): T {
  return a[a.length - 1]
}

beforeEach(() => {
  vi.useFakeTimers()
  sockets = []
  token = 'tok en'
  tickets = 0
})
afterEach(() => {
  vi.useRealTimers()
})

describe('connecting', () => {
  it('connects with a fresh ticket, never the token, and is open after the Welcome', async () => {
    const c = connection()
    expect(c.state.value).toBe('idle')
    c.start()
    expect(sockets).toHaveLength(1)
    expect(sockets[0].url).toBe('ws://test/api/t3000/ws?ticket=tk1')
    expect(sockets[0].url).not.toContain('tok')
    expect(c.state.value).toBe('connecting')
    sockets[0].open()
    expect(c.state.value).toBe('connecting')
    sockets[0].welcome()
    expect(c.state.value).toBe('open')
    expect(c.welcome.value?.username).toBe('u')
    c.start() // A second start keeps the one connection.
    expect(sockets).toHaveLength(1)
  })

  it('stays closed without a token', () => {
    token = null
    const c = connection()
    c.start()
    expect(sockets).toHaveLength(0)
    expect(c.state.value).toBe('closed')
  })

  it('stop() closes without reconnecting and fails waiting requests', async () => {
    const { c, s } = await opened()
    const p = c.request({ type: 'Ping' })
    c.stop()
    await expect(p).rejects.toThrow('connection closed')
    expect(s.closed?.code).toBe(1000)
    expect(c.state.value).toBe('closed')
    await vi.advanceTimersByTimeAsync(120_000)
    expect(sockets).toHaveLength(1)
  })

  it('keeps what is followed across stop() and start() (log out, log in)', async () => {
    const { c } = await opened()
    c.follow({ points: [4], system: true })
    await flush()
    c.stop()
    c.start()
    expect(sockets).toHaveLength(2)
    last(sockets).open()
    expect(last(sockets).ofType('Subscribe')).toEqual([expect.objectContaining({ points: [4], system: true })])
  })
})

describe('tickets', () => {
  /** A ticket call the test answers: `answer(t)` or `refuse(e)`. */
  function pendingTickets() {
    const calls: { resolve: (t: string) => void; reject: (e: unknown) => void }[] = []
    const ticket = () => new Promise<string>((resolve, reject) => calls.push({ resolve, reject }))
    return { calls, ticket }
  }

  it('asks for a new ticket before every attempt and never reuses one', async () => {
    const c = connection({ random: () => 1 })
    c.start()
    for (let i = 1; i <= 4; i++) {
      expect(last(sockets).url).toBe(`ws://test/api/t3000/ws?ticket=tk${i}`)
      last(sockets).drop()
      await vi.advanceTimersByTimeAsync(c.nextAttemptAt.value! - Date.now())
    }
    expect(new Set(sockets.map((s) => s.url)).size).toBe(sockets.length)
    expect(sockets.every((s) => !s.url.includes('token') && !s.url.includes('tok%20en'))).toBe(true)
  })

  it('opens the socket once the ticket has come, with that ticket only', async () => {
    const { calls, ticket } = pendingTickets()
    const c = connection({ ticket })
    c.start()
    expect(c.state.value).toBe('connecting')
    expect(calls).toHaveLength(1)
    expect(sockets).toHaveLength(0)
    c.start() // Already asking: no second ticket.
    c.retryNow()
    expect(calls).toHaveLength(1)
    calls[0].resolve('t3w_abc')
    await flush()
    expect(sockets.map((s) => s.url)).toEqual(['ws://test/api/t3000/ws?ticket=t3w_abc'])
    sockets[0].open()
    sockets[0].welcome()
    expect(c.state.value).toBe('open')
  })

  it('drops a ticket that comes after stop()', async () => {
    const { calls, ticket } = pendingTickets()
    const c = connection({ ticket })
    c.start()
    c.stop()
    expect(c.state.value).toBe('closed')
    calls[0].resolve('late')
    await flush()
    expect(sockets).toHaveLength(0)
    // A new start asks again.
    c.start()
    expect(calls).toHaveLength(2)
    calls[1].resolve('fresh')
    await flush()
    expect(sockets.map((s) => s.url)).toEqual(['ws://test/api/t3000/ws?ticket=fresh'])
  })

  it('stops trying when the ticket call says the session has ended (401)', async () => {
    const { calls, ticket } = pendingTickets()
    const c = connection({ ticket })
    c.start()
    calls[0].reject(new ApiError(401, 'unauthorized', 'a valid bearer token is required'))
    await flush()
    expect(c.state.value).toBe('closed')
    await vi.advanceTimersByTimeAsync(120_000)
    expect(calls).toHaveLength(1)
    expect(sockets).toHaveLength(0)
  })

  it('retries with backoff when the ticket call fails otherwise, saying why', async () => {
    const { calls, ticket } = pendingTickets()
    const c = connection({ ticket, random: () => 1 })
    c.start()
    calls[0].reject(new ApiError(0, 'network', 'the server cannot be reached (Failed to fetch)'))
    await flush()
    expect(c.state.value).toBe('reconnecting')
    expect(c.attempts.value).toBe(1)
    expect(c.lostReason.value).toBe('the server cannot be reached (Failed to fetch)')
    await vi.advanceTimersByTimeAsync(499)
    expect(calls).toHaveLength(1)
    await vi.advanceTimersByTimeAsync(1)
    expect(calls).toHaveLength(2)
    calls[1].reject(new ApiError(503, 'too_many_tickets', 'try again in 3 s'))
    await flush()
    expect(c.attempts.value).toBe(2)
    await vi.advanceTimersByTimeAsync(1000)
    calls[2].resolve('tk')
    await flush()
    expect(sockets).toHaveLength(1)
  })

  it('gives up a ticket call that does not answer within 10 s and tries again', async () => {
    const { calls, ticket } = pendingTickets()
    const c = connection({ ticket })
    c.start()
    await vi.advanceTimersByTimeAsync(10_000)
    expect(c.state.value).toBe('reconnecting')
    expect(c.lostReason.value).toBe('no answer from the server')
    // Its answer, if it ever comes, opens nothing.
    calls[0].resolve('too late')
    await flush()
    expect(sockets).toHaveLength(0)
    await vi.advanceTimersByTimeAsync(c.backoff(1))
    expect(calls).toHaveLength(2)
  })

  it('by default asks POST /api/t3000/ws/ticket with the bearer token, and a 401 there logs out', async () => {
    let unauthorized = 0
    configureClient(
      () => 'sess-token',
      () => unauthorized++,
    )
    const requests: { url: string; init: RequestInit }[] = []
    let status = 200
    vi.stubGlobal(
      'fetch',
      vi.fn(async (url: string, init: RequestInit) => {
        requests.push({ url, init })
        if (status === 401) return new Response(JSON.stringify({ error: { code: 'unauthorized', message: 'no' } }), { status })
        return new Response(JSON.stringify({ ticket: 't3w_0123', expires_in_secs: 30, expires_us: 1 }), { status })
      }),
    )
    try {
      const c = connection({ ticket: undefined })
      c.start()
      await flush()
      await vi.advanceTimersByTimeAsync(0)
      expect(requests).toHaveLength(1)
      expect(requests[0].url).toBe('/api/t3000/ws/ticket')
      expect(requests[0].init.method).toBe('POST')
      expect((requests[0].init.headers as Record<string, string>).Authorization).toBe('Bearer sess-token')
      expect(sockets.map((s) => s.url)).toEqual(['ws://test/api/t3000/ws?ticket=t3w_0123'])
      // The session ends: the next attempt's ticket call gets 401, which logs out (as any 401).
      status = 401
      sockets[0].drop()
      await vi.advanceTimersByTimeAsync(c.backoff(1))
      expect(requests).toHaveLength(2)
      expect(unauthorized).toBe(1)
      expect(c.state.value).toBe('closed')
      expect(sockets).toHaveLength(1)
    } finally {
      vi.unstubAllGlobals()
      configureClient(
        () => null,
        () => {},
      )
    }
  })
})

describe('reconnecting', () => {
  it('retries with exponential backoff up to the cap', async () => {
    const c = connection({ random: () => 1 })
    c.start()
    const delays: number[] = []
    for (let i = 0; i < 9; i++) {
      const s = last(sockets)
      const before = Date.now()
      s.drop()
      expect(c.state.value).toBe('reconnecting')
      expect(c.attempts.value).toBe(i + 1)
      const delay = c.nextAttemptAt.value! - before
      delays.push(delay)
      // Nothing before the delay, a new socket right after it.
      await vi.advanceTimersByTimeAsync(delay - 1)
      expect(sockets).toHaveLength(i + 1)
      await vi.advanceTimersByTimeAsync(1)
      expect(sockets).toHaveLength(i + 2)
    }
    expect(delays).toEqual([500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000])
  })

  it('jitters each delay to between half and all of it', () => {
    let r = 0
    const c = connection({ random: () => r })
    for (const n of [1, 2, 3, 5, 8, 20, 100]) {
      const full = Math.min(30_000, 500 * 2 ** (n - 1))
      for (r of [0, 0.1, 0.5, 0.9, 0.999999]) {
        const d = c.backoff(n)
        expect(d).toBeGreaterThanOrEqual(full / 2)
        expect(d).toBeLessThanOrEqual(full)
      }
      r = 0
      expect(c.backoff(n)).toBe(Math.round(full / 2))
    }
    // With the real random source too.
    const real = connection({ random: undefined })
    for (let i = 0; i < 200; i++) {
      const d = real.backoff(3)
      expect(d).toBeGreaterThanOrEqual(1000)
      expect(d).toBeLessThanOrEqual(2000)
    }
  })

  it('starts again from the first delay after a good connection', async () => {
    const c = connection({ random: () => 1 })
    c.start()
    last(sockets).drop()
    await vi.advanceTimersByTimeAsync(500)
    last(sockets).drop()
    expect(c.attempts.value).toBe(2)
    await vi.advanceTimersByTimeAsync(1000)
    last(sockets).open()
    last(sockets).welcome()
    expect(c.attempts.value).toBe(0)
    expect(c.nextAttemptAt.value).toBeNull()
    const before = Date.now()
    last(sockets).drop()
    expect(c.nextAttemptAt.value! - before).toBe(500)
  })

  it('subscribes again to everything still followed, and not to what was released', async () => {
    const { c, s } = await opened()
    c.follow({ points: [1, 2], devices: [5], alarms: true })
    const gone = c.follow({ points: [3], devices: [6], system: true, schedules: true })
    await flush()
    gone()
    await flush()
    s.drop()
    await vi.advanceTimersByTimeAsync(c.backoff(1))
    const s2 = last(sockets)
    expect(s2).not.toBe(s)
    s2.open()
    const subs = s2.ofType('Subscribe')
    expect(subs).toHaveLength(1)
    expect(subs[0]).toMatchObject({ type: 'Subscribe', devices: [5], alarms: true })
    expect([...(subs[0].points as number[])].sort()).toEqual([1, 2])
    expect(subs[0]).not.toHaveProperty('system')
    expect(subs[0]).not.toHaveProperty('schedules')
    expect(s2.ofType('Unsubscribe')).toHaveLength(0)
  })

  it('sends what was followed while offline once the socket opens', async () => {
    const c = connection()
    c.start()
    c.follow({ points: [7], alarms: true })
    await flush()
    expect(sockets[0].sent).toHaveLength(0)
    sockets[0].open()
    expect(sockets[0].sent).toEqual([expect.objectContaining({ type: 'Subscribe', points: [7], alarms: true })])
    await flush()
    expect(sockets[0].sent).toHaveLength(1)
  })
})

describe('subscriptions', () => {
  it('batches the follows of one tick into one Subscribe', async () => {
    const { c, s } = await opened()
    c.follow({ points: [1, 2] })
    c.follow({ points: [2, 3], devices: [9] })
    c.follow({ points: [3, 3, 4] })
    expect(s.sent).toHaveLength(0)
    await flush()
    expect(s.sent).toHaveLength(1)
    expect(s.sent[0]).toMatchObject({ type: 'Subscribe', batch: true, points: [1, 2, 3, 4], devices: [9] })
    expect(typeof s.sent[0].request_id).toBe('string')
    expect(c.followedPoints()).toEqual([1, 2, 3, 4])
  })

  it('counts references: Unsubscribe only when the last follower releases', async () => {
    const { c, s } = await opened()
    const a = c.follow({ points: [1, 2] })
    const b = c.follow({ points: [2] })
    await flush()
    s.sent = []
    a()
    a() // Releasing twice counts once.
    await flush()
    expect(s.sent).toEqual([expect.objectContaining({ type: 'Unsubscribe', points: [1] })])
    s.sent = []
    b()
    await flush()
    expect(s.sent).toEqual([expect.objectContaining({ type: 'Unsubscribe', points: [2] })])
    expect(c.followedPoints()).toEqual([])
  })

  it('sends nothing for a follow released in the same tick', async () => {
    const { c, s } = await opened()
    c.follow({ points: [1] })()
    await flush()
    expect(s.sent).toHaveLength(0)
  })

  it('keeps a subscription released and followed again in the same tick', async () => {
    const { c, s } = await opened()
    const a = c.follow({ points: [1] })
    await flush()
    s.sent = []
    a()
    c.follow({ points: [1] })
    await flush()
    expect(s.sent).toHaveLength(0)
    expect(c.followedPoints()).toEqual([1])
  })

  it('subscribes to alarms, schedules and system status once, however many follow them', async () => {
    const { c, s } = await opened()
    const a = c.follow({ alarms: true, system: true })
    const b = c.follow({ alarms: true })
    await flush()
    expect(s.sent).toEqual([expect.objectContaining({ type: 'Subscribe', alarms: true, system: true })])
    s.sent = []
    a()
    await flush()
    expect(s.sent).toEqual([expect.objectContaining({ type: 'Unsubscribe', system: true })])
    expect(s.sent[0]).not.toHaveProperty('alarms')
    s.sent = []
    b()
    await flush()
    expect(s.sent).toEqual([expect.objectContaining({ type: 'Unsubscribe', alarms: true })])
  })

  it('subscribes to program updates like schedules', async () => {
    const { c, s } = await opened()
    const a = c.follow({ programs: true, points: [4] })
    await flush()
    expect(s.sent).toEqual([expect.objectContaining({ type: 'Subscribe', programs: true, points: [4] })])
    s.sent = []
    a()
    await flush()
    expect(s.sent).toEqual([expect.objectContaining({ type: 'Unsubscribe', programs: true, points: [4] })])
  })

  it('sends nothing for a flag followed and released in the same tick', async () => {
    const { c, s } = await opened()
    c.follow({ alarms: true })()
    c.follow({ points: [1] })
    await flush()
    expect(s.ofType('Unsubscribe')).toHaveLength(0)
    expect(s.ofType('Subscribe')).toHaveLength(1)
    expect(s.ofType('Subscribe')[0]).not.toHaveProperty('alarms')
  })

  it('keeps a flag released and followed again in the same tick (a page change)', async () => {
    const { c, s } = await opened()
    const a = c.follow({ alarms: true })
    await flush()
    s.sent = []
    a()
    c.follow({ alarms: true })
    await flush()
    // Either nothing, or an Unsubscribe followed by a Subscribe: subscribed in the end.
    const lastAboutAlarms = s.sent.filter((m) => m.alarms === true).pop()
    expect(lastAboutAlarms?.type ?? 'Subscribe').toBe('Subscribe')
  })
})

describe('messages', () => {
  it('routes each message to the handlers of its type until they stop', async () => {
    const { c, s } = await opened()
    const points: unknown[] = []
    const alarms: unknown[] = []
    const off = c.on('PointUpdate', (m) => points.push(m.point_id))
    c.on('AlarmNotification', (m) => alarms.push(m.alarm_id))
    s.receive({ type: 'PointUpdate', point_id: 4, value: 1 })
    s.receive({ type: 'AlarmNotification', alarm_id: 9 })
    s.receive({ type: 'SystemStatus' })
    s.onmessage?.({ data: 'not json' }) // Ignored.
    off()
    s.receive({ type: 'PointUpdate', point_id: 5, value: 2 })
    expect(points).toEqual([4])
    expect(alarms).toEqual([9])
  })

  it('hands each update of a PointUpdates frame to the PointUpdate handlers, in order', async () => {
    const { c, s } = await opened()
    const seen: [number, number][] = []
    c.on('PointUpdate', (m) => seen.push([m.point_id, m.value as number]))
    s.receive({ type: 'PointUpdates', updates: [
      { type: 'PointUpdate', point_id: 1, value: 10 },
      { type: 'PointUpdate', point_id: 2, value: 20 },
      { type: 'PointUpdate', point_id: 1, value: 11 },
    ] })
    expect(seen).toEqual([[1, 10], [2, 20], [1, 11]])
  })

  it('counts the updates the server says this page missed', async () => {
    const { c, s } = await opened()
    s.receive({ type: 'Lagged', missed: 3 })
    s.receive({ type: 'Lagged', missed: 4 })
    expect(c.missed.value).toBe(7)
  })
})

describe('requests', () => {
  it('resolves with the reply of the same request_id', async () => {
    const { c, s } = await opened()
    const p1 = c.request({ type: 'AckAlarm', alarm_id: 1 })
    const p2 = c.request({ type: 'AckAlarm', alarm_id: 2 })
    const [m1, m2] = s.ofType('AckAlarm')
    expect(m1.request_id).not.toBe(m2.request_id)
    s.receive({ type: 'AlarmAcknowledged', request_id: m2.request_id, alarm: { alarm_id: 2 } })
    s.receive({ type: 'AlarmAcknowledged', request_id: 'someone-else', alarm: { alarm_id: 3 } })
    s.receive({ type: 'AlarmAcknowledged', request_id: m1.request_id, alarm: { alarm_id: 1 } })
    await expect(p2).resolves.toMatchObject({ alarm: { alarm_id: 2 } })
    await expect(p1).resolves.toMatchObject({ alarm: { alarm_id: 1 } })
  })

  it('rejects on an Error reply with its code and message', async () => {
    const { c, s } = await opened()
    const p = c.request({ type: 'WriteValue', point_id: 1, value: 2 })
    const rid = last(s.sent).request_id
    s.receive({ type: 'Error', request_id: rid, code: 'forbidden', message: 'operators only' })
    await expect(p).rejects.toMatchObject({ message: 'operators only', code: 'forbidden' })
  })

  it('rejects when no reply comes in time', async () => {
    const { c, s } = await opened()
    const p = c.request({ type: 'Ping' })
    const caught = p.catch((e: Error) => e)
    await vi.advanceTimersByTimeAsync(4_999)
    s.receive({ type: 'Pong', request_id: 'other' })
    await vi.advanceTimersByTimeAsync(1)
    const e = await caught
    expect(e).toBeInstanceOf(Error)
    expect((e as Error).message).toMatch(/no answer to Ping within 5 s/)
    // A late reply is ignored.
    s.receive({ type: 'Pong', request_id: last(s.ofType('Ping')).request_id })
  })

  it('rejects on disconnect, and at once when not connected', async () => {
    const { c, s } = await opened()
    const p = c.request({ type: 'Ping' })
    s.drop()
    await expect(p).rejects.toThrow('connection lost')
    await expect(c.request({ type: 'Ping' })).rejects.toThrow('not connected')
  })
})

describe('dead connections', () => {
  it('pings a quiet connection every 2 s and keeps one that answers', async () => {
    const { c, s } = await opened()
    for (let i = 0; i < 6; i++) {
      await vi.advanceTimersByTimeAsync(2_000)
      const ping = last(s.ofType('Ping'))
      s.receive({ type: 'Pong', request_id: ping.request_id })
    }
    expect(s.ofType('Ping')).toHaveLength(6)
    expect(s.closed).toBeNull()
    expect(c.state.value).toBe('open')
  })

  it('sends no Ping while messages keep coming', async () => {
    const { s } = await opened()
    for (let i = 0; i < 20; i++) {
      await vi.advanceTimersByTimeAsync(1_000)
      s.receive({ type: 'PointUpdate', point_id: 1, value: i })
    }
    expect(s.ofType('Ping')).toHaveLength(0)
    expect(s.closed).toBeNull()
  })

  it('gives up a connection whose Ping gets no answer, within 8 s of its last message, and reconnects', async () => {
    const { c, s } = await opened()
    // Quiet for 2 s: a Ping. No answer for more than 4 s after it: dead.
    await vi.advanceTimersByTimeAsync(6_000)
    expect(s.ofType('Ping')).toHaveLength(1)
    expect(c.state.value).toBe('open')
    await vi.advanceTimersByTimeAsync(1_000)
    expect(s.closed?.code).toBe(4000)
    expect(c.state.value).toBe('reconnecting')
    expect(c.lostReason.value).toMatch(/no answer to a ping/)
    // The browser's own close event later changes nothing.
    s.drop()
    expect(c.attempts.value).toBe(1)
    await vi.advanceTimersByTimeAsync(c.backoff(1))
    expect(sockets).toHaveLength(2)
    sockets[1].open()
    sockets[1].welcome()
    expect(c.state.value).toBe('open')
    expect(c.lostReason.value).toBeNull()
  })

  it('gives up an attempt that brings no Welcome within 10 s and tries again', async () => {
    const c = connection()
    c.start()
    // The TCP connection is taken, but the server never answers the upgrade: the socket never opens.
    await vi.advanceTimersByTimeAsync(9_000)
    expect(sockets[0].closed).toBeNull()
    await vi.advanceTimersByTimeAsync(1_500)
    expect(sockets[0].closed?.code).toBe(4000)
    expect(c.state.value).toBe('reconnecting')
    await vi.advanceTimersByTimeAsync(c.backoff(1))
    expect(sockets).toHaveLength(2)
  })

  it('lost() drops the connection at once and retryNow() skips the wait', async () => {
    const { c, s } = await opened()
    c.lost('the browser is offline')
    expect(s.closed?.code).toBe(4000)
    expect(c.state.value).toBe('reconnecting')
    expect(c.nextAttemptAt.value).not.toBeNull()
    c.retryNow()
    expect(sockets).toHaveLength(2)
    // Without a socket lost() does nothing; while connected retryNow() does nothing.
    c.stop()
    c.lost('again')
    expect(c.state.value).toBe('closed')
  })
})

describe('what is live', () => {
  it('a message is live while the connection it came over is open, and not after a reconnect until it is sent again', async () => {
    const { c, s } = await opened()
    const seen: Record<string, unknown>[] = []
    c.on('PointUpdate', (u) => seen.push(u as unknown as Record<string, unknown>))
    c.on('DeviceStatus', (u) => seen.push(u as unknown as Record<string, unknown>))
    s.receive({ type: 'PointUpdates', updates: [{ type: 'PointUpdate', point_id: 1, value: 1 }] })
    s.receive({ type: 'DeviceStatus', device_id: 4, online: true })
    const [u1, d4] = seen
    expect(c.isLive(u1)).toBe(true)
    expect(c.isLive(d4)).toBe(true)
    expect(c.isCurrent(c.epochOf(u1))).toBe(true)
    expect(c.isLive({ point_id: 1 })).toBe(false)
    expect(c.isLive(null)).toBe(false)

    s.drop()
    expect(c.isLive(u1)).toBe(false)
    await vi.advanceTimersByTimeAsync(c.backoff(1))
    const s2 = sockets[1]
    s2.open()
    s2.welcome()
    // Open again, but the old update came over the old connection: stale until the snapshot.
    expect(c.state.value).toBe('open')
    expect(c.isLive(u1)).toBe(false)
    s2.receive({ type: 'PointUpdate', point_id: 1, value: 2, snapshot: true })
    expect(c.isLive(seen[2])).toBe(true)
    expect(c.isLive(u1)).toBe(false)
  })

  it('isLive is reactive: a computed that reads it changes when the connection drops', async () => {
    const { c, s } = await opened()
    let u: object | null = null
    c.on('PointUpdate', (m) => (u = m))
    s.receive({ type: 'PointUpdate', point_id: 1, value: 1 })
    const live = computed(() => c.isLive(u))
    expect(live.value).toBe(true)
    s.drop()
    expect(live.value).toBe(false)
  })
})

describe('useLivePoints', () => {
  it('a second follower of a point starts from its latest update, which is forgotten once nobody follows it', async () => {
    const { c, s } = await opened()
    const a = effectScope()
    const first = a.run(() => useLivePoints(ref([5]), c))!
    await flush()
    s.receive({ type: 'PointUpdate', point_id: 5, value: 50, snapshot: true })
    expect(first.values.get(5)?.value).toBe(50)
    // The server sends no snapshot for a point already followed: the second starts from the latest.
    s.sent = []
    const b = effectScope()
    const second = b.run(() => useLivePoints(ref([5]), c))!
    await flush()
    expect(s.ofType('Subscribe')).toHaveLength(0)
    expect(second.values.get(5)?.value).toBe(50)
    expect(c.isLive(second.values.get(5))).toBe(true)
    a.stop()
    b.stop()
    expect(c.latestPoint(5)).toBeUndefined()
  })

  it('keeps the latest update of the followed points and follows a changing set', async () => {
    const { c, s } = await opened()
    const ids = ref([1, 2])
    const scope = effectScope()
    const live = scope.run(() => useLivePoints(ids, c))!
    await flush()
    expect(last(s.ofType('Subscribe'))).toMatchObject({ points: [1, 2] })
    s.receive({ type: 'PointUpdate', point_id: 1, value: 10 })
    s.receive({ type: 'PointUpdate', point_id: 3, value: 30 })
    s.receive({ type: 'PointUpdate', point_id: 1, value: 11 })
    expect(live.values.get(1)?.value).toBe(11)
    expect(live.values.has(3)).toBe(false)
    s.sent = []
    ids.value = [1, 3]
    await nextTick()
    await flush()
    expect(s.sent).toEqual([
      expect.objectContaining({ type: 'Unsubscribe', points: [2] }),
      expect.objectContaining({ type: 'Subscribe', points: [3] }),
    ])
    s.sent = []
    scope.stop()
    await flush()
    expect(s.sent).toEqual([expect.objectContaining({ type: 'Unsubscribe' })])
    expect([...(s.sent[0].points as number[])].sort()).toEqual([1, 3])
    s.receive({ type: 'PointUpdate', point_id: 1, value: 12 })
    expect(live.values.get(1)?.value).toBe(11)
  })
})
