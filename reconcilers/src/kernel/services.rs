//! The services on top of the network — netconverge's nftables tables and the dnsmasq
//! instances — observed and applied through any `Kernel`'s service methods.
//!
//! Both kernels end their `observe` with [`observe`] and hand service ops to [`apply`], so the
//! fake kernel runs the very sequence of list, load and neighbour calls the real one does, and
//! the planner's tests cover it. What the text of the tables means (digests, gateway sets) is
//! `crate::firewall`'s; this module only decides what to ask the kernel, in which order.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use super::Kernel;
use crate::error::KernelError;
use crate::firewall;
use crate::model::firewall::{Firewall, FirewallOp};
use crate::model::{MacAddr, State};
use crate::plan::Op;

/// True for the ops [`apply`] handles (firewall and DHCP), which are no netlink writes.
pub(crate) fn is_service(op: &Op) -> bool {
    matches!(op, Op::Firewall(_) | Op::Dhcp(_))
}

/// Fill the firewall and DHCP parts of `state`.
pub(crate) async fn observe<K: Kernel>(k: &mut K, state: &mut State) -> Result<(), KernelError> {
    state.firewall = observe_firewall(k).await?;
    state.dhcp = k.dhcp_instances().await?;
    Ok(())
}

/// Apply one service op; `None` for an op that is not a service's.
pub(crate) async fn apply<K: Kernel>(k: &mut K, op: &Op) -> Option<Result<(), KernelError>> {
    Some(match op {
        Op::Firewall(op) => apply_firewall(k, op).await,
        Op::Dhcp(op) => k.apply_dhcp(op).await,
        _ => return None,
    })
}

/// Check, before the first write of a plan, what a service op would have refused: the
/// rendered tables of a firewall replace go through `nft -c` (with empty gateway sets: their
/// MACs are only known at load time and do not change what nft accepts).
pub async fn preflight<K: Kernel>(k: &mut K, op: &Op) -> Result<(), KernelError> {
    match op {
        Op::Firewall(FirewallOp::Replace(f)) => {
            k.check_firewall(&firewall::load_script(f, &[], None)).await
        }
        _ => Ok(()),
    }
}

/// netconverge's tables as they are: absent, unreadable (not compared), intact or modified.
async fn observe_firewall<K: Kernel>(k: &mut K) -> Result<Option<Firewall>, KernelError> {
    let listing = match k.list_firewall().await {
        Ok(None) => return Ok(None),
        Ok(Some(listing)) => listing,
        // An unprivileged `check` cannot list them: the plan warns instead of failing.
        Err(e) if e.errno == Some(libc::EPERM) => return Ok(Some(firewall::unreadable(&e))),
        Err(e) => return Err(e),
    };
    let mut macs: BTreeMap<(Ipv4Addr, String), MacAddr> = BTreeMap::new();
    for g in firewall::gateway_sets(&listing) {
        if let Some(mac) = lookup(k, g.gateway, &g.dev).await {
            macs.insert((g.gateway, g.dev), mac);
        }
    }
    Ok(Some(firewall::observed(listing, |ip, dev| {
        macs.get(&(ip, dev.to_string())).copied()
    })))
}

/// Replace or delete the tables. A replace loads them twice (see `crate::firewall`): once with the
/// desired digest, then — after listing what nft made of it — with the listing's digest too.
pub(crate) async fn apply_firewall<K: Kernel>(
    k: &mut K,
    op: &FirewallOp,
) -> Result<(), KernelError> {
    let f = match op {
        FirewallOp::Delete => return k.delete_firewall().await,
        FirewallOp::Replace(f) => f,
    };
    let mut macs = Vec::new();
    for g in firewall::gateway_sets(&f.ruleset) {
        match resolve(k, g.gateway, &g.dev).await {
            Some(mac) => macs.push((g.set, mac)),
            None => tracing::warn!(
                "gateway {} on {} does not answer: its set {} stays empty until a later reconcile finds its MAC",
                g.gateway,
                g.dev,
                g.set
            ),
        }
    }
    k.load_firewall(&firewall::load_script(f, &macs, None))
        .await?;
    let listing = k
        .list_firewall()
        .await
        .map_err(|e| {
            // Reported as part of the load it belongs to.
            let hint = e.hint.clone().unwrap_or_else(|| e.to_string());
            KernelError::new(
                "load",
                format!("nftables table {}", crate::model::firewall::ID),
                e.errno,
            )
            .with_hint(hint)
            .with_source(e)
        })?
        .unwrap_or_default();
    k.load_firewall(&firewall::load_script(f, &macs, Some(&listing)))
        .await
}

/// The gateway's MAC from the neighbour table. A failed lookup counts as "no entry": the MAC is
/// a refinement (the set stays empty, or drift goes unseen until the next pass), not worth
/// failing the whole observe or apply for.
async fn lookup<K: Kernel>(k: &mut K, gateway: Ipv4Addr, dev: &str) -> Option<MacAddr> {
    match k.neighbour(IpAddr::V4(gateway), dev).await {
        Ok(mac) => mac,
        Err(e) => {
            tracing::debug!("neighbour lookup of {gateway} on {dev}: {e}");
            None
        }
    }
}

/// The gateway's MAC, probing it once when the neighbour table has no entry yet.
async fn resolve<K: Kernel>(k: &mut K, gateway: Ipv4Addr, dev: &str) -> Option<MacAddr> {
    if let Some(mac) = lookup(k, gateway, dev).await {
        return Some(mac);
    }
    match k
        .probe_neighbour(IpAddr::V4(gateway), dev, firewall::NEIGHBOUR_WAIT)
        .await
    {
        Ok(mac) => mac,
        Err(e) => {
            tracing::debug!("neighbour probe of {gateway} on {dev}: {e}");
            None
        }
    }
}
