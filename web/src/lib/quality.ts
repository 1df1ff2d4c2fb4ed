// The colour classes of qualities and states, the same on every page (`ok` green, `warn` amber,
// `bad` red, '' plain; style.css and the components style `.ok`, `.warn`, `.bad`). Pure functions.

export type Tone = 'ok' | 'warn' | 'bad' | ''

/**
 * The class of an OPC quality name as the server sends it (`quality_name` of a PointUpdate,
 * `quality` of a point): `good` is ok, `uncertain/...` warn, `bad/...` bad, none plain.
 *
 * `good/local_override` (0xD8, core/src/model.rs) is warn, not ok: the value is good (the device
 * reported it; nothing about it is stale or wrong, so it is never struck through), but it is a
 * value an operator forced at the controller, which is not driving that point until someone puts
 * it back in auto. A forced output or input left in manual is the classic cause of "the building
 * does not do what the schedule says", so the page flags it the way it flags an uncertain value.
 * The other good sub-statuses are all named `good` by the server.
 */
export function qualityClass(q: string | null | undefined): Tone {
  if (!q) return ''
  if (q === 'good') return 'ok'
  if (q.startsWith('good') || q.startsWith('uncertain')) return 'warn'
  return 'bad'
}

/** The words for each OPC quality name the server sends (core/src/model.rs `Quality::name`). */
const QUALITY_WORDS: Record<string, string> = {
  good: 'OK',
  'good/local_override': 'Manual override',
  uncertain: 'Uncertain',
  'uncertain/last_usable': 'Uncertain: last usable value',
  'uncertain/sensor_not_accurate': 'Uncertain: sensor not accurate',
  'uncertain/out_of_range': 'Uncertain: outside the sensor range',
  'uncertain/sub_normal': 'Uncertain',
  bad: 'Bad value',
  'bad/config_error': 'Bad: the device refused this register (check the configuration)',
  'bad/not_connected': 'Bad: not connected',
  'bad/device_failure': 'Bad: device fault',
  'bad/sensor_failure': 'Bad: sensor fault',
  'bad/last_known': 'Bad: last known value',
  'bad/comm_failure': 'No communication with the device',
  'bad/out_of_service': 'Out of service',
}

/** A quality for people (`good/local_override` is "Manual override"); the server's name stays
 * in the tooltip. Unknown names fall back to their major part's words. */
export function qualityText(q: string | null | undefined): string {
  if (!q) return ''
  return QUALITY_WORDS[q] ?? QUALITY_WORDS[q.split('/')[0]] ?? q
}

/** What a greyed-out (`not-live`) value or state means, for its tooltip. */
export const NOT_LIVE = 'Not live: the connection to the server is down, or this has not been confirmed since it came back'

/** The class of a device's connection quality (the share of recent polls that succeeded), by the
 * whole percentage shown: 95 % and up ok, 70 % and up warn, else bad. */
export function connectionClass(share: number | null | undefined): Tone {
  if (share === null || share === undefined || Number.isNaN(share)) return ''
  const p = Math.round(share * 100)
  return p >= 95 ? 'ok' : p >= 70 ? 'warn' : 'bad'
}

/**
 * What a device is doing, as the top bar counts devices and the device list filters them:
 * `online` (answering), `error` (answering, but its last poll had errors: a register it refused,
 * a garbled reply; the collector clears the error at the first clean poll), `offline`,
 * `connecting` (not polled yet) or `disabled` (switched off on purpose).
 */
export type DeviceHealth = 'online' | 'error' | 'offline' | 'connecting' | 'disabled'

/** The device health filters, in the order pages list them, with their names for people. */
export const DEVICE_HEALTH: { value: DeviceHealth; label: string }[] = [
  { value: 'online', label: 'online' },
  { value: 'error', label: 'in error' },
  { value: 'offline', label: 'offline' },
  { value: 'connecting', label: 'connecting' },
  { value: 'disabled', label: 'disabled' },
]

/** A device's health (see DeviceHealth) from its status. */
export function deviceHealth(s: { online: boolean; state: string; lastError?: string | null }): DeviceHealth {
  if (s.state === 'disabled') return 'disabled'
  if (s.online) return s.lastError ? 'error' : 'online'
  if (s.state === 'connecting') return 'connecting'
  return 'offline'
}

/** A device's state badge: `online` ok, `error` (answering with errors) and `connecting` warn,
 * `disabled` plain (switched off on purpose, not a fault), anything else (`offline`) bad; unknown
 * without a status. */
export function deviceBadge(s: { online: boolean; state: string; lastError?: string | null } | null | undefined): { cls: Tone; text: string } {
  if (!s) return { cls: '', text: 'unknown' }
  switch (deviceHealth(s)) {
    case 'disabled':
      return { cls: '', text: 'disabled' }
    case 'online':
      return { cls: 'ok', text: 'online' }
    case 'error':
      return { cls: 'warn', text: 'error' }
    case 'connecting':
      return { cls: 'warn', text: 'connecting' }
    default:
      return { cls: 'bad', text: s.state || 'offline' }
  }
}
