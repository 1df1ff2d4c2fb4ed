//! The simulated building of `t3000 demo`, and the `simulate` and `discover` commands.

use crate::model::device::DeviceRecord;
use crate::model::place::{Building as Site, Floor, Room};
use crate::model::place::{PlanImage, PlanPoint};
use crate::service::floorplans::PlanStore;
use crate::service::registry::Registry;
use anyhow::Context;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use t3_core::config::{DeviceConfig, Parity, Protocol, RecordConfig, RecordMode};
use t3_drivers::discovery;
use t3_drivers::simulator::{SimDeviceSpec, Simulator};
use t3_storage::catalog::Catalog;

/// One controller of the demo building: name, device type, profile, poll interval.
const BUILDING: &[(&str, &str, &str, u64)] = &[
    ("floor1-ahu", "controller", "T3-controller", 1000),
    ("floor1-lobby-co2", "sensor", "CO2", 2000),
    ("floor1-tstat-101", "thermostat", "TSTAT8", 2000),
    ("floor2-vav", "controller", "T3-controller", 1000),
    ("floor2-tstat-201", "thermostat", "TSTAT8", 2000),
    ("floor2-humidity", "sensor", "HUM", 2000),
    ("floor3-fcu", "controller", "T3-controller", 1000),
    ("floor3-tstat-301", "thermostat", "TSTAT8", 2000),
    ("floor3-pressure", "sensor", "Pressure", 2000),
    ("plant-btu-meter", "meter", "BTU Meter", 5000),
];

/// Where the demo's devices are: (floor level, floor name, room name, device name prefix).
const PLACES: &[(i32, &str, &str, &str)] = &[
    (0, "Basement", "Plant room", "plant-"),
    (1, "Floor 1", "Lobby", "floor1-"),
    (2, "Floor 2", "Open office", "floor2-"),
    (3, "Floor 3", "Meeting rooms", "floor3-"),
];

/// Lays out the demo building in the catalog at its first start (a building, four floors, a room
/// on each, each floor with a plan drawing and badges of a few points) and places each simulated
/// device in its room. Later starts keep what users changed.
pub fn lay_out(catalog: &Catalog, registry: &Registry, plans: &PlanStore, now: i64) -> anyhow::Result<()> {
    if !catalog.read::<Site, _>(|b| b.is_empty()) {
        return Ok(());
    }
    let floors = catalog.transaction(|tx| {
        let b = tx.insert(Site {
            id: 0,
            name: "Demo building".into(),
            description: Some("Simulated Temco controllers on 127.0.0.1".into()),
            address: None,
            time_zone: "UTC".into(),
            updated_us: now,
        })?;
        let devices: Vec<DeviceRecord> = tx.rows::<DeviceRecord>().values().cloned().collect();
        let mut floors = Vec::new();
        for &(level, floor, room, prefix) in PLACES {
            let here: Vec<&DeviceRecord> = devices.iter().filter(|d| d.config.name.starts_with(prefix)).collect();
            let badges: Vec<u32> = here.iter().flat_map(|d| plan_points(registry, &d.config)).collect();
            let plan_points = badges
                .iter()
                .enumerate()
                .map(|(i, &point_id)| PlanPoint {
                    point_id,
                    x: 0.12 + 0.55 * (i % 4) as f64 / 3.0,
                    y: 0.3 + 0.25 * (i / 4) as f64,
                })
                .collect();
            let svg = plan_svg(floor, room);
            let f = tx.insert(Floor {
                id: 0,
                building_id: b.id,
                name: floor.into(),
                level,
                description: None,
                updated_us: now,
                plan: Some(PlanImage {
                    content_type: "image/svg+xml".into(),
                    bytes: svg.len() as u64,
                    updated_us: now,
                }),
                plan_points,
            })?;
            floors.push((f.id, svg));
            let r = tx.insert(Room { id: 0, floor_id: f.id, name: room.into(), description: None, updated_us: now })?;
            for d in here {
                tx.put(DeviceRecord {
                    building_id: Some(b.id),
                    floor_id: Some(f.id),
                    room_id: Some(r.id),
                    ..d.clone()
                })?;
            }
        }
        Ok(floors)
    })?;
    for (id, svg) in floors {
        plans.write_blocking(id, svg.as_bytes())?;
    }
    Ok(())
}

/// The points of a demo device shown on its floor plan: a T3 controller's two zone temperatures
/// and CO2 (IN1, IN2, IN7), another device's first temperature (else its first input).
fn plan_points(registry: &Registry, d: &DeviceConfig) -> Vec<u32> {
    let Some(profile) = t3_drivers::profile::ProfileLibrary::builtin().get(&d.profile) else { return Vec::new() };
    let names: Vec<&str> = if d.profile == "T3-controller" {
        vec!["IN1", "IN2", "IN7"]
    } else {
        let is_temp = |p: &&t3_drivers::profile::ProfilePoint| {
            p.name.to_lowercase().contains("temp") || p.description.to_lowercase().contains("temp")
        };
        let first_input = || profile.points.iter().find(|p| p.point_type == t3_drivers::profile::PointType::Input);
        profile.points.iter().find(is_temp).or_else(first_input).map(|p| p.name.as_str()).into_iter().collect()
    };
    names.into_iter().filter(|n| profile.point(n).is_some()).map(|n| registry.id(&d.name, n)).collect()
}

/// A simple plan drawing of a demo floor: its walls, the room, a core with stairs and lifts.
fn plan_svg(floor: &str, room: &str) -> String {
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1000 600" width="1000" height="600" font-family="sans-serif">
<rect width="1000" height="600" fill="#f7f9fb"/>
<rect x="20" y="20" width="960" height="560" fill="#fff" stroke="#34404d" stroke-width="8"/>
<line x1="740" y1="20" x2="740" y2="580" stroke="#34404d" stroke-width="5"/>
<line x1="740" y1="300" x2="980" y2="300" stroke="#34404d" stroke-width="4"/>
<rect x="760" y="320" width="90" height="240" fill="#e8edf2" stroke="#8896a5" stroke-width="2"/>
<rect x="870" y="320" width="90" height="110" fill="#e8edf2" stroke="#8896a5" stroke-width="2"/>
<text x="805" y="450" text-anchor="middle" font-size="22" fill="#5b6675">Stairs</text>
<text x="915" y="382" text-anchor="middle" font-size="22" fill="#5b6675">Lift</text>
<text x="860" y="170" text-anchor="middle" font-size="26" fill="#5b6675">Corridor</text>
<text x="380" y="560" text-anchor="middle" font-size="34" fill="#8896a5">{room}</text>
<text x="40" y="60" font-size="26" font-weight="bold" fill="#34404d">{floor}</text>
</svg>
"##
    )
}

/// A running simulated building.
#[derive(Debug)]
pub struct Building {
    /// How the server reaches each simulated device.
    pub devices: Vec<DeviceConfig>,
    pub simulators: Vec<Arc<Simulator>>,
}

/// Starts the demo building: each controller on its own loopback port (as each would have its own
/// IP address), values moving with the time of day. Samples are recorded on change with a
/// five-minute heartbeat, so a demo left running does not fill the disk.
pub async fn start_building() -> anyhow::Result<Building> {
    let mut devices = Vec::new();
    let mut simulators = Vec::new();
    for (i, &(name, device_type, profile, poll_ms)) in BUILDING.iter().enumerate() {
        let spec = SimDeviceSpec {
            name: name.to_owned(),
            unit_id: 1,
            profile: profile.to_owned(),
            serial_number: 20_000 + i as u32,
            seed: i as u64,
        };
        let sim = Simulator::new(vec![spec]).with_context(|| format!("simulate {name}"))?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("bind a simulator port")?;
        let port = listener.local_addr()?.port();
        sim.spawn_behaviour(Duration::from_secs(1));
        tokio::spawn(sim.clone().serve_tcp(listener));
        simulators.push(sim);
        devices.push(DeviceConfig {
            name: name.to_owned(),
            device_type: device_type.to_owned(),
            protocol: Protocol::ModbusTcp,
            ip_address: Some("127.0.0.1".to_owned()),
            port,
            serial_port: None,
            baud_rate: 9600,
            parity: Parity::None,
            unit_id: 1,
            profile: profile.to_owned(),
            poll_interval_ms: poll_ms,
            timeout_ms: None,
            enabled: true,
            max_registers: None,
            max_gap: None,
            one_request_per_point: false,
            record: RecordConfig { mode: RecordMode::Change, heartbeat_secs: 300, ..Default::default() },
            points: Vec::new(),
        });
    }
    Ok(Building { devices, simulators })
}

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
    println!("modbus-tcp {tcp_addr} units 1..={} profile {}", args.count.max(1), args.profile);
    tokio::spawn(sim.clone().serve_tcp(listener));
    if args.rtu {
        let (port, path) = Simulator::open_pty().context("open a pseudo-terminal")?;
        println!("modbus-rtu {path}");
        tokio::spawn(sim.clone().serve_rtu(port));
    }
    if let Some(addr) = args.udp {
        let socket = tokio::net::UdpSocket::bind(addr).await.with_context(|| format!("bind UDP {addr}"))?;
        println!("udp-scan {}", socket.local_addr()?);
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
    /// Time each unit has to answer, in milliseconds.
    #[arg(long, default_value_t = 200)]
    pub timeout_ms: u64,
    /// T3000's UDP LAN scan sent to this address (e.g. 255.255.255.255:1234).
    #[arg(long)]
    pub udp: Option<SocketAddr>,
}

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
    let timeout = Duration::from_millis(args.timeout_ms);
    anyhow::ensure!(
        !args.tcp.is_empty() || args.rtu.is_some() || args.udp.is_some(),
        "give --tcp HOSTS, --rtu PORT or --udp ADDR"
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
        println!("{}", serde_json::to_string(f)?);
    }
    if let Some(target) = args.udp {
        for reply in discovery::scan_udp(target, Duration::from_millis(args.timeout_ms.max(500))).await? {
            println!("{}", serde_json::to_string(&reply)?);
        }
    }
    Ok(())
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
