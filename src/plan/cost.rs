//! Dry-run budget: epochs × training images of the runs still to do.

use serde::Serialize;

use serde_json::Value;

use crate::config::run::get_path;
use crate::config::RunConfig;

/// Both functions read the serialised config so they keep working when sections become typed.
fn num(config: &Value, path: &str) -> Option<u64> {
    get_path(config, path).and_then(Value::as_u64)
}

/// Epochs a run trains for (`train.epochs`, or the fake trainer's).
pub fn epochs(config: &Value) -> u64 {
    num(config, "fake.epochs")
        .or_else(|| num(config, "train.epochs"))
        .unwrap_or(0)
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct CostEstimate {
    /// Σ epochs × images over runs still to do.
    pub image_passes: u64,
    pub epochs: u64,
}

impl CostEstimate {
    pub fn add(&mut self, config: &RunConfig) {
        let json = serde_json::to_value(config).unwrap_or_default();
        let e = epochs(&json);
        self.epochs += e;
        self.image_passes += e * crate::data::train_size(&config.data) as u64;
    }
}
