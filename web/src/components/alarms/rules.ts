// Alarm rules (GET/POST/PUT/DELETE /api/t3000/alarms/rules) in words.
import type { AlarmCondition } from '../../api/types'

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
