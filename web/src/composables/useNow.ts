// A clock for "12 s ago" and wall-clock texts: the time now, ticking while the component lives.
import { onScopeDispose, ref, type Ref } from 'vue'

/** Epoch milliseconds, updated every `periodMs` until the calling component (scope) ends. */
export function useNow(periodMs = 1000): Ref<number> {
  const now = ref(Date.now())
  const t = setInterval(() => (now.value = Date.now()), periodMs)
  onScopeDispose(() => clearInterval(t))
  return now
}
