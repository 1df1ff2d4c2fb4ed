//! Loading the configuration: a TOML file (or the embedded demo configuration), then every
//! `T3000__SECTION__KEY` environment variable over it, then `validate()`.

use std::path::Path;
use t3_core::config::{Config, ConfigError};

/// The configuration `t3000 demo` runs with: data in `./t3000-data`, listening on 127.0.0.1:9103.
pub const DEMO_CONFIG: &str = r#"# Embedded configuration of `t3000 demo`.
[server]
listen = "127.0.0.1:9103"

[storage]
data_dir = "./t3000-data"
flush_interval_secs = 30
"#;

/// Reads `path` and applies the environment.
pub fn load_file(path: &Path) -> Result<Config, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse(&text, &path.display().to_string())
}

/// Parses `text` (named `origin` in messages) and applies the environment.
pub fn parse(text: &str, origin: &str) -> Result<Config, String> {
    Config::parse_with(text, origin, std::env::vars(), |cfg| {
        t3_drivers::profile::ProfileLibrary::builtin().check_devices(&cfg.devices)?;
        crate::http::server::check_max_connections(cfg, crate::http::server::nofile_limit())
    })
    .map_err(|e: ConfigError| e.to_string())
}
