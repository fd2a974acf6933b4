//! The one model of network state shared by the desired side (parsed YAML) and the observed
//! side (kernel dumps).
//!
//! Both sides are canonicalised into these types — prefixes normalised, defaults filled, names
//! resolved to ids — so that a diff is a plain comparison per object key. Attributes that the
//! desired state may leave unspecified ("not managed") are `Option`s: `None` on the desired
//! side means "whatever the kernel has", while the observed side always fills them.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// The alias (IFLA_IFALIAS) carried by every link netconverge creates; the kernel-side mark of
/// ownership, so no state file is needed.
pub const LINK_ALIAS: &str = "managed-by: netconverge";

/// The rtnetlink protocol number netconverge writes on its routes, rules and addresses unless
/// `owner: { protocol: N }` says otherwise. 157 is unused by the kernel's, iproute2's and the
/// common routing daemons' protocol lists (99, often picked, is `openr` in iproute2 6.1).
pub const DEFAULT_PROTOCOL: u8 = 157;

/// The main routing table id.
pub const TABLE_MAIN: u32 = 254;
/// The local routing table id (kernel-managed).
pub const TABLE_LOCAL: u32 = 255;
/// The default routing table id.
pub const TABLE_DEFAULT: u32 = 253;

/// A table as `ip` prints it: `main`, `local` and `default` by name, the others by number.
pub fn table_word(id: u32) -> String {
    match id {
        TABLE_MAIN => "main".into(),
        TABLE_LOCAL => "local".into(),
        TABLE_DEFAULT => "default".into(),
        n => n.to_string(),
    }
}

/// Address family of a route or rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// IPv4 (AF_INET).
    Inet,
    /// IPv6 (AF_INET6).
    Inet6,
}

impl Family {
    /// The family of an address.
    pub fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::Inet,
            IpAddr::V6(_) => Family::Inet6,
        }
    }

    /// The family of a prefix.
    pub fn of_net(net: &IpNet) -> Family {
        Family::of(&net.addr())
    }

    /// The whole address space of this family (`0.0.0.0/0` or `::/0`).
    pub fn any(self) -> IpNet {
        match self {
            Family::Inet => "0.0.0.0/0".parse().expect("valid literal"),
            Family::Inet6 => "::/0".parse().expect("valid literal"),
        }
    }
}

/// A MAC address, written `52:54:00:12:34:56`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for MacAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split([':', '-']).collect();
        if parts.len() != 6 {
            return Err(format!(
                "`{s}` is not a MAC address (six hex bytes separated by `:`)"
            ));
        }
        let mut out = [0u8; 6];
        for (i, p) in parts.iter().enumerate() {
            if p.is_empty() || p.len() > 2 {
                return Err(format!(
                    "`{s}` is not a MAC address (six hex bytes separated by `:`)"
                ));
            }
            out[i] = u8::from_str_radix(p, 16)
                .map_err(|_| format!("`{s}` is not a MAC address: `{p}` is not a hex byte"))?;
        }
        Ok(MacAddr(out))
    }
}

impl Serialize for MacAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MacAddr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A user or group as written in the desired state: a name (resolved on the target host) or a
/// number. Observed state always holds `Id`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Ident {
    /// A numeric uid/gid.
    Id(u32),
    /// A user/group name, resolved through the host's passwd/group database.
    Name(String),
}

impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ident::Id(n) => write!(f, "{n}"),
            Ident::Name(s) => f.write_str(s),
        }
    }
}

/// The complete state of one network namespace, as far as netconverge cares.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    /// Links by name.
    pub links: BTreeMap<String, Link>,
    /// Addresses by (link, address/prefix).
    pub addresses: BTreeMap<AddressKey, Address>,
    /// Routes by (table, destination, tos, metric).
    pub routes: BTreeMap<RouteKey, Route>,
    /// Policy rules by (priority, selector).
    pub rules: BTreeMap<RuleKey, Rule>,
    /// Sysctls by dotted name (`net.ipv4.ip_forward`), values whitespace-normalised.
    pub sysctls: BTreeMap<String, String>,
    /// netconverge's nftables table(s), if any.
    pub firewall: Option<crate::nft::Firewall>,
    /// DHCP/DNS services by bridge name.
    pub dhcp: BTreeMap<String, crate::dnsmasq::DhcpServer>,
    /// Desired side only: where generated objects came from, by `"<kind> <id>"` (e.g.
    /// `"route default via 192.168.1.1 dev eth0 table 1"` → `"provider wrt"`), so plans can
    /// label them. Never compared.
    pub origins: BTreeMap<crate::object::ObjectRef, String>,
}

impl State {
    /// Insert a link under its name.
    pub fn add_link(&mut self, link: Link) {
        self.links.insert(link.name.clone(), link);
    }
    /// Insert an address under its key.
    pub fn add_address(&mut self, addr: Address) {
        self.addresses.insert(addr.key(), addr);
    }
    /// Insert a route under its key.
    pub fn add_route(&mut self, route: Route) {
        self.routes.insert(route.key(), route);
    }
    /// Insert a rule under its key.
    pub fn add_rule(&mut self, rule: Rule) {
        self.rules.insert(rule.key(), rule);
    }
}

/// Normalise a sysctl value the way the kernel prints it back (fields separated by single
/// spaces), so that `"32768\t60999"` and `"32768 60999"` compare equal.
pub fn normalize_sysctl_value(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

// ---------------------------------------------------------------------------------------------
// Links

/// A network interface.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// Interface name (IFLA_IFNAME), the link's key.
    pub name: String,
    /// What kind of link it is, with the kind's own options.
    pub kind: LinkKind,
    /// The bridge this link is a port of. Desired `None` on a link netconverge created means
    /// "no master"; on other links it means "not managed".
    pub master: Option<String>,
    /// MTU; `None` on the desired side means not managed.
    pub mtu: Option<u32>,
    /// MAC address; `None` on the desired side means not managed.
    pub mac: Option<MacAddr>,
    /// Administrative state (IFF_UP); `None` on the desired side means not managed.
    pub up: Option<bool>,
    /// Observed: the link carries netconverge's alias. Desired: always false.
    #[serde(skip)]
    pub owned: bool,
}

impl Link {
    /// A link of `kind` named `name` with nothing else specified.
    pub fn new(name: impl Into<String>, kind: LinkKind) -> Link {
        Link {
            name: name.into(),
            kind,
            master: None,
            mtu: None,
            mac: None,
            up: None,
            owned: false,
        }
    }
}

/// The kind of a link and its kind-specific options.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkKind {
    /// A link netconverge never creates or deletes (a NIC, or anything of a kind it does not
    /// manage); only its listed attributes are managed.
    External,
    /// A Linux bridge.
    Bridge(BridgeOpts),
    /// A persistent tap device (a VM's NIC).
    Tap(TapOpts),
    /// One end of a veth pair.
    Veth(VethOpts),
    /// A VXLAN tunnel endpoint.
    Vxlan(VxlanOpts),
    /// A macvlan on top of another link.
    Macvlan(MacvlanOpts),
}

impl LinkKind {
    /// The name used in YAML and in messages.
    pub fn name(&self) -> &'static str {
        match self {
            LinkKind::External => "external",
            LinkKind::Bridge(_) => "bridge",
            LinkKind::Tap(_) => "tap",
            LinkKind::Veth(_) => "veth",
            LinkKind::Vxlan(_) => "vxlan",
            LinkKind::Macvlan(_) => "macvlan",
        }
    }
}

/// Bridge options.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BridgeOpts {
    /// Spanning tree on (kernel STP) or off.
    pub stp: Option<bool>,
    /// Forward delay in centiseconds, as `ip -d link` prints it (1500 = 15 s).
    pub forward_delay: Option<u32>,
}

/// Tap options.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TapOpts {
    /// The user allowed to open the tap (TUNSETOWNER); `None` = anyone with CAP_NET_ADMIN only.
    pub owner: Option<Ident>,
    /// The group allowed to open the tap (TUNSETGROUP).
    pub group: Option<Ident>,
    /// IFF_VNET_HDR (virtio-net header, what qemu's vhost wants).
    pub vnet_hdr: Option<bool>,
    /// IFF_MULTI_QUEUE; cannot change on an existing tap (the tap is recreated).
    pub multi_queue: Option<bool>,
}

/// Veth options.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VethOpts {
    /// The other end's name (in the same namespace).
    pub peer: String,
}

/// VXLAN options; none can change in place (a change recreates the link).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VxlanOpts {
    /// VNI.
    pub id: u32,
    /// Local tunnel address.
    pub local: Option<IpAddr>,
    /// Remote tunnel address (unicast) or multicast group.
    pub remote: Option<IpAddr>,
    /// Underlying device.
    pub dev: Option<String>,
    /// UDP destination port (default 4789 when created by netconverge).
    pub port: Option<u16>,
}

/// Macvlan modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MacvlanMode {
    /// Private.
    Private,
    /// VEPA.
    Vepa,
    /// Bridge (the usual choice).
    Bridge,
    /// Passthru.
    Passthru,
    /// Source.
    Source,
}

impl MacvlanMode {
    /// The name used in YAML.
    pub fn name(self) -> &'static str {
        match self {
            MacvlanMode::Private => "private",
            MacvlanMode::Vepa => "vepa",
            MacvlanMode::Bridge => "bridge",
            MacvlanMode::Passthru => "passthru",
            MacvlanMode::Source => "source",
        }
    }
}

/// Macvlan options; the parent cannot change in place.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MacvlanOpts {
    /// The parent link.
    pub link: String,
    /// The mode (default bridge).
    pub mode: MacvlanMode,
}

// ---------------------------------------------------------------------------------------------
// Addresses

/// Key of an address: the link and the address with its prefix length (host bits kept).
pub type AddressKey = (String, IpNet);

/// An interface address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    /// The link carrying it.
    pub link: String,
    /// Address and prefix length, e.g. `10.0.0.1/24`.
    pub address: IpNet,
    /// Observed: carries netconverge's address protocol, or sits on a link netconverge owns.
    #[serde(skip)]
    pub owned: bool,
}

impl Address {
    /// The key of this address.
    pub fn key(&self) -> AddressKey {
        (self.link.clone(), self.address)
    }
}

// ---------------------------------------------------------------------------------------------
// Routes

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

/// One way out of a route: a gateway and/or a device, with a weight for multipath.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NextHop {
    /// Gateway address.
    pub via: Option<IpAddr>,
    /// Output device name.
    pub dev: Option<String>,
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
    pub nexthops: Vec<NextHop>,
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

// ---------------------------------------------------------------------------------------------
// Rules

/// What the kernel keys a rule on: its priority and its selector.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RuleKey {
    /// Priority (preference).
    pub priority: u32,
    /// Family.
    pub family: Family,
    /// Source prefix (`None` = all).
    pub from: Option<IpNet>,
    /// Destination prefix (`None` = all).
    pub to: Option<IpNet>,
    /// Firewall mark and mask (mask defaults to 0xffffffff).
    pub fwmark: Option<(u32, u32)>,
    /// Input interface name.
    pub iif: Option<String>,
    /// Output interface name.
    pub oif: Option<String>,
    /// Inverted selector (FIB_RULE_INVERT).
    pub not: bool,
}

impl RuleKey {
    /// The selector matching every packet of `family` at `priority` (`from all`), to be
    /// narrowed with struct update syntax.
    pub fn all(priority: u32, family: Family) -> RuleKey {
        RuleKey {
            priority,
            family,
            from: None,
            to: None,
            fwmark: None,
            iif: None,
            oif: None,
            not: false,
        }
    }
}

/// What a rule does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleAction {
    /// Look the packet up in a table.
    Lookup(u32),
    /// Drop silently.
    Blackhole,
    /// Drop with ICMP unreachable.
    Unreachable,
    /// Drop with ICMP administratively prohibited.
    Prohibit,
}

/// A policy routing rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// Priority and selector.
    #[serde(flatten)]
    pub key: RuleKey,
    /// What it does.
    pub action: RuleAction,
    /// Observed: carries netconverge's protocol number.
    #[serde(skip)]
    pub owned: bool,
}

impl Rule {
    /// The kernel's key of this rule.
    pub fn key(&self) -> RuleKey {
        self.key.clone()
    }

    /// True for the rules the kernel installs by itself in every namespace (priority 0 local,
    /// 32766 main, 32767 default); they are never shown or touched.
    pub fn is_kernel_default(&self) -> bool {
        let plain = self.key.from.is_none()
            && self.key.to.is_none()
            && self.key.fwmark.is_none()
            && self.key.iif.is_none()
            && self.key.oif.is_none()
            && !self.key.not;
        plain
            && matches!(
                (self.key.priority, self.action),
                (0, RuleAction::Lookup(TABLE_LOCAL))
                    | (32766, RuleAction::Lookup(TABLE_MAIN))
                    | (32767, RuleAction::Lookup(TABLE_DEFAULT))
            )
    }
}
