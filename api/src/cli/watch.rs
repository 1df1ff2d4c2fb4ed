//! `t3000 watch POINT...`: a small WebSocket client that prints live point updates.

use anyhow::{Context, bail};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    /// Point ids to follow; none with --all.
    pub points: Vec<u32>,
    /// Follow every point.
    #[arg(long, conflicts_with = "points")]
    pub all: bool,
    /// The server (http://, https://, ws:// or wss://).
    #[arg(long, default_value = "http://127.0.0.1:9103")]
    pub url: String,
    /// A bearer token (a login session or an API token).
    #[arg(long, env = "T3000_TOKEN", hide_env_values = true)]
    pub token: String,
    /// At most this many updates per second per point (coalesced to the latest value).
    #[arg(long)]
    pub max_rate: Option<f64>,
    /// Also print device status, alarm, schedule, program and system messages.
    #[arg(long)]
    pub everything: bool,
    /// Print each message as the JSON the server sent.
    #[arg(long)]
    pub json: bool,
}

fn ws_url(base: &str) -> anyhow::Result<String> {
    let base = base.trim_end_matches('/');
    let rest = if let Some(r) = base.strip_prefix("http://") {
        format!("ws://{r}")
    } else if let Some(r) = base.strip_prefix("https://") {
        format!("wss://{r}")
    } else if base.starts_with("ws://") || base.starts_with("wss://") {
        base.to_owned()
    } else {
        bail!("--url must start with http://, https://, ws:// or wss:// (got `{base}`)")
    };
    Ok(if rest.ends_with("/api/t3000/ws") { rest } else { format!("{rest}/api/t3000/ws") })
}

/// One line for a person.
fn line(v: &Value) -> String {
    let s = |k: &str| v[k].as_str().unwrap_or("").to_owned();
    match v["type"].as_str().unwrap_or("") {
        "PointUpdate" => {
            let value = if v["has_value"] == false { "-".to_owned() } else { v["value"].to_string() };
            let device = v["device_id"].as_i64().map_or_else(String::new, |d| format!(", device {d}"));
            let snap = if v["snapshot"] == true { "  (current)" } else { "" };
            format!(
                "{}  point {} ({}{device})  {value}  {} ({}){snap}",
                s("time"),
                v["point_id"],
                s("point_type"),
                s("quality_name"),
                v["quality"]
            )
        }
        "PointUpdates" => v["updates"].as_array().into_iter().flatten().map(line).collect::<Vec<_>>().join("\n"),
        "DeviceStatus" => {
            let seen = v["last_seen_time"].as_str().map_or_else(String::new, |t| format!(", last seen {t}"));
            format!(
                "device {} ({}): {}, connection quality {}{seen}",
                v["device_id"],
                s("name"),
                s("state"),
                v["connection_quality"]
            )
        }
        "AlarmNotification" => format!(
            "{}  alarm {} ({}): {} {} [{} {}] {}",
            s("time"),
            v["alarm_id"],
            s("name"),
            s("alarm_type"),
            s("level"),
            s("severity_name"),
            v["severity"],
            s("message")
        ),
        "ScheduleUpdate" => {
            let next = v["next_run_time"].as_str().map_or_else(String::new, |t| format!(", next change {t}"));
            let on = if v["on"] == true { "ON" } else { "OFF" };
            format!(
                "{}  schedule {} ({}): {}, {}, {on}{next}",
                s("time"),
                v["schedule_id"],
                s("name"),
                s("change"),
                s("status")
            )
        }
        "ProgramUpdate" => {
            let error = match &v["error"] {
                Value::Null => String::new(),
                e => format!(
                    ": line {} (text line {}, column {}): {}",
                    e["line_number"],
                    e["line"],
                    e["column"],
                    e["message"].as_str().unwrap_or("")
                ),
            };
            let enabled = if v["enabled"] == true { "enabled" } else { "disabled" };
            format!(
                "{}  program {} ({}): {}, {}, {enabled}{error}",
                s("time"),
                v["program_id"],
                s("name"),
                s("change"),
                s("status")
            )
        }
        "SystemStatus" => {
            let errors = v["system_errors"].as_array().map(|e| e.iter().filter_map(Value::as_str).collect::<Vec<_>>());
            let errors =
                errors.filter(|e| !e.is_empty()).map_or_else(String::new, |e| format!("; errors: {}", e.join("; ")));
            format!(
                "{}  system: {}/{} devices online, {} points active, {:.1} polls/s, {:.1} samples/s{errors}",
                s("time"),
                v["active_devices"],
                v["total_devices"],
                v["active_points"],
                v["collection_rate"].as_f64().unwrap_or(0.0),
                v["ingest_rate"].as_f64().unwrap_or(0.0),
            )
        }
        "Lagged" => format!("lagged: {} updates missed; a fresh snapshot follows", v["missed"]),
        _ => v.to_string(),
    }
}

/// Connects, subscribes and prints until the server closes the connection or Ctrl-C.
pub async fn watch(args: WatchArgs) -> anyhow::Result<()> {
    if args.points.is_empty() && !args.all {
        bail!("name the points to watch (ids), or --all");
    }
    let url = ws_url(&args.url)?;
    let mut req = url.as_str().into_client_request().context("the URL")?;
    req.headers_mut()
        .insert("authorization", format!("Bearer {}", args.token).parse().context("the token is not a header value")?);
    let (mut ws, _) = match tokio_tungstenite::connect_async(req).await {
        Ok(c) => c,
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            let body = resp.body().as_ref().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
            bail!("{url}: {} {body}", resp.status())
        }
        Err(e) => bail!("{url}: {e}"),
    };
    let mut sub = json!({"type": "Subscribe", "request_id": "watch"});
    sub["points"] = if args.all { json!("all") } else { json!(args.points) };
    if args.everything {
        sub["devices"] = json!("all");
        sub["alarms"] = json!(true);
        sub["schedules"] = json!(true);
        sub["programs"] = json!(true);
        sub["system"] = json!(true);
    }
    if let Some(r) = args.max_rate {
        sub["max_rate_hz"] = json!(r);
    }
    ws.send(Message::text(sub.to_string())).await.context("subscribe")?;
    loop {
        let msg = tokio::select! {
            m = ws.next() => m,
            _ = tokio::signal::ctrl_c() => {
                let _ = ws.close(None).await;
                return Ok(());
            }
        };
        let text = match msg {
            None => bail!("the server closed the connection"),
            Some(Err(e)) => bail!("connection lost: {e}"),
            Some(Ok(Message::Close(c))) => {
                bail!("the server closed the connection: {}", c.map(|c| c.reason.to_string()).unwrap_or_default())
            }
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(_)) => continue,
        };
        let v: Value = serde_json::from_str(text.as_str()).context("the server sent something that is not JSON")?;
        let kind = v["type"].as_str().unwrap_or("");
        if kind == "Error" {
            eprintln!("error: {} ({})", v["message"].as_str().unwrap_or(""), v["code"].as_str().unwrap_or(""));
            if v["request_id"] == "watch" {
                bail!("the subscription was refused");
            }
            continue;
        }
        if matches!(kind, "Welcome" | "Subscribed" | "Pong") {
            continue;
        }
        if args.json {
            say!("{text}");
        } else {
            say!("{}", line(&v));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(ws_url("http://127.0.0.1:9103").unwrap(), "ws://127.0.0.1:9103/api/t3000/ws");
        assert_eq!(ws_url("https://bms.example.com/").unwrap(), "wss://bms.example.com/api/t3000/ws");
        assert_eq!(ws_url("ws://h:1/api/t3000/ws").unwrap(), "ws://h:1/api/t3000/ws");
        assert!(ws_url("h:1").is_err());
    }

    #[test]
    fn lines() {
        let v = json!({"type": "PointUpdate", "point_id": 7, "point_type": "variable", "device_id": 2,
            "value": 21.5, "has_value": true, "timestamp": 1_767_225_600_000i64, "time": "2026-01-01T00:00:00.000Z",
            "quality": 192, "quality_name": "good", "snapshot": true});
        assert_eq!(line(&v), "2026-01-01T00:00:00.000Z  point 7 (variable, device 2)  21.5  good (192)  (current)");
        let bad = json!({"type": "PointUpdate", "point_id": 7, "point_type": "input", "value": 0.0, "has_value": false,
            "time": "t", "quality": 24, "quality_name": "bad/comm_failure", "snapshot": false});
        assert_eq!(line(&bad), "t  point 7 (input)  -  bad/comm_failure (24)");
        let batch = json!({"type": "PointUpdates", "updates": [v, bad]});
        assert_eq!(line(&batch).lines().count(), 2);
        let a = json!({"type": "AlarmNotification", "alarm_id": 3, "name": "VAR1 high", "alarm_type": "raised",
            "level": "high", "severity": 1, "severity_name": "warning", "message": "too warm", "time": "t"});
        assert_eq!(line(&a), "t  alarm 3 (VAR1 high): raised high [warning 1] too warm");
        let s = json!({"type": "SystemStatus", "active_devices": 1, "total_devices": 2, "active_points": 5,
            "collection_rate": 2.0, "ingest_rate": 10.0, "system_errors": ["device x: 1 failed poll(s): timeout"],
            "error_count": 1, "time": "t"});
        assert_eq!(
            line(&s),
            "t  system: 1/2 devices online, 5 points active, 2.0 polls/s, 10.0 samples/s; errors: device x: 1 failed poll(s): timeout"
        );
        let u = json!({"type": "ScheduleUpdate", "schedule_id": 4, "name": "occ", "change": "state",
            "status": "active", "on": true, "next_run": 0, "next_run_time": null, "time": "t"});
        assert_eq!(line(&u), "t  schedule 4 (occ): state, active, ON");
        let p = json!({"type": "ProgramUpdate", "program_id": 3, "name": "AHU", "change": "state", "status": "error",
            "enabled": true, "error": {"line_number": 30, "line": 3, "column": 12, "message": "division by zero"},
            "time": "t"});
        assert_eq!(
            line(&p),
            "t  program 3 (AHU): state, error, enabled: line 30 (text line 3, column 12): division by zero"
        );
    }
}
