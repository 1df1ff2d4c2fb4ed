//! A small SMTP client (RFC 5321) for the e-mail channels: `EHLO`, `STARTTLS` or TLS from the
//! start (rustls, trusting what [`super::tls`] trusts), `AUTH PLAIN` or `AUTH
//! LOGIN`, one message to the recipients the server accepts (one it refuses does not stop the
//! others), `QUIT`. The message is plain text with `Date`, `Message-ID`, `From`, `To` and
//! `Subject` (RFC 2047 encoded words when not ASCII), header lines folded within 78 characters;
//! lines are CRLF and dot-stuffed.

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
    /// When the message was made (its `Date`, and with `id` its `Message-ID`): the same at every
    /// attempt.
    pub made_us: i64,
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

    /// Sends a command and returns the reply, whatever its code.
    async fn ask(&mut self, line: &str) -> Result<Reply, String> {
        self.send(format!("{line}\r\n").as_bytes()).await?;
        self.reply().await
    }

    /// Sends a command and expects a reply with code `want`; `shown` is what an error calls it
    /// (so a password never appears in one).
    async fn command(&mut self, line: &str, shown: &str, want: u16) -> Result<Reply, String> {
        let r = self.ask(line).await?;
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

/// Bytes of text in one RFC 2047 encoded word: its base64 (56 characters) and `=?UTF-8?B?` `?=`
/// make 68, within the 75 an encoded word may have, and `Subject: ` before the first one keeps its
/// line within 78.
const WORD_BYTES: usize = 42;

/// A header value on one line: as it is when ASCII, else RFC 2047 base64 encoded words of at most
/// [`WORD_BYTES`] each, split between UTF-8 characters and separated by spaces (where
/// [`header_line`] may fold; a decoder joins adjacent encoded words without the space).
fn header_text(s: &str) -> String {
    let s = s.replace(['\r', '\n'], " ");
    if s.is_ascii() {
        return s;
    }
    let mut words = Vec::new();
    let mut rest = s.as_str();
    while !rest.is_empty() {
        let mut end = rest.len().min(WORD_BYTES);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        // A single character is at most 4 bytes: `end` is never 0.
        words.push(format!("=?UTF-8?B?{}?=", B64.encode(&rest.as_bytes()[..end])));
        rest = &rest[end..];
    }
    words.join(" ")
}

/// Longest header line, CRLF not counted (RFC 5322 2.1.1).
const LINE: usize = 78;

/// `Name: value` with CRLF, folded at spaces (the next line starts with a space) so that no line
/// is longer than [`LINE`] where a space allows it.
fn header_line(name: &str, value: &str) -> String {
    let mut out = format!("{name}:");
    let mut line_len = out.len();
    for word in value.split(' ') {
        if line_len + 1 + word.len() > LINE && line_len > name.len() + 1 {
            out.push_str("\r\n");
            line_len = 0;
        }
        out.push(' ');
        out.push_str(word);
        line_len += 1 + word.len();
    }
    out.push_str("\r\n");
    out
}

/// The whole message as sent after `DATA`: headers, body with CRLF line ends and dot-stuffing,
/// and the final `.` line.
pub fn render(from: &str, m: &Mail<'_>) -> Vec<u8> {
    let domain = from.rsplit_once('@').map_or("localhost", |(_, d)| d);
    let date = chrono::DateTime::from_timestamp_micros(m.made_us).unwrap_or_default().to_rfc2822();
    let ascii = m.text.is_ascii();
    let mut out = String::new();
    out.push_str(&header_line("Date", &date));
    out.push_str(&header_line("Message-ID", &format!("<t3000.{}.{}@{domain}>", m.made_us, m.id)));
    out.push_str(&header_line("From", from));
    out.push_str(&header_line("To", &m.to.join(", ")));
    out.push_str(&header_line("Subject", &header_text(m.subject)));
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

/// A recipient the mail server refused at `RCPT TO`, with its reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub to: String,
    pub code: u16,
    /// The reply as the server wrote it, code included (`550 5.1.1 no such user`).
    pub reply: String,
}

impl Refused {
    /// A 4xx reply (greylisting, a full mailbox, a busy server): the recipient may be taken later.
    pub fn temporary(&self) -> bool {
        (400..500).contains(&self.code)
    }
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.to, self.reply)
    }
}

/// Sends one mail over `tls` when `cfg` asks for it, to every recipient of `rcpt` the server
/// accepts (any 2xx reply to `RCPT TO`; the `To` header names all of `m.to`). `Ok` lists the
/// recipients it refused, each with its reply; `Err` says which step failed and the server's reply
/// (never the password), also when it refused every recipient.
pub async fn send(
    cfg: &SmtpConfig,
    tls_config: &Arc<rustls::ClientConfig>,
    m: &Mail<'_>,
    rcpt: &[String],
) -> Result<Vec<Refused>, String> {
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
    let mut refused = Vec::new();
    for to in rcpt {
        let r = c.ask(&format!("RCPT TO:<{to}>")).await?;
        if !(200..300).contains(&r.code) {
            refused.push(Refused { to: to.clone(), code: r.code, reply: r.text() });
        }
    }
    if refused.len() == rcpt.len() {
        let _ = c.command("QUIT", "QUIT", 221).await;
        let each: Vec<String> = refused.iter().map(Refused::to_string).collect();
        return Err(format!("every recipient refused: {}", each.join("; ")));
    }
    c.command("DATA", "DATA", 354).await?;
    c.send(&render(&cfg.from, m)).await?;
    let r = c.reply().await?;
    if r.code != 250 {
        return Err(format!("message refused: {}", r.text()));
    }
    // The message is accepted; a failed QUIT changes nothing.
    let _ = c.command("QUIT", "QUIT", 221).await;
    Ok(refused)
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
            made_us: 1_795_651_200_000_000,
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
        fake_server_with(ehlo, |_| "250 ok").await
    }

    /// [`fake_server`] answering `RCPT TO` lines with `rcpt`.
    async fn fake_server_with(
        ehlo: &'static str,
        rcpt: fn(&str) -> &'static str,
    ) -> (u16, tokio::task::JoinHandle<Vec<String>>) {
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
                        "MAIL" => "250 ok".into(),
                        "RCPT" => rcpt(&line).into(),
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
        let m = Mail { to: &to, subject: "s", text: ".x\n", id: 1, made_us: 1_795_651_200_000_000 };
        send(&config(port, SmtpTls::None), &trust(), &m, m.to).await.unwrap();
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
        let m = Mail { to: &[], subject: "s", text: "t", id: 1, made_us: 0 };
        let e = send(&config(port, SmtpTls::Starttls), &trust(), &m, m.to).await.unwrap_err();
        assert!(e.contains("does not offer STARTTLS"), "{e}");
        drop(server);
    }

    fn no_auth(port: u16) -> SmtpConfig {
        SmtpConfig {
            username: String::new(),
            password: t3_core::config::Secret::default(),
            ..config(port, SmtpTls::None)
        }
    }

    /// A recipient refused with 550 does not stop the message to the others; 251 (will forward)
    /// is accepted like 250.
    #[tokio::test]
    async fn a_refused_recipient_does_not_stop_the_others() {
        let (port, server) = fake_server_with("250 fake", |line| match line {
            "RCPT TO:<bad@example.com>" => "550 5.1.1 no such user",
            "RCPT TO:<away@example.com>" => "251 User not local; will forward",
            _ => "250 ok",
        })
        .await;
        let to = ["ok@example.com", "bad@example.com", "away@example.com"].map(String::from);
        let m = Mail { to: &to, subject: "s", text: "t\n", id: 1, made_us: 1_795_651_200_000_000 };
        let refused = send(&no_auth(port), &trust(), &m, m.to).await.unwrap();
        assert_eq!(
            refused.iter().map(Refused::to_string).collect::<Vec<_>>(),
            ["bad@example.com: 550 5.1.1 no such user"]
        );
        assert!(!refused[0].temporary());
        let got = server.await.unwrap();
        assert!(got.contains(&"DATA".to_owned()), "the message went to the others: {got:?}");
        assert_eq!(got.last().map(String::as_str), Some("QUIT"));
    }

    /// When every recipient is refused the message fails (and is retried), naming each.
    #[tokio::test]
    async fn every_recipient_refused_is_a_failure() {
        let (port, server) = fake_server_with("250 fake", |_| "550 5.1.1 no such user").await;
        let to = ["a@example.com", "b@example.com"].map(String::from);
        let m = Mail { to: &to, subject: "s", text: "t\n", id: 1, made_us: 0 };
        let e = send(&no_auth(port), &trust(), &m, m.to).await.unwrap_err();
        assert!(e.starts_with("every recipient refused: a@example.com: 550"), "{e}");
        assert!(e.contains("b@example.com: 550"), "{e}");
        let got = server.await.unwrap();
        assert!(!got.contains(&"DATA".to_owned()), "{got:?}");
    }

    /// The text of RFC 2047 `B` words, joined (what a decoder shows); each word must hold whole
    /// UTF-8 characters.
    fn decode_words(value: &str) -> String {
        value
            .split_whitespace()
            .map(|w| {
                let b64 = w.strip_prefix("=?UTF-8?B?").and_then(|w| w.strip_suffix("?=")).expect("an encoded word");
                String::from_utf8(B64.decode(b64).unwrap()).expect("a word ends between characters")
            })
            .collect()
    }

    /// A long non-ASCII subject becomes several encoded words of at most 75 characters, each
    /// whole UTF-8 characters, on folded lines of at most 78; a long ASCII one folds at spaces.
    #[test]
    fn a_long_subject_is_split_into_encoded_words_and_folded() {
        let subject = format!("[T3000 Hauptstraße] ACTIVE high: {}", "Kesselvorlauf über Grenzwert ".repeat(6));
        let to = vec!["a@example.com".to_owned()];
        let m = Mail { to: &to, subject: &subject, text: "t\n", id: 1, made_us: 0 };
        let s = String::from_utf8(render("t3000@example.com", &m)).unwrap();
        let head = s.split("\r\n\r\n").next().unwrap();
        for line in head.split("\r\n") {
            assert!(line.len() <= 78, "{} characters: {line}", line.len());
        }
        let start = head.find("Subject: ").unwrap();
        let end = start + head[start..].find("\r\nMIME-Version").unwrap();
        let value = &head[start + "Subject: ".len()..end];
        assert!(value.contains("\r\n "), "folded: {value}");
        assert!(value.split_whitespace().count() >= 4, "{value}");
        for word in value.split_whitespace() {
            assert!(word.len() <= 75, "{word}");
        }
        assert_eq!(decode_words(value), subject);

        let long = format!("[T3000] ACTIVE high: {}", "Boiler flow ".repeat(10).trim_end());
        let folded = header_line("Subject", &header_text(&long));
        assert!(folded.split("\r\n").all(|l| l.len() <= 78), "{folded}");
        assert_eq!(folded.trim_end().replace("\r\n ", " "), format!("Subject: {long}"));
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
