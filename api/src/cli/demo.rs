//! The simulated building of `t3000 demo`: its controllers on loopback ports, and its layout in
//! the catalog at the first start.
//!
//! Its points have names as a commissioned building's would. The T3 controllers keep a label and
//! description per point in their point records, as real panels do (the simulator's model names what
//! each point is: "ZN1 TEMP" / "Zone 1 temperature", "SUP TEMP", "FAN CMD"...; the VAV and fan-coil
//! controllers call their zones after their boxes, [`panel_texts`]); the server reads them from the
//! panel. The Temco library devices have no such records: the demo labels their main points in the
//! catalog ([`LIBRARY_LABELS`]), once, where no one has touched the point, so a user's label always
//! wins and a restart changes nothing.

use crate::model::device::DeviceRecord;
use crate::model::place::{Building as Site, Floor, Room};
use crate::model::place::{PlanImage, PlanPoint};
use crate::model::point::PointRecord;
use crate::service::floorplans::PlanStore;
use crate::service::registry::Registry;
use anyhow::Context;
use std::sync::Arc;
use std::time::Duration;
use t3_core::config::{DeviceConfig, Parity, Protocol, RecordConfig, RecordMode};
use t3_drivers::labels::PointText;
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

/// Labels of the Temco library devices' main points, as whoever commissioned the building typed them:
/// (profile, point, label, description, units). Each describes what the simulated device shows there.
/// Units only where the register library leaves them open (the thermostats' "DegC or F" temperature
/// and set points: the simulated thermostats count in °C); elsewhere the library's units apply.
const LIBRARY_LABELS: &[(&str, &str, &str, &str, Option<&str>)] = &[
    ("CO2", "MODBUS_CO2", "RM CO2", "Room CO2", None),
    ("CO2", "MODBUS_TEMPERATURE_CELSIUS", "RM TEMP", "Room temperature", None),
    ("CO2", "MODBUS_TEMPERATURE_FAHRENHEIT", "RM TEMP F", "Room temperature (°F)", None),
    ("CO2", "MODBUS_HUMIDITY", "RM RH", "Room humidity", None),
    ("TSTAT8", "MODBUS_TEMPRATURE_CHIP", "ZONE TEMP", "Zone temperature", Some("°C")),
    ("TSTAT8", "MODBUS_DAY_SETPOINT", "ZONE SP", "Occupied set point", Some("°C")),
    ("TSTAT8", "MODBUS_DAY_COOLING_SETPOINT", "CLG SP", "Occupied cooling set point", Some("°C")),
    ("TSTAT8", "MODBUS_DAY_HEATING_SETPOINT", "HTG SP", "Occupied heating set point", Some("°C")),
    ("TSTAT8", "MODBUS_EXTERNAL_SENSOR2", "ZONE RH", "Zone humidity", None),
    ("TSTAT8", "MODBUS_LIGHT_SENSOR", "LIGHT", "Zone light level", None),
    ("TSTAT8", "MODBUS_PIR_REAL_VALUE", "OCC SENS", "Occupancy sensor", None),
    ("TSTAT8", "MODBUS_COOLING_VALVE", "CLG VLV", "Cooling valve", None),
    ("TSTAT8", "MODBUS_HEATING_VALVE", "HTG VLV", "Heating valve", None),
    ("HUM", "MODBUS_HUMIDITY", "RM RH", "Room humidity", None),
    ("HUM", "MODBUS_TEMPERATURE_CELSIUS", "RM TEMP", "Room temperature", None),
    ("HUM", "MODBUS_TEMPERATURE_FAHRENHEIT", "RM TEMP F", "Room temperature (°F)", None),
    ("HUM", "MODBUS_HUM_LIGHT_VALUE", "LIGHT", "Room light level", None),
    ("Pressure", "MODBUS_PRESSURE_VALUE_ORG", "PRESSURE", "Pressure", None),
    ("BTU Meter", "MODBUS_UP_PT_1000_SENSOR_TEMPERATURE", "UP TEMP", "Upstream water temperature", None),
    ("BTU Meter", "MODBUS_DOWN_PT_1000_SENSOR_TEMPERATURE", "DN TEMP", "Downstream water temperature", None),
    ("BTU Meter", "MODBUS_TOTAL_HEAT_HIGH", "HEAT HI", "Total heat, upper word", None),
    ("BTU Meter", "MODBUS_TOTAL_HEAT_LOW", "HEAT LO", "Total heat, lower word", None),
    ("BTU Meter", "MODBUS_CURRENT_FLOW_RATE", "FLOW", "Flow rate", None),
    ("BTU Meter", "MODBUS_POSITIVE_DIRECTION_TOTAL_FLOW_INTEGER", "FWD TOTAL", "Forward total flow", None),
    ("BTU Meter", "MODBUS_POSITIVE_DIRECTION_TOTAL_FLOW_FLOAT", "FWD FRAC", "Forward total flow, thousandths", None),
    ("BTU Meter", "MODBUS_NEGATIVE_DIRECTION_TOTAL_FLOW_INTEGER", "REV TOTAL", "Reverse total flow", None),
    ("BTU Meter", "MODBUS_NEGATIVE_DIRECTION_TOTAL_FLOW_FLOAT", "REV FRAC", "Reverse total flow, thousandths", None),
];

/// How a demo controller's panel names the points of its zones, where they are not the model's own
/// ("ZN1 TEMP"...): the VAV controller's zones are VAV boxes with reheat valves, the fan-coil
/// controller's are fan coils. (point, label of at most 8 characters, description of at most 20, 18 for an output.)
pub fn panel_texts(device: &str) -> Vec<(String, PointText)> {
    let (tag, heating) = match device {
        "floor2-vav" => ("VAV", ("RHT", "reheat valve")),
        "floor3-fcu" => ("FCU", ("HTG", "heat valve")),
        _ => return Vec::new(),
    };
    (1..=4)
        .flat_map(|z| {
            [
                (format!("IN{z}"), format!("{tag}{z} TMP"), format!("{tag} {z} space temp")),
                (format!("OUT{z}"), format!("{tag}{z} {}", heating.0), format!("{tag} {z} {}", heating.1)),
                (format!("VAR{z}"), format!("{tag}{z} SP"), format!("{tag} {z} setpoint")),
            ]
        })
        .map(|(point, label, description)| (point, PointText::new(&label, &description)))
        .collect()
}

/// Labels the library devices' main points ([`LIBRARY_LABELS`]) where the catalog has nothing for the
/// point yet: never over a user's label, units or description (nor where a user cleared one), and a
/// restart adds nothing.
fn label_library_points(catalog: &Catalog, registry: &Registry) -> anyhow::Result<()> {
    catalog.transaction(|tx| {
        let devices: Vec<DeviceRecord> = tx.rows::<DeviceRecord>().values().cloned().collect();
        for d in devices.iter().filter(|d| BUILDING.iter().any(|b| b.0 == d.config.name)) {
            for &(_, point, label, description, units) in LIBRARY_LABELS.iter().filter(|l| l.0 == d.config.profile) {
                let id = i64::from(registry.id(&d.config.name, point));
                if tx.rows::<PointRecord>().contains_key(&id) {
                    continue;
                }
                tx.put(PointRecord {
                    id,
                    device_id: Some(d.id),
                    name: point.to_owned(),
                    label: Some(label.to_owned()),
                    description: Some(description.to_owned()),
                    units: units.map(str::to_owned),
                    ..PointRecord::default()
                })?;
            }
        }
        Ok(())
    })?;
    Ok(())
}

/// Where the demo's devices are: (floor level, floor name, room name, device name prefix).
const PLACES: &[(i32, &str, &str, &str)] = &[
    (0, "Basement", "Plant room", "plant-"),
    (1, "Floor 1", "Lobby", "floor1-"),
    (2, "Floor 2", "Open office", "floor2-"),
    (3, "Floor 3", "Meeting rooms", "floor3-"),
];

/// Lays out the demo building in the catalog at its first start (a building, four floors, a room
/// on each, each floor with a plan drawing and badges of a few points) and places each simulated
/// device in its room; labels the library devices' main points that no one has touched. Later
/// starts keep what users changed.
pub fn lay_out(catalog: &Catalog, registry: &Registry, plans: &PlanStore, now: i64) -> anyhow::Result<()> {
    label_library_points(catalog, registry)?;
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
        if let Some(panel) = sim.device(1) {
            for (point, text) in panel_texts(name) {
                panel.set_point_text(&point, &text).with_context(|| format!("name {point} of {name}"))?;
            }
        }
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
            port: Some(port),
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
            options: Default::default(),
        });
    }
    Ok(Building { devices, simulators })
}

#[cfg(test)]
mod tests {
    use super::*;
    use t3_drivers::profile::ProfileLibrary;

    #[test]
    fn demo_names_fit_and_name_real_points() {
        let lib = ProfileLibrary::builtin();
        for &(profile, point, label, description, _) in LIBRARY_LABELS {
            assert!(BUILDING.iter().any(|b| b.2 == profile), "{profile} is not in the building");
            assert!(lib.get(profile).and_then(|p| p.point(point)).is_some(), "{profile} has no {point}");
            assert!(!label.is_empty() && !description.is_empty());
        }
        let t3 = lib.get("T3-controller").unwrap();
        for device in ["floor1-ahu", "floor2-vav", "floor3-fcu"] {
            for (point, text) in panel_texts(device) {
                assert!(t3.point(&point).is_some(), "{point}");
                // What a panel's record holds: 8 and 20 characters.
                assert!(text.label.len() <= 8 && text.description.len() <= 20, "{text:?}");
            }
        }
        assert!(panel_texts("floor1-ahu").is_empty(), "the AHU keeps the model's names");
        assert_eq!(panel_texts("floor2-vav").len(), 12);
    }
}
