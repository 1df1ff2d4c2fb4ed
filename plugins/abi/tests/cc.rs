//! Running the system's C and C++ compilers from tests.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The folder of this crate: `t3000_plugin.h` is in it.
pub fn abi_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The folder of the C example plugin.
pub fn example_dir() -> PathBuf {
    abi_dir().join("../example-c")
}

/// The C compiler: `$CC`, else `cc`. Panics (with a reason) when there is none: the tests of the
/// header and of the C example cannot run without one.
pub fn c_compiler() -> String {
    let cc = std::env::var("CC").ok().filter(|s| !s.trim().is_empty()).unwrap_or_else(|| "cc".to_owned());
    match Command::new(&cc).arg("--version").output() {
        Ok(out) if out.status.success() => cc,
        other => panic!("these tests need a C compiler: `{cc} --version` gave {other:?} (set $CC)"),
    }
}

/// The C++ compiler, `$CXX` else `c++`, or none (with a note printed) when it is missing.
pub fn cxx_compiler() -> Option<String> {
    let cxx = std::env::var("CXX").ok().filter(|s| !s.trim().is_empty()).unwrap_or_else(|| "c++".to_owned());
    match Command::new(&cxx).arg("--version").output() {
        Ok(out) if out.status.success() => Some(cxx),
        _ => {
            eprintln!("note: no C++ compiler (`{cxx}`), the C++ checks of t3000_plugin.h are skipped");
            None
        }
    }
}

/// Runs `compiler args..`, panicking with its output when it fails.
pub fn compile(compiler: &str, args: &[&str]) {
    let out = Command::new(compiler).args(args).output().unwrap_or_else(|e| panic!("cannot run {compiler}: {e}"));
    assert!(
        out.status.success(),
        "`{compiler} {}` failed ({}):\n{}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `program`, returning its standard output; panics when it fails.
pub fn run(program: &Path) -> String {
    let out = Command::new(program).output().unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    assert!(
        out.status.success(),
        "{} failed ({}):\n{}{}",
        program.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// `path` as a `&str` for a command line.
pub fn arg(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}
