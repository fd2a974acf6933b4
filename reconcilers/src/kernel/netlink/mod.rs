//! The real kernel: rtnetlink for links, addresses, routes, rules and the neighbour table,
//! `/dev/net/tun` for taps, `/proc/sys` for sysctls, the `nft` program for netconverge's tables
//! and dnsmasq for the DHCP services — all in the network namespace of the calling thread (use
//! `netns::run_in_netns` to pick one).
//!
//! One netlink connection serves the requests and most dumps. Dumps run one after the other
//! (the kernel allows one dump per socket at a time); the writes of a batch are pipelined with
//! up to `MAX_IN_FLIGHT` requests outstanding, since the kernel serialises on its rtnl lock and
//! deeper pipelines gain nothing (see the measurements in the notes). The observation's link
//! and route dumps are read as bytes on a socket of their own each (`raw.rs`), so that only
//! the attributes netconverge reads are decoded.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::stream::{self, StreamExt};
use netlink_packet_core::{
    NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST,
};
use netlink_packet_route::address::AddressMessage;
use netlink_packet_route::link::LinkMessage;
use netlink_packet_route::route::RouteMessage;
use netlink_packet_route::rule::RuleMessage;
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::AsyncSocket;
use rtnetlink::Handle;

use super::{services, Kernel};
use crate::error::KernelError;
use crate::links::netlink::{self as links, IndexByName};
use crate::model::dhcp::{DhcpOp, DhcpServer};
use crate::model::{MacAddr, Route, RouteKey, RoutesBuilder, State};
use crate::plan::Op;
use crate::{addresses, dhcp, firewall, routes, rules, sysctl};

mod lookup;
mod neighbours;
mod notices;
mod ops;
mod protocols;
pub(crate) mod raw;

use ops::needs_index;

/// Most write requests outstanding on the connection at once.
pub const MAX_IN_FLIGHT: usize = 64;

/// How often a dump the kernel reports as interrupted (NLM_F_DUMP_INTR: the table changed
/// while it was read) is retried before giving up.
const DUMP_ATTEMPTS: usize = 5;

/// Receive buffer of the connection: large enough for the acks of a full pipeline and for
/// dump chunks without drops.
const RX_BUFFER: libc::c_int = 4 * 1024 * 1024;

/// Errnos that mean "already gone": a delete that gets one has nothing left to do.
const GONE: [i32; 4] = [libc::ENOENT, libc::ESRCH, libc::ENODEV, libc::EADDRNOTAVAIL];

/// The error of a dump interrupted [`DUMP_ATTEMPTS`] times.
fn kept_changing(what: &str) -> KernelError {
    KernelError::new("dump", what, Some(libc::EINTR))
        .with_hint("the kernel kept changing during the dump; try again")
}

/// `Ok` unless a message of a dump of `kind`s could not be decoded (`undecodable`, the
/// decoder's error). Such a dump fails rather than leave the object out: an object missing
/// from the view would be planned as absent.
fn decoded(kind: &str, undecodable: Option<String>) -> Result<(), KernelError> {
    match undecodable {
        None => Ok(()),
        Some(e) => Err(KernelError::new("dump", format!("{kind}s"), None)
            .with_hint(format!("a {kind} message could not be decoded ({e})"))),
    }
}

/// Why one netlink request failed, before it becomes a `KernelError` naming its object.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RequestError {
    /// The kernel answered with an errno.
    Errno(i32),
    /// No answer: the connection broke.
    Lost(String),
}

/// The rtnetlink-backed `Kernel`.
#[derive(Debug)]
pub struct RtnlKernel {
    handle: Handle,
    protocol: u8,
    writes: AtomicU64,
    /// The namespace's name, for services that keep files per namespace (dnsmasq).
    netns: Option<String>,
    /// Link name → index from the last dump, until an op creates or deletes a link: a pass
    /// observes, then applies phases of which only the link phases change indexes, so the
    /// address and route phases need no dump of their own (20 ms each with 1,000 links).
    index_cache: Option<IndexByName>,
    /// The IPv4 routes kept from notices between observations, for a long-running watcher
    /// ([`RtnlKernel::with_route_cache`]).
    route_cache: Option<CachedRoutes>,
    /// IPv4 route dumps made by observations (the others read the route cache).
    route_dumps: u64,
}

/// A route cache and the subscription that keeps it.
#[derive(Debug)]
struct CachedRoutes {
    notices: notices::Notices,
    cache: routes::cache::RouteCache,
}

impl RtnlKernel {
    /// Open a netlink connection in the calling thread's network namespace; `protocol` is the
    /// ownership mark written on routes, rules and addresses. Must be called inside a tokio
    /// runtime (the connection runs as a spawned task of it).
    pub fn connect(protocol: u8) -> Result<RtnlKernel, KernelError> {
        Self::connect_in(protocol, None)
    }

    /// Like `connect`, naming the namespace the calling thread is in (`None`: the host's own),
    /// for services that keep per-namespace files.
    pub fn connect_in(protocol: u8, netns: Option<String>) -> Result<RtnlKernel, KernelError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(
                KernelError::new("open", "rtnetlink connection", None).with_hint(
                    "RtnlKernel::connect must run inside a tokio runtime (see run_in_netns)",
                ),
            );
        }
        let (mut conn, handle, _unsolicited) = rtnetlink::new_connection().map_err(|e| {
            let err = KernelError::io("open", "rtnetlink connection", e);
            match err.errno {
                Some(libc::EPERM) | Some(libc::EACCES) => {
                    err.with_hint("needs CAP_NET_ADMIN (run as root)")
                }
                _ => err,
            }
        })?;
        // Acks and Done are forwarded so that a request whose stream ends without one is known
        // to have lost its answer (a broken connection) instead of passing for a success.
        conn.set_forward_ack(true);
        conn.set_forward_done(true);
        // Best effort: without it the default buffer still works for moderate pipelines.
        let _ = conn.socket_mut().socket_mut().set_rx_buf_sz(RX_BUFFER);
        tokio::spawn(conn);
        Ok(RtnlKernel {
            handle,
            protocol,
            writes: AtomicU64::new(0),
            netns,
            index_cache: None,
            route_cache: None,
            route_dumps: 0,
        })
    }

    /// Keep the IPv4 routes between observations, from the kernel's notices
    /// (`routes::cache`): an observation then dumps them only when something happened that
    /// the notices do not describe. For a watcher, which observes again and again; a single
    /// pass gains nothing. Without the subscription (it cannot be opened), every observation
    /// dumps, as without the cache.
    pub fn with_route_cache(mut self) -> RtnlKernel {
        match notices::Notices::open() {
            Ok(notices) => {
                self.route_cache = Some(CachedRoutes {
                    notices,
                    cache: Default::default(),
                })
            }
            Err(e) => tracing::warn!("no route cache ({e}): every pass dumps the routes"),
        }
        self
    }

    /// How many times observations dumped the IPv4 routes; with the route cache, the other
    /// observations read it instead.
    pub fn route_dumps(&self) -> u64 {
        self.route_dumps
    }

    /// The protocol number this kernel writes and recognises as its own.
    pub fn protocol(&self) -> u8 {
        self.protocol
    }

    /// Send one dump request and collect the answers, retrying interrupted dumps.
    async fn dump(
        &self,
        what: &str,
        request: RouteNetlinkMessage,
    ) -> Result<Vec<RouteNetlinkMessage>, KernelError> {
        let err = |errno: Option<i32>, hint: &str| {
            KernelError::new("dump", what, errno).with_hint(hint.to_string())
        };
        for _ in 0..DUMP_ATTEMPTS {
            let mut req = NetlinkMessage::from(request.clone());
            req.header.flags = NLM_F_REQUEST | NLM_F_DUMP;
            let mut answers = self
                .handle
                .clone()
                .request(req)
                .map_err(|e| err(None, &format!("netlink connection closed ({e})")))?;
            let mut out = Vec::new();
            let mut interrupted = false;
            let mut finished = false;
            while let Some(msg) = answers.next().await {
                if msg.header.flags & NLM_F_DUMP_INTR != 0 {
                    interrupted = true;
                }
                match msg.payload {
                    NetlinkPayload::InnerMessage(m) => out.push(m),
                    NetlinkPayload::Done(d) => {
                        if d.code != 0 {
                            return Err(err(Some(-d.code), "the kernel aborted the dump"));
                        }
                        finished = true;
                    }
                    NetlinkPayload::Error(e) => match e.code {
                        Some(code) => {
                            let errno = -code.get();
                            let hint = if errno == libc::EPERM {
                                "needs CAP_NET_ADMIN (run as root)"
                            } else {
                                "the kernel refused the dump"
                            };
                            return Err(err(Some(errno), hint));
                        }
                        None => finished = true,
                    },
                    NetlinkPayload::Overrun(_) => {
                        return Err(err(Some(libc::ENOBUFS), "netlink receive buffer overrun"))
                    }
                    _ => {}
                }
            }
            if !finished {
                return Err(err(None, "the dump ended early (netlink connection lost)"));
            }
            if !interrupted {
                return Ok(out);
            }
            tracing::debug!(what, "dump interrupted by a concurrent change, retrying");
        }
        Err(kept_changing(what))
    }

    /// All links of the namespace, with the attributes netconverge reads (see
    /// `links::decode_link`).
    pub async fn dump_links(&self) -> Result<Vec<LinkMessage>, KernelError> {
        let request = RouteNetlinkMessage::GetLink(links::read_message(None));
        let mut undecodable = None;
        let decode = |out: &mut Vec<LinkMessage>, kind: u16, payload: &[u8]| {
            if kind == libc::RTM_NEWLINK {
                match links::decode_link(payload) {
                    Ok(m) => out.push(m),
                    Err(e) => undecodable = Some(e.to_string()),
                }
            }
        };
        let links = self.dump_raw("links", request, Vec::new, decode).await?;
        decoded("link", undecodable).map(|()| links)
    }

    /// A dump read as bytes on a socket of its own ([`raw`]), folded into `start()` message by
    /// message as it arrives (so a large dump is never held as messages: at 10⁶ routes they
    /// were some 60 MB beside the parsed routes); an interrupted dump starts again from a
    /// fresh `start()`, as [`RtnlKernel::dump`] does.
    async fn dump_raw<T>(
        &self,
        what: &str,
        request: RouteNetlinkMessage,
        start: impl Fn() -> T,
        mut fold: impl FnMut(&mut T, u16, &[u8]),
    ) -> Result<T, KernelError> {
        for _ in 0..DUMP_ATTEMPTS {
            let mut out = start();
            let each = |kind: u16, payload: &[u8]| fold(&mut out, kind, payload);
            if raw::dump(what, request.clone(), each).await? == raw::Ended::Whole {
                return Ok(out);
            }
            tracing::debug!(what, "dump interrupted by a concurrent change, retrying");
        }
        Err(kept_changing(what))
    }

    /// Link name → index, freshly read (indexes change when links are recreated).
    pub async fn link_indexes(&self) -> Result<IndexByName, KernelError> {
        Ok(links::indexes_by_name(&self.dump_links().await?))
    }

    async fn dump_addresses(
        &self,
        family: AddressFamily,
    ) -> Result<Vec<AddressMessage>, KernelError> {
        let mut req = AddressMessage::default();
        req.header.family = family;
        let msgs = self
            .dump("addresses", RouteNetlinkMessage::GetAddress(req))
            .await?;
        Ok(msgs
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) => Some(a),
                _ => None,
            })
            .collect())
    }

    async fn dump_routes(&self, family: AddressFamily) -> Result<Vec<RouteMessage>, KernelError> {
        let mut req = RouteMessage::default();
        req.header.address_family = family;
        let msgs = self
            .dump("routes", RouteNetlinkMessage::GetRoute(req))
            .await?;
        Ok(msgs
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewRoute(r) => Some(r),
                _ => None,
            })
            .collect())
    }

    /// The routes of one family, read as bytes ([`raw`]) and parsed as the dump arrives into
    /// a map with full nodes; with the number of routes parsed (more than the map holds when
    /// two shared a key).
    async fn observe_routes(
        &self,
        family: AddressFamily,
        names: &links::NameByIndex,
    ) -> Result<(BTreeMap<RouteKey, Route>, usize), KernelError> {
        let mut req = RouteMessage::default();
        req.header.address_family = family;
        let mut undecodable = None;
        let parse = |(b, n): &mut (RoutesBuilder, usize), kind: u16, payload: &[u8]| {
            if kind != libc::RTM_NEWROUTE {
                return;
            }
            match routes::netlink::decode_route(payload, names, self.protocol) {
                Ok(Some(r)) => {
                    b.push(r);
                    *n += 1;
                }
                Ok(None) => {}
                Err(e) => undecodable = Some(e.to_string()),
            }
        };
        let request = RouteNetlinkMessage::GetRoute(req);
        let built = self.dump_raw("routes", request, Default::default, parse);
        let (builder, pushed) = built.await?;
        decoded("route", undecodable).map(|()| (builder.finish(), pushed))
    }

    /// The IPv4 routes: from the cache when the notices since the last observation kept it,
    /// else dumped (and cached again).
    async fn observe_ipv4_routes(
        &mut self,
        names: &links::NameByIndex,
    ) -> Result<BTreeMap<RouteKey, Route>, KernelError> {
        let Some(mut cached) = self.route_cache.take() else {
            self.route_dumps += 1;
            return Ok(self.observe_routes(AddressFamily::Inet, names).await?.0);
        };
        cached
            .notices
            .drain(&mut cached.cache, names, self.protocol);
        let routes = match cached.cache.routes() {
            Some(routes) => {
                let routes = routes.clone();
                #[cfg(debug_assertions)]
                self.check_cached(&routes, &mut cached, names).await;
                Ok(routes)
            }
            None => {
                self.route_dumps += 1;
                let dumped = self.observe_routes(AddressFamily::Inet, names).await;
                dumped.map(|(routes, pushed)| {
                    // A dump that a change overlapped may hold some routes from before it and
                    // some from after; the view starts only from a dump nothing overlapped.
                    if cached.notices.queued() == notices::Queued::Nothing {
                        cached.cache.fill(&routes, pushed);
                    }
                    routes
                })
            }
        };
        self.route_cache = Some(cached);
        routes
    }

    /// Debug builds (the tests) check every cached view against a dump, unless a notice
    /// arrived while it was dumped: then either may be the older, and the next observation
    /// applies the notice (an overrun found meanwhile makes the view unknown).
    #[cfg(debug_assertions)]
    async fn check_cached(
        &self,
        cached: &BTreeMap<RouteKey, Route>,
        state: &mut CachedRoutes,
        names: &links::NameByIndex,
    ) {
        let Ok((dumped, _)) = self.observe_routes(AddressFamily::Inet, names).await else {
            return;
        };
        match state.notices.queued() {
            notices::Queued::Nothing => {}
            notices::Queued::Notices => return,
            notices::Queued::Overrun => return state.cache.forget(),
        }
        let changed = cached.iter().filter(|(k, r)| dumped.get(*k) != Some(*r));
        let missing = dumped.iter().filter(|(k, _)| !cached.contains_key(*k));
        let differ: Vec<_> = changed.chain(missing).take(5).collect();
        assert!(
            differ.is_empty(),
            "the route cache differs from a dump at (first five, as cached or as dumped) {differ:#?}"
        );
    }

    async fn dump_rules(&self, family: AddressFamily) -> Result<Vec<RuleMessage>, KernelError> {
        let mut req = RuleMessage::default();
        req.header.family = family;
        let msgs = self
            .dump("rules", RouteNetlinkMessage::GetRule(req))
            .await?;
        Ok(msgs
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewRule(r) => Some(r),
                _ => None,
            })
            .collect())
    }

    /// One link by name (`None` when it does not exist).
    async fn get_link(&self, name: &str) -> Result<Option<LinkMessage>, KernelError> {
        let mut req = NetlinkMessage::from(RouteNetlinkMessage::GetLink(links::read_message(
            Some(name),
        )));
        req.header.flags = NLM_F_REQUEST;
        let object = links::link_id(name);
        let mut answers = self.handle.clone().request(req).map_err(|e| {
            KernelError::new("read", &object, None)
                .with_hint(format!("netlink connection closed ({e})"))
        })?;
        while let Some(msg) = answers.next().await {
            match msg.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(l)) => {
                    return Ok(Some(l))
                }
                NetlinkPayload::Error(e) => match e.code.map(|c| -c.get()) {
                    Some(libc::ENODEV) => return Ok(None),
                    Some(errno) => return Err(KernelError::new("read", &object, Some(errno))),
                    None => {}
                },
                _ => {}
            }
        }
        Err(KernelError::new("read", object, None).with_hint("no answer (netlink connection lost)"))
    }

    /// Send one write request (`flags` beyond NLM_F_REQUEST|NLM_F_ACK, which are always set)
    /// and wait for its acknowledgement. Counts as one write.
    async fn send(&self, msg: RouteNetlinkMessage, flags: u16) -> Result<(), RequestError> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        let mut req = NetlinkMessage::from(msg);
        req.header.flags = flags | NLM_F_REQUEST | NLM_F_ACK;
        let mut answers = self
            .handle
            .clone()
            .request(req)
            .map_err(|e| RequestError::Lost(format!("netlink connection closed ({e})")))?;
        while let Some(msg) = answers.next().await {
            if let NetlinkPayload::Error(e) = msg.payload {
                return match e.code {
                    Some(code) => Err(RequestError::Errno(-code.get())),
                    None => Ok(()),
                };
            }
        }
        Err(RequestError::Lost(
            "no acknowledgement (netlink connection lost); the write may or may not have happened"
                .into(),
        ))
    }

    /// `send` for a delete: an object that is already gone is success.
    async fn send_delete(&self, msg: RouteNetlinkMessage) -> Result<(), RequestError> {
        match self.send(msg, NLM_F_REQUEST | NLM_F_ACK).await {
            Err(RequestError::Errno(e)) if GONE.contains(&e) => Ok(()),
            other => other,
        }
    }

    /// The network writes of a batch, pipelined.
    async fn apply_network(&mut self, ops: &[&Op]) -> Vec<Result<(), KernelError>> {
        let cached = self.index_cache.take();
        let index: IndexByName = if ops.iter().any(|op| needs_index(op)) {
            match cached {
                Some(i) => i,
                None => match self.link_indexes().await {
                    Ok(i) => i,
                    Err(e) => return ops.iter().map(|_| Err(e.clone())).collect(),
                },
            }
        } else {
            cached.unwrap_or_default()
        };
        let this = &*self;
        let results = stream::iter(ops)
            .map(|op| this.apply_one(op, &index))
            .buffered(MAX_IN_FLIGHT)
            .collect()
            .await;
        let links_changed = ops
            .iter()
            .any(|op| matches!(op, Op::CreateLink(_) | Op::DeleteLink(_)));
        if !links_changed && !index.is_empty() {
            self.index_cache = Some(index);
        }
        results
    }
}

/// How long each part of an observation took, for `-vv` (`links 9.1ms, routes 12.0ms, …`):
/// which dump to look at when a pass is slow.
struct PartTimes {
    last: std::time::Instant,
    parts: Vec<(&'static str, Duration)>,
}

impl PartTimes {
    fn start() -> PartTimes {
        PartTimes {
            last: std::time::Instant::now(),
            parts: Vec::new(),
        }
    }

    /// The part `name` ended now.
    fn part(&mut self, name: &'static str) {
        let now = std::time::Instant::now();
        self.parts.push((name, now - self.last));
        self.last = now;
    }
}

impl std::fmt::Display for PartTimes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (name, took)) in self.parts.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}{name} {:.1?}", took)?;
        }
        Ok(())
    }
}

impl Kernel for RtnlKernel {
    async fn route_get(&mut self, dst: IpAddr) -> Result<Option<crate::model::Route>, KernelError> {
        self.lookup_route(dst).await
    }

    async fn observe(&mut self, sysctls: &[String]) -> Result<State, KernelError> {
        let mut state = State::default();
        let mut took = PartTimes::start();
        let link_msgs = self.dump_links().await?;
        let names = links::names_by_index(&link_msgs);
        self.index_cache = Some(links::indexes_by_name(&link_msgs));
        let mut owned_links = HashSet::new();
        for msg in &link_msgs {
            if let Some(link) = links::parse_link(msg, &names) {
                if link.owned {
                    owned_links.insert(link.name.clone());
                }
                state.add_link(link);
            }
        }
        drop(link_msgs);
        took.part("links");
        for family in [AddressFamily::Inet, AddressFamily::Inet6] {
            for msg in self.dump_addresses(family).await? {
                if let Some(a) =
                    addresses::netlink::parse_address(&msg, &names, &owned_links, self.protocol)
                {
                    state.add_address(a);
                }
            }
        }
        took.part("addresses");
        let dumps = self.route_dumps;
        state.routes = self.observe_ipv4_routes(&names).await?;
        let (mut ipv6, _) = self.observe_routes(AddressFamily::Inet6, &names).await?;
        state.routes.append(&mut ipv6);
        took.part(if self.route_dumps == dumps {
            "routes (IPv4 from the cache)"
        } else {
            "routes"
        });
        for family in [AddressFamily::Inet, AddressFamily::Inet6] {
            for msg in self.dump_rules(family).await? {
                if let Some(r) = rules::netlink::parse_rule(&msg, self.protocol) {
                    state.add_rule(r);
                }
            }
        }
        took.part("rules");
        state.sysctls = sysctl::read_all(sysctls)?;
        took.part("sysctls");
        services::observe(self, &mut state).await?;
        took.part("services");
        tracing::debug!(parts = %took, "observed the kernel");
        Ok(state)
    }

    async fn apply(&mut self, ops: &[Op]) -> Vec<Result<(), KernelError>> {
        // A batch is one phase, so it holds network writes or service ops, not both. Services
        // (a program run, files) go one at a time after the network writes: they need the
        // kernel mutably and have nothing to pipeline.
        let network: Vec<&Op> = ops.iter().filter(|op| !services::is_service(op)).collect();
        let mut network_results = if network.is_empty() {
            Vec::new()
        } else {
            self.apply_network(&network).await
        }
        .into_iter();
        let mut results = Vec::with_capacity(ops.len());
        for op in ops {
            let result = match services::apply(self, op).await {
                Some(r) => {
                    self.writes.fetch_add(1, Ordering::Relaxed);
                    Some(r)
                }
                None => network_results.next(),
            };
            results.push(result.unwrap_or_else(|| {
                Err(KernelError::new("apply", "batch", None)
                    .with_hint("no result for a network write (internal error)"))
            }));
        }
        results
    }

    fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    fn netns(&self) -> Option<&str> {
        self.netns.as_deref()
    }

    fn forget_cache(&mut self) {
        if let Some(cached) = self.route_cache.as_mut() {
            cached.cache.forget();
        }
    }

    async fn protocols(&mut self) -> Result<crate::snapshot::Protocols, KernelError> {
        self.dump_protocols().await
    }

    /// The protocol is the one field that marks what a write says about ownership, so it is
    /// swapped for the batch and put back, whatever the batch's outcome.
    async fn apply_as(&mut self, protocol: u8, ops: &[Op]) -> Vec<Result<(), KernelError>> {
        let ours = std::mem::replace(&mut self.protocol, protocol);
        let results = self.apply(ops).await;
        self.protocol = ours;
        results
    }

    async fn read_sysctls(
        &mut self,
        names: &[String],
    ) -> Result<BTreeMap<String, String>, KernelError> {
        sysctl::read_all(names)
    }

    async fn list_firewall(&mut self) -> Result<Option<String>, KernelError> {
        firewall::command::list()
    }

    async fn load_firewall(&mut self, script: &str) -> Result<(), KernelError> {
        firewall::command::load(script)
    }

    async fn check_firewall(&mut self, script: &str) -> Result<(), KernelError> {
        firewall::command::check(script)
    }

    async fn delete_firewall(&mut self) -> Result<(), KernelError> {
        firewall::command::delete()
    }

    async fn dhcp_instances(&mut self) -> Result<BTreeMap<String, DhcpServer>, KernelError> {
        dhcp::instance::observe(self.netns.as_deref())
    }

    async fn service_pidfds(
        &mut self,
    ) -> Result<Vec<(String, i32, std::os::fd::OwnedFd)>, KernelError> {
        let netns = self.netns.as_deref();
        let mut out = Vec::new();
        for bridge in dhcp::instance::observe(netns)?.into_keys() {
            let paths = dhcp::instance::Paths::new(netns, &bridge);
            let Some(pid) = dhcp::instance::running_pid(&paths) else {
                continue;
            };
            // It may exit in between: then there is nothing to watch.
            if let Ok(fd) = crate::kernel::pidfd::open(pid) {
                out.push((bridge, pid, fd));
            }
        }
        Ok(out)
    }

    async fn apply_dhcp(&mut self, op: &DhcpOp) -> Result<(), KernelError> {
        dhcp::instance::apply(op, self.netns.as_deref()).await
    }

    async fn neighbour(&mut self, ip: IpAddr, dev: &str) -> Result<Option<MacAddr>, KernelError> {
        self.lookup_neighbour(ip, dev).await
    }

    async fn probe_neighbour(
        &mut self,
        ip: IpAddr,
        dev: &str,
        wait: Duration,
    ) -> Result<Option<MacAddr>, KernelError> {
        neighbours::send_probe(ip);
        let deadline = tokio::time::Instant::now() + wait;
        while tokio::time::Instant::now() < deadline {
            // An async sleep: this runs on the namespace's own thread, whose runtime also
            // drives the netlink connection (a blocking sleep would stall it, and
            // `spawn_blocking` would look in the process's namespace instead).
            tokio::time::sleep(neighbours::POLL).await;
            if let Some(mac) = self.lookup_neighbour(ip, dev).await? {
                return Ok(Some(mac));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dump_with_an_undecodable_message_fails_and_says_which_kind() {
        assert!(decoded("link", None).is_ok());
        let e = decoded("route", Some("bad attribute".into())).unwrap_err();
        assert_eq!(
            e.to_string(),
            "dump routes: a route message could not be decoded (bad attribute)"
        );
        assert_eq!(
            kept_changing("links").to_string(),
            "dump links: Interrupted system call (EINTR 4): the kernel kept changing during the dump; try again"
        );
    }
}
