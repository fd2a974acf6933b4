//! Host facts: what a desired state relies on that only the target host can confirm (users,
//! groups, existing interfaces, installed programs, which optional providers are up).
//! `validate` is host-independent, so the sections hand these over as [`HostCheck`]s and
//! host hooks; [`Desired::for_host`] runs them all once the host has been observed, before
//! anything is planned or written.

use std::net::IpAddr;
use std::path::PathBuf;

use reconcilers::model::dhcp::Upstream;
use reconcilers::model::State;
use reconcilers::model::{Ident, LinkKind};

use super::diagnostics::{Diagnostic, Diagnostics};
use super::{dhcp, links, providers, Desired, HealthView};

/// A fact the desired state relies on that only the target host can confirm. `validate` is
/// host-independent, so these are handed to the caller instead of being errors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostCheck {
    /// A tap owner given by name must be a user on the host.
    User {
        /// The user name.
        name: String,
        /// Where it is written; the message says what is needed.
        at: Diagnostic,
    },
    /// A tap group given by name must be a group on the host.
    Group {
        /// The group name.
        name: String,
        /// Where it is written; the message says what is needed.
        at: Diagnostic,
    },
    /// An `external` link is never created, so it must already exist.
    ExternalLink {
        /// The interface name.
        name: String,
        /// Where it is declared; the message says what is needed.
        at: Diagnostic,
    },
    /// A link a route goes through must be up (an external link whose state is not
    /// declared: netconverge does not bring it up).
    LinkUp {
        /// The interface name.
        name: String,
        /// Where the route is declared; the message says what is needed.
        at: Diagnostic,
    },
    /// A sysctl must exist in the namespace, and take as many values as are declared. A
    /// per-interface sysctl of a link netconverge is about to create is looked up under the
    /// kernel's template for new links (`conf.default`, `neigh.default`).
    Sysctl {
        /// The sysctl's name.
        name: String,
        /// How many whitespace-separated values are declared.
        fields: usize,
        /// The template sysctl to look at when `name` belongs to a link not there yet.
        template: Option<String>,
        /// Where the value is declared; the message says what is needed.
        at: Diagnostic,
    },
    /// A program netconverge runs to apply part of the state (`nft` for the nftables
    /// tables) must be installed.
    Program {
        /// The program's name, looked up in `$PATH` and the sbin directories.
        name: String,
        /// The Debian package that provides it.
        package: String,
        /// The section that needs it; the message says what to install.
        at: Diagnostic,
    },
    /// A tap's owner should be able to open it: the kernel checks owner and group together,
    /// so the owner must be in the tap's group, and it needs read-write access to
    /// `/dev/net/tun`. Only a warning: a launcher may give the process the group, or (as
    /// libvirt does) open `/dev/net/tun` for it.
    TapAccess {
        /// The tap.
        tap: String,
        /// Its owner.
        owner: reconcilers::model::Ident,
        /// Its group, if declared.
        group: Option<reconcilers::model::Ident>,
        /// Where the owner is written.
        at: Diagnostic,
    },
    /// A bridge's dnsmasq reads the host's resolver file (`upstream: host` or
    /// `resolv_file:`): the file must not name the bridge's own addresses, or dnsmasq would
    /// forward every query to itself.
    Resolver {
        /// The bridge served.
        bridge: String,
        /// Its addresses.
        own: Vec<IpAddr>,
        /// `resolv_file:`, or `None` for the namespace's own resolv.conf.
        file: Option<PathBuf>,
        /// Where the `dns:` entry is written.
        at: Diagnostic,
    },
}

impl HostCheck {
    /// The position and the sentence to show when the check fails.
    pub fn at(&self) -> &Diagnostic {
        match self {
            HostCheck::User { at, .. }
            | HostCheck::Group { at, .. }
            | HostCheck::ExternalLink { at, .. }
            | HostCheck::LinkUp { at, .. }
            | HostCheck::Sysctl { at, .. }
            | HostCheck::Program { at, .. }
            | HostCheck::TapAccess { at, .. }
            | HostCheck::Resolver { at, .. } => at,
        }
    }
}

impl HostCheck {
    /// Why the host does not provide what this check needs, at the check's place; `None`
    /// when it does. `netns` is the namespace reconciled (its resolver file may differ).
    fn failure(&self, observed: &State, netns: Option<&str>) -> Option<Diagnostic> {
        let holds = match self {
            HostCheck::User { name, .. } => crate::host::user_id(name).is_some(),
            HostCheck::Group { name, .. } => crate::host::group_id(name).is_some(),
            HostCheck::ExternalLink { name, .. } => observed.links.contains_key(name),
            // A missing link is the ExternalLink fact's to report.
            HostCheck::LinkUp { name, .. } => {
                observed.links.get(name).is_none_or(|l| l.up != Some(false))
            }
            HostCheck::Sysctl {
                name,
                fields,
                template,
                ..
            } => {
                let current = observed.sysctls.get(name).or_else(|| {
                    template
                        .as_ref()
                        .filter(|_| !link_of(name).is_some_and(|l| observed.links.contains_key(&l)))
                        .and_then(|t| observed.sysctls.get(t))
                });
                current.is_some_and(|v| v.split(' ').count() == *fields)
            }
            HostCheck::Program { name, .. } => reconcilers::programs::find(name).is_some(),
            // A warning (see `warning`), never a refusal.
            HostCheck::TapAccess { .. } => true,
            HostCheck::Resolver {
                bridge,
                own,
                file,
                at,
            } => {
                let path = file.clone().unwrap_or_else(|| Upstream::host_file(netns));
                let looped = crate::host::nameservers(&path)
                    .into_iter()
                    .find(|a| own.contains(a))?;
                let mut d = at.clone();
                d.message = format!(
                    "{} names {looped}, an address of {bridge}, as its nameserver: dnsmasq on \
                     {bridge} would forward every query to itself; give it the real upstreams \
                     with `resolv_file:` (under systemd-resolved \
                     /run/systemd/resolve/resolv.conf) or `upstream: [...]`",
                    path.display()
                );
                return Some(d);
            }
        };
        (!holds).then(|| self.at().clone())
    }
}

impl HostCheck {
    /// What the host makes doubtful without refusing it, at the check's place; `None` when
    /// nothing is.
    fn warning(&self) -> Option<String> {
        let HostCheck::TapAccess {
            tap,
            owner,
            group,
            at,
        } = self
        else {
            return None;
        };
        let message = links::tap::access_warning(tap, owner, group.as_ref())?;
        let mut d = at.clone();
        d.message = message;
        Some(d.to_string())
    }
}

/// The interface a per-interface sysctl (`net.ipv4.conf.IF.x`, `net.ipv6.neigh.IF.x`) names
/// (a `/` in the name's component stands for a `.` of the interface name).
pub(crate) fn link_of(sysctl: &str) -> Option<String> {
    let mut parts = sysctl.splitn(5, '.');
    match (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) {
        (Some("net"), Some("ipv4" | "ipv6"), Some("conf" | "neigh"), Some(link), Some(_)) => {
            Some(link.replace('/', "."))
        }
        _ => None,
    }
}

/// The desired state as this host can apply it.
#[derive(Debug)]
pub struct ForHost<'a> {
    /// The state to plan: names resolved to ids, unavailable optional providers left out.
    /// Borrowed from the desired state when the host changes nothing in it (no tap owner
    /// by name, no DHCP server reading the host's resolver, no providers): a `watch` pass
    /// then plans without a copy of its 10,000 routes.
    pub state: std::borrow::Cow<'a, State>,
    /// Host facts that do not hold, each at the place that needs it. `reconcile` and `check`
    /// refuse when there are any; a dry run shows them as warnings.
    pub failed: Diagnostics,
    /// What the host decided that the plan should mention (a provider left out).
    pub warnings: Vec<String>,
}

impl Desired {
    /// Check every host fact against the host and run each kind's host hook (tap owners by
    /// name become ids; optional providers that are down are left out). Every failing fact is
    /// reported at the place it is written (three taps owned by a missing user give three
    /// errors, one per tap); names are resolved only when every fact holds.
    ///
    /// `health` says which providers the health checks hold down (see [`HealthView`]).
    pub fn for_host(
        &self,
        observed: &State,
        netns: Option<&str>,
        health: &HealthView,
    ) -> ForHost<'_> {
        if !self.host_dependent() {
            let mut unresolved = self.resolve(State::default(), observed, netns, health);
            // `host_dependent` must know every host hook `resolve` runs: in the tests (debug
            // builds) each borrowed state is checked against a resolved copy.
            debug_assert_eq!(
                *self
                    .resolve(self.state.clone(), observed, netns, health)
                    .state,
                self.state,
                "a host hook changed a state host_dependent called host-independent"
            );
            unresolved.state = std::borrow::Cow::Borrowed(&self.state);
            return unresolved;
        }
        self.resolve(self.state.clone(), observed, netns, health)
    }

    /// Whether the host's answers can change the state to plan: a tap owner or group by
    /// name, a DHCP server reading the host's resolver, a provider (see [`Desired::resolve`]).
    fn host_dependent(&self) -> bool {
        let named = |i: &Option<Ident>| matches!(i, Some(Ident::Name(_)));
        let tap_names = self.state.links.values().any(|l| match &l.kind {
            LinkKind::Tap(t) => named(&t.owner) || named(&t.group),
            _ => false,
        });
        let host_resolver =
            (self.state.dhcp.values()).any(|d| d.settings.upstream == Upstream::Host);
        tap_names || host_resolver || !self.providers.providers.is_empty()
    }

    /// [`Desired::for_host`] with the state moved out of `self` (left empty) rather than
    /// copied: for a one-shot command, whose desired state serves one pass. The copy was a
    /// third of the peak memory of a no-op `reconcile` of 10⁶ routes.
    pub fn take_for_host(
        &mut self,
        observed: &State,
        netns: Option<&str>,
        health: &HealthView,
    ) -> ForHost<'static> {
        let state = std::mem::take(&mut self.state);
        self.resolve(state, observed, netns, health)
    }

    /// `state` (this desired state's, or a copy) resolved for the host `observed` describes.
    fn resolve(
        &self,
        mut state: State,
        observed: &State,
        netns: Option<&str>,
        health: &HealthView,
    ) -> ForHost<'static> {
        let mut failed: Vec<Diagnostic> = self
            .host_checks
            .iter()
            .filter_map(|c| c.failure(observed, netns))
            .collect();
        if failed.is_empty() {
            failed = links::tap::resolve_owners(&mut state);
        }
        dhcp::resolve_upstreams(&mut state, netns);
        let mut warnings: Vec<String> = self
            .host_checks
            .iter()
            .filter_map(HostCheck::warning)
            .collect();
        warnings.extend(providers::skip_unavailable(
            self, &mut state, observed, health,
        ));
        ForHost {
            state: std::borrow::Cow::Owned(state),
            failed: Diagnostics(failed),
            warnings,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::path::Path;

    use reconcilers::model::{Ident, LinkKind};

    use crate::desired::load_str;

    #[test]
    fn names_resolve_only_when_every_fact_holds() {
        let yaml = "links:\n  tap0: { kind: tap, tap: { owner: root, group: root } }\n";
        let d = load_str(yaml, Path::new("t.yaml")).expect("valid");
        let h = d.for_host(&Default::default(), None, &Default::default());
        assert!(h.failed.0.is_empty(), "{}", h.failed);
        let LinkKind::Tap(t) = &h.state.links["tap0"].kind else {
            panic!("a tap")
        };
        assert_eq!(
            (t.owner.clone(), t.group.clone()),
            (Some(Ident::Id(0)), Some(Ident::Id(0)))
        );

        let yaml = "links:\n  tap0: { kind: tap, tap: { owner: root } }\n  tap1: { kind: tap, tap: { owner: no-such-user-nc } }\n  eth9: { kind: external }\n";
        let d = load_str(yaml, Path::new("t.yaml")).expect("valid");
        let h = d.for_host(&Default::default(), None, &Default::default());
        let failed: Vec<String> = h.failed.0.iter().map(ToString::to_string).collect();
        assert_eq!(
            failed,
            [
                "t.yaml:3:36: tap owner `no-such-user-nc` does not exist on this host",
                "t.yaml:4:3: external link `eth9` does not exist on this host",
            ]
        );
        // Nothing is resolved while a fact fails: the plan would be wrong anyway.
        let LinkKind::Tap(t) = &h.state.links["tap0"].kind else {
            panic!("a tap")
        };
        assert_eq!(t.owner, Some(Ident::Name("root".into())));
    }

    #[test]
    fn taking_the_state_for_the_host_resolves_it_as_a_copy_would_and_leaves_none() {
        let yaml = "links:\n  tap0: { kind: tap, tap: { owner: root } }\n  br0:\n    kind: bridge\n    addresses: [10.0.0.1/24]\nroutes:\n  - { to: 10.9.0.0/16, via: 10.0.0.254 }\n";
        let mut d = load_str(yaml, Path::new("t.yaml")).expect("valid");
        let copied = d.for_host(&Default::default(), None, &Default::default());
        assert!(matches!(copied.state, Cow::Owned(_)), "a tap owner by name");
        let (state, failed, warnings) = (
            copied.state.into_owned(),
            copied.failed.0.len(),
            copied.warnings,
        );
        let taken = d.take_for_host(&Default::default(), None, &Default::default());
        assert_eq!(*taken.state, state);
        assert_eq!((taken.failed.0.len(), &taken.warnings), (failed, &warnings));
        assert_eq!(taken.state.routes.len(), 1);
        assert!(matches!(
            &taken.state.links["tap0"].kind,
            LinkKind::Tap(t) if t.owner == Some(Ident::Id(0))
        ));
        assert_eq!(d.state, reconcilers::model::State::default());
    }

    #[test]
    fn a_state_the_host_changes_nothing_in_is_planned_as_it_is_not_copied() {
        let yaml = "links:\n  tap0: { kind: tap, tap: { owner: 0 } }\n  br0:\n    kind: bridge\n    addresses: [10.0.0.1/24]\n  eth9: { kind: external }\nroutes:\n  - { to: 10.9.0.0/16, via: 10.0.0.254 }\n";
        let d = load_str(yaml, Path::new("t.yaml")).expect("valid");
        let h = d.for_host(&Default::default(), None, &Default::default());
        assert!(matches!(h.state, Cow::Borrowed(s) if std::ptr::eq(s, &d.state)));
        // The host's facts are still checked: eth9 is not on this (empty) host.
        assert_eq!(h.failed.0.len(), 1, "{:?}", h.failed);
    }

    #[test]
    fn a_tap_owner_outside_its_group_is_a_warning_before_any_write_not_a_refusal() {
        // nobody's group is nogroup, not root; root is in root.
        let yaml = "links:\n  tap0: { kind: tap, tap: { owner: nobody, group: root } }\n  tap1: { kind: tap, tap: { owner: nobody, group: nogroup } }\n  tap2: { kind: tap, tap: { owner: 0, group: 0 } }\n";
        let d = load_str(yaml, Path::new("t.yaml")).expect("valid");
        let h = d.for_host(&Default::default(), None, &Default::default());
        assert!(h.failed.0.is_empty(), "{}", h.failed);
        // Only the group warnings: whether nobody may open /dev/net/tun depends on this
        // machine's mode of it (Debian's 0666; 0600 seen in a VM), which adds a warning of
        // its own for tap1 there.
        let about: Vec<&String> = h
            .warnings
            .iter()
            .filter(|w| w.contains("tap ") && w.contains("is not a member of its group"))
            .collect();
        assert_eq!(about.len(), 1, "{:?}", h.warnings);
        assert!(
            !h.warnings.iter().any(|w| w.contains("tap tap2")),
            "root's tap has nothing to warn about: {:?}",
            h.warnings
        );
        assert!(
            about[0].starts_with(
                "t.yaml:2:36: the owner nobody of tap tap0 is not a member of its group root"
            ),
            "{}",
            about[0]
        );
        assert!(about[0].contains("EPERM"), "{}", about[0]);
    }
}
