//! `dns:` of a `dhcp:` entry — where the guests' dnsmasq forwards the names it does not answer
//! itself: the host's resolver configuration (`upstream: host`, the default, which follows
//! whatever network the host is on), a resolver file (`resolv_file: PATH`), or a list of
//! nameservers (`upstream: [...]`; `[]` answers only `domain`, for isolated labs).

use std::fmt;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;

use reconcilers::model::dhcp::Upstream;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::Bridge;
use crate::desired::diagnostics::{suggest, Ctx, Pos};
use crate::desired::host_facts::HostCheck;
use crate::desired::values as v;
use crate::desired::yaml::{quote, scalar};

/// `dns:` of a `dhcp:` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DnsDoc {
    pub upstream: Option<Spanned<UpstreamDoc>>,
    pub resolv_file: Option<Spanned<String>>,
}

/// `upstream:` as written: a word (`host`) or a list of nameservers.
///
/// A hand-written visitor rather than an untagged enum, because serde buffers untagged enums
/// and the list items would lose their positions.
#[derive(Debug)]
pub(crate) enum UpstreamDoc {
    Word(String),
    List(Vec<Spanned<String>>),
}

impl<'de> Deserialize<'de> for UpstreamDoc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = UpstreamDoc;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`host` or a list of nameservers")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<UpstreamDoc, E> {
                Ok(UpstreamDoc::Word(v.to_owned()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<UpstreamDoc, E> {
                Ok(UpstreamDoc::Word(String::new()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<UpstreamDoc, A::Error> {
                let mut out = Vec::new();
                while let Some(item) = seq.next_element::<Spanned<String>>()? {
                    out.push(item);
                }
                Ok(UpstreamDoc::List(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// The upstream of one entry, and the host fact it needs (a resolver file that does not send
/// the queries back to the bridge).
pub(super) fn convert(
    file: usize,
    b: &Bridge<'_>,
    dns: Option<&Spanned<DnsDoc>>,
    at: Pos,
    ctx: &mut Ctx,
) -> (Upstream, Option<HostCheck>) {
    let Some(dns) = dns else {
        return (Upstream::Host, Some(loop_check(b, None, at, ctx)));
    };
    let d = &dns.value;
    let file_at = d.resolv_file.as_ref().map(|f| Pos::of(file, f));
    let resolv = d
        .resolv_file
        .as_ref()
        .and_then(|f| resolv_file(file, f, ctx));
    let upstream = match (&d.upstream, resolv) {
        (Some(u), _) if matches!(u.value, UpstreamDoc::List(_)) && file_at.is_some() => {
            ctx.err(
                file_at.expect("checked"),
                "`resolv_file` and a list of `upstream` servers exclude each other: dnsmasq reads \
                 its nameservers from one place; drop one of them",
            );
            return (Upstream::Servers(Vec::new()), None);
        }
        (Some(u), resolv) => match &u.value {
            UpstreamDoc::List(list) => Upstream::Servers(servers(file, b, list, ctx)),
            UpstreamDoc::Word(w) if w == "host" => {
                resolv.map_or(Upstream::Host, Upstream::ResolvFile)
            }
            UpstreamDoc::Word(w) => {
                ctx.err(
                    Pos::of(file, u),
                    format!(
                        "upstream must be `host` (follow the host's resolv.conf) or a list of nameservers, not `{w}`{}",
                        suggest(w, ["host"])
                    ),
                );
                Upstream::Host
            }
        },
        (None, Some(p)) => Upstream::ResolvFile(p),
        (None, None) => Upstream::Host,
    };
    let check = match &upstream {
        Upstream::Servers(_) => None,
        Upstream::Host => Some(loop_check(b, None, Pos::of(file, dns), ctx)),
        Upstream::ResolvFile(p) => Some(loop_check(b, Some(p.clone()), file_at.unwrap_or(at), ctx)),
    };
    (upstream, check)
}

/// `resolv_file:` must be an absolute path: dnsmasq runs with `/` as its directory.
fn resolv_file(file: usize, f: &Spanned<String>, ctx: &mut Ctx) -> Option<PathBuf> {
    let p = PathBuf::from(f.value.trim());
    if !p.is_absolute() || f.value.contains(['\n', '\0']) {
        ctx.err(
            Pos::of(file, f),
            format!(
                "resolv_file `{}` must be an absolute path, e.g. /run/systemd/resolve/resolv.conf",
                f.value
            ),
        );
        return None;
    }
    Some(p)
}

/// The nameservers of `upstream: [...]`.
fn servers(file: usize, b: &Bridge<'_>, list: &[Spanned<String>], ctx: &mut Ctx) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = Vec::new();
    for u in list {
        let pos = Pos::of(file, u);
        let Some(a) = ctx.check(pos, v::ip(&u.value, "upstream")) else {
            continue;
        };
        if out.contains(&a) {
            ctx.err(pos, format!("upstream {a} is listed twice"));
        } else if b.is_own(a) || a.is_loopback() || a.is_unspecified() {
            ctx.err(
                pos,
                format!("upstream {a} would make dnsmasq forward queries to itself"),
            );
        } else {
            out.push(a);
        }
    }
    out
}

/// The host fact of a resolver file: it must not name the bridge's own addresses (dnsmasq
/// would forward every query to itself).
fn loop_check(b: &Bridge<'_>, file: Option<PathBuf>, at: Pos, ctx: &Ctx) -> HostCheck {
    HostCheck::Resolver {
        bridge: b.name.to_string(),
        own: b.addresses(),
        file,
        at: ctx.diag(at, String::new()),
    }
}

/// The `dns:` block as `show` writes it (always: the default is `upstream: host`, so an
/// empty list must be said).
pub(super) fn render(s: &mut String, u: &Upstream) {
    match u {
        Upstream::Host => s.push_str("    dns:\n      upstream: host\n"),
        Upstream::ResolvFile(p) => {
            let _ = writeln!(
                s,
                "    dns:\n      resolv_file: {}",
                quote(&p.display().to_string())
            );
        }
        Upstream::Servers(list) if list.is_empty() => {
            s.push_str("    dns:\n      upstream: []\n");
        }
        Upstream::Servers(list) => {
            s.push_str("    dns:\n      upstream:\n");
            for a in list {
                let _ = writeln!(s, "        - {}", scalar(&a.to_string()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use reconcilers::model::dhcp::Upstream;

    use crate::desired::{load_str, render_state};

    const BR0: &str = "links:\n  br0: { kind: bridge, addresses: [10.0.0.1/24] }\ndhcp:\n  br0:\n    ranges: [\"10.0.0.100-10.0.0.199\"]\n";

    fn upstream(dns: &str) -> Result<Upstream, String> {
        let src = format!("{BR0}{dns}");
        let d = load_str(&src, Path::new("t.yaml")).map_err(|e| e.to_string())?;
        let text = render_state(&d.state, &d.tables);
        let again = load_str(&text, Path::new("shown.yaml")).expect("show loads back");
        assert_eq!(again.state.dhcp, d.state.dhcp, "show round-trips\n{text}");
        Ok(d.state.dhcp["br0"].settings.upstream.clone())
    }

    #[test]
    fn each_form_and_the_default() {
        assert_eq!(upstream(""), Ok(Upstream::Host));
        assert_eq!(
            upstream("    dns: { upstream: host }\n"),
            Ok(Upstream::Host)
        );
        assert_eq!(
            upstream("    dns: { upstream: [] }\n"),
            Ok(Upstream::Servers(vec![]))
        );
        assert_eq!(
            upstream("    dns: { upstream: [192.168.1.1] }\n"),
            Ok(Upstream::Servers(vec!["192.168.1.1".parse().unwrap()]))
        );
        assert_eq!(
            upstream("    dns: { resolv_file: /run/systemd/resolve/resolv.conf }\n"),
            Ok(Upstream::ResolvFile(PathBuf::from(
                "/run/systemd/resolve/resolv.conf"
            )))
        );
    }

    #[test]
    fn mistakes_are_refused_at_their_place() {
        let e = upstream("    dns: { upstream: hots }\n").unwrap_err();
        assert!(e.starts_with("t.yaml:6:22: upstream must be `host`"), "{e}");
        assert!(e.contains("did you mean `host`?"), "{e}");
        let e = upstream("    dns: { resolv_file: etc/resolv.conf }\n").unwrap_err();
        assert!(
            e.starts_with("t.yaml:6:25: resolv_file `etc/resolv.conf` must be an absolute path"),
            "{e}"
        );
        let e = upstream("    dns: { upstream: [192.168.1.1], resolv_file: /etc/resolv.conf }\n")
            .unwrap_err();
        assert!(e.contains("exclude each other"), "{e}");
    }

    #[test]
    fn the_host_form_polls_the_resolver_file() {
        let d = load_str(BR0, Path::new("t.yaml")).unwrap();
        let config = &d.state.dhcp["br0"].config;
        assert!(
            config.contains("\nresolv-file=/etc/resolv.conf\n"),
            "{config}"
        );
        assert!(!config.contains("no-resolv"), "{config}");
        let isolated = format!("{BR0}    dns: {{ upstream: [] }}\n");
        let d = load_str(&isolated, Path::new("t.yaml")).unwrap();
        let config = &d.state.dhcp["br0"].config;
        assert!(
            config.contains("\nno-resolv\n") && !config.contains("server="),
            "{config}"
        );
    }

    #[test]
    fn a_resolver_file_naming_the_bridge_is_a_host_fact() {
        let dir = std::env::temp_dir().join(format!("nc-resolv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("resolv.conf");
        std::fs::write(&file, "# a loop\nnameserver 10.0.0.1\n").unwrap();
        let src = format!("{BR0}    dns: {{ resolv_file: {} }}\n", file.display());
        let d = load_str(&src, Path::new("t.yaml")).unwrap();
        let h = d.for_host(&Default::default(), None, &Default::default());
        let failed: Vec<String> = h.failed.0.iter().map(ToString::to_string).collect();
        let loops: Vec<&String> = failed
            .iter()
            .filter(|f| f.contains("names 10.0.0.1"))
            .collect();
        assert_eq!(loops.len(), 1, "{failed:?}");
        assert!(loops[0].starts_with("t.yaml:6:25: "), "{failed:?}");
        std::fs::write(&file, "nameserver 192.0.2.53\n").unwrap();
        let h = d.for_host(&Default::default(), None, &Default::default());
        assert!(
            !h.failed.0.iter().any(|f| f.message.contains("names")),
            "{:?}",
            h.failed
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
