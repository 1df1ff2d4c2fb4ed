// The server's REST shapes, declared once for every page: what the handlers in
// api/src/routes/*.rs, api/src/schedules.rs, api/src/alarms.rs and api/src/auth.rs answer and
// take. Components keep only their own view types (rows, forms) next to them.

// ---- auth (api/src/auth.rs) -------------------------------------------------------------------

export type Role = 'viewer' | 'operator' | 'admin'

/** POST /auth/login (LoginResponse): the session the browser keeps. */
export interface Session {
  token: string
  username: string
  role: Role
  /** Epoch microseconds. */
  expires_us: number
}

// ---- lists (routes/mod.rs) --------------------------------------------------------------------

/** A page of a list: `items` from `offset`, `total` in all. */
export interface Paged<T> {
  items: T[]
  total: number
  offset: number
  limit: number
}

// ---- points (routes/points.rs, control.rs) ----------------------------------------------------

/** A point's trend (recording) settings. */
export interface TrendSettings {
  interval_ms: number | null
  deadband: number | null
  heartbeat_secs: number | null
  retention_days: number | null
  /** How charts draw the point between samples (in answers: the line in force). */
  line?: TrendLine
  /** In answers: whether `line` is the server's default for the point (nobody chose one). */
  line_default?: boolean
}

/** `step`: a value holds until the next sample; `linear`: straight lines between samples. */
export type TrendLine = 'step' | 'linear'

/**
 * A point as the server sends it (PointResponse): the plan's fields keep the plan's types, so
 * "none" comes as 0 (`device_id`, `point_number`, `value` with `has_value` false), `""` (`units`,
 * `label`) or the Unix epoch (`updated_at`). `pointFromWire` (points.ts) makes those null again.
 */
export interface WirePoint extends Omit<Point, 'device_id' | 'point_number' | 'value' | 'units' | 'label' | 'updated_at'> {
  device_id: number
  point_number: number
  value: number
  has_value: boolean
  units: string
  label: string
  updated_at: string
}

/** A point as the pages use it (`pointFromWire` of GET /points, GET /points/{id}, PUT /points/{id}). */
export interface Point {
  id: number
  device_id: number | null
  device: string | null
  /** `IN1`, `OUT3`, `VAR12`, a register name, or a manual point's name. */
  name: string
  point_number: number | null
  /** `input`, `output`, `variable`, `register` or `manual`. */
  point_type: string
  value: number | null
  /** The label's units, else the profile's, else those of the point's T3000 range. */
  units: string | null
  /** T3000's range (unit) code as the device reports it, else as the catalog has it configured (a .prog import, hardware sync). */
  range: number | null
  /** What the range means: units (`°C`, `0-10 V`) or a digital point's states (`Off/On`: the name of 0, then of 1). */
  range_name: string | null
  /** The names of a digital point's states, 0 then 1 (T3000's or its panel's custom texts), or a plugin point's; empty when none. */
  states?: string[]
  /** Whether the device (else the catalog's configuration) says the point is digital (a 0 / 1 value); null when nothing says. */
  digital: boolean | null
  label: string | null
  description: string | null
  /** True while the point is in manual (operator override at the device). */
  auto_manual: boolean
  /** Whether the point has an auto/manual switch at its controller (POST /points/{id}/mode). */
  has_auto_manual: boolean
  /** Quality of the latest value (`good`, `good/local_override`, `bad/comm_failure`, ...). */
  quality: string | null
  /** RFC 3339, UTC. */
  updated_at: string | null
  writable: boolean
  trend: TrendSettings
  /** What the point is: what the device measures, what an operator sets, or the device's set-up
   * (written by admins only). */
  class: PointClass
  /** The lowest / highest value a write may carry, in `units` (its register format, its stated
   * range, its range code: 0-100 for a percent output, 0-1 for a digital point); null when unbounded. */
  min: number | null
  max: number | null
}

/** `class` of a point (GET /points?class=). */
export type PointClass = 'measurement' | 'setpoint' | 'configuration'

/** A command in force on a point (GET /points/{id}/commands). */
export interface Command {
  value: number
  priority: number
  source: string
  issued_us: number
  expires_us?: number
}

/** Body of POST /points/{id}/value (WriteRequest): priority 8 (operator) unless told. */
export interface WriteRequest {
  value: number
  /** 1 (most important) ..= 16. */
  priority?: number
  /** Relinquish the command by itself after this many seconds. */
  expires_in_secs?: number
  /** Switch a point that is in auto to manual first instead of being refused (409 `point_in_auto`). */
  switch_to_manual?: boolean
}

/** POST /points/{id}/value and /relinquish. */
export interface WriteResult {
  point_id: number
  effective: { value: number; priority: number; source: string } | null
  written: boolean
  read_back: number | null
  switched_to_manual: boolean
}

/** Who drives a point with an auto/manual switch: its controller (`auto`) or nobody (`manual`). */
export type Mode = 'auto' | 'manual'

/** What POST /points/{id}/mode did (ModeResult). */
export interface ModeResult {
  point_id: number
  /** The mode now, as the controller reads it back. */
  mode: Mode
  previous: Mode
  /** Whether the controller was written (false: it was in that mode already). */
  changed: boolean
  /** The value read right after the change. */
  value: number | null
  /** Its quality name (`good`, `good/local_override`). */
  quality: string
  /** The commands cleared (back in auto the controller owns the value). */
  cleared: Command[]
}

/** A point in manual (GET /points/in-manual): who put it there and since when. */
export interface ManualPoint<P = Point> {
  point: P
  /** Put in manual at the controller (its panel, its program), not through this server. */
  at_controller: boolean
  /** Who put it in manual through this server (a user, `schedule:3`); null at the controller. */
  by: string | null
  remote: string | null
  /** `mode` (the auto/manual control) or `write` (a write that switched it). */
  via: string | null
  /** RFC 3339: the change here, or when the server first saw it in manual; null when not known. */
  since: string | null
  commands: Command[]
}

// ---- devices (routes/devices.rs) --------------------------------------------------------------

/** `modbus-tcp`, `modbus-rtu`, or the protocol of a loaded plugin (`bacnet-ip`, `example-c`). */
export type Protocol = 'modbus-tcp' | 'modbus-rtu' | (string & {})
export type Parity = 'none' | 'even' | 'odd'

/** The collector's view of a device (a device's `status`). */
export interface CollectorStatus {
  name: string
  protocol: string
  endpoint: string
  unit_id: number
  profile: string
  /** `connecting`, `online`, `offline`, `disabled`. */
  state: string
  online: boolean
  /** Epoch microseconds. */
  last_seen: number | null
  rtt_ms: number | null
  rtt_avg_ms: number | null
  polls: number
  failed_polls: number
  consecutive_failures: number
  timeouts: number
  exceptions: number
  protocol_errors: number
  connection_errors: number
  /** Share of the last polls that succeeded, 0 ..= 1. */
  connection_quality: number
  last_error: string | null
}

/** How a device is reached and polled: what a device and its `[[devices]]` table both have. */
export interface DeviceConnection {
  device_type: string
  protocol: Protocol
  ip_address: string | null
  /** 502 for Modbus TCP when not set; a plugin device's when set; null for Modbus RTU. */
  port: number | null
  serial_port: string | null
  baud_rate: number
  unit_id: number
  profile: string
  poll_interval_ms: number
  enabled: boolean
}

/** A `[[devices]]` table, as stored (a device's `config`). */
export interface DeviceConfig extends DeviceConnection {
  name: string
  parity: Parity
  timeout_ms: number | null
  max_registers: number | null
  max_gap: number | null
  one_request_per_point: boolean
  record: Record<string, unknown>
  points: unknown[]
  /** A plugin device's own keys (absent for Modbus). */
  options?: Record<string, unknown>
}

/** How many points of each type a device is polled for. */
export interface PointCounts {
  inputs: number
  outputs: number
  variables: number
  registers: number
  total: number
}

/** A device (DeviceResponse): GET /devices, GET /devices/{id}, POST, PUT. */
export interface Device extends DeviceConnection {
  id: number
  name: string
  /** Whether the device answers now. */
  online: boolean
  /** When it last answered (RFC 3339, UTC). */
  last_seen: string | null
  point_counts: PointCounts
  building_id: number | null
  floor_id: number | null
  room_id: number | null
  description: string | null
  /** `config` (the configuration file) or `api`. */
  source: string
  status: CollectorStatus | null
  config: DeviceConfig
  /** A plugin device's own keys (BACnet's `device_instance`); empty for Modbus. */
  options: Record<string, unknown>
}

/**
 * Body of POST /devices and PUT /devices/{id}: the `[[devices]]` fields (those left out take the
 * server's defaults) plus the place and description.
 */
export type DeviceBody = Pick<DeviceConfig, 'name'> &
  Partial<DeviceConfig> & {
    description?: string | null
    building_id?: number | null
    floor_id?: number | null
    room_id?: number | null
  } & {
    /** A plugin device's own keys: sent beside the others or here. */
    [key: string]: unknown
  }

/** What to scan (POST /devices/discover, DiscoverRequest): hosts on a TCP port, or a serial bus. */
export interface DiscoverRequest {
  protocol: Protocol
  hosts?: string[]
  port?: number
  serial_port?: string
  baud_rate?: number
  parity?: Parity
  /** By default 1 on TCP and 1 ..= 247 on RTU. */
  unit_ids?: number[]
  timeout_ms?: number
  /** A plugin protocol's discovery options (BACnet/IP: port, broadcast, low, high, timeout_ms). */
  options?: Record<string, unknown>
}

/** A Modbus unit a scan found. */
export interface ModbusFound {
  endpoint: string
  unit_id: number
  serial_number: number
  firmware: number
  product_model: number
  hardware_rev: number
  profile: string | null
}

/** A device a plugin found: its `config` (with `protocol`) adds it, with a name. */
export interface PluginFound {
  name: string
  address: string
  model: string | null
  vendor: string | null
  config: Record<string, unknown> & { protocol: string }
}

/** What a scan found (POST /devices/discover). */
export interface Discovered<F = ModbusFound> {
  found: F
  known_device_id: number | null
}

/** A point of a device (GET /devices/{id}/points). */
export interface DevicePoint {
  id: number
  name: string
  point_type: string
  /** `holding`, `input`, `coil`, `discrete_input`, or `plugin`. */
  register_kind: string
  /** Where a plugin point lives in its protocol's terms (BACnet: `analog-input,1`); null for Modbus. */
  object: string | null
  /** The names of a plugin point's states; empty otherwise. */
  states: string[]
  writable: boolean
  unit: string | null
}

/** A device's points (GET /devices/{id}/points). */
export interface DevicePoints {
  device_id: number
  device: string
  points: DevicePoint[]
}

// ---- protocol plugins (routes/plugins.rs) -------------------------------------------------------

/** One configuration key of a plugin protocol. */
export interface PluginKey {
  name: string
  /** `string`, `integer`, `number`, `boolean` or `array`. */
  type: string
  required: boolean
  default: unknown
  description: string
}

/** What a loaded plugin's protocol is. */
export interface PluginProtocol {
  title: string
  description: string
  /** It can look for devices. */
  discovery: boolean
  writes: boolean
  keys: PluginKey[]
}

/** A file found in a plugin folder, loaded or refused. */
export interface PluginInfo {
  file: string
  state: 'loaded' | 'refused'
  name: string | null
  version: string | null
  abi: string | null
  reason: string | null
  protocol: PluginProtocol | null
}

/** GET /plugins: the ABI of this server and every plugin file found at start. */
export interface Plugins {
  abi: string
  plugins: PluginInfo[]
}

/** A device profile (GET /profiles). */
export interface ProfileInfo {
  name: string
  description: string
  product_models: number[]
  points: number
}

// ---- buildings and floor plans (routes/buildings.rs, routes/floorplans.rs) --------------------

export interface Room {
  id: number
  floor_id: number
  name: string
  description: string | null
  updated_us: number
}

/** A floor's stored plan image. */
export interface PlanImage {
  content_type: string
  bytes: number
  updated_us: number
}

/** A badge on a floor plan: x and y are fractions (0..1) of the image's width and height. */
export interface PlanPoint {
  point_id: number
  x: number
  y: number
}

export interface Floor {
  id: number
  building_id: number
  name: string
  level: number
  description: string | null
  plan: PlanImage | null
  plan_points: PlanPoint[]
  rooms: Room[]
}

/** A building with its floors and their rooms (GET /buildings, GET /buildings/{id}). */
export interface Building {
  id: number
  name: string
  description: string | null
  address: string | null
  /** IANA time zone. */
  time_zone: string
  floors: Floor[]
}

// ---- alarms (api/src/alarms.rs) ---------------------------------------------------------------

export type AlarmCondition =
  | { kind: 'limits'; waylow?: number | null; low?: number | null; high?: number | null; wayhigh?: number | null; deadband?: number }
  | { kind: 'digital'; alarm_when: boolean }
  | { kind: 'device_offline' }

/** An alarm rule (GET/POST/PUT /alarms/rules). */
export interface AlarmRule {
  id: number
  name: string
  /** The point watched (limit and digital rules). */
  point_id: number | null
  /** The device watched (`device_offline` rules). */
  device_id: number | null
  rule: { condition: AlarmCondition; delay_secs: number; message: string | null }
  enabled: boolean
  updated_us: number
}

/** Body of POST / PUT of a rule. */
export type RuleBody = Omit<AlarmRule, 'id' | 'updated_us'>

/** GET /alarms: the present state of a rule's alarm. */
export interface AlarmView {
  rule_id: number
  name: string
  point_id: number | null
  device_id: number | null
  message: string | null
  /** `normal`, `active`, `acknowledged`, `cleared`. */
  state: string
  /** `waylow`, `low`, `high`, `wayhigh`, `state`, `offline`, `data_loss` (the built-in storage alarm, rule 0), `warning` or `fault` (the server's own faults, rules 4294967290 .. 4294967295). */
  level: string | null
  /** Since when it is in this state (epoch microseconds): after an acknowledgement, its time. */
  since_us: number | null
  /** When the present alarm was raised (epoch µs), kept through its acknowledgement; null when normal. */
  started_us?: number | null
  /** When the present alarm was acknowledged (epoch µs); null unless acknowledged. */
  acknowledged_us?: number | null
  /** Who acknowledged the present alarm; null unless acknowledged. */
  acknowledged_by?: string | null
}

/** One transition of an alarm (POST /alarms/{id}/ack). */
export interface AlarmEvent {
  rule_id: number
  name: string
  point_id: number | null
  device_id: number | null
  message: string | null
  transition: {
    at_us: number
    from: string
    to: string
    level: string
    value: number | null
    kind: { type: string; by?: string; from?: string }
  }
}

/** GET /alarms/history: a stored transition. */
export interface HistoryEntry extends AlarmEvent {
  seq: number
}

// ---- schedules and calendars (api/src/schedules.rs) -------------------------------------------

export type DayName = 'monday' | 'tuesday' | 'wednesday' | 'thursday' | 'friday' | 'saturday' | 'sunday' | 'holiday1' | 'holiday2'

/** An ON/OFF pair, "HH:MM". */
export interface Pair {
  on: string
  off: string
}
export interface WeeklySchedule {
  days: Partial<Record<DayName, Pair[]>>
}
/** A point a schedule commands. */
export interface OutputBinding {
  point_id: number
  on_value: number
  off_value: number
  switch_to_manual: boolean
}
export interface ScheduleTransition {
  /** RFC 3339. */
  at: string
  on: boolean
}
/** A schedule (ScheduleResponse): GET /schedules, POST, PUT. */
export interface Schedule {
  id: number
  name: string
  description: string | null
  schedule_type: string
  status: string
  on: boolean
  next_run: string | null
  next_transitions: ScheduleTransition[]
  time_zone: string
  building_id: number | null
  weekly_schedule: WeeklySchedule
  calendar_ids: number[]
  outputs: OutputBinding[]
  priority: number
}
export interface ScheduleBody {
  name: string
  description: string | null
  building_id: number | null
  enabled: boolean
  weekly_schedule: WeeklySchedule
  calendar_ids: number[]
  outputs: OutputBinding[]
  priority: number
}
/** A holiday calendar (T3000's annual routine). */
export interface Calendar {
  id: number
  name: string
  holiday: 'holiday1' | 'holiday2'
  /** `2026-12-24`. */
  dates: string[]
  /** `12-25`. */
  recurring: string[]
  updated_us?: number
}
/** POST /schedules/{id}/run. */
export interface RunResult {
  on: boolean
  errors: { point_id: number; message: string }[]
}

// ---- trend logs (routes/trendlogs.rs) ---------------------------------------------------------

/** A saved trend view. */
export interface TrendLog {
  id: number
  name: string
  description: string | null
  point_ids: number[]
  /** The points are recorded at least this often while the log exists (1 s .. 24 h). */
  interval_ms: number
  /** Record only changes past `deadband` (else every polled value). */
  on_change: boolean
  /** Deadband of on-change recording, in each point's units (0: any change). */
  deadband: number
  /** The range the chart opens with (`24h`, `7d`). */
  range?: string | null
  updated_us: number
}

// ---- Imports and hardware sync (POST /import/csv|webview|prog, GET/POST /devices/{id}/sync) ----

/** What one CSV row does. */
export type CsvAction = 'create' | 'change' | 'unchanged'

/** One cell that changes: as exported now (`""` for a row that creates) and as the file has it. */
export interface CsvFieldChange {
  column: string
  old: string
  new: string
}

/** What one CSV row does, cell by cell. */
export interface CsvRowPlan {
  /** The row as a spreadsheet numbers it (1 is the header). */
  row: number
  /** The device's name, or `<device> <point>`. */
  key: string
  action: CsvAction
  fields: CsvFieldChange[]
}

/** The answer to a CSV import of devices or points (preview, or applied). */
export interface CsvConfigImport {
  kind: 'devices' | 'points'
  applied: boolean
  rows: number
  created: number
  changed: number
  unchanged: number
  /** The rows that create or change something. */
  changes: CsvRowPlan[]
}

/** The answer to a CSV import of samples. */
export interface CsvSamplesImport {
  kind: 'samples'
  applied: boolean
  samples: number
  points: number
  from: string | null
  to: string | null
  /** Samples stored (0 in a preview). */
  stored: number
}

/** One mistake of a CSV file (422 `invalid_csv`). Row 0 is the file as a whole, 1 the header. */
export interface CsvRowError {
  row: number
  line: number
  column: string | null
  /** `F4`, when the column is in the file. */
  cell: string | null
  /** The device or point the row is about. */
  key: string | null
  message: string
}

/** A WebView import job (GET /import/webview/jobs[/{id}]). */
export interface WebviewJob {
  id: number
  sha256: string
  bytes: number
  time_zone: string
  /** `running`, `interrupted` (import the same file again to continue), `done`, `failed`. */
  state: string
  cursor_rowid: number
  last_rowid: number
  rows_total: number
  rows_done: number
  samples: number
  /** Rows not stored, by reason. */
  skipped: Record<string, number>
  started_us: number
  updated_us: number
  finished_us: number | null
  error: string | null
  /** rows_done / rows_total, 0 ..= 1. */
  progress: number
  samples_per_sec: number | null
}

export interface WebviewPreview {
  sha256: string
  bytes: number
  time_zone: string
  enable_devices: boolean
  places: { kind: string; path: string; action: string }[]
  devices: {
    serial_number: number
    name: string
    ip_address: string | null
    port: number
    unit_id: number
    place: string | null
    enabled: boolean
    /** `create`, `exists` or `skip`. */
    action: string
    reason: string | null
  }[]
  points: {
    device: string
    name: string
    label: string | null
    description: string | null
    units: string | null
    digital: boolean
    /** `create`, `update`, `unchanged` or `skip`. */
    action: string
  }[]
  trendlogs: { name: string; interval_ms: number; points: string[]; action: string }[]
  history: { rows: number; series: number; series_skipped: number; first: string | null; last: string | null }
  warnings: string[]
  /** The job of this file, if it was imported before. */
  job: WebviewJob | null
}

/** POST /import/webview?apply=true. */
export interface WebviewApplied {
  created: Record<string, number>
  updated_points: number
  job: WebviewJob
  preview: WebviewPreview
}

export type ProgAction = 'create' | 'update' | 'unchanged'

/** A field a .prog import changes: the catalog's value now (null: none) and the file's. */
export interface ProgFieldChange {
  field: string
  old: unknown
  new: unknown
}

export interface ProgPointPreview {
  /** `IN1`, `OUT3`, `VAR12`. */
  point: string
  point_id: number | null
  action: ProgAction
  changes: ProgFieldChange[]
  label: string | null
  description: string | null
  units: string | null
  range_code: number
  digital: boolean
  range: string | null
  auto_manual: string
  value: number
}

/** A schedule, calendar, trend log, program or the custom ranges of the file. */
export interface ProgItemPreview {
  /** `WR1`, `AR2`, `MON3`, `PRG4`, `custom ranges`. */
  source: string
  name: string
  id: number | null
  action: ProgAction
  changes: ProgFieldChange[]
}

/** POST /import/prog (preview, or applied). */
export interface ProgImport {
  device: string
  device_id: number
  file: { version: number; panel_name: string; panel_number: number }
  applied: boolean
  changes: number
  points: ProgPointPreview[]
  calendars: ProgItemPreview[]
  schedules: ProgItemPreview[]
  trendlogs: ProgItemPreview[]
  programs: ProgItemPreview[]
  /** The panel's custom ranges (digital texts, variable units, analog table names): at most one item. */
  custom_ranges: ProgItemPreview[]
  warnings: { item: string; message: string }[]
}

/** A field hardware sync compares: of a point, or of a weekly (`times`, `holidays`) or annual (`days`) routine. */
export type SyncField = 'label' | 'description' | 'range' | 'digital' | 'manual' | 'times' | 'holidays' | 'days'
export type SyncDirection = 'to_server' | 'to_device' | 'skip'
export type SyncStrategy = 'device_wins' | 'server_wins' | 'per_field'
/** Which side changed since the last sync (`both`: a conflict). */
export type SyncChanged = 'device' | 'server' | 'both'

export interface SyncDifference {
  /** The point's id; null for a routine. */
  point_id: number | null
  /** `IN1`, `OUT3`, `VAR12`, or a routine: `WR1` (weekly), `AR2` (annual). */
  point: string
  field: SyncField
  device: unknown
  server: unknown
  last_synced: unknown
  changed: SyncChanged
  /** What applying does under the strategy asked for; null: a conflict left open. */
  direction: SyncDirection | null
}

/** GET /devices/{id}/sync. */
export interface SyncReport {
  device_id: number
  device: string
  strategy: SyncStrategy
  differences: SyncDifference[]
  in_sync: number
  last_synced_us: number | null
  /** Why the controller's routines were not compared (it refused their registers); null: they were. */
  routines_error: string | null
}

/** A row's direction, named by the panel's object (`IN1`, `WR1`) or by a point's id. */
export interface SyncChoice {
  point_id?: number
  point?: string
  field: SyncField
  direction: SyncDirection
}

/** POST /devices/{id}/sync. */
export interface SyncApplyReport {
  device_id: number
  device: string
  strategy: SyncStrategy
  applied: { point_id: number | null; point: string; field: SyncField; direction: SyncDirection; value: unknown; error: string | null }[]
  unresolved: SyncDifference[]
  in_sync: number
  routines_error: string | null
}

// ---- outbound alerts (api/src/model/alert.rs) --------------------------------------------------

/** GET /alerts/deliveries: one message to one channel and what became of it. */
export interface AlertDelivery {
  id: number
  channel: string
  /** `webhook` or `email`. */
  channel_kind: string
  /** `alarm`, `digest` or `test`. */
  kind: string
  rule_ids: number[]
  subject: string
  /** `queued`, `sending`, `retrying`, `sent`, `failed`, `dropped`, `rate_limited`. */
  status: string
  attempts: number
  last_error: string | null
  created_us: number
  finished_us: number | null
}

/** GET /alerts/channels: a channel of `[alerts]`, without secrets, with its counters since start. */
export interface AlertChannel {
  name: string
  kind: string
  /** A webhook's scheme and host, or an e-mail channel's recipients. */
  target: string
  signed: boolean
  rules: string[]
  /** Entries of `rules` that name no alarm the server has now (a typo, or a rule not made yet). */
  unmatched_rules: string[]
  min_severity: number
  events: string[]
  max_per_minute: number
  max_per_hour: number
  sent: number
  failed: number
  dropped: number
  rate_limited: number
  queued: number
  held: number
  last_delivery: AlertDelivery | null
  last_failure_us: number | null
  last_error: string | null
}

// ---- programs (Control BASIC run by the server) ---------------------------------------------

/** What a program is doing: running (enabled, scanning), stopped (disabled) or error (a runtime
 * error stopped it; `error` says where and why). */
export type ProgramStatus = 'running' | 'stopped' | 'error'

/** Where a program's error is: the BASIC line number (0: before any line), the 1-based line and
 * column of the text, and what went wrong. */
export interface ProgramError {
  line_number: number
  line: number
  column: number
  message: string
}

/** A point a program reads or writes: its id, its name on the panel (`IN1`) and its label. */
export interface ProgramPoint {
  point_id: number
  name: string
  label: string | null
}

/** A program (GET /programs, /programs/{id}; also the answer of POST, PUT, run, enable, disable). */
export interface Program {
  id: number
  name: string
  /** The panel it belongs to: point names without a panel prefix are this device's (null: a
   * program stored before programs ran, with no device yet; it cannot run until it has one). */
  device_id: number | null
  source: string
  enabled: boolean
  status: ProgramStatus
  error: ProgramError | null
  /** RFC 3339; null before the first scan. */
  last_scan: string | null
  /** How long the last scan took, in microseconds. */
  scan_us: number | null
  scans: number
  reads: ProgramPoint[]
  writes: ProgramPoint[]
  updated_us: number
  /** The program as the imported panel file held it (imported programs only). */
  t3000?: unknown
}

/** Body of POST /programs (PUT takes each field optionally). */
export interface ProgramBody {
  name: string
  device_id: number
  source: string
  enabled?: boolean
}

/** Answer of POST /programs/check: ok, or where the first syntax error is. */
export interface ProgramCheck {
  ok: boolean
  error?: { line: number; column: number; message: string } | null
}
