//! `tables:` and table references: the table id each route and rule is asked for in.

use reconcilers::model::{RuleAction, TABLE_DEFAULT, TABLE_LOCAL, TABLE_MAIN};

use super::{load, refused, refused_once};

/// The table of the one route `table: REF` names, after `tables: { wrt: 101 }`.
fn route_table(table: &str) -> u32 {
    let d = load(&format!(
        "tables:\n  wrt: 101\nroutes:\n  - {{ to: 10.0.0.0/8, dev: eth0, table: {table} }}\n"
    ));
    let tables: Vec<u32> = d.state.routes.values().map(|r| r.table).collect();
    assert_eq!(tables.len(), 1);
    tables[0]
}

#[test]
fn table_references_resolve_to_ids() {
    assert_eq!(route_table("wrt"), 101);
    assert_eq!(route_table("101"), 101);
    assert_eq!(route_table("\"102\""), 102);
    assert_eq!(route_table("4294967295"), u32::MAX);
    assert_eq!(route_table("main"), TABLE_MAIN);
    assert_eq!(route_table("default"), TABLE_DEFAULT);
    let d = load("rules:\n  - { priority: 9, table: local }\n");
    let actions: Vec<RuleAction> = d.state.rules.values().map(|r| r.action).collect();
    assert_eq!(actions, [RuleAction::Lookup(TABLE_LOCAL)]);
    let d = load("tables:\n  wrt: 101\n  fw: 102\n");
    assert_eq!(
        d.tables.into_iter().collect::<Vec<_>>(),
        [("fw".to_string(), 102), ("wrt".to_string(), 101)]
    );
}

#[test]
fn bad_table_references_are_refused() {
    let at = |table: &str, fragment: &str| {
        refused_once(
            &format!(
                "tables:\n  wrt: 101\nroutes:\n  - {{ to: 10.0.0.0/8, dev: eth0, table: {table} }}\n"
            ),
            4,
            41,
            fragment,
        );
    };
    at("0", "out of range");
    at("4294967296", "out of range");
    at("\"+101\"", "unknown table `+101`");
    at("wrtt", "did you mean `wrt`?");
    at("local", "local table");
    at("true", "a name or a number");
}

/// A table declared with a bad id is reported once, at the id, not again where it is used.
#[test]
fn a_broken_table_is_not_unknown_too() {
    let diags =
        refused("tables:\n  bad: 254\nroutes:\n  - { to: 10.0.0.0/8, dev: eth0, table: bad }\n");
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!((diags[0].0, diags[0].1), (2, 8), "{diags:?}");
}
