//! Dry-run budget: epochs × training images of the runs still to do.

use serde::Serialize;

use crate::config::RunConfig;

/// Epochs a run trains for (`train.epochs`, or the fake trainer's).
fn epochs(config: &RunConfig) -> u64 {
    match &config.fake {
        Some(fake) => u64::from(fake.epochs),
        None => config.train.epochs as u64,
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct CostEstimate {
    /// Σ epochs × images over runs still to do.
    pub image_passes: u64,
    pub epochs: u64,
}

impl CostEstimate {
    pub fn add(&mut self, config: &RunConfig) {
        let e = epochs(config);
        self.epochs += e;
        self.image_passes += e * crate::data::train_size(&config.data) as u64;
    }
}
