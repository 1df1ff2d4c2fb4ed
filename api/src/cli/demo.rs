//! The simulated building of `t3000 demo`: its controllers on loopback ports, and its layout in
//! the catalog at the first start.

use crate::model::device::DeviceRecord;
use crate::model::place::{Building as Site, Floor, Room};
use crate::model::place::{PlanImage, PlanPoint};
use crate::service::floorplans::PlanStore;
use crate::service::registry::Registry;
use anyhow::Context;
use std::sync::Arc;
use std::time::Duration;
use t3_core::config::{DeviceConfig, Parity, Protocol, RecordConfig, RecordMode};
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
