//! The random numbers of model initialisation and dropout, from a per-thread generator that the
//! trainer seeds. Burn's CPU backend keeps one process-wide generator, so two runs training on
//! two threads of one process (the executor's workers, the test harness) would draw from each
//! other's stream; a thread-local generator keeps each run reproducible on its own, and the
//! same seed gives the same initial weights on every backend.

use std::cell::RefCell;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};

thread_local! {
    static RNG: RefCell<StdRng> = RefCell::new(StdRng::seed_from_u64(0));
}

/// Restarts this thread's generator.
pub fn seed(seed: u64) {
    RNG.with(|r| *r.borrow_mut() = StdRng::seed_from_u64(seed));
}

/// `n` draws from N(0, std²).
pub fn normal(n: usize, std: f64) -> Vec<f32> {
    let dist = Normal::new(0.0, std.max(0.0)).unwrap_or_else(|_| Normal::new(0.0, 0.0).expect("valid"));
    RNG.with(|r| {
        let mut r = r.borrow_mut();
        (0..n).map(|_| dist.sample(&mut *r) as f32).collect()
    })
}

/// `n` draws from U[low, high) (all `low` when the range is empty).
pub fn uniform(n: usize, low: f64, high: f64) -> Vec<f32> {
    RNG.with(|r| {
        let mut r = r.borrow_mut();
        (0..n)
            .map(|_| {
                if high > low {
                    r.random_range(low..high) as f32
                } else {
                    low as f32
                }
            })
            .collect()
    })
}

/// An inverted-dropout mask: each entry 0 with probability `p`, else 1/(1 − p).
pub fn dropout_mask(n: usize, p: f64) -> Vec<f32> {
    let keep = (1.0 / (1.0 - p)) as f32;
    RNG.with(|r| {
        let mut r = r.borrow_mut();
        (0..n)
            .map(|_| if r.random::<f64>() < p { 0.0 } else { keep })
            .collect()
    })
}
