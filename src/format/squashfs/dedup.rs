//! The contents seen so far in the data phase, for duplicate detection.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

/// First 128 bits of a content's SHA-256. The size is not part of it: the
/// digest already fixes that.
pub(crate) type Key = [u8; 16];

/// Each content seen once, with the plan entry that holds it, in an
/// open-addressing table of (key, entry + 1) slots, at most 7/8 full; an
/// entry + 1 of 0 marks an empty slot.
///
/// A million candidates take 23 MB. A dense list of (key, entry) with a
/// table of positions in it took 28 MB, and a `HashMap<Key, u32>` 21 bytes
/// per bucket over up to twice as many buckets (44 MB) and, while it grows,
/// the old and the new table at once. The keys lie in the slots, so the
/// linear probe of a fuller table reads on through the same few cache
/// lines instead of looking into a second array at each step. Sized up
/// front from the number of candidates, this never grows in practice. The
/// table is indexed by a keyed hash of the key, so a tree made to collide
/// in the digest's low bits only costs what it costs everywhere else.
pub(crate) struct Seen {
    slots: Vec<(Key, u32)>,
    len: usize,
    hasher: RandomState,
}

impl Seen {
    /// A set with room for `candidates` contents.
    pub(crate) fn with_capacity(candidates: usize) -> Seen {
        Seen {
            slots: vec![([0; 16], 0); Self::slots_for(candidates)],
            len: 0,
            hasher: RandomState::new(),
        }
    }

    /// Slots for `n` keys at most 7/8 full, and always one empty.
    fn slots_for(n: usize) -> usize {
        let n = n.max(4);
        n.saturating_add(n / 7).saturating_add(1)
    }

    /// The entry that holds content `key`, if one was added; otherwise adds
    /// `entry` (below `u32::MAX`: a plan has fewer than 2^32 - 1 entries)
    /// as its holder and returns `None`.
    pub(crate) fn get_or_insert(&mut self, key: Key, entry: u32) -> Option<u32> {
        if (self.len + 1).saturating_mul(8) > self.slots.len().saturating_mul(7) {
            self.grow();
        }
        let at = self.find(&key);
        match self.slots[at].1 {
            0 => {
                debug_assert!(entry < u32::MAX);
                self.slots[at] = (key, entry + 1);
                self.len += 1;
                None
            }
            held => Some(held - 1),
        }
    }

    /// The slot holding `key`, or the empty slot where it would go.
    fn find(&self, key: &Key) -> usize {
        let n = self.slots.len();
        // The hash scaled to 0..n (a multiply and a shift, not a division).
        let mut at = ((u128::from(self.hasher.hash_one(key)) * n as u128) >> 64) as usize;
        loop {
            let (k, held) = &self.slots[at];
            if *held == 0 || k == key {
                return at;
            }
            at += 1;
            if at == n {
                at = 0;
            }
        }
    }

    fn grow(&mut self) {
        let old = std::mem::replace(
            &mut self.slots,
            vec![([0; 16], 0); Self::slots_for(self.len.saturating_mul(2))],
        );
        for (key, held) in old {
            if held != 0 {
                let at = self.find(&key);
                self.slots[at] = (key, held);
            }
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
        assert!(seen.slots.len() >= 10_000 * 8 / 7);
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
