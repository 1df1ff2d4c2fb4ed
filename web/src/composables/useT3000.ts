// The session (who is logged in, with which role) and helpers every page uses: role checks and
// loaders with loading / error states.
//
// The plan's useT3000 (C2.1) is split by what it serves: this file (session, loading and error
// states), useDevices.ts (device list, get, create, update, delete, discover, status), usePoints.ts
// (point reads, changes, value writes and relinquish) and useWebSocket.ts (live subscriptions).
import { computed, reactive, ref, shallowRef, type Ref, type ShallowRef } from 'vue'
import { api, API, configureClient } from '../api/client'
import type { Role, Session } from '../api/types'
import { explain, type Problem } from '../lib/errors'

const STORAGE_KEY = 't3000.session'
const RANK: Record<Role, number> = { viewer: 1, operator: 2, admin: 3 }

function load(): Session | null {
  try {
    const s = JSON.parse(globalThis.localStorage?.getItem(STORAGE_KEY) ?? 'null') as Session | null
    if (s && s.token && s.expires_us > Date.now() * 1000) return s
  } catch {
    // A damaged entry is treated as no session.
  }
  return null
}

const state = reactive<{ session: Session | null; expired: boolean }>({ session: load(), expired: false })

function save(s: Session | null) {
  state.session = s
  if (s) globalThis.localStorage?.setItem(STORAGE_KEY, JSON.stringify(s))
  else globalThis.localStorage?.removeItem(STORAGE_KEY)
}

configureClient(
  () => state.session?.token ?? null,
  () => {
    // The server no longer knows the token (expired, logged out elsewhere, password changed).
    state.expired = true
    save(null)
  },
)

async function login(username: string, password: string): Promise<Session> {
  const s = await api.post<Session>(`${API}/auth/login`, { username, password })
  state.expired = false
  save(s)
  return s
}

async function logout() {
  try {
    if (state.session) await api.post(`${API}/auth/logout`)
  } catch {
    // Logging out locally is what matters; the token dies with its expiry anyway.
  } finally {
    save(null)
  }
}

/** True when the logged-in user has at least `role`. */
function can(role: Role): boolean {
  const r = state.session?.role
  return !!r && RANK[r] >= RANK[role]
}

export function useT3000() {
  return {
    session: computed(() => state.session),
    loggedIn: computed(() => state.session !== null),
    /** Set when the server refused the token; the login page says why. */
    expired: computed(() => state.expired),
    role: computed(() => state.session?.role ?? null),
    isOperator: computed(() => can('operator')),
    isAdmin: computed(() => can('admin')),
    can,
    login,
    logout,
  }
}

export interface Loader<T> {
  data: ShallowRef<T | null>
  loading: Ref<boolean>
  error: Ref<Problem | null>
  /** Loads again; concurrent calls keep only the newest answer. */
  reload: () => Promise<void>
}

/**
 * Runs `fn` now (unless `immediate` is false) and on `reload()`, keeping `loading` and `error`
 * for the page. A slow answer that a newer reload overtook is dropped.
 */
export function useLoader<T>(fn: (signal: AbortSignal) => Promise<T>, immediate = true): Loader<T> {
  const data = shallowRef<T | null>(null)
  const loading = ref(false)
  const error = shallowRef<Problem | null>(null)
  let current: AbortController | null = null
  async function reload() {
    current?.abort()
    const ctl = new AbortController()
    current = ctl
    loading.value = true
    error.value = null
    try {
      const v = await fn(ctl.signal)
      if (current === ctl) data.value = v
    } catch (e) {
      if (current === ctl && (e as Error).name !== 'AbortError') error.value = explain(e)
    } finally {
      if (current === ctl) loading.value = false
    }
  }
  if (immediate) void reload()
  return { data, loading, error, reload }
}

export interface Action {
  busy: Ref<boolean>
  error: Ref<Problem | null>
  /** Runs `fn` with `busy` set and `error` cleared; a failure becomes `error`. True when it succeeded. */
  run: (fn: () => Promise<unknown>) => Promise<boolean>
}

/** What a button does: `busy` while it runs (to disable the button), its failure in `error`. */
export function useAction(): Action {
  const busy = ref(false)
  const error = shallowRef<Problem | null>(null)
  async function run(fn: () => Promise<unknown>): Promise<boolean> {
    busy.value = true
    error.value = null
    try {
      await fn()
      return true
    } catch (e) {
      error.value = explain(e)
      return false
    } finally {
      busy.value = false
    }
  }
  return { busy, error, run }
}

export { errorText } from '../lib/errors'
