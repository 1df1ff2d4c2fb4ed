//! What the commands that talk to a running server over HTTP share (`t3000 import ...`,
//! `t3000 export-config`, `t3000 sync`): the server's address and token, and reading its answers.

use anyhow::{Context, bail};
use serde_json::Value;

/// The server to talk to.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// The server (http:// or https://).
    #[arg(long, default_value = "http://127.0.0.1:9103")]
    pub url: String,
    /// A bearer token (a login session or an API token; importing and applying need an admin's).
    #[arg(long, env = "T3000_TOKEN", hide_env_values = true)]
    pub token: String,
}

impl ServerArgs {
    /// The server's address without a trailing `/`, checked to be http(s).
    pub fn base(&self) -> anyhow::Result<String> {
        let url = self.url.trim_end_matches('/');
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            bail!("--url must start with http:// or https:// (got `{url}`)");
        }
        Ok(url.to_owned())
    }

    /// `path` on the server (`/api/t3000/...`), with the token.
    pub fn request(
        &self,
        client: &reqwest::Client,
        method: reqwest::Method,
        path: &str,
    ) -> anyhow::Result<reqwest::RequestBuilder> {
        Ok(client.request(method, format!("{}{path}", self.base()?)).bearer_auth(&self.token))
    }
}

/// The JSON of a successful answer; otherwise an error with the status and the server's code and
/// message.
pub async fn json_answer(resp: reqwest::Response) -> anyhow::Result<Value> {
    let status = resp.status();
    let url = resp.url().path().to_owned();
    let body: Value = resp.json().await.with_context(|| format!("{url}: the answer ({status}) is not JSON"))?;
    if !status.is_success() {
        let e = &body["error"];
        bail!("{status} {}: {}", e["code"].as_str().unwrap_or(""), e["message"].as_str().unwrap_or("(no message)"));
    }
    Ok(body)
}
