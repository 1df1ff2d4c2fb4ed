//! Trend logs' demands through the real [`Collector`] against the simulator over loopback TCP: a
//! point of a device polled once an hour is polled every second while a demand asks for it, its
//! own settings stay its own, the device keeps polling the other points, and without the demand
//! the point has its own interval again; a device added later starts with the demands in force.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use t3_core::Sample;
use t3_core::clock::SystemClock;
use t3_core::config::{DeviceConfig, RecordMode};
use t3_core::recording::Demand;
use t3_drivers::collector::{Collector, DeviceSpec};
use t3_drivers::profile::{ProfileLibrary, T3_CONTROLLER};
use t3_drivers::simulator::{SimDeviceSpec, Simulator};
use tokio::sync::mpsc;
use tokio::time::timeout;

use crate::ChannelSink;

const HOUR: Duration = Duration::from_secs(3600);

/// A device of `profile` at `port`, unit `unit`, polled once an hour; point ids are
/// `unit * 100_000 + address`.
fn device(name: &str, profile: &str, port: u16, unit: u8) -> DeviceSpec {
    let config: DeviceConfig = serde_json::from_value(json!({
        "name": name, "protocol": "modbus-tcp", "ip_address": "127.0.0.1", "port": port,
        "unit_id": unit, "profile": profile, "poll_interval_ms": 3_600_000,
    }))
    .expect("device config");
    let profile = ProfileLibrary::builtin().get(profile).expect("profile").clone();
    DeviceSpec::new(config, profile, |p| u32::from(unit) * 100_000 + u32::from(p.address)).expect("spec")
}

/// The time stamps of the next `n` samples of point `id`.
async fn next_of(rx: &mut mpsc::UnboundedReceiver<Sample>, id: u32, n: usize) -> Vec<i64> {
    timeout(Duration::from_secs(20), async {
        let mut ts = Vec::new();
        while ts.len() < n {
            let s = rx.recv().await.expect("the sink is open");
            if s.point_id.0 == id {
                ts.push(s.ts);
            }
        }
        ts
    })
    .await
    .unwrap_or_else(|_| panic!("{n} samples of point {id}"))
}

/// The interval point `id` of `device` is polled at now, and its own.
fn intervals(c: &Collector, device: &str, id: u32) -> (Duration, Duration) {
    let spec = c.device(device).expect("device");
    let cp = spec.points.iter().find(|p| p.id == id).expect("point");
    (cp.interval, spec.own(cp).0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demand_polls_a_point_faster_until_it_is_withdrawn() {
    let sim = Simulator::new(vec![
        SimDeviceSpec::new("AHU-1", 1, T3_CONTROLLER, 0x0001_E240, 7),
        SimDeviceSpec::new("CO2 lobby", 30, "CO2", 0x0002_0001, 9),
    ])
    .unwrap();
    sim.tick(1_780_358_400.0);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(Arc::clone(&sim).serve_tcp(listener));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let collector = Collector::new(Default::default(), Arc::new(ChannelSink(tx)), Arc::new(SystemClock));
    let ahu = device("ahu", T3_CONTROLLER, port, 1);
    let in1 = 100_000 + u32::from(ahu.profile.point("IN1").unwrap().address);
    collector.add_device(ahu).unwrap();
    assert_eq!(intervals(&collector, "ahu", in1), (HOUR, HOUR));

    // A demand of 1 s on change past 0.5: only the device holding the point restarts.
    let demand = Demand { interval_ms: 1000, deadband: Some(0.5) };
    assert_eq!(collector.set_demands(HashMap::from([(in1, demand)])), vec!["ahu".to_owned()]);
    assert_eq!(intervals(&collector, "ahu", in1), (Duration::from_secs(1), HOUR));
    let spec = collector.device("ahu").unwrap();
    let cp = spec.points.iter().find(|p| p.id == in1).unwrap();
    assert_eq!((cp.record.mode, cp.record.deadband), (RecordMode::Change, 0.5));
    // The same demands again change nothing.
    assert!(collector.set_demands(HashMap::from([(in1, demand)])).is_empty());

    // Every sample at 1 s: IN1 arrives about every second (time stamps of the samples).
    let every = Demand { interval_ms: 1000, deadband: None };
    collector.set_demands(HashMap::from([(in1, every)]));
    let ts = next_of(&mut rx, in1, 4).await;
    for w in ts[1..].windows(2) {
        let gap = (w[1] - w[0]) as f64 / 1e6;
        assert!((0.7..=1.3).contains(&gap), "IN1 every {gap} s: {ts:?}");
    }

    // A device added later starts with the demands in force.
    let co2 = device("co2", "CO2", port, 30);
    let first = co2.points[0].id;
    collector.set_demands(HashMap::from([(in1, every), (first, Demand { interval_ms: 2000, deadband: None })]));
    collector.add_device(co2).unwrap();
    assert_eq!(intervals(&collector, "co2", first), (Duration::from_secs(2), HOUR));

    // Withdrawn: both points are polled at their own interval again.
    let mut restarted = collector.set_demands(HashMap::new());
    restarted.sort();
    assert_eq!(restarted, vec!["ahu".to_owned(), "co2".to_owned()]);
    assert_eq!(intervals(&collector, "ahu", in1), (HOUR, HOUR));
    assert_eq!(intervals(&collector, "co2", first), (HOUR, HOUR));
    collector.shutdown().await;
}
