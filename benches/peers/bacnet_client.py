"""The Python integrator's baseline of the `bacnet` benchmark (benches/src/bin/bacnet.rs): a
bacpypes3 client reading every object's present-value and status-flags from one device, pass
after pass, for a fixed time.

    python bacnet_client.py '{"device": "127.0.0.1:47901", "objects": ["analog-input,1", ...],
                              "mode": "rpm" | "rp", "requests": 4, "warmup": 1.0, "duration": 4.0,
                              "device_pid": 1234}'

- rpm: each pass reads all objects with `Application.read_property_multiple`, the objects cut
  into `requests` consecutive chunks of (nearly) equal size, one request per chunk, one request
  at a time (the benchmark passes the number of requests our plugin needed per pass).
- rp: each pass reads `present-value`, then `status-flags` of every object with
  `Application.read_property`, one request at a time.

Object identifiers and property identifiers are parsed once, before the first pass. The client
is its own bacpypes3 `Application` (device instance 4194000) on 127.0.0.1, a free UDP port.
Passes run back to back from the start; the measured window runs from the end of the first
pass to end after `warmup` seconds to the end of the first pass to end `duration` seconds later. Prints one JSON line: passes, points, requests, property errors and failures, secs,
its own CPU seconds and the device process's (from /proc/DEVICE_PID/stat) over the window, the
duration of each measured pass (µs), its peak RSS, versions.
"""

import argparse
import asyncio
import json
import os
import platform
import resource
import socket
import sys
import time

import bacpypes3
from bacpypes3.apdu import ErrorPDU, ErrorRejectAbortNack
from bacpypes3.app import Application
from bacpypes3.basetypes import ErrorType
from bacpypes3.primitivedata import ObjectIdentifier, PropertyIdentifier


def free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def device_cpu_secs(pid):
    """User + system CPU seconds of the device process, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def chunks(items, n):
    """`items` cut into `n` consecutive chunks of nearly equal size."""
    n = max(1, min(n, len(items)))
    size, extra = divmod(len(items), n)
    out, start = [], 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        out.append(items[start:end])
        start = end
    return out


async def main():
    cfg = json.loads(sys.argv[1])
    ns = argparse.Namespace(
        vendoridentifier=999,
        instance=4194000,
        name="t3000 bench client",
        address=f"127.0.0.1:{free_udp_port()}",
        foreign=None,
        network=0,
        bbmd=None,
        ttl=30,
    )
    app = Application.from_args(ns)
    address = cfg["device"]
    objects = [ObjectIdentifier(o) for o in cfg["objects"]]
    pv = PropertyIdentifier("present-value")
    sf = PropertyIdentifier("status-flags")
    n = len(objects)
    # property_errors: a property the device answered with an error (binary-value,1 of the test
    # device has no status-flags: unknown-property); failures: requests without a usable answer.
    counts = {"requests": 0, "property_errors": 0, "failures": 0}
    first = {}

    def note(kind, what, value):
        counts[kind] += 1
        first.setdefault(kind, f"{what}: {value}")

    if cfg["mode"] == "rpm":
        batches = []
        for chunk in chunks(objects, int(cfg["requests"])):
            params = []
            for o in chunk:
                params.extend([o, [pv, sf]])
            batches.append((params, len(chunk)))

        async def one_pass():
            for params, expected in batches:
                counts["requests"] += 1
                try:
                    results = await app.read_property_multiple(address, params)
                except (ErrorRejectAbortNack, Exception) as e:
                    note("failures", "read_property_multiple", repr(e))
                    continue
                if len(results) != 2 * expected:
                    note("failures", "read_property_multiple", f"{len(results)} results for {expected} objects")
                for obj, prop, _index, value in results:
                    if isinstance(value, ErrorType):
                        note("property_errors", f"{obj} {prop}", f"{value.errorClass}: {value.errorCode}")
                    elif value is None or isinstance(value, ErrorRejectAbortNack):
                        note("property_errors", f"{obj} {prop}", value)

    else:

        async def one_pass():
            for o in objects:
                for prop in (pv, sf):
                    counts["requests"] += 1
                    try:
                        value = await app.read_property(address, o, prop)
                    except ErrorPDU as e:
                        note("property_errors", f"{o} {prop}", e)
                        continue
                    except (ErrorRejectAbortNack, Exception) as e:
                        note("failures", f"{o} {prop}", repr(e))
                        continue
                    if value is None:
                        note("failures", f"{o} {prop}", "no value")

    warmup_end = time.monotonic() + cfg["warmup"]
    while time.monotonic() < warmup_end:
        await one_pass()
    start = counts.copy()
    t0 = time.monotonic()
    cpu0 = time.process_time()
    dev0 = device_cpu_secs(cfg["device_pid"])
    end = t0 + cfg["duration"]
    passes, latencies = 0, []
    while True:
        a = time.monotonic()
        await one_pass()
        b = time.monotonic()
        passes += 1
        latencies.append(round((b - a) * 1e6))
        if b >= end:
            break
    secs = time.monotonic() - t0
    cpu = time.process_time() - cpu0
    dev = device_cpu_secs(cfg["device_pid"]) - dev0
    app.close()
    out = {
        "passes": passes,
        "points": passes * n,
        "requests": counts["requests"] - start["requests"],
        "property_errors": counts["property_errors"] - start["property_errors"],
        "failures": counts["failures"],
        "first_property_error": first.get("property_errors", ""),
        "first_failure": first.get("failures", ""),
        "secs": secs,
        "cpu_secs": cpu,
        "device_cpu_secs": dev,
        "latencies_us": latencies,
        "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "version": f"bacpypes3 {bacpypes3.__version__} on Python {platform.python_version()}",
    }
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main())
