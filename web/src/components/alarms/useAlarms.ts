// The open alarms (every rule whose alarm is not normal), shared by the Alarms page, the
// dashboard tile and the top bar's bell: loaded from GET /alarms, then kept current by the
// AlarmNotification messages of the live connection. After every (re)connection the list is
// loaded again, since notifications sent while the page was offline are lost.
//
// New alarms are cued: the row flashes for a few seconds and, while some component asked for
// sound, a beep plays (once, however many components show alarms).
import { computed, getCurrentScope, onScopeDispose, reactive, ref, shallowRef } from 'vue'
import { api, API } from '../../api/client'
import type { AlarmEvent, AlarmView } from '../../api/types'
import type { AlarmNotification } from '../../api/ws-types'
import { explain, type Problem } from '../../lib/errors'
import { useWebSocket, type LiveConnection } from '../../composables/useWebSocket'
import { beep, listenForGesture } from './alarmSound'

/** A row of the list: the view plus what the notifications told. */
export interface AlarmRow extends AlarmView {
  value?: number | null
  by?: string | null
  severity?: string
}

/** How long a new alarm's row flashes. */
export const FLASH_MS = 6000

/** `critical` for the way limits, offline devices, data loss and the server's own faults, else `warning` (as the server's severity). */
export function severityOf(level: string | null | undefined): 'critical' | 'warning' {
  return level === 'waylow' || level === 'wayhigh' || level === 'offline' || level === 'data_loss' || level === 'fault' ? 'critical' : 'warning'
}

/** When the alarm started (epoch µs): its raise, kept through its acknowledgement. */
export function startOf(r: AlarmView): number {
  return r.started_us ?? r.since_us ?? 0
}

/** Whether the alarm waits for an acknowledgement. */
export function needsAck(state: string): boolean {
  return state === 'active' || state === 'cleared'
}

const rows = reactive(new Map<number, AlarmRow>())
const flashing = reactive(new Set<number>())
const loading = ref(false)
const error = shallowRef<Problem | null>(null)
const loaded = ref(false)
/** Time of the last load (epoch ms). */
const loadedAt = shallowRef<number | null>(null)

let users = 0
let soundUsers = 0
let teardown: (() => void)[] = []
let generation = 0
/** Rules changed by a notification since this time (epoch µs) are newer than a running load. */
const touched = new Map<number, number>()
const flashTimers = new Map<number, ReturnType<typeof setTimeout>>()
const listeners = new Set<(n: AlarmNotification) => void>()

async function load() {
  const gen = ++generation
  const started = Date.now() * 1000
  loading.value = true
  try {
    const list = await api.get<AlarmView[]>(`${API}/alarms`)
    if (gen !== generation) return
    const seen = new Set<number>()
    for (const v of list) {
      seen.add(v.rule_id)
      // A notification that arrived while the list was on its way is newer: keep it.
      if ((touched.get(v.rule_id) ?? 0) >= started) continue
      rows.set(v.rule_id, { ...rows.get(v.rule_id), ...v })
    }
    for (const id of [...rows.keys()]) {
      if (!seen.has(id) && (touched.get(id) ?? 0) < started) rows.delete(id)
    }
    error.value = null
    loaded.value = true
    loadedAt.value = Date.now()
  } catch (e) {
    if (gen === generation) error.value = explain(e)
  } finally {
    if (gen === generation) loading.value = false
  }
}

function flash(id: number) {
  flashing.add(id)
  const old = flashTimers.get(id)
  if (old) clearTimeout(old)
  flashTimers.set(
    id,
    setTimeout(() => {
      flashing.delete(id)
      flashTimers.delete(id)
    }, FLASH_MS),
  )
}

/** Applies one notification to the list (exported for the unit tests). */
function applyNotification(n: AlarmNotification) {
  touched.set(n.alarm_id, Date.now() * 1000)
  const at = n.timestamp
  if (n.state === 'normal') {
    rows.delete(n.alarm_id)
  } else {
    const old = rows.get(n.alarm_id)
    const atUs = Number.isFinite(at) && at > 0 ? at * 1000 : null
    // A raise starts the alarm; everything after it (acknowledgement, level change, clearing)
    // keeps its start, and so does a raise of an alarm that is on (a new fault under a system
    // alarm that gathers several: devices offline, programs in error).
    const raised = !old || (n.alarm_type === 'raised' && old.state !== 'active' && old.state !== 'acknowledged')
    const acked = n.state === 'acknowledged' && n.alarm_type === 'acknowledged'
    rows.set(n.alarm_id, {
      rule_id: n.alarm_id,
      name: n.name,
      point_id: n.point_id || null,
      device_id: n.device_id || null,
      // The server sends the name when the rule has no message of its own.
      message: n.message && n.message !== n.name ? n.message : null,
      state: n.state,
      level: n.level,
      since_us: atUs ?? old?.since_us ?? null,
      started_us: raised ? (atUs ?? old?.started_us ?? null) : (old?.started_us ?? old?.since_us ?? atUs),
      acknowledged_us: n.state !== 'acknowledged' ? null : acked ? atUs : (old?.acknowledged_us ?? null),
      acknowledged_by: n.state !== 'acknowledged' ? null : acked ? (n.by ?? null) : (old?.acknowledged_by ?? null),
      value: n.value ?? old?.value ?? null,
      by: n.by ?? (n.state === 'acknowledged' ? old?.by : null),
      severity: n.severity_name,
    })
  }
  const isNew = n.state === 'active' && (n.alarm_type === 'raised' || n.alarm_type === 'level_changed')
  if (isNew) {
    flash(n.alarm_id)
    if (soundUsers > 0) beep()
  }
  for (const fn of listeners) fn(n)
}

function begin(conn: LiveConnection) {
  let reloadOnSubscribed = true
  teardown = [
    conn.follow({ alarms: true }),
    conn.on('AlarmNotification', applyNotification),
    // After a (re)connection, load again once the alarm feed is subscribed, so that nothing
    // between the two is lost.
    conn.on('Welcome', () => {
      reloadOnSubscribed = true
    }),
    conn.on('Subscribed', (m) => {
      if (reloadOnSubscribed && m.alarms === true) {
        reloadOnSubscribed = false
        void load()
      }
    }),
  ]
  void load()
}

function end() {
  for (const fn of teardown) fn()
  teardown = []
  generation++
  for (const t of flashTimers.values()) clearTimeout(t)
  flashTimers.clear()
  flashing.clear()
  rows.clear()
  touched.clear()
  loaded.value = false
  loading.value = false
  error.value = null
}

export interface AlarmStoreOptions {
  /** Beep on new alarms while this component lives. */
  sound?: boolean
  conn?: LiveConnection
}

/**
 * The shared open-alarm list. Each caller counts as a user while its component lives; the list
 * follows the live feed while there is at least one.
 */
export function useAlarms(opts: AlarmStoreOptions = {}) {
  const conn = opts.conn ?? useWebSocket()
  if (users++ === 0) begin(conn)
  if (opts.sound) {
    soundUsers++
    listenForGesture()
  }
  let released = false
  const release = () => {
    if (released) return
    released = true
    if (opts.sound) soundUsers--
    if (--users === 0) end()
  }
  if (getCurrentScope()) onScopeDispose(release)

  const list = computed(() =>
    [...rows.values()].sort((a, b) => {
      // Waiting for an acknowledgement first, then the most severe, then the newest.
      const w = Number(needsAck(b.state)) - Number(needsAck(a.state))
      if (w) return w
      const s = Number(severityOf(b.level) === 'critical') - Number(severityOf(a.level) === 'critical')
      if (s) return s
      return startOf(b) - startOf(a)
    }),
  )
  const byState = (s: string) => computed(() => list.value.filter((r) => r.state === s).length)

  /** Acknowledges through the REST API; the list changes when the notification (or answer) comes. */
  async function acknowledge(id: number): Promise<AlarmEvent> {
    const e = await api.post<AlarmEvent>(`${API}/alarms/${id}/ack`)
    const t = e.transition
    const old = rows.get(id)
    // Unless the notification of this acknowledgement (or of something later) came first.
    if (old && old.state === t.from) {
      touched.set(id, Date.now() * 1000)
      if (t.to === 'normal') rows.delete(id)
      else
        rows.set(id, {
          ...old,
          state: t.to,
          by: t.kind.by ?? null,
          since_us: t.at_us,
          // The alarm started when it was raised, not now.
          started_us: old.started_us ?? old.since_us,
          acknowledged_us: t.at_us,
          acknowledged_by: t.kind.by ?? null,
        })
    }
    return e
  }

  return {
    list,
    loading,
    error,
    loaded,
    loadedAt,
    /** Active: present and not acknowledged. */
    activeCount: byState('active'),
    acknowledgedCount: byState('acknowledged'),
    clearedCount: byState('cleared'),
    /** Still in alarm (the condition is present): active or acknowledged. */
    inAlarmCount: computed(() => list.value.filter((r) => r.state === 'active' || r.state === 'acknowledged').length),
    /** Waiting for an acknowledgement (active or cleared). */
    unackedCount: computed(() => list.value.filter((r) => needsAck(r.state)).length),
    openCount: computed(() => list.value.length),
    isFlashing: (id: number) => flashing.has(id),
    reload: load,
    acknowledge,
    /** Calls `fn` for every notification while the calling component lives. */
    onNotification(fn: (n: AlarmNotification) => void) {
      listeners.add(fn)
      const off = () => listeners.delete(fn)
      if (getCurrentScope()) onScopeDispose(off)
      return off
    },
    release,
  }
}
