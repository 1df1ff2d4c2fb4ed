// Alarms against the real demo: a limit rule on a point that is above its limit raises an alarm
// that appears on the open page without a reload; an operator acknowledges it; a viewer sees it
// without an Acknowledge button; an admin adds and deletes a rule with the form. An acknowledged
// alarm keeps its start in the list and counts on the dashboard; the history follows live.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Browser, Page } from 'playwright-core'
import { apiCall, changingPoint, launchBrowser, login, newPage, screenshot, startDemo, token, type Server } from './harness'

let server: Server
let browser: Browser
let admin: string
/** A point whose value keeps changing (so samples reach the rules), and a value it had. */
let point: { id: number; value: number }

const PASSWORD = { operator: 'operator-pass-1', viewer: 'viewer-pass-1' }

interface Rule {
  id: number
  name: string
}
interface AlarmView {
  rule_id: number
  state: string
  started_us?: number | null
  acknowledged_us?: number | null
}

/** A rule whose high limit is half the point's value: in alarm from the next sample on. */
async function createRule(name: string): Promise<Rule> {
  return apiCall<Rule>(server, admin, 'POST', '/api/t3000/alarms/rules', {
    name,
    point_id: point.id,
    rule: { condition: { kind: 'limits', high: Math.floor(point.value / 2) }, delay_secs: 0, message: `${name}: above half its value` },
  })
}

async function openAlarmsPage(page: Page, user: 'admin' | 'operator' | 'viewer') {
  await login(page, server, user, user === 'admin' ? server.password : PASSWORD[user])
  await page.waitForSelector('[data-test=dashboard]') // The login's own navigation is done.
  // Through the menu: a client-side navigation, and a user gesture that lets the page play sound.
  await page.click('.topbar nav a[href="/alarms"]')
  await page.waitForSelector('[data-test=active-alarms]')
}

const row = (id: number, state?: string) => `[data-test=alarm-row][data-rule-id="${id}"]${state ? `[data-state="${state}"]` : ''}`

beforeAll(async () => {
  server = await startDemo()
  browser = await launchBrowser()
  admin = await token(server)
  for (const role of ['operator', 'viewer'] as const) {
    await apiCall(server, admin, 'POST', '/api/t3000/users', { username: role, password: PASSWORD[role], role })
  }
  point = await changingPoint(server, admin, { above: 10 })
})
afterAll(async () => {
  await browser?.close()
  await server?.stop()
})

describe('alarms', () => {
  it('shows a new alarm live, with its cue, and an operator acknowledges it', async () => {
    const { context, page } = await newPage(browser)
    try {
      await openAlarmsPage(page, 'operator')
      await page.waitForSelector('[data-test=no-alarms]')

      const rule = await createRule('Supply high')
      // No reload: the alarm comes over the live connection.
      await page.waitForSelector(row(rule.id, 'active'), { timeout: 60_000 })
      expect(await page.textContent(`${row(rule.id)} [data-test=alarm-name]`)).toBe('Supply high')
      expect(await page.getAttribute(row(rule.id), 'class')).toContain('flash')
      expect((await page.textContent(`${row(rule.id)} [data-test=alarm-state]`))?.trim()).toBe('Active')
      // The beep played (the menu click was the user gesture browsers want first).
      await expect.poll(async () => Number(await page.getAttribute('[data-test=sound-toggle]', 'data-played'))).toBeGreaterThanOrEqual(1)
      await page.waitForSelector('[data-test=history-row][data-kind=raised]')
      await screenshot(page, 'alarms-active')

      await page.click(`${row(rule.id)} [data-test=ack-button]`)
      await page.waitForSelector(row(rule.id, 'acknowledged'))
      expect(await page.textContent(row(rule.id))).toContain('by operator')
      expect(await page.locator(`${row(rule.id)} [data-test=ack-button]`).count()).toBe(0)
      const all = await apiCall<AlarmView[]>(server, admin, 'GET', '/api/t3000/alarms?state=all')
      expect(all.find((a) => a.rule_id === rule.id)?.state).toBe('acknowledged')
      // The history follows live too.
      await page.waitForSelector('[data-test=history-row][data-kind=acknowledged]')
      expect(await page.textContent('[data-test=history-row][data-kind=acknowledged]')).toContain('Acknowledged by operator')
      await screenshot(page, 'alarms-acknowledged')
    } finally {
      await context.close()
    }
  })

  it('shows a viewer the alarms without an Acknowledge button', async () => {
    const rule = await createRule('Viewer check')
    const { context, page } = await newPage(browser)
    try {
      await openAlarmsPage(page, 'viewer')
      await page.waitForSelector(row(rule.id, 'active'), { timeout: 60_000 })
      expect(await page.locator('[data-test=ack-button]').count()).toBe(0)
      expect(await page.locator('[data-test=ack-all]').count()).toBe(0)
      expect(await page.locator('[data-test=rule-new]').count()).toBe(0)
      expect(await page.locator('[data-test=rule-edit]').count()).toBe(0)
      // The server refuses it as well.
      const viewer = await token(server, 'viewer', PASSWORD.viewer)
      await expect(apiCall(server, viewer, 'POST', `/api/t3000/alarms/${rule.id}/ack`, {})).rejects.toThrow(/403/)
      await screenshot(page, 'alarms-viewer')
      await page.setViewportSize({ width: 820, height: 1180 })
      await page.waitForSelector(row(rule.id))
      await screenshot(page, 'alarms-viewer-tablet')
    } finally {
      await context.close()
    }
  })

  it('lets an admin add a rule with the form, see its alarm, and delete it after confirming', async () => {
    const { context, page } = await newPage(browser)
    try {
      await openAlarmsPage(page, 'admin')
      await page.click('[data-test=rule-new]')
      await page.fill('[data-test=rule-point-search]', String(point.id))
      await page.click(`[data-test=rule-point-search-result][data-point-id="${point.id}"]`)
      await page.waitForSelector(`[data-test=rule-point]:has-text("#${point.id}")`)
      await page.fill('[data-test=rule-name]', 'Form rule')
      // A wrong rule: the server's message is shown.
      await page.fill('[data-test=rule-low]', String(point.value * 4))
      await page.fill('[data-test=rule-high]', String(Math.floor(point.value / 2)))
      await page.click('[data-test=rule-save]')
      const err = await page.waitForSelector('[data-test=rule-error]')
      expect(await err.textContent()).toMatch(/high/)
      await page.fill('[data-test=rule-low]', '')
      await page.click('[data-test=rule-save]')
      await page.waitForSelector('[data-test=rule-row]:has-text("Form rule")')
      expect(await page.locator('[data-test=rule-form]').count()).toBe(0)

      const rules = await apiCall<Rule[]>(server, admin, 'GET', '/api/t3000/alarms/rules')
      const created = rules.find((r) => r.name === 'Form rule')!
      expect(created).toBeTruthy()
      await page.waitForSelector(row(created.id, 'active'), { timeout: 60_000 })
      await screenshot(page, 'alarms-rule-form')

      // Deleting asks in the row first; Cancel keeps the rule.
      const ruleRow = `[data-test=rule-row][data-rule-id="${created.id}"]`
      await page.click(`${ruleRow} [data-test=rule-delete]`)
      await page.waitForSelector(`${ruleRow} [data-test=rule-delete-ask]:has-text("Form rule")`)
      await page.click(`${ruleRow} [data-test=rule-delete-cancel]`)
      await page.waitForSelector(`${ruleRow} [data-test=rule-delete]`)
      expect((await apiCall<Rule[]>(server, admin, 'GET', '/api/t3000/alarms/rules')).some((r) => r.id === created.id)).toBe(true)
      await page.click(`${ruleRow} [data-test=rule-delete]`)
      await page.click(`${ruleRow} [data-test=rule-delete-confirm]`)
      await page.waitForSelector(ruleRow, { state: 'detached' })
      const after = await apiCall<Rule[]>(server, admin, 'GET', '/api/t3000/alarms/rules')
      expect(after.some((r) => r.id === created.id)).toBe(false)
    } finally {
      await context.close()
    }
  })
  it('keeps an acknowledged alarm\'s start, counts it on the dashboard, and shows new transitions in the history live', async () => {
    const rule = await createRule('Start kept')
    // Judged at once against the point's latest value: active without waiting for a sample.
    await expect.poll(async () => (await apiCall<AlarmView[]>(server, admin, 'GET', '/api/t3000/alarms')).find((a) => a.rule_id === rule.id)?.state, { timeout: 5_000 }).toBe('active')
    const started = (await apiCall<AlarmView[]>(server, admin, 'GET', '/api/t3000/alarms')).find((a) => a.rule_id === rule.id)!.started_us!
    expect(started).toBeGreaterThan(0)
    const { context, page } = await newPage(browser)
    try {
      await openAlarmsPage(page, 'operator')
      await page.waitForSelector(row(rule.id, 'active'))
      const since = `${row(rule.id)} [data-test=alarm-since]`
      expect(Number(await page.getAttribute(since, 'data-started-us'))).toBe(started)
      await page.click(`${row(rule.id)} [data-test=ack-button]`)
      await page.waitForSelector(row(rule.id, 'acknowledged'))
      // Still the start, with the acknowledgement beside it; the same after a reload from the server.
      expect(Number(await page.getAttribute(since, 'data-started-us'))).toBe(started)
      await page.waitForSelector(`${row(rule.id)} [data-test=alarm-acked-at]`)
      const server1 = (await apiCall<AlarmView[]>(server, admin, 'GET', '/api/t3000/alarms')).find((a) => a.rule_id === rule.id)!
      expect(server1).toMatchObject({ state: 'acknowledged', started_us: started })
      expect(server1.acknowledged_us).toBeGreaterThan(started)
      await screenshot(page, 'alarms-acknowledged-start')

      // A transition made elsewhere appears in the history panel without a reload.
      const other = await createRule('History live')
      await page.waitForSelector(`[data-test=history-row][data-kind=raised]:has-text("History live")`, { timeout: 10_000 })
      await page.waitForSelector(row(other.id, 'active'))

      // The dashboard's tile: acknowledged alarms are still in alarm, split by state.
      await page.click('.topbar nav a[href="/"]')
      await page.waitForSelector('[data-test=tile-alarms]')
      const count = async () => {
        const open = await apiCall<AlarmView[]>(server, admin, 'GET', '/api/t3000/alarms')
        const n = (s: string) => open.filter((a) => a.state === s).length
        return { inAlarm: n('active') + n('acknowledged'), active: n('active'), acknowledged: n('acknowledged') }
      }
      const tile = async () => ({
        inAlarm: Number(await page.textContent('[data-test=alarms-in-alarm]')),
        active: Number(await page.textContent('[data-test=alarms-active]')),
        acknowledged: Number(await page.textContent('[data-test=alarms-acknowledged]')),
      })
      await expect.poll(async () => JSON.stringify(await tile()) === JSON.stringify(await count()), { timeout: 10_000 }).toBe(true)
      const t = await tile()
      expect(t.acknowledged).toBeGreaterThanOrEqual(1)
      expect(t.inAlarm).toBe(t.active + t.acknowledged)
      await screenshot(page, 'dashboard-alarms-acknowledged')
    } finally {
      await context.close()
    }
  })
})
