// Devices page end to end: the demo's devices listed online with live status, the discovery
// wizard finding an extra simulator (`t3000 simulate`) and adding it, the reason a device of the
// configuration file cannot be deleted, and what a viewer does not see.
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { apiCall, binary, launchBrowser, login, newPage, screenshot, startDemo, token, type Server } from './harness'

interface Device {
  id: number
  name: string
  profile: string
  port: number
  unit_id: number
  online: boolean
  source: string
}

/** Whether `port` on 127.0.0.1 is free now (0: the system picks one); resolves to the port. */
function tryPort(port: number): Promise<number | null> {
  return new Promise((ok) => {
    const s = createServer()
    s.once('error', () => ok(null))
    s.listen(port, '127.0.0.1', () => {
      const got = (s.address() as { port: number }).port
      s.close(() => ok(got))
    })
  })
}

/** A free port for the extra simulator: the first free one of SIM_PORTS (default 19321-19329),
 * else one the system picks. */
async function freePort(): Promise<number> {
  const [lo, hi] = (process.env.SIM_PORTS ?? '19321-19329').split('-').map(Number)
  for (let p = lo; p <= (hi || lo); p++) {
    const got = await tryPort(p)
    if (got) return got
  }
  return (await tryPort(0))!
}

/** Starts `t3000 simulate` with one T3 controller and waits for its listening line. */
async function startSimulator(port: number): Promise<{ proc: ChildProcess; stop: () => Promise<void> }> {
  const proc = spawn(binary(), ['simulate', '--listen', `127.0.0.1:${port}`, '--count', '1'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  await new Promise<void>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`the simulator did not start:\n${out}`)), 30_000)
    const check = (b: Buffer) => {
      out += b.toString()
      if (out.includes(`127.0.0.1:${port}`)) {
        clearTimeout(timer)
        ok()
      }
    }
    proc.stdout!.on('data', check)
    proc.stderr!.on('data', check)
    proc.on('exit', (code) => {
      clearTimeout(timer)
      fail(new Error(`the simulator exited with ${code}:\n${out}`))
    })
  })
  return {
    proc,
    stop: async () => {
      if (proc.exitCode !== null) return
      const gone = new Promise((r) => proc.once('exit', r))
      proc.kill('SIGTERM')
      await gone
    },
  }
}

let server: Server
let browser: Browser
let admin: string
let sim: Awaited<ReturnType<typeof startSimulator>>
let simPort: number

beforeAll(async () => {
  server = await startDemo()
  browser = await launchBrowser()
  admin = await token(server)
  simPort = await freePort()
  sim = await startSimulator(simPort)
})

afterAll(async () => {
  await browser?.close()
  await sim?.stop()
  await server?.stop()
})

describe('devices', () => {
  test('the device table lists the demo controllers as online', async () => {
    const devices = (await apiCall<{ items: Device[] }>(server, admin, 'GET', '/api/t3000/devices?limit=1000')).items
    const controllers = devices.filter((d) => d.profile === 'T3-controller')
    expect(controllers.length).toBeGreaterThan(0)
    const { context, page } = await newPage(browser)
    try {
      await login(page, server)
      await page.click('nav >> text=Devices')
      await page.waitForSelector('[data-test=device-table]')
      expect(await page.locator('tr.device').count()).toBe(devices.length)
      for (const d of controllers) {
        const row = page.locator(`[data-test=device-row-${d.id}]`)
        await expect.poll(() => row.locator('[data-test=device-state]').textContent(), { timeout: 30_000 }).toBe('online')
        expect(await row.getAttribute('data-name')).toBe(d.name)
      }
      // The state filter: offline devices, of which the demo has none once every device has
      // answered its first polls (the sensors may still be connecting when the controllers are up).
      await expect
        .poll(async () => (await apiCall<{ total: number }>(server, admin, 'GET', '/api/t3000/devices?online=false')).total, { timeout: 30_000 })
        .toBe(0)
      await page.selectOption('[data-test=device-filter-state]', 'offline')
      await page.waitForURL(/state=offline/)
      await page.waitForSelector('[data-test=device-empty]')
      await page.selectOption('[data-test=device-filter-state]', '')
      await page.waitForSelector('[data-test=device-table]')
      await page.fill('[data-test=device-search]', controllers[0].name)
      await expect.poll(() => page.locator('tr.device').count()).toBe(1)
      await screenshot(page, 'devices-list-filtered')
      // A row opens the device's points.
      await page.locator(`[data-test=device-row-${controllers[0].id}] td.num`).first().click()
      await page.waitForURL(`**/devices/${controllers[0].id}`)
      await page.waitForSelector(`[data-test=device-title]:has-text("${controllers[0].name}")`)
      await page.goBack()
      await page.fill('[data-test=device-search]', '')
      await expect.poll(() => page.locator('tr.device').count()).toBe(devices.length)
      await screenshot(page, 'devices-list')
    } finally {
      await context.close()
    }
  })

  test('the discovery wizard finds the extra simulator and adds it, online', async () => {
    const { context, page } = await newPage(browser)
    try {
      await login(page, server)
      await page.goto(`${server.url}/devices`)
      await page.waitForSelector('[data-test=device-table]')
      await page.click('[data-test=device-discover]')
      await page.fill('[data-test=scan-hosts]', '127.0.0.1')
      await page.fill('[data-test=scan-port]', String(simPort))
      await page.fill('[data-test=scan-units]', '1-2')
      await page.click('[data-test=scan-start]')
      await page.waitForSelector('[data-test=scan-results]', { timeout: 30_000 })
      // Unit 1 answers, unit 2 does not exist on this simulator.
      expect(await page.locator('[data-test=scan-row]').count()).toBe(1)
      expect(await page.locator('[data-test=scan-known]').count()).toBe(0)
      expect(await page.inputValue('[data-test=scan-profile]')).toBe('T3-controller')
      await page.fill('[data-test=scan-name]', 'e2e-discovered')
      await screenshot(page, 'devices-discovery-results')
      await page.click('[data-test=scan-add]')
      await page.waitForSelector('[data-test=scan-done]:has-text("1 device added")')
      await page.click('[data-test=scan-close]')

      const row = page.locator('tr.device[data-name=e2e-discovered]')
      await row.waitFor()
      await expect.poll(() => row.locator('[data-test=device-state]').textContent(), { timeout: 30_000 }).toBe('online')
      expect(await row.textContent()).toContain(`127.0.0.1:${simPort} #1`)
      const added = (await apiCall<{ items: Device[] }>(server, admin, 'GET', '/api/t3000/devices?q=e2e-discovered')).items
      expect(added).toHaveLength(1)
      expect(added[0]).toMatchObject({ port: simPort, unit_id: 1, profile: 'T3-controller', source: 'api' })
      await screenshot(page, 'devices-discovered-online')

      // Scanning again marks it as known and offers nothing to add.
      await page.click('[data-test=device-discover]')
      await page.fill('[data-test=scan-hosts]', '127.0.0.1')
      await page.fill('[data-test=scan-port]', String(simPort))
      await page.click('[data-test=scan-start]')
      await page.waitForSelector('[data-test=scan-known]:has-text("e2e-discovered")')
      expect(await page.isDisabled('[data-test=scan-select]')).toBe(true)
      await screenshot(page, 'devices-discovery-known')
    } finally {
      await context.close()
    }
  })

  test('a device of the configuration file cannot be deleted, and the page says why', async () => {
    const devices = (await apiCall<{ items: Device[] }>(server, admin, 'GET', '/api/t3000/devices?limit=1000')).items
    const fromFile = devices.find((d) => d.source === 'config')!
    const { context, page } = await newPage(browser)
    try {
      await login(page, server)
      await page.goto(`${server.url}/devices`)
      const row = page.locator(`[data-test=device-row-${fromFile.id}]`)
      await row.locator('[data-test=device-delete]').click()
      await row.locator('[data-test=device-delete-confirm]').click()
      const err = page.locator('[data-test=device-row-error]')
      await err.waitFor()
      expect(await err.textContent()).toContain('defined in the configuration file')
      // Still there.
      expect(await page.locator(`[data-test=device-row-${fromFile.id}]`).count()).toBe(1)
      await screenshot(page, 'devices-delete-refused')
    } finally {
      await context.close()
    }
  })

  test('a viewer sees the devices but no add, discover, edit or delete control', async () => {
    await apiCall(server, admin, 'POST', '/api/t3000/users', { username: 'devviewer', password: 'viewer-password-1', role: 'viewer' })
    const { context, page } = await newPage(browser, { width: 820, height: 1180 })
    try {
      await login(page, server, 'devviewer', 'viewer-password-1')
      await page.goto(`${server.url}/devices`)
      await page.waitForSelector('[data-test=device-table]')
      expect(await page.locator('tr.device').count()).toBeGreaterThan(0)
      for (const sel of ['device-add', 'device-discover', 'device-edit', 'device-delete']) {
        expect(await page.locator(`[data-test=${sel}]`).count(), sel).toBe(0)
      }
      await screenshot(page, 'devices-viewer-tablet')
    } finally {
      await context.close()
    }
  })
})
