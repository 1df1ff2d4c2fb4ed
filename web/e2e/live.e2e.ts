// The live connection against the real demo:
//  - the network gone (the server frozen with SIGSTOP: its sockets stay open but say nothing, as
//    when a cable is pulled) shows within 10 s: the pill leaves "Live" and every live value and
//    device state on screen greys out; after the server comes back they are live again once the
//    new connection's snapshot has come; the browser's own offline event shows at once.
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { apiCall, launchBrowser, login, newPage, screenshot, startDemo, token, type Server } from './harness'

interface Device {
  id: number
  profile: string
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
