// The dashboard against the real demo: status tiles from the live connection, and a pinned
// point whose simulated value changes on screen without a reload.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Browser, Page } from 'playwright-core'
import { apiCall, changingPoint, latestValues, launchBrowser, login, newPage, screenshot, startDemo, token, type Server } from './harness'

let server: Server
let browser: Browser
let admin: string

interface Point {
  id: number
  name: string
  label: string | null
  device: string | null
}

beforeAll(async () => {
  server = await startDemo()
  browser = await launchBrowser()
  admin = await token(server)
})
afterAll(async () => {
  await browser?.close()
  await server?.stop()
})

async function textOf(page: Page, selector: string): Promise<string> {
  return ((await page.textContent(selector)) ?? '').trim()
}

describe('dashboard', () => {
  it('shows the status tiles and explains how to pin points', async () => {
    const { context, page } = await newPage(browser)
    try {
      await login(page, server)
      await page.waitForSelector('[data-test=pins-empty]')
      expect(await textOf(page, '[data-test=pins-empty]')).toContain('No points pinned yet')

      const devices = await apiCall<{ total: number }>(server, admin, 'GET', '/api/t3000/devices')
      expect(devices.total).toBeGreaterThan(0)
      await expect.poll(() => textOf(page, '[data-test=tile-devices-online] .big'), { timeout: 30_000 }).toMatch(new RegExp(`^\\d+\\s*/ ${devices.total}$`))
      // The demo's devices come online: the tile follows their DeviceStatus.
      await expect.poll(async () => Number(await textOf(page, '[data-test=devices-online]')), { timeout: 60_000 }).toBeGreaterThan(0)
      // SystemStatus figures arrive over the live connection.
      await expect.poll(() => textOf(page, '[data-test=collection-rate]'), { timeout: 30_000 }).not.toBe('—')
      await expect.poll(async () => Number(await textOf(page, '[data-test=clients]')), { timeout: 30_000 }).toBeGreaterThanOrEqual(1)
      expect(await textOf(page, '[data-test=alarms-active]')).toBe('0')
      expect(await textOf(page, '[data-test=alarms-in-alarm]')).toBe('0')
      await screenshot(page, 'dashboard-empty')
    } finally {
      await context.close()
    }
  })

  it('pins a point from the search and shows its value changing live', async () => {
    const { id } = await changingPoint(server, admin)
    const point = await apiCall<Point>(server, admin, 'GET', `/api/t3000/points/${id}`)
    const { context, page } = await newPage(browser)
    try {
      await login(page, server)
      await page.fill('[data-test=pin-search]', String(id))
      await page.click(`[data-test=pin-search-result][data-point-id="${id}"]`)
      const card = `[data-test=pin-card][data-point-id="${id}"]`
      await page.waitForSelector(card)
      expect(await textOf(page, `${card} [data-test=pin-title]`)).toBe(point.label || point.name)
      expect(await page.evaluate(() => JSON.parse(localStorage.getItem('t3000.pins.admin') ?? '[]'))).toEqual([id])

      const valueSel = `${card} [data-test=pin-value]`
      await expect.poll(() => textOf(page, valueSel)).not.toBe('—')
      const first = await textOf(page, valueSel)
      const firstTime = await textOf(page, `${card} [data-test=pin-time]`)
      expect(await textOf(page, `${card} [data-test=pin-quality]`)).toMatch(/^(OK|Manual override)$/)
      await page.waitForFunction(
        ([sel, v]) => {
          const t = document.querySelector(sel)?.textContent?.trim()
          return !!t && t !== '—' && t !== v
        },
        [valueSel, first] as const,
        { timeout: 60_000 },
      )
      expect(await textOf(page, `${card} [data-test=pin-time]`)).not.toBe(firstTime)
      await screenshot(page, 'dashboard-pinned')
      await page.setViewportSize({ width: 820, height: 1180 })
      await page.waitForSelector(card)
      await screenshot(page, 'dashboard-pinned-tablet')
    } finally {
      await context.close()
    }
  })

  it('shows points pinned in localStorage and unpins them', async () => {
    const values = await latestValues(server, admin)
    const ids = [...values.keys()].slice(0, 2)
    const { context, page } = await newPage(browser)
    try {
      await login(page, server)
      await page.evaluate((pins) => localStorage.setItem('t3000.pins.admin', JSON.stringify(pins)), ids)
      await page.reload()
      for (const id of ids) await page.waitForSelector(`[data-test=pin-card][data-point-id="${id}"] [data-test=pin-title]`)
      expect(await page.locator('[data-test=pin-card]').count()).toBe(2)
      // Someone else's pins are not these.
      expect(await page.evaluate(() => localStorage.getItem('t3000.pins.operator'))).toBeNull()

      await page.click(`[data-test=pin-card][data-point-id="${ids[0]}"] [data-test=unpin]`)
      await expect.poll(() => page.locator('[data-test=pin-card]').count()).toBe(1)
      expect(await page.evaluate(() => JSON.parse(localStorage.getItem('t3000.pins.admin') ?? 'null'))).toEqual([ids[1]])
      await page.click(`[data-test=pin-card][data-point-id="${ids[1]}"] [data-test=unpin]`)
      await page.waitForSelector('[data-test=pins-empty]')
      await screenshot(page, 'dashboard-unpinned')
    } finally {
      await context.close()
    }
  })
})
