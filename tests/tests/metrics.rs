//! `GET /metrics` end to end: it needs a token, every line is Prometheus text, and ingest, WAL
//! commits, flushes, history / SQL queries and the polls of a `t3000 simulate` device show up.

use reqwest::Method;
use std::collections::HashMap;
use std::time::Duration;
use t3_tests::*;

/// Label names and values, in order.
type Labels = Vec<(String, String)>;
/// One sample line: name, labels, value.
type Line = (String, Labels, f64);

fn is_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == ':')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
}

fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => s.parse().map_err(|e| format!("value '{s}': {e}")),
    }
}

/// Parses `{k="v",...}` (escapes `\\`, `\"`, `\n`); returns the labels and the rest of the line.
fn parse_labels(s: &str) -> Result<(Labels, &str), String> {
    let mut labels = Vec::new();
    let mut rest = s.strip_prefix('{').ok_or("no '{'")?;
    loop {
        if let Some(r) = rest.strip_prefix('}') {
            return Ok((labels, r));
        }
        let eq = rest.find('=').ok_or("label without '='")?;
        let key = &rest[..eq];
        if !is_name(key) {
            return Err(format!("bad label name '{key}'"));
        }
        let mut chars = rest[eq + 1..].strip_prefix('"').ok_or("label value not quoted")?.char_indices();
        let mut value = String::new();
        let end = loop {
            match chars.next().ok_or("unterminated label value")? {
                (i, '"') => break i,
                (_, '\\') => match chars.next().ok_or("dangling escape")?.1 {
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    'n' => value.push('\n'),
                    c => return Err(format!("bad escape \\{c}")),
                },
                (_, '\n') => return Err("raw line feed in a label value".into()),
                (_, c) => value.push(c),
            }
        };
        labels.push((key.to_owned(), value));
        rest = &rest[eq + 1 + 1 + end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

/// Checks every line of a text exposition (comments `# HELP` / `# TYPE`, samples
/// `name{labels} value`), that each sample belongs to the family typed before it, and that
/// histograms are cumulative and end at `+Inf` = `_count`. Returns the samples.
fn parse_exposition(text: &str) -> Vec<Line> {
    let mut out = Vec::new();
    let mut types: HashMap<String, String> = HashMap::new();
    let mut current: Option<String> = None;
    for (n, line) in text.lines().enumerate() {
        let fail = |why: String| -> ! { panic!("line {}: {why}: {line:?}\n{text}", n + 1) };
        if let Some(c) = line.strip_prefix('#') {
            let mut w = c.trim_start().splitn(3, ' ');
            match (w.next(), w.next(), w.next()) {
                (Some("HELP"), Some(name), _) if is_name(name) => {}
                (Some("TYPE"), Some(name), Some(kind))
                    if is_name(name) && ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) =>
                {
                    if types.insert(name.to_owned(), kind.to_owned()).is_some() {
                        fail("a second TYPE for the same metric".into());
                    }
                    current = Some(name.to_owned());
                }
                _ => fail("a comment that is neither HELP nor TYPE".into()),
            }
            continue;
        }
        if line.is_empty() {
            fail("an empty line".into());
        }
        let name_end = line.find(['{', ' ']).unwrap_or_else(|| fail("no value".into()));
        let name = &line[..name_end];
        if !is_name(name) {
            fail(format!("bad metric name '{name}'"));
        }
        let (labels, rest) = if line[name_end..].starts_with('{') {
            parse_labels(&line[name_end..]).unwrap_or_else(|e| fail(e))
        } else {
            (Vec::new(), &line[name_end..])
        };
        let mut fields = rest.strip_prefix(' ').unwrap_or_else(|| fail("no space before the value".into())).split(' ');
        let value = parse_value(fields.next().unwrap_or("")).unwrap_or_else(|e| fail(e));
        if let Some(ts) = fields.next()
            && ts.parse::<i64>().is_err()
        {
            fail(format!("bad timestamp '{ts}'"));
        }
        if fields.next().is_some() {
            fail("trailing fields".into());
        }
        let family = current.as_deref().unwrap_or_else(|| fail("a sample before any TYPE".into()));
        let belongs = name == family
            || (types[family] == "histogram"
                && ["_bucket", "_sum", "_count"].iter().any(|s| [family, s].concat() == name));
        if !belongs {
            fail(format!("sample of '{name}' under the TYPE of '{family}'"));
        }
        out.push((name.to_owned(), labels, value));
    }
    for (family, kind) in &types {
        if kind != "histogram" {
            continue;
        }
        // Group the buckets by their labels other than `le`.
        let mut series: HashMap<Labels, Vec<(f64, f64)>> = HashMap::new();
        for (name, labels, v) in &out {
            if *name == format!("{family}_bucket") {
                let le = labels.iter().find(|(k, _)| k == "le").expect("bucket has le");
                let rest: Vec<_> = labels.iter().filter(|(k, _)| k != "le").cloned().collect();
                series.entry(rest).or_default().push((parse_value(&le.1).expect("le is a number"), *v));
            }
        }
        assert!(!series.is_empty(), "histogram {family} has no buckets");
        for (labels, buckets) in series {
            assert!(buckets.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1), "{family}{labels:?}: {buckets:?}");
            let last = buckets.last().unwrap();
            assert_eq!(last.0, f64::INFINITY, "{family}{labels:?} ends at +Inf");
            let count = value_of(&out, &format!("{family}_count"), &labels);
            assert_eq!(Some(last.1), count, "{family}{labels:?}: +Inf bucket = _count");
        }
    }
    out
}

fn value_of(lines: &[Line], name: &str, labels: &[(String, String)]) -> Option<f64> {
    lines.iter().find(|(n, l, _)| n == name && l.as_slice() == labels).map(|l| l.2)
}

fn get(lines: &[Line], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let labels: Labels = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    value_of(lines, name, &labels)
}

async fn scrape(server: &TestServer) -> Vec<Line> {
    let r = server.get("/metrics").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.content_type().starts_with("text/plain; version=0.0.4"), "content type {}", r.content_type());
    parse_exposition(&r.text())
}

#[test]
fn the_line_checker_refuses_bad_lines() {
    let ok = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"q\\\"\\\\\\n\"} 3\n";
    assert_eq!(parse_exposition(ok)[0].1, vec![("x".to_string(), "q\"\\\n".to_string())]);
    for bad in [
        "a_total 1\n",
        "# TYPE a_total counter\na_total\n",
        "# TYPE a_total counter\na_total{x=\"1} 1\n",
        "# TYPE a_total counter\na_total{x=1} 1\n",
        "# TYPE a_total counter\na_total one\n",
        "# TYPE a_total counter\nb_total 1\n",
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\nh_sum 0\n",
        "# NOTE x\n",
    ] {
        assert!(std::panic::catch_unwind(|| parse_exposition(bad)).is_err(), "accepted {bad:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_report_ingest_wal_flush_queries_and_devices() {
    let sim = simulate(&["--listen", "127.0.0.1:0", "--count", "1"]);
    let extra = format!(
        "[storage]\nflush_interval_secs = 1\n\n[[devices]]\nname = \"ahu-m\"\nprotocol = \"modbus-tcp\"\nip_address = \"127.0.0.1\"\nport = {}\nunit_id = 1\nprofile = \"T3-controller\"\npoll_interval_ms = 200\n",
        port_of(&sim.tcp)
    );
    let server = TestServer::start(&extra);

    // A viewer token is needed, like every other API read.
    let r = server.call(&reqwest::Client::new(), Method::GET, "/metrics", None).await;
    r.assert_error("no token", StatusCode::UNAUTHORIZED, Some("unauthorized"));
    let viewer = server.user_client("vic", "viewer").await;
    let r = server.call(&viewer, Method::GET, "/metrics", None).await;
    assert_eq!(r.status, StatusCode::OK, "viewer: {}", r.text());

    let doc = server.get("/api/openapi.json").await.ok_json();
    assert_eq!(doc["paths"]["/metrics"]["get"]["tags"][0], "system", "openapi.json documents GET /metrics");

    let before = scrape(&server).await;
    assert_eq!(get(&before, "t3000_build_info", &[("version", env!("CARGO_PKG_VERSION"))]), Some(1.0));
    assert!(get(&before, "t3000_uptime_seconds", &[]).is_some_and(|v| v >= 0.0));
    assert_eq!(get(&before, "t3000_websocket_clients", &[]), Some(0.0));
    let wal_before = get(&before, "t3000_wal_commit_duration_seconds_count", &[]).expect("WAL histogram");
    let history_before =
        get(&before, "t3000_query_duration_seconds_count", &[("kind", "history")]).expect("history histogram");

    // Two awaited requests cannot share a group commit: the WAL count grows by at least two.
    let n = 20;
    let batch: Vec<Sample> = (0..n).map(|i| Sample::good(900_001, BASE_TS + i as i64 * SECOND_US, i as f64)).collect();
    server.ingest_ok(&batch[..10]).await;
    server.ingest_ok(&batch[10..]).await;
    let after = scrape(&server).await;
    let ingested = get(&after, "t3000_samples_ingested_total", &[]).expect("ingest counter");
    assert!(ingested >= n as f64, "ingested {ingested} < {n}");
    let wal_after = get(&after, "t3000_wal_commit_duration_seconds_count", &[]).unwrap();
    assert!(wal_after >= wal_before + 2.0, "WAL commits {wal_before} -> {wal_after}");
    assert!(get(&after, "t3000_wal_commit_duration_seconds_sum", &[]).unwrap() > 0.0);

    // A history request and a SQL query are timed.
    let r = server.get(&format!("/api/t3000/points/900001/history?from={BASE_TS}&to={}", BASE_TS + HOUR_US)).await;
    assert_eq!(r.ok_json()["ts"].as_array().map(Vec::len), Some(n));
    assert_eq!(server.sql("SELECT count(*) FROM samples WHERE point_id = 900001").await[0][0], n);
    let m = scrape(&server).await;
    let history = get(&m, "t3000_query_duration_seconds_count", &[("kind", "history")]).unwrap();
    assert!(history > history_before, "history queries {history_before} -> {history}");
    assert!(get(&m, "t3000_query_duration_seconds_count", &[("kind", "sql")]).unwrap() >= 1.0);
    assert!(get(&m, "t3000_query_duration_seconds_bucket", &[("kind", "history"), ("le", "+Inf")]).unwrap() >= 1.0);

    // The buffer is flushed within about a second (flush_interval_secs = 1), and that is timed.
    poll_until("a timed flush", Duration::from_secs(30), || async {
        let m = scrape(&server).await;
        get(&m, "t3000_flush_duration_seconds_count", &[]).unwrap() >= 1.0
            && get(&m, "t3000_parquet_files_written_total", &[]).unwrap() >= 1.0
    })
    .await;

    // The simulated device is polled.
    poll_until("polls of ahu-m", Duration::from_secs(30), || async {
        let m = scrape(&server).await;
        get(&m, "t3000_device_polls_total", &[("device", "ahu-m")]).is_some_and(|v| v > 0.0)
            && get(&m, "t3000_device_online", &[("device", "ahu-m")]) == Some(1.0)
    })
    .await;
    let m = scrape(&server).await;
    assert!(get(&m, "t3000_device_failed_polls_total", &[("device", "ahu-m")]).is_some());
    assert!(get(&m, "t3000_device_rtt_seconds", &[("device", "ahu-m")]).is_some_and(|v| v >= 0.0));
    assert_eq!(get(&m, "t3000_flush_failures_total", &[]), Some(0.0));
    assert_eq!(get(&m, "t3000_writes_refused", &[]), Some(0.0));
}
