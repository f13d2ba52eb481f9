//! The moving average of the weights of the reference train.py (and torchvision's) `--model-ema`:
//! `avg ← decay · avg + (1 − decay) · weights`, over every declared tensor (parameters and
//! BatchNorm statistics alike, as `AveragedModel(use_buffers=True)`), kept under the reference
//! key names so that it is checkpointed, restored and evaluated like the model itself.

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::TensorData;

use crate::config::RunConfig;
use crate::nn::import::{export_state_dict, StateDict};
use crate::nn::Declare;

/// The average and how many weights it has taken in (`n_averaged`: 0 means the next update
/// copies).
pub struct Ema {
    /// Weight of the newest weights, after the reference's rescaling.
    alpha: f32,
    /// Optimiser updates between averages.
    steps: usize,
    /// Epochs during which the average only copies (the learning-rate warm-up).
    warmup_epochs: usize,
    pub(super) weights: StateDict,
    pub(super) averaged: u64,
}

impl Ema {
    /// The average `train.ema` asks for, empty until the first update; `None` without one.
    pub fn new(run: &RunConfig) -> Option<Self> {
        let config = run.train.ema?;
        Some(Self {
            alpha: run.train.ema_alpha(config) as f32,
            steps: config.steps,
            warmup_epochs: run.train.schedule.warmup_epochs,
            weights: StateDict::new(),
            averaged: 0,
        })
    }

    /// After optimiser update `update` (0-based, counted within `epoch`): every `steps`-th takes
    /// `model`'s weights in. During warm-up the count is reset, so the next one copies again.
    pub fn after_update<B: Backend, M: Module<B> + Declare>(
        &mut self,
        model: &M,
        epoch: usize,
        update: usize,
    ) {
        if !update.is_multiple_of(self.steps) {
            return;
        }
        let current = export_state_dict(model);
        if self.averaged == 0 {
            self.weights = current;
        } else {
            for (key, latest) in current {
                if let Some(average) = self.weights.get_mut(&key) {
                    *average = blend(average, &latest, self.alpha);
                }
            }
        }
        self.averaged = if epoch < self.warmup_epochs {
            0
        } else {
            self.averaged + 1
        };
    }

    /// The averaged weights, once there are any.
    pub fn weights(&self) -> Option<&StateDict> {
        (!self.weights.is_empty()).then_some(&self.weights)
    }
}

/// `(1 − alpha) · average + alpha · latest`, elementwise, as the reference's
/// `decay * avg + (1 - decay) * param` in float32.
fn blend(average: &TensorData, latest: &TensorData, alpha: f32) -> TensorData {
    let decay = 1.0 - alpha;
    let (Ok(a), Ok(b)) = (average.as_slice::<f32>(), latest.as_slice::<f32>()) else {
        return latest.clone();
    };
    let mixed: Vec<f32> = a.iter().zip(b).map(|(&a, &b)| decay * a + alpha * b).collect();
    TensorData::new(mixed, average.shape.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blending_weighs_the_newest_by_alpha() {
        let average = TensorData::new(vec![1.0f32, 2.0], [2]);
        let latest = TensorData::new(vec![3.0f32, 6.0], [2]);
        let mixed = blend(&average, &latest, 0.25);
        assert_eq!(mixed.to_vec::<f32>().unwrap(), [1.5, 3.0]);
        assert_eq!(mixed.shape, average.shape);
    }
}
