// Auto / manual end to end on the demo, at 1440x900 and on a 390x844 phone:
//  - an operator switches a point to manual with its Auto/Man toggle in the points table (after a
//    question), writes it, relinquishes the command, and the panel offers "Return to auto";
//  - the dashboard lists the point in manual with its value, who put it there and when, and returns
//    it to auto from there; its controller then drives the value again;
//  - the offer after the last relinquish returns a point to auto from the point's panel;
//  - a viewer sees the state, no toggle, and no return button.
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { apiCall, launchBrowser, login, newPage, screenshot, startDemo, token, type Server } from './harness'

interface Point {
  id: number
  name: string
  value: number | null
  quality: string | null
  auto_manual: boolean
  has_auto_manual: boolean
}

let server: Server
let browser: Browser
let admin: string
let controller: { id: number; name: string }

beforeAll(async () => {
  server = await startDemo()
  browser = await launchBrowser()
  admin = await token(server)
  controller = (await apiCall<{ items: { id: number; name: string }[] }>(server, admin, 'GET', '/api/t3000/devices?profile=T3-controller')).items[0]
  await apiCall(server, admin, 'POST', '/api/t3000/users', { username: 'op', password: 'operator-password-1', role: 'operator' })
  await apiCall(server, admin, 'POST', '/api/t3000/users', { username: 'view', password: 'viewer-password-1', role: 'viewer' })
})

afterAll(async () => {
  await browser?.close()
  await server?.stop()
})

async function point(name: string): Promise<Point> {
  const all = (await apiCall<{ items: Point[] }>(server, admin, 'GET', `/api/t3000/points?device_id=${controller.id}&limit=1000`)).items
  return all.find((p) => p.name === name)!
}

async function openDevice(page: Page, type: string) {
  await page.goto(`${server.url}/devices/${controller.id}`)
  await page.waitForSelector(`[data-test=device-title]:has-text("${controller.name}")`)
  await page.click(`[data-test=type-${type}]`)
  await page.waitForSelector('[data-test=point-row]')
}

const row = (page: Page, name: string) => page.locator(`tr[data-test=point-row][data-name="${name}"]`)

describe('auto / manual', () => {
  test('the toggle in the table, a write and a relinquish, then the dashboard returns the point to auto (1440x900)', async () => {
    const { context, page } = await newPage(browser, { width: 1440, height: 900 })
    try {
      await login(page, server, 'op', 'operator-password-1')
      await openDevice(page, 'input')
      const r = row(page, 'IN1')
      const mode = r.locator('[data-test=point-mode]')
      await expect.poll(() => mode.textContent(), { timeout: 20_000 }).toBe('auto')
      // The toggle asks first, in words an operator reads: nothing changes on Cancel.
      await mode.click()
      await page.waitForSelector('[data-test=mode-confirm]:has-text("Its controller stops driving")')
      await page.click('[data-test=mode-confirm-cancel]')
      await page.waitForSelector('[data-test=mode-confirm]', { state: 'detached' })
      expect((await point('IN1')).auto_manual).toBe(false)
      await mode.click()
      await screenshot(page, 'modes-switch-to-manual')
      await page.click('[data-test=mode-confirm-yes]')
      await page.waitForSelector('[data-test=mode-confirm]', { state: 'detached' })
      await expect.poll(() => mode.textContent(), { timeout: 20_000 }).toBe('manual')
      expect((await point('IN1')).auto_manual).toBe(true)

      // In manual the input takes a write; relinquishing its only command offers "Return to auto".
      await r.locator('[data-test=point-write]').click()
      await page.waitForSelector('[data-test=point-panel]')
      await page.fill('[data-test=write-value]', '55.5')
      await page.click('[data-test=write-submit]')
      await page.waitForSelector('[data-test=write-ok]')
      await page.waitForSelector('[data-test=command-row]:has-text("user:op")')
      await page.click('[data-test=relinquish]')
      await page.waitForSelector('[data-test=commands-empty]')
      await page.waitForSelector('[data-test=offer-auto]:has-text("still in manual")')
      await screenshot(page, 'modes-offer-auto')
      await page.click('[data-test=offer-auto-no]')
      await page.waitForSelector('[data-test=offer-auto]', { state: 'detached' })
      await page.click('[data-test=dialog-close]')

      // The dashboard: IN1 in manual, at 55.5, by op, just now.
      await page.goto(`${server.url}/`)
      const id = (await point('IN1')).id
      const entry = page.locator(`[data-test=manual-points] [data-test=manual-row][data-point-id="${id}"]`)
      await entry.waitFor()
      expect(await entry.locator('[data-test=manual-by]').textContent()).toContain('op')
      await expect.poll(() => entry.locator('[data-test=manual-since]').textContent()).toMatch(/ago|now/)
      await expect.poll(() => entry.locator('[data-test=manual-value]').textContent(), { timeout: 20_000 }).toContain('55.5')
      await screenshot(page, 'modes-dashboard-manual')
      await entry.locator('[data-test=manual-return]').click()
      await entry.locator('[data-test=manual-return-confirm]').click()
      await entry.waitFor({ state: 'detached', timeout: 20_000 })
      const back = await point('IN1')
      expect([back.auto_manual, back.quality]).toEqual([false, 'good'])
      // Its controller drives it again: the simulated room temperature replaces 55.5.
      await expect.poll(async () => (await point('IN1')).value, { timeout: 30_000 }).not.toBe(55.5)
      const audit = await apiCall<{ actor: string; action: string; new: { mode: string } }[]>(server, admin, 'GET', `/api/t3000/audit?target=point:${id}&action=point.mode`)
      expect(audit.map((e) => [e.actor, e.new.mode])).toEqual([['op', 'auto'], ['op', 'manual']])
    } finally {
      await context.close()
    }
  })

  test("after the last relinquish the panel's offer returns the point to auto (390x844)", async () => {
    const { context, page } = await newPage(browser, { width: 390, height: 844 })
    try {
      await login(page, server, 'op', 'operator-password-1')
      await openDevice(page, 'variable')
      const r = row(page, 'VAR4')
      await r.scrollIntoViewIfNeeded()
      await r.locator('[data-test=point-write]').click()
      await page.waitForSelector('[data-test=point-panel]')
      // The panel's own toggle, answered in place.
      await page.click('[data-test=point-panel] [data-test=point-mode]')
      await page.waitForSelector('[data-test=point-panel] [data-test=mode-confirm]:has-text("Switch")')
      await page.click('[data-test=point-panel] [data-test=mode-confirm-yes]')
      await page.waitForSelector('[data-test=mode-ok]:has-text("In manual")')
      await expect.poll(() => page.locator('[data-test=point-panel] [data-test=point-mode]').textContent(), { timeout: 20_000 }).toBe('manual')
      await page.fill('[data-test=write-value]', '23.5')
      await page.click('[data-test=write-submit]')
      await page.waitForSelector('[data-test=command-row]')
      await page.click('[data-test=relinquish]')
      await page.waitForSelector('[data-test=offer-auto]')
      await screenshot(page, 'modes-offer-auto-phone')
      await page.click('[data-test=offer-auto-yes]')
      await page.waitForSelector('[data-test=mode-ok]:has-text("Back in auto")')
      await page.waitForSelector('[data-test=offer-auto]', { state: 'detached' })
      await expect.poll(() => page.locator('[data-test=point-panel] [data-test=point-mode]').textContent(), { timeout: 20_000 }).toBe('auto')
      expect((await point('VAR4')).auto_manual).toBe(false)
    } finally {
      await context.close()
    }
  })

  test('a viewer sees the state but no toggle and no return button', async () => {
    await apiCall(server, admin, 'POST', `/api/t3000/points/${(await point('VAR5')).id}/mode`, { mode: 'manual' })
    const { context, page } = await newPage(browser, { width: 1440, height: 900 })
    try {
      await login(page, server, 'view', 'viewer-password-1')
      const entry = page.locator(`[data-test=manual-row][data-point-id="${(await point('VAR5')).id}"]`)
      await entry.waitFor()
      expect(await entry.locator('[data-test=manual-by]').textContent()).toContain('admin')
      expect(await page.locator('[data-test=manual-return]').count()).toBe(0)
      await openDevice(page, 'variable')
      const mode = row(page, 'VAR5').locator('[data-test=point-mode]')
      await expect.poll(() => mode.textContent(), { timeout: 20_000 }).toBe('manual')
      expect(await mode.evaluate((e) => e.tagName)).toBe('SPAN')
      const viewer = await token(server, 'view', 'viewer-password-1')
      const r = await fetch(`${server.url}/api/t3000/points/${(await point('VAR5')).id}/mode`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${viewer}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ mode: 'auto' }),
      })
      expect(r.status).toBe(403)
    } finally {
      await context.close()
    }
  })
})
