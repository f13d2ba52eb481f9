//! [`FusedBackend`] for each backend: the CPU backend runs its kernels where they apply and the
//! composite forms elsewhere, CUDA runs the composite forms (Burn fuses them), and autodiff
//! records each op as one node whose backward calls the inner backend's gradient method.

use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::Autodiff;
use burn::tensor::ops::{ConvOptions, FloatTensor, ModuleOps};

use super::{adaptive, adaptive_cpu, batch_norm as bn, batch_norm_cpu, conv, conv_cpu};
use super::{AdaptiveKind, FusedBackend, LambdaGrad};

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
            None => adaptive::composite_forward::<Self>(z, kappa, lambda, kind, lambda_grad),
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
            None => adaptive::composite_backward::<Self>(z, kappa, lambda, grad, kind, lambda_grad),
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
            None => conv::composite_backward::<Self>(x, weight, grad, options),
        }
    }
}

/// The gradient methods as the composite forms: what a backend without kernels runs, and what
/// autodiff runs when asked to differentiate a gradient (never, in training).
macro_rules! composite_backwards {
    () => {
        fn adaptive_backward(
            z: FloatTensor<Self>,
            kappa: FloatTensor<Self>,
            lambda: FloatTensor<Self>,
            grad: FloatTensor<Self>,
            kind: AdaptiveKind,
            lambda_grad: LambdaGrad,
        ) -> [FloatTensor<Self>; 3] {
            adaptive::composite_backward::<Self>(z, kappa, lambda, grad, kind, lambda_grad)
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
            bn::composite_backward::<Self>(x, weight, bias, stats, grad, epsilon, relu)
        }

        fn fused_conv2d_backward(
            x: FloatTensor<Self>,
            weight: FloatTensor<Self>,
            grad: FloatTensor<Self>,
            options: ConvOptions<2>,
        ) -> [FloatTensor<Self>; 2] {
            conv::composite_backward::<Self>(x, weight, grad, options)
        }
    };
}

#[cfg(feature = "cuda")]
impl FusedBackend for burn::backend::Cuda {
    fn adaptive_forward(
        z: FloatTensor<Self>,
        kappa: FloatTensor<Self>,
        lambda: FloatTensor<Self>,
        kind: AdaptiveKind,
        lambda_grad: LambdaGrad,
    ) -> FloatTensor<Self> {
        adaptive::composite_forward::<Self>(z, kappa, lambda, kind, lambda_grad)
    }

    fn batch_norm_stats(x: FloatTensor<Self>) -> [FloatTensor<Self>; 2] {
        bn::composite_stats::<Self>(x)
    }

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

    fn has_fused_conv2d(_: &FloatTensor<Self>, _: &FloatTensor<Self>, _: &ConvOptions<2>) -> bool {
        false
    }

    fn fused_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        Self::conv2d(x, weight, None, options)
    }

    composite_backwards!();
}

impl<B: FusedBackend, C: CheckpointStrategy> FusedBackend for Autodiff<B, C> {
    fn adaptive_forward(
        z: FloatTensor<Self>,
        kappa: FloatTensor<Self>,
        lambda: FloatTensor<Self>,
        kind: AdaptiveKind,
        lambda_grad: LambdaGrad,
    ) -> FloatTensor<Self> {
        adaptive::autodiff_forward::<B, C>(z, kappa, lambda, kind, lambda_grad)
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
        conv::autodiff_forward::<B, C>(x, weight, options)
    }

    composite_backwards!();
}
