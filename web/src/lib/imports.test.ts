import { describe, expect, it } from 'vitest'
import { ApiError } from '../api/client'
import type { ProgImport, SyncDifference, WebviewJob } from '../api/types'
import {
  csvErrorPlace,
  csvErrors,
  effectiveDirection,
  jobAdvice,
  jobProgress,
  kindOfFile,
  groupWarnings,
  itemsText,
  plural,
  progRows,
  syncChoices,
  syncCounts,
  valueText,
} from './imports'
import { explain } from './errors'

const diff = (point_id: number, changed: SyncDifference['changed'], field: SyncDifference['field'] = 'label'): SyncDifference => ({
  point_id,
  point: `IN${point_id}`,
  field,
  device: 'DEV',
  server: 'SRV',
  last_synced: 'OLD',
  changed,
  direction: null,
})

describe('CSV mistakes', () => {
  const body = {
    error: {
      code: 'invalid_csv',
      message: 'row 3, column unit_id (F3): must be 1 to 247',
      total: 1204,
      errors: [
        { row: 3, line: 3, column: 'unit_id', cell: 'F3', key: 'AHU-1', message: 'must be 1 to 247' },
        { row: 1, line: 1, column: 'colour', cell: null, key: null, message: 'unknown column' },
        { row: 0, line: 0, column: null, cell: null, key: null, message: 'the file is UTF-16' },
        { row: 9, line: 11, column: null, cell: null, key: null, message: 'too many cells' },
      ],
    },
  }

  it('are read from the 422 body with the total the server counted', () => {
    const got = csvErrors(new ApiError(422, 'invalid_csv', body.error.message, body))
    expect(got?.total).toBe(1204)
    expect(got?.errors).toHaveLength(4)
  })

  it('are none for another failure', () => {
    expect(csvErrors(new ApiError(403, 'forbidden', 'admin only'))).toBeNull()
    expect(csvErrors(new Error('x'))).toBeNull()
  })

  it('name the row, the line when it differs, the column and the cell', () => {
    const [a, b, c, d] = body.error.errors
    expect(csvErrorPlace(a)).toBe('Row 3, column unit_id (cell F3)')
    expect(csvErrorPlace(b)).toBe('The header (row 1), column colour')
    expect(csvErrorPlace(c)).toBe('The file')
    expect(csvErrorPlace(d)).toBe('Row 9, line 11')
    // A line before its row cannot be where the record starts: not said.
    expect(csvErrorPlace({ ...a, line: 1, row: 2 })).toBe('Row 2, column unit_id (cell F3)')
  })

  it('lead the operator text, keeping where the first one is', () => {
    const p = explain(new ApiError(422, 'invalid_csv', body.error.message, body))
    expect(p.text).toBe('The file has mistakes; nothing was imported: Row 3, column unit_id (F3): must be 1 to 247.')
    expect(p.retryable).toBe(false)
  })
})

describe('bad files in words', () => {
  it('keep the byte offset of a .prog and the table of a WebView database', () => {
    expect(explain(new ApiError(422, 'invalid_prog_file', 'truncated at offset 4096: the inputs block needs 2880 bytes')).text).toBe(
      'This is not a T3000 panel file this server can read: Truncated at offset 4096: the inputs block needs 2880 bytes.',
    )
    expect(explain(new ApiError(422, 'not_webview_schema', 'table TRENDLOG_DATA has no column LoggingTime_Fmt')).text).toMatch(
      /^This database is not laid out like T3000 WebView's: Table TRENDLOG_DATA has no column LoggingTime_Fmt\.$/,
    )
  })

  it('say why a device cannot be synced', () => {
    expect(explain(new ApiError(409, 'nothing_to_sync', 'device "co2" has no T3 inputs')).text).toMatch(/not a T3 controller/)
    expect(explain(new ApiError(409, 'device_not_polled', 'x')).text).toMatch(/not polled/)
    const offline = explain(new ApiError(502, 'device_unreadable', 'could not read: no answer within 1000 ms'))
    expect(offline.text).toMatch(/did not answer/)
    expect(offline.retryable).toBe(true)
  })
})

describe('sync directions', () => {
  it('send a field changed on one side to the other, whatever the strategy', () => {
    for (const s of ['device_wins', 'server_wins', 'per_field'] as const) {
      expect(effectiveDirection(diff(1, 'device'), s)).toBe('to_server')
      expect(effectiveDirection(diff(1, 'server'), s)).toBe('to_device')
    }
  })

  it('decide a conflict by the strategy, per field leaving it open until chosen', () => {
    expect(effectiveDirection(diff(1, 'both'), 'device_wins')).toBe('to_server')
    expect(effectiveDirection(diff(1, 'both'), 'server_wins')).toBe('to_device')
    expect(effectiveDirection(diff(1, 'both'), 'per_field')).toBeNull()
    expect(effectiveDirection(diff(1, 'both'), 'per_field', 'to_device')).toBe('to_device')
    expect(effectiveDirection(diff(1, 'device'), 'per_field', 'skip')).toBe('skip')
  })

  it('send only the choices that differ from what the strategy does', () => {
    const diffs = [diff(1, 'both'), diff(2, 'device'), diff(3, 'server', 'description'), diff(4, 'both')]
    const chosen = { 'IN1:label': 'to_device' as const, 'IN2:label': 'to_server' as const, 'IN3:description': 'skip' as const, 'IN4:label': null }
    expect(syncChoices(diffs, 'per_field', chosen)).toEqual([
      { point: 'IN1', field: 'label', direction: 'to_device' },
      { point: 'IN3', field: 'description', direction: 'skip' },
    ])
    expect(syncChoices(diffs, 'server_wins', chosen)).toEqual([{ point: 'IN3', field: 'description', direction: 'skip' }])
  })

  it('count what an apply does and the conflicts left open', () => {
    const diffs = [diff(1, 'both'), diff(2, 'device'), diff(3, 'server'), diff(4, 'both')]
    expect(syncCounts(diffs, 'per_field', { 'IN1:label': 'to_server' })).toEqual({ toServer: 2, toDevice: 1, open: 1 })
    expect(syncCounts(diffs, 'device_wins', {})).toEqual({ toServer: 3, toDevice: 1, open: 0 })
  })

  it('show values as T3000 users read them', () => {
    expect(valueText(true, 'manual')).toBe('Manual')
    expect(valueText(false, 'manual')).toBe('Auto')
    expect(valueText(true, 'digital')).toBe('Digital')
    expect(valueText(null, 'label')).toBe('—')
    expect(valueText('', 'label')).toBe('—')
    expect(valueText(19, 'range')).toBe('19')
    expect(valueText(['01-01', '12-25'], 'days')).toBe('01-01, 12-25')
    expect(valueText(['AR1'], 'holidays')).toBe('AR1')
    expect(
      valueText({ saturday: [{ on: '08:00', off: '12:00' }], monday: [{ on: '07:00', off: '12:00' }, { on: '13:00', off: '24:00' }] }, 'times'),
    ).toBe('Mon 07:00–12:00, 13:00–24:00; Sat 08:00–12:00')
  })
})

describe('WebView jobs', () => {
  const job = (over: Partial<WebviewJob>): WebviewJob => ({
    id: 1,
    sha256: 'ab',
    bytes: 10,
    time_zone: 'UTC',
    state: 'running',
    cursor_rowid: 0,
    last_rowid: 0,
    rows_total: 200_000,
    rows_done: 50_000,
    samples: 49_990,
    skipped: { bad_value: 10 },
    started_us: 0,
    updated_us: 0,
    finished_us: null,
    error: null,
    progress: 0.25,
    samples_per_sec: 12_345.6,
    ...over,
  })

  it('show the share done, rows, samples, skips and speed', () => {
    const p = jobProgress(job({}))
    expect(p.percent).toBe(25)
    expect(p.text).toBe('50\u202f000 of 200\u202f000 rows · 49\u202f990 samples stored · 10 rows skipped · 12\u202f346 samples/s')
  })

  it('reach 100 % only when every row is done, and a job without rows that is done is full', () => {
    expect(jobProgress(job({ rows_done: 199_999 })).percent).toBe(99)
    expect(jobProgress(job({ rows_total: 0, rows_done: 0, state: 'done', progress: 1 })).percent).toBe(100)
    expect(jobProgress(job({ state: 'done', rows_done: 200_000 })).text).not.toContain('samples/s')
  })

  it('tell how to continue an interrupted job and why one failed', () => {
    expect(jobAdvice(job({ state: 'interrupted' }))).toMatch(/same WebView database again/)
    expect(jobAdvice(job({ state: 'failed', error: 'disk full' }))).toBe('The import stopped: disk full.')
    expect(jobAdvice(job({}))).toBe('')
  })
})

describe('.prog preview', () => {
  it('is one table: points, then routines, monitors and programs, with field changes in words', () => {
    const p: ProgImport = {
      device: 'ahu',
      device_id: 3,
      file: { version: 6, panel_name: 'AHU', panel_number: 1 },
      applied: false,
      changes: 2,
      points: [
        {
          point: 'IN1', point_id: 5, action: 'update', label: 'SUPPLY', description: 'Supply air', units: '°C',
          range_code: 3, digital: false, range: '°C', auto_manual: 'auto', value: 21.5,
          changes: [{ field: 'label', old: null, new: 'SUPPLY' }, { field: 'description', old: 'Old', new: 'Supply air' }],
        },
        {
          point: 'OUT2', point_id: null, action: 'unchanged', label: 'FAN', description: null, units: null,
          range_code: 1, digital: true, range: 'Off/On', auto_manual: 'manual', value: 1, changes: [],
        },
      ],
      calendars: [{ source: 'AR1', name: 'AHU AR1 Holidays', id: null, action: 'create', changes: [] }],
      schedules: [],
      trendlogs: [{ source: 'MON1', name: 'AHU MON1', id: 4, action: 'unchanged', changes: [] }],
      programs: [],
      custom_ranges: [
        {
          source: 'custom ranges', name: 'ahu custom ranges', id: null, action: 'create',
          changes: [
            { field: 'digital', old: null, new: [{ code: 23, off: 'Stopped', on: 'Running', direct: false }, { code: 24, off: 'TANK1', on: 'TANK2', direct: true }] },
            { field: 'variable_units', old: [{ code: 34, name: 'PSI' }], new: [] },
          ],
        },
      ],
      warnings: [],
    }
    const rows = progRows(p)
    expect(rows.map((r) => [r.kind, r.source, r.action])).toEqual([
      ['Input', 'IN1', 'update'],
      ['Output', 'OUT2', 'unchanged'],
      ['Annual routine', 'AR1', 'create'],
      ['Monitor (trend log)', 'MON1', 'unchanged'],
      ['Custom ranges', 'custom ranges', 'create'],
    ])
    expect(rows[0].changes).toEqual(['label: — → SUPPLY', 'full label: Old → Supply air'])
    expect(rows[4].changes).toEqual(['digital: — → 23 Stopped/Running, 24 TANK1/TANK2 (inverse)', 'variable units: 34 PSI → none'])
  })
})

describe('kindOfFile', () => {
  it('guesses the import from the file name', () => {
    expect(kindOfFile('Panel1.PROG')).toBe('prog')
    expect(kindOfFile('webview_t3_device.db')).toBe('webview')
    expect(kindOfFile('points.csv')).toBe('csv')
    expect(kindOfFile('notes.docx')).toBeNull()
  })
})

describe('plural', () => {
  it('says one or many, trend logs in two words', () => {
    expect(plural(1, 'trendlogs')).toBe('1 trend log')
    expect(plural(2, 'trendlogs')).toBe('2 trend logs')
    expect(plural(1, 'fields')).toBe('1 field')
    expect(plural(12_000, 'points')).toBe('12\u202f000 points')
    expect(plural(1, 'widgets')).toBe('1 widget')
  })
})

describe('.prog warnings', () => {
  it('come together by message, each object once, in the order they came', () => {
    const ws = [
      { item: 'IN9', message: 'range code 239 is unknown' },
      { item: 'MON12', message: 'logs VAR129, which the profile does not have' },
      { item: 'IN10', message: 'range code 239 is unknown' },
      { item: 'IN10', message: 'range code 239 is unknown' },
    ]
    expect(groupWarnings(ws)).toEqual([
      { items: ['IN9', 'IN10'], message: 'range code 239 is unknown' },
      { items: ['MON12'], message: 'logs VAR129, which the profile does not have' },
    ])
  })

  it('name the first objects of a long group and count the rest', () => {
    const items = Array.from({ length: 12 }, (_, i) => `IN${i + 1}`)
    expect(itemsText(items.slice(0, 3))).toBe('IN1, IN2, IN3')
    expect(itemsText(items)).toBe('IN1, IN2, IN3, IN4, IN5, IN6, IN7, IN8 and 4 more')
  })
})
