//! How a message reads: the JSON body of a webhook and the subject and text of an e-mail. Besides
//! the alarms themselves a message names the site (`alerts.site`) and each alarm's point (its
//! name, the name people gave it, its device, its units) as [`Names`] finds them.

use super::plan::{Message, event_kind};
use crate::model::alarm::AlarmEvent;
use serde_json::{Value, json};

/// RFC 3339 in UTC, seconds precision, from epoch microseconds.
pub fn rfc3339(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| us.to_string())
}

/// A name on one line: line breaks and other control characters become spaces (a rule or point
/// name is shown inside a line of text and in a header).
pub fn one_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// What a message says of an alarm's point.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PointInfo {
    /// The point's name at its device (`VAR1`), or a manual point's name.
    pub name: String,
    /// The name people gave it (`Boiler supply`), if any.
    pub label: Option<String>,
    /// Its device's name; none for a manual point.
    pub device: Option<String>,
    /// The units of its value (`°C`), if known.
    pub units: Option<String>,
}

/// Finds the names of points and devices for the messages; the server's points and devices
/// ([`crate::service::point_names`]) in the server, a fixed list in tests.
pub trait Names: Send + Sync {
    /// Point `id`, if it exists.
    fn point(&self, id: u32) -> Option<PointInfo>;
    /// The name of device `id` (a device record's id), if it exists.
    fn device(&self, id: i64) -> Option<String>;
}

/// Knows no names: messages show ids only.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoNames;

impl Names for NoNames {
    fn point(&self, _: u32) -> Option<PointInfo> {
        None
    }
    fn device(&self, _: i64) -> Option<String> {
        None
    }
}

/// The point and device of one alarm, as found when its message was sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct About {
    pub point: Option<PointInfo>,
    /// The device's name: the point's, else the alarm's own device (a device-offline alarm).
    pub device: Option<String>,
}

impl About {
    /// Looks up the point and device of `e`.
    pub fn of(names: &dyn Names, e: &AlarmEvent) -> About {
        let point = e.point_id.and_then(|p| names.point(p));
        let device =
            point.as_ref().and_then(|p| p.device.clone()).or_else(|| e.device_id.and_then(|d| names.device(d)));
        About { point, device }
    }

    /// `Boiler supply (VAR1 on ahu)`, `VAR1 on ahu`, `point 257`, `device ahu`; none when the alarm
    /// has neither a point nor a device.
    fn place(&self, e: &AlarmEvent) -> Option<String> {
        match (&self.point, e.point_id) {
            (Some(p), _) => {
                let at = match &self.device {
                    Some(d) => format!("{} on {}", one_line(&p.name), one_line(d)),
                    None => one_line(&p.name),
                };
                Some(match &p.label {
                    Some(l) => format!("{} ({at})", one_line(l)),
                    None => at,
                })
            }
            (None, Some(id)) => Some(format!("point {id}")),
            (None, None) => self.device.as_ref().map(|d| format!("device {}", one_line(d))),
        }
    }

    fn units(&self) -> Option<&str> {
        self.point.as_ref().and_then(|p| p.units.as_deref())
    }
}

/// What a message says besides its alarms: the site, and each alarm's point and device (in the
/// order of [`Message::events`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    /// `alerts.site`; empty: none.
    pub site: String,
    pub about: Vec<About>,
}

impl Context {
    /// Looks up what `m`'s alarms are about.
    pub fn new(site: &str, names: &dyn Names, m: &Message) -> Context {
        Context { site: site.to_owned(), about: m.events().iter().map(|e| About::of(names, e)).collect() }
    }

    fn about(&self, i: usize) -> About {
        self.about.get(i).cloned().unwrap_or_default()
    }
}

/// One alarm in a webhook body.
fn alarm_json(e: &AlarmEvent, about: &About) -> Value {
    let t = &e.transition;
    let point = about.point.as_ref();
    json!({
        "rule_id": e.rule_id,
        "name": e.name,
        "point_id": e.point_id,
        "point_name": point.map(|p| p.name.as_str()),
        "point_label": point.and_then(|p| p.label.as_deref()),
        "device_id": e.device_id,
        "device_name": about.device,
        "message": e.message,
        "event": event_kind(e).as_str(),
        "state": t.to.as_str(),
        "level": t.level.as_str(),
        "severity": t.level.severity(),
        "value": t.value,
        "units": about.units(),
        "at": rfc3339(t.at_us),
        "at_us": t.at_us,
        "acknowledged_by": match &t.kind {
            t3_core::alarm::TransitionKind::Acknowledged { by } => Some(by.as_str()),
            _ => None,
        },
    })
}

/// The JSON body a webhook gets: `{"kind", "delivery", "channel", "site", "sent_at", "subject",
/// "alarms": [...]}`.
pub fn webhook_body(channel: &str, delivery: u64, m: &Message, cx: &Context, now_us: i64) -> String {
    json!({
        "kind": m.kind(),
        "delivery": delivery,
        "channel": channel,
        "site": cx.site,
        "sent_at": rfc3339(now_us),
        "subject": subject(&cx.site, m),
        "alarms": m.events().iter().enumerate().map(|(i, e)| alarm_json(e, &cx.about(i))).collect::<Vec<_>>(),
    })
    .to_string()
}

/// One line about one alarm: `ACTIVE high: Boiler flow (rule 3) value 95.5 °C at 2026-...;
/// point Boiler supply (VAR1 on ahu)`.
fn line(e: &AlarmEvent, about: &About) -> String {
    let t = &e.transition;
    let mut s =
        format!("{} {}: {} (rule {})", t.to.as_str().to_uppercase(), t.level.as_str(), one_line(&e.name), e.rule_id);
    if let Some(v) = t.value {
        s.push_str(&format!(" value {v}"));
        if let Some(u) = about.units() {
            s.push_str(&format!(" {}", one_line(u)));
        }
    }
    s.push_str(&format!(" at {}", rfc3339(t.at_us)));
    if let t3_core::alarm::TransitionKind::Acknowledged { by } = &t.kind {
        s.push_str(&format!(", acknowledged by {}", one_line(by)));
    }
    if let Some(place) = about.place(e) {
        s.push_str(&format!("; {place}"));
    }
    s
}

/// The subject line: `[T3000] ACTIVE high: Boiler flow`, `[T3000 Main St] 8 alarms`,
/// `[T3000] Test message`.
pub fn subject(site: &str, m: &Message) -> String {
    let site = one_line(site);
    let tag = if site.trim().is_empty() { "[T3000]".to_owned() } else { format!("[T3000 {}]", site.trim()) };
    match m {
        Message::Alarm(e) => format!(
            "{tag} {} {}: {}",
            e.transition.to.as_str().to_uppercase(),
            e.transition.level.as_str(),
            one_line(&e.name)
        ),
        Message::Digest(v) => format!("{tag} {} alarms", v.len()),
        Message::Test => format!("{tag} Test message"),
    }
}

/// The plain text of an e-mail.
pub fn text(channel: &str, m: &Message, cx: &Context) -> String {
    let mut out = String::new();
    match m {
        Message::Alarm(e) => {
            let about = cx.about(0);
            out.push_str(&line(e, &about));
            out.push('\n');
            if let Some(msg) = &e.message {
                out.push_str(&format!("\n{msg}\n"));
            }
            let mut details = String::new();
            if let Some(p) = &about.point {
                let label = p.label.as_deref().map(|l| format!("{}, ", one_line(l))).unwrap_or_default();
                let id = e.point_id.map(|id| format!(", id {id}")).unwrap_or_default();
                details.push_str(&format!("Point: {label}{}{id}\n", one_line(&p.name)));
                if let Some(u) = &p.units {
                    details.push_str(&format!("Units: {}\n", one_line(u)));
                }
            } else if let Some(id) = e.point_id {
                details.push_str(&format!("Point: {id}\n"));
            }
            if let Some(d) = &about.device {
                details.push_str(&format!("Device: {}\n", one_line(d)));
            }
            if !details.is_empty() {
                out.push('\n');
                out.push_str(&details);
            }
        }
        Message::Digest(v) => {
            out.push_str(&format!("{} alarms came in too quickly to send one by one:\n\n", v.len()));
            for (i, e) in v.iter().enumerate() {
                out.push_str(&line(e, &cx.about(i)));
                out.push('\n');
            }
        }
        Message::Test => out.push_str("A test message from the T3000 server: this channel works.\n"),
    }
    let site = one_line(cx.site.trim());
    let from = if site.is_empty() { String::new() } else { format!(" at {site}") };
    out.push_str(&format!("\n-- \nT3000{from}, alert channel \"{}\"\n", one_line(channel)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use t3_core::alarm::{AlarmState, Level, Transition, TransitionKind};

    fn boiler(name: &str) -> AlarmEvent {
        AlarmEvent {
            rule_id: 3,
            name: name.into(),
            point_id: Some(257),
            device_id: Some(4),
            message: Some("check the pump".into()),
            transition: Transition {
                at_us: 1_795_651_200_000_000,
                from: AlarmState::Normal,
                to: AlarmState::Active,
                level: Level::WayHigh,
                value: Some(95.5),
                kind: TransitionKind::Raised,
            },
        }
    }

    /// Point 257 is `VAR1` of device `ahu`, labelled `Boiler supply`, in °C; device 4 is `ahu`.
    struct Plant;

    impl Names for Plant {
        fn point(&self, id: u32) -> Option<PointInfo> {
            (id == 257).then(|| PointInfo {
                name: "VAR1".into(),
                label: Some("Boiler supply".into()),
                device: Some("ahu".into()),
                units: Some("°C".into()),
            })
        }
        fn device(&self, id: i64) -> Option<String> {
            (id == 4).then(|| "ahu".into())
        }
    }

    #[test]
    fn an_alarm_reads_in_the_subject_text_and_json() {
        let m = Message::Alarm(Box::new(boiler("Boiler flow")));
        let cx = Context::new("", &NoNames, &m);
        assert_eq!(subject("", &m), "[T3000] ACTIVE wayhigh: Boiler flow");
        let t = text("ops", &m, &cx);
        assert!(
            t.starts_with("ACTIVE wayhigh: Boiler flow (rule 3) value 95.5 at 2026-11-26T00:00:00Z; point 257\n"),
            "{t}"
        );
        assert!(t.contains("check the pump"));
        let v: Value = serde_json::from_str(&webhook_body("ops", 7, &m, &cx, 1_795_651_201_000_000)).unwrap();
        assert_eq!(v["kind"], "alarm");
        assert_eq!(v["delivery"], 7);
        assert_eq!(v["site"], "");
        assert_eq!(v["alarms"][0]["event"], "raised");
        assert_eq!(v["alarms"][0]["severity"], 2);
        assert_eq!(v["alarms"][0]["value"], 95.5);
        assert_eq!(v["alarms"][0]["point_name"], Value::Null);
        assert_eq!(v["sent_at"], "2026-11-26T00:00:01Z");
    }

    /// The 3 am reader: the site in the subject, the point by its names, its device and the
    /// value's units in the text and the JSON.
    #[test]
    fn a_message_names_the_site_the_point_its_device_and_units() {
        let m = Message::Alarm(Box::new(boiler("Boiler")));
        let cx = Context::new("Main St", &Plant, &m);
        assert_eq!(subject(&cx.site, &m), "[T3000 Main St] ACTIVE wayhigh: Boiler");
        let t = text("on-call", &m, &cx);
        assert!(
            t.starts_with(
                "ACTIVE wayhigh: Boiler (rule 3) value 95.5 °C at 2026-11-26T00:00:00Z; Boiler supply (VAR1 on ahu)\n"
            ),
            "{t}"
        );
        assert!(t.contains("\nPoint: Boiler supply, VAR1, id 257\nUnits: °C\nDevice: ahu\n"), "{t}");
        assert!(t.ends_with("\n-- \nT3000 at Main St, alert channel \"on-call\"\n"), "{t}");
        let v: Value = serde_json::from_str(&webhook_body("ops", 7, &m, &cx, 0)).unwrap();
        assert_eq!(v["site"], "Main St");
        assert_eq!(v["subject"], "[T3000 Main St] ACTIVE wayhigh: Boiler");
        let a = &v["alarms"][0];
        assert_eq!(
            (a["point_name"].as_str(), a["point_label"].as_str(), a["device_name"].as_str(), a["units"].as_str()),
            (Some("VAR1"), Some("Boiler supply"), Some("ahu"), Some("°C"))
        );
        // A device's own alarm (offline): no point, the device by name.
        let mut offline = boiler("ahu offline");
        offline.point_id = None;
        let d = Message::Digest(vec![boiler("Boiler"), offline]);
        let cx = Context::new("Main St", &Plant, &d);
        let t = text("ops", &d, &cx);
        assert!(t.contains(" at 2026-11-26T00:00:00Z; device ahu\n"), "{t}");
        assert_eq!(subject(&cx.site, &d), "[T3000 Main St] 2 alarms");
    }

    /// A rule name with line breaks stays on its line in the text and the subject.
    #[test]
    fn line_breaks_in_names_become_spaces() {
        let m = Message::Alarm(Box::new(boiler("Boiler\r\nflow")));
        let cx = Context::new("Main\nSt", &NoNames, &m);
        assert_eq!(subject(&cx.site, &m), "[T3000 Main St] ACTIVE wayhigh: Boiler  flow");
        let t = text("ops", &m, &cx);
        assert!(t.starts_with("ACTIVE wayhigh: Boiler  flow (rule 3)"), "{t}");
        assert!(!t.contains('\r'));
        assert_eq!(t.lines().filter(|l| l.contains("Boiler")).count(), 1, "{t}");
    }
}
