// What people call a point, and a digital point's value as the name of its state, the same on
// every page. Pure functions: the point's description comes from usePoints.

import type { Point } from '../api/types'
import { formatValue } from './format'

type Named = Pick<Point, 'label' | 'name'>

/** A point whose description is not known (yet, or any more). */
export function unknownPoint(id: number): string {
  return `Point #${id}`
}

/** What people call a point: its label, else its (register) name. */
export function pointTitle(p: Named): string {
  return p.label?.trim() || p.name
}

/** The line under the title: device and name (when the title is a label), or device and type. */
export function pointSubtitle(p: Named & Pick<Point, 'device' | 'point_type'>): string {
  const dev = p.device ?? 'manual point'
  return p.label?.trim() ? `${dev} · ${p.name}` : `${dev} · ${p.point_type}`
}

/** `floor1-ahu IN1`: the device and the point's name (a manual point's name alone). */
export function deviceAndName(p: Pick<Point, 'device' | 'name'>): string {
  return p.device ? `${p.device} ${p.name}` : p.name
}

/** A short name where there is little room (a floor plan badge): the label, else device and name. */
export function pointName(p: (Named & Pick<Point, 'device'>) | null | undefined, id: number): string {
  if (!p) return unknownPoint(id)
  return p.label?.trim() ? pointTitle(p) : deviceAndName(p)
}

/** A name that says everything (a chart's legend): `Supply temp (floor1-ahu VAR7)`, else device and name. */
export function pointFullName(p: (Named & Pick<Point, 'device'>) | null | undefined, id: number): string {
  if (!p) return unknownPoint(id)
  const base = deviceAndName(p)
  return p.label?.trim() ? `${pointTitle(p)} (${base})` : base
}

/** `floor1-ahu · Supply temp`: the device, then the title (an alarm's point). */
export function pointWithDevice(p: Named & Pick<Point, 'device'>): string {
  return p.device ? `${p.device} · ${pointTitle(p)}` : pointTitle(p)
}

// ---- digital states -------------------------------------------------------------------------

/**
 * The names of a digital point's states, [name of 0, name of 1], as the server names them (`states`:
 * a panel's custom texts may hold a `/`), else from its range name (`Off/On`, `Unoccupied/Occupied`);
 * null when the point is not digital or its range names no states.
 */
export function stateNames(p: Pick<Point, 'digital' | 'range_name' | 'states'> | null | undefined): [string, string] | null {
  if (!p?.digital) return null
  if (p.states?.length === 2) return [p.states[0], p.states[1]]
  if (!p.range_name) return null
  const parts = p.range_name.split('/').map((s) => s.trim())
  return parts.length === 2 && parts[0] && parts[1] ? [parts[0], parts[1]] : null
}

/**
 * A value for people: a digital point's state name (a value other than 0 is the state of 1) when
 * the point has them, else the number as `format` (formatValue unless told) writes it.
 */
export function valueText(
  v: number | null | undefined,
  p: Pick<Point, 'digital' | 'range_name' | 'states'> | null | undefined,
  format: (v: number | null | undefined) => string = formatValue,
): string {
  const names = v === null || v === undefined || Number.isNaN(v) ? null : stateNames(p)
  return names ? names[v ? 1 : 0] : format(v)
}

/** `21.5 °C`, `Occupied`, `—`: the value as valueText writes it, then the point's units if it has them. */
export function valueWithUnits(v: number | null | undefined, p: Pick<Point, 'digital' | 'range_name' | 'states' | 'units'> | null | undefined): string {
  const text = valueText(v, p)
  return p?.units ? `${text} ${p.units}` : text
}
