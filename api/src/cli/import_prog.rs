//! `t3000 import prog FILE --device NAME [--apply]`: sends a T3000 panel file to a running server,
//! prints the preview (or what was applied) as a table.

use anyhow::Context;
use serde_json::Value;
use std::path::PathBuf;

use super::client::{ServerArgs, json_answer};

#[derive(Debug, clap::Args)]
pub struct ProgArgs {
    /// The .prog file.
    pub file: PathBuf,
    /// The configured device (a T3 controller) the file describes.
    #[arg(long)]
    pub device: String,
    /// Apply the import (without it: only show what it would do).
    #[arg(long)]
    pub apply: bool,
    #[command(flatten)]
    pub server: ServerArgs,
    /// Print the server's JSON answer instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Sends the file, prints the answer.
pub async fn run(args: ProgArgs) -> anyhow::Result<()> {
    let bytes = std::fs::read(&args.file).with_context(|| format!("read {}", args.file.display()))?;
    let apply = if args.apply { "true" } else { "false" };
    let resp = args
        .server
        .request(&reqwest::Client::new(), reqwest::Method::POST, "/api/t3000/import/prog")?
        .query(&[("device", args.device.as_str()), ("apply", apply)])
        .header("content-type", "application/octet-stream")
        .body(bytes)
        .send()
        .await
        .context("POST /api/t3000/import/prog")?;
    let body = json_answer(resp).await.with_context(|| args.file.display().to_string())?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&body)?);
    } else {
        print!("{}", table(&body));
    }
    Ok(())
}

fn show(v: &Value) -> String {
    match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The preview as text: one line per point or record that changes, then the warnings.
pub fn table(p: &Value) -> String {
    let mut out = String::new();
    let applied = p["applied"].as_bool().unwrap_or(false);
    out += &format!(
        "{} panel \"{}\" (number {}, .prog version {}) -> device {}\n",
        if applied { "Applied" } else { "Preview of" },
        show(&p["file"]["panel_name"]),
        show(&p["file"]["panel_number"]),
        show(&p["file"]["version"]),
        show(&p["device"]),
    );
    let mut unchanged = 0;
    for (section, key) in [
        ("point", "point"),
        ("calendar", "source"),
        ("schedule", "source"),
        ("trendlog", "source"),
        ("program", "source"),
    ] {
        let list = match section {
            "point" => &p["points"],
            "calendar" => &p["calendars"],
            "schedule" => &p["schedules"],
            "trendlog" => &p["trendlogs"],
            _ => &p["programs"],
        };
        for item in list.as_array().into_iter().flatten() {
            let action = item["action"].as_str().unwrap_or("");
            if action == "unchanged" {
                unchanged += 1;
                continue;
            }
            let name = if section == "point" { show(&item["label"]) } else { show(&item["name"]) };
            out += &format!("{:<9} {:<7} {:<7} {}\n", section, show(&item[key]), action, name);
            for c in item["changes"].as_array().into_iter().flatten() {
                out += &format!("{:<25} {}: {} -> {}\n", "", show(&c["field"]), show(&c["old"]), show(&c["new"]));
            }
            if section == "point" {
                let auto_manual = show(&item["auto_manual"]);
                let range = show(&item["range"]);
                out += &format!("{:<25} (panel: range {range}, {auto_manual}; not written)\n", "");
            }
        }
    }
    out += &format!("{} change(s), {unchanged} unchanged\n", show(&p["changes"]));
    for w in p["warnings"].as_array().into_iter().flatten() {
        out += &format!("warning: {}: {}\n", show(&w["item"]), show(&w["message"]));
    }
    if !applied && p["changes"].as_u64().unwrap_or(0) > 0 {
        out += "Run again with --apply to apply.\n";
    }
    out
}

#[cfg(test)]
mod tests {
    use super::table;
    use serde_json::json;

    #[test]
    fn the_table_lists_changes_and_warnings() {
        let p = json!({"device": "panel", "applied": false, "changes": 1,
            "file": {"panel_name": "Boilers", "panel_number": 2, "version": 6},
            "points": [{"point": "IN1", "action": "create", "label": "PMP1STAT", "range": "Off/On", "auto_manual": "auto",
                "changes": [{"field": "label", "old": null, "new": "PMP1STAT"}]},
                {"point": "IN2", "action": "unchanged", "changes": []}],
            "calendars": [], "schedules": [], "trendlogs": [], "programs": [],
            "warnings": [{"item": "MON1", "message": "logs VAR129"}]});
        let t = table(&p);
        assert!(t.contains("point     IN1     create  PMP1STAT"), "{t}");
        assert!(t.contains("label: - -> PMP1STAT"), "{t}");
        assert!(t.contains("1 change(s), 1 unchanged"), "{t}");
        assert!(t.contains("warning: MON1: logs VAR129"), "{t}");
        assert!(t.contains("--apply"), "{t}");
    }
}
