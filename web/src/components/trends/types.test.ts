// The trend legend's values: digital states with their 0/1, thinned traces as spans.
import { describe, expect, it } from 'vitest'
import { legendValue } from './types'

describe('legend values', () => {
  it('keeps the 0/1 with the state name, and says On/Off without names', () => {
    expect(legendValue(1, true, ['Unoccupied', 'Occupied'])).toBe('Occupied (1)')
    expect(legendValue([0, 1], true, ['Close', 'Open'])).toBe('Close (0) … Open (1)')
    expect(legendValue(0, true)).toBe('Off (0)')
    expect(legendValue(1, true, null)).toBe('On (1)')
  })
  it('writes analog values like every page, and a thinned span as minimum … maximum', () => {
    expect(legendValue(21.456789)).toBe('21.457')
    expect(legendValue([20, 20])).toBe('20')
    expect(legendValue([19.5, 21.25])).toBe('19.5 … 21.25')
    expect(legendValue(null)).toBe('—')
  })
})
