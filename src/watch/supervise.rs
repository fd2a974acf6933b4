//! Supervision: the daemon watches the dnsmasq instances it runs through their pidfds (from
//! `Kernel::service_pidfds`), so an instance that exits is noticed at once — a
//! [`Trigger::Kernel`] re-plans, finds it not running and starts it again — instead of at the
//! next resync. A crash loop is damped like any fight (see `super::fight`).

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use reconcilers::kernel::pidfd;

use super::queue::Sender;
use super::trigger::Trigger;

/// The instances being watched, by bridge.
#[derive(Debug, Default)]
pub struct Supervisor {
    watched: BTreeMap<String, (i32, Arc<OwnedFd>)>,
}

impl Supervisor {
    /// Watch the instances of `live` (bridge, pid, pidfd) that are not watched yet; forget
    /// those no longer live. An exit sends [`Trigger::Kernel`] on `tx`.
    pub fn update(&mut self, live: Vec<(String, i32, OwnedFd)>, tx: &Sender) {
        let mut next = BTreeMap::new();
        for (bridge, pid, fd) in live {
            if let Some((old, fd)) = self.watched.remove(&bridge) {
                if old == pid {
                    next.insert(bridge, (pid, fd));
                    continue;
                }
            }
            let fd = Arc::new(fd);
            let (waiting, tx, name) = (fd.clone(), tx.clone(), bridge.clone());
            // A thread per instance, blocked in poll(2) until it exits: there are a few
            // instances at most, and no async fd support is needed for it.
            let spawned = std::thread::Builder::new()
                .name(format!("pidfd-{pid}"))
                .spawn(move || {
                    if pidfd::wait_exit(&waiting).is_ok() {
                        tracing::warn!("dnsmasq for {name} (pid {pid}) exited");
                        let _ = tx.send(Trigger::Kernel);
                    }
                });
            match spawned {
                // Said at info level: it is the moment from which an exit is noticed at once.
                Ok(_) => tracing::info!("watching dnsmasq for {bridge} (pid {pid})"),
                Err(e) => tracing::error!("cannot watch dnsmasq for {bridge} (pid {pid}): {e}"),
            }
            next.insert(bridge, (pid, fd));
        }
        self.watched = next;
    }

    /// The pids being watched, by bridge.
    pub fn pids(&self) -> BTreeMap<String, i32> {
        self.watched
            .iter()
            .map(|(b, (pid, _))| (b.clone(), *pid))
            .collect()
    }

    /// SIGTERM every watched instance (the namespace they serve is gone).
    pub fn terminate_all(&mut self) {
        for (bridge, (pid, fd)) in std::mem::take(&mut self.watched) {
            match pidfd::signal(&fd, libc::SIGTERM) {
                Ok(()) => tracing::info!("stopped dnsmasq for {bridge} (pid {pid})"),
                Err(e) => tracing::error!("cannot stop dnsmasq for {bridge} (pid {pid}): {e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn an_exit_is_a_kernel_trigger_and_terminate_signals_by_pidfd() {
        let (tx, mut rx) = crate::watch::queue::channel();
        let mut s = Supervisor::default();
        let mut a = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let mut b = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let fd = |c: &std::process::Child| pidfd::open(c.id() as i32).unwrap();
        let (pa, pb) = (a.id() as i32, b.id() as i32);
        s.update(
            vec![("br0".into(), pa, fd(&a)), ("br1".into(), pb, fd(&b))],
            &tx,
        );
        // The same instance again is not watched twice.
        s.update(
            vec![("br0".into(), pa, fd(&a)), ("br1".into(), pb, fd(&b))],
            &tx,
        );
        assert_eq!(s.pids().len(), 2);
        a.kill().unwrap();
        a.wait().unwrap();
        // A guard against a hang, not a limit on how long it may take.
        let t = tokio::time::timeout(Duration::from_secs(60), rx.recv()).await;
        assert_eq!(t.unwrap(), Some(Trigger::Kernel));
        assert_eq!(rx.try_recv(), None, "one exit, one trigger");
        s.terminate_all();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(b.wait().unwrap().signal(), Some(libc::SIGTERM));
        assert!(s.pids().is_empty());
    }
}
