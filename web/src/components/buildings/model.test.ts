// Floor plan badges laid out inside the plan and apart from each other.
import { describe, expect, it } from 'vitest'
import { layoutBadges, type BadgeBox } from './model'

function overlaps(a: { left: number; top: number; w: number; h: number }, b: { left: number; top: number; w: number; h: number }) {
  return a.left < b.left + b.w && b.left < a.left + a.w && a.top < b.top + b.h && b.top < a.top + a.h
}
function check(boxes: BadgeBox[], W: number, H: number) {
  const spots = layoutBadges(boxes, W, H)
  const placed = boxes.map((b) => ({ ...b, ...spots.get(b.id)! }))
  for (const p of placed) {
    expect(p.left).toBeGreaterThanOrEqual(0)
    expect(p.top).toBeGreaterThanOrEqual(0)
    expect(p.left + p.w).toBeLessThanOrEqual(W)
    expect(p.top + p.h).toBeLessThanOrEqual(H)
  }
  for (let i = 0; i < placed.length; i++) for (let j = i + 1; j < placed.length; j++) expect(overlaps(placed[i], placed[j]), `${placed[i].id} and ${placed[j].id}`).toBe(false)
  return spots
}

describe('floor plan badges', () => {
  it('centres a lone badge on its point', () => {
    expect(layoutBadges([{ id: 1, x: 0.5, y: 0.5, w: 100, h: 30, rank: 0 }], 1000, 600).get(1)).toEqual({ left: 450, top: 285 })
  })

  it('keeps a badge at the edge wholly inside the plan', () => {
    const spots = check(
      [
        { id: 1, x: 0, y: 0, w: 100, h: 30, rank: 0 },
        { id: 2, x: 1, y: 1, w: 100, h: 30, rank: 0 },
        { id: 3, x: 0.99, y: 0.02, w: 100, h: 30, rank: 0 },
      ],
      1000,
      600,
    )
    expect(spots.get(1)).toEqual({ left: 0, top: 0 })
    expect(spots.get(2)).toEqual({ left: 900, top: 570 })
  })

  it('moves a badge off another to the nearest free spot', () => {
    const spots = check(
      [
        { id: 1, x: 0.5, y: 0.5, w: 100, h: 30, rank: 0 },
        { id: 2, x: 0.52, y: 0.5, w: 100, h: 30, rank: 0 },
      ],
      1000,
      600,
    )
    expect(spots.get(1)).toEqual({ left: 450, top: 285 })
    // Nearest: just below or above (30 + 4 px), not 100 px to the side.
    expect(Math.abs(spots.get(2)!.top - 285)).toBe(34)
  })

  it('never moves an active alarm for another badge: the higher rank keeps its place', () => {
    const spots = check(
      [
        { id: 1, x: 0.5, y: 0.5, w: 100, h: 30, rank: 0 },
        { id: 2, x: 0.5, y: 0.5, w: 120, h: 34, rank: 3 },
      ],
      1000,
      600,
    )
    expect(spots.get(2)).toEqual({ left: 440, top: 283 })
  })

  it("lays out the demo's crowded floors on a phone-sized plan", () => {
    // Five badges on one line 18 % of the width apart, on a plan 372 px wide.
    const boxes = [0, 1, 2, 3, 4].map((i) => ({ id: i, x: 0.12 + (0.55 * (i % 4)) / 3, y: 0.3 + 0.25 * Math.floor(i / 4), w: 140, h: 36, rank: i === 2 ? 3 : 0 }))
    check(boxes, 372, 223)
  })

  it('overlaps only when the plan has no room left', () => {
    const boxes = [1, 2, 3].map((id) => ({ id, x: 0.5, y: 0.5, w: 90, h: 40, rank: 0 }))
    const spots = layoutBadges(boxes, 100, 50)
    expect(spots.get(1)).toEqual({ left: 5, top: 5 })
    expect(spots.size).toBe(3)
  })
})
