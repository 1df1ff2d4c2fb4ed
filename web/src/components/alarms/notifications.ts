// What the Notifications panel says about an alert channel: its health at a glance, what it takes,
// and a delivery's status in words.
import type { AlertChannel, AlertDelivery } from '../../api/types'

export type Tone = 'ok' | 'bad' | 'warn' | ''

/** The channel's state: failing when its latest delivery failed or was dropped, else losing
 * messages (dropped or rate limited ever), else working once something was sent. */
export function channelHealth(c: AlertChannel): { tone: Tone; text: string } {
  const last = c.last_delivery?.status
  if (last === 'failed' || last === 'dropped') return { tone: 'bad', text: last === 'failed' ? 'Failing' : 'Queue full' }
  if (last === 'retrying') return { tone: 'warn', text: 'Retrying' }
  if (c.dropped > 0 || c.rate_limited > 0) return { tone: 'warn', text: 'Losing messages' }
  if (c.sent > 0) return { tone: 'ok', text: 'Working' }
  return { tone: '', text: 'Nothing sent yet' }
}

/** Which alarms the channel takes, in words. */
export function routeText(c: AlertChannel): string {
  const rules = c.rules.length ? `rules ${c.rules.join(', ')}` : 'every rule'
  const severity = c.min_severity >= 2 ? 'severe only' : 'any severity'
  const events = c.events.map((e) => e.replace('_', ' ')).join(', ')
  const limits = [c.max_per_minute ? `${c.max_per_minute}/min` : '', c.max_per_hour ? `${c.max_per_hour}/h` : ''].filter(Boolean)
  return `${rules}; ${severity}; ${events}${limits.length ? `; at most ${limits.join(', ')}` : ''}`
}

const STATUS: Record<string, { text: string; tone: Tone }> = {
  queued: { text: 'Queued', tone: '' },
  sending: { text: 'Sending', tone: '' },
  retrying: { text: 'Retrying', tone: 'warn' },
  sent: { text: 'Sent', tone: 'ok' },
  failed: { text: 'Failed', tone: 'bad' },
  dropped: { text: 'Dropped (queue full)', tone: 'bad' },
  rate_limited: { text: 'Not sent (rate limit)', tone: 'warn' },
}

/** A delivery's status in words, with its attempts when more than one. */
export function statusText(d: AlertDelivery): { text: string; tone: Tone } {
  const s = STATUS[d.status] ?? { text: d.status, tone: '' as Tone }
  return d.attempts > 1 ? { ...s, text: `${s.text} after ${d.attempts} attempts` } : s
}
