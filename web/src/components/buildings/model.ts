// What the building pages share: floor plan uploads and time zones. (A device's place and moving
// a device are composables/useDevices.ts.)

export const MAX_PLAN_BYTES = 8 * 1024 * 1024
export const PLAN_TYPES = ['image/png', 'image/jpeg', 'image/webp', 'image/svg+xml']

/** The content type of an image file, from the browser or else the file name. */
export function imageType(f: File): string {
  if (f.type) return f.type
  const ext = f.name.toLowerCase().split('.').pop() ?? ''
  return { png: 'image/png', jpg: 'image/jpeg', jpeg: 'image/jpeg', webp: 'image/webp', svg: 'image/svg+xml' }[ext] ?? ''
}

/** Every IANA time zone the browser knows (for suggestions; the server decides). */
export function timeZones(): string[] {
  const intl = Intl as unknown as { supportedValuesOf?: (k: string) => string[] }
  try {
    return intl.supportedValuesOf?.('timeZone') ?? []
  } catch {
    return []
  }
}

// ---- floor plan badges --------------------------------------------------------------------------

/** A badge to lay out: its point's place on the plan (fractions 0..1 of the image), its size in
 * pixels, and its rank (higher is placed first and never moved for a lower one: active alarms). */
export interface BadgeBox {
  id: number
  x: number
  y: number
  w: number
  h: number
  rank: number
}

/** Where a badge goes: its box's top left corner, in pixels of the plan. */
export interface BadgeSpot {
  left: number
  top: number
}

interface Rect {
  left: number
  top: number
  right: number
  bottom: number
}

/**
 * Lays out badges on a plan of `width` x `height` pixels so that each lies wholly inside it and
 * none overlaps another (at least `gap` pixels apart), each as close as it can be to its point's
 * place (its box centred there). Badges are placed by rank, highest first, then in the given order;
 * a badge that does not fit where its point is goes to the nearest free spot beside the badges in
 * its way, else the nearest free spot of the whole plan. Only when the plan has no room left does a
 * badge overlap others (at its own place). Pure.
 */
export function layoutBadges(boxes: BadgeBox[], width: number, height: number, gap = 4): Map<number, BadgeSpot> {
  const out = new Map<number, BadgeSpot>()
  const placed: Rect[] = []
  const order = boxes.map((b, i) => ({ b, i })).sort((p, q) => q.b.rank - p.b.rank || p.i - q.i)
  for (const { b } of order) {
    const clampX = (l: number) => Math.max(0, Math.min(width - b.w, l))
    const clampY = (t: number) => Math.max(0, Math.min(height - b.h, t))
    const want = { left: clampX(b.x * width - b.w / 2), top: clampY(b.y * height - b.h / 2) }
    const rect = (l: number, t: number): Rect => ({ left: l, top: t, right: l + b.w, bottom: t + b.h })
    const free = (r: Rect) => placed.every((p) => r.left >= p.right + gap || p.left >= r.right + gap || r.top >= p.bottom + gap || p.top >= r.bottom + gap)
    const dist = (l: number, t: number) => (l - want.left) ** 2 + (t - want.top) ** 2
    let best: BadgeSpot | null = free(rect(want.left, want.top)) ? want : null
    if (!best) {
      // Beside each badge already placed: left, right, above, below, and the corners between.
      const xs = [want.left]
      const ys = [want.top]
      for (const p of placed) {
        xs.push(p.left - gap - b.w, p.right + gap, p.left, p.right - b.w)
        ys.push(p.top - gap - b.h, p.bottom + gap, p.top, p.bottom - b.h)
      }
      let bestD = Infinity
      const consider = (l: number, t: number) => {
        const d = dist(l, t)
        if (d < bestD && free(rect(l, t))) {
          bestD = d
          best = { left: l, top: t }
        }
      }
      for (const x of xs) for (const y of ys) consider(clampX(x), clampY(y))
      if (!best) {
        // The whole plan, on a grid finer than a badge.
        const sx = Math.max(2, b.w / 4)
        const sy = Math.max(2, b.h / 4)
        for (let t = 0; t <= Math.max(0, height - b.h); t += sy) for (let l = 0; l <= Math.max(0, width - b.w); l += sx) consider(l, t)
      }
    }
    const spot: BadgeSpot = best ?? want
    out.set(b.id, spot)
    placed.push(rect(spot.left, spot.top))
  }
  return out
}
