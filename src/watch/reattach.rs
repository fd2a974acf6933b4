//! Taps recreated under a VM. `ip link del` of a tap a process (qemu) holds open leaves that
//! process attached to the deleted device; the daemon puts the tap back, but the VM's network
//! stays gone until it reattaches. The daemon remembers which taps were open when it last
//! looked, and names those it has just recreated.

use std::collections::BTreeSet;

use reconcilers::model::object::ObjectKind;
use reconcilers::plan::{Action, Plan};

use crate::engine::Applied;

/// The taps a process held open at the daemon's last observation.
#[derive(Debug, Default)]
pub struct OpenTaps(BTreeSet<String>);

impl OpenTaps {
    /// The taps `plan` added (and `applied` created without failure) that were open at the
    /// last look; then remember `open_now`, the taps open in this pass's observation.
    pub fn recreated(
        &mut self,
        plan: &Plan,
        applied: Option<&Applied>,
        open_now: BTreeSet<String>,
    ) -> Vec<String> {
        if open_now != self.0 {
            tracing::debug!(taps = ?open_now, "taps held open by a process");
        }
        let before = std::mem::replace(&mut self.0, open_now);
        let Some(applied) = applied else {
            return Vec::new();
        };
        plan.changes
            .iter()
            .filter(|c| c.action == Action::Add && c.object.kind == ObjectKind::Link)
            .filter(|c| {
                !applied.failed.contains(&c.object) && !applied.not_started.contains(&c.object)
            })
            .filter(|c| before.contains(&c.object.id))
            .map(|c| c.object.id.clone())
            .collect()
    }
}

/// The warning for a tap recreated under the process that held the old one.
pub fn warning(tap: &str) -> String {
    format!(
        "tap {tap} was deleted while a process (a VM) held it open, and has been recreated; \
         that process is still attached to the deleted device and has no network until it \
         reattaches: in qemu's monitor `netdev_del` and `netdev_add` the tap (or `device_del` \
         and `device_add` its NIC), or restart the VM"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use reconcilers::model::object::ObjectRef;
    use reconcilers::plan::Change;

    fn add(link: &str) -> Change {
        Change {
            action: Action::Add,
            object: ObjectRef::link(link),
            before: None,
            after: None,
            note: None,
            ops: Vec::new(),
        }
    }

    fn applied(failed: &[&str]) -> Applied {
        Applied {
            summary: Default::default(),
            planned: 0,
            failures: Vec::new(),
            failed: failed.iter().map(|l| ObjectRef::link(l)).collect(),
            not_started: Vec::new(),
            writes: 0,
            elapsed: Default::default(),
        }
    }

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn only_taps_open_at_the_last_look_and_created_now_are_named() {
        let mut open = OpenTaps::default();
        let plan = Plan {
            changes: vec![add("tap-a"), add("tap-b"), add("tap-c")],
            ..Plan::default()
        };
        // Nothing was open before: nothing to reattach; tap-a and tap-c are open now.
        let names = open.recreated(&plan, Some(&applied(&[])), set(&["tap-a", "tap-c"]));
        assert!(names.is_empty());
        // A dry plan (nothing applied) names nothing, but the memory moves on.
        assert!(open
            .recreated(&plan, None, set(&["tap-a", "tap-c"]))
            .is_empty());
        // tap-c's creation failed: it was not recreated.
        let names = open.recreated(&plan, Some(&applied(&["tap-c"])), set(&[]));
        assert_eq!(names, ["tap-a"]);
        // Remembered from the last look only.
        assert!(open
            .recreated(&plan, Some(&applied(&[])), set(&[]))
            .is_empty());
    }

    #[test]
    fn the_warning_names_the_tap_and_how_to_reattach() {
        let w = warning("tap-vm1");
        for part in ["tap tap-vm1", "netdev_del", "netdev_add", "restart"] {
            assert!(w.contains(part), "{part}: {w}");
        }
    }
}
