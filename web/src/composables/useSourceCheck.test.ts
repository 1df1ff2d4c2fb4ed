// The check while typing: debounced, an older answer never over a newer text, failures said.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { effectScope, nextTick, ref } from 'vue'
import { ApiError } from '../api/client'
import type { ProgramCheck } from '../api/types'
import { useSourceCheck } from './useSourceCheck'
import type { usePrograms } from './usePrograms'

interface Pending {
  source: string
  device: number
  signal: AbortSignal
  answer: (c: ProgramCheck) => void
  fail: (e: unknown) => void
}

let calls: Pending[]
function fakePrograms() {
  return {
    check: (source: string, device: number, signal?: AbortSignal) =>
      new Promise<ProgramCheck>((answer, fail) => calls.push({ source, device, signal: signal!, answer, fail })),
  } as unknown as ReturnType<typeof usePrograms>
}

beforeEach(() => {
  calls = []
  vi.useFakeTimers()
})
afterEach(() => {
  vi.useRealTimers()
})

async function settle() {
  await nextTick()
  await Promise.resolve()
  await Promise.resolve()
}

describe('useSourceCheck', () => {
  it('checks once typing pauses, and marks the error the server found', async () => {
    const scope = effectScope()
    const source = ref('10 END')
    const device = ref<number | null>(1)
    const c = scope.run(() => useSourceCheck(source, device, 400, fakePrograms()))!
    source.value = '10 IF X'
    await nextTick()
    vi.advanceTimersByTime(200)
    source.value = '10 IF X >'
    await nextTick()
    expect(c.checking.value).toBe(true)
    vi.advanceTimersByTime(399)
    expect(calls).toHaveLength(0)
    vi.advanceTimersByTime(1)
    expect(calls).toHaveLength(1)
    expect(calls[0]).toMatchObject({ source: '10 IF X >', device: 1 })
    calls[0].answer({ ok: false, error: { line: 1, column: 10, message: 'line 1, column 10: expected an expression, found the end of the line' } })
    await settle()
    expect(c.checking.value).toBe(false)
    expect(c.mark.value).toEqual({ line: 1, column: 10, message: 'expected an expression, found the end of the line', kind: 'syntax' })
    expect(c.okFor.value).toBeNull()
    scope.stop()
  })

  it('drops the answer to an older text: a newer change cancels the check on its way', async () => {
    const scope = effectScope()
    const source = ref('')
    const device = ref<number | null>(1)
    const c = scope.run(() => useSourceCheck(source, device, 400, fakePrograms()))!
    source.value = '10 IF X'
    await nextTick()
    vi.advanceTimersByTime(400)
    expect(calls).toHaveLength(1)
    source.value = '10 IF X THEN END'
    await nextTick()
    expect(calls[0].signal.aborted).toBe(true)
    // The old answer comes anyway: ignored.
    calls[0].answer({ ok: false, error: { line: 1, column: 8, message: 'expected THEN' } })
    await settle()
    expect(c.mark.value).toBeNull()
    vi.advanceTimersByTime(400)
    expect(calls).toHaveLength(2)
    calls[1].answer({ ok: true })
    await settle()
    expect(c.mark.value).toBeNull()
    expect(c.okFor.value).toBe('10 IF X THEN END')
    scope.stop()
  })

  it('checks again when the device changes; says a failed check; a save mark stays until the next change', async () => {
    const scope = effectScope()
    const source = ref('10 VAR1 = 1')
    const device = ref<number | null>(1)
    const c = scope.run(() => useSourceCheck(source, device, 400, fakePrograms()))!
    device.value = 2
    await nextTick()
    vi.advanceTimersByTime(400)
    expect(calls[0]).toMatchObject({ device: 2 })
    calls[0].fail(new ApiError(0, 'network', 'the server cannot be reached (Failed to fetch)'))
    await settle()
    expect(c.failure.value?.text).toMatch(/cannot be reached/)
    expect(c.checking.value).toBe(false)

    c.show({ line: 1, column: 4, message: 'no point VAR1 on floor2-vav', kind: 'syntax' })
    expect(c.mark.value?.message).toBe('no point VAR1 on floor2-vav')
    source.value = '10 VAR2 = 1'
    await nextTick()
    vi.advanceTimersByTime(400)
    calls[1].answer({ ok: true })
    await settle()
    expect(c.mark.value).toBeNull()
    expect(c.failure.value).toBeNull()

    // An empty text, or no device, is not sent.
    source.value = '  '
    await nextTick()
    vi.advanceTimersByTime(400)
    await settle()
    expect(calls).toHaveLength(2)
    scope.stop()
  })
})
