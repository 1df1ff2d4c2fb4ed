import { describe, expect, test } from 'vitest'
import type { PluginKey, Plugins } from '../../api/types'
import { errorField, foundDeviceBody, formValues, isRequired, keyInput, keyValues, ownKeys, parseOptions, placeholderOf, protocolChoices, uniqueName } from './plugins'

const key = (name: string, type: string, required = false, def: unknown = null): PluginKey => ({ name, type, required, default: def, description: `${name} help` })
const example = { title: 'Example (C)', description: 'sim', discovery: true, writes: true, keys: [key('seed', 'integer'), key('fail_reads', 'boolean', false, false)] }
const plugins: Plugins = {
  abi: '1.0',
  plugins: [
    { file: '/p/libt3_example.so', state: 'loaded', name: 'example-c', version: '1.0.0', abi: '1.0', reason: null, protocol: example },
    { file: '/p/libold.so', state: 'refused', name: 'old', version: '0.1', abi: '0.9', reason: 'ABI 0.9', protocol: null },
  ],
}

describe('protocol choices', () => {
  test('Modbus first, then the loaded plugins by their title; refused ones are not offered', () => {
    expect(protocolChoices(plugins).map((c) => [c.value, c.title])).toEqual([
      ['modbus-tcp', 'Modbus TCP'],
      ['modbus-rtu', 'Modbus RTU (serial)'],
      ['example-c', 'Example (C) (plugin)'],
    ])
    expect(protocolChoices(null).length).toBe(2)
  })
})

describe('plugin keys', () => {
  test('inputs by type, default as placeholder, required only without a default', () => {
    expect(['integer', 'number', 'boolean', 'string', 'array'].map((t) => keyInput({ type: t }))).toEqual(['number', 'number', 'checkbox', 'text', 'text'])
    expect(placeholderOf(key('p', 'integer', false, 47808))).toBe('47808')
    expect(placeholderOf(key('p', 'integer'))).toBe('')
    expect(isRequired(key('a', 'integer', true))).toBe(true)
    expect(isRequired(key('a', 'integer', true, 5))).toBe(false)
  })
  test('the common keys keep the form fields of their own', () => {
    const keys = [key('ip_address', 'string', true), key('port', 'integer'), key('device_instance', 'integer', true), key('retries', 'integer'), key('name', 'string')]
    expect(ownKeys({ ...example, keys }).map((k) => k.name)).toEqual(['device_instance'])
  })
  test('values typed, empty ones left out, a checkbox sent when not its default', () => {
    const keys = [key('seed', 'integer'), key('fail_reads', 'boolean', false, false), key('ratio', 'number'), key('tag', 'string'), key('list', 'array')]
    expect(keyValues(keys, { seed: '3', fail_reads: true, ratio: 0.5, tag: ' x ', list: '1, a' }).values).toEqual({ seed: 3, fail_reads: true, ratio: 0.5, tag: 'x', list: [1, 'a'] })
    expect(keyValues(keys, { seed: '', fail_reads: false }).values).toEqual({})
  })
  test('errors by key: a required key left empty, a number that is not one', () => {
    const keys = [key('device_instance', 'integer', true), key('seed', 'integer'), key('ratio', 'number')]
    expect(keyValues(keys, { seed: '1.5', ratio: 'x' }).errors).toEqual({ device_instance: 'is required', seed: 'must be a whole number', ratio: 'must be a number' })
  })
  test('a device\'s options back in the form', () => {
    expect(formValues(example.keys, { seed: 4 })).toEqual({ seed: 4, fail_reads: false })
    expect(formValues([key('list', 'array')], { list: [1, 2] })).toEqual({ list: '1, 2' })
  })
  test('the server\'s 422 names the key', () => {
    expect(errorField('seed: must be an integer')).toEqual({ key: 'seed', message: 'must be an integer' })
    expect(errorField('points[0].name: point `X` is listed twice')).toEqual({ key: 'points', message: 'point `X` is listed twice' })
    expect(errorField('the example-c plugin did not answer')).toBeNull()
  })
})

describe('discovery', () => {
  test('options as key = value lines, JSON when it parses', () => {
    expect(parseOptions('port = 47808\nbroadcast: 10.0.0.255\n# note\nactive = true; name = "x"')).toEqual({ port: 47808, broadcast: '10.0.0.255', active: true, name: 'x' })
    expect(parseOptions('')).toEqual({})
    expect(() => parseOptions('just text')).toThrow(/key = value/)
  })
  test('a found device is added from its config with a unique name', () => {
    expect(foundDeviceBody({ seed: 0, protocol: 'example-c' }, ' AHU ', '')).toEqual({ seed: 0, protocol: 'example-c', name: 'AHU', device_type: 'controller' })
    expect(uniqueName('Example AHU', new Set(['Example AHU', 'Example AHU 2']))).toBe('Example AHU 3')
  })
})
