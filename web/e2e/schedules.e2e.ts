// Weekly schedules (painting the week grid, exact times, outputs, run now, live updates) and
// holiday calendars, against the real demo server.
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { apiCall, launchBrowser, login, newPage, screenshot, startDemo, token, type Server } from './harness'

interface Pair {
  on: string
  off: string
}
interface Schedule {
  id: number
  name: string
  status: string
  building_id: number | null
  weekly_schedule: { days: Record<string, Pair[]> }
  calendar_ids: number[]
  outputs: { point_id: number; on_value: number; off_value: number }[]
  next_transitions: { at: string; on: boolean }[]
}
interface Calendar {
  id: number
  name: string
  holiday: string
  dates: string[]
  recurring: string[]
}

let server: Server
let browser: Browser
let admin: string
const OPERATOR = { user: 'shift', pass: 'shift-operator-pw1' }
const VIEWER = { user: 'guest', pass: 'guest-viewer-pw1' }

beforeAll(async () => {
  server = await startDemo()
  browser = await launchBrowser()
  admin = await token(server)
  await apiCall(server, admin, 'POST', '/api/t3000/users', { username: OPERATOR.user, password: OPERATOR.pass, role: 'operator' })
  await apiCall(server, admin, 'POST', '/api/t3000/users', { username: VIEWER.user, password: VIEWER.pass, role: 'viewer' })
})

afterAll(async () => {
  await browser?.close()
  await server?.stop()
})

/** Drags on the week grid from `from` on day row `d0` to `to` on row `d1` (minutes after midnight). */
async function paint(page: Page, d0: string, from: number, d1: string, to: number) {
  const r0 = (await page.locator(`[data-test=grid-row-${d0}]`).boundingBox())!
  const r1 = (await page.locator(`[data-test=grid-row-${d1}]`).boundingBox())!
  const x = (r: { x: number; width: number }, m: number) => r.x + (r.width * m) / 1440
  await page.mouse.move(x(r0, from), r0.y + r0.height / 2)
  await page.mouse.down()
  await page.mouse.move(x(r1, (from + to) / 2), (r0.y + r1.y) / 2 + r1.height / 2, { steps: 4 })
  await page.mouse.move(x(r1, to), r1.y + r1.height / 2, { steps: 4 })
  await page.mouse.up()
}

async function schedules(): Promise<Schedule[]> {
  return apiCall<Schedule[]>(server, admin, 'GET', '/api/t3000/schedules')
}
const h = (hh: number, mm = 0) => hh * 60 + mm

describe('schedules', () => {
  test('an operator paints a new schedule on the week grid and the saved pairs are what was painted', async () => {
    const { context, page } = await newPage(browser)
    try {
      await login(page, server, OPERATOR.user, OPERATOR.pass)
      await page.goto(`${server.url}/schedules`)
      await page.waitForSelector('[data-test=no-schedules]')
      await page.click('[data-test=schedule-new]')
      await page.fill('[data-test=schedule-name]', 'Lobby lights')
      // A new schedule starts with weekdays 08:00-18:00; clear them all to paint from nothing.
      await paint(page, 'monday', h(8, 10), 'friday', h(17, 50))
      expect(await page.locator('[data-test^=bar-]').count()).toBe(0)

      // Mon-Fri 07:00-19:00 in one rectangle, then a lunch break Wed-Fri 12:00-13:00 erased
      // (starting on a green cell erases), Saturday morning, Sunday evening to midnight.
      await paint(page, 'monday', h(7, 5), 'friday', h(18, 55))
      await paint(page, 'wednesday', h(12, 10), 'friday', h(12, 40))
      await paint(page, 'saturday', h(9, 10), 'saturday', h(11, 50))
      await paint(page, 'sunday', h(18, 5), 'sunday', h(23, 55))
      // Four more short periods on Saturday: the fifth period of the day is refused with a message
      // and not applied.
      await paint(page, 'saturday', h(1, 5), 'saturday', h(1, 20))
      await paint(page, 'saturday', h(3, 5), 'saturday', h(3, 20))
      await paint(page, 'saturday', h(5, 5), 'saturday', h(5, 20))
      expect(await page.locator('[data-test=grid-error]').count()).toBe(0)
      await paint(page, 'saturday', h(7, 5), 'saturday', h(7, 20))
      await expect.poll(() => page.textContent('[data-test=grid-error]')).toContain('Saturday would have 5 on periods')
      expect(await page.locator('[data-test=bar-saturday]').count()).toBe(4)
      // Undo two of them by erasing.
      await paint(page, 'saturday', h(1, 5), 'saturday', h(1, 20))
      await paint(page, 'saturday', h(3, 5), 'saturday', h(3, 20))
      await screenshot(page, 'schedules-painted')

      await page.click('[data-test=schedule-save]')
      await page.waitForURL(/id=\d+/)
      await page.waitForSelector('[data-test=next-transitions]')

      const saved = (await schedules()).find((s) => s.name === 'Lobby lights')!
      expect(saved.status).toBe('active')
      const day = (on: string, off: string) => ({ on, off })
      expect(saved.weekly_schedule.days).toEqual({
        monday: [day('07:00', '19:00')],
        tuesday: [day('07:00', '19:00')],
        wednesday: [day('07:00', '12:00'), day('13:00', '19:00')],
        thursday: [day('07:00', '12:00'), day('13:00', '19:00')],
        friday: [day('07:00', '12:00'), day('13:00', '19:00')],
        saturday: [day('05:00', '05:30'), day('09:00', '12:00')],
        sunday: [day('18:00', '24:00')],
        holiday1: [],
        holiday2: [],
      })
      // The next changes the server computed are listed.
      expect(await page.locator('[data-test=next-transitions] li').count()).toBe(saved.next_transitions.length)
    } finally {
      await context.close()
    }
  })

  test('exact times are edited as text, an output is bound, and Run now writes it', async () => {
    const { context, page } = await newPage(browser)
    try {
      const s = (await schedules()).find((x) => x.name === 'Lobby lights')!
      await login(page, server, OPERATOR.user, OPERATOR.pass)
      await page.goto(`${server.url}/schedules?id=${s.id}`)
      await page.waitForSelector('[data-test=schedule-editor]')
      await page.click('details.times summary')

      // A time that is not one is refused with the day named; a good one is taken.
      await page.fill('[data-test=pair-monday-0-on]', '7:75')
      await page.press('[data-test=pair-monday-0-on]', 'Enter')
      await expect.poll(() => page.textContent('[data-test=pair-error-monday]')).toContain('is not a time')
      await page.fill('[data-test=pair-monday-0-on]', '06:45')
      await page.press('[data-test=pair-monday-0-on]', 'Enter')
      await page.waitForSelector('[data-test=pair-error-monday]', { state: 'detached' })
      await page.click('[data-test=pair-add-tuesday]')
      await page.fill('[data-test=pair-tuesday-1-on]', '20:00')
      await page.fill('[data-test=pair-tuesday-1-off]', '21:30')
      await page.press('[data-test=pair-tuesday-1-off]', 'Enter')

      // Bind the first output of a demo controller.
      const out = (await apiCall<{ items: { id: number; name: string; device: string }[] }>(server, admin, 'GET', '/api/t3000/points?point_type=output&q=OUT1&limit=1')).items[0]
      await page.click('[data-test=output-add]')
      await page.fill('[data-test=output-search]', 'OUT1')
      await page.click(`[data-test=output-pick-${out.id}]`)
      await page.waitForSelector(`[data-test=output-${out.id}]`)
      // Demo outputs are in auto (their controller drives them): the schedule takes them over.
      await page.check(`[data-test=output-manual-${out.id}]`)

      await page.click('[data-test=schedule-save]')
      await page.waitForSelector('[data-test=schedule-notice]')
      const saved = (await schedules()).find((x) => x.id === s.id)!
      expect(saved.weekly_schedule.days.monday).toEqual([{ on: '06:45', off: '19:00' }])
      expect(saved.weekly_schedule.days.tuesday).toEqual([{ on: '07:00', off: '19:00' }, { on: '20:00', off: '21:30' }])
      expect(saved.outputs).toEqual([{ point_id: out.id, on_value: 1, off_value: 0, switch_to_manual: true }])

      await page.click('[data-test=schedule-run]')
      await expect.poll(() => page.textContent('[data-test=run-result]')).toMatch(/Wrote (ON|OFF) to 1 of 1 output/)
      const commands = await apiCall<unknown>(server, admin, 'GET', `/api/t3000/points/${out.id}/commands`)
      expect(JSON.stringify(commands)).toContain(`schedule:${s.id}`)
      await screenshot(page, 'schedules-run-now')
    } finally {
      await context.close()
    }
  })

  test('an operator keeps a holiday calendar and a schedule uses it', async () => {
    const { context, page } = await newPage(browser)
    try {
      const s = (await schedules()).find((x) => x.name === 'Lobby lights')!
      await login(page, server, OPERATOR.user, OPERATOR.pass)
      await page.goto(`${server.url}/schedules?tab=calendars`)
      await page.click('[data-test=calendar-new]')
      await page.fill('[data-test=calendar-name]', 'Public holidays')
      await page.selectOption('[data-test=calendar-holiday]', 'holiday2')
      await page.fill('[data-test=calendar-rec-day]', '25')
      await page.selectOption('[data-test=calendar-rec-month]', '12')
      await page.click('[data-test=calendar-rec-add]')
      await page.fill('[data-test=calendar-rec-day]', '1')
      await page.selectOption('[data-test=calendar-rec-month]', '1')
      await page.click('[data-test=calendar-rec-add]')
      await page.fill('[data-test=calendar-date]', '2027-04-02')
      await page.click('[data-test=calendar-date-add]')
      await page.click('[data-test=calendar-save]')
      await page.waitForSelector('[data-test=calendar-notice]')
      let cal = (await apiCall<Calendar[]>(server, admin, 'GET', '/api/t3000/calendars')).find((c) => c.name === 'Public holidays')!
      expect(cal).toMatchObject({ holiday: 'holiday2', dates: ['2027-04-02'], recurring: ['01-01', '12-25'] })

      // Edit it: drop New Year, add Boxing Day.
      await page.click('[data-test=calendar-recurring] li:has-text("1 Jan") button')
      await page.fill('[data-test=calendar-rec-day]', '26')
      await page.selectOption('[data-test=calendar-rec-month]', '12')
      await page.click('[data-test=calendar-rec-add]')
      await page.click('[data-test=calendar-save]')
      await expect
        .poll(async () => (await apiCall<Calendar[]>(server, admin, 'GET', '/api/t3000/calendars')).find((c) => c.id === cal.id)!.recurring)
        .toEqual(['12-25', '12-26'])
      await screenshot(page, 'schedules-calendar')

      // The schedule follows the calendar once ticked.
      await page.click('[data-test=tab-schedules]')
      await page.click(`[data-test=schedule-item-${s.id}]`)
      await page.check(`[data-test=schedule-calendar-${cal.id}]`)
      await page.click('[data-test=schedule-save]')
      await expect.poll(async () => (await schedules()).find((x) => x.id === s.id)!.calendar_ids).toEqual([cal.id])
      cal = (await apiCall<Calendar[]>(server, admin, 'GET', '/api/t3000/calendars')).find((c) => c.id === cal.id)!
      expect(cal.recurring).toEqual(['12-25', '12-26'])
    } finally {
      await context.close()
    }
  })

  test('a viewer reads schedules without editing them and sees changes made elsewhere live', async () => {
    const { context, page } = await newPage(browser)
    try {
      const s = (await schedules()).find((x) => x.name === 'Lobby lights')!
      await login(page, server, VIEWER.user, VIEWER.pass)
      await page.goto(`${server.url}/schedules?id=${s.id}`)
      await page.waitForSelector('[data-test=schedule-editor]')
      expect(await page.locator('[data-test=schedule-save]').count()).toBe(0)
      expect(await page.locator('[data-test=schedule-new]').count()).toBe(0)
      expect(await page.locator('[data-test=schedule-run]').count()).toBe(0)
      // Dragging on the grid changes nothing.
      const before = await page.locator('[data-test^=bar-]').count()
      await paint(page, 'holiday1', h(8, 10), 'holiday1', h(12, 10))
      expect(await page.locator('[data-test^=bar-]').count()).toBe(before)

      // Someone disables the schedule: the list and the editor follow without a reload.
      const current = (await schedules()).find((x) => x.id === s.id)!
      await apiCall(server, admin, 'PUT', `/api/t3000/schedules/${s.id}`, {
        name: 'Lobby lights (summer)',
        building_id: current.building_id,
        enabled: false,
        weekly_schedule: current.weekly_schedule,
        calendar_ids: current.calendar_ids,
        outputs: current.outputs,
      })
      await expect.poll(() => page.textContent(`[data-test=schedule-item-${s.id}]`)).toContain('Lobby lights (summer)')
      await expect.poll(() => page.textContent(`[data-test=schedule-item-state-${s.id}]`)).toBe('disabled')
      await expect.poll(() => page.inputValue('[data-test=schedule-name]')).toBe('Lobby lights (summer)')
      await screenshot(page, 'schedules-viewer')
    } finally {
      await context.close()
    }
  })
})
