// Logging in and out against the real server: a wrong password in the operator's words, the top
// bar after a login, a logout that kills the token, a session that ends while the page is open,
// and the session token kept out of every WebSocket address and console line (the live connection
// opens with single-use tickets), also when a connection fails.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Browser, Page, WebSocket as PageSocket } from 'playwright-core'
import { apiCall, launchBrowser, login, newPage, screenshot, startDemo, token as tokenOf, type Server } from './harness'

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
  it("says a wrong password in plain words and stays on the login page", async () => {
    const { context, page } = await newPage(browser)
    try {
      await page.goto(`${server.url}/login`)
      await page.fill('input[name=username]', 'admin')
      await page.fill('input[name=password]', 'not-the-password')
      await page.click('button[type=submit]')
      const error = await page.waitForSelector('[data-test=login-error]')
      // The server's code (invalid_credentials) in the operator's words.
      expect(await serverMessageForWrongPassword()).toBe('wrong user name or password')
      expect((await error.textContent())?.trim()).toBe('The user name or password is wrong.')
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
      // Nor does it get a ticket for the live connection.
      const ticket = await fetch(`${server.url}/api/t3000/ws/ticket`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } })
      expect(ticket.status).toBe(401)

      // The dashboard is out of reach until the next login.
      await page.goto(`${server.url}/`)
      await page.waitForSelector('input[name=password]')
      expect(new URL(page.url()).pathname).toBe('/login')
      await screenshot(page, 'login-after-logout')
    } finally {
      await context.close()
    }
  })

  it('a session that ends while the page is open: the next connection attempt leads to the login page', async () => {
    const { context, page } = await newPage(browser)
    try {
      await login(page, server)
      const token = await sessionToken(page)
      // Ended elsewhere (a logout in another tab, a password change): the page does not know yet.
      const r = await fetch(`${server.url}/api/t3000/auth/logout`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } })
      expect(r.status).toBe(204)
      // The connection drops and tries again: its ticket call gets 401, as an expired session.
      await page.evaluate(() => {
        window.dispatchEvent(new Event('offline'))
        window.dispatchEvent(new Event('online'))
      })
      await page.waitForSelector('input[name=password]')
      expect(new URL(page.url()).pathname).toBe('/login')
      await page.waitForSelector('text=Your session ended; please log in again.')
      expect(await page.evaluate(() => localStorage.getItem('t3000.session'))).toBeNull()
    } finally {
      await context.close()
    }
  })

  it('never shows the session token: not in a WebSocket address nor the console, also when a connection fails; live values keep coming', async () => {
    const admin = await tokenOf(server)
    const { items } = await apiCall<{ items: { id: number; profile: string }[] }>(server, admin, 'GET', '/api/t3000/devices?limit=1000')
    const controller = items.find((d) => d.profile === 'T3-controller')!
    const { context, page } = await newPage(browser, { width: 1440, height: 900 })
    // Everything the page printed (Playwright's console events and the browser's own log, where
    // Chromium reports a WebSocket that failed), and every WebSocket it opened with what came over it.
    const lines: string[] = []
    const sockets: { url: string; frames: string[] }[] = []
    page.on('console', (m) => lines.push(`console.${m.type()}: ${m.text()} (${m.location().url})`))
    page.on('pageerror', (e) => lines.push(`pageerror: ${e.message}`))
    page.on('websocket', (ws: PageSocket) => {
      const s = { url: ws.url(), frames: [] as string[] }
      sockets.push(s)
      ws.on('framereceived', (f) => s.frames.push(String(f.payload)))
    })
    const cdp = await context.newCDPSession(page)
    cdp.on('Log.entryAdded', (e) => lines.push(`log.${e.entry.level} (${e.entry.source}): ${e.entry.text} ${e.entry.url ?? ''}`))
    await cdp.send('Log.enable')
    const updates = (from: number) => sockets.slice(from).reduce((n, s) => n + s.frames.filter((f) => f.includes('"PointUpdate')).length, 0)
    try {
      await login(page, server)
      const token = await sessionToken(page)
      await page.goto(`${server.url}/devices/${controller.id}`)
      await page.waitForSelector('[data-test=point-row]')
      await expect.poll(() => updates(0), { timeout: 30_000 }).toBeGreaterThan(0)
      for (const s of sockets) expect(s.url, 'the address of a live connection').not.toContain(token)

      // A connection that fails: the page's next ticket is used up before the page can use it (a
      // plain GET with it answers 400, not a WebSocket, and spends it), so the server refuses the
      // upgrade with 401 and the browser prints the failed connection's address.
      let spent = ''
      await page.route(
        '**/api/t3000/ws/ticket',
        async (route) => {
          const resp = await route.fetch()
          const body = (await resp.json()) as { ticket: string }
          spent = body.ticket
          const r = await fetch(`${server.url}/api/t3000/ws?ticket=${encodeURIComponent(spent)}`)
          expect(r.status).toBe(400)
          await route.fulfill({ response: resp, json: body })
        },
        { times: 1 },
      )
      const before = sockets.length
      await page.evaluate(() => {
        window.dispatchEvent(new Event('offline'))
        window.dispatchEvent(new Event('online'))
      })
      // The refused attempt, then a good one with a new ticket: live again, and values come.
      await expect.poll(() => sockets.length, { timeout: 30_000 }).toBeGreaterThanOrEqual(before + 2)
      expect(sockets[before].url).toContain(`ticket=${spent}`)
      await page.waitForSelector('[data-test=connection]:has-text("Live")', { timeout: 30_000 })
      await expect.poll(() => updates(before + 1), { timeout: 30_000 }).toBeGreaterThan(0)
      await expect.poll(() => lines.some((l) => l.includes('WebSocket connection to')), { timeout: 10_000 }).toBe(true)

      // Nothing the page opened or printed holds the session token.
      expect(sockets.length).toBeGreaterThanOrEqual(3)
      for (const s of sockets) {
        expect(s.url).not.toContain(token)
        expect(s.url).toMatch(/\/api\/t3000\/ws\?ticket=t3w_[0-9a-f]{64}$/)
      }
      for (const l of lines) expect(l).not.toContain(token)
      expect(lines.join('\n')).not.toMatch(/token=/)
      // A ticket that an address or a console line shows opens nothing any more.
      const shown = new Set([...sockets.map((s) => s.url), ...lines].flatMap((t) => [...t.matchAll(/ticket=(t3w_[0-9a-f]+)/g)].map((m) => m[1])))
      expect(shown.has(spent)).toBe(true)
      for (const t of shown) {
        const r = await fetch(`${server.url}/api/t3000/ws?ticket=${t}`)
        expect(r.status, `ticket ${t.slice(0, 10)}...`).toBe(401)
      }
      // Nor does the server's output hold the token.
      expect(server.output()).not.toContain(token)
      await screenshot(page, 'login-ticket-live')
    } finally {
      await context.close()
    }
  })
})

/** The page's session token (from its storage). */
async function sessionToken(page: Page): Promise<string> {
  const token = await page.evaluate(() => (JSON.parse(localStorage.getItem('t3000.session') ?? 'null') as { token: string } | null)?.token)
  expect(token).toMatch(/^t3_[0-9a-f]{64}$/)
  return token!
}
