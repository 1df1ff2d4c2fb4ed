//! Modbus TCP and RTU on tokio-modbus and tokio-serial.
//!
//! One [`ModbusDriver`] owns one connection: a TCP socket to one device (or gateway), or one serial
//! bus shared by every unit on it. Requests on it are serialised by a mutex; on a serial bus the
//! driver also keeps the inter-frame silence the baud rate needs (3.5 character times, at least
//! 1.75 ms above 19,200 baud).
//!
//! Any timeout or invalid reply closes the connection: a reply that arrives late must never be read
//! as the answer to the next request. tokio-modbus checks the transaction id (TCP), the unit and the
//! function code of every reply, and we check that it carries exactly the values asked for; the next
//! request reconnects (a serial port is reopened and its input flushed).
//!
//! RTU has no transaction id: only the unit address tells one answer from another. So after a
//! timeout the unit that timed out gets no request for one more timeout (its late answer would
//! match it), while the other units of the bus go on at once: one dead unit costs them its own
//! timeout and no more. A late answer that does come while another unit waits is no valid answer
//! to it (wrong unit), so that request fails and the whole line then stays quiet; the unit that
//! timed out last is from then on known to answer late, and each of its timeouts keeps the whole
//! line quiet too. A quiet line is listened to: it is free again once the late answer has come in
//! and 3.5 characters of silence followed, after one more timeout at most (libmodbus waits the
//! whole timeout after an error). A device answering later than twice the timeout cannot be told
//! apart on RTU from an answer to the next request of the same shape.

use crate::codec::RegisterKind;
use crate::driver::{ConnectionHealth, Driver, DriverError, ExceptionCode, RawData};
use crate::planner::ReadRequest;
use futures::future::BoxFuture;
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use t3_core::config::Parity;
use tokio::time::{Instant, timeout};
use tokio_modbus::client::{Context, Reader, Writer};
use tokio_modbus::prelude::SlaveContext;
use tokio_modbus::{ExceptionCode as MbException, Slave};

/// Where a Modbus driver connects.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// Modbus TCP to `host:port` (a name is resolved at each connect).
    Tcp { host: String, port: u16 },
    /// Modbus RTU on a serial line, 8 data bits, 1 stop bit.
    Rtu { path: String, baud_rate: u32, parity: Parity },
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp { host, port } => write!(f, "tcp://{host}:{port}"),
            Endpoint::Rtu { path, baud_rate, parity } => write!(f, "rtu://{path}?baud={baud_rate}&parity={parity:?}"),
        }
    }
}

impl Endpoint {
    /// The silence a serial line needs between frames; zero for TCP.
    fn silence(&self) -> Duration {
        match self {
            Endpoint::Tcp { .. } => Duration::ZERO,
            // 11 bits per character (start, 8 data, parity or second stop, stop).
            Endpoint::Rtu { baud_rate, .. } if *baud_rate <= 19_200 => {
                Duration::from_micros(3_500_000 * 11 / u64::from(*baud_rate))
            }
            Endpoint::Rtu { .. } => Duration::from_micros(1750),
        }
    }
}

struct Conn {
    ctx: Option<Context>,
    /// When the line was last used (for the RTU inter-frame silence).
    last_io: Instant,
    /// Serial lines: no request before this instant (set when an invalid reply, or a timeout of a
    /// unit known to answer late, closes the line; see the module docs).
    quiet_until: Option<Instant>,
}

/// What a serial line knows of its units' late answers (see the module docs).
#[derive(Debug, Default)]
struct LateAnswers {
    /// A unit that timed out gets no request before this instant.
    unit_quiet: HashMap<u8, Instant>,
    /// The last timeout on the line: blamed for an invalid reply that follows it.
    last_timeout: Option<(u8, Instant)>,
    /// Units seen answering after their timeout.
    late: HashSet<u8>,
}

/// A Modbus TCP connection or RTU bus.
pub struct ModbusDriver {
    endpoint: Endpoint,
    timeout: Duration,
    conn: tokio::sync::Mutex<Conn>,
    health: Mutex<ConnectionHealth>,
    /// A connection is open (set on connect, cleared on close).
    connected: AtomicBool,
    /// Serial lines only.
    late: Mutex<LateAnswers>,
}

impl fmt::Debug for ModbusDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModbusDriver").field("endpoint", &self.endpoint).field("timeout", &self.timeout).finish()
    }
}

/// The outcome of one Modbus call before it is mapped to [`DriverError`].
type CallResult<T> = Result<tokio_modbus::Result<T>, tokio::time::error::Elapsed>;

impl ModbusDriver {
    /// A driver that connects on first use; `timeout` bounds every connect and every request.
    pub fn new(endpoint: Endpoint, timeout: Duration) -> ModbusDriver {
        ModbusDriver {
            endpoint,
            timeout,
            conn: tokio::sync::Mutex::new(Conn { ctx: None, last_io: Instant::now(), quiet_until: None }),
            health: Mutex::new(ConnectionHealth::default()),
            connected: AtomicBool::new(false),
            late: Mutex::new(LateAnswers::default()),
        }
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    async fn connect(&self) -> Result<Context, DriverError> {
        let ctx = match &self.endpoint {
            Endpoint::Tcp { host, port } => {
                let fut = async {
                    let addr = tokio::net::lookup_host((host.as_str(), *port))
                        .await?
                        .next()
                        .ok_or_else(|| std::io::Error::other(format!("{host} has no address")))?;
                    tokio_modbus::client::tcp::connect(addr).await
                };
                match timeout(self.timeout, fut).await {
                    Ok(Ok(ctx)) => ctx,
                    Ok(Err(e)) => return Err(DriverError::Connection(format!("{}: {e}", self.endpoint))),
                    Err(_) => return Err(DriverError::Connection(format!("{}: connect timed out", self.endpoint))),
                }
            }
            Endpoint::Rtu { .. } => {
                use tokio_serial::SerialPort;
                let port = self.open_serial()?;
                // Whatever a device sent after an earlier timeout must not be read as a reply.
                let _ = port.clear(tokio_serial::ClearBuffer::All);
                tokio_modbus::client::rtu::attach(port)
            }
        };
        self.health.lock().connects += 1;
        self.connected.store(true, Ordering::Relaxed);
        Ok(ctx)
    }

    fn open_serial(&self) -> Result<tokio_serial::SerialStream, DriverError> {
        use tokio_serial::SerialPortBuilderExt;
        let Endpoint::Rtu { path, baud_rate, parity } = &self.endpoint else {
            return Err(DriverError::Invalid(format!("{} is no serial line", self.endpoint)));
        };
        let parity = match parity {
            Parity::None => tokio_serial::Parity::None,
            Parity::Even => tokio_serial::Parity::Even,
            Parity::Odd => tokio_serial::Parity::Odd,
        };
        tokio_serial::new(path, *baud_rate)
            .parity(parity)
            .data_bits(tokio_serial::DataBits::Eight)
            .stop_bits(tokio_serial::StopBits::One)
            .open_native_async()
            .map_err(|e| DriverError::Connection(format!("{}: {e}", self.endpoint)))
    }

    /// Keeps a serial line quiet until `until`, listening: once a late answer has come in and the
    /// line has then been silent for 3.5 characters (at least 2 ms), it is free again.
    async fn wait_quiet(&self, until: Instant) {
        use tokio::io::AsyncReadExt;
        let Ok(mut port) = self.open_serial() else {
            return tokio::time::sleep_until(until).await;
        };
        let gap = self.endpoint.silence().max(Duration::from_millis(2));
        let mut buf = [0u8; 256];
        let mut heard = false;
        loop {
            let deadline = if heard { (Instant::now() + gap).min(until) } else { until };
            match tokio::time::timeout_at(deadline, port.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => heard = true,
                // The line went away: the reconnect will tell.
                Ok(_) => return tokio::time::sleep_until(until).await,
                Err(_) => return,
            }
        }
    }

    /// Runs `op` on the open connection (opening it first), keeping the line's silence, mapping
    /// errors and closing the connection on any error that leaves its state unknown.
    async fn call<T, F>(&self, conn: &mut Conn, unit: u8, op: F) -> Result<T, DriverError>
    where
        F: for<'c> FnOnce(&'c mut Context) -> BoxFuture<'c, tokio_modbus::Result<T>>,
    {
        if let Some(quiet) = conn.quiet_until.take() {
            self.wait_quiet(quiet).await;
        }
        // Taken out while a request is in flight: if this future is dropped midway (a caller's own
        // timeout), the connection goes with it and the next request reconnects instead of reading
        // the abandoned request's reply.
        let mut ctx = match conn.ctx.take() {
            Some(ctx) => ctx,
            None => self.connect().await?,
        };
        let silence = self.endpoint.silence();
        if !silence.is_zero() {
            tokio::time::sleep_until(conn.last_io + silence).await;
        }
        ctx.set_slave(Slave(unit));
        let res: CallResult<T> = timeout(self.timeout, op(&mut ctx)).await;
        conn.last_io = Instant::now();
        let mut health = self.health.lock();
        let out = match res {
            Ok(Ok(Ok(v))) => {
                health.answered += 1;
                conn.ctx = Some(ctx);
                return Ok(v);
            }
            Ok(Ok(Err(code))) => {
                health.answered += 1;
                conn.ctx = Some(ctx);
                return Err(DriverError::Exception(ExceptionCode(u8::from(code))));
            }
            Ok(Err(tokio_modbus::Error::Protocol(e))) => {
                health.failures += 1;
                DriverError::Protocol(e.to_string())
            }
            Ok(Err(tokio_modbus::Error::Transport(e))) => {
                health.failures += 1;
                if e.kind() == std::io::ErrorKind::InvalidData {
                    DriverError::Protocol(e.to_string())
                } else {
                    DriverError::Connection(e.to_string())
                }
            }
            Err(_) => {
                health.timeouts += 1;
                DriverError::Timeout(self.timeout)
            }
        };
        drop(health);
        drop(ctx);
        self.close(conn, unit, matches!(out, DriverError::Timeout(_)));
        Err(out)
    }

    /// Drops the connection after an error that leaves its state unknown: the socket (or serial
    /// port) closes, and with it any late reply. On a serial line, the unit that timed out, or the
    /// whole line after an invalid reply, then stays quiet for up to one timeout (module docs).
    fn close(&self, conn: &mut Conn, unit: u8, timed_out: bool) {
        conn.ctx = None;
        self.connected.store(false, Ordering::Relaxed);
        if !matches!(self.endpoint, Endpoint::Rtu { .. }) {
            return;
        }
        let now = Instant::now();
        let mut late = self.late.lock();
        let line_quiet = if timed_out {
            late.unit_quiet.insert(unit, now + self.timeout);
            late.last_timeout = Some((unit, now));
            late.late.contains(&unit)
        } else {
            // Bytes that were no answer to this request: most likely the late answer of the unit
            // that timed out just before.
            if let Some((u, at)) = late.last_timeout.take()
                && u != unit
                && now.duration_since(at) < 2 * self.timeout
            {
                tracing::info!(
                    endpoint = %self.endpoint,
                    unit = u,
                    "the unit answers after its timeout: its timeouts now keep the line quiet"
                );
                late.late.insert(u);
            }
            true
        };
        if line_quiet {
            conn.quiet_until = Some(now + self.timeout);
        }
    }

    /// Serial lines: waits while `unit` is quiet after a timeout, without holding the line.
    async fn unit_quiet(&self, unit: u8) {
        if matches!(self.endpoint, Endpoint::Tcp { .. }) {
            return;
        }
        let until = self.late.lock().unit_quiet.get(&unit).copied();
        if let Some(until) = until {
            tokio::time::sleep_until(until).await;
        }
    }

    async fn read_one(&self, conn: &mut Conn, unit: u8, req: &ReadRequest) -> Result<RawData, DriverError> {
        let (start, count) = (req.start, req.count);
        match req.kind {
            RegisterKind::Holding => {
                self.call(conn, unit, |c| c.read_holding_registers(start, count)).await.map(RawData::Words)
            }
            RegisterKind::Input => {
                self.call(conn, unit, |c| c.read_input_registers(start, count)).await.map(RawData::Words)
            }
            RegisterKind::Coil => self.call(conn, unit, |c| c.read_coils(start, count)).await.map(RawData::Bits),
            RegisterKind::DiscreteInput => {
                self.call(conn, unit, |c| c.read_discrete_inputs(start, count)).await.map(RawData::Bits)
            }
        }
        .and_then(|data| {
            // A reply with fewer or more values than asked for is no answer to this request (on RTU,
            // likely a late answer to an earlier one): the line's state is unknown.
            if data.len() != usize::from(count) {
                self.health.lock().failures += 1;
                self.close(conn, unit, false);
                Err(DriverError::Protocol(format!("asked for {count} values at {start}, got {}", data.len())))
            } else {
                Ok(data)
            }
        })
    }
}

/// Maps tokio-modbus's exception type to ours (used by the simulator's tests too).
pub fn exception_code(e: MbException) -> ExceptionCode {
    ExceptionCode(u8::from(e))
}

impl Driver for ModbusDriver {
    fn protocol(&self) -> &str {
        match self.endpoint {
            Endpoint::Tcp { .. } => "modbus-tcp",
            Endpoint::Rtu { .. } => "modbus-rtu",
        }
    }

    fn read<'a>(&'a self, unit: u8, batch: &'a [ReadRequest]) -> BoxFuture<'a, Vec<Result<RawData, DriverError>>> {
        Box::pin(async move {
            self.unit_quiet(unit).await;
            let mut conn = self.conn.lock().await;
            let mut out = Vec::with_capacity(batch.len());
            for req in batch {
                if let Some(Err(e)) = out.last()
                    && DriverError::is_unreachable(e)
                {
                    // The device stopped answering: the rest of the batch fails now, not after a
                    // timeout each.
                    let e = e.clone();
                    out.push(Err(e));
                    continue;
                }
                out.push(self.read_one(&mut conn, unit, req).await);
            }
            out
        })
    }

    fn write<'a>(
        &'a self,
        unit: u8,
        kind: RegisterKind,
        address: u16,
        data: RawData,
    ) -> BoxFuture<'a, Result<(), DriverError>> {
        Box::pin(async move {
            self.unit_quiet(unit).await;
            let mut conn = self.conn.lock().await;
            match (kind, data) {
                (RegisterKind::Holding, RawData::Words(w)) if w.len() == 1 => {
                    let word = w[0];
                    self.call(&mut conn, unit, |c| c.write_single_register(address, word)).await
                }
                (RegisterKind::Holding, RawData::Words(w)) if !w.is_empty() && w.len() <= 123 => {
                    self.call(&mut conn, unit, move |c| {
                        Box::pin(async move { c.write_multiple_registers(address, &w).await })
                    })
                    .await
                }
                (RegisterKind::Coil, RawData::Bits(b)) if b.len() == 1 => {
                    let bit = b[0];
                    self.call(&mut conn, unit, |c| c.write_single_coil(address, bit)).await
                }
                (RegisterKind::Coil, RawData::Bits(b)) if !b.is_empty() && b.len() <= 1968 => {
                    self.call(&mut conn, unit, move |c| {
                        Box::pin(async move { c.write_multiple_coils(address, &b).await })
                    })
                    .await
                }
                (kind, data) => Err(DriverError::Invalid(format!(
                    "cannot write {} value(s) of this shape to {kind:?} registers",
                    data.len()
                ))),
            }
        })
    }

    fn health(&self) -> ConnectionHealth {
        let mut h = *self.health.lock();
        h.connected = self.connected.load(Ordering::Relaxed);
        h
    }
}
