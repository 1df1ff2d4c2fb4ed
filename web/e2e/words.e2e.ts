// What an operator reads: a point or device that does not exist says so in plain words, with no
// code quotes and no Retry that cannot help, the server's code one click away under "Details"; a
// write refused because the point is in auto explains Auto and Manual without the API's field
// name; qualities read as words ("Manual: ..."), not as OPC names ("good/local_override").
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { apiCall, launchBrowser, login, newPage, screenshot, startDemo, token, type Server } from './harness'

let server: Server
let browser: Browser
let controller: { id: number; name: string }
let admin: string

beforeAll(async () => {
  server = await startDemo()
  browser = await launchBrowser()
  admin = await token(server)
  controller = (await apiCall<{ items: { id: number; name: string }[] }>(server, admin, 'GET', '/api/t3000/devices?profile=T3-controller')).items[0]
  await apiCall(server, admin, 'POST', '/api/t3000/users', { username: 'op', password: 'operator-password-1', role: 'operator' })
})

afterAll(async () => {
  await browser?.close()
  await server?.stop()
})

/** The text a person sees in `selector` (closed "Details" excluded, as the browser renders it). */
const seen = (page: Page, selector: string) => page.locator(selector).first().evaluate((e) => (e as HTMLElement).innerText)

/** Words of the API that must not reach an operator's eyes. */
const TECHNICAL = /`|switch_to_manual|good\/|bad\/|uncertain\/|0x[0-9a-f]{2}|not_found|range code/i

describe('words for operators', () => {
  test('a device that does not exist: plain words, no Retry, the code under Details', async () => {
    const { context, page } = await newPage(browser)
    try {
      await login(page, server, 'op', 'operator-password-1')
      await page.goto(`${server.url}/devices/9999`)
      await page.waitForSelector('[data-test=device-error]')
      const text = await seen(page, '[data-test=device-error]')
      expect(text).toMatch(/deleted or renamed/)
      expect(text).not.toMatch(TECHNICAL)
      expect(await page.locator('[data-test=device-error] [data-test=error-retry]').count()).toBe(0)
      await page.click('[data-test=device-error] summary')
      expect(await seen(page, '[data-test=device-error] [data-test=error-detail]')).toMatch(/404 · not_found/)
      await screenshot(page, 'words-missing-device')
    } finally {
      await context.close()
    }
  })

  test('a write to a point in auto, and the quality of a point in manual, in words', async () => {
    const { context, page } = await newPage(browser)
    try {
      // An analog output its controller drives (in auto).
      type P = { name: string; point_type: string; auto_manual: boolean; digital: boolean | null; writable: boolean }
      // (The server reads whether a point is digital soon after the device answers.)
      const find = async () =>
        (await apiCall<{ items: P[] }>(server, admin, 'GET', `/api/t3000/points?device_id=${controller.id}&limit=1000`)).items.find(
          (p) => p.point_type === 'output' && p.writable && !p.auto_manual && p.digital === false,
        )
      await expect.poll(find, { timeout: 30_000 }).toBeTruthy()
      const out = (await find())!
      await login(page, server, 'op', 'operator-password-1')
      await page.goto(`${server.url}/devices/${controller.id}`)
      await page.waitForSelector('[data-test=point-row]')
      await page.click('[data-test=type-output]')
      const r = page.locator(`tr[data-test=point-row][data-name="${out.name}"]`)
      await r.locator('[data-test=point-write]').click()
      await page.waitForSelector('[data-test=point-panel] [data-test=write-value]')
      await page.fill('[data-test=write-value]', '1')
      await page.click('[data-test=write-submit]')
      await page.waitForSelector('[data-test=write-in-auto]')
      const asked = await seen(page, '[data-test=write-in-auto]')
      expect(asked).toMatch(/Switch to manual and write/)
      expect(asked).not.toMatch(TECHNICAL)
      await page.click('[data-test=write-switch-manual]')
      await page.waitForSelector('[data-test=write-ok]')
      // The panel's quality badge and the table's quality column say "Manual", with the OPC name in the tooltip.
      await page.waitForSelector('[data-test=point-panel] .badge:has-text("Manual")')
      expect(await seen(page, '[data-test=point-panel]')).not.toMatch(TECHNICAL)
      await page.keyboard.press('Escape')
      await page.waitForSelector('[data-test=point-panel]', { state: 'detached' })
      const q = r.locator('[data-test=point-quality]')
      await expect.poll(() => q.innerText(), { timeout: 15_000 }).toMatch(/^Manual/)
      expect(await q.getAttribute('title')).toBe('quality good/local_override')
      await screenshot(page, 'words-manual-quality')
    } finally {
      await context.close()
    }
  })
})
