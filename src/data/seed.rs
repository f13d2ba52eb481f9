//! Seed derivation: every random decision is seeded from (run seed, epoch, position, purpose),
//! so results do not depend on which thread does the work or in what order.

use rand::rngs::StdRng;
use rand::SeedableRng;

/// What a derived stream is used for; keeps streams of different purposes independent.
#[derive(Debug, Clone, Copy)]
#[repr(u64)]
pub enum Stream {
    /// Per-example augmentation.
    Augment = 1,
    /// Per-epoch sampling order.
    Sampler = 2,
    /// Per-batch mixup/CutMix.
    Mix = 3,
    /// Synthetic image generation.
    Synthetic = 4,
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Hashes the parts into one 64-bit seed (order-sensitive).
pub fn derive_seed(stream: Stream, parts: &[u64]) -> u64 {
    parts.iter().fold(splitmix64(stream as u64), |acc, p| {
        splitmix64(acc ^ splitmix64(*p))
    })
}

/// A generator for one (stream, parts) combination.
pub fn rng_for(stream: Stream, parts: &[u64]) -> StdRng {
    StdRng::seed_from_u64(derive_seed(stream, parts))
}
