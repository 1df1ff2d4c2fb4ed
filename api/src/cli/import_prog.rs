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
        say!("{}", serde_json::to_string_pretty(&body)?);
    } else {
        say_part!("{}", table(&body));
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
    for (section, key, list) in [
        ("point", "point", "points"),
        ("ranges", "source", "custom_ranges"),
        ("calendar", "source", "calendars"),
        ("schedule", "source", "schedules"),
        ("trendlog", "source", "trendlogs"),
        ("program", "source", "programs"),
    ] {
        let list = &p[list];
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
                let (range, auto_manual) = (show(&item["range"]), show(&item["auto_manual"]));
                out += &format!("{:<25} (range {range}; panel in {auto_manual}: not written)\n", "");
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
            "custom_ranges": [{"source": "custom ranges", "name": "panel custom ranges", "action": "create",
                "changes": [{"field": "digital", "old": null, "new": [{"code": 23, "off": "Stopped", "on": "Running"}]}]}],
            "warnings": [{"item": "MON1", "message": "logs VAR129"}]});
        let t = table(&p);
        assert!(t.contains("point     IN1     create  PMP1STAT"), "{t}");
        assert!(t.contains("label: - -> PMP1STAT"), "{t}");
        assert!(t.contains("(range Off/On; panel in auto: not written)"), "{t}");
        assert!(t.contains("ranges    custom ranges create  panel custom ranges"), "{t}");
        assert!(t.contains("Running"), "{t}");
        assert!(t.contains("1 change(s), 1 unchanged"), "{t}");
        assert!(t.contains("warning: MON1: logs VAR129"), "{t}");
        assert!(t.contains("--apply"), "{t}");
    }
}
