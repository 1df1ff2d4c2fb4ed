//! Builds the browser UI (`web/`, with npm) and embeds `web/dist` in the binary.
//!
//! `npm ci` runs when `web/node_modules` is missing or older than `package-lock.json`, then
//! `npm run build`, whenever a file of the UI changes. With `T3000_SKIP_UI_BUILD=1` npm is not run
//! and the existing `web/dist` is embedded (for machines without Node.js, given a `web/dist` built
//! elsewhere). The generated table lists every file with an ETag (a hash of its bytes).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let web = manifest.parent().expect("workspace root").join("web");
    let dist = web.join("dist");
    println!("cargo:rerun-if-env-changed=T3000_SKIP_UI_BUILD");
    if std::env::var_os("T3000_SKIP_UI_BUILD").is_some_and(|v| v != "0") {
        println!("cargo:rerun-if-changed={}", dist.display());
    } else {
        for input in
            ["src", "public", "index.html", "package.json", "package-lock.json", "vite.config.ts", "tsconfig.json"]
        {
            println!("cargo:rerun-if-changed={}", web.join(input).display());
        }
        if stale(&web.join("node_modules/.package-lock.json"), &web.join("package-lock.json")) {
            npm(&web, &["ci", "--no-audit", "--no-fund"]);
        }
        npm(&web, &["run", "build"]);
    }
    if !dist.join("index.html").is_file() {
        panic!(
            "{} is missing: build the UI with `cd web && npm ci && npm run build` (Node.js 20), or unset T3000_SKIP_UI_BUILD",
            dist.join("index.html").display()
        );
    }
    let mut files = Vec::new();
    walk(&dist, &mut files);
    files.sort();
    let mut out = String::from(
        "/// The UI's files: (path from `/`, content, ETag).\npub static ASSETS: &[(&str, &[u8], &str)] = &[\n",
    );
    for file in &files {
        let rel = file.strip_prefix(&dist).expect("under dist").to_string_lossy().replace('\\', "/");
        let bytes = std::fs::read(file).unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
        writeln!(
            out,
            "    ({:?}, include_bytes!({:?}), \"\\\"{:016x}\\\"\"),",
            format!("/{rel}"),
            file.display().to_string(),
            fnv1a(&bytes)
        )
        .expect("write to a String");
    }
    out.push_str("];\n");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    std::fs::write(out_dir.join("web_assets.rs"), out).expect("write web_assets.rs");
}

fn npm(dir: &Path, args: &[&str]) {
    let npm = if cfg!(windows) { "npm.cmd" } else { "npm" };
    let output = Command::new(npm).args(args).current_dir(dir).output().unwrap_or_else(|e| {
        panic!("cannot run `npm {}` in {} ({e}): the UI needs Node.js 20 and npm", args.join(" "), dir.display())
    });
    if !output.status.success() {
        panic!(
            "`npm {}` in {} failed ({}):\n{}\n{}",
            args.join(" "),
            dir.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// Whether `installed` (npm's record of what it installed) is missing or older than `lock`.
fn stale(installed: &Path, lock: &Path) -> bool {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    match (modified(installed), modified(lock)) {
        (Some(i), Some(l)) => i < l,
        _ => true,
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// 64-bit FNV-1a: enough to tell two versions of a file apart for caching.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}
