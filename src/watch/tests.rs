//! The daemon's loop on an in-memory kernel and a paused clock: which triggers lead to which
//! passes, and exactly when. (The root tests in `tests/watch.rs` run the real thing.)

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use reconcilers::error::KernelError;
use reconcilers::kernel::fake::FakeKernel;
use reconcilers::kernel::Kernel;
use reconcilers::model::State;
use reconcilers::plan::Op;
use tokio::time::{sleep_until, Instant};

use super::metrics::{KindLabel, Metrics};
use super::systemd::tests::Recorder;
use super::trigger::Trigger::{self, *};
use super::{Daemon, WatchOptions};

/// A fresh directory under the system temp dir, removed on drop.
pub(super) struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let p = std::env::temp_dir().join(format!("nc-watch-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What the probe kernel holds and saw; shared with the test, which also injects failures.
struct Seen {
    kernel: FakeKernel,
    t0: Instant,
    /// When each pass began (its observation), from `t0`.
    passes: Vec<Duration>,
    /// How many of the next apply calls fail.
    failing_applies: usize,
    /// An apply ran since the last observation: the next one is the pass's verification
    /// (verify after apply), not a new pass.
    applied: bool,
    /// When each apply call was made, from `t0`.
    applies: Vec<Duration>,
    /// When the daemon told the kernel to forget its cache, from `t0`.
    forgets: Vec<Duration>,
}

/// A `FakeKernel` that records when it is observed and can be made to fail.
#[derive(Clone)]
struct Probe(Rc<RefCell<Seen>>);

impl Kernel for Probe {
    async fn observe(&mut self, sysctls: &[String]) -> Result<State, KernelError> {
        let mut k = {
            let mut seen = self.0.borrow_mut();
            let at = seen.t0.elapsed();
            if !std::mem::take(&mut seen.applied) {
                seen.passes.push(at);
            }
            seen.kernel.clone()
        };
        k.observe(sysctls).await
    }

    async fn read_sysctls(
        &mut self,
        names: &[String],
    ) -> Result<std::collections::BTreeMap<String, String>, KernelError> {
        let mut k = self.0.borrow().kernel.clone();
        k.read_sysctls(names).await
    }

    async fn apply(&mut self, ops: &[Op]) -> Vec<Result<(), KernelError>> {
        let mut k = {
            let mut seen = self.0.borrow_mut();
            seen.applied = true;
            let at = seen.t0.elapsed();
            seen.applies.push(at);
            if seen.failing_applies > 0 {
                seen.failing_applies -= 1;
                let busy = || Err(KernelError::new("apply", "test op", Some(libc::EBUSY)));
                return ops.iter().map(|_| busy()).collect();
            }
            seen.kernel.clone()
        };
        let results = k.apply(ops).await;
        self.0.borrow_mut().kernel = k;
        results
    }

    fn writes(&self) -> u64 {
        self.0.borrow().kernel.writes()
    }

    fn forget_cache(&mut self) {
        let mut seen = self.0.borrow_mut();
        let at = seen.t0.elapsed();
        seen.forgets.push(at);
    }
}

/// The settle the scripted timelines below are written against (the daemon's own is
/// [`super::debounce::KERNEL_SETTLE`]; these tests are about the order and spacing of passes,
/// which the settle only shifts).
const SETTLE: Duration = Duration::from_millis(15);

const BR0: &str = "links:\n  br0:\n    kind: bridge\n";
const BR01: &str = "links:\n  br0:\n    kind: bridge\n  br1:\n    kind: bridge\n";
const BR012: &str =
    "links:\n  br0:\n    kind: bridge\n  br1:\n    kind: bridge\n  br2:\n    kind: bridge\n";

/// One step of a test's script, at a time from the start.
enum Step {
    Send(Trigger),
    /// Write host.yaml (as an edit would, without the file watcher: the test sends `File`).
    Write(&'static str),
    FailApplies(usize),
    /// Delete a link behind the daemon's back (drift).
    DeleteLink(&'static str),
    /// Create a foreign bridge behind the daemon's back.
    AddBridge(&'static str),
    /// A process (a VM) opens a tap with one queue.
    OpenTap(&'static str),
}

struct Harness {
    dir: Scratch,
    seen: Rc<RefCell<Seen>>,
    /// What the daemon told the service manager.
    notes: Arc<Recorder>,
    /// Its `-o json` events.
    events: Arc<super::events::Memory>,
}

impl Harness {
    fn new(name: &str, desired: &str) -> Harness {
        let dir = Scratch::new(name);
        std::fs::write(dir.0.join("host.yaml"), desired).unwrap();
        let seen = Rc::new(RefCell::new(Seen {
            kernel: FakeKernel::default(),
            t0: Instant::now(),
            passes: Vec::new(),
            applied: false,
            failing_applies: 0,
            applies: Vec::new(),
            forgets: Vec::new(),
        }));
        Harness {
            dir,
            seen,
            notes: Arc::default(),
            events: Arc::default(),
        }
    }

    fn opts(&self, once: bool) -> WatchOptions {
        WatchOptions {
            path: self.dir.0.clone(),
            debounce: Duration::from_millis(200),
            resync: Duration::from_secs(300),
            once,
            allow_empty: false,
            netns: None,
            confirm_within: None,
            json: false,
        }
    }

    /// Run the daemon with `script` played beside it (in the same task: the probe is not
    /// `Send`); returns when the daemon does.
    /// Run the daemon through `script`; its metrics at the end.
    async fn run(&self, once: bool, script: Vec<(u64, Step)>) -> Arc<Metrics> {
        let probe = Probe(self.seen.clone());
        let daemon = Daemon::new(self.opts(once), move |_| Ok(probe.clone()))
            .with_notifier(self.notes.clone())
            .with_settle(SETTLE)
            .with_events(self.events.clone());
        let metrics = daemon.metrics();
        let tx = daemon.sender();
        let t0 = self.seen.borrow().t0;
        let file = self.dir.0.join("host.yaml");
        let play = async {
            for (ms, step) in script {
                sleep_until(t0 + Duration::from_millis(ms)).await;
                self.step(&file, step, &tx);
            }
            // Keep the sender: the script ends with a stop, or the daemon stops by itself.
            std::future::pending::<()>().await
        };
        tokio::select! {
            done = daemon.run() => done.unwrap(),
            _ = play => unreachable!(),
        }
        metrics
    }

    fn step(&self, file: &Path, step: Step, tx: &super::queue::Sender) {
        match step {
            Step::Send(t) => tx.send(t).unwrap(),
            Step::Write(s) => std::fs::write(file, s).unwrap(),
            Step::FailApplies(n) => self.seen.borrow_mut().failing_applies = n,
            Step::DeleteLink(name) => {
                self.seen.borrow_mut().kernel.state.links.remove(name);
            }
            Step::AddBridge(name) => {
                let link = reconcilers::model::Link::new(
                    name,
                    reconcilers::model::LinkKind::Bridge(Default::default()),
                );
                self.seen.borrow_mut().kernel.state.add_link(link);
            }
            Step::OpenTap(name) => {
                assert!(self.seen.borrow_mut().kernel.open_tap(name, 1, true));
            }
        }
    }

    /// When each pass began, in milliseconds from the start.
    fn passes(&self) -> Vec<u128> {
        millis(&self.seen.borrow().passes)
    }

    /// When each apply call was made, in milliseconds from the start.
    fn applies(&self) -> Vec<u128> {
        millis(&self.seen.borrow().applies)
    }

    /// When the daemon told the kernel to forget its cache, in milliseconds from the start.
    fn forgets(&self) -> Vec<u128> {
        millis(&self.seen.borrow().forgets)
    }

    fn links(&self) -> Vec<String> {
        self.seen
            .borrow()
            .kernel
            .state
            .links
            .keys()
            .cloned()
            .collect()
    }

    /// The daemon's `-o json` events so far, each line parsed.
    fn events(&self) -> Vec<serde_json::Value> {
        let lines = self.events.0.lock().unwrap().clone();
        lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn elapsed(&self) -> Duration {
        self.seen.borrow().t0.elapsed()
    }
}

/// Times as whole milliseconds.
fn millis(times: &[Duration]) -> Vec<u128> {
    times.iter().map(Duration::as_millis).collect()
}

#[tokio::test(start_paused = true)]
async fn five_file_events_reload_once_a_debounce_after_the_last() {
    let h = Harness::new("burst", BR0);
    let mut script = vec![(1000, Step::Write(BR01))];
    script.extend((0..5).map(|i| (1000 + i * 50, Step::Send(File))));
    script.push((3000, Step::Send(Stop)));
    h.run(false, script).await;
    // The first pass applies br0 and is verified once the echoes have settled (15 ms); the
    // burst's one reload comes 200 ms after its last event (1200 ms), then its verification.
    assert_eq!(h.passes(), [0, 15, 1400, 1415]);
    assert_eq!(h.links(), ["br0", "br1"]);
    assert_eq!(h.elapsed(), Duration::from_secs(3), "stopped on the stop");
}

/// The resync is the pass that reads everything afresh: it makes the kernel forget its route
/// cache before observing, where a kernel event's pass trusts it.
#[tokio::test(start_paused = true)]
async fn the_resync_makes_the_kernel_forget_its_cache_and_a_kernel_event_does_not() {
    let h = Harness::new("forget", BR0);
    let script = vec![
        (1000, Step::Send(Resync)),
        (2000, Step::Send(Kernel)),
        (3000, Step::Send(Stop)),
    ];
    h.run(false, script).await;
    assert_eq!(h.passes(), [0, 15, 1015, 2015]);
    assert_eq!(h.forgets(), [1015]);
}

#[tokio::test(start_paused = true)]
async fn a_failed_apply_is_retried_after_1_2_4_s_and_a_success_resets_the_backoff() {
    let h = Harness::new("retry", BR0);
    h.seen.borrow_mut().failing_applies = 3;
    let script = vec![
        (10_000, Step::FailApplies(1)),
        (10_000, Step::Write(BR01)),
        (10_000, Step::Send(File)),
        (20_000, Step::Send(Stop)),
    ];
    h.run(false, script).await;
    // A retry is a burst of its own: it settles 15 ms like a kernel event before its pass.
    // Fails at 0, 1015 and 3030 (waits 1, 2, 4 s), applies at 7045, verified at 7060. The
    // edit's pass fails at 10200 and, the backoff reset by the success, is retried 1 s later.
    assert_eq!(
        h.passes(),
        [0, 1015, 3030, 7045, 7060, 10_200, 11_215, 11_230]
    );
    assert_eq!(h.links(), ["br0", "br1"]);
}

#[tokio::test(start_paused = true)]
async fn a_kernel_event_during_a_failure_replans_and_waits_for_the_retry_if_the_plan_is_the_same() {
    let h = Harness::new("pending", BR0);
    h.seen.borrow_mut().failing_applies = 3;
    let script = vec![(500, Step::Send(Kernel)), (10_000, Step::Send(Stop))];
    h.run(false, script).await;
    // The kernel event re-plans (observes) at 515, finds the same failing plan and applies
    // nothing; the retries fail at 1015 and 3030 (waits 1, 2 s), the one at 7045 succeeds.
    assert_eq!(h.passes(), [0, 515, 1015, 3030, 7045, 7060]);
    assert_eq!(h.applies(), [0, 1015, 3030, 7045, 7045]);
}

#[tokio::test(start_paused = true)]
async fn a_failing_state_applies_on_the_backoff_schedule_whatever_the_kernel_says() {
    let h = Harness::new("storm", BR0);
    h.seen.borrow_mut().failing_applies = usize::MAX;
    // A kernel event every 100 ms for 20 s (the echoes of the failed writes, or anything).
    let mut script: Vec<(u64, Step)> = (0..200)
        .map(|i| (50 + i * 100, Step::Send(Kernel)))
        .collect();
    script.push((20_000, Step::Send(Stop)));
    h.run(false, script).await;
    // 1, 2, 4, 8 s apart: 5 applies in 20 s, not one per event (the last retry's burst
    // takes in the event at 15050 and settles after it).
    assert_eq!(h.applies(), [0, 1015, 3030, 7045, 15_065]);
    assert!(h.links().is_empty());
}

#[tokio::test(start_paused = true)]
async fn an_event_that_changes_the_failing_plan_replans_at_once() {
    let h = Harness::new("changed", BR0);
    h.seen.borrow_mut().failing_applies = 1;
    let script = vec![
        (500, Step::AddBridge("br0")),
        (500, Step::Send(Kernel)),
        (5000, Step::Send(Stop)),
    ];
    h.run(false, script).await;
    // At 515 the plan is no longer "add br0" but "set up br0": applied then, not at 1015.
    assert_eq!(h.applies()[..2], [0, 515]);
}

#[tokio::test(start_paused = true)]
async fn an_edit_during_a_failure_applies_at_once_and_resets_the_backoff() {
    let h = Harness::new("editreset", BR0);
    h.seen.borrow_mut().failing_applies = 4;
    let script = vec![
        (5000, Step::Write(BR01)),
        (5000, Step::Send(File)),
        (20_000, Step::Send(Stop)),
    ];
    h.run(false, script).await;
    // Fails at 0, 1015, 3030; the edit's pass at 5200 fails too and waits 1 s, not 4.
    assert_eq!(h.applies()[..5], [0, 1015, 3030, 5200, 6215]);
    assert_eq!(h.links(), ["br0", "br1"]);
}

#[tokio::test(start_paused = true)]
async fn an_object_undone_again_and_again_is_a_fight_and_its_repairs_are_damped() {
    let h = Harness::new("fight", BR0);
    // Something deletes br0 every 2 s for a minute.
    let mut script = Vec::new();
    for i in 0..30 {
        script.push((1000 + i * 2000, Step::DeleteLink("br0")));
        script.push((1000 + i * 2000, Step::Send(Kernel)));
    }
    script.push((61_000, Step::Send(Stop)));
    let metrics = h.run(false, script).await;
    // Each repair applies in two calls (create, then set). The first six come at once; then
    // the repairs wait 1, 2, 4, 8 … s.
    let repairs: Vec<u128> = h.applies().chunks(2).map(|c| c[0]).collect();
    assert_eq!(repairs[..7], [0, 1015, 3015, 5015, 7015, 9015, 11_015]);
    assert!(repairs.len() < 15, "damped: {repairs:?}");
    // The fight is in the metrics, as are the repairs (all but the first apply, from the file).
    let text = metrics.render();
    assert!(metrics.fights.get() >= 1, "{text}");
    let link = KindLabel {
        kind: "link".into(),
    };
    assert_eq!(
        metrics.repairs.get_or_create(&link).get(),
        repairs.len() as u64 - 1,
        "{text}"
    );
    assert!(metrics.passes.get() >= repairs.len() as u64, "{text}");
    // And in `-o json`: one `fight` event per fight, naming the object and its repairs.
    let fights: Vec<serde_json::Value> = h
        .events()
        .into_iter()
        .filter(|e| e["event"] == "fight")
        .collect();
    assert_eq!(fights.len() as u64, metrics.fights.get());
    assert_eq!(
        (fights[0]["kind"].as_str(), fights[0]["id"].as_str()),
        (Some("link"), Some("br0"))
    );
    assert!(fights[0]["times"].as_u64().unwrap() > 5, "{}", fights[0]);
}

#[tokio::test(start_paused = true)]
async fn echoes_are_dropped_and_a_file_event_among_them_is_kept() {
    let h = Harness::new("echoes", BR0);
    let script = vec![
        // Echoes of the first apply, within its 15 ms settle: dropped.
        (5, Step::Send(Kernel)),
        (5, Step::Send(Kernel)),
        (1000, Step::Write(BR01)),
        (1000, Step::Send(File)),
        // An edit among the echoes of the apply at 1200: the burst it begins is debounced.
        (1205, Step::Send(Kernel)),
        (1205, Step::Write(BR012)),
        (1205, Step::Send(File)),
        (1210, Step::Send(Kernel)),
        (2000, Step::Send(Stop)),
    ];
    h.run(false, script).await;
    // Kept echoes would have made a settled pass at 30; the kept edit makes no verify pass
    // at 1215 but a reload 200 ms after the edit (not after the settle it was read in).
    assert_eq!(h.passes(), [0, 15, 1200, 1405, 1420]);
    assert_eq!(h.links(), ["br0", "br1", "br2"]);
}

#[tokio::test(start_paused = true)]
async fn a_refused_edit_falls_back_to_the_latest_good_load_not_the_first() {
    let h = Harness::new("latestgood", BR0);
    let script = vec![
        (1000, Step::Write(BR01)),
        (1000, Step::Send(File)),
        // Truncated: refused by the empty-desired guard.
        (2000, Step::Write("")),
        (2000, Step::Send(File)),
        // The repair is made from BR01, the load in force before the refusal.
        (3000, Step::DeleteLink("br1")),
        (3000, Step::Send(Kernel)),
        (4000, Step::Send(Stop)),
    ];
    h.run(false, script).await;
    assert_eq!(h.links(), ["br0", "br1"]);
}

#[tokio::test(start_paused = true)]
async fn invalid_and_refused_edits_keep_the_last_good_state_in_force() {
    let h = Harness::new("lastgood", BR0);
    let script = vec![
        (1000, Step::Write("links:\n  br0\n")),
        (1000, Step::Send(File)),
        // Truncated: refused by the empty-desired guard.
        (2000, Step::Write("")),
        (2000, Step::Send(File)),
        // Drift afterwards is repaired from the last good state, not the empty one.
        (3000, Step::DeleteLink("br0")),
        (3000, Step::Send(Kernel)),
        (4000, Step::Send(Stop)),
    ];
    h.run(false, script).await;
    assert_eq!(h.passes(), [0, 15, 1200, 2200, 3015, 3030]);
    assert_eq!(h.links(), ["br0"]);
    // What `-o json` said of it, one event per line.
    let events = h.events();
    let said: Vec<String> = events
        .iter()
        .map(|e| match e["event"].as_str().unwrap() {
            "pass" => format!(
                "pass {} ok={} error={} changes={}",
                e["triggers"][0].as_str().unwrap(),
                e["ok"],
                e["error"]["kind"].as_str().unwrap_or("-"),
                e["changes"].as_array().unwrap().len()
            ),
            "invalid" => format!("invalid at line {}", e["error"]["errors"][0]["line"]),
            other => format!("{other} {}", e["reason"]),
        })
        .collect();
    assert_eq!(
        said,
        [
            "pass start ok=true error=- changes=1",
            "pass follow_up ok=true error=- changes=0",
            "invalid at line 2",
            "pass file ok=true error=- changes=0",
            "pass file ok=false error=refused changes=0",
            "pass kernel ok=true error=- changes=1",
            "pass follow_up ok=true error=- changes=0",
            "stopped \"signal\"",
        ]
    );
    assert!(events[0]["applied"]["writes"].as_u64().unwrap() > 0);
    assert_eq!(events[5]["changes"][0]["id"], "br0");
}

#[tokio::test(start_paused = true)]
async fn a_stop_during_the_debounce_ends_the_daemon_without_the_pass() {
    let h = Harness::new("stop", BR0);
    let script = vec![
        (1000, Step::Write(BR01)),
        (1000, Step::Send(File)),
        (1050, Step::Send(Stop)),
    ];
    h.run(false, script).await;
    assert_eq!(h.passes(), [0, 15]);
    assert_eq!(h.elapsed(), Duration::from_millis(1050));
    assert_eq!(h.links(), ["br0"]);
}

#[tokio::test(start_paused = true)]
async fn once_applies_and_returns_without_waiting_for_triggers() {
    let h = Harness::new("once", BR0);
    h.run(true, vec![]).await;
    assert_eq!(h.passes(), [0]);
    assert_eq!(h.links(), ["br0"]);
    // Only the settle of its own echoes.
    assert_eq!(h.elapsed(), Duration::from_millis(15));
}

const PROVIDERS: &str = "links:
  eth0: { kind: external, addresses: [192.168.1.20/24] }
providers:
  wrt: { number: 1, mark: \"0x1\", interface: eth0, gateway: 192.168.1.1, balance: 1,
         health: { targets: [203.0.113.10] } }
  fw:  { number: 2, mark: \"0x2\", interface: eth0, gateway: 192.168.1.254, balance: 1, loose: true }
";

/// What the fake kernel holds of the providers: the rules by id, the main default's gateways.
fn providers_view(s: &State) -> (Vec<String>, Vec<String>) {
    let rules = s.rules.values().map(|r| r.id()).collect();
    let default = s
        .routes
        .values()
        .filter(|r| r.table == reconcilers::model::TABLE_MAIN && r.to.prefix_len() == 0)
        .flat_map(|r| {
            r.nexthops
                .iter()
                .filter_map(|h| h.via.map(|v| v.to_string()))
        })
        .collect();
    (rules, default)
}

#[tokio::test(start_paused = true)]
async fn health_takes_a_dead_provider_out_within_4s_and_brings_it_back() {
    use super::health::tests::FakePath;
    use std::sync::atomic::Ordering;
    let h = Harness::new("health", PROVIDERS);
    {
        let mut s = h.seen.borrow_mut();
        let mut eth0 =
            reconcilers::model::Link::new("eth0", reconcilers::model::LinkKind::External);
        eth0.up = Some(true);
        s.kernel.state.add_link(eth0);
    }
    let path = Arc::new(FakePath::default());
    let probe = Probe(h.seen.clone());
    let daemon = Daemon::new(h.opts(false), move |_| Ok(probe.clone()))
        .with_prober(Arc::new(Arc::clone(&path)));
    let tx = daemon.sender();
    let t0 = h.seen.borrow().t0;
    let snapshots = RefCell::new(Vec::new());
    let snap = |at: u64| {
        let s = h.seen.borrow().kernel.state.clone();
        snapshots.borrow_mut().push((at, providers_view(&s)));
    };
    let play = async {
        sleep_until(t0 + Duration::from_millis(5_500)).await;
        snap(5_500);
        path.dead.store(true, Ordering::SeqCst);
        sleep_until(t0 + Duration::from_millis(9_500)).await;
        snap(9_500);
        path.dead.store(false, Ordering::SeqCst);
        sleep_until(t0 + Duration::from_millis(14_000)).await;
        snap(14_000);
        tx.send(Stop).unwrap();
        std::future::pending::<()>().await
    };
    tokio::select! {
        done = daemon.run() => done.unwrap(),
        _ = play => unreachable!(),
    }
    let snaps = snapshots.into_inner();
    let both = vec!["192.168.1.1".to_string(), "192.168.1.254".to_string()];
    let (rules, default) = &snaps[0].1;
    assert_eq!(*default, both, "in service: balanced over both");
    assert!(
        rules.contains(&"20000: from 192.168.1.20/32 lookup 1".to_string()),
        "{rules:?}"
    );
    // 4 s after the path died (on the worst phase: just after an answered round).
    let (rules, default) = &snaps[1].1;
    assert_eq!(*default, ["192.168.1.254"], "held down: only fw is left");
    assert!(
        rules.iter().any(|r| r.starts_with("10000: ")
            && r.contains("fwmark 0x1/0xff")
            && r.contains("oif eth0")
            && r.ends_with("lookup 1")),
        "wrt's mark rule routes only its probes: {rules:?}"
    );
    assert!(!rules.iter().any(|r| r.starts_with("20000: ")), "{rules:?}");
    assert!(rules.iter().any(|r| r.starts_with("10001: ")), "{rules:?}");
    let (rules, default) = &snaps[2].1;
    assert_eq!(*default, both, "back after three good rounds");
    assert!(
        rules.contains(&"20000: from 192.168.1.20/32 lookup 1".to_string()),
        "{rules:?}"
    );
    assert!(!rules.iter().any(|r| r.contains("oif")), "{rules:?}");
}

#[tokio::test(start_paused = true)]
async fn the_service_manager_hears_ready_status_reloading_and_stopping() {
    let h = Harness::new("notify", BR0);
    h.run(
        false,
        vec![
            (1000, Step::Write(BR01)),
            (1000, Step::Send(File)),
            (2000, Step::Send(Reload)),
            (3000, Step::Send(Stop)),
        ],
    )
    .await;
    let notes = h.notes.0.lock().unwrap().clone();
    let firsts: Vec<&str> = notes
        .iter()
        .map(|m| m.lines().next().unwrap_or_default())
        .filter(|l| !l.starts_with("STATUS="))
        .collect();
    // READY after the first pass and after SIGHUP's reload, not after an edit (which is no
    // `systemctl reload`); STOPPING last.
    assert_eq!(
        firsts,
        ["READY=1", "RELOADING=1", "READY=1", "STOPPING=1"],
        "{notes:#?}"
    );
    assert!(notes[0].contains("\nSTATUS=last pass "), "{notes:#?}");
    assert!(notes[0].contains(": in sync; last apply ") && notes[0].contains(": 1 changes"));
    // Every pass tells its status: the edit's added br1.
    let edit = notes
        .iter()
        .position(|m| m.starts_with("RELOADING=1"))
        .unwrap();
    assert!(
        notes[1..edit].iter().all(|m| m.starts_with("STATUS=")),
        "{notes:#?}"
    );
    assert!(notes[1..edit].len() >= 2, "{notes:#?}");
    assert_eq!(h.links(), ["br0", "br1"]);
}

#[tokio::test(start_paused = true)]
async fn a_tap_recreated_under_a_vm_is_counted_as_needing_a_reattach() {
    let two_taps = "links:\n  tap-vm1: { kind: tap }\n  tap-vm2: { kind: tap }\n";
    let h = Harness::new("reattach", two_taps);
    let script = vec![
        // A VM opens tap-vm1 (its carrier is an event); both taps are then deleted.
        (1000, Step::OpenTap("tap-vm1")),
        (1000, Step::Send(Kernel)),
        (2000, Step::DeleteLink("tap-vm1")),
        (2000, Step::DeleteLink("tap-vm2")),
        (2000, Step::Send(Kernel)),
        (3000, Step::Send(Stop)),
    ];
    let metrics = h.run(false, script).await;
    assert_eq!(h.links(), ["tap-vm1", "tap-vm2"], "both are back");
    let count = |link: &str| {
        metrics
            .tap_reattach
            .get_or_create(&super::metrics::LinkLabel { link: link.into() })
            .get()
    };
    // Only the one a process held open needs a reattach.
    assert_eq!((count("tap-vm1"), count("tap-vm2")), (1, 0));
    let text = metrics.render();
    assert!(text.contains("tap_reattach_needed"), "{text}");
    assert!(text.contains("link=\"tap-vm1\""), "{text}");
}
