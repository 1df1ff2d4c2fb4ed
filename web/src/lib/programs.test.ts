import { describe, expect, it } from 'vitest'
import { ApiError } from '../api/client'
import { explain } from './errors'
import { checkMark, placeText, runtimeErrorText, saveErrorMark, saveProblem, scansText, scanTimeText, statusBadge, withoutPlace } from './programs'

describe('program state in words', () => {
  it('badges running, stopped and error', () => {
    expect(statusBadge({ status: 'running', enabled: true })).toEqual({ cls: 'ok', text: 'running' })
    expect(statusBadge({ status: 'stopped', enabled: false })).toEqual({ cls: '', text: 'stopped' })
    expect(statusBadge({ status: 'error', enabled: true })).toEqual({ cls: 'bad', text: 'error' })
  })

  it('writes scan times in µs and ms', () => {
    expect(scanTimeText(null)).toBe('—')
    expect(scanTimeText(42)).toBe('42 µs')
    expect(scanTimeText(1340)).toBe('1.3 ms')
    expect(scanTimeText(250_400)).toBe('250 ms')
    expect(scansText(1)).toBe('1 scan')
    expect(scansText(0)).toBe('0 scans')
  })

  it('says a runtime error with its BASIC line, without the text place', () => {
    expect(runtimeErrorText({ line_number: 30, message: 'division by zero' })).toBe('Line 30: division by zero')
    expect(runtimeErrorText({ line_number: 0, message: 'line 1, column 4: unknown point VAR999' })).toBe('unknown point VAR999')
    expect(withoutPlace('line 3, column 12: expected THEN after the condition, found ELSE')).toBe('expected THEN after the condition, found ELSE')
    expect(placeText({ line: 3, column: 12 })).toBe('Line 3, column 12')
    expect(placeText({ line: 3, column: null })).toBe('Line 3')
  })
})

describe('syntax errors as marks', () => {
  it('from the check', () => {
    expect(checkMark({ ok: true })).toBeNull()
    expect(checkMark({ ok: false, error: { line: 2, column: 16, message: 'line 2, column 16: expected THEN after the condition, found ELSE' } })).toEqual({
      line: 2,
      column: 16,
      message: 'expected THEN after the condition, found ELSE',
      kind: 'syntax',
    })
  })

  it("from a save's 422, by its line and column (or the message's)", () => {
    const body = { error: { code: 'syntax_error', message: 'line 3, column 12: expected THEN', line: 3, column: 12 } }
    expect(saveErrorMark(new ApiError(422, 'syntax_error', 'line 3, column 12: expected THEN', body))).toEqual({ line: 3, column: 12, message: 'expected THEN', kind: 'syntax' })
    expect(saveErrorMark(new ApiError(422, 'unknown_point', 'line 1, column 4: no point VAR999 on floor1-ahu', null))).toEqual({
      line: 1,
      column: 4,
      message: 'no point VAR999 on floor1-ahu',
      kind: 'syntax',
    })
    // A GOTO to a line that does not exist, with its place.
    expect(saveErrorMark(new ApiError(422, 'invalid_program', 'line 2, column 9: no line 99', { error: { code: 'invalid_program', message: 'line 2, column 9: no line 99', line: 2, column: 9 } }))).toMatchObject({ line: 2, column: 9 })
    // Other failures are not the text's: no mark (a program without a device has no place).
    expect(saveErrorMark(new ApiError(422, 'invalid_program', 'a program needs a device_id'))).toBeNull()
    expect(saveErrorMark(new ApiError(422, 'invalid_name', 'name must not be empty'))).toBeNull()
    expect(saveErrorMark(new ApiError(403, 'forbidden', 'x'))).toBeNull()
    expect(saveErrorMark(new Error('x'))).toBeNull()
  })

  it('a refused save reads as words, not as the code; other failures as everywhere', () => {
    const p = saveProblem(new ApiError(422, 'syntax_error', 'line 3, column 12: expected `THEN`'))
    expect(p.text).toBe('The program has a mistake, so it was not saved: Line 3, column 12: expected "THEN".')
    expect(p.detail).toContain('syntax_error')
    expect(saveProblem(new ApiError(422, 'unknown_point', 'line 1, column 4: no point VAR999')).text).toMatch(/^The program names a point its device does not have, so it was not saved: Line 1/)
    expect(saveProblem(new ApiError(422, 'invalid_program', 'line 1, column 4: no line 99 to go to')).text).toMatch(/^The program has a mistake/)
    // A 404 unknown_point of another kind (a trend log's point) is not a program's mistake.
    expect(saveProblem(new ApiError(404, 'unknown_point', 'no point 7')).text).toBe(explain(new ApiError(404, 'unknown_point', 'no point 7')).text)
    expect(saveProblem(new ApiError(403, 'forbidden', 'x')).text).toMatch(/Ask an administrator/)
  })
})
