// Every page and every dialog at a laptop's 1440x900 and a phone's 390x844, against the real demo
// (with a command in force, a schedule, a holiday calendar, an active alarm and pinned points, so
// that every page has its tables and buttons):
//  - every visible button takes a click at its centre: the element there is the button or inside
//    it, and its text is whole (not cut);
//  - no page scrolls sideways, neither the page (document.scrollingElement.scrollWidth <=
//    innerWidth) nor a part of it;
//  - on the phone the menu is folded behind its button (the top bar is one line), and a device's
//    points show their value on screen;
//  - a thermostat's points in their groups (its configuration opened) and the confirmation of a
//    configuration write, likewise;
//  - how soon each page shows its main content after the navigation starts is measured and
//    printed (a figure to watch, not asserted: the machine may be busy).
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { apiCall, launchBrowser, login, newPage, screenshot, startDemo, token, unclickable, type Server } from './harness'

interface Device {
  id: number
  name: string
  profile: string
}
interface Floor {
  id: number
  plan_points?: { point_id: number }[]
}

let server: Server
let browser: Browser
let admin: string
let controller: Device
let thermostat: Device
let building: { id: number; floors: Floor[] }
let pointIds: Record<string, number>
let program: { id: number }

const SIZES = [
  { name: 'laptop', width: 1440, height: 900 },
  { name: 'phone', width: 390, height: 844 },
] as const
type Size = (typeof SIZES)[number]

/** Milliseconds from the navigation's start to the page's main content, by size and page. */
const times: Record<string, Record<string, number>> = {}

beforeAll(async () => {
  server = await startDemo()
  browser = await launchBrowser()
  admin = await token(server)
  controller = (await apiCall<{ items: Device[] }>(server, admin, 'GET', '/api/t3000/devices?profile=T3-controller')).items[0]
  thermostat = (await apiCall<{ items: Device[] }>(server, admin, 'GET', '/api/t3000/devices?profile=TSTAT8')).items[0]
  const pts = (await apiCall<{ items: { id: number; name: string }[] }>(server, admin, 'GET', `/api/t3000/points?device_id=${controller.id}&limit=1000`)).items
  pointIds = Object.fromEntries(pts.map((p) => [p.name, p.id]))
  building = (await apiCall<{ items: { id: number; floors: Floor[] }[] }>(server, admin, 'GET', '/api/t3000/buildings')).items[0]
  // A command in force (the point panel's Relinquish), a schedule and a calendar, an active alarm.
  await apiCall(server, admin, 'POST', `/api/t3000/points/${pointIds.VAR10}/value`, { value: 12.5, priority: 8, switch_to_manual: true })
  const cal = await apiCall<{ id: number }>(server, admin, 'POST', '/api/t3000/calendars', { name: 'Public holidays', holiday: 'holiday1', dates: ['2026-12-24'], recurring: ['12-25', '01-01'] })
  await apiCall(server, admin, 'POST', '/api/t3000/schedules', {
    name: 'Office hours, floor one',
    building_id: building.id,
    calendar_ids: [cal.id],
    weekly_schedule: { days: { monday: [{ on: '08:00', off: '17:00' }], tuesday: [{ on: '08:00', off: '12:00' }, { on: '13:00', off: '17:00' }] } },
    outputs: [{ point_id: pointIds.OUT8, on_value: 1, off_value: 0, switch_to_manual: true }],
  })
  const outdoor = await apiCall<{ id: number }>(server, admin, 'POST', '/api/t3000/points', { name: 'outdoor-air-temperature' })
  await apiCall(server, admin, 'POST', '/api/t3000/alarms/rules', {
    name: 'Outdoor air above the design limit',
    point_id: outdoor.id,
    rule: { condition: { kind: 'limits', high: 30 }, delay_secs: 0, message: 'Outdoor air is hotter than the chillers are sized for' },
  })
  await apiCall(server, admin, 'POST', '/api/t3000/samples', [{ point_id: outdoor.id, ts: new Date().toISOString(), value: 35.5 }])
  // A program stopped by a runtime error (its message in the list, marked in the editor).
  program = await apiCall<{ id: number }>(server, admin, 'POST', '/api/t3000/programs', {
    name: 'Night set-back, floor one',
    device_id: controller.id,
    source: '10 REM Night set-back of the first floor zones\n20 IF TIME > 18:00:00 OR TIME < 06:00:00 THEN VAR20 = 16 ELSE VAR20 = 21\n30 VAR21 = VAR21 / VAR22\n',
  })
  await apiCall(server, admin, 'POST', `/api/t3000/programs/${program.id}/run`)
})

afterAll(async () => {
  const lines = Object.entries(times).flatMap(([size, pages]) => Object.entries(pages).map(([p, ms]) => `  ${size.padEnd(7)} ${p.padEnd(22)} ${String(Math.round(ms)).padStart(5)} ms`))
  if (lines.length) console.log(`Time from navigation to the main content (not asserted):\n${lines.join('\n')}`)
  await browser?.close()
  await server?.stop()
})

/** A logged-in page of `size`, with two points pinned to the dashboard. */
async function open(size: Size): Promise<{ page: Page; close: () => Promise<void> }> {
  const { context, page } = await newPage(browser, { width: size.width, height: size.height })
  await context.addInitScript((ids) => localStorage.setItem('t3000.pins.admin', JSON.stringify(ids)), [pointIds.IN1, pointIds.OUT6])
  await login(page, server)
  return { page, close: () => context.close() }
}

/** Goes to `path` and waits for `ready` to be visible; records the time from the navigation's start. */
async function visit(page: Page, size: Size, name: string, path: string, ready: string) {
  await page.goto(`${server.url}${path}`)
  await page.waitForSelector(ready, { state: 'visible', timeout: 30_000 })
  const ms = await page.evaluate(() => performance.now())
  ;(times[size.name] ??= {})[name] = ms
}

/** What scrolls sideways: the page, or any part of it that scrolls (or would overflow) horizontally. */
async function sideways(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const bad: string[] = []
    const doc = document.scrollingElement!
    if (doc.scrollWidth > innerWidth) bad.push(`the page: ${doc.scrollWidth} > ${innerWidth} px`)
    for (const el of document.querySelectorAll<HTMLElement>('body *')) {
      const ox = getComputedStyle(el).overflowX
      // The program editor keeps a program's lines as written (no wrapping: line and column
      // numbers are the server's), so its box scrolls sideways by design.
      if (el.dataset.test === 'basic-editor') continue
      if ((ox === 'auto' || ox === 'scroll') && el.scrollWidth > el.clientWidth + 1 && el.checkVisibility()) {
        bad.push(`${el.tagName.toLowerCase()}.${el.className}[${el.dataset.test ?? ''}]: ${el.scrollWidth} > ${el.clientWidth} px`)
      }
    }
    return bad
  })
}

/** On the phone: the menu folded behind its button, the top bar one line. */
async function menuFolded(page: Page) {
  expect(await page.isVisible('[data-test=menu-toggle]')).toBe(true)
  expect(await page.isVisible('.topbar nav')).toBe(false)
  expect((await page.locator('.topbar').boundingBox())!.height).toBeLessThanOrEqual(56)
}

/** Checks the page as it is: buttons, sideways scrolling, the phone's menu. */
async function checkPage(page: Page, size: Size, what: string) {
  expect(await unclickable(page), `${what} at ${size.width}x${size.height}`).toEqual([])
  expect(await sideways(page), `${what} at ${size.width}x${size.height}`).toEqual([])
  if (size.name === 'phone') await menuFolded(page)
}

/** Checks the open dialog's buttons, then closes it. */
async function checkDialog(page: Page, size: Size, testId: string, shot: string) {
  await page.waitForSelector(`[data-test=${testId}]`)
  expect(await unclickable(page, `[data-test=${testId}]`), `dialog ${testId} at ${size.width}x${size.height}`).toEqual([])
  expect(await sideways(page), `dialog ${testId} at ${size.width}x${size.height}`).toEqual([])
  await screenshot(page, `layout-${size.name}-${shot}`)
  await page.click(`[data-test=${testId}] [data-test=dialog-close]`)
  await page.waitForSelector(`[data-test=${testId}]`, { state: 'detached' })
}

describe.each(SIZES)('at $width x $height ($name)', (size) => {
  test('the dashboard, the buildings and a floor plan with its point panel', async () => {
    const { page, close } = await open(size)
    try {
      await visit(page, size, 'dashboard', '/', '[data-test=pin-card] [data-test=pin-value]')
      await page.waitForSelector('[data-test=alarm-bell-count]')
      // The points in manual (VAR10 written with a switch to manual, the schedule's OUT8).
      await page.waitForSelector('[data-test=manual-points] [data-test=manual-row] [data-test=manual-return]')
      await checkPage(page, size, 'the dashboard')
      await screenshot(page, `layout-${size.name}-dashboard`)
      // The question before returning a point to auto, in its row.
      await page.locator('[data-test=manual-return]').first().click()
      await page.waitForSelector('[data-test=manual-return-ask]')
      await checkPage(page, size, 'the dashboard asking to return a point to auto')
      await page.click('[data-test=manual-return-cancel]')

      const floor = building.floors.find((f) => (f.plan_points?.length ?? 0) > 3)!
      await visit(page, size, 'floor plan', `/buildings/${building.id}?floor=${floor.id}`, '[data-test=plan-image]')
      await page.waitForSelector('[data-test=plan-stage] .pbadge')
      await checkPage(page, size, 'a floor plan')
      await screenshot(page, `layout-${size.name}-buildings`)
      await page.click(`[data-test=plan-badge-${floor.plan_points![0].point_id}]`)
      await checkDialog(page, size, 'point-panel', 'plan-point')
    } finally {
      await close()
    }
  })

  test('the devices with their dialogs: add, edit, discover', async () => {
    const { page, close } = await open(size)
    try {
      await visit(page, size, 'devices', '/devices', '[data-test=device-table] tr.device')
      await checkPage(page, size, 'the devices')
      await screenshot(page, `layout-${size.name}-devices`)
      await page.click('[data-test=device-add]')
      await checkDialog(page, size, 'device-form', 'device-add')
      await page.locator(`[data-test=device-row-${controller.id}] [data-test=device-edit]`).click()
      await checkDialog(page, size, 'device-form', 'device-edit')
      await page.click('[data-test=device-discover]')
      await checkDialog(page, size, 'discovery', 'discovery')
    } finally {
      await close()
    }
  })

  test("a device's points with the point panel (a command in force, a refused write) and the batch editor", async () => {
    const { page, close } = await open(size)
    try {
      await visit(page, size, 'device points', `/devices/${controller.id}`, '[data-test=point-row] [data-test=point-value]')
      await checkPage(page, size, "a device's points")
      // The value of a point is on screen (on a phone: before its label, in the row's card).
      const first = page.locator('[data-test=point-row]').first()
      await first.scrollIntoViewIfNeeded()
      const v = (await first.locator('[data-test=point-value]').boundingBox())!
      expect(v.x).toBeGreaterThanOrEqual(0)
      expect(v.x + v.width).toBeLessThanOrEqual(size.width)
      expect(v.y).toBeGreaterThanOrEqual(0)
      expect(v.y + v.height).toBeLessThanOrEqual(size.height)
      await screenshot(page, `layout-${size.name}-points`)

      await page.click('[data-test=type-variable]')
      await page.locator('tr[data-test=point-row][data-name=VAR10] [data-test=point-write]').click()
      await page.waitForSelector('[data-test=point-panel] [data-test=relinquish]')
      expect(await unclickable(page, '[data-test=point-panel]'), `the point panel at ${size.width}x${size.height}`).toEqual([])
      // After a refused write (a long message from the server), the same.
      await page.fill('[data-test=write-value]', '1e12')
      await page.click('[data-test=write-submit]')
      await page.waitForSelector('[data-test=write-error]')
      await checkDialog(page, size, 'point-panel', 'point-panel-error')

      for (const n of ['VAR1', 'VAR2']) await page.locator(`tr[data-test=point-row][data-name=${n}] [data-test=point-select]`).check()
      await page.click('[data-test=batch-open]')
      await checkDialog(page, size, 'batch-editor', 'batch-editor')
    } finally {
      await close()
    }
  })

  test("a thermostat's points in groups, its configuration opened, and the confirmation of a configuration write", async () => {
    const { page, close } = await open(size)
    try {
      await visit(page, size, 'thermostat points', `/devices/${thermostat.id}`, '[data-test=point-row] [data-test=point-value]')
      await page.click('[data-test=point-group-toggle-configuration]')
      await page.waitForSelector('tr[data-test=point-row][data-name=MODBUS_FILTER]')
      await checkPage(page, size, "a thermostat's points with its configuration open")
      await screenshot(page, `layout-${size.name}-point-groups`)
      await page.locator('tr[data-test=point-row][data-name=MODBUS_FILTER] [data-test=point-write]').click()
      await page.waitForSelector('[data-test=point-panel] [data-test=write-range]')
      await page.fill('[data-test=write-value]', '9')
      await page.click('[data-test=write-submit]')
      await checkDialog(page, size, 'config-confirm', 'config-confirm')
      await checkDialog(page, size, 'point-panel', 'config-point-panel')
    } finally {
      await close()
    }
  })

  test('the trends, the schedules, the holiday calendars, the programs, the alarms and the imports', async () => {
    const { page, close } = await open(size)
    try {
      await visit(page, size, 'trends', `/trends?points=${pointIds.IN1},${pointIds.IN7}&range=15m`, '[data-test=trend-chart]:not([data-drawn="0"])')
      await checkPage(page, size, 'the trends')
      await screenshot(page, `layout-${size.name}-trends`)

      await visit(page, size, 'schedules', '/schedules', '[data-test=schedule-editor]')
      await checkPage(page, size, 'the schedules')
      await screenshot(page, `layout-${size.name}-schedules`)

      await visit(page, size, 'holiday calendars', '/schedules?tab=calendars', '[data-test=calendars] [data-test^=calendar-item-]')
      await page.click('[data-test^=calendar-item-]')
      await page.waitForSelector('[data-test=calendar-form]')
      await checkPage(page, size, 'the holiday calendars')

      await visit(page, size, 'programs', '/programs', '[data-test=program-row] [data-test=program-row-error]')
      await checkPage(page, size, 'the programs')
      await screenshot(page, `layout-${size.name}-programs`)
      await visit(page, size, 'program editor', `/programs/${program.id}`, '[data-test=program-points] [data-test=point-value]')
      await page.waitForSelector('[data-test=program-runtime-error]')
      await checkPage(page, size, 'the program editor')
      await screenshot(page, `layout-${size.name}-program`)

      await visit(page, size, 'alarms', '/alarms', '[data-test=alarm-row]')
      await checkPage(page, size, 'the alarms')
      await screenshot(page, `layout-${size.name}-alarms`)

      for (const kind of ['prog', 'webview', 'csv']) {
        await visit(page, size, `imports (${kind})`, `/imports?kind=${kind}`, `[data-test=${kind}-import]`)
        await checkPage(page, size, `the ${kind} import`)
      }
      await screenshot(page, `layout-${size.name}-imports`)
    } finally {
      await close()
    }
  })

  if (size.name === 'phone') {
    test('the folded menu opens, leads to a page and folds again', async () => {
      const { page, close } = await open(size)
      try {
        await menuFolded(page)
        await page.click('[data-test=menu-toggle]')
        await page.waitForSelector('.topbar nav a[href="/alarms"]', { state: 'visible' })
        expect(await page.getAttribute('[data-test=menu-toggle]', 'aria-expanded')).toBe('true')
        expect(await unclickable(page, '.topbar')).toEqual([])
        await screenshot(page, 'layout-phone-menu')
        await page.click('.topbar nav a[href="/alarms"]')
        await page.waitForURL('**/alarms')
        await menuFolded(page)
      } finally {
        await close()
      }
    })
  }
})
