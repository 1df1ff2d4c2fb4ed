//! Builds T3000 WebView databases for the importer's tests and benchmark: the real schema
//! (`tests/data/webview/webview_t3_device_schema.sql`, copied from temcocontrols/T3000Webview
//! `api/migration/sql/`) executed as it is, filled with generated devices, points, trend logs and
//! `TRENDLOG_DATA_DETAIL` rows written the way WebView writes them (one row per point per poll, the
//! value as T3000's raw text, `LoggingTime_Fmt` as `YYYY-MM-DD HH:MM:SS` local time).
//!
//! [`expected`] says what each generated row must become after an import, so a test can check
//! every sample.

use anyhow::{Context, Result};
use std::path::Path;

/// WebView's schema, as its repository has it.
pub const SCHEMA_SQL: &str = include_str!("../data/webview/webview_t3_device_schema.sql");

/// What to generate.
#[derive(Debug, Clone)]
pub struct Spec {
    pub devices: u32,
    /// Polls: every trended point gets one detail row per poll.
    pub polls: u64,
    /// Local time of the first poll, `YYYY-MM-DD HH:MM:SS`.
    pub start: String,
    pub step_secs: u64,
}

/// The points of each generated device: (PointType, PointId, index, digital, label, full label, units).
pub const POINTS: &[(&str, &str, u32, bool, &str, &str, &str)] = &[
    ("INPUT", "IN1", 1, false, "OAT", "Outside air temp", "Deg.C"),
    ("INPUT", "IN2", 2, false, "SAT", "Supply air temp", "Deg.C"),
    ("INPUT", "IN3", 3, true, "FANST", "Fan status", "Off/On"),
    ("OUTPUT", "OUT1", 1, false, "VALVE", "Heating valve", "%"),
    ("OUTPUT", "OUT2", 2, true, "FAN", "Supply fan", "Off/On"),
    ("VARIABLE", "VAR1", 1, false, "SP", "Room setpoint", "Deg.C"),
    ("VARIABLE", "VAR2", 2, true, "OCC", "Occupied", "Off/On"),
];

/// The serial number of generated device `d`.
pub fn serial(d: u32) -> i64 {
    100_000 + i64::from(d)
}

/// The importer's name for generated device `d` (its `show_label_name`, then the serial number).
pub fn device_name(d: u32) -> String {
    format!("AHU-{} {}", d + 1, serial(d))
}

/// The raw text WebView stores for point `p` of device `d` at poll `k`, and the value the
/// historian must hold for it: analog values are T3000's x1000 integers (shown / 1000), a digital
/// input or output stores 0 / 1000 (shown / 1000), a digital variable 0 / 1 (shown as it is).
pub fn expected(d: u32, p: usize, k: u64) -> (String, f64) {
    let (kind, _, _, digital, ..) = POINTS[p];
    let seed = u64::from(d) * 7919 + p as u64 * 104_729 + k * 31;
    if digital {
        let on = (seed / 7) % 2 == 1;
        if kind == "VARIABLE" {
            (if on { "1" } else { "0" }.to_owned(), if on { 1.0 } else { 0.0 })
        } else {
            (if on { "1000" } else { "0" }.to_owned(), if on { 1.0 } else { 0.0 })
        }
    } else {
        let raw = (seed % 200_000) as i64 - 50_000;
        (raw.to_string(), raw as f64 / 1000.0)
    }
}

/// Local time of poll `k` as WebView writes it.
pub fn logging_time(spec: &Spec, k: u64) -> String {
    let start = chrono::NaiveDateTime::parse_from_str(&spec.start, "%Y-%m-%d %H:%M:%S").expect("Spec::start");
    (start + chrono::Duration::seconds((k * spec.step_secs) as i64)).format("%Y-%m-%d %H:%M:%S").to_string()
}

/// Creates `path` with WebView's schema and the generated rows; returns the number of detail rows.
pub fn build(path: &Path, spec: &Spec) -> Result<u64> {
    let mut db = rusqlite::Connection::open(path).with_context(|| format!("create {}", path.display()))?;
    db.execute_batch("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -262144;")?;
    db.execute_batch(SCHEMA_SQL).context("WebView's schema SQL")?;
    // The detail rows go in without their indexes, which the schema SQL, run again at the end,
    // creates in one sort each (its statements are all IF NOT EXISTS).
    let detail_indexes: Vec<String> = {
        let mut st = db.prepare(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'TRENDLOG_DATA_DETAIL' AND sql IS NOT NULL",
        )?;
        st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?
    };
    for i in &detail_indexes {
        db.execute_batch(&format!("DROP INDEX \"{i}\""))?;
    }
    let tx = db.transaction()?;
    for d in 0..spec.devices {
        let sn = serial(d);
        tx.execute(
            "INSERT INTO DEVICES (SerialNumber, PanelId, MainBuilding_Name, Building_Name, Floor_Name, Room_Name,
                 Product_Name, ip_address, port, modbus_address, modbus_port, show_label_name, connection_type)
             VALUES (?1, ?2, 'Main campus', 'Subnet 1', ?3, ?4, 'T3-BB', ?5, 10000, 1, 502, ?6, 'Ethernet')",
            rusqlite::params![
                sn,
                d + 1,
                format!("Floor {}", d % 2 + 1),
                format!("Room {}", d + 1),
                format!("192.0.2.{}", d % 250 + 1),
                format!("AHU-{}", d + 1)
            ],
        )?;
        for (kind, id, index, digital, label, full, units) in POINTS {
            let table = match *kind {
                "INPUT" => ("INPUTS", "InputId", "Input_Index"),
                "OUTPUT" => ("OUTPUTS", "OutputId", "Output_Index"),
                _ => ("VARIABLES", "VariableId", "Variable_Index"),
            };
            tx.execute(
                &format!(
                    "INSERT INTO {} (SerialNumber, {}, {}, Panel, Full_Label, Label, Units, Range_Field, Digital_Analog, fValue)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, '1', ?8, '0')",
                    table.0, table.1, table.2
                ),
                rusqlite::params![sn, id, index.to_string(), d + 1, full, label, units, if *digital { "0" } else { "1" }],
            )?;
            tx.execute(
                "INSERT INTO TRENDLOG_DATA (SerialNumber, PanelId, PointId, PointIndex, PointType, Digital_Analog, Range_Field, Units)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, '1', ?7)",
                rusqlite::params![sn, d + 1, id, index, kind, if *digital { "0" } else { "1" }, units],
            )?;
        }
        tx.execute(
            "INSERT INTO TRENDLOGS (SerialNumber, PanelId, Trendlog_ID, Trendlog_Label, Interval_Seconds, Status)
             VALUES (?1, ?2, 'MON1', 'Temperatures', 300, 'ON')",
            rusqlite::params![sn, d + 1],
        )?;
        for (kind, index) in [("INPUT", "1"), ("INPUT", "2"), ("OUTPUT", "1")] {
            tx.execute(
                "INSERT INTO TRENDLOG_INPUTS (SerialNumber, PanelId, Trendlog_ID, Point_Type, Point_Index, view_type)
                 VALUES (?1, ?2, 'MON1', ?3, ?4, 'MAIN')",
                rusqlite::params![sn, d + 1, kind, index],
            )?;
        }
    }
    let parents: Vec<(i64, i64, String)> = {
        let mut st = tx.prepare("SELECT id, SerialNumber, PointId FROM TRENDLOG_DATA ORDER BY id")?;
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<Result<_, _>>()?
    };
    let mut rows = 0u64;
    {
        let mut ins =
            tx.prepare("INSERT INTO TRENDLOG_DATA_DETAIL (ParentId, Value, LoggingTime_Fmt) VALUES (?1, ?2, ?3)")?;
        for k in 0..spec.polls {
            let t = logging_time(spec, k);
            for (parent, sn, point_id) in &parents {
                let d = (sn - 100_000) as u32;
                let p = POINTS.iter().position(|x| x.1 == point_id).expect("generated point");
                ins.execute(rusqlite::params![parent, expected(d, p, k).0, t])?;
                rows += 1;
            }
        }
    }
    tx.commit()?;
    db.execute_batch(SCHEMA_SQL).context("WebView's schema SQL, for the detail indexes")?;
    Ok(rows)
}
