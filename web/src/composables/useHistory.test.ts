import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  alignSeries,
  appendSample,
  bandOf,
  clampSpan,
  describeSpan,
  fetchHistory,
  formatDuration,
  isDense,
  looksDigital,
  MAX_POINTS,
  panWindow,
  parseDuration,
  parsePointIds,
  PRESETS,
  rangeFromQuery,
  rangeToQuery,
  resolveRange,
  toSeries,
  useHistory,
  valueAt,
  zoomWindow,
} from './useHistory'

const MIN = 60_000
const DAY = 86_400_000

describe('durations', () => {
  it('parses the server forms and a year', () => {
    expect(parseDuration('15m')).toBe(15 * MIN)
    expect(parseDuration('24h')).toBe(DAY)
    expect(parseDuration('365d')).toBe(365 * DAY)
    expect(parseDuration('1y')).toBe(365 * DAY)
    expect(parseDuration('30s')).toBe(30_000)
    expect(parseDuration(' 2w ')).toBe(14 * DAY)
  })
  it('refuses what is not a duration', () => {
    for (const s of ['', '15', 'm', '-5m', '0m', '5 minutes', null, undefined]) expect(parseDuration(s)).toBeNull()
  })
  it('formats in the largest whole unit, presets by their key', () => {
    expect(formatDuration(365 * DAY)).toBe('365d')
    expect(formatDuration(DAY)).toBe('24h')
    expect(formatDuration(90 * MIN)).toBe('90m')
    expect(formatDuration(2 * DAY)).toBe('2d')
    expect(formatDuration(45_000)).toBe('45s')
    for (const p of PRESETS) expect(parseDuration(formatDuration(p.ms))).toBe(p.ms)
  })
  it('describes spans for people', () => {
    expect(describeSpan(365 * DAY)).toBe('1 year')
    expect(describeSpan(6 * 3_600_000)).toBe('6 h')
    expect(describeSpan(90 * MIN)).toBe('1.5 h')
    expect(describeSpan(37 * MIN)).toBe('37 min')
  })
  it('the presets are the ones the page offers, each a server duration', () => {
    expect(PRESETS.map((p) => p.label)).toEqual(['5 min', '15 min', '1 h', '6 h', '24 h', '7 d', '30 d', '90 d', '1 year'])
    for (const p of PRESETS) expect(/^\d+[smhd]$/.test(p.key)).toBe(true)
  })
})

describe('ranges and the URL', () => {
  it('a relative range follows now', () => {
    const spec = rangeFromQuery({ range: '24h' })
    expect(spec).toEqual({ kind: 'live', span: DAY })
    expect(resolveRange(spec, 1_000 * DAY)).toEqual({ from: 999 * DAY, to: 1_000 * DAY })
    expect(rangeToQuery(spec)).toEqual({ range: '24h' })
  })
  it('a fixed range round-trips through the query', () => {
    const from = Date.UTC(2026, 10, 26, 10, 0, 0, 250)
    const to = from + 3 * 3_600_000
    const q = rangeToQuery({ kind: 'fixed', from, to })
    expect(q).toEqual({ from: '2026-11-26T10:00:00.250Z', to: '2026-11-26T13:00:00.250Z' })
    expect(rangeFromQuery(q)).toEqual({ kind: 'fixed', from, to })
  })
  it('takes epoch seconds, milliseconds and microseconds', () => {
    const ms = Date.UTC(2026, 0, 1)
    expect(rangeFromQuery({ from: String(ms / 1000), to: String(ms / 1000 + 60) })).toEqual({ kind: 'fixed', from: ms, to: ms + MIN })
    expect(rangeFromQuery({ from: String(ms), to: String(ms + MIN) })).toEqual({ kind: 'fixed', from: ms, to: ms + MIN })
    expect(rangeFromQuery({ from: String(ms * 1000), to: String((ms + MIN) * 1000) })).toEqual({ kind: 'fixed', from: ms, to: ms + MIN })
  })
  it('falls back on nonsense and an end before the start', () => {
    const fb = { kind: 'live', span: 5 * MIN } as const
    expect(rangeFromQuery({ range: 'soon' }, fb)).toBe(fb)
    expect(rangeFromQuery({ from: '2026-01-02T00:00:00Z', to: '2026-01-01T00:00:00Z' }, fb)).toBe(fb)
    expect(rangeFromQuery({}, fb)).toBe(fb)
  })
  it('point ids: unique, numeric, at most the chart limit', () => {
    expect(parsePointIds('3,1,x,3,,2')).toEqual([3, 1, 2])
    expect(parsePointIds(['7,8'])).toEqual([7, 8])
    expect(parsePointIds(undefined)).toEqual([])
    const many = Array.from({ length: 40 }, (_, i) => i + 1).join(',')
    expect(parsePointIds(many)).toHaveLength(MAX_POINTS)
  })
})

describe('zoom and pan', () => {
  it('zooms around the centre by default, and around a chosen spot', () => {
    expect(zoomWindow(0, 100_000, 0.5)).toEqual({ from: 25_000, to: 75_000 })
    expect(zoomWindow(0, 100_000, 2)).toEqual({ from: -50_000, to: 150_000 })
    expect(zoomWindow(0, 100_000, 0.5, 0)).toEqual({ from: 0, to: 50_000 })
  })
  it('never zooms below the shortest span or beyond the longest', () => {
    const w = zoomWindow(0, 12_000, 0.1)
    expect(w.to - w.from).toBe(10_000)
    expect(clampSpan(100 * 366 * DAY)).toBe(10 * 366 * DAY)
  })
  it('pans by a share of the span', () => {
    expect(panWindow(1000, 2000, -0.25)).toEqual({ from: 750, to: 1750 })
    expect(panWindow(1000, 2000, 1)).toEqual({ from: 2000, to: 3000 })
  })
})

describe('series', () => {
  it('converts the wire form: seconds, bad quality as null', () => {
    const s = toSeries({ point_id: 4, ts: [1_000_000, 2_000_000, 3_000_000], value: [1.5, null, 7], quality: [192, 0, 24] })
    expect(s).toEqual({ pointId: 4, ts: [1, 2, 3], values: [1.5, null, null] })
  })
  it('starts with the value in force at the left edge (the prior row)', () => {
    const w = { point_id: 4, ts: [5_000_000], value: [2], quality: [192], prior: { ts: 1_000_000, value: 1 } }
    expect(toSeries(w, 3)).toEqual({ pointId: 4, ts: [3, 5], values: [1, 2] })
    // Unknown before the window (bad quality): a gap from the edge.
    expect(toSeries({ ...w, prior: { ts: 1_000_000, value: null } }, 3)).toEqual({ pointId: 4, ts: [3, 5], values: [null, 2] })
    // None found, not asked for, or a row already at the edge: nothing added.
    expect(toSeries({ ...w, prior: null }, 3).ts).toEqual([5])
    expect(toSeries(w).ts).toEqual([5])
    expect(toSeries({ ...w, ts: [3_000_000] }, 3).ts).toEqual([3])
  })
  it('appends only newer rows', () => {
    const s = { pointId: 1, ts: [1, 2], values: [1, 2] as (number | null)[] }
    expect(appendSample(s, 2, 5)).toBe(false)
    expect(appendSample(s, 1.5, 5)).toBe(false)
    expect(appendSample(s, 3, null)).toBe(true)
    expect(s).toEqual({ pointId: 1, ts: [1, 2, 3], values: [1, 2, null] })
  })
  it('aligns on the union of times: undefined where a series has no row, null kept as a gap', () => {
    const { x, ys } = alignSeries([
      { ts: [1, 3, 5], values: [10, null, 50] },
      { ts: [2, 3, 6], values: [20, 30, 60] },
    ])
    expect(x).toEqual([1, 2, 3, 5, 6])
    expect(ys[0]).toEqual([10, undefined, null, 50, undefined])
    expect(ys[1]).toEqual([undefined, 20, 30, undefined, 60])
    expect(1 in ys[0]).toBe(false) // a hole: uPlot joins across it
    expect(2 in ys[0]).toBe(true)
  })
  it('aligns an empty list and empty series', () => {
    expect(alignSeries([])).toEqual({ x: [], ys: [] })
    const a = alignSeries([{ ts: [], values: [] }, { ts: [4], values: [1] }])
    expect(a.x).toEqual([4])
    expect(a.ys[0]).toHaveLength(1)
    expect(0 in a.ys[0]).toBe(false)
    expect(a.ys[1]).toEqual([1])
  })
  it('bands: one point per bucket, at its last row, with the bucket minimum and maximum', () => {
    // [0, 40) in 4 buckets of 10 s; bucket 1 is empty (x 12 and 15 are another series' rows),
    // bucket 2 has a bad row last, bucket 3 has no row of this series and no x.
    const s = { pointId: 1, ts: [1, 2, 5, 21, 22], values: [3, 9, 1, 4, null] }
    const x = [1, 2, 5, 12, 15, 21, 22]
    const b = bandOf(s, x, 0, 40, 4)
    expect(b.lo).toEqual([undefined, undefined, 1, null, undefined, undefined, 4])
    expect(b.hi).toEqual([undefined, undefined, 9, null, undefined, undefined, 4])
    expect(Object.keys(b.line)).toEqual([])
    // Only the chosen x carry anything: the rest are holes, which the chart joins across.
    expect(Object.keys(b.lo)).toEqual(['2', '3', '6'])
  })
  it('bands leave live rows after the grid to the line', () => {
    const s = { pointId: 1, ts: [1, 50], values: [3, 9] }
    const b = bandOf(s, [1, 50], 0, 40, 4)
    expect(b.lo).toEqual([3, undefined])
    expect(b.line).toEqual([undefined, 9])
  })
  it('a series is dense (worth a band) once it has clearly more rows than buckets', () => {
    const mk = (n: number) => ({ pointId: 1, ts: Array.from({ length: n }, (_, i) => i), values: Array.from({ length: n }, () => 1) })
    expect(isDense(mk(100), 100)).toBe(false)
    expect(isDense(mk(400), 100)).toBe(true)
  })
  it('digital: only 0 and 1, and both', () => {
    expect(looksDigital([0, 1, null, 1, 0])).toBe(true)
    expect(looksDigital([0, 0, 0])).toBe(false)
    expect(looksDigital([0, 1, 0.5])).toBe(false)
    expect(looksDigital([])).toBe(false)
  })
  it('the value at a cursor is the last known one', () => {
    const y = [1, undefined, undefined, null, undefined, 5]
    expect(valueAt(y, 2)).toBe(1)
    expect(valueAt(y, 4)).toBeNull()
    expect(valueAt(y, 5)).toBe(5)
    expect(valueAt([undefined, 2], 0)).toBeNull()
  })
})

describe('fetching', () => {
  afterEach(() => vi.unstubAllGlobals())

  function stubFetch(answer: (body: Record<string, unknown>) => unknown, status = 200) {
    const calls: { url: string; body: Record<string, unknown>; signal?: AbortSignal | null }[] = []
    vi.stubGlobal(
      'fetch',
      vi.fn(async (url: string, init: RequestInit) => {
        const body = JSON.parse(String(init.body))
        calls.push({ url, body, signal: init.signal })
        if (init.signal?.aborted) throw Object.assign(new Error('aborted'), { name: 'AbortError' })
        return new Response(JSON.stringify(answer(body)), { status, headers: { 'Content-Type': 'application/json' } })
      }),
    )
    return calls
  }

  it('asks the batch endpoint for M4 rows (4 per bucket, times in microseconds) and the rows before', async () => {
    const calls = stubFetch((b) => ({
      from: Number(b.from),
      to: Number(b.to),
      partial: false,
      series: [
        { point_id: 1, ts: [1_700_000_000_000_000], value: [21.5], quality: [192] },
        { point_id: 2, ts: [], value: [], quality: [], prior: { ts: 1_600_000_000_000_000, value: 7 } },
      ],
    }))
    const a = await fetchHistory([1, 2], 1_699_999_000_000, 1_700_000_100_000, 1200)
    expect(calls).toHaveLength(1)
    expect(calls[0].url).toBe('/api/t3000/history/batch')
    expect(calls[0].body).toEqual({ points: [1, 2], from: '1699999000000000', to: '1700000100000000', max_points: 4800, prior: true })
    expect(a.from).toBe(1_699_999_000_000)
    expect(a.buckets).toBe(1200)
    expect(a.rows).toBe(1)
    expect(a.series.get(1)).toEqual({ pointId: 1, ts: [1_700_000_000], values: [21.5] })
    // Nothing in the window, but the value in force at its start is drawn from there.
    expect(a.series.get(2)).toEqual({ pointId: 2, ts: [1_699_999_000], values: [7] })
  })

  it('useHistory keeps only the newest answer and reports errors with the server message', async () => {
    let n = 0
    stubFetch((b) => {
      n++
      return { from: Number(b.from), to: Number(b.to), partial: false, series: [{ point_id: n, ts: [], value: [], quality: [] }] }
    })
    vi.stubGlobal('performance', { now: () => 0, mark: vi.fn() })
    const h = useHistory()
    const first = h.load([1], 0, 60_000, 100)
    const second = h.load([1], 0, 60_000, 100)
    await Promise.all([first, second])
    // The first request was aborted before its answer was used.
    expect([...h.answer.value!.series.keys()]).toEqual([2])
    expect(h.loading.value).toBe(false)
    expect(h.error.value).toBeNull()
    expect(performance.mark).toHaveBeenCalledWith('t3-trend-data')

    vi.stubGlobal(
      'fetch',
      vi.fn(async () => new Response(JSON.stringify({ error: { code: 'invalid_parameter', message: 'from must be before to' } }), { status: 400 })),
    )
    await h.load([1], 0, 60_000, 100)
    expect(h.error.value?.text).toBe('From must be before to')
    // The last good chart stays.
    expect(h.answer.value).not.toBeNull()
  })

  it('appends live rows to the answer and counts them', async () => {
    stubFetch(() => ({ from: 0, to: 60_000_000, partial: false, series: [{ point_id: 9, ts: [10_000_000], value: [1], quality: [192] }] }))
    vi.stubGlobal('performance', { now: () => 0, mark: () => {} })
    const h = useHistory()
    await h.load([9], 0, 60_000, 100)
    const v = h.version.value
    expect(h.append(9, 20_000_000, 2)).toBe(true)
    expect(h.append(9, 15_000_000, 3)).toBe(false)
    expect(h.append(5, 30_000_000, 3)).toBe(false)
    expect(h.answer.value!.series.get(9)!.values).toEqual([1, 2])
    expect(h.version.value).toBe(v + 1)
    expect(h.appendedSinceLoad()).toBe(1)
  })
})
