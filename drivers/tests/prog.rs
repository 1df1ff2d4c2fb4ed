//! The `.prog` parser against real T3000 panel files (Temco's `Documentation/ExampleProgFiles` of
//! temcocontrols/T3000_CrossPlatform, copied to `tests/data/prog/`), checked value by value against an
//! independent reader (`tests/data/prog/read_prog.py`, Python's `struct`), and fuzzed: truncated at every
//! offset, bytes flipped, random data: never a panic, an error with an offset or a parse.
//!
//! Temco publishes no version-7 or version-8 file: those are built from a real version-6 file by
//! `tests/data/prog/make_versions.py`, which appends the blocks T3000's `SaveBacnetBinaryFile` adds
//! (3 multi-state value blocks, then 8 weekly routine flag blocks) with a short script of its own.

use std::path::{Path, PathBuf};
use std::process::Command;

use proptest::prelude::*;
use serde_json::{Value, json};
use t3_drivers::t3::prog::{self, ProgFile};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/prog").join(name)
}

fn python() -> String {
    std::env::var("T3000_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

fn run_python(args: &[&Path]) -> Vec<u8> {
    let out = Command::new(python()).args(args).output().expect("python3 (or $T3000_PYTHON) runs");
    assert!(out.status.success(), "{:?}: {}", args, String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// The parser's values in the shape read_prog.py prints.
fn as_json(f: &ProgFile, size: usize) -> Value {
    let mut v = json!({
        "version": f.version,
        "size": size,
        "panel_name": f.settings.panel_name,
        "panel_number": f.settings.panel_number,
        "inputs": f.inputs.iter().map(|i| json!({
            "description": i.description, "label": i.label, "value": i.value, "filter": i.filter,
            "decom": i.decom, "auto_manual": i.auto_manual, "digital_analog": i.digital_analog,
            "calibration_tenths": (i.calibration() * 10.0).round() as i64, "range": i.range,
        })).collect::<Vec<_>>(),
        "outputs": f.outputs.iter().map(|o| json!({
            "description": o.description, "label": o.label, "value": o.value, "auto_manual": o.auto_manual,
            "digital_analog": o.digital_analog, "hw_switch": o.hw_switch_status, "decom": o.decom, "range": o.range,
        })).collect::<Vec<_>>(),
        "variables": f.variables.iter().map(|x| json!({
            "description": x.description, "label": x.label, "value": x.value, "auto_manual": x.auto_manual,
            "digital_analog": x.digital_analog, "range": x.range,
        })).collect::<Vec<_>>(),
        "programs": f.programs.iter().zip(&f.program_code).map(|(p, code)| json!({
            "description": p.description, "label": p.label, "bytes": p.bytes, "on_off": p.on_off,
            "code_head": code[..8].iter().map(|b| format!("{b:02x}")).collect::<String>(),
        })).collect::<Vec<_>>(),
        "weekly": f.weekly_routines.iter().zip(&f.schedule_times).map(|(w, t)| json!({
            "description": w.description, "label": w.label, "auto_manual": w.auto_manual,
            "override_1": [w.override_1.number, w.override_1.point_type, w.override_1.panel],
            "override_2": [w.override_2.number, w.override_2.point_type, w.override_2.panel],
            "days": t.days.iter().map(|d| d.iter().map(|(h, m)| json!([h, m])).collect::<Vec<_>>()).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "annual": f.annual_routines.iter().zip(&f.holiday_days).map(|(a, d)| json!({
            "description": a.description, "label": a.label, "days": d.days(),
        })).collect::<Vec<_>>(),
        "monitors": f.monitors.iter().map(|m| json!({
            "label": m.label,
            "inputs": m.inputs.iter().map(|p| json!([p.number, p.point_type, p.panel, p.sub_panel, p.network])).collect::<Vec<_>>(),
            "interval_seconds": m.interval_seconds(), "num_inputs": m.num_inputs, "an_inputs": m.an_inputs,
            "status": m.status,
        })).collect::<Vec<_>>(),
        "digital_units": f.digital_units.iter().map(|u| json!({"direct": u.direct, "off": u.off, "on": u.on})).collect::<Vec<_>>(),
        "analog_tables": f.analog_tables.iter().map(|t| t3_drivers::t3::latin1(&t.name[..8])).collect::<Vec<_>>(),
        "variable_units": f.variable_units.iter().map(|u| u.text.clone()).collect::<Vec<_>>(),
    });
    if f.version >= 7 {
        v["msv"] = f
            .multi_states
            .iter()
            .map(|m| m.states.iter().map(|s| json!([s.status, s.name, s.value])).collect::<Vec<_>>())
            .collect();
    }
    if f.version >= 8 {
        v["flags"] = f.schedule_flags.iter().map(|s| s.flags.concat()).collect();
    }
    v
}

fn compare(path: &Path) -> ProgFile {
    let bytes = std::fs::read(path).unwrap();
    let parsed = prog::parse(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let ours = as_json(&parsed, bytes.len());
    let theirs: Value = serde_json::from_slice(&run_python(&[&data("read_prog.py"), path])).unwrap();
    for key in theirs.as_object().unwrap().keys() {
        assert_eq!(ours[key], theirs[key], "{}: {key}", path.display());
    }
    assert_eq!(ours, theirs, "{}", path.display());
    parsed
}

#[test]
fn real_version_6_files_match_an_independent_reader() {
    let boiler = compare(&data("BOILER.prog"));
    assert_eq!(boiler.version, 6);
    assert_eq!(boiler.settings.panel_name, "Boilers");
    assert_eq!(boiler.settings.panel_number, 2);
    assert_eq!(
        (boiler.inputs[0].label.as_str(), boiler.inputs[0].description.as_str()),
        ("PMP1STAT", "SYS-PUMP1-STATUS")
    );
    assert_eq!(boiler.variables[1].range, 34, "SYS-DIFFPRESS-SP in custom unit 1");
    assert_eq!(boiler.variable_units[0].text, "PSI");
    assert_eq!(boiler.schedule_times[0].days[0][..2], [(1, 0), (23, 50)]);
    assert_eq!(boiler.holiday_days[0].days()[..3], [35, 67, 82]);
    assert_eq!((boiler.programs[0].label.as_str(), boiler.programs[0].bytes), ("BLRSYS", 134));
    let btu = compare(&data("BTUMeterRev22.prog"));
    let m = &btu.monitors[0];
    assert_eq!((m.label.as_str(), m.interval_seconds(), m.num_inputs), ("TESTGRAF", 10, 12));
    assert_eq!((btu.digital_units[0].off.as_str(), btu.digital_units[0].on.as_str()), ("TANK1", "TANK2"));
    for name in ["Building1.prog", "LeadLagRev1.prog", "OfficeHeating.prog"] {
        compare(&data(name));
    }
}

#[test]
fn version_7_and_8_files_built_from_a_real_one_match() {
    let dir = tempfile::tempdir().unwrap();
    let (v7, v8) = (dir.path().join("v7.prog"), dir.path().join("v8.prog"));
    run_python(&[&data("make_versions.py"), &data("LeadLagRev1.prog"), &v7, &v8]);
    let f7 = compare(&v7);
    assert_eq!((f7.version, f7.multi_states[0].states[2].name.as_str()), (7, "HIGH"));
    let f8 = compare(&v8);
    assert_eq!(f8.version, 8);
    assert_eq!(f8.schedule_flags[3].flags[3], [1; 9]);
    assert_eq!(f8.inputs, compare(&data("LeadLagRev1.prog")).inputs);
}

#[test]
fn older_layouts_are_refused_by_name() {
    let e = prog::parse(&std::fs::read(data("PT12TesterRev1.prog")).unwrap()).unwrap_err();
    assert_eq!(e.offset, 2);
    assert!(e.what.contains("version 5"), "{e}");
    let e = prog::parse(&std::fs::read(data("Building4.prog")).unwrap()).unwrap_err();
    assert_eq!(e.offset, 0);
    assert!(e.what.contains("XOR-scrambled INI layout (Version=4)"), "{e}");
}

#[test]
fn truncated_at_every_offset_is_an_error_at_the_end() {
    let bytes = std::fs::read(data("BOILER.prog")).unwrap();
    for len in 0..bytes.len() {
        let e = prog::parse(&bytes[..len]).unwrap_err();
        let expected = if len < 3 { 0 } else { len };
        assert_eq!(e.offset, expected, "cut at {len}: {e}");
        assert!(!e.what.is_empty());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn flipped_bytes_parse_or_fail_with_an_offset(flips in proptest::collection::vec((0usize..66_056, any::<u8>()), 1..40)) {
        let mut bytes = std::fs::read(data("BOILER.prog")).unwrap();
        for (at, x) in flips {
            bytes[at] ^= x;
        }
        match prog::parse(&bytes) {
            Ok(f) => prop_assert_eq!(f.inputs.len(), 64),
            Err(e) => prop_assert!(e.offset <= bytes.len() && !e.what.is_empty()),
        }
    }

    #[test]
    fn random_data_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..70_000), header in any::<bool>(), version in 0u8..12) {
        let mut bytes = bytes;
        if header && bytes.len() >= 3 {
            bytes[..3].copy_from_slice(&[0x55, 0xFF, version]);
        }
        match prog::parse(&bytes) {
            Ok(f) => prop_assert!(prog::VERSIONS.contains(&f.version)),
            Err(e) => prop_assert!(e.offset <= bytes.len()),
        }
    }

    #[test]
    fn any_bytes_of_a_versions_size_parse(version in 6u8..=8, seed in any::<u64>()) {
        let mut state = seed | 1;
        let mut bytes: Vec<u8> = (0..prog::file_size(version)).map(|_| {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17;
            state as u8
        }).collect();
        bytes[..3].copy_from_slice(&[0x55, 0xFF, version]);
        prop_assert!(prog::parse(&bytes).is_ok());
    }
}
