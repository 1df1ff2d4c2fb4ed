//! Modbus RTU over a serial stream (a real port or one end of a pseudo-terminal), with our own framing
//! (see `frame` for why) so that line faults can be produced byte for byte.
//!
//! Framing: a request's length follows from its function code (and byte count); a frame whose CRC is
//! wrong loses its first byte and the rest is searched again, as a receiver resynchronises on a noisy
//! line. A partial frame followed by [`INTER_FRAME_GAP`] of silence is discarded (the RTU "3.5
//! character times", generous because a pty has no baud rate); a complete frame with an unknown
//! function code is recognised by that same silence and answered with exception 01.
//!
//! Addressing as on a real bus: a unit id that no simulated device has gets no answer; unit 0 is a
//! broadcast: writes reach every device and nobody answers.
//!
//! Faults: `NoAnswer` and `DropConnection` (a serial line cannot be dropped) send nothing;
//! `LateAnswer` sends the answer after the delay; `Exception` sends the exception; `Garbage` sends
//! random bytes whose CRC does not match; `CrcError` sends the real answer with its CRC inverted.

use super::frame::{FrameLen, crc_ok, decode_request, encode_response, request_frame_len, with_crc};
use super::{Outcome, Simulator};
use rand::{Rng, SeedableRng, rngs::StdRng};
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_modbus::{ExceptionCode, Request};
use tokio_serial::SerialStream;

/// Silence that ends a frame.
pub(crate) const INTER_FRAME_GAP: Duration = Duration::from_millis(50);
/// How long to wait before reading again while no client holds the other end of a pty.
const NO_PEER_RETRY: Duration = Duration::from_millis(20);
/// The longest RTU frame.
const MAX_FRAME: usize = 256;

/// Linux (and macOS) report EIO on a pty master while no process has the slave end open.
fn is_no_peer(e: &io::Error) -> bool {
    cfg!(unix) && e.raw_os_error() == Some(5)
}

impl Simulator {
    /// A pseudo-terminal pair: the stream to serve on and the path of the other end, which a client
    /// opens like any serial port (baud rate and parity do not matter on a pty). While no client has
    /// the path open, [`Simulator::serve_rtu`] waits.
    #[cfg(unix)]
    pub fn open_pty() -> io::Result<(SerialStream, String)> {
        use tokio_serial::SerialPort;
        let (master, slave) = SerialStream::pair().map_err(io::Error::from)?;
        let path = slave.name().ok_or_else(|| io::Error::other("pty without a name"))?;
        // Closing our copy of the client end leaves the path free for the client (serial ports are
        // opened exclusively).
        drop(slave);
        Ok((master, path))
    }

    /// Serves Modbus RTU on `port` until it fails (a pty whose client went away is waited for).
    pub async fn serve_rtu(self: Arc<Self>, mut port: SerialStream) -> io::Result<()> {
        let mut rng = StdRng::seed_from_u64(self.next_connection_seed());
        let mut buf: Vec<u8> = Vec::with_capacity(2 * MAX_FRAME);
        let mut chunk = [0u8; MAX_FRAME];
        loop {
            let read = if buf.is_empty() {
                port.read(&mut chunk).await
            } else {
                match tokio::time::timeout(INTER_FRAME_GAP, port.read(&mut chunk)).await {
                    Ok(r) => r,
                    Err(_) => {
                        // Silence: whatever is buffered was one frame.
                        let frame = std::mem::take(&mut buf);
                        if crc_ok(&frame) && frame.len() <= MAX_FRAME {
                            self.answer_rtu(&mut port, &frame, &mut rng).await?;
                        } else {
                            tracing::debug!(bytes = frame.len(), "simulator: RTU noise discarded");
                        }
                        continue;
                    }
                }
            };
            match read {
                Ok(0) => {
                    buf.clear();
                    tokio::time::sleep(NO_PEER_RETRY).await;
                }
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    while let Some(frame) = next_frame(&mut buf) {
                        self.answer_rtu(&mut port, &frame, &mut rng).await?;
                    }
                }
                Err(e) if is_no_peer(&e) => {
                    buf.clear();
                    tokio::time::sleep(NO_PEER_RETRY).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn answer_rtu(&self, port: &mut SerialStream, frame: &[u8], rng: &mut StdRng) -> io::Result<()> {
        let unit = frame[0];
        let pdu = &frame[1..frame.len() - 2];
        let function = tokio_modbus::FunctionCode::new(pdu[0]);
        let request: Result<Request<'static>, ExceptionCode> = decode_request(pdu);
        if unit == 0 {
            if let Ok(req) = &request {
                self.broadcast(req);
            }
            return Ok(());
        }
        let Some(outcome) = self.dispatch_rtu(unit, request) else { return Ok(()) };
        let reply = |result: &Result<_, _>| {
            let mut adu = vec![unit];
            adu.extend_from_slice(&encode_response(function, result));
            with_crc(adu)
        };
        let bytes = match outcome {
            Outcome::Reply(result) => reply(&result),
            Outcome::Silent | Outcome::Drop => return Ok(()),
            Outcome::Late(delay, result) => {
                tokio::time::sleep(delay).await;
                reply(&result)
            }
            Outcome::Garbage(_) => rtu_garbage(rng),
            Outcome::CrcError(result) => {
                let mut bytes = reply(&result);
                let n = bytes.len();
                bytes[n - 2] ^= 0xFF;
                bytes[n - 1] ^= 0xFF;
                bytes
            }
        };
        match port.write_all(&bytes).await.and(port.flush().await) {
            Err(e) if is_no_peer(&e) => Ok(()), // the client went away; nobody hears the answer
            r => r,
        }
    }
}

/// Takes the next complete, CRC-valid request frame off the front of `buf`, dropping bytes that
/// cannot start one. `None` while more bytes are needed (or only silence can end the frame).
pub(crate) fn next_frame(buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    loop {
        match request_frame_len(buf) {
            FrameLen::NeedMore => return None,
            FrameLen::Unknown => {
                // Noise, or a function only silence can end: a valid frame further on wins.
                let later = (1..buf.len()).find(|&k| match request_frame_len(&buf[k..]) {
                    FrameLen::Known(len) => len <= MAX_FRAME && buf.len() >= k + len && crc_ok(&buf[k..k + len]),
                    _ => false,
                });
                match later {
                    Some(k) => {
                        buf.drain(..k);
                    }
                    None => {
                        if buf.len() > MAX_FRAME {
                            buf.drain(..buf.len() - MAX_FRAME);
                        }
                        return None;
                    }
                }
            }
            FrameLen::Known(len) if len > MAX_FRAME => {
                buf.remove(0);
            }
            FrameLen::Known(len) if buf.len() < len => return None,
            FrameLen::Known(len) => {
                if crc_ok(&buf[..len]) {
                    return Some(buf.drain(..len).collect());
                }
                buf.remove(0); // resynchronise one byte later
            }
        }
    }
}

/// Random bytes that are not a valid frame (their last two bytes are not the CRC of the rest).
pub(crate) fn rtu_garbage(rng: &mut impl Rng) -> Vec<u8> {
    let len = rng.random_range(5..=12usize);
    let mut bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
    if crc_ok(&bytes) {
        bytes[len - 1] ^= 0x5A;
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_split_and_noise_is_skipped() {
        let a = with_crc(vec![1, 3, 0x1D, 0x4C, 0, 2]);
        let b = with_crc(vec![2, 6, 0x1B, 0xBD, 0, 1]);
        let mut buf = vec![0xAA, 0x55];
        buf.extend_from_slice(&a);
        buf.extend_from_slice(&b[..5]);
        assert_eq!(next_frame(&mut buf), Some(a));
        assert_eq!(next_frame(&mut buf), None);
        buf.extend_from_slice(&b[5..]);
        assert_eq!(next_frame(&mut buf), Some(b));
        assert!(buf.is_empty());
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..100 {
            assert!(!crc_ok(&rtu_garbage(&mut rng)));
        }
    }
}
