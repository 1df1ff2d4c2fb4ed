// The trend settings form shared by the single-point and batch editors.
import type { TrendLine, TrendSettings } from '../../api/types'

export interface TrendForm {
  interval_s: string | number
  deadband: string | number
  heartbeat_secs: string | number
  retention_days: string | number
  /** How charts draw the point: a style, `default` (the server's rule decides), '' unchanged. */
  line: '' | TrendLine | 'default'
}

/** A PUT /points/{id} `trend`: the settings, with `line: 'default'` to forget a chosen line. */
export type TrendChange = Partial<Omit<TrendSettings, 'line' | 'line_default'>> & { line?: TrendLine | 'default' }

/** An empty form (nothing changes). */
export function emptyTrend(): TrendForm {
  return { interval_s: '', deadband: '', heartbeat_secs: '', retention_days: '', line: '' }
}

/**
 * The `trend` of a PUT /points/{id} for the filled fields, or null when none is filled.
 * Throws a message for people when a field is out of range.
 */
export function trendBody(f: TrendForm): TrendChange | null {
  const out: TrendChange = {}
  const num = (s: string | number) => (typeof s === 'number' ? s : s.trim() === '' ? null : Number(s))
  const i = num(f.interval_s)
  if (i != null) {
    if (!(i >= 0.1 && i <= 86_400)) throw new Error('Poll interval must be 0.1 s to 86400 s (24 h).')
    out.interval_ms = Math.round(i * 1000)
  }
  const d = num(f.deadband)
  if (d != null) {
    if (!(d >= 0) || !Number.isFinite(d)) throw new Error('Deadband must be a number of at least 0.')
    out.deadband = d
  }
  const h = num(f.heartbeat_secs)
  if (h != null) {
    if (!(h >= 0) || !Number.isInteger(h)) throw new Error('Heartbeat must be a whole number of seconds.')
    out.heartbeat_secs = h
  }
  const r = num(f.retention_days)
  if (r != null) {
    if (!(r >= 1 && r <= 36_500) || !Number.isInteger(r)) throw new Error('Retention must be 1 to 36500 whole days.')
    out.retention_days = r
  }
  if (f.line) out.line = f.line
  return Object.keys(out).length ? out : null
}
