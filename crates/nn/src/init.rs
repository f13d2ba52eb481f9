//! Layer construction with the reference initialisation, drawn from [`super::rng`].

use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

use super::rng;

/// Kaiming-normal for ReLU (std = √2/√fan), over fan-in (the CIFAR reference's
/// `kaiming_normal_` default) or fan-out (torchvision's ResNets).
#[derive(Debug, Clone, Copy)]
pub enum ConvInit {
    FanIn,
    FanOut,
}

/// A parameter tensor of `shape` filled with `values`.
pub fn param<B: Backend, const D: usize>(
    values: Vec<f32>,
    shape: [usize; D],
    device: &B::Device,
) -> Param<Tensor<B, D>> {
    Param::from_tensor(Tensor::from_data(TensorData::new(values, shape), device))
}

pub fn conv<B: Backend>(
    inputs: usize,
    outputs: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    init: ConvInit,
    device: &B::Device,
) -> Conv2d<B> {
    grouped_conv(inputs, outputs, kernel, stride, padding, 1, init, device)
}

#[allow(clippy::too_many_arguments)]
pub fn grouped_conv<B: Backend>(
    inputs: usize,
    outputs: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    groups: usize,
    init: ConvInit,
    device: &B::Device,
) -> Conv2d<B> {
    let mut conv = Conv2dConfig::new([inputs, outputs], [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(padding, padding, padding, padding))
        .with_groups(groups)
        .with_bias(false)
        .init(device);
    // PyTorch's fans: fan-in counts the inputs of one group, fan-out all outputs.
    let fan = match init {
        ConvInit::FanIn => inputs / groups * kernel * kernel,
        ConvInit::FanOut => outputs * kernel * kernel,
    };
    let shape = [outputs, inputs / groups, kernel, kernel];
    let numel = shape.iter().product();
    conv.weight = param(rng::normal(numel, (2.0 / fan as f64).sqrt()), shape, device);
    conv
}

/// How a linear layer's weight is drawn. Biases always keep PyTorch's default U(±1/√in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinearInit {
    /// `kaiming_normal_` (fan-in): what the CIFAR reference models apply to every `nn.Linear`
    /// (attention MLPs and the linear classifier).
    KaimingNormal,
    /// PyTorch's default U(±1/√in).
    TorchDefault,
}

pub fn linear<B: Backend>(
    init: LinearInit,
    inputs: usize,
    outputs: usize,
    bias: bool,
    device: &B::Device,
) -> Linear<B> {
    let mut layer = LinearConfig::new(inputs, outputs).with_bias(bias).init(device);
    let bound = 1.0 / (inputs as f64).sqrt();
    // Burn stores the weight as [in, out].
    let weights = match init {
        LinearInit::KaimingNormal => rng::normal(inputs * outputs, (2.0 / inputs as f64).sqrt()),
        LinearInit::TorchDefault => rng::uniform(inputs * outputs, -bound, bound),
    };
    layer.weight = param(weights, [inputs, outputs], device);
    if bias {
        layer.bias = Some(param(rng::uniform(outputs, -bound, bound), [outputs], device));
    }
    layer
}
