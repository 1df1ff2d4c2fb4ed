//! `t3000 import webview FILE [--apply]`: sends a T3000 WebView database to a running server
//! (`POST /api/t3000/import/webview`), prints the preview as tables, and with `--apply` imports
//! it and follows the history job to its end: a progress bar on a terminal, a progress line every
//! few seconds otherwise. Run it again with the same file after an interruption: the server
//! continues the job from its cursor.

use anyhow::{Context, bail};
use serde_json::Value;
use std::io::IsTerminal;
use std::path::PathBuf;

use super::client::{ServerArgs, json_answer};
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct WebviewArgs {
    /// The WebView database (webview_t3_device.db).
    pub file: PathBuf,
    /// Import it (without: a preview only).
    #[arg(long)]
    pub apply: bool,
    /// IANA time zone of the PC WebView ran on (its LoggingTime_Fmt is local time).
    #[arg(long, default_value = "UTC")]
    pub time_zone: String,
    /// Create the devices enabled (polled at once); by default they are created disabled.
    #[arg(long)]
    pub enable_devices: bool,
    /// Detail rows per stored batch (100 ..= 500000).
    #[arg(long)]
    pub batch_rows: Option<usize>,
    #[command(flatten)]
    pub server: ServerArgs,
    /// Print the server's answers as JSON.
    #[arg(long)]
    pub json: bool,
}

fn s(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Prints rows as aligned columns.
fn table(title: &str, head: &[&str], rows: Vec<Vec<String>>) {
    say!("\n{title} ({})", rows.len());
    if rows.is_empty() {
        return;
    }
    let mut w: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let parts: Vec<String> = cells.iter().enumerate().map(|(i, c)| format!("{c:<width$}", width = w[i])).collect();
        say!("  {}", parts.join("  ").trim_end());
    };
    line(head.iter().map(|h| h.to_string()).collect());
    for r in rows {
        line(r);
    }
}

fn print_preview(p: &Value) {
    say!(
        "T3000 WebView database: {} bytes, sha256 {}; times read in {}",
        s(&p["bytes"]),
        s(&p["sha256"]),
        s(&p["time_zone"])
    );
    let rows = |k: &str, f: &dyn Fn(&Value) -> Vec<String>| -> Vec<Vec<String>> {
        p[k].as_array().map(|a| a.iter().map(f).collect()).unwrap_or_default()
    };
    table(
        "Places",
        &["action", "kind", "place"],
        rows("places", &|x| vec![s(&x["action"]), s(&x["kind"]), s(&x["path"])]),
    );
    table(
        "Devices",
        &["action", "name", "address", "unit", "enabled", "place"],
        rows("devices", &|x| {
            vec![
                s(&x["action"]),
                s(&x["name"]),
                format!("{}:{}", s(&x["ip_address"]), s(&x["port"])),
                s(&x["unit_id"]),
                s(&x["enabled"]),
                s(&x["place"]),
            ]
        }),
    );
    table(
        "Points",
        &["action", "device", "point", "label", "description", "units", "digital"],
        rows("points", &|x| {
            vec![
                s(&x["action"]),
                s(&x["device"]),
                s(&x["name"]),
                s(&x["label"]),
                s(&x["description"]),
                s(&x["units"]),
                s(&x["digital"]),
            ]
        }),
    );
    table(
        "Trend logs",
        &["action", "name", "interval", "points"],
        rows("trendlogs", &|x| {
            let points: Vec<String> = x["points"].as_array().map(|a| a.iter().map(s).collect()).unwrap_or_default();
            vec![
                s(&x["action"]),
                s(&x["name"]),
                format!("{} s", x["interval_ms"].as_u64().unwrap_or(0) / 1000),
                points.join(", "),
            ]
        }),
    );
    let h = &p["history"];
    say!(
        "\nHistory: {} detail rows in {} series ({} series skipped), {} .. {}",
        s(&h["rows"]),
        s(&h["series"]),
        s(&h["series_skipped"]),
        s(&h["first"]),
        s(&h["last"])
    );
    if let Some(w) = p["warnings"].as_array().filter(|w| !w.is_empty()) {
        say!("\nWarnings:");
        for x in w {
            say!("  - {}", s(x));
        }
    }
}

pub async fn run(a: WebviewArgs) -> anyhow::Result<()> {
    let base = a.server.base()?;
    let client = reqwest::Client::new();
    let file = tokio::fs::File::open(&a.file).await.with_context(|| format!("open {}", a.file.display()))?;
    let len = file.metadata().await?.len();
    let mut query = vec![("time_zone", a.time_zone.clone())];
    if a.apply {
        query.push(("apply", "true".into()));
    }
    if a.enable_devices {
        query.push(("enable_devices", "true".into()));
    }
    if let Some(b) = a.batch_rows {
        query.push(("batch_rows", b.to_string()));
    }
    eprintln!("sending {} ({len} bytes) to {base}", a.file.display());
    let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(file, 1 << 20));
    let resp = a
        .server
        .request(&client, reqwest::Method::POST, "/api/t3000/import/webview")?
        .header("content-type", "application/octet-stream")
        .header("content-length", len)
        .query(&query)
        .body(body)
        .send()
        .await
        .with_context(|| format!("POST {base}/api/t3000/import/webview"))?;
    let reply = json_answer(resp).await?;
    if a.json {
        say!("{}", serde_json::to_string_pretty(&reply)?);
    }
    if !a.apply {
        if !a.json {
            print_preview(&reply);
            say!("\nNothing was imported. Run again with --apply to import.");
        }
        return Ok(());
    }
    if !a.json {
        print_preview(&reply["preview"]);
        let created = reply["created"].as_object().cloned().unwrap_or_default();
        let parts: Vec<String> = created.iter().map(|(k, v)| format!("{v} {k}")).collect();
        say!(
            "\nCreated: {}; point records updated: {}",
            if parts.is_empty() { "nothing".to_owned() } else { parts.join(", ") },
            s(&reply["updated_points"])
        );
    }
    let id = reply["job"]["id"].as_i64().context("the answer has no job id")?;
    follow(&client, &a.server, id).await
}

/// Follows a job until it is no longer running.
async fn follow(client: &reqwest::Client, server: &ServerArgs, id: i64) -> anyhow::Result<()> {
    let tty = std::io::stderr().is_terminal();
    let mut bar: Option<indicatif::ProgressBar> = None;
    let mut last_line = Instant::now() - Duration::from_secs(60);
    loop {
        let resp = server
            .request(client, reqwest::Method::GET, &format!("/api/t3000/import/webview/jobs/{id}"))?
            .send()
            .await
            .context("GET the job's status")?;
        let j = json_answer(resp).await?;
        let (done, total) = (j["rows_done"].as_u64().unwrap_or(0), j["rows_total"].as_u64().unwrap_or(0));
        let rate = j["samples_per_sec"].as_f64().map(|r| format!("{r:.0} samples/s")).unwrap_or_default();
        let state = s(&j["state"]);
        if tty {
            let b = bar.get_or_insert_with(|| {
                let b = indicatif::ProgressBar::new(total);
                b.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{elapsed_precise} [{bar:40}] {pos}/{len} rows ({percent}%) {msg}",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                );
                b
            });
            b.set_position(done);
            b.set_message(rate.clone());
        } else if last_line.elapsed() >= Duration::from_secs(2) || state != "running" {
            eprintln!("job {id}: {state}, {done}/{total} rows, {} samples stored {rate}", s(&j["samples"]));
            last_line = Instant::now();
        }
        if state != "running" {
            if let Some(b) = bar {
                b.finish();
            }
            let skipped = j["skipped"].as_object().cloned().unwrap_or_default();
            let skipped: Vec<String> = skipped.iter().map(|(k, v)| format!("{v} {k}")).collect();
            say!(
                "job {id}: {state}: {} samples stored from {done} of {total} detail rows{}",
                s(&j["samples"]),
                if skipped.is_empty() { String::new() } else { format!("; skipped: {}", skipped.join(", ")) }
            );
            return match state.as_str() {
                "done" => Ok(()),
                "interrupted" => bail!("the import was interrupted; run the same command again to continue it"),
                _ => bail!("the import failed: {}", s(&j["error"])),
            };
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
