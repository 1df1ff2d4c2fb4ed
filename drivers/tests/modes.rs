//! Auto / manual through the real [`Collector`] against the simulator over loopback TCP: a point
//! is put in manual and back in auto by its auto/manual register, read back, and recorded at once
//! with the quality of its new mode; back in auto its controller (the simulator's behaviour model)
//! drives its value again. A point without an auto/manual register is refused before anything is
//! sent.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use t3_core::clock::SystemClock;
use t3_core::config::DeviceConfig;
use t3_core::{Quality, Sample};
use t3_drivers::collector::{CollectError, Collector, DeviceSpec};
use t3_drivers::profile::{ProfileLibrary, T3_CONTROLLER};
use t3_drivers::simulator::{SimDeviceSpec, Simulator};
use tokio::sync::mpsc;
use tokio::time::timeout;

use crate::ChannelSink;

/// Tuesday 2026-06-02 10:00 UTC: the model's zones are warming.
const START: f64 = 1_780_358_400.0 + 10.0 * 3600.0;
const MUST: Duration = Duration::from_secs(10);

/// A device of `profile` at `port`, unit `unit`, polled once an hour (the test reads what the mode
/// changes record, not polls); point ids are `unit * 100_000 + address`.
pub(crate) fn device(name: &str, profile: &str, port: u16, unit: u8) -> DeviceSpec {
    let config: DeviceConfig = serde_json::from_value(json!({
        "name": name, "protocol": "modbus-tcp", "ip_address": "127.0.0.1", "port": port,
        "unit_id": unit, "profile": profile, "poll_interval_ms": 3_600_000,
    }))
    .expect("device config");
    let profile = ProfileLibrary::builtin().get(profile).expect("profile").clone();
    DeviceSpec::new(config, profile, |p| u32::from(unit) * 100_000 + u32::from(p.address)).expect("spec")
}

/// The sample of point `id` recorded at `ts` (a poll's samples are skipped).
async fn recorded(rx: &mut mpsc::UnboundedReceiver<Sample>, id: u32, ts: i64) -> Sample {
    timeout(MUST, async {
        loop {
            let s = rx.recv().await.expect("the sink is open");
            if s.point_id.0 == id && s.ts == ts {
                return s;
            }
        }
    })
    .await
    .expect("a sample of the point")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_point_goes_to_manual_and_back_to_auto_and_its_controller_drives_it_again() {
    let sim = Simulator::new(vec![
        SimDeviceSpec::new("AHU-1", 1, T3_CONTROLLER, 0x0001_E240, 7),
        SimDeviceSpec::new("CO2 lobby", 30, "CO2", 0x0002_0001, 9),
    ])
    .unwrap();
    let mut t = START;
    sim.tick(t);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(Arc::clone(&sim).serve_tcp(listener));

    let (tx, mut rx) = mpsc::unbounded_channel();
    let collector = Collector::new(Default::default(), Arc::new(ChannelSink(tx)), Arc::new(SystemClock));
    let ahu = device("ahu", T3_CONTROLLER, port, 1);
    let id = |name: &str| {
        let p = ahu.profile.point(name).expect("point");
        100_000 + u32::from(p.address)
    };
    let (in1, out6) = (id("IN1"), id("OUT6"));
    collector.add_device(ahu).unwrap();
    collector.add_device(device("co2", "CO2", port, 30)).unwrap();
    let dev = sim.device(1).unwrap();
    assert!(!dev.is_manual("IN1"));

    // To manual: the register is written and read back, the value recorded at once as an override.
    let before = dev.value("IN1").unwrap();
    let out = collector.set_mode("ahu", "IN1", true).await.unwrap();
    assert_eq!(
        (out.point_id, out.was_manual, out.manual, out.quality),
        (in1, false, true, Quality::GOOD_LOCAL_OVERRIDE)
    );
    assert_eq!(out.value, before);
    assert!(dev.is_manual("IN1"), "the simulator's auto/manual register says manual");
    let s = recorded(&mut rx, in1, out.ts).await;
    assert_eq!((s.value, s.quality), (before, Quality::GOOD_LOCAL_OVERRIDE));
    // Asking again changes nothing at the device and says it was in manual already.
    let again = collector.set_mode("ahu", "IN1", true).await.unwrap();
    assert_eq!((again.was_manual, again.manual), (true, true));

    // In manual an input takes a write and the controller leaves it alone.
    let w = collector.write("ahu", "IN1", 55.5, false).await.unwrap();
    assert_eq!((w.value, w.switched_to_manual), (55.5, false));
    recorded(&mut rx, in1, w.ts).await;
    t += 600.0;
    sim.tick(t);
    assert_eq!(dev.value("IN1"), Some(55.5), "a point in manual holds its value");

    // Back to auto: confirmed, recorded as good (not an override), and the next tick of the
    // controller's model drives the value again.
    let out = collector.set_mode("ahu", "IN1", false).await.unwrap();
    assert_eq!((out.was_manual, out.manual, out.quality), (true, false, Quality::GOOD));
    assert!(!dev.is_manual("IN1"));
    let s = recorded(&mut rx, in1, out.ts).await;
    assert_eq!((s.value, s.quality), (55.5, Quality::GOOD));
    t += 600.0;
    sim.tick(t);
    let driven = dev.value("IN1").unwrap();
    assert_ne!(driven, 55.5, "the controller drives the point again");
    assert!((10.0..40.0).contains(&driven), "a room temperature: {driven}");
    // A write to the point in auto is refused again.
    let e = collector.write("ahu", "IN1", 1.0, false).await.unwrap_err();
    assert!(matches!(e, CollectError::Driver(t3_drivers::driver::DriverError::InAuto)), "{e:?}");

    // A digital output keeps its raw 0 / 1 when its mode changes (decoded as a poll decodes it).
    let out = collector.set_mode("ahu", "OUT6", true).await.unwrap();
    assert_eq!((out.point_id, out.value, out.quality), (out6, 1.0, Quality::GOOD_LOCAL_OVERRIDE));
    collector.set_mode("ahu", "OUT6", false).await.unwrap();
    assert!(!dev.is_manual("OUT6"));

    // A point without an auto/manual register: refused, and nothing is sent.
    let co2 = sim.device(30).unwrap();
    let first = collector.device("co2").unwrap();
    let name = first.point_of(&first.points[0]).name.clone();
    let requests = co2.requests();
    let e = collector.set_mode("co2", &name, true).await.unwrap_err();
    assert_eq!(e, CollectError::NoAutoManual(name.clone()));
    assert_eq!(e.to_string(), format!("point `{name}` has no auto/manual switch"));
    assert_eq!(co2.requests(), requests, "nothing was sent");
    // Unknown points and devices are named.
    assert!(matches!(collector.set_mode("ahu", "IN99", true).await, Err(CollectError::UnknownPoint { .. })));
    assert!(matches!(collector.set_mode("nope", "IN1", true).await, Err(CollectError::UnknownDevice(_))));
    collector.shutdown().await;
}
