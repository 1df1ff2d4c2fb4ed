// Imports and hardware sync end to end, through the real binary in demo mode: an admin exports
// points.csv, changes a label in it, uploads it (the preview shows the cell that changes, row by
// row), applies it and finds the label on the server; a CSV with a mistake is refused with its row
// and column; a T3000 WebView database with WebView's real schema is previewed and imported, its
// history job shows its progress and is still listed after a reload, every row stored once; on a
// T3 controller's page a label (and a weekly routine's times) changed on the server shows in the sync table as changed on the
// server, and applying writes it to the (simulated) controller. Viewers see no Imports.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { apiCall, launchBrowser, login, newPage, screenshot, startDemo, token, until, type Server } from './harness'

const here = dirname(fileURLToPath(import.meta.url))

interface Point {
  id: number
  name: string
  label: string | null
  device: string | null
}

let server: Server
let browser: Browser
let admin: string
let scratch: string

beforeAll(async () => {
  server = await startDemo()
  browser = await launchBrowser()
  admin = await token(server)
  scratch = mkdtempSync(join(tmpdir(), 't3000-imports-e2e-'))
  await apiCall(server, admin, 'POST', '/api/t3000/users', { username: 'view', password: 'viewer-password-1', role: 'viewer' })
})

afterAll(async () => {
  await browser?.close()
  await server?.stop()
  if (scratch) rmSync(scratch, { recursive: true, force: true })
})

/** The CSV as the server exports it (`path` under /api/t3000/config). */
async function exported(path: string): Promise<string> {
  const r = await fetch(`${server.url}/api/t3000/config/${path}`, { headers: { Authorization: `Bearer ${admin}` } })
  expect(r.status).toBe(200)
  return r.text()
}

/** Splits a simple exported CSV line (the demo's cells hold no quotes or separators). */
const cells = (line: string) => line.split(',')

async function openImports(page: Page, kind: string) {
  await page.click('nav >> text=Imports')
  await page.waitForSelector('[data-test=imports-view]')
  await page.click(`[data-test=imports-tab-${kind}]`)
}

describe('imports and sync', () => {
  test('a points.csv with a changed label is previewed cell by cell and applied', async () => {
    const csv = (await exported('points.csv')).replace(/^\uFEFF/, '')
    const lines = csv.split(/\r?\n/)
    const header = cells(lines[0])
    const [deviceCol, nameCol, labelCol] = ['device', 'name', 'label'].map((c) => header.indexOf(c))
    // The first input of the first T3 controller.
    const at = lines.findIndex((l, i) => i > 0 && cells(l)[deviceCol] === 'floor1-ahu' && cells(l)[nameCol] === 'IN1')
    expect(at).toBeGreaterThan(0)
    const row = cells(lines[at])
    const before = row[labelCol]
    row[labelCol] = 'CSV-LBL'
    lines[at] = row.join(',')
    const file = join(scratch, 'points.csv')
    writeFileSync(file, lines.join('\r\n'))

    const { context, page } = await newPage(browser)
    try {
      await login(page, server)
      await openImports(page, 'csv')
      // The export buttons download the files.
      const [download] = await Promise.all([page.waitForEvent('download'), page.click('[data-test=export-devices]')])
      expect(download.suggestedFilename()).toBe('devices.csv')
      expect(readFileSync((await download.path())!, 'utf8')).toContain('floor1-ahu')

      await page.selectOption('[data-test=csv-kind]', 'points')
      await page.setInputFiles('[data-test=csv-file]', file)
      await page.click('[data-test=csv-preview]')
      await page.waitForSelector('[data-test=csv-summary]:has-text("Preview")')
      const change = page.locator('[data-test=csv-change]')
      await expect.poll(() => change.count()).toBe(1)
      const text = await change.first().innerText()
      expect(text).toContain('floor1-ahu IN1')
      expect(text).toContain('Changed')
      expect(text).toContain('CSV-LBL')
      if (before) expect(text).toContain(before)
      await screenshot(page, 'imports-csv-preview')
      // Nothing changed yet.
      const points = () => apiCall<{ items: Point[] }>(server, admin, 'GET', '/api/t3000/points?q=floor1-ahu%20IN1&limit=5')
      expect((await points()).items.find((p) => p.name === 'IN1' && p.device === 'floor1-ahu')?.label).not.toBe('CSV-LBL')

      await page.click('[data-test=csv-apply]')
      await page.click('[data-test=csv-apply-confirm]')
      await page.waitForSelector('[data-test=csv-summary]:has-text("Imported")')
      expect((await points()).items.find((p) => p.name === 'IN1' && p.device === 'floor1-ahu')?.label).toBe('CSV-LBL')
      const audit = await apiCall<{ action: string }[]>(server, admin, 'GET', '/api/t3000/audit?action=import.csv')
      expect(audit.length).toBeGreaterThan(0)

      // A file with a mistake: every error by row and column, nothing applied.
      const bad = join(scratch, 'bad-points.csv')
      const retention = header.indexOf('retention_days')
      const wrong = cells(lines[at])
      wrong[labelCol] = 'NEVER'
      wrong[retention] = 'forever'
      writeFileSync(bad, [lines[0], wrong.join(',')].join('\r\n'))
      await page.setInputFiles('[data-test=csv-file]', bad)
      await page.click('[data-test=csv-preview]')
      const err = page.locator('[data-test=csv-error-row]')
      await expect.poll(() => err.count()).toBe(1)
      expect(await err.first().innerText()).toMatch(/Row 2, column retention_days \(cell [A-Z]+2\)/)
      expect(await page.locator('[data-test=csv-errors] [data-test=error-text]').innerText()).toMatch(/^The file has mistakes; nothing was imported/)
      await screenshot(page, 'imports-csv-errors')
      expect((await points()).items.find((p) => p.name === 'IN1' && p.device === 'floor1-ahu')?.label).toBe('CSV-LBL')
    } finally {
      await context.close()
    }
  })

  test('a WebView database is previewed, imported, and its job is still shown after a reload', async () => {
    const db = join(scratch, 'webview_t3_device.db')
    const rows = Number(execFileSync('python3', [join(here, 'data/webview_db.py'), db, '2', '600']).toString().trim())
    expect(rows).toBe(2 * 7 * 600)

    const { context, page } = await newPage(browser)
    try {
      await login(page, server)
      await openImports(page, 'webview')
      await page.waitForSelector('[data-test=jobs-empty]')
      await page.fill('[data-test=webview-tz]', 'UTC')
      await page.setInputFiles('[data-test=webview-file]', db)
      await page.click('[data-test=webview-preview]')
      await page.waitForSelector('[data-test=webview-summary]')
      expect(await page.locator('[data-test=webview-summary]').innerText()).toContain(`8\u202f400 history rows in 14 series`)
      await expect.poll(() => page.locator('[data-test=webview-device]').count()).toBe(2)
      expect(await page.locator('[data-test=webview-device]').first().innerText()).toContain('RTU-1')
      await expect.poll(() => page.locator('[data-test=webview-point]').count()).toBe(14)
      expect(await page.locator('[data-test=webview-point]', { hasText: 'Outside air temp' }).count()).toBe(2)
      await screenshot(page, 'imports-webview-preview')

      await page.click('[data-test=webview-apply]')
      await page.click('[data-test=webview-apply-confirm]')
      await page.waitForSelector('[data-test=webview-applied]')
      const job = page.locator('tr.job').first()
      await job.locator('[data-test=job-state]:has-text("Finished")').waitFor({ timeout: 60_000 })
      expect(await job.innerText()).toContain(`${'8\u202f400'} of ${'8\u202f400'} rows · ${'8\u202f400'} samples stored`)
      expect(await job.locator('[data-test=job-progress]').getAttribute('aria-valuenow')).toBe('100')
      await screenshot(page, 'imports-webview-done')

      // The job comes from the server: a reload finds it again, on the same tab.
      await page.reload()
      await page.locator('tr.job [data-test=job-state]:has-text("Finished")').waitFor()
      expect(page.url()).toContain('kind=webview')
      const jobs = await apiCall<{ state: string; samples: number; rows_done: number }[]>(server, admin, 'GET', '/api/t3000/import/webview/jobs')
      expect(jobs.map((j) => [j.state, j.samples, j.rows_done])).toEqual([['done', rows, rows]])

      // The same file again: the preview says it was imported, and importing changes nothing.
      await page.setInputFiles('[data-test=webview-file]', db)
      await page.click('[data-test=webview-preview]')
      await page.waitForSelector('[data-test=webview-known]:has-text("imported before")')

      // Not a WebView database: the error says so, nothing imported.
      const notDb = join(scratch, 'notes.db')
      writeFileSync(notDb, 'this is not SQLite')
      await page.setInputFiles('[data-test=webview-file]', notDb)
      await page.click('[data-test=webview-preview]')
      await page.waitForSelector('[data-test=webview-error]')
      expect(await page.locator('[data-test=webview-error] [data-test=error-text]').innerText()).toMatch(/^This is not a T3000 WebView database/)
    } finally {
      await context.close()
    }
  })

  test('a label changed on the server shows in the sync table and is written to the controller', async () => {
    const device = (await apiCall<{ items: { id: number; name: string }[] }>(server, admin, 'GET', '/api/t3000/devices?profile=T3-controller')).items.find(
      (d) => d.name === 'floor2-vav',
    )!
    await until('floor2-vav online', async () => (await apiCall<{ online: boolean }>(server, admin, 'GET', `/api/t3000/devices/${device.id}`)).online, 30_000)
    // A first sync settles the baseline (the panel's labels come to the server).
    await apiCall(server, admin, 'POST', `/api/t3000/devices/${device.id}/sync`, { strategy: 'device_wins' })
    const pts = (await apiCall<{ items: Point[] }>(server, admin, 'GET', `/api/t3000/points?device_id=${device.id}&limit=1000`)).items
    const in2 = pts.find((p) => p.name === 'IN2')!
    await apiCall(server, admin, 'PUT', `/api/t3000/points/${in2.id}`, { label: 'SRV-E2E' })

    const { context, page } = await newPage(browser)
    try {
      await login(page, server)
      await page.goto(`${server.url}/devices/${device.id}`)
      await page.waitForSelector('[data-test=device-sync]')
      await page.click('[data-test=sync-compare]')
      const row = page.locator('[data-test=sync-row]', { hasText: 'IN2' }).filter({ hasText: 'Label' })
      await row.waitFor()
      expect(await row.locator('[data-test=sync-server]').innerText()).toBe('SRV-E2E')
      expect(await row.locator('[data-test=sync-changed]').innerText()).toBe('On the server')
      expect(await row.locator('[data-test=sync-direction]').inputValue()).toBe('to_device')
      await screenshot(page, 'sync-differences')

      await page.click('[data-test=sync-apply]')
      expect(await page.locator('[data-test=sync-apply-ask]').innerText()).toMatch(/written to the controller/)
      await page.click('[data-test=sync-apply-confirm]')
      await page.waitForSelector('[data-test=sync-result]')
      expect(await page.locator('[data-test=sync-result]').innerText()).toMatch(/Applied: 1 change made/)
      // The controller holds it now: a new read has nothing left to do.
      await page.waitForSelector('[data-test=sync-summary]:has-text("Everything agrees")')
      const report = await apiCall<{ differences: unknown[] }>(server, admin, 'GET', `/api/t3000/devices/${device.id}/sync`)
      expect(report.differences).toEqual([])
      const audit = await apiCall<{ target: string }[]>(server, admin, 'GET', `/api/t3000/audit?action=sync.apply&target=point:${in2.id}`)
      expect(audit.length).toBeGreaterThan(0)
      await screenshot(page, 'sync-applied')

      // A routine: the weekly routine's schedule (made by the first sync) gets Sunday hours on the
      // server; its row shows the times by day and applying writes them to the controller.
      type Sched = { id: number; name: string; description: string | null; weekly_schedule: { days: Record<string, unknown> }; calendar_ids: number[] }
      const wr1 = (await apiCall<Sched[]>(server, admin, 'GET', '/api/t3000/schedules')).find((s) => s.name.startsWith('floor2-vav WR1'))!
      const days = { ...wr1.weekly_schedule.days, sunday: [{ on: '09:00', off: '13:00' }] }
      await apiCall(server, admin, 'PUT', `/api/t3000/schedules/${wr1.id}`, {
        name: wr1.name, description: wr1.description, weekly_schedule: { days }, calendar_ids: wr1.calendar_ids,
      })
      await page.click('[data-test=sync-compare]')
      const times = page.locator('[data-test=sync-row]', { hasText: 'WR1' }).filter({ hasText: 'Times' })
      await times.waitFor()
      expect(await times.locator('[data-test=sync-server]').innerText()).toMatch(/Sun 09:00–13:00/)
      expect(await times.locator('[data-test=sync-device]').innerText()).not.toMatch(/Sun/)
      expect(await times.locator('[data-test=sync-direction]').inputValue()).toBe('to_device')
      await page.click('[data-test=sync-apply]')
      await page.click('[data-test=sync-apply-confirm]')
      await page.waitForSelector('[data-test=sync-result]')
      await page.waitForSelector('[data-test=sync-summary]:has-text("Everything agrees")')

      // A device that is not a T3 controller: the words say so.
      const co2 = (await apiCall<{ items: { id: number }[] }>(server, admin, 'GET', '/api/t3000/devices?profile=CO2')).items[0]
      await page.goto(`${server.url}/devices/${co2.id}`)
      await page.click('[data-test=sync-compare]')
      expect(await page.locator('[data-test=sync-error] [data-test=error-text]').innerText()).toMatch(/not a T3 controller/)
    } finally {
      await context.close()
    }
  })

  test('a viewer has no Imports in the menu and is told why on the page', async () => {
    const { context, page } = await newPage(browser)
    try {
      await login(page, server, 'view', 'viewer-password-1')
      expect(await page.locator('nav >> text=Imports').count()).toBe(0)
      await page.goto(`${server.url}/imports`)
      expect(await page.locator('[data-test=imports-forbidden]').innerText()).toMatch(/Only an administrator can import/)
      // Nor a sync panel on a controller's page.
      const device = (await apiCall<{ items: { id: number; name: string }[] }>(server, admin, 'GET', '/api/t3000/devices?profile=T3-controller')).items[0]
      await page.goto(`${server.url}/devices/${device.id}`)
      await page.waitForSelector(`[data-test=device-title]:has-text("${device.name}")`)
      await page.waitForSelector('[data-test=point-row]')
      expect(await page.locator('[data-test=device-sync]').count()).toBe(0)
    } finally {
      await context.close()
    }
  })
})
