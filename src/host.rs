//! Facts of the target host that `validate` cannot know (it runs anywhere, e.g. in CI): users
//! and groups named as tap owners, and `external` links that must exist. Checked by
//! `reconcile` and `check` before any write.

use std::ffi::CString;

use reconcilers::model::{Ident, LinkKind, State};

use crate::desired::{Diagnostic, Diagnostics, HostCheck};

/// Look up a user's uid in the host's passwd database.
pub fn user_id(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut out: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: all pointers are valid for the call; `out` is null or points at `pwd`.
    let rc =
        unsafe { libc::getpwnam_r(c.as_ptr(), &mut pwd, buf.as_mut_ptr(), buf.len(), &mut out) };
    (rc == 0 && !out.is_null()).then_some(pwd.pw_uid)
}

/// Look up a group's gid in the host's group database.
pub fn group_id(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut out: *mut libc::group = std::ptr::null_mut();
    // SAFETY: as above.
    let rc =
        unsafe { libc::getgrnam_r(c.as_ptr(), &mut grp, buf.as_mut_ptr(), buf.len(), &mut out) };
    (rc == 0 && !out.is_null()).then_some(grp.gr_gid)
}

/// Resolve tap owner/group names to ids and check that external links exist, collecting
/// every failure with the place it was written.
pub fn resolve(
    desired: &mut State,
    checks: &[HostCheck],
    observed: &State,
) -> Result<(), Diagnostics> {
    let mut errors = Vec::new();
    let place = |want: &dyn Fn(&HostCheck) -> bool| -> Option<Diagnostic> {
        checks.iter().find(|c| want(c)).map(|c| match c {
            HostCheck::User { at, .. }
            | HostCheck::Group { at, .. }
            | HostCheck::ExternalLink { at, .. } => at.clone(),
        })
    };
    for link in desired.links.values_mut() {
        let name = link.name.clone();
        match &mut link.kind {
            LinkKind::Tap(t) => {
                if let Some(Ident::Name(user)) = &t.owner {
                    match user_id(user) {
                        Some(id) => t.owner = Some(Ident::Id(id)),
                        None => errors.push(
                            place(&|c| matches!(c, HostCheck::User { name: n, .. } if n == user))
                                .unwrap_or_else(|| {
                                    unplaced(format!(
                                        "tap owner `{user}` of {name} does not exist on this host"
                                    ))
                                }),
                        ),
                    }
                }
                if let Some(Ident::Name(group)) = &t.group {
                    match group_id(group) {
                        Some(id) => t.group = Some(Ident::Id(id)),
                        None => errors.push(
                            place(&|c| matches!(c, HostCheck::Group { name: n, .. } if n == group))
                                .unwrap_or_else(|| {
                                    unplaced(format!(
                                        "tap group `{group}` of {name} does not exist on this host"
                                    ))
                                }),
                        ),
                    }
                }
            }
            LinkKind::External if !observed.links.contains_key(&name) => {
                errors.push(
                    place(&|c| matches!(c, HostCheck::ExternalLink { name: n, .. } if *n == name))
                        .unwrap_or_else(|| {
                            unplaced(format!("external link {name} does not exist on this host"))
                        }),
                );
            }
            _ => {}
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Diagnostics(errors))
    }
}

/// A diagnostic for a host fact whose place in the files is unknown (should not happen: every
/// host-dependent value yields a `HostCheck`).
fn unplaced(message: String) -> Diagnostic {
    Diagnostic {
        file: Default::default(),
        line: 0,
        column: 0,
        message,
    }
}
