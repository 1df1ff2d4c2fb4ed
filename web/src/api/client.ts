// The REST client: every request carries the session's bearer token; every failure becomes an
// ApiError with the server's JSON error code and message (or a network error), never a silent one.

export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
    /** The whole JSON error body, when the server sent more than code and message (a CSV's
     * `errors` list, by row and column). */
    public body: unknown = null,
  ) {
    super(message)
    this.name = 'ApiError'
  }
}

type TokenSource = () => string | null
type Unauthorized = () => void

let tokenOf: TokenSource = () => null
let onUnauthorized: Unauthorized = () => {}

/** Wires the client to the session (called once by the session store). */
export function configureClient(token: TokenSource, unauthorized: Unauthorized) {
  tokenOf = token
  onUnauthorized = unauthorized
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined | null>
  signal?: AbortSignal
  /** The response as a Blob (exports) instead of JSON. */
  blob?: boolean
  /** The type of a Blob body (an image), sent as it is instead of as JSON. */
  contentType?: string
}

/** Builds `path?query` leaving out undefined, null and empty values. */
export function withQuery(path: string, query?: RequestOptions['query']): string {
  if (!query) return path
  const qs = new URLSearchParams()
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined || v === null || v === '') continue
    qs.set(k, String(v))
  }
  const s = qs.toString()
  return s ? `${path}${path.includes('?') ? '&' : '?'}${s}` : path
}

export async function request<T>(method: string, path: string, body?: unknown, opts: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: opts.blob ? '*/*' : 'application/json' }
  const token = tokenOf()
  if (token) headers.Authorization = `Bearer ${token}`
  const raw = body instanceof Blob
  if (body !== undefined) headers['Content-Type'] = raw ? opts.contentType || body.type : 'application/json'
  let resp: Response
  try {
    resp = await fetch(withQuery(path, opts.query), {
      method,
      headers,
      body: body === undefined ? undefined : raw ? body : JSON.stringify(body),
      signal: opts.signal,
    })
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e
    throw new ApiError(0, 'network', `the server cannot be reached (${(e as Error).message})`)
  }
  if (!resp.ok) {
    let code = `http_${resp.status}`
    let message = resp.statusText || `HTTP ${resp.status}`
    let body: unknown = null
    try {
      const j = await resp.json()
      if (j?.error) {
        code = j.error.code ?? code
        message = j.error.message ?? message
        body = j
      }
    } catch {
      // Not JSON: keep the status line.
    }
    if (resp.status === 401 && token) onUnauthorized()
    throw new ApiError(resp.status, code, message, body)
  }
  if (opts.blob) return (await resp.blob()) as T
  if (resp.status === 204) return undefined as T
  const text = await resp.text()
  return (text ? JSON.parse(text) : undefined) as T
}

export const api = {
  get: <T>(path: string, opts?: RequestOptions) => request<T>('GET', path, undefined, opts),
  post: <T>(path: string, body?: unknown, opts?: RequestOptions) => request<T>('POST', path, body ?? {}, opts),
  put: <T>(path: string, body: unknown, opts?: RequestOptions) => request<T>('PUT', path, body, opts),
  /** PUT of a raw body (an image) of type `contentType`. */
  putRaw: <T>(path: string, body: Blob, contentType: string) => request<T>('PUT', path, body, { contentType }),
  delete: <T = void>(path: string, opts?: RequestOptions) => request<T>('DELETE', path, undefined, opts),
}

/** The API's base path. */
export const API = '/api/t3000'
