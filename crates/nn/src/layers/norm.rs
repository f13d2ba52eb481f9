//! BatchNorm with PyTorch's semantics. Burn's own BatchNorm updates the running variance with
//! the biased batch variance; PyTorch uses the unbiased one, and reference checkpoints and
//! eval-mode numbers depend on that, so this module follows PyTorch.

use burn::module::{Module, Param, RunningState};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::activation::Act;
use crate::ops::batch_norm::{normalize_op, stats_op};
use crate::ops::FusedBackend;
use crate::params::{Declarations, Declare, Layout, Role};

#[derive(Debug, Clone, Copy)]
pub struct BatchNormConfig {
    pub channels: usize,
    pub epsilon: f64,
    pub momentum: f64,
}

impl BatchNormConfig {
    pub fn new(channels: usize) -> Self {
        Self {
            channels,
            epsilon: 1e-5,
            momentum: 0.1,
        }
    }

    pub fn with_momentum(self, momentum: f64) -> Self {
        Self { momentum, ..self }
    }

    pub fn init<B: Backend>(&self, device: &B::Device) -> BatchNorm<B> {
        BatchNorm {
            weight: Param::from_tensor(Tensor::ones([self.channels], device)),
            bias: Param::from_tensor(Tensor::zeros([self.channels], device)),
            running_mean: RunningState::new(Tensor::zeros([self.channels], device)),
            running_var: RunningState::new(Tensor::ones([self.channels], device)),
            epsilon: self.epsilon,
            momentum: self.momentum,
        }
    }
}

/// Batch normalisation over the channel axis of `[N, C, H, W]`.
#[derive(Module, Debug)]
pub struct BatchNorm<B: Backend> {
    pub weight: Param<Tensor<B, 1>>,
    pub bias: Param<Tensor<B, 1>>,
    pub running_mean: RunningState<Tensor<B, 1>>,
    pub running_var: RunningState<Tensor<B, 1>>,
    pub epsilon: f64,
    pub momentum: f64,
}

impl<B: FusedBackend> BatchNorm<B> {
    /// Batch statistics while autodiff is on (training), running statistics otherwise; one
    /// fused op either way (see `batch_norm_op`).
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.normalize(x, false)
    }

    /// `act(self.forward(x))`, as one op when `act` is ReLU.
    pub fn forward_act(&self, x: Tensor<B, 4>, act: &Act<B>) -> Tensor<B, 4> {
        if act.is_relu() {
            self.normalize(x, true)
        } else {
            act.forward(self.forward(x))
        }
    }

    fn normalize(&self, x: Tensor<B, 4>, relu: bool) -> Tensor<B, 4> {
        let [n, _, h, w] = x.dims();
        let (mean, var) = if B::ad_enabled(&x.device()) {
            let [mean, var] = stats_op(x.clone());
            self.update_running(mean.clone(), var.clone(), n * h * w);
            (mean, var)
        } else {
            (self.running_mean.value(), self.running_var.value())
        };
        normalize_op(
            x,
            self.weight.val(),
            self.bias.val(),
            [mean, var],
            self.epsilon,
            relu,
        )
    }

    /// PyTorch's update: the running variance takes the unbiased batch variance.
    fn update_running(&self, mean: Tensor<B, 1>, var: Tensor<B, 1>, count: usize) {
        let unbiased = var * (count as f64 / (count.max(2) - 1) as f64);
        let m = self.momentum;
        update(&self.running_mean, |old| old * (1.0 - m) + mean * m);
        update(&self.running_var, |old| old * (1.0 - m) + unbiased * m);
    }
}

impl<B: Backend> Declare for BatchNorm<B> {
    fn declare(&self, d: &mut Declarations) {
        d.param(&self.weight, "weight", Role::Norm, Layout::Same);
        d.param(&self.bias, "bias", Role::Norm, Layout::Same);
        d.running(&self.running_mean, "running_mean");
        d.running(&self.running_var, "running_var");
    }
}

/// Updates a running statistic and folds the update in at once. `RunningState` otherwise keeps
/// the newest value in a per-thread slot until the next `value_sync`, so inference, checkpoints
/// and every other reader of `value()` would see statistics one batch old.
fn update<B: Backend>(state: &RunningState<Tensor<B, 1>>, f: impl FnOnce(Tensor<B, 1>) -> Tensor<B, 1>) {
    state.update(f(state.value_sync()));
    state.value_sync();
}
