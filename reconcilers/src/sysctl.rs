//! Sysctls by dotted name (`net.ipv4.ip_forward`): read and written through `/proc/sys`,
//! and planned (a value that differs is written; nothing is ever removed).
//!
//! `/proc/sys/net` shows the network namespace of the thread that opens the file, so these are
//! synchronous `std::fs` calls meant to run on the namespace thread of `run_in_netns` (an async
//! file API would hop to a blocking-pool thread in another namespace).

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::error::{KernelError, SysctlNameError};
use crate::model::object::{ObjectKind, ObjectRef};
use crate::model::{normalize_sysctl_value, State};
use crate::plan::{Action, Change, Object, Op};

/// Root of the sysctl tree.
pub const PROC_SYS: &str = "/proc/sys";

/// The `/proc/sys` path of a sysctl name.
///
/// Follows sysctl(8): components are separated by `.`, and a `/` inside a component stands
/// for a `.` in the file name (`net.ipv4.conf.eth0/100.rp_filter` is
/// `/proc/sys/net/ipv4/conf/eth0.100/rp_filter`). A name whose first separator is `/` is
/// taken as a path below `/proc/sys` as is.
pub fn path_of(name: &str) -> Result<PathBuf, SysctlNameError> {
    let slash_first = match (name.find('.'), name.find('/')) {
        (Some(d), Some(s)) => s < d,
        (None, Some(_)) => true,
        _ => false,
    };
    let components: Vec<String> = if slash_first {
        name.split('/').map(str::to_string).collect()
    } else {
        name.split('.').map(|c| c.replace('/', ".")).collect()
    };
    if components.len() < 2
        || components
            .iter()
            .any(|c| c.is_empty() || c == "." || c == ".." || c.contains('\0'))
    {
        return Err(SysctlNameError(name.to_string()));
    }
    let mut path = PathBuf::from(PROC_SYS);
    path.extend(components);
    Ok(path)
}

fn error(operation: &str, name: &str, e: std::io::Error) -> KernelError {
    let err = KernelError::io(operation, format!("sysctl {name}"), e);
    let errno = err.errno;
    match errno {
        Some(libc::ENOENT) => err.with_hint("no such sysctl in this kernel or namespace"),
        Some(libc::EACCES) | Some(libc::EPERM) if operation == "read" => {
            err.with_hint("the sysctl is not readable (write-only)")
        }
        Some(libc::EACCES) | Some(libc::EPERM) => {
            err.with_hint("needs CAP_NET_ADMIN/CAP_SYS_ADMIN (run as root)")
        }
        Some(libc::EINVAL) | Some(libc::ERANGE) => err.with_hint("the kernel rejected the value"),
        _ => err,
    }
}

/// Read a sysctl, whitespace-normalised; `Ok(None)` when it does not exist.
pub fn read(name: &str) -> Result<Option<String>, KernelError> {
    let path = path_of(name).map_err(|h| {
        KernelError::new("read", format!("sysctl {name}"), Some(libc::EINVAL))
            .with_hint(h.to_string())
            .with_source(h)
    })?;
    match std::fs::read_to_string(&path) {
        Ok(v) => Ok(Some(normalize_sysctl_value(&v))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        // A directory (`net.ipv4`) is not a value; treat it as no such sysctl.
        Err(e) if e.raw_os_error() == Some(libc::EISDIR) => Ok(None),
        Err(e) => Err(error("read", name, e)),
    }
}

/// Read the named sysctls; missing ones are left out.
pub fn read_all(names: &[String]) -> Result<BTreeMap<String, String>, KernelError> {
    let mut out = BTreeMap::new();
    for name in names {
        if let Some(v) = read(name)? {
            out.insert(name.clone(), v);
        }
    }
    Ok(out)
}

/// Write a sysctl (one `write(2)`, as `sysctl -w` does).
pub fn write(name: &str, value: &str) -> Result<(), KernelError> {
    let path = path_of(name).map_err(|h| {
        KernelError::new("write", format!("sysctl {name}"), Some(libc::EINVAL))
            .with_hint(h.to_string())
            .with_source(h)
    })?;
    let mut data = value.to_string();
    data.push('\n');
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, data.as_bytes()))
        .map_err(|e| error("write", name, e))
}

/// The template a per-interface sysctl is copied from when a link is created
/// (`net.ipv4.conf.br0.forwarding` → `net.ipv4.conf.default.forwarding`); `None` for other
/// names and for the templates themselves.
pub fn template_of(name: &str) -> Option<String> {
    let parts: Vec<&str> = name.splitn(5, '.').collect();
    match parts.as_slice() {
        ["net", "ipv4" | "ipv6", "conf" | "neigh", link, _]
            if *link != "all" && *link != "default" =>
        {
            let mut t = parts.clone();
            t[3] = "default";
            Some(t.join("."))
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Planning

/// Sysctls in the table of kinds.
pub struct Sysctls;

/// The sysctls kind.
pub static KIND: Sysctls = Sysctls;

impl crate::kind::Kind for Sysctls {
    fn kind(&self) -> ObjectKind {
        ObjectKind::Sysctl
    }

    /// Sysctls have no ownership mark: netconverge writes values, it does not own them.
    fn objects(&self, state: &State) -> Vec<(ObjectRef, bool)> {
        state
            .sysctls
            .keys()
            .map(|n| (ObjectRef::sysctl(n), false))
            .collect()
    }

    fn set_owned(&self, _state: &mut State, _owned: &dyn Fn(&ObjectRef) -> bool) {}

    /// The desired sysctls are read with the observation (there is no dump of them all), and
    /// for per-interface ones the kernel's template for new links too: a link that does not
    /// exist yet has no directory, and the host facts are checked against the template.
    fn scope(&self, desired: &State, scope: &mut crate::kernel::Scope) {
        scope.sysctls.extend(desired.sysctls.keys().cloned());
        let templates: Vec<String> = desired
            .sysctls
            .keys()
            .filter_map(|n| template_of(n))
            .collect();
        for t in templates {
            if !scope.sysctls.contains(&t) {
                scope.sysctls.push(t);
            }
        }
    }

    fn diff(&self, cx: &mut crate::kind::PlanCx<'_>) -> Vec<Change> {
        diff(cx.desired, cx.observed)
    }

    fn save(&self, cx: &crate::snapshot::SaveCx<'_>, snap: &mut crate::snapshot::Snapshot) {
        let keys = cx
            .objects()
            .filter_map(|o| match o {
                Object::Sysctl { name, .. } => Some(name.clone()),
                _ => None,
            })
            .collect();
        snap.sysctls = crate::snapshot::save_plain(&cx.before.sysctls, keys);
    }

    fn restore(&self, snap: &crate::snapshot::Snapshot, target: &mut State) {
        crate::snapshot::restore_plain(&mut target.sysctls, &snap.sysctls);
    }
}

/// Diff sysctls: a desired value that differs (or cannot be read yet, e.g. a per-interface
/// sysctl of a link about to be created) is written. Sysctls are never "removed": dropping one
/// from the desired state leaves the kernel's value as it is.
pub fn diff(desired: &State, observed: &State) -> Vec<Change> {
    desired
        .sysctls
        .iter()
        .filter(|(name, value)| observed.sysctls.get(*name) != Some(*value))
        .map(|(name, value)| {
            let before = observed.sysctls.get(name).map(|v| Object::Sysctl {
                name: name.clone(),
                value: v.clone(),
            });
            Change {
                action: if before.is_some() {
                    Action::Change
                } else {
                    Action::Add
                },
                object: ObjectRef::sysctl(name),
                before,
                after: Some(Object::Sysctl {
                    name: name.clone(),
                    value: value.clone(),
                }),
                note: None,
                ops: vec![Op::SetSysctl {
                    name: name.clone(),
                    value: value.clone(),
                }],
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_names_map_to_paths() {
        assert_eq!(
            path_of("net.ipv4.ip_forward").unwrap(),
            PathBuf::from("/proc/sys/net/ipv4/ip_forward")
        );
        assert_eq!(
            path_of("net.ipv4.conf.eth0/100.rp_filter").unwrap(),
            PathBuf::from("/proc/sys/net/ipv4/conf/eth0.100/rp_filter")
        );
        assert_eq!(
            path_of("net/ipv4/conf/eth0.100/rp_filter").unwrap(),
            PathBuf::from("/proc/sys/net/ipv4/conf/eth0.100/rp_filter")
        );
        // A path without any dot is a path too.
        assert_eq!(
            path_of("net/ipv4/ip_forward").unwrap(),
            PathBuf::from("/proc/sys/net/ipv4/ip_forward")
        );
    }

    #[test]
    fn bad_names_are_refused() {
        for bad in ["", "net", "net..x", "net.ipv4.", "net/../etc", "../x.y"] {
            assert!(path_of(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reads_existing_and_skips_missing() {
        // Reading is harmless in any namespace.
        let v = read("kernel.ostype").unwrap();
        assert_eq!(v.as_deref(), Some("Linux"));
        assert_eq!(read("net.ipv4.no_such_sysctl_here").unwrap(), None);
        let all = read_all(&["kernel.ostype".into(), "kernel.nope_nope".into()]).unwrap();
        assert_eq!(all.len(), 1);
    }
}
