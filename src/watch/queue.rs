//! The daemon's queue of triggers. Each trigger is stamped with the time it was sent, so the
//! debounce counts its quiet time from when an event happened, not from when the daemon,
//! busy with a pass, got round to it: an edit made during a pass is applied a debounce after
//! the edit, not a debounce after the pass.

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::trigger::Trigger;

/// Where trigger sources send (cheap to clone, one per source).
#[derive(Clone, Debug)]
pub struct Sender(mpsc::UnboundedSender<(Trigger, Instant)>);

/// The daemon's end of the queue.
#[derive(Debug)]
pub struct Receiver(mpsc::UnboundedReceiver<(Trigger, Instant)>);

/// The daemon is gone: nobody receives any more.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the daemon stopped receiving triggers")]
pub struct Closed;

/// A new queue.
pub fn channel() -> (Sender, Receiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Sender(tx), Receiver(rx))
}

impl Sender {
    /// Queue `t`, stamped with the time now.
    pub fn send(&self, t: Trigger) -> Result<(), Closed> {
        self.0.send((t, Instant::now())).map_err(|_| Closed)
    }

    /// True once the daemon is gone.
    pub fn is_closed(&self) -> bool {
        self.0.is_closed()
    }
}

impl Receiver {
    /// The next trigger and when it was sent; `None` once every sender is gone.
    pub async fn recv_stamped(&mut self) -> Option<(Trigger, Instant)> {
        self.0.recv().await
    }

    /// The next trigger; `None` once every sender is gone.
    pub async fn recv(&mut self) -> Option<Trigger> {
        self.recv_stamped().await.map(|(t, _)| t)
    }

    /// A trigger already queued and when it was sent, if there is one.
    pub fn try_recv_stamped(&mut self) -> Option<(Trigger, Instant)> {
        self.0.try_recv().ok()
    }

    /// A trigger already queued, if there is one.
    pub fn try_recv(&mut self) -> Option<Trigger> {
        self.try_recv_stamped().map(|(t, _)| t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn a_trigger_keeps_the_time_it_was_sent_however_late_it_is_read() {
        let (tx, mut rx) = channel();
        let sent = Instant::now();
        tx.send(Trigger::File).unwrap();
        tokio::time::advance(Duration::from_millis(70)).await;
        tx.send(Trigger::Kernel).unwrap();
        tokio::time::advance(Duration::from_millis(30)).await;
        assert_eq!(rx.recv_stamped().await, Some((Trigger::File, sent)));
        assert_eq!(
            rx.recv_stamped().await,
            Some((Trigger::Kernel, sent + Duration::from_millis(70)))
        );
        assert_eq!(rx.try_recv(), None);
    }

    #[tokio::test]
    async fn sending_fails_and_reads_end_once_the_other_side_is_gone() {
        let (tx, rx) = channel();
        assert!(!tx.is_closed());
        drop(rx);
        assert!(tx.is_closed());
        assert_eq!(tx.send(Trigger::Stop), Err(Closed));
        let (tx, mut rx) = channel();
        tx.send(Trigger::Retry).unwrap();
        drop(tx);
        assert_eq!(rx.recv().await, Some(Trigger::Retry));
        assert_eq!(rx.recv().await, None);
    }
}
