//! The contents seen so far in the data phase, for duplicate detection.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

/// First 128 bits of a content's SHA-256. The size is not part of it: the
/// digest already fixes that.
pub(crate) type Key = [u8; 16];

/// Each content seen once, with the plan entry that holds it: a dense list
/// of (key, entry) and an open-addressing table of positions in it, at
/// most half full.
///
/// A million candidates take 20 MB of list and 8 MB of table. A
/// `HashMap<Key, u32>` takes 21 bytes per bucket over up to twice as many
/// buckets (44 MB), and, while it grows, the old and the new table at once.
/// Sized up front from the number of candidates, this never grows in
/// practice. The table is indexed by a keyed hash of the key, so a tree
/// made to collide in the digest's low bits only costs what it costs
/// everywhere else.
pub(crate) struct Seen {
    /// 0 = empty, else position in `list` + 1.
    table: Vec<u32>,
    list: Vec<(Key, u32)>,
    hasher: RandomState,
}

impl Seen {
    /// A set with room for `candidates` contents.
    pub(crate) fn with_capacity(candidates: usize) -> Seen {
        Seen {
            table: vec![0; Self::slots_for(candidates)],
            list: Vec::with_capacity(candidates),
            hasher: RandomState::new(),
        }
    }

    fn slots_for(n: usize) -> usize {
        n.max(4).saturating_mul(2).next_power_of_two()
    }

    /// The entry that holds content `key`, if one was added; otherwise adds
    /// `entry` as its holder and returns `None`.
    pub(crate) fn get_or_insert(&mut self, key: Key, entry: u32) -> Option<u32> {
        if (self.list.len() + 1) * 2 > self.table.len() {
            self.grow();
        }
        let at = self.find(&key);
        match self.table[at] {
            0 => {
                // One list item per plan entry at most, and a plan has
                // fewer than 2^32 - 1 entries.
                self.list.push((key, entry));
                self.table[at] = self.list.len() as u32;
                None
            }
            pos => Some(self.list[pos as usize - 1].1),
        }
    }

    /// The slot holding `key`, or the empty slot where it would go.
    fn find(&self, key: &Key) -> usize {
        let mask = self.table.len() - 1;
        let mut at = self.hasher.hash_one(key) as usize & mask;
        loop {
            match self.table[at] {
                0 => return at,
                pos if self.list[pos as usize - 1].0 == *key => return at,
                _ => at = (at + 1) & mask,
            }
        }
    }

    fn grow(&mut self) {
        self.table = vec![0; Self::slots_for(self.table.len())];
        for i in 0..self.list.len() {
            let at = self.find(&self.list[i].0);
            self.table[at] = i as u32 + 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u32) -> Key {
        let mut k = [0u8; 16];
        k[12..].copy_from_slice(&i.to_be_bytes());
        k
    }

    #[test]
    fn first_holder_is_kept_and_returned() {
        let mut seen = Seen::with_capacity(3);
        assert_eq!(seen.get_or_insert(key(1), 10), None);
        assert_eq!(seen.get_or_insert(key(2), 11), None);
        assert_eq!(seen.get_or_insert(key(1), 12), Some(10));
        assert_eq!(seen.get_or_insert(key(2), 13), Some(11));
        assert_eq!(seen.get_or_insert(key(3), 14), None);
        assert_eq!(seen.get_or_insert(key(3), 15), Some(14));
    }

    #[test]
    fn grows_past_its_capacity_and_keeps_every_key() {
        // Sized for 2, given 10,000: it grows instead of filling up.
        let mut seen = Seen::with_capacity(2);
        for i in 0..10_000 {
            assert_eq!(seen.get_or_insert(key(i), i), None, "key {i}");
        }
        for i in 0..10_000 {
            assert_eq!(seen.get_or_insert(key(i), u32::MAX), Some(i), "key {i}");
        }
        assert!(seen.table.len() >= 20_000);
    }

    #[test]
    fn keys_differing_only_in_high_bytes_are_told_apart() {
        let mut seen = Seen::with_capacity(16);
        let mut a = [7u8; 16];
        let mut b = a;
        a[0] = 1;
        b[0] = 2;
        assert_eq!(seen.get_or_insert(a, 1), None);
        assert_eq!(seen.get_or_insert(b, 2), None);
        assert_eq!(seen.get_or_insert(a, 3), Some(1));
    }
}
