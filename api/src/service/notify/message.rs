//! How a message reads: the JSON body of a webhook and the subject and text of an e-mail.

use super::plan::{Message, event_kind};
use crate::model::alarm::AlarmEvent;
use serde_json::{Value, json};

/// RFC 3339 in UTC, seconds precision, from epoch microseconds.
pub fn rfc3339(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| us.to_string())
}

/// One alarm in a webhook body.
fn alarm_json(e: &AlarmEvent) -> Value {
    let t = &e.transition;
    json!({
        "rule_id": e.rule_id,
        "name": e.name,
        "point_id": e.point_id,
        "device_id": e.device_id,
        "message": e.message,
        "event": event_kind(e).as_str(),
        "state": t.to.as_str(),
        "level": t.level.as_str(),
        "severity": t.level.severity(),
        "value": t.value,
        "at": rfc3339(t.at_us),
        "at_us": t.at_us,
        "acknowledged_by": match &t.kind {
            t3_core::alarm::TransitionKind::Acknowledged { by } => Some(by.as_str()),
            _ => None,
        },
    })
}

/// The JSON body a webhook gets: `{"kind", "delivery", "channel", "sent_at", "subject", "alarms": [...]}`.
pub fn webhook_body(channel: &str, delivery: u64, m: &Message, now_us: i64) -> String {
    json!({
        "kind": m.kind(),
        "delivery": delivery,
        "channel": channel,
        "sent_at": rfc3339(now_us),
        "subject": subject(m),
        "alarms": m.events().iter().map(alarm_json).collect::<Vec<_>>(),
    })
    .to_string()
}

/// One line about one alarm: `ACTIVE high: Boiler flow (rule 3) value 95.5 at 2026-...`.
fn line(e: &AlarmEvent) -> String {
    let t = &e.transition;
    let mut s = format!("{} {}: {} (rule {})", t.to.as_str().to_uppercase(), t.level.as_str(), e.name, e.rule_id);
    if let Some(v) = t.value {
        s.push_str(&format!(" value {v}"));
    }
    s.push_str(&format!(" at {}", rfc3339(t.at_us)));
    if let t3_core::alarm::TransitionKind::Acknowledged { by } = &t.kind {
        s.push_str(&format!(", acknowledged by {by}"));
    }
    s
}

/// The subject line: `[T3000] ACTIVE high: Boiler flow`, `[T3000] 8 alarms`, `[T3000] Test message`.
pub fn subject(m: &Message) -> String {
    match m {
        Message::Alarm(e) => {
            format!("[T3000] {} {}: {}", e.transition.to.as_str().to_uppercase(), e.transition.level.as_str(), e.name)
        }
        Message::Digest(v) => format!("[T3000] {} alarms", v.len()),
        Message::Test => "[T3000] Test message".to_owned(),
    }
}

/// The plain text of an e-mail.
pub fn text(channel: &str, m: &Message) -> String {
    let mut out = String::new();
    match m {
        Message::Alarm(e) => {
            out.push_str(&line(e));
            out.push('\n');
            if let Some(msg) = &e.message {
                out.push_str(&format!("\n{msg}\n"));
            }
            if let Some(p) = e.point_id {
                out.push_str(&format!("\nPoint: {p}\n"));
            }
        }
        Message::Digest(v) => {
            out.push_str(&format!("{} alarms came in too quickly to send one by one:\n\n", v.len()));
            for e in v {
                out.push_str(&line(e));
                out.push('\n');
            }
        }
        Message::Test => out.push_str("A test message from the T3000 server: this channel works.\n"),
    }
    out.push_str(&format!("\n-- \nT3000 alert channel \"{channel}\"\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use t3_core::alarm::{AlarmState, Level, Transition, TransitionKind};

    #[test]
    fn an_alarm_reads_in_the_subject_text_and_json() {
        let e = AlarmEvent {
            rule_id: 3,
            name: "Boiler flow".into(),
            point_id: Some(12),
            device_id: None,
            message: Some("check the pump".into()),
            transition: Transition {
                at_us: 1_795_651_200_000_000,
                from: AlarmState::Normal,
                to: AlarmState::Active,
                level: Level::WayHigh,
                value: Some(95.5),
                kind: TransitionKind::Raised,
            },
        };
        let m = Message::Alarm(Box::new(e));
        assert_eq!(subject(&m), "[T3000] ACTIVE wayhigh: Boiler flow");
        let t = text("ops", &m);
        assert!(t.starts_with("ACTIVE wayhigh: Boiler flow (rule 3) value 95.5 at 2026-11-26T00:00:00Z\n"), "{t}");
        assert!(t.contains("check the pump"));
        let v: Value = serde_json::from_str(&webhook_body("ops", 7, &m, 1_795_651_201_000_000)).unwrap();
        assert_eq!(v["kind"], "alarm");
        assert_eq!(v["delivery"], 7);
        assert_eq!(v["alarms"][0]["event"], "raised");
        assert_eq!(v["alarms"][0]["severity"], 2);
        assert_eq!(v["alarms"][0]["value"], 95.5);
        assert_eq!(v["sent_at"], "2026-11-26T00:00:01Z");
    }
}
