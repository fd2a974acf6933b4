//! Who may change the desired state: as root, `reconcile` and `watch` apply only files that
//! nobody but root can change. Anyone who can write a desired file, or the directory holding
//! it, can reconfigure the network — the rule sshd's `StrictModes` applies to its keys.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Why the desired state's files may not be applied.
#[derive(Debug, thiserror::Error)]
pub enum PermissionError {
    /// A file or directory that others than root can write.
    #[error("{} is {why}, so anyone in that position can reconfigure the network; refusing to apply it as root. Fix: {fix}", path.display())]
    Writable {
        /// The file or directory.
        path: PathBuf,
        /// Who can change it, in words.
        why: String,
        /// The command that fixes it.
        fix: String,
    },
    /// Its permissions could not be read.
    #[error("cannot check the permissions of {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// Check `path` (the `-d` file or directory), each of `files`, and every directory above them:
/// owned by root (the files and the `-d` directory) and writable by nobody else (a directory
/// above may be world-writable only with the sticky bit, like /tmp, which keeps others from
/// replacing what is in it). Symlinks are followed: what counts is the file that is read.
pub fn check(path: &Path, files: &[PathBuf]) -> Result<(), PermissionError> {
    let mut owned: Vec<PathBuf> = vec![path.to_path_buf()];
    owned.extend(files.iter().cloned());
    let mut above: Vec<PathBuf> = Vec::new();
    for p in &owned {
        let real = fs::canonicalize(p).map_err(|source| PermissionError::Io {
            path: p.clone(),
            source,
        })?;
        check_one(p, &real, true)?;
        let mut dir = real.parent();
        while let Some(d) = dir {
            if !above.iter().any(|a| a == d) {
                above.push(d.to_path_buf());
            }
            dir = d.parent();
        }
    }
    for d in &above {
        check_one(d, d, false)?;
    }
    Ok(())
}

fn check_one(shown: &Path, real: &Path, must_be_root: bool) -> Result<(), PermissionError> {
    let meta = fs::metadata(real).map_err(|source| PermissionError::Io {
        path: shown.to_path_buf(),
        source,
    })?;
    let mode = meta.mode() & 0o7777;
    let sticky_dir = meta.is_dir() && mode & 0o1000 != 0;
    let what = if meta.is_dir() { "directory" } else { "file" };
    let target = if shown == real {
        String::new()
    } else {
        format!(" (a link to {})", real.display())
    };
    let writable = |why: String, fix: String| PermissionError::Writable {
        path: shown.to_path_buf(),
        why: format!("a {what}{target} {why}"),
        fix,
    };
    if must_be_root && meta.uid() != 0 {
        return Err(writable(
            format!("owned by uid {}, not root", meta.uid()),
            format!("chown root: {}", real.display()),
        ));
    }
    // A sticky directory above (like /tmp) keeps others from replacing what is in it.
    if (must_be_root || !sticky_dir) && mode & 0o022 != 0 {
        let who = match (mode & 0o020 != 0, mode & 0o002 != 0) {
            (true, true) => "its group and everyone",
            (true, false) => "its group",
            _ => "everyone",
        };
        return Err(writable(
            format!("writable by {who} (mode {mode:o})"),
            format!("chmod go-w {}", real.display()),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn group_or_world_writable_files_and_directories_are_refused() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: needs root (files owned by root)");
            return;
        }
        let dir = std::env::temp_dir().join(format!("nc-perm-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let f = dir.join("a.yaml");
        fs::write(&f, "{}\n").unwrap();
        fs::set_permissions(&f, fs::Permissions::from_mode(0o644)).unwrap();
        check(&dir, std::slice::from_ref(&f)).expect("private files pass");

        fs::set_permissions(&f, fs::Permissions::from_mode(0o664)).unwrap();
        let e = check(&dir, std::slice::from_ref(&f))
            .unwrap_err()
            .to_string();
        assert!(e.contains("writable by its group"), "{e}");
        assert!(e.contains(&format!("chmod go-w {}", f.display())), "{e}");
        fs::set_permissions(&f, fs::Permissions::from_mode(0o600)).unwrap();

        fs::set_permissions(&dir, fs::Permissions::from_mode(0o757)).unwrap();
        let e = check(&dir, std::slice::from_ref(&f))
            .unwrap_err()
            .to_string();
        assert!(e.contains("writable by everyone"), "{e}");
        // Even sticky, the desired directory itself must be root's alone.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(check(&dir, std::slice::from_ref(&f)).is_err());
        let _ = fs::remove_dir_all(&dir);
    }
}
