//! t3-api: the HTTP API and the `t3000` binary.
//!
//! # Data flow
//! A request enters the axum [`app`] router; handlers in [`routes`] parse and validate it (every
//! failure becomes an [`error::ApiError`] with a JSON body) and call the storage engine
//! (`t3_storage::Storage`): pushed samples go to `ingest`, history and SQL to the query engine,
//! exports stream from a blocking task through a channel into the response body.
//!
//! # Layout
//! - [`cli`]: the command line (`serve`, `demo`, `simulate`, `discover`, `check-config`, `export`) and
//!   process lifecycle; [`demo`]: the simulated building of `t3000 demo`.
//! - [`auth`]: users, roles, tokens, the authorisation rule of every endpoint.
//! - [`devices`]: the collector in the server (samples to storage, config checks, the config file's
//!   devices in the catalog);
//!   [`registry`]: stable point ids of device points.
//! - [`settings`]: loading the configuration from a file and the environment; the demo config.
//! - [`server`]: the HTTP listener (connection cap, header-read and idle timeouts, bounded
//!   shutdown) and the open-files limit it shares with storage.
//! - [`routes`]: handlers; [`openapi`]: the OpenAPI document they are described in.
//! - [`web`]: the browser UI's files (embedded from `web/dist`).
//! - [`error`], [`state`], [`timeparse`]: shared pieces.

pub mod cli;
pub mod http;
pub mod model;
pub mod service;

pub use http::{AppState, app};
