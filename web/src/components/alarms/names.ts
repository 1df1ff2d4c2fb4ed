// Names for the ids an alarm carries: "floor1-ahu · VAR7" for a point, the device's name for a
// device, and a point's values with its units or state names. Fetched on first use and shared;
// until then (or if a fetch fails) the id is shown.
import { reactive } from 'vue'
import type { Point } from '../../api/types'
import { fetchDevices, fetchPoint, pointTitle, valueText } from '../../points'
import { formatValue } from '../dashboard/format'

const points = reactive(
  new Map<number, { title: string; device: string | null; device_id: number | null; units: string | null; states: Pick<Point, 'digital' | 'range_name'> }>(),
)
const devices = reactive(new Map<number, string>())
const asked = new Set<number>()
let devicesAsked: Promise<void> | null = null

function askPoint(id: number) {
  if (asked.has(id)) return
  asked.add(id)
  fetchPoint(id).then(
    (p) => points.set(id, { title: pointTitle(p), device: p.device, device_id: p.device_id, units: p.units, states: { digital: p.digital, range_name: p.range_name } }),
    () => asked.delete(id), // Try again on a later render.
  )
}

function askDevices() {
  devicesAsked ??= fetchDevices().then(
    (list) => {
      for (const d of list) devices.set(d.id, d.name)
    },
    () => {
      devicesAsked = null
    },
  )
}

export function useNames() {
  return {
    /** `device · point` (or `point #id` until known). */
    point(id: number | null | undefined): string {
      if (id === null || id === undefined) return ''
      const p = points.get(id)
      if (!p) {
        askPoint(id)
        return `point #${id}`
      }
      return p.device ? `${p.device} · ${p.title}` : p.title
    },
    /** A value of the point for people: `21.5 °C`, or a digital point's state (`Occupied`). */
    value(id: number | null | undefined, v: number | null): string {
      const p = id === null || id === undefined ? undefined : points.get(id)
      return `${valueText(v, p?.states, formatValue)} ${p?.units ?? ''}`.trim()
    },
    /** The device of a point, when known. */
    pointDevice(id: number | null | undefined): number | null {
      if (id === null || id === undefined) return null
      return points.get(id)?.device_id ?? null
    },
    device(id: number | null | undefined): string {
      if (id === null || id === undefined) return ''
      const d = devices.get(id)
      if (d === undefined) {
        askDevices()
        return `device #${id}`
      }
      return d
    },
  }
}
