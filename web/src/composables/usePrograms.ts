// Programs (Control BASIC run by the server) as the pages read and change them: the calls of
// /programs, and the live ProgramUpdate messages merged into a program the page holds.
import { api, API } from '../api/client'
import type { Program, ProgramBody, ProgramCheck } from '../api/types'
import type { ProgramUpdate } from '../api/ws-types'

const BASE = `${API}/programs`

/** GET /programs: every program. */
function list(signal?: AbortSignal): Promise<Program[]> {
  return api.get<Program[]>(BASE, { signal })
}

/** GET /programs/{id}. */
function get(id: number, signal?: AbortSignal): Promise<Program> {
  return api.get<Program>(`${BASE}/${id}`, { signal })
}

/** POST /programs: the program created (422 `syntax_error` / `unknown_point` with `line` and `column`). */
function create(body: ProgramBody): Promise<Program> {
  return api.post<Program>(BASE, body)
}

/** PUT /programs/{id} with the fields that change (422 as for create). */
function update(id: number, body: Partial<ProgramBody>): Promise<Program> {
  return api.put<Program>(`${BASE}/${id}`, body)
}

/** DELETE /programs/{id}: the program's commands are relinquished. */
function remove(id: number): Promise<void> {
  return api.delete(`${BASE}/${id}`)
}

/** POST /programs/check: whether `source` parses and names points `device_id` has; nothing is stored. */
function check(source: string, deviceId: number, signal?: AbortSignal): Promise<ProgramCheck> {
  return api.post<ProgramCheck>(`${BASE}/check`, { source, device_id: deviceId }, { signal })
}

/** POST /programs/{id}/run: one scan now (a disabled program too); the program after it. */
function runOnce(id: number): Promise<Program> {
  return api.post<Program>(`${BASE}/${id}/run`)
}

/** POST /programs/{id}/enable or /disable (disabling relinquishes the program's commands). */
function setEnabled(id: number, enabled: boolean): Promise<Program> {
  return api.post<Program>(`${BASE}/${id}/${enabled ? 'enable' : 'disable'}`)
}

export function usePrograms() {
  return { list, get, create, update, remove, check, runOnce, setEnabled }
}

/** An ISO time of a ProgramUpdate's `last_scan` (RFC 3339 or epoch ms; 0 or null: none). */
function scanTime(v: string | number | null | undefined): string | null {
  if (v === null || v === undefined || v === 0 || v === '') return null
  return typeof v === 'number' ? new Date(v).toISOString() : v
}

/** `p` with the state a ProgramUpdate carries (status, enabled, error, last scan, scan time, name). */
export function applyUpdate(p: Program, u: ProgramUpdate): Program {
  return {
    ...p,
    name: u.name ?? p.name,
    status: u.status && u.status !== 'deleted' ? u.status : p.status,
    enabled: u.enabled ?? p.enabled,
    error: u.error === undefined ? p.error : u.error,
    last_scan: u.last_scan === undefined ? p.last_scan : scanTime(u.last_scan),
    scan_us: u.scan_us === undefined ? p.scan_us : u.scan_us,
  }
}
