//! The boundary between the reconcilers and the outside world: the `Kernel` trait.
//!
//! Planning code only ever sees `State` and `Op`; the `Kernel` trait is the only door to side
//! effects. Its methods read and write the network (rtnetlink, tun, `/proc/sys`), netconverge's
//! nftables tables, the dnsmasq instances and the neighbour table. `netlink::RtnlKernel` does
//! the real thing (in the network namespace of the calling thread); `fake::FakeKernel` keeps
//! all of it in memory so that planning — firewall and DHCP included — is testable without
//! root. The services (firewall, DHCP) are observed and applied by `services` through the
//! trait's service methods, the same sequence on both kernels.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

use crate::error::KernelError;
use crate::model::dhcp::{DhcpOp, DhcpServer};
use crate::model::{MacAddr, State};
use crate::plan::Op;

pub mod events;
pub mod fake;
pub mod netlink;
pub mod netns;
pub mod pidfd;
pub(crate) mod services;
pub use services::preflight;
pub mod tap;

/// What the reconcilers need from a kernel.
pub trait Kernel {
    /// Read the whole state: links, addresses, routes of every table, rules, the sysctls named
    /// in `sysctls` (missing ones are left out of the result), netconverge's firewall and the
    /// DHCP services.
    fn observe(&mut self, sysctls: &[String]) -> impl Future<Output = Result<State, KernelError>>;

    /// Send a batch of writes that do not depend on each other, pipelined; one result per op,
    /// in the same order.
    fn apply(&mut self, ops: &[Op]) -> impl Future<Output = Vec<Result<(), KernelError>>>;

    /// How many write requests this kernel has been sent so far (for "a no-op reconcile writes
    /// nothing" checks).
    fn writes(&self) -> u64;

    /// The route the kernel would send packets to `dst` by (`ip route get DST fibmatch`,
    /// policy rules included): the route entry itself, with its table; `None` when `dst` is
    /// unreachable. Kernels that model no lookup answer `None`.
    fn route_get(
        &mut self,
        dst: IpAddr,
    ) -> impl Future<Output = Result<Option<crate::model::Route>, KernelError>> {
        let _ = dst;
        async { Ok(None) }
    }

    /// Forget what this kernel keeps between observations (a watcher's route cache), so that
    /// the next `observe` reads everything afresh: the watcher's periodic resync does, in case
    /// something changed that no notice announced.
    fn forget_cache(&mut self) {}

    /// The named network namespace this kernel works in (`None`: the caller's own); files
    /// that differ per namespace (`/etc/netns/<ns>/resolv.conf`) are chosen by it.
    fn netns(&self) -> Option<&str> {
        None
    }

    /// Read the sysctls named in `names` (missing ones are left out), as `observe` does; for
    /// callers that observed before they knew which sysctls matter.
    fn read_sysctls(
        &mut self,
        names: &[String],
    ) -> impl Future<Output = Result<BTreeMap<String, String>, KernelError>>;

    /// The rtnetlink protocol of every route, rule and address, by identity (addresses without
    /// `IFA_PROTO` are left out): what a snapshot needs to write a foreign object back as it
    /// was. Read only for commit-confirmed, so `observe` stays as fast as it is.
    fn protocols(
        &mut self,
    ) -> impl Future<Output = Result<crate::snapshot::Protocols, KernelError>> {
        async { Ok(crate::snapshot::Protocols::new()) }
    }

    /// Like `apply`, writing routes, rules and addresses with `protocol` instead of
    /// netconverge's own (a revert putting a foreign object back); other ops as `apply` does.
    /// Kernels that model no protocols refuse.
    fn apply_as(
        &mut self,
        protocol: u8,
        ops: &[Op],
    ) -> impl Future<Output = Vec<Result<(), KernelError>>> {
        let _ = protocol;
        let n = ops.len();
        async move {
            (0..n)
                .map(|_| Err(unsupported("write with a protocol", "objects")))
                .collect()
        }
    }

    // The service methods below have defaults for kernels that model only the network (test
    // doubles that wrap another kernel's `observe` and `apply`): no tables, no services, no
    // neighbours, and writes refused with EOPNOTSUPP. Both real kernels override them all.

    /// netconverge's nftables tables as `nft list table` prints them, the inet table first;
    /// `None` when neither exists (or nftables is not installed, so nothing can have loaded
    /// them). When they cannot be read without privileges the error's errno is EPERM.
    fn list_firewall(&mut self) -> impl Future<Output = Result<Option<String>, KernelError>> {
        async { Ok(None) }
    }

    /// Load an nft script (`nft -f`) as one transaction: all of it or nothing.
    fn load_firewall(&mut self, script: &str) -> impl Future<Output = Result<(), KernelError>> {
        let _ = script;
        async { Err(unsupported("load", "nftables tables")) }
    }

    /// Check an nft script without loading it (`nft -c -f`): what `load_firewall` would
    /// refuse is refused here, before the first write of a pass.
    fn check_firewall(&mut self, script: &str) -> impl Future<Output = Result<(), KernelError>> {
        let _ = script;
        async { Ok(()) }
    }

    /// Delete netconverge's tables (both families) in one transaction; nothing to do when they
    /// do not exist.
    fn delete_firewall(&mut self) -> impl Future<Output = Result<(), KernelError>> {
        async { Err(unsupported("delete", "nftables tables")) }
    }

    /// The DHCP services of this namespace by bridge: their files as they are and whether their
    /// dnsmasq instance is alive.
    fn dhcp_instances(
        &mut self,
    ) -> impl Future<Output = Result<BTreeMap<String, DhcpServer>, KernelError>> {
        async { Ok(BTreeMap::new()) }
    }

    /// Apply one DHCP op: write the files that differ and start, reload (SIGHUP) or restart
    /// the instance, or stop it and remove its files.
    fn apply_dhcp(&mut self, op: &DhcpOp) -> impl Future<Output = Result<(), KernelError>> {
        let _ = op;
        async { Err(unsupported("apply", "dnsmasq instances")) }
    }

    /// The live dnsmasq instances of this namespace (the ones `dhcp_instances` says are
    /// running), each as (bridge, pid, pidfd), for a supervisor to learn of their exit at once.
    fn service_pidfds(
        &mut self,
    ) -> impl Future<Output = Result<Vec<(String, i32, std::os::fd::OwnedFd)>, KernelError>> {
        async { Ok(Vec::new()) }
    }

    /// The link-layer address of `ip` on `dev` in the neighbour table, when the entry is
    /// complete (`None` also when `dev` does not exist).
    fn neighbour(
        &mut self,
        ip: IpAddr,
        dev: &str,
    ) -> impl Future<Output = Result<Option<MacAddr>, KernelError>> {
        let _ = (ip, dev);
        async { Ok(None) }
    }

    /// Make the kernel resolve `ip` on `dev` (send it a datagram) and wait up to `wait` for its
    /// neighbour entry; `None` when it does not answer in time. Never blocks the executor.
    fn probe_neighbour(
        &mut self,
        ip: IpAddr,
        dev: &str,
        wait: Duration,
    ) -> impl Future<Output = Result<Option<MacAddr>, KernelError>> {
        let _ = (ip, dev, wait);
        async { Ok(None) }
    }
}

/// The refusal of a kernel that does not model a service.
fn unsupported(operation: &str, object: &str) -> KernelError {
    KernelError::new(operation, object, Some(libc::EOPNOTSUPP))
        .with_hint("this kernel does not model the services")
}

/// What an observation must read beyond the kernel's own dumps, gathered from the kinds of a
/// desired state (`crate::kinds::scope`): today the sysctls it names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scope {
    /// Sysctls by dotted name.
    pub sysctls: Vec<String>,
}
