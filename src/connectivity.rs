//! Which changes of a plan can cut the connection it is applied over: a change or removal of
//! a default route, of the route the SSH client's packets take back (the kernel's own lookup
//! of `$SSH_CONNECTION`'s client address), of the address that client connected to, or of the
//! link carrying either. Such changes are marked in the plan, which then suggests
//! `--confirm-within`.

use std::net::IpAddr;

use reconcilers::kernel::Kernel;
use reconcilers::model::object::ObjectRef;
use reconcilers::model::Route;
use reconcilers::plan::Object;
use reconcilers::plan::{Action, Plan};

/// The path of the current SSH session through this host, as far as the kernel tells.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SshPath {
    /// The address the client connected to (`$SSH_CONNECTION`'s third field).
    pub local: Option<IpAddr>,
    /// The route the kernel sends the client's replies by.
    pub route: Option<Route>,
    /// The link holding the address the client connected to (its `local` table route).
    pub local_link: Option<String>,
}

/// `$SSH_CONNECTION` (`client port server port`) as (client, server) addresses.
pub fn parse_ssh_connection(value: &str) -> Option<(IpAddr, Option<IpAddr>)> {
    let mut words = value.split_whitespace();
    let client = words.next()?.parse().ok()?;
    let server = words.nth(1).and_then(|w| w.parse().ok());
    Some((client, server))
}

/// The SSH session's path, when this runs under SSH; a failed lookup is logged and left out
/// (the marks are advice, the plan stands without them).
pub async fn ssh_path<K: Kernel>(kernel: &mut K) -> Option<SshPath> {
    let value = std::env::var("SSH_CONNECTION").ok()?;
    let (client, local) = parse_ssh_connection(&value)?;
    let route = lookup(kernel, client).await;
    let local_link = match local {
        Some(a) => lookup(kernel, a).await.and_then(|r| first_dev(&r)),
        None => None,
    };
    Some(SshPath {
        local,
        route,
        local_link,
    })
}

async fn lookup<K: Kernel>(kernel: &mut K, dst: IpAddr) -> Option<Route> {
    match kernel.route_get(dst).await {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!("cannot look up the route to {dst}: {e}");
            None
        }
    }
}

fn first_dev(r: &Route) -> Option<String> {
    r.nexthops
        .iter()
        .find_map(|h| h.dev.as_deref().map(str::to_string))
}

/// Per change of `plan`: whether it may cut connectivity.
pub fn may_cut(plan: &Plan, ssh: Option<&SshPath>) -> Vec<bool> {
    let links: Vec<&str> = ssh.map(links_of).unwrap_or_default();
    let route = ssh.and_then(|s| s.route.as_ref()).map(ObjectRef::route);
    plan.changes
        .iter()
        .map(|c| {
            c.action != Action::Add
                && match &c.before {
                    Some(Object::Route(r)) => {
                        r.to.prefix_len() == 0 || route.as_ref() == Some(&c.object)
                    }
                    Some(Object::Address(a)) => ssh.and_then(|s| s.local) == Some(a.address.addr()),
                    Some(Object::Link(l)) => links.contains(&l.name.as_str()),
                    _ => false,
                }
        })
        .collect()
}

/// The links the session's packets use: those its route leaves by, and the one holding the
/// address it connected to.
fn links_of(ssh: &SshPath) -> Vec<&str> {
    ssh.route
        .iter()
        .flat_map(|r| r.nexthops.iter().filter_map(|h| h.dev.as_deref()))
        .chain(ssh.local_link.as_deref())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reconcilers::model::State;

    fn state(yaml_routes: &[(&str, &str)]) -> State {
        let mut s = State::default();
        for (to, dev) in yaml_routes {
            s.add_route(route(to, dev));
        }
        s
    }

    fn route(to: &str, dev: &str) -> Route {
        Route {
            table: reconcilers::model::TABLE_MAIN,
            to: to.parse().unwrap(),
            tos: 0,
            metric: 0,
            kind: reconcilers::model::RouteType::Unicast,
            nexthops: vec![reconcilers::model::NextHop {
                via: None,
                dev: Some(dev.into()),
                weight: 1,
                onlink: false,
            }]
            .into(),
            src: None,
            scope: reconcilers::model::Scope::Global,
            mtu: None,
            owned: false,
        }
    }

    #[test]
    fn ssh_connection_is_parsed() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            parse_ssh_connection("192.0.2.7 50122 10.0.0.1 22"),
            Some((ip("192.0.2.7"), Some(ip("10.0.0.1"))))
        );
        assert_eq!(
            parse_ssh_connection("fd00::7 1 fd00::1 22"),
            Some((ip("fd00::7"), Some(ip("fd00::1"))))
        );
        assert_eq!(parse_ssh_connection("nonsense"), None);
        assert_eq!(parse_ssh_connection(""), None);
    }

    #[test]
    fn default_routes_and_the_sessions_route_and_link_are_marked() {
        let observed = state(&[
            ("0.0.0.0/0", "eth0"),
            ("198.51.100.0/24", "eth1"),
            ("203.0.113.0/24", "eth2"),
        ]);
        let desired = State::default();
        let plan = reconcilers::planner::plan(&desired, &owned(observed));
        let ids: Vec<String> = plan.changes.iter().map(|c| c.object.id.clone()).collect();
        let ssh = SshPath {
            local: None,
            route: Some(route("198.51.100.0/24", "eth1")),
            local_link: None,
        };
        let marks = may_cut(&plan, Some(&ssh));
        let marked: Vec<&String> = ids
            .iter()
            .zip(&marks)
            .filter(|(_, m)| **m)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(
            marked,
            ["default dev eth0", "198.51.100.0/24 dev eth1"],
            "{ids:?}"
        );
        // Without a session only the default route is marked.
        let marks = may_cut(&plan, None);
        assert_eq!(marks.iter().filter(|m| **m).count(), 1);
    }

    fn owned(mut s: State) -> State {
        for r in s.routes.values_mut() {
            r.owned = true;
        }
        s
    }
}
