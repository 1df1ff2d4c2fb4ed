//! Live updates over WebSocket (`/api/t3000/ws`) with real WebSocket clients (tokio-tungstenite):
//! authentication (bearer header, single-use tickets, no token in a URL or the server's log) and
//! Origin, subscriptions with snapshot then changes, filters, errors that close
//! nothing, device status, alarms, schedules, the system status, and flow control (a slow client
//! lags and is dropped while fast clients keep up; a silent client is disconnected).

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use t3_tests::*;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

pub(crate) const WAIT: Duration = Duration::from_secs(20);

pub(crate) fn ws_url(server: &TestServer, query: &str) -> String {
    format!("{}{query}", server.url("/api/t3000/ws").replacen("http://", "ws://", 1))
}

pub(crate) fn now_us() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as i64
}

/// A WebSocket client that keeps every JSON message it received.
pub(crate) struct Ws<S> {
    s: WebSocketStream<S>,
    pub(crate) log: Vec<Value>,
    /// Messages that arrived while [`Ws::request`] waited for its reply, to be received next.
    backlog: std::collections::VecDeque<Value>,
    next_id: u64,
}

pub(crate) enum End {
    Timeout,
    Closed(String),
}

impl<S: AsyncRead + AsyncWrite + Unpin> Ws<S> {
    fn new(s: WebSocketStream<S>) -> Self {
        Ws { s, log: Vec::new(), backlog: Default::default(), next_id: 1 }
    }

    /// The next JSON message (pings and pongs skipped).
    pub(crate) async fn recv(&mut self, within: Duration) -> Result<Value, End> {
        if let Some(v) = self.backlog.pop_front() {
            return Ok(v);
        }
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.s.next()).await {
                Err(_) => return Err(End::Timeout),
                Ok(None) => return Err(End::Closed("stream ended".into())),
                Ok(Some(Err(e))) => return Err(End::Closed(e.to_string())),
                Ok(Some(Ok(Message::Text(t)))) => {
                    let v: Value = serde_json::from_str(t.as_str()).expect("the server sends JSON");
                    self.log.push(v.clone());
                    return Ok(v);
                }
                Ok(Some(Ok(Message::Close(c)))) => return Err(End::Closed(format!("close frame {c:?}"))),
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    /// Receives until `pred` holds, at most `within`; panics naming `what` otherwise.
    pub(crate) async fn expect(&mut self, what: &str, within: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv(left).await {
                Ok(v) if pred(&v) => return v,
                Ok(_) => {}
                Err(End::Timeout) => panic!("timed out waiting for {what}; last messages: {}", self.tail()),
                Err(End::Closed(why)) => panic!("closed ({why}) while waiting for {what}; last: {}", self.tail()),
            }
        }
    }

    /// The first `n` messages `pred` takes (the others are skipped), all within `within`.
    pub(crate) async fn take(&mut self, n: usize, within: Duration, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + within;
        let mut out = Vec::new();
        while out.len() < n {
            match self.recv(deadline.saturating_duration_since(Instant::now())).await {
                Ok(v) if pred(&v) => out.push(v),
                Ok(_) => {}
                Err(End::Timeout) => panic!("timed out with {} of {n} messages; last: {}", out.len(), self.tail()),
                Err(End::Closed(why)) => {
                    panic!("closed ({why}) with {} of {n} messages; last: {}", out.len(), self.tail())
                }
            }
        }
        out
    }

    /// Everything received within `dur`.
    pub(crate) async fn drain(&mut self, dur: Duration) -> Vec<Value> {
        let deadline = Instant::now() + dur;
        let mut out = Vec::new();
        while let Ok(v) = self.recv(deadline.saturating_duration_since(Instant::now())).await {
            out.push(v);
        }
        out
    }

    fn tail(&self) -> String {
        let n = self.log.len().saturating_sub(8);
        self.log[n..].iter().map(|v| v.to_string()).collect::<Vec<_>>().join("\n")
    }

    pub(crate) async fn send(&mut self, v: Value) {
        self.s.send(Message::text(v.to_string())).await.expect("send");
    }

    async fn send_raw(&mut self, m: Message) {
        self.s.send(m).await.expect("send");
    }

    /// Sends `msg` with a new request_id and returns the reply carrying it; what arrives before
    /// the reply is received next.
    pub(crate) async fn request(&mut self, mut msg: Value) -> Value {
        let id = format!("r{}", self.next_id);
        self.next_id += 1;
        msg["request_id"] = json!(id);
        let what = format!("the reply to {msg}");
        self.send(msg).await;
        let mut before = Vec::new();
        let deadline = Instant::now() + WAIT;
        let reply = loop {
            match self.recv(deadline.saturating_duration_since(Instant::now())).await {
                Ok(v) if v["request_id"] == json!(id) => break v,
                Ok(v) => before.push(v),
                Err(_) => panic!("no {what}; last messages: {}", self.tail()),
            }
        };
        for v in before.into_iter().rev() {
            self.backlog.push_front(v);
        }
        reply
    }
}

pub(crate) type Client = Ws<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub(crate) async fn try_connect(url: &str, headers: &[(&str, String)]) -> Result<Client, (u16, String)> {
    let mut req = url.into_client_request().unwrap();
    for (k, v) in headers {
        let name = tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap();
        req.headers_mut().insert(name, v.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((s, _)) => Ok(Ws::new(s)),
        Err(WsError::Http(resp)) => Err((
            resp.status().as_u16(),
            resp.body().as_ref().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default(),
        )),
        Err(e) => panic!("connect {url}: {e}"),
    }
}

/// Connects with a bearer token and reads the Welcome.
pub(crate) async fn connect(server: &TestServer, token: &str) -> Client {
    let mut ws = try_connect(&ws_url(server, ""), &[("authorization", format!("Bearer {token}"))])
        .await
        .unwrap_or_else(|e| panic!("connect: {e:?}"));
    ws.expect("Welcome", WAIT, |v| v["type"] == "Welcome").await;
    ws
}

/// Creates a user with `role` and returns a session token.
pub(crate) async fn token_of(server: &TestServer, username: &str, role: &str) -> String {
    let password = format!("{username}-password");
    let r =
        server.post_json("/api/t3000/users", &json!({"username": username, "password": password, "role": role})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let r = reqwest::Client::new()
        .post(server.url("/api/t3000/auth/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap();
    r.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned()
}

/// `POST /api/t3000/ws/ticket` with `token`: the whole reply.
async fn ticket_reply(server: &TestServer, token: &str) -> Reply {
    server
        .send(reqwest::Client::new().post(server.url("/api/t3000/ws/ticket")).bearer_auth(token).json(&json!({})))
        .await
}

/// A WebSocket ticket for `token`.
pub(crate) async fn ticket(server: &TestServer, token: &str) -> String {
    let r = ticket_reply(server, token).await;
    r.ok_json()["ticket"].as_str().expect("a ticket").to_owned()
}

/// The error code of a refused upgrade's JSON body.
fn code_of(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"));
    v["error"]["code"].as_str().unwrap_or_default().to_owned()
}

fn is_update(v: &Value, point: u32) -> bool {
    v["type"] == "PointUpdate" && v["point_id"] == point
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_authentication_and_origin() {
    let server = TestServer::start(
        "[auth]\ncors_origins = [\"https://bms.example.com\"]\n[websocket]\nping_interval_secs = 1\n",
    );
    let url = ws_url(&server, "");
    let bearer = ("authorization", format!("Bearer {}", server.token));
    // No token, a made-up one, a made-up ticket: 401 before the upgrade.
    let (status, body) = try_connect(&url, &[]).await.err().expect("no token: refused");
    assert_eq!(status, 401, "{body}");
    let made_up = ("authorization", "Bearer t3_made_up".to_owned());
    let (status, _) = try_connect(&url, &[made_up]).await.err().expect("bad token");
    assert_eq!(status, 401);
    let (status, body) = try_connect(&ws_url(&server, "?ticket=t3w_made_up"), &[]).await.err().expect("bad ticket");
    assert_eq!((status, code_of(&body).as_str()), (401, "invalid_ticket"), "{body}");
    // A foreign origin: 403, even with a valid token.
    let (status, body) = try_connect(&url, &[bearer.clone(), ("origin", "https://evil.example".into())])
        .await
        .err()
        .expect("foreign origin refused");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("origin_not_allowed"), "{body}");
    // A ticket in the query (browsers), a configured origin, the server's own origin.
    let port = port_of(&server.url(""));
    let origins = ["https://bms.example.com".to_owned(), format!("http://127.0.0.1:{port}")];
    for origin in origins {
        let t = ticket(&server, &server.token).await;
        let mut ws = try_connect(&ws_url(&server, &format!("?ticket={t}")), &[("origin", origin.clone())])
            .await
            .unwrap_or_else(|e| panic!("origin {origin}: {e:?}"));
        let w = ws.expect("Welcome", WAIT, |v| v["type"] == "Welcome").await;
        assert_eq!((w["username"].as_str(), w["role"].as_str()), (Some("admin"), Some("admin")), "{w}");
    }
    // No path takes a token from the query.
    let r = reqwest::Client::new().get(server.url(&format!("/api/t3000/devices?token={}", server.token))).send().await;
    assert_eq!(r.unwrap().status(), StatusCode::UNAUTHORIZED);
    let t = ticket(&server, &server.token).await;
    let r = reqwest::Client::new().get(server.url(&format!("/api/t3000/devices?ticket={t}"))).send().await;
    assert_eq!(r.unwrap().status(), StatusCode::UNAUTHORIZED, "a ticket opens the WebSocket only");
    // A plain GET with a token: a JSON 4xx, not an upgrade.
    let r = server.get("/api/t3000/ws").await;
    r.assert_client_error("GET without upgrade");
    // The message schema is public, beside the OpenAPI document.
    let schema = server.call(&reqwest::Client::new(), reqwest::Method::GET, "/api/t3000/ws/schema.json", None).await;
    let schema = schema.ok_json();
    for def in ["PointUpdate", "DeviceStatus", "AlarmNotification", "ScheduleUpdate", "SystemStatus", "Selection"] {
        assert!(schema["$defs"][def].is_object(), "schema lacks {def}");
    }
    // A session that ends (logout) ends its socket at the next ping.
    let viewer = token_of(&server, "vic", "viewer").await;
    let mut ws = connect(&server, &viewer).await;
    let r =
        reqwest::Client::new().post(server.url("/api/t3000/auth/logout")).bearer_auth(&viewer).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let e = ws.expect("Error unauthorized", WAIT, |v| v["type"] == "Error").await;
    assert_eq!(e["code"], "unauthorized", "{e}");
    assert!(matches!(ws.recv(WAIT).await, Err(End::Closed(_))), "closed after the token ended");
}

/// The browser's way in: a single-use ticket from `POST /api/t3000/ws/ticket`, bound to the token
/// that asked for it. A ticket opens one connection (a refused upgrade uses it up too), never after
/// its token ended; a token in the URL is refused; one token's flood of tickets keeps only its
/// newest 8. The server's log (at debug, every request's span included) never shows a token or a
/// ticket, after connections that worked and ones that failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_tickets_open_once_and_no_token_reaches_a_url_or_the_log() {
    let server = TestServer::start("[log]\nlevel = \"debug\"\n");
    let port = port_of(&server.url(""));
    let own = ("origin", format!("http://127.0.0.1:{port}"));
    let viewer = token_of(&server, "vera", "viewer").await;
    let mut tickets: Vec<String> = Vec::new();

    // Asking needs a token (any role that may open the socket).
    let r = server.send(reqwest::Client::new().post(server.url("/api/t3000/ws/ticket"))).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    let t0 = now_us();
    let r = ticket_reply(&server, &viewer).await;
    assert_eq!(r.headers.get("cache-control").and_then(|v| v.to_str().ok()), Some("no-store"));
    let v = r.ok_json();
    let t = v["ticket"].as_str().unwrap().to_owned();
    assert_eq!(v["expires_in_secs"], 30, "{v}");
    let expires = v["expires_us"].as_i64().unwrap();
    assert!((t0 + 29_000_000..=now_us() + 30_000_000).contains(&expires), "{v}");
    assert!(!t.contains(&viewer), "a ticket is not the token");
    tickets.push(t.clone());

    // It opens one connection, as the token that asked for it.
    let mut ws = try_connect(&ws_url(&server, &format!("?ticket={t}")), std::slice::from_ref(&own))
        .await
        .unwrap_or_else(|e| panic!("ticket refused: {e:?}"));
    let w = ws.expect("Welcome", WAIT, |v| v["type"] == "Welcome").await;
    assert_eq!((w["username"].as_str(), w["role"].as_str()), (Some("vera"), Some("viewer")), "{w}");
    let r = ws.request(json!({"type": "Subscribe", "points": "all"})).await;
    assert_eq!(r["type"], "Subscribed", "{r}");
    // A second use is refused.
    let (status, body) = try_connect(&ws_url(&server, &format!("?ticket={t}")), std::slice::from_ref(&own))
        .await
        .err()
        .expect("used twice");
    assert_eq!((status, code_of(&body).as_str()), (401, "invalid_ticket"), "{body}");
    assert!(body.contains("/api/t3000/ws/ticket"), "the message says where to get a new one: {body}");

    // A refused upgrade (a foreign origin) uses its ticket up: a URL a failed connection shows
    // opens nothing afterwards.
    let t = ticket(&server, &viewer).await;
    tickets.push(t.clone());
    let (status, _) =
        try_connect(&ws_url(&server, &format!("?ticket={t}")), &[("origin", "https://evil.example".into())])
            .await
            .err()
            .expect("a foreign origin is refused");
    assert_eq!(status, 403);
    let (status, body) = try_connect(&ws_url(&server, &format!("?ticket={t}")), std::slice::from_ref(&own))
        .await
        .err()
        .expect("already used");
    assert_eq!((status, code_of(&body).as_str()), (401, "invalid_ticket"), "{body}");

    // A token in the URL is refused, with or without a ticket beside it, and the answer says what
    // to do instead.
    let (status, body) = try_connect(&ws_url(&server, &format!("?token={viewer}")), std::slice::from_ref(&own))
        .await
        .err()
        .expect("?token=");
    assert_eq!((status, code_of(&body).as_str()), (401, "token_in_url"), "{body}");
    assert!(body.contains("POST /api/t3000/ws/ticket") && body.contains("?ticket="), "{body}");
    let t = ticket(&server, &viewer).await;
    tickets.push(t.clone());
    let (status, body) =
        try_connect(&ws_url(&server, &format!("?ticket={t}&token={viewer}")), std::slice::from_ref(&own))
            .await
            .err()
            .expect("?ticket= with ?token=");
    assert_eq!((status, code_of(&body).as_str()), (401, "token_in_url"), "{body}");

    // Clients that can send headers keep using `Authorization: Bearer`.
    let mut by_header = connect(&server, &viewer).await;
    let r = by_header.request(json!({"type": "Ping"})).await;
    assert_eq!(r["type"], "Pong", "{r}");

    // One token's flood keeps only its newest tickets waiting: the oldest no longer open.
    for _ in 0..50 {
        tickets.push(ticket(&server, &viewer).await);
    }
    let n = tickets.len();
    let (status, _) = try_connect(&ws_url(&server, &format!("?ticket={}", tickets[n - 9])), std::slice::from_ref(&own))
        .await
        .err()
        .expect("the 9th newest ticket was replaced");
    assert_eq!(status, 401);
    let mut ws2 = try_connect(&ws_url(&server, &format!("?ticket={}", tickets[n - 1])), std::slice::from_ref(&own))
        .await
        .unwrap_or_else(|e| panic!("the newest ticket opens: {e:?}"));
    ws2.expect("Welcome", WAIT, |v| v["type"] == "Welcome").await;

    // A ticket of a token that has ended (logout) opens nothing.
    let t = ticket(&server, &viewer).await;
    tickets.push(t.clone());
    let r =
        reqwest::Client::new().post(server.url("/api/t3000/auth/logout")).bearer_auth(&viewer).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (status, body) = try_connect(&ws_url(&server, &format!("?ticket={t}")), std::slice::from_ref(&own))
        .await
        .err()
        .expect("token ended");
    assert_eq!((status, code_of(&body).as_str()), (401, "invalid_ticket"), "{body}");
    let r = ticket_reply(&server, &viewer).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "an ended token gets no ticket: {}", r.text());
    drop((ws, ws2, by_header));

    // The log: every request was logged with its path, never with a token or a ticket.
    let log = poll_log(&server, "the request spans of the refused upgrades", |log| {
        log.matches("path=/api/t3000/ws ").count() >= 8
    })
    .await;
    for (what, secret) in [("the admin token", &server.token), ("the viewer token", &viewer)] {
        assert!(!log.contains(secret.as_str()), "the server log shows {what}:\n{log}");
    }
    for t in &tickets {
        assert!(!log.contains(t.as_str()), "the server log shows a ticket:\n{log}");
    }
    assert!(!log.contains("token="), "the server log shows a query with a token:\n{log}");
}

/// The server's stderr and stdout, once `ready` holds for them (at most [`WAIT`]).
async fn poll_log(server: &TestServer, what: &str, ready: impl Fn(&str) -> bool) -> String {
    let mut log = String::new();
    let done = wait_for(WAIT, || {
        log = format!("{}\n{}", server.stderr(), server.stdout());
        std::future::ready(ready(&log))
    })
    .await;
    assert!(done, "timed out waiting for {what} in the server log:\n{log}");
    log
}

/// A ticket lives `auth.ws_ticket_secs`, by the server's clock: past it, it is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_an_expired_ticket_is_refused() {
    let server = TestServer::start("[auth]\nws_ticket_secs = 1\n");
    let v = ticket_reply(&server, &server.token).await.ok_json();
    assert_eq!(v["expires_in_secs"], 1, "{v}");
    let (t, expires) = (v["ticket"].as_str().unwrap().to_owned(), v["expires_us"].as_i64().unwrap());
    // The server's clock is this machine's: wait until the expiry it named has passed.
    poll_until("the ticket's expiry", WAIT, || std::future::ready(now_us() > expires)).await;
    let (status, body) = try_connect(&ws_url(&server, &format!("?ticket={t}")), &[]).await.err().expect("expired");
    assert_eq!((status, code_of(&body).as_str()), (401, "invalid_ticket"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_points_snapshot_then_changes_filters_and_errors() {
    let server = TestServer::start("[websocket]\nsystem_status_interval_secs = 1\n");
    let (p1, p2, p3) = (1001u32, 1002u32, 1003u32);
    let t0 = now_us();
    server.ingest_ok(&[Sample::good(p1, t0, 1.0), Sample::good(p2, t0, 2.0), Sample::good(p3, t0, 3.0)]).await;

    // Subscribe to two points: the reply, then their current values, then changes of them only.
    let mut a = connect(&server, &server.token).await;
    let r = a.request(json!({"type": "Subscribe", "points": [p1, p2]})).await;
    assert_eq!((r["type"].as_str(), r["snapshot_points"].as_u64()), (Some("Subscribed"), Some(2)), "{r}");
    let mut snap = [a.recv(WAIT).await.ok().unwrap(), a.recv(WAIT).await.ok().unwrap()];
    snap.sort_by_key(|v| v["point_id"].as_u64());
    for (v, (p, value)) in snap.iter().zip([(p1, 1.0), (p2, 2.0)]) {
        assert_eq!(v["type"], "PointUpdate", "{v}");
        assert_eq!((v["point_id"].as_u64(), v["value"].as_f64()), (Some(p as u64), Some(value)), "{v}");
        assert_eq!((v["snapshot"].as_bool(), v["ts_us"].as_i64()), (Some(true), Some(t0)), "{v}");
        assert_eq!((v["point_type"].as_str(), v["quality_name"].as_str()), (Some("manual"), Some("good")), "{v}");
        assert_eq!((v["quality"].as_u64(), v["timestamp"].as_i64()), (Some(192), Some(t0 / 1000)), "{v}");
        assert!(v["time"].as_str().is_some_and(|t| t.ends_with('Z')), "{v}");
    }
    let t1 = t0 + 1_000;
    server.ingest_ok(&[Sample::good(p3, t1, 3.5), Sample::good(p1, t1, 1.5), Sample::good(p2, t1, 2.5)]).await;
    // The two changes, then anything more that comes (p3's must not).
    let mut got = a.take(2, WAIT, |v| v["type"] == "PointUpdate").await;
    got.extend(a.drain(Duration::from_millis(300)).await);
    let changes: Vec<(u64, f64, bool)> = got
        .iter()
        .filter(|v| v["type"] == "PointUpdate")
        .map(|v| (v["point_id"].as_u64().unwrap(), v["value"].as_f64().unwrap(), v["snapshot"].as_bool().unwrap()))
        .collect();
    assert_eq!(changes, [(p1 as u64, 1.5, false), (p2 as u64, 2.5, false)], "{got:?}");

    // Everything: a snapshot of every point.
    let mut b = connect(&server, &server.token).await;
    let r = b.request(json!({"type": "Subscribe", "points": "all"})).await;
    assert_eq!((r["all_points"].as_bool(), r["snapshot_points"].as_u64()), (Some(true), Some(3)), "{r}");
    let snap: Vec<Value> = b.take(3, WAIT, |v| v["type"] == "PointUpdate").await;
    let values: Vec<f64> = {
        let mut s: Vec<(u64, f64)> =
            snap.iter().map(|v| (v["point_id"].as_u64().unwrap(), v["value"].as_f64().unwrap())).collect();
        s.sort_by_key(|x| x.0);
        s.into_iter().map(|x| x.1).collect()
    };
    assert_eq!(values, [1.5, 2.5, 3.5], "{snap:?}");

    // Malformed messages get an Error with their request_id; the connection stays, and so do others.
    a.send_raw(Message::text("{not json")).await;
    let e = a.expect("Error for bad JSON", WAIT, |v| v["type"] == "Error").await;
    assert_eq!((e["code"].as_str(), &e["request_id"]), (Some("invalid_json"), &Value::Null), "{e}");
    let e = a.request(json!({"type": "Subscribe", "pionts": [1]})).await;
    assert_eq!((e["type"].as_str(), e["code"].as_str()), (Some("Error"), Some("invalid_message")), "{e}");
    assert!(e["message"].as_str().unwrap().contains("pionts"), "{e}");
    let e = a.request(json!({"type": "Dance"})).await;
    assert_eq!(e["code"], "unknown_type", "{e}");
    let e = a.request(json!({"type": "Subscribe", "points": "some"})).await;
    assert_eq!(e["code"], "invalid_message", "{e}");
    let e = a.request(json!({"type": "Subscribe", "points": [1], "max_rate_hz": -1})).await;
    assert_eq!(e["code"], "invalid_message", "{e}");
    a.send_raw(Message::binary(vec![1u8, 2, 3])).await;
    let e = a.expect("Error for a binary frame", WAIT, |v| v["type"] == "Error").await;
    assert_eq!(e["code"], "invalid_message", "{e}");
    let pong = a.request(json!({"type": "Ping"})).await;
    assert_eq!(pong["type"], "Pong", "{pong}");
    let t2 = t1 + 1_000;
    server.ingest_ok(&[Sample::good(p1, t2, 1.7)]).await;
    a.expect("p1 = 1.7 after the errors", WAIT, |v| is_update(v, p1) && v["value"] == 1.7).await;
    b.expect("p1 = 1.7 on the other client", WAIT, |v| is_update(v, p1) && v["value"] == 1.7).await;

    // Unsubscribe one point: its changes stop, the other's go on.
    let r = a.request(json!({"type": "Unsubscribe", "points": [p1]})).await;
    assert_eq!(r["type"], "Unsubscribed", "{r}");
    let t3 = t2 + 1_000;
    server.ingest_ok(&[Sample::good(p1, t3, 1.8), Sample::good(p2, t3, 2.8)]).await;
    a.expect("p2 = 2.8", WAIT, |v| is_update(v, p2) && v["value"] == 2.8).await;
    let later = a.drain(Duration::from_millis(500)).await;
    assert!(!a.log.iter().chain(&later).any(|v| is_update(v, p1) && v["value"] == 1.8), "{}", a.tail());

    // Writes and acknowledgements: the REST roles and answers, with the request_id.
    let viewer = token_of(&server, "vi", "viewer").await;
    let mut v = connect(&server, &viewer).await;
    let e = v.request(json!({"type": "WriteValue", "point_id": p1, "value": 1.0})).await;
    assert_eq!((e["type"].as_str(), e["code"].as_str()), (Some("Error"), Some("forbidden")), "{e}");
    let e = v.request(json!({"type": "AckAlarm", "alarm_id": 1})).await;
    assert_eq!(e["code"], "forbidden", "{e}");
    let e = a.request(json!({"type": "WriteValue", "point_id": p1, "value": 1.0})).await;
    assert_eq!(e["type"], "Error", "a manual point is not written: {e}");
    assert!(["not_found", "not_writable"].contains(&e["code"].as_str().unwrap()), "{e}");
    let e = a.request(json!({"type": "AckAlarm", "alarm_id": 999})).await;
    assert_eq!(e["code"], "not_found", "{e}");
    let e = a.request(json!({"type": "WriteValue", "point_id": p1, "value": 1.0, "prio": 3})).await;
    assert_eq!(e["code"], "invalid_message", "{e}");

    // The system status, every second.
    let r = v.request(json!({"type": "Subscribe", "system": true})).await;
    assert_eq!(r["system"], true, "{r}");
    let before_ms = now_us() / 1000;
    server.ingest_ok(&[Sample::good(p3, t3, 3.8)]).await;
    // The status of the interval that counted p3 (the first one sent may be that one already).
    let s = v
        .expect("a SystemStatus counting p3", WAIT, |v| {
            v["type"] == "SystemStatus" && v["active_points"] != 0 && v["timestamp"].as_i64() >= Some(before_ms)
        })
        .await;
    for key in ["active_devices", "active_points", "collection_rate", "ingest_rate", "error_count", "timestamp"] {
        assert!(s[key].is_number(), "{key} in {s}");
    }
    assert!(s["system_errors"].is_array() && s["websocket_clients"].as_u64() >= Some(2), "{s}");
    assert!(s["ingest_rate"].as_f64().unwrap() > 0.0, "{s}");

    // Coalescing to a requested rate: the latest value, at most about twice a second.
    let mut c = connect(&server, &server.token).await;
    let r = c.request(json!({"type": "Subscribe", "points": [p3], "max_rate_hz": 2.0})).await;
    assert_eq!(r["max_rate_hz"], 2.0, "{r}");
    c.expect("p3 snapshot", WAIT, |v| is_update(v, p3) && v["snapshot"] == true).await;
    let mut ts = t3;
    let started = std::time::Instant::now();
    for i in 0..20 {
        ts += 1_000;
        server.ingest_ok(&[Sample::good(p3, ts, 100.0 + f64::from(i))]).await;
    }
    // Twice a second while the 20 writes went on (each waits for its fsync: slower on a busy
    // disk), and the last one after.
    let most = (2 + (started.elapsed().as_secs_f64() * 2.0).ceil() as usize).min(10);
    let got = c.drain(Duration::from_millis(2000)).await;
    let updates: Vec<f64> = got.iter().filter(|v| is_update(v, p3)).map(|v| v["value"].as_f64().unwrap()).collect();
    assert!(!updates.is_empty() && updates.len() <= most, "coalesced to at most {most}: {updates:?}");
    assert_eq!(updates.last(), Some(&119.0), "the latest value arrives: {updates:?}");
    let all = b.drain(Duration::from_millis(300)).await;
    assert!(all.iter().all(|v| v["type"] == "PointUpdate"), "{all:?}");
    let b_updates = b.log.iter().filter(|v| is_update(v, p3) && v["value"].as_f64() >= Some(100.0));
    assert_eq!(b_updates.count(), 20, "without a rate, every change");

    // Batched: the snapshot and the changes of one ingest come as PointUpdates frames, in order.
    let mut d = connect(&server, &server.token).await;
    let r = d.request(json!({"type": "Subscribe", "points": [p1, p2, p3], "batch": true})).await;
    assert_eq!((r["batch"].as_bool(), r["snapshot_points"].as_u64()), (Some(true), Some(3)), "{r}");
    let snap = d.expect("a batched snapshot", WAIT, |v| v["type"] == "PointUpdates").await;
    let updates = snap["updates"].as_array().unwrap();
    assert_eq!(updates.len(), 3, "{snap}");
    assert!(updates.iter().all(|u| u["type"] == "PointUpdate" && u["snapshot"] == true), "{snap}");
    ts += 1_000;
    let changes: Vec<Sample> = (0..50).map(|i| Sample::good([p1, p2, p3][i % 3], ts + i as i64, i as f64)).collect();
    server.ingest_ok(&changes).await;
    let mut seen = Vec::new();
    while seen.len() < 50 {
        let f = d.expect("PointUpdates with the changes", WAIT, |v| v["type"] == "PointUpdates").await;
        for u in f["updates"].as_array().unwrap() {
            assert_eq!(u["snapshot"], false, "{u}");
            seen.push((u["point_id"].as_u64().unwrap(), u["value"].as_f64().unwrap()));
        }
    }
    // Every change, each point's in order.
    let per_point = |v: &[(u64, f64)]| {
        let mut m: std::collections::BTreeMap<u64, Vec<f64>> = Default::default();
        v.iter().for_each(|(p, x)| m.entry(*p).or_default().push(*x));
        m
    };
    let sent: Vec<(u64, f64)> = changes.iter().map(|s| (u64::from(s.point_id), s.value)).collect();
    assert_eq!(per_point(&seen), per_point(&sent), "every change, batched");
    assert!(!d.log.iter().any(|v| v["type"] == "PointUpdate"), "no single frames once batched");
    let e = d.request(json!({"type": "Unsubscribe", "points": [p1], "batch": false})).await;
    assert_eq!(e["code"], "invalid_message", "{e}");
}

/// A write or acknowledgement the server refuses over REST is refused over the WebSocket for the
/// same reason, with the same error code and message: both take the same service calls and so the
/// same checks (priority, expiry, the point's kind, the rate limit per point, which counts the
/// writes of both).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_refuses_a_write_or_acknowledgement_as_rest_does() {
    let server = TestServer::start("[auth]\npoint_writes_per_minute = 6\n");
    let r = server.post_json("/api/t3000/points", &json!({"name": "outdoor air, pushed"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let manual = r.json()["id"].as_u64().unwrap();
    let (nowhere, nowhere_else, limited) = (3_000_000_001u64, 3_000_000_002u64, 3_000_000_003u64);
    let op = token_of(&server, "op", "operator").await;
    let rest = client_with_token(&op);
    let mut ws = connect(&server, &op).await;

    // The REST answer (status, code, message) and the WebSocket error (code, message).
    let rest_write = |point: u64, body: Value| {
        let (server, rest) = (&server, &rest);
        async move {
            let path = format!("/api/t3000/points/{point}/value");
            let r = server.call(rest, reqwest::Method::POST, &path, Some(&body)).await;
            let e = r.json()["error"].clone();
            (
                r.status.as_u16(),
                e["code"].as_str().unwrap_or("").to_owned(),
                e["message"].as_str().unwrap_or("").to_owned(),
            )
        }
    };
    let ws_error = |reply: &Value| {
        assert_eq!(reply["type"], "Error", "{reply}");
        (reply["code"].as_str().unwrap_or("").to_owned(), reply["message"].as_str().unwrap_or("").to_owned())
    };
    let cases = [
        (manual, json!({"value": 1.0, "priority": 17}), 422, "invalid_priority"),
        (manual, json!({"value": 1.0, "priority": 0}), 422, "invalid_priority"),
        (nowhere, json!({"value": 1.0, "expires_in_secs": 0}), 422, "invalid_expiry"),
        (nowhere, json!({"value": 1.0, "expires_in_secs": 31_622_401}), 422, "invalid_expiry"),
        (manual, json!({"value": 21.5}), 409, "not_writable"),
        (nowhere_else, json!({"value": 21.5, "priority": 3, "expires_in_secs": 60}), 404, "not_found"),
    ];
    for (point, body, status, code) in cases {
        let (got_status, rest_code, rest_message) = rest_write(point, body.clone()).await;
        assert_eq!((got_status, rest_code.as_str()), (status, code), "REST {point} {body}: {rest_message}");
        let mut msg = body.clone();
        msg["type"] = json!("WriteValue");
        msg["point_id"] = json!(point);
        let reply = ws.request(msg).await;
        assert_eq!(ws_error(&reply), (rest_code, rest_message), "WebSocket {point} {body}");
    }

    // The rate limit of a point counts the writes of both: six a minute, alternately over REST and
    // the socket (each refused later, the point does not exist), then the seventh is refused on
    // either path, with the same message.
    for i in 0..6 {
        if i % 2 == 0 {
            let (status, code, _) = rest_write(limited, json!({"value": 1.0})).await;
            assert_eq!((status, code.as_str()), (404, "not_found"), "write {i}");
        } else {
            let reply = ws.request(json!({"type": "WriteValue", "point_id": limited, "value": 1.0})).await;
            assert_eq!(ws_error(&reply).0, "not_found", "write {i}: {reply}");
        }
    }
    let reply = ws.request(json!({"type": "WriteValue", "point_id": limited, "value": 1.0})).await;
    let (ws_code, ws_message) = ws_error(&reply);
    let (status, rest_code, rest_message) = rest_write(limited, json!({"value": 1.0})).await;
    assert_eq!((status, rest_code.as_str()), (429, "write_rate_limited"), "{rest_message}");
    assert_eq!((ws_code, ws_message), (rest_code, rest_message));

    // Acknowledgements: no such rule, and the storage alarm while it is not active.
    for (alarm, status, code) in [(999, 404, "not_found"), (0, 409, "cannot_acknowledge")] {
        let r = server.call(&rest, reqwest::Method::POST, &format!("/api/t3000/alarms/{alarm}/ack"), None).await;
        let e = r.json()["error"].clone();
        assert_eq!((r.status.as_u16(), e["code"].as_str()), (status, Some(code)), "REST ack {alarm}: {e}");
        let reply = ws.request(json!({"type": "AckAlarm", "alarm_id": alarm})).await;
        let want = (code.to_owned(), e["message"].as_str().unwrap().to_owned());
        assert_eq!(ws_error(&reply), want, "WebSocket ack {alarm}");
    }
}

pub(crate) async fn point_of(server: &TestServer, device: &str, name: &str) -> u64 {
    let points = server.get(&format!("/api/t3000/devices/{device}/points")).await.ok_json();
    points["points"].as_array().unwrap().iter().find(|p| p["name"] == name).and_then(|p| p["id"].as_u64()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_devices_rooms_alarms_and_schedules_with_a_simulated_building() {
    let sim = simulate(&["--listen", "127.0.0.1:0", "--count", "2"]);
    let port = port_of(&sim.tcp);
    let server = TestServer::start("[collector]\noffline_after_failures = 2\nbackoff_initial_ms = 100\n");
    let b = server.post_json("/api/t3000/buildings", &json!({"name": "B"})).await.json();
    let f = server.post_json(&format!("/api/t3000/buildings/{}/floors", b["id"]), &json!({"name": "F"})).await.json();
    let room = server.post_json(&format!("/api/t3000/floors/{}/rooms", f["id"]), &json!({"name": "R"})).await.json();
    let device = |name: &str, unit: u8, room: Value| {
        json!({"name": name, "protocol": "modbus-tcp", "ip_address": "127.0.0.1", "port": port, "unit_id": unit,
            "profile": "T3-controller", "poll_interval_ms": 500, "room_id": room})
    };
    let r = server.post_json("/api/t3000/devices", &device("ahu", 1, room["id"].clone())).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let ahu = r.json()["id"].as_i64().unwrap();
    let r = server.post_json("/api/t3000/devices", &device("elsewhere", 2, Value::Null)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let other = r.json()["id"].as_i64().unwrap();
    for name in ["ahu", "elsewhere"] {
        poll_until(&format!("{name} online"), Duration::from_secs(30), || async {
            server.get(&format!("/api/t3000/devices/{name}")).await.ok_json()["online"] == true
        })
        .await;
    }
    let (var1, var2) = (point_of(&server, "ahu", "VAR1").await, point_of(&server, "ahu", "VAR2").await);
    let op = token_of(&server, "op", "operator").await;
    let viewer = token_of(&server, "vi", "viewer").await;

    // A room: the status and the points of the devices in it, and nothing of the others.
    let mut ws = connect(&server, &op).await;
    let r = ws.request(json!({"type": "Subscribe", "rooms": [room["id"]], "alarms": true, "schedules": true})).await;
    assert_eq!(r["type"], "Subscribed", "{r}");
    assert!(r["snapshot_points"].as_u64() > Some(10), "the room's points: {r}");
    let s = ws.expect("ahu's status", WAIT, |v| v["type"] == "DeviceStatus").await;
    assert_eq!(
        (s["device_id"].as_i64(), s["online"].as_bool(), s["snapshot"].as_bool()),
        (Some(ahu), Some(true), Some(true))
    );
    let got = ws.drain(Duration::from_secs(2)).await;
    let updates: Vec<&Value> = got.iter().chain(&ws.log).filter(|v| v["type"] == "PointUpdate").collect();
    assert!(updates.iter().any(|v| v["snapshot"] == false), "changes after the snapshot");
    assert!(updates.iter().all(|v| v["device_id"] == ahu), "only the room's device");
    assert!(
        updates.iter().any(|v| v["point_type"] == "variable") && updates.iter().any(|v| v["point_type"] == "input")
    );
    assert!(!ws.log.iter().any(|v| v["type"] == "DeviceStatus" && v["device_id"] == other));

    // The room's floor and building hold the same device: the same points and status, and nothing
    // of the device placed nowhere.
    let room_points = r["snapshot_points"].as_u64();
    for (key, id) in [("floors", f["id"].clone()), ("buildings", b["id"].clone())] {
        let mut c = connect(&server, &viewer).await;
        let mut sub = json!({"type": "Subscribe"});
        sub[key] = json!([id]);
        let r = c.request(sub).await;
        assert_eq!(
            (r["type"].as_str(), r["snapshot_points"].as_u64()),
            (Some("Subscribed"), room_points),
            "{key}: {r}"
        );
        let s = c.expect(&format!("ahu's status by {key}"), WAIT, |v| v["type"] == "DeviceStatus").await;
        assert_eq!(s["device_id"].as_i64(), Some(ahu), "{key}");
        c.expect(&format!("a change by {key}"), WAIT, |v| v["type"] == "PointUpdate" && v["snapshot"] == false).await;
        c.drain(Duration::from_millis(500)).await;
        assert!(c.log.iter().all(|v| v["type"] != "PointUpdate" || v["device_id"] == ahu), "{key}: {}", c.tail());
        assert!(!c.log.iter().any(|v| v["type"] == "DeviceStatus" && v["device_id"] == other), "{key}");
    }

    // A limit crossing raises an alarm, written through the arbiter from the socket.
    let rule = server
        .post_json(
            "/api/t3000/alarms/rules",
            &json!({"name": "VAR1 high", "point_id": var1,
                "rule": {"condition": {"kind": "limits", "high": 50.0, "deadband": 1.0}, "message": "too warm"}}),
        )
        .await;
    assert_eq!(rule.status, StatusCode::CREATED, "{}", rule.text());
    let rule = rule.json()["id"].as_i64().unwrap();
    let w = ws.request(json!({"type": "WriteValue", "point_id": var1, "value": 60.0, "switch_to_manual": true})).await;
    assert_eq!((w["type"].as_str(), w["result"]["point_id"].as_u64()), (Some("ValueWritten"), Some(var1)), "{w}");
    poll_until("the alarm is active", WAIT, || async {
        let all = server.get("/api/t3000/alarms").await.ok_json();
        all.as_array().unwrap().iter().any(|a| a["rule_id"] == rule && a["state"] == "active")
    })
    .await;
    let a = ws.expect("the alarm", WAIT, |v| v["type"] == "AlarmNotification").await;
    assert_eq!(
        (a["alarm_id"].as_i64(), a["alarm_type"].as_str(), a["state"].as_str(), a["level"].as_str()),
        (Some(rule), Some("raised"), Some("active"), Some("high")),
        "{a}"
    );
    assert_eq!(
        (a["device_id"].as_i64(), a["point_id"].as_u64(), a["severity"].as_u64(), a["severity_name"].as_str()),
        (Some(ahu), Some(var1), Some(1), Some("warning"))
    );
    assert_eq!((a["message"].as_str(), a["value"].as_f64()), (Some("too warm"), Some(60.0)), "{a}");
    let mut vws = connect(&server, &viewer).await;
    let e = vws.request(json!({"type": "AckAlarm", "alarm_id": rule})).await;
    assert_eq!(e["code"], "forbidden", "{e}");
    let ack = ws.request(json!({"type": "AckAlarm", "alarm_id": rule})).await;
    assert_eq!(
        (ack["type"].as_str(), ack["alarm"]["state"].as_str()),
        (Some("AlarmAcknowledged"), Some("acknowledged")),
        "{ack}"
    );
    let n = ws
        .expect("the acknowledgement", WAIT, |v| v["type"] == "AlarmNotification" && v["alarm_type"] == "acknowledged")
        .await;
    assert_eq!(n["by"], "op", "{n}");
    let audit = server.get("/api/t3000/audit?action=alarm.ack").await.ok_json();
    assert_eq!(audit[0]["actor"], "op", "audited as over REST: {audit}");

    // Schedules: created, then its state written.
    let body = all_week_schedule("occupancy", var2, "24:00");
    let s = server.post_json("/api/t3000/schedules", &body).await;
    assert_eq!(s.status, StatusCode::CREATED, "{}", s.text());
    let sid = s.json()["id"].as_i64().unwrap();
    let u =
        ws.expect("ScheduleUpdate created", WAIT, |v| v["type"] == "ScheduleUpdate" && v["change"] == "created").await;
    assert_eq!(
        (u["schedule_id"].as_i64(), u["status"].as_str(), u["on"].as_bool()),
        (Some(sid), Some("active"), Some(true))
    );
    let u = ws.expect("ScheduleUpdate state", WAIT, |v| v["type"] == "ScheduleUpdate" && v["change"] == "state").await;
    assert_eq!((u["schedule_id"].as_i64(), u["on"].as_bool()), (Some(sid), Some(true)), "{u}");
    assert_eq!(server.delete(&format!("/api/t3000/schedules/{sid}")).await.status, StatusCode::NO_CONTENT);
    let u =
        ws.expect("ScheduleUpdate deleted", WAIT, |v| v["type"] == "ScheduleUpdate" && v["change"] == "deleted").await;
    assert_eq!(u["status"], "deleted", "{u}");

    // The devices go away: ahu's status says so.
    drop(sim);
    ws.expect("ahu offline", Duration::from_secs(60), |v| {
        v["type"] == "DeviceStatus" && v["device_id"] == ahu && v["online"] == false
    })
    .await;
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Connects with a tiny receive buffer, so that a client that stops reading stops the server's
/// writes within a few kilobytes.
pub(crate) async fn connect_small_buffer(server: &TestServer) -> Ws<tokio::net::TcpStream> {
    let addr: std::net::SocketAddr =
        server.url("").trim_start_matches("http://").trim_end_matches('/').parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let mut req = ws_url(server, "").into_client_request().unwrap();
    req.headers_mut().insert("authorization", format!("Bearer {}", server.token).parse().unwrap());
    let (s, _) = tokio_tungstenite::client_async(req, stream).await.unwrap();
    let mut ws = Ws::new(s);
    ws.expect("Welcome", WAIT, |v| v["type"] == "Welcome").await;
    ws
}

/// Pushes `batches` x `per_batch` samples (points 1..=per_batch) with the current time, one request
/// per batch; returns how many.
pub(crate) async fn push(server: &TestServer, batches: usize, per_batch: u32, value: f64) -> usize {
    for _ in 0..batches {
        let ts = now_us();
        let samples: Vec<Sample> = (1..=per_batch).map(|p| Sample::good(p, ts, value)).collect();
        server.ingest_ok(&samples).await;
    }
    batches * per_batch as usize
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_a_slow_client_lags_and_is_dropped_while_fast_clients_keep_up() {
    let server = TestServer::start(
        "[websocket]\nqueue_messages = 4000\nmax_lags_per_minute = 1\nping_interval_secs = 2\nclient_timeout_secs = 10\n",
    );
    // Loopback sockets buffer megabytes (64 KiB segments): enough updates to fill them and the queue.
    let points = 400u32;
    let mut fast = Vec::new();
    for _ in 0..3 {
        let mut c = connect(&server, &server.token).await;
        c.request(json!({"type": "Subscribe", "points": "all"})).await;
        fast.push(c);
    }
    let mut slow = connect_small_buffer(&server).await;
    slow.request(json!({"type": "Subscribe", "points": "all"})).await;
    let rss_before = rss_kib(server.pid().unwrap());

    // The fast clients read concurrently while the slow one does not read at all, until every
    // update came (or nothing came for WAIT).
    const BATCHES: usize = 100;
    let expected = BATCHES * points as usize;
    let readers: Vec<_> = fast
        .into_iter()
        .map(|mut c| {
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut count = 0usize;
                let mut lagged = false;
                while count < expected
                    && let Ok(v) = c.recv(WAIT).await
                {
                    if v["type"] == "Lagged" {
                        lagged = true;
                    }
                    if v["type"] == "PointUpdate" && v["snapshot"] == false {
                        count += 1;
                        latencies.push(now_us() - v["ts_us"].as_i64().unwrap());
                    }
                }
                (count, latencies, lagged, c)
            })
        })
        .collect();
    let sent = push(&server, BATCHES, points, 1.0).await;
    let mut fast = Vec::new();
    for r in readers {
        let (count, mut lat, lagged, c) = r.await.unwrap();
        assert!(!lagged, "a fast client lagged");
        assert_eq!(count, sent, "a fast client got every update");
        lat.sort_unstable();
        // Not a speed target (the benchmarks measure that): a bound loose enough for a busy disk's
        // fsyncs that still catches fast clients held up behind the slow one.
        let max_ms = lat.last().copied().unwrap_or(0) / 1000;
        assert!(max_ms < 5000, "fast client latency: p50 {} ms, max {max_ms} ms", lat[lat.len() / 2] / 1000);
        fast.push(c);
    }

    // The slow client reads now: what was in flight, then Lagged and a fresh snapshot.
    let lagged = slow.expect("Lagged", Duration::from_secs(30), |v| v["type"] == "Lagged").await;
    assert!(lagged["missed"].as_u64() > Some(0), "{lagged}");
    // A fresh snapshot of every point after Lagged.
    slow.take(points as usize, WAIT, |v| v["type"] == "PointUpdate" && v["snapshot"] == true).await;

    // It stops reading again: the second lag within a minute disconnects it (max_lags_per_minute = 1).
    push(&server, 100, points, 2.0).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let closed = loop {
        match slow.recv(deadline.saturating_duration_since(Instant::now())).await {
            Ok(v) if v["type"] == "Lagged" => panic!("lagged again instead of being dropped: {v}"),
            Ok(_) => {}
            Err(End::Closed(_)) => break true,
            Err(End::Timeout) => break false,
        }
    };
    assert!(closed, "the slow client was disconnected");
    let rss_after = rss_kib(server.pid().unwrap());
    assert!(rss_after < rss_before + 64 * 1024, "server memory: {rss_before} KiB before, {rss_after} KiB after");
    // The fast clients are still served.
    push(&server, 1, points, 3.0).await;
    for c in &mut fast {
        c.expect("an update after the slow client left", WAIT, |v| v["type"] == "PointUpdate" && v["value"] == 3.0)
            .await;
    }
    let m = server.get("/metrics").await.text();
    assert!(
        m.contains("t3000_websocket_clients 3"),
        "{}",
        m.lines().filter(|l| l.contains("websocket")).collect::<Vec<_>>().join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_a_silent_client_is_disconnected() {
    let server = TestServer::start("[websocket]\nping_interval_secs = 1\nclient_timeout_secs = 2\n");
    // Connected and never read: it never answers the server's pings.
    let _silent = connect(&server, &server.token).await;
    let gauge = || async {
        let m = server.get("/metrics").await.text();
        m.lines().find(|l| l.starts_with("t3000_websocket_clients ")).map(str::to_owned).unwrap_or_default()
    };
    assert_eq!(gauge().await, "t3000_websocket_clients 1");
    poll_until("the silent client is dropped", Duration::from_secs(20), || async {
        gauge().await == "t3000_websocket_clients 0"
    })
    .await;
    // One that reads (and so answers pings) stays.
    let mut live = connect(&server, &server.token).await;
    let got = live.drain(Duration::from_secs(4)).await;
    assert!(got.is_empty(), "{got:?}");
    assert!(live.request(json!({"type": "Ping"})).await["type"] == "Pong");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t3000_watch_prints_live_updates() {
    let server = TestServer::start("");
    let t0 = now_us();
    server.ingest_ok(&[Sample::good(7, t0, 21.5), Sample::good(8, t0, 1.0)]).await;
    let mut child = command()
        .args(["watch", "--url", &server.url(""), "7"])
        .env("T3000_TOKEN", &server.token)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn t3000 watch");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let next = |what: &str| rx.recv_timeout(WAIT).unwrap_or_else(|_| panic!("t3000 watch printed no line for {what}"));
    let first = next("the current value");
    assert!(first.contains("point 7 (manual)") && first.contains("21.5") && first.ends_with("(current)"), "{first}");
    server.ingest_ok(&[Sample::good(8, t0 + 1, 2.0), Sample::good(7, t0 + 1, 22.5)]).await;
    let second = next("the change");
    assert!(second.contains("point 7") && second.contains("22.5") && !second.contains("current"), "{second}");
    let _ = child.kill();
    let _ = child.wait();
    // No token: a message and a failure exit code.
    let out = run_cmd(command().args(["watch", "--url", &server.url(""), "--token", "t3_nope", "7"]));
    assert!(!out.status.success() && out.stderr.contains("401"), "{out:?}");
}
