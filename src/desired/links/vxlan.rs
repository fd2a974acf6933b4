//! `kind: vxlan` — a VXLAN tunnel: its `vxlan:` block (VNI, local and remote or group
//! address, underlying device, UDP port), its checks, and writing it back.

use std::fmt::Write as _;

use reconcilers::model::{Family, LinkKind, VxlanOpts};
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::{KindCtx, LinkDoc};
use crate::desired::diagnostics::{Ctx, Pos};
use crate::desired::values::{ifname_at, ip, num, u32_of};
use crate::desired::yaml::{addr, scalar};

/// `vxlan:` block.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VxlanDoc {
    pub id: Option<Spanned<i64>>,
    pub local: Option<Spanned<String>>,
    pub remote: Option<Spanned<String>>,
    pub dev: Option<Spanned<String>>,
    pub port: Option<Spanned<i64>>,
}

/// The vxlan options of link `k.name`; `None` (with the errors recorded) when they are wrong.
pub(crate) fn convert(k: &mut KindCtx<'_>, d: &LinkDoc, ctx: &mut Ctx) -> Option<LinkKind> {
    let (file, n) = (k.file, k.name);
    let Some(id) = d.vxlan.as_ref().and_then(|b| b.value.id.as_ref()) else {
        ctx.err(
            k.kind_at,
            format!("vxlan link {n} needs `vxlan: {{ id: VNI }}`"),
        );
        return None;
    };
    let b = &d.vxlan.as_ref().expect("checked above").value;
    let id = num(file, id, 0, (1 << 24) - 1, "vxlan id", ctx).map(u32_of);
    let local = b.local.as_ref().and_then(|s| {
        let a = ctx.check(Pos::of(file, s), ip(&s.value, "local"))?;
        if a.is_multicast() || a.is_unspecified() {
            ctx.err(
                Pos::of(file, s),
                format!("local {a} must be a unicast address"),
            );
            return None;
        }
        Some(a)
    });
    let remote = b
        .remote
        .as_ref()
        .and_then(|s| ctx.check(Pos::of(file, s), ip(&s.value, "remote")));
    let dev = b.dev.as_ref().and_then(|s| ifname_at(file, s, ctx));
    if let (Some(l), Some(r), Some(rs)) = (local, remote, &b.remote) {
        if Family::of(&l) != Family::of(&r) {
            ctx.err(
                Pos::of(file, rs),
                format!("local {l} and remote {r} are of different address families"),
            );
        }
    }
    if let (Some(r), Some(rs)) = (remote, &b.remote) {
        // The kernel needs a device to join a multicast group on.
        if r.is_multicast() && dev.is_none() {
            ctx.err(
                Pos::of(file, rs),
                format!("multicast remote {r} needs `dev` (the link to join the group on)"),
            );
        }
    }
    if let (Some(dv), Some(ds)) = (&dev, &b.dev) {
        if dv == n {
            ctx.err(
                Pos::of(file, ds),
                format!("vxlan {n} cannot be its own `dev`"),
            );
        }
    }
    let port = b
        .port
        .as_ref()
        .and_then(|p| num(file, p, 1, 65535, "vxlan port", ctx))
        .map(|p| u16::try_from(p).expect("in range"));
    Some(LinkKind::Vxlan(VxlanOpts {
        id: id?,
        local,
        remote,
        dev,
        port,
    }))
}

/// The `vxlan:` block as `show` writes it, indented by `pad`.
pub(crate) fn render(s: &mut String, v: &VxlanOpts, pad: &str) {
    let _ = writeln!(s, "{pad}vxlan:\n{pad}  id: {}", v.id);
    if let Some(a) = v.local {
        let _ = writeln!(s, "{pad}  local: {}", addr(&a));
    }
    if let Some(a) = v.remote {
        let _ = writeln!(s, "{pad}  remote: {}", addr(&a));
    }
    if let Some(d) = &v.dev {
        let _ = writeln!(s, "{pad}  dev: {}", scalar(d));
    }
    if let Some(p) = v.port {
        let _ = writeln!(s, "{pad}  port: {p}");
    }
}
