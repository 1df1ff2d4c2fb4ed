//! Integration tests of the drivers against real peers: our simulator over real sockets and
//! pseudo-terminals, and pymodbus (a Modbus implementation we did not write) over TCP and over RTU
//! through a socat pty pair.

mod basic_bytecode;
mod demands;
mod faults;
mod modes;
mod panel_programs;
mod peer;
mod prog;

use t3_core::Sample;
use t3_drivers::collector::{IngestFuture, SampleSink};
use tokio::sync::mpsc;

/// Forwards every collected sample to a channel (the tests' sample sink).
#[derive(Debug)]
struct ChannelSink(mpsc::UnboundedSender<Sample>);

impl SampleSink for ChannelSink {
    fn ingest(&self, samples: Vec<Sample>) -> IngestFuture<'_> {
        for s in samples {
            let _ = self.0.send(s);
        }
        Box::pin(std::future::ready(Ok(())))
    }
}
