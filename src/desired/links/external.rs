//! `kind: external` — a link netconverge never creates or deletes (a NIC, or a kind it does
//! not manage): only its listed attributes are managed, and it must exist on the host.

use reconcilers::model::LinkKind;

use super::{KindCtx, LinkDoc};
use crate::desired::diagnostics::Ctx;
use crate::desired::host_facts::HostCheck;

/// An external link has no options; its existence is a host fact.
pub(crate) fn convert(k: &mut KindCtx<'_>, _d: &LinkDoc, ctx: &mut Ctx) -> Option<LinkKind> {
    k.host_checks.push(HostCheck::ExternalLink {
        name: k.name.to_owned(),
        at: ctx.diag(
            k.at,
            format!("external link `{}` does not exist on this host", k.name),
        ),
    });
    Some(LinkKind::External)
}
