// What went wrong, in words for the person at the screen. The server's error code and message
// (written for integrators: field names, Modbus exception codes) stay available as the detail,
// one click away (ErrorNotice's "Details"). Pure functions; the API client makes the ApiError.

import { ApiError } from '../api/client'

/** A failure as a page shows it. `toString()` is the operator's text, so a problem dropped into a
 * template or a string reads as a sentence, never as JSON. */
export class Problem {
  constructor(
    /** For the operator: what happened and what to do. */
    public readonly text: string,
    /** For the engineer: the HTTP status, the server's code and message; null when there is nothing more. */
    public readonly detail: string | null,
    /** Whether trying the same thing again may work (network, server busy or failing); a Retry
     * button is offered only then, never for a point that does not exist. */
    public readonly retryable: boolean,
  ) {}

  toString(): string {
    return this.text
  }
}

/** The operator's words for the server's error codes (the `code` of `{"error": {code, message}}`).
 * A code not listed here is a validation error about what the person typed, whose server message
 * says which field and why: it is shown as it is, tidied (see `tidy`). */
const WORDS: Record<string, string> = {
  network: 'The server cannot be reached. Check the network connection; live values reconnect by themselves.',
  internal: 'The server ran into a problem. Try again; if it keeps happening, tell whoever looks after the server.',
  point_in_auto:
    'The controller is running this point in Auto. Switch it to Manual to write a value (its program stops driving it until it is put back in Auto).',
  input_in_auto: 'This input reads its sensor. Put it in Manual at the controller to override it.',
  not_writable: 'This point cannot be written from here.',
  read_only: 'This point is read-only: the controller does not accept writes to it.',
  text_point: 'This point holds text, not a number, so it cannot be trended or written.',
  device_write_failed:
    'The controller did not accept the write. The value on the controller is unchanged; the details say what it answered.',
  write_rate_limited: 'Too many writes to this point in a short time. Wait a moment and write again.',
  login_throttled: 'Too many sign-in attempts. Wait a minute and try again.',
  invalid_credentials: 'The user name or password is wrong.',
  wrong_password: 'The current password is wrong.',
  weak_password: 'That password is too easy to guess. Use a longer one.',
  forbidden: 'Your account may not do this. Ask an administrator.',
  unauthorized: 'Your session has ended. Sign in again.',
  cannot_acknowledge: 'This alarm cannot be acknowledged now: it is already acknowledged or has cleared.',
  invalid_priority: 'The priority must be a whole number from 1 (highest) to 16 (lowest).',
  invalid_expiry: 'The time a command lasts must be a whole number of seconds, more than zero.',
  writes_unavailable: 'The server cannot store data right now (its disk may be full). New values are not being saved.',
  wal_poisoned: 'The server cannot store data right now (its disk may be full). New values are not being saved.',
  storage_backlog: 'The server is busy catching up on storing values. Try again in a few seconds.',
  catalog_unavailable: 'The server is busy. Try again in a few seconds.',
  storage_unavailable: 'The server is busy. Try again in a few seconds.',
  shutting_down: 'The server is restarting. Try again in a few seconds.',
  query_timeout: 'That request took too long. Choose a shorter time range or fewer points.',
  too_many_rows: 'That is more data than one request returns. Choose a shorter time range or fewer points.',
  body_too_large: 'That file is too large to upload.',
  unsupported_media_type: 'That kind of file is not accepted here.',
  device_not_polled:
    'This device is not polled (it is disabled, or its connection is not set up), so its controller cannot be read. Enable it first.',
  nothing_to_sync:
    'This device is not a T3 controller: only T3 panels keep labels, ranges and auto/manual in their registers, so there is nothing to sync.',
  device_unreadable:
    'The controller did not answer, so its configuration cannot be compared. Check that it is online (see its status above) and try again.',
  not_a_panel: 'This device is not a T3 panel, so a .prog file cannot be applied to it. Choose a T3 controller.',
}

/** Codes whose server message says where the problem is (a byte offset, a table, a column): the
 * operator's lead, then that message. */
const LEADS: Record<string, string> = {
  invalid_prog_file: 'This is not a T3000 panel file this server can read',
  not_sqlite: 'This is not a T3000 WebView database (not an SQLite file)',
  not_webview_schema: 'This database is not laid out like T3000 WebView\'s',
  invalid_csv: 'The file has mistakes; nothing was imported',
  invalid_choice: 'A choice in the table is not one the controller can take',
}

/** Statuses worth the same request again: no answer, a timeout, too many requests, a server failure. */
function retryableStatus(status: number): boolean {
  return status === 0 || status === 408 || status === 429 || status >= 500
}

/** A server message made readable: code quotes (`9999`) become plain quotes, the first letter is a capital. */
export function tidy(message: string): string {
  const s = message.replace(/`([^`]*)`/g, '"$1"').trim()
  return s ? s[0].toUpperCase() + s.slice(1) : s
}

/** What `e` (an ApiError, another Error, anything thrown) means for the person at the screen. */
export function explain(e: unknown): Problem {
  if (e instanceof Problem) return e
  if (e instanceof ApiError) {
    const detail = e.status ? `HTTP ${e.status} · ${e.code}: ${e.message}` : e.message
    const words = WORDS[e.code] ?? (e.status === 403 ? WORDS.forbidden : e.status === 401 ? WORDS.unauthorized : undefined)
    if (words) return new Problem(words, detail, retryableStatus(e.status))
    const lead = LEADS[e.code]
    if (lead) return new Problem(`${lead}: ${tidy(e.message).replace(/\.$/, '')}.`, detail, false)
    if (e.status === 404) return new Problem(`${tidy(e.message).replace(/\.$/, '')}. It may have been deleted or renamed.`, detail, false)
    if (e.status >= 500) return new Problem(WORDS.internal, detail, true)
    return new Problem(tidy(e.message), detail, retryableStatus(e.status))
  }
  if (e instanceof Error) return new Problem(tidy(e.message), null, false)
  return new Problem(tidy(String(e)), null, false)
}

/** The operator's text of `e` (see `explain`). */
export function errorText(e: unknown): string {
  return explain(e).text
}

/** A problem the page itself found (a form field left empty), in the page's own words. */
export function localProblem(text: string): Problem {
  return new Problem(text, null, false)
}

/** What a device's last error (the driver's words, `DeviceStatus.last_error`) means for the
 * operator; the driver's words stay in the tooltip. */
export function deviceErrorText(raw: string | null | undefined): string {
  if (!raw) return ''
  const m = /exception 0x([0-9a-f]{2})/i.exec(raw)
  if (m) {
    switch (parseInt(m[1], 16)) {
      case 0x01:
        return 'The device does not support a request it was sent (check its profile)'
      case 0x02:
        return 'The device has no register the profile asks for (check its profile or firmware)'
      case 0x03:
        return 'The device refused a value it was sent'
      case 0x05:
      case 0x06:
        return 'The device is busy; it is asked again'
      case 0x0a:
      case 0x0b:
        return 'The gateway cannot reach the device behind it'
      default:
        return 'The device reported a fault'
    }
  }
  if (/^no answer within/i.test(raw)) return 'No answer from the device'
  if (/^connection failed/i.test(raw)) return 'Cannot connect to the device'
  if (/^invalid reply/i.test(raw)) return 'The device sent a garbled reply (noise on the line, or another device with the same address)'
  if (/^write not confirmed/i.test(raw)) return 'A written value did not stick'
  return tidy(raw)
}
