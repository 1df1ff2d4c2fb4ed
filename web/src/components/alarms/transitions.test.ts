import { describe, expect, it } from 'vitest'
import { kindClass, kindText } from './transitions'

const event = (type: string, from: string, to: string, extra: Record<string, string> = {}) => ({
  transition: { at_us: 0, from, to, level: 'offline', value: null, kind: { type, ...extra } },
})

describe('alarm history transitions', () => {
  it('names raises, new faults under an alarm that is on, and a fault of several ending', () => {
    expect(kindText(event('raised', 'normal', 'active'))).toBe('Raised')
    expect(kindText(event('raised', 'cleared', 'active'))).toBe('Raised')
    expect(kindText(event('raised', 'active', 'active'))).toBe('Raised again (new fault)')
    expect(kindText(event('raised', 'acknowledged', 'active'))).toBe('Raised again (new fault)')
    expect(kindText(event('cleared', 'active', 'active'))).toBe('Partly cleared')
    expect(kindText(event('cleared', 'acknowledged', 'acknowledged'))).toBe('Partly cleared')
    expect(kindText(event('cleared', 'active', 'cleared'))).toBe('Cleared')
    expect(kindText(event('normal', 'acknowledged', 'normal'))).toBe('Back to normal')
    expect(kindText(event('acknowledged', 'active', 'acknowledged', { by: 'op' }))).toBe('Acknowledged by op')
    expect(kindText(event('level_changed', 'active', 'active', { from: 'high' }))).toBe('Level changed (from high)')
  })

  it('colours what needs attention and what ended', () => {
    expect(kindClass(event('raised', 'acknowledged', 'active'))).toBe('bad')
    expect(kindClass(event('cleared', 'active', 'active'))).toBe('ok')
    expect(kindClass(event('acknowledged', 'active', 'acknowledged', { by: 'op' }))).toBe('')
  })
})
