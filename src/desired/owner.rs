//! `owner:` — which rtnetlink protocol number marks netconverge's routes, rules and addresses.

use reconcilers::model::DEFAULT_PROTOCOL;
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::diagnostics::{Ctx, Pos};
use super::load::Merged;
use super::values::ranged;

/// `owner:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OwnerDoc {
    pub protocol: Option<Spanned<i64>>,
}

/// The protocol declared under `owner:`, or the default.
pub(crate) fn protocol(m: &Merged, ctx: &mut Ctx) -> u8 {
    let Some((file, owner)) = &m.owner else {
        return DEFAULT_PROTOCOL;
    };
    let Some(p) = &owner.value.protocol else {
        return DEFAULT_PROTOCOL;
    };
    let at = Pos::of(*file, p);
    if (0..=4).contains(&p.value) {
        ctx.err(
            at,
            format!(
                "protocol {} is reserved (0-4 are unspec, redirect, kernel, boot and static, which `ip route` uses); pick an unused number such as {DEFAULT_PROTOCOL}",
                p.value
            ),
        );
        return DEFAULT_PROTOCOL;
    }
    ctx.check(at, ranged(p.value, 5, 255, "protocol"))
        .map_or(DEFAULT_PROTOCOL, |p| u8::try_from(p).expect("in range"))
}
