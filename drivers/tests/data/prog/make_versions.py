#!/usr/bin/env python3
"""Builds version-7 and version-8 .prog files from a real version-6 one, as T3000's SaveBacnetBinaryFile lays
them out: version 7 appends 3 multi-state value blocks (Str_MSV: 8 x (status u8, name char[20], value u16)),
version 8 then appends 8 weekly routine flag blocks (Str_schedual_time_flag: u8 Time_flag[8][9]).
No real version-7 or version-8 file is published in Temco's repositories; the rest of the bytes are the real
version-6 file's. Usage: make_versions.py V6_FILE V7_OUT V8_OUT
"""
import struct
import sys


def msv_block(names):
    out = b""
    for i in range(8):
        name = names[i] if i < len(names) else ""
        status = 1 if name else 0
        out += struct.pack("<B20sH", status, name.encode("latin-1"), i if name else 0)
    assert len(out) == 184
    return out


def main(v6, v7_out, v8_out):
    data = open(v6, "rb").read()
    assert data[:3] == b"\x55\xff\x06" and len(data) == 66056, "needs a real version-6 file"
    msv = msv_block(["OFF", "LOW", "HIGH"]) + msv_block(["Auto", "Manual"]) + msv_block([])
    v7 = b"\x55\xff\x07" + data[3:] + msv
    flags = b""
    for routine in range(8):
        # flags[event][day]: routine r marks event r % 8 on every day type
        flags += bytes(1 if (event == routine % 8) else 0 for event in range(8) for _day in range(9))
    v8 = b"\x55\xff\x08" + data[3:] + msv + flags
    open(v7_out, "wb").write(v7)
    open(v8_out, "wb").write(v8)


if __name__ == "__main__":
    main(*sys.argv[1:4])
