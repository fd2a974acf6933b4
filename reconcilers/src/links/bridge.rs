//! Bridges: STP on/off and the forward delay, read from and written to `IFLA_INFO_DATA`.
//!
//! The forward delay travels as the kernel's clock_t value (`IFLA_BR_FORWARD_DELAY`), which is
//! centiseconds — the number `ip -d link` prints (1500 = 15 s) — so no conversion happens here.

use netlink_packet_route::link::{BridgeStpState, InfoBridge, InfoData, InfoKind, LinkMessage};

use super::netlink::{named_message, push_link_info};
use crate::model::BridgeOpts;

/// Bridge options of a dumped bridge. Both are filled on any kernel netconverge supports.
pub fn parse(info: &[InfoBridge]) -> BridgeOpts {
    let mut opts = BridgeOpts::default();
    for i in info {
        match i {
            InfoBridge::StpState(s) => opts.stp = Some(*s != BridgeStpState::Disabled),
            InfoBridge::ForwardDelay(d) => opts.forward_delay = Some(*d),
            _ => {}
        }
    }
    opts
}

/// The `IFLA_INFO_DATA` setting the options that are `Some`; `None` when nothing is set.
/// The forward delay comes first, as the kernel applies it first anyway.
pub fn info_data(opts: &BridgeOpts) -> Option<InfoData> {
    let mut info = Vec::new();
    if let Some(d) = opts.forward_delay {
        info.push(InfoBridge::ForwardDelay(d));
    }
    if let Some(stp) = opts.stp {
        // "Kernel STP" asks for STP; the kernel itself falls back or hands over to a
        // user-space daemon (bridge-stp helper), and reads back Kernel or User STP.
        info.push(InfoBridge::StpState(if stp {
            BridgeStpState::KernelStp
        } else {
            BridgeStpState::Disabled
        }));
    }
    (!info.is_empty()).then_some(InfoData::Bridge(info))
}

/// The creation request body for bridge `name` (sent with `netlink::CREATE_FLAGS`).
pub fn create_message(name: &str, opts: &BridgeOpts) -> LinkMessage {
    let mut msg = named_message(name);
    push_link_info(&mut msg, InfoKind::Bridge, info_data(opts));
    msg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::links::netlink::{info_data as msg_info_data, info_kind};

    #[test]
    fn parse_reads_stp_and_delay() {
        let opts = parse(&[
            InfoBridge::HelloTime(200),
            InfoBridge::ForwardDelay(1500),
            InfoBridge::StpState(BridgeStpState::UserStp),
        ]);
        assert_eq!(opts.stp, Some(true));
        assert_eq!(opts.forward_delay, Some(1500));
        assert_eq!(
            parse(&[InfoBridge::StpState(BridgeStpState::Disabled)]).stp,
            Some(false)
        );
    }

    #[test]
    fn create_carries_options() {
        let msg = create_message(
            "br0",
            &BridgeOpts {
                stp: Some(false),
                forward_delay: Some(0),
            },
        );
        assert_eq!(info_kind(&msg), Some(&InfoKind::Bridge));
        assert_eq!(
            msg_info_data(&msg),
            Some(&InfoData::Bridge(vec![
                InfoBridge::ForwardDelay(0),
                InfoBridge::StpState(BridgeStpState::Disabled)
            ]))
        );
        assert_eq!(info_data(&BridgeOpts::default()), None);
    }
}
