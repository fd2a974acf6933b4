//! An in-memory kernel: applies ops to a `State` with the kernel's observable rules (keys,
//! EEXIST/ENODEV, links taking their addresses and routes with them, aliases marking
//! ownership), so planning can be tested without root and without a namespace.
//!
//! The services are kept the way the real host keeps them, so that their observe and apply
//! sequences (`kernel::services`) run unchanged: netconverge's nftables tables as the text nft
//! would list (see [`firewall::FakeNft`]), a neighbour table, and the dnsmasq instances as their
//! files plus a running flag.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use crate::dhcp::config;
use crate::model::dhcp::{DhcpOp, DhcpServer};
use crate::model::firewall::FirewallOp;
use crate::model::object::ObjectRef;
use crate::model::DEFAULT_PROTOCOL;
use crate::model::{
    Address, BridgeOpts, Link, LinkKind, MacAddr, Route, Rule, State, TapOpts, VethOpts, LINK_ALIAS,
};
use crate::plan::{LinkSet, Op};

use super::{services, Kernel};
use crate::error::KernelError;

pub mod firewall;

/// A fake kernel holding its state in memory.
#[derive(Clone, Debug, Default)]
pub struct FakeKernel {
    /// The network (links, addresses, routes, rules, sysctls; ownership flags included). Tests
    /// may seed it with foreign objects. Its `firewall` and `dhcp` are not used: the firewall
    /// lives in `nft` and the services in `dhcp`, as on a real host.
    pub state: State,
    /// netconverge's nftables tables.
    pub nft: firewall::FakeNft,
    /// Complete neighbour entries: (address, device) → MAC.
    pub neighbours: BTreeMap<(IpAddr, String), MacAddr>,
    /// Hosts that answer a neighbour probe: probing one enters it into `neighbours`.
    pub answering: BTreeMap<(IpAddr, String), MacAddr>,
    /// The dnsmasq instances by bridge: their files as written and whether they run (set
    /// `running` to false to play a crashed instance).
    pub dhcp: BTreeMap<String, DhcpServer>,
    /// The rtnetlink protocols of foreign routes, rules and addresses, by identity, as a test
    /// seeds them or a revert writes them back (0, "none", is never kept); netconverge's own
    /// objects report [`crate::model::DEFAULT_PROTOCOL`].
    pub protocols: BTreeMap<ObjectRef, u8>,
    /// Fault injection: the write with this number (counted as [`Kernel::writes`] counts,
    /// the first write of this kernel being 1) fails with this errno and changes nothing.
    pub fail_write: Option<(u64, i32)>,
    /// The write that `fail_write` failed, once it has.
    pub injected: Option<Op>,
    writes: u64,
    next_mac: u8,
    /// The protocol of the batch being written by `apply_as`, if any.
    writing_as: Option<u8>,
}

impl FakeKernel {
    /// A fake kernel that starts from `state`: its network as it is, its firewall loaded as
    /// netconverge loads one, its DHCP services as given.
    ///
    /// # Panics
    ///
    /// When the seeded firewall's ruleset does not load (a test's mistake).
    pub fn new(mut state: State) -> FakeKernel {
        let firewall = state.firewall.take();
        let dhcp = std::mem::take(&mut state.dhcp);
        let mut k = FakeKernel {
            state,
            dhcp,
            next_mac: 1,
            ..FakeKernel::default()
        };
        if let Some(f) = firewall {
            // Nothing in the fake ever waits, so the sequence completes in one poll.
            let op = FirewallOp::Replace(f);
            if let Err(e) = futures::executor::block_on(services::apply_firewall(&mut k, &op)) {
                panic!("the seeded firewall does not load: {e}");
            }
        }
        k
    }

    /// One write. The firewall goes through the same sequence as on the real kernel.
    async fn apply_one(&mut self, op: &Op) -> Result<(), KernelError> {
        match op {
            Op::CreateLink(l) => self.create_link(l),
            Op::SetLink(set) => self.set_link(set),
            Op::SetTap { name, opts } => self.set_tap(name, opts),
            Op::DeleteLink(name) => {
                self.delete_link(name);
                Ok(())
            }
            Op::AddAddress(a) => self.add_address(a),
            Op::DeleteAddress(a) => {
                self.state.addresses.remove(&a.key());
                Ok(())
            }
            Op::AddRoute(r) => self.add_route(r, false),
            Op::ReplaceRoute(r) => self.add_route(r, true),
            Op::DeleteRoute(r) => {
                self.state.routes.remove(&r.key());
                Ok(())
            }
            Op::AddRule(r) => self.add_rule(r),
            Op::DeleteRule(r) => {
                self.state.rules.remove(&r.key());
                Ok(())
            }
            Op::SetSysctl { name, value } => {
                self.state
                    .sysctls
                    .insert(name.clone(), crate::model::normalize_sysctl_value(value));
                Ok(())
            }
            Op::Firewall(op) => services::apply_firewall(self, op).await,
            Op::Dhcp(op) => self.apply_dhcp(op).await,
        }
    }

    /// Whether the object being written is netconverge's, and record its protocol under
    /// `id` (dropping what an earlier object of that identity had).
    fn mark(&mut self, id: ObjectRef) -> bool {
        self.protocols.remove(&id);
        match self.writing_as {
            None => true,
            Some(p) if p == DEFAULT_PROTOCOL => true,
            Some(0) => false,
            Some(p) => {
                self.protocols.insert(id, p);
                false
            }
        }
    }

    fn create_link(&mut self, l: &Link) -> Result<(), KernelError> {
        if self.state.links.contains_key(&l.name) {
            return err("create", format!("link {}", l.name), libc::EEXIST);
        }
        let mut link = Link::new(&l.name, observed_kind(&l.kind));
        link.mtu = Some(1500);
        link.mac = Some(MacAddr([0x52, 0x54, 0, 0, 0, self.next_mac]));
        self.next_mac = self.next_mac.wrapping_add(1);
        link.up = Some(false);
        // Marked at creation, as the real kernel does it (creation group, tap alias before
        // TUNSETPERSIST).
        link.owned = true;
        if let LinkKind::Veth(v) = &l.kind {
            if self.state.links.contains_key(&v.peer) {
                return err("create", format!("link {}", v.peer), libc::EEXIST);
            }
            let mut peer = link.clone();
            peer.name = v.peer.clone();
            peer.kind = LinkKind::Veth(VethOpts {
                peer: l.name.clone(),
            });
            peer.mac = Some(MacAddr([0x52, 0x54, 0, 0, 1, self.next_mac]));
            self.state.add_link(peer);
        }
        self.state.add_link(link);
        Ok(())
    }

    /// A process (a VM) opens the tap `name` with `queues` queues and its own `vnet_hdr`
    /// choice, as qemu's `-netdev tap` does; `queues` 0 closes it. Returns false when there is
    /// no such tap.
    pub fn open_tap(&mut self, name: &str, queues: u32, vnet_hdr: bool) -> bool {
        match self.state.links.get_mut(name) {
            Some(Link {
                kind: LinkKind::Tap(t),
                ..
            }) => {
                t.open_queues = queues;
                if queues > 0 {
                    t.vnet_hdr = Some(vnet_hdr);
                }
                true
            }
            _ => false,
        }
    }

    fn set_tap(&mut self, name: &str, opts: &TapOpts) -> Result<(), KernelError> {
        match self.state.links.get_mut(name) {
            // As the tun driver: a single-queue tap takes one opener.
            Some(Link {
                kind: LinkKind::Tap(t),
                ..
            }) if t.in_use() && t.multi_queue != Some(true) => {
                err("set", format!("link {name}"), libc::EBUSY)
            }
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
        }
    }

    /// Delete a link (and a veth's peer) with what the kernel drops along: port memberships,
    /// addresses and routes through it. Deleting a missing link is fine (deletes are
    /// idempotent).
    fn delete_link(&mut self, name: &str) {
        let Some(link) = self.state.links.remove(name) else {
            return;
        };
        let mut gone = vec![name.to_string()];
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
            !r.nexthops.iter().any(|n| {
                n.dev
                    .as_deref()
                    .is_some_and(|d| gone.iter().any(|g| g == d))
            })
        });
    }

    fn add_address(&mut self, a: &Address) -> Result<(), KernelError> {
        let obj = || format!("address {} on {}", a.address, a.link);
        if !self.state.links.contains_key(&a.link) {
            return err("add", obj(), libc::ENODEV);
        }
        if self.state.addresses.contains_key(&a.key()) {
            return err("add", obj(), libc::EEXIST);
        }
        let owned = self.mark(ObjectRef::address(a));
        self.state.add_address(Address { owned, ..a.clone() });
        Ok(())
    }

    /// Add a route, or with `replace` put it in place of the one with its key.
    fn add_route(&mut self, r: &Route, replace: bool) -> Result<(), KernelError> {
        let obj = format!("route {}", r.id());
        if !replace && self.state.routes.contains_key(&r.key()) {
            return err("add", obj, libc::EEXIST);
        }
        for n in &r.nexthops {
            if let Some(d) = &n.dev {
                if !self.state.links.contains_key(d.as_str()) {
                    return err("add", obj, libc::ENODEV);
                }
            }
        }
        if let Some(old) = self.state.routes.get(&r.key()) {
            self.protocols.remove(&ObjectRef::route(old));
        }
        let owned = self.mark(ObjectRef::route(r));
        self.state.add_route(Route { owned, ..r.clone() });
        Ok(())
    }

    fn add_rule(&mut self, r: &Rule) -> Result<(), KernelError> {
        if self.state.rules.contains_key(&r.key()) {
            return err("add", format!("rule {}", r.id()), libc::EEXIST);
        }
        let owned = self.mark(ObjectRef::rule(r));
        self.state.add_rule(Rule { owned, ..r.clone() });
        Ok(())
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
            open_queues: 0,
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
    /// The longest prefix of the main table that holds `dst` (lowest metric first); the fake
    /// models no policy rules in its lookup.
    async fn route_get(&mut self, dst: IpAddr) -> Result<Option<crate::model::Route>, KernelError> {
        Ok(self
            .state
            .routes
            .values()
            .filter(|r| r.table == crate::model::TABLE_MAIN && r.to.contains(&dst))
            .max_by_key(|r| (r.to.prefix_len(), std::cmp::Reverse(r.metric)))
            .cloned())
    }

    async fn observe(&mut self, sysctls: &[String]) -> Result<State, KernelError> {
        let mut s = self.state.clone();
        s.sysctls.retain(|k, _| sysctls.contains(k));
        // Addresses on links netconverge owns are its own, as on the real kernel.
        for a in s.addresses.values_mut() {
            if s.links.get(&a.link).is_some_and(|l| l.owned) {
                a.owned = true;
            }
        }
        services::observe(self, &mut s).await?;
        Ok(s)
    }

    async fn apply(&mut self, ops: &[Op]) -> Vec<Result<(), KernelError>> {
        let mut out = Vec::with_capacity(ops.len());
        for op in ops {
            self.writes += 1;
            if let Some((n, errno)) = self.fail_write {
                if n == self.writes {
                    self.injected = Some(op.clone());
                    out.push(Err(KernelError::new(
                        "inject",
                        format!("{op:?}"),
                        Some(errno),
                    )
                    .with_hint("fault injected by the test")));
                    continue;
                }
            }
            out.push(self.apply_one(op).await);
        }
        out
    }

    fn writes(&self) -> u64 {
        self.writes
    }

    async fn protocols(&mut self) -> Result<crate::snapshot::Protocols, KernelError> {
        let s = &self.state;
        let marked = s
            .addresses
            .values()
            .map(|a| (ObjectRef::address(a), a.owned))
            .chain(s.routes.values().map(|r| (ObjectRef::route(r), r.owned)))
            .chain(s.rules.values().map(|r| (ObjectRef::rule(r), r.owned)));
        Ok(marked
            .filter_map(|(id, owned)| {
                let p = if owned {
                    Some(DEFAULT_PROTOCOL)
                } else {
                    self.protocols.get(&id).copied()
                };
                p.map(|p| (id, p))
            })
            .collect())
    }

    async fn apply_as(&mut self, protocol: u8, ops: &[Op]) -> Vec<Result<(), KernelError>> {
        self.writing_as = Some(protocol);
        let results = self.apply(ops).await;
        self.writing_as = None;
        results
    }

    async fn read_sysctls(
        &mut self,
        names: &[String],
    ) -> Result<BTreeMap<String, String>, KernelError> {
        let mut s = self.state.sysctls.clone();
        s.retain(|k, _| names.contains(k));
        Ok(s)
    }

    async fn list_firewall(&mut self) -> Result<Option<String>, KernelError> {
        Ok(self.nft.listing())
    }

    async fn load_firewall(&mut self, script: &str) -> Result<(), KernelError> {
        self.nft.load(script)
    }

    async fn delete_firewall(&mut self) -> Result<(), KernelError> {
        self.nft.tables.clear();
        Ok(())
    }

    async fn dhcp_instances(&mut self) -> Result<BTreeMap<String, DhcpServer>, KernelError> {
        // As the real observe does: the settings are what the files say.
        Ok(self
            .dhcp
            .iter()
            .map(|(bridge, d)| {
                let settings = config::parse(&d.config, &d.hosts);
                (
                    bridge.clone(),
                    DhcpServer {
                        settings,
                        ..d.clone()
                    },
                )
            })
            .collect())
    }

    async fn apply_dhcp(&mut self, op: &DhcpOp) -> Result<(), KernelError> {
        match op {
            DhcpOp::Apply(d) => {
                let running = DhcpServer {
                    running: true,
                    ..d.clone()
                };
                self.dhcp.insert(d.bridge.clone(), running);
            }
            DhcpOp::Stop(bridge) => {
                self.dhcp.remove(bridge);
            }
        }
        Ok(())
    }

    async fn neighbour(&mut self, ip: IpAddr, dev: &str) -> Result<Option<MacAddr>, KernelError> {
        Ok(self.neighbours.get(&(ip, dev.to_string())).copied())
    }

    async fn probe_neighbour(
        &mut self,
        ip: IpAddr,
        dev: &str,
        _wait: Duration,
    ) -> Result<Option<MacAddr>, KernelError> {
        // A host that answers does so at once; one that does not is not waited for.
        let key = (ip, dev.to_string());
        let mac = self.answering.get(&key).copied();
        if let Some(m) = mac {
            self.neighbours.insert(key, m);
        }
        Ok(mac)
    }
}

/// A failed write with an errno.
fn err(operation: &str, object: String, errno: i32) -> Result<(), KernelError> {
    Err(KernelError::new(operation, object, Some(errno)))
}
