//! `GET /metrics`: Prometheus text exposition format 0.0.4, written by hand.
//!
//! Storage counters and latency histograms come from `Storage::stats`, device poll counters from
//! the collector's status board, query latencies and WebSocket clients from [`Metrics`] in the
//! [`AppState`].

use crate::http::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;
use t3_storage::metrics::{Histogram, HistogramSnapshot};

/// The content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What the API layer measures itself.
#[derive(Debug, Default)]
pub struct Metrics {
    /// History requests (`GET .../points/{id}/history`, `POST .../history/batch`), storage time.
    pub history_seconds: Histogram,
    /// SQL queries (`POST /api/t3000/query`), storage time.
    pub sql_seconds: Histogram,
    /// Open WebSocket connections on `/api/t3000/ws`: the WebSocket handler increments this when a
    /// client connects and decrements it when the connection ends.
    pub websocket_clients: AtomicUsize,
    /// HTTP connections: open, the cap, requests in progress, closed by a timeout.
    pub http: Arc<crate::http::server::HttpStats>,
}

/// Awaits `fut` and records how long it took in `h` (whether it succeeded or not).
pub async fn timed<T>(h: &Histogram, fut: impl Future<Output = T>) -> T {
    let started = Instant::now();
    let out = fut.await;
    h.observe(started.elapsed());
    out
}

/// Server metrics in the Prometheus text format: ingest, WAL and flush latency, query latency,
/// polls per device, WebSocket clients, alert messages per channel.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "system",
    responses(
        (status = 200, description = "Prometheus text exposition format 0.0.4", content_type = "text/plain; version=0.0.4", body = String),
        (status = 401, body = crate::http::error::ErrorBody),
    )
)]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], render(&state))
}

fn render(state: &AppState) -> String {
    let mut e = Exposition::default();
    e.family("t3000_build_info", "gauge", "Build information; the value is always 1.");
    e.sample("t3000_build_info", &[("version", env!("CARGO_PKG_VERSION"))], 1.0);
    e.family("t3000_uptime_seconds", "gauge", "Seconds since the server started.");
    e.sample("t3000_uptime_seconds", &[], state.started.elapsed().as_secs_f64());

    let storage = &state.storage;
    let stats = storage.stats();
    let counter = |e: &mut Exposition, name: &str, help: &str, v: u64| {
        e.family(name, "counter", help);
        e.sample(name, &[], v as f64);
    };
    counter(
        &mut e,
        "t3000_samples_ingested_total",
        "Samples acknowledged (durable in the WAL) since start.",
        stats.samples_ingested.load(Ordering::Relaxed),
    );
    e.family("t3000_buffered_samples", "gauge", "Samples acknowledged and not yet in Parquet.");
    e.sample("t3000_buffered_samples", &[], storage.buffered_rows() as f64);
    counter(
        &mut e,
        "t3000_parquet_files_written_total",
        "Parquet files written by flushes of the write buffer since start.",
        stats.files_written.load(Ordering::Relaxed),
    );
    counter(
        &mut e,
        "t3000_flush_failures_total",
        "Failed attempts to persist the write buffer since start (the data stays in the WAL).",
        stats.flush_failures.load(Ordering::Relaxed),
    );
    e.family("t3000_writes_refused", "gauge", "1 while writes are refused (the disk below its floor, or the WAL read-only until it can create a segment; or poisoned, until a restart), else 0.");
    e.sample("t3000_writes_refused", &[], if storage.write_refusal().is_some() { 1.0 } else { 0.0 });

    let disk = storage.disk();
    if let Some(space) = disk.space {
        e.family(
            "t3000_disk_free_bytes",
            "gauge",
            "Free bytes on the data directory's filesystem (as of the latest measurement).",
        );
        e.sample("t3000_disk_free_bytes", &[], space.free_bytes as f64);
        e.family("t3000_disk_total_bytes", "gauge", "Size of the data directory's filesystem in bytes.");
        e.sample("t3000_disk_total_bytes", &[], space.total_bytes as f64);
    }
    e.family("t3000_disk_alarm_free_bytes", "gauge", "Free bytes below which the disk-space alarm is raised.");
    e.sample("t3000_disk_alarm_free_bytes", &[], disk.alarm_free_bytes as f64);
    e.family(
        "t3000_disk_floor_free_bytes",
        "gauge",
        "Free bytes below which writes of samples are refused (0: never).",
    );
    e.sample("t3000_disk_floor_free_bytes", &[], disk.floor_free_bytes as f64);
    e.family(
        "t3000_disk_level",
        "gauge",
        "Free space of the data directory: 0 ok, 1 below the alarm threshold, 2 below the floor (writes refused).",
    );
    e.sample("t3000_disk_level", &[], disk.level as u8 as f64);
    counter(
        &mut e,
        "t3000_disk_refused_samples_total",
        "Samples (collected or written through the API) refused since start because the disk was at its floor.",
        disk.refused_samples,
    );

    let name = "t3000_wal_commit_duration_seconds";
    e.family(name, "histogram", "WAL group commit latency: from the start of the write to the end of the fsync.");
    e.histogram(name, &[], &stats.wal_commit_seconds.snapshot());
    let name = "t3000_flush_duration_seconds";
    e.family(name, "histogram", "Flush latency: a frozen write buffer written as Parquet and published.");
    e.histogram(name, &[], &stats.flush_seconds.snapshot());
    let name = "t3000_query_duration_seconds";
    e.family(name, "histogram", "Query latency in storage by kind: history requests and SQL queries.");
    e.histogram(name, &[("kind", "history")], &state.metrics.history_seconds.snapshot());
    e.histogram(name, &[("kind", "sql")], &state.metrics.sql_seconds.snapshot());

    let devices = state.collector.status().all();
    let per_device = |e: &mut Exposition, name: &str, kind: &str, help: &str, value: &dyn Fn(usize) -> Option<f64>| {
        e.family(name, kind, help);
        for (i, d) in devices.iter().enumerate() {
            if let Some(v) = value(i) {
                e.sample(name, &[("device", &d.name)], v);
            }
        }
    };
    per_device(&mut e, "t3000_device_polls_total", "counter", "Polls of the device since start.", &|i| {
        Some(devices[i].polls as f64)
    });
    per_device(&mut e, "t3000_device_failed_polls_total", "counter", "Failed polls of the device since start.", &|i| {
        Some(devices[i].failed_polls as f64)
    });
    per_device(&mut e, "t3000_device_online", "gauge", "1 while the device answers, else 0.", &|i| {
        Some(if devices[i].online { 1.0 } else { 0.0 })
    });
    per_device(
        &mut e,
        "t3000_device_rtt_seconds",
        "gauge",
        "Round-trip time of the device's last successful poll (absent before the first).",
        &|i| devices[i].rtt_ms.map(|ms| ms / 1000.0),
    );

    e.family("t3000_websocket_clients", "gauge", "Open WebSocket connections on /api/t3000/ws.");
    e.sample("t3000_websocket_clients", &[], state.metrics.websocket_clients.load(Ordering::Relaxed) as f64);

    alert_metrics(&mut e, &state.notifier);

    let http = &state.metrics.http;
    let gauge = |e: &mut Exposition, name: &str, help: &str, v: usize| {
        e.family(name, "gauge", help);
        e.sample(name, &[], v as f64);
    };
    gauge(
        &mut e,
        "t3000_http_connections",
        "Open HTTP connections, WebSocket ones included.",
        http.open.load(Ordering::Relaxed),
    );
    gauge(
        &mut e,
        "t3000_http_max_connections",
        "The cap on open HTTP connections (server.max_connections, or derived from the open-files limit).",
        http.max_connections.load(Ordering::Relaxed),
    );
    gauge(
        &mut e,
        "t3000_http_requests_in_progress",
        "HTTP requests whose response has not ended (this one included).",
        http.in_progress.load(Ordering::Relaxed),
    );
    let name = "t3000_http_connections_closed_total";
    e.family(name, "counter", "HTTP connections closed by the server's timeouts since start, by reason.");
    e.sample(name, &[("reason", "header_timeout")], http.closed_header_timeout.load(Ordering::Relaxed) as f64);
    e.sample(name, &[("reason", "idle")], http.closed_idle.load(Ordering::Relaxed) as f64);
    e.sample(name, &[("reason", "stalled")], http.closed_stalled.load(Ordering::Relaxed) as f64);
    e.out
}

/// Outbound alerts per channel: messages by outcome, queue length, and transitions missed.
fn alert_metrics(e: &mut Exposition, notifier: &crate::service::notify::Notifier) {
    let counters = notifier.counters();
    let name = "t3000_alert_messages_total";
    e.family(
        name,
        "counter",
        "Alert messages (a message carries one alarm or a digest of several) per channel since start, by outcome: sent (messages delivered), failed (messages given up after every attempt failed), dropped (messages not queued: the queue was full), rate_limited (messages held back by max_per_minute or max_per_hour; their alarms go out in a later message).",
    );
    for c in &counters {
        for (outcome, v) in
            [("sent", c.sent), ("failed", c.failed), ("dropped", c.dropped), ("rate_limited", c.rate_limited)]
        {
            e.sample(name, &[("channel", &c.channel), ("outcome", outcome)], v as f64);
        }
    }
    let name = "t3000_alert_queue_messages";
    e.family(name, "gauge", "Alert messages waiting in the channel's queue.");
    for c in &counters {
        e.sample(name, &[("channel", &c.channel)], c.queued as f64);
    }
    let name = "t3000_alert_transitions_missed_total";
    e.family(name, "counter", "Alarm transitions the notifier missed because it fell behind the alarm service.");
    e.sample(name, &[], notifier.missed() as f64);
}

/// A writer of the text exposition format.
#[derive(Debug, Default)]
struct Exposition {
    out: String,
}

impl Exposition {
    /// `# HELP` and `# TYPE` of a metric family; its samples must follow.
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        write_labels(&mut self.out, labels, None);
        let _ = writeln!(self.out, " {}", format_value(value));
    }

    /// The cumulative `_bucket` series (with `le`, ending at `+Inf`), `_sum` and `_count`.
    fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &HistogramSnapshot) {
        for (bound, n) in &h.buckets {
            let _ = write!(self.out, "{name}_bucket");
            write_labels(&mut self.out, labels, Some(&format_value(*bound)));
            let _ = writeln!(self.out, " {n}");
        }
        let _ = write!(self.out, "{name}_bucket");
        write_labels(&mut self.out, labels, Some("+Inf"));
        let _ = writeln!(self.out, " {}", h.count);
        let _ = write!(self.out, "{name}_sum");
        write_labels(&mut self.out, labels, None);
        let _ = writeln!(self.out, " {}", format_value(h.sum_secs));
        let _ = write!(self.out, "{name}_count");
        write_labels(&mut self.out, labels, None);
        let _ = writeln!(self.out, " {}", h.count);
    }
}

fn write_labels(out: &mut String, labels: &[(&str, &str)], le: Option<&str>) {
    if labels.is_empty() && le.is_none() {
        return;
    }
    out.push('{');
    let mut first = true;
    for (k, v) in labels.iter().copied().chain(le.map(|le| ("le", le))) {
        if !first {
            out.push(',');
        }
        first = false;
        let _ = write!(out, "{k}=\"{}\"", escape_label(v));
    }
    out.push('}');
}

/// A label value: backslash, double quote and line feed escaped.
fn escape_label(v: &str) -> String {
    v.replace('\\', r"\\").replace('"', "\\\"").replace('\n', r"\n")
}

/// A help text: backslash and line feed escaped.
fn escape_help(v: &str) -> String {
    v.replace('\\', r"\\").replace('\n', r"\n")
}

fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn histogram_buckets_are_cumulative_and_end_at_inf() {
        let h = Histogram::new();
        h.observe(Duration::from_micros(300));
        h.observe(Duration::from_millis(2));
        h.observe(Duration::from_millis(2));
        h.observe(Duration::from_secs(20));
        let mut e = Exposition::default();
        e.family("t3000_x_seconds", "histogram", "X.");
        e.histogram("t3000_x_seconds", &[("kind", "sql")], &h.snapshot());
        let lines: Vec<&str> = e.out.lines().collect();
        assert_eq!(lines[0], "# HELP t3000_x_seconds X.");
        assert_eq!(lines[1], "# TYPE t3000_x_seconds histogram");
        assert_eq!(lines[2], r#"t3000_x_seconds_bucket{kind="sql",le="0.0005"} 1"#);
        assert_eq!(lines[3], r#"t3000_x_seconds_bucket{kind="sql",le="0.001"} 1"#);
        assert_eq!(lines[4], r#"t3000_x_seconds_bucket{kind="sql",le="0.0025"} 3"#);
        assert_eq!(lines[15], r#"t3000_x_seconds_bucket{kind="sql",le="10"} 3"#);
        assert_eq!(lines[16], r#"t3000_x_seconds_bucket{kind="sql",le="+Inf"} 4"#);
        assert_eq!(lines[17], r#"t3000_x_seconds_sum{kind="sql"} 20.0043"#);
        assert_eq!(lines[18], r#"t3000_x_seconds_count{kind="sql"} 4"#);
        assert_eq!(lines.len(), 19);
        // Cumulative: never decreasing.
        let counts: Vec<u64> = lines[2..17].iter().map(|l| l.rsplit(' ').next().unwrap().parse().unwrap()).collect();
        assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
    }

    #[test]
    fn label_values_and_help_are_escaped() {
        let mut e = Exposition::default();
        e.family("t3000_device_online", "gauge", "A \\ backslash\nand a line feed.");
        e.sample("t3000_device_online", &[("device", "ahu \"north\"\\1\nb")], 1.0);
        e.sample("t3000_uptime_seconds", &[], 12.5);
        e.sample("t3000_nan", &[], f64::NAN);
        assert_eq!(
            e.out,
            concat!(
                "# HELP t3000_device_online A \\\\ backslash\\nand a line feed.\n",
                "# TYPE t3000_device_online gauge\n",
                "t3000_device_online{device=\"ahu \\\"north\\\"\\\\1\\nb\"} 1\n",
                "t3000_uptime_seconds 12.5\n",
                "t3000_nan NaN\n",
            )
        );
    }
}
