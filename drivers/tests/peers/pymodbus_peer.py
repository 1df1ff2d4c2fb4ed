#!/usr/bin/env python3
"""A Modbus server we did not write, for the drivers' integration tests (drivers/tests/peer.rs).

Runs a pymodbus 3.x server (pinned below 4 by .ci/run) over Modbus TCP or over Modbus RTU on a serial
device (one end of a socat pty pair), with a datastore described by a JSON file:

    {
      "unit": 1,
      "log_reads": false,
      "holding": [SEGMENT, ...], "input": [SEGMENT, ...],
      "coils": [BITS, ...], "discrete_inputs": [BITS, ...]
    }

    SEGMENT is {"address": A, "words": [w, ...]}: the words as given, or
               {"address": A, "pack": FMT, "value": V, "order": "ABCD", "scale": S}: V (times S, rounded, for the
               integer formats) packed by Python's struct module, FMT being one struct format character
               (h H i I q Q f d) or "Ns" for N bytes of Latin-1 text. Its bytes are laid over the registers in
               the word order, computed here independently of the Rust codec: ABCD big-endian, DCBA
               struct.pack("<") (fully little-endian), CDAB the big-endian words in reverse order, BADC the
               bytes of each big-endian word swapped. Text is never word-reversed (two characters per
               register, high byte first unless the order swaps bytes).
    BITS    is {"address": A, "bits": [true, false, ...]}.

Later segments overwrite earlier ones, so a test can zero-fill a range and then place values in it. Addresses
are protocol addresses (what a request carries). An address that no segment covers answers exception 02.

Standard output carries one JSON object per line:
    {"event": "ready", "port": P}                       (TCP, once listening; P is the bound port)
    {"event": "ready", "device": PATH}                  (RTU, once the serial device is open)
    {"event": "write", "fc": 6, "address": A, "values": [...]}   (every write the server accepts)
    {"event": "read", "fc": 3, "address": A, "count": N}         (with "log_reads": true)
The process exits when its standard input closes, so it never outlives the test that started it.

Usage: pymodbus_peer.py --spec FILE (--tcp PORT | --rtu DEVICE [--baud 19200] [--parity N|E|O])
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import struct
import sys
import threading
import traceback

try:
    import pymodbus
    from pymodbus import FramerType
    from pymodbus.server import ModbusSerialServer, ModbusTcpServer
    from pymodbus.simulator import DataType, SimData, SimDevice
except ImportError as exc:  # pragma: no cover - a setup problem, reported to the test
    sys.exit(f"pymodbus 3.x with pymodbus.simulator.SimDevice is needed (run the tests through .ci/run): {exc}")

INT_FORMATS = set("bBhHiIqQ")
ORDERS = ("ABCD", "CDAB", "BADC", "DCBA")


def emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def swap_bytes(words: list[int]) -> list[int]:
    return [((w & 0xFF) << 8) | (w >> 8) for w in words]


def be_words(data: bytes) -> list[int]:
    if len(data) % 2:
        data += b"\0"
    return [(data[i] << 8) | data[i + 1] for i in range(0, len(data), 2)]


def pack_segment(seg: dict) -> list[int]:
    """The registers of one "pack" segment."""
    fmt = seg["pack"]
    order = seg.get("order", "ABCD").upper()
    if order not in ORDERS:
        raise ValueError(f"unknown word order {order!r}")
    value = seg["value"]
    if fmt.endswith("s"):
        raw = struct.pack(f">{fmt}", value.encode("latin-1"))
        words = be_words(raw)
        return swap_bytes(words) if order in ("BADC", "DCBA") else words
    scale = seg.get("scale", 1)
    if scale != 1:
        value = value * scale
    if fmt in INT_FORMATS:
        value = int(round(value))
    if order == "DCBA":
        return be_words(struct.pack(f"<{fmt}", value))
    words = be_words(struct.pack(f">{fmt}", value))
    if order == "CDAB":
        words.reverse()
    elif order == "BADC":
        words = swap_bytes(words)
    return words


def register_table(segments: list[dict]) -> list[SimData]:
    """SimData blocks (one per contiguous run) for holding or input registers."""
    cells: dict[int, int] = {}
    for seg in segments:
        words = seg["words"] if "words" in seg else pack_segment(seg)
        for i, w in enumerate(words):
            if not 0 <= w <= 0xFFFF:
                raise ValueError(f"word {w} at {seg['address'] + i} is not 16-bit")
            cells[seg["address"] + i] = w
    if not cells:
        # pymodbus needs one block per table; an invalid register answers exception 02 like no register.
        return [SimData(0, count=1, datatype=DataType.INVALID)]
    blocks: list[SimData] = []
    run_start, run = None, []
    for addr in sorted(cells):
        if run_start is not None and addr == run_start + len(run):
            run.append(cells[addr])
            continue
        if run:
            blocks.append(SimData(run_start, values=run, datatype=DataType.REGISTERS))
        run_start, run = addr, [cells[addr]]
    blocks.append(SimData(run_start, values=run, datatype=DataType.REGISTERS))
    return blocks


def bit_table(segments: list[dict]) -> list[SimData]:
    """One SimData block of bits (pymodbus fills gaps between bits with False)."""
    cells: dict[int, bool] = {}
    for seg in segments:
        for i, b in enumerate(seg["bits"]):
            cells[seg["address"] + i] = bool(b)
    if not cells:
        # pymodbus needs one block per table: 16 false bits at the top of the address space.
        return [SimData(65520, values=[False] * 16, datatype=DataType.BITS)]
    start, end = min(cells), max(cells) + 1
    return [SimData(start, values=[cells.get(a, False) for a in range(start, end)], datatype=DataType.BITS)]


async def serve(args: argparse.Namespace, spec: dict) -> None:
    log_reads = bool(spec.get("log_reads", False))

    async def action(fc, _start, address, count, _registers, set_values):
        if set_values is not None:
            values = [bool(v) if fc in (5, 15) else int(v) for v in set_values]
            emit({"event": "write", "fc": fc, "address": address, "values": values})
        elif log_reads:
            emit({"event": "read", "fc": fc, "address": address, "count": count})
        return None

    device = SimDevice(
        id=int(spec.get("unit", 1)),
        simdata=(
            bit_table(spec.get("coils", [])),
            bit_table(spec.get("discrete_inputs", [])),
            register_table(spec.get("holding", [])),
            register_table(spec.get("input", [])),
        ),
        action=action,
    )
    if args.tcp is not None:
        server = ModbusTcpServer(device, framer=FramerType.SOCKET, address=("127.0.0.1", args.tcp))
        await server.serve_forever(background=True)
        port = server.transport.sockets[0].getsockname()[1]
        emit({"event": "ready", "port": port, "pymodbus": pymodbus.__version__})
    else:
        server = ModbusSerialServer(
            device,
            framer=FramerType.RTU,
            port=args.rtu,
            baudrate=args.baud,
            parity=args.parity,
            bytesize=8,
            stopbits=1,
        )
        await server.serve_forever(background=True)
        emit({"event": "ready", "device": args.rtu, "pymodbus": pymodbus.__version__})
    await asyncio.Event().wait()


def exit_when_stdin_closes() -> None:
    def watch() -> None:
        while sys.stdin.buffer.read(4096):
            pass
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--spec", required=True, help="JSON file describing the datastore")
    link = p.add_mutually_exclusive_group(required=True)
    link.add_argument("--tcp", type=int, metavar="PORT", help="serve Modbus TCP on 127.0.0.1:PORT (0: any port)")
    link.add_argument("--rtu", metavar="DEVICE", help="serve Modbus RTU on this serial device")
    p.add_argument("--baud", type=int, default=19200)
    p.add_argument("--parity", choices=["N", "E", "O"], default="N")
    args = p.parse_args()
    with open(args.spec, encoding="utf-8") as f:
        spec = json.load(f)
    exit_when_stdin_closes()
    try:
        asyncio.run(serve(args, spec))
    except BaseException:  # noqa: BLE001 - report, then leave without waiting for the stdin thread
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)


if __name__ == "__main__":
    main()
