//! The simulator's answer to T3000's UDP LAN scan (layout in [`super::scan`]).
//!
//! The first device (in spec order) answers as the panel that holds the Modbus TCP endpoint; the
//! others answer as Modbus sub-devices behind it (`subnet_protocol` 1, the panel's serial number in
//! `master_serial`), as a T3 controller reports the RTU devices on its bus, because every simulated
//! device is reached through the same endpoint by its unit id.

use super::scan::{SCAN_REPLY_CMD, ScanReply, is_scan_request};
use super::{Fault, Simulator};
use crate::codec::RegisterKind;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use tokio::net::UdpSocket;

/// Modbus TCP port reported when nothing better is known.
const DEFAULT_MODBUS_PORT: u16 = 502;
/// BACnet/IP port the firmware reports.
const BACNET_PORT: u16 = 47808;

impl Simulator {
    /// The scan replies, one per device that is answering (a device under `no_answer` is not).
    /// `local` is the scan socket's address, used for the IP when the Modbus endpoint listens on
    /// every interface.
    pub fn scan_replies(&self, local: Option<SocketAddr>) -> Vec<ScanReply> {
        let endpoint = self.scan_endpoint.lock().0;
        let port = endpoint.map_or(DEFAULT_MODBUS_PORT, |a| a.port());
        let ip_of = |a: Option<SocketAddr>| match a.map(|a| a.ip()) {
            Some(IpAddr::V4(ip)) if !ip.is_unspecified() => Some(ip),
            _ => None,
        };
        let ip = ip_of(endpoint).or_else(|| ip_of(local)).unwrap_or(Ipv4Addr::LOCALHOST);
        let Some(panel) = self.devices.first() else { return Vec::new() };
        self.devices
            .iter()
            .filter(|d| d.fault() != Fault::NoAnswer)
            .map(|d| {
                let is_panel = Arc::ptr_eq(d, panel);
                let header = d.registers(RegisterKind::Holding, 4, 5).unwrap_or_default();
                let word = |i: usize| header.get(i).copied().unwrap_or(0);
                ScanReply {
                    command: SCAN_REPLY_CMD,
                    serial_number: d.serial_number(),
                    product_model: d.product_model() & 0xFF,
                    modbus_address: u16::from(d.unit_id()),
                    ip,
                    modbus_port: port,
                    firmware_rev: word(0),
                    hardware_rev: word(4),
                    master_serial: if is_panel { 0 } else { panel.serial_number() },
                    // A BACnet device instance is at most 4,194,302.
                    bacnet_instance: if is_panel { d.serial_number() % 4_194_303 } else { 0 },
                    panel_number: d.unit_id(),
                    panel_name: d.name().to_owned(),
                    bootloader: 0,
                    bacnet_port: BACNET_PORT,
                    zigbee_flags: 0,
                    subnet_protocol: u8::from(!is_panel),
                    command_version: 1,
                    subnet_port: 0,
                    subnet_baudrate: 0,
                    mini_type: 0,
                }
            })
            .collect()
    }

    /// Answers T3000's scan ([`super::SCAN_REQUEST`], usually broadcast to port 1234) on `socket`
    /// until receiving fails for a reason other than an ICMP error from an earlier send.
    pub async fn serve_udp_scan(self: Arc<Self>, socket: UdpSocket) -> io::Result<()> {
        let mut buf = [0u8; 1500];
        loop {
            let (n, peer) = match socket.recv_from(&mut buf).await {
                Ok(x) => x,
                // An earlier reply hit a closed port; that is the peer's business.
                Err(e) if matches!(e.kind(), io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset) => {
                    continue;
                }
                Err(e) => return Err(e),
            };
            if !is_scan_request(&buf[..n]) {
                continue;
            }
            for reply in self.scan_replies(socket.local_addr().ok()) {
                if let Err(e) = socket.send_to(&reply.to_bytes(), peer).await {
                    tracing::debug!(%peer, %e, "simulator: scan reply not sent");
                }
            }
        }
    }
}
