#!/usr/bin/env python3
"""Fails if the modules of a Rust crate's src/ tree import each other in a cycle.

Usage: module-cycles.py [--graph] <crate>/src

The graph:
- A module is a file (`a.rs`, `a/b.rs`), a folder's `mod.rs` (which stands for the folder), the
  crate root (`lib.rs`, else `main.rs`; `src/bin/` holds other crates and is skipped) or an inline
  `mod name { ... }` (such as a `#[cfg(test)] mod tests`: test code counts like any other).
- A reference is a path starting with `crate::`, `$crate::`, `super::` or `self::` anywhere in the
  code, or a path in a `use` declaration (relative ones too, e.g. `pub use engine::Storage` in
  lib.rs). Comments and string literals are ignored. A path names the deepest module it reaches;
  re-exports and glob imports are followed to the module that defines the item, so `crate::Storage`
  (re-exported by lib.rs) is a reference to the module that defines `Storage`.
- A module's references to its own ancestors or descendants are not edges: a folder module and the
  modules under it are one layer, and its children may use what it defines or re-exports (`super::`)
  just as it uses them.
- Every other reference, from module A to module B, is an edge between the two siblings under their
  closest common ancestor that contain A and B: `engine::read` -> `query::direct` is the edge
  `engine` -> `query` in the crate root. What must not exist is a cycle among the children of any one
  module (e.g. `engine` -> `query` -> `engine`, or `query::plan` -> `query::direct` -> `query::plan`).

Exit status: 0 without a cycle, 1 naming each cycle and the references that make it, 2 on bad usage.
With --graph, the edges between siblings are printed as well.
"""

import re
import sys
from pathlib import Path

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
CHAR_LITERAL = re.compile(r"'(?:\\(?:x[0-9a-fA-F]{2}|u\{[0-9a-fA-F]{1,6}\}|.)|[^\\'\n])'")
RAW_STRING = re.compile(r'b?r(#*)"')
# One alternative per construct, tried left to right at each position: a whole `use` declaration
# (so the braces of a use tree are not counted as blocks), an inline module, an item definition,
# a braced block, or a path.
TOKEN = re.compile(
    rf"""(?P<use>\b(?:pub\s*(?:\([^)]*\))?\s*)?use\s+(?P<tree>[^;]+);)
      | (?P<mod>\bmod\s+(?P<modname>{IDENT})\s*\{{)
      | (?P<item>\b(?:fn|struct|enum|union|trait|type|const|static|macro_rules!)\s+(?P<itemname>{IDENT}))
      | (?P<open>\{{) | (?P<close>\}})
      | (?P<path>(?<![\w:])(?:\$crate|crate|super|self)(?:\s*::\s*{IDENT})+)""",
    re.VERBOSE,
)


def strip(text):
    """The code with comments, string and character literals blanked out (newlines kept)."""
    out = []
    i, n = 0, len(text)

    def blank(s):
        out.append(re.sub(r"[^\n]", " ", s))

    while i < n:
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            blank(text[i:j])
            i = j
        elif text.startswith("/*", i):
            depth, j = 0, i
            while j < n:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                    if depth == 0:
                        break
                else:
                    j += 1
            blank(text[i:j])
            i = j
        elif (m := RAW_STRING.match(text, i)) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            end = text.find('"' + m.group(1), m.end())
            j = n if end < 0 else end + 1 + len(m.group(1))
            blank(text[i:j])
            i = j
        elif text[i] == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            blank(text[i : j + 1])
            i = j + 1
        elif text[i] == "'" and (m := CHAR_LITERAL.match(text, i)):
            blank(m.group(0))
            i = m.end()
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def use_paths(tree):
    """The paths of a use tree: `a::{b, c::d as e, f::*}` -> (["a","b"], "b"), (["a","c","d"], "e"),
    (["a","f","*"], None)."""
    tokens = re.findall(rf"\$?{IDENT}|::|[{{}},*]", tree)
    pos = 0

    def parse(prefix):
        nonlocal pos
        out = []
        segs = list(prefix)
        while pos < len(tokens):
            t = tokens[pos]
            if t == "{":
                pos += 1
                while pos < len(tokens) and tokens[pos] != "}":
                    if tokens[pos] == ",":
                        pos += 1
                        continue
                    out += parse(segs)
                pos += 1
                return out
            if t == "*":
                pos += 1
                return out + [(segs + ["*"], None)]
            if t == "::":
                pos += 1
                continue
            if t in (",", "}"):
                break
            pos += 1
            if t == "as":
                name = tokens[pos]
                pos += 1
                return out + [(segs, None if name == "_" else name)]
            if t == "self" and segs:
                continue
            segs = segs + [t]
        return out + [(segs, segs[-1] if segs else None)] if segs != list(prefix) else out

    return parse([])


class Crate:
    def __init__(self, src):
        self.src = Path(src)
        self.modules = set()  # module paths, as tuples of names; () is the crate root
        self.imports = {}  # module -> {name: (segments, line)} from its `use` declarations
        self.globs = {}  # module -> [segments] of its glob imports
        self.items = {}  # module -> names it defines
        self.refs = []  # (module, file, line, segments, in_use)
        roots = [p for p in ("lib.rs", "main.rs") if (self.src / p).is_file()]
        if not roots:
            raise SystemExit(f"{src}: no lib.rs or main.rs")
        files = {(): self.src / roots[0]}
        for f in sorted(self.src.rglob("*.rs")):
            rel = f.relative_to(self.src).with_suffix("").parts
            if rel in (("lib",), ("main",)) or rel[0] == "bin":
                continue
            files[rel[:-1] if rel[-1] == "mod" else rel] = f
        self.modules.update(files)
        for module, f in files.items():
            self.parse(module, f)

    def parse(self, module, path):
        code = strip(path.read_text(encoding="utf-8"))
        stack = [(module, 0)]  # (module, brace depth at which its items sit)
        depth = 0
        for m in TOKEN.finditer(code):
            line = code.count("\n", 0, m.start()) + 1
            cur, item_depth = stack[-1]
            if m.group("mod"):
                depth += 1
                inner = cur + (m.group("modname"),)
                self.modules.add(inner)
                stack.append((inner, depth))
            elif m.group("open"):
                depth += 1
            elif m.group("close"):
                if len(stack) > 1 and depth == stack[-1][1]:
                    stack.pop()
                depth -= 1
            elif m.group("item"):
                if depth == item_depth:
                    self.items.setdefault(cur, set()).add(m.group("itemname"))
            elif m.group("use"):
                for segs, name in use_paths(m.group("tree")):
                    if not segs:
                        continue
                    if depth == item_depth:
                        if segs[-1] == "*":
                            self.globs.setdefault(cur, []).append(segs[:-1])
                        elif name:
                            self.imports.setdefault(cur, {})[name] = segs
                    self.refs.append((cur, path, line, segs, True))
            elif m.group("path"):
                segs = [s.strip() for s in m.group("path").split("::")]
                self.refs.append((cur, path, line, segs, False))

    def resolve(self, cur, segs, hops=0):
        """The deepest module `segs` (a path written in module `cur`) reaches; None for a path into
        another crate."""
        i, m = 0, cur
        if segs[0] in ("crate", "$crate"):
            i, m = 1, ()
        elif segs[0] == "self":
            i = 1
        while i < len(segs) and segs[i] == "super":
            i, m = i + 1, m[:-1]
        if i == 0 and cur + (segs[0],) not in self.modules and segs[0] not in self.imports.get(cur, {}):
            return None  # an external crate (or a name only a glob brings in: not followed)
        for k in range(i, len(segs)):
            s = segs[k]
            if s == "*":
                break
            if m + (s,) in self.modules:
                m = m + (s,)
                continue
            if hops > 20 or s in self.items.get(m, ()):
                break
            imported = self.imports.get(m, {}).get(s)
            if imported is not None:
                target = self.resolve(m, imported + segs[k + 1 :], hops + 1)
                return m if target is None else target
            for glob in self.globs.get(m, []):
                g = self.resolve(m, glob, hops + 1)
                if g is not None and g != m and (g + (s,) in self.modules or s in self.items.get(g, ()) or s in self.imports.get(g, {})):
                    return self.resolve(g, ["self"] + segs[k:], hops + 1)
            break
        return m

    def sibling_edges(self):
        """{parent module: {(child a, child b): [(file, line, path), ...]}}."""
        edges = {}
        for cur, path, line, segs, _ in self.refs:
            target = self.resolve(cur, segs)
            if target is None:
                continue
            common = 0
            while common < min(len(cur), len(target)) and cur[common] == target[common]:
                common += 1
            if common == len(cur) or common == len(target):
                continue  # itself, an ancestor or a descendant
            parent = cur[:common]
            key = (cur[common], target[common])
            where = (path.relative_to(self.src), line, "::".join(segs))
            edges.setdefault(parent, {}).setdefault(key, []).append(where)
        return edges


def cycles(edges):
    """The cycles of a graph {(a, b): ...}: for each strongly connected component of more than one
    node (Tarjan), its nodes and a shortest cycle through its first node."""
    graph = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
        graph.setdefault(b, set())
    index, low, stack, on_stack, comps = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    out = []
    for comp in comps:
        # Breadth first from the component's first node until an edge leads back to it.
        start, members = comp[0], set(comp)
        prev, queue, cycle = {start: None}, [start], None
        while queue and cycle is None:
            v = queue.pop(0)
            for w in sorted(graph[v] & members):
                if w == start:
                    path = [v]
                    while prev[path[-1]] is not None:
                        path.append(prev[path[-1]])
                    cycle = list(reversed(path)) + [start]
                    break
                if w not in prev:
                    prev[w] = v
                    queue.append(w)
        out.append((comp, cycle))
    return out


def name(module):
    return "crate" if not module else "::".join(module)


def main(argv):
    args = [a for a in argv if not a.startswith("--")]
    if len(args) != 1 or any(a not in ("--graph",) for a in argv if a.startswith("--")):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    crate = Crate(args[0])
    edges = crate.sibling_edges()
    if "--graph" in argv:
        for parent in sorted(edges):
            print(f"in {name(parent)}:")
            by_source = {}
            for a, b in edges[parent]:
                by_source.setdefault(a, []).append(b)
            for a in sorted(by_source):
                print(f"  {a} -> {', '.join(sorted(by_source[a]))}")
    found = 0
    for parent in sorted(edges):
        for comp, cycle in cycles(edges[parent]):
            found += 1
            print(f"{args[0]}: import cycle among the modules of {name(parent)}: {' -> '.join(cycle)}")
            if len(comp) > len(cycle) - 1:
                print(f"  (the cycle is part of a larger one through {', '.join(comp)})")
            for a, b in zip(cycle, cycle[1:]):
                refs = edges[parent][(a, b)]
                print(f"  {a} -> {b}: {len(refs)} reference(s), e.g.")
                for file, line, path in refs[:3]:
                    print(f"    {file}:{line}: {path}")
    if found:
        return 1
    print(f"{args[0]}: {len(crate.modules)} modules, no import cycle")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
