// Helpers the point components share: what a row shows, commands, TSV. (Quality classes, names
// and value text are lib/.)
import type { Point, PointClass } from '../../api/types'
import { liveValue, type PointUpdate } from '../../api/ws-types'

/** Quality code of a value set by hand at the device (manual). */
const LOCAL_OVERRIDE = 0xd8

/** What the table shows for a point: its REST answer, overtaken by live updates. */
export interface Shown {
  value: number | null
  quality: string | null
  manual: boolean
  /** Epoch milliseconds. */
  updated: number | null
  /** Whether the value is live: it came over the open connection (else it may be stale). */
  live: boolean
}

/** `live`: whether `u` is current (LiveConnection.isLive); a REST value never is. */
export function shown(p: Point, u: PointUpdate | undefined, live = false): Shown {
  if (u) {
    return {
      value: liveValue(u),
      quality: u.quality_name,
      manual: u.quality === LOCAL_OVERRIDE || u.quality_name === 'good/local_override',
      updated: u.timestamp,
      live,
    }
  }
  return {
    value: p.value,
    quality: p.quality,
    manual: p.auto_manual,
    updated: p.updated_at ? Date.parse(p.updated_at) : null,
    live: false,
  }
}

/** Whether the user may command the point now: writable outputs, variables and registers;
 * inputs only while in manual; a configuration point only when `admin`. */
export function canWrite(p: Point, manual: boolean, admin = false): boolean {
  if (!p.writable) return false
  if (p.class === 'configuration' && !admin) return false
  return p.point_type === 'input' ? manual : true
}

/** The groups of a device's points, in the order people look at them. */
export const CLASS_GROUPS: readonly { key: PointClass; title: string; hint: string }[] = [
  { key: 'measurement', title: 'Measurements', hint: 'what the device measures and reports' },
  { key: 'setpoint', title: 'Setpoints & commands', hint: 'what operators set' },
  { key: 'configuration', title: 'Configuration', hint: "the device's set-up (address, calibration, ranges, tuning): only admins change it" },
]

/** `points` by class, in CLASS_GROUPS order (each group's points in their order); empty groups left out. */
export function groupByClass<P extends Pick<Point, 'class'>>(points: P[]): { key: PointClass; title: string; hint: string; points: P[] }[] {
  return CLASS_GROUPS.map((g) => ({ ...g, points: points.filter((p) => (p.class ?? 'measurement') === g.key) })).filter((g) => g.points.length)
}

/** `0 to 100 %`, `from 0`, `up to 65535`: the values a write to `p` may carry; null when any. */
export function rangeText(p: Pick<Point, 'min' | 'max' | 'units'>): string | null {
  const u = p.units ? ` ${p.units}` : ''
  if (p.min != null && p.max != null) return `${p.min} to ${p.max}${u}`
  if (p.min != null) return `from ${p.min}${u}`
  if (p.max != null) return `up to ${p.max}${u}`
  return null
}

/** Why `v` cannot be written to `p`, for people (as the server words it); null when it can. */
export function outOfRange(p: Pick<Point, 'min' | 'max' | 'units' | 'name'>, v: number): string | null {
  if ((p.min != null && v < p.min) || (p.max != null && v > p.max)) return `${v} is outside the range of ${p.name}: ${rangeText(p)}`
  return null
}

/** Names of the well-known priority slots (BACnet's, as the arbiter uses them). */
export const PRIORITY_NAMES: Record<number, string> = {
  1: 'manual life safety',
  2: 'automatic life safety',
  5: 'critical equipment',
  6: 'minimum on/off',
  8: 'operator',
  15: 'schedule',
  16: 'program',
}

export function priorityLabel(p: number): string {
  return PRIORITY_NAMES[p] ? `${p} – ${PRIORITY_NAMES[p]}` : String(p)
}

/** Reads a TSV text (as spreadsheets copy it) into rows of cells; a final empty line is dropped. */
export function parseTsv(text: string): string[][] {
  const lines = text.replace(/\r\n?/g, '\n').split('\n')
  if (lines.length && lines[lines.length - 1] === '') lines.pop()
  return lines.map((l) => l.split('\t'))
}

/** Writes rows of cells as TSV (tabs and line breaks inside cells become spaces). */
export function toTsv(rows: string[][]): string {
  return rows.map((r) => r.map((c) => c.replace(/[\t\r\n]+/g, ' ')).join('\t')).join('\n')
}
