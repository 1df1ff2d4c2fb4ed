// How the alarm history names a stored transition, and the colour of its badge. The system alarms
// that gather several faults (devices offline, programs in error, plugins refused) are raised again
// by a new fault while they are on, and cleared in part when one fault ends while others remain
// (the state stays active or acknowledged).
import type { AlarmEvent } from '../../api/types'

const KIND_TEXT: Record<string, string> = {
  raised: 'Raised',
  level_changed: 'Level changed',
  acknowledged: 'Acknowledged',
  cleared: 'Cleared',
  normal: 'Back to normal',
}

/** Whether an alarm in `state` is on (its condition present). */
const on = (state: string) => state === 'active' || state === 'acknowledged'

/** `Raised`, `Raised again (new fault)`, `Partly cleared`, `Acknowledged by op`, `Level changed (from high)`. */
export function kindText(e: Pick<AlarmEvent, 'transition'>): string {
  const t = e.transition
  const k = t.kind
  if (k.type === 'raised' && on(t.from)) return 'Raised again (new fault)'
  if (k.type === 'cleared' && on(t.to)) return 'Partly cleared'
  const text = KIND_TEXT[k.type] ?? k.type
  if (k.type === 'acknowledged' && k.by) return `${text} by ${k.by}`
  if (k.type === 'level_changed' && k.from) return `${text} (from ${k.from})`
  return text
}

/** `bad` for what needs attention (raised, a level change to active), `ok` for what ended, else none. */
export function kindClass(e: Pick<AlarmEvent, 'transition'>): string {
  const t = e.transition.kind.type
  return t === 'raised' || (t === 'level_changed' && e.transition.to === 'active') ? 'bad' : t === 'acknowledged' ? '' : 'ok'
}
