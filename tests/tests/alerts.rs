//! Outbound alerts, end to end: alarm rules on a device's points raised by pushed samples reach a
//! webhook (a receiver in this test that fails the first attempt) and an SMTP server (aiosmtpd,
//! `tests/peers/smtp_sink.py` run by `$T3000_PYTHON`) naming the site, the point and its device;
//! a recipient the mail server refuses does not stop the others; a burst of alarms arrives as one
//! digest; a dead endpoint's failures show in `/api/t3000/alerts/deliveries`, the channel list and
//! `/metrics` while the server keeps serving; no secret appears in an answer or the log; and a
//! graceful stop sends the held alarms and logs what it could not deliver.

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use t3_tests::*;

const WAIT: Duration = Duration::from_secs(20);
const SECRET: &str = "s3cret-webhook-key";
const SMTP_PASSWORD: &str = "smtp-pass-Zq81";
const URL_KEY: &str = "path-key-77";

/// A device only there for its points (VAR1...): not polled (a failed poll would store
/// bad-quality samples over the pushed ones), so only pushed samples give its points values.
const AHU: &str = "[[devices]]\nname = \"ahu\"\nprotocol = \"modbus-tcp\"\nip_address = \"127.0.0.1\"\nport = 1\n\
                   unit_id = 1\nprofile = \"T3-controller\"\nenabled = false\n";

/// `[alerts.smtp]` for `tests/peers/smtp_sink.py` on `port`, in plain text, with AUTH.
fn plain_smtp(port: u16) -> String {
    format!(
        "[alerts.smtp]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\nusername = \"t3000\"\n\
         password = \"{SMTP_PASSWORD}\"\nfrom = \"t3000@example.com\"\n"
    )
}

fn now_us() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as i64
}

/// A peer of `tests/peers/` run by `$T3000_PYTHON` (an SMTP server on aiosmtpd, an HTTPS
/// receiver), with the JSON lines it printed: one per mail or request received.
struct Sink {
    child: Child,
    port: u16,
    lines: Arc<Mutex<Vec<Value>>>,
}

impl Sink {
    fn start(script: &str, args: &[&str]) -> Sink {
        let python = std::env::var("T3000_PYTHON").unwrap_or_else(|_| {
            panic!("T3000_PYTHON is not set: the alert tests need a Python with aiosmtpd (bash .ci/run installs it)")
        });
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("peers").join(script);
        let mut child = Command::new(&python)
            .arg(&path)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {python} (T3000_PYTHON): {e}"));
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        let port: u16 = first
            .strip_prefix("listening ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{script} did not start (does {python} have aiosmtpd?): `{first}`"));
        let received: Arc<Mutex<Vec<Value>>> = Arc::default();
        let seen = received.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str(&line) {
                    seen.lock().unwrap().push(v);
                }
            }
        });
        Sink { child, port, lines: received }
    }

    /// `tests/peers/smtp_sink.py`: requires AUTH with `user` and `password`; `extra` adds its
    /// TLS options.
    fn smtp(user: &str, password: &str, extra: &[&str]) -> Sink {
        let mut args = vec!["--user", user, "--password", password];
        args.extend_from_slice(extra);
        Sink::start("smtp_sink.py", &args)
    }

    /// The mails (or requests) received so far.
    fn mails(&self) -> Vec<Value> {
        self.lines.lock().unwrap().clone()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A header of a mail's raw content.
fn header<'a>(content: &'a str, name: &str) -> Option<&'a str> {
    let head = content.split("\r\n\r\n").next()?;
    head.split("\r\n").find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(": ")))
}

fn body(content: &str) -> &str {
    content.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

fn signature(timestamp: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.{body}").as_bytes());
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarms_reach_webhooks_and_mail_with_retries_digests_and_visible_failures() {
    let (hook_port, hits) = webhook::receiver(true).await;
    let sink = Sink::smtp("t3000", SMTP_PASSWORD, &["--refuse", "bad@example.com"]);
    let dead_port = REFUSED_PORT;
    let server = TestServer::start(&format!(
        r#"
{AHU}

[alerts]
site = "Main St"
digest_after = 1
digest_window_secs = 3

{smtp}

[[alerts.webhook]]
name = "hook"
url = "http://127.0.0.1:{hook_port}/hook/{URL_KEY}"
secret = "{SECRET}"
rules = ["Boiler"]
retries = 3
backoff_ms = 100

[[alerts.webhook]]
name = "dead"
url = "http://127.0.0.1:{dead_port}/x"
rules = ["Boiler"]
retries = 1
backoff_ms = 50

[[alerts.email]]
name = "mail"
to = ["ops@example.com", "bad@example.com", "boss@example.com"]
# The test's own rules only: the server's own alarms (disk, storage) are no business of this test.
rules = ["Boiler", "Zone 1", "Zone 2", "Zone 3", "Zone 4", "Zone 5", "Zone 6"]
"#,
        smtp = plain_smtp(sink.port)
    ));
    let points = server.get("/api/t3000/devices/ahu/points").await.ok_json();
    let point = |name: &str| {
        points["points"].as_array().unwrap().iter().find(|p| p["name"] == name).and_then(|p| p["id"].as_u64()).unwrap()
    };
    let high = |name: &str, p: u64, limit: f64, message: &str| {
        json!({"name": name, "point_id": p,
            "rule": {"condition": {"kind": "limits", "high": limit}, "message": message}})
    };

    // One alarm: a rule past its limit raises it at once.
    let boiler_point = point("VAR1");
    server.ingest_ok(&[Sample::good(boiler_point as u32, now_us(), 95.0)]).await;
    let boiler = server.create_alarm_rule(&high("Boiler", boiler_point, 80.0, ".5 bar over: check the pump")).await;

    // The webhook: the first attempt got 500, the retry 200; the same delivery id, a signed body.
    poll_until("the webhook's retry", WAIT, || async { hits.lock().unwrap().len() >= 2 }).await;
    let got = hits.lock().unwrap().clone();
    assert_eq!(got.len(), 2, "one message, two attempts: {got:?}");
    assert_eq!(got[0].headers.get("x-t3000-delivery"), got[1].headers.get("x-t3000-delivery"));
    // The same message; only `sent_at` is the attempt's own (a second may have begun between them).
    let attempts: Vec<Value> = got.iter().map(|h| serde_json::from_str(&h.body).unwrap()).collect();
    let without_time = |v: &Value| {
        let mut v = v.clone();
        v.as_object_mut().unwrap().remove("sent_at");
        v
    };
    assert_eq!(without_time(&attempts[0]), without_time(&attempts[1]));
    assert!(attempts[0]["sent_at"].as_str() <= attempts[1]["sent_at"].as_str(), "{attempts:?}");
    let hit = &got[1];
    assert_eq!(hit.path, format!("/hook/{URL_KEY}"));
    assert_eq!(hit.headers.get("content-type").map(String::as_str), Some("application/json"));
    let ts = hit.headers.get("x-t3000-timestamp").expect("a timestamp header");
    assert!((ts.parse::<i64>().unwrap() - now_us() / 1_000_000).abs() < 60, "a fresh timestamp: {ts}");
    assert_eq!(hit.headers.get("x-t3000-signature"), Some(&signature(ts, &hit.body)), "the signature verifies");
    let v: Value = serde_json::from_str(&hit.body).unwrap();
    assert_eq!(
        (v["kind"].as_str(), v["channel"].as_str(), v["site"].as_str()),
        (Some("alarm"), Some("hook"), Some("Main St")),
        "{v}"
    );
    let a = &v["alarms"][0];
    assert_eq!(a["rule_id"], json!(boiler), "{v}");
    assert_eq!(
        (a["name"].as_str(), a["event"].as_str(), a["state"].as_str()),
        (Some("Boiler"), Some("raised"), Some("active"))
    );
    assert_eq!(
        (a["level"].as_str(), a["value"].as_f64(), a["point_id"].as_u64()),
        (Some("high"), Some(95.0), Some(boiler_point))
    );
    assert_eq!((a["point_name"].as_str(), a["device_name"].as_str()), (Some("VAR1"), Some("ahu")), "{v}");

    // The mail: to the two recipients the server accepts (it refuses bad@ with 550), authenticated,
    // the site in the subject, the alarm and its point in the body (dot-stuffed).
    poll_until("the alarm mail", WAIT, || async { !sink.mails().is_empty() }).await;
    let mail = sink.mails()[0].clone();
    let content = mail["content"].as_str().unwrap();
    assert_eq!(mail["rcpt_tos"], json!(["ops@example.com", "boss@example.com"]), "{mail}");
    assert_eq!(mail["mail_from"], "t3000@example.com");
    assert_eq!(mail["authenticated_as"], "t3000");
    assert_eq!(header(content, "Subject"), Some("[T3000 Main St] ACTIVE high: Boiler"), "{content}");
    assert_eq!(header(content, "To"), Some("ops@example.com, bad@example.com, boss@example.com"));
    assert_eq!(header(content, "From"), Some("t3000@example.com"));
    assert!(header(content, "Date").is_some() && header(content, "Message-ID").is_some(), "{content}");
    let text = body(content);
    assert!(text.starts_with(&format!("ACTIVE high: Boiler (rule {boiler}) value 95")), "{text}");
    assert!(text.contains("; VAR1 on ahu\r\n") || text.contains(" (VAR1 on ahu)\r\n"), "the point: {text}");
    assert!(text.contains("\r\nPoint: ") && text.contains(&format!(", id {boiler_point}\r\n")), "{text}");
    assert!(text.contains("\r\nDevice: ahu\r\n"), "{text}");
    assert!(text.contains("\r\n.5 bar over: check the pump\r\n"), "a leading dot arrives as sent: {text}");
    // The refused recipient is named in the delivery, which is sent (once the sink's 250 is read:
    // it prints the mail before it answers).
    poll_until("the mail's delivery sent", WAIT, || async {
        !server
            .get("/api/t3000/alerts/deliveries?channel=mail&status=sent")
            .await
            .ok_json()
            .as_array()
            .unwrap()
            .is_empty()
    })
    .await;
    let mail_log = server.get("/api/t3000/alerts/deliveries?channel=mail&status=sent").await.ok_json();
    let refused = mail_log[0]["last_error"].as_str().unwrap_or_default().to_owned();
    assert!(refused.contains("bad@example.com: 550"), "{mail_log}");
    assert!(!refused.contains("ops@") && !refused.contains("boss@"), "{refused}");

    // The dead endpoint: both attempts failed, visible in the log, the channel and the metrics.
    poll_until("the dead channel's failure", WAIT, || async {
        server.get("/api/t3000/alerts/deliveries?channel=dead&status=failed").await.ok_json().as_array().unwrap().len()
            == 1
    })
    .await;
    let failed = server.get("/api/t3000/alerts/deliveries?channel=dead").await.ok_json();
    assert_eq!(failed[0]["attempts"], 2, "{failed}");
    assert!(failed[0]["last_error"].as_str().unwrap().contains("cannot connect"), "{failed}");
    let channels = server.get("/api/t3000/alerts/channels").await.ok_json();
    let ch = |name: &str| channels.as_array().unwrap().iter().find(|c| c["name"] == name).cloned().unwrap();
    assert_eq!((ch("dead")["failed"].as_u64(), ch("dead")["sent"].as_u64()), (Some(1), Some(0)), "{channels}");
    assert!(ch("dead")["last_error"].is_string());
    assert_eq!((ch("hook")["sent"].as_u64(), ch("hook")["signed"].as_bool()), (Some(1), Some(true)));
    assert_eq!(ch("hook")["target"], format!("http://127.0.0.1:{hook_port}"));
    let metrics = server.get("/metrics").await.text();
    assert!(metrics.contains("t3000_alert_messages_total{channel=\"dead\",outcome=\"failed\"} 1\n"), "{metrics}");
    assert!(metrics.contains("t3000_alert_messages_total{channel=\"hook\",outcome=\"sent\"} 1\n"), "{metrics}");
    let help = metrics.lines().find(|l| l.starts_with("# HELP t3000_alert_messages_total ")).unwrap();
    assert!(help.contains("failed (messages given up after every attempt failed)"), "{help}");

    // Many alarms at once (the rules first, on points without a value; then one batch puts all six
    // over their limits): the mail channel sends them as one digest (at most one of them alone, had
    // the Boiler's digest window ended just before).
    let zones: Vec<u64> = (2..=7).map(|i| point(&format!("VAR{i}"))).collect();
    let mut zone_rules = Vec::new();
    for (i, &p) in zones.iter().enumerate() {
        zone_rules.push(server.create_alarm_rule(&high(&format!("Zone {}", i + 1), p, 50.0, "too warm")).await);
    }
    let at = now_us();
    server.ingest_ok(&zones.iter().map(|&p| Sample::good(p as u32, at, 60.0)).collect::<Vec<_>>()).await;
    let zone_mails =
        || sink.mails().into_iter().skip(1).map(|m| m["content"].as_str().unwrap().to_owned()).collect::<Vec<String>>();
    poll_until("every zone alarm by mail", WAIT, || async {
        let text: String = zone_mails().concat();
        zone_rules.iter().all(|r| text.contains(&format!("(rule {r})")))
    })
    .await;
    let mails = zone_mails();
    assert!(mails.len() <= 2, "six alarms in at most two mails: {mails:?}");
    let digest = mails.iter().find(|m| header(m, "Subject").is_some_and(|s| s.ends_with(" alarms"))).expect("a digest");
    let n: usize = header(digest, "Subject")
        .unwrap()
        .trim_start_matches("[T3000 Main St] ")
        .trim_end_matches(" alarms")
        .parse()
        .unwrap();
    assert!(n >= 5, "{digest}");
    assert!(body(digest).contains("alarms came in too quickly"), "{digest}");
    let log = server.get("/api/t3000/alerts/deliveries?channel=mail&status=sent").await.ok_json();
    assert!(
        log.as_array().unwrap().iter().any(|d| d["kind"] == "digest" && d["rule_ids"].as_array().unwrap().len() == n),
        "{log}"
    );
    assert_eq!(hits.lock().unwrap().len(), 2, "the webhook takes only the Boiler");

    // A test message, and the errors around it.
    let t = server.post_json("/api/t3000/alerts/test", &json!({"channel": "mail"})).await.ok_json();
    assert_eq!((t["kind"].as_str(), t["status"].as_str()), (Some("test"), Some("sent")), "{t}");
    poll_until("the test mail", WAIT, || async {
        sink.mails()
            .iter()
            .any(|m| header(m["content"].as_str().unwrap(), "Subject") == Some("[T3000 Main St] Test message"))
    })
    .await;
    let r = server.post_json("/api/t3000/alerts/test", &json!({"channel": "nope"})).await;
    r.assert_error("unknown channel", reqwest::StatusCode::NOT_FOUND, Some("not_found"));
    let r = server.post_json("/api/t3000/alerts/test", &json!({"chanel": "mail"})).await;
    r.assert_client_error("misspelled field");
    let r = server.get("/api/t3000/alerts/deliveries?status=lost").await;
    r.assert_error("unknown status", reqwest::StatusCode::BAD_REQUEST, Some("invalid_status"));
    let viewer = server.user_client("vera", "viewer").await;
    let r =
        server.call(&viewer, reqwest::Method::POST, "/api/t3000/alerts/test", Some(&json!({"channel": "mail"}))).await;
    r.assert_error("a viewer's test", reqwest::StatusCode::FORBIDDEN, None);
    server.call(&viewer, reqwest::Method::GET, "/api/t3000/alerts/channels", None).await.ok_json();

    // The server still serves, and no secret is in an answer or the log.
    assert_eq!(server.get("/healthz").await.status, reqwest::StatusCode::OK);
    let answers = format!(
        "{}{}",
        server.get("/api/t3000/alerts/channels").await.text(),
        server.get("/api/t3000/alerts/deliveries?limit=10000").await.text()
    );
    for secret in [SECRET, SMTP_PASSWORD, URL_KEY] {
        assert!(!answers.contains(secret), "{secret} in an answer");
        assert!(!server.stderr().contains(secret), "{secret} in the log");
    }
}

/// A certificate authority made with the `openssl` command line, and a certificate it signed for
/// 127.0.0.1 (files in `dir`: `<name>-ca.pem`, `<name>-server.pem`, `<name>-server.key`).
struct TestCa {
    ca: std::path::PathBuf,
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
}

fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = Command::new("openssl").current_dir(dir).args(args).output().unwrap_or_else(|e| {
        panic!("cannot run openssl (bash .ci/run installs it): {e}");
    });
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

impl TestCa {
    fn new(dir: &std::path::Path, name: &str) -> TestCa {
        let f = |suffix: &str| format!("{name}-{suffix}");
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
        let subject = format!("/CN=T3000 test CA {name}");
        let mut args = vec!["req", "-x509", "-days", "2", "-subj", &subject];
        args.extend_from_slice(&ec);
        let (ca_key, ca) = (f("ca.key"), f("ca.pem"));
        args.extend_from_slice(&["-keyout", &ca_key, "-out", &ca]);
        args.extend_from_slice(&[
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
        ]);
        openssl(dir, &args);
        let (key, csr, cert, ext) = (f("server.key"), f("server.csr"), f("server.pem"), f("server.ext"));
        let mut args = vec!["req", "-subj", "/CN=127.0.0.1", "-keyout", &key, "-out", &csr];
        args.extend_from_slice(&ec);
        openssl(dir, &args);
        std::fs::write(
            dir.join(&ext),
            "subjectAltName = IP:127.0.0.1\nbasicConstraints = CA:FALSE\nextendedKeyUsage = serverAuth\n",
        )
        .unwrap();
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-days",
                "2",
                "-in",
                &csr,
                "-CA",
                &ca,
                "-CAkey",
                &ca_key,
                "-CAcreateserial",
                "-out",
                &cert,
                "-extfile",
                &ext,
            ],
        );
        TestCa { ca: dir.join(ca), cert: dir.join(cert), key: dir.join(key) }
    }
}

/// TLS to a site's own servers: with `[alerts] ca_file`, mail goes over STARTTLS and over TLS from
/// the first byte, and webhooks over HTTPS, to servers whose certificate a private CA signed;
/// without it (or with another CA in the file) the certificate is refused and the delivery fails
/// saying so. Every reload reads the file again, and a file that holds no certificate is refused
/// naming `alerts.ca_file` and its line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_reach_servers_signed_by_the_sites_own_ca_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let site = TestCa::new(dir.path(), "site");
    let other = TestCa::new(dir.path(), "other");
    let trusted = dir.path().join("trusted.pem");
    std::fs::copy(&site.ca, &trusted).unwrap();
    let (cert, key) = (site.cert.to_str().unwrap(), site.key.to_str().unwrap());
    let starttls = Sink::smtp("t3000", SMTP_PASSWORD, &["--cert", cert, "--key", key, "--tls", "starttls"]);
    let implicit = Sink::smtp("t3000", SMTP_PASSWORD, &["--cert", cert, "--key", key, "--tls", "tls"]);
    let hook = Sink::start("https_sink.py", &["--cert", cert, "--key", key]);
    let alerts = |ca_file: Option<&std::path::Path>, tls: &str, port: u16| {
        let ca = ca_file.map(|p| format!("ca_file = {:?}\n", p.to_str().unwrap())).unwrap_or_default();
        format!(
            r#"
[alerts]
{ca}
[alerts.smtp]
host = "127.0.0.1"
port = {port}
tls = "{tls}"
username = "t3000"
password = "{SMTP_PASSWORD}"
from = "t3000@example.com"

[[alerts.webhook]]
name = "hook"
url = "https://127.0.0.1:{hook}/hook/{URL_KEY}"
secret = "{SECRET}"
retries = 0

[[alerts.email]]
name = "mail"
to = ["ops@example.com"]
retries = 0
"#,
            hook = hook.port
        )
    };
    let server = TestServer::start(&alerts(Some(&trusted), "starttls", starttls.port));
    let test = |channel: &'static str| {
        let server = &server;
        async move { server.post_json("/api/t3000/alerts/test", &json!({"channel": channel})).await.ok_json() }
    };
    let reload = || async { server.post_json("/api/t3000/config/reload", &json!({})).await };

    // Trusted: STARTTLS, then the mail inside TLS; the HTTPS webhook, signed.
    let t = test("mail").await;
    assert_eq!(t["status"], "sent", "{t}");
    poll_until("the mail over STARTTLS", WAIT, || async { !starttls.mails().is_empty() }).await;
    let mail = &starttls.mails()[0];
    assert_eq!((mail["tls"].as_bool(), mail["authenticated_as"].as_str()), (Some(true), Some("t3000")), "{mail}");
    let t = test("hook").await;
    assert_eq!(t["status"], "sent", "{t}");
    poll_until("the HTTPS webhook", WAIT, || async { !hook.mails().is_empty() }).await;
    let hit = &hook.mails()[0];
    assert_eq!(hit["path"], format!("/hook/{URL_KEY}"));
    let ts = hit["headers"]["x-t3000-timestamp"].as_str().unwrap();
    assert_eq!(
        hit["headers"]["x-t3000-signature"].as_str(),
        Some(signature(ts, hit["body"].as_str().unwrap()).as_str())
    );

    // TLS from the first byte (port 465 style).
    server.rewrite_config(&alerts(Some(&trusted), "tls", implicit.port));
    let r = reload().await.ok_json();
    assert!(r["applied"].as_array().unwrap().iter().any(|c| c["key"] == "alerts.smtp.tls"), "{r}");
    let t = test("mail").await;
    assert_eq!(t["status"], "sent", "{t}");
    poll_until("the mail over TLS", WAIT, || async { !implicit.mails().is_empty() }).await;
    assert_eq!(implicit.mails()[0]["tls"], true);

    // Another CA in the same file: a reload reads it again, and the site's certificate is refused.
    std::fs::copy(&other.ca, &trusted).unwrap();
    let r = reload().await.ok_json();
    assert!(r["applied"].as_array().unwrap().is_empty(), "the file's path did not change: {r}");
    for channel in ["mail", "hook"] {
        let t = test(channel).await;
        assert_eq!(t["status"], "failed", "{t}");
        let e = t["last_error"].as_str().unwrap();
        assert!(e.contains("certificate") && e.contains("UnknownIssuer"), "{channel}: {e}");
        assert!(!e.contains(URL_KEY), "{e}");
    }
    // No ca_file: only the built-in roots, which do not know the site's CA.
    std::fs::copy(&site.ca, &trusted).unwrap();
    server.rewrite_config(&alerts(None, "tls", implicit.port));
    reload().await.ok_json();
    let t = test("mail").await;
    assert!(t["last_error"].as_str().unwrap().contains("UnknownIssuer"), "{t}");
    assert_eq!(implicit.mails().len(), 1);

    // A file that is no certificate: the reload is refused naming the key and its line, and the
    // trust in force stays.
    server.rewrite_config(&alerts(Some(&site.key), "tls", implicit.port));
    let r = reload().await;
    r.assert_error("a key as ca_file", reqwest::StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_config"));
    let v = r.json();
    assert_eq!(v["key"], "alerts.ca_file", "{v}");
    assert!(v["line"].as_u64().is_some(), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("no certificate"), "{v}");
    assert_eq!(hook.mails().len(), 1);
    for secret in [SECRET, SMTP_PASSWORD, URL_KEY] {
        assert!(!server.stderr().contains(secret), "{secret} in the log");
    }
}

/// The tester's case: five alarms at once with `digest_after = 3` and a 60 s window (three sent,
/// two held), then SIGTERM: the two held go out at once as a digest before the server exits (its
/// subject, with a long non-ASCII site, decoded by Python's e-mail parser), and what could not be
/// delivered within `shutdown_grace_secs` (a receiver that never answers) or failed (a dead
/// endpoint, its retries no longer waiting for their backoff) is logged at warn per channel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_sends_the_held_alarms_and_logs_what_it_could_not_deliver() {
    let sink = Sink::smtp("t3000", SMTP_PASSWORD, &[]);
    // Takes connections (the kernel's backlog) but never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let site = "Hauptstraße 12, Gebäude Süd: Kesselhaus und Lüftungszentrale";
    let mut server = TestServer::start(&format!(
        r#"
{AHU}

[alerts]
site = "{site}"
digest_after = 3
digest_window_secs = 60
shutdown_grace_secs = 2

{smtp}

[[alerts.email]]
name = "mail"
to = ["ops@example.com"]
rules = ["Zone 1", "Zone 2", "Zone 3", "Zone 4", "Zone 5"]

[[alerts.webhook]]
name = "silent"
url = "http://{silent}/hook"
timeout_ms = 600000
rules = ["Zone 1", "Zone 2", "Zone 3", "Zone 4", "Zone 5"]

[[alerts.webhook]]
name = "dead"
url = "http://127.0.0.1:{REFUSED_PORT}/hook"
retries = 2
backoff_ms = 600000
rules = ["Zone 1", "Zone 2", "Zone 3", "Zone 4", "Zone 5"]
"#,
        smtp = plain_smtp(sink.port),
        silent = silent.local_addr().unwrap(),
    ));
    let points = server.get("/api/t3000/devices/ahu/points").await.ok_json();
    let point = |name: &str| {
        points["points"].as_array().unwrap().iter().find(|p| p["name"] == name).and_then(|p| p["id"].as_u64()).unwrap()
    };
    let ids: Vec<u64> = (1..=5).map(|i| point(&format!("VAR{i}"))).collect();
    let at = now_us();
    server.ingest_ok(&ids.iter().map(|&p| Sample::good(p as u32, at, 60.0)).collect::<Vec<_>>()).await;
    for (i, &p) in ids.iter().enumerate() {
        let rule = json!({"name": format!("Zone {}", i + 1), "point_id": p,
            "rule": {"condition": {"kind": "limits", "high": 50.0}}});
        server.create_alarm_rule(&rule).await;
    }
    poll_until("three mails", WAIT, || async { sink.mails().len() == 3 }).await;
    poll_until("two alarms held", WAIT, || async {
        let channels = server.get("/api/t3000/alerts/channels").await.ok_json();
        channels.as_array().unwrap().iter().any(|c| c["name"] == "mail" && c["held"] == 2)
    })
    .await;

    server.send_sigterm();
    let status = server.wait_exit(WAIT * 3).expect("the server stops");
    assert_eq!(status.code(), Some(0), "{}", server.stderr());
    poll_until("the digest", WAIT, || async { sink.mails().len() == 4 }).await;
    let digest = &sink.mails()[3];
    assert_eq!(digest["subject"], format!("[T3000 {site}] 2 alarms"), "{digest}");
    let content = digest["content"].as_str().unwrap();
    let head = content.split("\r\n\r\n").next().unwrap();
    assert!(head.split("\r\n").all(|l| l.len() <= 78), "folded header lines: {head}");

    let log = server.stderr();
    let not_delivered = |channel: &str| {
        log.lines()
            .find(|l| l.contains("alert messages not delivered") && l.contains(&format!("channel={channel} ")))
            .unwrap_or_else(|| panic!("no warning for {channel}:\n{log}"))
            .to_owned()
    };
    // Three alarms and the digest each: in flight or queued at the silent one, failed at the dead one.
    let silent_line = not_delivered("silent");
    assert!(
        silent_line.contains("WARN") && silent_line.contains("undelivered=4") && silent_line.contains("unsent=4"),
        "{silent_line}"
    );
    let dead_line = not_delivered("dead");
    assert!(dead_line.contains("undelivered=4") && dead_line.contains("failed=4"), "{dead_line}");
    assert!(!log.lines().any(|l| l.contains("alert messages not delivered") && l.contains("channel=mail ")), "{log}");
}

/// A recipient the mail server refuses for now (`450`, greylisting) while it takes the message for
/// the others gets the same message alone at the next attempt; the delivery says so while it
/// waits, keeps naming the recipient refused for good (`550`), and the message counts as sent once.
/// Before its rule exists, the channel's `rules` entry is reported as naming no alarm.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recipient_refused_for_now_gets_the_mail_alone_at_the_next_attempt() {
    let sink = Sink::smtp("t3000", SMTP_PASSWORD, &["--greylist", "late@example.com", "--refuse", "bad@example.com"]);
    let server = TestServer::start(&format!(
        r#"
{AHU}

{smtp}

[[alerts.email]]
name = "mail"
to = ["ops@example.com", "late@example.com", "bad@example.com"]
rules = ["Boiler"]
retries = 2
backoff_ms = 5000
"#,
        smtp = plain_smtp(sink.port),
    ));
    let points = server.get("/api/t3000/devices/ahu/points").await.ok_json();
    let point =
        points["points"].as_array().unwrap().iter().find(|p| p["name"] == "VAR1").unwrap()["id"].as_u64().unwrap();
    // No rule "Boiler" yet: the channel and the log say its rules name no alarm.
    let channels = server.get("/api/t3000/alerts/channels").await.ok_json();
    assert_eq!(channels[0]["unmatched_rules"], json!(["Boiler"]), "{channels}");
    let warned = |l: &str| l.contains("WARN") && l.contains("channel=mail") && l.contains("rules=Boiler");
    poll_until("the warning", WAIT, || async { server.stderr().lines().any(warned) }).await;
    server.ingest_ok(&[Sample::good(point as u32, now_us(), 95.0)]).await;
    let rule = json!({"name": "Boiler", "point_id": point, "rule": {"condition": {"kind": "limits", "high": 80.0}}});
    server.create_alarm_rule(&rule).await;
    let channels = server.get("/api/t3000/alerts/channels").await.ok_json();
    assert_eq!(channels[0]["unmatched_rules"], json!([]), "{channels}");

    // The first attempt: to ops@ only; the delivery waits 5 s (ample for the polls below to see
    // it) to try late@ again, and says why.
    let seen = Mutex::new(Value::Null);
    poll_until("the delivery waiting to retry", WAIT, || async {
        let log = server.get("/api/t3000/alerts/deliveries?channel=mail").await.ok_json();
        *seen.lock().unwrap() = log[0].clone();
        log[0]["status"] == "retrying"
    })
    .await;
    let d = seen.into_inner().unwrap();
    assert_eq!(d["attempts"], 1, "{d}");
    let why = d["last_error"].as_str().unwrap_or_default();
    assert!(why.contains("refused for now, tried again: late@example.com: 450 4.2.0"), "{why}");
    assert!(why.contains("recipients refused: bad@example.com: 550 5.1.1"), "{why}");
    assert!(!why.contains("ops@"), "{why}");
    assert_eq!(sink.mails()[0]["rcpt_tos"], json!(["ops@example.com"]));

    // The second: the same message to late@ alone.
    poll_until("the second mail", WAIT, || async { sink.mails().len() == 2 }).await;
    let mails = sink.mails();
    assert_eq!(mails[1]["rcpt_tos"], json!(["late@example.com"]));
    let (first, second) = (mails[0]["content"].as_str().unwrap(), mails[1]["content"].as_str().unwrap());
    assert_eq!(header(first, "Message-ID"), header(second, "Message-ID"), "one message");
    assert_eq!(header(second, "To"), Some("ops@example.com, late@example.com, bad@example.com"));
    assert_eq!(body(first), body(second));
    poll_until("the delivery sent", WAIT, || async {
        let log = server.get("/api/t3000/alerts/deliveries?channel=mail").await.ok_json();
        log[0]["status"] == "sent"
    })
    .await;
    let log = server.get("/api/t3000/alerts/deliveries?channel=mail").await.ok_json();
    assert_eq!(log[0]["attempts"], 2, "{log}");
    let why = log[0]["last_error"].as_str().unwrap_or_default();
    assert!(why.starts_with("recipients refused: bad@example.com: 550") && !why.contains("late@"), "{why}");
    let channels = server.get("/api/t3000/alerts/channels").await.ok_json();
    assert_eq!((channels[0]["sent"].as_u64(), channels[0]["failed"].as_u64()), (Some(1), Some(0)), "{channels}");
    assert_eq!(sink.mails().len(), 2, "ops@ got it once");
}
