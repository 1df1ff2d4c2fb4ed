//! A T3 controller's program table through the real [`Collector`] against the simulator over
//! loopback Modbus TCP: the table is read, a running program is stopped and a stopped one started
//! (each record written whole and read back), the neighbouring record and the bytes the write does
//! not mean to change stay as they were, a device that is not a T3 controller is refused before
//! anything is sent, and a Modbus exception comes back as the clear [`CollectError::Refused`].

use std::sync::Arc;

use t3_core::clock::SystemClock;
use t3_core::config::CollectorConfig;
use t3_drivers::codec::RegisterKind;
use t3_drivers::collector::{CollectError, Collector};
use t3_drivers::driver::ExceptionCode;
use t3_drivers::panel::PanelProgramState;
use t3_drivers::profile::T3_CONTROLLER;
use t3_drivers::simulator::{Fault, SimDeviceSpec, Simulator};
use t3_drivers::t3::records::ProgramRecord;
use tokio::sync::mpsc;

use crate::ChannelSink;
use crate::modes::device;

/// A collector that does not poll: only the requests of the calls under test reach the devices.
fn collector() -> Arc<Collector> {
    let (tx, _rx) = mpsc::unbounded_channel();
    let cfg = CollectorConfig { enabled: false, ..CollectorConfig::default() };
    Collector::new(cfg, Arc::new(ChannelSink(tx)), Arc::new(SystemClock))
}

/// A simulated T3 controller "AHU-1" (unit 1) and a TSTAT8 thermostat (unit 5), served over
/// loopback TCP, and a collector with both ("ahu", "tstat").
async fn setup() -> (Arc<Simulator>, Arc<Collector>) {
    let sim = Simulator::new(vec![
        SimDeviceSpec::new("AHU-1", 1, T3_CONTROLLER, 0x0001_E240, 7),
        SimDeviceSpec::new("thermostat", 5, "TSTAT8", 0x0005_4321, 5),
    ])
    .expect("simulator");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(Arc::clone(&sim).serve_tcp(listener));
    let c = collector();
    c.add_device(device("ahu", T3_CONTROLLER, port, 1)).expect("add ahu");
    c.add_device(device("tstat", "TSTAT8", port, 5)).expect("add tstat");
    (sim, c)
}

fn state(
    number: u16,
    label: &str,
    description: &str,
    code_bytes: u16,
    running: bool,
    manual: bool,
) -> PanelProgramState {
    PanelProgramState { number, label: label.into(), description: description.into(), code_bytes, running, manual }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_program_table_is_read_as_the_controller_serves_it() {
    let (sim, c) = setup().await;
    let dev = sim.device(1).expect("unit 1");
    let before = dev.requests();
    let programs = c.read_programs("ahu").await.expect("programs");
    // 16 records of 19 registers, whole records in reads of at most 100 registers (Temco's limit).
    assert_eq!(dev.requests() - before, 4);
    assert_eq!(programs.len(), 16);
    assert_eq!(programs[0], state(1, "AHU", "Air handler sequence", 412, true, false));
    assert_eq!(programs[1], state(2, "BOILER", "Boiler plant", 236, false, false));
    assert_eq!(programs[2], state(3, "LIGHTS", "Lights by occupancy", 98, true, true));
    // Empty slots as the firmware initialises them: on, auto, no code (so never run).
    for (i, p) in programs.iter().enumerate().skip(3) {
        assert_eq!(*p, state(i as u16 + 1, "", "", 0, true, false), "PRG{}", i + 1);
    }
    // The packed array: PRG1's last register ends with PRG2's first byte.
    let last = dev.registers(RegisterKind::Holding, 15504 + 18, 1).expect("PRG1's last register");
    assert_eq!(last, vec![u16::from(b'B')]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_program_is_stopped_and_started_changing_nothing_else() {
    let (sim, c) = setup().await;
    let dev = sim.device(1).expect("unit 1");
    let (prg1, prg2, prg3) = (dev.program(1).unwrap(), dev.program(2).unwrap(), dev.program(3).unwrap());
    let table_before = dev.registers(RegisterKind::Holding, 15504, 16 * 19).expect("the program table");

    // Stop PRG1: only its on/off changes; its trailing bytes (the firmware's scan time) and PRG2 stay.
    c.set_program_running("ahu", 1, false).await.expect("stop PRG1");
    assert_eq!(dev.program(1), Some(ProgramRecord { on_off: 0, ..prg1.clone() }));
    assert_eq!(dev.program(1).unwrap().rest, [2, 0, 0], "the bytes the write does not mean are kept");
    assert_eq!(dev.program(2).as_ref(), Some(&prg2), "the neighbour record is unchanged");
    let table = dev.registers(RegisterKind::Holding, 15504, 16 * 19).unwrap();
    let changed: Vec<usize> = (0..table.len()).filter(|&k| table[k] != table_before[k]).collect();
    assert_eq!(changed, vec![16], "only the register holding PRG1's on/off (bytes 32, 33)");
    let read = c.read_programs("ahu").await.expect("programs");
    assert_eq!(read[0], state(1, "AHU", "Air handler sequence", 412, false, false));

    // Asking again writes nothing (a block write is saved to the panel's flash).
    let writes = dev.writes();
    c.set_program_running("ahu", 1, false).await.expect("stop PRG1 again");
    assert_eq!(dev.writes(), writes);

    // Start PRG2, whose first byte sits in PRG1's last register: PRG1 and PRG3 are unchanged.
    c.set_program_running("ahu", 2, true).await.expect("start PRG2");
    assert_eq!(dev.program(2), Some(ProgramRecord { on_off: 1, ..prg2 }));
    assert_eq!(dev.program(1), Some(ProgramRecord { on_off: 0, ..prg1 }));
    assert_eq!(dev.program(3).as_ref(), Some(&prg3));
    assert!(c.read_programs("ahu").await.expect("programs")[1].running);

    // Program numbers count 1 to 16.
    for n in [0, 17] {
        let e = c.set_program_running("ahu", n, true).await.unwrap_err();
        assert_eq!(e, CollectError::NoRecord { what: "programs", count: 16, n });
        assert_eq!(e.to_string(), format!("a T3 panel has programs 1 to 16, not {n}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_that_is_not_a_t3_controller_is_refused_without_a_request() {
    let (sim, c) = setup().await;
    let tstat = sim.device(5).expect("unit 5");
    let before = tstat.requests();
    let e = c.read_programs("tstat").await.unwrap_err();
    assert_eq!(e, CollectError::NotT3 { device: "tstat".into(), what: "program table" });
    assert_eq!(e.to_string(), "device \"tstat\" is not a T3 controller: it has no program table");
    let e = c.set_program_running("tstat", 1, false).await.unwrap_err();
    assert!(matches!(e, CollectError::NotT3 { .. }), "{e:?}");
    assert_eq!(tstat.requests(), before, "nothing was sent");
    assert!(matches!(c.read_programs("nope").await, Err(CollectError::UnknownDevice(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modbus_exception_is_reported_as_a_refused_table() {
    let (sim, c) = setup().await;
    let dev = sim.device(1).expect("unit 1");
    dev.set_fault(Fault::Exception { code: 2 });
    let refused = CollectError::Refused {
        device: "ahu".into(),
        what: "program table",
        first: 15504,
        last: 15807,
        exception: ExceptionCode::ILLEGAL_DATA_ADDRESS,
    };
    let e = c.read_programs("ahu").await.unwrap_err();
    assert_eq!(e, refused);
    assert_eq!(
        e.to_string(),
        "device \"ahu\" refused its program table (holding registers 15504-15807) with exception 0x02 \
         (illegal data address): its firmware does not serve them"
    );
    assert_eq!(c.set_program_running("ahu", 1, false).await.unwrap_err(), refused);
    // A gateway's exception says the device is unreachable, not that it lacks the table.
    dev.set_fault(Fault::Exception { code: 0x0B });
    let e = c.read_programs("ahu").await.unwrap_err();
    assert!(matches!(e, CollectError::Driver(_)), "{e:?}");
    dev.set_fault(Fault::None);
    assert!(dev.program(1).unwrap().on_off == 1, "nothing was written");
    assert_eq!(c.read_programs("ahu").await.expect("programs").len(), 16);
}
