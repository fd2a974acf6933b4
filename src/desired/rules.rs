//! `rules:` — policy rules by (priority, selector): checking each item, the checks across
//! rules (duplicates, overlapping rules at one priority, the kernel's own rules), and writing
//! rules back.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use ipnet::IpNet;
use reconcilers::model::object::ObjectRef;
use reconcilers::model::{
    Family, Rule, RuleAction, RuleKey, State, TABLE_DEFAULT, TABLE_LOCAL, TABLE_MAIN,
};
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::convert::Converted;
use super::diagnostics::{Ctx, Pos};
use super::tables::{table_ref, Tables};
use super::values::{
    check_fwmark, family, family_name, fwmark, ifname_at, keyword, num, prefix, u32_of,
};
use super::yaml::{quote, scalar, Scalar};

/// One item of `rules:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuleDoc {
    pub priority: Option<Spanned<i64>>,
    pub from: Option<Spanned<String>>,
    pub to: Option<Spanned<String>>,
    pub fwmark: Option<Spanned<Scalar>>,
    pub iif: Option<Spanned<String>>,
    pub oif: Option<Spanned<String>>,
    pub not: Option<Spanned<bool>>,
    pub table: Option<Spanned<Scalar>>,
    pub action: Option<Spanned<String>>,
    pub family: Option<Spanned<String>>,
    pub suppress_prefixlength: Option<Spanned<i64>>,
}

/// A converted rule.
pub(crate) struct RuleInfo {
    pub at: Pos,
    pub priority_at: Pos,
    pub rule: Rule,
}

/// Check one item of `rules:`; `None` (with its errors recorded) when anything is wrong.
pub(crate) fn convert(
    file: usize,
    item: &Spanned<RuleDoc>,
    tables: &Tables,
    ctx: &mut Ctx,
) -> Option<RuleInfo> {
    let before = ctx.count();
    let at = Pos::of(file, item);
    let d = &item.value;
    let Some(p) = &d.priority else {
        ctx.err(at, "a rule needs `priority`");
        return None;
    };
    let priority_at = Pos::of(file, p);
    let priority = num(file, p, 0, i64::from(u32::MAX), "priority", ctx).map(u32_of);
    let (from, to, family) = selectors(file, d, ctx);
    let fwmark = d.fwmark.as_ref().and_then(|m| mark(file, m, ctx));
    let iif = d.iif.as_ref().and_then(|s| ifname_at(file, s, ctx));
    let oif = d.oif.as_ref().and_then(|s| ifname_at(file, s, ctx));
    let action = action(file, d, at, tables, ctx);
    let suppress = suppress(file, d, family, action, ctx);
    if ctx.count() > before {
        return None;
    }
    let key = RuleKey {
        priority: priority?,
        family,
        from,
        to,
        fwmark,
        iif,
        oif,
        not: d.not.as_ref().is_some_and(|n| n.value),
        suppress_prefixlength: suppress,
    };
    let action = action?;
    if let Some(which) = kernel_default_rule(&key, action) {
        ctx.err(
            priority_at,
            format!("this is the kernel's own rule `{which}`, which always exists; remove it"),
        );
        return None;
    }
    Some(RuleInfo {
        at,
        priority_at,
        rule: Rule {
            key,
            action,
            owned: false,
        },
    })
}

/// `from`, `to` (`all` is no selector) and the family they imply or `family:` states.
fn selectors(file: usize, d: &RuleDoc, ctx: &mut Ctx) -> (Option<IpNet>, Option<IpNet>, Family) {
    let sel = |s: &Option<Spanned<String>>, what: &str, ctx: &mut Ctx| -> Option<IpNet> {
        let s = s.as_ref()?;
        if s.value.trim() == "all" {
            return None;
        }
        ctx.check(Pos::of(file, s), prefix(&s.value, what))
    };
    let from = sel(&d.from, "from", ctx);
    let to = sel(&d.to, "to", ctx);
    if let (Some(f), Some(t), Some(ts)) = (from, to, &d.to) {
        if Family::of_net(&f) != Family::of_net(&t) {
            ctx.err(
                Pos::of(file, ts),
                format!("from {f} and to {t} are of different address families"),
            );
        }
    }
    let inferred = from.or(to).map(|n| Family::of_net(&n));
    let Some(f) = &d.family else {
        return (from, to, inferred.unwrap_or(Family::Inet));
    };
    let f_at = Pos::of(file, f);
    let Some(fam) = ctx.check(f_at, family(&f.value)) else {
        return (from, to, Family::Inet);
    };
    if let Some(sel) = from.or(to).filter(|n| Family::of_net(n) != fam) {
        ctx.err(
            f_at,
            format!(
                "family {} does not match {sel} ({})",
                f.value,
                family_name(Family::of_net(&sel))
            ),
        );
    }
    (from, to, fam)
}

/// `fwmark:` as a string (`MARK/MASK`) or a bare number (full mask).
fn mark(file: usize, m: &Spanned<Scalar>, ctx: &mut Ctx) -> Option<(u32, u32)> {
    let m_at = Pos::of(file, m);
    match &m.value {
        Scalar::Str(s) => ctx.check(m_at, fwmark(s)),
        Scalar::Int(n) => match u32::try_from(*n) {
            Ok(n) => ctx.check(m_at, check_fwmark(n, u32::MAX).map(|()| (n, u32::MAX))),
            Err(_) => {
                ctx.err(m_at, format!("fwmark {n} is out of range (0..=0xffffffff)"));
                None
            }
        },
        _ => {
            ctx.err(m_at, "fwmark must be MARK or MARK/MASK, e.g. \"0x1/0xff\"");
            None
        }
    }
}

/// `action:` and `table:` together: a lookup needs a table, the other actions refuse one.
fn action(file: usize, d: &RuleDoc, at: Pos, tables: &Tables, ctx: &mut Ctx) -> Option<RuleAction> {
    #[derive(Clone, Copy, PartialEq)]
    enum Act {
        Lookup,
        Blackhole,
        Unreachable,
        Prohibit,
    }
    let table = d
        .table
        .as_ref()
        .map(|t| (Pos::of(file, t), tables.resolve(file, t, true, ctx)));
    let act = match &d.action {
        None => Some(Act::Lookup),
        Some(a) => ctx.check(
            Pos::of(file, a),
            keyword(
                &a.value,
                "rule action",
                &[
                    ("lookup", Act::Lookup),
                    ("blackhole", Act::Blackhole),
                    ("unreachable", Act::Unreachable),
                    ("prohibit", Act::Prohibit),
                ],
            ),
        ),
    };
    match (act?, &table) {
        (Act::Lookup, Some((_, t))) => t.map(RuleAction::Lookup),
        (Act::Lookup, None) => {
            ctx.err(
                d.action.as_ref().map_or(at, |a| Pos::of(file, a)),
                "a rule needs `table` to look up (or an `action` such as unreachable)",
            );
            None
        }
        (_, Some((t_at, _))) => {
            let name = d.action.as_ref().map_or("", |s| s.value.as_str());
            ctx.err(
                *t_at,
                format!("a rule with action {name} cannot have `table`"),
            );
            None
        }
        (Act::Blackhole, None) => Some(RuleAction::Blackhole),
        (Act::Unreachable, None) => Some(RuleAction::Unreachable),
        (Act::Prohibit, None) => Some(RuleAction::Prohibit),
    }
}

/// `suppress_prefixlength`: up to the family's address length, on a lookup rule only (the
/// kernel ignores it on the others).
fn suppress(
    file: usize,
    d: &RuleDoc,
    family: Family,
    action: Option<RuleAction>,
    ctx: &mut Ctx,
) -> Option<u8> {
    let s = d.suppress_prefixlength.as_ref()?;
    let max = match family {
        Family::Inet => 32,
        Family::Inet6 => 128,
    };
    let n = num(file, s, 0, max, "suppress_prefixlength", ctx)?;
    if !matches!(action, None | Some(RuleAction::Lookup(_))) {
        ctx.err(
            Pos::of(file, s),
            "suppress_prefixlength applies to a rule that looks up a table (`table:`)",
        );
        return None;
    }
    u8::try_from(n).ok()
}

/// The same rule twice, and two overlapping rules at one priority.
pub(crate) fn check(c: &Converted, ctx: &mut Ctx) {
    let mut by_key: BTreeMap<RuleKey, Pos> = BTreeMap::new();
    let mut by_prio: BTreeMap<(u32, Family), Vec<(Pos, &Rule)>> = BTreeMap::new();
    for r in &c.rules {
        let key = &r.rule.key;
        if let Some(first) = by_key.get(key) {
            ctx.err(
                r.at,
                format!(
                    "{} is declared twice: {} and {} (one rule per priority and selector)",
                    ObjectRef::rule(&r.rule),
                    ctx.place(*first),
                    ctx.place(r.at)
                ),
            );
            continue;
        }
        by_key.insert(key.clone(), r.at);
        let same = by_prio.entry((key.priority, key.family)).or_default();
        match same.iter().find(|(_, other)| !sources_disjoint(&other.key, key)) {
            Some((first, other)) => ctx.err(
                r.priority_at,
                format!(
                    "priority {} is used by two different {} rules ({} at {} and {} here); give each rule its own priority, the kernel would order them arbitrarily",
                    key.priority,
                    family_name(key.family),
                    ObjectRef::rule(other),
                    ctx.place(*first),
                    ObjectRef::rule(&r.rule),
                ),
            ),
            None => same.push((r.at, &r.rule)),
        }
    }
}

/// Two rules whose `from` prefixes do not overlap never match the same packet, so their order
/// at one priority does not matter (Shorewall puts every provider's `from` rule at 20000).
fn sources_disjoint(a: &RuleKey, b: &RuleKey) -> bool {
    match (a.from, b.from) {
        (Some(x), Some(y)) if !a.not && !b.not => {
            !x.contains(&y.network()) && !y.contains(&x.network())
        }
        _ => false,
    }
}

/// The kernel's own rules (0 local, 32766 main, 32767 default) exist in every namespace and
/// are ignored when observing, so declaring one would show as a change forever.
pub(crate) fn kernel_default_rule(key: &RuleKey, action: RuleAction) -> Option<&'static str> {
    let plain = key.from.is_none()
        && key.to.is_none()
        && key.fwmark.is_none()
        && key.iif.is_none()
        && key.oif.is_none()
        && key.suppress_prefixlength.is_none()
        && !key.not;
    match (plain, key.priority, action) {
        (true, 0, RuleAction::Lookup(TABLE_LOCAL)) => Some("0: from all lookup local"),
        (true, 32766, RuleAction::Lookup(TABLE_MAIN)) => Some("32766: from all lookup main"),
        (true, 32767, RuleAction::Lookup(TABLE_DEFAULT)) => Some("32767: from all lookup default"),
        _ => None,
    }
}

fn render_item(s: &mut String, r: &Rule, tables: &BTreeMap<String, u32>) {
    let k = &r.key;
    let _ = writeln!(s, "  - priority: {}", k.priority);
    // The family is implied by from/to; say it only when nothing else does.
    let implied = k.from.or(k.to).map_or(Family::Inet, |n| Family::of_net(&n));
    if implied != k.family {
        let _ = writeln!(
            s,
            "    family: {}",
            match k.family {
                Family::Inet => "ipv4",
                Family::Inet6 => "ipv6",
            }
        );
    }
    if k.not {
        s.push_str("    not: true\n");
    }
    if let Some(f) = k.from {
        let _ = writeln!(s, "    from: {}", scalar(&f.to_string()));
    }
    if let Some(t) = k.to {
        let _ = writeln!(s, "    to: {}", scalar(&t.to_string()));
    }
    if let Some((mark, mask)) = k.fwmark {
        let text = if mask == u32::MAX {
            format!("{mark:#x}")
        } else {
            format!("{mark:#x}/{mask:#x}")
        };
        let _ = writeln!(s, "    fwmark: {}", quote(&text));
    }
    if let Some(i) = &k.iif {
        let _ = writeln!(s, "    iif: {}", scalar(i));
    }
    if let Some(o) = &k.oif {
        let _ = writeln!(s, "    oif: {}", scalar(o));
    }
    match r.action {
        RuleAction::Lookup(t) => {
            let _ = writeln!(s, "    table: {}", table_ref(t, tables));
        }
        RuleAction::Blackhole => s.push_str("    action: blackhole\n"),
        RuleAction::Unreachable => s.push_str("    action: unreachable\n"),
        RuleAction::Prohibit => s.push_str("    action: prohibit\n"),
    }
    if let Some(n) = k.suppress_prefixlength {
        let _ = writeln!(s, "    suppress_prefixlength: {n}");
    }
}

/// The `rules:` section of `show`; `None` when the state has no rule.
pub(crate) fn render_section(state: &State, tables: &BTreeMap<String, u32>) -> Option<String> {
    if state.rules.is_empty() {
        return None;
    }
    let mut s = String::from("rules:\n");
    for r in state.rules.values() {
        render_item(&mut s, r, tables);
    }
    Some(s)
}

/// One rule as a plan's diff shows it.
pub(crate) fn render_object(r: &Rule, tables: &BTreeMap<String, u32>) -> String {
    let mut s = String::from("rules:\n");
    render_item(&mut s, r, tables);
    s
}
