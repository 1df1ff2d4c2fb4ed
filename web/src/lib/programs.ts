// Programs for people: their state in words and colours, their scan time, and the server's
// syntax errors (the check's answer, a save's 422) as marks the editor shows at their line. Pure
// functions: no Vue, no I/O.

import { ApiError } from '../api/client'
import { explain, Problem, tidy } from './errors'
import type { Program, ProgramCheck, ProgramError } from '../api/types'
import type { Mark } from './basic'
import type { Tone } from './quality'

/** The badge of a program's state: running green, stopped plain, error red. */
export function statusBadge(p: Pick<Program, 'status' | 'enabled'>): { cls: Tone; text: string } {
  switch (p.status) {
    case 'running':
      return { cls: 'ok', text: 'running' }
    case 'error':
      return { cls: 'bad', text: 'error' }
    default:
      return { cls: '', text: p.enabled ? 'starting' : 'stopped' }
  }
}

/** How long a scan took: `42 µs`, `1.3 ms`, `250 ms`; `—` for none. */
export function scanTimeText(us: number | null | undefined): string {
  if (us === null || us === undefined || !Number.isFinite(us)) return '—'
  if (us < 1000) return `${Math.round(us)} µs`
  if (us < 100_000) return `${(us / 1000).toFixed(1)} ms`
  return `${Math.round(us / 1000)} ms`
}

/** `1 scan`, `12 scans`. */
export function scansText(n: number): string {
  return n === 1 ? '1 scan' : `${n} scans`
}

/** A server message without the place it starts with (`line 3, column 12: `): the editor shows
 * the place itself, at the line. */
export function withoutPlace(message: string): string {
  return message.replace(/^\s*line \d+(?:, column \d+)?:\s*/i, '')
}

/** The sentence of a runtime error: `Line 30: division by zero` (the BASIC line number). */
export function runtimeErrorText(e: Pick<ProgramError, 'line_number' | 'message'>): string {
  const what = withoutPlace(e.message)
  return e.line_number ? `Line ${e.line_number}: ${what}` : what
}

/** The mark of a check's answer; null when the program is fine. */
export function checkMark(c: ProgramCheck): Mark | null {
  if (c.ok || !c.error) return null
  return { line: c.error.line, column: c.error.column || null, message: withoutPlace(c.error.message), kind: 'syntax' }
}

/** The codes of a save refused because of the program text (422 with `line` and `column`):
 * a syntax error, a point its device does not have, a GOTO to a line that does not exist. */
const SOURCE_CODES = new Set(['syntax_error', 'unknown_point', 'invalid_program'])

/** What a failed save means for the person at the screen: a text the server refused is said
 * as the mistake it is, with its place (the same codes mean other things on other pages, so
 * these words live here, not in errors.ts); anything else as every page says it. */
export function saveProblem(e: unknown): Problem {
  const p = explain(e)
  if (!(e instanceof ApiError) || e.status !== 422 || !SOURCE_CODES.has(e.code)) return p
  const lead = e.code === 'unknown_point' ? 'The program names a point its device does not have' : 'The program has a mistake'
  return new Problem(`${lead}, so it was not saved: ${tidy(e.message).replace(/\.$/, '')}.`, p.detail, false)
}

/** The mark of a save the server refused because of the text (its 422 `line` and `column`); null
 * for any other failure (those are said as errors of the page). */
export function saveErrorMark(e: unknown): Mark | null {
  if (!(e instanceof ApiError) || e.status !== 422 || !SOURCE_CODES.has(e.code)) return null
  const err = (e.body as { error?: { line?: unknown; column?: unknown } } | null)?.error
  const line = typeof err?.line === 'number' ? err.line : Number(/line (\d+)/i.exec(e.message)?.[1])
  if (!Number.isInteger(line) || line < 1) return null
  const column = typeof err?.column === 'number' ? err.column : Number(/column (\d+)/i.exec(e.message)?.[1])
  return { line, column: Number.isInteger(column) && column >= 1 ? column : null, message: withoutPlace(e.message), kind: 'syntax' }
}

/** The place of a mark in words, for the list under the editor: `Line 3, column 12`. */
export function placeText(m: Pick<Mark, 'line' | 'column'>): string {
  return m.column ? `Line ${m.line}, column ${m.column}` : `Line ${m.line}`
}
