// Quality and state classes: one answer on every page.
import { describe, expect, it } from 'vitest'
import { connectionClass, DEVICE_HEALTH, deviceBadge, deviceHealth, qualityClass, qualityText } from './quality'

describe('quality classes', () => {
  it('good is ok, uncertain is warn, bad is bad, none is plain', () => {
    expect(qualityClass('good')).toBe('ok')
    expect(qualityClass('uncertain')).toBe('warn')
    expect(qualityClass('uncertain/last_usable')).toBe('warn')
    expect(qualityClass('bad')).toBe('bad')
    expect(qualityClass('bad/comm_failure')).toBe('bad')
    expect(qualityClass(null)).toBe('')
    expect(qualityClass(undefined)).toBe('')
  })
  it('a good value an operator forced at the controller (local override) is flagged, not bad', () => {
    expect(qualityClass('good/local_override')).toBe('warn')
  })
})

describe('connection quality', () => {
  it('by the whole percentage shown: 95 % ok, 70 % warn, less bad', () => {
    expect(connectionClass(1)).toBe('ok')
    expect(connectionClass(0.947)).toBe('ok') // shown as 95 %
    expect(connectionClass(0.944)).toBe('warn') // shown as 94 %
    expect(connectionClass(0.7)).toBe('warn')
    expect(connectionClass(0.69)).toBe('bad')
    expect(connectionClass(null)).toBe('')
  })
})

describe('device badges', () => {
  it('online, connecting, offline, disabled and unknown', () => {
    expect(deviceBadge({ online: true, state: 'online' })).toEqual({ cls: 'ok', text: 'online' })
    expect(deviceBadge({ online: false, state: 'connecting' })).toEqual({ cls: 'warn', text: 'connecting' })
    expect(deviceBadge({ online: false, state: 'offline' })).toEqual({ cls: 'bad', text: 'offline' })
    expect(deviceBadge({ online: false, state: '' })).toEqual({ cls: 'bad', text: 'offline' })
    expect(deviceBadge({ online: false, state: 'disabled' })).toEqual({ cls: '', text: 'disabled' })
    expect(deviceBadge(null)).toEqual({ cls: '', text: 'unknown' })
    // Answering, but its last poll had errors.
    expect(deviceBadge({ online: true, state: 'online', lastError: 'exception 0x02' })).toEqual({ cls: 'warn', text: 'error' })
  })
})

describe('device health', () => {
  it('online, in error, offline, connecting and disabled', () => {
    expect(deviceHealth({ online: true, state: 'online', lastError: null })).toBe('online')
    expect(deviceHealth({ online: true, state: 'online', lastError: 'exception 0x02' })).toBe('error')
    expect(deviceHealth({ online: false, state: 'offline', lastError: 'connection refused' })).toBe('offline')
    expect(deviceHealth({ online: false, state: 'connecting' })).toBe('connecting')
    expect(deviceHealth({ online: false, state: 'disabled', lastError: 'old' })).toBe('disabled')
    expect(DEVICE_HEALTH.map((h) => h.value)).toEqual(['online', 'error', 'offline', 'connecting', 'disabled'])
  })
})

describe('qualityText', () => {
  it('words every quality the server names, and keeps unknown sub-statuses readable', () => {
    expect(qualityText('good')).toBe('OK')
    expect(qualityText('good/local_override')).toMatch(/^Manual/)
    expect(qualityText('bad/comm_failure')).toBe('No communication with the device')
    expect(qualityText('uncertain/something_new')).toBe('Uncertain')
    expect(qualityText(null)).toBe('')
    for (const q of ['good', 'good/local_override', 'uncertain', 'uncertain/last_usable', 'uncertain/sensor_not_accurate', 'uncertain/out_of_range', 'uncertain/sub_normal', 'bad', 'bad/config_error', 'bad/not_connected', 'bad/device_failure', 'bad/sensor_failure', 'bad/last_known', 'bad/comm_failure', 'bad/out_of_service'])
      expect(qualityText(q)).not.toMatch(/[/_]/)
  })
})
