//! The host's user and group databases, which tap owners and groups given by name are
//! resolved against, and its resolver files (`desired::Desired::for_host` runs the host facts before any write).

use std::ffi::CString;

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

/// The nameservers a resolv.conf names (`nameserver ADDR` lines); none when it cannot be
/// read (dnsmasq tolerates a missing file and polls for it).
pub fn nameservers(path: &std::path::Path) -> Vec<std::net::IpAddr> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|a| a.trim().parse().ok())
        .collect()
}

/// Whether the user `uid` belongs to the group `gid`, as its primary group or a supplementary
/// one in the group database; `None` when `uid` has no passwd entry (its groups are then
/// whatever the process that runs as it is given).
pub fn user_in_group(uid: u32, gid: u32) -> Option<bool> {
    use nix::unistd::{getgrouplist, Gid, Uid, User};
    let user = User::from_uid(Uid::from_raw(uid)).ok().flatten()?;
    if user.gid.as_raw() == gid {
        return Some(true);
    }
    let name = CString::new(user.name).ok()?;
    let groups = getgrouplist(&name, user.gid).ok()?;
    Some(groups.contains(&Gid::from_raw(gid)))
}

/// Whether the user `uid`, with its groups from the group database, may open `path` for
/// reading and writing by its mode bits (POSIX ACLs are not read); an error when `path`
/// cannot be examined.
pub fn may_read_write(uid: u32, path: &std::path::Path) -> std::io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path)?;
    if uid == 0 {
        return Ok(true);
    }
    let mode = meta.mode();
    let bits = if meta.uid() == uid {
        mode >> 6
    } else if user_in_group(uid, meta.gid()) == Some(true) {
        mode >> 3
    } else {
        mode
    };
    Ok(bits & 0o6 == 0o6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn membership_counts_the_primary_group_and_the_group_database() {
        // root's primary group is root; nobody's is nogroup, not root.
        assert_eq!(user_in_group(0, 0), Some(true));
        let nobody = user_id("nobody").expect("nobody");
        assert_eq!(user_in_group(nobody, 0), Some(false));
        assert_eq!(user_in_group(4_000_000_000, 0), None);
    }

    #[test]
    fn access_follows_the_mode_bits_of_owner_group_and_others() {
        use std::os::unix::fs::PermissionsExt;
        let nobody = user_id("nobody").expect("nobody");
        let p = std::env::temp_dir().join(format!("nc-host-access-{}", std::process::id()));
        std::fs::write(&p, "").unwrap();
        for (mode, want) in [(0o666, true), (0o660, false), (0o604, false)] {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            let owner = std::fs::metadata(&p).map(|m| std::os::unix::fs::MetadataExt::uid(&m));
            // Meaningful only when the file is not nobody's (the test runs as root or a user).
            assert_ne!(owner.unwrap(), nobody);
            assert_eq!(may_read_write(nobody, &p).unwrap(), want, "mode {mode:o}");
        }
        std::fs::remove_file(&p).unwrap();
        assert!(may_read_write(nobody, std::path::Path::new("/nonexistent/x")).is_err());
    }
}
