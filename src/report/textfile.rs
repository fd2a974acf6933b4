//! `check --textfile PATH`: the Prometheus metrics of a check for node_exporter's textfile
//! collector, written so that the collector never reads a half-written file nor a stale one.
//!
//! The file is replaced atomically (a temporary file in the same directory, fsynced, renamed
//! over it). A check that could not run replaces it too, with `netconverge_check_success 0`
//! and no drift figures: the drift of an earlier run would otherwise be read as current.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use reconcilers::plan::Plan;

/// The metrics of a check that ran (in sync or not).
pub fn succeeded(plan: &Plan, now_unix: f64) -> String {
    format!(
        "{}{}",
        super::check::prometheus(plan, now_unix),
        success_gauge(true)
    )
}

/// The metrics of a check that could not run: when it was tried, and that it failed.
pub fn failed(now_unix: f64) -> String {
    format!(
        "# HELP netconverge_last_check_timestamp_seconds When the last check ran (Unix time).\n\
         # TYPE netconverge_last_check_timestamp_seconds gauge\n\
         netconverge_last_check_timestamp_seconds {now_unix:.3}\n{}",
        success_gauge(false)
    )
}

fn success_gauge(ok: bool) -> String {
    format!(
        "# HELP netconverge_check_success 1 when the last check ran, 0 when it could not (its \
         error is in the log; the drift figures are left out).\n\
         # TYPE netconverge_check_success gauge\n\
         netconverge_check_success {}\n",
        u8::from(ok)
    )
}

/// Replace `path` with `body` atomically, world-readable (mode 0644) for the collector.
pub fn write(path: &Path, body: &str) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    // A dot name: the collector reads only `*.prom`.
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(body.as_bytes())?;
        f.set_permissions(std::fs::Permissions::from_mode(0o644))?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_check_says_so_and_carries_no_drift() {
        let text = failed(12.5);
        assert!(text.contains("netconverge_check_success 0\n"), "{text}");
        assert!(text.contains("netconverge_last_check_timestamp_seconds 12.500\n"));
        assert!(!text.contains("netconverge_drift_objects"), "{text}");
        let ok = succeeded(&Plan::default(), 3.0);
        assert!(ok.contains("netconverge_check_success 1\n"), "{ok}");
        assert!(
            ok.contains("netconverge_drift_objects{kind=\"link\"} 0\n"),
            "{ok}"
        );
    }

    #[test]
    fn write_replaces_the_file_and_leaves_no_temporary_behind() {
        let dir = std::env::temp_dir().join(format!("nc-textfile-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("netconverge.prom");
        write(&path, "a 1\n").unwrap();
        write(&path, "b 2\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "b 2\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        // A directory that does not exist: an error, and nothing written anywhere.
        assert!(write(&dir.join("missing/x.prom"), "c 3\n").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
