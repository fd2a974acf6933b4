//! Links: the data types of network interfaces and their kind-specific options.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::{Ident, MacAddr};

/// A network interface.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// Interface name (IFLA_IFNAME), the link's key.
    pub name: String,
    /// What kind of link it is, with the kind's own options.
    pub kind: LinkKind,
    /// The bridge this link is a port of. Desired `None` on a link netconverge created means
    /// "no master"; on other links it means "not managed".
    pub master: Option<String>,
    /// MTU; `None` on the desired side means not managed.
    pub mtu: Option<u32>,
    /// MAC address; `None` on the desired side means not managed.
    pub mac: Option<MacAddr>,
    /// Administrative state (IFF_UP); `None` on the desired side means not managed.
    pub up: Option<bool>,
    /// Observed: the link carries netconverge's alias. Desired: always false.
    #[serde(skip)]
    pub owned: bool,
    /// Observed: the link is netconverge's by its creation group (`CREATE_GROUP`) but lacks
    /// the alias (a crash between the two writes); the next plan writes the alias.
    #[serde(skip)]
    pub mark_pending: bool,
}

impl Link {
    /// A link of `kind` named `name` with nothing else specified.
    pub fn new(name: impl Into<String>, kind: LinkKind) -> Link {
        Link {
            name: name.into(),
            kind,
            master: None,
            mtu: None,
            mac: None,
            up: None,
            owned: false,
            mark_pending: false,
        }
    }
}

/// The kind of a link and its kind-specific options.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkKind {
    /// A link netconverge never creates or deletes (a NIC, or anything of a kind it does not
    /// manage); only its listed attributes are managed.
    External,
    /// A Linux bridge.
    Bridge(BridgeOpts),
    /// A persistent tap device (a VM's NIC).
    Tap(TapOpts),
    /// One end of a veth pair.
    Veth(VethOpts),
    /// A VXLAN tunnel endpoint.
    Vxlan(VxlanOpts),
    /// A macvlan on top of another link.
    Macvlan(MacvlanOpts),
}

impl LinkKind {
    /// The name used in YAML and in messages.
    pub fn name(&self) -> &'static str {
        match self {
            LinkKind::External => "external",
            LinkKind::Bridge(_) => "bridge",
            LinkKind::Tap(_) => "tap",
            LinkKind::Veth(_) => "veth",
            LinkKind::Vxlan(_) => "vxlan",
            LinkKind::Macvlan(_) => "macvlan",
        }
    }
}

/// Bridge options.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BridgeOpts {
    /// Spanning tree on (kernel STP) or off.
    pub stp: Option<bool>,
    /// Forward delay in centiseconds, as `ip -d link` prints it (1500 = 15 s).
    pub forward_delay: Option<u32>,
}

/// Tap options.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TapOpts {
    /// The user allowed to open the tap (TUNSETOWNER); `None` = anyone with CAP_NET_ADMIN only.
    pub owner: Option<Ident>,
    /// The group allowed to open the tap (TUNSETGROUP).
    pub group: Option<Ident>,
    /// IFF_VNET_HDR (virtio-net header, what qemu's vhost wants).
    pub vnet_hdr: Option<bool>,
    /// IFF_MULTI_QUEUE; cannot change on an existing tap (the tap is recreated).
    pub multi_queue: Option<bool>,
    /// Observed: how many queues processes hold open (IFLA_TUN_NUM_QUEUES plus
    /// IFLA_TUN_NUM_DISABLED_QUEUES); non-zero while a VM is attached. Desired: always 0.
    /// While it is non-zero the per-open flags (`vnet_hdr`, and the queues of a
    /// `multi_queue` tap) are the attached process's choice, not drift.
    #[serde(skip)]
    pub open_queues: u32,
}

impl TapOpts {
    /// A process (a VM) has the tap open.
    pub fn in_use(&self) -> bool {
        self.open_queues > 0
    }
}

/// Veth options.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VethOpts {
    /// The other end's name (in the same namespace).
    pub peer: String,
}

/// VXLAN options; none can change in place (a change recreates the link).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VxlanOpts {
    /// VNI.
    pub id: u32,
    /// Local tunnel address.
    pub local: Option<IpAddr>,
    /// Remote tunnel address (unicast) or multicast group.
    pub remote: Option<IpAddr>,
    /// Underlying device.
    pub dev: Option<String>,
    /// UDP destination port (default 4789 when created by netconverge).
    pub port: Option<u16>,
}

/// Macvlan modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MacvlanMode {
    /// Private.
    Private,
    /// VEPA.
    Vepa,
    /// Bridge (the usual choice).
    Bridge,
    /// Passthru.
    Passthru,
    /// Source.
    Source,
}

impl MacvlanMode {
    /// The name used in YAML.
    pub fn name(self) -> &'static str {
        match self {
            MacvlanMode::Private => "private",
            MacvlanMode::Vepa => "vepa",
            MacvlanMode::Bridge => "bridge",
            MacvlanMode::Passthru => "passthru",
            MacvlanMode::Source => "source",
        }
    }
}

/// Macvlan options; the parent cannot change in place.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MacvlanOpts {
    /// The parent link.
    pub link: String,
    /// The mode (default bridge).
    pub mode: MacvlanMode,
}
