// Programs against the real demo server: an operator writes a Control BASIC program for a demo T3
// controller, sees a syntax error at its line while typing and fixes it there, sees a save the
// server refuses marked at its line in plain words, saves, runs one scan and sees the variable the
// program writes change live beside the editor; a runtime error stops the program and is marked
// at its line; the list follows state changes made elsewhere without a reload; a viewer reads
// without write buttons; the highlighted text lies exactly under the typed text.
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { apiCall, launchBrowser, login, newPage, screenshot, startDemo, token, type Server } from './harness'

interface ProgramView {
  id: number
  name: string
  device_id: number
  source: string
  enabled: boolean
  status: string
  error: { line_number: number; line: number; column: number; message: string } | null
  scans: number
  reads: { point_id: number; name: string }[]
  writes: { point_id: number; name: string }[]
}
interface PointRow {
  id: number
  name: string
  value: number | null
}

let server: Server
let browser: Browser
let admin: string
let controller: { id: number; name: string }
const OPERATOR = { user: 'logic', pass: 'logic-operator-pw1' }
const VIEWER = { user: 'reader', pass: 'reader-viewer-pw1' }

/** Words of the API that must not reach an operator's eyes. */
const TECHNICAL = /`|syntax_error|unknown_point|not_found|HTTP \d/

beforeAll(async () => {
  server = await startDemo()
  browser = await launchBrowser()
  admin = await token(server)
  await apiCall(server, admin, 'POST', '/api/t3000/users', { username: OPERATOR.user, password: OPERATOR.pass, role: 'operator' })
  await apiCall(server, admin, 'POST', '/api/t3000/users', { username: VIEWER.user, password: VIEWER.pass, role: 'viewer' })
  controller = (await apiCall<{ items: { id: number; name: string }[] }>(server, admin, 'GET', '/api/t3000/devices?profile=T3-controller')).items.find((d) => d.name === 'floor1-ahu')!
})

afterAll(async () => {
  await browser?.close()
  await server?.stop()
})

const programs = () => apiCall<ProgramView[]>(server, admin, 'GET', '/api/t3000/programs')
async function point(name: string): Promise<PointRow> {
  const page = await apiCall<{ items: PointRow[] }>(server, admin, 'GET', `/api/t3000/points?device_id=${controller.id}&limit=1000`)
  return page.items.find((p) => p.name === name)!
}
/** The text a person sees in `selector`. */
const seen = (page: Page, selector: string) => page.locator(selector).first().evaluate((e) => (e as HTMLElement).innerText)

/** Where each highlighted line ends against where the same text ends in the textarea's font
 * (canvas measure): the coloured text must lie exactly under the typed text. */
async function misaligned(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const ta = document.querySelector<HTMLTextAreaElement>('[data-test=program-source]')!
    const cs = getComputedStyle(ta)
    const ctx = document.createElement('canvas').getContext('2d')!
    ctx.font = `${cs.fontWeight} ${cs.fontSize} ${cs.fontFamily}`
    const bad: string[] = []
    const taLeft = ta.getBoundingClientRect().left + parseFloat(cs.paddingLeft)
    const rows = document.querySelectorAll<HTMLElement>('[data-test=program-highlight] .cl')
    if (rows.length !== ta.value.split('\n').length) bad.push(`${rows.length} highlighted lines for ${ta.value.split('\n').length} typed ones`)
    for (const row of rows) {
      const parts = [...row.childNodes].filter((n) => !(n instanceof HTMLElement && n.classList.contains('msg')))
      const text = parts.map((n) => n.textContent).join('')
      if (!text) continue
      const range = document.createRange()
      range.setStartBefore(parts[0])
      range.setEndAfter(parts[parts.length - 1])
      const right = range.getBoundingClientRect().right - taLeft
      const want = ctx.measureText(text).width
      if (Math.abs(right - want) > 1) bad.push(`line ${row.dataset.line} "${text}": ends at ${right.toFixed(1)} px, the typed text at ${want.toFixed(1)} px`)
    }
    return bad
  })
}

const WITH_ERROR = ['10 REM Zone logic (e2e)', '20 IF INTERVAL( 00:01:00 ) THEN GOTO 30 ELSE GOTO 30', '30 IF IN1 > -100 ELSE VAR11 = 1', '40 VAR10 = VAR10 + 1.5', '45 START OUT9', '50 END', ''].join('\n')

describe('programs', () => {
  test('an operator writes a program: syntax error at its line, fixed there, saved, run once, the written value live', async () => {
    const { context, page } = await newPage(browser)
    try {
      await login(page, server, OPERATOR.user, OPERATOR.pass)
      await page.click('.topbar nav a[href="/programs"]')
      await page.waitForSelector('[data-test=no-programs]')
      await page.click('[data-test=program-new]')
      await page.waitForURL(/\/programs\/new$/)
      await page.fill('[data-test=program-name]', 'Zone logic')
      await page.selectOption('[data-test=program-device]', String(controller.id))
      await page.fill('[data-test=program-source]', WITH_ERROR)

      // The check while typing: the ELSE without THEN on line 3, marked there with its message.
      const checkError = page.locator('[data-test=program-check-error]')
      await checkError.waitFor()
      expect(await checkError.innerText()).toMatch(/^Line 3, column \d+$/)
      await page.waitForSelector('[data-test=program-highlight] .cl-syntax[data-line="3"] .err-syntax')
      expect(await page.locator('[data-test=program-highlight] .cl-syntax').count()).toBe(1)
      expect(await seen(page, '[data-test=program-highlight] .cl-syntax[data-line="3"] .msg')).toMatch(/THEN/)
      expect(await seen(page, '[data-test=program-check]')).not.toMatch(TECHNICAL)
      // The colours of a real line: keywords, function, time literal, line numbers.
      const line2 = page.locator('[data-test=program-highlight] .cl[data-line="2"]')
      expect(await line2.locator('.t-keyword').allInnerTexts()).toEqual(['IF', 'THEN', 'GOTO', 'ELSE', 'GOTO'])
      expect(await line2.locator('.t-function').innerText()).toBe('INTERVAL')
      expect(await line2.locator('.t-time').innerText()).toBe('00:01:00')
      expect(await line2.locator('.t-lineref').allInnerTexts()).toEqual(['30', '30'])
      expect(await misaligned(page)).toEqual([])
      await screenshot(page, 'programs-syntax-error')

      // A click on the error's place puts the caret there; typing fixes the line.
      await checkError.click()
      const caret = await page.locator('[data-test=program-source]').evaluate((t: HTMLTextAreaElement) => t.value.slice(t.selectionStart, t.selectionStart + 4))
      expect(caret).toBe('ELSE')
      await page.keyboard.type('THEN VAR11 = 2 ')
      await page.waitForSelector('[data-test=program-check-ok]')
      expect(await page.locator('[data-test=program-highlight] .cl-syntax').count()).toBe(0)
      expect(await misaligned(page)).toEqual([])

      await page.click('[data-test=program-save]')
      await page.waitForURL(/\/programs\/\d+$/)
      const id = Number(new URL(page.url()).pathname.split('/').pop())
      const stored = (await programs()).find((p) => p.id === id)!
      expect(stored).toMatchObject({ name: 'Zone logic', device_id: controller.id, enabled: false })
      expect(stored.source.replace(/\r\n/g, '\n')).toContain('30 IF IN1 > -100 THEN VAR11 = 2 ELSE VAR11 = 1')

      // The points it reads and writes, with their live values.
      const row = (kind: string, name: string) => page.locator(`[data-test=program-point][data-kind=${kind}][data-name="${name}"]`)
      await row('writes', 'VAR10').waitFor()
      await row('writes', 'VAR11').waitFor()
      await row('writes', 'OUT9').waitFor()
      await row('reads', 'IN1').waitFor()
      const value = (kind: string, name: string) => row(kind, name).locator('[data-test=point-value]').innerText()
      await expect.poll(() => value('reads', 'IN1')).not.toBe('—')
      const before = (await point('VAR10')).value ?? 0

      // Run once: one scan; the variable it adds 1.5 to shows its new value beside the editor.
      await page.click('[data-test=program-run]')
      await page.waitForSelector('[data-test=program-run-result]')
      expect(await seen(page, '[data-test=program-run-result]')).toMatch(/One scan done/)
      const after = Math.round((before + 1.5) * 1000) / 1000
      await expect.poll(() => value('writes', 'VAR10'), { timeout: 20_000 }).toBe(String(after))
      await expect.poll(() => value('writes', 'VAR11'), { timeout: 20_000 }).toBe('2')
      // The output it starts, at the controller and beside the editor.
      await expect.poll(() => value('writes', 'OUT9'), { timeout: 20_000 }).toMatch(/^(1|On)$/)
      expect((await point('VAR10')).value).toBe(after)
      await screenshot(page, 'programs-run-once')
    } finally {
      await context.close()
    }
  })

  test('a save the server refuses is marked at its line in plain words; a runtime error stops the program at its line', async () => {
    const { context, page } = await newPage(browser)
    try {
      const p = (await programs()).find((x) => x.name === 'Zone logic')!
      await login(page, server, OPERATOR.user, OPERATOR.pass)
      await page.goto(`${server.url}/programs/${p.id}`)
      await page.waitForSelector('[data-test=program-points]')
      const src = page.locator('[data-test=program-source]')
      const text = (await src.inputValue()).replace('40 VAR10 = VAR10 + 1.5', '40 VAR10 = VAR999 + 1.5')
      await src.fill(text)
      // Saved at once, before the check answers: the server's 422 marks the line.
      await page.click('[data-test=program-save]')
      await page.waitForSelector('[data-test=program-error]')
      await page.waitForSelector('[data-test=program-highlight] .cl-syntax[data-line="4"]')
      expect(await seen(page, '[data-test=program-check-error]')).toMatch(/^Line 4/)
      const said = await seen(page, '[data-test=program-error]')
      expect(said).toMatch(/not saved/)
      expect(said).not.toMatch(TECHNICAL)
      expect((await programs()).find((x) => x.id === p.id)!.source).toContain('VAR10 = VAR10 + 1.5')

      // Division by zero (VAR12 holds 0): saved fine, stopped by the run at line 40.
      await src.fill(text.replace('40 VAR10 = VAR999 + 1.5', '40 VAR10 = VAR10 / VAR12'))
      await page.waitForSelector('[data-test=program-check-ok]')
      await page.click('[data-test=program-save]')
      await page.waitForSelector('[data-test=program-notice]:has-text("Saved")')
      await page.click('[data-test=program-run]')
      await page.waitForSelector('[data-test=program-run-result]')
      expect(await seen(page, '[data-test=program-run-result]')).toMatch(/stopped: Line 40: .*zero/i)
      await page.waitForSelector('[data-test=program-runtime-error]')
      expect(await seen(page, '[data-test=program-status]')).toBe('error')
      await page.waitForSelector('[data-test=program-highlight] .cl-runtime[data-line="4"]')
      expect(await seen(page, '[data-test=program-highlight] .cl-runtime[data-line="4"] .msg')).toMatch(/zero/i)
      expect(await seen(page, '[data-test=program-runtime-error]')).not.toMatch(TECHNICAL)
      await screenshot(page, 'programs-runtime-error')
    } finally {
      await context.close()
    }
  })

  test('the list follows changes made elsewhere; a viewer sees no write buttons; delete', async () => {
    const p = (await programs()).find((x) => x.name === 'Zone logic')!
    const { context, page } = await newPage(browser)
    const viewer = await newPage(browser)
    try {
      await login(page, server, OPERATOR.user, OPERATOR.pass)
      await page.goto(`${server.url}/programs`)
      const row = page.locator(`[data-test=program-row][data-id="${p.id}"]`)
      await row.waitFor()
      expect(await row.locator('[data-test=program-row-status]').innerText()).toBe('error')
      expect(await row.locator('[data-test=program-row-error]').innerText()).toMatch(/^Line 40: .*zero/i)

      // Fixed and enabled elsewhere (the API): the row turns running without a reload.
      const fixed = p.source.replace('40 VAR10 = VAR10 / VAR12', '40 VAR10 = VAR10 + 0')
      await apiCall(server, admin, 'PUT', `/api/t3000/programs/${p.id}`, { source: fixed })
      await apiCall(server, admin, 'POST', `/api/t3000/programs/${p.id}/enable`)
      await expect.poll(() => row.locator('[data-test=program-row-status]').innerText(), { timeout: 15_000 }).toBe('running')
      expect(await row.locator('[data-test=program-row-enabled]').innerText()).toBe('yes')
      await expect.poll(() => row.locator('[data-test=program-row-scan-time]').innerText(), { timeout: 15_000 }).toMatch(/µs|ms/)
      await screenshot(page, 'programs-list')

      // A viewer reads the list and the program, with no button that changes them.
      await login(viewer.page, server, VIEWER.user, VIEWER.pass)
      await viewer.page.goto(`${server.url}/programs`)
      await viewer.page.locator(`[data-test=program-row][data-id="${p.id}"]`).waitFor()
      expect(await viewer.page.locator('[data-test=program-new], [data-test=program-row-enable], [data-test=program-row-disable], [data-test=program-row-delete]').count()).toBe(0)
      await viewer.page.click('[data-test=program-link]')
      await viewer.page.waitForSelector('[data-test=program-points]')
      expect(await viewer.page.locator('[data-test=program-source]').getAttribute('readonly')).not.toBeNull()
      expect(await viewer.page.locator('[data-test=program-save], [data-test=program-run], [data-test=program-disable], [data-test=program-delete]').count()).toBe(0)

      // Disabled from the list; then deleted.
      await row.locator('[data-test=program-row-disable]').click()
      await expect.poll(() => row.locator('[data-test=program-row-status]').innerText()).toBe('stopped')
      await row.locator('[data-test=program-row-delete]').click()
      await row.locator('[data-test=program-row-delete-confirm]').click()
      await row.waitFor({ state: 'detached' })
      expect((await programs()).some((x) => x.id === p.id)).toBe(false)
      // Its commands went with it.
      const out9 = await point('OUT9')
      const commands = await apiCall<{ source: string; priority: number }[]>(server, admin, 'GET', `/api/t3000/points/${out9.id}/commands`)
      expect(commands.filter((c) => c.source.startsWith('program'))).toEqual([])
      // The viewer's list follows the deletion.
      await viewer.page.goto(`${server.url}/programs`)
      await viewer.page.waitForSelector('[data-test=no-programs]')
    } finally {
      await context.close()
      await viewer.context.close()
    }
  })
})
