// The import and sync requests: a file goes as the request body (as it is, never read into a
// string here); a preview unless `apply` is true. Admin only on the server.
import { API, api } from '../api/client'
import type {
  CsvConfigImport,
  CsvSamplesImport,
  ProgImport,
  SyncApplyReport,
  SyncChoice,
  SyncReport,
  SyncStrategy,
  WebviewApplied,
  WebviewJob,
  WebviewPreview,
} from '../api/types'

export type CsvKind = 'devices' | 'points' | 'samples'

/** POST /import/csv?kind=…: the preview, or with `apply` the import (all or nothing). */
function csv(file: Blob, kind: CsvKind, apply: boolean, tz?: string): Promise<CsvConfigImport | CsvSamplesImport> {
  return api.post(`${API}/import/csv`, file, { query: { kind, apply: apply || undefined, tz }, contentType: 'text/csv' })
}

/** POST /import/webview: the preview. */
function webviewPreview(file: Blob, timeZone: string): Promise<WebviewPreview> {
  return api.post(`${API}/import/webview`, file, { query: { time_zone: timeZone }, contentType: 'application/octet-stream' })
}

/** POST /import/webview?apply=true: places, devices, points and trend logs now, history as a job
 * (the same file again continues an interrupted job). */
function webviewApply(file: Blob, timeZone: string, enableDevices: boolean): Promise<WebviewApplied> {
  return api.post(`${API}/import/webview`, file, {
    query: { time_zone: timeZone, apply: true, enable_devices: enableDevices || undefined },
    contentType: 'application/octet-stream',
  })
}

/** GET /import/webview/jobs: every job, newest first. */
function webviewJobs(signal?: AbortSignal): Promise<WebviewJob[]> {
  return api.get(`${API}/import/webview/jobs`, { signal })
}

/** GET /import/webview/jobs/{id}. */
function webviewJob(id: number, signal?: AbortSignal): Promise<WebviewJob> {
  return api.get(`${API}/import/webview/jobs/${id}`, { signal })
}

/** POST /import/prog?device=…: a panel file previewed against a device, or applied to it. */
function prog(file: Blob, device: string, apply: boolean): Promise<ProgImport> {
  return api.post(`${API}/import/prog`, file, { query: { device, apply: apply || undefined }, contentType: 'application/octet-stream' })
}

/** GET /devices/{id}/sync: the differences, read from the controller now. */
function syncDiff(device: number | string, strategy: SyncStrategy, signal?: AbortSignal): Promise<SyncReport> {
  return api.get(`${API}/devices/${encodeURIComponent(String(device))}/sync`, { query: { strategy }, signal })
}

/** POST /devices/{id}/sync: applies them. */
function syncApply(device: number | string, strategy: SyncStrategy, choices: SyncChoice[]): Promise<SyncApplyReport> {
  return api.post(`${API}/devices/${encodeURIComponent(String(device))}/sync`, { strategy, choices })
}

/** A CSV export (devices.csv, points.csv) handed to the browser as a download. */
async function download(file: 'devices.csv' | 'points.csv') {
  const blob = await api.get<Blob>(`${API}/config/${file}`, { blob: true })
  const href = URL.createObjectURL(blob)
  const a = document.createElement('a')
  a.href = href
  a.download = file
  document.body.appendChild(a)
  a.click()
  a.remove()
  setTimeout(() => URL.revokeObjectURL(href), 10_000)
}

export function useImports() {
  return { csv, webviewPreview, webviewApply, webviewJobs, webviewJob, prog, syncDiff, syncApply, download }
}
