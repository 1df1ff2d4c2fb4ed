import { describe, expect, it } from 'vitest'
import { ApiError } from '../api/client'
import { deviceErrorText, explain, localProblem, tidy } from './errors'

describe('explain', () => {
  it('words a known code for the operator and keeps the server text as the detail', () => {
    const p = explain(new ApiError(409, 'point_in_auto', 'the point is in auto (its controller drives it); send switch_to_manual: true to take it over'))
    expect(p.text).toMatch(/^The controller is running this point in Auto/)
    expect(p.text).not.toContain('switch_to_manual')
    expect(p.detail).toBe('HTTP 409 · point_in_auto: the point is in auto (its controller drives it); send switch_to_manual: true to take it over')
    expect(p.retryable).toBe(false)
  })

  it('says a 404 may have been deleted, without code quotes, and offers no retry', () => {
    const p = explain(new ApiError(404, 'not_found', 'no device `9999`'))
    expect(p.text).toBe('No device "9999". It may have been deleted or renamed.')
    expect(p.retryable).toBe(false)
  })

  it('hides a Modbus exception behind the detail', () => {
    const p = explain(new ApiError(502, 'device_write_failed', 'write to OUT2 failed: device answered with exception 0x03 (illegal data value)'))
    expect(p.text).not.toMatch(/0x03|exception/)
    expect(p.detail).toContain('0x03')
  })

  it('offers a retry for no answer, a busy or failing server, never for a refusal', () => {
    expect(explain(new ApiError(0, 'network', 'the server cannot be reached (Failed to fetch)')).retryable).toBe(true)
    expect(explain(new ApiError(503, 'storage_backlog', 'backlog')).retryable).toBe(true)
    expect(explain(new ApiError(500, 'something_new', 'panic at the disco')).text).toMatch(/^The server ran into a problem/)
    expect(explain(new ApiError(429, 'write_rate_limited', 'x')).retryable).toBe(true)
    expect(explain(new ApiError(403, 'forbidden', 'this needs the role admin (you are operator)')).text).toMatch(/Ask an administrator/)
    expect(explain(new ApiError(422, 'invalid_schedule', 'x')).retryable).toBe(false)
  })

  it('shows an unknown validation message tidied, as the server says which field', () => {
    const p = explain(new ApiError(422, 'invalid_rule', 'limit must be finite for `point 4`'))
    expect(p.text).toBe('Limit must be finite for "point 4"')
  })

  it('reads as its text in a template or a string', () => {
    expect(`${localProblem('Pick a date first.')}`).toBe('Pick a date first.')
    expect(String(explain(new Error('boom')))).toBe('Boom')
    expect(explain(explain('x')).text).toBe('X')
  })

  it('tidies code quotes and the first letter', () => {
    expect(tidy('unknown state `open`')).toBe('Unknown state "open"')
    expect(tidy('')).toBe('')
  })
})

describe('deviceErrorText', () => {
  it("puts a driver's error in words, never a Modbus exception number", () => {
    expect(deviceErrorText('device answered with exception 0x02 (illegal data address)')).toMatch(/no register/)
    expect(deviceErrorText('no answer within 1000 ms')).toBe('No answer from the device')
    expect(deviceErrorText('connection failed: Connection refused (os error 111)')).toBe('Cannot connect to the device')
    expect(deviceErrorText('invalid reply: CRC mismatch')).toMatch(/garbled/)
    expect(deviceErrorText(null)).toBe('')
    for (const c of ['01', '03', '04', '06', '0b']) expect(deviceErrorText(`device answered with exception 0x${c} (x)`)).not.toMatch(/0x|exception/)
  })
})
