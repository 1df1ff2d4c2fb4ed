#!/usr/bin/env python3
"""Reads named values from a T3000 .prog panel file with Python's struct module, independently of the Rust
parser, and prints them as JSON (the drivers' prog test compares them with what the parser produced).

Layout facts (T3000's SaveBacnetBinaryFile, ud_str.h, global_define.h): bytes 55 FF, a version byte, then
fixed blocks of packed little-endian records; see BLOCKS. Usage: read_prog.py FILE
"""
import json
import struct
import sys

# (name, count, record size) in file order after the 3-byte header.
BLOCKS = [
    ("inputs", 64, 46), ("outputs", 64, 45), ("variables", 128, 39), ("programs", 16, 37),
    ("pids", 16, 28), ("screens", 16, 46), ("graphic_labels", 240, 70), ("users", 8, 48),
    ("digital_units", 8, 25), ("analog_tables", 5, 105), ("settings", 1, 400),
    ("weekly", 8, 42), ("annual", 4, 33), ("monitors", 12, 104), ("weekly_times", 8, 144),
    ("annual_days", 4, 46), ("code", 16, 2000), ("variable_units", 5, 20),
]
V7 = [("msv", 3, 184)]
V8 = [("flags", 8, 72)]


def text(b):
    return b.split(b"\0")[0].decode("latin-1").strip()


def main(path):
    data = open(path, "rb").read()
    assert data[:2] == b"\x55\xff", "not a binary .prog"
    version = data[2]
    blocks = BLOCKS + (V7 if version >= 7 else []) + (V8 if version >= 8 else [])
    recs, at = {}, 3
    for name, count, size in blocks:
        recs[name] = [data[at + i * size: at + (i + 1) * size] for i in range(count)]
        at += count * size
    assert at == len(data), (at, len(data))

    out = {"version": version, "size": len(data)}
    s = recs["settings"][0]
    out["panel_name"] = text(s[52:72])
    out["panel_number"] = s[73]
    out["inputs"] = []
    for r in recs["inputs"]:
        (value,) = struct.unpack_from("<i", r, 30)
        filt, decom, _sid, _sp, _ctl, am, da, sign, _sn, cal_h, cal_l, rng = struct.unpack_from("<12B", r, 34)
        out["inputs"].append({"description": text(r[0:21]), "label": text(r[21:30]), "value": value,
                              "filter": filt, "decom": decom, "auto_manual": am, "digital_analog": da,
                              "calibration_tenths": (cal_h * 256 + cal_l) * (-1 if sign == 1 else 1),
                              "range": rng})
    out["outputs"] = []
    for r in recs["outputs"]:
        (value,) = struct.unpack_from("<i", r, 30)
        am, da, hw, _c, _dc, decom, rng = struct.unpack_from("<7B", r, 34)
        out["outputs"].append({"description": text(r[0:19]), "label": text(r[21:30]), "value": value,
                               "auto_manual": am, "digital_analog": da, "hw_switch": hw, "decom": decom,
                               "range": rng})
    out["variables"] = []
    for r in recs["variables"]:
        (value,) = struct.unpack_from("<i", r, 30)
        am, da, _c, _u, rng = struct.unpack_from("<5B", r, 34)
        out["variables"].append({"description": text(r[0:21]), "label": text(r[21:30]), "value": value,
                                 "auto_manual": am, "digital_analog": da, "range": rng})
    out["programs"] = []
    for r, code in zip(recs["programs"], recs["code"]):
        (size,) = struct.unpack_from("<H", r, 30)
        out["programs"].append({"description": text(r[0:21]), "label": text(r[21:30]), "bytes": size,
                                "on_off": r[32], "code_head": code[:8].hex()})
    out["weekly"] = []
    for r, t in zip(recs["weekly"], recs["weekly_times"]):
        # times: 9 day types x 8 events x (minutes, hours)
        days = [[[t[(d * 8 + e) * 2 + 1], t[(d * 8 + e) * 2]] for e in range(8)] for d in range(9)]
        out["weekly"].append({"description": text(r[0:21]), "label": text(r[21:30]), "auto_manual": r[31],
                              "override_1": list(r[36:39]), "override_2": list(r[39:42]), "days": days})
    out["annual"] = []
    for r, bits in zip(recs["annual"], recs["annual_days"]):
        days = [d + 1 for d in range(366) if bits[d // 8] >> (d % 8) & 1]
        out["annual"].append({"description": text(r[0:21]), "label": text(r[21:30]), "days": days})
    out["monitors"] = []
    for r in recs["monitors"]:
        points = [list(r[9 + i * 5: 14 + i * 5]) for i in range(14)]
        sec, mnt, hr, _max, num, an, status = struct.unpack_from("<7B", r, 93)
        out["monitors"].append({"label": text(r[0:9]), "inputs": points, "interval_seconds": hr * 3600 + mnt * 60 + sec,
                                "num_inputs": num, "an_inputs": an, "status": status})
    # Custom digital ranges 1-8 (range codes 23-30 of a digital point): direct flag, off and on texts.
    out["digital_units"] = [{"direct": r[0], "off": text(r[1:13]), "on": text(r[13:25])}
                            for r in recs["digital_units"]]
    # Custom analog tables 1-5 (input range codes 20-24): the name is the field's first 8 bytes.
    out["analog_tables"] = [text(r[0:8]) for r in recs["analog_tables"]]
    # Custom variable units 1-5 (variable range codes 34-38).
    out["variable_units"] = [text(r) for r in recs["variable_units"]]
    if version >= 7:
        out["msv"] = [[[r[i * 23], text(r[i * 23 + 1: i * 23 + 21]), struct.unpack_from("<H", r, i * 23 + 21)[0]]
                       for i in range(8)] for r in recs["msv"]]
    if version >= 8:
        out["flags"] = [list(r) for r in recs["flags"]]
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
