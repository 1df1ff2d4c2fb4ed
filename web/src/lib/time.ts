// Times for people, the same on every page. Pure functions: no Vue, no I/O.
//
// An `Instant` is an RFC 3339 string (REST `updated_at`, WebSocket `time`), a Date, or epoch
// milliseconds (the WebSocket's `timestamp` and `last_seen`, Date.now()). The REST API's epoch
// microseconds (`since_us`, `at_us`, `issued_us`) go through `usToMs` first, so that a number
// always means one unit.

export type Instant = string | number | Date

/** Epoch milliseconds of epoch microseconds (null stays null). */
export function usToMs(us: number | null | undefined): number | null {
  return us === null || us === undefined || !Number.isFinite(us) ? null : Math.floor(us / 1000)
}

/** Epoch milliseconds of an instant; null for none or an unreadable one. */
export function toMs(t: Instant | null | undefined): number | null {
  if (t === null || t === undefined || t === '') return null
  const ms = t instanceof Date ? t.getTime() : typeof t === 'number' ? t : Date.parse(t)
  return Number.isFinite(ms) ? ms : null
}

function sameDay(a: number, b: number): boolean {
  return new Date(a).toDateString() === new Date(b).toDateString()
}

/** Local time with seconds; other days than today with their date too. `—` for none. */
export function formatTime(t: Instant | null | undefined, now = Date.now()): string {
  const ms = toMs(t)
  if (ms === null) return '—'
  const d = new Date(ms)
  const time = d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' })
  return sameDay(ms, now) ? time : `${d.toLocaleDateString(undefined, { year: 'numeric', month: 'short', day: 'numeric' })} ${time}`
}

/** The full local date and time (for tooltips); empty for none. */
export function formatDateTime(t: Instant | null | undefined): string {
  const ms = toMs(t)
  return ms === null ? '' : new Date(ms).toLocaleString()
}

/** How long ago: `never`, `just now` (under 2 s), `12 s ago`, `5 min ago`, `3 h ago`, `2 d ago`. */
export function timeAgo(t: Instant | null | undefined, now = Date.now()): string {
  const ms = toMs(t)
  if (ms === null) return 'never'
  const s = Math.max(0, Math.round((now - ms) / 1000))
  if (s < 2) return 'just now'
  if (s < 60) return `${s} s ago`
  if (s < 3600) return `${Math.floor(s / 60)} min ago`
  if (s < 86_400) return `${Math.floor(s / 3600)} h ago`
  return `${Math.floor(s / 86_400)} d ago`
}

/** How long until: `in < 1 min`, `in 5 min`, `in 3 h 20 min` (under two days), `in 4 d`. */
export function timeUntil(t: Instant | null | undefined, now = Date.now()): string {
  const ms = toMs(t)
  if (ms === null) return ''
  const s = Math.round((ms - now) / 1000)
  if (s < 60) return 'in < 1 min'
  if (s < 3600) return `in ${Math.round(s / 60)} min`
  if (s < 172_800) {
    const m = Math.round((s % 3600) / 60)
    const h = Math.floor(s / 3600) + (m === 60 ? 1 : 0)
    return m === 0 || m === 60 ? `in ${h} h` : `in ${h} h ${m} min`
  }
  return `in ${Math.round(s / 86_400)} d`
}
