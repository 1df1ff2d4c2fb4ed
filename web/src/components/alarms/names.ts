// Names for the ids an alarm carries: "floor1-ahu · VAR7" for a point, the device's name for a
// device, and a point's values with its units or state names. Fetched on first use and shared;
// until then (or if a fetch fails) the id is shown.
import { reactive } from 'vue'
import type { Point } from '../../api/types'
import { useDevices } from '../../composables/useDevices'
import { usePoints } from '../../composables/usePoints'
import { pointWithDevice, unknownPoint, valueWithUnits } from '../../lib/points'

const points = reactive(new Map<number, { name: string; device_id: number | null; value: Pick<Point, 'digital' | 'range_name' | 'units'> }>())
const devices = reactive(new Map<number, string>())
const asked = new Set<number>()
let devicesAsked: Promise<void> | null = null
const pointsApi = usePoints()
const devicesApi = useDevices()

function askPoint(id: number) {
  if (asked.has(id)) return
  asked.add(id)
  pointsApi.cached(id).then(
    (p) => points.set(id, { name: pointWithDevice(p), device_id: p.device_id, value: { digital: p.digital, range_name: p.range_name, units: p.units } }),
    () => asked.delete(id), // Try again on a later render.
  )
}

function askDevices() {
  devicesAsked ??= devicesApi.all().then(
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
    /** `device · point` (or `Point #id` until known). */
    point(id: number | null | undefined): string {
      if (id === null || id === undefined) return ''
      const p = points.get(id)
      if (!p) {
        askPoint(id)
        return unknownPoint(id)
      }
      return p.name
    },
    /** A value of the point for people: `21.5 °C`, or a digital point's state (`Occupied`). */
    value(id: number | null | undefined, v: number | null): string {
      const p = id === null || id === undefined ? undefined : points.get(id)
      return valueWithUnits(v, p?.value)
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
