//! Conversion of the merged documents into the canonical model: each section converts its
//! own items (checking every value on the way), then the checks across objects run on what
//! converted.
//!
//! Canonical means what the observed side produces for the same kernel object: destination
//! prefixes without host bits, the kernel's default metric and scope filled in, nexthops
//! sorted, a single nexthop with weight 1, fwmark masks explicit, sysctl values
//! whitespace-normalised. An object with any error is left out, and its errors are recorded.

use std::collections::BTreeMap;

use reconcilers::model::{Address, RoutesBuilder, State};

use super::diagnostics::Ctx;
use super::host_facts::HostCheck;
use super::links::{self, LinkInfo};
use super::load::Merged;
use super::routes::{self, RouteInfo};
use super::rules::{self, RuleInfo};
use super::tables::Tables;
use super::{dhcp, owner, providers, sysctl};

/// Everything that converted, before cross-object checks.
pub(crate) struct Converted {
    pub protocol: u8,
    pub tables: BTreeMap<String, u32>,
    pub links: Vec<LinkInfo>,
    pub addresses: Vec<Address>,
    pub routes: Vec<RouteInfo>,
    pub rules: Vec<RuleInfo>,
    pub sysctls: BTreeMap<String, String>,
    pub host_checks: Vec<HostCheck>,
    /// Labels of generated objects (`providers.rs`), by `"<kind> <id>"`.
    pub origins: BTreeMap<reconcilers::model::object::ObjectRef, String>,
    /// netconverge's nftables tables, generated from the provider sections.
    pub firewall: Option<reconcilers::model::firewall::Firewall>,
    /// The provider sections, checked (for `optional`, decided on the host).
    pub providers: reconcilers::providers::Providers,
    /// DHCP/DNS services by bridge (`dhcp.rs`; converted after the links they serve).
    pub dhcp: BTreeMap<String, reconcilers::model::dhcp::DhcpServer>,
}

impl Converted {
    /// The model state of everything converted.
    pub fn into_state(self) -> State {
        let mut s = State::default();
        for l in self.links {
            s.add_link(l.link);
        }
        for a in self.addresses {
            s.add_address(a);
        }
        routes_into(self.routes, &mut s);
        for r in self.rules {
            s.add_rule(r.rule);
        }
        s.sysctls = self.sysctls;
        s.origins = self.origins;
        s.firewall = self.firewall;
        s.dhcp = self.dhcp;
        s
    }
}

/// Move the routes into `s` without holding all of them twice: taken from the end, with the
/// list's buffer shrunk as it empties, so its memory goes back while the map grows (at 10⁶
/// routes the list is some 120 MB). The last of a key wins, as with inserting in order; the
/// map is built with its nodes full ([`RoutesBuilder`]: `validate` of 10⁶ routes, 302 MB peak
/// RSS filled one key after another, 277 MB so).
fn routes_into(mut routes: Vec<RouteInfo>, s: &mut State) {
    // Reversed in place, so that popping from the end pushes in declaration order.
    routes.reverse();
    let mut b = RoutesBuilder::default();
    while let Some(r) = routes.pop() {
        b.push(r.route);
        // Shrinking a buffer this large is an in-place `mremap`, not a copy; often enough
        // that the list and the map are never both near full (at half, both were).
        if routes.len() < routes.capacity() / 8 * 7 {
            routes.shrink_to_fit();
        }
    }
    s.routes.append(&mut b.finish());
}

/// Convert all merged documents, recording every error in `ctx`. The route sections are
/// taken out of `m`: each is freed once converted.
pub(crate) fn convert(m: &mut Merged, ctx: &mut Ctx) -> Converted {
    let protocol = owner::protocol(m, ctx);
    let tables = Tables::new(m, ctx);
    let mut c = Converted {
        protocol,
        tables: tables.ids.clone(),
        links: Vec::new(),
        addresses: Vec::new(),
        routes: Vec::new(),
        rules: Vec::new(),
        sysctls: BTreeMap::new(),
        host_checks: Vec::new(),
        origins: BTreeMap::new(),
        firewall: None,
        providers: Default::default(),
        dhcp: BTreeMap::new(),
    };
    for (file, name, value) in &m.sysctl {
        sysctl::convert(*file, name, value, ctx, &mut c.sysctls);
    }
    for (file, name, doc) in &m.links {
        links::convert(*file, name, doc, ctx, &mut c);
    }
    let sections = std::mem::take(&mut m.routes);
    c.routes
        .reserve_exact(sections.iter().map(|(_, items)| items.len()).sum());
    // A scanned section is kept as text until here; freed file by file while the list it
    // becomes fills (at 10⁶ routes the texts are 56 MB, the list 144 MB).
    for (file, items) in sections {
        items.each(|item| {
            if let Some(r) = routes::convert(file, item, &tables, ctx) {
                c.routes.push(r);
            }
        });
    }
    for (file, item) in &m.rules {
        if let Some(r) = rules::convert(*file, item, &tables, ctx) {
            c.rules.push(r);
        }
    }
    dhcp::convert(m, &mut c, ctx);
    providers::convert(m, ctx, &mut c);
    c
}

/// All checks that need more than one object.
pub(crate) fn cross_check(c: &mut Converted, m: &Merged, ctx: &mut Ctx) {
    links::check(&c.links, ctx);
    routes::checks::gateways(c, ctx);
    routes::checks::devices_up(c, ctx);
    routes::checks::duplicates(c, ctx);
    rules::check(c, ctx);
    let facts = sysctl::host_checks(m, c, ctx);
    c.host_checks.extend(facts);
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use reconcilers::model::{Route, RouteType, Scope};

    use super::*;
    use crate::desired::diagnostics::Pos;
    use crate::desired::routes::nexthops::ViaPositions;

    fn route(i: u32, mark: Option<u32>) -> RouteInfo {
        let to = ipnet::IpNet::new(Ipv4Addr::from(0x0a00_0000 + i).into(), 32).expect("net");
        RouteInfo {
            at: Pos {
                file: 0,
                line: i,
                column: 1,
            },
            route: Route {
                table: 254,
                to,
                tos: 0,
                metric: 0,
                kind: RouteType::Blackhole,
                nexthops: Default::default(),
                src: None,
                scope: Scope::Global,
                // Which declaration a key's value came from, for the "last wins" check.
                mtu: mark,
                owned: false,
            },
            via_at: ViaPositions::none(),
        }
    }

    /// The routes arrive in declaration order: of a key declared more than once, the last
    /// declaration is the one in the state (the chunks themselves are `RoutesBuilder`'s,
    /// tested with it).
    #[test]
    fn every_route_arrives_and_the_last_declaration_of_a_key_wins() {
        let mut list: Vec<RouteInfo> = (0..10).map(|i| route(i, None)).collect();
        list.extend([route(0, Some(1)), route(9, Some(2)), route(0, Some(3))]);
        let mut s = State::default();
        routes_into(list, &mut s);
        let got: Vec<(u32, Option<u32>)> = s
            .routes
            .values()
            .map(|r| match r.to.addr() {
                std::net::IpAddr::V4(a) => (u32::from(a) - 0x0a00_0000, r.mtu),
                std::net::IpAddr::V6(_) => unreachable!("only IPv4 routes here"),
            })
            .collect();
        let mut want: Vec<(u32, Option<u32>)> = (0..10).map(|i| (i, None)).collect();
        want[0].1 = Some(3);
        want[9].1 = Some(2);
        assert_eq!(got, want);
    }
}
