//! Attention blocks placed after the last BatchNorm of a residual block, before the addition:
//! squeeze-and-excitation (SE, and APA* when it has LayerNorm, dropout and an APA gate), CBAM
//! (channel then spatial gate) and spatial-only attention.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::{LayerNorm, LayerNormConfig, Linear};
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use serde::{Deserialize, Serialize};

use super::activation::{GateAct, GateConfig};
use super::norm::{BatchNorm, BatchNormConfig};
use crate::init::{conv, linear, ConvInit, LinearInit};
use crate::ops::conv::conv2d;
use crate::ops::FusedBackend;
use crate::params::{Declarations, Declare};
use crate::rng;

/// Which attention block a residual block has (`model.attention`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttentionKind {
    None,
    Se,
    Cbam,
    Spatial,
}

/// Which reference implementation's checkpoint names the block follows: the CIFAR models
/// (`resnet_cifar.py`) and the ImageNet family (`resnet_pytorch.py`, `cbam.py`) differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStyle {
    Cifar,
    ImageNet,
}

/// How to build an [`Attention`] block over `channels` channels.
#[derive(Debug, Clone, Copy)]
pub struct AttentionConfig {
    pub kind: AttentionKind,
    pub channels: usize,
    /// MLP reduction ratio of SE and CBAM.
    pub reduction: usize,
    /// APA*: LayerNorm on the pooled vector before the MLP.
    pub layernorm: bool,
    /// APA*: dropout after the MLP.
    pub dropout: f64,
    /// The gate over `channels` channels (SE, CBAM's channel gate).
    pub gate: GateConfig,
    /// The gate of the spatial map (one channel).
    pub spatial_gate: GateConfig,
    pub mlp_init: LinearInit,
    /// The spatial gate's convolution: the reference initialises every `nn.Conv2d` of a model
    /// the same way (Kaiming-normal over fan-in for CIFAR, fan-out for the ImageNet family).
    pub conv_init: ConvInit,
    pub keys: KeyStyle,
}

impl AttentionConfig {
    pub fn init<B: FusedBackend>(&self, device: &B::Device) -> Attention<B> {
        let kind = self.kind;
        Attention {
            se: (kind == AttentionKind::Se).then(|| SqueezeExcite::new(self, device)),
            channel: (kind == AttentionKind::Cbam).then(|| ChannelGate::new(self, device)),
            spatial: matches!(kind, AttentionKind::Cbam | AttentionKind::Spatial)
                .then(|| SpatialGate::new(self, device)),
            keys: self.keys,
        }
    }
}

/// The attention block chosen by `model.attention` (`none` holds nothing): `[N, C, H, W]` →
/// the same shape, reweighted.
#[derive(Module, Debug)]
pub struct Attention<B: Backend> {
    se: Option<SqueezeExcite<B>>,
    channel: Option<ChannelGate<B>>,
    spatial: Option<SpatialGate<B>>,
    #[module(skip)]
    keys: KeyStyle,
}

impl<B: Backend> Declare for Attention<B> {
    /// Under the block's own reference name: `se` for SE, else `cb` (CIFAR) or `cbam`.
    fn declare(&self, d: &mut Declarations) {
        let name = match (&self.se, self.keys) {
            (Some(_), _) => "se",
            (None, KeyStyle::Cifar) => "cb",
            (None, KeyStyle::ImageNet) => "cbam",
        };
        d.scope(name, |d| {
            if let Some(se) = &self.se {
                d.linear(&se.fc1, "excitation.0");
                d.linear(&se.fc2, "excitation.2");
                if let Some(norm) = &se.norm {
                    d.layer_norm(norm, "norm");
                }
                let gate = match self.keys {
                    KeyStyle::Cifar => "unact",
                    KeyStyle::ImageNet => "uniact",
                };
                d.scope(gate, |d| se.gate.declare(d));
            }
            if let Some(channel) = &self.channel {
                d.scope("ChannelGate", |d| {
                    d.linear(&channel.fc1, "mlp.1");
                    d.linear(&channel.fc2, "mlp.3");
                    if let Some(norm) = &channel.norm {
                        d.layer_norm(norm, "norm");
                    }
                    d.scope("uniact", |d| channel.gate.declare(d));
                });
            }
            if let Some(spatial) = &self.spatial {
                d.scope("SpatialGate", |d| {
                    d.conv(&spatial.conv, "spatial.conv");
                    d.scope("spatial.bn", |d| spatial.bn.declare(d));
                    d.scope("uniact", |d| spatial.gate.declare(d));
                });
            }
        });
    }
}

impl<B: FusedBackend> Attention<B> {
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.forward_traced(x, &mut |_| {})
    }

    /// Like `forward`, handing every attention map (the gate's output) to `trace`, in order —
    /// the analyses of attention entropy and variance (paper Figures 2 and 5) read them.
    pub fn forward_traced(&self, x: Tensor<B, 4>, trace: &mut dyn FnMut(Tensor<B, 4>)) -> Tensor<B, 4> {
        let x = match &self.se {
            Some(se) => {
                let w = se.weights(x.clone());
                apply(x, w, trace)
            }
            None => x,
        };
        let x = match &self.channel {
            Some(gate) => {
                let w = gate.weights(x.clone());
                apply(x, w, trace)
            }
            None => x,
        };
        match &self.spatial {
            Some(gate) => {
                let w = gate.weights(x.clone());
                apply(x, w, trace)
            }
            None => x,
        }
    }

    pub fn gates(&self) -> impl Iterator<Item = &GateAct<B>> {
        let se = self.se.iter().map(|m| &m.gate);
        let channel = self.channel.iter().map(|m| &m.gate);
        let spatial = self.spatial.iter().map(|m| &m.gate);
        se.chain(channel).chain(spatial)
    }
}

fn apply<B: Backend>(
    x: Tensor<B, 4>,
    weights: Tensor<B, 4>,
    trace: &mut dyn FnMut(Tensor<B, 4>),
) -> Tensor<B, 4> {
    trace(weights.clone());
    x * weights
}

fn hidden(channels: usize, reduction: usize) -> usize {
    (channels / reduction.max(1)).max(1)
}

/// Global pooled vector → [LayerNorm] → Linear → ReLU → Linear → [Dropout] → gate.
#[derive(Module, Debug)]
pub struct SqueezeExcite<B: Backend> {
    norm: Option<LayerNorm<B>>,
    fc1: Linear<B>,
    fc2: Linear<B>,
    dropout: Dropout,
    gate: GateAct<B>,
}

impl<B: FusedBackend> SqueezeExcite<B> {
    fn new(config: &AttentionConfig, device: &B::Device) -> Self {
        let (channels, init) = (config.channels, config.mlp_init);
        let hidden = hidden(channels, config.reduction);
        Self {
            norm: config
                .layernorm
                .then(|| LayerNormConfig::new(channels).init(device)),
            fc1: linear(init, channels, hidden, false, device),
            fc2: linear(init, hidden, channels, false, device),
            dropout: Dropout { prob: config.dropout },
            gate: config.gate.init(device),
        }
    }

    fn weights(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [n, c, _, _] = x.dims();
        let pooled = x.mean_dim(3).mean_dim(2).reshape([n, c]);
        let pooled = match &self.norm {
            Some(norm) => norm.forward(pooled),
            None => pooled,
        };
        let logits = self
            .dropout
            .forward(self.fc2.forward(relu(self.fc1.forward(pooled))));
        self.gate.forward(logits.reshape([n, c, 1, 1]))
    }
}

/// CBAM's channel gate: the average- and max-pooled vectors share one [LayerNorm →] MLP (with
/// biases, as the reference) and their logits are summed before the gate.
#[derive(Module, Debug)]
pub struct ChannelGate<B: Backend> {
    norm: Option<LayerNorm<B>>,
    fc1: Linear<B>,
    fc2: Linear<B>,
    dropout: Dropout,
    gate: GateAct<B>,
}

impl<B: FusedBackend> ChannelGate<B> {
    fn new(config: &AttentionConfig, device: &B::Device) -> Self {
        let (channels, init) = (config.channels, config.mlp_init);
        let hidden = hidden(channels, config.reduction);
        Self {
            norm: config
                .layernorm
                .then(|| LayerNormConfig::new(channels).init(device)),
            fc1: linear(init, channels, hidden, true, device),
            fc2: linear(init, hidden, channels, true, device),
            dropout: Dropout { prob: config.dropout },
            gate: config.gate.init(device),
        }
    }

    fn mlp(&self, pooled: Tensor<B, 2>) -> Tensor<B, 2> {
        let pooled = match &self.norm {
            Some(norm) => norm.forward(pooled),
            None => pooled,
        };
        self.dropout
            .forward(self.fc2.forward(relu(self.fc1.forward(pooled))))
    }

    fn weights(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [n, c, h, w] = x.dims();
        let flat = x.reshape([n, c, h * w]);
        let avg = flat.clone().mean_dim(2).reshape([n, c]);
        let max = flat.max_dim(2).reshape([n, c]);
        let logits = self.mlp(avg) + self.mlp(max);
        self.gate.forward(logits.reshape([n, c, 1, 1]))
    }
}

/// CBAM's spatial gate: [max, mean] over channels → 7×7 conv → BatchNorm → gate.
#[derive(Module, Debug)]
pub struct SpatialGate<B: Backend> {
    conv: Conv2d<B>,
    bn: BatchNorm<B>,
    gate: GateAct<B>,
}

impl<B: FusedBackend> SpatialGate<B> {
    fn new(config: &AttentionConfig, device: &B::Device) -> Self {
        Self {
            conv: conv(2, 1, 7, 1, 3, config.conv_init, device),
            // The reference builds this BatchNorm with momentum 0.01.
            bn: BatchNormConfig::new(1).with_momentum(0.01).init(device),
            gate: config.spatial_gate.init(device),
        }
    }

    fn weights(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let compressed = Tensor::cat(vec![x.clone().max_dim(1), x.mean_dim(1)], 1);
        self.gate.forward(self.bn.forward(conv2d(&self.conv, compressed)))
    }
}

/// Inverted dropout drawing its masks from [`rng`], active only while autodiff is on.
#[derive(Module, Debug, Clone)]
pub struct Dropout {
    prob: f64,
}

impl Dropout {
    fn forward<B: Backend>(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        if self.prob == 0.0 || !B::ad_enabled(&x.device()) {
            return x;
        }
        let dims = x.dims();
        let mask = rng::dropout_mask(dims[0] * dims[1], self.prob);
        let mask = Tensor::<B, 2>::from_data(burn::tensor::TensorData::new(mask, dims), &x.device());
        x * mask
    }
}
