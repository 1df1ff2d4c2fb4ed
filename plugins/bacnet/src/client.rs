//! The BACnet/IP client side of one UDP socket: confirmed requests with invoke ids, timeouts and
//! retries, reassembly of segmented ComplexACKs (with SegmentACKs), and a hook for everything
//! else that arrives on the socket (COV notifications, I-Ams).

use crate::codec::enums::{abort_reason_name, error_class_name, error_code_name, reject_reason_name};
use crate::codec::pdu::{Apdu, Frame, MAX_APDU_IP, decode_frame, encode_frame, max_apdu_code};
use crate::codec::services::{ErrorPair, decode_error};
use std::io;
use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Segments of a response this client accepts (advertised as "up to 64": code 6).
const MAX_SEGMENTS_CODE: u8 = 6;
const MAX_SEGMENTS: usize = 64;
/// The window this client grants a segmenting server (at most its proposal).
const MAX_WINDOW: u8 = 16;
/// How long `recv` blocks at most while a cancel flag is watched.
const CANCEL_POLL: Duration = Duration::from_millis(100);

/// Why a confirmed request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("no answer from the device")]
    Timeout,
    #[error("socket error: {0}")]
    Io(String),
    #[error("the device answered with an error: {}/{}", error_class_name(.0.class), error_code_name(.0.code))]
    Error(ErrorPair),
    #[error("the device rejected the request: {}", reject_reason_name(*.0))]
    Reject(u8),
    #[error("the device aborted the request: {}", abort_reason_name(*.0))]
    Abort(u8),
    #[error("the device's answer could not be decoded: {0}")]
    Decode(String),
    #[error("the request was cancelled")]
    Cancelled,
}

impl RequestError {
    /// Whether the device did not answer at all (or the socket failed).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, RequestError::Timeout | RequestError::Io(_))
    }
}

/// Counters for `health`.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub requests: u64,
    pub answered: u64,
    pub timeouts: u64,
    pub failures: u64,
    /// Answers that came in segments (reassembled).
    pub segmented_answers: u64,
    /// Whether the last request was answered (`None` before the first).
    pub connected: Option<bool>,
    pub last_error: Option<String>,
}

/// Something that arrived on the socket and is not the answer being waited for.
pub type Unsolicited<'h> = &'h mut dyn FnMut(&Client, &Frame<'_>, SocketAddr);

/// One socket talking to one device (or, for discovery, broadcasting).
#[derive(Debug)]
pub struct Client {
    socket: UdpSocket,
    pub peer: SocketAddrV4,
    pub timeout: Duration,
    pub retries: u32,
    next_invoke_id: u8,
    pub stats: Stats,
    cancel: Option<Arc<AtomicBool>>,
}

impl Client {
    pub fn new(socket: UdpSocket, peer: SocketAddrV4, timeout: Duration, retries: u32) -> Client {
        Client { socket, peer, timeout, retries, next_invoke_id: 0, stats: Stats::default(), cancel: None }
    }

    /// Makes waits end with [`RequestError::Cancelled`] once `flag` is set.
    pub fn set_cancel(&mut self, flag: Arc<AtomicBool>) {
        self.cancel = Some(flag);
    }

    fn cancelled(&self) -> bool {
        self.cancel.as_ref().is_some_and(|f| f.load(Ordering::Relaxed))
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Sends an APDU to `to`.
    pub fn send_to(&self, apdu: &Apdu<'_>, to: SocketAddrV4, broadcast: bool) -> io::Result<()> {
        self.socket.send_to(&encode_frame(broadcast, apdu), to).map(|_| ())
    }

    /// Answers a confirmed request from the peer with a SimpleACK.
    pub fn simple_ack(&self, to: SocketAddr, invoke_id: u8, service: u8) {
        if let SocketAddr::V4(to) = to {
            let _ = self.send_to(&Apdu::SimpleAck { invoke_id, service }, to, false);
        }
    }

    /// Receives one datagram within `wait`; `None` when the time passed.
    fn recv(&self, buf: &mut [u8], wait: Duration) -> Result<Option<(usize, SocketAddr)>, RequestError> {
        let wait = if self.cancel.is_some() { wait.min(CANCEL_POLL) } else { wait };
        self.socket
            .set_read_timeout(Some(wait.max(Duration::from_millis(1))))
            .map_err(|e| RequestError::Io(e.to_string()))?;
        match self.socket.recv_from(buf) {
            Ok(r) => Ok(Some(r)),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => Ok(None),
            // ICMP port unreachable on Linux surfaces as ECONNREFUSED on the next receive: the
            // device is not there; keep waiting out the timeout like for a silent device.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => Ok(None),
            Err(e) => Err(RequestError::Io(e.to_string())),
        }
    }

    /// Waits up to `wait` for datagrams and hands each to `handler`.
    pub fn poll(&mut self, wait: Duration, handler: Unsolicited<'_>) -> Result<(), RequestError> {
        let deadline = Instant::now() + wait;
        let mut buf = vec![0u8; 2048];
        loop {
            if self.cancelled() {
                return Err(RequestError::Cancelled);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(());
            }
            if let Some((n, from)) = self.recv(&mut buf, deadline - now)?
                && let Ok(Some(frame)) = decode_frame(&buf[..n])
            {
                handler(self, &frame, from);
            }
        }
    }

    fn take_invoke_id(&mut self) -> u8 {
        let id = self.next_invoke_id;
        self.next_invoke_id = self.next_invoke_id.wrapping_add(1);
        id
    }

    /// Sends a confirmed request and waits for its answer: the ComplexACK's service data
    /// (reassembled if segmented) or empty for a SimpleACK. Resends after each timeout, up to
    /// `retries` times. Datagrams from elsewhere, and requests from the device, go to `handler`.
    pub fn confirmed(&mut self, service: u8, data: &[u8], handler: Unsolicited<'_>) -> Result<Vec<u8>, RequestError> {
        self.stats.requests += 1;
        let result = self.confirmed_inner(service, data, handler);
        match &result {
            Ok(_) => {
                self.stats.answered += 1;
                self.stats.connected = Some(true);
            }
            Err(RequestError::Timeout) => {
                self.stats.timeouts += 1;
                self.stats.connected = Some(false);
                self.stats.last_error = Some(RequestError::Timeout.to_string());
            }
            Err(RequestError::Cancelled) => {}
            Err(e) => {
                if !e.is_unreachable() {
                    self.stats.answered += 1;
                    self.stats.connected = Some(true);
                } else {
                    self.stats.connected = Some(false);
                }
                self.stats.failures += 1;
                self.stats.last_error = Some(e.to_string());
            }
        }
        result
    }

    fn confirmed_inner(&mut self, service: u8, data: &[u8], handler: Unsolicited<'_>) -> Result<Vec<u8>, RequestError> {
        let invoke_id = self.take_invoke_id();
        let request = Apdu::ConfirmedRequest {
            segmented: false,
            more_follows: false,
            segmented_response_accepted: true,
            max_segments: MAX_SEGMENTS_CODE,
            max_apdu: max_apdu_code(MAX_APDU_IP),
            invoke_id,
            sequence: 0,
            window: 0,
            service,
            data,
        };
        let frame = encode_frame(false, &request);
        let mut buf = vec![0u8; 2048];
        for _attempt in 0..=self.retries {
            self.socket.send_to(&frame, self.peer).map_err(|e| RequestError::Io(e.to_string()))?;
            let mut deadline = Instant::now() + self.timeout;
            // Reassembly state of a segmented answer.
            let mut segments: Option<Reassembly> = None;
            loop {
                if self.cancelled() {
                    return Err(RequestError::Cancelled);
                }
                let now = Instant::now();
                if now >= deadline {
                    if segments.is_some() {
                        // The server stopped sending segments: abort its transaction, then resend.
                        let _ =
                            self.send_to(&Apdu::Abort { from_server: false, invoke_id, reason: 10 }, self.peer, false);
                    }
                    break;
                }
                let Some((n, from)) = self.recv(&mut buf, deadline - now)? else { continue };
                let Ok(Some(frame)) = decode_frame(&buf[..n]) else { continue };
                let ours = from == SocketAddr::V4(self.peer) && frame.source.is_none();
                let answer = ours
                    && frame.apdu.invoke_id() == Some(invoke_id)
                    && !matches!(frame.apdu, Apdu::ConfirmedRequest { .. } | Apdu::Abort { from_server: false, .. });
                if !answer {
                    handler(self, &frame, from);
                    continue;
                }
                match frame.apdu {
                    Apdu::SimpleAck { service: s, .. } if s == service => return Ok(Vec::new()),
                    Apdu::ComplexAck { segmented: false, service: s, data, .. } if s == service => {
                        return Ok(data.to_vec());
                    }
                    Apdu::ComplexAck { segmented: true, more_follows, sequence, window, service: s, data, .. }
                        if s == service =>
                    {
                        let r = segments.get_or_insert_with(|| Reassembly::new(window));
                        match r.accept(sequence, more_follows, data) {
                            Step::Ack(seq) => {
                                let ack = Apdu::SegmentAck {
                                    negative: false,
                                    from_server: false,
                                    invoke_id,
                                    sequence: seq,
                                    window: r.window,
                                };
                                let _ = self.send_to(&ack, self.peer, false);
                            }
                            Step::Nak(seq) => {
                                let ack = Apdu::SegmentAck {
                                    negative: true,
                                    from_server: false,
                                    invoke_id,
                                    sequence: seq,
                                    window: r.window,
                                };
                                let _ = self.send_to(&ack, self.peer, false);
                            }
                            Step::Wait => {}
                            Step::Done(seq) => {
                                let ack = Apdu::SegmentAck {
                                    negative: false,
                                    from_server: false,
                                    invoke_id,
                                    sequence: seq,
                                    window: r.window,
                                };
                                let _ = self.send_to(&ack, self.peer, false);
                                self.stats.segmented_answers += 1;
                                return Ok(std::mem::take(&mut r.data));
                            }
                            Step::TooLong => {
                                let _ = self.send_to(
                                    &Apdu::Abort { from_server: false, invoke_id, reason: 1 },
                                    self.peer,
                                    false,
                                );
                                return Err(RequestError::Abort(1));
                            }
                        }
                        // Each segment restarts the wait (the segment timeout).
                        deadline = Instant::now() + self.timeout;
                    }
                    Apdu::Error { data, .. } => {
                        return Err(decode_error(data)
                            .map(RequestError::Error)
                            .unwrap_or_else(|e| RequestError::Decode(e.to_string())));
                    }
                    Apdu::Reject { reason, .. } => return Err(RequestError::Reject(reason)),
                    Apdu::Abort { reason, .. } => return Err(RequestError::Abort(reason)),
                    // An answer of another service or a stray SegmentACK: not ours.
                    _ => handler(self, &frame, from),
                }
            }
        }
        Err(RequestError::Timeout)
    }
}

/// What to do after a segment.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// Acknowledge up to this sequence number.
    Ack(u8),
    /// Negative-acknowledge: the last in-order sequence number.
    Nak(u8),
    Wait,
    /// The last segment arrived (acknowledge it).
    Done(u8),
    TooLong,
}

/// Reassembly of a segmented ComplexACK (clause 5.4): segments must come in order; the client
/// grants a window of at most [`MAX_WINDOW`] and acknowledges the first segment, each full window
/// and the last segment.
#[derive(Debug)]
struct Reassembly {
    window: u8,
    expected: u8,
    count: usize,
    in_window: u8,
    data: Vec<u8>,
}

impl Reassembly {
    fn new(proposed: u8) -> Reassembly {
        Reassembly { window: proposed.clamp(1, MAX_WINDOW), expected: 0, count: 0, in_window: 0, data: Vec::new() }
    }

    fn accept(&mut self, sequence: u8, more_follows: bool, data: &[u8]) -> Step {
        if sequence != self.expected {
            // A duplicate or a gap: ask for everything after the last good segment.
            return if self.count == 0 { Step::Wait } else { Step::Nak(self.expected.wrapping_sub(1)) };
        }
        self.count += 1;
        if self.data.len() + data.len() > MAX_SEGMENTS * MAX_APDU_IP {
            return Step::TooLong;
        }
        self.data.extend_from_slice(data);
        self.expected = self.expected.wrapping_add(1);
        if !more_follows {
            return Step::Done(sequence);
        }
        self.in_window += 1;
        if self.count == 1 || self.in_window >= self.window {
            self.in_window = 0;
            Step::Ack(sequence)
        } else {
            Step::Wait
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::services::confirmed::READ_PROPERTY;

    /// A fake device that answers the first request with a wrong invoke id, lets a stranger
    /// answer with the right one, stays silent, and answers the resent request properly.
    #[test]
    fn only_the_devices_answer_with_the_invoke_id_counts_and_silence_is_retried() {
        let device = UdpSocket::bind("127.0.0.1:0").unwrap();
        let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
        let SocketAddr::V4(device_addr) = device.local_addr().unwrap() else { panic!("not IPv4") };
        let fake = std::thread::spawn(move || {
            let mut buf = [0u8; 256];
            let mut seen = Vec::new();
            for attempt in 0..2 {
                let (n, from) = device.recv_from(&mut buf).unwrap();
                let frame = decode_frame(&buf[..n]).unwrap().unwrap();
                let Apdu::ConfirmedRequest { invoke_id, service, data, .. } = frame.apdu else {
                    panic!("not a request")
                };
                seen.push((invoke_id, data.to_vec()));
                let ack = |invoke_id, data: &'static [u8]| {
                    encode_frame(
                        false,
                        &Apdu::ComplexAck {
                            segmented: false,
                            more_follows: false,
                            invoke_id,
                            sequence: 0,
                            window: 0,
                            service,
                            data,
                        },
                    )
                };
                if attempt == 0 {
                    device.send_to(&ack(invoke_id.wrapping_add(1), b"wrong id"), from).unwrap();
                    stranger.send_to(&ack(invoke_id, b"stranger"), from).unwrap();
                } else {
                    device.send_to(&ack(invoke_id, b"right"), from).unwrap();
                }
            }
            seen
        });
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut client = Client::new(socket, device_addr, Duration::from_millis(300), 1);
        let mut strays = 0;
        let answer = client.confirmed(READ_PROPERTY, b"abc", &mut |_, _, _| strays += 1).unwrap();
        assert_eq!(answer, b"right");
        assert_eq!(strays, 2, "the wrong invoke id and the stranger went to the handler");
        let seen = fake.join().unwrap();
        assert_eq!(seen[0], seen[1], "the same request with the same invoke id was resent");
        assert_eq!((client.stats.requests, client.stats.answered, client.stats.timeouts), (1, 1, 0));
        // No answer at all: a timeout after 1 + retries attempts.
        let started = Instant::now();
        assert_eq!(client.confirmed(READ_PROPERTY, b"abc", &mut |_, _, _| {}), Err(RequestError::Timeout));
        assert!(started.elapsed() >= Duration::from_millis(600));
        assert_eq!((client.stats.requests, client.stats.timeouts, client.stats.connected), (2, 1, Some(false)));
    }

    #[test]
    fn segments_are_acknowledged_per_window_and_reassembled() {
        let mut r = Reassembly::new(3);
        assert_eq!(r.window, 3);
        assert_eq!(r.accept(0, true, b"a"), Step::Ack(0));
        assert_eq!(r.accept(1, true, b"b"), Step::Wait);
        assert_eq!(r.accept(2, true, b"c"), Step::Wait);
        assert_eq!(r.accept(3, true, b"d"), Step::Ack(3));
        // A duplicate is refused with the last good sequence number.
        assert_eq!(r.accept(3, true, b"d"), Step::Nak(3));
        assert_eq!(r.accept(5, true, b"f"), Step::Nak(3));
        assert_eq!(r.accept(4, false, b"e"), Step::Done(4));
        assert_eq!(r.data, b"abcde");
        assert_eq!(Reassembly::new(0).window, 1);
        assert_eq!(Reassembly::new(200).window, MAX_WINDOW);
    }

    #[test]
    fn an_answer_past_64_full_segments_is_refused() {
        let mut r = Reassembly::new(16);
        let segment = vec![0u8; MAX_APDU_IP];
        for i in 0..64u8 {
            assert_ne!(r.accept(i, true, &segment), Step::TooLong);
        }
        assert_eq!(r.accept(64, true, &segment), Step::TooLong);
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut r = Reassembly::new(127);
        for i in 0..300u32 {
            let step = r.accept(i as u8, i < 299, &[i as u8]);
            if i == 299 {
                assert_eq!(step, Step::Done(i as u8));
            } else {
                assert_ne!(step, Step::TooLong);
                assert!(!matches!(step, Step::Nak(_)));
            }
        }
        assert_eq!(r.data.len(), 300);
    }
}
