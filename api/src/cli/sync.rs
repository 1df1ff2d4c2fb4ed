//! `t3000 sync DEVICE`: the differences between a T3 controller's point configuration and the
//! catalog of a running server (`GET /api/t3000/devices/{id}/sync`) as a table, applied with `--apply`
//! (`POST`, an admin's token).

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::client::{ServerArgs, json_answer};

#[derive(Debug, clap::Args)]
pub struct SyncArgs {
    /// The device: its id or name.
    pub device: String,
    /// How fields changed on both sides since the last sync are decided.
    #[arg(long, value_enum, default_value = "per-field")]
    pub strategy: StrategyArg,
    /// The direction of one row, `POINT.FIELD=DIRECTION` (`IN1.label=to-device`, `WR1.times=to-server`;
    /// directions to-server, to-device, skip; fields label, description, range, digital, manual of
    /// a point, label, description, times, holidays of a weekly routine WR1-8, label, days of an
    /// annual routine AR1-4); repeatable.
    #[arg(long = "choose", value_name = "POINT.FIELD=DIRECTION")]
    pub choices: Vec<String>,
    /// Apply the differences (without it, only show them).
    #[arg(long)]
    pub apply: bool,
    /// Print the server's JSON answer instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum StrategyArg {
    DeviceWins,
    ServerWins,
    PerField,
}

impl StrategyArg {
    fn api(self) -> &'static str {
        match self {
            StrategyArg::DeviceWins => "device_wins",
            StrategyArg::ServerWins => "server_wins",
            StrategyArg::PerField => "per_field",
        }
    }
}

/// Fields sync compares (points: the first five; weekly routines: label, description, times,
/// holidays; annual routines: label, days).
const FIELDS: [&str; 8] = ["label", "description", "range", "digital", "manual", "times", "holidays", "days"];

/// `IN1.label=to-device` -> ("IN1", "label", "to_device").
fn parse_choice(s: &str) -> anyhow::Result<(String, String, String)> {
    let bad = || format!("--choose {s}: expected POINT.FIELD=DIRECTION (IN1.label=to-device)");
    let (target, direction) = s.split_once('=').with_context(bad)?;
    let (point, field) = target.split_once('.').with_context(bad)?;
    let field = field.trim().to_ascii_lowercase();
    if !FIELDS.contains(&field.as_str()) {
        bail!("--choose {s}: the field is {}", FIELDS.join(", "));
    }
    let direction = direction.trim().to_ascii_lowercase().replace('-', "_");
    if !["to_server", "to_device", "skip"].contains(&direction.as_str()) {
        bail!("--choose {s}: the direction is to-server, to-device or skip");
    }
    Ok((point.trim().to_owned(), field, direction))
}

/// A value in a table cell: text quoted, lists joined, a routine's times by day
/// (`monday 07:00-18:00; saturday 08:00-12:00`).
fn show(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => format!("{s:?}"),
        Value::Array(a) => {
            a.iter().map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned)).collect::<Vec<_>>().join(",")
        }
        Value::Object(days) => days
            .iter()
            .map(|(day, periods)| {
                let spans: Vec<String> = periods
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| format!("{}-{}", p["on"].as_str().unwrap_or("?"), p["off"].as_str().unwrap_or("?")))
                    .collect();
                format!("{day} {}", spans.join(","))
            })
            .collect::<Vec<_>>()
            .join("; "),
        v => v.to_string(),
    }
}

/// The differences as a table, one row per field.
pub fn table(report: &Value) -> String {
    let rows = report["differences"].as_array().cloned().unwrap_or_default();
    let mut out = format!(
        "device {} ({}): {} field(s) differ, {} in sync\n",
        report["device"].as_str().unwrap_or(""),
        report["device_id"],
        rows.len(),
        report["in_sync"]
    );
    if rows.is_empty() {
        out.push_str("nothing to do\n");
        return out;
    }
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            [
                r["point"].as_str().unwrap_or("").to_owned(),
                r["field"].as_str().unwrap_or("").to_owned(),
                show(&r["device"]),
                show(&r["server"]),
                show(&r["last_synced"]),
                r["changed"].as_str().unwrap_or("").to_owned(),
                r["direction"].as_str().map_or("conflict: choose", |d| d).replace('_', "-"),
            ]
        })
        .collect();
    let head = ["POINT", "FIELD", "DEVICE", "SERVER", "LAST SYNCED", "CHANGED", "APPLY"];
    let widths: Vec<usize> =
        (0..7).map(|i| cells.iter().map(|c| c[i].chars().count()).max().unwrap_or(0).max(head[i].len())).collect();
    let line = |c: &[String]| {
        let mut l = String::new();
        for (i, cell) in c.iter().enumerate() {
            l.push_str(&format!("{cell:<w$}  ", w = widths[i]));
        }
        l.trim_end().to_owned() + "\n"
    };
    out.push_str(&line(&head.map(str::to_owned)));
    for c in &cells {
        out.push_str(&line(c));
    }
    out
}

/// Runs `t3000 sync`.
pub async fn sync(args: SyncArgs) -> anyhow::Result<()> {
    let choices: Vec<(String, String, String)> =
        args.choices.iter().map(|c| parse_choice(c)).collect::<anyhow::Result<_>>()?;
    let mut url = reqwest::Url::parse(&args.server.base()?).context("--url")?;
    url.path_segments_mut().map_err(|()| anyhow::anyhow!("--url cannot take a path"))?.extend([
        "api",
        "t3000",
        "devices",
        &args.device,
        "sync",
    ]);
    let client = reqwest::Client::new();
    let mut preview_url = url.clone();
    preview_url.query_pairs_mut().append_pair("strategy", args.strategy.api());
    let preview = json_answer(
        client.get(preview_url).bearer_auth(&args.server.token).send().await.context("GET the differences")?,
    )
    .await?;
    // Choices name points; the API takes their ids, from the differences.
    let mut body_choices = Vec::new();
    for (point, field, direction) in &choices {
        let row = preview["differences"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["point"].as_str().is_some_and(|p| p.eq_ignore_ascii_case(point)) && r["field"] == *field);
        let Some(row) = row else { bail!("--choose {point}.{field}: that field does not differ") };
        body_choices.push(json!({ "point": row["point"], "field": field, "direction": direction }));
    }
    if !args.apply {
        if args.json {
            say!("{}", serde_json::to_string_pretty(&preview)?);
        } else {
            say_part!("{}", table(&preview));
            if preview["differences"].as_array().is_some_and(|d| !d.is_empty()) {
                say!("(preview: run again with --apply to apply)");
            }
        }
        return Ok(());
    }
    let body = json!({ "strategy": args.strategy.api(), "choices": body_choices });
    let report = json_answer(
        client.post(url).bearer_auth(&args.server.token).json(&body).send().await.context("POST the sync")?,
    )
    .await?;
    if args.json {
        say!("{}", serde_json::to_string_pretty(&report)?);
    }
    let applied = report["applied"].as_array().cloned().unwrap_or_default();
    let failed: Vec<&Value> = applied.iter().filter(|a| !a["error"].is_null()).collect();
    if !args.json {
        for a in &applied {
            let result = a["error"].as_str().map_or_else(|| "ok".to_owned(), |e| format!("FAILED: {e}"));
            say!(
                "{} {} {} {}: {result}",
                a["point"].as_str().unwrap_or(""),
                a["field"].as_str().unwrap_or(""),
                a["direction"].as_str().unwrap_or("").replace('_', "-"),
                show(&a["value"])
            );
        }
        let open = report["unresolved"].as_array().map_or(0, Vec::len);
        say!(
            "applied {}, failed {}, left unresolved {open}, in sync {}",
            applied.len() - failed.len(),
            failed.len(),
            report["in_sync"]
        );
    }
    if !failed.is_empty() {
        bail!("{} change(s) failed", failed.len());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_parse_and_name_what_is_wrong() {
        assert_eq!(parse_choice("IN1.label=to-device").unwrap(), ("IN1".into(), "label".into(), "to_device".into()));
        assert_eq!(parse_choice("var2.Range=SKIP").unwrap(), ("var2".into(), "range".into(), "skip".into()));
        assert!(parse_choice("IN1=to-device").unwrap_err().to_string().contains("POINT.FIELD"));
        assert!(parse_choice("IN1.colour=skip").unwrap_err().to_string().contains("the field is"));
        assert!(parse_choice("IN1.label=up").unwrap_err().to_string().contains("the direction is"));
    }

    #[test]
    fn the_table_shows_each_row_and_conflicts() {
        let report = json!({"device": "ahu-1", "device_id": 1, "in_sync": 12, "differences": [
            {"point": "IN1", "field": "label", "device": "ZN1 TEMP", "server": "Zone one", "last_synced": null,
             "changed": "both", "direction": null},
            {"point": "VAR2", "field": "range", "device": 1, "server": 2, "last_synced": 1,
             "changed": "server", "direction": "to_device"}]});
        let t = table(&report);
        assert!(t.starts_with("device ahu-1 (1): 2 field(s) differ, 12 in sync\n"), "{t}");
        assert!(t.contains("IN1    label  \"ZN1 TEMP\"  \"Zone one\"  -            both     conflict: choose"), "{t}");
        assert!(t.contains("VAR2   range  1           2           1            server   to-device"), "{t}");
        assert!(
            table(&json!({"device": "x", "device_id": 2, "in_sync": 3, "differences": []})).contains("nothing to do")
        );
        assert_eq!(
            show(
                &json!({"monday": [{"on": "07:00", "off": "12:00"}, {"on": "13:00", "off": "24:00"}], "saturday": [{"on": "08:00", "off": "12:00"}]})
            ),
            "monday 07:00-12:00,13:00-24:00; saturday 08:00-12:00"
        );
        assert_eq!(show(&json!(["01-01", "12-25"])), "01-01,12-25");
    }
}
