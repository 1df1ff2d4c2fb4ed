// Imports and hardware sync as the pages show them: where a CSV mistake is, what a field's value
// reads as, which way a sync difference goes under a strategy, a job's progress in words. Pure
// functions (the pages and the sync panel call them; their tests are in imports.test.ts).

import { ApiError } from '../api/client'
import type {
  CsvRowError,
  DayName,
  Pair,
  ProgImport,
  SyncChanged,
  SyncChoice,
  SyncDifference,
  SyncDirection,
  SyncField,
  SyncStrategy,
  WebviewJob,
} from '../api/types'
import { DAY_SHORT, DAYS } from '../components/schedules/model'

/** The mistakes of a CSV file the server refused (422 `invalid_csv`), with how many there are in
 * all (the server lists at most 1000); null when `e` is another failure. */
export function csvErrors(e: unknown): { errors: CsvRowError[]; total: number } | null {
  if (!(e instanceof ApiError) || e.code !== 'invalid_csv') return null
  const detail = (e.body as { error?: { errors?: CsvRowError[]; total?: number } } | null)?.error
  const errors = Array.isArray(detail?.errors) ? detail!.errors : []
  return { errors, total: typeof detail?.total === 'number' ? detail.total : errors.length }
}

/** Where a CSV mistake is, as a spreadsheet user finds it: `Row 4, column unit_id (cell F4)`,
 * `The header (row 1)`, `The file`. */
export function csvErrorPlace(e: CsvRowError): string {
  if (e.row === 0) return 'The file'
  const row = e.row === 1 ? 'The header (row 1)' : `Row ${e.row}`
  // The line differs from the row only when a quoted cell before it holds a line break (a record
  // never starts before its row's line), so only a later line is worth saying.
  const line = e.line > e.row ? `, line ${e.line}` : ''
  if (!e.column) return `${row}${line}`
  return `${row}${line}, column ${e.column}${e.cell ? ` (cell ${e.cell})` : ''}`
}

/** The words of a CSV row's action. */
export function csvActionText(a: string): string {
  return a === 'create' ? 'Created' : a === 'change' ? 'Changed' : 'Left as it is'
}

/** A routine's times (`{"monday": [{"on": "07:00", "off": "18:00"}]}`) as `Mon 07:00–18:00; Sat …`. */
function timesText(v: Partial<Record<DayName, Pair[]>>): string {
  return DAYS.filter((d) => v[d]?.length)
    .map((d) => `${DAY_SHORT[d]} ${v[d]!.map((p) => `${p.on}–${p.off}`).join(', ')}`)
    .join('; ')
}

/** A catalog or device value as a cell shows it: none as an em dash, text as it is, lists joined,
 * a routine's times by day. */
export function valueText(v: unknown, field?: string): string {
  if (v === null || v === undefined || v === '') return '—'
  if (Array.isArray(v) && field && CUSTOM_RANGE_FIELDS.has(field)) return v.length ? v.map(customRangeText).join(', ') : 'none'
  if (typeof v === 'boolean') {
    if (field === 'manual' || field === 'auto_manual') return v ? 'Manual' : 'Auto'
    if (field === 'digital') return v ? 'Digital' : 'Analog'
    return v ? 'Yes' : 'No'
  }
  if (typeof v === 'string' || typeof v === 'number') return String(v)
  if (Array.isArray(v)) return v.map((x) => valueText(x)).join(', ')
  if (field === 'times' && typeof v === 'object') return timesText(v as Partial<Record<DayName, Pair[]>>)
  return JSON.stringify(v)
}

/** The fields of a .prog file's custom ranges (lists of ranges by code). */
const CUSTOM_RANGE_FIELDS = new Set(['digital', 'variable_units', 'analog_tables'])

/** A custom range as people read it: `23 Stopped/Running`, `23 TANK1/TANK2 (inverse)`, `34 PSI`. */
function customRangeText(r: { code?: number; off?: string; on?: string; name?: string; direct?: boolean }): string {
  if (r.name !== undefined) return `${r.code} ${r.name}`
  return `${r.code} ${r.off}/${r.on}${r.direct ? ' (inverse)' : ''}`
}

const SYNC_FIELDS: Record<SyncField, string> = {
  label: 'Label',
  description: 'Full label',
  range: 'Range code',
  digital: 'Digital / analog',
  manual: 'Auto / manual',
  times: 'Times',
  holidays: 'Holidays',
  days: 'Days',
}

/** The name T3000 users know a synced field by. */
export function syncFieldText(f: SyncField): string {
  return SYNC_FIELDS[f] ?? f
}

/** Which side changed since the last sync, in words. */
export function changedText(c: SyncChanged): string {
  return c === 'device' ? 'On the controller' : c === 'server' ? 'On the server' : 'On both (conflict)'
}

/** What applying does with a row, in words (null: a conflict nobody decided). */
export function directionText(d: SyncDirection | null): string {
  if (d === 'to_server') return 'Controller → server'
  if (d === 'to_device') return 'Server → controller'
  if (d === 'skip') return 'Leave as it is'
  return 'Choose a side'
}

/** A row's key for per-row choices: the panel's object and the field (`IN1:label`, `WR1:times`). */
export function diffKey(d: { point: string; field: SyncField }): string {
  return `${d.point}:${d.field}`
}

/**
 * Which way applying takes `d`, as the server decides it: a row's own choice first; else a field
 * changed on one side goes to the other; a conflict goes the strategy's way (`per_field`: nowhere
 * until chosen).
 */
export function effectiveDirection(d: SyncDifference, strategy: SyncStrategy, choice?: SyncDirection | null): SyncDirection | null {
  if (choice) return choice
  if (d.changed === 'device') return 'to_server'
  if (d.changed === 'server') return 'to_device'
  if (strategy === 'device_wins') return 'to_server'
  if (strategy === 'server_wins') return 'to_device'
  return null
}

/** The choices to send with an apply: every row whose own choice differs from what the strategy
 * would do with it. */
export function syncChoices(diffs: SyncDifference[], strategy: SyncStrategy, chosen: Record<string, SyncDirection | null | undefined>): SyncChoice[] {
  const out: SyncChoice[] = []
  for (const d of diffs) {
    const c = chosen[diffKey(d)]
    if (c && c !== effectiveDirection(d, strategy)) out.push({ point: d.point, field: d.field, direction: c })
  }
  return out
}

/** How many rows an apply would change, and how many conflicts stay open. */
export function syncCounts(diffs: SyncDifference[], strategy: SyncStrategy, chosen: Record<string, SyncDirection | null | undefined>) {
  let toServer = 0
  let toDevice = 0
  let open = 0
  for (const d of diffs) {
    const dir = effectiveDirection(d, strategy, chosen[diffKey(d)])
    if (dir === 'to_server') toServer++
    else if (dir === 'to_device') toDevice++
    else if (dir === null) open++
  }
  return { toServer, toDevice, open }
}

const JOB_STATES: Record<string, string> = {
  running: 'Importing',
  interrupted: 'Interrupted',
  done: 'Finished',
  failed: 'Failed',
}

/** A WebView import job's state in words. */
export function jobStateText(state: string): string {
  return JOB_STATES[state] ?? state
}

/** A whole number with thin thousands separators: 1 234 567. */
export function count(n: number): string {
  return Math.round(n).toLocaleString('en-US').replace(/,/g, '\u202f')
}

/** `1 point`, `2 points`, `1 trend log` (the server's record names: `trendlogs` reads as trend logs). */
export function plural(n: number, word: string): string {
  const words: Record<string, [string, string]> = {
    trendlogs: ['trend log', 'trend logs'],
    buildings: ['building', 'buildings'],
    floors: ['floor', 'floors'],
    rooms: ['room', 'rooms'],
    devices: ['device', 'devices'],
    points: ['point', 'points'],
    changes: ['change', 'changes'],
    fields: ['field', 'fields'],
    rows: ['row', 'rows'],
  }
  const [one, many] = words[word] ?? [word.replace(/s$/, ''), word]
  return `${count(n)} ${n === 1 ? one : many}`
}

/** A job's progress for its bar: percent (0 to 100, whole) and a line of words. */
export function jobProgress(j: WebviewJob): { percent: number; text: string } {
  const share = j.rows_total > 0 ? j.rows_done / j.rows_total : j.state === 'done' ? 1 : j.progress
  const percent = Math.max(0, Math.min(100, Math.floor((Number.isFinite(share) ? share : 0) * 100)))
  const parts = [`${count(j.rows_done)} of ${count(j.rows_total)} rows`, `${count(j.samples)} samples stored`]
  const skipped = Object.values(j.skipped ?? {}).reduce((a, b) => a + b, 0)
  if (skipped) parts.push(`${count(skipped)} rows skipped`)
  if (j.state === 'running' && j.samples_per_sec) parts.push(`${count(j.samples_per_sec)} samples/s`)
  return { percent, text: parts.join(' · ') }
}

/** What to do about a job, for the operator. */
export function jobAdvice(j: WebviewJob): string {
  if (j.state === 'interrupted')
    return 'The server stopped during this import. Choose the same WebView database again to continue where it stopped; no sample is stored twice.'
  if (j.state === 'failed') return `The import stopped: ${j.error ?? 'no reason was given'}.`
  return ''
}

/** One line of a .prog preview's table: a point, a calendar, a schedule, a trend log or a program. */
export interface ProgRow {
  /** `Input`, `Weekly routine`, ... */
  kind: string
  /** The panel's object: `IN1`, `WR2`. */
  source: string
  /** What it is called here: the label, or the record's name. */
  name: string
  action: string
  /** `label: "" → "SUPPLY"` lines. */
  changes: string[]
}

function kindOfPoint(p: string): string {
  if (p.startsWith('IN')) return 'Input'
  if (p.startsWith('OUT')) return 'Output'
  if (p.startsWith('VAR')) return 'Variable'
  return 'Point'
}

/** The words of a .prog row's action. */
export function progActionText(a: string): string {
  return a === 'create' ? 'Created' : a === 'update' ? 'Changed' : 'Left as it is'
}

/** A .prog preview as one table, points first, then calendars, schedules, trend logs, programs, custom ranges. */
export function progRows(p: ProgImport): ProgRow[] {
  // T3000 calls the description the full label.
  const name = (f: string) => (f === 'description' ? 'full label' : f.replace(/_/g, ' '))
  const change = (c: { field: string; old: unknown; new: unknown }) => `${name(c.field)}: ${valueText(c.old, c.field)} → ${valueText(c.new, c.field)}`
  const rows: ProgRow[] = p.points.map((x) => ({
    kind: kindOfPoint(x.point),
    source: x.point,
    name: x.label ?? '',
    action: x.action,
    changes: x.changes.map(change),
  }))
  const items: [string, ProgImport['calendars']][] = [
    ['Annual routine', p.calendars],
    ['Weekly routine', p.schedules],
    ['Monitor (trend log)', p.trendlogs],
    ['Program', p.programs],
    ['Custom ranges', p.custom_ranges],
  ]
  for (const [kind, list] of items)
    for (const x of list) rows.push({ kind, source: x.source, name: x.name, action: x.action, changes: x.changes.map(change) })
  return rows
}

/** A .prog file's warnings with the same message together: `IN9, IN10, …: range code 239 ...`
 * once instead of 56 lines; in the order each message first came. */
export function groupWarnings(ws: { item: string; message: string }[]): { items: string[]; message: string }[] {
  const out: { items: string[]; message: string }[] = []
  const by = new Map<string, { items: string[]; message: string }>()
  for (const w of ws) {
    let g = by.get(w.message)
    if (!g) {
      g = { items: [], message: w.message }
      by.set(w.message, g)
      out.push(g)
    }
    if (!g.items.includes(w.item)) g.items.push(w.item)
  }
  return out
}

/** A group's objects for a line: all of them up to `max`, else the first ones and how many more. */
export function itemsText(items: string[], max = 8): string {
  if (items.length <= max) return items.join(', ')
  return `${items.slice(0, max).join(', ')} and ${items.length - max} more`
}

/** The import kind a file's name suggests: `prog`, `webview`, `csv`, or null. */
export function kindOfFile(name: string): 'prog' | 'webview' | 'csv' | null {
  const n = name.toLowerCase()
  if (n.endsWith('.prog')) return 'prog'
  if (n.endsWith('.db') || n.endsWith('.sqlite') || n.endsWith('.sqlite3')) return 'webview'
  if (n.endsWith('.csv') || n.endsWith('.txt')) return 'csv'
  return null
}
