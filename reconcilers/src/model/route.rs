//! Routes: the data types of a route, its key, type, scope and next hops.

use std::fmt::Write as _;
use std::net::IpAddr;

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
