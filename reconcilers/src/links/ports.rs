//! Bridge ports: which bridge a link is enslaved to (IFLA_MASTER).
//!
//! Membership is a link attribute sent in the link's one set request (a new tap gets alias,
//! master and up in a single RTM_NEWLINK), so this module answers "what should the master
//! become" and the links reconciler folds the answer into its request.

use crate::model::Link;

/// The master change needed for `desired`: `Some(Some(bridge))` to attach, `Some(None)` to
/// detach, `None` to leave as is. `observed` is `None` for a link about to be created.
///
/// A desired link without `master` is detached only if netconverge created it; on other links
/// an absent `master` means membership is not managed.
pub fn master_change(desired: &Link, observed: Option<&Link>) -> Option<Option<String>> {
    match observed {
        None => desired.master.clone().map(Some),
        Some(o) => match &desired.master {
            Some(m) if o.master.as_ref() != Some(m) => Some(Some(m.clone())),
            Some(_) => None,
            None if o.owned && o.master.is_some() => Some(None),
            None => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{LinkKind, TapOpts};

    fn tap(master: Option<&str>, owned: bool) -> Link {
        let mut l = Link::new("tap0", LinkKind::Tap(TapOpts::default()));
        l.master = master.map(String::from);
        l.owned = owned;
        l
    }

    #[test]
    fn attaches_new_links_to_their_bridge() {
        assert_eq!(
            master_change(&tap(Some("br0"), false), None),
            Some(Some("br0".into()))
        );
        assert_eq!(master_change(&tap(None, false), None), None);
    }

    #[test]
    fn moves_detaches_or_leaves_existing_links() {
        let moved = master_change(&tap(Some("br1"), false), Some(&tap(Some("br0"), true)));
        assert_eq!(moved, Some(Some("br1".into())));
        assert_eq!(
            master_change(&tap(Some("br0"), false), Some(&tap(Some("br0"), true))),
            None
        );
        // Ours: an absent master means "no master".
        assert_eq!(
            master_change(&tap(None, false), Some(&tap(Some("br0"), true))),
            Some(None)
        );
        // Not ours: an absent master means "not managed".
        assert_eq!(
            master_change(&tap(None, false), Some(&tap(Some("br0"), false))),
            None
        );
    }
}
