// Step traces and the legend's statistics: pure functions over the chart's series (x in epoch
// seconds, as uPlot's), no Vue.
//
// A point recorded on change, an output, a setpoint or a digital state keeps its value until the
// next sample: its trace is a step after each sample (uPlot's stepped path, align 1), never a
// ramp. Its gaps are its bad-quality rows (null): one starts at that row and lasts until the next
// good one, wherever other traces put times on the shared x axis.

type Y = (number | null | undefined)[]

/**
 * Carries each null (an unknown value) over the following `undefined` slots (times of other
 * traces), in place: the gap of a step trace lasts until its next row, not until the next time on
 * the shared axis. Returns `y`.
 */
export function holdGaps(y: Y): Y {
  let inGap = false
  for (let i = 0; i < y.length; i++) {
    const v = y[i]
    if (v === undefined) {
      if (inGap) y[i] = null
    } else inGap = v === null
  }
  return y
}

/**
 * A step trace's rows with the value's hold cut at `maxHoldS`: a point that promises a row at
 * least that often (its heartbeat, or its poll interval) has no data after a longer silence (the
 * server or its collection was down), so a null row (a gap) goes in at `maxHoldS` after the row
 * before it, also before `endS` (now) after the last row. The same object when nothing is cut.
 */
export function limitHold<S extends { ts: number[]; values: (number | null)[] }>(s: S, maxHoldS: number | null, endS: number): S | { ts: number[]; values: (number | null)[] } {
  if (!maxHoldS || !(maxHoldS > 0)) return s
  const { ts, values } = s
  const n = ts.length
  const cut = (i: number) => values[i] !== null && (i + 1 < n ? ts[i + 1] : endS) - ts[i] > maxHoldS
  let k = 0
  while (k < n && !cut(k)) k++
  if (k === n) return s
  const outTs = ts.slice(0, k)
  const outValues = values.slice(0, k)
  for (let i = k; i < n; i++) {
    outTs.push(ts[i])
    outValues.push(values[i])
    if (cut(i)) {
      outTs.push(ts[i] + maxHoldS)
      outValues.push(null)
    }
  }
  return { ts: outTs, values: outValues }
}

/**
 * A thinned step trace (the server's M4 rows: each bucket's first, last, minimum and maximum) as
 * the band uPlot fills between two stepped edges: per bucket of `[fromS, toS)` (the server's
 * split) the minimum and maximum of its values at the x of its first row, and its last value at
 * the x of its last row, from where it holds until the next bucket's first row. A jump is drawn
 * where it happened, a value held for a week is a flat line for a week, and a burst of changes
 * within one pixel is a bar from its minimum to its maximum. Rows from `toS` on (live rows, the
 * hold to now) are single values. Slots without a row stay `undefined` (the step holds); a bucket
 * whose values are all unknown, or whose last value is, starts a gap.
 */
export function stepBandOf(s: { ts: number[]; values: (number | null)[] }, x: number[], fromS: number, toS: number, buckets: number): { lo: Y; hi: Y } {
  const lo: Y = new Array(x.length)
  const hi: Y = new Array(x.length)
  const span = Math.max(toS - fromS, 1e-9)
  const bucketOf = (t: number) => Math.min(buckets - 1, Math.max(0, Math.floor(((t - fromS) * buckets) / span)))
  const n = s.ts.length
  let j = 0
  /** The x index of time `t` (every row's time is on the axis; rows come in time order). */
  const at = (t: number) => {
    while (j < x.length && x[j] < t) j++
    return j
  }
  let i = 0
  while (i < n) {
    const t0 = s.ts[i]
    if (t0 >= toS) {
      const k = at(t0)
      lo[k] = hi[k] = s.values[i]
      i++
      continue
    }
    const b = bucketOf(t0)
    let min = Infinity
    let max = -Infinity
    let k = i
    for (; k < n && s.ts[k] < toS && bucketOf(s.ts[k]) === b; k++) {
      const v = s.values[k]
      if (v === null) continue
      if (v < min) min = v
      if (v > max) max = v
    }
    const first = at(t0)
    if (min === Infinity) lo[first] = hi[first] = null
    else {
      lo[first] = min
      hi[first] = max
    }
    const lastT = s.ts[k - 1]
    if (lastT !== t0) {
      const last = at(lastT)
      lo[last] = hi[last] = s.values[k - 1]
    }
    i = k
  }
  holdGaps(lo)
  holdGaps(hi)
  return { lo, hi }
}

/** The lowest, average and highest value of a trace over the visible window. */
export interface TraceStats {
  min: number
  max: number
  /** Time-weighted: the area under the trace as drawn over the time it has a value. */
  avg: number
  /** Seconds of the window the trace has a value for (what `avg` is weighted over). */
  seconds: number
}

/** The first index of sorted `ts` at or after `t`. */
export function lowerBound(ts: number[], t: number): number {
  let a = 0
  let b = ts.length
  while (a < b) {
    const m = (a + b) >>> 1
    if (ts[m] < t) a = m + 1
    else b = m
  }
  return a
}

/**
 * Minimum, time-weighted average and maximum of a series over the window `[fromS, toS]` as the
 * chart draws it, with the last value holding until `endS` (now, or the end of the answer) and no
 * further. `step`: each value holds from its row to the next (the value in force at `fromS` is
 * the last row before it), so a value held 59 minutes weighs 59 times one held a minute. Linear:
 * straight lines between rows (cut at the window's edges), the last value held to `endS` as
 * drawn. Unknown values (null) and the time before the first row count for nothing. Null when the
 * trace has no value in the window.
 */
export function visibleStats(s: { ts: number[]; values: (number | null)[] }, fromS: number, toS: number, endS: number, step: boolean): TraceStats | null {
  const { ts, values } = s
  const n = ts.length
  const hi = Math.min(toS, endS)
  if (!n || !(hi >= fromS)) return null
  let min = Infinity
  let max = -Infinity
  let area = 0
  let seconds = 0
  const see = (v: number) => {
    if (v < min) min = v
    if (v > max) max = v
  }
  // The row in force at fromS (step), or the start of the segment that crosses it (linear).
  let i = Math.max(0, lowerBound(ts, fromS) - 1)
  for (; i < n && ts[i] <= hi; i++) {
    const v = values[i]
    const t = ts[i]
    const next = i + 1 < n ? ts[i + 1] : Infinity
    if (next <= fromS) continue
    if (v === null) continue
    // Till the next row, the last row till endS.
    const a = Math.max(t, fromS)
    const b = Math.min(next === Infinity ? endS : next, hi)
    if (step || next === Infinity) {
      if (b < a) continue
      see(v)
      area += v * (b - a)
      seconds += b - a
      continue
    }
    const w = values[i + 1]
    if (w === null || w === undefined) {
      // A line needs both ends; a lone row inside the window is still a value seen there.
      if (t >= fromS) see(v)
      continue
    }
    const lerp = (u: number) => v + ((w - v) * (u - t)) / (next - t)
    const va = lerp(a)
    const vb = lerp(b)
    if (b < a) continue
    see(va)
    see(vb)
    area += ((va + vb) / 2) * (b - a)
    seconds += b - a
  }
  if (min === Infinity) return null
  return { min, max, avg: seconds > 0 ? area / seconds : (min + max) / 2, seconds }
}
