"""Builds a T3000 WebView database for the browser test of the WebView import: WebView's real
schema (tests/data/webview/webview_t3_device_schema.sql, copied from temcocontrols/T3000Webview)
executed as it is, filled with DEVICES devices of 7 points each and POLLS polls of history (one
TRENDLOG_DATA_DETAIL row per point per poll, values as T3000's raw text, local times).

usage: python3 webview_db.py OUT.db DEVICES POLLS
Prints the number of detail rows."""
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


def main(out, devices, polls):
    if os.path.exists(out):
        os.remove(out)
    db = sqlite3.connect(out)
    db.executescript(open(SCHEMA, encoding="utf-8").read())
    for d in range(devices):
        sn = 200_000 + d
        db.execute(
            "INSERT INTO DEVICES (SerialNumber, PanelId, MainBuilding_Name, Building_Name, Floor_Name, Room_Name,"
            " Product_Name, ip_address, port, modbus_address, modbus_port, show_label_name, connection_type)"
            " VALUES (?, ?, 'Imported campus', 'Subnet 1', ?, ?, 'T3-BB', ?, 10000, 1, 502, ?, 'Ethernet')",
            (sn, d + 1, f"Level {d + 1}", f"Plant room {d + 1}", f"192.0.2.{d + 1}", f"RTU-{d + 1}"))
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
    parents = db.execute("SELECT id, PointId FROM TRENDLOG_DATA ORDER BY id").fetchall()
    rows = []
    # Polls every 5 minutes from 2026-01-05 00:00 local time (no daylight saving change in between).
    for k in range(polls):
        minutes = k * 5
        day, rest = divmod(minutes, 24 * 60)
        t = f"2026-01-{5 + day:02d} {rest // 60:02d}:{rest % 60:02d}:00"
        for parent, pid in parents:
            digital = next(p for p in POINTS if p[1] == pid)[3]
            value = str((k % 2) * 1000) if digital else str(20_000 + (k * 37 + parent * 11) % 5000)
            rows.append((parent, value, t))
    db.executemany("INSERT INTO TRENDLOG_DATA_DETAIL (ParentId, Value, LoggingTime_Fmt) VALUES (?, ?, ?)", rows)
    db.commit()
    db.close()
    print(len(rows))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
