//! Running kernel work inside a named network namespace.
//!
//! A netlink socket, a `/dev/net/tun` file and a `/proc/sys/net` access all act in the network
//! namespace of the *thread* that makes them. Switching the caller's thread would leak the
//! namespace into whatever else runs there (a multi-threaded tokio runtime moves tasks between
//! threads), so the work runs on a dedicated thread that enters the namespace once and carries
//! its own single-threaded runtime. Everything the closure's future does — spawned tasks
//! included — stays on that thread. Blocking helpers such as `tokio::fs` or `spawn_blocking`
//! run on *other* threads and therefore in the caller's namespace: use `std::fs` from inside.

use std::fs::File;
use std::future::Future;
use std::os::fd::AsRawFd;

use crate::error::KernelError;

/// Where named network namespaces live (`ip netns add` bind-mounts them here).
pub const NETNS_DIR: &str = "/run/netns";

/// Run `f()` to completion on a new thread, inside the network namespace `/run/netns/NAME`
/// when `netns` is `Some(NAME)` (else in the caller's namespace), on a current-thread tokio
/// runtime with IO and timers enabled.
///
/// Blocks the calling thread until the future is done; from async code wrap the call in
/// `tokio::task::spawn_blocking`. A panic inside `f` is propagated to the caller.
pub fn run_in_netns<F, Fut, T>(netns: Option<&str>, f: F) -> Result<T, KernelError>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
    T: Send + 'static,
{
    // Open the namespace file before spawning so that a missing namespace is reported without
    // starting a thread; the fd moves into the thread.
    let ns_file = match netns {
        Some(name) => Some(open_netns(name)?),
        None => None,
    };
    let ns_name = netns.map(str::to_string);
    let thread = std::thread::Builder::new()
        .name(match &ns_name {
            Some(n) => format!("netns-{n}"),
            None => "netns-self".to_string(),
        })
        .spawn(move || -> Result<T, KernelError> {
            if let (Some(file), Some(name)) = (ns_file, ns_name.as_deref()) {
                enter_netns(&file, name)?;
            }
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| {
                    let hint = format!("could not build a tokio runtime: {e}");
                    KernelError::io("start", "async runtime", e).with_hint(hint)
                })?;
            Ok(runtime.block_on(f()))
        })
        .map_err(|e| {
            let hint = format!("could not spawn a thread: {e}");
            KernelError::io("start", "namespace thread", e).with_hint(hint)
        })?;
    match thread.join() {
        Ok(result) => result,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Open `/run/netns/NAME`, refusing names that would escape the directory.
/// Check a `--netns` name before anything is created for it: a file name (no `/`, not `.` or
/// `..`) that is an entry of `/run/netns`. Lock and state paths are built from the name, so
/// `../../x` must never get that far.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(format!(
            "`{name}` is not a namespace name: a name as `ip netns add` takes it (an entry of {NETNS_DIR}, without `/`)"
        ));
    }
    if std::fs::symlink_metadata(format!("{NETNS_DIR}/{name}")).is_err() {
        return Err(format!(
            "there is no network namespace `{name}` ({NETNS_DIR}/{name} does not exist; `ip netns list` shows them)"
        ));
    }
    Ok(())
}

fn open_netns(name: &str) -> Result<File, KernelError> {
    let object = format!("network namespace {name}");
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(
            KernelError::new("enter", object, Some(libc::EINVAL)).with_hint(format!(
                "`{name}` is not a namespace name (a file name in {NETNS_DIR})"
            )),
        );
    }
    let path = format!("{NETNS_DIR}/{name}");
    File::open(&path).map_err(|e| {
        let err = KernelError::io("enter", object, e);
        match err.errno {
            Some(libc::ENOENT) => {
                err.with_hint(format!("network namespace {name} not found ({path})"))
            }
            Some(libc::EACCES) | Some(libc::EPERM) => {
                err.with_hint(format!("cannot open {path}: needs root"))
            }
            _ => err.with_hint(format!("cannot open {path}")),
        }
    })
}

/// Move the current thread into the namespace behind `file`.
fn enter_netns(file: &File, name: &str) -> Result<(), KernelError> {
    // SAFETY: plain syscall on an fd we own; it only changes this thread's namespace.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc == 0 {
        return Ok(());
    }
    let err = KernelError::io(
        "enter",
        format!("network namespace {name}"),
        std::io::Error::last_os_error(),
    );
    Err(match err.errno {
        Some(libc::EPERM) => {
            err.with_hint("entering a network namespace needs CAP_SYS_ADMIN (run as root)")
        }
        Some(libc::EINVAL) => err.with_hint(format!(
            "{NETNS_DIR}/{name} is not a network namespace (is it mounted? see `ip netns list`)"
        )),
        _ => err,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_in_own_namespace_without_name() {
        let v = run_in_netns(None, || async { 40 + 2 }).unwrap();
        assert_eq!(v, 42);
    }

    #[test]
    fn runtime_can_spawn_tasks() {
        let v = run_in_netns(None, || async { tokio::spawn(async { 7 }).await.unwrap() }).unwrap();
        assert_eq!(v, 7);
    }

    #[test]
    fn missing_namespace_names_the_path() {
        let name = format!("nc-missing-{}", std::process::id());
        let err = run_in_netns(Some(&name), || async {}).unwrap_err();
        assert_eq!(err.errno, Some(libc::ENOENT));
        let text = err.to_string();
        assert!(
            text.contains(&format!(
                "network namespace {name} not found (/run/netns/{name})"
            )),
            "{text}"
        );
    }

    #[test]
    fn rejects_path_like_names() {
        for bad in ["", "..", "a/b", "."] {
            let err = run_in_netns(Some(bad), || async {}).unwrap_err();
            assert_eq!(err.errno, Some(libc::EINVAL), "{bad}");
        }
    }

    #[test]
    #[should_panic(expected = "inside")]
    fn panics_propagate() {
        let _ = run_in_netns(None, || async { panic!("inside") });
    }
}
