// The trend page against the real server in demo mode: the chart draws two demo points, zoom by
// drag and by keyboard change the range (picker and URL) and fetch again, an output written from
// 35 to 75 % is drawn as a step (the canvas' pixels) with min / avg / max of the visible range in
// the legend, export gives the shown range as CSV, live values are appended without fetching
// again, saved views, and what a viewer may not do.
import { readFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Browser, Page } from 'playwright-core'
import { apiCall, launchBrowser, login, newPage, screenshot, startDemo, token, until, type Server } from './harness'

let server: Server
let browser: Browser
let admin: string
/** floor1-ahu IN1 (a zone temperature, slow) and IN7 (CO2, changes every few seconds). */
let a: number
let b: number
/** A fixed window holding the demo's first seconds of data. */
let from: number
let to: number

interface PointItem {
  id: number
  name: string
  device: string | null
}

async function pointId(device: string, name: string): Promise<number> {
  const page = await apiCall<{ items: PointItem[] }>(server, admin, 'GET', `/api/t3000/points?q=${name}&limit=1000`)
  const p = page.items.find((x) => x.device === device && x.name === name)
  if (!p) throw new Error(`no point ${device} ${name}`)
  return p.id
}

async function rows(id: number, f: number, t: number): Promise<number[]> {
  const h = await apiCall<{ ts: number[] }>(server, admin, 'GET', `/api/t3000/points/${id}/history?from=${f * 1000}&to=${t * 1000}`)
  return h.ts
}

/** A point's rows in [f, t) as [epoch ms, value]. */
async function valueRows(id: number, f: number, t: number): Promise<[number, number | null][]> {
  const h = await apiCall<{ ts: number[]; value: (number | null)[] }>(server, admin, 'GET', `/api/t3000/points/${id}/history?from=${f * 1000}&to=${t * 1000}`)
  return h.ts.map((us, i) => [us / 1000, h.value[i]])
}

/**
 * What the chart's canvas shows of the trace drawn in `rgb`: per pixel column of the plot, the
 * lowest and highest row of its pixels (antialiased edges included: pixels much bluer than red,
 * as the trace's blue is and the grey grid and dark text are not).
 */
async function traceColumns(page: Page): Promise<{ x: number; top: number; bottom: number }[]> {
  return page.evaluate(() => {
    const canvas = document.querySelector<HTMLCanvasElement>('[data-test=trend-plot] canvas')!
    const { width, height } = canvas
    const px = canvas.getContext('2d')!.getImageData(0, 0, width, height).data
    const out: { x: number; top: number; bottom: number }[] = []
    for (let x = 0; x < width; x++) {
      let top = -1
      let bottom = -1
      for (let y = 0; y < height; y++) {
        const k = (y * width + x) * 4
        if (px[k + 3] > 100 && px[k + 2] - px[k] > 50) {
          if (top < 0) top = y
          bottom = y
        }
      }
      if (top >= 0) out.push({ x, top, bottom })
    }
    return out
  })
}

/** The time-weighted average of a value that holds from each row to the next, over [f, t]. */
function heldAverage(r: [number, number][], f: number, t: number): number {
  let area = 0
  for (let i = 0; i < r.length; i++) {
    const a = Math.max(r[i][0], f)
    const b = Math.min(i + 1 < r.length ? r[i + 1][0] : t, t)
    if (b > a) area += r[i][1] * (b - a)
  }
  return area / (t - f)
}

/** The chart's range as the URL says it. */
function urlRange(page: Page): { from: number; to: number } | null {
  const u = new URL(page.url())
  const f = u.searchParams.get('from')
  const t = u.searchParams.get('to')
  return f && t ? { from: Date.parse(f), to: Date.parse(t) } : null
}

/** The picker's from / to (local time, to the second). */
async function pickerRange(page: Page): Promise<{ from: number; to: number }> {
  const f = await page.inputValue('[data-test=range-from]')
  const t = await page.inputValue('[data-test=range-to]')
  return page.evaluate(([f, t]) => ({ from: new Date(f).getTime(), to: new Date(t).getTime() }), [f, t])
}

async function drawn(page: Page): Promise<number> {
  return Number(await page.getAttribute('[data-test=trend-chart]', 'data-drawn'))
}

async function openChart(page: Page, query: string) {
  await page.goto(`${server.url}/trends?${query}`)
  await page.waitForSelector('[data-test=trend-chart]:not([data-drawn="0"])')
}

beforeAll(async () => {
  server = await startDemo()
  browser = await launchBrowser()
  admin = await token(server)
  a = await pointId('floor1-ahu', 'IN1')
  b = await pointId('floor1-ahu', 'IN7')
  // Some seconds of history of both points (the demo starts empty).
  const start = Date.now() - 60_000
  await until('history of both demo points', async () => {
    const [ra, rb] = await Promise.all([rows(a, start, Date.now() + 1000), rows(b, start, Date.now() + 1000)])
    // Every point has its first value from the first poll; CO2 changes every few seconds.
    return ra.length >= 1 && rb.length >= 3 && (rb[rb.length - 1] - rb[0]) / 1000 >= 10_000
  })
  const first = Math.min(...(await rows(a, start, Date.now())), ...(await rows(b, start, Date.now()))) / 1000
  from = Math.floor(first) - 5_000
  // Ending a little in the past, so that no row is still to come in the window.
  to = Date.now() - 1_000
})

afterAll(async () => {
  await browser?.close()
  await server?.stop()
})

describe('trend page', () => {
  it('draws two demo points on one chart with their legend', async () => {
    const { page, context } = await newPage(browser)
    await login(page, server)
    await openChart(page, `points=${a},${b}&from=${new Date(from).toISOString()}&to=${new Date(to).toISOString()}`)
    const chart = page.locator('[data-test=trend-chart]')
    expect(await chart.getAttribute('data-series')).toBe('2')
    expect(await page.locator('[data-test=trend-plot] canvas').count()).toBeGreaterThan(0)
    // Every row of both points is on the time axis (the window is short: nothing is thinned),
    // plus the window's end, up to which the last values hold. The page asks from a heartbeat
    // (300 s) before the window, so a slow point has its value at the left edge.
    const [ra, rb] = await Promise.all([rows(a, from - 300_000, to), rows(b, from - 300_000, to)])
    expect(Number(await chart.getAttribute('data-points'))).toBe(new Set([...ra, ...rb]).size + 1)
    expect(await chart.getAttribute('data-bands')).toBe('0')
    const legend = page.locator('[data-test=legend-item]')
    await expect.poll(() => legend.count()).toBe(2)
    expect(await legend.nth(0).innerText()).toContain('floor1-ahu IN1')
    expect(await legend.nth(1).innerText()).toContain('floor1-ahu IN7')
    // Their current values come in (live or from the point list).
    await page.waitForSelector(`[data-test=legend-item][data-point-id="${b}"] [data-test=legend-now]:not(:has-text("—"))`)
    // The URL still says what is shown.
    expect(urlRange(page)).toEqual({ from, to })
    expect(await page.inputValue('[data-test=range-from]')).not.toBe('')
    await screenshot(page, 'trends-chart')
    await context.close()
  })

  it('zooms by dragging over the chart: the range changes in the picker and the URL, and the data is fetched again', async () => {
    const { page, context } = await newPage(browser)
    await login(page, server)
    await openChart(page, `points=${a},${b}&from=${new Date(from).toISOString()}&to=${new Date(to).toISOString()}`)
    const before = await drawn(page)
    const box = (await page.locator('[data-test=trend-plot] .u-over').boundingBox())!
    await page.mouse.move(box.x + box.width * 0.3, box.y + box.height / 2)
    await page.mouse.down()
    await page.mouse.move(box.x + box.width * 0.5, box.y + box.height / 2, { steps: 4 })
    await page.mouse.move(box.x + box.width * 0.7, box.y + box.height / 2, { steps: 4 })
    await page.mouse.up()
    await page.waitForFunction((f) => new URL(location.href).searchParams.get('from') !== f, new Date(from).toISOString())
    const r = urlRange(page)!
    const span = to - from
    expect(r.from).toBeGreaterThan(from + span * 0.25)
    expect(r.to).toBeLessThan(from + span * 0.75)
    expect((r.to - r.from) / span).toBeGreaterThan(0.35)
    expect((r.to - r.from) / span).toBeLessThan(0.45)
    // The picker shows the new window (to the second).
    await expect.poll(async () => (await pickerRange(page)).from).toBe(Math.floor(r.from / 1000) * 1000)
    expect((await pickerRange(page)).to).toBe(Math.floor(r.to / 1000) * 1000)
    expect(await page.getAttribute('[data-test=live-toggle]', 'aria-pressed')).toBe('false')
    // A new answer at the new resolution is drawn.
    await page.waitForFunction((n) => Number(document.querySelector('[data-test=trend-chart]')?.getAttribute('data-drawn')) > n, before)
    await screenshot(page, 'trends-zoomed')
    await context.close()
  })

  it('zooms and pans with the keyboard and the buttons', async () => {
    const { page, context } = await newPage(browser)
    await login(page, server)
    await openChart(page, `points=${a},${b}&from=${new Date(from).toISOString()}&to=${new Date(to).toISOString()}`)
    const span = to - from
    await page.focus('[data-test=chart-focus]')
    await page.keyboard.press('+')
    await expect.poll(() => urlRange(page)!.to - urlRange(page)!.from).toBeLessThan(span)
    let r = urlRange(page)!
    // Zoomed in by half around the middle.
    expect(Math.abs(r.to - r.from - span / 2)).toBeLessThanOrEqual(2)
    expect(Math.abs((r.from + r.to) / 2 - (from + to) / 2)).toBeLessThanOrEqual(2)
    await page.keyboard.press('ArrowLeft')
    await expect.poll(() => urlRange(page)!.from).toBeLessThan(r.from)
    const moved = urlRange(page)!
    expect(Math.abs(r.from - moved.from - (r.to - r.from) / 4)).toBeLessThanOrEqual(2)
    expect(moved.to - moved.from).toBe(r.to - r.from)
    await page.keyboard.press('-')
    await expect.poll(() => urlRange(page)!.to - urlRange(page)!.from).toBeGreaterThan(moved.to - moved.from)
    r = urlRange(page)!
    expect(Math.abs(r.to - r.from - 2 * (moved.to - moved.from))).toBeLessThanOrEqual(2)
    // The buttons do the same.
    await page.click('[data-test=zoom-in]')
    await expect.poll(() => urlRange(page)!.to - urlRange(page)!.from).toBeLessThan(r.to - r.from)
    await page.click('[data-test=pan-right]')
    await expect.poll(() => urlRange(page)!.from).toBeGreaterThan(r.from + (r.to - r.from) / 4)
    // The pan mode (for touch screens): a plain drag moves the window instead of zooming.
    const before = urlRange(page)!
    await page.click('[data-test=pan-mode]')
    const box = (await page.locator('[data-test=trend-plot] .u-over').boundingBox())!
    await page.mouse.move(box.x + box.width * 0.25, box.y + box.height / 2)
    await page.mouse.down()
    await page.mouse.move(box.x + box.width * 0.5, box.y + box.height / 2, { steps: 5 })
    await page.mouse.up()
    await expect.poll(() => urlRange(page)!.from).toBeLessThan(before.from)
    const panned = urlRange(page)!
    expect(panned.to - panned.from).toBe(before.to - before.from)
    // Dragged a quarter of the plot to the right: a quarter of the span earlier.
    expect(Math.abs((before.from - panned.from) / (before.to - before.from) - 0.25)).toBeLessThan(0.02)
    await screenshot(page, 'trends-keyboard')
    await context.close()
  })

  it('draws an output written from 35 to 75 % as a step, not a ramp, with min / avg / max of the visible range', async () => {
    const out = await pointId('floor1-ahu', 'OUT1')
    const p = await apiCall<{ units: string; trend: { line: string; line_default: boolean } }>(server, admin, 'GET', `/api/t3000/points/${out}`)
    // An output holds its command: the server's default line for it is a step.
    expect(p.trend).toMatchObject({ line: 'step', line_default: true })
    const write = (value: number) => apiCall(server, admin, 'POST', `/api/t3000/points/${out}/value`, { value, switch_to_manual: true })
    const rowOf = async (value: number, after: number): Promise<number> => {
      let at = 0
      await until(`a row of ${value} %`, async () => {
        const r = (await valueRows(out, after, Date.now() + 1000)).find(([, v]) => v === value)
        at = r?.[0] ?? 0
        return !!r
      })
      return at
    }
    const start = Date.now() - 1000
    await write(35)
    const t35 = await rowOf(35, start)
    // Ten seconds at 35 % (a ramp would cross half the chart), then the jump to 75 %.
    await until('ten seconds at 35 %', async () => Date.now() > t35 + 10_000)
    await write(75)
    const t75 = await rowOf(75, t35 + 1)
    const f = t35 + 2_000
    const t = t75 + 10_000
    await until('the window to be past', async () => Date.now() > t + 1_000)
    // The rows: 35 % in force at the window's left edge, then 75 % (the write's read-back and the
    // next poll may each have a row of the same value).
    const r = (await valueRows(out, t35, t)).map(([, v]) => v)
    expect(r.indexOf(75)).toBeGreaterThan(0)
    expect(r).toEqual([...r.slice(0, r.indexOf(75)).map(() => 35), ...r.slice(r.indexOf(75)).map(() => 75)])

    const { page, context } = await newPage(browser)
    await login(page, server)
    await openChart(page, `points=${out}&from=${new Date(f).toISOString()}&to=${new Date(t).toISOString()}`)
    const chart = page.locator('[data-test=trend-chart]')
    expect(await chart.getAttribute('data-series')).toBe('1')
    expect(await chart.getAttribute('data-bands')).toBe('0')

    // The canvas: flat at 35 % from the left edge, one vertical riser where 75 % was recorded,
    // flat at 75 % to the right edge; no column in between (a ramp's).
    const cols = await traceColumns(page)
    await screenshot(page, 'trends-step')
    const left = cols[0].x
    const right = cols[cols.length - 1].x
    expect(right - left).toBeGreaterThan(400)
    const level = (c: { top: number; bottom: number }) => (c.top + c.bottom) / 2
    const y35 = level(cols[0])
    const y75 = level(cols[cols.length - 1])
    expect(y35 - y75).toBeGreaterThan(100) // 75 % is higher up
    const near = (c: { top: number; bottom: number }, y: number) => c.top >= y - 5 && c.bottom <= y + 5
    // The riser, where 75 % was recorded (with the dots uPlot marks sparse rows with around it).
    const jumpX = left + ((t75 - f) / (t - f)) * (right - left)
    const risers = cols.filter((c) => c.top <= y75 + 5 && c.bottom >= y35 - 5)
    expect(risers.length).toBeGreaterThanOrEqual(1)
    for (const c of risers) expect(Math.abs(c.x - jumpX), `riser at ${c.x}, the jump at ${jumpX}`).toBeLessThanOrEqual(6)
    const between = cols.filter((c) => !near(c, y35) && !near(c, y75) && !risers.includes(c))
    expect(between, 'columns between the two levels: a ramp').toEqual([])
    for (const c of cols) {
      if (c.x < jumpX - 6) expect(near(c, y35), `column ${c.x} at 35 %`).toBe(true)
      if (c.x > jumpX + 6) expect(near(c, y75), `column ${c.x} at 75 %`).toBe(true)
    }
    expect(cols.filter((c) => c.x < jumpX - 6).length).toBeGreaterThan(200)

    // The legend: min / avg / max of the visible range in the point's units, the average
    // weighted by how long each value held.
    const item = page.locator(`[data-test=legend-item][data-point-id="${out}"]`)
    const u = p.units ? ` ${p.units}` : ''
    expect(await item.locator('[data-test=legend-min]').innerText()).toBe(`35${u}`)
    expect(await item.locator('[data-test=legend-max]').innerText()).toBe(`75${u}`)
    const avgOf = async () => Number(await item.locator('[data-test=legend-avg]').getAttribute('data-value'))
    const want = heldAverage([[f, 35], [t75, 75]], f, t)
    expect(await avgOf()).toBeCloseTo(want, 2)
    expect(await item.locator('[data-test=legend-avg]').innerText()).toMatch(new RegExp(`^[\\d.]+${u}$`))
    expect(await item.locator('[data-test=legend-avg]').getAttribute('title')).toMatch(/Time-weighted.*as long as it held/)
    // Not the mean of the two rows (55): 35 held for about 8 s of the 18, 75 for 10.
    expect(Math.abs(want - 55)).toBeGreaterThan(1)

    // Zoomed to the middle, the figures are those of the new window.
    await page.focus('[data-test=chart-focus]')
    await page.keyboard.press('+')
    await expect.poll(() => urlRange(page)!.to - urlRange(page)!.from).toBeLessThan(t - f)
    const z = urlRange(page)!
    expect(z.from < t75 && t75 < z.to).toBe(true)
    await expect.poll(avgOf).toBeCloseTo(heldAverage([[z.from, 35], [t75, 75]], z.from, z.to), 2)
    expect(await item.locator('[data-test=legend-min]').innerText()).toBe(`35${u}`)
    await context.close()
  })

  it("chooses a point's line in its dialog's trend settings; the chart and its legend follow", async () => {
    const devices = await apiCall<{ items: { id: number; name: string }[] }>(server, admin, 'GET', '/api/t3000/devices?q=floor1-ahu')
    const device = devices.items.find((d) => d.name === 'floor1-ahu')!
    const id = await pointId('floor1-ahu', 'IN3')
    const line = async () => (await apiCall<{ trend: { line: string; line_default: boolean } }>(server, admin, 'GET', `/api/t3000/points/${id}`)).trend
    // Recorded on change (the demo's devices): a step unless someone says otherwise.
    expect(await line()).toMatchObject({ line: 'step', line_default: true })
    const { page, context } = await newPage(browser, { width: 1440, height: 900 })
    await login(page, server)
    const choose = async (value: string) => {
      await page.goto(`${server.url}/devices/${device.id}`)
      await page.waitForSelector('[data-test=point-row]')
      await page.click('tr[data-test=point-row][data-name="IN3"] :is([data-test=point-open], [data-test=point-write])')
      await page.waitForSelector('[data-test=point-panel] [data-test=trend-line]')
      await page.selectOption('[data-test=trend-line]', value)
      await page.click('[data-test=cfg-save]')
      await page.waitForSelector('[data-test=point-panel] .ok-text:has-text("Saved")')
    }
    await choose('linear')
    expect(await line()).toMatchObject({ line: 'linear', line_default: false })
    expect(await page.getAttribute('[data-test=trend-line]', 'data-current')).toBe('linear')
    await screenshot(page, 'points-trend-line')
    await openChart(page, `points=${id}&from=${new Date(from).toISOString()}&to=${new Date(to).toISOString()}`)
    const avg = page.locator(`[data-test=legend-item][data-point-id="${id}"] [data-test=legend-avg]`)
    expect(await avg.getAttribute('title')).toMatch(/straight lines between samples/)
    // Back to the server's default: a step again.
    await choose('default')
    expect(await line()).toMatchObject({ line: 'step', line_default: true })
    await openChart(page, `points=${id}&from=${new Date(from).toISOString()}&to=${new Date(to).toISOString()}`)
    expect(await avg.getAttribute('title')).toMatch(/as long as it held/)
    await context.close()
  })

  it('exports the shown range of the chart points as CSV', async () => {
    const { page, context } = await newPage(browser)
    await login(page, server)
    await openChart(page, `points=${a},${b}&from=${new Date(from).toISOString()}&to=${new Date(to).toISOString()}`)
    await page.selectOption('[data-test=export-format]', 'csv')
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('[data-test=export-button]')])
    // Named after what it holds and the range, as the server's Content-Disposition says.
    expect(download.suggestedFilename()).toMatch(/^t3000-[A-Za-z0-9-]+-\d{8}T\d{6}Z-\d{8}T\d{6}Z\.csv$/)
    const text = readFileSync((await download.path())!, 'utf8')
    const lines = text.trimEnd().split('\n')
    expect(lines[0]).toBe('ts,point_id,point_name,unit,value,quality,quality_name')
    const data = lines.slice(1).map((l) => l.split(','))
    expect(data.length).toBeGreaterThanOrEqual(4)
    // The points' names as the points list shows them, not bare ids.
    for (const c of data) expect(c[2]).not.toBe(`point ${c[1]}`)
    const ids = new Set(data.map((c) => Number(c[1])))
    expect([...ids].sort((x, y) => x - y)).toEqual([a, b].sort((x, y) => x - y))
    for (const c of data) {
      const t = Date.parse(c[0])
      expect(t).toBeGreaterThanOrEqual(from)
      expect(t).toBeLessThan(to)
    }
    // Every row of the window, as the history API has them.
    const [ra, rb] = await Promise.all([rows(a, from, to), rows(b, from, to)])
    expect(data.filter((c) => Number(c[1]) === a)).toHaveLength(ra.length)
    expect(data.filter((c) => Number(c[1]) === b)).toHaveLength(rb.length)
    await page.waitForSelector('[data-test=export-done]')
    await screenshot(page, 'trends-export')
    await context.close()
  })

  it('follows now: live values are appended without fetching the history again', async () => {
    const { page, context } = await newPage(browser)
    await login(page, server)
    const batches: string[] = []
    page.on('request', (r) => {
      if (r.url().includes('/api/t3000/history/batch')) batches.push(r.url())
    })
    await openChart(page, `points=${a},${b}&range=15m`)
    expect(await page.getAttribute('[data-test=preset-15m]', 'aria-pressed')).toBe('true')
    expect(await page.getAttribute('[data-test=live-toggle]', 'aria-pressed')).toBe('true')
    await page.waitForFunction(() => !document.querySelector('[data-test=chart-loading]'))
    const fetched = batches.length
    const points = Number(await page.getAttribute('[data-test=trend-chart]', 'data-points'))
    // IN7 (CO2) changes every few seconds: its new values reach the chart over the WebSocket.
    await page.waitForFunction(
      (n) => Number(document.querySelector('[data-test=trend-chart]')?.getAttribute('data-points')) > n + 1,
      points,
      { timeout: 30_000 },
    )
    expect(batches.length).toBe(fetched)
    // Pausing holds the window still (and says so in the URL).
    await page.click('[data-test=live-toggle]')
    await page.waitForFunction(() => new URL(location.href).searchParams.has('from'))
    expect(await page.getAttribute('[data-test=live-toggle]', 'aria-pressed')).toBe('false')
    await screenshot(page, 'trends-live')
    await context.close()
  })

  it('adds and removes points with the picker and keeps them in the URL', async () => {
    const { page, context } = await newPage(browser)
    await login(page, server)
    await page.goto(`${server.url}/trends`)
    await page.waitForSelector('[data-test=trend-empty]')
    await page.fill('[data-test=point-search]', 'IN7')
    await page.selectOption('[data-test=point-device]', { label: 'floor1-ahu' })
    await page.click(`[data-test=point-result][data-point-id="${b}"] [data-test=point-add]`)
    await page.waitForSelector('[data-test=trend-chart]:not([data-drawn="0"])')
    await page.waitForFunction((id) => new URL(location.href).searchParams.get('points') === String(id), b)
    expect(await page.locator('[data-test=legend-item]').count()).toBe(1)
    expect(await page.isDisabled(`[data-test=point-result][data-point-id="${b}"] [data-test=point-add]`)).toBe(true)
    // Away and back through the nav: the chart is still there.
    await page.click('nav a[href="/devices"]')
    await page.waitForURL(/\/devices/)
    await page.click('nav a[href="/trends"]')
    await page.waitForSelector(`[data-test=legend-item][data-point-id="${b}"]`)
    await page.waitForFunction((id) => new URL(location.href).searchParams.get('points') === String(id), b)
    await page.click(`[data-test=legend-item][data-point-id="${b}"] [data-test=legend-remove]`)
    await page.waitForSelector('[data-test=trend-empty]')
    expect(new URL(page.url()).searchParams.get('points')).toBeNull()
    await screenshot(page, 'trends-picker')
    await context.close()
  })

  it('saves, opens and deletes a view (admin); a viewer opens views but cannot change them', async () => {
    const { page, context } = await newPage(browser)
    await login(page, server)
    await openChart(page, `points=${a},${b}&range=6h`)
    await page.fill('[data-test=view-name]', 'AHU 1 zone and CO2')
    // A trend log records its points: every 5 s, only changes past 0.5.
    await page.fill('[data-test=view-interval]', '5')
    expect(await page.locator('[data-test=view-deadband]').count()).toBe(0)
    await page.check('[data-test=view-on-change]')
    await page.fill('[data-test=view-deadband]', '0.5')
    await page.click('[data-test=view-save-new]')
    await page.waitForSelector('[data-test=view-item]:has-text("AHU 1 zone and CO2")')
    type Log = { id: number; name: string; point_ids: number[]; range: string | null; interval_ms: number; on_change: boolean; deadband: number }
    const logs = await apiCall<Log[]>(server, admin, 'GET', '/api/t3000/trendlogs')
    const saved = logs.find((l) => l.name === 'AHU 1 zone and CO2')!
    expect(saved.point_ids).toEqual([a, b])
    expect(saved.range).toBe('6h')
    expect([saved.interval_ms, saved.on_change, saved.deadband]).toEqual([5000, true, 0.5])
    const item = `[data-test=view-item][data-view-id="${saved.id}"]`
    expect(await page.textContent(`${item} [data-test=view-records]`)).toBe('records every 5 s, on change past 0.5')
    // The server records the points so (their own settings stay theirs).
    const p = await apiCall<{ recording: { interval_ms: number; on_change: boolean; deadband: number; trendlogs: number[] } }>(server, admin, 'GET', `/api/t3000/points/${a}`)
    expect(p.recording.trendlogs).toContain(saved.id)
    expect([p.recording.on_change, p.recording.deadband]).toEqual([true, 0.5])
    expect(p.recording.interval_ms).toBeLessThanOrEqual(5000)
    // Opening it elsewhere fills the form with what it records.
    await page.reload()
    await page.click(`${item} [data-test=view-open]`)
    expect(await page.inputValue('[data-test=view-interval]')).toBe('5')
    expect(await page.isChecked('[data-test=view-on-change]')).toBe(true)
    expect(await page.inputValue('[data-test=view-deadband]')).toBe('0.5')

    // A viewer opens it: the points and the range come back; no save or delete.
    await apiCall(server, admin, 'POST', '/api/t3000/users', { username: 'trendviewer', password: 'viewer-pass-123', role: 'viewer' })
    const v = await newPage(browser, { width: 820, height: 1180 })
    await login(v.page, server, 'trendviewer', 'viewer-pass-123')
    await v.page.goto(`${server.url}/trends`)
    await v.page.click(`[data-test=view-item][data-view-id="${saved.id}"] [data-test=view-open]`)
    await v.page.waitForSelector('[data-test=trend-chart]:not([data-drawn="0"])')
    await v.page.waitForFunction(() => new URL(location.href).searchParams.get('range') === '6h')
    expect(new URL(v.page.url()).searchParams.get('points')).toBe(`${a},${b}`)
    expect(await v.page.locator('[data-test=view-save-new], [data-test=view-delete], [data-test=view-name]').count()).toBe(0)
    await screenshot(v.page, 'trends-viewer-tablet')
    await v.context.close()

    // The admin deletes it (with a confirmation).
    await page.reload()
    await page.click(`[data-test=view-item][data-view-id="${saved.id}"] [data-test=view-delete]`)
    await page.click(`[data-test=view-item][data-view-id="${saved.id}"] [data-test=view-delete-confirm]`)
    await page.waitForSelector(`[data-test=view-item][data-view-id="${saved.id}"]`, { state: 'detached' })
    const after = await apiCall<{ id: number }[]>(server, admin, 'GET', '/api/t3000/trendlogs')
    expect(after.some((l) => l.id === saved.id)).toBe(false)
    await screenshot(page, 'trends-views')
    await context.close()
  })

  it('shows the server message when history cannot be read', async () => {
    const { page, context } = await newPage(browser)
    await login(page, server)
    // A window outside what the server accepts (before 1970).
    await page.goto(`${server.url}/trends?points=${a}&from=1969-12-31T00:00:00Z&to=1970-01-01T00:00:01Z`)
    await page.waitForSelector('[data-test=history-error]')
    expect(await page.innerText('[data-test=history-error]')).toMatch(/History could not be loaded: From: .* is not an instant: RFC 3339 of the years 1970 to 9999/)
    await screenshot(page, 'trends-error')
    await context.close()
  })
})
