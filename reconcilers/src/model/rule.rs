//! Rules: the data types of a policy routing rule, its selector and its action.

use std::fmt::Write as _;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::{Family, TABLE_DEFAULT, TABLE_LOCAL, TABLE_MAIN};

/// What the kernel keys a rule on: its priority and its selector.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RuleKey {
    /// Priority (preference).
    pub priority: u32,
    /// Family.
    pub family: Family,
    /// Source prefix (`None` = all).
    pub from: Option<IpNet>,
    /// Destination prefix (`None` = all).
    pub to: Option<IpNet>,
    /// Firewall mark and mask (mask defaults to 0xffffffff).
    pub fwmark: Option<(u32, u32)>,
    /// Input interface name.
    pub iif: Option<String>,
    /// Output interface name.
    pub oif: Option<String>,
    /// Inverted selector (FIB_RULE_INVERT).
    pub not: bool,
    /// `suppress_prefixlength N` (FRA_SUPPRESS_PREFIXLEN): a lookup whose answer has a prefix
    /// of N bits or fewer is ignored and the next rule is tried (`0`: the table's default
    /// route is). Part of the key: the kernel holds two rules that differ only in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppress_prefixlength: Option<u8>,
}

impl RuleKey {
    /// The selector matching every packet of `family` at `priority` (`from all`), to be
    /// narrowed with struct update syntax.
    pub fn all(priority: u32, family: Family) -> RuleKey {
        RuleKey {
            priority,
            family,
            from: None,
            to: None,
            fwmark: None,
            iif: None,
            oif: None,
            not: false,
            suppress_prefixlength: None,
        }
    }
}

/// What a rule does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleAction {
    /// Look the packet up in a table.
    Lookup(u32),
    /// Drop silently.
    Blackhole,
    /// Drop with ICMP unreachable.
    Unreachable,
    /// Drop with ICMP administratively prohibited.
    Prohibit,
}

/// A policy routing rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// Priority and selector.
    #[serde(flatten)]
    pub key: RuleKey,
    /// What it does.
    pub action: RuleAction,
    /// Observed: carries netconverge's protocol number.
    #[serde(skip)]
    pub owned: bool,
}

impl Rule {
    /// How a rule is named in plans and errors, in `ip rule` words:
    /// `10001: from all fwmark 0x1/0xff lookup 101`.
    pub fn id(&self) -> String {
        let r = self;
        let k = &r.key;
        let mut s = format!("{}:", k.priority);
        if k.not {
            s.push_str(" not");
        }
        match &k.from {
            Some(f) => {
                let _ = write!(s, " from {f}");
            }
            None => s.push_str(" from all"),
        }
        if let Some(t) = &k.to {
            let _ = write!(s, " to {t}");
        }
        if let Some((mark, mask)) = k.fwmark {
            let _ = write!(s, " fwmark {mark:#x}");
            if mask != u32::MAX {
                let _ = write!(s, "/{mask:#x}");
            }
        }
        if let Some(i) = &k.iif {
            let _ = write!(s, " iif {i}");
        }
        if let Some(o) = &k.oif {
            let _ = write!(s, " oif {o}");
        }
        match r.action {
            RuleAction::Lookup(t) => {
                let _ = write!(s, " lookup {}", super::table_word(t));
            }
            RuleAction::Blackhole => s.push_str(" blackhole"),
            RuleAction::Unreachable => s.push_str(" unreachable"),
            RuleAction::Prohibit => s.push_str(" prohibit"),
        }
        if let Some(n) = k.suppress_prefixlength {
            let _ = write!(s, " suppress_prefixlength {n}");
        }
        s
    }

    /// The kernel's key of this rule.
    pub fn key(&self) -> RuleKey {
        self.key.clone()
    }

    /// True for the rules the kernel installs by itself in every namespace (priority 0 local,
    /// 32766 main, 32767 default); they are never shown or touched.
    pub fn is_kernel_default(&self) -> bool {
        let plain = self.key.from.is_none()
            && self.key.to.is_none()
            && self.key.fwmark.is_none()
            && self.key.iif.is_none()
            && self.key.oif.is_none()
            && self.key.suppress_prefixlength.is_none()
            && !self.key.not;
        plain
            && matches!(
                (self.key.priority, self.action),
                (0, RuleAction::Lookup(TABLE_LOCAL))
                    | (32766, RuleAction::Lookup(TABLE_MAIN))
                    | (32767, RuleAction::Lookup(TABLE_DEFAULT))
            )
    }
}
