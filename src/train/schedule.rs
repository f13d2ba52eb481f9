//! Learning-rate schedules in closed form: linear warm-up (PyTorch's LinearLR) followed by
//! cosine annealing or multi-step decay, evaluated at a (possibly fractional) epoch.

use crate::config::train::{ScheduleConfig, ScheduleKind, StepUnit};

#[derive(Debug, Clone)]
pub struct LrSchedule {
    base: f64,
    epochs: usize,
    config: ScheduleConfig,
    /// Batches per optimiser update (`train.accumulate`): `warmup_steps` counts updates.
    accumulate: usize,
}

impl LrSchedule {
    pub fn new(base: f64, epochs: usize, config: ScheduleConfig) -> Self {
        Self {
            base,
            epochs,
            config,
            accumulate: 1,
        }
    }

    pub fn with_accumulation(self, accumulate: usize) -> Self {
        Self { accumulate, ..self }
    }

    /// The rate for iteration `iter` of `epoch` (of `steps` per epoch).
    pub fn lr(&self, epoch: usize, iter: usize, steps: usize) -> f64 {
        let steps = steps.max(1) as f64;
        let t = match self.config.step {
            StepUnit::Epoch => epoch as f64,
            StepUnit::Iteration => epoch as f64 + iter as f64 / steps,
        };
        let warmup = match self.config.warmup_steps {
            Some(updates) => (updates * self.accumulate) as f64 / steps,
            None => self.config.warmup_epochs as f64,
        };
        self.at(t, warmup)
    }

    /// The rate at (fractional) epoch `t` after a warm-up of `warmup` epochs.
    fn at(&self, t: f64, warmup: f64) -> f64 {
        let c = &self.config;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// build-nanogpt's schedule: `warmup_steps` updates of linear warm-up, then cosine down to
    /// `min_lr` at the last update, with k batches accumulated into each update.
    #[test]
    fn warmup_counts_updates_of_accumulated_batches() {
        let config = ScheduleConfig {
            warmup_steps: Some(10),
            warmup_start_factor: 0.1,
            min_lr: 0.1,
            step: StepUnit::Iteration,
            ..ScheduleConfig::default()
        };
        // 2 epochs of 80 batches, 4 batches per update: 40 updates, 10 of them warm-up.
        let schedule = LrSchedule::new(1.0, 2, config).with_accumulation(4);
        let lr = |update: usize| schedule.lr(update * 4 / 80, update * 4 % 80, 80);
        assert!((lr(0) - 0.1).abs() < 1e-12);
        assert!(
            (lr(5) - 0.55).abs() < 1e-12,
            "half-way through warm-up: {}",
            lr(5)
        );
        assert!((lr(10) - 1.0).abs() < 1e-12);
        assert!(
            (lr(25) - 0.55).abs() < 1e-12,
            "half-way through the cosine: {}",
            lr(25)
        );
        assert!(lr(39) > 0.1 && lr(39) < 0.103, "the last update: {}", lr(39));
    }
}
