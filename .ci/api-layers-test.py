#!/usr/bin/env python3
"""Self-test of api-layers.py: tiny src/ trees written to a temporary folder, with and without a
lower layer that reaches up."""

import subprocess
import sys
import tempfile
import textwrap
import unittest
from pathlib import Path

SCRIPT = Path(__file__).with_name("api-layers.py")

CLEAN = {
    "lib.rs": "pub mod cli;\npub mod http;\npub mod model;\npub mod service;\n",
    "model/mod.rs": """
        //! No axum, no `AppState`, no `ApiError` here.
        pub mod place;
    """,
    "model/place.rs": """
        use serde::Serialize;
        #[derive(Serialize, utoipa::ToSchema)]
        pub struct Building { pub id: i64 }
        const NOTE: &str = "crate::http::AppState and axum::Json";
    """,
    "service/mod.rs": "pub mod control;\n",
    "service/control.rs": """
        use crate::model::place::Building;
        /* axum::http::StatusCode is HTTP's */
        #[derive(Debug, thiserror::Error)]
        pub enum ControlError { #[error("no")] No }
        pub fn f(_: &Building) -> Result<(), ControlError> { Ok(()) }
    """,
    "http/mod.rs": """
        use axum::Router;
        pub struct AppState;
        pub struct ApiError;
        impl From<crate::service::control::ControlError> for ApiError { fn from(_: crate::service::control::ControlError) -> Self { ApiError } }
    """,
    "cli/mod.rs": "use crate::http::AppState;\n",
}


def check(changes):
    """Writes the clean tree with `changes` ({path under src/: text}) and runs the script on it:
    (exit status, output)."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        for rel, text in {**CLEAN, **changes}.items():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            (src / rel).write_text(textwrap.dedent(text))
        r = subprocess.run([sys.executable, SCRIPT, str(src)], capture_output=True, text=True)
        return r.returncode, r.stdout + r.stderr


class ApiLayers(unittest.TestCase):
    def assert_broken(self, changes, where, name):
        status, out = check(changes)
        self.assertEqual(status, 1, out)
        self.assertIn(where, out)
        self.assertIn(f"names {name}", out)

    def test_layers_that_hold_pass(self):
        # HTTP and cli use the layers below; model and service mention HTTP only in comments and
        # strings.
        status, out = check({})
        self.assertEqual(status, 0, out)
        self.assertIn("use no HTTP", out)

    def test_axum_in_a_service_fails(self):
        self.assert_broken(
            {"service/control.rs": "use axum::http::StatusCode;\npub fn f() -> StatusCode { StatusCode::OK }\n"},
            "service/control.rs:1:",
            "axum",
        )

    def test_app_state_in_a_service_fails(self):
        self.assert_broken(
            {"service/control.rs": "pub fn f(state: &crate::http::AppState) {}\n"},
            "service/control.rs:1:",
            "AppState",
        )

    def test_api_error_in_the_model_fails(self):
        self.assert_broken(
            {"model/place.rs": "\n\npub fn check(name: &str) -> Result<(), ApiError> { Ok(()) }\n"},
            "model/place.rs:3:",
            "ApiError",
        )

    def test_a_layer_above_fails(self):
        # The model must not use a service; a service must not use the HTTP side or the binary.
        self.assert_broken({"model/place.rs": "use crate::service::control::f;\n"}, "model/place.rs:1:", "crate::service")
        self.assert_broken({"service/control.rs": "fn f() { crate::cli::main(); }\n"}, "service/control.rs:1:", "crate::cli")
        self.assert_broken(
            {"service/mod.rs": "pub mod control;\nuse crate::http::routes::json_body;\n"}, "service/mod.rs:2:", "crate::http"
        )

    def test_usage(self):
        r = subprocess.run([sys.executable, SCRIPT], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)


if __name__ == "__main__":
    unittest.main()
