//! t3-api: the server (HTTP API, WebSocket, the services behind them) and the `t3000` binary.
//!
//! # Data flow
//! [`cli`] parses the command line; `t3000 serve` (the composition root, `cli/serve.rs`) opens the
//! storage engine (`t3_storage::Storage`) and the catalog, registers every record type of
//! [`model`] with the catalog, builds each [`service`] with what it depends on (the catalog, the
//! collector, storage, one `Clock` for all), starts the collector and the background tasks, and
//! serves [`http::app`] on the listener of [`http::server`].
//!
//! A request enters the axum router ([`http::app`]): [`http::access`] authenticates it and checks
//! its role, a handler of [`http::routes`] parses and validates it (every failure becomes an
//! [`http::error::ApiError`] with a JSON body) and calls a service or the storage engine: pushed
//! samples go to `ingest`, history and SQL to the query engine, exports stream from a blocking
//! task through a channel into the response body, a write goes to the command arbiter
//! ([`service::control`]) and from there to the device. A WebSocket session ([`http::ws`]) takes
//! the same service calls for its writes and acknowledgements, and follows the storage engine's
//! live bus, the collector's device status, the alarm service and the scheduler.
//!
//! Collected samples flow the other way: the collector ([`service::collection`]) polls the devices
//! and sends their samples to storage's ingest, whose live bus feeds the alarm service and the
//! WebSocket hub.
//!
//! # Layout
//! Four layers, each a folder, importing downwards only (`cli` → `http` → `service` → `model`),
//! checked by `.ci/module-cycles.py` (no import cycle) and `.ci/api-layers.py` (`model` and
//! `service` use no axum, `AppState`, `ApiError` or layer above):
//! - [`model`]: what the catalog stores and the API shows, and the rules its values follow.
//!   - [`model::place`]: buildings, floors, rooms, floor plans; [`model::device`]: devices and
//!     their points; [`model::point`]: labels, units, retention of points;
//!     [`model::custom_range`]: a T3 panel's custom ranges (digital texts, units); [`model::program`]:
//!     programs and trend logs; [`model::alarm`]: alarm rules, transitions, states;
//!     [`model::schedule`]: schedules and calendars; [`model::user`]: users, roles, tokens;
//!     [`model::command`]: the commands on a point and what a write did.
//!   - [`model::check`]: names, time zones and number ranges, checked once;
//!     [`model::register`]: every record type registered with the catalog in one place.
//! - [`service`]: the server's long-running parts, with explicit dependencies and error types.
//!   - [`service::collection`]: the collector fed from the catalog's devices, its samples to
//!     storage; [`service::registry`]: stable ids of device points; [`service::ranges`]: the range
//!     codes the devices report and what they mean; [`service::retention`]: per-point retention handed to storage.
//!   - [`service::control`]: the command arbiter and device writes, with the one entry of a
//!     person's write ([`service::control::Control::user_write`]); [`service::scheduler`]: weekly
//!     schedules driving outputs; [`service::alarms`]: alarm evaluation and acknowledgement.
//!   - [`service::auth`]: users, tokens, passwords, login throttling; [`service::audit`]: the
//!     audit log; [`service::floorplans`]: the floor-plan image store.
//! - [`http`]: axum. [`http::app`] and [`http::AppState`]; [`http::error`]: `ApiError`, mapped
//!   from each service's error and storage's; [`http::access`]: the authentication middleware
//!   and the role table.
//!   - [`http::routes`]: one handler module per family of endpoints, with its request and
//!     response types, and what they share (JSON bodies, paging); [`http::routes::metrics`] and
//!     [`http::routes::health`] among them.
//!   - [`http::openapi`]: the OpenAPI document; [`http::rules`]: the rules of request values as
//!     the document states them; [`http::timeparse`]: instants, durations, point lists.
//!   - [`http::ws`]: the WebSocket (hub, protocol, session); [`http::web`]: the browser UI's files
//!     (embedded from `web/dist`); [`http::server`]: the listener (connection cap, timeouts,
//!     bounded shutdown) and the open-files limit.
//! - [`cli`]: the `t3000` binary: `serve` and `demo` (the composition root), [`cli::settings`]
//!   (the configuration file and environment), [`cli::demo`] (the simulated building),
//!   [`cli::simulate`] (`simulate`, `discover`), [`cli::export`], `repair`, and [`cli::watch`]
//!   (a WebSocket client of a running server).
//!
//! [`app`] and [`AppState`] are re-exported at the root.

pub mod cli;
pub mod http;
pub mod model;
pub mod service;

pub use http::{AppState, app};
