//! A small SMTP client (RFC 5321) for the e-mail channels: `EHLO`, `STARTTLS` or TLS from the
//! start (rustls, trusting what [`super::tls`] trusts), `AUTH PLAIN` or `AUTH
//! LOGIN`, one message to its recipients, `QUIT`. The message is plain text with `Date`,
//! `Message-ID`, `From`, `To` and `Subject` (RFC 2047-encoded when not ASCII); lines are CRLF and
//! dot-stuffed.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use std::sync::Arc;
use t3_core::config::{SmtpConfig, SmtpTls};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls;

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// One e-mail to send.
#[derive(Debug, Clone)]
pub struct Mail<'a> {
    pub to: &'a [String],
    pub subject: &'a str,
    pub text: &'a str,
    /// Unique per message: the delivery id.
    pub id: u64,
    pub now_us: i64,
}

/// One SMTP conversation: the stream and what was read past the last reply.
struct Conn {
    io: Box<dyn Io>,
    buf: Vec<u8>,
}

/// A reply: its code and its lines (without the code).
#[derive(Debug)]
struct Reply {
    code: u16,
    lines: Vec<String>,
}

impl Reply {
    fn text(&self) -> String {
        format!("{} {}", self.code, self.lines.join(" / "))
    }
}

async fn tls(io: Box<dyn Io>, host: &str, config: &Arc<rustls::ClientConfig>) -> Result<Box<dyn Io>, String> {
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .map_err(|_| format!("`{host}` is not a valid TLS server name"))?;
    let stream = tokio_rustls::TlsConnector::from(config.clone())
        .connect(name, io)
        .await
        .map_err(|e| format!("TLS with {host}: {e}"))?;
    Ok(Box::new(stream))
}

impl Conn {
    async fn reply(&mut self) -> Result<Reply, String> {
        let mut lines = Vec::new();
        loop {
            let line = self.line().await?;
            let code =
                line.get(..3).and_then(|c| c.parse::<u16>().ok()).ok_or_else(|| format!("bad SMTP reply `{line}`"))?;
            let more = line.as_bytes().get(3) == Some(&b'-');
            lines.push(line.get(4..).unwrap_or("").to_owned());
            if !more {
                return Ok(Reply { code, lines });
            }
        }
    }

    async fn line(&mut self) -> Result<String, String> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                self.buf.drain(..end + 2);
                return Ok(line);
            }
            if self.buf.len() > 64 * 1024 {
                return Err("SMTP reply line too long".into());
            }
            let mut chunk = [0u8; 4096];
            let n = self.io.read(&mut chunk).await.map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err("the SMTP server closed the connection".into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.io.write_all(bytes).await.map_err(|e| format!("write: {e}"))?;
        self.io.flush().await.map_err(|e| format!("write: {e}"))
    }

    /// Sends a command and expects a reply with code `want`; `shown` is what an error calls it
    /// (so a password never appears in one).
    async fn command(&mut self, line: &str, shown: &str, want: u16) -> Result<Reply, String> {
        self.send(format!("{line}\r\n").as_bytes()).await?;
        let r = self.reply().await?;
        if r.code != want {
            return Err(format!("{shown}: {}", r.text()));
        }
        Ok(r)
    }
}

/// Whether the `EHLO` reply offers an extension (`STARTTLS`, `AUTH`), and its parameters.
fn extension<'a>(ehlo: &'a Reply, name: &str) -> Option<Vec<&'a str>> {
    ehlo.lines.iter().find_map(|l| {
        let mut words = l.split_whitespace();
        words.next().filter(|w| w.eq_ignore_ascii_case(name)).map(|_| words.collect())
    })
}

/// A header value: as it is when ASCII, else RFC 2047 base64 words.
fn header_text(s: &str) -> String {
    if s.is_ascii() {
        return s.replace(['\r', '\n'], " ");
    }
    format!("=?UTF-8?B?{}?=", B64.encode(s.replace(['\r', '\n'], " ")))
}

/// The whole message as sent after `DATA`: headers, body with CRLF line ends and dot-stuffing,
/// and the final `.` line.
pub fn render(from: &str, m: &Mail<'_>) -> Vec<u8> {
    let domain = from.rsplit_once('@').map_or("localhost", |(_, d)| d);
    let date = chrono::DateTime::from_timestamp_micros(m.now_us).unwrap_or_default().to_rfc2822();
    let ascii = m.text.is_ascii();
    let mut out = String::new();
    out.push_str(&format!("Date: {date}\r\n"));
    out.push_str(&format!("Message-ID: <t3000.{}.{}@{domain}>\r\n", m.now_us, m.id));
    out.push_str(&format!("From: {from}\r\n"));
    out.push_str(&format!("To: {}\r\n", m.to.join(", ")));
    out.push_str(&format!("Subject: {}\r\n", header_text(m.subject)));
    out.push_str("MIME-Version: 1.0\r\n");
    out.push_str("Content-Type: text/plain; charset=utf-8\r\n");
    out.push_str(&format!("Content-Transfer-Encoding: {}\r\n", if ascii { "7bit" } else { "base64" }));
    out.push_str("\r\n");
    let body = if ascii {
        m.text.to_owned()
    } else {
        let encoded = B64.encode(m.text.as_bytes());
        encoded.as_bytes().chunks(76).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join("\n")
    };
    for line in body.lines() {
        if line.starts_with('.') {
            out.push('.');
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str(".\r\n");
    out.into_bytes()
}

/// Sends one mail over `tls` when `cfg` asks for it; `Err` says which step failed and the
/// server's reply (never the password).
pub async fn send(cfg: &SmtpConfig, tls_config: &Arc<rustls::ClientConfig>, m: &Mail<'_>) -> Result<(), String> {
    let tcp = TcpStream::connect((cfg.host.as_str(), cfg.port))
        .await
        .map_err(|e| format!("connect to {}:{}: {e}", cfg.host, cfg.port))?;
    let mut io: Box<dyn Io> = Box::new(tcp);
    if cfg.tls == SmtpTls::Tls {
        io = tls(io, &cfg.host, tls_config).await?;
    }
    let mut c = Conn { io, buf: Vec::new() };
    let greeting = c.reply().await?;
    if greeting.code != 220 {
        return Err(format!("greeting: {}", greeting.text()));
    }
    let me = cfg.from.rsplit_once('@').map_or("localhost", |(_, d)| d).to_owned();
    let mut ehlo = c.command(&format!("EHLO {me}"), "EHLO", 250).await?;
    if cfg.tls == SmtpTls::Starttls {
        if extension(&ehlo, "STARTTLS").is_none() {
            return Err(format!(
                "{} does not offer STARTTLS (set alerts.smtp.tls = \"none\" to send in plain text)",
                cfg.host
            ));
        }
        c.command("STARTTLS", "STARTTLS", 220).await?;
        // Anything read before the handshake is discarded (RFC 3207).
        let Conn { io, .. } = c;
        c = Conn { io: tls(io, &cfg.host, tls_config).await?, buf: Vec::new() };
        ehlo = c.command(&format!("EHLO {me}"), "EHLO", 250).await?;
    }
    if !cfg.username.is_empty() {
        let mechanisms = extension(&ehlo, "AUTH").unwrap_or_default();
        let has = |m: &str| mechanisms.iter().any(|x| x.eq_ignore_ascii_case(m));
        if has("PLAIN") {
            let token = B64.encode(format!("\0{}\0{}", cfg.username, cfg.password.expose()));
            c.command(&format!("AUTH PLAIN {token}"), "AUTH PLAIN", 235).await?;
        } else if has("LOGIN") {
            c.command("AUTH LOGIN", "AUTH LOGIN", 334).await?;
            c.command(&B64.encode(&cfg.username), "AUTH LOGIN user name", 334).await?;
            c.command(&B64.encode(cfg.password.expose()), "AUTH LOGIN password", 235).await?;
        } else {
            return Err(format!("{} offers neither AUTH PLAIN nor AUTH LOGIN", cfg.host));
        }
    }
    c.command(&format!("MAIL FROM:<{}>", cfg.from), "MAIL FROM", 250).await?;
    for to in m.to {
        c.command(&format!("RCPT TO:<{to}>"), &format!("RCPT TO {to}"), 250).await?;
    }
    c.command("DATA", "DATA", 354).await?;
    c.send(&render(&cfg.from, m)).await?;
    let r = c.reply().await?;
    if r.code != 250 {
        return Err(format!("message refused: {}", r.text()));
    }
    // The message is accepted; a failed QUIT changes nothing.
    let _ = c.command("QUIT", "QUIT", 221).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_has_its_headers_crlf_and_dot_stuffing() {
        let to = vec!["a@example.com".to_owned(), "b@example.com".to_owned()];
        let m = Mail {
            to: &to,
            subject: "[T3000] Kessel über",
            text: "one\n.two\n..three\n",
            id: 9,
            now_us: 1_795_651_200_000_000,
        };
        let s = String::from_utf8(render("t3000@example.com", &m)).unwrap();
        assert!(s.starts_with("Date: Thu, 26 Nov 2026 00:00:00 +0000\r\n"), "{s}");
        assert!(s.contains("\r\nMessage-ID: <t3000.1795651200000000.9@example.com>\r\n"));
        assert!(s.contains("\r\nFrom: t3000@example.com\r\nTo: a@example.com, b@example.com\r\n"));
        assert!(s.contains("\r\nSubject: =?UTF-8?B?"), "a non-ASCII subject is encoded: {s}");
        assert!(s.ends_with("\r\n\r\none\r\n..two\r\n...three\r\n.\r\n"), "{s}");
    }

    /// A scripted SMTP server: answers each command by its first word, records what it got.
    async fn fake_server(ehlo: &'static str) -> (u16, tokio::task::JoinHandle<Vec<String>>) {
        use tokio::io::{AsyncBufReadExt, BufReader};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let (sock, _) = listener.accept().await.unwrap();
            let (r, mut w) = sock.into_split();
            let mut lines = BufReader::new(r).lines();
            let mut got = Vec::new();
            w.write_all(b"220 fake ESMTP\r\n").await.unwrap();
            let mut in_data = false;
            while let Ok(Some(line)) = lines.next_line().await {
                got.push(line.clone());
                let reply: String = if in_data {
                    if line != "." {
                        continue;
                    }
                    in_data = false;
                    "250 queued".into()
                } else {
                    match line.split(' ').next().unwrap_or("") {
                        "EHLO" => ehlo.into(),
                        "AUTH" => "334 VXNlcm5hbWU6".into(),
                        "MAIL" | "RCPT" => "250 ok".into(),
                        "DATA" => {
                            in_data = true;
                            "354 go on".into()
                        }
                        "QUIT" => {
                            w.write_all(b"221 bye\r\n").await.unwrap();
                            break;
                        }
                        // The AUTH LOGIN user name, then the password.
                        _ if got.len() == 3 => "334 UGFzc3dvcmQ6".into(),
                        _ if got.len() == 4 => "235 welcome".into(),
                        _ => "500 what?".into(),
                    }
                };
                w.write_all(format!("{reply}\r\n").as_bytes()).await.unwrap();
            }
            got
        });
        (port, task)
    }

    fn trust() -> Arc<rustls::ClientConfig> {
        super::super::tls::Transport::new(None).unwrap().tls
    }

    fn config(port: u16, tls: SmtpTls) -> SmtpConfig {
        SmtpConfig {
            host: "127.0.0.1".into(),
            port,
            tls,
            username: "u".into(),
            password: t3_core::config::Secret("p w".into()),
            from: "t3000@example.com".into(),
        }
    }

    /// The conversation with a server that offers only AUTH LOGIN: EHLO, AUTH LOGIN with the user
    /// name and password in base64, the envelope, the message ending in `.`, QUIT.
    #[tokio::test]
    async fn a_conversation_with_auth_login() {
        let (port, server) = fake_server("250-fake\r\n250-8BITMIME\r\n250 AUTH LOGIN").await;
        let to = vec!["a@example.com".to_owned(), "b@example.com".to_owned()];
        let m = Mail { to: &to, subject: "s", text: ".x\n", id: 1, now_us: 1_795_651_200_000_000 };
        send(&config(port, SmtpTls::None), &trust(), &m).await.unwrap();
        let got = server.await.unwrap();
        assert_eq!(
            got[..7],
            [
                "EHLO example.com",
                "AUTH LOGIN",
                "dQ==",
                "cCB3",
                "MAIL FROM:<t3000@example.com>",
                "RCPT TO:<a@example.com>",
                "RCPT TO:<b@example.com>"
            ]
        );
        assert_eq!(got[7], "DATA");
        assert!(got.contains(&"..x".to_owned()), "dot-stuffed: {got:?}");
        assert_eq!(got[got.len() - 2..], [".", "QUIT"]);
    }

    /// `tls = "starttls"` with a server that does not offer it: refused before anything is sent.
    #[tokio::test]
    async fn starttls_that_is_not_offered_is_an_error() {
        let (port, server) = fake_server("250-fake\r\n250 AUTH PLAIN").await;
        let m = Mail { to: &[], subject: "s", text: "t", id: 1, now_us: 0 };
        let e = send(&config(port, SmtpTls::Starttls), &trust(), &m).await.unwrap_err();
        assert!(e.contains("does not offer STARTTLS"), "{e}");
        drop(server);
    }

    #[test]
    fn extensions_are_read_from_the_ehlo_reply() {
        let r =
            Reply { code: 250, lines: vec!["mail.example.com".into(), "STARTTLS".into(), "AUTH LOGIN PLAIN".into()] };
        assert_eq!(extension(&r, "auth"), Some(vec!["LOGIN", "PLAIN"]));
        assert!(extension(&r, "STARTTLS").is_some());
        assert!(extension(&r, "8BITMIME").is_none());
    }
}
