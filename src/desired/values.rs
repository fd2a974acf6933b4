//! Value parsers shared by every section: names, addresses, prefixes, MACs, numbers in a
//! range, fwmarks, keywords. Each returns the canonical value or an [`Invalid`] sentence; the
//! caller adds the position (`Ctx::check`).

use std::net::IpAddr;

use ipnet::IpNet;
use reconcilers::model::{Family, MacAddr};
use serde_saphyr::Spanned;

use super::diagnostics::{suggest, Ctx, Pos};

/// Why a value was refused: one plain sentence for the user, without the position.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Invalid(pub String);

impl From<String> for Invalid {
    fn from(s: String) -> Self {
        Invalid(s)
    }
}

impl From<&str> for Invalid {
    fn from(s: &str) -> Self {
        Invalid(s.to_owned())
    }
}

/// Parse one of a fixed set of words, with a did-you-mean on failure.
pub(crate) fn keyword<T: Copy>(word: &str, what: &str, words: &[(&str, T)]) -> Result<T, Invalid> {
    if let Some((_, v)) = words.iter().find(|(w, _)| *w == word) {
        return Ok(*v);
    }
    let names: Vec<&str> = words.iter().map(|(w, _)| *w).collect();
    Err(Invalid::from(format!(
        "unknown {what} `{word}`; expected one of {}{}",
        names.join(", "),
        suggest(word, names.iter().copied())
    )))
}

// ---------------------------------------------------------------------------------------------
// Value checks

/// The kernel's rules for interface names (`dev_valid_name`), and the names it takes for
/// something else: a `%` makes it pick a free name from a pattern (`br%d` gives br0, br1, …:
/// a new link on every pass, never the declared one), and `all`/`default` are the
/// `/proc/sys/net/*/conf` entries, refused with EINVAL.
pub(crate) fn ifname(name: &str) -> Result<(), Invalid> {
    let why = if name.is_empty() {
        "it is empty"
    } else if name.len() > 15 {
        "it is longer than 15 bytes"
    } else if name == "." || name == ".." {
        "`.` and `..` are reserved"
    } else if name == "all" || name == "default" {
        "`all` and `default` are reserved by the kernel (its per-interface sysctl directories)"
    } else if name.contains('%') {
        "it contains `%`, which the kernel reads as a pattern (`br%d` makes br0, br1, … a new link each time)"
    } else if name.contains('/') {
        "it contains `/`"
    } else if name.contains(':') {
        "it contains `:`"
    } else if name.chars().any(char::is_whitespace) {
        "it contains whitespace"
    } else if name.chars().any(char::is_control) {
        "it contains a control character"
    } else {
        return Ok(());
    };
    Err(Invalid::from(format!(
        "`{name}` is not a valid interface name: {why}"
    )))
}

/// An IP address (a gateway, a source, a tunnel end).
pub(crate) fn ip(s: &str, what: &str) -> Result<IpAddr, Invalid> {
    s.trim()
        .parse()
        .map_err(|_| Invalid(format!("{what} `{s}` is not an IP address")))
}

/// An interface address: address and prefix length, host bits kept.
pub(crate) fn host_cidr(s: &str) -> Result<IpNet, Invalid> {
    let s = s.trim();
    if !s.contains('/') {
        return Err(Invalid(match s.parse::<IpAddr>() {
            Ok(a) => {
                let example = match a {
                    IpAddr::V4(_) => format!("{a}/24"),
                    IpAddr::V6(_) => format!("{a}/64"),
                };
                format!("address {a} needs a prefix length, e.g. {example}")
            }
            Err(_) => format!("`{s}` is not an address with a prefix length, e.g. 10.0.0.1/24"),
        }));
    }
    let net: IpNet = s
        .parse()
        .map_err(|_| format!("`{s}` is not an address with a prefix length, e.g. 10.0.0.1/24"))?;
    let a = net.addr();
    if a.is_unspecified() || a.is_multicast() || is_v4_broadcast(&a) {
        return Err(Invalid::from(format!(
            "address {net} is not a unicast address"
        )));
    }
    Ok(net)
}

fn is_v4_broadcast(a: &IpAddr) -> bool {
    matches!(a, IpAddr::V4(v4) if v4.is_broadcast())
}

/// A destination or selector prefix: a CIDR without host bits, or an address meaning a host
/// route (`/32`, `/128`). Host bits are an error rather than silently cleared, because
/// `10.0.0.5/24` usually means the author confused an interface address with a route.
pub(crate) fn prefix(s: &str, what: &str) -> Result<IpNet, Invalid> {
    let s = s.trim();
    if s.contains('/') {
        let net: IpNet = s
            .parse()
            .map_err(|_| format!("{what} `{s}` is not a prefix (e.g. 10.0.0.0/24)"))?;
        if net != net.trunc() {
            return Err(Invalid::from(format!(
                "{what} {net} has host bits set; did you mean {}?",
                net.trunc()
            )));
        }
        Ok(net)
    } else {
        let a: IpAddr = s
            .parse()
            .map_err(|_| format!("{what} `{s}` is not an address or prefix (e.g. 10.0.0.0/24)"))?;
        Ok(IpNet::from(a))
    }
}

/// A link's MAC address; must be usable as a station address.
pub(crate) fn mac(s: &str) -> Result<MacAddr, Invalid> {
    let m = s.trim().parse::<MacAddr>().map_err(|e| e.to_string())?;
    if m.0[0] & 1 == 1 {
        return Err(Invalid::from(format!(
            "MAC {m} must be a unicast MAC (the lowest bit of the first byte is the multicast bit)"
        )));
    }
    if m.0 == [0; 6] {
        return Err(Invalid::from(format!("MAC {m} is not a usable address")));
    }
    Ok(m)
}

/// A number within `lo..=hi`.
pub(crate) fn ranged(v: i64, lo: i64, hi: i64, what: &str) -> Result<i64, Invalid> {
    if (lo..=hi).contains(&v) {
        Ok(v)
    } else {
        Err(Invalid::from(format!(
            "{what} {v} is out of range ({lo}..={hi})"
        )))
    }
}

/// Parse `MARK`, `MARK/MASK` (hex with `0x` or decimal) into (mark, mask).
pub(crate) fn fwmark(s: &str) -> Result<(u32, u32), Invalid> {
    fn num(p: &str) -> Option<u32> {
        let p = p.trim();
        match p.strip_prefix("0x").or_else(|| p.strip_prefix("0X")) {
            Some(hex) => u32::from_str_radix(hex, 16).ok(),
            None => p.parse().ok(),
        }
    }
    let bad = || format!("`{s}` is not a fwmark: write MARK or MARK/MASK, e.g. \"0x1/0xff\"");
    let (mark, mask) = match s.split_once('/') {
        Some((m, k)) => (num(m).ok_or_else(bad)?, num(k).ok_or_else(bad)?),
        None => (num(s).ok_or_else(bad)?, u32::MAX),
    };
    check_fwmark(mark, mask)?;
    Ok((mark, mask))
}

/// A mark/mask pair that can match something and is stored by the kernel as given.
pub(crate) fn check_fwmark(mark: u32, mask: u32) -> Result<(), Invalid> {
    if mask == 0 {
        return Err(Invalid::from(
            "fwmark mask 0 matches every packet; drop `fwmark` instead",
        ));
    }
    if mark & !mask != 0 {
        return Err(Invalid::from(format!(
            "fwmark {mark:#x}/{mask:#x} has mark bits outside the mask, so the rule can never match"
        )));
    }
    Ok(())
}

/// A family keyword (`family:` of a rule).
pub(crate) fn family(word: &str) -> Result<Family, Invalid> {
    keyword(
        word,
        "family",
        &[("ipv4", Family::Inet), ("ipv6", Family::Inet6)],
    )
}

/// "IPv4"/"IPv6", for messages.
pub(crate) fn family_name(f: Family) -> &'static str {
    match f {
        Family::Inet => "IPv4",
        Family::Inet6 => "IPv6",
    }
}

/// IPv6 link-local (`fe80::/10`): always on-link, but needs a device to mean anything.
pub(crate) fn is_v6_link_local(a: &IpAddr) -> bool {
    matches!(a, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80)
}

/// An interface name at its position.
pub(crate) fn ifname_at(file: usize, s: &Spanned<String>, ctx: &mut Ctx) -> Option<String> {
    ctx.check(Pos::of(file, s), ifname(&s.value))
        .map(|()| s.value.clone())
}

/// A number in `lo..=hi` at its position.
pub(crate) fn num(
    file: usize,
    s: &Spanned<i64>,
    lo: i64,
    hi: i64,
    what: &str,
    ctx: &mut Ctx,
) -> Option<i64> {
    ctx.check(Pos::of(file, s), ranged(s.value, lo, hi, what))
}

/// A number already checked to fit.
pub(crate) fn u32_of(n: i64) -> u32 {
    u32::try_from(n).expect("range-checked")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names() {
        assert!(ifname("tap-centos").is_ok());
        assert!(ifname("eth0.100").is_ok());
        assert!(ifname("").is_err());
        assert!(ifname("a-very-long-name0").is_err());
        assert!(ifname("a/b").is_err());
        assert!(ifname("a b").is_err());
        assert!(ifname("..").is_err());
        assert!(ifname("br%d").is_err());
        assert!(ifname("all").is_err());
        assert!(ifname("default").is_err());
        assert!(ifname("default0").is_ok());
        assert!(ifname("eth0:1").is_err());
        assert!(ifname("123456789012345").is_ok());
    }

    #[test]
    fn addresses_and_prefixes() {
        assert_eq!(host_cidr("10.0.0.1/24").unwrap().to_string(), "10.0.0.1/24");
        assert!(host_cidr("10.0.0.1")
            .unwrap_err()
            .0
            .contains("needs a prefix length"));
        assert!(host_cidr("10.0.0.1/33").is_err());
        assert!(host_cidr("224.0.0.1/4").unwrap_err().0.contains("unicast"));
        assert_eq!(prefix("10.0.0.5", "to").unwrap().to_string(), "10.0.0.5/32");
        assert_eq!(prefix("fd00::1", "to").unwrap().to_string(), "fd00::1/128");
        assert!(prefix("10.0.0.5/24", "to")
            .unwrap_err()
            .0
            .contains("did you mean 10.0.0.0/24?"));
        assert!(prefix("x", "to").is_err());
    }

    #[test]
    fn macs() {
        assert!(mac("52:54:00:12:34:56").is_ok());
        assert!(mac("01:00:5e:00:00:01").unwrap_err().0.contains("unicast"));
        assert!(mac("ff:ff:ff:ff:ff:ff").unwrap_err().0.contains("unicast"));
        assert!(mac("00:00:00:00:00:00").is_err());
        assert!(mac("52:54:00:12:34").is_err());
    }

    #[test]
    fn fwmarks() {
        assert_eq!(fwmark("0x1/0xff"), Ok((1, 0xff)));
        assert_eq!(fwmark("0x1"), Ok((1, u32::MAX)));
        assert_eq!(fwmark("16"), Ok((16, u32::MAX)));
        assert_eq!(fwmark("0"), Ok((0, u32::MAX)));
        assert!(fwmark("0x3/0x1").is_err());
        assert!(fwmark("0x1/0").is_err());
        assert!(fwmark("0xzz").is_err());
        assert!(fwmark("0x100000000").is_err());
    }

    #[test]
    fn keywords() {
        let e = keyword(
            "blakhole",
            "route type",
            &[("unicast", 0), ("blackhole", 1)],
        )
        .unwrap_err()
        .0;
        assert!(e.contains("did you mean `blackhole`?"), "{e}");
    }
}
