//! The fused ops: APA/AGLU, training-mode BatchNorm (optionally with the ReLU after it) and 2-D
//! convolution, each one op with its own backward.
//!
//! Layering, so that no file imports one that imports it: this file holds the [`FusedBackend`]
//! trait and the ops' parameters; each op module (`adaptive`, `batch_norm`, `conv`) holds the
//! op's composite form, its autodiff node and its tensor-level entry point, importing only
//! this file; the CPU kernels (`*_cpu`) import nothing of the ops; `backends` implements the
//! trait for each backend on top of all of them.

use burn::tensor::backend::Backend;
use burn::tensor::ops::{ConvOptions, FloatTensor};
use serde::{Deserialize, Serialize};

pub mod adaptive;
mod adaptive_cpu;
mod backends;
pub mod batch_norm;
mod batch_norm_cpu;
pub mod conv;
mod conv_cpu;
mod primitive;

/// Which function of the APA family the adaptive op computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdaptiveKind {
    /// The gate `p(z; κ, λ)`.
    Apa,
    /// The unit `z·p(z; κ, λ)`.
    Aglu,
}

/// Which ∂/∂λ AGLU trains with: the true gradient, or the reference code's hand-written backward,
/// which drops the term z·p·ln(1 + λe^{−κz})/λ².
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LambdaGrad {
    Exact,
    Reference,
}

/// A backend that can evaluate the fused ops. Each op module has the op's composite form (from
/// Burn's tensor ops), which every implementation may fall back to; `backends` implements this
/// for the CPU backend (with its kernels), CUDA (the composite forms) and autodiff.
pub trait FusedBackend: Backend {
    /// APA or AGLU of `z` (`[N, C, H, W]`); `kappa` and `lambda` are broadcastable to it
    /// (`[1, 1, 1, 1]` or `[1, C, 1, 1]`), `lambda` already floored above zero.
    fn adaptive_forward(
        z: FloatTensor<Self>,
        kappa: FloatTensor<Self>,
        lambda: FloatTensor<Self>,
        kind: AdaptiveKind,
        lambda_grad: LambdaGrad,
    ) -> FloatTensor<Self>;

    /// Gradients with respect to (z, κ, λ) given the output's gradient, κ's and λ's already
    /// summed to their own shapes.
    fn adaptive_backward(
        z: FloatTensor<Self>,
        kappa: FloatTensor<Self>,
        lambda: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        kind: AdaptiveKind,
        lambda_grad: LambdaGrad,
    ) -> [FloatTensor<Self>; 3];

    /// Per-channel batch mean and biased variance of `[N, C, H, W]` (not tracked by autodiff).
    fn batch_norm_stats(x: FloatTensor<Self>) -> [FloatTensor<Self>; 2];

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
    ) -> FloatTensor<Self>;

    /// Gradients (x, weight, bias) of training-mode BatchNorm [+ ReLU].
    fn batch_norm_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        stats: [FloatTensor<Self>; 2],
        grad: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> [FloatTensor<Self>; 3];

    /// Whether [`FusedBackend::fused_conv2d`] has a kernel for this input (`[N, C, H, W]`),
    /// weight (`[Co, C/groups, kh, kw]`) and options; where not, Burn's `conv2d` is used.
    fn has_fused_conv2d(x: &FloatTensor<Self>, weight: &FloatTensor<Self>, options: &ConvOptions<2>) -> bool;

    /// The convolution of `x` by `weight`, without bias; under autodiff, differentiated by
    /// [`FusedBackend::fused_conv2d_backward`].
    fn fused_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self>;

    /// Gradients (input, weight) of [`FusedBackend::fused_conv2d`].
    fn fused_conv2d_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> [FloatTensor<Self>; 2];
}
