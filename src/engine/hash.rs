//! A fast hasher for the simulator's internal maps (op labels, sends, collective charges):
//! a multiply-rotate hash as rustc's FxHash, far cheaper than SipHash on small keys, for
//! maps whose keys never come from untrusted input.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A multiply-rotate [`Hasher`] (see the module docs).
#[derive(Clone, Copy, Debug, Default)]
pub struct FastHasher(u64);

impl Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(b as u64);
        }
    }

    fn write_u64(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(5) ^ x).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_u32(&mut self, x: u32) {
        self.write_u64(x as u64);
    }

    fn write_u8(&mut self, x: u8) {
        self.write_u64(x as u64);
    }

    fn write_isize(&mut self, x: isize) {
        self.write_u64(x as u64);
    }

    fn write_usize(&mut self, x: usize) {
        self.write_u64(x as u64);
    }
}

/// A [`HashMap`] with [`FastHasher`].
pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_small_keys_rarely_collide() {
        // 100,000 (u32, u32, u32) keys: their 64-bit hashes are all distinct
        let mut seen = std::collections::HashSet::new();
        for i in 0..100_000u32 {
            let mut h = FastHasher::default();
            h.write_u32(i % 7);
            h.write_u32(i / 7);
            h.write_u32(i % 13);
            assert!(seen.insert(h.finish()), "collision at {i}");
        }
    }
}
