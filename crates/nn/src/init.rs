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
    let mut conv = conv_config(inputs, outputs, kernel, stride, padding)
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

/// A square convolution with symmetric, explicit padding (weights drawn by the callers).
fn conv_config(inputs: usize, outputs: usize, kernel: usize, stride: usize, padding: usize) -> Conv2dConfig {
    Conv2dConfig::new([inputs, outputs], [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(padding, padding, padding, padding))
}

/// A convolution with bias and PyTorch's default initialisation (weight and bias U(±1/√fan-in)),
/// no padding: timm's patch embedding.
pub fn conv_with_bias<B: Backend>(
    inputs: usize,
    outputs: usize,
    kernel: usize,
    stride: usize,
    device: &B::Device,
) -> Conv2d<B> {
    let mut conv = conv_config(inputs, outputs, kernel, stride, 0).init(device);
    let bound = 1.0 / ((inputs * kernel * kernel) as f64).sqrt();
    let shape = [outputs, inputs, kernel, kernel];
    conv.weight = param(rng::uniform(shape.iter().product(), -bound, bound), shape, device);
    conv.bias = Some(param(rng::uniform(outputs, -bound, bound), [outputs], device));
    conv
}

/// How a linear layer's weight and bias are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinearInit {
    /// `kaiming_normal_` (fan-in) weights: what the CIFAR reference models apply to every
    /// `nn.Linear` (attention MLPs and the linear classifier); bias U(±1/√in).
    KaimingNormal,
    /// PyTorch's default: weight and bias U(±1/√in).
    TorchDefault,
    /// Weights N(0, 0.02²), zero bias: timm's transformers (its truncation at ±2 is 100 σ away,
    /// so never reached).
    SmallNormal,
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
        LinearInit::SmallNormal => rng::normal(inputs * outputs, 0.02),
    };
    layer.weight = param(weights, [inputs, outputs], device);
    if bias {
        let biases = match init {
            LinearInit::SmallNormal => vec![0.0; outputs],
            LinearInit::KaimingNormal | LinearInit::TorchDefault => rng::uniform(outputs, -bound, bound),
        };
        layer.bias = Some(param(biases, [outputs], device));
    }
    layer
}
