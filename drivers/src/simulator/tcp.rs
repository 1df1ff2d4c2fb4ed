//! Modbus TCP on tokio-modbus's server, with byte-level faults injected by a stream wrapper.
//!
//! tokio-modbus's TCP server asks `on_connected` for a service and a transport per connection, so
//! each connection gets a [`ConnService`] and a [`FaultyStream`] around its `TcpStream` that share
//! one [`ConnFaults`]. The service decides what a faulted device does ([`Outcome`]); what tokio-modbus
//! cannot say with a response value, the stream does:
//! - `NoAnswer`: the service returns `None`, tokio-modbus sends nothing.
//! - `LateAnswer`: the service sleeps, then answers. The connection is served in order, so later
//!   requests on it wait too, as behind a real single-threaded gateway.
//! - `Exception`: the service returns the exception code.
//! - `DropConnection`: the service marks the connection and sends nothing; the stream then reports
//!   end of file, tokio-modbus ends the connection's task and the socket closes.
//! - `Garbage` and `CrcError` (TCP has no CRC, so it is treated as garbage): the service answers
//!   normally and marks the connection; the stream swallows the encoded answer and writes random
//!   bytes instead, shaped (a complete MBAP length with a non-zero protocol id) so that a client's
//!   decoder rejects them at once instead of waiting for more.
//!
//! Unknown unit ids get exception 0x0B (gateway target device failed to respond), as from a real
//! Modbus TCP gateway: the simulator stands for a gateway with its devices behind it, and 0x0B tells
//! a client that the *device* is missing, not the gateway. Unit 0 and 255 ("this server") reach the
//! device when the simulator has exactly one.

use super::{Outcome, Simulator};
use rand::{Rng, SeedableRng, rngs::StdRng};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio_modbus::server::tcp::Server;
use tokio_modbus::{ExceptionCode, Response, SlaveRequest};

/// Per-connection fault flags set by the service and acted on by the stream.
#[derive(Debug, Default)]
pub(crate) struct ConnFaults {
    /// Close the connection: reads report end of file from now on.
    drop: AtomicBool,
    /// Replace the next answer written with garbage.
    garbage_next: AtomicBool,
}

/// The tokio-modbus service for one connection.
#[derive(Debug)]
pub(crate) struct ConnService {
    sim: Arc<Simulator>,
    faults: Arc<ConnFaults>,
}

type ServiceFuture = Pin<Box<dyn Future<Output = Result<Option<Response>, ExceptionCode>> + Send>>;

impl tokio_modbus::server::Service for ConnService {
    type Request = SlaveRequest<'static>;
    type Response = Option<Response>;
    type Exception = ExceptionCode;
    type Future = ServiceFuture;

    fn call(&self, req: Self::Request) -> Self::Future {
        let outcome = self.sim.dispatch_tcp(req.slave, &req.request);
        let faults = Arc::clone(&self.faults);
        Box::pin(async move {
            match outcome {
                Outcome::Reply(result) => result.map(Some),
                Outcome::Silent => Ok(None),
                Outcome::Late(delay, result) => {
                    tokio::time::sleep(delay).await;
                    result.map(Some)
                }
                Outcome::Drop => {
                    faults.drop.store(true, Ordering::SeqCst);
                    Ok(None)
                }
                Outcome::Garbage(result) | Outcome::CrcError(result) => {
                    faults.garbage_next.store(true, Ordering::SeqCst);
                    // Whatever gets encoded is replaced by the stream; an exception is encoded too.
                    result.map(Some)
                }
            }
        })
    }
}

/// A transport that can pretend the peer hung up and can replace an answer by garbage.
#[derive(Debug)]
pub(crate) struct FaultyStream<S> {
    inner: S,
    faults: Arc<ConnFaults>,
    /// Garbage still to be written to `inner`.
    pending: Vec<u8>,
    rng: StdRng,
}

impl<S> FaultyStream<S> {
    pub(crate) fn new(inner: S, faults: Arc<ConnFaults>, seed: u64) -> Self {
        Self { inner, faults, pending: Vec::new(), rng: StdRng::seed_from_u64(seed) }
    }
}

/// Random bytes that look like the start of an MBAP frame whose protocol id is not 0.
pub(crate) fn tcp_garbage(rng: &mut impl Rng) -> Vec<u8> {
    let len = rng.random_range(9..=16usize);
    let mut bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
    let protocol: u16 = rng.random_range(1..=u16::MAX);
    bytes[2..4].copy_from_slice(&protocol.to_be_bytes());
    bytes[4..6].copy_from_slice(&((len - 6) as u16).to_be_bytes());
    bytes
}

impl<S: AsyncWrite + Unpin> FaultyStream<S> {
    /// Writes out pending garbage; Ready(Ok) once none is left.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.pending.is_empty() {
            let n = std::task::ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.pending.drain(..n);
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for FaultyStream<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.faults.drop.load(Ordering::SeqCst) {
            return Poll::Ready(Ok(())); // end of file: tokio-modbus closes the connection
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for FaultyStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        std::task::ready!(this.poll_drain(cx))?;
        if this.faults.garbage_next.swap(false, Ordering::SeqCst) {
            // Swallow the real answer (tokio-modbus writes one encoded frame per send).
            this.pending = tcp_garbage(&mut this.rng);
            if let Poll::Ready(Err(e)) = this.poll_drain(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(buf.len())); // what is left goes out on flush
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl Simulator {
    /// Serves Modbus TCP on `listener` until accepting fails. Every connection reaches every device
    /// by unit id (see the module docs of `tcp` for unknown units and faults). Also records the
    /// listener's address as the endpoint the UDP scan reports, unless one was set.
    pub async fn serve_tcp(self: Arc<Self>, listener: TcpListener) -> io::Result<()> {
        if let Ok(addr) = listener.local_addr() {
            self.advertise_default(addr);
        }
        let server = Server::new(listener);
        let sim = Arc::clone(&self);
        let on_connected = move |stream: tokio::net::TcpStream, peer: std::net::SocketAddr| {
            let sim = Arc::clone(&sim);
            async move {
                let _ = stream.set_nodelay(true);
                let faults = Arc::new(ConnFaults::default());
                let seed = sim.next_connection_seed();
                tracing::debug!(%peer, "simulator: Modbus TCP connection");
                let service = ConnService { sim, faults: Arc::clone(&faults) };
                Ok::<_, io::Error>(Some((service, FaultyStream::new(stream, faults, seed))))
            }
        };
        let on_process_error = |err: io::Error| tracing::debug!(%err, "simulator: Modbus TCP connection ended");
        server.serve(&on_connected, on_process_error).await
    }
}
