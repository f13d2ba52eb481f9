//! Learning-rate schedules in closed form: linear warm-up (PyTorch's LinearLR) followed by
//! cosine annealing or multi-step decay, evaluated at a (possibly fractional) epoch.

use crate::config::train::{ScheduleConfig, ScheduleKind, StepUnit};

#[derive(Debug, Clone)]
pub struct LrSchedule {
    base: f64,
    epochs: usize,
    config: ScheduleConfig,
}

impl LrSchedule {
    pub fn new(base: f64, epochs: usize, config: ScheduleConfig) -> Self {
        Self { base, epochs, config }
    }

    /// The rate for iteration `iter` of `epoch` (of `steps` per epoch).
    pub fn lr(&self, epoch: usize, iter: usize, steps: usize) -> f64 {
        let t = match self.config.step {
            StepUnit::Epoch => epoch as f64,
            StepUnit::Iteration => epoch as f64 + iter as f64 / steps.max(1) as f64,
        };
        self.at(t)
    }

    fn at(&self, t: f64) -> f64 {
        let c = &self.config;
        let warmup = c.warmup_epochs as f64;
        if t < warmup {
            let factor = c.warmup_start_factor + (1.0 - c.warmup_start_factor) * t / warmup;
            return self.base * factor;
        }
        let t = t - warmup;
        match c.kind {
            ScheduleKind::Cosine => {
                let span = (self.epochs as f64 - warmup).max(1.0);
                c.min_lr + (self.base - c.min_lr) * (1.0 + (std::f64::consts::PI * t / span).cos()) / 2.0
            }
            // Milestones count epochs after warm-up: the reference chains the schedulers with
            // SequentialLR, which restarts the main scheduler's epoch count at the switch.
            ScheduleKind::Multistep => {
                let passed = c.milestones.iter().filter(|&&m| (m as f64) <= t).count();
                self.base * c.gamma.powi(passed as i32)
            }
        }
    }
}
