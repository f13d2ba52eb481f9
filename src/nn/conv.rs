//! Convolution construction with the reference initialisation.

use burn::module::Initializer;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::PaddingConfig2d;
use burn::tensor::backend::Backend;

/// Kaiming-normal for ReLU (std = √2/√fan), over fan-in (the CIFAR reference's
/// `kaiming_normal_` default) or fan-out (torchvision's ResNets).
#[derive(Debug, Clone, Copy)]
pub enum ConvInit {
    FanIn,
    FanOut,
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
    let initializer = Initializer::KaimingNormal {
        gain: std::f64::consts::SQRT_2,
        fan_out_only: matches!(init, ConvInit::FanOut),
    };
    Conv2dConfig::new([inputs, outputs], [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(padding, padding, padding, padding))
        .with_groups(groups)
        .with_bias(false)
        .with_initializer(initializer)
        .init(device)
}
