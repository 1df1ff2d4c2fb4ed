//! `t3000 simulate` (simulated Temco devices on Modbus TCP, RTU and the UDP scan) and
//! `t3000 discover` (finding devices).

use anyhow::Context;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;
use t3_core::config::{Parity, PluginsConfig};
use t3_drivers::discovery;
use t3_drivers::plugin::PluginHost;
use t3_drivers::simulator::{SimDeviceSpec, Simulator};

#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Device profile: `T3-controller` or a product of the Temco register library.
    #[arg(long, default_value = "T3-controller")]
    pub profile: String,
    /// Number of devices, unit ids 1..=N.
    #[arg(long, default_value_t = 1)]
    pub count: u8,
    /// Modbus TCP address serving every device (by unit id).
    #[arg(long, default_value = "127.0.0.1:1502")]
    pub listen: SocketAddr,
    /// Also serve Modbus RTU on a new pseudo-terminal (its path is printed).
    #[arg(long)]
    pub rtu: bool,
    /// Also answer T3000's UDP LAN scan on this address (T3000 scans port 1234).
    #[arg(long)]
    pub udp: Option<SocketAddr>,
}

/// `t3000 simulate`: serves simulated devices until Ctrl-C.
pub async fn simulate(args: SimulateArgs) -> anyhow::Result<()> {
    let specs = (1..=args.count.max(1))
        .map(|unit| SimDeviceSpec {
            name: format!("sim-{unit}"),
            unit_id: unit,
            profile: args.profile.clone(),
            serial_number: 10_000 + u32::from(unit),
            seed: u64::from(unit),
        })
        .collect();
    let sim = Simulator::new(specs)?;
    sim.spawn_behaviour(Duration::from_secs(1));
    let listener =
        tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("listen on {}", args.listen))?;
    let tcp_addr = listener.local_addr()?;
    // The UDP scan reply tells T3000 where the devices' Modbus TCP is.
    sim.set_scan_endpoint(tcp_addr);
    say!("modbus-tcp {tcp_addr} units 1..={} profile {}", args.count.max(1), args.profile);
    tokio::spawn(sim.clone().serve_tcp(listener));
    if args.rtu {
        let (port, path) = Simulator::open_pty().context("open a pseudo-terminal")?;
        say!("modbus-rtu {path}");
        tokio::spawn(sim.clone().serve_rtu(port));
    }
    if let Some(addr) = args.udp {
        let socket = tokio::net::UdpSocket::bind(addr).await.with_context(|| format!("bind UDP {addr}"))?;
        say!("udp-scan {}", socket.local_addr()?);
        tokio::spawn(sim.clone().serve_udp_scan(socket));
    }
    tokio::signal::ctrl_c().await.context("wait for Ctrl-C")?;
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct DiscoverArgs {
    /// Modbus TCP: host names, addresses or CIDR blocks (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub tcp: Vec<String>,
    /// TCP port of the Modbus TCP scan.
    #[arg(long, default_value_t = 502)]
    pub port: u16,
    /// Modbus RTU: the serial port to scan.
    #[arg(long)]
    pub rtu: Option<String>,
    #[arg(long, default_value_t = 9600)]
    pub baud_rate: u32,
    /// none, even or odd.
    #[arg(long, default_value = "none")]
    pub parity: String,
    /// Unit ids to probe, like `1-247` or `1,2,10-20`.
    #[arg(long, default_value = "1-247")]
    pub units: String,
    /// Time each Modbus unit has to answer (default 200), or how long to wait for BACnet I-Am
    /// answers (default 3000), in milliseconds.
    #[arg(long)]
    pub timeout_ms: Option<u64>,
    /// T3000's UDP LAN scan sent to this address (e.g. 255.255.255.255:1234).
    #[arg(long)]
    pub udp: Option<SocketAddr>,
    /// BACnet/IP (the `bacnet-ip` plugin): send a Who-Is and list the devices that answer.
    #[arg(long)]
    pub bacnet: bool,
    /// UDP port the Who-Is is sent to.
    #[arg(long, default_value_t = 47808)]
    pub bacnet_port: u16,
    /// Address the Who-Is is sent to: a broadcast address, or one device's address.
    #[arg(long, default_value = "255.255.255.255")]
    pub broadcast: Ipv4Addr,
    /// Lowest device instance that should answer.
    #[arg(long)]
    pub low: Option<u32>,
    /// Highest device instance that should answer.
    #[arg(long)]
    pub high: Option<u32>,
    /// A folder to load protocol plugins from (repeatable); by default the server's:
    /// `./t3000-data/plugins` and `plugins/` beside the binary.
    #[arg(long = "plugin-dir")]
    pub plugin_dirs: Vec<PathBuf>,
}

/// The protocol `t3000 discover --bacnet` asks for.
const BACNET: &str = "bacnet-ip";

/// Parses `1-247` / `1,2,10-20` into unit ids.
pub fn parse_units(text: &str) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (u8, u8) = (
            a.trim().parse().with_context(|| format!("unit id `{a}` in `{text}`"))?,
            b.trim().parse().with_context(|| format!("unit id `{b}` in `{text}`"))?,
        );
        anyhow::ensure!(a <= b, "unit range `{part}` runs backwards");
        out.extend(a..=b);
    }
    anyhow::ensure!(!out.is_empty(), "no unit ids in `{text}`");
    Ok(out)
}

/// `t3000 discover`: prints one JSON line per device found.
pub async fn discover(args: DiscoverArgs) -> anyhow::Result<()> {
    let units = parse_units(&args.units)?;
    let timeout_ms = args.timeout_ms.unwrap_or(200);
    let timeout = Duration::from_millis(timeout_ms);
    anyhow::ensure!(
        !args.tcp.is_empty() || args.rtu.is_some() || args.udp.is_some() || args.bacnet,
        "give --tcp HOSTS, --rtu PORT, --udp ADDR or --bacnet"
    );
    let mut found = Vec::new();
    if !args.tcp.is_empty() {
        found.extend(discovery::scan_tcp(&args.tcp, args.port, &units, timeout, 64).await?);
    }
    if let Some(path) = &args.rtu {
        // 0 is the broadcast address (nobody answers it) and 248-255 are reserved on a serial bus.
        anyhow::ensure!(
            units.iter().all(|u| (1..=247).contains(u)),
            "--units must lie within 1-247 for a Modbus RTU scan"
        );
        let parity = match args.parity.as_str() {
            "none" => Parity::None,
            "even" => Parity::Even,
            "odd" => Parity::Odd,
            other => anyhow::bail!("--parity must be none, even or odd (got `{other}`)"),
        };
        found.extend(discovery::scan_rtu(path, args.baud_rate, parity, &units, timeout).await);
    }
    for f in &found {
        say!("{}", serde_json::to_string(f)?);
    }
    if let Some(target) = args.udp {
        for reply in discovery::scan_udp(target, Duration::from_millis(timeout_ms.max(500))).await? {
            say!("{}", serde_json::to_string(&reply)?);
        }
    }
    if args.bacnet {
        for line in discover_bacnet(&args).await? {
            say!("{}", serde_json::to_string(&line)?);
        }
    }
    Ok(())
}

/// `--bacnet`: loads the plugins of `--plugin-dir` (or the server's default folders) and asks the
/// one serving `bacnet-ip` for devices. Each find is `{"protocol", "name", "address", "model",
/// "vendor", "config"}`, `config` being the keys (with `protocol`) that add it, as
/// `POST /api/t3000/devices/discover` reports it.
async fn discover_bacnet(args: &DiscoverArgs) -> anyhow::Result<Vec<serde_json::Value>> {
    if let (Some(low), Some(high)) = (args.low, args.high) {
        anyhow::ensure!(low <= high, "--low ({low}) must not be greater than --high ({high})");
    }
    let wait_ms = args.timeout_ms.unwrap_or(3000);
    let dirs = if args.plugin_dirs.is_empty() {
        PluginHost::default_dirs(Path::new("./t3000-data"))
    } else {
        args.plugin_dirs.clone()
    };
    // The plugin's discovery waits `wait_ms` for I-Ams, then reads each device's names.
    let call_timeout = Duration::from_millis(PluginsConfig::default().call_timeout_ms + wait_ms);
    let host = PluginHost::load(&dirs, call_timeout);
    let folders: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    let plugin = host
        .get(BACNET)
        .ok_or_else(|| anyhow::anyhow!("{} (folders searched: {})", host.unknown(BACNET), folders.join(", ")))?;
    anyhow::ensure!(plugin.info.discovery, "the {BACNET} plugin cannot look for devices");
    let mut request = serde_json::json!({
        "port": args.bacnet_port,
        "broadcast": args.broadcast.to_string(),
        "timeout_ms": wait_ms,
    });
    if let Some(low) = args.low {
        request["low"] = low.into();
    }
    if let Some(high) = args.high {
        request["high"] = high.into();
    }
    let found = host.discover(BACNET, &request).await.map_err(|e| anyhow::anyhow!("BACnet/IP discovery: {e}"))?;
    Ok(found
        .into_iter()
        .map(|f| {
            let mut config = f.config.clone();
            config.insert("protocol".into(), BACNET.into());
            serde_json::json!({
                "protocol": BACNET,
                "name": f.name,
                "address": f.address,
                "model": f.model,
                "vendor": f.vendor,
                "config": config,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_lists_parse() {
        assert_eq!(parse_units("1-3,7").unwrap(), vec![1, 2, 3, 7]);
        assert_eq!(parse_units("247").unwrap(), vec![247]);
        assert!(parse_units("3-1").is_err());
        assert!(parse_units("1-300").is_err());
        assert!(parse_units("").is_err());
    }
}
