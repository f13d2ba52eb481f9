//! The backend extension behind the fused ops: APA/AGLU, training-mode BatchNorm (optionally
//! with the ReLU after it) and 2-D convolution, each one op with its own backward.
//!
//! Every method has a default composed from Burn's tensor ops (or Burn's own convolution), so
//! any backend works; the CPU backend overrides them with its kernels (`*_cpu` modules) where
//! they apply, and the autodiff backend records each as one node whose backward calls the
//! inner backend's gradient method. The ops' composite forms and autodiff backwards live in
//! `adaptive_op`, `batch_norm_op` and `conv_op`.

use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::Autodiff;
use burn::tensor::backend::Backend;
use burn::tensor::ops::{ConvOptions, FloatTensor, ModuleOps};

use super::adaptive_op::{self, AdaptiveKind};
use super::{adaptive_cpu, batch_norm_cpu, batch_norm_op as bn, conv_cpu, conv_op};
use crate::config::model::LambdaGrad;

/// A backend that can evaluate the fused ops. The default methods compose standard tensor ops;
/// a backend with a fused kernel overrides them.
pub trait FusedBackend: Backend {
    /// APA or AGLU of `z` (`[N, C, H, W]`); `kappa` and `lambda` are broadcastable to it
    /// (`[1, 1, 1, 1]` or `[1, C, 1, 1]`), `lambda` already floored above zero.
    fn adaptive_forward(
        z: FloatTensor<Self>,
        kappa: FloatTensor<Self>,
        lambda: FloatTensor<Self>,
        kind: AdaptiveKind,
        lambda_grad: LambdaGrad,
    ) -> FloatTensor<Self> {
        adaptive_op::composite_forward::<Self>(z, kappa, lambda, kind, lambda_grad)
    }

    /// Gradients with respect to (z, κ, λ) given the output's gradient, κ's and λ's already
    /// summed to their own shapes.
    fn adaptive_backward(
        z: FloatTensor<Self>,
        kappa: FloatTensor<Self>,
        lambda: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        kind: AdaptiveKind,
        lambda_grad: LambdaGrad,
    ) -> [FloatTensor<Self>; 3] {
        adaptive_op::composite_backward::<Self>(z, kappa, lambda, grad, kind, lambda_grad)
    }

    /// Per-channel batch mean and biased variance of `[N, C, H, W]` (not tracked by autodiff).
    fn batch_norm_stats(x: FloatTensor<Self>) -> [FloatTensor<Self>; 2] {
        bn::composite_stats::<Self>(x)
    }

    /// `(x − mean)/√(var + ε)·weight + bias` with `stats` = [mean, var], then ReLU if `relu`;
    /// under autodiff, differentiated as training-mode BatchNorm (mean and var being the batch's
    /// statistics of `x`).
    fn batch_norm_normalize(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        stats: [FloatTensor<Self>; 2],
        epsilon: f64,
        relu: bool,
    ) -> FloatTensor<Self> {
        bn::composite_normalize::<Self>(x, weight, bias, stats, epsilon, relu)
    }

    /// Gradients (x, weight, bias) of training-mode BatchNorm [+ ReLU].
    fn batch_norm_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        stats: [FloatTensor<Self>; 2],
        grad: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> [FloatTensor<Self>; 3] {
        bn::composite_backward::<Self>(x, weight, bias, stats, grad, epsilon, relu)
    }

    /// Whether [`FusedBackend::fused_conv2d`] has a kernel for this input (`[N, C, H, W]`),
    /// weight (`[Co, C/groups, kh, kw]`) and options; where not, Burn's `conv2d` is used.
    fn has_fused_conv2d(x: &FloatTensor<Self>, weight: &FloatTensor<Self>, options: &ConvOptions<2>) -> bool {
        let _ = (x, weight, options);
        false
    }

    /// The convolution of `x` by `weight`, without bias; under autodiff, differentiated by
    /// [`FusedBackend::fused_conv2d_backward`].
    fn fused_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        Self::conv2d(x, weight, None, options)
    }

    /// Gradients (input, weight) of [`FusedBackend::fused_conv2d`].
    fn fused_conv2d_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> [FloatTensor<Self>; 2] {
        conv_op::composite_backward::<Self>(x, weight, grad, options)
    }
}

impl FusedBackend for burn::backend::Flex {
    fn adaptive_forward(
        z: FloatTensor<Self>,
        kappa: FloatTensor<Self>,
        lambda: FloatTensor<Self>,
        kind: AdaptiveKind,
        lambda_grad: LambdaGrad,
    ) -> FloatTensor<Self> {
        match adaptive_cpu::forward(&z, &kappa, &lambda, kind) {
            Some(out) => out,
            None => adaptive_op::composite_forward::<Self>(z, kappa, lambda, kind, lambda_grad),
        }
    }

    fn adaptive_backward(
        z: FloatTensor<Self>,
        kappa: FloatTensor<Self>,
        lambda: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        kind: AdaptiveKind,
        lambda_grad: LambdaGrad,
    ) -> [FloatTensor<Self>; 3] {
        match adaptive_cpu::backward(&z, &kappa, &lambda, &grad, kind, lambda_grad) {
            Some(grads) => grads,
            None => adaptive_op::composite_backward::<Self>(z, kappa, lambda, grad, kind, lambda_grad),
        }
    }

    fn batch_norm_stats(x: FloatTensor<Self>) -> [FloatTensor<Self>; 2] {
        batch_norm_cpu::stats(&x).unwrap_or_else(|| bn::composite_stats::<Self>(x))
    }

    fn batch_norm_normalize(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        stats: [FloatTensor<Self>; 2],
        epsilon: f64,
        relu: bool,
    ) -> FloatTensor<Self> {
        let [mean, var] = &stats;
        match batch_norm_cpu::normalize(&x, &weight, &bias, [mean, var], epsilon, relu) {
            Some(y) => y,
            None => bn::composite_normalize::<Self>(x, weight, bias, stats, epsilon, relu),
        }
    }

    fn batch_norm_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        stats: [FloatTensor<Self>; 2],
        grad: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> [FloatTensor<Self>; 3] {
        let [mean, var] = &stats;
        match batch_norm_cpu::backward(&x, &weight, &bias, [mean, var], &grad, epsilon, relu) {
            Some(grads) => grads,
            None => bn::composite_backward::<Self>(x, weight, bias, stats, grad, epsilon, relu),
        }
    }

    fn has_fused_conv2d(x: &FloatTensor<Self>, weight: &FloatTensor<Self>, options: &ConvOptions<2>) -> bool {
        conv_cpu::applies(x, weight, options)
    }

    fn fused_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        match conv_cpu::forward(&x, &weight, &options) {
            Some(y) => y,
            None => Self::conv2d(x, weight, None, options),
        }
    }

    fn fused_conv2d_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> [FloatTensor<Self>; 2] {
        match conv_cpu::backward(&x, &weight, &grad, &options) {
            Some(grads) => grads,
            None => conv_op::composite_backward::<Self>(x, weight, grad, options),
        }
    }
}

#[cfg(feature = "cuda")]
impl FusedBackend for burn::backend::Cuda {}

impl<B: FusedBackend, C: CheckpointStrategy> FusedBackend for Autodiff<B, C> {
    fn adaptive_forward(
        z: FloatTensor<Self>,
        kappa: FloatTensor<Self>,
        lambda: FloatTensor<Self>,
        kind: AdaptiveKind,
        lambda_grad: LambdaGrad,
    ) -> FloatTensor<Self> {
        adaptive_op::autodiff_forward::<B, C>(z, kappa, lambda, kind, lambda_grad)
    }

    fn batch_norm_stats(x: FloatTensor<Self>) -> [FloatTensor<Self>; 2] {
        bn::autodiff_stats::<B, C>(x)
    }

    fn batch_norm_normalize(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        stats: [FloatTensor<Self>; 2],
        epsilon: f64,
        relu: bool,
    ) -> FloatTensor<Self> {
        bn::autodiff_normalize::<B, C>(x, weight, bias, stats, epsilon, relu)
    }

    fn has_fused_conv2d(x: &FloatTensor<Self>, weight: &FloatTensor<Self>, options: &ConvOptions<2>) -> bool {
        B::has_fused_conv2d(&x.primitive, &weight.primitive, options)
    }

    fn fused_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        conv_op::autodiff_forward::<B, C>(x, weight, options)
    }
}
