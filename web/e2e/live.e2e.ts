// The live connection and the devices' connectivity in the top bar, against the real demo:
//  - the network gone (the server frozen with SIGSTOP: its sockets stay open but say nothing, as
//    when a cable is pulled) shows within 10 s: the pill leaves "Live" and every live value and
//    device state on screen greys out; after the server comes back they are live again once the
//    new connection's snapshot has come;
//  - the top bar counts devices online, offline and in error, each a link to the device list
//    filtered by that state (/devices?state=offline).
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { apiCall, launchBrowser, login, newPage, screenshot, startDemo, token, type Server } from './harness'

interface Device {
  id: number
  name: string
  profile: string
  ip_address: string | null
  port: number
  unit_id: number
  online: boolean
  status: { state: string; online: boolean; last_error: string | null } | null
}

let server: Server
let browser: Browser
let admin: string

beforeAll(async () => {
  server = await startDemo()
  browser = await launchBrowser()
  admin = await token(server)
})

afterAll(async () => {
  if (server?.proc.exitCode === null) server.proc.kill('SIGCONT')
  await browser?.close()
  await server?.stop()
})

async function devices(): Promise<Device[]> {
  return (await apiCall<{ items: Device[] }>(server, admin, 'GET', '/api/t3000/devices?limit=1000')).items
}

/** A device's state as the top bar counts it (the server's status, as lib/quality.ts reads it). */
function health(d: Device): string {
  const s = d.status
  if (!s) return d.online ? 'online' : 'connecting'
  if (s.state === 'disabled') return 'disabled'
  if (s.online) return s.last_error ? 'error' : 'online'
  return s.state === 'connecting' ? 'connecting' : 'offline'
}

/** What is on screen: the pill's text and, of the values and device states in view, how many are live. */
async function onScreen(page: Page) {
  return page.evaluate(() => {
    const inView = (el: Element) => {
      const r = el.getBoundingClientRect()
      if (!r.width || !r.height || r.bottom <= 0 || r.top >= innerHeight) return false
      // A row of the points table counts while it is inside the table's own scrolled box.
      const box = el.closest('[data-test=point-table]')?.getBoundingClientRect()
      return !box || (r.bottom > box.top && r.top < box.bottom)
    }
    const marked = [...document.querySelectorAll('[data-live]')].filter(inView)
    return {
      pill: document.querySelector('[data-test=connection]')?.textContent?.trim() ?? '',
      /** Values and device states on screen. */
      values: [...document.querySelectorAll('[data-test=point-value]')].filter(inView).length,
      states: [...document.querySelectorAll('[data-test=device-state]')].filter(inView).length,
      /** Of what on screen says whether it is live, how many are. */
      total: marked.length,
      live: marked.filter((e) => e.getAttribute('data-live') === 'true').length,
      marked: {
        values: marked.filter((e) => e.querySelector('[data-test=point-value]')).length,
        states: marked.filter((e) => e.matches('[data-test=device-state]')).length,
      },
    }
  })
}

/** Polls `check` until it holds or `ms` pass; returns how long it took, or throws with the last state. */
async function within<T>(ms: number, read: () => Promise<T>, check: (v: T) => boolean, what: string): Promise<number> {
  const start = Date.now()
  let last: T | undefined
  do {
    last = await read()
    if (check(last)) return Date.now() - start
    await new Promise((r) => setTimeout(r, 100)) // The poll interval, not a wait for a result.
  } while (Date.now() - start < ms)
  throw new Error(`${what} not within ${ms / 1000} s; last: ${JSON.stringify(last)}`)
}

describe('live connection', () => {
  test('a dead connection shows within 10 s: the pill and every live value and device state change, and come back after the reconnect', async () => {
    const controller = (await devices()).find((d) => d.profile === 'T3-controller')!
    const { context, page } = await newPage(browser, { width: 1440, height: 900 })
    try {
      await login(page, server)
      await page.goto(`${server.url}/devices/${controller.id}`)
      await page.waitForSelector('[data-test=point-row]')
      // Live first: the values on screen and the device's state.
      await within(30_000, () => onScreen(page), (s) => s.pill === 'Live' && s.values >= 10 && s.states >= 1 && s.live === s.total, 'everything live')

      // The network goes: the server freezes; its sockets stay open and silent.
      server.proc.kill('SIGSTOP')
      let cut: number
      try {
        cut = await within(10_000, () => onScreen(page), (s) => s.pill !== 'Live', 'the pill leaving "Live"')
        expect((await onScreen(page)).pill).toMatch(/Offline|Reconnecting/)
        // Every value and device state on screen says it is not live (and is greyed out).
        cut += await within(
          Math.max(0, 10_000 - cut),
          () => onScreen(page),
          (s) => s.marked.values === s.values && s.marked.states === s.states && s.total > 0 && s.live === 0,
          'every value and device state greyed out',
        )
        await screenshot(page, 'live-connection-lost')
      } finally {
        server.proc.kill('SIGCONT')
      }
      // Back: live again once the new connection's snapshot came.
      const back = await within(45_000, () => onScreen(page), (s) => s.pill === 'Live' && s.values >= 10 && s.live === s.total, 'everything live again')
      console.log(`connection loss shown after ${(cut / 1000).toFixed(1)} s; live again ${(back / 1000).toFixed(1)} s after the server resumed`)
      await screenshot(page, 'live-connection-back')
    } finally {
      await context.close()
    }
  })

  test('the browser going offline shows at once, and going online reconnects', async () => {
    const { context, page } = await newPage(browser, { width: 1440, height: 900 })
    try {
      await login(page, server)
      await within(30_000, () => onScreen(page), (s) => s.pill === 'Live' && s.live === s.total, 'live')
      await context.setOffline(true)
      await within(10_000, () => onScreen(page), (s) => s.pill !== 'Live', 'offline shown')
      expect((await onScreen(page)).live).toBe(0)
      await context.setOffline(false)
      await within(45_000, () => onScreen(page), (s) => s.pill === 'Live' && s.live === s.total, 'live again')
    } finally {
      await context.close()
    }
  })
})

describe('device connectivity in the top bar', () => {
  test('counts devices online, offline and in error, each a link to the device list filtered by that state', async () => {
    const co2 = (await devices()).find((d) => d.profile === 'CO2')!
    // Offline: nothing listens on port 9. In error: a T3 controller's profile polled at a CO2
    // sensor, which refuses the registers it does not have (it answers, with exceptions).
    await apiCall(server, admin, 'POST', '/api/t3000/devices', { name: 'gone-meter', protocol: 'modbus-tcp', ip_address: '127.0.0.1', port: 9, unit_id: 1, profile: 'CO2', device_type: 'sensor' })
    await apiCall(server, admin, 'POST', '/api/t3000/devices', {
      name: 'wrong-profile', protocol: 'modbus-tcp', ip_address: co2.ip_address, port: co2.port, unit_id: co2.unit_id, profile: 'T3-controller', device_type: 'controller',
    })
    await within(60_000, devices, (ds) => ds.some((d) => d.name === 'gone-meter' && health(d) === 'offline') && ds.some((d) => d.name === 'wrong-profile' && health(d) === 'error'), 'the server to see both')

    for (const viewport of [{ width: 1440, height: 900 }, { width: 390, height: 844 }]) {
      const { context, page } = await newPage(browser, viewport)
      try {
        await login(page, server)
        const counts = () =>
          page.evaluate(() =>
            Object.fromEntries(['online', 'offline', 'error'].map((s) => [s, Number(document.querySelector(`[data-test=devices-${s}-link]`)?.getAttribute('data-count') ?? -1)])),
          )
        const expected = async () => {
          const ds = await devices()
          return { online: ds.filter((d) => health(d) === 'online').length, offline: ds.filter((d) => health(d) === 'offline').length, error: ds.filter((d) => health(d) === 'error').length }
        }
        await within(30_000, async () => ({ shown: await counts(), want: await expected() }), (c) => JSON.stringify(c.shown) === JSON.stringify(c.want) && c.want.offline >= 1 && c.want.error >= 1, 'the counts')
        // The links sit in the top bar, on screen, at both sizes.
        for (const s of ['online', 'offline', 'error']) {
          const b = (await page.locator(`[data-test=devices-${s}-link]`).boundingBox())!
          expect(b.x).toBeGreaterThanOrEqual(0)
          expect(b.x + b.width).toBeLessThanOrEqual(viewport.width)
          expect(b.y + b.height).toBeLessThanOrEqual(60)
        }
        await screenshot(page, `live-device-counts-${viewport.width}`)

        for (const state of ['offline', 'error', 'online']) {
          await page.click(`[data-test=devices-${state}-link]`)
          await page.waitForURL((u) => u.pathname === '/devices' && u.searchParams.get('state') === state)
          expect(await page.inputValue('[data-test=device-filter-state]')).toBe(state)
          // What the API says is asked again at each poll: a demo device may have a passing error.
          let want: string[] = []
          await expect
            .poll(
              async () => {
                want = (await devices()).filter((d) => health(d) === state).map((d) => d.name).sort()
                const shown = (await page.locator('tr.device').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-name') ?? ''))).sort()
                return shown.join(',') === want.join(',') ? 'the same' : `shown ${shown.join(',')}; the API: ${want.join(',')}`
              },
              { timeout: 15_000 },
            )
            .toBe('the same')
          if (state === 'offline') expect(want).toContain('gone-meter')
          if (state === 'error') expect(want).toEqual(['wrong-profile'])
        }
        // The address alone filters too (a bookmark).
        await page.goto(`${server.url}/devices?state=offline`)
        await expect.poll(async () => page.locator('tr.device').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-name')))).toContain('gone-meter')
      } finally {
        await context.close()
      }
    }
  })
})
