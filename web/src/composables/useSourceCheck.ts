// The editor's syntax check while typing: a while after the last change of the text (or of the
// device its point names are looked up on), POST /programs/check, and its answer as a mark at the
// error's line. A newer change cancels a check still on its way, so an old answer never shows
// over a newer text.
import { getCurrentScope, onScopeDispose, ref, shallowRef, watch, type Ref } from 'vue'
import type { Mark } from '../lib/basic'
import { explain, type Problem } from '../lib/errors'
import { checkMark } from '../lib/programs'
import { usePrograms } from './usePrograms'

export interface SourceCheck {
  /** Where the text's first error is; null while it is fine (or not checked yet). */
  mark: Ref<Mark | null>
  /** A check is waiting or on its way. */
  checking: Ref<boolean>
  /** The text as last checked and found fine (null: not yet, or it had an error). */
  okFor: Ref<string | null>
  /** The check itself failed (no answer, no permission): said beside the editor; the save still tells. */
  failure: Ref<Problem | null>
  /** Checks now (after a save refused the text, the mark is the save's until the next change). */
  now: () => void
  /** Shows `m` (a refused save's mark) until the text changes. */
  show: (m: Mark | null) => void
}

export function useSourceCheck(source: Ref<string>, deviceId: Ref<number | null>, delayMs = 400, programs = usePrograms()): SourceCheck {
  const mark = shallowRef<Mark | null>(null)
  const checking = ref(false)
  const okFor = ref<string | null>(null)
  const failure = shallowRef<Problem | null>(null)
  let timer: ReturnType<typeof setTimeout> | null = null
  let inFlight: AbortController | null = null

  function cancel() {
    if (timer) clearTimeout(timer)
    timer = null
    inFlight?.abort()
    inFlight = null
  }

  async function run() {
    cancel()
    const text = source.value
    const device = deviceId.value
    if (device === null || !text.trim()) {
      checking.value = false
      mark.value = null
      okFor.value = null
      return
    }
    const ctl = new AbortController()
    inFlight = ctl
    checking.value = true
    try {
      const answer = await programs.check(text, device, ctl.signal)
      if (inFlight !== ctl) return
      mark.value = checkMark(answer)
      okFor.value = mark.value ? null : text
      failure.value = null
    } catch (e) {
      if (inFlight !== ctl || (e as Error).name === 'AbortError') return
      failure.value = explain(e)
    } finally {
      if (inFlight === ctl) {
        inFlight = null
        checking.value = false
      }
    }
  }

  const stop = watch([source, deviceId], () => {
    cancel()
    okFor.value = null
    checking.value = true
    timer = setTimeout(() => void run(), delayMs)
  })

  function show(m: Mark | null) {
    cancel()
    checking.value = false
    mark.value = m
    okFor.value = null
  }

  const dispose = () => {
    stop()
    cancel()
  }
  if (getCurrentScope()) onScopeDispose(dispose)
  return { mark, checking, okFor, failure, now: () => void run(), show }
}
