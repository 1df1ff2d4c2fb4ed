//! Webhook delivery: one JSON `POST` per attempt, signed with HMAC-SHA256 when the channel has a
//! secret.
//!
//! Headers: `Content-Type: application/json`, `X-T3000-Delivery: <id>` (the same for every
//! attempt), `X-T3000-Timestamp: <unix seconds>` and `X-T3000-Signature: sha256=<hex>`, the
//! HMAC-SHA256 with the secret of `<timestamp>.<body>`. A receiver recomputes it and compares, and
//! refuses old timestamps, so a recorded request cannot be replayed later. Any 2xx answer is a
//! delivery; anything else, or no answer within the channel's timeout, is a failed attempt.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::Duration;

/// `sha256=<hex>`: the signature of `body` sent at `timestamp` (unix seconds) with `secret`.
pub fn signature(secret: &[u8], timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// The scheme, host and port of a URL: what may be shown of it (its path or query can hold a key).
pub fn shown_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => {
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            format!("{}://{}{port}", u.scheme(), u.host_str().unwrap_or(""))
        }
        Err(_) => "(invalid URL)".to_owned(),
    }
}

/// One attempt: posts `body`; `Err` says why it failed, without the URL's path.
pub async fn post(
    client: &reqwest::Client,
    url: &str,
    secret: &str,
    delivery: u64,
    now_us: i64,
    body: String,
    timeout: Duration,
) -> Result<(), String> {
    let timestamp = now_us.div_euclid(1_000_000);
    let mut req = client
        .post(url)
        .timeout(timeout)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("X-T3000-Delivery", delivery.to_string())
        .header("X-T3000-Timestamp", timestamp.to_string());
    if !secret.is_empty() {
        req = req.header("X-T3000-Signature", signature(secret.as_bytes(), timestamp, &body));
    }
    let shown = shown_url(url);
    match req.body(body).send().await {
        Ok(resp) if resp.status().is_success() => Ok(()),
        Ok(resp) => Err(format!("{shown} answered HTTP {}", resp.status())),
        Err(e) if e.is_timeout() => Err(format!("{shown}: no answer within {} ms", timeout.as_millis())),
        // The innermost cause says why (refused, no route, a certificate not trusted).
        Err(e) if e.is_connect() => Err(format!("{shown}: cannot connect: {}", cause(&e, url, &shown))),
        Err(e) => {
            // reqwest's own message ("error sending request") without the URL, then why (the
            // connection closed before an answer, a malformed answer).
            let why = cause(&e, url, &shown);
            let what = e.without_url().to_string();
            if why.is_empty() || what.contains(&why) {
                Err(format!("{shown}: {what}"))
            } else {
                Err(format!("{shown}: {what}: {why}"))
            }
        }
    }
}

/// The last error in the chain of sources under `e` (reqwest's own message, which names the
/// URL, left out), with any mention of `url` replaced by `shown`: never the URL's path.
fn cause(e: &reqwest::Error, url: &str, shown: &str) -> String {
    use std::error::Error as _;
    let Some(mut cause) = e.source() else { return String::new() };
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string().replace(url, shown)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex_mac(key: &[u8], data: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
        mac.update(data);
        mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The MAC is HMAC-SHA256 (RFC 4231 test case 2), over `<timestamp>.<body>`.
    #[test]
    fn signature_is_hmac_sha256_of_timestamp_dot_body() {
        assert_eq!(
            hex_mac(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let s = signature(b"key", 1_700_000_000, "{\"a\":1}");
        assert_eq!(s, format!("sha256={}", hex_mac(b"key", b"1700000000.{\"a\":1}")));
        assert_ne!(s, signature(b"key", 1_700_000_001, "{\"a\":1}"), "the timestamp is signed");
        assert_ne!(s, signature(b"other", 1_700_000_000, "{\"a\":1}"));
    }

    /// A receiver that drops the connection without an answer: the error says why, and never
    /// the URL's path.
    #[tokio::test]
    async fn a_dropped_connection_names_its_cause() {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let _ = sock.read(&mut buf).await;
                drop(sock);
            }
        });
        let client = super::super::tls::Transport::new(None).unwrap().http;
        let url = format!("http://127.0.0.1:{port}/hook/secret-path");
        let e = post(&client, &url, "", 1, 0, "{}".into(), Duration::from_secs(10)).await.unwrap_err();
        let start = format!("http://127.0.0.1:{port}: error sending request: ");
        assert!(e.starts_with(&start) && e.len() > start.len(), "{e}");
        assert!(!e.contains("secret-path"), "{e}");
    }

    #[test]
    fn only_scheme_host_and_port_are_shown() {
        assert_eq!(shown_url("https://hooks.example.com/services/T0/B0/secret"), "https://hooks.example.com");
        assert_eq!(shown_url("http://127.0.0.1:8080/x?token=1"), "http://127.0.0.1:8080");
    }
}
