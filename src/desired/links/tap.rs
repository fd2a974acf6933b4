//! `kind: tap` — a persistent tap device, a VM's NIC: its `tap:` block (owner, group, per-queue
//! flags), the user and group host facts it needs, and writing it back.

use std::fmt::Write as _;

use reconcilers::model::{Ident, LinkKind, State, TapOpts};
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::{KindCtx, LinkDoc};
use crate::desired::diagnostics::{Ctx, Diagnostic, Pos};
use crate::desired::host_facts::HostCheck;
use crate::desired::values::Invalid;
use crate::desired::yaml::{ident as ident_text, Scalar};

/// `tap:` block.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TapDoc {
    pub owner: Option<Spanned<Scalar>>,
    pub group: Option<Spanned<Scalar>>,
    pub vnet_hdr: Option<Spanned<bool>>,
    pub multi_queue: Option<Spanned<bool>>,
}

/// A user or group name as passwd/group allow it (and as `useradd` would accept).
pub(crate) fn ident_name(name: &str) -> Result<(), Invalid> {
    if name.is_empty()
        || name.len() > 32
        || name.starts_with('-')
        || name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == ':' || c == '/' || c == ',')
    {
        return Err(Invalid::from(format!(
            "`{name}` is not a valid user or group name"
        )));
    }
    Ok(())
}

/// A user or group: a number, or a name resolved on the host.
fn ident(file: usize, s: &Spanned<Scalar>, what: &str, ctx: &mut Ctx) -> Option<Ident> {
    let at = Pos::of(file, s);
    let number = match &s.value {
        Scalar::Int(n) => *n,
        Scalar::Str(t) if !t.is_empty() && t.chars().all(|c| c.is_ascii_digit()) => {
            t.parse().unwrap_or(i128::MAX)
        }
        Scalar::Str(t) => {
            return ctx
                .check(at, ident_name(t))
                .map(|()| Ident::Name(t.clone()))
        }
        _ => {
            ctx.err(at, format!("{what} must be a name or a number"));
            return None;
        }
    };
    // (uid_t)-1 means "unchanged" to the kernel, so it cannot be an owner.
    if !(0..i128::from(u32::MAX)).contains(&number) {
        ctx.err(
            at,
            format!("{what} {number} is out of range (0..=4294967294)"),
        );
        return None;
    }
    Some(Ident::Id(u32::try_from(number).expect("in range")))
}

/// The tap options of link `k.name`; names of users and groups become host checks.
pub(crate) fn convert(k: &mut KindCtx<'_>, d: &LinkDoc, ctx: &mut Ctx) -> Option<LinkKind> {
    let mut o = TapOpts::default();
    let Some(t) = &d.tap else {
        return Some(LinkKind::Tap(o));
    };
    let t = &t.value;
    if let Some(s) = &t.owner {
        o.owner = ident(k.file, s, "tap owner", ctx);
        if let Some(Ident::Name(u)) = &o.owner {
            k.host_checks.push(HostCheck::User {
                name: u.clone(),
                at: ctx.diag(
                    Pos::of(k.file, s),
                    format!("tap owner `{u}` does not exist on this host"),
                ),
            });
        }
    }
    if let Some(s) = &t.group {
        o.group = ident(k.file, s, "tap group", ctx);
        if let Some(Ident::Name(g)) = &o.group {
            k.host_checks.push(HostCheck::Group {
                name: g.clone(),
                at: ctx.diag(
                    Pos::of(k.file, s),
                    format!("tap group `{g}` does not exist on this host"),
                ),
            });
        }
    }
    if let (Some(owner), Some(s)) = (&o.owner, &t.owner) {
        k.host_checks.push(HostCheck::TapAccess {
            tap: k.name.to_string(),
            owner: owner.clone(),
            group: o.group.clone(),
            at: ctx.diag(Pos::of(k.file, s), String::new()),
        });
    }
    o.vnet_hdr = t.vnet_hdr.as_ref().map(|s| s.value);
    o.multi_queue = t.multi_queue.as_ref().map(|s| s.value);
    Some(LinkKind::Tap(o))
}

/// The device a tap's owner opens (qemu's `-netdev tap`; libvirt opens it for qemu).
const TUN_DEVICE: &str = "/dev/net/tun";

/// Why the owner of tap `tap` may be unable to open it on this host: not a member of its
/// group (the kernel checks owner and group together, EPERM), or without read-write access to
/// /dev/net/tun. `None` when it can, or when a name does not resolve (its own host fact
/// reports that).
pub(crate) fn access_warning(tap: &str, owner: &Ident, group: Option<&Ident>) -> Option<String> {
    let uid = match owner {
        Ident::Id(n) => *n,
        Ident::Name(n) => crate::host::user_id(n)?,
    };
    let who = ident_text(owner);
    let mut problems = Vec::new();
    if let Some(g) = group {
        let gid = match g {
            Ident::Id(n) => *n,
            Ident::Name(n) => crate::host::group_id(n)?,
        };
        if crate::host::user_in_group(uid, gid) == Some(false) {
            problems.push(format!(
                "is not a member of its group {}: the kernel checks owner and group together, \
                 so a process running as {who} without that group gets EPERM opening the tap \
                 (add the user to the group, or start the VM with it as a supplementary group)",
                ident_text(g)
            ));
        }
    }
    match crate::host::may_read_write(uid, std::path::Path::new(TUN_DEVICE)) {
        Ok(true) => {}
        Ok(false) => problems.push(format!(
            "cannot open {TUN_DEVICE} for reading and writing (its mode and group do not allow \
             {who}; Debian ships it 0666)"
        )),
        Err(e) => problems.push(format!("cannot use {TUN_DEVICE}: {e}")),
    }
    if problems.is_empty() {
        return None;
    }
    Some(format!(
        "the owner {who} of tap {tap} {}",
        problems.join("; and it ")
    ))
}

/// The `tap:` block as `show` writes it (nothing when no option is managed).
pub(crate) fn render(s: &mut String, t: &TapOpts, pad: &str) {
    if t.owner.is_none() && t.group.is_none() && t.vnet_hdr.is_none() && t.multi_queue.is_none() {
        return;
    }
    let _ = writeln!(s, "{pad}tap:");
    if let Some(v) = &t.owner {
        let _ = writeln!(s, "{pad}  owner: {}", ident_text(v));
    }
    if let Some(v) = &t.group {
        let _ = writeln!(s, "{pad}  group: {}", ident_text(v));
    }
    if let Some(v) = t.vnet_hdr {
        let _ = writeln!(s, "{pad}  vnet_hdr: {v}");
    }
    if let Some(v) = t.multi_queue {
        let _ = writeln!(s, "{pad}  multi_queue: {v}");
    }
    // Observed only: the flags above are then the attached process's choice, not the file's.
    if t.in_use() {
        let _ = writeln!(
            s,
            "{pad}  # open in a process (a VM?) with {} queue(s): vnet_hdr and the queues are its choice while it is attached",
            t.open_queues
        );
    }
}

/// The tap's host hook: owners and groups given by name become the host's ids. A name that
/// does not resolve was already reported by its `HostCheck`, at its place; this only happens
/// if the host changed in between.
pub(crate) fn resolve_owners(state: &mut State) -> Vec<Diagnostic> {
    let mut errors = Vec::new();
    for link in state.links.values_mut() {
        let LinkKind::Tap(t) = &mut link.kind else {
            continue;
        };
        for (what, slot, lookup) in [
            (
                "owner",
                &mut t.owner,
                crate::host::user_id as fn(&str) -> Option<u32>,
            ),
            ("group", &mut t.group, crate::host::group_id),
        ] {
            let Some(Ident::Name(name)) = slot else {
                continue;
            };
            match lookup(name) {
                Some(id) => *slot = Some(Ident::Id(id)),
                None => errors.push(Diagnostic {
                    file: Default::default(),
                    line: 0,
                    column: 0,
                    message: format!(
                        "tap {what} `{name}` of {} does not exist on this host",
                        link.name
                    ),
                }),
            }
        }
    }
    errors
}
