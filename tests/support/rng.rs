//! A small deterministic PRNG (xorshift64*), so test data needs no crate
//! and is the same on every run.

pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-enough in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            v.swap(i, j);
        }
    }

    /// Incompressible bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| (self.next_u64() >> 32) as u8).collect()
    }

    /// Bytes that compress (words from a small vocabulary) but are not trivial.
    pub fn text(&mut self, len: usize) -> Vec<u8> {
        const WORDS: &[&[u8]] = &[
            b"squash",
            b"block ",
            b"inode ",
            b"\n",
            b"fragment",
            b"0123",
            b"zz",
            b"deterministic ",
            b"tail",
            b" ",
            b"{}",
            b"repro",
        ];
        let mut v = Vec::with_capacity(len + 16);
        while v.len() < len {
            v.extend_from_slice(WORDS[self.below(WORDS.len() as u64) as usize]);
            if self.below(7) == 0 {
                v.push(self.next_u64() as u8);
            }
        }
        v.truncate(len);
        v
    }
}
