//! An in-memory kernel: applies ops to a `State` with the kernel's observable rules (keys,
//! EEXIST/ENODEV, links taking their addresses and routes with them, aliases marking
//! ownership), so planning can be tested without root and without a namespace.

use crate::model::dhcp::DhcpOp;
use crate::model::firewall::FirewallOp;
use crate::model::{
    Address, BridgeOpts, Link, LinkKind, MacAddr, Route, Rule, State, TapOpts, LINK_ALIAS,
};
use crate::plan::{LinkSet, Op};

use super::Kernel;
use crate::error::KernelError;

/// A fake kernel holding its state in memory.
#[derive(Clone, Debug, Default)]
pub struct FakeKernel {
    /// The current state (ownership flags included). Tests may seed it with foreign objects.
    pub state: State,
    writes: u64,
    next_mac: u8,
}

impl FakeKernel {
    /// A fake kernel that starts from `state`.
    pub fn new(state: State) -> FakeKernel {
        FakeKernel {
            state,
            writes: 0,
            next_mac: 1,
        }
    }

    fn apply_one(&mut self, op: &Op) -> Result<(), KernelError> {
        let err =
            |what: &str, obj: String, errno: i32| Err(KernelError::new(what, obj, Some(errno)));
        match op {
            Op::CreateLink(l) => {
                if self.state.links.contains_key(&l.name) {
                    return err("create", format!("link {}", l.name), libc::EEXIST);
                }
                let mut link = Link::new(&l.name, observed_kind(&l.kind));
                link.mtu = Some(1500);
                link.mac = Some(MacAddr([0x52, 0x54, 0, 0, 0, self.next_mac]));
                self.next_mac = self.next_mac.wrapping_add(1);
                link.up = Some(false);
                if let LinkKind::Veth(v) = &l.kind {
                    if self.state.links.contains_key(&v.peer) {
                        return err("create", format!("link {}", v.peer), libc::EEXIST);
                    }
                    let mut peer = link.clone();
                    peer.name = v.peer.clone();
                    peer.kind = LinkKind::Veth(crate::model::VethOpts {
                        peer: l.name.clone(),
                    });
                    peer.mac = Some(MacAddr([0x52, 0x54, 0, 0, 1, self.next_mac]));
                    self.state.add_link(peer);
                }
                self.state.add_link(link);
                Ok(())
            }
            Op::SetLink(set) => self.set_link(set),
            Op::SetTap { name, opts } => match self.state.links.get_mut(name) {
                Some(Link {
                    kind: LinkKind::Tap(t),
                    ..
                }) => {
                    t.owner = opts.owner.clone();
                    t.group = opts.group.clone();
                    t.vnet_hdr = Some(opts.vnet_hdr.unwrap_or(false));
                    Ok(())
                }
                _ => err("set", format!("tap {name}"), libc::ENODEV),
            },
            Op::DeleteLink(name) => {
                let Some(link) = self.state.links.remove(name) else {
                    return Ok(()); // deletes are idempotent
                };
                let mut gone = vec![name.clone()];
                if let LinkKind::Veth(v) = &link.kind {
                    self.state.links.remove(&v.peer);
                    gone.push(v.peer.clone());
                }
                for l in self.state.links.values_mut() {
                    if l.master.as_ref().is_some_and(|m| gone.contains(m)) {
                        l.master = None;
                    }
                }
                self.state.addresses.retain(|(l, _), _| !gone.contains(l));
                self.state.routes.retain(|_, r| {
                    !r.nexthops
                        .iter()
                        .any(|n| n.dev.as_ref().is_some_and(|d| gone.contains(d)))
                });
                Ok(())
            }
            Op::AddAddress(a) => {
                if !self.state.links.contains_key(&a.link) {
                    return err(
                        "add",
                        format!("address {} on {}", a.address, a.link),
                        libc::ENODEV,
                    );
                }
                if self.state.addresses.contains_key(&a.key()) {
                    return err(
                        "add",
                        format!("address {} on {}", a.address, a.link),
                        libc::EEXIST,
                    );
                }
                self.state.add_address(Address {
                    owned: true,
                    ..a.clone()
                });
                Ok(())
            }
            Op::DeleteAddress(a) => {
                self.state.addresses.remove(&a.key());
                Ok(())
            }
            Op::AddRoute(r) | Op::ReplaceRoute(r) => {
                let obj = format!("route {}", crate::routes::id(r));
                if matches!(op, Op::AddRoute(_)) && self.state.routes.contains_key(&r.key()) {
                    return err("add", obj, libc::EEXIST);
                }
                for n in &r.nexthops {
                    if let Some(d) = &n.dev {
                        if !self.state.links.contains_key(d) {
                            return err("add", obj, libc::ENODEV);
                        }
                    }
                }
                self.state.add_route(Route {
                    owned: true,
                    ..r.clone()
                });
                Ok(())
            }
            Op::DeleteRoute(r) => {
                self.state.routes.remove(&r.key());
                Ok(())
            }
            Op::AddRule(r) => {
                if self.state.rules.contains_key(&r.key()) {
                    return err("add", format!("rule {}", crate::rules::id(r)), libc::EEXIST);
                }
                self.state.add_rule(Rule {
                    owned: true,
                    ..r.clone()
                });
                Ok(())
            }
            Op::DeleteRule(r) => {
                self.state.rules.remove(&r.key());
                Ok(())
            }
            Op::Firewall(FirewallOp::Replace(f)) => {
                self.state.firewall = Some(f.clone());
                Ok(())
            }
            Op::Firewall(FirewallOp::Delete) => {
                self.state.firewall = None;
                Ok(())
            }
            Op::Dhcp(DhcpOp::Apply(d)) => {
                self.state.dhcp.insert(d.bridge.clone(), d.clone());
                Ok(())
            }
            Op::Dhcp(DhcpOp::Stop(bridge)) => {
                self.state.dhcp.remove(bridge);
                Ok(())
            }
            Op::SetSysctl { name, value } => {
                self.state
                    .sysctls
                    .insert(name.clone(), crate::model::normalize_sysctl_value(value));
                Ok(())
            }
        }
    }

    fn set_link(&mut self, set: &LinkSet) -> Result<(), KernelError> {
        let obj = format!("link {}", set.name);
        if let Some(Some(m)) = &set.master {
            match self.state.links.get(m) {
                Some(Link {
                    kind: LinkKind::Bridge(_),
                    ..
                }) if *m != set.name => {}
                Some(_) => return Err(KernelError::new("set", obj, Some(libc::EINVAL))),
                None => return Err(KernelError::new("set", obj, Some(libc::ENODEV))),
            }
        }
        let Some(link) = self.state.links.get_mut(&set.name) else {
            return Err(KernelError::new("set", obj, Some(libc::ENODEV)));
        };
        if let Some(alias) = &set.alias {
            link.owned = alias == LINK_ALIAS;
        }
        if let Some(mtu) = set.mtu {
            link.mtu = Some(mtu);
        }
        if let Some(mac) = set.mac {
            link.mac = Some(mac);
        }
        if let Some(up) = set.up {
            link.up = Some(up);
        }
        if let Some(master) = &set.master {
            link.master = master.clone();
        }
        if let (Some(want), LinkKind::Bridge(have)) = (&set.bridge, &mut link.kind) {
            if want.stp.is_some() {
                have.stp = want.stp;
            }
            if want.forward_delay.is_some() {
                have.forward_delay = want.forward_delay;
            }
        }
        Ok(())
    }
}

/// What the kernel reports for a link created with `kind`: every option filled in.
fn observed_kind(kind: &LinkKind) -> LinkKind {
    match kind {
        LinkKind::Bridge(b) => LinkKind::Bridge(BridgeOpts {
            stp: Some(b.stp.unwrap_or(false)),
            forward_delay: Some(b.forward_delay.unwrap_or(1500)),
        }),
        LinkKind::Tap(t) => LinkKind::Tap(TapOpts {
            owner: t.owner.clone(),
            group: t.group.clone(),
            vnet_hdr: Some(t.vnet_hdr.unwrap_or(false)),
            multi_queue: Some(t.multi_queue.unwrap_or(false)),
        }),
        LinkKind::Vxlan(v) => {
            let mut v = v.clone();
            v.port = Some(v.port.unwrap_or(4789));
            LinkKind::Vxlan(v)
        }
        other => other.clone(),
    }
}

impl Kernel for FakeKernel {
    async fn observe(&mut self, sysctls: &[String]) -> Result<State, KernelError> {
        let mut s = self.state.clone();
        s.sysctls.retain(|k, _| sysctls.contains(k));
        // Addresses on links netconverge owns are its own, as on the real kernel.
        for a in s.addresses.values_mut() {
            if s.links.get(&a.link).is_some_and(|l| l.owned) {
                a.owned = true;
            }
        }
        Ok(s)
    }

    async fn apply(&mut self, ops: &[Op]) -> Vec<Result<(), KernelError>> {
        ops.iter()
            .map(|op| {
                self.writes += 1;
                self.apply_one(op)
            })
            .collect()
    }

    fn writes(&self) -> u64 {
        self.writes
    }
}
