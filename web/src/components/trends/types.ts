// What the trend components share.
import type { Series } from '../../composables/useHistory'

/** A point as GET /api/t3000/points returns it (the fields the trend page reads). */
export interface PointMeta {
  id: number
  device_id: number | null
  device: string | null
  name: string
  point_type: string
  value: number | null
  units: string | null
  range: number | null
  label: string | null
  description?: string | null
  quality: string | null
  updated_at?: string | null
  /** Whether the point is digital (0/1), when the server says. */
  digital?: boolean | null
  trend?: { interval_ms?: number | null; heartbeat_secs?: number | null }
}

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
  series: Series | null
  /** Draw the min/max band (the series was thinned by the server). */
  band: boolean
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

export function pointLabel(p: PointMeta | undefined, id: number): string {
  if (!p) return `Point ${id}`
  const base = p.device ? `${p.device} ${p.name}` : p.name
  return p.label ? `${p.label} (${base})` : base
}

/** The axis a point goes on: its units, else its T3000 range code (same code, same units). */
export function unitOf(p: PointMeta | undefined): { key: string; title: string } {
  if (p?.units) return { key: `u:${p.units}`, title: p.units }
  if (p && p.range !== null && p.range !== undefined) return { key: `r:${p.point_type}:${p.range}`, title: `${p.point_type} range ${p.range}` }
  return { key: 'none', title: '' }
}

export function formatValue(v: number | null | undefined | [number, number], digital = false): string {
  if (Array.isArray(v)) return v[0] === v[1] ? formatValue(v[0], digital) : `${formatValue(v[0], digital)} … ${formatValue(v[1], digital)}`
  if (v === null || v === undefined || Number.isNaN(v)) return '—'
  if (digital) return v ? 'On (1)' : 'Off (0)'
  const a = Math.abs(v)
  if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(3)
  return String(Number(v.toFixed(a >= 100 ? 1 : a >= 10 ? 2 : 3)))
}

export function withAlpha(hex: string, alpha: number): string {
  const n = parseInt(hex.slice(1), 16)
  return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`
}
