// History for the trend charts: time ranges (presets, the URL form), fetching several points'
// downsampled history at once, and the pure data work the chart needs (aligning series on one time
// axis, the min/max band of each bucket, telling digital traces apart).
//
// Times in this module are epoch milliseconds unless a name says otherwise; the chart's x values
// are epoch seconds (uPlot's convention), the server's are epoch microseconds.
import { ref, shallowRef } from 'vue'
import { api, API } from '../api/client'
import { explain, type Problem } from '../lib/errors'

// ---------------------------------------------------------------------------------------------
// Time ranges

export interface Preset {
  /** The span as the server writes durations (a trend log's `range`). */
  key: string
  label: string
  ms: number
}

const MIN = 60_000
const HOUR = 60 * MIN
const DAY = 24 * HOUR

export const PRESETS: Preset[] = [
  { key: '5m', label: '5 min', ms: 5 * MIN },
  { key: '15m', label: '15 min', ms: 15 * MIN },
  { key: '1h', label: '1 h', ms: HOUR },
  { key: '6h', label: '6 h', ms: 6 * HOUR },
  { key: '24h', label: '24 h', ms: DAY },
  { key: '7d', label: '7 d', ms: 7 * DAY },
  { key: '30d', label: '30 d', ms: 30 * DAY },
  { key: '90d', label: '90 d', ms: 90 * DAY },
  { key: '365d', label: '1 year', ms: 365 * DAY },
]

/** The shortest and longest range a chart shows. */
const MIN_SPAN_MS = 10_000
const MAX_SPAN_MS = 10 * 366 * DAY

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: MIN, h: HOUR, d: DAY, w: 7 * DAY, y: 365 * DAY }

/** Milliseconds of a duration such as `15m`, `24h`, `365d` (also `1y`); null when it is not one. */
export function parseDuration(s: string | null | undefined): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w|y)\s*$/.exec(s ?? '')
  if (!m) return null
  const v = Number(m[1]) * UNIT_MS[m[2]]
  return Number.isFinite(v) && v > 0 ? Math.round(v) : null
}

/** A duration in the server's form, in the largest whole unit (`90m` -> `90m`, 7 days -> `7d`). */
export function formatDuration(ms: number): string {
  const preset = PRESETS.find((p) => p.ms === ms)
  if (preset) return preset.key
  for (const [unit, size] of [
    ['d', DAY],
    ['h', HOUR],
    ['m', MIN],
    ['s', 1000],
  ] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`
  }
  return `${Math.max(1, Math.round(ms / 1000))}s`
}

/** How people read a span: `15 min`, `6 h`, `1 year`, `2.5 d`. */
export function describeSpan(ms: number): string {
  const preset = PRESETS.find((p) => p.ms === ms)
  if (preset) return preset.label
  const fmt = (v: number) => (Math.abs(v - Math.round(v)) < 0.05 ? String(Math.round(v)) : v.toFixed(1))
  if (ms >= DAY) return `${fmt(ms / DAY)} d`
  if (ms >= HOUR) return `${fmt(ms / HOUR)} h`
  if (ms >= MIN) return `${fmt(ms / MIN)} min`
  return `${fmt(ms / 1000)} s`
}

/** What the chart shows: a span back from now that follows the clock, or a fixed window. */
export type RangeSpec = { kind: 'live'; span: number } | { kind: 'fixed'; from: number; to: number }

export const DEFAULT_RANGE: RangeSpec = { kind: 'live', span: HOUR }

/** The window of `spec` at `now`. */
export function resolveRange(spec: RangeSpec, now: number): { from: number; to: number } {
  return spec.kind === 'live' ? { from: now - spec.span, to: now } : { from: spec.from, to: spec.to }
}

export function spanOf(spec: RangeSpec): number {
  return spec.kind === 'live' ? spec.span : spec.to - spec.from
}

type Query = Record<string, unknown>

function first(v: unknown): string | undefined {
  if (Array.isArray(v)) return typeof v[0] === 'string' ? v[0] : undefined
  return typeof v === 'string' ? v : undefined
}

function parseInstant(s: string | undefined): number | null {
  if (!s) return null
  if (/^\d{10,16}$/.test(s)) {
    const n = Number(s)
    // Seconds, milliseconds or microseconds, told apart by size.
    return n < 1e11 ? n * 1000 : n < 1e14 ? n : Math.floor(n / 1000)
  }
  const t = Date.parse(s)
  return Number.isNaN(t) ? null : t
}

/** The range a page's query asks for: `range=24h` (follows now) or `from=...&to=...` (fixed). */
export function rangeFromQuery(q: Query, fallback: RangeSpec = DEFAULT_RANGE): RangeSpec {
  const from = parseInstant(first(q.from))
  const to = parseInstant(first(q.to))
  if (from !== null && to !== null && to - from >= 1) return { kind: 'fixed', from, to }
  const span = parseDuration(first(q.range))
  if (span !== null) return { kind: 'live', span: clampSpan(span) }
  return fallback
}

/** The query that brings `spec` back (only the range's keys). */
export function rangeToQuery(spec: RangeSpec): Record<string, string> {
  if (spec.kind === 'live') return { range: formatDuration(spec.span) }
  return { from: new Date(spec.from).toISOString(), to: new Date(spec.to).toISOString() }
}

/** Point ids from `points=1,2,3` (unique, in order, at most `max`). */
export function parsePointIds(v: unknown, max = MAX_POINTS): number[] {
  const s = first(v) ?? ''
  const out: number[] = []
  for (const part of s.split(',')) {
    const t = part.trim()
    if (!/^\d+$/.test(t)) continue
    const n = Number(t)
    if (n <= 0xffffffff && !out.includes(n)) out.push(n)
    if (out.length >= max) break
  }
  return out
}

/** Most points on one chart. */
export const MAX_POINTS = 16

export function clampSpan(ms: number): number {
  return Math.min(MAX_SPAN_MS, Math.max(MIN_SPAN_MS, ms))
}

/** The window after zooming `factor` (< 1 zooms in) around `center` (a fraction 0..1 of the window). */
export function zoomWindow(from: number, to: number, factor: number, center = 0.5): { from: number; to: number } {
  const span = to - from
  const next = clampSpan(span * factor)
  const pivot = from + span * Math.min(1, Math.max(0, center))
  const f = pivot - (pivot - from) * (next / span)
  return { from: Math.round(f), to: Math.round(f + next) }
}

/** The window moved by `fraction` of its span (negative: back in time). */
export function panWindow(from: number, to: number, fraction: number): { from: number; to: number } {
  const d = Math.round((to - from) * fraction)
  return { from: from + d, to: to + d }
}

// ---------------------------------------------------------------------------------------------
// History

/** One point's rows: x in epoch seconds, null values where the value is unknown (bad quality). */
export interface Series {
  pointId: number
  ts: number[]
  values: (number | null)[]
}

export interface HistoryAnswer {
  from: number
  to: number
  partial: boolean
  /** Rows the server returned (all series). */
  rows: number
  /** The M4 buckets asked for (the chart's width). */
  buckets: number
  series: Map<number, Series>
}

interface WireSeries {
  point_id: number
  ts: number[]
  value?: (number | null)[]
  quality?: number[]
  /** The last row before `from` (asked with `prior: true`). */
  prior?: { ts: number; value: number | null } | null
}
interface WireHistory {
  from: number
  to: number
  partial: boolean
  series: WireSeries[]
}

/**
 * Turns the server's columnar answer into chart series (seconds; bad-quality rows as null). With
 * `start` (seconds) and a `prior` row, the series begins with the value in force at `start`, so a
 * point recorded on change is drawn from the left edge rather than from its first change.
 */
export function toSeries(w: WireSeries, start?: number): Series {
  const n = w.ts.length
  const ts: number[] = []
  const values: (number | null)[] = []
  if (start !== undefined && w.prior && !(n > 0 && w.ts[0] / 1e6 <= start)) {
    ts.push(start)
    values.push(w.prior.value)
  }
  const v = w.value ?? []
  const q = w.quality
  for (let i = 0; i < n; i++) {
    ts.push(w.ts[i] / 1e6)
    const val = v[i]
    // Bad quality (major state 00) carries no value; uncertain values are still drawn.
    values.push(val === null || val === undefined || (q && q[i] < 64) ? null : val)
  }
  return { pointId: w.point_id, ts, values }
}

/**
 * Several points' history in `[from, to)`, downsampled by the server's M4 mode to `buckets`
 * buckets (every bucket's first, last, minimum and maximum: spikes survive and a line through
 * the rows looks like one through all of them at that width).
 */
export async function fetchHistory(points: number[], from: number, to: number, buckets: number, signal?: AbortSignal): Promise<HistoryAnswer> {
  const b = Math.max(16, Math.min(4096, Math.round(buckets)))
  const w = await api.post<WireHistory>(
    `${API}/history/batch`,
    { points, from: String(Math.floor(from) * 1000), to: String(Math.ceil(to) * 1000), max_points: b * 4, prior: true },
    { signal },
  )
  const series = new Map<number, Series>()
  let rows = 0
  for (const s of w.series) {
    series.set(s.point_id, toSeries(s, w.from / 1e6))
    rows += s.ts.length
  }
  return { from: w.from / 1000, to: w.to / 1000, partial: w.partial, rows, buckets: b, series }
}

/** Adds a live sample at the end of `s` (only newer than its last row). True when added. */
export function appendSample(s: Series, tsSeconds: number, value: number | null): boolean {
  const last = s.ts.length ? s.ts[s.ts.length - 1] : -Infinity
  if (!(tsSeconds > last)) return false
  s.ts.push(tsSeconds)
  s.values.push(value)
  return true
}

// ---------------------------------------------------------------------------------------------
// Chart data

/**
 * The union of the series' times (sorted, unique) and each series' values on it: `undefined` where
 * a series has no row at that time (the chart joins across it), `null` where its value is unknown
 * (a gap).
 */
export function alignSeries(list: { ts: number[]; values: (number | null)[] }[]): { x: number[]; ys: (number | null | undefined)[][] } {
  let total = 0
  for (const s of list) total += s.ts.length
  const all = new Float64Array(total)
  let k = 0
  let sorted = true
  for (const s of list) {
    for (let i = 0; i < s.ts.length; i++) all[k++] = s.ts[i]
  }
  if (list.length > 1) sorted = false
  else for (let i = 1; i < total && sorted; i++) if (all[i] < all[i - 1]) sorted = false
  if (!sorted) all.sort()
  const x: number[] = []
  for (let i = 0; i < total; i++) if (i === 0 || all[i] !== all[i - 1]) x.push(all[i])
  const ys = list.map((s) => {
    const y = new Array<number | null | undefined>(x.length)
    let j = 0
    for (let i = 0; i < s.ts.length; i++) {
      const t = s.ts[i]
      while (x[j] < t) j++
      y[j] = s.values[i]
    }
    return y
  })
  return { x, ys }
}

/**
 * A thinned series drawn as a band: per bucket (the same buckets as the server's M4 split of
 * `[from, to)`) its minimum and maximum (`lo`, `hi`), placed at the x of the bucket's last row, so
 * a trace has one point per bucket to draw whatever the number of rows. An empty bucket gets null
 * (a gap) at one x of the bucket when the chart has one; everything else is undefined (the chart
 * joins across it). `line` holds only the live rows after the grid (drawn as a line).
 */
export function bandOf(
  s: Series,
  x: number[],
  fromS: number,
  toS: number,
  buckets: number,
): { lo: (number | null | undefined)[]; hi: (number | null | undefined)[]; line: (number | null | undefined)[] } {
  const span = Math.max(toS - fromS, 1e-9)
  const bucketOf = (t: number) => Math.min(buckets - 1, Math.max(0, Math.floor(((t - fromS) * buckets) / span)))
  const min = new Float64Array(buckets).fill(Infinity)
  const max = new Float64Array(buckets).fill(-Infinity)
  const lastTs = new Float64Array(buckets).fill(NaN)
  for (let i = 0; i < s.ts.length; i++) {
    const t = s.ts[i]
    if (t < fromS || t >= toS) continue
    const v = s.values[i]
    const b = bucketOf(t)
    lastTs[b] = t
    if (v === null) continue
    if (v < min[b]) min[b] = v
    if (v > max[b]) max[b] = v
  }
  const lo = new Array<number | null | undefined>(x.length)
  const hi = new Array<number | null | undefined>(x.length)
  const line = new Array<number | null | undefined>(x.length)
  const gapMarked = new Uint8Array(buckets)
  for (let j = 0; j < x.length; j++) {
    const t = x[j]
    if (t < fromS || t >= toS) continue
    const b = bucketOf(t)
    if (t === lastTs[b]) {
      if (min[b] === Infinity) lo[j] = hi[j] = null
      else {
        lo[j] = min[b]
        hi[j] = max[b]
      }
    } else if (Number.isNaN(lastTs[b]) && !gapMarked[b]) {
      gapMarked[b] = 1
      lo[j] = hi[j] = null
    }
  }
  for (let i = 0, j = 0; i < s.ts.length; i++) {
    const t = s.ts[i]
    if (t < toS) continue
    while (x[j] < t) j++
    line[j] = s.values[i]
  }
  return { lo, hi, line }
}

/** Whether a series was thinned by the server (more rows than buckets): worth a min/max band. */
export function isDense(s: Series, buckets: number): boolean {
  return s.ts.length > buckets * 1.5
}

/** Whether values look like a digital point's: only 0 and 1, and both of them. */
export function looksDigital(values: (number | null)[]): boolean {
  let zero = false
  let one = false
  for (const v of values) {
    if (v === null) continue
    if (v === 0) zero = true
    else if (v === 1) one = true
    else return false
  }
  return zero && one
}

/** The last known value of `s` at or before x index `idx` of aligned values `y`. */
export function valueAt(y: (number | null | undefined)[], idx: number): number | null {
  for (let i = Math.min(idx, y.length - 1); i >= 0; i--) {
    const v = y[i]
    if (v !== undefined) return v
  }
  return null
}

// ---------------------------------------------------------------------------------------------
// Loading

/**
 * The chart's history: `load()` fetches (aborting the request before it, so a slow answer never
 * overwrites a newer one); `series` keeps the last good answer while the next one loads, so the
 * page shows the old chart under a loading veil instead of an empty one.
 */
export function useHistory() {
  const answer = shallowRef<HistoryAnswer | null>(null)
  const loading = ref(false)
  const error = shallowRef<Problem | null>(null)
  /** Milliseconds the last fetch took (request to parsed answer). */
  const fetchMs = ref<number | null>(null)
  /** Bumped whenever the series change (new answer or live rows). */
  const version = ref(0)
  /** Live rows added since the last answer. */
  let appended = 0
  let ctl: AbortController | null = null

  async function load(points: number[], from: number, to: number, buckets: number) {
    ctl?.abort()
    if (!points.length) {
      ctl = null
      answer.value = null
      loading.value = false
      error.value = null
      version.value++
      return
    }
    const mine = new AbortController()
    ctl = mine
    loading.value = true
    error.value = null
    const t0 = performance.now()
    performance.mark('t3-trend-fetch')
    try {
      const a = await fetchHistory(points, from, to, buckets, mine.signal)
      if (ctl !== mine) return
      fetchMs.value = Math.round(performance.now() - t0)
      performance.mark('t3-trend-data')
      appended = 0
      answer.value = a
      version.value++
    } catch (e) {
      if (ctl === mine && (e as Error).name !== 'AbortError') error.value = explain(e)
    } finally {
      if (ctl === mine) {
        loading.value = false
        ctl = null
      }
    }
  }

  /** Adds a live sample (epoch microseconds) of a point on the chart. */
  function append(pointId: number, tsUs: number, value: number | null): boolean {
    const s = answer.value?.series.get(pointId)
    if (!s || !appendSample(s, tsUs / 1e6, value)) return false
    appended++
    version.value++
    return true
  }

  function cancel() {
    ctl?.abort()
    ctl = null
    loading.value = false
  }

  return { answer, loading, error, fetchMs, version, load, append, cancel, appendedSinceLoad: () => appended }
}
