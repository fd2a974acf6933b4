//! `rules:`: the policy rules the kernel is asked for, with their selectors, marks and actions.

use reconcilers::model::{Family, Rule, RuleAction, RuleKey, TABLE_LOCAL, TABLE_MAIN};

use super::{load, refused, refused_once};

fn rule(key: RuleKey, action: RuleAction) -> Rule {
    Rule {
        key,
        action,
        owned: false,
    }
}

#[test]
fn rules_convert_with_their_selectors_and_actions() {
    let d = load(
        "\
tables:
  wrt: 101
rules:
  - { priority: 100, from: 10.0.0.0/24, to: 192.0.2.0/24, iif: br0, oif: eth0, table: wrt }
  - { priority: 101, fwmark: \"0x1/0xff\", table: main }
  - { priority: 102, fwmark: 16, not: true, action: blackhole }
  - { priority: 103, to: \"fd00::/8\", action: prohibit }
  - { priority: 104, family: ipv6, from: all, table: local }
  - { priority: 105, family: ipv4, from: 10.0.0.0/8, action: unreachable }
  - { priority: 106, to: all, table: 7 }
",
    );
    let mut k100 = RuleKey::all(100, Family::Inet);
    k100.from = Some("10.0.0.0/24".parse().expect("net"));
    k100.to = Some("192.0.2.0/24".parse().expect("net"));
    k100.iif = Some("br0".into());
    k100.oif = Some("eth0".into());
    let mut k101 = RuleKey::all(101, Family::Inet);
    k101.fwmark = Some((1, 0xff));
    let mut k102 = RuleKey::all(102, Family::Inet);
    k102.fwmark = Some((16, u32::MAX));
    k102.not = true;
    let mut k103 = RuleKey::all(103, Family::Inet6);
    k103.to = Some("fd00::/8".parse().expect("net"));
    let mut k105 = RuleKey::all(105, Family::Inet);
    k105.from = Some("10.0.0.0/8".parse().expect("net"));
    let want = [
        rule(k100, RuleAction::Lookup(101)),
        rule(k101, RuleAction::Lookup(TABLE_MAIN)),
        rule(k102, RuleAction::Blackhole),
        rule(k103, RuleAction::Prohibit),
        rule(
            RuleKey::all(104, Family::Inet6),
            RuleAction::Lookup(TABLE_LOCAL),
        ),
        rule(k105, RuleAction::Unreachable),
        rule(RuleKey::all(106, Family::Inet), RuleAction::Lookup(7)),
    ];
    let mut got: Vec<Rule> = d.state.rules.into_values().collect();
    got.sort_by_key(|r| r.key.priority);
    assert_eq!(got, want);
}

#[test]
fn rule_selectors_must_agree_on_the_family() {
    refused_once(
        "rules:\n  - { priority: 1, from: 10.0.0.0/8, to: \"fd00::/8\", table: main }\n",
        2,
        42,
        "different address families",
    );
    refused_once(
        "rules:\n  - { priority: 1, family: ipv6, from: 10.0.0.0/8, table: main }\n",
        2,
        28,
        "family ipv6 does not match",
    );
}

#[test]
fn rule_marks_and_actions_are_checked() {
    refused_once(
        "rules:\n  - { priority: 1, fwmark: 4294967296, table: main }\n",
        2,
        28,
        "out of range",
    );
    refused_once(
        "rules:\n  - { priority: 1, fwmark: 1.5, table: main }\n",
        2,
        28,
        "MARK or MARK/MASK",
    );
    refused_once(
        "rules:\n  - { priority: 1, action: blackhole, table: main }\n",
        2,
        46,
        "cannot have `table`",
    );
    refused_once(
        "rules:\n  - { priority: 1, from: 10.0.0.0/8 }\n",
        2,
        5,
        "needs `table`",
    );
    refused_once("rules:\n  - { table: main }\n", 2, 5, "needs `priority`");
}

/// A rule with an error is left out before the cross-rule checks: its twin with the same key
/// is not reported as declared twice.
#[test]
fn a_rule_with_an_error_is_left_out() {
    let diags = refused(
        "\
rules:
  - { priority: 5, from: 10.0.0.0/8, iif: \"bad/name\", table: main }
  - { priority: 5, from: 10.0.0.0/8, table: main }
",
    );
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!((diags[0].0, diags[0].1), (2, 43), "{diags:?}");
}
