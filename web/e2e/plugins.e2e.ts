// Protocol plugins end to end: the real binary in demo mode with a plugin folder (given through
// T3000__PLUGINS__DIRS) holding the C example plugin (plugins/example-c, compiled here with the
// system C compiler) and a library that is no plugin. At a laptop's 1440x900 and a phone's 390x844:
//  - the plugins panel of the devices page lists example-c as loaded and the other file as refused,
//    with the reason;
//  - the device form offers the example's protocol by its title, shows its keys (seed a number,
//    fail_reads a checkbox) and no profile; the server's 422 naming `seed` shows beside the field;
//    the device added comes online, its address is its options, and its points (Outside Temp in
//    °C, with their plugin objects) show;
//  - the discovery wizard finds "Example AHU" and adds it;
//  - every visible button of the page and the dialogs takes a click at its centre, and nothing
//    scrolls sideways.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { apiCall, launchBrowser, login, newPage, screenshot, startDemo, token, unclickable, type Server } from './harness'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..')

interface Device {
  id: number
  name: string
  protocol: string
  online: boolean
  options: Record<string, unknown>
}

let server: Server
let browser: Browser
let admin: string
let pluginDir: string

/** A plugin folder: the C example, and a shared library without the plugin declaration. */
function buildPlugins(): string {
  const dir = mkdtempSync(join(tmpdir(), 't3000-e2e-plugins-'))
  const cc = process.env.CC ?? 'cc'
  execFileSync(cc, ['-shared', '-fPIC', '-O2', '-I', join(root, 'plugins/abi'), '-o', join(dir, 'libt3_example.so'), join(root, 'plugins/example-c/example.c')])
  writeFileSync(join(dir, 'plain.c'), 'int t3000_nothing_here(void) { return 0; }\n')
  execFileSync(cc, ['-shared', '-fPIC', '-o', join(dir, 'libplain.so'), join(dir, 'plain.c')])
  return dir
}

beforeAll(async () => {
  pluginDir = buildPlugins()
  server = await startDemo([], { T3000__PLUGINS__DIRS: JSON.stringify([pluginDir]) })
  browser = await launchBrowser()
  admin = await token(server)
})

afterAll(async () => {
  await browser?.close()
  await server?.stop()
  if (pluginDir) rmSync(pluginDir, { recursive: true, force: true })
})

const SIZES = [
  { name: 'laptop', width: 1440, height: 900 },
  { name: 'phone', width: 390, height: 844 },
] as const

/** Whether the page scrolls sideways. */
async function sideways(page: Page): Promise<boolean> {
  return page.evaluate(() => document.scrollingElement!.scrollWidth > window.innerWidth + 1)
}

describe.each(SIZES)('plugins at $name size', (size) => {
  test('the plugins panel lists example-c loaded and the plain library refused with its reason', async () => {
    const { context, page } = await newPage(browser, { width: size.width, height: size.height })
    try {
      await login(page, server)
      await page.goto(`${server.url}/devices`)
      const panel = page.locator('[data-test=plugins-panel]')
      await expect.poll(() => panel.textContent(), { timeout: 15_000 }).toMatch(/1 loaded, 1 refused/)
      // A refusal opens the table by itself.
      const loaded = panel.locator('[data-test=plugin-row][data-name=example-c]')
      await loaded.waitFor()
      expect(await loaded.getAttribute('data-state')).toBe('loaded')
      expect(await loaded.textContent()).toContain('Example (C)')
      const reason = panel.locator('[data-test=plugin-row][data-state=refused] [data-test=plugin-reason]')
      expect(await reason.textContent()).toMatch(/libplain\.so.*not a t3000 plugin/)
      await panel.scrollIntoViewIfNeeded()
      expect(await reason.isVisible()).toBe(true)
      expect(await unclickable(page)).toEqual([])
      expect(await sideways(page)).toBe(false)
      await screenshot(page, `plugins-panel-${size.name}`)
    } finally {
      await context.close()
    }
  })

  test('the device form adds an example-c device with its seed; the server names a bad seed; it comes online with its points', async () => {
    const name = `roof-ahu-${size.name}`
    const { context, page } = await newPage(browser, { width: size.width, height: size.height })
    try {
      await login(page, server)
      await page.goto(`${server.url}/devices`)
      await page.click('[data-test=device-add]')
      const form = page.locator('[data-test=device-form]')
      await form.waitFor()
      const protocol = form.locator('[data-test=device-protocol]')
      // The form offers the plugin's protocol by its title (once GET /plugins has answered).
      await expect.poll(() => protocol.locator('option').allTextContents()).toContain('Example (C) (plugin)')
      await protocol.selectOption('example-c')
      expect(await form.locator('[data-test=device-profile]').count()).toBe(0)
      expect(await form.locator('[data-test=device-unit]').count()).toBe(0)
      const seed = form.locator('[data-test=device-key-seed] input')
      expect(await seed.getAttribute('type')).toBe('number')
      expect(await form.locator('[data-test=device-key-seed]').textContent()).toContain('Shifts the simulated outside temperature curve')
      expect(await form.locator('[data-test=device-key-fail_reads] input').getAttribute('type')).toBe('checkbox')
      expect(await form.locator('[data-test=device-plugin-about]').textContent()).toContain('simulated air handler')
      await form.locator('[data-test=device-name]').fill(name)
      await form.locator('input[name=poll_interval_ms]').fill('500')
      // An integer the plugin cannot hold: the server's 422 names `seed`, shown beside the field.
      await seed.fill('1e30')
      await page.click('[data-test=device-save]')
      const fieldError = form.locator('[data-test=device-key-seed] [data-test=device-field-error]')
      await expect.poll(() => fieldError.textContent()).toMatch(/must be an integer/)
      expect(await form.locator('[data-test=device-form-error]').textContent()).toMatch(/seed/i)
      expect(await unclickable(page, '[data-test=device-form]')).toEqual([])
      await screenshot(page, `plugins-form-error-${size.name}`)
      await seed.fill('7')
      await page.click('[data-test=device-save]')
      await form.waitFor({ state: 'detached' })

      const added = (await apiCall<{ items: Device[] }>(server, admin, 'GET', `/api/t3000/devices?q=${name}`)).items[0]
      expect(added.protocol).toBe('example-c')
      expect(added.options).toEqual({ seed: 7 })
      const row = page.locator(`[data-test=device-row-${added.id}]`)
      await expect.poll(() => row.locator('[data-test=device-state]').textContent(), { timeout: 30_000 }).toBe('online')
      expect(await row.textContent()).toContain('example-c seed=7')
      expect(await row.textContent()).not.toContain('null')
      expect(await sideways(page)).toBe(false)

      // Its points: the plugin's names, units and objects.
      await page.goto(`${server.url}/devices/${added.id}`)
      const outside = page.locator('[data-test=point-row][data-name="Outside Temp"]')
      await outside.waitFor({ timeout: 30_000 })
      await expect.poll(() => outside.textContent(), { timeout: 30_000 }).toContain('°C')
      expect((await page.locator('[data-test=point-object]').count()) > 0).toBe(true)
      expect(await page.locator('[data-test=device-title]').textContent()).toBe(name)
      expect(await sideways(page)).toBe(false)
      await screenshot(page, `plugins-device-points-${size.name}`)
      await apiCall(server, admin, 'DELETE', `/api/t3000/devices/${added.id}`)
    } finally {
      await context.close()
    }
  })

  test('the discovery wizard finds Example AHU with the example plugin and adds it', async () => {
    const name = `Example AHU ${size.name}`
    const { context, page } = await newPage(browser, { width: size.width, height: size.height })
    try {
      await login(page, server)
      await page.goto(`${server.url}/devices`)
      await page.click('[data-test=device-discover]')
      const dialog = page.locator('[data-test=discovery]')
      const protocol = dialog.locator('[data-test=scan-protocol]')
      await expect.poll(() => protocol.locator('option').allTextContents()).toContain('Example (C) (plugin)')
      await protocol.selectOption('example-c')
      await dialog.locator('[data-test=scan-options]').waitFor()
      expect(await dialog.locator('[data-test=scan-hosts]').count()).toBe(0)
      await page.click('[data-test=scan-start]')
      await page.waitForSelector('[data-test=scan-results]', { timeout: 30_000 })
      const rows = dialog.locator('[data-test=scan-row]')
      expect(await rows.count()).toBe(1)
      const text = await rows.first().textContent()
      for (const part of ['Example AHU', 'simulated', 'example-c simulator', 't3000']) expect(text).toContain(part)
      expect(await dialog.locator('[data-test=scan-known]').count()).toBe(0)
      await dialog.locator('[data-test=scan-name]').fill(name)
      expect(await unclickable(page, '[data-test=discovery]')).toEqual([])
      await screenshot(page, `plugins-discovery-${size.name}`)
      await page.click('[data-test=scan-add]')
      await page.waitForSelector('[data-test=scan-done]:has-text("1 device added")')

      const added = (await apiCall<{ items: Device[] }>(server, admin, 'GET', '/api/t3000/devices?limit=1000')).items.find((d) => d.name === name)
      expect(added?.protocol).toBe('example-c')
      expect(added?.options).toEqual({ seed: 0 })
      // Scanning again marks it known.
      await page.click('[data-test=scan-close]')
      await page.click('[data-test=device-discover]')
      await protocol.selectOption('example-c')
      await page.click('[data-test=scan-start]')
      await page.waitForSelector(`[data-test=scan-known]:has-text("${name}")`)
      await page.keyboard.press('Escape')
      const row = page.locator(`[data-test=device-row-${added!.id}]`)
      await expect.poll(() => row.locator('[data-test=device-state]').textContent(), { timeout: 30_000 }).toBe('online')
      await apiCall(server, admin, 'DELETE', `/api/t3000/devices/${added!.id}`)
    } finally {
      await context.close()
    }
  })
})
