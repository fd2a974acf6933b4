//! Walking the desired and the observed map of a kind side by side, in key order.
//!
//! A diff that looks each desired key up in the observed map (and each observed key in the
//! desired one) pays two searches a key; at 10,000 routes those searches were the largest
//! part of planning a drift repair. Both maps are sorted by the same key, so one walk of each
//! pairs them up.

use std::cmp::Ordering;
use std::collections::btree_map::{self, BTreeMap};
use std::iter::Peekable;

/// A key of either map and its value in each.
#[derive(Debug, PartialEq, Eq)]
pub enum Paired<'a, K, V> {
    /// The key is in both maps.
    Both(&'a K, &'a V, &'a V),
    /// Only the left (desired) map has it.
    Left(&'a K, &'a V),
    /// Only the right (observed) map has it.
    Right(&'a K, &'a V),
}

/// The keys of `left` and `right` in order, each once, paired with their values.
pub fn join<'a, K: Ord, V>(left: &'a BTreeMap<K, V>, right: &'a BTreeMap<K, V>) -> Join<'a, K, V> {
    Join {
        left: left.iter().peekable(),
        right: right.iter().peekable(),
    }
}

/// The iterator of [`join`].
pub struct Join<'a, K, V> {
    left: Peekable<btree_map::Iter<'a, K, V>>,
    right: Peekable<btree_map::Iter<'a, K, V>>,
}

impl<'a, K: Ord, V> Iterator for Join<'a, K, V> {
    type Item = Paired<'a, K, V>;

    fn next(&mut self) -> Option<Self::Item> {
        let order = match (self.left.peek(), self.right.peek()) {
            (None, None) => return None,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some((l, _)), Some((r, _))) => l.cmp(r),
        };
        Some(match order {
            Ordering::Less => {
                let (k, v) = self.left.next()?;
                Paired::Left(k, v)
            }
            Ordering::Greater => {
                let (k, v) = self.right.next()?;
                Paired::Right(k, v)
            }
            Ordering::Equal => {
                let (k, l) = self.left.next()?;
                let (_, r) = self.right.next()?;
                Paired::Both(k, l, r)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The walk pairs up exactly what looking each key up in the other map would.
        #[test]
        fn the_walk_pairs_what_lookups_would(
            left in prop::collection::btree_map(0..60u8, any::<u16>(), 0..40),
            right in prop::collection::btree_map(0..60u8, any::<u16>(), 0..40),
        ) {
            let mut keys: Vec<&u8> = left.keys().chain(right.keys()).collect();
            keys.sort();
            keys.dedup();
            let looked_up: Vec<Paired<u8, u16>> = keys
                .into_iter()
                .map(|k| match (left.get(k), right.get(k)) {
                    (Some(l), Some(r)) => Paired::Both(k, l, r),
                    (Some(l), None) => Paired::Left(k, l),
                    (None, Some(r)) => Paired::Right(k, r),
                    (None, None) => unreachable!(),
                })
                .collect();
            prop_assert_eq!(join(&left, &right).collect::<Vec<_>>(), looked_up);
        }
    }
}
