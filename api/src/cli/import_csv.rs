//! `t3000 import csv FILE --kind devices|points|samples [--apply]` and `t3000 export-config
//! devices|points [-o FILE]`: HTTP clients of a running server (`POST /api/t3000/import/csv`,
//! `GET /api/t3000/config/{devices,points}.csv`). The import prints what each row would create or
//! change (or every mistake of the file, by row and column) and applies with `--apply`.

use anyhow::{Context, bail};
use serde_json::Value;
use std::path::PathBuf;

use super::client::ServerArgs;

/// What a CSV file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CsvKind {
    Devices,
    Points,
    Samples,
}

impl CsvKind {
    fn name(self) -> &'static str {
        match self {
            CsvKind::Devices => "devices",
            CsvKind::Points => "points",
            CsvKind::Samples => "samples",
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct ImportCsvArgs {
    /// The CSV file (UTF-8; `,` `;` or tab separated, as a spreadsheet saves it).
    pub file: PathBuf,
    /// What the file holds.
    #[arg(long, value_enum)]
    pub kind: CsvKind,
    /// Apply the file; without it only what would happen is printed.
    #[arg(long)]
    pub apply: bool,
    /// Samples: the IANA time zone of times written without an offset (UTC when absent).
    #[arg(long)]
    pub tz: Option<String>,
    /// Print the server's answer as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Which configuration to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ConfigKind {
    Devices,
    Points,
}

#[derive(Debug, clap::Args)]
pub struct ExportConfigArgs {
    /// `devices` or `points`.
    #[arg(value_enum)]
    pub kind: ConfigKind,
    /// Where to write the CSV; standard output when absent.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// The server's error answer in words: `code: message`, and every row error on its own line.
fn error_text(status: reqwest::StatusCode, body: &str) -> String {
    let Ok(v) = serde_json::from_str::<Value>(body) else { return format!("{status}: {body}") };
    let e = &v["error"];
    let mut out = format!("{status} {}: {}", e["code"].as_str().unwrap_or(""), e["message"].as_str().unwrap_or(body));
    if let Some(rows) = e["errors"].as_array() {
        out = format!("{status} {}: {} error(s), nothing was applied", e["code"].as_str().unwrap_or(""), e["total"]);
        for r in rows {
            out.push_str(&format!("\n  {}", row_error(r)));
        }
        if e["total"].as_u64().unwrap_or(0) > rows.len() as u64 {
            out.push_str(&format!("\n  ... {} more", e["total"].as_u64().unwrap_or(0) - rows.len() as u64));
        }
    }
    out
}

fn row_error(r: &Value) -> String {
    let mut s = format!("row {}", r["row"]);
    if let Some(c) = r["column"].as_str() {
        s.push_str(&format!(", column {c}"));
    }
    if let Some(c) = r["cell"].as_str() {
        s.push_str(&format!(" ({c})"));
    }
    if let Some(k) = r["key"].as_str() {
        s.push_str(&format!(" [{k}]"));
    }
    format!("{s}: {}", r["message"].as_str().unwrap_or(""))
}

/// A preview or a result, for people.
fn report(v: &Value) -> String {
    let applied = v["applied"] == true;
    let kind = v["kind"].as_str().unwrap_or("");
    if kind == "samples" {
        let span = match (v["from"].as_str(), v["to"].as_str()) {
            (Some(f), Some(t)) => format!(", {f} .. {t}"),
            _ => String::new(),
        };
        return if applied {
            format!("samples: {} stored for {} points{span}", v["stored"], v["points"])
        } else {
            format!(
                "samples: {} for {} points{span}, all valid (preview: run again with --apply to store them)",
                v["samples"], v["points"]
            )
        };
    }
    let mut out = format!(
        "{kind}: {} {}, {} {}, {} unchanged{}",
        v["created"],
        if applied { "created" } else { "to create" },
        v["changed"],
        if applied { "changed" } else { "to change" },
        v["unchanged"],
        if applied { "" } else { " (preview: run again with --apply to apply)" }
    );
    let changes = v["changes"].as_array().cloned().unwrap_or_default();
    if !changes.is_empty() {
        let mut rows = vec![["row".to_owned(), "action".into(), "key".into(), "column".into(), "old -> new".into()]];
        for c in &changes {
            for (i, f) in c["fields"].as_array().cloned().unwrap_or_default().iter().enumerate() {
                let first = i == 0;
                rows.push([
                    if first { c["row"].to_string() } else { String::new() },
                    if first { c["action"].as_str().unwrap_or("").to_owned() } else { String::new() },
                    if first { c["key"].as_str().unwrap_or("").to_owned() } else { String::new() },
                    f["column"].as_str().unwrap_or("").to_owned(),
                    format!("{:?} -> {:?}", f["old"].as_str().unwrap_or(""), f["new"].as_str().unwrap_or("")),
                ]);
            }
        }
        let widths: Vec<usize> = (0..4).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
        for r in rows {
            out.push('\n');
            for (i, w) in widths.iter().enumerate() {
                out.push_str(&format!("{:<w$}  ", r[i], w = w));
            }
            out.push_str(&r[4]);
        }
    }
    out
}

/// `t3000 import csv`.
pub async fn import(args: ImportCsvArgs) -> anyhow::Result<()> {
    let file = tokio::fs::File::open(&args.file).await.with_context(|| format!("opening {}", args.file.display()))?;
    let mut url = format!("{}/api/t3000/import/csv?kind={}", args.server.base()?, args.kind.name());
    if args.apply {
        url.push_str("&apply=true");
    }
    let client = reqwest::Client::new();
    let mut query = Vec::new();
    if let Some(tz) = &args.tz {
        query.push(("tz", tz.as_str()));
    }
    let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(file));
    let reply = client
        .post(&url)
        .query(&query)
        .bearer_auth(&args.server.token)
        .header(reqwest::header::CONTENT_TYPE, "text/csv")
        .body(body)
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = reply.status();
    let text = reply.text().await.context("reading the answer")?;
    if !status.is_success() {
        bail!("{}", error_text(status, &text));
    }
    let v: Value = serde_json::from_str(&text).context("the answer is not JSON")?;
    if args.json {
        say!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        say!("{}", report(&v));
    }
    Ok(())
}

/// `t3000 export-config`.
pub async fn export_config(args: ExportConfigArgs) -> anyhow::Result<()> {
    let which = match args.kind {
        ConfigKind::Devices => "devices",
        ConfigKind::Points => "points",
    };
    let url = format!("{}/api/t3000/config/{which}.csv", args.server.base()?);
    let reply = reqwest::Client::new()
        .get(&url)
        .bearer_auth(&args.server.token)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let status = reply.status();
    let bytes = reply.bytes().await.context("reading the answer")?;
    if !status.is_success() {
        bail!("{}", error_text(status, &String::from_utf8_lossy(&bytes)));
    }
    match &args.output {
        Some(path) => std::fs::write(path, &bytes).with_context(|| format!("writing {}", path.display()))?,
        None => {
            use std::io::Write;
            std::io::stdout().write_all(&bytes)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previews_and_errors_read_well() {
        let v = serde_json::json!({"kind": "points", "applied": false, "rows": 3, "created": 0, "changed": 1, "unchanged": 2,
            "changes": [{"row": 4, "key": "AHU-1 IN1", "action": "change",
                "fields": [{"column": "label", "old": "", "new": "Supply"}]}]});
        let text = report(&v);
        assert!(text.starts_with("points: 0 to create, 1 to change, 2 unchanged (preview"), "{text}");
        assert!(text.contains("AHU-1 IN1") && text.contains("\"\" -> \"Supply\""), "{text}");
        let body = r#"{"error":{"code":"invalid_csv","message":"m","total":2,"errors":[
            {"row":3,"line":3,"column":"unit_id","cell":"I3","key":"NEW-1","message":"too big"},
            {"row":5,"line":5,"column":null,"cell":null,"key":null,"message":"4 cells"}]}}"#;
        let text = error_text(reqwest::StatusCode::UNPROCESSABLE_ENTITY, body);
        assert!(text.contains("row 3, column unit_id (I3) [NEW-1]: too big"), "{text}");
        assert!(text.contains("row 5: 4 cells"), "{text}");
    }
}
