// The live connection to /api/t3000/ws: one per page, shared by every component.
//
// Components declare what they want to follow (points, devices, alarms, schedules, system status);
// the connection keeps a reference count per point and device and sends Subscribe / Unsubscribe
// only for what changed, batched per tick. When the socket drops it reconnects with exponential
// backoff and jitter and subscribes again to everything still wanted, so the server sends fresh
// snapshots. Replies are matched to requests by `request_id`. Point changes are asked for in
// batches (`batch: true`: one PointUpdates frame per write of the server) and handed to the
// PointUpdate handlers one by one.
import { getCurrentScope, onScopeDispose, ref, shallowReactive, watch, type Ref } from 'vue'
import type { PointUpdate, ServerMessage, Welcome } from '../api/ws-types'

export type ConnectionState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed'

/** What a component follows. Booleans are counted like ids. */
export interface Interest {
  points?: number[]
  devices?: number[]
  alarms?: boolean
  schedules?: boolean
  system?: boolean
}

interface SocketLike {
  readyState: number
  send(data: string): void
  close(code?: number, reason?: string): void
  onopen: ((ev: unknown) => void) | null
  onclose: ((ev: { code: number; reason: string }) => void) | null
  onmessage: ((ev: { data: unknown }) => void) | null
  onerror: ((ev: unknown) => void) | null
}

export interface LiveOptions {
  /** The ws:// or wss:// address, without the token. */
  url: () => string
  /** The bearer token; with none the connection stays closed. */
  token: () => string | null
  createSocket?: (url: string) => SocketLike
  initialDelayMs?: number
  maxDelayMs?: number
  /** Milliseconds a request waits for its reply. */
  requestTimeoutMs?: number
  random?: () => number
}

type Handler<M> = (m: M) => void
const OPEN = 1

export class LiveConnection {
  readonly state: Ref<ConnectionState> = ref('idle')
  /** Failed attempts since the last good connection. */
  readonly attempts = ref(0)
  /** When the next attempt is due (epoch ms), while reconnecting. */
  readonly nextAttemptAt = ref<number | null>(null)
  readonly welcome = ref<Welcome | null>(null)
  /** Updates missed because this page fell behind (the server's Lagged messages). */
  readonly missed = ref(0)

  private socket: SocketLike | null = null
  private wanted = false
  private timer: ReturnType<typeof setTimeout> | null = null
  private pingTimer: ReturnType<typeof setInterval> | null = null
  private lastHeard = 0
  private handlers = new Map<string, Set<Handler<never>>>()
  private pointRefs = new Map<number, number>()
  private deviceRefs = new Map<number, number>()
  private flagRefs = { alarms: 0, schedules: 0, system: 0 }
  private pending: { sub: Interest; unsub: Interest } = { sub: {}, unsub: {} }
  private flushQueued = false
  private nextId = 1
  private waiting = new Map<string, { resolve: (m: ServerMessage) => void; reject: (e: Error) => void; timer: ReturnType<typeof setTimeout> }>()

  constructor(private opts: LiveOptions) {}

  /** Connects (and keeps reconnecting) until stop(). */
  start() {
    this.wanted = true
    if (!this.socket && this.timer === null) this.connect()
  }

  /** Closes the socket and stops reconnecting (logout). Interests are kept for the next start(). */
  stop() {
    this.wanted = false
    this.clearTimers()
    const s = this.socket
    this.socket = null
    if (s) {
      s.onclose = null
      s.close(1000, 'closed by the page')
    }
    this.failWaiting(new Error('connection closed'))
    this.state.value = 'closed'
  }

  /** Calls `fn` for every message of `type`; returns the function that stops it. */
  on<K extends ServerMessage['type']>(type: K, fn: Handler<Extract<ServerMessage, { type: K }>>): () => void {
    let set = this.handlers.get(type)
    if (!set) this.handlers.set(type, (set = new Set()))
    set.add(fn as Handler<never>)
    return () => set!.delete(fn as Handler<never>)
  }

  /** Follows `interest` until the returned function is called. */
  follow(interest: Interest): () => void {
    const points = [...new Set(interest.points ?? [])]
    const devices = [...new Set(interest.devices ?? [])]
    for (const p of points) if (inc(this.pointRefs, p)) this.queue('sub', 'points', p)
    for (const d of devices) if (inc(this.deviceRefs, d)) this.queue('sub', 'devices', d)
    for (const f of ['alarms', 'schedules', 'system'] as const) {
      if (interest[f] && this.flagRefs[f]++ === 0) this.queueFlag('sub', f)
    }
    let released = false
    return () => {
      if (released) return
      released = true
      for (const p of points) if (dec(this.pointRefs, p)) this.queue('unsub', 'points', p)
      for (const d of devices) if (dec(this.deviceRefs, d)) this.queue('unsub', 'devices', d)
      for (const f of ['alarms', 'schedules', 'system'] as const) {
        if (interest[f] && --this.flagRefs[f] === 0) this.queueFlag('unsub', f)
      }
    }
  }

  /** Sends a client message with a fresh request_id and resolves with its reply (rejects on Error). */
  request(msg: Record<string, unknown> & { type: string }): Promise<ServerMessage> {
    const s = this.socket
    if (!s || s.readyState !== OPEN) return Promise.reject(new Error('not connected to the server'))
    const request_id = `r${this.nextId++}`
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(request_id)
        reject(new Error(`no answer to ${msg.type} within ${(this.opts.requestTimeoutMs ?? 10_000) / 1000} s`))
      }, this.opts.requestTimeoutMs ?? 10_000)
      this.waiting.set(request_id, { resolve, reject, timer })
      s.send(JSON.stringify({ ...msg, request_id }))
    })
  }

  /** The points followed now (for tests and the status view). */
  followedPoints(): number[] {
    return [...this.pointRefs.keys()].sort((a, b) => a - b)
  }

  private queue(kind: 'sub' | 'unsub', what: 'points' | 'devices', id: number) {
    const other = kind === 'sub' ? this.pending.unsub : this.pending.sub
    const o = other[what]
    const i = o ? o.indexOf(id) : -1
    if (o && i >= 0) o.splice(i, 1) // Wanted again (or dropped again) before the flush.
    else (this.pending[kind][what] ??= []).push(id)
    this.scheduleFlush()
  }

  private queueFlag(kind: 'sub' | 'unsub', f: 'alarms' | 'schedules' | 'system') {
    const other = kind === 'sub' ? this.pending.unsub : this.pending.sub
    if (other[f]) delete other[f] // Wanted again (or dropped again) before the flush.
    else this.pending[kind][f] = true
    this.scheduleFlush()
  }

  private scheduleFlush() {
    if (this.flushQueued) return
    this.flushQueued = true
    queueMicrotask(() => {
      this.flushQueued = false
      this.flush()
    })
  }

  private flush() {
    const { sub, unsub } = this.pending
    this.pending = { sub: {}, unsub: {} }
    const s = this.socket
    if (!s || s.readyState !== OPEN) return // Everything still wanted is sent on open.
    if (hasAny(unsub)) this.send({ type: 'Unsubscribe', ...unsub })
    if (hasAny(sub)) this.send({ type: 'Subscribe', batch: true, ...sub })
  }

  private send(msg: Record<string, unknown>) {
    const request_id = `r${this.nextId++}`
    this.socket?.send(JSON.stringify({ ...msg, request_id }))
  }

  private connect() {
    this.timer = null
    const token = this.opts.token()
    if (!this.wanted || !token) {
      this.state.value = 'closed'
      return
    }
    this.state.value = this.attempts.value > 0 ? 'reconnecting' : 'connecting'
    const url = `${this.opts.url()}?token=${encodeURIComponent(token)}`
    const s = (this.opts.createSocket ?? ((u: string) => new WebSocket(u) as unknown as SocketLike))(url)
    this.socket = s
    s.onopen = () => {
      this.lastHeard = Date.now()
      this.startPings()
      this.resubscribe()
    }
    s.onmessage = (ev) => {
      this.lastHeard = Date.now()
      let m: ServerMessage
      try {
        m = JSON.parse(String(ev.data)) as ServerMessage
      } catch {
        return
      }
      this.route(m)
    }
    s.onerror = () => {}
    s.onclose = () => {
      if (this.socket !== s) return
      this.socket = null
      this.stopPings()
      this.failWaiting(new Error('connection lost'))
      if (!this.wanted) {
        this.state.value = 'closed'
        return
      }
      this.attempts.value += 1
      const delay = this.backoff(this.attempts.value)
      this.nextAttemptAt.value = Date.now() + delay
      this.state.value = 'reconnecting'
      this.timer = setTimeout(() => this.connect(), delay)
    }
  }

  /** Delay before attempt `n` (1-based): doubling from the initial delay up to the cap, jittered
   * to between half and all of it so that many pages do not come back at once. */
  backoff(n: number): number {
    const initial = this.opts.initialDelayMs ?? 500
    const max = this.opts.maxDelayMs ?? 30_000
    const full = Math.min(max, initial * 2 ** Math.min(n - 1, 30))
    const r = (this.opts.random ?? Math.random)()
    return Math.round(full * (0.5 + 0.5 * r))
  }

  private resubscribe() {
    this.pending = { sub: {}, unsub: {} }
    const sel: Interest = {}
    if (this.pointRefs.size) sel.points = [...this.pointRefs.keys()]
    if (this.deviceRefs.size) sel.devices = [...this.deviceRefs.keys()]
    for (const f of ['alarms', 'schedules', 'system'] as const) if (this.flagRefs[f] > 0) sel[f] = true
    if (hasAny(sel)) this.send({ type: 'Subscribe', batch: true, ...sel })
  }

  private route(m: ServerMessage) {
    if (m.type === 'PointUpdates') {
      // Subscribed with `batch: true`: the changes written at once come in one frame.
      for (const u of m.updates) this.route(u)
      return
    }
    if (m.type === 'Welcome') {
      this.welcome.value = m
      this.attempts.value = 0
      this.nextAttemptAt.value = null
      this.state.value = 'open'
    } else if (m.type === 'Lagged') {
      this.missed.value += m.missed
    }
    const rid = 'request_id' in m ? m.request_id : undefined
    if (typeof rid === 'string' && this.waiting.has(rid)) {
      const w = this.waiting.get(rid)!
      this.waiting.delete(rid)
      clearTimeout(w.timer)
      if (m.type === 'Error') w.reject(Object.assign(new Error(m.message), { code: m.code }))
      else w.resolve(m)
    }
    const set = this.handlers.get(m.type)
    if (set) for (const fn of set) (fn as Handler<ServerMessage>)(m)
  }

  private startPings() {
    this.stopPings()
    // Ask for a Pong every 10 s; a connection silent for 30 s is dead (a sleeping laptop, a
    // dropped network) even if the browser has not noticed, so close it and reconnect.
    this.pingTimer = setInterval(() => {
      const s = this.socket
      if (!s) return
      if (Date.now() - this.lastHeard > 30_000) {
        s.close(4000, 'server silent')
        s.onclose?.({ code: 4000, reason: 'server silent' })
        return
      }
      if (s.readyState === OPEN) this.send({ type: 'Ping' })
    }, 10_000)
  }

  private stopPings() {
    if (this.pingTimer !== null) clearInterval(this.pingTimer)
    this.pingTimer = null
  }

  private clearTimers() {
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
    this.nextAttemptAt.value = null
    this.stopPings()
  }

  private failWaiting(e: Error) {
    for (const w of this.waiting.values()) {
      clearTimeout(w.timer)
      w.reject(e)
    }
    this.waiting.clear()
  }
}

function inc(m: Map<number, number>, k: number): boolean {
  const n = (m.get(k) ?? 0) + 1
  m.set(k, n)
  return n === 1
}
function dec(m: Map<number, number>, k: number): boolean {
  const n = (m.get(k) ?? 0) - 1
  if (n <= 0) m.delete(k)
  else m.set(k, n)
  return n <= 0
}
function hasAny(i: Interest): boolean {
  return !!(i.points?.length || i.devices?.length || i.alarms || i.schedules || i.system)
}

let shared: LiveConnection | null = null

/** The page's live connection (created on first use). */
export function useWebSocket(): LiveConnection {
  if (!shared) {
    shared = new LiveConnection({
      url: () => `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/t3000/ws`,
      token: () => {
        try {
          return (JSON.parse(localStorage.getItem('t3000.session') ?? 'null') as { token?: string } | null)?.token ?? null
        } catch {
          return null
        }
      },
    })
  }
  return shared
}

/**
 * Live values of `ids` (a ref, so the set can follow what is on screen): a reactive map from
 * point id to its latest update. Stops following when the calling component goes away.
 */
export function useLivePoints(ids: Ref<number[]>, conn: LiveConnection = useWebSocket()) {
  const values = shallowReactive(new Map<number, PointUpdate>())
  let release: () => void = () => {}
  let watched = new Set<number>()
  const off = conn.on('PointUpdate', (u) => {
    if (watched.has(u.point_id)) values.set(u.point_id, u)
  })
  const stop = watch(
    ids,
    (now) => {
      const next = new Set(now)
      for (const k of [...values.keys()]) if (!next.has(k)) values.delete(k)
      watched = next
      const old = release
      release = conn.follow({ points: [...next] })
      old()
    },
    { immediate: true },
  )
  const dispose = () => {
    stop()
    off()
    release()
  }
  if (getCurrentScope()) onScopeDispose(dispose)
  return { values, dispose }
}

/** Follows `interest` while the calling component lives, calling `handlers` for its messages. */
export function useLive(interest: Interest, conn: LiveConnection = useWebSocket()) {
  const release = conn.follow(interest)
  if (getCurrentScope()) onScopeDispose(release)
  return release
}
