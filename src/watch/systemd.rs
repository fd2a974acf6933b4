//! systemd readiness: `READY=1` on `$NOTIFY_SOCKET` (sd_notify(3)) for `Type=notify` units.

use std::ffi::OsStr;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::Path;

/// Tell systemd that the daemon is up, if it is listening. A failure is only a warning: the
/// daemon works without it, and systemd reports a unit that never gets ready.
pub fn notify_ready() {
    let Some(socket) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(sock) = UnixDatagram::unbound() else {
        return;
    };
    if let Err(e) = send_ready(&sock, &socket) {
        tracing::warn!("sd_notify READY=1 failed: {e}");
    }
}

/// Send `READY=1` from `sock` to `socket`: a path, or an abstract name written `@name`.
pub fn send_ready(sock: &UnixDatagram, socket: &OsStr) -> std::io::Result<()> {
    let bytes = socket.as_encoded_bytes();
    if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        sock.send_to_addr(b"READY=1", &SocketAddr::from_abstract_name(name)?)?;
    } else {
        sock.send_to(b"READY=1", Path::new(socket))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::linux::net::SocketAddrExt;

    fn received(listener: &UnixDatagram) -> String {
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn ready_reaches_a_socket_path() {
        let path = std::env::temp_dir().join(format!("nc-notify-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = UnixDatagram::bind(&path).unwrap();
        send_ready(&UnixDatagram::unbound().unwrap(), path.as_os_str()).unwrap();
        assert_eq!(received(&listener), "READY=1");
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn ready_reaches_an_abstract_socket() {
        let name = format!("nc-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let listener = UnixDatagram::bind_addr(&addr).unwrap();
        send_ready(
            &UnixDatagram::unbound().unwrap(),
            OsStr::new(&format!("@{name}")),
        )
        .unwrap();
        assert_eq!(received(&listener), "READY=1");
    }

    #[test]
    fn nobody_listening_is_an_error_not_a_panic() {
        let path = std::env::temp_dir().join("nc-notify-nobody-listens.sock");
        assert!(send_ready(&UnixDatagram::unbound().unwrap(), path.as_os_str()).is_err());
    }
}
