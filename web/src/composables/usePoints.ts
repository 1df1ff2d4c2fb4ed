// Points as every page reads, changes and commands them (the plan's C2.1 point value reads and
// writes): one description per point (fetched once and shared), the point list and search of
// GET /points, label and trend changes, and commands (write a value, relinquish, the commands in
// force). What people call a point and how its value reads is lib/points.ts.
import { onScopeDispose, reactive, ref, shallowRef, watch } from 'vue'
import { api, API, ApiError, type RequestOptions } from '../api/client'
import type { Command, ManualPoint, Mode, ModeResult, Paged, Point, WirePoint, WriteRequest, WriteResult } from '../api/types'
import { explain, type Problem } from '../lib/errors'

/**
 * A point as the server sends it, with null for what it does not have: a manual point's device
 * and number (0), a missing label or units (`""`), no value (`has_value` false) and so no time.
 */
export function pointFromWire(p: WirePoint | Point): Point {
  const w = p as Partial<WirePoint> & Point
  const noValue = w.has_value === false
  const at = w.updated_at ? Date.parse(w.updated_at) : NaN
  return {
    ...p,
    device_id: w.device_id || null,
    point_number: w.point_type === 'manual' ? null : (w.point_number ?? null),
    value: noValue ? null : (w.value ?? null),
    units: w.units || null,
    label: w.label || null,
    updated_at: Number.isFinite(at) && at > 0 ? w.updated_at : null,
  }
}

/** The filters of GET /points (`q`, `device_id`, `point_type`, `offset`, `limit`, ...). */
export type PointListQuery = NonNullable<RequestOptions['query']>

/** GET /points/{id} (uncached). */
async function get(id: number, signal?: AbortSignal): Promise<Point> {
  return pointFromWire(await api.get<WirePoint>(`${API}/points/${id}`, { signal }))
}

/** PUT /points/{id} (label, description, units, trend): the changed point. */
async function update(id: number, body: Record<string, unknown>): Promise<Point> {
  const p = pointFromWire(await api.put<WirePoint>(`${API}/points/${id}`, body))
  cache.set(id, Promise.resolve(p))
  return p
}

/** GET /points with `query`: a page of points. */
async function list(query: PointListQuery, signal?: AbortSignal): Promise<Paged<Point>> {
  const page = await api.get<Paged<WirePoint>>(`${API}/points`, { query, signal })
  return { ...page, items: page.items.map(pointFromWire) }
}

const cache = new Map<number, Promise<Point>>()

/** One point's description (cached; `fresh` fetches it again; a failed fetch is retried on the next call). */
function cached(id: number, fresh = false): Promise<Point> {
  let p = fresh ? undefined : cache.get(id)
  if (!p) {
    const q = get(id)
    cache.set(id, q)
    q.catch(() => {
      if (cache.get(id) === q) cache.delete(id)
    })
    p = q
  }
  return p
}

/** True when the error says the point does not exist (deleted since it was pinned or placed). */
function isMissing(e: unknown): boolean {
  return e instanceof ApiError && e.status === 404
}

/** GET /points/{id}/commands: the commands in force, the one that drives the point first. */
function commands(id: number, signal?: AbortSignal): Promise<Command[]> {
  return api.get<Command[]>(`${API}/points/${id}/commands`, { signal })
}

/** POST /points/{id}/value: commands `value` at a priority (409 `point_in_auto` for a point its controller drives). */
function write(id: number, req: WriteRequest): Promise<WriteResult> {
  return api.post<WriteResult>(`${API}/points/${id}/value`, req)
}

/** POST /points/{id}/relinquish: empties the priority's slot; the next command in force takes over. */
function relinquish(id: number, priority: number): Promise<WriteResult> {
  return api.post<WriteResult>(`${API}/points/${id}/relinquish`, { priority })
}

/** POST /points/{id}/mode: puts the point in manual or back in auto at its controller (409 `no_auto_manual` without a switch). */
function setMode(id: number, mode: Mode): Promise<ModeResult> {
  return api.post<ModeResult>(`${API}/points/${id}/mode`, { mode })
}

/** GET /points/in-manual: the points in manual, the latest change first, with who and since when. */
async function inManual(signal?: AbortSignal): Promise<Paged<ManualPoint>> {
  const page = await api.get<Paged<ManualPoint<WirePoint>>>(`${API}/points/in-manual`, { query: { limit: 1000 }, signal })
  return { ...page, items: page.items.map((m) => ({ ...m, point: pointFromWire(m.point) })) }
}

/** What a point search asks for: words, and optionally one device or one point type. */
export interface PointQuery {
  q: string
  device_id?: number
  point_type?: string
}

/**
 * Points matching every word of `q` (`ahu var7`) in their name, label, description or device
 * name (the server's search), on `device_id` and of `point_type` when given. Without those, a
 * number also finds the point with that id.
 */
async function search(query: PointQuery, limit: number, signal?: AbortSignal): Promise<{ items: Point[]; total: number }> {
  const text = query.q.trim()
  const filtered = query.device_id !== undefined || query.point_type !== undefined
  const byId = !filtered && /^\d+$/.test(text) ? cached(Number(text)).catch(() => null) : Promise.resolve(null)
  const page = await list({ q: text || undefined, device_id: query.device_id, point_type: query.point_type, limit }, signal)
  const items = page.items
  let total = page.total
  const exact = await byId
  if (exact && !items.some((p) => p.id === exact.id)) {
    items.unshift(exact)
    total++
  }
  return { items: items.slice(0, limit), total }
}

/** The point functions every page uses. */
export function usePoints() {
  return { get, cached, list, update, isMissing, commands, write, relinquish, setMode, inManual, search }
}

/**
 * The descriptions of the points `ids()` names, fetched afresh once each as they appear (null
 * when the fetch failed). Callers may `set` a point they already have.
 */
export function usePointInfo(ids: () => number[]): Map<number, Point | null> {
  const info = reactive(new Map<number, Point | null>())
  watch(
    ids,
    async (now) => {
      await Promise.all(
        now
          .filter((id) => !info.has(id))
          .map(async (id) => {
            try {
              info.set(id, await cached(id, true))
            } catch {
              info.set(id, null)
            }
          }),
      )
    },
    { immediate: true },
  )
  return info
}

/**
 * A search that follows `query()`: it runs `delay` ms after the last change (or at once with
 * `run()`), and a newer search cancels an older one. `query()` null means nothing to search:
 * the results are empty.
 */
export function usePointSearch(query: () => PointQuery | null, limit: number, delay = 250) {
  const results = shallowRef<Point[]>([])
  const total = ref(0)
  const loading = ref(false)
  const error = shallowRef<Problem | null>(null)
  /** Whether the results answer a search (an empty list then means no match). */
  const searched = ref(false)
  let timer: ReturnType<typeof setTimeout> | null = null
  let ctl: AbortController | null = null

  function cancel() {
    if (timer) clearTimeout(timer)
    timer = null
    ctl?.abort()
    ctl = null
  }

  async function run() {
    cancel()
    error.value = null
    const want = query()
    if (!want) {
      results.value = []
      total.value = 0
      searched.value = false
      loading.value = false
      return
    }
    const mine = new AbortController()
    ctl = mine
    loading.value = true
    try {
      const page = await search(want, limit, mine.signal)
      if (ctl !== mine) return
      results.value = page.items
      total.value = page.total
      searched.value = true
    } catch (e) {
      if (ctl === mine && (e as Error).name !== 'AbortError') error.value = explain(e)
    } finally {
      if (ctl === mine) loading.value = false
    }
  }

  function schedule() {
    if (!query()) return void run()
    cancel()
    error.value = null
    loading.value = true
    timer = setTimeout(() => void run(), delay)
  }

  watch(query, schedule)
  onScopeDispose(cancel)
  return { results, total, loading, error, searched, run, schedule }
}
