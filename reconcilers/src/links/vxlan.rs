//! VXLAN links: VNI, local and remote (or group) address, underlying device and UDP port.

use std::net::IpAddr;

use netlink_packet_route::link::{InfoData, InfoKind, InfoVxlan, LinkMessage};

use super::netlink::{
    index_of, link_id, named_message, parent_in_other_netns, push_link_info, IndexByName,
    NameByIndex,
};
use crate::error::KernelError;
use crate::model::{LinkKind, VxlanOpts};

/// The IANA VXLAN port, used when the desired state names none (the kernel's own default is
/// still the pre-standard 8472).
pub const DEFAULT_PORT: u16 = 4789;

/// The kind of a dumped vxlan link. One whose underlying device is unknown here (another
/// namespace) is `External`, since `VxlanOpts` could not describe it.
pub fn parse(msg: &LinkMessage, info: &[InfoVxlan], names: &NameByIndex) -> LinkKind {
    let mut opts = VxlanOpts {
        id: 0,
        local: None,
        remote: None,
        dev: None,
        port: None,
    };
    for i in info {
        match i {
            InfoVxlan::Id(id) => opts.id = *id,
            InfoVxlan::Group(a) => opts.remote = Some(IpAddr::V4(*a)),
            InfoVxlan::Group6(a) => opts.remote = Some(IpAddr::V6(*a)),
            InfoVxlan::Local(a) => opts.local = Some(IpAddr::V4(*a)),
            InfoVxlan::Local6(a) => opts.local = Some(IpAddr::V6(*a)),
            InfoVxlan::Port(p) => opts.port = Some(*p),
            InfoVxlan::Link(idx) if *idx != 0 => {
                if parent_in_other_netns(msg) {
                    return LinkKind::External;
                }
                match names.get(idx) {
                    Some(n) => opts.dev = Some(n.to_string()),
                    None => return LinkKind::External,
                }
            }
            _ => {}
        }
    }
    LinkKind::Vxlan(opts)
}

/// The creation request body for vxlan `name` (sent with `netlink::CREATE_FLAGS`); the
/// underlying device is looked up in `index`.
pub fn create_message(
    name: &str,
    opts: &VxlanOpts,
    index: &IndexByName,
) -> Result<LinkMessage, KernelError> {
    let mut info = vec![InfoVxlan::Id(opts.id)];
    match opts.local {
        Some(IpAddr::V4(a)) => info.push(InfoVxlan::Local(a)),
        Some(IpAddr::V6(a)) => info.push(InfoVxlan::Local6(a)),
        None => {}
    }
    match opts.remote {
        Some(IpAddr::V4(a)) => info.push(InfoVxlan::Group(a)),
        Some(IpAddr::V6(a)) => info.push(InfoVxlan::Group6(a)),
        None => {}
    }
    if let Some(dev) = &opts.dev {
        info.push(InfoVxlan::Link(index_of(
            index,
            dev,
            "link",
            &link_id(name),
            "create",
        )?));
    }
    info.push(InfoVxlan::Port(opts.port.unwrap_or(DEFAULT_PORT)));
    let mut msg = named_message(name);
    push_link_info(&mut msg, InfoKind::Vxlan, Some(InfoData::Vxlan(info)));
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::links::netlink::info_data;

    #[test]
    fn parse_reads_options() {
        let names: NameByIndex = [(2, "eth0".into())].into();
        let msg = named_message("vx0");
        let kind = parse(
            &msg,
            &[
                InfoVxlan::Id(42),
                InfoVxlan::Local("10.0.0.1".parse().unwrap()),
                InfoVxlan::Group("10.0.0.2".parse().unwrap()),
                InfoVxlan::Link(2),
                InfoVxlan::Port(4789),
                InfoVxlan::Learning(true),
            ],
            &names,
        );
        assert_eq!(
            kind,
            LinkKind::Vxlan(VxlanOpts {
                id: 42,
                local: Some("10.0.0.1".parse().unwrap()),
                remote: Some("10.0.0.2".parse().unwrap()),
                dev: Some("eth0".into()),
                port: Some(4789),
            })
        );
        assert_eq!(
            parse(&msg, &[InfoVxlan::Link(9)], &names),
            LinkKind::External
        );
    }

    #[test]
    fn create_defaults_the_port_and_resolves_dev() {
        let index: IndexByName = [("eth0".to_string(), 2)].into();
        let opts = VxlanOpts {
            id: 7,
            local: None,
            remote: Some("fd00::2".parse().unwrap()),
            dev: Some("eth0".into()),
            port: None,
        };
        let msg = create_message("vx0", &opts, &index).unwrap();
        let Some(InfoData::Vxlan(info)) = info_data(&msg) else {
            panic!()
        };
        assert!(info.contains(&InfoVxlan::Port(DEFAULT_PORT)));
        assert!(info.contains(&InfoVxlan::Link(2)));
        assert!(info.contains(&InfoVxlan::Group6("fd00::2".parse().unwrap())));
        let err = create_message("vx0", &opts, &IndexByName::new()).unwrap_err();
        assert_eq!(err.errno, Some(libc::ENODEV));
    }
}
