// The Notifications panel of the Alarms page against the real demo with webhook channels whose
// endpoint is dead (set through T3000__ALERTS__WEBHOOK): a channel is listed without its URL's
// path; an admin's test message fails and the failure shows in the row, its counters and the
// latest deliveries; a channel whose rules name no alarm says so; a viewer sees the panel without
// the test button.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Browser } from 'playwright-core'
import { apiCall, launchBrowser, login, newPage, screenshot, startDemo, token, type Server } from './harness'

let server: Server
let browser: Browser
let admin: string

/** A port nothing listens on: privileged, so no test running beside this one can be given it by
 *  listen(0) (a freed ephemeral port was once another demo's listener a moment later, and the test
 *  message then timed out instead of being refused). */
const closedPort = 1

beforeAll(async () => {
  server = await startDemo([], {
    T3000__ALERTS__WEBHOOK:
      `[{ name = "ops-hook", url = "http://127.0.0.1:${closedPort}/hook/key-in-path", secret = "k", retries = 0 },` +
      ` { name = "boiler-hook", url = "http://127.0.0.1:${closedPort}/boiler", rules = ["Boiler hi", "System: devices offline"] }]`,
  })
  browser = await launchBrowser()
  admin = await token(server)
  await apiCall(server, admin, 'POST', '/api/t3000/users', { username: 'viewer', password: 'viewer-pass-1', role: 'viewer' })
})
afterAll(async () => {
  await browser?.close()
  await server?.stop()
})

describe('Notifications panel', () => {
  it('shows the channel and a failed test message with its error', async () => {
    const { context, page } = await newPage(browser)
    await login(page, server)
    await page.click('.topbar nav a[href="/alarms"]')
    const row = page.locator('[data-test=channel-row][data-channel="ops-hook"]')
    await row.waitFor()
    const text = await row.innerText()
    expect(text).toContain('webhook, signed')
    expect(text).not.toContain('key-in-path')
    await row.locator('[data-test=channel-test]').click()
    await row.locator('[data-test=channel-tested]:has-text("Test failed")').waitFor()
    expect(await row.locator('[data-test=channel-tested]').innerText()).toContain('cannot connect')
    await row.locator('[data-test=channel-health]:has-text("Failing")').waitFor()
    expect(await row.locator('[data-test=channel-counts]').innerText()).toBe('0 / 1 / 0 / 0')
    expect(await row.locator('[data-test=channel-error]').innerText()).toContain('cannot connect')
    const recent = page.locator('[data-test=deliveries]')
    await recent.locator('summary').click()
    expect(await recent.locator('[data-test=delivery-row]').first().innerText()).toContain('[T3000] Test message')
    // A channel whose rules name an alarm nobody made says so; a server alarm's name is known.
    const boiler = page.locator('[data-test=channel-row][data-channel="boiler-hook"]')
    const unmatched = await boiler.locator('[data-test=channel-unmatched]').innerText()
    expect(unmatched).toContain('No alarm is called “Boiler hi”')
    expect(unmatched).not.toContain('devices offline')
    expect(await row.locator('[data-test=channel-unmatched]').count()).toBe(0)
    await screenshot(page, 'alarms-notifications')
    await context.close()
  })

  it('shows a viewer the channels without the test button', async () => {
    const { context, page } = await newPage(browser)
    await login(page, server, 'viewer', 'viewer-pass-1')
    await page.click('.topbar nav a[href="/alarms"]')
    await page.locator('[data-test=channel-row][data-channel="ops-hook"]').waitFor()
    expect(await page.locator('[data-test=channel-test]').count()).toBe(0)
    await context.close()
  })
})
