// A device's points end to end: an operator writes a value (switching the point to manual when
// the server says it is in auto) and sees it in the table; a digital point is written by its state
// names; Relinquish takes a real click in the admin's panel at 1440x900, also after an error; only
// the rows on screen are followed live; a viewer has no write or edit control and the API refuses
// their write; an admin edits a label in place, copies and pastes labels, and the labels stay
// after a reload. A thermostat's points come in groups by class (measurements, setpoints and
// commands, then its configuration folded); a configuration register is written by an admin only,
// after a confirmation naming the register, its current value and the new one; a value outside a
// point's range is refused before it is sent.
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { apiCall, launchBrowser, login, newPage, screenshot, startDemo, token, type Server } from './harness'

interface Point {
  id: number
  name: string
  point_type: string
  value: number | null
  label: string | null
  auto_manual: boolean
  class: string
  range: number | null
  min: number | null
  max: number | null
}

let server: Server
let browser: Browser
let admin: string
let controller: { id: number; name: string }
let thermostat: { id: number; name: string }

beforeAll(async () => {
  server = await startDemo()
  browser = await launchBrowser()
  admin = await token(server)
  const devices = (await apiCall<{ items: { id: number; name: string; profile: string }[] }>(server, admin, 'GET', '/api/t3000/devices?profile=T3-controller')).items
  controller = devices[0]
  thermostat = (await apiCall<{ items: { id: number; name: string }[] }>(server, admin, 'GET', '/api/t3000/devices?profile=TSTAT8')).items[0]
  await apiCall(server, admin, 'POST', '/api/t3000/users', { username: 'op', password: 'operator-password-1', role: 'operator' })
  await apiCall(server, admin, 'POST', '/api/t3000/users', { username: 'view', password: 'viewer-password-1', role: 'viewer' })
})

afterAll(async () => {
  await browser?.close()
  await server?.stop()
})

async function points(): Promise<Point[]> {
  return (await apiCall<{ items: Point[] }>(server, admin, 'GET', `/api/t3000/points?device_id=${controller.id}&limit=1000`)).items
}

async function openDevice(page: Page, device = controller) {
  await page.goto(`${server.url}/devices/${device.id}`)
  await page.waitForSelector(`[data-test=device-title]:has-text("${device.name}")`)
  await page.waitForSelector('[data-test=point-row]')
}

async function pointsOf(device: { id: number }, query = ''): Promise<{ items: Point[]; total: number }> {
  return apiCall<{ items: Point[]; total: number }>(server, admin, 'GET', `/api/t3000/points?device_id=${device.id}&limit=1000${query}`)
}

const row = (page: Page, name: string) => page.locator(`tr[data-test=point-row][data-name="${name}"]`)

/** The buttons in `scope` whose centre is not theirs (another element covers it). */
async function unclickableIn(page: Page, scope: string): Promise<string[]> {
  return page.locator(`${scope} button`).evaluateAll((bs) =>
    bs
      .filter((b) => {
        const r = b.getBoundingClientRect()
        const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2)
        return !hit || (hit !== b && !b.contains(hit))
      })
      .map((b) => b.textContent ?? ''),
  )
}

describe('points', () => {
  test('an operator writes a variable and sees the new value in the table', async () => {
    const { context, page } = await newPage(browser)
    try {
      await login(page, server, 'op', 'operator-password-1')
      await openDevice(page)
      await page.click('[data-test=type-variable]')
      const r = row(page, 'VAR3')
      await r.locator('[data-test=point-write]').click()
      await page.fill('[data-test=write-value]', '37.5')
      await page.selectOption('[data-test=write-priority]', '8')
      await page.click('[data-test=write-submit]')
      // The demo's variables are in auto: the server answers 409 and the panel offers manual.
      await page.waitForSelector('[data-test=write-in-auto], [data-test=write-ok]')
      if (await page.locator('[data-test=write-in-auto]').count()) {
        await screenshot(page, 'points-write-in-auto')
        await page.click('[data-test=write-switch-manual]')
      }
      await page.waitForSelector('[data-test=write-ok]')
      await page.waitForSelector('[data-test=command-row]:has-text("user:op")')
      await screenshot(page, 'points-write-panel')
      await page.click('[data-test=dialog-close]')
      await expect.poll(() => r.locator('[data-test=point-value]').textContent(), { timeout: 20_000 }).toBe('37.5')
      await expect.poll(() => r.locator('[data-test=point-mode]').textContent(), { timeout: 20_000 }).toBe('manual')
      const p = (await points()).find((x) => x.name === 'VAR3')!
      expect(p.value).toBe(37.5)
      // Operators change no labels.
      await r.locator('[data-test=point-label]').dblclick()
      expect(await page.locator('[data-test=label-input]').count()).toBe(0)
      await screenshot(page, 'points-written')
    } finally {
      await context.close()
    }
  })

  test('a digital output is written by its state names (Off / On), not a bare number', async () => {
    const { context, page } = await newPage(browser, { width: 1440, height: 900 })
    try {
      // The server reads the points' range codes (and so their state names) soon after a device answers.
      const out = (await points()).find((p) => p.name === 'OUT6')!
      const desc = () => apiCall<{ digital: boolean | null; range_name: string | null }>(server, admin, 'GET', `/api/t3000/points/${out.id}`)
      await expect.poll(async () => (await desc()).digital, { timeout: 30_000 }).toBe(true)
      expect((await desc()).range_name).toBe('Off/On')
      await login(page, server, 'op', 'operator-password-1')
      await openDevice(page)
      await page.click('[data-test=type-output]')
      await row(page, 'OUT6').locator('[data-test=point-write]').click()
      await page.waitForSelector('[data-test=point-panel]')
      // The states, and no number field.
      expect(await page.locator('[data-test=write-states] button').allTextContents()).toEqual(['Off', 'On'])
      expect(await page.locator('[data-test=write-value]').count()).toBe(0)
      const want = out.value === 1 ? 0 : 1
      const name = want === 1 ? 'On' : 'Off'
      await page.click(`[data-test=write-state-${want}]`)
      await page.waitForSelector('[data-test=write-in-auto], [data-test=write-ok]')
      if (await page.locator('[data-test=write-in-auto]').count()) await page.click('[data-test=write-switch-manual]')
      await page.waitForSelector(`[data-test=write-ok]:has-text("${name}")`)
      await page.waitForSelector(`[data-test=command-row]:has-text("${name}")`)
      await expect.poll(async () => (await points()).find((p) => p.name === 'OUT6')!.value, { timeout: 20_000 }).toBe(want)
      // The state in force is marked.
      await expect.poll(() => page.getAttribute(`[data-test=write-state-${want}]`, 'class'), { timeout: 20_000 }).toContain('now')
      await screenshot(page, 'points-digital-write')
      await page.click('[data-test=dialog-close]')
      await expect.poll(() => row(page, 'OUT6').locator('[data-test=point-value]').textContent(), { timeout: 20_000 }).toBe(name)
    } finally {
      await context.close()
    }
  })

  test("Relinquish takes a click at its centre in the admin's panel at 1440x900, also after a refused write", async () => {
    const { context, page } = await newPage(browser, { width: 1440, height: 900 })
    try {
      await login(page, server)
      await openDevice(page)
      await page.click('[data-test=type-variable]')
      await row(page, 'VAR10').locator('[data-test=point-write]').click()
      await page.waitForSelector('[data-test=point-panel]')
      // The admin's panel has the configuration column beside the commands (its notice: the
      // device is defined in the configuration file).
      await page.waitForSelector('[data-test=trend-locked]')
      await page.fill('[data-test=write-value]', '12.5')
      await page.click('[data-test=write-submit]')
      await page.waitForSelector('[data-test=write-in-auto], [data-test=write-ok]')
      if (await page.locator('[data-test=write-in-auto]').count()) await page.click('[data-test=write-switch-manual]')
      await page.waitForSelector('[data-test=command-row]')
      // A value the point cannot hold: refused with a long message.
      await page.fill('[data-test=write-value]', '1e12')
      await page.click('[data-test=write-submit]')
      await page.waitForSelector('[data-test=write-error]')
      // The button is whole (its text not cut) and the element at its centre is the button.
      const check = await page.locator('[data-test=relinquish]').evaluate((b) => {
        const r = b.getBoundingClientRect()
        const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2)
        return { text: b.textContent?.trim(), whole: b.scrollWidth <= b.clientWidth, hit: !!hit && (hit === b || b.contains(hit)), at: hit ? `${hit.tagName}[${(hit as HTMLElement).dataset.test ?? ''}]` : null }
      })
      expect(check).toMatchObject({ text: 'Relinquish', whole: true, hit: true })
      await screenshot(page, 'points-relinquish-after-error')
      // A real mouse click at its centre (the pointer must reach the button).
      await page.click('[data-test=relinquish]', { timeout: 5_000 })
      await page.waitForSelector('[data-test=commands-empty]')
      await page.waitForSelector('[data-test=write-ok]:has-text("Relinquished priority 8")')
    } finally {
      await context.close()
    }
  })

  test("a thermostat's points come in groups; a configuration register is written by an admin after a confirmation naming it and its current value", async () => {
    const { context, page } = await newPage(browser, { width: 1440, height: 900 })
    try {
      await login(page, server)
      await openDevice(page, thermostat)
      // Measurements first, then setpoints and commands, then the configuration, folded.
      const groups = () => page.evaluate(() => [...document.querySelectorAll<HTMLElement>('tbody[data-test^=point-group-]')].map((g) => g.dataset.test))
      expect(await groups()).toEqual(['point-group-measurement', 'point-group-setpoint', 'point-group-configuration'])
      const toggle = page.locator('[data-test=point-group-toggle-configuration]')
      expect(await toggle.getAttribute('aria-expanded')).toBe('false')
      const all = await pointsOf(thermostat)
      for (const c of ['measurement', 'setpoint', 'configuration']) {
        const n = all.items.filter((p) => p.class === c).length
        expect(n, c).toBeGreaterThan(0)
        expect(await page.locator(`[data-test=point-group-toggle-${c}] small`).textContent(), c).toBe(String(n))
        expect((await pointsOf(thermostat, `&class=${c}`)).total, c).toBe(n)
      }
      // Folded: no configuration row, the first row a measurement.
      expect(await row(page, 'MODBUS_ADDRESS').count()).toBe(0)
      expect(await page.locator('tr[data-test=point-row][data-class=configuration]').count()).toBe(0)
      expect(await page.locator('tr[data-test=point-row]').first().getAttribute('data-class')).toBe('measurement')
      await screenshot(page, 'points-groups')
      await toggle.click()
      await row(page, 'MODBUS_ADDRESS').waitFor()
      expect(await toggle.getAttribute('aria-expanded')).toBe('true')
      for (const name of ['MODBUS_ADDRESS', 'MODBUS_FACTORY_DEFAULTS']) expect(await row(page, name).getAttribute('data-class')).toBe('configuration')

      // An admin writes MODBUS_FILTER: out of its range the form says so and sends nothing; in
      // range a confirmation names the register, its current value and the new value first.
      const filter = all.items.find((p) => p.name === 'MODBUS_FILTER')!
      expect([filter.min, filter.max]).toEqual([0, 65535])
      const current = (await apiCall<Point>(server, admin, 'GET', `/api/t3000/points/${filter.id}`)).value!
      const next = current === 7 ? 8 : 7
      await row(page, 'MODBUS_FILTER').locator('[data-test=point-write]').click()
      await page.waitForSelector('[data-test=point-panel]')
      expect(await page.textContent('[data-test=write-range]')).toBe('0 to 65535')
      await page.fill('[data-test=write-value]', '70000')
      await page.click('[data-test=write-submit]')
      await page.waitForSelector('[data-test=write-error]:has-text("70000 is outside the range of MODBUS_FILTER: 0 to 65535")')
      expect(await page.locator('[data-test=config-confirm]').count()).toBe(0)
      await page.fill('[data-test=write-value]', String(next))
      await page.click('[data-test=write-submit]')
      await page.waitForSelector('[data-test=config-confirm]')
      expect(await page.textContent('[data-test=config-confirm-register]')).toContain('MODBUS_FILTER')
      expect(await page.textContent('[data-test=config-confirm-register]')).toContain(thermostat.name)
      expect(await page.textContent('[data-test=config-confirm-current]')).toBe(String(current))
      expect(await page.textContent('[data-test=config-confirm-new]')).toBe(String(next))
      await screenshot(page, 'points-config-confirm')
      expect(await unclickableIn(page, '[data-test=config-confirm]')).toEqual([])
      // Cancel (and Escape) write nothing and leave the point's panel open.
      await page.click('[data-test=config-confirm-cancel]')
      await page.waitForSelector('[data-test=config-confirm]', { state: 'detached' })
      await page.click('[data-test=write-submit]')
      await page.waitForSelector('[data-test=config-confirm]')
      await page.keyboard.press('Escape')
      await page.waitForSelector('[data-test=config-confirm]', { state: 'detached' })
      expect(await page.isVisible('[data-test=point-panel]')).toBe(true)
      expect(await apiCall<unknown[]>(server, admin, 'GET', `/api/t3000/points/${filter.id}/commands`)).toEqual([])
      // Confirmed: written.
      await page.click('[data-test=write-submit]')
      await page.click('[data-test=config-confirm-write]')
      await page.waitForSelector(`[data-test=write-ok]:has-text("reads back ${next}")`)
      await expect.poll(async () => (await apiCall<Point>(server, admin, 'GET', `/api/t3000/points/${filter.id}`)).value, { timeout: 20_000 }).toBe(next)
    } finally {
      await context.close()
    }
  })

  test('an operator cannot write a configuration register, and a value outside a range is refused before it is sent', async () => {
    const { context, page } = await newPage(browser, { width: 1440, height: 900 })
    try {
      await login(page, server, 'op', 'operator-password-1')
      await openDevice(page, thermostat)
      await page.click('[data-test=point-group-toggle-configuration]')
      await row(page, 'MODBUS_ADDRESS').waitFor()
      expect(await row(page, 'MODBUS_ADDRESS').locator('[data-test=point-write]').count()).toBe(0)
      expect(await row(page, 'MODBUS_DAY_SETPOINT').locator('[data-test=point-write]').count()).toBe(1)
      await row(page, 'MODBUS_ADDRESS').locator('[data-test=point-open]').click()
      await page.waitForSelector('[data-test=point-config-admin-only]')
      expect(await page.locator('[data-test=write-value]').count()).toBe(0)
      await page.click('[data-test=dialog-close]')

      // The controller's OUT1 is a percent output (range 4) once its range code is read: 0 to 100 %.
      const out1 = async () => (await pointsOf(controller)).items.find((p) => p.name === 'OUT1')!
      await expect.poll(async () => (await out1()).range, { timeout: 30_000 }).toBe(4)
      expect([(await out1()).min, (await out1()).max]).toEqual([0, 100])
      await openDevice(page)
      await page.click('[data-test=type-output]')
      await row(page, 'OUT1').locator('[data-test=point-write]').click()
      await page.waitForSelector('[data-test=point-panel]')
      expect(await page.textContent('[data-test=write-range]')).toBe('0 to 100 %')
      expect([await page.getAttribute('[data-test=write-value]', 'min'), await page.getAttribute('[data-test=write-value]', 'max')]).toEqual(['0', '100'])
      await page.fill('[data-test=write-value]', '150')
      await page.click('[data-test=write-submit]')
      await page.waitForSelector('[data-test=write-error]:has-text("150 is outside the range of OUT1: 0 to 100 %")')
      await screenshot(page, 'points-out-of-range')
      expect(await apiCall<unknown[]>(server, admin, 'GET', `/api/t3000/points/${(await out1()).id}/commands`)).toEqual([])
    } finally {
      await context.close()
    }
  })

  test('only the rows on screen are followed live', async () => {
    const { context, page } = await newPage(browser)
    try {
      await login(page, server)
      await openDevice(page)
      const total = await page.locator('[data-test=point-row]').count()
      expect(total).toBe(256)
      const live = page.locator('[data-test=live-count]')
      await expect.poll(async () => Number(await live.getAttribute('data-count'))).toBeGreaterThan(0)
      const n = Number(await live.getAttribute('data-count'))
      expect(n).toBeLessThan(60)
      // Scrolled to the end, the last rows are followed instead of the first.
      await row(page, 'VAR128').scrollIntoViewIfNeeded()
      await expect
        .poll(() => page.evaluate(() => document.querySelector('[data-test=point-table]')!.scrollTop))
        .toBeGreaterThan(1000)
      await expect.poll(async () => Number(await live.getAttribute('data-count'))).toBeGreaterThan(0)
      expect(Number(await live.getAttribute('data-count'))).toBeLessThan(60)
      await screenshot(page, 'points-scrolled')
    } finally {
      await context.close()
    }
  })

  test('a viewer has no write or edit control, and a direct API write answers 403', async () => {
    const { context, page } = await newPage(browser, { width: 820, height: 1180 })
    try {
      await login(page, server, 'view', 'viewer-password-1')
      await openDevice(page)
      await page.click('[data-test=type-output]')
      expect(await page.locator('[data-test=point-write]').count()).toBe(0)
      expect(await page.locator('[data-test=point-select]').count()).toBe(0)
      await row(page, 'OUT1').locator('[data-test=point-label]').dblclick()
      expect(await page.locator('[data-test=label-input]').count()).toBe(0)
      await row(page, 'OUT1').locator('[data-test=point-open]').click()
      await page.waitForSelector('[data-test=point-panel]')
      expect(await page.locator('[data-test=write-value]').count()).toBe(0)
      expect(await page.locator('[data-test=relinquish]').count()).toBe(0)
      expect(await page.locator('[data-test=cfg-label]').count()).toBe(0)
      await screenshot(page, 'points-viewer-tablet')

      const out1 = (await points()).find((p) => p.name === 'OUT1')!
      const viewer = await token(server, 'view', 'viewer-password-1')
      const res = await fetch(`${server.url}/api/t3000/points/${out1.id}/value`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${viewer}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ value: 1, switch_to_manual: true }),
      })
      expect(res.status).toBe(403)
    } finally {
      await context.close()
    }
  })

  test('an admin edits a label in place and it stays after a reload', async () => {
    const { context, page } = await newPage(browser)
    try {
      await login(page, server)
      await openDevice(page)
      const label = row(page, 'IN2').locator('[data-test=point-label]')
      await label.dblclick()
      await page.fill('[data-test=label-input]', 'Return air temperature')
      await page.keyboard.press('Enter')
      await expect.poll(() => label.textContent()).toBe('Return air temperature')
      expect((await points()).find((p) => p.name === 'IN2')!.label).toBe('Return air temperature')
      // Escape leaves the label as it was.
      await label.dblclick()
      await page.fill('[data-test=label-input]', 'not saved')
      await page.keyboard.press('Escape')
      expect(await label.textContent()).toBe('Return air temperature')

      await page.reload()
      await page.waitForSelector('[data-test=point-row]')
      await expect.poll(() => row(page, 'IN2').locator('[data-test=point-label]').textContent()).toBe('Return air temperature')
      await screenshot(page, 'points-label-edited')
    } finally {
      await context.close()
    }
  })

  test('copied cells are TSV and pasted lines fill the labels of the selected rows', async () => {
    const { context, page } = await newPage(browser)
    try {
      await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url })
      await login(page, server)
      await openDevice(page)
      // Copy the names of IN1..IN3 with their values' column range (Shift+click extends).
      await row(page, 'IN1').locator('td.name').click()
      await row(page, 'IN3').locator('[data-test=point-label]').click({ modifiers: ['Shift'] })
      await page.keyboard.press('Control+C')
      const copied = await page.evaluate(() => navigator.clipboard.readText())
      expect(copied.split('\n').map((l) => l.split('\t')[0])).toEqual(['IN1', 'IN2', 'IN3'])
      expect(copied.split('\n').every((l) => l.split('\t').length === 2)).toBe(true)

      // Select IN5, IN7 and IN8; paste two lines starting at IN5: IN5 and IN7 get them.
      for (const n of ['IN5', 'IN7', 'IN8']) await row(page, n).locator('[data-test=point-select]').check()
      await page.evaluate(() => navigator.clipboard.writeText('Zone A\tignored\nZone B\n'))
      await row(page, 'IN5').locator('[data-test=point-label]').click()
      await page.keyboard.press('Control+V')
      await page.waitForSelector('[data-test=table-notice]:has-text("Pasted 2 labels")')
      const labels = async () => Object.fromEntries((await points()).filter((p) => /^IN[5-8]$/.test(p.name)).map((p) => [p.name, p.label]))
      // IN6 and IN8 keep the labels the panel has for them (read from the simulated controller's point records).
      await expect.poll(labels, { timeout: 30_000 }).toEqual({ IN5: 'Zone A', IN6: 'ZONE RH', IN7: 'Zone B', IN8: 'SUP TEMP' })
      expect(await row(page, 'IN7').locator('[data-test=point-label]').textContent()).toBe('Zone B')
      await screenshot(page, 'points-pasted')
    } finally {
      await context.close()
    }
  })

  test('the batch editor renumbers the labels of the selected rows', async () => {
    const { context, page } = await newPage(browser)
    try {
      await login(page, server)
      await openDevice(page)
      await page.click('[data-test=type-output]')
      for (const n of ['OUT10', 'OUT11', 'OUT12']) await row(page, n).locator('[data-test=point-select]').check()
      await page.click('[data-test=batch-open]')
      await page.click('[data-test=batch-mode-renumber]')
      await page.fill('[data-test=batch-pattern]', 'Fan #')
      await page.fill('[data-test=batch-start]', '7')
      await page.fill('[data-test=trend-retention]', '90')
      await page.click('[data-test=batch-apply]')
      await page.waitForSelector('[data-test=batch-progress]:has-text("3 / 3 done")')
      await screenshot(page, 'points-batch')
      const got = (await points()).filter((p) => ['OUT10', 'OUT11', 'OUT12'].includes(p.name))
      expect(got.map((p) => p.label)).toEqual(['Fan 7', 'Fan 8', 'Fan 9'])
      const one = await apiCall<{ trend: { retention_days: number | null } }>(server, admin, 'GET', `/api/t3000/points/${got[0].id}`)
      expect(one.trend.retention_days).toBe(90)
    } finally {
      await context.close()
    }
  })
})
