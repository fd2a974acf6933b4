//! File watching: inotify (through `notify`) on the desired directory, each change sent as
//! [`Trigger::File`].

use std::path::{Path, PathBuf};

use notify::{EventKind, RecursiveMode, Watcher};

use super::queue::Sender;
use super::trigger::Trigger;
use crate::pass::Failure;

/// Watch the desired directory (or a single file's directory), not single files: editors
/// replace files by rename and ConfigMaps swap a `..data` symlink, which a watch on the file
/// itself would miss. Changes are sent on `tx` until the returned watcher is dropped.
pub fn watch(path: &Path, tx: Sender) -> Result<notify::RecommendedWatcher, Failure> {
    let dir = watched_dir(path);
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(ev) = res {
            if is_change(&ev.kind) {
                let _ = tx.send(Trigger::File);
            }
        }
    })
    .map_err(|e| Failure::Message(format!("cannot watch {}: {e}", dir.display())))?;
    watcher
        .watch(&dir, RecursiveMode::Recursive)
        .map_err(|e| Failure::Message(format!("cannot watch {}: {e}", dir.display())))?;
    Ok(watcher)
}

/// The directory to watch for `path`: itself when it is a directory, else the file's own
/// directory (`.` for a bare file name).
pub fn watched_dir(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.to_path_buf()
    } else {
        path.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."))
    }
}

/// Whether an event can mean new content. Reads are not: the daemon's own reload opens and
/// reads every file, and counting that would make each reload trigger the next.
pub fn is_change(kind: &EventKind) -> bool {
    !kind.is_access()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::tests::Scratch;
    use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RemoveKind};
    use std::time::Duration;

    #[test]
    fn a_directory_is_watched_itself_a_file_through_its_directory() {
        let dir = Scratch::new("dir");
        assert_eq!(watched_dir(&dir.0), dir.0);
        let file = dir.0.join("host.yaml");
        assert_eq!(watched_dir(&file), dir.0);
        // A file that does not exist yet still names the directory it will be created in.
        assert_eq!(
            watched_dir(Path::new("/etc/nc/x.yaml")),
            Path::new("/etc/nc")
        );
        assert_eq!(watched_dir(Path::new("host.yaml")), Path::new("."));
    }

    #[test]
    fn reads_are_not_changes() {
        assert!(!is_change(&EventKind::Access(AccessKind::Read)));
        assert!(!is_change(&EventKind::Access(AccessKind::Close(
            AccessMode::Read
        ))));
        assert!(is_change(&EventKind::Create(CreateKind::File)));
        assert!(is_change(&EventKind::Modify(ModifyKind::Any)));
        assert!(is_change(&EventKind::Remove(RemoveKind::File)));
    }

    // Real inotify (no root needed), so a real clock, with a generous bound.
    #[tokio::test]
    async fn a_rename_into_the_directory_is_a_file_trigger() {
        let dir = Scratch::new("rename");
        let (tx, mut rx) = crate::watch::queue::channel();
        let _w = watch(&dir.0.join("host.yaml"), tx).unwrap();
        std::fs::write(dir.0.join("host.yaml.tmp~"), "links: {}\n").unwrap();
        std::fs::rename(dir.0.join("host.yaml.tmp~"), dir.0.join("host.yaml")).unwrap();
        let got = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
        assert_eq!(got, Ok(Some(Trigger::File)));
    }

    #[test]
    fn a_missing_directory_is_a_setup_error() {
        let (tx, _rx) = crate::watch::queue::channel();
        let err = watch(Path::new("/nonexistent-nc/host.yaml"), tx).unwrap_err();
        assert!(
            err.to_string().contains("cannot watch /nonexistent-nc"),
            "{err}"
        );
    }
}
