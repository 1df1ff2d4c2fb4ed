// What the trend components share.
import type { Point } from '../../api/types'
import type { Series } from '../../composables/useHistory'
import { formatValue } from '../../lib/format'

/** One trace of the chart. */
export interface Trace {
  id: number
  /** What people read: the label, else device and point name. */
  label: string
  color: string
  /** Traces with the same key share a y-axis. */
  unitKey: string
  /** The axis title. */
  unit: string
  digital: boolean
  /** A digital trace's state names, [name of 0, name of 1], when its point has them. */
  states: [string, string] | null
  series: Series | null
  /** Draw the min/max band (the series was thinned by the server). */
  band: boolean
  /** A value holds until the next sample: drawn as steps (the point's `trend.line`), else straight lines. */
  step: boolean
  /** Seconds a step trace's value holds at most without a new row (see `limitHold`); null: no limit. */
  maxHoldS: number | null
  hidden: boolean
}

/** The grid the server's M4 buckets were cut on: the band uses the same. */
export interface BucketGrid {
  from: number
  to: number
  buckets: number
}

/** Where the cursor is: its time and every trace's value there. */
export interface HoverInfo {
  time: number
  /** A value, or the [minimum, maximum] of a thinned trace at that pixel. */
  values: Map<number, number | null | [number, number]>
}

/** A point's latest value (live, else as the point list gave it). */
export interface CurrentValue {
  value: number | null
  /** Epoch ms. */
  time: number | null
  quality: string | null
  /** It came over the open connection (else greyed out: it may be stale). */
  live: boolean
}

export const PALETTE = [
  '#1f77b4',
  '#d62728',
  '#2ca02c',
  '#ff7f0e',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#17becf',
  '#bcbd22',
  '#7f7f7f',
  '#393b79',
  '#ad494a',
  '#637939',
  '#8c6d31',
  '#843c39',
  '#7b4173',
]

/** The axis a point goes on: its units, else its T3000 range code (same code, same units). */
export function unitOf(p: Point | undefined): { key: string; title: string } {
  if (p?.units) return { key: `u:${p.units}`, title: p.units }
  if (p && p.range !== null && p.range !== undefined) return { key: `r:${p.point_type}:${p.range}`, title: `${p.point_type} range ${p.range}` }
  return { key: 'none', title: '' }
}

/**
 * A value for the legend: a digital one as its state, by the point's state names (`Occupied (1)`)
 * or else `On (1)` / `Off (0)`; a thinned trace's [minimum, maximum] as a span.
 */
export function legendValue(v: number | null | undefined | [number, number], digital = false, states: [string, string] | null = null): string {
  if (Array.isArray(v)) return v[0] === v[1] ? legendValue(v[0], digital, states) : `${legendValue(v[0], digital, states)} … ${legendValue(v[1], digital, states)}`
  if (digital && v !== null && v !== undefined && !Number.isNaN(v)) return v ? `${states?.[1] ?? 'On'} (1)` : `${states?.[0] ?? 'Off'} (0)`
  return formatValue(v)
}

export function withAlpha(hex: string, alpha: number): string {
  const n = parseInt(hex.slice(1), 16)
  return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`
}
