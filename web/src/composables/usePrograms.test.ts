// The program calls against a mocked fetch (method, path and body of each call, what comes back,
// a refused save's mark), and live ProgramUpdate messages merged into a program.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { ApiError, configureClient } from '../api/client'
import type { Program } from '../api/types'
import type { ProgramUpdate } from '../api/ws-types'
import { saveErrorMark } from '../lib/programs'
import { applyUpdate, usePrograms } from './usePrograms'

let fetchMock: ReturnType<typeof vi.fn>

function respond(status: number, body?: unknown) {
  return new Response(status === 204 ? null : JSON.stringify(body), { status })
}
function call(n = 0) {
  const [url, init] = fetchMock.mock.calls[n]
  return { url: url as string, method: init.method as string, body: init.body === undefined ? undefined : JSON.parse(init.body as string) }
}

function program(over: Partial<Program> = {}): Program {
  return {
    id: 3,
    name: 'AHU logic',
    device_id: 1,
    source: '10 IF IN1 > 25 THEN START OUT1\n',
    enabled: false,
    status: 'stopped',
    error: null,
    last_scan: null,
    scan_us: null,
    scans: 0,
    reads: [{ point_id: 5, name: 'IN1', label: 'ROOM-T' }],
    writes: [{ point_id: 9, name: 'OUT1', label: 'FAN' }],
    updated_us: 0,
    ...over,
  }
}

beforeEach(() => {
  configureClient(
    () => 'tok',
    () => {},
  )
  fetchMock = vi.fn()
  vi.stubGlobal('fetch', fetchMock)
})
afterEach(() => {
  vi.unstubAllGlobals()
})

describe('program calls', () => {
  const programs = usePrograms()

  it('lists, reads, creates, changes and deletes', async () => {
    fetchMock.mockResolvedValueOnce(respond(200, [program()]))
    expect((await programs.list()).map((p) => p.id)).toEqual([3])
    expect(call(0)).toMatchObject({ url: '/api/t3000/programs', method: 'GET' })

    fetchMock.mockResolvedValueOnce(respond(200, program()))
    expect((await programs.get(3)).name).toBe('AHU logic')
    expect(call(1)).toMatchObject({ url: '/api/t3000/programs/3', method: 'GET' })

    fetchMock.mockResolvedValueOnce(respond(201, program({ id: 4 })))
    expect((await programs.create({ name: 'n', device_id: 1, source: '10 END\n' })).id).toBe(4)
    expect(call(2)).toMatchObject({ url: '/api/t3000/programs', method: 'POST', body: { name: 'n', device_id: 1, source: '10 END\n' } })

    fetchMock.mockResolvedValueOnce(respond(200, program({ source: '10 END\n' })))
    await programs.update(3, { source: '10 END\n' })
    expect(call(3)).toMatchObject({ url: '/api/t3000/programs/3', method: 'PUT', body: { source: '10 END\n' } })

    fetchMock.mockResolvedValueOnce(respond(204))
    await programs.remove(3)
    expect(call(4)).toMatchObject({ url: '/api/t3000/programs/3', method: 'DELETE' })
  })

  it('checks a text, runs once, enables and disables', async () => {
    fetchMock.mockResolvedValueOnce(respond(200, { ok: false, error: { line: 1, column: 4, message: 'line 1, column 4: expected =' } }))
    expect(await programs.check('10 X', 1)).toEqual({ ok: false, error: { line: 1, column: 4, message: 'line 1, column 4: expected =' } })
    expect(call(0)).toMatchObject({ url: '/api/t3000/programs/check', method: 'POST', body: { source: '10 X', device_id: 1 } })

    fetchMock.mockResolvedValueOnce(respond(200, program({ scans: 1, scan_us: 40, last_scan: '2026-12-06T20:00:01Z' })))
    expect((await programs.runOnce(3)).scans).toBe(1)
    expect(call(1)).toMatchObject({ url: '/api/t3000/programs/3/run', method: 'POST' })

    fetchMock.mockResolvedValueOnce(respond(200, program({ enabled: true, status: 'running' })))
    expect((await programs.setEnabled(3, true)).status).toBe('running')
    expect(call(2)).toMatchObject({ url: '/api/t3000/programs/3/enable', method: 'POST' })
    fetchMock.mockResolvedValueOnce(respond(200, program()))
    await programs.setEnabled(3, false)
    expect(call(3)).toMatchObject({ url: '/api/t3000/programs/3/disable', method: 'POST' })
  })

  it('a save refused for a syntax error becomes a mark at its line and column', async () => {
    const body = { error: { code: 'syntax_error', message: 'line 2, column 16: expected THEN after the condition, found ELSE', line: 2, column: 16 } }
    fetchMock.mockResolvedValueOnce(respond(422, body))
    const e = await programs.update(3, { source: '10 END\n20 IF X > 2 ELSE 10\n' }).catch((x: unknown) => x)
    expect(e).toBeInstanceOf(ApiError)
    expect(saveErrorMark(e)).toEqual({ line: 2, column: 16, message: 'expected THEN after the condition, found ELSE', kind: 'syntax' })
  })
})

describe('live program updates', () => {
  const update = (over: Partial<ProgramUpdate>): ProgramUpdate => ({
    type: 'ProgramUpdate',
    program_id: 3,
    name: 'AHU logic',
    change: 'state',
    status: 'error',
    enabled: true,
    error: { line_number: 10, line: 1, column: 9, message: 'division by zero' },
    last_scan: '2026-12-06T20:00:01.000Z',
    scan_us: 55,
    timestamp: 0,
    time: '',
    ...over,
  })

  it('take the state of the message and keep the rest', () => {
    const p = applyUpdate(program(), update({}))
    expect(p).toMatchObject({ status: 'error', enabled: true, scan_us: 55, last_scan: '2026-12-06T20:00:01.000Z', source: program().source, reads: program().reads })
    expect(p.error?.message).toBe('division by zero')
    // An error cleared; a last scan in epoch milliseconds; none (0).
    expect(applyUpdate(p, update({ status: 'running', error: null, last_scan: Date.UTC(2026, 11, 6, 20, 0, 2) }))).toMatchObject({
      status: 'running',
      error: null,
      last_scan: '2026-12-06T20:00:02.000Z',
    })
    expect(applyUpdate(p, update({ last_scan: 0 })).last_scan).toBeNull()
  })
})
