//! `sysctl:`: the values written to /proc/sys, as the kernel prints them back.

use std::collections::BTreeMap;

use super::{load, refused_once};

#[test]
fn sysctl_values_are_normalised() {
    let d = load(
        "\
sysctl:
  net.ipv4.ip_local_port_range: \"32768\\t 60999 \"
  net.ipv6.conf.all.forwarding: true
  net.ipv4.conf.all.rp_filter: false
  net.core.somaxconn: 4096
  net.ipv4.tcp_rmem: \"4096 -1 6291456\"
",
    );
    let want: BTreeMap<String, String> = [
        ("net.core.somaxconn", "4096"),
        ("net.ipv4.conf.all.rp_filter", "0"),
        ("net.ipv4.ip_local_port_range", "32768 60999"),
        ("net.ipv4.tcp_rmem", "4096 -1 6291456"),
        ("net.ipv6.conf.all.forwarding", "1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(d.state.sysctls, want);
}

#[test]
fn sysctl_values_the_kernel_would_store_differently_are_refused() {
    refused_once(
        "sysctl:\n  net.ipv4.ip_forward: \"1\\n2\"\n",
        2,
        24,
        "the value contains",
    );
    refused_once(
        "sysctl:\n  net.ipv4.ip_forward: \"010\"\n",
        2,
        24,
        "not a number as the kernel prints it",
    );
}
