// Plugin protocols in the device form, the discovery wizard and the lists: which protocols a
// server offers, a plugin key's input, the body of a plugin device, the server's errors by key,
// and discovery options typed as `key = value` lines.
import type { Device, DeviceBody, PluginKey, PluginProtocol, Plugins } from '../../api/types'

/** A protocol the device form and the wizard offer. */
export interface ProtocolChoice {
  value: string
  title: string
  /** The plugin's description of its protocol (none for Modbus). */
  plugin: PluginProtocol | null
}

export const MODBUS_CHOICES: ProtocolChoice[] = [
  { value: 'modbus-tcp', title: 'Modbus TCP', plugin: null },
  { value: 'modbus-rtu', title: 'Modbus RTU (serial)', plugin: null },
]

/** Modbus TCP and RTU, then every loaded plugin's protocol by name (its title shown). */
export function protocolChoices(plugins: Plugins | null | undefined): ProtocolChoice[] {
  const loaded = (plugins?.plugins ?? [])
    .filter((p) => p.state === 'loaded' && p.name && p.protocol)
    .map((p) => ({ value: p.name!, title: `${p.protocol!.title} (plugin)`, plugin: p.protocol! }))
    .sort((a, b) => a.value.localeCompare(b.value))
  return [...MODBUS_CHOICES, ...loaded]
}

export function isModbus(protocol: string): boolean {
  return protocol === 'modbus-tcp' || protocol === 'modbus-rtu'
}

/** The input a plugin key gets. */
export function keyInput(key: Pick<PluginKey, 'type'>): 'number' | 'checkbox' | 'text' {
  if (key.type === 'integer' || key.type === 'number') return 'number'
  if (key.type === 'boolean') return 'checkbox'
  return 'text'
}

/** A key's default as a placeholder (`""` when it has none). */
export function placeholderOf(key: Pick<PluginKey, 'default' | 'type'>): string {
  if (key.default === null || key.default === undefined) return ''
  return Array.isArray(key.default) ? key.default.join(', ') : String(key.default)
}

/** Keys the server reads itself; a plugin that names one gets the form's own field. */
export const COMMON_KEYS = ['name', 'ip_address', 'port', 'timeout_ms']

/** The plugin's own keys (those the form has no common field for). */
export function ownKeys(p: PluginProtocol | null): PluginKey[] {
  return (p?.keys ?? []).filter((k) => !COMMON_KEYS.includes(k.name) && k.name !== 'retries')
}

/** A key the device cannot do without: required and without a default. */
export function isRequired(key: Pick<PluginKey, 'required' | 'default'>): boolean {
  return key.required && (key.default === null || key.default === undefined)
}

/** A form value of a plugin key: text, a number input's value, or a checkbox's. */
export type KeyValue = string | number | boolean | null | undefined

/**
 * The values of a plugin's own keys as the server takes them, or the errors by key. Empty fields
 * are left out (the plugin's default applies); a checkbox is sent only when it differs from the
 * key's default.
 */
export function keyValues(keys: PluginKey[], values: Record<string, KeyValue>): { values: Record<string, unknown>; errors: Record<string, string> } {
  const out: Record<string, unknown> = {}
  const errors: Record<string, string> = {}
  for (const k of keys) {
    const v = values[k.name]
    if (k.type === 'boolean') {
      const on = v === true
      if (on !== (k.default === true)) out[k.name] = on
      continue
    }
    const text = v === null || v === undefined ? '' : String(v).trim()
    if (text === '') {
      if (isRequired(k)) errors[k.name] = 'is required'
      continue
    }
    if (k.type === 'integer' || k.type === 'number') {
      const n = Number(text)
      if (!Number.isFinite(n) || (k.type === 'integer' && !Number.isInteger(n))) errors[k.name] = k.type === 'integer' ? 'must be a whole number' : 'must be a number'
      else out[k.name] = n
    } else if (k.type === 'array') {
      out[k.name] = text.split(/\s*,\s*/).filter(Boolean).map((x) => (/^-?\d+(\.\d+)?$/.test(x) ? Number(x) : x))
    } else {
      out[k.name] = text
    }
  }
  return { values: out, errors }
}

/** A device's plugin key values as the form shows them (arrays as `a, b`). */
export function formValues(keys: PluginKey[], options: Record<string, unknown> | undefined): Record<string, KeyValue> {
  const out: Record<string, KeyValue> = {}
  for (const k of keys) {
    const v = options?.[k.name]
    if (k.type === 'boolean') out[k.name] = v === undefined ? k.default === true : v === true
    else if (Array.isArray(v)) out[k.name] = v.join(', ')
    else out[k.name] = v === undefined || v === null ? '' : (v as string | number)
  }
  return out
}

/**
 * Which field a server error names: `seed: must be an integer` (422 `invalid_device`, the key
 * first) gives `{ key: 'seed', message: 'must be an integer' }`.
 */
export function errorField(message: string | null | undefined): { key: string; message: string } | null {
  const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:\[\d+\])?(?:\.[A-Za-z0-9_.[\]]+)?: (.+)$/s.exec(message ?? '')
  return m ? { key: m[1], message: m[2] } : null
}

/** A plugin device's options for people: `seed=3, fail_reads=true` (`—` when none). */
export function optionsSummary(options: Record<string, unknown> | undefined): string {
  const entries = Object.entries(options ?? {})
  if (!entries.length) return '—'
  return entries.map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(', ')
}

/**
 * Discovery options typed as lines `key = value` (or `key: value`): a value is JSON when it
 * parses (`47808`, `true`, `"x"`, `[1,2]`), else the text. Throws with the line for people.
 */
export function parseOptions(text: string): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const raw of text.split(/\r?\n|;/)) {
    const line = raw.trim()
    if (!line || line.startsWith('#')) continue
    const m = /^([A-Za-z_][A-Za-z0-9_-]*)\s*[=:]\s*(.*)$/.exec(line)
    if (!m) throw new Error(`options: \`${line}\` is not of the form key = value`)
    const value = m[2].trim()
    let parsed: unknown = value
    try {
      parsed = JSON.parse(value)
    } catch {
      parsed = value
    }
    out[m[1]] = parsed
  }
  return out
}

/** Example discovery options of the plugins this project ships (empty for others). */
export function discoveryExample(protocol: string): string {
  if (protocol === 'bacnet-ip') return 'port = 47808\nbroadcast = "255.255.255.255"\nlow = 0\nhigh = 4194303\ntimeout_ms = 3000'
  return ''
}

/** The body that adds a device a plugin found: its `config` (with `protocol`), a name and a type. */
export function foundDeviceBody(config: Record<string, unknown>, name: string, deviceType: string): DeviceBody {
  return { ...config, name: name.trim(), device_type: deviceType.trim() || 'controller' } as DeviceBody
}

/** A name for a found device that no device has yet (`Example AHU`, `Example AHU 2`, ...). */
export function uniqueName(base: string, taken: Set<string>): string {
  const clean = base.trim().slice(0, 60) || 'device'
  let name = clean
  for (let i = 2; taken.has(name); i++) name = `${clean} ${i}`
  return name
}

/** Whether a device is served by a plugin. */
export function isPluginDevice(d: Pick<Device, 'protocol'>): boolean {
  return !isModbus(d.protocol)
}
