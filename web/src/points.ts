// Points as every page fetches, searches and names them: one description per point (fetched once
// and shared), the point search of GET /points?q=, what people call a point, and a digital
// point's value as the name of its state.
import { onScopeDispose, reactive, ref, shallowRef, watch } from 'vue'
import { api, API, ApiError } from './api/client'
import type { Device, Paged, Point, WirePoint } from './api/types'
import { errorText } from './composables/useT3000'

// ---- fetching -------------------------------------------------------------------------------

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

/** GET /points/{id} (uncached). */
export async function getPoint(id: number, signal?: AbortSignal): Promise<Point> {
  return pointFromWire(await api.get<WirePoint>(`${API}/points/${id}`, { signal }))
}

/** PUT /points/{id}: the changed point. */
export async function putPoint(id: number, body: Record<string, unknown>): Promise<Point> {
  return pointFromWire(await api.put<WirePoint>(`${API}/points/${id}`, body))
}

/** GET /points with `query`: a page of points. */
export async function listPoints(query: Record<string, string | number | boolean | undefined | null>, signal?: AbortSignal): Promise<Paged<Point>> {
  const page = await api.get<Paged<WirePoint>>(`${API}/points`, { query, signal })
  return { ...page, items: page.items.map(pointFromWire) }
}

const points = new Map<number, Promise<Point>>()

/** One point's description (cached; `fresh` fetches it again; a failed fetch is retried on the next call). */
export function fetchPoint(id: number, fresh = false): Promise<Point> {
  let p = fresh ? undefined : points.get(id)
  if (!p) {
    p = getPoint(id)
    points.set(id, p)
    p.catch(() => {
      if (points.get(id) === p) points.delete(id)
    })
  }
  return p
}

/** True when the error says the point does not exist (deleted since it was pinned or placed). */
export function isMissing(e: unknown): boolean {
  return e instanceof ApiError && e.status === 404
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
              info.set(id, await fetchPoint(id, true))
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

/** Every device (device choices and device names). */
export async function fetchDevices(signal?: AbortSignal): Promise<Device[]> {
  const out: Device[] = []
  for (let offset = 0; ; ) {
    const page = await api.get<Paged<Device>>(`${API}/devices`, { query: { offset, limit: 1000 }, signal })
    out.push(...page.items)
    offset += page.items.length
    if (page.items.length === 0 || offset >= page.total) return out
  }
}

// ---- searching ------------------------------------------------------------------------------

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
export async function searchPoints(query: PointQuery, limit: number, signal?: AbortSignal): Promise<{ items: Point[]; total: number }> {
  const text = query.q.trim()
  const filtered = query.device_id !== undefined || query.point_type !== undefined
  const byId = !filtered && /^\d+$/.test(text) ? fetchPoint(Number(text)).catch(() => null) : Promise.resolve(null)
  const page = await listPoints({ q: text || undefined, device_id: query.device_id, point_type: query.point_type, limit }, signal)
  const items = page.items
  let total = page.total
  const exact = await byId
  if (exact && !items.some((p) => p.id === exact.id)) {
    items.unshift(exact)
    total++
  }
  return { items: items.slice(0, limit), total }
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
  const error = ref<string | null>(null)
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
      const page = await searchPoints(want, limit, mine.signal)
      if (ctl !== mine) return
      results.value = page.items
      total.value = page.total
      searched.value = true
    } catch (e) {
      if (ctl === mine && (e as Error).name !== 'AbortError') error.value = errorText(e)
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

// ---- naming ---------------------------------------------------------------------------------

/** What people call a point: its label, else its (register) name. */
export function pointTitle(p: Pick<Point, 'label' | 'name'>): string {
  return p.label?.trim() || p.name
}

/** The line under the title: device and name (when the title is a label), or device and type. */
export function pointSubtitle(p: Pick<Point, 'label' | 'name' | 'device' | 'point_type'>): string {
  const dev = p.device ?? 'manual point'
  return p.label?.trim() ? `${dev} · ${p.name}` : `${dev} · ${p.point_type}`
}

/** `floor1-ahu IN1`: the device and the point's name (a manual point's name alone). */
export function deviceAndName(p: Pick<Point, 'device' | 'name'>): string {
  return p.device ? `${p.device} ${p.name}` : p.name
}

// ---- digital states -------------------------------------------------------------------------

/**
 * The names of a digital point's states, [name of 0, name of 1], from its range name (`Off/On`,
 * `Unoccupied/Occupied`); null when the point is not digital or its range names no states.
 */
export function stateNames(p: Pick<Point, 'digital' | 'range_name'> | null | undefined): [string, string] | null {
  if (!p?.digital || !p.range_name) return null
  const parts = p.range_name.split('/').map((s) => s.trim())
  return parts.length === 2 && parts[0] && parts[1] ? [parts[0], parts[1]] : null
}

/**
 * A value for people: a digital point's state name (a value other than 0 is the state of 1) when
 * the point has them, else the number as `format` writes it.
 */
export function valueText(
  v: number | null | undefined,
  p: Pick<Point, 'digital' | 'range_name'> | null | undefined,
  format: (v: number | null | undefined) => string,
): string {
  const names = v === null || v === undefined || Number.isNaN(v) ? null : stateNames(p)
  return names ? names[v ? 1 : 0] : format(v)
}
