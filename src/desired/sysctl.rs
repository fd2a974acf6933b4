//! `sysctl:` — network sysctls by dotted name: checking names and values, and writing the
//! section back.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use reconcilers::model::State;
use serde_saphyr::Spanned;

use super::diagnostics::{Ctx, Pos};
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
        Scalar::Str(s) => reconcilers::model::normalize_sysctl_value(s),
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
}
