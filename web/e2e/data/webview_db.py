"""Builds a T3000 WebView database for the browser test of the WebView import: WebView's real
schema (tests/data/webview/webview_t3_device_schema.sql, copied from temcocontrols/T3000Webview)
executed as it is, filled with DEVICES devices of 7 points each and POLLS polls of history (one
TRENDLOG_DATA_DETAIL row per point per poll, values as T3000's raw text, local times).

usage: python3 webview_db.py OUT.db DEVICES POLLS [--json]
Prints the number of detail rows; with --json, what the import must make of them instead (a JSON
object: "rows", and per series its device and point names, how many samples, the first and last
local time, the sum of the values in thousandths, and a few samples as [local time, value]), so a
test can check the stored history without a second copy of the rules below."""
import datetime
import json
import os
import sqlite3
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMA = os.path.join(HERE, "../../../tests/data/webview/webview_t3_device_schema.sql")
POINTS = [
    ("INPUT", "IN1", 1, False, "OAT", "Outside air temp", "Deg.C"),
    ("INPUT", "IN2", 2, False, "SAT", "Supply air temp", "Deg.C"),
    ("INPUT", "IN3", 3, True, "FANST", "Fan status", "Off/On"),
    ("OUTPUT", "OUT1", 1, False, "VALVE", "Heating valve", "%"),
    ("OUTPUT", "OUT2", 2, True, "FAN", "Supply fan", "Off/On"),
    ("VARIABLE", "VAR1", 1, False, "SP", "Room setpoint", "Deg.C"),
    ("VARIABLE", "VAR2", 2, True, "OCC", "Occupied", "Off/On"),
]
TABLES = {"INPUT": ("INPUTS", "InputId", "Input_Index"), "OUTPUT": ("OUTPUTS", "OutputId", "Output_Index"),
          "VARIABLE": ("VARIABLES", "VariableId", "Variable_Index")}


SERIAL0 = 200_000
FIRST_POLL = datetime.datetime(2026, 1, 5)


def device_label(d):
    """show_label_name of generated device d (the importer names it "<label> <SerialNumber>")."""
    return f"RTU-{d + 1}"


def build(out, devices, polls):
    """Writes the database to `out`; returns its TRENDLOG_DATA rows (id, SerialNumber, PointId) and
    how many detail rows it holds."""
    if os.path.exists(out):
        os.remove(out)
    db = sqlite3.connect(out)
    db.executescript(open(SCHEMA, encoding="utf-8").read())
    for d in range(devices):
        sn = SERIAL0 + d
        db.execute(
            "INSERT INTO DEVICES (SerialNumber, PanelId, MainBuilding_Name, Building_Name, Floor_Name, Room_Name,"
            " Product_Name, ip_address, port, modbus_address, modbus_port, show_label_name, connection_type)"
            " VALUES (?, ?, 'Imported campus', 'Subnet 1', ?, ?, 'T3-BB', ?, 10000, 1, 502, ?, 'Ethernet')",
            (sn, d + 1, f"Level {d + 1}", f"Plant room {d + 1}", f"192.0.2.{d + 1}", device_label(d)))
        for kind, pid, index, digital, label, full, units in POINTS:
            t, idc, ixc = TABLES[kind]
            db.execute(
                f"INSERT INTO {t} (SerialNumber, {idc}, {ixc}, Panel, Full_Label, Label, Units, Range_Field,"
                " Digital_Analog, fValue) VALUES (?, ?, ?, ?, ?, ?, ?, '1', ?, '0')",
                (sn, pid, str(index), d + 1, full, label, units, "0" if digital else "1"))
            db.execute(
                "INSERT INTO TRENDLOG_DATA (SerialNumber, PanelId, PointId, PointIndex, PointType, Digital_Analog,"
                " Range_Field, Units) VALUES (?, ?, ?, ?, ?, ?, '1', ?)",
                (sn, d + 1, pid, index, kind, "0" if digital else "1", units))
        db.execute(
            "INSERT INTO TRENDLOGS (SerialNumber, PanelId, Trendlog_ID, Trendlog_Label, Interval_Seconds, Status)"
            " VALUES (?, ?, 'MON1', 'Temperatures', 300, 'ON')", (sn, d + 1))
        for kind, index in (("INPUT", "1"), ("INPUT", "2")):
            db.execute(
                "INSERT INTO TRENDLOG_INPUTS (SerialNumber, PanelId, Trendlog_ID, Point_Type, Point_Index, view_type)"
                " VALUES (?, ?, 'MON1', ?, ?, 'MAIN')", (sn, d + 1, kind, index))
    parents = db.execute("SELECT id, SerialNumber, PointId FROM TRENDLOG_DATA ORDER BY id").fetchall()
    rows = []
    for k in range(polls):
        t = logging_time(k)
        for parent, _, pid in parents:
            rows.append((parent, raw_value(point(pid), k, parent), t))
    db.executemany("INSERT INTO TRENDLOG_DATA_DETAIL (ParentId, Value, LoggingTime_Fmt) VALUES (?, ?, ?)", rows)
    db.commit()
    db.close()
    return parents, len(rows)


def point(pid):
    """The POINTS entry of a PointId ("IN1")."""
    return next(p for p in POINTS if p[1] == pid)


def logging_time(k):
    """Local time of poll k as WebView writes it: every 5 minutes from 2026-01-05 00:00 (no
    daylight saving change in between)."""
    return (FIRST_POLL + datetime.timedelta(minutes=5 * k)).strftime("%Y-%m-%d %H:%M:%S")


def raw_value(p, k, parent):
    """The Value text WebView stores: T3000's number, analog values x 1000; a digital input or
    output 0 / 1000, a digital variable 0 / 1."""
    kind, digital = p[0], p[3]
    if digital:
        return str((k % 2) * (1 if kind == "VARIABLE" else 1000))
    return str(20_000 + (k * 37 + parent * 11) % 5000)


def stored_value(p, raw):
    """The value the historian must hold for a raw Value: / 1000, except a digital variable's."""
    return float(raw) if p[0] == "VARIABLE" and p[3] else float(raw) / 1000


def manifest(parents, rows, polls):
    """What the import must store, per series (see the module's doc)."""
    series = []
    shown = sorted({0, 1, polls // 2, polls - 1} & set(range(polls)))
    for parent, sn, pid in parents:
        p = point(pid)
        values = [stored_value(p, raw_value(p, k, parent)) for k in range(polls)]
        series.append({
            "device": f"{device_label(sn - SERIAL0)} {sn}",
            "point": pid,
            "count": polls,
            "first": logging_time(0),
            "last": logging_time(polls - 1),
            "sum_milli": sum(round(v * 1000) for v in values),
            "samples": [[logging_time(k), values[k]] for k in shown],
        })
    return {"rows": rows, "series": series}


if __name__ == "__main__":
    out, devices, polls = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    parents, rows = build(out, devices, polls)
    print(json.dumps(manifest(parents, rows, polls)) if "--json" in sys.argv[4:] else rows)
