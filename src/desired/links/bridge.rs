//! `kind: bridge` — a Linux bridge: its `bridge:` block (STP, forward delay), its checks, and
//! writing it back. Ports name their bridge with `master:` (see the cross-link checks).

use std::fmt::Write as _;

use reconcilers::model::{BridgeOpts, LinkKind};
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::{KindCtx, LinkDoc};
use crate::desired::diagnostics::Ctx;
use crate::desired::values::{num, u32_of};

/// `bridge:` block.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BridgeDoc {
    pub stp: Option<Spanned<bool>>,
    pub forward_delay: Option<Spanned<i64>>,
}

/// The bridge options of link `k.name`.
pub(crate) fn convert(k: &mut KindCtx<'_>, d: &LinkDoc, ctx: &mut Ctx) -> Option<LinkKind> {
    let mut o = BridgeOpts::default();
    if let Some(b) = &d.bridge {
        o.stp = b.value.stp.as_ref().map(|s| s.value);
        if let Some(fd) = &b.value.forward_delay {
            // With STP on, the kernel only accepts 2..=30 s (in centiseconds).
            let (lo, hi, what) = if o.stp == Some(true) {
                (200, 3000, "forward_delay (centiseconds) with STP on")
            } else {
                (0, i64::from(u32::MAX), "forward_delay (centiseconds)")
            };
            o.forward_delay = num(k.file, fd, lo, hi, what, ctx).map(u32_of);
        }
    }
    Some(LinkKind::Bridge(o))
}

/// The `bridge:` block as `show` writes it (nothing when no option is managed).
pub(crate) fn render(s: &mut String, b: &BridgeOpts, pad: &str) {
    if b.stp.is_none() && b.forward_delay.is_none() {
        return;
    }
    let _ = writeln!(s, "{pad}bridge:");
    if let Some(v) = b.stp {
        let _ = writeln!(s, "{pad}  stp: {v}");
    }
    if let Some(v) = b.forward_delay {
        let _ = writeln!(s, "{pad}  forward_delay: {v}");
    }
}
