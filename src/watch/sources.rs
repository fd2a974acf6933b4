//! The daemon's other trigger sources: rtnetlink change notifications and the periodic resync.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::sleep;

use super::queue::Sender;
use super::trigger::Trigger;

/// Send [`Trigger::Kernel`] for each kernel notification (`events`, as from
/// `reconcilers::kernel::events::subscribe`), until either side closes.
pub fn kernel_events(mut events: mpsc::UnboundedReceiver<()>, tx: Sender) -> JoinHandle<()> {
    tokio::spawn(async move {
        while events.recv().await.is_some() {
            if tx.send(Trigger::Kernel).is_err() {
                break;
            }
        }
    })
}

/// Send [`Trigger::Resync`] every `period`, until the daemon is gone: the full resync covers
/// what has no events (sysctls).
///
/// The period counts from the last tick, not from a pass: a resync is a trigger like the
/// others and only asks for a pass.
pub fn resync_every(period: Duration, tx: Sender) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            sleep(period).await;
            if tx.send(Trigger::Resync).is_err() {
                break;
            }
        }
    })
}

/// How often [`namespace_gone`] looks at the namespace's mount.
pub const NAMESPACE_POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// The identity of `/run/netns/NAME` (device and inode of the namespace it names), `None`
/// when it does not exist.
pub fn namespace_id(name: &str) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(format!("/run/netns/{name}")).ok()?;
    Some((m.dev(), m.ino()))
}

/// Send [`Trigger::Gone`] once `/run/netns/NAME` no longer names the namespace `id` (deleted,
/// or recreated under the same name), checking every [`NAMESPACE_POLL`]. rtnetlink says
/// nothing when a namespace goes: its sockets live on in the orphaned namespace.
pub fn namespace_gone(name: String, id: (u64, u64), tx: Sender) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            sleep(NAMESPACE_POLL).await;
            if namespace_id(&name) != Some(id) {
                let _ = tx.send(Trigger::Gone);
                break;
            }
            if tx.is_closed() {
                break;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::{advance, Instant};

    #[tokio::test(start_paused = true)]
    async fn the_resync_ticks_every_period() {
        let period = Duration::from_secs(300);
        let (tx, mut rx) = crate::watch::queue::channel();
        let t0 = Instant::now();
        let task = resync_every(period, tx);
        for n in 1..=3 {
            assert_eq!(rx.recv().await, Some(Trigger::Resync));
            assert_eq!(t0.elapsed(), period * n);
        }
        advance(period - Duration::from_millis(1)).await;
        assert_eq!(rx.try_recv(), None, "no tick before the period is over");
        drop(rx);
        // The tick after the receiver is gone ends the task.
        task.await.unwrap();
        assert_eq!(t0.elapsed(), period * 4);
    }

    #[tokio::test(start_paused = true)]
    async fn each_kernel_notification_is_a_kernel_trigger() {
        let (events_tx, events) = mpsc::unbounded_channel();
        let (tx, mut rx) = crate::watch::queue::channel();
        let task = kernel_events(events, tx);
        for _ in 0..3 {
            events_tx.send(()).unwrap();
        }
        for _ in 0..3 {
            assert_eq!(rx.recv().await, Some(Trigger::Kernel));
        }
        drop(events_tx);
        task.await.unwrap();
        assert_eq!(rx.recv().await, None, "the forwarder was the last sender");
    }
}
