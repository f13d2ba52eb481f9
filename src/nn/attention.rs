//! Attention blocks placed after the last BatchNorm of a residual block, before the addition:
//! squeeze-and-excitation (SE, and APA* when it has LayerNorm, dropout and an APA gate), CBAM
//! (channel then spatial gate) and spatial-only attention.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{LayerNorm, LayerNormConfig, Linear, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::activation::GateAct;
use super::conv_op::conv2d;
use super::fused::FusedBackend;
use super::init::linear;
use super::norm::{BatchNorm, BatchNormConfig};
use super::rng;
use crate::config::model::{Attention as AttentionKind, ModelConfig};

/// The attention block chosen by `model.attention` (`none` holds nothing).
#[derive(Module, Debug)]
pub struct Attention<B: Backend> {
    se: Option<SqueezeExcite<B>>,
    channel: Option<ChannelGate<B>>,
    spatial: Option<SpatialGate<B>>,
}

impl<B: FusedBackend> Attention<B> {
    pub fn new(model: &ModelConfig, channels: usize, device: &B::Device) -> Self {
        let kind = model.attention;
        Self {
            se: (kind == AttentionKind::Se).then(|| SqueezeExcite::new(model, channels, device)),
            channel: (kind == AttentionKind::Cbam).then(|| ChannelGate::new(model, channels, device)),
            spatial: matches!(kind, AttentionKind::Cbam | AttentionKind::Spatial)
                .then(|| SpatialGate::new(model, device)),
        }
    }

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
    fn new(model: &ModelConfig, channels: usize, device: &B::Device) -> Self {
        let hidden = hidden(channels, model.reduction);
        Self {
            norm: model
                .attention_layernorm
                .then(|| LayerNormConfig::new(channels).init(device)),
            fc1: linear(model, channels, hidden, false, device),
            fc2: linear(model, hidden, channels, false, device),
            dropout: Dropout {
                prob: model.attention_dropout,
            },
            gate: GateAct::new(model, channels, device),
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
    fn new(model: &ModelConfig, channels: usize, device: &B::Device) -> Self {
        let hidden = hidden(channels, model.reduction);
        Self {
            norm: model
                .attention_layernorm
                .then(|| LayerNormConfig::new(channels).init(device)),
            fc1: linear(model, channels, hidden, true, device),
            fc2: linear(model, hidden, channels, true, device),
            dropout: Dropout {
                prob: model.attention_dropout,
            },
            gate: GateAct::new(model, channels, device),
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
    fn new(model: &ModelConfig, device: &B::Device) -> Self {
        Self {
            conv: Conv2dConfig::new([2, 1], [7, 7])
                .with_padding(PaddingConfig2d::Explicit(3, 3, 3, 3))
                .with_bias(false)
                .init(device),
            // The reference builds this BatchNorm with momentum 0.01.
            bn: BatchNormConfig::new(1).with_momentum(0.01).init(device),
            gate: GateAct::new(model, 1, device),
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
