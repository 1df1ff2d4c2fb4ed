//! Running the server as a service: the systemd unit (checked by `systemd-analyze verify`), the
//! readiness notification it relies on, `t3000 healthcheck`, the container image (built from
//! scratch and run with podman), and the log files (rotation, request lines, no secrets).
//! `systemd-analyze`, podman and runc must be installed (`.ci/run` does): without them these tests
//! fail.

use serde_json::{Value, json};
use std::fs::File;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use t3_tests::*;

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

/// Runs an external tool to completion, failing the test (never skipping it) when it is missing.
fn tool(cmd: &mut Command) -> std::process::Output {
    cmd.stdin(Stdio::null()).output().unwrap_or_else(|e| {
        panic!("cannot run {cmd:?} ({e}): install it (.ci/run does: apt-get install podman runc systemd)")
    })
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    let unit = std::fs::read_to_string(repo_file("deploy/t3000.service")).expect("deploy/t3000.service");
    for line in [
        "Type=notify",
        "User=t3000",
        "Restart=on-failure",
        "LimitNOFILE=",
        "ProtectSystem=strict",
        "StateDirectory=t3000",
        "NoNewPrivileges=yes",
    ] {
        assert!(unit.lines().any(|l| l.starts_with(line)), "the unit has no `{line}` line");
    }
    // `verify` checks that the ExecStart binary exists: the copy points at the binary under test,
    // and differs from the unit in that one line only.
    let exec = "ExecStart=/usr/local/bin/t3000 ";
    assert_eq!(unit.matches(exec).count(), 1, "one ExecStart of /usr/local/bin/t3000");
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("t3000.service");
    std::fs::write(&copy, unit.replace(exec, &format!("ExecStart={} ", binary().display()))).unwrap();
    let out = tool(Command::new("systemd-analyze").arg("verify").arg("--man=no").arg(&copy));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "systemd-analyze verify failed ({}):\n{stderr}", out.status);
    // Unknown keys and bad values are warnings with exit status 0: none is allowed either.
    assert!(stderr.trim().is_empty() && out.stdout.is_empty(), "systemd-analyze verify warns:\n{stderr}");

    // The check itself sees a wrong key.
    std::fs::write(
        &copy,
        unit.replace(exec, &format!("ExecStart={} ", binary().display())).replace("ProtectSystem=", "ProtectSystm="),
    )
    .unwrap();
    let out = tool(Command::new("systemd-analyze").arg("verify").arg("--man=no").arg(&copy));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ProtectSystm"), "a misspelt key went unnoticed");
}

/// A server started by hand with `NOTIFY_SOCKET` pointing at a datagram socket of the test.
struct Notified {
    child: std::process::Child,
    socket: UnixDatagram,
    _tmp: tempfile::TempDir,
}

impl Notified {
    fn start() -> Notified {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket.set_read_timeout(Some(START_TIMEOUT)).unwrap();
        let config = tmp.path().join("t3000.toml");
        std::fs::write(&config, config_text(&tmp.path().join("data"), "")).unwrap();
        let child = command()
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .env("NOTIFY_SOCKET", &path)
            .stdout(File::create(tmp.path().join("stdout")).unwrap())
            .stderr(File::create(tmp.path().join("stderr")).unwrap())
            .spawn()
            .expect("spawn t3000");
        Notified { child, socket, _tmp: tmp }
    }

    /// The next notification (waits at most `START_TIMEOUT`).
    fn next(&self) -> String {
        let mut buf = [0u8; 4096];
        let n = self.socket.recv(&mut buf).unwrap_or_else(|e| panic!("no notification from t3000: {e}"));
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }
}

impl Drop for Notified {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn readiness_reaches_systemd_once_the_server_listens_and_stopping_at_sigterm() {
    let mut server = Notified::start();
    let ready = server.next();
    let mut lines = ready.lines();
    assert_eq!(lines.next(), Some("READY=1"), "first notification: {ready:?}");
    let url = lines
        .find_map(|l| l.strip_prefix("STATUS=serving on "))
        .unwrap_or_else(|| panic!("no STATUS line with the address: {ready:?}"));
    // Ready means ready: the first request right after the notification is served.
    let health = reqwest::get(format!("{url}/healthz")).await.expect("GET /healthz after READY=1");
    assert_eq!(health.status(), StatusCode::OK);

    let pid = server.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    assert_eq!(server.next(), "STOPPING=1");
    let status = server.child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "exit status after SIGTERM");
}

#[tokio::test]
async fn healthcheck_exits_0_for_a_healthy_server_and_1_for_none() {
    let server = TestServer::start("");
    let ok = run(&["healthcheck", "--url", &server.url("")]);
    assert!(ok.status.success(), "healthcheck of a running server: {}{}", ok.stdout, ok.stderr);
    assert!(ok.stdout.starts_with("healthy: "), "{}", ok.stdout);
    // The address can come from the server's configuration (0.0.0.0 is asked on loopback).
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("t3000.toml");
    let port = server.addr().rsplit(':').next().unwrap().to_owned();
    // Only server.listen is read: a file the running server would refuse (a reload that was
    // refused leaves the server as it was) does not make it unhealthy.
    let refused = "[[devices]]\nname = \"x\"\nprotocol = \"modbus-tcp\"\nip_address = \"not an address\"\n";
    std::fs::write(&config, format!("[server]\nlisten = \"0.0.0.0:{port}\"\n{refused}")).unwrap();
    let ok = run(&["healthcheck", "--config", config.to_str().unwrap()]);
    assert!(ok.status.success(), "healthcheck --config: {}{}", ok.stdout, ok.stderr);
    assert_eq!(run(&["check-config", config.to_str().unwrap()]).status.code(), Some(2), "the file is invalid");

    let url = format!("http://127.0.0.1:{REFUSED_PORT}");
    let down = run(&["healthcheck", "--url", &url, "--timeout-secs", "2"]);
    assert_eq!(down.status.code(), Some(1), "healthcheck of no server: {}{}", down.stdout, down.stderr);
    assert!(down.stderr.contains("/healthz"), "{}", down.stderr);
    // Every failure is "unhealthy": exit 1, the status container runtimes read.
    let bad = run(&["healthcheck", "--url", "ftp://x"]);
    assert_eq!(bad.status.code(), Some(1), "{}", bad.stderr);
    std::fs::write(&config, "[server\n").unwrap();
    let bad = run(&["healthcheck", "--config", config.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(1), "{}", bad.stderr);
}

// ---- log files ----

/// The `[log]` section that writes a file in `dir`.
fn log_section(dir: &Path, format: &str, rotate: &str, keep: u32, level: &str) -> String {
    let file = dir.join("logs").join("t3000.log");
    format!(
        "[log]\nlevel = \"{level}\"\nformat = \"{format}\"\nfile = \"{}\"\nrotate = \"{rotate}\"\nkeep = {keep}\n",
        file.display()
    )
}

#[tokio::test]
async fn the_log_file_rotates_by_size_and_keeps_the_newest_files() {
    let logs = tempfile::tempdir().unwrap();
    let mut server = TestServer::start(&log_section(logs.path(), "text", "2KB", 2, "info"));
    for i in 0..60 {
        let r = server.get(&format!("/api/t3000/points?n={i}")).await;
        assert!(r.status.is_success() || r.status.is_client_error(), "{}", r.status);
    }
    server.stop();
    let file = logs.path().join("logs/t3000.log");
    let numbered = |n: u32| PathBuf::from(format!("{}.{n}", file.display()));
    for p in [file.clone(), numbered(1), numbered(2)] {
        let len = std::fs::metadata(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).len();
        assert!(len > 0 && len <= 2048, "{} holds {len} bytes (2KB rotation)", p.display());
    }
    assert!(!numbered(3).exists(), "more rotated files than `keep = 2`");
    // The newest line is in the current file: the end of the shutdown.
    let current = std::fs::read_to_string(&file).unwrap();
    assert!(current.contains("storage shut down"), "the last line is not in the current file:\n{current}");
    assert!(std::fs::read_to_string(numbered(1)).unwrap().contains("path=/api/t3000/points"));
}

#[test]
fn a_log_file_that_cannot_be_written_is_refused_at_start_naming_log_file() {
    let tmp = tempfile::tempdir().unwrap();
    // A regular file where the log folder should be: not even root can create the log file.
    std::fs::write(tmp.path().join("logs"), "").unwrap();
    let config = tmp.path().join("t3000.toml");
    std::fs::write(
        &config,
        config_text(&tmp.path().join("data"), &log_section(tmp.path(), "text", "daily", 3, "info")),
    )
    .unwrap();
    let out = run(&["serve", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "exit status: {}", out.stderr);
    assert!(out.stderr.contains("log.file") && out.stderr.contains("logs/t3000.log"), "{}", out.stderr);
    // A size the rotation cannot take is a configuration error of log.rotate.
    std::fs::write(&config, config_text(&tmp.path().join("data"), "[log]\nrotate = \"10TB\"")).unwrap();
    let out = run(&["check-config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stderr.contains("log.rotate"), "{}", out.stderr);
}

/// The JSON lines of the log file whose message is `request`.
fn request_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("a log line is not JSON ({e}): {l}")))
        .filter(|v| v["fields"]["message"] == "request")
        .collect()
}

#[tokio::test]
async fn request_lines_carry_user_and_request_id_and_no_secret_reaches_a_log() {
    let logs = tempfile::tempdir().unwrap();
    let server = TestServer::start(&log_section(logs.path(), "json", "daily", 3, "debug"));
    let anon = reqwest::Client::new();
    let post = reqwest::Method::POST;

    // Passwords: the admin's (TestServer logged in with it), a user's, a wrong one, a changed one.
    let (user_pw, wrong_pw, new_pw) = ("Pw-logtest-5f3a9c", "Wrong-pw-77aa1e", "New-pw-0c4d2b8e");
    let r = server
        .post_json("/api/t3000/users", &json!({ "username": "logtest", "password": user_pw, "role": "operator" }))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let login = |password: &'static str| json!({ "username": "logtest", "password": password });
    let r = server.call(&anon, post.clone(), "/api/t3000/auth/login", Some(&login(wrong_pw))).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    let session =
        server.call(&anon, post.clone(), "/api/t3000/auth/login", Some(&login(user_pw))).await.ok_json()["token"]
            .as_str()
            .unwrap()
            .to_owned();
    let user = client_with_token(&session);
    let r = server
        .call(
            &user,
            post.clone(),
            "/api/t3000/auth/password",
            Some(&json!({ "current_password": user_pw, "new_password": new_pw })),
        )
        .await;
    assert!(r.status.is_success(), "change password: {}", r.text());

    // Tokens: an API token in the header, in query strings, and a WebSocket ticket.
    let r = server.post_json("/api/t3000/tokens", &json!({ "name": "log-test" })).await;
    assert!(r.status.is_success(), "create token: {}", r.text());
    let api_token = r.json()["token"].as_str().expect("token").to_owned();
    let r = server
        .send(
            client_with_token(&api_token)
                .get(server.url("/api/t3000/devices"))
                .header("x-request-id", "deploy-test-42"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.headers["x-request-id"], "deploy-test-42", "the client's request id is returned");
    let r = server.call(&anon, reqwest::Method::GET, &format!("/api/t3000/ws?token={api_token}"), None).await;
    r.assert_error("token in the WebSocket URL", StatusCode::UNAUTHORIZED, Some("token_in_url"));
    let r = server.call(&anon, reqwest::Method::GET, &format!("/api/t3000/devices?token={session}"), None).await;
    assert!(r.status.is_client_error());
    let r = server.post_json("/api/t3000/ws/ticket", &json!({})).await;
    let ticket = r.ok_json()["ticket"].as_str().expect("ticket").to_owned();
    let _ = server.call(&anon, reqwest::Method::GET, &format!("/api/t3000/ws?ticket={ticket}"), None).await;
    let r = server.get("/api/t3000/points").await;
    let generated = r.headers["x-request-id"].to_str().unwrap().to_owned();
    assert!(generated.len() == 16, "a generated request id: {generated}");

    let mut server = server;
    server.stop();
    let file = std::fs::read_to_string(logs.path().join("logs/t3000.log")).expect("the log file");
    let stderr = server.stderr();
    let secrets = [ADMIN_PASSWORD, user_pw, wrong_pw, new_pw, &server.token, &session, &api_token, &ticket];
    for (name, text) in [("log file", &file), ("standard error", &stderr)] {
        for s in secrets {
            if let Some(line) = text.lines().find(|l| l.contains(s)) {
                panic!("the {name} holds the secret `{s}`:\n{line}");
            }
        }
    }

    // One line per request, with the method, the path (no query), status, latency, user and id.
    let lines = request_lines(&file);
    let find = |id: &str| {
        lines.iter().find(|v| v["span"]["request_id"] == id).unwrap_or_else(|| panic!("no request line with id {id}"))
    };
    let devices = find("deploy-test-42");
    assert_eq!(devices["span"]["method"], "GET");
    assert_eq!(devices["span"]["path"], "/api/t3000/devices");
    assert_eq!(devices["fields"]["status"], 200);
    assert_eq!(devices["fields"]["user"], "admin", "an API token acts as its user");
    assert!(devices["fields"]["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0), "{devices}");
    assert_eq!(find(&generated)["fields"]["user"], "admin");
    let password_change =
        lines.iter().find(|v| v["span"]["path"] == "/api/t3000/auth/password").expect("the password change line");
    assert_eq!(password_change["fields"]["user"], "logtest");
    let refused = lines
        .iter()
        .find(|v| v["span"]["path"] == "/api/t3000/ws" && v["fields"]["status"] == 401)
        .expect("the refused WebSocket line");
    assert_eq!(refused["fields"]["user"], "-", "no user for a refused request");
    // Standard error has the same lines.
    assert_eq!(request_lines(&stderr).len(), lines.len(), "standard error and the file differ");
}

// ---- the container image ----

/// podman with a storage of the test's own (no image or container of the machine's is touched)
/// and the settings that work in a sandboxed CI machine: the vfs storage driver (no overlay
/// mounts), runc with cgroupfs (crun refuses hybrid cgroup hierarchies, and no systemd runs) and
/// the events in a file (no journal).
struct Podman {
    store: tempfile::TempDir,
}

impl Podman {
    fn new() -> Podman {
        Podman { store: tempfile::tempdir().unwrap() }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("podman");
        let (root, run) = (self.store.path().join("root"), self.store.path().join("run"));
        let tmp = self.store.path().join("tmp");
        c.arg("--root").arg(root).arg("--runroot").arg(run).arg("--tmpdir").arg(tmp);
        c.args(["--storage-driver", "vfs", "--runtime", "runc", "--cgroup-manager", "cgroupfs"]);
        c.args(["--events-backend", "file"]).args(args);
        c
    }

    /// Runs podman with `args`; panics with its output unless it succeeds.
    fn ok(&self, args: &[&str]) -> String {
        let out = tool(&mut self.cmd(args));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "podman {args:?}: {}\n{text}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        text
    }

    /// The container's output so far (stdout and stderr).
    fn logs(&self, name: &str) -> String {
        let out = tool(&mut self.cmd(&["logs", name]));
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.cmd(&["rm", "--force", "--all"]).output();
        let _ = self.cmd(&["rmi", "--force", "--all"]).output();
    }
}

/// The shared libraries the binary loads (`ldd`), with the dynamic loader.
fn linked_libraries(bin: &Path) -> Vec<PathBuf> {
    let out = tool(Command::new("ldd").arg(bin));
    assert!(out.status.success(), "ldd {}: {}", bin.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            // `libc.so.6 => /lib/.../libc.so.6 (0x...)`, or the loader: `/lib64/ld-linux-x86-64.so.2 (0x...)`.
            let path = l.split_once("=> ").map_or(l, |(_, p)| p);
            path.starts_with('/').then(|| PathBuf::from(path.split(" (").next().unwrap()))
        })
        .collect()
}

/// The `rootfs/` of deploy/Containerfile.scratch: the binary, its libraries, the user, the
/// configuration, the data folder and /tmp.
fn fill_rootfs(rootfs: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let put = |to: &str, from: &Path| {
        let dest = rootfs.join(to.trim_start_matches('/'));
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(from, &dest).unwrap_or_else(|e| panic!("copy {} to {}: {e}", from.display(), dest.display()));
    };
    put("/usr/local/bin/t3000", &binary());
    let libs = linked_libraries(&binary());
    assert!(libs.iter().any(|l| l.to_string_lossy().contains("libc.so")), "ldd lists no libc: {libs:?}");
    for lib in &libs {
        put(&lib.to_string_lossy(), lib);
    }
    put("/etc/t3000/t3000.toml", &repo_file("deploy/container.toml"));
    let etc = rootfs.join("etc");
    std::fs::write(etc.join("passwd"), "t3000:x:10001:10001:T3000 historian:/var/lib/t3000:/usr/sbin/nologin\n")
        .unwrap();
    std::fs::write(etc.join("group"), "t3000:x:10001:\n").unwrap();
    std::fs::create_dir_all(rootfs.join("var/lib/t3000")).unwrap();
    std::fs::create_dir_all(rootfs.join("tmp")).unwrap();
    std::fs::set_permissions(rootfs.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
}

/// This process's limit as `soft:hard` for `podman run --ulimit`: podman's defaults raise the
/// limits, which needs CAP_SYS_RESOURCE, missing in sandboxes.
fn own_limit(name: &str) -> String {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("no `{name}` in {limits}"));
    let v: Vec<&str> = line[name.len()..].split_whitespace().collect();
    format!("{}:{}", v[0], v[1])
}

#[tokio::test]
async fn the_container_image_serves_healthz_and_stops_cleanly_on_sigterm() {
    let podman = Podman::new();
    let ctx = tempfile::tempdir().unwrap();
    fill_rootfs(&ctx.path().join("rootfs"));
    std::fs::copy(repo_file("deploy/Containerfile.scratch"), ctx.path().join("Containerfile")).unwrap();
    let image = "localhost/t3000-deploy-test";
    // The docker format keeps HEALTHCHECK (OCI images have no such field).
    podman.ok(&["build", "--format", "docker", "--tag", image, ctx.path().to_str().unwrap()]);

    // A named volume, as compose.yaml has: the image's data folder (and so the volume) belongs
    // to the image's user.
    let volume_name = "t3000-deploy-test-data";
    podman.ok(&["volume", "create", volume_name]);
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let name = "t3000-deploy-test";
    let volume = format!("{volume_name}:/var/lib/t3000");
    let listen = format!("T3000__SERVER__LISTEN=127.0.0.1:{port}");
    let admin = format!("T3000_ADMIN_PASSWORD={ADMIN_PASSWORD}");
    let nofile = format!("nofile={}", own_limit("Max open files"));
    podman.ok(&[
        "run",
        "--detach",
        "--name",
        name,
        "--network",
        "host",
        "--volume",
        &volume,
        "--env",
        &listen,
        "--env",
        &admin,
        "--ulimit",
        &nofile,
        "--ulimit",
        "nproc=4096:4096",
        image,
    ]);

    let started = Instant::now();
    while !podman.logs(name).contains("t3000 listening on") {
        assert!(started.elapsed() < START_TIMEOUT, "the container did not listen:\n{}", podman.logs(name));
        let state = podman.ok(&["inspect", "--format", "{{.State.Status}}", name]);
        assert_eq!(state.trim(), "running", "the container stopped:\n{}", podman.logs(name));
        std::thread::sleep(Duration::from_millis(200));
    }
    let base = format!("http://127.0.0.1:{port}");
    let health: Value = reqwest::get(format!("{base}/healthz")).await.unwrap().json().await.unwrap();
    assert_eq!(health["status"], "ok", "{health}");
    // The image's HEALTHCHECK (t3000 healthcheck inside the container).
    let out = podman.ok(&["healthcheck", "run", name]);
    assert!(!out.contains("unhealthy"), "{out}");
    // Data reaches the volume.
    let token = login_blocking(&base, "admin", ADMIN_PASSWORD).unwrap();
    let r = client_with_token(&token)
        .post(format!("{base}/api/t3000/samples"))
        .json(&samples_json(&[Sample::good(1, BASE_TS, 21.5)]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // `podman stop` sends the image's STOPSIGNAL (SIGTERM): a graceful stop, exit status 0.
    podman.ok(&["stop", "--time", "90", name]);
    let code = podman.ok(&["inspect", "--format", "{{.State.ExitCode}}", name]);
    let logs = podman.logs(name);
    assert_eq!(code.trim(), "0", "exit status of the container:\n{logs}");
    assert!(logs.contains("shutting down"), "no shutdown in the log:\n{logs}");
    use std::os::unix::fs::MetadataExt;
    let data = PathBuf::from(podman.ok(&["volume", "inspect", "--format", "{{.Mountpoint}}", volume_name]).trim());
    assert_eq!(std::fs::metadata(&data).unwrap().uid(), 10001, "the volume's owner");
    let written: Vec<_> = std::fs::read_dir(&data).unwrap().map(|e| e.unwrap()).collect();
    assert!(!written.is_empty(), "nothing in the data volume");
    for e in written {
        assert_eq!(e.metadata().unwrap().uid(), 10001, "{} is not the image user's", e.path().display());
    }
}
