//! DHCP and DNS for the VMs on a bridge: one dnsmasq per bridge, run by netconverge as its own
//! daemon, its configuration rendered from the desired state and kept under a per-namespace
//! state directory (`/run/netconverge/<netns or "host">/`).
//!
//! The observed side of a service is what is on disk plus whether the instance is alive: the
//! configuration file, the static-lease and names files, and the pid file checked against
//! `/proc` (see [`instance`]). The planner compares those files byte for byte with what the
//! desired settings render to, so a hand edit or a dead instance shows up as drift like any
//! other object. A change that touches only the static hosts is applied with a SIGHUP (dnsmasq
//! re-reads `dhcp-hostsfile` and `addn-hosts` on HUP and keeps its leases and sockets);
//! anything else restarts the instance.

use crate::error::KernelError;
use crate::model::object::ObjectRef;
use crate::model::State;
use crate::plan::{Action, Change, Object, Op};

pub mod config;
pub mod identity;
pub mod instance;

pub use instance::{Paths, RUN_DIR};

use crate::model::dhcp::{DhcpOp, DhcpServer, DhcpSettings};

/// The Debian package with the dnsmasq daemon and not its system-wide service (`dnsmasq`
/// would also start one on the host, listening everywhere).
pub const PACKAGE: &str = "dnsmasq-base";

/// The user dnsmasq drops root for (`--user`), with that user's primary group (`--group`).
/// Debian's `dnsmasq-base` creates it, as Fedora's, Arch's and Alpine's packages do; it is
/// never the shared `nobody`, so no other service's process can signal the instance.
pub const DNSMASQ_USER: &str = "dnsmasq";

// The constructor renders the files, which is dnsmasq's business, not the model's.
impl DhcpServer {
    /// The desired service of `bridge`: its files rendered from `settings`, running.
    pub fn new(bridge: impl Into<String>, settings: DhcpSettings) -> DhcpServer {
        let bridge = bridge.into();
        DhcpServer {
            config: config::render_config(&bridge, &settings),
            hosts: config::render_hosts(&settings),
            names: config::render_names(&settings),
            bridge,
            settings,
            running: true,
        }
    }
}

/// Diff the DHCP part of the state: a bridge's service is added, changed (with a note saying
/// whether that is a start, a SIGHUP or a restart) or removed as a whole.
pub fn diff(desired: &State, observed: &State) -> Vec<Change> {
    let mut out = Vec::new();
    for (bridge, d) in &desired.dhcp {
        let before = observed.dhcp.get(bridge);
        if before.is_some_and(|o| o.in_sync(d)) {
            continue;
        }
        out.push(Change {
            action: if before.is_some() {
                Action::Change
            } else {
                Action::Add
            },
            object: ObjectRef::dhcp(bridge),
            before: before.cloned().map(Object::Dhcp),
            after: Some(Object::Dhcp(d.clone())),
            note: Some(match before {
                None => "start dnsmasq".to_string(),
                Some(o) => how(o, d).to_string(),
            }),
            ops: vec![Op::Dhcp(DhcpOp::Apply(d.clone()))],
        });
    }
    for (bridge, o) in &observed.dhcp {
        if desired.dhcp.contains_key(bridge) {
            continue;
        }
        out.push(Change {
            action: Action::Remove,
            object: ObjectRef::dhcp(bridge),
            before: Some(Object::Dhcp(o.clone())),
            after: None,
            note: Some("stop dnsmasq and remove its files".into()),
            ops: vec![Op::Dhcp(DhcpOp::Stop(bridge.clone()))],
        });
    }
    out
}

/// What applying `desired` over `observed` will do to the instance; `instance::apply` makes the
/// same decision from the files on disk.
fn how(observed: &DhcpServer, desired: &DhcpServer) -> &'static str {
    if !observed.running {
        "start: dnsmasq is not running"
    } else if observed.settings.upstream.resolv_file() != desired.settings.upstream.resolv_file() {
        "restart: the upstream source changed"
    } else if observed.config != desired.config {
        "restart: the configuration changed"
    } else {
        "reload with SIGHUP: only the static hosts changed"
    }
}

/// A failed service operation, for the plan's failure report.
pub(crate) fn error(operation: &str, bridge: &str, hint: impl Into<String>) -> KernelError {
    KernelError::new(operation, format!("dnsmasq for {bridge}"), None).with_hint(hint)
}

/// DHCP services in the table of kinds.
pub struct Dhcp;

/// The DHCP kind.
pub static KIND: Dhcp = Dhcp;

impl crate::kind::Kind for Dhcp {
    fn kind(&self) -> crate::model::object::ObjectKind {
        crate::model::object::ObjectKind::Dhcp
    }

    /// Every dnsmasq in netconverge's state directory is its own.
    fn objects(&self, state: &State) -> Vec<(ObjectRef, bool)> {
        state
            .dhcp
            .keys()
            .map(|b| (ObjectRef::dhcp(b), true))
            .collect()
    }

    fn set_owned(&self, _state: &mut State, _owned: &dyn Fn(&ObjectRef) -> bool) {}

    fn diff(&self, cx: &mut crate::kind::PlanCx<'_>) -> Vec<Change> {
        diff(cx.desired, cx.observed)
    }

    /// The instances the plan starts, changes or stops: their files and whether they ran.
    fn save(&self, cx: &crate::snapshot::SaveCx<'_>, snap: &mut crate::snapshot::Snapshot) {
        let keys = cx
            .plan
            .changes
            .iter()
            .filter(|c| c.object.kind == crate::model::object::ObjectKind::Dhcp)
            .map(|c| c.object.id.clone())
            .collect();
        snap.dhcp = crate::snapshot::save_plain(&cx.before.dhcp, keys);
    }

    fn restore(&self, snap: &crate::snapshot::Snapshot, target: &mut State) {
        crate::snapshot::restore_plain(&mut target.dhcp, &snap.dhcp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::dhcp::{Range4, StaticHost};

    fn server(hosts: &[(&str, &str)], range: (&str, &str)) -> DhcpServer {
        let settings = DhcpSettings {
            ranges: vec![Range4 {
                start: range.0.parse().unwrap(),
                end: range.1.parse().unwrap(),
                subnet: "10.0.0.0/24".parse().unwrap(),
            }],
            router: Some("10.0.0.1".parse().unwrap()),
            hosts: hosts
                .iter()
                .map(|(mac, ip)| StaticHost {
                    mac: mac.parse().unwrap(),
                    ip: Some(ip.parse().unwrap()),
                    name: None,
                })
                .collect(),
            ..DhcpSettings::default()
        };
        DhcpServer::new("br0", settings)
    }

    fn state(d: Option<DhcpServer>) -> State {
        let mut s = State::default();
        if let Some(d) = d {
            s.dhcp.insert(d.bridge.clone(), d);
        }
        s
    }

    #[test]
    fn diff_says_how() {
        let a = server(&[], ("10.0.0.100", "10.0.0.199"));
        let hosts = server(
            &[("52:54:00:00:00:01", "10.0.0.11")],
            ("10.0.0.100", "10.0.0.199"),
        );
        let range = server(&[], ("10.0.0.100", "10.0.0.150"));
        let notes = |d: &DhcpServer, o: Option<DhcpServer>| -> Vec<(Action, String)> {
            diff(&state(Some(d.clone())), &state(o))
                .into_iter()
                .map(|c| (c.action, c.note.unwrap_or_default()))
                .collect()
        };
        assert_eq!(notes(&a, None), [(Action::Add, "start dnsmasq".into())]);
        assert!(notes(&a, Some(a.clone())).is_empty());
        assert_eq!(notes(&hosts, Some(a.clone()))[0].1, how(&a, &hosts));
        assert!(notes(&hosts, Some(a.clone()))[0].1.contains("SIGHUP"));
        assert_eq!(
            notes(&range, Some(a.clone()))[0].1,
            "restart: the configuration changed"
        );
        let host = DhcpServer::new(
            "br0",
            DhcpSettings {
                upstream: crate::model::dhcp::Upstream::Host,
                ..a.settings.clone()
            },
        );
        assert_eq!(
            notes(&host, Some(a.clone()))[0].1,
            "restart: the upstream source changed"
        );
        assert_eq!(
            notes(&a, Some(host.clone()))[0].1,
            "restart: the upstream source changed"
        );
        let dead = DhcpServer {
            running: false,
            ..a.clone()
        };
        assert!(notes(&a, Some(dead))[0].1.starts_with("start"));
        let gone = diff(&state(None), &state(Some(a)));
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].action, Action::Remove);
        assert_eq!(gone[0].ops, [Op::Dhcp(DhcpOp::Stop("br0".into()))]);
    }
}
