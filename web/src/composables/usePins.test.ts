// Pinned points: kept per user in localStorage, shared by every component, followed across tabs.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { nextTick } from 'vue'

class MemoryStorage {
  map = new Map<string, string>()
  get length() {
    return this.map.size
  }
  key(i: number) {
    return [...this.map.keys()][i] ?? null
  }
  getItem(k: string) {
    return this.map.has(k) ? this.map.get(k)! : null
  }
  setItem(k: string, v: string) {
    this.map.set(k, String(v))
  }
  removeItem(k: string) {
    this.map.delete(k)
  }
  clear() {
    this.map.clear()
  }
}

let storage: MemoryStorage
let listeners: ((e: { key: string | null }) => void)[]

function session(username: string) {
  return JSON.stringify({ token: `t-${username}`, username, role: 'viewer', expires_us: (Date.now() + 3_600_000) * 1000 })
}

/** Fresh modules (the session and the pins are module state) with `username` logged in. */
async function load(username: string | null) {
  vi.resetModules()
  if (username) storage.setItem('t3000.session', session(username))
  const pins = await import('./usePins')
  const t3000 = await import('./useT3000')
  return { ...pins, t3000 }
}

beforeEach(() => {
  storage = new MemoryStorage()
  listeners = []
  vi.stubGlobal('localStorage', storage)
  vi.stubGlobal('addEventListener', (type: string, fn: (e: { key: string | null }) => void) => {
    if (type === 'storage') listeners.push(fn)
  })
})
afterEach(() => {
  vi.unstubAllGlobals()
})

describe('usePins', () => {
  it('pins, unpins and toggles, keeping the list in localStorage for the user', async () => {
    const { usePins, pinsKey } = await load('alice')
    const { pins, pin, unpin, isPinned, toggle, count } = usePins()
    expect(pins.value).toEqual([])
    expect(pin(5)).toBe(true)
    expect(pin(7)).toBe(true)
    expect(pin(5)).toBe(true) // Already pinned: no duplicate.
    expect(pins.value).toEqual([5, 7])
    expect(count.value).toBe(2)
    expect(isPinned(7)).toBe(true)
    expect(JSON.parse(storage.getItem(pinsKey('alice'))!)).toEqual([5, 7])
    unpin(5)
    toggle(9)
    toggle(7)
    expect(pins.value).toEqual([9])
    expect(isPinned(5)).toBe(false)
    expect(JSON.parse(storage.getItem('t3000.pins.alice')!)).toEqual([9])
  })

  it('shares one list between components', async () => {
    const { usePins } = await load('alice')
    const a = usePins()
    const b = usePins()
    a.pin(3)
    expect(b.pins.value).toEqual([3])
    expect(b.isPinned(3)).toBe(true)
  })

  it('refuses what is not a point id, and more than MAX_PINS', async () => {
    const { usePins, MAX_PINS } = await load('alice')
    const { pins, pin } = usePins()
    expect(pin(0)).toBe(false)
    expect(pin(-2)).toBe(false)
    expect(pin(1.5)).toBe(false)
    expect(pin(Number.NaN)).toBe(false)
    expect(pins.value).toEqual([])
    for (let i = 1; i <= MAX_PINS; i++) expect(pin(i)).toBe(true)
    expect(pin(MAX_PINS + 1)).toBe(false)
    expect(pins.value).toHaveLength(MAX_PINS)
  })

  it('moves a pin within the list', async () => {
    const { usePins } = await load('alice')
    const { pins, pin, move } = usePins()
    ;[1, 2, 3].forEach(pin)
    move(3, -1)
    expect(pins.value).toEqual([1, 3, 2])
    move(1, -1) // Already first.
    move(2, 5) // Past the end.
    expect(pins.value).toEqual([1, 3, 2])
    move(1, 2)
    expect(pins.value).toEqual([3, 2, 1])
    expect(JSON.parse(storage.getItem('t3000.pins.alice')!)).toEqual([3, 2, 1])
  })

  it('keeps each user their own pins', async () => {
    storage.setItem('t3000.pins.bob', JSON.stringify([42]))
    const { usePins, t3000 } = await load('alice')
    const { pins, pin } = usePins()
    pin(1)
    // Bob logs in on the same browser.
    vi.stubGlobal(
      'fetch',
      vi.fn(async () => new Response(session('bob'), { status: 200 })),
    )
    await t3000.useT3000().login('bob', 'pw')
    await nextTick()
    expect(pins.value).toEqual([42])
    pin(43)
    expect(JSON.parse(storage.getItem('t3000.pins.bob')!)).toEqual([42, 43])
    expect(JSON.parse(storage.getItem('t3000.pins.alice')!)).toEqual([1])
    // Logged out: nothing pinned, nothing stored.
    await t3000.useT3000().logout()
    await nextTick()
    expect(pins.value).toEqual([])
    expect(pin(5)).toBe(true)
    expect(storage.getItem('t3000.pins.')).toBeNull()
  })

  it('reads the pins stored before, ignoring damaged entries', async () => {
    storage.setItem('t3000.pins.alice', JSON.stringify([3, 'x', 3, 0, 8, 2.5]))
    let m = await load('alice')
    expect(m.usePins().pins.value).toEqual([3, 8])
    storage.setItem('t3000.pins.alice', '{not json')
    m = await load('alice')
    expect(m.usePins().pins.value).toEqual([])
    storage.setItem('t3000.pins.alice', '{"a":1}')
    m = await load('alice')
    expect(m.usePins().pins.value).toEqual([])
  })

  it('follows changes made in another tab', async () => {
    const { usePins } = await load('alice')
    const { pins } = usePins()
    expect(listeners).toHaveLength(1)
    storage.setItem('t3000.pins.alice', JSON.stringify([11, 12]))
    listeners[0]({ key: 't3000.pins.bob' })
    expect(pins.value).toEqual([])
    listeners[0]({ key: 't3000.pins.alice' })
    expect(pins.value).toEqual([11, 12])
  })
})
