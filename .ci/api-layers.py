#!/usr/bin/env python3
"""Fails if the server crate's lower layers reach into the layers above them.

Usage: api-layers.py <api crate>/src

The server crate (api/src) has four layers, each using only the ones below it:
  cli/      the `t3000` binary: command line, composition root, tools
  http/     axum: router, AppState, ApiError, handlers, WebSocket
  service/  the server's long-running parts (explicit dependencies, own error types)
  model/    what the catalog stores and the API shows (records, their checks)

This script checks what module-cycles.py cannot see (a dependency that goes one way only is not a
cycle): that no file under model/ or service/ names
- axum (HTTP belongs to http/), or the HTTP side's `AppState`, `ApiError` or `ApiResult`;
- a module of a layer above it (`crate::http`, `crate::cli`; from model/ also `crate::service`).
Comments and string literals are ignored (a doc comment may say what the layer does not use).

Exit status: 0 when the layers hold, 1 naming each file, line and name that breaks them, 2 on bad
usage.
"""

import importlib.util
import re
import sys
from pathlib import Path

# The comment and string blanking of module-cycles.py (one parser of Rust's lexical rules).
_spec = importlib.util.spec_from_file_location("module_cycles", Path(__file__).with_name("module-cycles.py"))
_cycles = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_cycles)
strip = _cycles.strip

# Names no file of a lower layer may use, anywhere in its code.
HTTP_NAMES = re.compile(r"(?<![\w$])(axum|AppState|ApiError|ApiResult)\b")


def upper_layers(layer):
    """The paths a file of `layer` must not name."""
    above = ["http", "cli"] + (["service"] if layer == "model" else [])
    return re.compile(rf"(?<![\w:$])(?:\$?crate)\s*::\s*({'|'.join(above)})\b")


def check(src):
    """Every (file, line, what) under src/model and src/service that breaks the layers."""
    src = Path(src)
    found = []
    for layer in ("model", "service"):
        upper = upper_layers(layer)
        for f in sorted((src / layer).rglob("*.rs")):
            code = strip(f.read_text(encoding="utf-8"))
            for pattern, why in ((HTTP_NAMES, "HTTP's"), (upper, "a layer above")):
                for m in pattern.finditer(code):
                    line = code.count("\n", 0, m.start()) + 1
                    found.append((f.relative_to(src), line, f"{m.group(0)} ({why}, in {layer}/)"))
    return found


def main(argv):
    if len(argv) != 1 or argv[0].startswith("-"):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    src = Path(argv[0])
    if not (src / "model").is_dir() or not (src / "service").is_dir():
        print(f"{src}: no model/ and service/ folders", file=sys.stderr)
        return 2
    found = check(src)
    for f, line, what in found:
        print(f"{src}/{f}:{line}: names {what}")
    if found:
        print(
            f"{src}: model/ and service/ must not use axum, AppState, ApiError or the layers above them; "
            "map a service's error to ApiError in http/error.rs and pass what a service needs as an argument",
        )
        return 1
    print(f"{src}: model/ and service/ use no HTTP and no layer above them")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
