//! The Multi-ISP sections, as Shorewall users know them (`shorewall-providers(5)`, rtrules,
//! snat/masq, mangle MARK):
//!
//! ```yaml
//! providers:
//!   wrt: { number: 1, mark: "0x1", interface: eth0, gateway: 192.168.1.1,   balance: 1, track: true }
//!   fw:  { number: 2, mark: "0x2", interface: eth0, gateway: 192.168.1.254, balance: 1, track: true, loose: true }
//! provider_options: { mask: "0xff", default_table: main, route_filter: loose }
//! route_rules:
//!   - { from: 10.0.0.0/25, provider: fw, priority: 1000 }
//! masquerade:
//!   - { from: 10.0.0.0/24, out: eth0 }
//! marks:
//!   - { iif: tap-centos, mark: "0x2" }       # or provider: fw
//! ```
//!
//! Every value is checked with its position, the cross-provider mistakes included (two
//! providers that would both add the same `from` rule, a mark outside the mask, a gateway
//! outside the interface's subnets), and the sections are then expanded by
//! [`reconcilers::providers`] into ordinary routes, rules, sysctls and nftables tables. The
//! generated routes and rules join the declared ones before the cross-object checks, so a
//! generated rule at a priority the user also uses is reported like any other conflict, at the
//! provider that generated it.

use reconcilers::model::State;
use reconcilers::providers::{MarkRule, Masquerade, Providers, RouteRule};
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::convert::Converted;
use super::diagnostics::{Ctx, Pos};
use super::load::{merge_named, merge_once, Merged};
use super::yaml::{Entries, Scalar};

mod companions;
mod expand;
mod health;
mod host;

pub(crate) use host::skip_unavailable;
pub use host::HealthView;
mod options;
mod provider;

use companions::{mark_rule, masquerade, route_rule};
use options::options;
use provider::{check_together, provider};

/// One entry of `providers:` (keyed by the provider's name).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProviderDoc {
    pub number: Option<Spanned<i64>>,
    pub mark: Option<Spanned<Scalar>>,
    pub interface: Option<Spanned<String>>,
    pub gateway: Option<Spanned<String>>,
    pub local: Option<Spanned<String>>,
    pub balance: Option<Spanned<Scalar>>,
    pub fallback: Option<Spanned<Scalar>>,
    pub track: Option<Spanned<bool>>,
    pub loose: Option<Spanned<bool>>,
    pub duplicate: Option<Spanned<String>>,
    pub copy: Option<Vec<Spanned<String>>>,
    pub optional: Option<Spanned<bool>>,
    pub health: Option<Spanned<health::HealthDoc>>,
}

/// `provider_options:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OptionsDoc {
    pub mask: Option<Spanned<Scalar>>,
    pub default_table: Option<Spanned<String>>,
    pub route_filter: Option<Spanned<String>>,
}

/// One item of `route_rules:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RouteRuleDoc {
    pub from: Option<Spanned<String>>,
    pub to: Option<Spanned<String>>,
    pub iif: Option<Spanned<String>>,
    pub provider: Option<Spanned<String>>,
    pub priority: Option<Spanned<i64>>,
}

/// One item of `masquerade:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MasqueradeDoc {
    pub from: Option<Spanned<String>>,
    pub out: Option<Spanned<String>>,
}

/// One item of `marks:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MarkDoc {
    pub iif: Option<Spanned<String>>,
    pub from: Option<Spanned<String>>,
    pub to: Option<Spanned<String>>,
    pub mark: Option<Spanned<Scalar>>,
    pub provider: Option<Spanned<String>>,
}

/// The provider sections of all files, each item with the index of its file.
#[derive(Debug, Default)]
pub(crate) struct Sections {
    providers: Vec<(usize, Spanned<String>, ProviderDoc)>,
    options: Option<(usize, Spanned<OptionsDoc>)>,
    route_rules: Vec<(usize, Spanned<RouteRuleDoc>)>,
    masquerade: Vec<(usize, Spanned<MasqueradeDoc>)>,
    marks: Vec<(usize, Spanned<MarkDoc>)>,
}

impl Sections {
    /// Add one file's sections. A provider or `provider_options` in two files is an error
    /// naming both places; the lists are concatenated in file order. (One argument per
    /// section: the caller holds a partly moved `Document`.)
    #[allow(clippy::too_many_arguments)]
    pub fn add(
        &mut self,
        file: usize,
        providers: Entries<ProviderDoc>,
        options: Option<Spanned<OptionsDoc>>,
        route_rules: Option<Vec<Spanned<RouteRuleDoc>>>,
        masquerade: Option<Vec<Spanned<MasqueradeDoc>>>,
        marks: Option<Vec<Spanned<MarkDoc>>>,
        ctx: &mut Ctx,
    ) {
        merge_named("provider", file, providers.0, &mut self.providers, ctx);
        if let Some(o) = options {
            merge_once("provider_options", file, o, &mut self.options, ctx);
        }
        self.route_rules
            .extend(route_rules.into_iter().flatten().map(|r| (file, r)));
        self.masquerade
            .extend(masquerade.into_iter().flatten().map(|r| (file, r)));
        self.marks
            .extend(marks.into_iter().flatten().map(|r| (file, r)));
    }

    fn is_empty(&self) -> bool {
        self.providers.is_empty()
            && self.options.is_none()
            && self.route_rules.is_empty()
            && self.masquerade.is_empty()
            && self.marks.is_empty()
    }
}

/// Names that cannot be providers: the kernel's tables and Shorewall's balance table.
const RESERVED: [&str; 5] = ["main", "local", "default", "unspec", "balance"];

/// Check the provider sections and add what they expand to: routes and rules (joining the
/// declared ones for the cross-object checks), sysctls, the nftables tables, a label per
/// generated object, and the providers' names as table names.
pub(crate) fn convert(m: &Merged, ctx: &mut Ctx, c: &mut Converted) {
    let s = &m.providers;
    if s.is_empty() {
        return;
    }
    let before = ctx.count();
    let (options, options_at) = options(s, ctx);
    let mut providers = Vec::new();
    let mut at = Vec::new();
    for (file, name, doc) in &s.providers {
        if let Some(p) = provider(*file, name, doc, &options, c, ctx) {
            providers.push(p);
            at.push(Pos::of(*file, name));
        }
    }
    check_together(&providers, &at, s, ctx);
    let declared: Vec<&str> = s
        .providers
        .iter()
        .map(|(_, n, _)| n.value.as_str())
        .collect();
    let route_rules: Vec<(RouteRule, Pos)> = s
        .route_rules
        .iter()
        .filter_map(|(file, item)| route_rule(*file, item, &providers, &declared, ctx))
        .collect();
    let masquerade: Vec<Masquerade> = s
        .masquerade
        .iter()
        .filter_map(|(file, item)| masquerade(*file, item, ctx))
        .collect();
    let marks: Vec<MarkRule> = s
        .marks
        .iter()
        .filter_map(|(file, item)| mark_rule(*file, item, &providers, &declared, &options, ctx))
        .collect();
    // A broken provider would make the rest of the expansion (the balanced route, the
    // priorities) misleading; its own errors are what to fix.
    if ctx.count() > before {
        return;
    }
    let (route_rules, rr_at): (Vec<RouteRule>, Vec<Pos>) = route_rules.into_iter().unzip();
    let providers = Providers {
        providers,
        options,
        route_rules,
        masquerade,
        marks,
    };
    expand::add(
        m,
        Checked {
            providers,
            at,
            rr_at,
            options_at,
        },
        c,
        ctx,
    );
}

/// The checked provider sections, with the positions the expansion reports at.
pub(crate) struct Checked {
    pub providers: Providers,
    /// Where each provider is declared.
    pub at: Vec<Pos>,
    /// Where each route rule is declared.
    pub rr_at: Vec<Pos>,
    /// Where `provider_options` is declared.
    pub options_at: Option<Pos>,
}

/// The declared part of the state that the expansion looks at: links (is an `iif` a bridge
/// port?), addresses and main-table routes (`duplicate: main`).
pub(crate) fn base(c: &Converted) -> State {
    let mut s = State::default();
    for l in &c.links {
        s.add_link(l.link.clone());
    }
    for a in &c.addresses {
        s.add_address(a.clone());
    }
    for r in &c.routes {
        s.add_route(r.route.clone());
    }
    s
}
