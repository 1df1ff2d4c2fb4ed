//! Finding devices: Modbus scans over TCP (a host list or CIDR block) and RTU (unit ids on one
//! bus), and T3000's UDP LAN scan.
//!
//! A Modbus scan reads each unit's Temco header (serial number at 0-3, product model at 7) and
//! matches the model against the profile library.

use crate::driver::{Driver, UnitIdentity};
use crate::modbus::{Endpoint, ModbusDriver};
use crate::profile::ProfileLibrary;
use crate::simulator::scan::{SCAN_REQUEST, ScanReply, parse_scan_reply};
use futures::StreamExt;
use serde::Serialize;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;
use t3_core::config::Parity;

/// A device a scan found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Found {
    /// `tcp://host:port` or `rtu://path?...`.
    pub endpoint: String,
    #[serde(flatten)]
    pub identity: UnitIdentity,
    /// The profile matching the product model, if any.
    pub profile: Option<String>,
}

/// Errors in what a scan was asked to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    #[error("`{0}` is not an IPv4 address or CIDR block (like 192.168.1.0/24)")]
    BadTarget(String),
    #[error("`{0}` covers more than 65,536 addresses; scan smaller blocks")]
    TooLarge(String),
}

/// Expands host names, IPv4 addresses and CIDR blocks (network and broadcast addresses of blocks
/// larger than /31 are left out).
pub fn expand_targets(targets: &[String]) -> Result<Vec<String>, ScanError> {
    let mut out = Vec::new();
    for t in targets {
        let t = t.trim();
        let Some((ip, bits)) = t.split_once('/') else {
            if t.is_empty() {
                return Err(ScanError::BadTarget(t.to_owned()));
            }
            out.push(t.to_owned());
            continue;
        };
        let ip: Ipv4Addr = ip.parse().map_err(|_| ScanError::BadTarget(t.to_owned()))?;
        let bits: u32 = bits.parse().ok().filter(|b| *b <= 32).ok_or_else(|| ScanError::BadTarget(t.to_owned()))?;
        if bits < 16 {
            return Err(ScanError::TooLarge(t.to_owned()));
        }
        let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
        let net = u32::from(ip) & mask;
        let size = 1u64 << (32 - bits);
        let (first, last) = if size > 2 { (1, size - 2) } else { (0, size - 1) };
        for i in first..=last {
            out.push(Ipv4Addr::from(net + i as u32).to_string());
        }
    }
    Ok(out)
}

fn found(endpoint: &Endpoint, identity: UnitIdentity) -> Found {
    let profile = ProfileLibrary::builtin().by_product_model(identity.product_model).map(|p| p.name.clone());
    Found { endpoint: endpoint.to_string(), identity, profile }
}

/// Scans `hosts` (names, addresses or CIDR blocks) on `port` for `units`, up to `concurrency`
/// hosts at a time. A host that refuses the connection is skipped after one attempt.
pub async fn scan_tcp(
    hosts: &[String],
    port: u16,
    units: &[u8],
    timeout: Duration,
    concurrency: usize,
) -> Result<Vec<Found>, ScanError> {
    let hosts = expand_targets(hosts)?;
    let per_host = hosts.into_iter().map(|host| async move {
        let endpoint = Endpoint::Tcp { host, port };
        let driver = ModbusDriver::new(endpoint.clone(), timeout);
        let mut out = Vec::new();
        for &unit in units {
            let ids = driver.discover(std::slice::from_ref(&unit)).await;
            if ids.is_empty() && driver.health().connects == 0 {
                break; // nothing listens there
            }
            out.extend(ids.into_iter().map(|id| found(&endpoint, id)));
        }
        out
    });
    let mut found: Vec<Found> =
        futures::stream::iter(per_host).buffer_unordered(concurrency.max(1)).collect::<Vec<_>>().await.concat();
    found.sort_by(|a, b| (&a.endpoint, a.identity.unit_id).cmp(&(&b.endpoint, b.identity.unit_id)));
    Ok(found)
}

/// T3000's LAN scan: sends the scan request to `target` (a broadcast address such as
/// `255.255.255.255:1234`, or one controller) and collects the replies that arrive within `wait`,
/// one per serial number. Replies are expected at the socket the request was sent from.
pub async fn scan_udp(target: SocketAddr, wait: Duration) -> std::io::Result<Vec<ScanReply>> {
    let bind: SocketAddr = if target.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { (Ipv6Addr::UNSPECIFIED, 0).into() };
    let socket = tokio::net::UdpSocket::bind(bind).await?;
    socket.set_broadcast(true)?;
    socket.send_to(&SCAN_REQUEST, target).await?;
    let deadline = tokio::time::Instant::now() + wait;
    let mut replies: Vec<ScanReply> = Vec::new();
    let mut buf = [0u8; 1500];
    while let Ok(received) = tokio::time::timeout_at(deadline, socket.recv_from(&mut buf)).await {
        let (n, from) = match received {
            Ok(r) => r,
            // An ICMP "port unreachable" from a unicast target surfaces here on some systems.
            Err(e) if matches!(e.kind(), ErrorKind::ConnectionRefused | ErrorKind::ConnectionReset) => continue,
            Err(e) => return Err(e),
        };
        match parse_scan_reply(&buf[..n]) {
            Ok(r) if !replies.iter().any(|x| x.serial_number == r.serial_number) => replies.push(r),
            Ok(_) => {}
            Err(e) => tracing::debug!(%from, error = %e, "ignored a UDP datagram that is not a scan reply"),
        }
    }
    replies.sort_by_key(|r| r.serial_number);
    Ok(replies)
}

/// Scans unit ids on one serial bus (one at a time: the bus carries one request at once).
pub async fn scan_rtu(path: &str, baud_rate: u32, parity: Parity, units: &[u8], timeout: Duration) -> Vec<Found> {
    let endpoint = Endpoint::Rtu { path: path.to_owned(), baud_rate, parity };
    let driver = ModbusDriver::new(endpoint.clone(), timeout);
    driver.discover(units).await.into_iter().map(|id| found(&endpoint, id)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_blocks_expand_without_network_and_broadcast() {
        let v = expand_targets(&["10.0.0.0/30".into(), "plc-1".into(), "10.0.1.7/32".into()]).unwrap();
        assert_eq!(v, vec!["10.0.0.1", "10.0.0.2", "plc-1", "10.0.1.7"]);
        assert_eq!(expand_targets(&["192.168.1.0/24".into()]).unwrap().len(), 254);
        assert_eq!(expand_targets(&["10.0.0.0/31".into()]).unwrap(), vec!["10.0.0.0", "10.0.0.1"]);
        assert!(matches!(expand_targets(&["10.0.0.0/8".into()]), Err(ScanError::TooLarge(_))));
        assert!(matches!(expand_targets(&["10.0.0.300/24".into()]), Err(ScanError::BadTarget(_))));
        assert!(matches!(expand_targets(&["10.0.0.0/33".into()]), Err(ScanError::BadTarget(_))));
    }
}
