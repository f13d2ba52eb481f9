//! ImageNet ResNets v1.5 (torchvision layout: the stride sits on the 3×3 convolution) with
//! bottleneck blocks: resnet50/101/152 and resnext50_32x4d.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::PaddingConfig2d;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::{declare_resnet, ModelConfig, Stem};
use crate::init::{conv, grouped_conv, ConvInit};
use crate::layers::{Act, Attention, BatchNorm, BatchNormConfig, Head};
use crate::ops::conv::conv2d;
use crate::ops::FusedBackend;
use crate::params::{Declarations, Declare};

const EXPANSION: usize = 4;

/// Depth and grouping of one ImageNet-family network.
#[derive(Debug, Clone, Copy)]
pub struct BottleneckLayout {
    pub blocks: [usize; 4],
    pub groups: usize,
    pub width_per_group: usize,
}

#[derive(Module, Debug)]
pub struct Downsample<B: Backend> {
    pub conv: Conv2d<B>,
    pub bn: BatchNorm<B>,
}

#[derive(Module, Debug)]
pub struct Bottleneck<B: Backend> {
    pub conv1: Conv2d<B>,
    pub bn1: BatchNorm<B>,
    pub act1: Act<B>,
    pub conv2: Conv2d<B>,
    pub bn2: BatchNorm<B>,
    pub act2: Act<B>,
    pub conv3: Conv2d<B>,
    pub bn3: BatchNorm<B>,
    pub attention: Attention<B>,
    pub downsample: Option<Downsample<B>>,
    pub act3: Act<B>,
}

impl<B: FusedBackend> Bottleneck<B> {
    fn new(
        model: &ModelConfig,
        layout: &BottleneckLayout,
        inputs: usize,
        planes: usize,
        stride: usize,
        device: &B::Device,
    ) -> Self {
        let width = planes * layout.width_per_group / 64 * layout.groups;
        let outputs = planes * EXPANSION;
        let downsample = (stride != 1 || inputs != outputs).then(|| Downsample {
            conv: conv(inputs, outputs, 1, stride, 0, ConvInit::FanOut, device),
            bn: BatchNormConfig::new(outputs).init(device),
        });
        Self {
            conv1: conv(inputs, width, 1, 1, 0, ConvInit::FanOut, device),
            bn1: BatchNormConfig::new(width).init(device),
            act1: model.act(width).init(device),
            conv2: grouped_conv(
                width,
                width,
                3,
                stride,
                1,
                layout.groups,
                ConvInit::FanOut,
                device,
            ),
            bn2: BatchNormConfig::new(width).init(device),
            act2: model.act(width).init(device),
            conv3: conv(width, outputs, 1, 1, 0, ConvInit::FanOut, device),
            bn3: BatchNormConfig::new(outputs).init(device),
            attention: model.attention(outputs).init(device),
            downsample,
            act3: model.act(outputs).init(device),
        }
    }

    pub fn forward(&self, x: Tensor<B, 4>, trace: &mut dyn FnMut(Tensor<B, 4>)) -> Tensor<B, 4> {
        let out = self.bn1.forward_act(conv2d(&self.conv1, x.clone()), &self.act1);
        let out = self.bn2.forward_act(conv2d(&self.conv2, out), &self.act2);
        let out = self
            .attention
            .forward_traced(self.bn3.forward(conv2d(&self.conv3, out)), trace);
        let identity = match &self.downsample {
            Some(d) => d.bn.forward(conv2d(&d.conv, x)),
            None => x,
        };
        self.act3.forward(out + identity)
    }
}

impl<B: Backend> Declare for Bottleneck<B> {
    fn declare(&self, d: &mut Declarations) {
        d.conv(&self.conv1, "conv1");
        d.scope("bn1", |d| self.bn1.declare(d));
        d.scope("unirect1", |d| self.act1.declare(d));
        d.conv(&self.conv2, "conv2");
        d.scope("bn2", |d| self.bn2.declare(d));
        d.scope("unirect2", |d| self.act2.declare(d));
        d.conv(&self.conv3, "conv3");
        d.scope("bn3", |d| self.bn3.declare(d));
        self.attention.declare(d);
        if let Some(downsample) = &self.downsample {
            d.conv(&downsample.conv, "downsample.0");
            d.scope("downsample.1", |d| downsample.bn.declare(d));
        }
        d.scope("unirect3", |d| self.act3.declare(d));
    }
}

#[derive(Module, Debug)]
pub struct ImageNetResNet<B: Backend> {
    pub conv1: Conv2d<B>,
    pub bn1: BatchNorm<B>,
    pub act: Act<B>,
    pub maxpool: MaxPool2d,
    pub stages: Vec<Vec<Bottleneck<B>>>,
    pub classifier: Head<B>,
}

impl<B: FusedBackend> ImageNetResNet<B> {
    pub fn new(model: &ModelConfig, layout: BottleneckLayout, device: &B::Device) -> Self {
        let mut inputs = 64;
        let stages = layout
            .blocks
            .iter()
            .enumerate()
            .map(|(s, &blocks)| {
                let planes = 64 << s;
                (0..blocks)
                    .map(|i| {
                        let stride = if i == 0 && s > 0 { 2 } else { 1 };
                        let block = Bottleneck::new(model, &layout, inputs, planes, stride, device);
                        inputs = planes * EXPANSION;
                        block
                    })
                    .collect()
            })
            .collect();
        Self {
            conv1: conv(3, 64, 7, 2, 3, ConvInit::FanOut, device),
            bn1: BatchNormConfig::new(64).init(device),
            act: model.act(64).init(device),
            maxpool: MaxPool2dConfig::new([3, 3])
                .with_strides([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(),
            stages,
            classifier: model.head(512 * EXPANSION).init(device),
        }
    }

    pub fn features(&self, x: Tensor<B, 4>, trace: &mut dyn FnMut(Tensor<B, 4>)) -> Tensor<B, 2> {
        let x = self.bn1.forward_act(conv2d(&self.conv1, x), &self.act);
        let mut out = self.maxpool.forward(x);
        for block in self.stages.iter().flatten() {
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
        for (s, blocks) in self.stages.iter().enumerate() {
            for (i, b) in blocks.iter().enumerate() {
                for (j, act) in [&b.act1, &b.act2, &b.act3].into_iter().enumerate() {
                    acts.push((format!("layer{}.{i}.act{}", s + 1, j + 1), act));
                }
            }
        }
        acts
    }

    pub fn attentions(&self) -> Vec<(String, &Attention<B>)> {
        self.stages
            .iter()
            .enumerate()
            .flat_map(|(s, blocks)| {
                blocks
                    .iter()
                    .enumerate()
                    .map(move |(i, b)| (format!("layer{}.{i}.attention", s + 1), &b.attention))
            })
            .collect()
    }
}

impl<B: Backend> Declare for ImageNetResNet<B> {
    fn declare(&self, d: &mut Declarations) {
        let stem = Stem {
            conv: &self.conv1,
            bn: &self.bn1,
            act_key: "relu",
            act: &self.act,
        };
        let stages: Vec<&[Bottleneck<B>]> = self.stages.iter().map(Vec::as_slice).collect();
        declare_resnet(d, stem, &stages, ("fc", &self.classifier));
    }
}
