//! The monitor on tokio's paused clock with a fake prober: when a dead path is taken out of
//! service and when it comes back, what it tells the daemon and the metrics.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use reconcilers::providers::{Health, Provider, Providers};
use tokio::time::{sleep, Instant};

use super::probe::{Path, ProbeError, Prober};
use super::Monitor;
use crate::watch::metrics::{Metrics, ProviderLabel};
use crate::watch::queue::Receiver;
use crate::watch::trigger::Trigger;

/// A path that answers in 1 ms while `alive`, and lets probes time out otherwise.
#[derive(Default)]
pub(crate) struct FakePath {
    pub dead: AtomicBool,
    /// The marks probed, to check that probes take the provider's path.
    pub seen: std::sync::Mutex<Vec<(u32, String, Ipv4Addr, Ipv4Addr)>>,
}

impl Prober for Arc<FakePath> {
    fn probe(
        &self,
        path: &Path,
        target: Ipv4Addr,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Duration, ProbeError>> {
        self.seen
            .lock()
            .unwrap()
            .push((path.mark, path.interface.clone(), path.local, target));
        let dead = self.dead.load(Ordering::SeqCst);
        Box::pin(async move {
            if dead {
                sleep(timeout).await;
                Err(ProbeError::Timeout(timeout))
            } else {
                sleep(Duration::from_millis(1)).await;
                Ok(Duration::from_millis(1))
            }
        })
    }
}

pub(crate) fn provider(health: Option<Health>) -> Provider {
    Provider {
        name: "wrt".into(),
        number: 1,
        mark: Some(1),
        interface: "eth0".into(),
        gateway: Some(Ipv4Addr::new(192, 168, 1, 1)),
        local: Some(Ipv4Addr::new(192, 168, 1, 20)),
        balance: Some(1),
        fallback: None,
        track: false,
        loose: false,
        duplicate: false,
        copy: vec![],
        optional: false,
        health,
    }
}

fn one(health: Health) -> Providers {
    Providers {
        providers: vec![provider(Some(health))],
        ..Providers::default()
    }
}

fn up_metric(m: &Metrics) -> i64 {
    m.provider_up
        .get_or_create(&ProviderLabel {
            provider: "wrt".into(),
        })
        .get()
}

/// Wait for the next trigger and say when it came.
async fn next(rx: &mut Receiver) -> Instant {
    assert_eq!(rx.recv().await, Some(Trigger::Health));
    Instant::now()
}

#[tokio::test(start_paused = true)]
async fn a_dead_path_is_out_within_4s_and_back_after_3_good_rounds() {
    let path = Arc::new(FakePath::default());
    let metrics = Arc::new(Metrics::new());
    let (tx, mut rx) = crate::watch::queue::channel();
    let mut m = Monitor::new(Arc::new(Arc::clone(&path)), Arc::clone(&metrics), tx);
    m.configure(&one(Health::default()), &BTreeSet::new());
    // The worst moment to die: right at a round's answer (10 s + 1 ms), so that the next
    // three rounds (11, 12, 13 s) fail and the last one's timeout ends at 13.8 s.
    sleep(Duration::from_millis(10_001)).await;
    assert!(m.down().is_empty());
    assert_eq!(up_metric(&metrics), 1);
    path.dead.store(true, Ordering::SeqCst);
    let died = Instant::now();
    let out = next(&mut rx).await;
    assert_eq!(out - died, Duration::from_millis(3_799), "within 4 s");
    assert!(
        out - died >= Duration::from_secs(3),
        "three rounds: {:?}",
        out - died
    );
    assert_eq!(m.down(), BTreeSet::from(["wrt".to_string()]));
    assert_eq!(up_metric(&metrics), 0);
    path.dead.store(false, Ordering::SeqCst);
    let back = Instant::now();
    let up = next(&mut rx).await;
    // The round under way times out first; then three good rounds a second apart.
    assert!(up - back <= Duration::from_secs(4), "{:?}", up - back);
    assert!(m.down().is_empty());
    assert_eq!(up_metric(&metrics), 1);
    // 3 of the 17 probes so far were lost.
    let text = metrics.render();
    assert!(
        text.contains("netconverge_provider_probe_loss_ratio{provider=\"wrt\"} 0.1764"),
        "{text}"
    );
    assert!(
        text.contains("netconverge_provider_probe_rtt_seconds{provider=\"wrt\"} 0.001"),
        "{text}"
    );
    let seen = path.seen.lock().unwrap();
    assert!(
        seen.iter().all(|s| *s
            == (
                1,
                "eth0".into(),
                Ipv4Addr::new(192, 168, 1, 20),
                Ipv4Addr::new(192, 168, 1, 1)
            )),
        "the gateway is probed through the provider's mark, interface and address"
    );
}

#[tokio::test(start_paused = true)]
async fn targets_interval_and_counts_are_those_declared() {
    let path = Arc::new(FakePath::default());
    let (tx, mut rx) = crate::watch::queue::channel();
    let mut m = Monitor::new(Arc::new(Arc::clone(&path)), Arc::new(Metrics::new()), tx);
    let target = Ipv4Addr::new(203, 0, 113, 10);
    let h = Health {
        targets: vec![target],
        interval: Duration::from_millis(200),
        timeout: Duration::from_millis(100),
        down: 5,
        up: 2,
    };
    path.dead.store(true, Ordering::SeqCst);
    let t0 = Instant::now();
    m.configure(&one(h), &BTreeSet::new());
    // Rounds at 0, 200, …, 800 ms fail; the fifth's timeout ends at 900 ms.
    assert_eq!(next(&mut rx).await - t0, Duration::from_millis(900));
    path.dead.store(false, Ordering::SeqCst);
    // Good rounds at 1000 and 1200 ms (answered 1 ms later).
    assert_eq!(next(&mut rx).await - t0, Duration::from_millis(1201));
    assert!(path.seen.lock().unwrap().iter().all(|s| s.3 == target));
}

#[tokio::test(start_paused = true)]
async fn a_provider_the_kernel_shows_held_starts_out_and_a_reload_keeps_state() {
    let path = Arc::new(FakePath::default());
    let (tx, mut rx) = crate::watch::queue::channel();
    let mut m = Monitor::new(Arc::new(Arc::clone(&path)), Arc::new(Metrics::new()), tx);
    let held = BTreeSet::from(["wrt".to_string()]);
    let t0 = Instant::now();
    m.configure(&one(Health::default()), &held);
    assert_eq!(m.down(), held, "held at once, before any round");
    // Three good rounds (0, 1, 2 s) bring it back.
    assert_eq!(next(&mut rx).await - t0, Duration::from_millis(2001));
    // The same configuration again (a reload of unchanged files) keeps the task and state.
    m.configure(&one(Health::default()), &held);
    assert!(m.down().is_empty());
    // Without health the provider is no longer watched.
    m.configure(
        &Providers {
            providers: vec![provider(None)],
            ..Providers::default()
        },
        &held,
    );
    assert!(m.down().is_empty());
    sleep(Duration::from_secs(10)).await;
    assert_eq!(rx.try_recv(), None, "no task left");
}
