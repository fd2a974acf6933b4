//! Routes: the data types of a route, its key, type, scope and next hops.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::fmt::{self, Write as _};
use std::net::IpAddr;
use std::ops::Deref;
use std::sync::{Arc, LazyLock, Mutex};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::Family;

/// What the kernel keys a route on: table, destination, TOS and metric (plus family, implied by
/// the destination).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RouteKey {
    /// Table id.
    pub table: u32,
    /// Destination prefix, normalised (host bits cleared).
    pub to: IpNet,
    /// TOS.
    pub tos: u8,
    /// Metric (priority); canonical default 0 for IPv4 and 1024 for IPv6, as the kernel does.
    pub metric: u32,
}

/// Route types netconverge manages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteType {
    /// A normal route through a gateway or device.
    Unicast,
    /// Drop silently.
    Blackhole,
    /// Drop with ICMP unreachable.
    Unreachable,
    /// Drop with ICMP administratively prohibited.
    Prohibit,
}

impl RouteType {
    /// The name used in YAML.
    pub fn name(self) -> &'static str {
        match self {
            RouteType::Unicast => "unicast",
            RouteType::Blackhole => "blackhole",
            RouteType::Unreachable => "unreachable",
            RouteType::Prohibit => "prohibit",
        }
    }
}

/// Route scopes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// RT_SCOPE_UNIVERSE (0).
    Global,
    /// RT_SCOPE_SITE (200).
    Site,
    /// RT_SCOPE_LINK (253).
    Link,
    /// RT_SCOPE_HOST (254).
    Host,
}

impl Scope {
    /// The name used in YAML.
    pub fn name(self) -> &'static str {
        match self {
            Scope::Global => "global",
            Scope::Site => "site",
            Scope::Link => "link",
            Scope::Host => "host",
        }
    }
}

/// A device name as a route's nexthop holds it: interned, so that the routes through one
/// device share one allocation (at 10⁶ routes a `String` each was 32 MB a side), and behind
/// a thin pointer, so that a nexthop is 32 bytes. Compares, orders and hashes as the name;
/// prints and serialises as the plain string.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DevName(Arc<Box<str>>);

/// Every name interned, while a route holds it (see [`DevName::new`]).
static INTERNED: LazyLock<Mutex<Interned>> = LazyLock::new(|| {
    Mutex::new(Interned {
        names: HashSet::new(),
        prune_at: INTERNED_PRUNE,
    })
});

/// The interned names, and the size at which those no route holds any more are dropped.
struct Interned {
    names: HashSet<DevName>,
    prune_at: usize,
}

/// The least size at which unheld names are dropped.
const INTERNED_PRUNE: usize = 1024;

thread_local! {
    /// The name interned last on this thread: routes come in runs through one device, so
    /// most lookups end here without the lock.
    static LAST_INTERNED: RefCell<Option<DevName>> = const { RefCell::new(None) };
}

impl DevName {
    /// The shared name `name`.
    pub fn new(name: &str) -> DevName {
        LAST_INTERNED.with(|last| {
            let mut last = last.borrow_mut();
            match &*last {
                Some(d) if d.as_str() == name => d.clone(),
                _ => {
                    let d = Self::intern(name);
                    *last = Some(d.clone());
                    d
                }
            }
        })
    }

    fn intern(name: &str) -> DevName {
        // A poisoned lock only means another thread panicked while holding it; the set
        // itself is always whole (each operation on it is one call).
        let mut set = INTERNED.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(d) = set.names.get(name) {
            return d.clone();
        }
        if set.names.len() >= set.prune_at {
            // Bounded in a long-running `watch`: names held only by the set go. The next
            // prune waits until as many names again have come, so a host whose routes go
            // through thousands of devices does not sweep the set at each new one.
            set.names.retain(|d| Arc::strong_count(&d.0) > 1);
            set.prune_at = (set.names.len() * 2).max(INTERNED_PRUNE);
        }
        let d = DevName(Arc::new(name.into()));
        set.names.insert(d.clone());
        d
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for DevName {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::borrow::Borrow<str> for DevName {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for DevName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for DevName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl From<&str> for DevName {
    fn from(name: &str) -> DevName {
        DevName::new(name)
    }
}

impl From<String> for DevName {
    fn from(name: String) -> DevName {
        DevName::new(&name)
    }
}

impl From<&String> for DevName {
    fn from(name: &String) -> DevName {
        DevName::new(name)
    }
}

impl PartialEq<str> for DevName {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for DevName {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for DevName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for DevName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(DevName::new(&String::deserialize(d)?))
    }
}

/// A route's nexthops, the one of a single-path route (nearly all of them) inline: the size
/// of one nexthop, 32 bytes (a `Vec` was 24 plus a 64-byte allocation; a `SmallVec` is 40).
/// Used as a slice; compares as one.
#[derive(Clone)]
pub struct NextHops(Hops);

/// One nexthop inline, or any other number of them (none: an empty box, which allocates
/// nothing). Never `Many` of one, so a route has one representation per value.
#[derive(Clone)]
enum Hops {
    One(NextHop),
    Many(Box<[NextHop]>),
}

impl NextHops {
    /// No nexthops.
    pub fn new() -> NextHops {
        NextHops(Hops::Many(Box::new([])))
    }

    /// One nexthop.
    pub fn one(hop: NextHop) -> NextHops {
        NextHops(Hops::One(hop))
    }

    /// The nexthops.
    pub fn as_slice(&self) -> &[NextHop] {
        match &self.0 {
            Hops::One(h) => std::slice::from_ref(h),
            Hops::Many(all) => all,
        }
    }

    /// The nexthops, to change in place (sort, set a weight).
    pub fn as_mut_slice(&mut self) -> &mut [NextHop] {
        match &mut self.0 {
            Hops::One(h) => std::slice::from_mut(h),
            Hops::Many(all) => all,
        }
    }

    /// Add a nexthop at the end.
    pub fn push(&mut self, hop: NextHop) {
        let mut all = std::mem::take(self).into_vec();
        all.push(hop);
        *self = NextHops::from(all);
    }

    /// The nexthops as a `Vec`.
    pub fn into_vec(self) -> Vec<NextHop> {
        match self.0 {
            Hops::One(h) => vec![h],
            Hops::Many(all) => all.into_vec(),
        }
    }
}

impl Default for NextHops {
    fn default() -> NextHops {
        NextHops::new()
    }
}

impl Deref for NextHops {
    type Target = [NextHop];
    fn deref(&self) -> &[NextHop] {
        self.as_slice()
    }
}

impl std::ops::DerefMut for NextHops {
    fn deref_mut(&mut self) -> &mut [NextHop] {
        self.as_mut_slice()
    }
}

impl From<Vec<NextHop>> for NextHops {
    fn from(mut all: Vec<NextHop>) -> NextHops {
        match all.len() {
            1 => NextHops::one(all.pop().expect("one")),
            _ => NextHops(Hops::Many(all.into_boxed_slice())),
        }
    }
}

impl FromIterator<NextHop> for NextHops {
    fn from_iter<I: IntoIterator<Item = NextHop>>(iter: I) -> NextHops {
        let mut iter = iter.into_iter();
        match (iter.next(), iter.next()) {
            (None, _) => NextHops::new(),
            (Some(one), None) => NextHops::one(one),
            (Some(a), Some(b)) => {
                let mut all = vec![a, b];
                all.extend(iter);
                NextHops::from(all)
            }
        }
    }
}

impl<'a> IntoIterator for &'a NextHops {
    type Item = &'a NextHop;
    type IntoIter = std::slice::Iter<'a, NextHop>;
    fn into_iter(self) -> Self::IntoIter {
        self.as_slice().iter()
    }
}

impl PartialEq for NextHops {
    fn eq(&self, other: &NextHops) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for NextHops {}

impl fmt::Debug for NextHops {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_slice(), f)
    }
}

impl Serialize for NextHops {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.as_slice().serialize(s)
    }
}

impl<'de> Deserialize<'de> for NextHops {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::<NextHop>::deserialize(d).map(NextHops::from)
    }
}

/// One way out of a route: a gateway and/or a device, with a weight for multipath.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NextHop {
    /// Gateway address.
    pub via: Option<IpAddr>,
    /// Output device name.
    pub dev: Option<DevName>,
    /// Weight as `ip route` shows it (1..=256); 1 for single-path routes.
    pub weight: u32,
    /// RTNH_F_ONLINK: the gateway is on-link even if no prefix covers it.
    pub onlink: bool,
}

/// A route.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// Table id.
    pub table: u32,
    /// Destination prefix, normalised.
    pub to: IpNet,
    /// TOS.
    pub tos: u8,
    /// Metric (canonical: 0 for IPv4, 1024 for IPv6 when not given).
    pub metric: u32,
    /// Route type.
    pub kind: RouteType,
    /// Next hops, sorted; one for a single-path route, none for blackhole-like types.
    pub nexthops: NextHops,
    /// Preferred source address.
    pub src: Option<IpAddr>,
    /// Scope (canonical: `link` for IPv4 unicast routes without a gateway, else `global`).
    pub scope: Scope,
    /// Path MTU (RTAX_MTU).
    pub mtu: Option<u32>,
    /// Observed: carries netconverge's protocol number.
    #[serde(skip)]
    pub owned: bool,
}

impl Route {
    /// How a route is named in plans and errors, in `ip route` words:
    /// `default via 192.168.1.254 dev eth0 table 102`.
    pub fn id(&self) -> String {
        let r = self;
        let mut s = String::new();
        if r.kind != RouteType::Unicast {
            let _ = write!(s, "{} ", r.kind.name());
        }
        if r.to.prefix_len() == 0 {
            s.push_str("default");
        } else {
            let _ = write!(s, "{}", r.to);
        }
        match r.nexthops.as_slice() {
            [one] => {
                if let Some(v) = one.via {
                    let _ = write!(s, " via {v}");
                }
                if let Some(d) = &one.dev {
                    let _ = write!(s, " dev {d}");
                }
            }
            [] => {}
            many => {
                let _ = write!(s, " nexthops");
                for n in many {
                    if let Some(v) = n.via {
                        let _ = write!(s, " via {v}");
                    }
                    if let Some(d) = &n.dev {
                        let _ = write!(s, " dev {d}");
                    }
                    let _ = write!(s, " weight {}", n.weight);
                }
            }
        }
        if r.table != super::TABLE_MAIN {
            let _ = write!(s, " table {}", super::table_word(r.table));
        }
        if r.metric != Route::default_metric(r.family()) {
            let _ = write!(s, " metric {}", r.metric);
        }
        if r.tos != 0 {
            let _ = write!(s, " tos {:#x}", r.tos);
        }
        s
    }

    /// The kernel's key of this route.
    pub fn key(&self) -> RouteKey {
        RouteKey {
            table: self.table,
            to: self.to,
            tos: self.tos,
            metric: self.metric,
        }
    }

    /// The route's family.
    pub fn family(&self) -> Family {
        Family::of_net(&self.to)
    }

    /// The canonical scope the kernel gives a route when none is asked for.
    pub fn default_scope(family: Family, kind: RouteType, nexthops: &[NextHop]) -> Scope {
        if family == Family::Inet
            && kind == RouteType::Unicast
            && nexthops.iter().all(|n| n.via.is_none())
        {
            Scope::Link
        } else {
            Scope::Global
        }
    }

    /// The canonical metric the kernel gives a route when none is asked for.
    pub fn default_metric(family: Family) -> u32 {
        match family {
            Family::Inet => 0,
            Family::Inet6 => 1024,
        }
    }
}

/// Builds a map of many routes with its nodes full, for the states of 10⁵–10⁶ routes that
/// the desired files and the kernel's dumps can hold: a `BTreeMap` filled one key after
/// another keeps its nodes about half full (measured: 6 routes a leaf at 10⁶, 200 bytes a
/// route for the nodes alone), while building one from sorted routes (`collect`) or merging
/// two (`append`) writes them full and frees the old nodes as it goes.
///
/// Routes are gathered in a list of up to [`RoutesBuilder::BATCH`] (a push is a copy, not a
/// search of the tree, which was most of observing 10,000 routes), sorted into a map and
/// merged into a chunk; a full chunk ([`RoutesBuilder::CHUNK`]) is merged into the whole.
/// Merging costs the size of both maps, hence the two levels; the batch is small so that
/// its list, the sort's scratch and the map made of it stay a few MB at 10⁶ routes.
#[derive(Debug, Default)]
pub struct RoutesBuilder {
    batch: Vec<(RouteKey, Route)>,
    chunk: BTreeMap<RouteKey, Route>,
    all: BTreeMap<RouteKey, Route>,
}

impl RoutesBuilder {
    /// How many routes are gathered before they are sorted into the chunk.
    pub const BATCH: usize = 16_384;
    /// How many routes the chunk holds before it is merged into the whole.
    pub const CHUNK: usize = 65_536;

    /// Add a route; of two with one key, the one pushed last wins, as with inserting.
    pub fn push(&mut self, route: Route) {
        self.batch.push((route.key(), route));
        if self.batch.len() == Self::BATCH {
            self.sort_batch();
            if self.chunk.len() >= Self::CHUNK {
                merge_into(&mut self.all, &mut self.chunk);
            }
        }
    }

    /// Sort the batch into the chunk. Of equal keys the last pushed is kept, as inserting
    /// them in turn would: the sort is stable, and each run of equal keys ends with it.
    fn sort_batch(&mut self) {
        self.batch.sort_by(|a, b| a.0.cmp(&b.0));
        self.batch.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                std::mem::swap(later, kept);
            }
            same
        });
        let mut sorted: BTreeMap<RouteKey, Route> = self.batch.drain(..).collect();
        merge_into(&mut self.chunk, &mut sorted);
    }

    /// The map of every route pushed.
    pub fn finish(mut self) -> BTreeMap<RouteKey, Route> {
        self.sort_batch();
        merge_into(&mut self.all, &mut self.chunk);
        self.all
    }
}

/// Merge `later` into `into`; a key in both keeps `later`'s value.
fn merge_into(into: &mut BTreeMap<RouteKey, Route>, later: &mut BTreeMap<RouteKey, Route>) {
    if into.is_empty() {
        std::mem::swap(into, later);
    } else {
        into.append(later);
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn route(i: u32, mark: Option<u32>) -> Route {
        let to = IpNet::new(Ipv4Addr::from(0x0a00_0000 + i).into(), 32).expect("net");
        Route {
            table: 254,
            to,
            tos: 0,
            metric: 0,
            kind: RouteType::Blackhole,
            nexthops: NextHops::new(),
            src: None,
            scope: Scope::Global,
            // Which push a key's value came from, for the "last wins" check.
            mtu: mark,
            owned: false,
        }
    }

    fn index(r: &Route) -> u32 {
        match r.to.addr() {
            IpAddr::V4(a) => u32::from(a) - 0x0a00_0000,
            IpAddr::V6(_) => unreachable!("only IPv4 routes here"),
        }
    }

    /// More routes than two chunks, in no order, with keys pushed again across the chunks'
    /// boundaries: every key is in the map once, with its last push's value.
    #[test]
    fn routes_over_several_chunks_all_arrive_and_the_last_of_a_key_wins() {
        let n = u32::try_from(RoutesBuilder::CHUNK * 2 + 10).expect("fits");
        let mut b = RoutesBuilder::default();
        // Odd ones first, then even ones, descending: no chunk is a sorted run of the whole.
        for i in (0..n)
            .filter(|i| i % 2 == 1)
            .chain((0..n).rev().filter(|i| i % 2 == 0))
        {
            b.push(route(i, None));
        }
        // Pushed again, in the last chunk: 1 was first pushed in the first chunk, 0 in the
        // second-to-last, n - 1 in the first.
        for i in [0, 1, n - 1] {
            b.push(route(i, Some(1000 + i)));
        }
        b.push(route(0, Some(7)));
        // Three pushes of one key in one chunk: the third wins.
        b.push(route(0, Some(8)));
        let map = b.finish();
        assert_eq!(map.len(), n as usize);
        let all: Vec<u32> = map.values().map(index).collect();
        assert_eq!(all, (0..n).collect::<Vec<_>>());
        let later: Vec<(u32, Option<u32>)> = map
            .values()
            .filter(|r| r.mtu.is_some())
            .map(|r| (index(r), r.mtu))
            .collect();
        assert_eq!(
            later,
            [(0, Some(8)), (1, Some(1001)), (n - 1, Some(999 + n))]
        );
    }

    /// A key pushed in one chunk and again in a later one keeps the later value.
    #[test]
    fn a_later_chunk_overrides_an_earlier_one() {
        let mut b = RoutesBuilder::default();
        b.push(route(5, Some(1)));
        for i in 100..(100 + RoutesBuilder::CHUNK as u32) {
            b.push(route(i, None));
        }
        b.push(route(5, Some(2)));
        let map = b.finish();
        assert_eq!(map.len(), RoutesBuilder::CHUNK + 1);
        assert_eq!(
            map.values().find(|r| index(r) == 5).and_then(|r| r.mtu),
            Some(2)
        );
    }

    fn hop(via: &str, dev: &str, weight: u32) -> NextHop {
        NextHop {
            via: Some(via.parse().expect("gateway")),
            dev: Some(dev.into()),
            weight,
            onlink: false,
        }
    }

    /// Names interned on two threads are one allocation; a name no route holds is dropped
    /// once enough others come, a held one is kept.
    #[test]
    fn device_names_are_shared_and_the_unheld_ones_pruned() {
        let here = DevName::new("nc-test-shared");
        let there = std::thread::spawn(|| DevName::new("nc-test-shared"))
            .join()
            .expect("thread");
        assert!(Arc::ptr_eq(&here.0, &there.0));
        assert_eq!(here, "nc-test-shared");
        assert_eq!(
            format!("{here} {here:?}"),
            "nc-test-shared \"nc-test-shared\""
        );
        for i in 0..3 * INTERNED_PRUNE {
            drop(DevName::new(&format!("nc-test-gone-{i}")));
        }
        let set = INTERNED.lock().expect("lock");
        assert!(
            set.names.len() <= INTERNED_PRUNE + 64,
            "{} names interned after pruning",
            set.names.len()
        );
        assert!(set.names.contains("nc-test-shared"), "a held name is kept");
        assert!(!set.names.contains("nc-test-gone-0"), "an unheld one goes");
        drop(set);
        // Held names are not swept at each new one: the next prune waits for twice as many.
        let held: Vec<DevName> = (0..2 * INTERNED_PRUNE)
            .map(|i| DevName::new(&format!("nc-test-held-{i}")))
            .collect();
        let set = INTERNED.lock().expect("lock");
        assert!(
            set.prune_at >= held.len(),
            "{} < {}",
            set.prune_at,
            held.len()
        );
        assert!(held.iter().all(|d| set.names.contains(d.as_str())));
    }

    /// One nexthop is inline however it was made, and compares equal to itself made
    /// another way; several go in a box; none allocate nothing.
    #[test]
    fn nexthops_have_one_representation_per_value() {
        let a = hop("10.0.0.1", "eth0", 1);
        let b = hop("10.0.0.2", "eth0", 2);
        let one_ways = [
            NextHops::one(a.clone()),
            NextHops::from(vec![a.clone()]),
            std::iter::once(a.clone()).collect(),
            {
                let mut n = NextHops::new();
                n.push(a.clone());
                n
            },
        ];
        for n in &one_ways {
            assert!(matches!(n.0, Hops::One(_)), "{n:?}");
            assert_eq!(n, &one_ways[0]);
            assert_eq!(n.as_slice(), std::slice::from_ref(&a));
        }
        let mut two = NextHops::one(b.clone());
        two.push(a.clone());
        two.sort();
        assert!(matches!(two.0, Hops::Many(_)));
        assert_eq!(two, NextHops::from(vec![a.clone(), b.clone()]));
        assert_eq!(two.iter().map(|h| h.weight).collect::<Vec<_>>(), [1, 2]);
        assert_ne!(two, one_ways[0]);
        assert!(NextHops::new().is_empty());
        assert_eq!(NextHops::new(), Vec::new().into());
        assert_eq!(NextHops::new(), std::iter::empty().collect());
        assert_eq!(
            std::mem::size_of::<NextHops>(),
            std::mem::size_of::<NextHop>()
        );
    }

    /// Serialised as the plain list and read back the same, for each shape.
    #[test]
    fn nexthops_serialise_as_a_list() {
        let a = hop("10.0.0.1", "eth0", 1);
        let b = hop("10.0.0.2", "br0", 2);
        for hops in [vec![], vec![a.clone()], vec![a, b]] {
            let n = NextHops::from(hops.clone());
            let json = serde_json::to_string(&n).expect("serialise");
            assert_eq!(json, serde_json::to_string(&hops).expect("serialise"));
            let back: NextHops = serde_json::from_str(&json).expect("read back");
            assert_eq!(back, n);
            assert_eq!(format!("{n:?}"), format!("{hops:?}"));
        }
    }
}
