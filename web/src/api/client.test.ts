// The REST client: bearer token, JSON error mapping, the unauthorized callback, withQuery.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { api, ApiError, configureClient, request, withQuery } from './client'

let token: string | null
let unauthorized: ReturnType<typeof vi.fn>
let fetchMock: ReturnType<typeof vi.fn>

function respond(status: number, body?: unknown, init: { statusText?: string; raw?: string } = {}) {
  const text = init.raw ?? (body === undefined ? '' : JSON.stringify(body))
  return new Response(status === 204 ? null : text, { status, statusText: init.statusText ?? '' })
}

beforeEach(() => {
  token = 'tok'
  unauthorized = vi.fn()
  configureClient(() => token, unauthorized as unknown as () => void)
  fetchMock = vi.fn()
  vi.stubGlobal('fetch', fetchMock)
})
afterEach(() => {
  vi.unstubAllGlobals()
})

describe('withQuery', () => {
  it('leaves out undefined, null and empty values and encodes the rest', () => {
    expect(withQuery('/p')).toBe('/p')
    expect(withQuery('/p', {})).toBe('/p')
    expect(withQuery('/p', { a: undefined, b: null, c: '' })).toBe('/p')
    expect(withQuery('/p', { a: 1, b: true, c: 'x y&z', d: 0, e: false })).toBe('/p?a=1&b=true&c=x+y%26z&d=0&e=false')
  })

  it('appends to a path that already has a query', () => {
    expect(withQuery('/p?x=1', { y: 2 })).toBe('/p?x=1&y=2')
  })
})

describe('request', () => {
  it('sends the bearer token and a JSON body, and parses the JSON answer', async () => {
    fetchMock.mockResolvedValue(respond(200, { ok: 1 }))
    await expect(api.put('/api/x', { a: 1 }, { query: { q: 'v' } })).resolves.toEqual({ ok: 1 })
    const [url, init] = fetchMock.mock.calls[0]
    expect(url).toBe('/api/x?q=v')
    expect(init.method).toBe('PUT')
    expect(init.headers).toMatchObject({ Authorization: 'Bearer tok', 'Content-Type': 'application/json', Accept: 'application/json' })
    expect(init.body).toBe('{"a":1}')
  })

  it('sends a Blob (an image) as it is, with its content type', async () => {
    fetchMock.mockResolvedValue(respond(200, { bytes: 3 }))
    const image = new Blob(['<svg/>'])
    await expect(api.putRaw('/api/plan', image, 'image/svg+xml')).resolves.toEqual({ bytes: 3 })
    const [, init] = fetchMock.mock.calls[0]
    expect(init.method).toBe('PUT')
    expect(init.headers).toMatchObject({ Authorization: 'Bearer tok', 'Content-Type': 'image/svg+xml' })
    expect(init.body).toBe(image)
  })

  it('sends no Authorization without a session, and no body for GET', async () => {
    token = null
    fetchMock.mockResolvedValue(respond(200, []))
    await api.get('/api/x')
    const [, init] = fetchMock.mock.calls[0]
    expect(init.headers).not.toHaveProperty('Authorization')
    expect(init.headers).not.toHaveProperty('Content-Type')
    expect(init.body).toBeUndefined()
  })

  it('posts an empty object when no body is given', async () => {
    fetchMock.mockResolvedValue(respond(200, {}))
    await api.post('/api/x')
    expect(fetchMock.mock.calls[0][1].body).toBe('{}')
  })

  it('answers undefined for 204 and for an empty body', async () => {
    fetchMock.mockResolvedValueOnce(respond(204))
    await expect(api.delete('/api/x')).resolves.toBeUndefined()
    fetchMock.mockResolvedValueOnce(respond(200))
    await expect(api.get('/api/x')).resolves.toBeUndefined()
  })

  it("maps the server's JSON error to an ApiError with its status, code and message", async () => {
    fetchMock.mockResolvedValue(respond(422, { error: { code: 'invalid_rule', message: 'rule.condition.high: must be above low' } }))
    const e = await api.post('/api/x', {}).catch((x: unknown) => x)
    expect(e).toBeInstanceOf(ApiError)
    expect(e).toMatchObject({ status: 422, code: 'invalid_rule', message: 'rule.condition.high: must be above low', name: 'ApiError' })
    expect(unauthorized).not.toHaveBeenCalled()
  })

  it('keeps the status line when the error is not JSON', async () => {
    fetchMock.mockResolvedValue(respond(502, undefined, { raw: '<html>bad gateway</html>', statusText: 'Bad Gateway' }))
    await expect(api.get('/api/x')).rejects.toMatchObject({ status: 502, code: 'http_502', message: 'Bad Gateway' })
    fetchMock.mockResolvedValue(respond(500, { something: 'else' }))
    await expect(api.get('/api/x')).rejects.toMatchObject({ status: 500, code: 'http_500', message: 'HTTP 500' })
  })

  it('calls the unauthorized callback on a 401 to a request that carried a token', async () => {
    fetchMock.mockResolvedValue(respond(401, { error: { code: 'unauthorized', message: 'the token expired' } }))
    await expect(api.get('/api/x')).rejects.toMatchObject({ status: 401, message: 'the token expired' })
    expect(unauthorized).toHaveBeenCalledTimes(1)
  })

  it('does not call it for a 401 without a token (a wrong password at login)', async () => {
    token = null
    fetchMock.mockResolvedValue(respond(401, { error: { code: 'invalid_credentials', message: 'wrong user name or password' } }))
    await expect(api.post('/api/t3000/auth/login', {})).rejects.toMatchObject({ code: 'invalid_credentials' })
    expect(unauthorized).not.toHaveBeenCalled()
  })

  it('does not call it for a 403 (a role too low)', async () => {
    fetchMock.mockResolvedValue(respond(403, { error: { code: 'forbidden', message: 'needs the operator role' } }))
    await expect(api.post('/api/x')).rejects.toMatchObject({ status: 403, code: 'forbidden' })
    expect(unauthorized).not.toHaveBeenCalled()
  })

  it('turns a failed fetch into a network ApiError but passes an abort through', async () => {
    fetchMock.mockRejectedValueOnce(new TypeError('Failed to fetch'))
    await expect(api.get('/api/x')).rejects.toMatchObject({ status: 0, code: 'network', message: expect.stringContaining('Failed to fetch') })
    const abort = new DOMException('aborted', 'AbortError')
    fetchMock.mockRejectedValueOnce(abort)
    await expect(api.get('/api/x')).rejects.toBe(abort)
  })

  it('passes the abort signal on and answers a Blob when asked', async () => {
    fetchMock.mockResolvedValue(new Response('a,b\n1,2\n', { status: 200 }))
    const ctl = new AbortController()
    const b = await request<Blob>('GET', '/api/export', undefined, { blob: true, signal: ctl.signal })
    expect(await b.text()).toBe('a,b\n1,2\n')
    const [, init] = fetchMock.mock.calls[0]
    expect(init.signal).toBe(ctl.signal)
    expect(init.headers.Accept).toBe('*/*')
  })
})
