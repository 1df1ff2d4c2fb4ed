//! Programs run by the real runner against the simulated T3 controller, on a controlled clock.
//!
//! The services are composed as `cli::serve` composes them: storage and the catalog in a temporary
//! data directory, the collector polling the in-process simulator (`t3_drivers::simulator`) over
//! Modbus TCP on loopback, the command arbiter (`Control`), the ranges and labels the device reports,
//! the watch over points in manual, the alarm service, and [`ServerPlant`] over them. Only the runner
//! is on a [`ManualClock`]: each scan is [`Runner::tick`] after the test moved that clock, so timers,
//! TIME and DOW see exactly the time the test chose. Everything else keeps the wall clock: the
//! collector stamps its samples with its clock and storage keeps the newest sample as the latest
//! value, so a clock set back (the schedule test goes from a Monday evening to a Sunday) would
//! stop new samples from becoming the latest value. Polling itself runs on tokio timers, not the
//! clock.
//!
//! Each test sets inputs at the simulated device, waits (bounded, on a condition) until the
//! collector's sample of them is the latest value, scans, and reads what the device holds through
//! the simulator's accessors. The simulator's behaviour model is never ticked, so the device's
//! values change only by what a test or a program writes.

use super::*;
use crate::model::alarm::{AlarmView, SystemAlarm, program_alarm_id};
use crate::model::device::DeviceRecord;
use crate::model::place::Building;
use crate::service::alarms::AlarmService;
use crate::service::control::Control;
use crate::service::overrides::Overrides;
use crate::service::ranges::Ranges;
use crate::service::registry::Registry;
use std::time::Duration;
use t3_core::clock::{ManualClock, SystemClock};
use t3_core::config::{Config, DeviceConfig};
use t3_drivers::collector::{Collector, DeviceState};
use t3_drivers::plugin::PluginHost;
use t3_drivers::simulator::{SimDevice, SimDeviceSpec, Simulator};
use t3_storage::Storage;

/// Monday 2026-06-01 12:00 UTC: where the runner's clock starts.
const MONDAY_NOON: i64 = 1_780_315_200_000_000;
const SECOND: i64 = 1_000_000;
/// How long a test waits for the collector at most (the machine may be busy).
const MUST: Duration = Duration::from_secs(20);

/// A server's services around one simulated T3 controller, `ahu` (unit 1).
struct Rig {
    _dir: tempfile::TempDir,
    storage: Storage,
    catalog: Arc<Catalog>,
    collector: Arc<Collector>,
    registry: Arc<Registry>,
    control: Arc<Control>,
    alarms: Arc<AlarmService>,
    runner: Arc<Runner>,
    /// The runner's clock.
    clock: Arc<ManualClock>,
    /// The simulated controller.
    dev: Arc<SimDevice>,
    device_id: i64,
}

impl Rig {
    /// Starts everything and waits until the device is online, every point has a value and its
    /// ranges (which outputs are digital) are read.
    async fn start() -> Rig {
        let sim = Simulator::new(vec![SimDeviceSpec::new("AHU", 1, "T3-controller", 10_001, 1)]).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(sim.clone().serve_tcp(listener));
        let dev = sim.device(1).unwrap();

        let dir = tempfile::tempdir().unwrap();
        let mut cfg = Config::default();
        cfg.storage.data_dir = dir.path().join("data");
        cfg.devices = vec![
            serde_json::from_value::<DeviceConfig>(serde_json::json!({
                "name": "ahu", "protocol": "modbus-tcp", "ip_address": "127.0.0.1", "port": port,
                "unit_id": 1, "profile": "T3-controller", "poll_interval_ms": 100,
            }))
            .unwrap(),
        ];
        // As `cli::serve` builds them, but the runner on a clock of its own (module docs).
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let storage = Storage::open(&cfg, Arc::new(t3_storage::vfs::RealFs), clock.clone()).unwrap();
        storage.start_background();
        let registry = Arc::new(Registry::open(storage.data_dir(), 1).unwrap());
        let catalog = Arc::new(Catalog::open(storage.data_dir()).unwrap());
        crate::model::register(&catalog).unwrap();
        let devices = crate::service::collection::sync_config_devices(&catalog, &cfg.devices).unwrap();
        let sink = Arc::new(t3_storage::BatchingSink::start(storage.clone()));
        let collector = Collector::new(cfg.collector.clone(), sink, clock.clone());
        let plugins = Arc::new(PluginHost::empty());
        crate::service::collection::start(&collector, &registry, &plugins, &devices).unwrap();
        let ranges = Arc::new(Ranges::default());
        let control = Control::new(
            catalog.clone(),
            collector.clone(),
            registry.clone(),
            storage.clone(),
            clock.clone(),
            cfg.auth.point_writes_per_minute,
            ranges.clone(),
        );
        control.spawn_expiry();
        let alarms = AlarmService::new(catalog.clone(), clock.clone());
        alarms.spawn(&storage, collector.clone());
        ranges.spawn(&collector);
        let overrides = Overrides::new(catalog.clone(), storage.clone(), registry.clone());
        overrides.spawn();
        let plant = Arc::new(ServerPlant {
            catalog: catalog.clone(),
            collector: collector.clone(),
            storage: storage.clone(),
            control: control.clone(),
            ranges: ranges.clone(),
            overrides,
        });
        let runner_clock = ManualClock::new(MONDAY_NOON);
        let runner = Runner::new(catalog.clone(), plant, alarms.clone(), runner_clock.clone(), cfg.programs.clone());
        runner.start_all().await;
        let device_id = catalog.list::<DeviceRecord>()[0].id;
        let rig = Rig {
            _dir: dir,
            storage,
            catalog,
            collector,
            registry,
            control,
            alarms,
            runner,
            clock: runner_clock,
            dev,
            device_id,
        };

        until("the device is online", || {
            rig.collector.status().get("ahu").is_some_and(|s| s.state == DeviceState::Online)
        })
        .await;
        let ids: Vec<u32> = rig.registry.entries().iter().filter(|e| e.device == "ahu").map(|e| e.id).collect();
        until("every point has a value", || rig.storage.latest(&ids).len() == ids.len()).await;
        // Read now rather than at the ranges' next refresh (every 5 s).
        ranges.refresh(&rig.collector).await;
        assert_eq!(ranges.get(rig.id("OUT6")).and_then(|r| r.digital), Some(true), "OUT6 (the fan) is digital");
        rig
    }

    /// The id of point `name` of the device.
    fn id(&self, name: &str) -> u32 {
        self.registry.entries().into_iter().find(|e| e.device == "ahu" && e.point == name).unwrap().id
    }

    /// Sets an input at the device, as its sensor would, and waits until the collector's sample
    /// of it is the latest value.
    async fn sense(&self, name: &str, value: f64) {
        self.dev.set_value(name, value).unwrap();
        let id = self.id(name);
        until(&format!("{name} = {value} polled"), || {
            self.storage.latest(&[id]).first().is_some_and(|(_, l)| l.value == value)
        })
        .await;
    }

    /// What the device holds in point `name` now.
    fn device(&self, name: &str) -> f64 {
        self.dev.value(name).unwrap()
    }

    /// Stores an enabled program of the device and starts it, as the API's create does.
    async fn program(&self, name: &str, source: &str) -> Program {
        let p = self
            .catalog
            .insert(Program {
                id: 0,
                name: name.into(),
                device_id: Some(self.device_id),
                source: source.into(),
                enabled: true,
                status: "stopped".into(),
                updated_us: self.clock.now_us(),
                t3000: None,
            })
            .unwrap();
        self.runner.upsert(p.clone(), "created").await;
        let v = self.view(&p);
        assert_eq!((v.status.as_str(), &v.error), ("running", &None), "{name}: {v:?}");
        p
    }

    /// `us` pass on the runner's clock, then every program scans.
    async fn scan_after(&self, us: i64) {
        self.clock.advance(us);
        self.runner.tick().await;
    }

    fn view(&self, p: &Program) -> ProgramView {
        self.runner.view(&self.catalog.get::<Program>(p.id).unwrap())
    }

    fn alarm(&self, id: i64) -> Option<AlarmView> {
        self.alarms.views().into_iter().find(|v| v.rule_id == id)
    }

    async fn stop(self) {
        self.collector.shutdown().await;
        self.storage.shutdown().await.unwrap();
    }
}

/// Waits until `done`, at most [`MUST`].
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + MUST;
    while !done() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// TIME-ON counts the seconds of the runner's clock its condition held (an input of the device
/// the collector polled): the fan (OUT6, digital) goes on at the device only once the room has
/// been warm for more than 5 s, whether those seconds come one scan at a time or in longer steps,
/// and off when the room cools.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_time_on_timer_drives_an_output_after_its_seconds() {
    let rig = Rig::start().await;
    rig.sense("IN1", 20.0).await;
    assert_eq!(rig.device("OUT6"), 1.0, "the simulated fan starts on");
    rig.program("fan", "10 OUT6 = TIME-ON ( IN1 > 25 ) > 5\n").await;
    rig.scan_after(SECOND).await;
    assert_eq!(rig.device("OUT6"), 0.0, "the program switched the fan off");
    assert!(rig.dev.is_manual("OUT6"), "taken over from the controller's own logic");

    rig.sense("IN1", 30.0).await;
    // Seen warm at this scan (0 s), then 1 s a scan.
    for held in 0..=6 {
        rig.scan_after(SECOND).await;
        let on = if held > 5 { 1.0 } else { 0.0 };
        assert_eq!(rig.device("OUT6"), on, "warm for {held} s");
    }
    rig.sense("IN1", 20.0).await;
    rig.scan_after(SECOND).await;
    assert_eq!(rig.device("OUT6"), 0.0, "cooled: off at once");

    // Seconds, not scans: 0, 4 and then 7 s on the clock in three scans.
    rig.sense("IN1", 28.0).await;
    for (step, on) in [(4, 0.0), (4, 0.0), (3, 1.0)] {
        rig.scan_after(step * SECOND).await;
        assert_eq!(rig.device("OUT6"), on, "after a step of {step} s");
    }
    rig.stop().await;
}

/// IF+ fires once on each rising edge of its condition, not while it holds nor when it falls:
/// the count (a local) goes to VAR10 of the device.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_fires_once_per_rising_edge() {
    let rig = Rig::start().await;
    rig.sense("IN2", 10.0).await;
    rig.program("edges", "10 IF+ IN2 > 20 THEN C = C + 1\n20 VAR10 = C\n").await;
    rig.scan_after(SECOND).await;
    assert_eq!(rig.device("VAR10"), 0.0);
    let mut count = 0.0;
    for _ in 0..3 {
        rig.sense("IN2", 25.0).await;
        count += 1.0;
        for _ in 0..3 {
            rig.scan_after(SECOND).await;
            assert_eq!(rig.device("VAR10"), count, "one count per rising edge");
        }
        rig.sense("IN2", 15.0).await;
        rig.scan_after(SECOND).await;
        assert_eq!(rig.device("VAR10"), count, "a falling edge does not count");
    }
    assert!(rig.dev.is_manual("VAR10"));
    rig.stop().await;
}

/// Schedule-style logic on TIME and DOW, with the runner's clock set to chosen local times of the
/// device's building (Europe/Berlin, UTC+2 in June): the lights (OUT8) follow at the device.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_style_logic_follows_the_local_time_and_day() {
    let rig = Rig::start().await;
    let building = rig
        .catalog
        .insert(Building {
            id: 0,
            name: "HQ".into(),
            description: None,
            address: None,
            time_zone: "Europe/Berlin".into(),
            updated_us: 0,
        })
        .unwrap();
    let mut record = rig.catalog.get::<DeviceRecord>(rig.device_id).unwrap();
    record.building_id = Some(building.id);
    rig.catalog.put(record).unwrap();
    assert_eq!(rig.device("OUT8"), 1.0, "the simulated lights start on");
    rig.program("lights", "10 IF TIME > 7:00:00 AND TIME < 18:00:00 AND DOW > SUNDAY THEN START OUT8 ELSE STOP OUT8\n")
        .await;
    // Local time in Berlin (UTC+2) -> UTC on the runner's clock.
    let at = |day: &str, time: &str| {
        let local = chrono::NaiveDateTime::parse_from_str(&format!("{day} {time}"), "%Y-%m-%d %H:%M:%S").unwrap();
        (local - chrono::Duration::hours(2)).and_utc().timestamp_micros()
    };
    let cases = [
        // Monday.
        ("2026-06-01", "06:59:59", 0.0),
        ("2026-06-01", "07:00:01", 1.0),
        ("2026-06-01", "12:00:00", 1.0),
        ("2026-06-01", "17:59:59", 1.0),
        ("2026-06-01", "18:00:01", 0.0),
        // Saturday.
        ("2026-06-06", "10:00:00", 1.0),
        // Sunday (set back: the runner's clock only).
        ("2026-05-31", "10:00:00", 0.0),
        // Tuesday.
        ("2026-06-02", "08:30:00", 1.0),
        ("2026-06-02", "23:00:00", 0.0),
    ];
    for (day, time, lights) in cases {
        rig.clock.set(at(day, time));
        rig.runner.tick().await;
        assert_eq!(rig.device("OUT8"), lights, "{day} {time} in Berlin");
    }
    assert!(rig.dev.is_manual("OUT8"));
    rig.stop().await;
}

/// GOSUB / RETURN into a FOR / NEXT loop whose bound is an input of the device: the sum of the
/// squares up to it goes to VAR11 of the device, and follows when the input changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gosub_and_for_next_compute_a_value_for_the_device() {
    let rig = Rig::start().await;
    rig.sense("IN3", 4.0).await;
    rig.program(
        "squares",
        "10 GOSUB 100\n20 VAR11 = S\n30 END\n100 S = 0\n110 FOR I = 1 TO IN3\n120 GOSUB 200\n130 NEXT I\n140 RETURN\n200 S = S + I * I\n210 RETURN\n",
    )
    .await;
    rig.scan_after(SECOND).await;
    assert_eq!(rig.device("VAR11"), 30.0, "1 + 4 + 9 + 16");
    rig.sense("IN3", 10.0).await;
    rig.scan_after(SECOND).await;
    assert_eq!(rig.device("VAR11"), 385.0, "1 + 4 + ... + 100");
    rig.stop().await;
}

/// An ALARM statement on an input of the device raises an alarm in the alarm list (level high,
/// its message), keeps it within the hysteresis and clears it past it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_statement_raises_and_clears_with_hysteresis() {
    let rig = Rig::start().await;
    rig.sense("IN4", 20.0).await;
    let p = rig.program("warm", "10 ALARM IN4 > 25 , 2 , ZONE 4 TOO WARM\n").await;
    let id = program_alarm_id(p.id, 10).unwrap();
    rig.scan_after(SECOND).await;
    assert!(rig.alarm(id).is_none(), "not raised at 20");
    for (value, state) in [(26.0, "active"), (24.0, "active"), (22.0, "cleared"), (27.0, "active")] {
        rig.sense("IN4", value).await;
        rig.scan_after(SECOND).await;
        let a = rig.alarm(id).unwrap_or_else(|| panic!("no alarm at {value}"));
        assert_eq!(a.state, state, "at {value}: {a:?}");
        assert_eq!((a.level.as_deref(), a.message.as_deref()), (Some("high"), Some("ZONE 4 TOO WARM")));
        assert_eq!((a.name.as_str(), a.device_id), ("warm line 10", Some(rig.device_id)));
    }
    rig.stop().await;
}

/// A program that divides by zero (an input of the device turned 0) stops alone, with its line
/// and the system alarm; what it commanded is relinquished at the arbiter and its points go back
/// to the controller (auto) at the device, while the other program keeps scanning and driving
/// its point.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erroring_program_stops_alone_and_gives_its_points_back() {
    let rig = Rig::start().await;
    rig.sense("IN5", 4.0).await;
    let bad = rig.program("divider", "10 OUT7 = 5\n20 VAR12 = 100 / IN5\n").await;
    let good = rig.program("counter", "10 VAR13 = SCANS\n").await;
    rig.scan_after(SECOND).await;
    assert_eq!((rig.device("OUT7"), rig.device("VAR12"), rig.device("VAR13")), (5.0, 25.0, 1.0));
    for name in ["OUT7", "VAR12", "VAR13"] {
        assert!(rig.dev.is_manual(name), "{name} taken over");
    }
    let (out7, var12) = (rig.id("OUT7"), rig.id("VAR12"));
    let actor = format!("program:{}", bad.id);
    assert!(rig.control.array(out7).iter().any(|c| c.priority.get() == 16 && c.source == actor));

    rig.sense("IN5", 0.0).await;
    rig.scan_after(SECOND).await;
    let v = rig.view(&bad);
    assert_eq!(v.status, "error");
    let e = v.error.unwrap();
    assert_eq!((e.line_number, e.message.as_str()), (20, "division by zero"), "{e:?}");
    let system = rig.alarm(SystemAlarm::ProgramError.rule_id()).expect("the system alarm");
    assert_eq!(system.state, "active");
    assert!(system.message.as_deref().unwrap().contains("line 20: division by zero"), "{system:?}");
    for (name, id) in [("OUT7", out7), ("VAR12", var12)] {
        assert!(rig.control.array(id).is_empty(), "{name}: the program's command is relinquished");
        assert!(!rig.dev.is_manual(name), "{name} is back in auto at the device");
    }
    assert_eq!(rig.device("VAR13"), 2.0, "the other program scanned in the same tick");

    for scan in 3..=5 {
        rig.scan_after(SECOND).await;
        assert_eq!(rig.device("VAR13"), f64::from(scan));
    }
    assert_eq!((rig.view(&bad).scans, rig.view(&good).scans), (2, 5));
    assert_eq!(rig.view(&good).status, "running");
    assert!(rig.dev.is_manual("VAR13"));
    assert!(!rig.dev.is_manual("OUT7"), "the stopped program does not take it again");
    rig.stop().await;
}
