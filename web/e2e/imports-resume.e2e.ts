// Resuming an interrupted T3000 WebView import from the Imports page, through the real binary in
// demo mode. A WebView database with WebView's real schema (web/e2e/data/webview_db.py, which also
// says what the import must store) is imported through the API in small batches, and the server is
// killed with SIGKILL as soon as the history job is part way (the jobs endpoint polled until some
// but not all rows are done; no timed wait). Restarted on the same data directory, the page lists
// the job as interrupted with its progress; "Resume…" with another WebView database is refused on
// the page and imports nothing; with the same file the job runs to its end, and the API finds every
// generated sample stored exactly once: the count, distinct time stamps, first and last time and
// sum of each point, and a few values with their time stamps. No copy of either file is left in
// the data directory.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { apiCall, launchBrowser, login, newPage, screenshot, startDemo, token, until, type Server } from './harness'

const here = dirname(fileURLToPath(import.meta.url))

/** 3 devices x 7 points x 3000 polls = 63 000 detail rows, stored in batches of 100 rows: 630
 * acknowledged batches, each moving the job's cursor, so the job is seen part way. */
const DEVICES = 3
const POLLS = 3000
const BATCH_ROWS = 100

/** What webview_db.py --json says the import must store. */
interface Manifest {
  rows: number
  series: {
    device: string
    point: string
    count: number
    first: string
    last: string
    sum_milli: number
    samples: [string, number][]
  }[]
}

interface Job {
  id: number
  state: string
  rows_done: number
  rows_total: number
  samples: number
  skipped: Record<string, number>
}

let server: Server
let browser: Browser
let admin: string
let scratch: string
let db: string
let other: string
let expected: Manifest

/** Runs the generator; with `--json` it prints what the import must store. */
function generate(out: string, devices: number, polls: number): Manifest {
  return JSON.parse(execFileSync('python3', [join(here, 'data/webview_db.py'), out, String(devices), String(polls), '--json']).toString()) as Manifest
}

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 't3000-resume-e2e-'))
  db = join(scratch, 'webview_t3_device.db')
  expected = generate(db, DEVICES, POLLS)
  expect(expected.rows).toBe(DEVICES * 7 * POLLS)
  // Another site's database under the same name: one device more, fewer polls.
  mkdirSync(join(scratch, 'other'))
  other = join(scratch, 'other', 'webview_t3_device.db')
  generate(other, DEVICES + 1, 20)
  server = await startDemo()
  browser = await launchBrowser()
  admin = await token(server)
})

afterAll(async () => {
  await browser?.close()
  await server?.stop()
  if (scratch) rmSync(scratch, { recursive: true, force: true })
})

/** `2026-01-05 00:05:00` (the import's time zone is UTC) as µs since the epoch. */
const utcUs = (local: string) => Date.parse(`${local.replace(' ', 'T')}Z`) * 1000

/** A whole number as the page writes it (thin thousands separators). */
const num = (n: number) => n.toLocaleString('en-US').replace(/,/g, '\u202f')

const job = (id: number) => apiCall<Job>(server, admin, 'GET', `/api/t3000/import/webview/jobs/${id}`)

/** Rows of a SQL query (POST /query), none cut off. */
async function sql(text: string): Promise<unknown[][]> {
  const r = await apiCall<{ rows: unknown[][]; truncated: boolean }>(server, admin, 'POST', '/api/t3000/query', { sql: text })
  expect(r.truncated).toBe(false)
  return r.rows
}

/** The point id of every generated series, `<device> <point>`, from the devices' points. */
async function pointIds(): Promise<Map<string, number>> {
  const ids = new Map<string, number>()
  for (const device of new Set(expected.series.map((s) => s.device))) {
    const r = await apiCall<{ points: { id: number; name: string }[] }>(server, admin, 'GET', `/api/t3000/devices/${encodeURIComponent(device)}/points`)
    for (const p of r.points) ids.set(`${device} ${p.name}`, p.id)
  }
  return ids
}

/** Samples stored of the given points. */
async function stored(ids: number[]): Promise<number> {
  return Number((await sql(`SELECT count(*) FROM samples WHERE point_id IN (${ids.join(',')})`))[0][0])
}

/** The uploads the server holds in its data directory (it keeps one only while reading it). */
const held = () => (existsSync(join(server.dataDir, 'import')) ? readdirSync(join(server.dataDir, 'import')) : [])

/** Chooses `file` in the file chooser that the job's Resume… button opens. */
async function resumeWith(page: Page, id: number, file: string) {
  const [chooser] = await Promise.all([page.waitForEvent('filechooser'), page.click(`[data-test=job-${id}] [data-test=job-resume]`)])
  await chooser.setFiles(file)
}

test('an import killed midway is listed as interrupted, refuses another file and resumed with its own finishes, every sample once', async () => {
  // The import, through the API in small batches.
  const r = await fetch(`${server.url}/api/t3000/import/webview?apply=true&time_zone=UTC&batch_rows=${BATCH_ROWS}`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${admin}`, 'Content-Type': 'application/octet-stream' },
    body: readFileSync(db),
  })
  const applied = (await r.json()) as { job: Job; created: Record<string, number> }
  expect(r.status, JSON.stringify(applied)).toBe(202)
  expect(applied.created.devices).toBe(DEVICES)
  const id = applied.job.id
  expect(applied.job.rows_total).toBe(expected.rows)

  // A crash part way: polled as fast as the server answers, killed at the first progress seen.
  await until(
    'the history job part way',
    async () => {
      const j = await job(id)
      if (j.rows_done >= j.rows_total) throw new Error(`the job finished before it could be caught part way: ${JSON.stringify(j)}`)
      return j.rows_done > 0
    },
    60_000,
    0,
  )
  await server.kill()
  await server.restart()
  admin = await token(server)
  const before = await job(id)
  expect(before.state).toBe('interrupted')
  expect(before.rows_done).toBeGreaterThan(0)
  expect(before.rows_done).toBeLessThan(expected.rows)
  const ids = await pointIds()
  const series = expected.series.map((s) => {
    const pid = ids.get(`${s.device} ${s.point}`)
    expect(pid, `${s.device} ${s.point}`).toBeDefined()
    return { ...s, id: pid! }
  })
  const all = series.map((s) => s.id)
  // What was acknowledged is there after the crash (and no more than the file holds).
  const storedBefore = await stored(all)
  expect(storedBefore).toBeGreaterThanOrEqual(before.samples)
  expect(storedBefore).toBeLessThan(expected.rows)
  expect(held()).toEqual([])

  const { context, page } = await newPage(browser)
  try {
    await login(page, server)
    await page.goto(`${server.url}/imports?kind=webview`)
    const row = page.locator(`[data-test=job-${id}]`)
    await row.locator('[data-test=job-state]:has-text("Interrupted")').waitFor()
    const percent = Math.floor((before.rows_done / before.rows_total) * 100)
    expect(await row.locator('[data-test=job-progress]').getAttribute('aria-valuenow')).toBe(String(percent))
    expect(await row.innerText()).toContain(`${percent} % · ${num(before.rows_done)} of ${num(expected.rows)} rows · ${num(before.samples)} samples stored`)
    expect(await row.locator('[data-test=job-advice]').innerText()).toMatch(/Choose the same WebView database again/)
    await screenshot(page, 'imports-webview-interrupted')

    // Another database: refused on the page, nothing offered for import, nothing imported.
    await resumeWith(page, id, other)
    await page.waitForSelector('[data-test=webview-error]')
    expect(await page.locator('[data-test=webview-error] [data-test=error-text]').innerText()).toMatch(
      new RegExp(`^That is not the database of import ${id} \\(its size or contents differ\\)`),
    )
    expect(await page.locator('[data-test=webview-apply]').count()).toBe(0)
    // The form's own file is still none: nothing to check or import there either.
    expect(await page.isDisabled('[data-test=webview-preview]')).toBe(true)
    expect(await row.locator('[data-test=job-state]').innerText()).toBe('Interrupted')
    await screenshot(page, 'imports-webview-resume-wrong-file')
    const jobs = await apiCall<Job[]>(server, admin, 'GET', '/api/t3000/import/webview/jobs')
    expect(jobs.map((j) => [j.id, j.state, j.rows_done])).toEqual([[id, 'interrupted', before.rows_done]])
    const otherOnly = await fetch(`${server.url}/api/t3000/devices/${encodeURIComponent(`RTU-${DEVICES + 1} ${200_000 + DEVICES}`)}`, {
      headers: { Authorization: `Bearer ${admin}` },
    })
    expect(otherOnly.status).toBe(404)
    expect(await stored(all)).toBe(storedBefore)
    expect(held()).toEqual([])

    // The same file: the job continues to its end.
    await resumeWith(page, id, db)
    await page.waitForSelector('[data-test=webview-applied]')
    expect(await page.locator('[data-test=webview-error]').count()).toBe(0)
    await row.locator('[data-test=job-state]:has-text("Finished")').waitFor({ timeout: 60_000 })
    expect(await row.innerText()).toContain(`100 % · ${num(expected.rows)} of ${num(expected.rows)} rows · ${num(expected.rows)} samples stored`)
    expect(await row.locator('[data-test=job-progress]').getAttribute('aria-valuenow')).toBe('100')
    expect(await row.locator('[data-test=job-resume]').count()).toBe(0)
    expect(await page.isDisabled('[data-test=webview-preview]')).toBe(true)
    await screenshot(page, 'imports-webview-resumed')
  } finally {
    await context.close()
  }

  // Through the API: one job, done, every row once.
  const done = await job(id)
  expect([done.state, done.rows_done, done.samples, done.skipped]).toEqual(['done', expected.rows, expected.rows, {}])
  expect((await apiCall<Job[]>(server, admin, 'GET', '/api/t3000/import/webview/jobs')).length).toBe(1)
  expect(held()).toEqual([])
  const rows = await sql(
    `SELECT point_id, count(*), count(DISTINCT ts), epoch_us(min(ts)), epoch_us(max(ts)), CAST(sum(round(value * 1000)) AS BIGINT)
     FROM samples WHERE point_id IN (${all.join(',')}) GROUP BY point_id ORDER BY point_id`,
  )
  const got = new Map(rows.map((r) => [Number(r[0]), r.slice(1).map(Number)]))
  for (const s of series) {
    expect(got.get(s.id), `${s.device} ${s.point}`).toEqual([s.count, s.count, utcUs(s.first), utcUs(s.last), s.sum_milli])
  }
  // A few samples, value and time stamp.
  const times = [...new Set(series.flatMap((s) => s.samples.map(([t]) => utcUs(t))))]
  const picked = await sql(
    `SELECT point_id, epoch_us(ts), value FROM samples WHERE point_id IN (${all.join(',')}) AND epoch_us(ts) IN (${times.join(',')})`,
  )
  const at = new Map(picked.map((r) => [`${Number(r[0])}@${Number(r[1])}`, Number(r[2])]))
  expect(at.size).toBe(series.reduce((n, s) => n + s.samples.length, 0))
  for (const s of series) {
    for (const [t, v] of s.samples) expect(at.get(`${s.id}@${utcUs(t)}`), `${s.device} ${s.point} at ${t}`).toBeCloseTo(v, 9)
  }
})
