#!/usr/bin/env python3
"""Self-test of module-cycles.py: tiny crates written to a temporary folder, with and without a cycle."""

import subprocess
import sys
import tempfile
import textwrap
import unittest
from pathlib import Path

SCRIPT = Path(__file__).with_name("module-cycles.py")


def check(files):
    """Writes `files` ({path under src/: text}) and runs the script on them: (exit status, output)."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        for rel, text in files.items():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            (src / rel).write_text(textwrap.dedent(text))
        r = subprocess.run([sys.executable, SCRIPT, str(src)], capture_output=True, text=True)
        return r.returncode, r.stdout + r.stderr


class ModuleCycles(unittest.TestCase):
    def assert_cycle(self, files, cycle, among="crate"):
        status, out = check(files)
        self.assertEqual(status, 1, out)
        self.assertIn(f"import cycle among the modules of {among}: {cycle}", out)

    def test_layers_without_a_cycle_pass(self):
        # Parents use their children and children their parents (`super::`, the root's re-export):
        # one layer. Comments, strings and external crates name nothing.
        status, out = check({
            "lib.rs": """
                pub mod engine;
                pub mod query;
                pub use engine::Storage;
                pub struct Error;
            """,
            "engine/mod.rs": """
                mod read;
                use crate::query::{plan::Plan, Answer};
                use std::collections::HashMap;
                pub struct Storage(HashMap<u32, Answer>);
                fn f() -> crate::Error { read::g(); crate::Error }
            """,
            "engine/read.rs": """
                use super::Storage;
                pub(super) fn g() { let _ = super::super::query::plan::Plan; }
            """,
            "query/mod.rs": """
                pub mod plan;
                pub struct Answer;
                // Not a reference: crate::engine::Storage
                const NOTE: &str = "crate::engine::Storage {";
                const BRACE: char = '{';
            """,
            "query/plan.rs": """
                use super::Answer;
                use crate::Error;
                pub struct Plan;
                fn f<'a>(x: &'a str) -> &'a str { let _ = r#"crate::engine"#; x }
            """,
        })
        self.assertEqual(status, 0, out)
        self.assertIn("no import cycle", out)

    def test_a_cycle_between_siblings_fails(self):
        self.assert_cycle({
            "lib.rs": "mod a;\nmod b;\n",
            "a.rs": "pub struct A;\nfn f(_: crate::b::B) {}\n",
            "b.rs": "use crate::a::A;\npub struct B;\n",
        }, "a -> b -> a")

    def test_a_reexport_is_followed_to_the_defining_module(self):
        # query names `crate::Storage`, which is engine's: engine -> query -> engine.
        self.assert_cycle({
            "lib.rs": "pub mod engine;\npub mod query;\npub use engine::Storage;\n",
            "engine/mod.rs": "use crate::query::Answer;\npub struct Storage;\n",
            "query/mod.rs": "mod direct;\npub struct Answer;\n",
            "query/direct.rs": "fn f(_: &crate::Storage) {}\n",
        }, "engine -> query -> engine")

    def test_a_cycle_inside_a_folder_fails(self):
        # Children of query using each other through `super::` and a nested use tree.
        self.assert_cycle({
            "lib.rs": "mod query;\n",
            "query/mod.rs": "mod direct;\nmod plan;\npub struct Other;\n",
            "query/plan.rs": "use super::{direct::Reader, Other};\npub struct Plan;\n",
            "query/direct.rs": "pub struct Reader;\nfn f() { let _ = super::plan::Plan; }\n",
        }, "direct -> plan -> direct", among="query")

    def test_test_modules_count(self):
        self.assert_cycle({
            "lib.rs": "mod a;\nmod b;\n",
            "a.rs": "pub struct A;\n#[cfg(test)]\nmod tests {\n    use super::*;\n    use crate::b::B;\n}\n",
            "b.rs": "pub struct B(crate::a::A);\n",
        }, "a -> b -> a")

    def test_a_glob_import_counts(self):
        self.assert_cycle({
            "lib.rs": "mod a;\nmod b;\n",
            "a.rs": "use crate::b::*;\npub struct A;\n",
            "b.rs": "pub struct B;\nfn f() { let _ = crate::a::A; }\n",
        }, "a -> b -> a")

    def test_usage(self):
        r = subprocess.run([sys.executable, SCRIPT], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)


if __name__ == "__main__":
    unittest.main()
