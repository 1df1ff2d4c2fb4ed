// The end-to-end harness: the real t3000 binary in demo mode on a free port with its own data
// directory, and Debian's Chromium driven by playwright-core (never a downloaded browser).
//
//   T3000_BIN   the binary (default: ../target/release/t3000, then $CARGO_TARGET_DIR/release/t3000)
//   CHROMIUM    the browser (default /usr/bin/chromium)
//   E2E_SHOTS   where screenshots go (default e2e/screenshots)
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core'

const here = dirname(fileURLToPath(import.meta.url))

export function binary(): string {
  const candidates = [
    process.env.T3000_BIN,
    resolve(here, '../../target/release/t3000'),
    process.env.CARGO_TARGET_DIR && join(process.env.CARGO_TARGET_DIR, 'release/t3000'),
  ].filter((p): p is string => !!p)
  const found = candidates.find((p) => existsSync(p))
  if (!found) throw new Error(`the t3000 binary is not at ${candidates.join(' or ')}: build it with \`cargo build --release\` or set T3000_BIN`)
  return found
}

export interface Server {
  /** Where it listens: a new free port after each `restart`. */
  url: string
  password: string
  dataDir: string
  /** The running process (a new one after each `restart`). */
  proc: ChildProcess
  /** Everything the server printed, every run of it (for failure messages). */
  output: () => string
  /** Kills the server with SIGKILL (a crash: nothing is flushed or closed) and waits for the
   * process to end; the data directory stays, for `restart`. */
  kill: () => Promise<void>
  /** Starts the server again on the same data directory with the same arguments (after `kill`);
   * `url`, `password` and `proc` are then the new run's. */
  restart: () => Promise<void>
  /** SIGTERM (if it still runs), then removes the data directory. */
  stop: () => Promise<void>
}

/** Whether `proc` has not ended yet (neither exited nor killed by a signal). */
const alive = (proc: ChildProcess) => proc.exitCode === null && proc.signalCode === null

/** Waits until `proc` has ended. */
async function ended(proc: ChildProcess) {
  if (alive(proc)) await new Promise((r) => proc.once('exit', r))
}

/**
 * Small disk thresholds (as the Rust tests' servers have), so that how full the test machine's disk
 * is never raises the disk-space alarm in a test about something else.
 */
const SMALL_DISK_THRESHOLDS = {
  T3000__STORAGE__DISK_ALARM_FREE_MB: '64',
  T3000__STORAGE__DISK_ALARM_FREE_PERCENT: '0',
  T3000__STORAGE__DISK_FLOOR_FREE_MB: '16',
}

/**
 * Starts `t3000 demo` on `dataDir` and waits (at most 60 s) for its listening line and the admin
 * password; what it prints is added to `log`.
 */
async function launch(dataDir: string, extraArgs: string[], env: Record<string, string>, log: { text: string }) {
  const proc = spawn(binary(), ['demo', '--data-dir', dataDir, '--listen', '127.0.0.1:0', ...extraArgs], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn', ...SMALL_DISK_THRESHOLDS, ...env },
  })
  let out = ''
  const collect = (b: Buffer) => {
    out += b.toString()
    log.text += b.toString()
  }
  proc.stdout!.on('data', collect)
  proc.stderr!.on('data', collect)
  const { url, password } = await new Promise<{ url: string; password: string }>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`t3000 demo did not start within 60 s:\n${out}`)), 60_000)
    const check = () => {
      const u = /t3000 listening on (http:\/\/\S+)/.exec(out)
      const p = /log in as admin with the password (\S+)/.exec(out)
      if (u && p) {
        clearTimeout(timer)
        ok({ url: u[1], password: p[1] })
      }
    }
    proc.stdout!.on('data', check)
    proc.on('exit', (code) => {
      clearTimeout(timer)
      fail(new Error(`t3000 demo exited with ${code} before listening:\n${out}`))
    })
  })
  return { proc, url, password }
}

/**
 * Starts `t3000 demo` on a free port with a data directory of its own and waits for its listening
 * line and the admin password; `env` adds environment variables (`T3000__PLUGINS__DIRS`).
 */
export async function startDemo(extraArgs: string[] = [], env: Record<string, string> = {}): Promise<Server> {
  const dataDir = mkdtempSync(join(tmpdir(), 't3000-e2e-'))
  const log = { text: '' }
  const first = await launch(dataDir, extraArgs, env, log)
  const server: Server = {
    ...first,
    dataDir,
    output: () => log.text,
    kill: async () => {
      const gone = ended(server.proc)
      if (alive(server.proc)) server.proc.kill('SIGKILL')
      await gone
    },
    restart: async () => {
      if (alive(server.proc)) throw new Error('restart: the server still runs (kill it first)')
      log.text += '\n--- restarted on the same data directory ---\n'
      Object.assign(server, await launch(dataDir, extraArgs, env, log))
    },
    stop: async () => {
      const gone = ended(server.proc)
      if (alive(server.proc)) server.proc.kill('SIGTERM')
      await gone
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
  return server
}

/** Headless Debian Chromium, with the flags this closed network needs. */
export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  })
}

/** A fresh context (its own storage) with downloads allowed. */
export async function newPage(browser: Browser, viewport = { width: 1400, height: 900 }): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport, acceptDownloads: true })
  const page = await context.newPage()
  page.setDefaultTimeout(15_000)
  return { context, page }
}

/** Logs in through the login form and waits for the dashboard's live connection. */
export async function login(page: Page, server: Server, username = 'admin', password = server.password) {
  await page.goto(`${server.url}/login`)
  await page.fill('input[name=username]', username)
  await page.fill('input[name=password]', password)
  await page.click('button[type=submit]')
  await page.waitForURL((u) => !u.pathname.startsWith('/login'))
  await page.waitForSelector('[data-test=connection]:has-text("Live")')
}

/** Calls the REST API with a token (set-up and checks outside the browser). */
export async function apiCall<T>(server: Server, token: string, method: string, path: string, body?: unknown): Promise<T> {
  const r = await fetch(`${server.url}${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await r.text()
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`)
  return (text ? JSON.parse(text) : undefined) as T
}

/** A bearer token for `username`. */
export async function token(server: Server, username = 'admin', password = server.password): Promise<string> {
  const r = await fetch(`${server.url}/api/t3000/auth/login`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username, password }),
  })
  if (!r.ok) throw new Error(`login ${username}: ${r.status} ${await r.text()}`)
  return ((await r.json()) as { token: string }).token
}

/** Saves a full-page screenshot as `<name>.png` in E2E_SHOTS (default e2e/screenshots). */
export async function screenshot(page: Page, name: string) {
  const dir = process.env.E2E_SHOTS ?? join(here, 'screenshots')
  mkdirSync(dir, { recursive: true })
  await page.screenshot({ path: join(dir, `${name}.png`), fullPage: true })
}

/** The latest value of every point (GET /points/batch), by point id. */
export async function latestValues(server: Server, token: string): Promise<Map<number, number | null>> {
  const r = await apiCall<{ values: { point_id: number; value: number | null }[] }>(server, token, 'GET', '/api/t3000/points/batch')
  return new Map(r.values.map((v) => [v.point_id, v.value]))
}

/**
 * A point whose value keeps changing, and a value it had: polls the latest values until one point
 * (above `above`, when given; not in `exclude`) changed in three successive polls. Which demo values
 * move, and how often, is the model's: most sensors flicker by one step now and then and may stay
 * still for a minute after two changes; the meters' totals count up all the time.
 */
export async function changingPoint(server: Server, token: string, opts: { above?: number; exclude?: number[] } = {}): Promise<{ id: number; value: number }> {
  const deadline = Date.now() + 90_000
  let before = await latestValues(server, token)
  const runs = new Map<number, number>()
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 1500)) // The poll interval, not a wait for a result.
    const now = await latestValues(server, token)
    for (const [id, v] of now) {
      if (v === null || (opts.above !== undefined && v <= opts.above) || opts.exclude?.includes(id)) continue
      const run = before.has(id) && before.get(id) !== v ? (runs.get(id) ?? 0) + 1 : 0
      runs.set(id, run)
      if (run >= 3) return { id, value: v }
    }
    before = now
  }
  throw new Error(`no demo point${opts.above !== undefined ? ` above ${opts.above}` : ''} changed in three successive polls within 90 s`)
}

/**
 * Every visible button in `scope` (a dialog, or the whole page): scrolled into view, the element at
 * its centre must be the button or inside it, and its text must fit. Returns what fails.
 */
export async function unclickable(page: Page, scope = 'body'): Promise<string[]> {
  return page.evaluate((sel) => {
    const root = document.querySelector(sel)
    if (!root) return [`no ${sel}`]
    const bad: string[] = []
    for (const b of root.querySelectorAll('button')) {
      if (!b.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true })) continue
      b.scrollIntoView({ block: 'center', inline: 'center' })
      const r = b.getBoundingClientRect()
      if (!r.width || !r.height) continue
      const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2)
      const name = `"${(b.textContent ?? '').trim().slice(0, 40) || b.getAttribute('aria-label')}" [${b.dataset.test ?? ''}]`
      if (!hit || (hit !== b && !b.contains(hit))) {
        const h = hit as HTMLElement | null
        bad.push(`${name}: the element at its centre is ${h ? `${h.tagName.toLowerCase()}.${h.className}[${h.dataset.test ?? ''}]` : 'nothing'}`)
      }
      if (b.scrollWidth > b.clientWidth + 1) bad.push(`${name}: its text is cut (${b.scrollWidth} > ${b.clientWidth} px)`)
    }
    return bad
  }, scope)
}

/** Waits (polling every `everyMs`, no fixed sleep) until `check` holds; 0 polls again as soon as
 * a check answers (to catch a state that lasts only a moment). */
export async function until(what: string, check: () => Promise<boolean>, timeoutMs = 60_000, everyMs = 250) {
  const end = Date.now() + timeoutMs
  for (;;) {
    if (await check()) return
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}
