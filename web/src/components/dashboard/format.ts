// Small formatting helpers shared by every page.

/**
 * A value for people, the same on every page: at most 3 decimals (T3000 keeps thousandths, and
 * a slow drift shows in the last one), trailing zeros dropped, no digit grouping (so that copied
 * values paste as numbers); values below 0.001 in exponent form.
 */
export function formatValue(v: number | null | undefined): string {
  if (v === null || v === undefined || Number.isNaN(v)) return '—'
  if (Number.isInteger(v)) return String(v)
  if (Math.abs(v) < 1e-3) return v.toExponential(2)
  return String(Number(v.toFixed(3)))
}

/** A rate per second. */
export function formatRate(v: number | null | undefined): string {
  if (v === null || v === undefined || Number.isNaN(v)) return '—'
  return v.toLocaleString(undefined, { maximumFractionDigits: v >= 100 ? 0 : 1 })
}

/** Milliseconds since the epoch of an RFC 3339 string, epoch microseconds or a Date. */
export function toMs(t: string | number | Date | null | undefined): number | null {
  if (t === null || t === undefined || t === '') return null
  if (t instanceof Date) return t.getTime()
  if (typeof t === 'number') return Math.floor(t / 1000)
  const ms = Date.parse(t)
  return Number.isNaN(ms) ? null : ms
}

/** Local date and time, seconds included; today's times without the date. */
export function formatTime(t: string | number | Date | null | undefined, now = Date.now()): string {
  const ms = toMs(t)
  if (ms === null) return '—'
  const d = new Date(ms)
  const sameDay = new Date(now).toDateString() === d.toDateString()
  const time = d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' })
  return sameDay ? time : `${d.toLocaleDateString(undefined, { year: 'numeric', month: 'short', day: 'numeric' })} ${time}`
}

/** How long ago: `4 s ago`, `12 min ago`, `3 h ago`, `2 d ago`. */
export function ago(t: string | number | Date | null | undefined, now = Date.now()): string {
  const ms = toMs(t)
  if (ms === null) return 'never'
  const s = Math.max(0, Math.round((now - ms) / 1000))
  if (s < 60) return `${s} s ago`
  if (s < 3600) return `${Math.floor(s / 60)} min ago`
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`
  return `${Math.floor(s / 86400)} d ago`
}

/** The badge class of an OPC quality name (`good`, `good/local_override`, `bad/comm_failure`, ...). */
export function qualityClass(q: string | null | undefined): 'ok' | 'warn' | 'bad' | '' {
  if (!q) return ''
  if (q === 'good') return 'ok'
  if (q.startsWith('good')) return 'warn'
  if (q.startsWith('uncertain')) return 'warn'
  return 'bad'
}
