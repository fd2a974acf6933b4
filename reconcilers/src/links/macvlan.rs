//! Macvlan links: the parent (`IFLA_LINK`) and the mode.

use netlink_packet_route::link::{
    InfoData, InfoKind, InfoMacVlan, LinkAttribute, LinkMessage, MacVlanMode as NlMode,
};

use super::netlink::{
    index_of, link_id, named_message, parent_in_other_netns, parent_index, push_link_info,
    IndexByName, NameByIndex,
};
use crate::error::KernelError;
use crate::model::{LinkKind, MacvlanMode, MacvlanOpts};

fn from_netlink(mode: &NlMode) -> Option<MacvlanMode> {
    match mode {
        NlMode::Private => Some(MacvlanMode::Private),
        NlMode::Vepa => Some(MacvlanMode::Vepa),
        NlMode::Bridge => Some(MacvlanMode::Bridge),
        NlMode::Passthrough => Some(MacvlanMode::Passthru),
        NlMode::Source => Some(MacvlanMode::Source),
        _ => None,
    }
}

fn to_netlink(mode: MacvlanMode) -> NlMode {
    match mode {
        MacvlanMode::Private => NlMode::Private,
        MacvlanMode::Vepa => NlMode::Vepa,
        MacvlanMode::Bridge => NlMode::Bridge,
        MacvlanMode::Passthru => NlMode::Passthrough,
        MacvlanMode::Source => NlMode::Source,
    }
}

/// The kind of a dumped macvlan. One whose parent is in another namespace (a macvlan moved
/// into a container) or has an unknown mode is `External`.
pub fn parse(msg: &LinkMessage, info: &[InfoMacVlan], names: &NameByIndex) -> LinkKind {
    if parent_in_other_netns(msg) {
        return LinkKind::External;
    }
    let Some(link) = parent_index(msg).and_then(|i| names.get(&i)) else {
        return LinkKind::External;
    };
    // The kernel's default mode (no IFLA_MACVLAN_MODE) is VEPA.
    let mode = match info.iter().find_map(|i| match i {
        InfoMacVlan::Mode(m) => Some(m),
        _ => None,
    }) {
        None => MacvlanMode::Vepa,
        Some(m) => match from_netlink(m) {
            Some(m) => m,
            None => return LinkKind::External,
        },
    };
    LinkKind::Macvlan(MacvlanOpts {
        link: link.to_string(),
        mode,
    })
}

/// The creation request body for macvlan `name` on its parent (looked up in `index`), sent
/// with `netlink::CREATE_FLAGS`.
pub fn create_message(
    name: &str,
    opts: &MacvlanOpts,
    index: &IndexByName,
) -> Result<LinkMessage, KernelError> {
    let parent = index_of(index, &opts.link, "parent link", &link_id(name), "create")?;
    let mut msg = named_message(name);
    msg.attributes.push(LinkAttribute::Link(parent));
    push_link_info(
        &mut msg,
        InfoKind::MacVlan,
        Some(InfoData::MacVlan(vec![InfoMacVlan::Mode(to_netlink(
            opts.mode,
        ))])),
    );
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_roundtrip() {
        for m in [
            MacvlanMode::Private,
            MacvlanMode::Vepa,
            MacvlanMode::Bridge,
            MacvlanMode::Passthru,
            MacvlanMode::Source,
        ] {
            assert_eq!(from_netlink(&to_netlink(m)), Some(m));
        }
    }

    #[test]
    fn parse_and_create() {
        let names: NameByIndex = [(2, "eth0".into())].into();
        let index: IndexByName = [("eth0".to_string(), 2)].into();
        let opts = MacvlanOpts {
            link: "eth0".into(),
            mode: MacvlanMode::Bridge,
        };
        let msg = create_message("mv0", &opts, &index).unwrap();
        let info = vec![InfoMacVlan::Mode(NlMode::Bridge)];
        assert_eq!(parse(&msg, &info, &names), LinkKind::Macvlan(opts.clone()));
        assert_eq!(
            parse(&msg, &[], &names),
            LinkKind::Macvlan(MacvlanOpts {
                mode: MacvlanMode::Vepa,
                ..opts
            })
        );
        assert!(create_message(
            "mv0",
            &MacvlanOpts {
                link: "nope".into(),
                mode: MacvlanMode::Bridge
            },
            &index
        )
        .is_err());
    }
}
