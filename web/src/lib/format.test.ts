// Numbers and sizes: the same text on every page.
import { describe, expect, it } from 'vitest'
import { formatBytes, formatRate, formatRtt, formatValue, percent } from './format'

describe('values', () => {
  it('at most 3 decimals, trailing zeros dropped, no grouping, tiny values in exponent form', () => {
    expect(formatValue(null)).toBe('—')
    expect(formatValue(undefined)).toBe('—')
    expect(formatValue(Number.NaN)).toBe('—')
    expect(formatValue(42)).toBe('42')
    expect(formatValue(1500)).toBe('1500')
    expect(formatValue(21.456789)).toBe('21.457')
    expect(formatValue(21.5)).toBe('21.5')
    expect(formatValue(0.12345)).toBe('0.123')
    expect(formatValue(-3.25)).toBe('-3.25')
    expect(formatValue(1234.56)).toBe('1234.56')
    expect(formatValue(0.00012)).toBe('1.20e-4')
  })
  it('rates: one decimal below 100, none from 100 on', () => {
    expect(formatRate(null)).toBe('—')
    expect(formatRate(12.34)).toBe((12.3).toLocaleString())
    expect(formatRate(250.6)).toBe((251).toLocaleString())
  })
  it('round trips', () => {
    expect(formatRtt(null)).toBe('—')
    expect(formatRtt(0.034)).toBe('0.03 ms')
    expect(formatRtt(12.34)).toBe('12.3 ms')
    expect(formatRtt(250.4)).toBe('250 ms')
  })
  it('sizes in binary units', () => {
    expect(formatBytes(0)).toBe('0 B')
    expect(formatBytes(1023)).toBe('1023 B')
    expect(formatBytes(1536)).toBe('1.5 KiB')
    expect(formatBytes(8 * 1024 * 1024)).toBe('8.0 MiB')
    expect(formatBytes(9.75 * 1024 * 1024)).toBe('9.8 MiB')
    expect(formatBytes(3 * 1024 ** 3)).toBe('3.0 GiB')
  })
  it('shares as whole percentages', () => {
    expect(percent(null)).toBeNull()
    expect(percent(0.947)).toBe(95)
    expect(percent(1)).toBe(100)
  })
})
