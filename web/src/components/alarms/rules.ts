// Alarm rules as the API stores them (GET/POST/PUT/DELETE /api/t3000/alarms/rules).

export type AlarmCondition =
  | { kind: 'limits'; waylow?: number | null; low?: number | null; high?: number | null; wayhigh?: number | null; deadband?: number }
  | { kind: 'digital'; alarm_when: boolean }
  | { kind: 'device_offline' }

export interface AlarmRule {
  id: number
  name: string
  point_id: number | null
  device_id: number | null
  rule: { condition: AlarmCondition; delay_secs: number; message: string | null }
  enabled: boolean
  updated_us: number
}

export type RuleBody = Omit<AlarmRule, 'id' | 'updated_us'>

/** One line for people: `≥ 30 (high), ≥ 35 (way high); deadband 0.5`. */
export function conditionText(c: AlarmCondition): string {
  if (c.kind === 'digital') return `when ${c.alarm_when ? 'on' : 'off'}`
  if (c.kind === 'device_offline') return 'device does not answer'
  const parts: string[] = []
  if (c.waylow !== null && c.waylow !== undefined) parts.push(`≤ ${c.waylow} way low`)
  if (c.low !== null && c.low !== undefined) parts.push(`≤ ${c.low} low`)
  if (c.high !== null && c.high !== undefined) parts.push(`≥ ${c.high} high`)
  if (c.wayhigh !== null && c.wayhigh !== undefined) parts.push(`≥ ${c.wayhigh} way high`)
  return parts.join(', ') + (c.deadband ? `; deadband ${c.deadband}` : '')
}

/** `90 s`, `5 min`, `2 h`, or `at once`. */
export function delayText(s: number): string {
  if (!s) return 'at once'
  if (s % 3600 === 0) return `${s / 3600} h`
  if (s % 60 === 0) return `${s / 60} min`
  return `${s} s`
}
