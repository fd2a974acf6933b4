//! Finding the programs netconverge runs (`nft`, `dnsmasq`).

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

/// Find an executable the way a root shell would: `$PATH`, then the sbin directories, which a
/// normal user's `$PATH` often lacks (Debian installs `nft` and `dnsmasq` in /usr/sbin).
pub fn find(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(
            ["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"]
                .iter()
                .map(PathBuf::from),
        )
        .map(|d| d.join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}
