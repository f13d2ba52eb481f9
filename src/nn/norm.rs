//! BatchNorm with PyTorch's semantics. Burn's own BatchNorm updates the running variance with
//! the biased batch variance; PyTorch uses the unbiased one, and reference checkpoints and
//! eval-mode numbers depend on that, so this module follows PyTorch.

use burn::module::{Module, Param, RunningState};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

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

impl<B: Backend> BatchNorm<B> {
    /// Batch statistics while autodiff is on (training), running statistics otherwise.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let device = x.device();
        let [n, c, h, w] = x.dims();
        let (mean, var) = if B::ad_enabled(&device) {
            self.batch_statistics(x.clone(), n * h * w)
        } else {
            (self.running_mean.value(), self.running_var.value())
        };
        let scale = self.weight.val() / (var + self.epsilon).sqrt();
        let shift = self.bias.val() - mean * scale.clone();
        x * scale.reshape([1, c, 1, 1]) + shift.reshape([1, c, 1, 1])
    }

    fn batch_statistics(&self, x: Tensor<B, 4>, count: usize) -> (Tensor<B, 1>, Tensor<B, 1>) {
        let c = x.dims()[1];
        let per_channel = x.swap_dims(0, 1).reshape([c, count]);
        let mean = per_channel.clone().mean_dim(1);
        let var = (per_channel - mean.clone()).square().mean_dim(1).reshape([c]);
        let mean = mean.reshape([c]);
        let unbiased = var.clone().detach() * (count as f64 / (count.max(2) - 1) as f64);
        let m = self.momentum;
        update(&self.running_mean, |old| {
            old * (1.0 - m) + mean.clone().detach() * m
        });
        update(&self.running_var, |old| old * (1.0 - m) + unbiased * m);
        (mean, var)
    }
}

/// Updates a running statistic and folds the update in at once. `RunningState` otherwise keeps
/// the newest value in a per-thread slot until the next `value_sync`, so inference, checkpoints
/// and every other reader of `value()` would see statistics one batch old.
fn update<B: Backend>(state: &RunningState<Tensor<B, 1>>, f: impl FnOnce(Tensor<B, 1>) -> Tensor<B, 1>) {
    state.update(f(state.value_sync()));
    state.value_sync();
}
