//! `sysctl:` — network sysctls by dotted name: checking names and values, and writing the
//! section back.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use reconcilers::model::{LinkKind, State};
use serde_saphyr::Spanned;

use super::convert::Converted;
use super::diagnostics::{Ctx, Pos};
use super::host_facts::{link_of, HostCheck};
use super::load::Merged;
use super::values::Invalid;
use super::yaml::{quote, scalar, Scalar};

/// A sysctl name as `sysctl(8)` writes it. Only `net.*` is netconverge's business; a `/` may
/// stand for a dot inside an interface name (`net.ipv4.conf.eth0/100.rp_filter`).
pub(crate) fn sysctl_name(name: &str) -> Result<(), Invalid> {
    if !name.starts_with("net.") {
        return Err(Invalid::from(format!(
            "`{name}` is not a network sysctl: names are written dotted and start with `net.`, e.g. net.ipv4.ip_forward"
        )));
    }
    let bad_char = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | '@' | '+')));
    if let Some(c) = bad_char {
        return Err(Invalid::from(format!(
            "`{name}` is not a valid sysctl name: it contains {c:?}"
        )));
    }
    for part in name.split('.') {
        let as_path = part.replace('/', ".");
        if part.is_empty() || as_path == "." || as_path == ".." {
            return Err(Invalid::from(format!(
                "`{name}` is not a valid sysctl name: it has an empty or `.`/`..` component"
            )));
        }
    }
    Ok(())
}

/// A string value as the kernel will print it back, or why it never would be. A line break or
/// other control character is refused: the kernel reads `"1\n0"` as two values and prints
/// back something else, so the value would be rewritten on every pass. Numbers must be
/// written in decimal without a sign or leading zeros: the kernel reads `010` as octal 8 and
/// `0x1` as hex, and prints back `8` and `1`.
pub(crate) fn canonical_value(s: &str) -> Result<String, Invalid> {
    if let Some(c) = s
        .chars()
        .find(|c| c.is_control() && !matches!(c, ' ' | '\t'))
    {
        return Err(Invalid::from(format!(
            "the value contains {c:?}; the kernel would store something else (write one line; several numbers are separated by spaces)"
        )));
    }
    let text = reconcilers::model::normalize_sysctl_value(s);
    if let Some(field) = text.split(' ').find(|f| not_as_printed(f)) {
        return Err(Invalid::from(format!(
            "`{field}` is not a number as the kernel prints it (decimal, no `+`, no leading zeros: it reads 010 as octal and 0x10 as hex)"
        )));
    }
    Ok(text)
}

/// A number the kernel parses (with `strtoul`'s base 0) but prints differently: a `+`, a
/// leading zero (octal) or `0x` (hex).
fn not_as_printed(field: &str) -> bool {
    let digits = field.strip_prefix('-').unwrap_or(field);
    let b = digits.as_bytes();
    match b {
        [b'+', d, ..] => d.is_ascii_digit(),
        [b'0', d, ..] => d.is_ascii_digit() || *d == b'x' || *d == b'X',
        _ => false,
    }
}

/// Check one declared sysctl and add it to `out`.
pub(crate) fn convert(
    file: usize,
    name: &Spanned<String>,
    value: &Spanned<Scalar>,
    ctx: &mut Ctx,
    out: &mut BTreeMap<String, String>,
) {
    let name_ok = ctx
        .check(Pos::of(file, name), sysctl_name(&name.value))
        .is_some();
    let at = Pos::of(file, value);
    let text = match &value.value {
        Scalar::Str(s) => match canonical_value(s) {
            Ok(t) => t,
            Err(why) => {
                ctx.err(at, format!("sysctl {}: {why}", name.value));
                return;
            }
        },
        Scalar::Int(n) => n.to_string(),
        Scalar::Bool(b) => u8::from(*b).to_string(),
        Scalar::Float(_) => {
            ctx.err(
                at,
                format!(
                    "sysctl {} must be a string or whole number; write the value in quotes",
                    name.value
                ),
            );
            return;
        }
        Scalar::Null => {
            // A missing value has no position of its own; point at the name.
            ctx.err(
                Pos::of(file, name),
                format!("sysctl {} needs a value", name.value),
            );
            return;
        }
    };
    if text.is_empty() {
        ctx.err(at, format!("sysctl {} has an empty value", name.value));
        return;
    }
    if name_ok {
        out.insert(name.value.clone(), text);
    }
}

/// The host facts of the declared sysctls: each must exist in the namespace with as many
/// values as declared, or the write would fail (ENOENT) or be stored differently only after
/// earlier writes. A per-interface sysctl of a link netconverge creates is looked up under
/// the kernel's template for new links (`default` in place of the link's name).
pub(crate) fn host_checks(m: &Merged, c: &Converted, ctx: &Ctx) -> Vec<HostCheck> {
    let mut out = Vec::new();
    for (file, name, value) in &m.sysctl {
        let Some(text) = c.sysctls.get(&name.value) else {
            continue;
        };
        let created = link_of(&name.value).is_some_and(|l| {
            c.links
                .iter()
                .any(|i| i.link.name == l && i.link.kind != LinkKind::External)
        });
        let template = created
            .then(|| reconcilers::sysctl::template_of(&name.value))
            .flatten();
        let fields = text.split(' ').count();
        out.push(HostCheck::Sysctl {
            name: name.value.clone(),
            fields,
            template,
            at: ctx.diag(
                Pos::of(*file, value),
                format!(
                    "sysctl {} does not exist in this namespace, or does not take {fields} value{} (is the module loaded, the name spelt right?)",
                    name.value,
                    if fields == 1 { "" } else { "s" }
                ),
            ),
        });
    }
    out
}

/// The `sysctl:` section of `show`; `None` when the state has no sysctl.
pub(crate) fn render_section(state: &State) -> Option<String> {
    if state.sysctls.is_empty() {
        return None;
    }
    let mut s = String::from("sysctl:\n");
    for (name, value) in &state.sysctls {
        let _ = writeln!(s, "  {}: {}", scalar(name), quote(value));
    }
    Some(s)
}

/// One sysctl as a plan's diff shows it.
pub(crate) fn render_object(name: &str, value: &str) -> String {
    format!("sysctl:\n  {}: {}\n", scalar(name), quote(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysctl_names() {
        assert!(sysctl_name("net.ipv4.ip_forward").is_ok());
        assert!(sysctl_name("net.ipv4.conf.eth0/100.rp_filter").is_ok());
        assert!(sysctl_name("vm.swappiness").is_err());
        assert!(sysctl_name("net..x").is_err());
        assert!(sysctl_name("net.ipv4.").is_err());
        assert!(sysctl_name("net.a b").is_err());
        assert!(sysctl_name("net.conf.//.x").is_err());
    }

    #[test]
    fn values_the_kernel_would_print_differently_are_refused() {
        assert_eq!(canonical_value(" 32768\t60999 ").unwrap(), "32768 60999");
        assert_eq!(canonical_value("cubic").unwrap(), "cubic");
        assert_eq!(canonical_value("-1").unwrap(), "-1");
        for bad in ["1\n0", "1\r", "010", "0x1", "+1", "1 07"] {
            assert!(canonical_value(bad).is_err(), "{bad:?}");
        }
    }
}
