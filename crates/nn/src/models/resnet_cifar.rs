//! CIFAR ResNets (He et al. 2016, §4.2): 3×3 stem with 16 channels, three stages of 16/32/64
//! channels, option-A shortcuts (stride-2 subsampling and zero channel padding), no max-pool.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::{declare_resnet, ModelConfig, Stem};
use crate::init::{conv, ConvInit};
use crate::layers::{Act, Attention, BatchNorm, BatchNormConfig, Head};
use crate::ops::conv::conv2d;
use crate::ops::FusedBackend;
use crate::params::{Declarations, Declare};

const WIDTHS: [usize; 3] = [16, 32, 64];

#[derive(Module, Debug)]
pub struct BasicBlock<B: Backend> {
    pub conv1: Conv2d<B>,
    pub bn1: BatchNorm<B>,
    pub act1: Act<B>,
    pub conv2: Conv2d<B>,
    pub bn2: BatchNorm<B>,
    pub attention: Attention<B>,
    pub act2: Act<B>,
    /// Channels added on each side by the option-A shortcut (0: identity shortcut).
    #[module(skip)]
    pad_channels: usize,
    #[module(skip)]
    stride: usize,
}

impl<B: FusedBackend> BasicBlock<B> {
    fn new(model: &ModelConfig, inputs: usize, planes: usize, stride: usize, device: &B::Device) -> Self {
        let downsample = stride != 1 || inputs != planes;
        Self {
            conv1: conv(inputs, planes, 3, stride, 1, ConvInit::FanIn, device),
            bn1: BatchNormConfig::new(planes).init(device),
            act1: model.act(planes).init(device),
            conv2: conv(planes, planes, 3, 1, 1, ConvInit::FanIn, device),
            bn2: BatchNormConfig::new(planes).init(device),
            attention: model.attention(planes).init(device),
            act2: model.act(planes).init(device),
            pad_channels: if downsample { planes / 4 } else { 0 },
            stride,
        }
    }

    pub fn forward(&self, x: Tensor<B, 4>, trace: &mut dyn FnMut(Tensor<B, 4>)) -> Tensor<B, 4> {
        let out = self.bn1.forward_act(conv2d(&self.conv1, x.clone()), &self.act1);
        let out = self.bn2.forward(conv2d(&self.conv2, out));
        let out = self.attention.forward_traced(out, trace);
        self.act2.forward(out + self.shortcut(x))
    }

    /// Option A: `x[:, :, ::s, ::s]` zero-padded by `planes/4` channels on each side.
    fn shortcut(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        if self.pad_channels == 0 && self.stride == 1 {
            return x;
        }
        let x = subsample(x, self.stride);
        let [n, _, h, w] = x.dims();
        let zeros = Tensor::zeros([n, self.pad_channels, h, w], (&x.device(), x.dtype()));
        Tensor::cat(vec![zeros.clone(), x, zeros], 1)
    }
}

impl<B: Backend> Declare for BasicBlock<B> {
    fn declare(&self, d: &mut Declarations) {
        d.conv(&self.conv1, "conv1");
        d.scope("bn1", |d| self.bn1.declare(d));
        d.scope("unirect1", |d| self.act1.declare(d));
        d.conv(&self.conv2, "conv2");
        d.scope("bn2", |d| self.bn2.declare(d));
        self.attention.declare(d);
        d.scope("unirect2", |d| self.act2.declare(d));
    }
}

/// Every `stride`-th row and column starting at 0 (Python's `x[:, :, ::s, ::s]`).
fn subsample<B: Backend>(x: Tensor<B, 4>, stride: usize) -> Tensor<B, 4> {
    if stride == 1 {
        return x;
    }
    let [n, c, h, w] = x.dims();
    let (oh, ow) = (h.div_ceil(stride), w.div_ceil(stride));
    let x = pad_to(x, oh * stride, ow * stride);
    x.reshape([n, c, oh, stride, ow, stride])
        .slice([0..n, 0..c, 0..oh, 0..1, 0..ow, 0..1])
        .reshape([n, c, oh, ow])
}

/// Zero-pads the bottom and right so the spatial size becomes `h × w`.
fn pad_to<B: Backend>(x: Tensor<B, 4>, h: usize, w: usize) -> Tensor<B, 4> {
    let [n, c, xh, xw] = x.dims();
    let options = (&x.device(), x.dtype());
    let x = if h > xh {
        Tensor::cat(vec![x, Tensor::zeros([n, c, h - xh, xw], options)], 2)
    } else {
        x
    };
    if w > xw {
        Tensor::cat(vec![x, Tensor::zeros([n, c, h, w - xw], options)], 3)
    } else {
        x
    }
}

#[derive(Module, Debug)]
pub struct CifarResNet<B: Backend> {
    pub conv1: Conv2d<B>,
    pub bn1: BatchNorm<B>,
    pub act: Act<B>,
    pub layer1: Vec<BasicBlock<B>>,
    pub layer2: Vec<BasicBlock<B>>,
    pub layer3: Vec<BasicBlock<B>>,
    pub classifier: Head<B>,
}

impl<B: FusedBackend> CifarResNet<B> {
    /// `blocks` residual blocks per stage (depth = 6·blocks + 2).
    pub fn new(model: &ModelConfig, blocks: usize, device: &B::Device) -> Self {
        let stage = |inputs: usize, planes: usize, stride: usize| {
            (0..blocks)
                .map(|i| {
                    let (inputs, stride) = if i == 0 { (inputs, stride) } else { (planes, 1) };
                    BasicBlock::new(model, inputs, planes, stride, device)
                })
                .collect::<Vec<_>>()
        };
        Self {
            conv1: conv(3, WIDTHS[0], 3, 1, 1, ConvInit::FanIn, device),
            bn1: BatchNormConfig::new(WIDTHS[0]).init(device),
            act: model.act(WIDTHS[0]).init(device),
            layer1: stage(WIDTHS[0], WIDTHS[0], 1),
            layer2: stage(WIDTHS[0], WIDTHS[1], 2),
            layer3: stage(WIDTHS[1], WIDTHS[2], 2),
            classifier: model.head(WIDTHS[2]).init(device),
        }
    }

    /// Penultimate features `[N, 64]` after global average pooling.
    pub fn features(&self, x: Tensor<B, 4>, trace: &mut dyn FnMut(Tensor<B, 4>)) -> Tensor<B, 2> {
        let mut out = self.bn1.forward_act(conv2d(&self.conv1, x), &self.act);
        for block in self.layer1.iter().chain(&self.layer2).chain(&self.layer3) {
            out = block.forward(out, trace);
        }
        let [n, c, _, _] = out.dims();
        out.mean_dim(3).mean_dim(2).reshape([n, c])
    }

    pub fn head(&self) -> &Head<B> {
        &self.classifier
    }

    pub fn activations(&self) -> Vec<(String, &Act<B>)> {
        let mut acts = vec![("act".to_string(), &self.act)];
        for (stage, blocks) in [
            ("layer1", &self.layer1),
            ("layer2", &self.layer2),
            ("layer3", &self.layer3),
        ] {
            for (i, block) in blocks.iter().enumerate() {
                acts.push((format!("{stage}.{i}.act1"), &block.act1));
                acts.push((format!("{stage}.{i}.act2"), &block.act2));
            }
        }
        acts
    }

    pub fn attentions(&self) -> Vec<(String, &Attention<B>)> {
        let stages = [
            ("layer1", &self.layer1),
            ("layer2", &self.layer2),
            ("layer3", &self.layer3),
        ];
        stages
            .into_iter()
            .flat_map(|(stage, blocks)| {
                blocks
                    .iter()
                    .enumerate()
                    .map(move |(i, b)| (format!("{stage}.{i}.attention"), &b.attention))
            })
            .collect()
    }
}

impl<B: Backend> Declare for CifarResNet<B> {
    fn declare(&self, d: &mut Declarations) {
        let stem = Stem {
            conv: &self.conv1,
            bn: &self.bn1,
            act_key: "unirect",
            act: &self.act,
        };
        let stages = [self.layer1.as_slice(), &self.layer2, &self.layer3];
        declare_resnet(d, stem, &stages, ("linear", &self.classifier));
    }
}
