//! Persistent tap devices through `/dev/net/tun`.
//!
//! The tun driver refuses creation over rtnetlink (EOPNOTSUPP), so taps are made the way
//! `ip tuntap add` makes them: attach a `/dev/net/tun` file to a new device with TUNSETIFF,
//! set owner and group, mark it persistent, close. The device is created in the network
//! namespace of the calling thread (see `netns::run_in_netns`).
//!
//! The kernel cannot *unset* a tap's owner or group (TUNSETOWNER/TUNSETGROUP reject -1 with
//! EINVAL), so going from "owner: N" back to "no owner" needs the tap recreated.

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;

use crate::error::KernelError;
use crate::model::{Ident, TapOpts};

/// The clone device of the tun driver.
const TUN_DEVICE: &str = "/dev/net/tun";

/// What `create_tap`/`set_tap` send, with user and group resolved to numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Resolved {
    owner: Option<u32>,
    group: Option<u32>,
    vnet_hdr: bool,
    multi_queue: bool,
}

fn resolve(name: &str, opts: &TapOpts) -> Result<Resolved, KernelError> {
    fn id(name: &str, what: &str, ident: &Option<Ident>) -> Result<Option<u32>, KernelError> {
        match ident {
            None => Ok(None),
            Some(Ident::Id(n)) => Ok(Some(*n)),
            Some(Ident::Name(s)) => Err(KernelError::new("set", format!("link {name}"), None)
                .with_hint(format!(
                    "the {what} `{s}` was not resolved to a number before reaching the kernel"
                ))),
        }
    }
    Ok(Resolved {
        owner: id(name, "user", &opts.owner)?,
        group: id(name, "group", &opts.group)?,
        vnet_hdr: opts.vnet_hdr.unwrap_or(false),
        multi_queue: opts.multi_queue.unwrap_or(false),
    })
}

/// The `ifr_flags` TUNSETIFF gets for a tap with these options.
fn tap_flags(r: &Resolved, exclusive: bool) -> libc::c_short {
    let mut flags = libc::IFF_TAP | libc::IFF_NO_PI;
    if r.vnet_hdr {
        flags |= libc::IFF_VNET_HDR;
    }
    if r.multi_queue {
        flags |= libc::IFF_MULTI_QUEUE;
    }
    if exclusive {
        flags |= libc::IFF_TUN_EXCL;
    }
    // IFF_TUN_EXCL is 0x8000: the bit pattern, not the value, is what the kernel reads.
    flags as u16 as libc::c_short
}

/// A tap just made by TUNSETIFF and not yet persistent: it lives only while this value
/// does. Whatever is written to it before `persist` (netconverge's alias) is there from the
/// moment the tap can be seen, and a crash before `persist` closes the fd, which makes the
/// kernel remove the tap: ownership cannot be separated from creation.
#[derive(Debug)]
pub struct NewTap {
    file: File,
    object: String,
}

impl NewTap {
    /// TUNSETPERSIST, then close the fd: the tap outlives netconverge from here on.
    pub fn persist(self) -> Result<(), KernelError> {
        ioctl_int(&self.file, libc::TUNSETPERSIST, 1).map_err(|errno| {
            KernelError::new("create", &self.object, Some(errno))
                .with_hint("could not make the tap persistent (TUNSETPERSIST)")
        })?;
        // Closing the file detaches it; the persistent device stays.
        drop(self.file);
        Ok(())
    }
}

/// Create the tap `name` with `opts` (owner/group must be `Ident::Id`; `None`
/// vnet_hdr/multi_queue mean off), not yet persistent (see `NewTap`). Fails with EEXIST when a
/// link of that name exists.
pub fn create_tap(name: &str, opts: &TapOpts) -> Result<NewTap, KernelError> {
    let r = resolve(name, opts)?;
    let object = format!("link {name}");
    let file = open_tun("create", &object)?;
    tun_set_iff(&file, name, tap_flags(&r, true)).map_err(|errno| {
        // With IFF_TUN_EXCL an existing tun/tap gives EBUSY, another kind of link EINVAL.
        let errno = if errno == libc::EBUSY {
            libc::EEXIST
        } else {
            errno
        };
        let err = KernelError::new("create", &object, Some(errno));
        match errno {
            libc::EEXIST => err.with_hint("an object with the same key exists"),
            libc::EINVAL => err
                .with_hint("a link of that name exists and is not a tap, or the name is not valid"),
            libc::EPERM => err.with_hint("needs CAP_NET_ADMIN (run as root)"),
            _ => err,
        }
    })?;
    set_ids(&file, &object, "create", &r)?;
    Ok(NewTap { file, object })
}

/// Change owner, group and vnet_hdr of the existing persistent tap `name` by re-attaching to it.
///
/// `opts.multi_queue` must match the tap's (the kernel refuses otherwise, EINVAL); `vnet_hdr`
/// is set to exactly what is given (`None` = off), so callers fill unmanaged fields from the
/// observed tap. A `None` owner/group is left as it is: the kernel cannot unset one. Fails with
/// EBUSY while a process (a VM) holds a single-queue tap open.
pub fn set_tap(name: &str, opts: &TapOpts) -> Result<(), KernelError> {
    let r = resolve(name, opts)?;
    let object = format!("link {name}");
    let file = open_tun("set", &object)?;
    tun_set_iff(&file, name, tap_flags(&r, false)).map_err(|errno| {
        let err = KernelError::new("set", &object, Some(errno));
        match errno {
            libc::EBUSY => err.with_hint(
                "the tap is open in a running process (a VM?); its options change only while it is closed",
            ),
            libc::EINVAL => err.with_hint(
                "not a tap, or multi_queue differs from the existing tap's (that needs a recreate)",
            ),
            libc::EPERM => err.with_hint("needs CAP_NET_ADMIN (run as root)"),
            _ => err,
        }
    })?;
    set_ids(&file, &object, "set", &r)?;
    drop(file);
    Ok(())
}

fn set_ids(file: &File, object: &str, operation: &str, r: &Resolved) -> Result<(), KernelError> {
    if let Some(uid) = r.owner {
        ioctl_int(file, libc::TUNSETOWNER, uid as libc::c_ulong).map_err(|errno| {
            KernelError::new(operation, object, Some(errno)).with_hint(format!(
                "could not set the tap's owner to uid {uid} (TUNSETOWNER)"
            ))
        })?;
    }
    if let Some(gid) = r.group {
        ioctl_int(file, libc::TUNSETGROUP, gid as libc::c_ulong).map_err(|errno| {
            KernelError::new(operation, object, Some(errno)).with_hint(format!(
                "could not set the tap's group to gid {gid} (TUNSETGROUP)"
            ))
        })?;
    }
    Ok(())
}

fn open_tun(operation: &str, object: &str) -> Result<File, KernelError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(TUN_DEVICE)
        .map_err(|e| {
            let err = KernelError::io(operation, object, e);
            match err.errno {
                Some(libc::ENOENT) | Some(libc::ENODEV) | Some(libc::ENXIO) => err.with_hint(
                    "the kernel has no support for link kind tap (/dev/net/tun missing; module tun not available)",
                ),
                Some(libc::EACCES) | Some(libc::EPERM) => {
                    err.with_hint("needs CAP_NET_ADMIN (run as root)")
                }
                _ => err.with_hint(format!("cannot open {TUN_DEVICE}")),
            }
        })
}

/// TUNSETIFF: attach `file` to the tap `name`, creating it if needed.
fn tun_set_iff(file: &File, name: &str, flags: libc::c_short) -> Result<(), i32> {
    let cname = CString::new(name).map_err(|_| libc::EINVAL)?;
    let bytes = cname.as_bytes_with_nul();
    if bytes.len() > libc::IFNAMSIZ || bytes.len() < 2 {
        return Err(libc::EINVAL);
    }
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in ifr.ifr_name.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    ifr.ifr_ifru.ifru_flags = flags;
    // SAFETY: TUNSETIFF reads (and may write back) one ifreq, which outlives the call.
    let rc = unsafe {
        libc::ioctl(
            file.as_raw_fd(),
            libc::TUNSETIFF,
            &mut ifr as *mut libc::ifreq,
        )
    };
    if rc < 0 {
        return Err(last_errno());
    }
    Ok(())
}

fn ioctl_int(file: &File, request: libc::Ioctl, arg: libc::c_ulong) -> Result<(), i32> {
    // SAFETY: these tun ioctls take their argument by value.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), request, arg) };
    if rc < 0 {
        return Err(last_errno());
    }
    Ok(())
}

fn last_errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_follow_options() {
        let r = Resolved {
            owner: None,
            group: None,
            vnet_hdr: true,
            multi_queue: false,
        };
        let f = tap_flags(&r, false) as u16 as i32;
        assert_eq!(f, libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_VNET_HDR);
        let f = tap_flags(
            &Resolved {
                multi_queue: true,
                vnet_hdr: false,
                ..r
            },
            true,
        ) as u16 as i32;
        assert_eq!(
            f,
            libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_MULTI_QUEUE | libc::IFF_TUN_EXCL
        );
    }

    #[test]
    fn names_must_be_resolved() {
        let opts = TapOpts {
            owner: Some(Ident::Name("tom".into())),
            ..TapOpts::default()
        };
        let err = create_tap("tap0", &opts).unwrap_err();
        assert!(err.hint.unwrap().contains("`tom`"));
    }

    #[test]
    fn resolves_ids() {
        let opts = TapOpts {
            owner: Some(Ident::Id(1000)),
            group: Some(Ident::Id(36)),
            vnet_hdr: Some(true),
            multi_queue: None,
            open_queues: 0,
        };
        assert_eq!(
            resolve("t", &opts).unwrap(),
            Resolved {
                owner: Some(1000),
                group: Some(36),
                vnet_hdr: true,
                multi_queue: false
            }
        );
    }
}
