// The .prog tab of the Imports page end to end (needs the server's POST /api/t3000/import/prog):
// an admin chooses a T3 controller of the demo and a real T3000 panel file
// (drivers/tests/data/prog/, from temcocontrols' repositories), sees the preview point by point
// and record by record, applies it and finds the file's labels on the controller's points; the
// same file again has nothing to apply; a file that is not a panel file is refused with where,
// and a device that is not a T3 panel is named as such.
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { apiCall, launchBrowser, login, newPage, screenshot, startDemo, token, type Server } from './harness'

const here = dirname(fileURLToPath(import.meta.url))
const PROG = resolve(here, '../../drivers/tests/data/prog/Building1.prog')

let server: Server
let browser: Browser
let admin: string
let scratch: string

beforeAll(async () => {
  server = await startDemo()
  browser = await launchBrowser()
  admin = await token(server)
  scratch = mkdtempSync(join(tmpdir(), 't3000-prog-e2e-'))
})

afterAll(async () => {
  await browser?.close()
  await server?.stop()
  if (scratch) rmSync(scratch, { recursive: true, force: true })
})

describe('.prog import', () => {
  test('a real panel file is previewed, applied, and a second time has nothing to do', async () => {
    const device = (await apiCall<{ items: { id: number; name: string }[] }>(server, admin, 'GET', '/api/t3000/devices?profile=T3-controller')).items.find(
      (d) => d.name === 'floor3-fcu',
    )!
    const { context, page } = await newPage(browser)
    try {
      await login(page, server)
      await page.goto(`${server.url}/imports?kind=prog`)
      await page.waitForSelector('[data-test=prog-import]')
      await page.waitForSelector(`[data-test=prog-device] option[value="${device.name}"]`, { state: 'attached' })
      await page.selectOption('[data-test=prog-device]', device.name)
      await page.setInputFiles('[data-test=prog-file]', PROG)
      await page.click('[data-test=prog-preview]')
      await page.waitForSelector('[data-test=prog-summary]:has-text("Preview")')
      expect(await page.locator('[data-test=prog-summary]').innerText()).toMatch(/file version [678]/)
      // An input the file labels: its label is what the point gets.
      await page.locator('[data-test=prog-row]').first().waitFor()
      const rows = await page.locator('[data-test=prog-row]').evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => (td as HTMLElement).innerText.trim())))
      const labelled = rows.find(([kind, source, name, , fields]) => kind === 'Input' && /^IN\d+$/.test(source) && name !== '—' && fields.includes('label: '))
      expect(labelled, JSON.stringify(rows.slice(0, 10))).toBeTruthy()
      const [, source, label] = labelled!
      // The file's warnings come together by message: IN9 .. IN64 with an unknown range are one line.
      const warnings = (await page.locator('[data-test=prog-warning]').allTextContents()).map((w) => w.trim())
      expect(warnings.some((w) => /^IN\d+, IN\d+, .* and \d+ more: /.test(w)), warnings.join('\n')).toBe(true)
      await screenshot(page, 'imports-prog-preview')

      await page.click('[data-test=prog-apply]')
      await page.click('[data-test=prog-apply-confirm]')
      await page.waitForSelector('[data-test=prog-summary]:has-text("Imported into")')
      const points = (await apiCall<{ items: { name: string; label: string | null }[] }>(server, admin, 'GET', `/api/t3000/points?device_id=${device.id}&limit=1000`)).items
      expect(points.find((p) => p.name === source)?.label).toBe(label)
      const audit = await apiCall<unknown[]>(server, admin, 'GET', '/api/t3000/audit?action=import.prog')
      expect(audit.length).toBeGreaterThan(0)

      // The same file again: nothing to apply.
      await page.click('[data-test=prog-preview]')
      await page.waitForSelector('[data-test=prog-summary]:has-text("Preview")')
      await page.waitForSelector('text=Nothing to apply')
      expect(await page.isDisabled('[data-test=prog-apply]')).toBe(true)

      // Not a panel file: refused with where it went wrong.
      const fake = join(scratch, 'notes.prog')
      writeFileSync(fake, 'name,label\nAHU,IN1\n')
      await page.setInputFiles('[data-test=prog-file]', fake)
      await page.click('[data-test=prog-preview]')
      await page.waitForSelector('[data-test=prog-error]')
      expect(await page.locator('[data-test=prog-error] [data-test=error-text]').innerText()).toMatch(/^This is not a T3000 panel file this server can read: .*offset/i)
      await screenshot(page, 'imports-prog-bad-file')

      // A device that is not a T3 panel.
      await page.selectOption('[data-test=prog-device]', 'floor1-lobby-co2')
      await page.setInputFiles('[data-test=prog-file]', PROG)
      await page.click('[data-test=prog-preview]')
      await page.waitForSelector('[data-test=prog-error]')
      expect(await page.locator('[data-test=prog-error] [data-test=error-text]').innerText()).toMatch(/not a T3 panel/)
    } finally {
      await context.close()
    }
  })
})
