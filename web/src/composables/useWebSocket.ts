// The live connection to /api/t3000/ws: one per page, shared by every component.
//
// Components declare what they want to follow (points, devices, alarms, schedules, programs, system status);
// the connection keeps a reference count per point and device and sends Subscribe / Unsubscribe
// only for what changed, batched per tick. When the socket drops it reconnects with exponential
// backoff and jitter and subscribes again to everything still wanted, so the server sends fresh
// snapshots. Replies are matched to requests by `request_id`. Point changes are asked for in
// batches (`batch: true`: one PointUpdates frame per write of the server) and handed to the
// PointUpdate handlers one by one.
//
// The session token never goes in the connection's address (browsers print the address of a
// connection that fails in the console, and servers and proxies log it): right before each attempt
// the connection asks for a single-use ticket over REST (POST /api/t3000/ws/ticket, with the bearer
// token in its header) and connects with `?ticket=`. A ticket opens one connection within 30 s, so
// an address that shows up anywhere afterwards opens nothing. A 401 from the ticket call means the
// session has ended: the REST client logs out as for any 401, and no attempt follows.
//
// A dead connection is found within seconds even when the browser has not noticed (a dropped
// network keeps a socket "open" for minutes): a connection quiet for `idlePingMs` gets a Ping, and
// one that answers nothing within `pongTimeoutMs` is closed and reconnected, so the page says
// "Offline" within about 8 s. Every message is stamped with the connection it came over (`epoch`):
// `isLive(m)` is true only while that connection is open, so values and device states shown from
// an older connection read as stale until the snapshot of the new one replaces them.
import { getCurrentScope, onScopeDispose, ref, shallowReactive, toRaw, watch, type Ref } from 'vue'
import { api, API } from '../api/client'
import type { DeviceStatus, PointUpdate, ServerMessage, Welcome } from '../api/ws-types'

export type ConnectionState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed'

/** What a component follows. Booleans are counted like ids. */
export interface Interest {
  points?: number[]
  devices?: number[]
  alarms?: boolean
  schedules?: boolean
  programs?: boolean
  system?: boolean
}

/** The interests that are one flag (followed or not) rather than a list of ids. */
const FLAGS = ['alarms', 'schedules', 'programs', 'system'] as const
type Flag = (typeof FLAGS)[number]

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
  /** The ws:// or wss:// address, without any credential. */
  url: () => string
  /** The bearer token; with none the connection stays closed. It never goes in the address. */
  token: () => string | null
  /**
   * A single-use ticket for the next attempt (default: POST /api/t3000/ws/ticket through the REST
   * client), asked for right before each one. An error with `status` 401 means the session ended.
   */
  ticket?: () => string | Promise<string>
  createSocket?: (url: string) => SocketLike
  initialDelayMs?: number
  maxDelayMs?: number
  /** Milliseconds a request waits for its reply. */
  requestTimeoutMs?: number
  /** A connection that heard nothing for this long sends a Ping (ms; 2 s). */
  idlePingMs?: number
  /** A Ping followed by no message at all for this long means the connection is dead (ms; 4 s). */
  pongTimeoutMs?: number
  /** An attempt that brings no Welcome within this long is given up and retried (ms; 10 s). */
  connectTimeoutMs?: number
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
  /** The connection number: one more at every Welcome. Messages are stamped with it. */
  readonly epoch = ref(0)
  /** Why the last connection was given up for dead (null while it is fine). */
  readonly lostReason = ref<string | null>(null)

  private socket: SocketLike | null = null
  private wanted = false
  /** Waiting for the ticket of the current attempt. */
  private asking = false
  /** The current attempt; a ticket that comes for an older one is dropped. */
  private attempt = 0
  private timer: ReturnType<typeof setTimeout> | null = null
  private pingTimer: ReturnType<typeof setInterval> | null = null
  private connectTimer: ReturnType<typeof setTimeout> | null = null
  private lastHeard = 0
  /** When the Ping still waiting for an answer was sent (0: none). */
  private pingSentAt = 0
  private stamps = new WeakMap<object, number>()
  /** The latest message of each followed point and device: a component that starts following
   * what another already follows gets no snapshot from the server, so it starts from these. */
  private lastPoint = new Map<number, PointUpdate>()
  private lastDevice = new Map<number, DeviceStatus>()
  private handlers = new Map<string, Set<Handler<never>>>()
  private pointRefs = new Map<number, number>()
  private deviceRefs = new Map<number, number>()
  private flagRefs: Record<Flag, number> = { alarms: 0, schedules: 0, programs: 0, system: 0 }
  private pending: { sub: Interest; unsub: Interest } = { sub: {}, unsub: {} }
  private flushQueued = false
  private nextId = 1
  private waiting = new Map<string, { resolve: (m: ServerMessage) => void; reject: (e: Error) => void; timer: ReturnType<typeof setTimeout> }>()

  constructor(private opts: LiveOptions) {}

  /** Connects (and keeps reconnecting) until stop(). */
  start() {
    this.wanted = true
    if (!this.socket && this.timer === null && !this.asking) this.connect()
  }

  /** Closes the socket and stops reconnecting (logout). Interests are kept for the next start(). */
  stop() {
    this.wanted = false
    this.asking = false
    this.attempt += 1
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
    for (const f of FLAGS) {
      if (interest[f] && this.flagRefs[f]++ === 0) this.queueFlag('sub', f)
    }
    let released = false
    return () => {
      if (released) return
      released = true
      for (const p of points) {
        if (dec(this.pointRefs, p)) {
          this.lastPoint.delete(p)
          this.queue('unsub', 'points', p)
        }
      }
      for (const d of devices) {
        if (dec(this.deviceRefs, d)) {
          this.lastDevice.delete(d)
          this.queue('unsub', 'devices', d)
        }
      }
      for (const f of FLAGS) {
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

  /** The latest update of a followed point (undefined before its snapshot, or when not followed). */
  latestPoint(id: number): PointUpdate | undefined {
    return this.lastPoint.get(id)
  }

  /** The latest status of a followed device (undefined before its snapshot, or when not followed). */
  latestDevice(id: number): DeviceStatus | undefined {
    return this.lastDevice.get(id)
  }

  /** The connection a received message came over (its `epoch`); -1 for any other object. */
  epochOf(m: object | null | undefined): number {
    return m ? (this.stamps.get(toRaw(m)) ?? -1) : -1
  }

  /** Whether what came over connection `epoch` is current: that connection is the open one. */
  isCurrent(epoch: number | null | undefined): boolean {
    return this.state.value === 'open' && epoch === this.epoch.value
  }

  /** Whether a received message is current (see isCurrent); false for none. Reactive. */
  isLive(m: object | null | undefined): boolean {
    return this.isCurrent(this.epochOf(m))
  }

  /**
   * Gives the connection up as dead now (the browser went offline, no answer to a Ping) and
   * reconnects with backoff. Nothing happens without a socket.
   */
  lost(reason: string) {
    const s = this.socket
    if (!s) return
    this.lostReason.value = reason
    s.close(4000, reason.slice(0, 120))
    s.onclose?.({ code: 4000, reason })
  }

  /** Tries again at once if waiting to reconnect (the browser is back online). */
  retryNow() {
    if (this.wanted && !this.socket && this.timer !== null) {
      clearTimeout(this.timer)
      this.connect()
    }
  }

  private queue(kind: 'sub' | 'unsub', what: 'points' | 'devices', id: number) {
    const other = kind === 'sub' ? this.pending.unsub : this.pending.sub
    const o = other[what]
    const i = o ? o.indexOf(id) : -1
    if (o && i >= 0) o.splice(i, 1) // Wanted again (or dropped again) before the flush.
    else (this.pending[kind][what] ??= []).push(id)
    this.scheduleFlush()
  }

  private queueFlag(kind: 'sub' | 'unsub', f: Flag) {
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

  /** An attempt: asks for a ticket, then opens the socket with it (see `open`). */
  private connect() {
    this.timer = null
    if (!this.wanted || !this.opts.token()) {
      this.state.value = 'closed'
      return
    }
    this.state.value = this.attempts.value > 0 ? 'reconnecting' : 'connecting'
    const attempt = ++this.attempt
    this.clearConnectTimer()
    // One limit for the whole attempt: the ticket, the handshake and the Welcome.
    this.connectTimer = setTimeout(() => {
      this.connectTimer = null
      if (this.attempt !== attempt) return
      if (this.asking) {
        this.asking = false
        this.attempt += 1
        this.lostReason.value = 'no answer from the server'
        this.retryLater()
      } else if (this.socket && this.state.value !== 'open') this.lost('no answer from the server')
    }, this.opts.connectTimeoutMs ?? 10_000)
    const failed = (e: unknown) => {
      if (this.attempt !== attempt || !this.wanted) return
      this.asking = false
      this.clearConnectTimer()
      if ((e as { status?: number } | null)?.status === 401) {
        // The session has ended; the REST client has logged out, which stops this connection.
        this.state.value = 'closed'
        return
      }
      this.lostReason.value = (e as Error | null)?.message || 'no answer from the server'
      this.retryLater()
    }
    let ticket: string | Promise<string>
    try {
      ticket = (this.opts.ticket ?? askTicket)()
    } catch (e) {
      failed(e)
      return
    }
    if (typeof ticket === 'string') {
      this.open(ticket)
      return
    }
    this.asking = true
    ticket.then((t) => {
      if (this.attempt !== attempt || !this.wanted) return
      this.asking = false
      this.open(t)
    }, failed)
  }

  /** Opens the socket of the current attempt with its ticket. */
  private open(ticket: string) {
    const url = `${this.opts.url()}?ticket=${encodeURIComponent(ticket)}`
    const s = (this.opts.createSocket ?? ((u: string) => new WebSocket(u) as unknown as SocketLike))(url)
    this.socket = s
    s.onopen = () => {
      this.lastHeard = Date.now()
      this.pingSentAt = 0
      this.startPings()
      this.resubscribe()
    }
    s.onmessage = (ev) => {
      if (this.socket !== s) return
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
      this.clearConnectTimer()
      this.failWaiting(new Error('connection lost'))
      if (!this.wanted) {
        this.state.value = 'closed'
        return
      }
      this.retryLater()
    }
  }

  /** Schedules the next attempt with backoff. */
  private retryLater() {
    this.attempts.value += 1
    const delay = this.backoff(this.attempts.value)
    this.nextAttemptAt.value = Date.now() + delay
    this.state.value = 'reconnecting'
    this.timer = setTimeout(() => this.connect(), delay)
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
    for (const f of FLAGS) if (this.flagRefs[f] > 0) sel[f] = true
    if (hasAny(sel)) this.send({ type: 'Subscribe', batch: true, ...sel })
  }

  private route(m: ServerMessage) {
    this.stamps.set(m, this.epoch.value)
    if (m.type === 'PointUpdates') {
      // Subscribed with `batch: true`: the changes written at once come in one frame.
      for (const u of m.updates) this.route(u)
      return
    }
    if (m.type === 'Welcome') {
      // A new connection: what came before it is no longer current.
      this.epoch.value += 1
      this.clearConnectTimer()
      this.lostReason.value = null
      this.welcome.value = m
      this.attempts.value = 0
      this.nextAttemptAt.value = null
      this.state.value = 'open'
    } else if (m.type === 'Lagged') {
      this.missed.value += m.missed
    } else if (m.type === 'PointUpdate') {
      if (this.pointRefs.has(m.point_id)) this.lastPoint.set(m.point_id, m)
    } else if (m.type === 'DeviceStatus') {
      if (this.deviceRefs.has(m.device_id)) this.lastDevice.set(m.device_id, m)
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
    // Every second: a connection quiet for idlePingMs gets a Ping; one whose Ping has had no
    // message at all after it for pongTimeoutMs is dead (a dropped network, a sleeping laptop)
    // even if the browser has not noticed, so close it and reconnect. Only an unanswered Ping
    // counts, so a background tab whose timers the browser slows down is not taken for dead.
    const idle = this.opts.idlePingMs ?? 2_000
    const timeout = this.opts.pongTimeoutMs ?? 4_000
    this.pingTimer = setInterval(() => {
      const s = this.socket
      if (!s || s.readyState !== OPEN) return
      const now = Date.now()
      const waiting = this.pingSentAt > 0 && this.lastHeard < this.pingSentAt
      if (waiting && now - this.pingSentAt > timeout) {
        this.lost(`no answer to a ping within ${timeout / 1000} s`)
        return
      }
      if (!waiting && now - this.lastHeard >= idle) {
        this.pingSentAt = now
        this.send({ type: 'Ping' })
      }
    }, Math.min(1_000, idle))
  }

  private stopPings() {
    if (this.pingTimer !== null) clearInterval(this.pingTimer)
    this.pingTimer = null
  }

  private clearConnectTimer() {
    if (this.connectTimer !== null) clearTimeout(this.connectTimer)
    this.connectTimer = null
  }

  private clearTimers() {
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
    this.nextAttemptAt.value = null
    this.stopPings()
    this.clearConnectTimer()
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
  return !!(i.points?.length || i.devices?.length || FLAGS.some((f) => i[f]))
}

/** A ticket for the live connection, asked for with the session's token (POST /api/t3000/ws/ticket). */
async function askTicket(): Promise<string> {
  return (await api.post<{ ticket: string }>(`${API}/ws/ticket`)).ticket
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
    // The browser knows the network is gone (or back) before any Ping could tell.
    if (typeof window !== 'undefined') {
      const conn = shared
      window.addEventListener('offline', () => conn.lost('the browser is offline'))
      window.addEventListener('online', () => conn.retryNow())
    }
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
      // Points another component follows already get no new snapshot: start from the latest.
      for (const id of next) {
        const u = values.has(id) ? undefined : conn.latestPoint(id)
        if (u) values.set(id, u)
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
  return { values, dispose }
}

/** Follows `interest` while the calling component lives, calling `handlers` for its messages. */
export function useLive(interest: Interest, conn: LiveConnection = useWebSocket()) {
  const release = conn.follow(interest)
  if (getCurrentScope()) onScopeDispose(release)
  return release
}
