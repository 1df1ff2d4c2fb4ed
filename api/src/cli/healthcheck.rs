//! `t3000 healthcheck`: asks a running server's `GET /healthz` and exits 0 when it is healthy, 1
//! when not. Container images run it as their health check (no curl needed in a minimal image).

use anyhow::{Context, bail};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct HealthcheckArgs {
    /// The server (http://host:port); without it, the address of `--config`'s `server.listen`
    /// (an unspecified address such as 0.0.0.0 is asked on loopback), else http://127.0.0.1:9103.
    #[arg(long)]
    pub url: Option<String>,
    /// The server's configuration file: only its `server.listen` is read (or the variable
    /// `T3000__SERVER__LISTEN`), so a file the running server refused at a reload does not make
    /// a healthy server look unhealthy.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// How long to wait for the answer.
    #[arg(long, default_value_t = 5)]
    pub timeout_secs: u64,
}

/// The base URL to ask: `--url`, else the configuration's listen address.
pub(super) fn base_url(args: &HealthcheckArgs) -> Result<String, String> {
    if let Some(url) = &args.url {
        if !url.starts_with("http://") {
            return Err(format!("--url must start with http:// (got `{url}`)"));
        }
        return Ok(url.trim_end_matches('/').to_owned());
    }
    let listen = match (std::env::var("T3000__SERVER__LISTEN"), &args.config) {
        (Ok(listen), _) => listen,
        (Err(_), Some(path)) => listen_of(path)?,
        (Err(_), None) => t3_core::config::Config::default().server.listen,
    };
    let mut addr: SocketAddr = listen.parse().map_err(|e| format!("server.listen `{listen}`: {e}"))?;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() { [127, 0, 0, 1].into() } else { std::net::Ipv6Addr::LOCALHOST.into() });
    }
    Ok(format!("http://{addr}"))
}

/// `server.listen` of a configuration file (the default when it has none), nothing else checked.
fn listen_of(path: &std::path::Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let table: toml::Table = text.parse().map_err(|e| format!("{}: {e}", path.display()))?;
    match table.get("server").and_then(|s| s.get("listen")) {
        None => Ok(t3_core::config::Config::default().server.listen),
        Some(toml::Value::String(listen)) => Ok(listen.clone()),
        Some(other) => Err(format!("{}: server.listen must be a string, not `{other}`", path.display())),
    }
}

/// Healthy: `/healthz` answers 200 and the write-ahead log is not poisoned (a state only a restart
/// ends). Prints one line saying which.
pub(super) async fn check(base: &str, timeout: Duration) -> anyhow::Result<()> {
    let url = format!("{base}/healthz");
    let client = reqwest::Client::builder().timeout(timeout).build().context("HTTP client")?;
    let resp = client.get(&url).send().await.with_context(|| format!("GET {url}"))?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.with_context(|| format!("GET {url}: the answer is not JSON"))?;
    if !status.is_success() {
        bail!("GET {url}: {status}: {body}");
    }
    let writes = body["writes"].as_str().unwrap_or("unknown");
    if writes == "poisoned" {
        bail!("{url}: writes are refused until a restart: {}", body["writes_reason"].as_str().unwrap_or("?"));
    }
    say!("healthy: {url} ({status}, writes {writes}, up {}s)", body["uptime_secs"]);
    Ok(())
}
