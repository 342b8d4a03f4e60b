//! The caller's source of random bytes.
//!
//! The crate never reads randomness itself: the service passes bytes from the operating
//! system (e.g. `getrandom`), tests pass a deterministic source. This keeps every function
//! here reproducible in tests and free of hidden I/O.

/// A source of cryptographically secure random bytes.
pub trait RandomSource {
    /// Fills `dest` entirely with random bytes.
    fn fill_bytes(&mut self, dest: &mut [u8]);
}

impl<F: FnMut(&mut [u8])> RandomSource for F {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self(dest)
    }
}

/// A deterministic, NOT secure source for tests and examples: a counter run through SHA-256.
#[derive(Debug, Clone, Default)]
pub struct TestRandom {
    counter: u64,
}

impl TestRandom {
    /// A source starting from `seed`.
    pub fn new(seed: u64) -> Self {
        TestRandom { counter: seed }
    }
}

impl RandomSource for TestRandom {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        use sha2::{Digest, Sha256};
        for chunk in dest.chunks_mut(32) {
            self.counter = self.counter.wrapping_add(1);
            let block = Sha256::digest(self.counter.to_le_bytes());
            for (d, s) in chunk.iter_mut().zip(block.iter()) {
                *d = *s;
            }
        }
    }
}
