// The server's WebSocket messages (/api/t3000/ws; api/src/ws.rs, described by
// /api/t3000/ws/schema.json), declared once beside the REST shapes (types.ts). The connection
// that carries them is composables/useWebSocket.ts.
//
// The plan's fields keep the plan's types: times (`timestamp`, `last_seen`, `next_run`) are epoch
// milliseconds (0: none), `quality` the OPC byte, `severity` a number; the same facts in other
// forms have names of their own (`time`, `quality_name`, `severity_name`, ...).
export interface PointUpdate {
  type: 'PointUpdate'
  point_id: number
  point_type: string
  device_id?: number | null
  /** 0 when the sample carries no value (`has_value` false). */
  value: number
  has_value: boolean
  /** Epoch milliseconds. */
  timestamp: number
  ts_us: number
  /** RFC 3339. */
  time: string
  /** The OPC quality byte. */
  quality: number
  /** `good`, `good/local_override`, `bad/comm_failure`, ... */
  quality_name: string
  snapshot: boolean
}

/** A point update's value, null when the sample carries none. */
export function liveValue(u: PointUpdate): number | null {
  return u.has_value ? u.value : null
}

export interface DeviceStatus {
  type: 'DeviceStatus'
  device_id: number
  name: string
  online: boolean
  state: string
  /** Epoch milliseconds; 0 when it never answered. */
  last_seen: number
  last_seen_time: string | null
  connection_quality: number
  rtt_ms: number | null
  last_error: string | null
  snapshot: boolean
}
export interface AlarmNotification {
  type: 'AlarmNotification'
  alarm_id: number
  name: string
  /** 0 when none. */
  device_id: number
  /** 0 when none. */
  point_id: number
  alarm_type: string
  state: string
  level: string
  /** The rule's message, else its name. */
  message: string
  /** 2 critical, 1 warning. */
  severity: number
  severity_name: 'critical' | 'warning'
  value: number | null
  by: string | null
  /** Epoch milliseconds. */
  timestamp: number
  time: string
}
export interface ScheduleUpdate {
  type: 'ScheduleUpdate'
  schedule_id: number
  name: string
  change: string
  status: string
  on: boolean
  /** Epoch milliseconds; 0 when no change is ahead. */
  next_run: number
  next_run_time: string | null
  timestamp: number
  time: string
}
/** A program was created, changed or deleted, or its state changed (status, error, enabled);
 * not sent for every scan. */
export interface ProgramUpdate {
  type: 'ProgramUpdate'
  program_id: number
  name: string
  change: 'created' | 'updated' | 'deleted' | 'state'
  /** `deleted` with `change: deleted`. */
  status: 'running' | 'stopped' | 'error' | 'deleted'
  enabled: boolean
  error: { line_number: number; line: number; column: number; message: string } | null
  /** The last scan: RFC 3339 or epoch milliseconds; null (or 0) before the first. */
  last_scan: string | number | null
  scan_us: number | null
  /** Epoch milliseconds. */
  timestamp: number
  time: string
}
export interface SystemStatus {
  type: 'SystemStatus'
  active_devices: number
  total_devices: number
  active_points: number
  collection_rate: number
  ingest_rate: number
  /** The errors of the interval, one line per source. */
  system_errors: string[]
  error_count: number
  websocket_clients: number
  interval_secs: number
  /** Epoch milliseconds. */
  timestamp: number
  time: string
}
export interface Welcome {
  type: 'Welcome'
  username: string
  role: string
  server_version: string
  ping_interval_secs: number
  client_timeout_secs: number
  queue_messages: number
}
export interface ErrorMessage {
  type: 'Error'
  request_id: unknown
  code: string
  message: string
}
export type ServerMessage =
  | PointUpdate
  | DeviceStatus
  | AlarmNotification
  | ScheduleUpdate
  | ProgramUpdate
  | SystemStatus
  | Welcome
  | ErrorMessage
  | Reply<'Subscribed'>
  | Reply<'Unsubscribed'>
  | Reply<'Pong'>
  | Reply<'AlarmAcknowledged'>
  | Reply<'ValueWritten'>
  | { type: 'Lagged'; missed: number }
  | { type: 'PointUpdates'; updates: PointUpdate[] }

/** The answer to a client message (its fields: see /api/t3000/ws/schema.json). */
export interface Reply<T extends string> {
  type: T
  request_id: unknown
  [k: string]: unknown
}
