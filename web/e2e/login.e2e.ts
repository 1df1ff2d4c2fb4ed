// Logging in and out against the real server: the server's error for a wrong password, the top
// bar after a login, and a logout that kills the token.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Browser } from 'playwright-core'
import { launchBrowser, login, newPage, screenshot, startDemo, type Server } from './harness'

let server: Server
let browser: Browser

beforeAll(async () => {
  server = await startDemo()
  browser = await launchBrowser()
})
afterAll(async () => {
  await browser?.close()
  await server?.stop()
})

/** What the server answers to a wrong password (the page must show exactly this). */
async function serverMessageForWrongPassword(): Promise<string> {
  const r = await fetch(`${server.url}/api/t3000/auth/login`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password: 'not-the-password' }),
  })
  expect(r.status).toBe(401)
  const body = (await r.json()) as { error: { message: string } }
  return body.error.message
}

describe('login', () => {
  it("shows the server's error for a wrong password and stays on the login page", async () => {
    const { context, page } = await newPage(browser)
    try {
      await page.goto(`${server.url}/login`)
      await page.fill('input[name=username]', 'admin')
      await page.fill('input[name=password]', 'not-the-password')
      await page.click('button[type=submit]')
      const error = await page.waitForSelector('[data-test=login-error]')
      const expected = await serverMessageForWrongPassword()
      expect(expected.length).toBeGreaterThan(0)
      expect((await error.textContent())?.trim()).toBe(expected)
      expect(new URL(page.url()).pathname).toBe('/login')
      expect(await page.locator('[data-test=user]').count()).toBe(0)
      expect(await page.evaluate(() => localStorage.getItem('t3000.session'))).toBeNull()
      await screenshot(page, 'login-wrong-password')
    } finally {
      await context.close()
    }
  })

  it('logs the admin in: the top bar shows the user and Live', async () => {
    const { context, page } = await newPage(browser)
    try {
      await login(page, server)
      // The live connection can open before the dashboard's code has loaded: wait for the page.
      await page.waitForSelector('[data-test=dashboard]')
      expect(new URL(page.url()).pathname).toBe('/')
      await expect.poll(async () => (await page.textContent('[data-test=user]'))?.replace(/\s+/g, ' ').trim()).toBe('admin (admin)')
      await expect.poll(async () => (await page.textContent('[data-test=connection]'))?.trim()).toBe('Live')
      await screenshot(page, 'login-admin')
    } finally {
      await context.close()
    }
  })

  it('sends a visitor to the login page and back to the page asked for', async () => {
    const { context, page } = await newPage(browser)
    try {
      await page.goto(`${server.url}/alarms`)
      await page.waitForSelector('input[name=password]')
      expect(new URL(page.url()).pathname).toBe('/login')
      await page.fill('input[name=username]', 'admin')
      await page.fill('input[name=password]', server.password)
      await page.click('button[type=submit]')
      await page.waitForSelector('[data-test=alarms-page]')
      expect(new URL(page.url()).pathname).toBe('/alarms')
      await screenshot(page, 'login-next')
    } finally {
      await context.close()
    }
  })

  it('logs out: back to the login page, and the token no longer works', async () => {
    const { context, page } = await newPage(browser)
    try {
      await login(page, server)
      const token = await page.evaluate(() => (JSON.parse(localStorage.getItem('t3000.session') ?? 'null') as { token: string } | null)?.token)
      expect(token).toBeTruthy()
      const me = await fetch(`${server.url}/api/t3000/auth/me`, { headers: { Authorization: `Bearer ${token}` } })
      expect(me.status).toBe(200)

      await page.click('[data-test=logout]')
      await page.waitForSelector('input[name=password]')
      expect(new URL(page.url()).pathname).toBe('/login')
      expect(await page.locator('[data-test=user]').count()).toBe(0)
      expect(await page.evaluate(() => localStorage.getItem('t3000.session'))).toBeNull()

      const after = await fetch(`${server.url}/api/t3000/auth/me`, { headers: { Authorization: `Bearer ${token}` } })
      expect(after.status).toBe(401)
      // Nor does it open the live connection.
      const ws = await page.evaluate(
        (t) =>
          new Promise<string>((done) => {
            const s = new WebSocket(`ws://${location.host}/api/t3000/ws?token=${encodeURIComponent(t)}`)
            s.onopen = () => done('open')
            s.onerror = () => done('refused')
          }),
        token!,
      )
      expect(ws).toBe('refused')

      // The dashboard is out of reach until the next login.
      await page.goto(`${server.url}/`)
      await page.waitForSelector('input[name=password]')
      expect(new URL(page.url()).pathname).toBe('/login')
      await screenshot(page, 'login-after-logout')
    } finally {
      await context.close()
    }
  })
})
