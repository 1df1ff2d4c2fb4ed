//! Loading the configuration: a TOML file (or the embedded demo configuration), then every
//! `T3000__SECTION__KEY` environment variable over it, then `validate()`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use t3_core::config::{Config, ConfigError};
use t3_drivers::plugin::PluginHost;

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

/// Parses `text` (named `origin` in messages) and applies the environment. A plugin device is
/// checked by its plugin (loaded from `[plugins] dirs`), its errors located like the others.
pub fn parse(text: &str, origin: &str) -> Result<Config, String> {
    parse_checked(text, origin, plugin_host, |_| Ok(())).map_err(|e: ConfigError| e.to_string())
}

/// [`parse`] with the plugins a plugin device is checked by (`plugins`: asked only when there is
/// one) and a further check (a reload's: the devices can be polled), located like the others; the
/// error as it is (key, line).
pub fn parse_checked(
    text: &str,
    origin: &str,
    plugins: impl FnOnce(&Config) -> Arc<PluginHost>,
    extra: impl FnOnce(&Config) -> Result<(), ConfigError>,
) -> Result<Config, ConfigError> {
    Config::parse_with(text, origin, std::env::vars(), |cfg| {
        t3_drivers::profile::ProfileLibrary::builtin().check_devices(&cfg.devices)?;
        if cfg.devices.iter().any(|d| d.protocol.plugin().is_some()) {
            let host = plugins(cfg);
            for (i, d) in cfg.devices.iter().enumerate() {
                host.check_device(d, &format!("devices[{i}]"), cfg.collector.timeout_ms)?;
            }
        }
        crate::http::server::check_max_connections(cfg, crate::http::server::nofile_limit())?;
        tracing_subscriber::EnvFilter::try_new(&cfg.log.level).map_err(|e| {
            ConfigError::new("log.level", format!("`{}` is not a level or filter ({e})", cfg.log.level))
        })?;
        if let Some(ca) = &cfg.alerts.ca_file {
            crate::service::notify::tls::read_ca_file(ca).map_err(|e| ConfigError::new("alerts.ca_file", e))?;
        }
        extra(cfg)
    })
}

/// The folders plugins are loaded from: `[plugins] dirs`, or `<data_dir>/plugins` and `plugins/`
/// beside the binary.
pub fn plugin_dirs(cfg: &Config) -> Vec<PathBuf> {
    cfg.plugins.dirs.clone().unwrap_or_else(|| PluginHost::default_dirs(&cfg.storage.data_dir))
}

/// The plugins of `cfg`'s folders, loaded once per process (a library is never unloaded, so
/// checking the configuration and serving share one load).
pub fn plugin_host(cfg: &Config) -> Arc<PluginHost> {
    static HOSTS: Mutex<Vec<(Vec<PathBuf>, Arc<PluginHost>)>> = Mutex::new(Vec::new());
    let dirs = plugin_dirs(cfg);
    let mut hosts = HOSTS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, h)) = hosts.iter().find(|(d, _)| *d == dirs) {
        return h.clone();
    }
    let host = Arc::new(scan_plugins(cfg));
    hosts.push((dirs, host.clone()));
    host
}

/// Scans `cfg`'s plugin folders now (a reload: files added since start are found).
pub fn scan_plugins(cfg: &Config) -> PluginHost {
    PluginHost::load(&plugin_dirs(cfg), Duration::from_millis(cfg.plugins.call_timeout_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<Config, ConfigError> {
        parse_checked(text, "t3000.toml", |_| unreachable!("no plugin device"), |_| Ok(()))
    }

    /// `log.level` is an EnvFilter directive: one that does not parse is refused naming the key
    /// and line, at start and at a reload, rather than taken and then failing to apply.
    #[test]
    fn a_log_level_that_is_no_filter_is_refused_with_its_line() {
        for level in ["!!!", "t3_api=bogus"] {
            let e = check(&format!("[server]\nlisten = \"127.0.0.1:0\"\n[log]\nlevel = \"{level}\"\n")).unwrap_err();
            assert_eq!((e.key.as_deref(), e.line), (Some("log.level"), Some(4)), "{e}");
        }
        check("[log]\nlevel = \"info,t3_api=debug\"\n").unwrap();
    }
}
