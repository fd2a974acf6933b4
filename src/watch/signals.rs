//! Signals as triggers: SIGHUP reloads, SIGTERM and SIGINT stop.
//!
//! A signal only queues its trigger; the daemon acts on it between passes, which is what lets
//! SIGTERM wait for the apply in progress instead of cutting it off.

use tokio::signal::unix::{signal, SignalKind};

use super::queue::Sender;
use super::trigger::Trigger;
use crate::pass::Failure;

/// The signals the daemon handles, and what each means.
pub const SIGNALS: [(SignalKind, Trigger); 3] = [
    (SignalKind::hangup(), Trigger::Reload),
    (SignalKind::terminate(), Trigger::Stop),
    (SignalKind::interrupt(), Trigger::Stop),
];

/// Handle every signal of [`SIGNALS`] from now on, sending its trigger on `tx`.
pub fn listen(tx: &Sender) -> Result<(), Failure> {
    for (kind, trigger) in SIGNALS {
        forward(kind, trigger, tx.clone())?;
    }
    Ok(())
}

/// Handle the signal `kind` from now on (its default action no longer applies), sending
/// `trigger` on `tx` each time it arrives.
pub fn forward(kind: SignalKind, trigger: Trigger, tx: Sender) -> Result<(), Failure> {
    let mut s =
        signal(kind).map_err(|e| Failure::Message(format!("cannot handle signals: {e}")))?;
    tokio::spawn(async move {
        while s.recv().await.is_some() {
            if tx.send(trigger).is_err() {
                break;
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    // Real signals to this test process, so not on a paused clock. SIGUSR1 rather than the
    // daemon's own: handling SIGTERM or SIGINT here would keep the test binary from dying
    // of them for the rest of the run.
    #[tokio::test]
    async fn each_signal_sends_its_trigger() {
        let (tx, mut rx) = crate::watch::queue::channel();
        forward(SignalKind::user_defined1(), Trigger::Reload, tx).unwrap();
        for _ in 0..2 {
            // SAFETY: raise(3) has no preconditions; SIGUSR1 is handled since `forward`.
            assert_eq!(unsafe { libc::raise(libc::SIGUSR1) }, 0);
            let got = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
            assert_eq!(got, Ok(Some(Trigger::Reload)));
        }
    }

    #[test]
    fn sighup_reloads_and_sigterm_and_sigint_stop() {
        let meaning = |signum: i32| {
            SIGNALS
                .iter()
                .find(|(k, _)| k.as_raw_value() == signum)
                .map(|(_, t)| *t)
        };
        assert_eq!(meaning(libc::SIGHUP), Some(Trigger::Reload));
        assert_eq!(meaning(libc::SIGTERM), Some(Trigger::Stop));
        assert_eq!(meaning(libc::SIGINT), Some(Trigger::Stop));
        assert_eq!(meaning(libc::SIGUSR1), None);
    }
}
