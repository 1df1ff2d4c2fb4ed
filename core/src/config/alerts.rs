//! `[alerts]`: outbound alarm notifications, by webhook (`[[alerts.webhook]]`) and by e-mail
//! (`[alerts.smtp]` and `[[alerts.email]]`). Each channel says which alarms it takes (by rule, by
//! severity, by kind of transition), how many messages it may send per minute and per hour, and
//! how it retries. The server's notifier reads this section; it can be swapped while running.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{ConfigError, check_range};

/// `[alerts]`: outbound alarm notifications (none by default).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    /// Within one digest window, a channel sends the first `digest_after` alarms one message each;
    /// the alarms after them are held and sent as one digest message when the window ends.
    /// 1 ..= 1000.
    pub digest_after: u32,
    /// Length of the digest window, which starts at a channel's first alarm after a quiet period,
    /// 1 ..= 86_400 s.
    pub digest_window_secs: u64,
    /// Messages waiting for delivery per channel; more are dropped and counted, 1 ..= 100_000.
    pub queue: usize,
    /// Deliveries kept in the in-memory delivery log (`GET /api/t3000/alerts/deliveries`),
    /// 10 ..= 100_000.
    pub log_entries: usize,
    /// The name of this server or site (`Main St`), in every message's subject
    /// (`[T3000 Main St] ...`) and a webhook body's `site`; empty: none. At most 64 characters,
    /// no control characters.
    pub site: String,
    /// At a graceful shutdown (SIGTERM), how long the messages queued then (the held alarms are
    /// sent at once as digests) have to go out, 0 ..= 300 s, within `server.shutdown_timeout_secs`;
    /// what is still unsent after it is logged per channel.
    pub shutdown_grace_secs: u64,
    /// A PEM file of certificate authorities trusted besides the Mozilla roots built in, for a
    /// mail server or webhook receiver whose certificate a site's own CA signed. Read at start and
    /// again at every configuration reload.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<std::path::PathBuf>,
    /// The server that sends the e-mail channels' messages; required when there is an e-mail channel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp: Option<SmtpConfig>,
    /// Webhook channels.
    pub webhook: Vec<ChannelConfig>,
    /// E-mail channels.
    pub email: Vec<ChannelConfig>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            digest_after: 3,
            digest_window_secs: 60,
            queue: 1000,
            log_entries: 500,
            site: String::new(),
            shutdown_grace_secs: 5,
            ca_file: None,
            smtp: None,
            webhook: Vec::new(),
            email: Vec::new(),
        }
    }
}

/// A secret (webhook key, SMTP password): never shown by `Debug`, so it stays out of log lines.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl Secret {
    /// The secret itself, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether it is empty (not set).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"<redacted>\"" })
    }
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain text (a relay on the local network or on this machine).
    None,
    /// Plain text, then `STARTTLS` before anything else (usually port 587); refused if the server
    /// does not offer it.
    #[default]
    Starttls,
    /// TLS from the first byte (usually port 465).
    Tls,
}

/// `[alerts.smtp]`: the mail server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpConfig {
    /// Host name or address of the mail server; non-empty.
    pub host: String,
    /// Its port, 1 ..= 65535.
    pub port: u16,
    /// `none`, `starttls` or `tls`.
    pub tls: SmtpTls,
    /// User name for `AUTH PLAIN` / `AUTH LOGIN`; empty: no authentication.
    pub username: String,
    /// Password for the user name (never logged nor shown by the API).
    pub password: Secret,
    /// The sender address (`From:` and `MAIL FROM`), `name@domain`.
    pub from: String,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            host: String::new(),
            port: 587,
            tls: SmtpTls::Starttls,
            username: String::new(),
            password: Secret::default(),
            from: String::new(),
        }
    }
}

/// A rule named in a channel's `rules`: by its id or by its name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RuleRef {
    /// A rule id (the storage alarm is 0, the server's own faults 4294967290 ..= 4294967295).
    Id(i64),
    /// A rule name, exactly as written.
    Name(String),
}

/// Which transitions of an alarm a channel is told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertEvent {
    /// The alarm started.
    Raised,
    /// It moved to another level (way-high to high, ...).
    LevelChanged,
    /// Its condition went away (acknowledged or not).
    Cleared,
    /// Someone acknowledged it.
    Acknowledged,
}

impl AlertEvent {
    /// The serialized name (`raised`, `level_changed`, `cleared`, `acknowledged`).
    pub fn as_str(self) -> &'static str {
        match self {
            AlertEvent::Raised => "raised",
            AlertEvent::LevelChanged => "level_changed",
            AlertEvent::Cleared => "cleared",
            AlertEvent::Acknowledged => "acknowledged",
        }
    }
}

/// `[[alerts.webhook]]` and `[[alerts.email]]`: one channel. A webhook gets each message as a JSON
/// `POST` to `url`; an e-mail channel sends it to `to` through `[alerts.smtp]`. Both say which
/// alarms they take (by rule, severity and transition), how often they may send, and how they retry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChannelConfig {
    /// The channel's name, unique among all channels, 1 to 64 characters.
    pub name: String,
    /// Webhooks: the `http://` or `https://` URL (shown by the API only as scheme and host).
    pub url: String,
    /// Webhooks: key of the `X-T3000-Signature: sha256=<hex>` header (HMAC-SHA256 of
    /// `<X-T3000-Timestamp>.<body>`); empty: no signature.
    pub secret: Secret,
    /// E-mail: recipient addresses, `name@domain`; at least one.
    pub to: Vec<String>,
    /// Only these rules, by id or name; empty: every rule, the server's own alarms included.
    pub rules: Vec<RuleRef>,
    /// Only alarms of at least this severity: 1 (low, high, digital state) or 2 (way-low,
    /// way-high, device offline, data loss, the server's own faults).
    pub min_severity: u8,
    /// Which transitions: `raised`, `level_changed`, `cleared`, `acknowledged`; not empty.
    pub events: Vec<AlertEvent>,
    /// Most messages per minute (a digest counts as one); a message over it is held back (counted
    /// and logged as rate limited) and its alarms go out in one message as soon as the limits
    /// allow. 0: no limit.
    pub max_per_minute: u32,
    /// Most messages per hour; 0: no limit.
    pub max_per_hour: u32,
    /// Further attempts after a failed delivery, 0 ..= 20.
    pub retries: u32,
    /// Wait before the first retry, 10 ..= 3_600_000 ms; doubled for each further one.
    pub backoff_ms: u64,
    /// The longest one attempt (an HTTP request, a whole SMTP conversation) may take,
    /// 100 ..= 600_000 ms.
    pub timeout_ms: u64,
}

impl Default for ChannelConfig {
    fn default() -> Self {
        Self {
            name: String::new(),
            url: String::new(),
            secret: Secret::default(),
            to: Vec::new(),
            rules: Vec::new(),
            min_severity: 1,
            events: vec![AlertEvent::Raised, AlertEvent::LevelChanged, AlertEvent::Cleared],
            max_per_minute: 0,
            max_per_hour: 0,
            retries: 3,
            backoff_ms: 1000,
            timeout_ms: 10_000,
        }
    }
}

/// A plain `local@domain` address without spaces, angle brackets or line breaks (it goes into SMTP
/// commands and headers as it is).
fn check_address(key: &str, a: &str) -> Result<(), ConfigError> {
    let ok = match a.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !a.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | '"'))
        }
        None => false,
    };
    if ok { Ok(()) } else { Err(ConfigError::new(key, format!("must be an address like ops@example.com (got `{a}`)"))) }
}

fn check_channel_name(key: &str, name: &str) -> Result<(), ConfigError> {
    let n = name.chars().count();
    if n == 0 || n > 64 || name.chars().any(char::is_control) {
        return Err(ConfigError::new(
            key,
            format!("must be 1 to 64 characters without control characters (got `{name}`)"),
        ));
    }
    Ok(())
}

impl ChannelConfig {
    /// The checks both kinds share.
    fn validate_routing(&self, key: &str) -> Result<(), ConfigError> {
        check_range(&format!("{key}.min_severity"), self.min_severity, 1, 2)?;
        if self.events.is_empty() {
            return Err(ConfigError::new(
                format!("{key}.events"),
                "must list at least one of raised, level_changed, cleared, acknowledged",
            ));
        }
        for (i, r) in self.rules.iter().enumerate() {
            if let RuleRef::Name(n) = r
                && n.trim().is_empty()
            {
                return Err(ConfigError::new(format!("{key}.rules[{i}]"), "a rule name must not be empty"));
            }
        }
        check_range(&format!("{key}.retries"), self.retries, 0, 20)?;
        check_range(&format!("{key}.backoff_ms"), self.backoff_ms, 10, 3_600_000)?;
        check_range(&format!("{key}.timeout_ms"), self.timeout_ms, 100, 600_000)?;
        Ok(())
    }
}

/// A webhook URL without what may be a key: its user information (`user:token@`), and its path
/// and query (Slack's and Teams' URLs carry the key there).
fn redact_url(url: &str) -> String {
    let Some(start) = url.find("://").map(|i| i + 3) else { return url.to_owned() };
    let end = url[start..].find(['/', '?', '#']).map_or(url.len(), |e| start + e);
    let host = &url[start..end];
    let host = host.rsplit_once('@').map_or(host.to_owned(), |(_, h)| format!("{}@{h}", super::REDACTED));
    let rest = if end < url.len() { format!("/{}", super::REDACTED) } else { String::new() };
    format!("{}{host}{rest}", &url[..start])
}

impl AlertsConfig {
    /// The same settings with every secret (webhook keys and URLs' paths, the SMTP password)
    /// replaced by `<redacted>`, for printing.
    pub fn without_secrets(&self) -> AlertsConfig {
        let mut c = self.clone();
        let redacted = || Secret(super::REDACTED.to_owned());
        for w in &mut c.webhook {
            if !w.secret.is_empty() {
                w.secret = redacted();
            }
            w.url = redact_url(&w.url);
        }
        if let Some(smtp) = &mut c.smtp
            && !smtp.password.is_empty()
        {
            smtp.password = redacted();
        }
        c
    }

    /// Checks every value; the error names the dotted key (`alerts.webhook[1].url`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_range("alerts.digest_after", self.digest_after, 1, 1000)?;
        check_range("alerts.digest_window_secs", self.digest_window_secs, 1, 86_400)?;
        check_range("alerts.queue", self.queue, 1, 100_000)?;
        check_range("alerts.log_entries", self.log_entries, 10, 100_000)?;
        check_range("alerts.shutdown_grace_secs", self.shutdown_grace_secs, 0, 300)?;
        if self.site.chars().count() > 64 || self.site.chars().any(char::is_control) {
            return Err(ConfigError::new(
                "alerts.site",
                "must be at most 64 characters without control characters (line breaks, tabs)",
            ));
        }
        if self.ca_file.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
            return Err(ConfigError::new("alerts.ca_file", "must be the path of a PEM file (leave it out for none)"));
        }
        let mut names = std::collections::BTreeMap::new();
        let mut unique = |key: String, name: &str| match names.insert(name.to_owned(), key.clone()) {
            Some(first) => Err(ConfigError::new(key, format!("`{name}` is already the name of {first}"))),
            None => Ok(()),
        };
        for (i, w) in self.webhook.iter().enumerate() {
            let key = format!("alerts.webhook[{i}]");
            check_channel_name(&format!("{key}.name"), &w.name)?;
            unique(format!("{key}.name"), &w.name)?;
            let rest = w.url.strip_prefix("http://").or_else(|| w.url.strip_prefix("https://"));
            if rest.is_none_or(|r| r.is_empty() || r.starts_with('/') || r.contains(char::is_whitespace)) {
                return Err(ConfigError::new(
                    format!("{key}.url"),
                    "must be an http:// or https:// URL with a host (the value is not shown: it may hold a key)",
                ));
            }
            if !w.to.is_empty() {
                return Err(ConfigError::new(format!("{key}.to"), "only e-mail channels have recipients"));
            }
            w.validate_routing(&key)?;
        }
        for (i, e) in self.email.iter().enumerate() {
            let key = format!("alerts.email[{i}]");
            check_channel_name(&format!("{key}.name"), &e.name)?;
            unique(format!("{key}.name"), &e.name)?;
            if e.to.is_empty() {
                return Err(ConfigError::new(format!("{key}.to"), "must list at least one recipient"));
            }
            for (j, a) in e.to.iter().enumerate() {
                check_address(&format!("{key}.to[{j}]"), a)?;
            }
            if !e.url.is_empty() || !e.secret.is_empty() {
                return Err(ConfigError::new(format!("{key}.url"), "only webhooks have a url and a secret"));
            }
            e.validate_routing(&key)?;
        }
        if let Some(s) = &self.smtp {
            if s.host.trim().is_empty() || s.host.contains(char::is_whitespace) {
                return Err(ConfigError::new("alerts.smtp.host", "must be a host name or address"));
            }
            check_range("alerts.smtp.port", s.port, 1, 65_535)?;
            check_address("alerts.smtp.from", &s.from)?;
            if s.username.is_empty() != s.password.is_empty() {
                return Err(ConfigError::new(
                    "alerts.smtp.password",
                    "username and password are set together or not at all",
                ));
            }
        } else if !self.email.is_empty() {
            return Err(ConfigError::new("alerts.email", "e-mail channels need [alerts.smtp]"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::redact_url;

    fn parse(text: &str) -> Result<Config, super::ConfigError> {
        Config::parse(text, "t3000.toml", Vec::new())
    }

    #[test]
    fn channels_parse_with_their_routing_and_defaults() {
        let c = parse(
            r#"
[alerts]
digest_after = 2
site = "Main St"
[alerts.smtp]
host = "127.0.0.1"
port = 2525
tls = "none"
from = "t3000@example.com"
[[alerts.webhook]]
name = "ops"
url = "http://127.0.0.1:9/hook"
secret = "k"
rules = [3, "Boiler"]
min_severity = 2
events = ["raised", "acknowledged"]
max_per_hour = 10
[[alerts.email]]
name = "on-call"
to = ["a@example.com"]
"#,
        )
        .unwrap();
        let a = &c.alerts;
        assert_eq!(a.digest_after, 2);
        assert_eq!((a.site.as_str(), a.shutdown_grace_secs), ("Main St", 5));
        assert_eq!(a.webhook[0].rules, vec![super::RuleRef::Id(3), super::RuleRef::Name("Boiler".into())]);
        assert_eq!(a.webhook[0].max_per_hour, 10);
        assert_eq!(a.webhook[0].retries, 3);
        assert_eq!(a.email[0].events.len(), 3);
        assert_eq!(a.smtp.as_ref().unwrap().tls, super::SmtpTls::None);
        assert!(!format!("{a:?}").contains("\"k\""), "the secret is not in Debug output");
    }

    #[test]
    fn bad_channels_name_their_key_and_line() {
        let cases = [
            ("[[alerts.webhook]]\nname = \"a\"\nurl = \"ftp://x\"\n", "t3000.toml:3: alerts.webhook[0].url"),
            (
                "[[alerts.webhook]]\nname = \"a\"\nurl = \"http://x\"\nmin_severity = 3\n",
                "alerts.webhook[0].min_severity",
            ),
            ("[[alerts.email]]\nname = \"a\"\nto = [\"x@y\"]\n", "alerts.email: e-mail channels need [alerts.smtp]"),
            (
                "[alerts.smtp]\nhost = \"h\"\nfrom = \"f@x\"\n[[alerts.email]]\nname = \"a\"\nto = [\"no-at\"]\n",
                "alerts.email[0].to[0]",
            ),
            (
                "[[alerts.webhook]]\nname = \"a\"\nurl = \"http://x\"\n[[alerts.webhook]]\nname = \"a\"\nurl = \"http://y\"\n",
                "alerts.webhook[1].name: `a` is already the name of alerts.webhook[0].name",
            ),
            ("[alerts.smtp]\nhost = \"h\"\nfrom = \"f@x\"\nusername = \"u\"\n", "alerts.smtp.password"),
            ("[alerts]\ndigest_after = 0\n", "alerts.digest_after"),
            ("[alerts]\nsite = \"Main\\nSt\"\n", "t3000.toml:2: alerts.site"),
            ("[alerts]\nshutdown_grace_secs = 301\n", "alerts.shutdown_grace_secs"),
            ("[[alerts.webhook]]\nname = \"a\"\nurl = \"http://x\"\nevents = []\n", "alerts.webhook[0].events"),
        ];
        for (text, want) in cases {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    /// The commented channels of `config/t3000.example.toml` parse when uncommented.
    #[test]
    fn example_channels_parse_when_uncommented() {
        let example = include_str!("../../../config/t3000.example.toml");
        let start = example.find("# [alerts.smtp]").expect("the example documents [alerts.smtp]");
        let end = start + example[start..].find("\n[plugins]").expect("[plugins] follows");
        let block: String = example[start..end]
            .lines()
            .filter_map(|l| l.strip_prefix("# "))
            // Keys and tables, not the prose between them.
            .filter(|l| l.starts_with('[') || l.split_once(" = ").is_some_and(|(k, _)| !k.contains(' ')))
            .map(|l| l.split("  #").next().unwrap_or(l).trim_end())
            .collect::<Vec<_>>()
            .join("\n");
        let c = parse(&block).unwrap();
        assert_eq!((c.alerts.webhook.len(), c.alerts.email.len()), (1, 1));
        assert_eq!(c.alerts.email[0].min_severity, 2);
    }

    #[test]
    fn without_secrets_hides_keys_url_paths_and_the_password() {
        let c = parse(
            "[alerts.smtp]\nhost = \"h\"\nfrom = \"f@x\"\nusername = \"u\"\npassword = \"pw1\"\n[[alerts.webhook]]\nname = \"a\"\nurl = \"https://hooks.example.com/T0/key2?x=1\"\nsecret = \"k3\"\n",
        )
        .unwrap();
        let shown = toml::to_string(&c.alerts.without_secrets()).unwrap();
        for secret in ["pw1", "key2", "k3"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("https://hooks.example.com/<redacted>"), "{shown}");
    }

    #[test]
    fn user_information_in_a_webhook_url_is_redacted() {
        assert_eq!(
            redact_url("https://ops:tok3n@hooks.example.com/a/b"),
            "https://<redacted>@hooks.example.com/<redacted>"
        );
        assert_eq!(redact_url("http://u:p@10.0.0.5:8080"), "http://<redacted>@10.0.0.5:8080");
        assert_eq!(redact_url("https://hooks.example.com?key=1"), "https://hooks.example.com/<redacted>");
        assert_eq!(redact_url("https://hooks.example.com"), "https://hooks.example.com");
    }

    #[test]
    fn a_bad_url_is_not_echoed() {
        let e =
            parse("[[alerts.webhook]]\nname = \"a\"\nurl = \"htp://hooks/secret-token\"\n").unwrap_err().to_string();
        assert!(!e.contains("secret-token"), "{e}");
    }
}
