//! The systemd readiness protocol (`Type=notify`): `READY=1` once the server listens, `STOPPING=1`
//! when it begins to shut down, sent as one datagram to the unix socket named by `$NOTIFY_SOCKET`
//! (a path, or an abstract name written with a leading `@`). Without the variable nothing is sent.

use std::ffi::OsStr;
use std::io;

/// Sends `state` (`KEY=value` lines) to systemd when it asked for notifications; a failure is
/// logged, never fatal (the server serves either way).
pub(super) fn notify(state: &str) {
    let Some(socket) = std::env::var_os("NOTIFY_SOCKET") else { return };
    if let Err(e) = send(&socket, state) {
        tracing::warn!(error = %e, socket = %socket.to_string_lossy(), state, "could not notify systemd");
    }
}

#[cfg(not(unix))]
fn send(_: &OsStr, _: &str) -> io::Result<()> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "systemd notifications need unix sockets"))
}

#[cfg(unix)]
use std::os::unix::net::UnixDatagram;

#[cfg(unix)]
fn send(socket: &OsStr, state: &str) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let sock = UnixDatagram::unbound()?;
    match socket.as_bytes().strip_prefix(b"@") {
        Some(name) => send_abstract(&sock, name, state),
        None => sock.send_to(state.as_bytes(), std::path::Path::new(socket)).map(drop),
    }
}

#[cfg(target_os = "linux")]
fn send_abstract(sock: &UnixDatagram, name: &[u8], state: &str) -> io::Result<()> {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
    sock.send_to_addr(state.as_bytes(), &addr).map(drop)
}

#[cfg(all(unix, not(target_os = "linux")))]
fn send_abstract(_: &UnixDatagram, _: &[u8], _: &str) -> io::Result<()> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "abstract unix sockets exist on Linux only"))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_datagram_reaches_a_socket_path_and_an_abstract_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let rx = UnixDatagram::bind(&path).unwrap();
        send(path.as_os_str(), "READY=1").unwrap();
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");

        use std::os::linux::net::SocketAddrExt;
        let name = format!("t3000-notify-test-{}", std::process::id());
        let rx = UnixDatagram::bind_addr(&std::os::unix::net::SocketAddr::from_abstract_name(&name).unwrap()).unwrap();
        send(OsStr::new(&format!("@{name}")), "STOPPING=1").unwrap();
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1");

        assert!(send(dir.path().join("nobody").as_os_str(), "READY=1").is_err());
    }
}
