//! Running the `nft` program: listing and loading netconverge's tables in the network namespace
//! of the calling thread (the child inherits it). Only the rtnetlink kernel calls this, from its
//! `Kernel` methods: nothing else in the crate runs programs.
//!
//! The runs are synchronous: they take milliseconds, and they must start from the namespace's
//! own thread (`spawn_blocking` would run them on a pool thread in the process's namespace).

use std::io::Write as _;
use std::process::{Command, Stdio};

use super::{tables, PACKAGE, TABLE};
use crate::error::{KernelError, ProgramError};
use crate::model::firewall::ID;

fn missing_nft() -> KernelError {
    KernelError::new("load", format!("nftables table {ID}"), Some(libc::ENOENT)).with_hint(format!(
        "the `nft` program is not installed; providers' track, marks and masquerade need it: install the Debian package `{PACKAGE}`"
    ))
}

/// Run nft with `args`, feeding `input` on stdin; its stderr as the error.
fn nft(args: &[&str], input: Option<&str>) -> Result<String, ProgramError> {
    let program = "nft";
    let Some(prog) = crate::programs::find(program) else {
        return Err(ProgramError::NotInstalled {
            program,
            package: PACKAGE,
        });
    };
    let mut child = Command::new(prog)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| ProgramError::Spawn { program, source })?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(text.as_bytes())
            .map_err(|source| ProgramError::Io { program, source })?;
    }
    let out = child
        .wait_with_output()
        .map_err(|source| ProgramError::Spawn { program, source })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        Err(ProgramError::Failed {
            program,
            stderr: err
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(" / "),
        })
    }
}

/// Which of our two tables exist, inet first: asked of the kernel over nfnetlink, or of
/// `nft list tables` when that cannot be (`Err` with nft's message then).
fn our_tables() -> Result<Vec<&'static str>, ProgramError> {
    match super::netlink::families_with_table(TABLE) {
        Ok(families) => Ok([
            (libc::NFPROTO_INET, "inet"),
            (libc::NFPROTO_BRIDGE, "bridge"),
        ]
        .into_iter()
        .filter(|(f, _)| families.contains(&(*f as u8)))
        .map(|(_, name)| name)
        .collect()),
        // Without privileges nft is refused as well, with the message users know.
        Err(errno) => {
            tracing::debug!(errno, "nfnetlink table dump failed; asking nft");
            our_tables_by_nft()
        }
    }
}

/// [`our_tables`] by `nft list tables`.
fn our_tables_by_nft() -> Result<Vec<&'static str>, ProgramError> {
    let list = nft(&["list", "tables"], None)?;
    Ok(["inet", "bridge"]
        .into_iter()
        .filter(|fam| {
            list.lines()
                .any(|l| l.trim() == format!("table {fam} {TABLE}"))
        })
        .collect())
}

/// The listing of our tables, inet first.
fn listing(families: &[&str]) -> Result<String, ProgramError> {
    let mut out = String::new();
    for fam in families {
        out.push_str(&nft(&["list", "table", fam, TABLE], None)?);
    }
    Ok(out)
}

/// A failed nft run as a kernel error about `object`, nft's words as the hint.
fn nft_error(operation: &str, object: &str, e: ProgramError) -> KernelError {
    KernelError::new(operation, object, None)
        .with_hint(e.to_string())
        .with_source(e)
}

/// netconverge's tables as `nft list table` prints them, inet first; `None` when neither
/// exists, or when nft is not installed (then nothing netconverge could have loaded exists).
/// Without privileges the error has errno EPERM.
pub(crate) fn list() -> Result<Option<String>, KernelError> {
    if crate::programs::find("nft").is_none() {
        return Ok(None);
    }
    let families = match our_tables() {
        Ok(f) => f,
        Err(e) if e.not_permitted() => {
            return Err(
                KernelError::new("list", "nftables tables", Some(libc::EPERM))
                    .with_hint(e.to_string())
                    .with_source(e),
            )
        }
        Err(e) => return Err(nft_error("list", "nftables tables", e)),
    };
    if families.is_empty() {
        return Ok(None);
    }
    let text =
        listing(&families).map_err(|e| nft_error("list", &format!("nftables table {ID}"), e))?;
    Ok(Some(text))
}

/// Load `script` with `nft -f -`: one transaction.
pub(crate) fn load(script: &str) -> Result<(), KernelError> {
    if crate::programs::find("nft").is_none() {
        return Err(missing_nft());
    }
    nft(&["-f", "-"], Some(script))
        .map(drop)
        .map_err(|e| nft_error("load", &format!("nftables table {ID}"), e))
}

/// Check `script` with `nft -c -f -`: parsed and validated by the kernel, nothing loaded.
pub(crate) fn check(script: &str) -> Result<(), KernelError> {
    if crate::programs::find("nft").is_none() {
        return Err(missing_nft());
    }
    nft(&["-c", "-f", "-"], Some(script))
        .map(drop)
        .map_err(|e| nft_error("check", &format!("nftables table {ID}"), e))
}

/// Delete both tables (nothing when they do not exist).
pub(crate) fn delete() -> Result<(), KernelError> {
    load(&tables::delete_script())
}
