// The points a user pinned to the dashboard, kept in localStorage per user name so that each
// person on a shared laptop or tablet sees their own. Every component gets the same reactive list;
// other tabs of the same browser follow changes through the `storage` event.
//
//   const { pins, pin, unpin, isPinned, toggle } = usePins()
import { computed, readonly, ref, watch, type Ref } from 'vue'
import { useT3000 } from './useT3000'

/** The localStorage key of a user's pins. */
export function pinsKey(username: string): string {
  return `t3000.pins.${username}`
}

/** Most points one dashboard keeps (each one is a live subscription). */
export const MAX_PINS = 100

const list = ref<number[]>([])
let owner: string | null = null
let started = false

function storage(): Storage | null {
  try {
    return globalThis.localStorage ?? null
  } catch {
    return null // Storage disabled by the browser.
  }
}

function read(username: string | null): number[] {
  if (!username) return []
  try {
    const raw = JSON.parse(storage()?.getItem(pinsKey(username)) ?? '[]')
    if (!Array.isArray(raw)) return []
    const ids = raw.filter((v): v is number => Number.isInteger(v) && v > 0)
    return [...new Set(ids)].slice(0, MAX_PINS)
  } catch {
    return [] // A damaged entry is treated as no pins.
  }
}

function write() {
  if (!owner) return
  try {
    storage()?.setItem(pinsKey(owner), JSON.stringify(list.value))
  } catch {
    // Full or disabled storage: the pins still work for this page.
  }
}

function start() {
  if (started) return
  started = true
  const { session } = useT3000()
  watch(
    () => session.value?.username ?? null,
    (username) => {
      owner = username
      list.value = read(username)
    },
    { immediate: true },
  )
  globalThis.addEventListener?.('storage', (e: StorageEvent) => {
    if (owner && e.key === pinsKey(owner)) list.value = read(owner)
  })
}

/** Pins a point; false when it cannot be (not an id, or already MAX_PINS pinned). */
function pin(id: number): boolean {
  if (!Number.isInteger(id) || id <= 0) return false
  if (list.value.includes(id)) return true
  if (list.value.length >= MAX_PINS) return false
  list.value = [...list.value, id]
  write()
  return true
}

function unpin(id: number) {
  if (!list.value.includes(id)) return
  list.value = list.value.filter((p) => p !== id)
  write()
}

function isPinned(id: number): boolean {
  return list.value.includes(id)
}

function toggle(id: number) {
  if (isPinned(id)) unpin(id)
  else pin(id)
}

/** Moves a pinned point by `delta` places (negative: earlier). */
function move(id: number, delta: number) {
  const i = list.value.indexOf(id)
  const j = i + delta
  if (i < 0 || j < 0 || j >= list.value.length) return
  const next = [...list.value]
  next.splice(i, 1)
  next.splice(j, 0, id)
  list.value = next
  write()
}

export interface Pins {
  /** The pinned point ids, in the order they were pinned (read-only; change it with pin / unpin). */
  pins: Readonly<Ref<readonly number[]>>
  count: Readonly<Ref<number>>
  /** False when the point cannot be pinned (MAX_PINS reached). */
  pin: (id: number) => boolean
  unpin: (id: number) => void
  isPinned: (id: number) => boolean
  toggle: (id: number) => void
  move: (id: number, delta: number) => void
}

export function usePins(): Pins {
  start()
  return {
    pins: readonly(list) as Readonly<Ref<readonly number[]>>,
    count: computed(() => list.value.length),
    pin,
    unpin,
    isPinned,
    toggle,
    move,
  }
}
