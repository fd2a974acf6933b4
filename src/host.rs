//! Facts of the target host that `validate` cannot know (it runs anywhere, e.g. in CI): users
//! and groups named as tap owners, `external` links that must exist, and programs netconverge
//! runs (`nft`). Checked by
//! `reconcile` and `check` before any write.

use std::collections::BTreeMap;
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

/// Resolve tap owner/group names to ids and check that external links exist. Every failing
/// check is reported at the place it is written (three taps owned by a missing user give three
/// errors, one per tap).
pub fn resolve(
    desired: &mut State,
    checks: &[HostCheck],
    observed: &State,
) -> Result<(), Diagnostics> {
    let mut errors = Vec::new();
    let mut users: BTreeMap<String, u32> = BTreeMap::new();
    let mut groups: BTreeMap<String, u32> = BTreeMap::new();
    for check in checks {
        match check {
            HostCheck::User { name, at } => match user_id(name) {
                Some(id) => {
                    users.insert(name.clone(), id);
                }
                None => errors.push(at.clone()),
            },
            HostCheck::Group { name, at } => match group_id(name) {
                Some(id) => {
                    groups.insert(name.clone(), id);
                }
                None => errors.push(at.clone()),
            },
            HostCheck::ExternalLink { name, at } => {
                if !observed.links.contains_key(name) {
                    errors.push(at.clone());
                }
            }
            HostCheck::Program { name, at, .. } => {
                if reconcilers::programs::find(name).is_none() {
                    errors.push(at.clone());
                }
            }
        }
    }
    if !errors.is_empty() {
        return Err(Diagnostics(errors));
    }
    for link in desired.links.values_mut() {
        let name = link.name.clone();
        if let LinkKind::Tap(t) = &mut link.kind {
            if let Some(Ident::Name(user)) = &t.owner {
                let id = users.get(user).copied().or_else(|| user_id(user));
                match id {
                    Some(id) => t.owner = Some(Ident::Id(id)),
                    None => errors.push(unplaced(format!(
                        "tap owner `{user}` of {name} does not exist on this host"
                    ))),
                }
            }
            if let Some(Ident::Name(group)) = &t.group {
                let id = groups.get(group).copied().or_else(|| group_id(group));
                match id {
                    Some(id) => t.group = Some(Ident::Id(id)),
                    None => errors.push(unplaced(format!(
                        "tap group `{group}` of {name} does not exist on this host"
                    ))),
                }
            }
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
