// Numbers and sizes for people, the same on every page. Pure functions: no Vue, no I/O.

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

/** A rate per second (or any figure of a status tile): one decimal below 100, grouped digits. */
export function formatRate(v: number | null | undefined): string {
  if (v === null || v === undefined || Number.isNaN(v)) return '—'
  return v.toLocaleString(undefined, { maximumFractionDigits: v >= 100 ? 0 : 1 })
}

/** A round-trip time: `0.03 ms`, `12.3 ms`, `250 ms`. */
export function formatRtt(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '—'
  if (ms < 1) return `${ms.toFixed(2)} ms`
  if (ms < 100) return `${ms.toFixed(1)} ms`
  return `${Math.round(ms)} ms`
}

/** A size in bytes, in binary units as the server's limits are (`512 B`, `1.5 KiB`, `8.0 MiB`). */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`
  if (bytes < 1024 * 1024 * 1024) return `${(bytes / 1024 / 1024).toFixed(1)} MiB`
  return `${(bytes / 1024 / 1024 / 1024).toFixed(1)} GiB`
}

/** A share (0 ..= 1) as a whole percentage; null when there is none. */
export function percent(share: number | null | undefined): number | null {
  return share === null || share === undefined || Number.isNaN(share) ? null : Math.round(share * 100)
}
