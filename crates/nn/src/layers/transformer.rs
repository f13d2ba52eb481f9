//! The pre-norm transformer block of timm's Vision and Swin Transformers: multi-head
//! self-attention and an MLP, each behind a LayerNorm and a residual connection. The MLP's
//! activation is any backbone [`Act`] (GELU in timm; AGLU in the paper's Table 10). Tokens are
//! `[N, T, D]` throughout.

use burn::module::Module;
use burn::nn::{LayerNorm, LayerNormConfig, Linear};
use burn::tensor::activation::softmax;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use crate::init::{linear, LinearInit};
use crate::layers::{Act, ActConfig};
use crate::ops::FusedBackend;
use crate::params::{Declarations, Declare};

/// How to build a [`TransformerBlock`].
#[derive(Debug, Clone, Copy)]
pub struct TransformerBlockConfig {
    /// Token width D.
    pub width: usize,
    /// Attention heads; D must be a multiple.
    pub heads: usize,
    /// The MLP's hidden width (4·D in ViT).
    pub mlp_hidden: usize,
    /// The MLP's activation, over `mlp_hidden` channels.
    pub act: ActConfig,
    /// LayerNorm ε (timm's ViT: 1e-6; Swin: PyTorch's 1e-5).
    pub norm_eps: f64,
}

impl TransformerBlockConfig {
    pub fn init<B: Backend>(&self, device: &B::Device) -> TransformerBlock<B> {
        let (width, hidden) = (self.width, self.mlp_hidden);
        let norm = || {
            LayerNormConfig::new(width)
                .with_epsilon(self.norm_eps)
                .init(device)
        };
        let dense = |inputs, outputs| linear(LinearInit::SmallNormal, inputs, outputs, true, device);
        TransformerBlock {
            norm1: norm(),
            attn: SelfAttention {
                qkv: dense(width, 3 * width),
                proj: dense(width, width),
                heads: self.heads,
            },
            norm2: norm(),
            mlp: Mlp {
                fc1: dense(width, hidden),
                act: self.act.init(device),
                fc2: dense(hidden, width),
            },
        }
    }
}

/// `x + attn(norm1(x))`, then `x + mlp(norm2(x))`: `[N, T, D]` → `[N, T, D]`.
#[derive(Module, Debug)]
pub struct TransformerBlock<B: Backend> {
    norm1: LayerNorm<B>,
    attn: SelfAttention<B>,
    norm2: LayerNorm<B>,
    mlp: Mlp<B>,
}

impl<B: FusedBackend> TransformerBlock<B> {
    /// Every token attends to every other.
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        self.forward_with(x, |attn, tokens| attn.forward(tokens, None))
    }

    /// The block with its attention applied through `attend`, which is given the attention
    /// module and the normalised tokens and returns them mixed, in their order (Swin attends
    /// within shifted windows).
    pub fn forward_with<F>(&self, x: Tensor<B, 3>, attend: F) -> Tensor<B, 3>
    where
        F: FnOnce(&SelfAttention<B>, Tensor<B, 3>) -> Tensor<B, 3>,
    {
        let x = x.clone() + attend(&self.attn, self.norm1.forward(x));
        x.clone() + self.mlp.forward(self.norm2.forward(x))
    }

    pub fn act(&self) -> &Act<B> {
        &self.mlp.act
    }
}

impl<B: Backend> Declare for TransformerBlock<B> {
    fn declare(&self, d: &mut Declarations) {
        d.layer_norm(&self.norm1, "norm1");
        d.scope("attn", |d| {
            d.linear(&self.attn.qkv, "qkv");
            d.linear(&self.attn.proj, "proj");
        });
        d.layer_norm(&self.norm2, "norm2");
        d.scope("mlp", |d| {
            d.linear(&self.mlp.fc1, "fc1");
            d.scope("act", |d| self.mlp.act.declare(d));
            d.linear(&self.mlp.fc2, "fc2");
        });
    }
}

/// Multi-head scaled dot-product self-attention with one fused query/key/value projection
/// (timm's `Attention`, qkv laid out `[q | k | v]`, each head-major).
#[derive(Module, Debug)]
pub struct SelfAttention<B: Backend> {
    qkv: Linear<B>,
    proj: Linear<B>,
    #[module(skip)]
    heads: usize,
}

impl<B: Backend> SelfAttention<B> {
    /// `[N, T, D]` → `[N, T, D]`. `bias`, `[G, heads, T, T]`, is added to the attention scores
    /// before the softmax, the same for every G-th sequence (N a multiple of G): Swin's relative
    /// position bias and shifted-window mask, G windows per image.
    pub fn forward(&self, x: Tensor<B, 3>, bias: Option<Tensor<B, 4>>) -> Tensor<B, 3> {
        let [n, t, width] = x.dims();
        let head = width / self.heads;
        // [N, T, 3·D] → [3, N, heads, T, head]
        let qkv = self
            .qkv
            .forward(x)
            .reshape([n, t, 3, self.heads, head])
            .permute([2, 0, 3, 1, 4]);
        let [q, k, v] = [0, 1, 2].map(|i| qkv.clone().narrow(0, i, 1).reshape([n, self.heads, t, head]));
        let scores = q.matmul(k.swap_dims(2, 3)) * (head as f64).powf(-0.5);
        let scores = match bias {
            Some(bias) => {
                let groups = bias.dims()[0];
                let grouped = scores.reshape([n / groups, groups, self.heads, t, t]);
                (grouped + bias.unsqueeze::<5>()).reshape([n, self.heads, t, t])
            }
            None => scores,
        };
        let mixed = softmax(scores, 3).matmul(v);
        self.proj.forward(mixed.swap_dims(1, 2).reshape([n, t, width]))
    }
}

/// `fc2(act(fc1(x)))`: `[N, T, D]` → `[N, T, D]`.
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    fc1: Linear<B>,
    act: Act<B>,
    fc2: Linear<B>,
}

impl<B: FusedBackend> Mlp<B> {
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let hidden = self.fc1.forward(x);
        let [n, t, c] = hidden.dims();
        // Activations work on [N, C, H, W] with per-channel parameters on C: each token is an
        // image of one pixel, so per-channel AGLU is per hidden feature.
        let hidden = self
            .act
            .forward(hidden.reshape([n * t, c, 1, 1]))
            .reshape([n, t, c]);
        self.fc2.forward(hidden)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::Activation;
    use crate::layers::AdaptiveConfig;
    use crate::ops::{AdaptiveKind, LambdaGrad};
    use burn::backend::Flex;
    use burn::tensor::{Distribution, Tolerance};

    fn block(heads: usize) -> TransformerBlock<Flex> {
        crate::rng::seed(1);
        let aglu = AdaptiveConfig {
            kind: AdaptiveKind::Aglu,
            size: 1,
            kappa_init: [0.8, 1.2],
            lambda_init: [0.0, 1.0],
            lambda_grad: LambdaGrad::Exact,
        };
        TransformerBlockConfig {
            width: 12,
            heads,
            mlp_hidden: 48,
            act: ActConfig {
                kind: Activation::Gelu,
                aglu,
            },
            norm_eps: 1e-6,
        }
        .init(&Default::default())
    }

    #[test]
    fn keeps_the_token_shape() {
        let x = Tensor::<Flex, 3>::random([2, 5, 12], Distribution::Default, &Default::default());
        assert_eq!(block(3).forward(x).dims(), [2, 5, 12]);
    }

    /// Attention mixes tokens only through their contents: permuting the tokens permutes the
    /// output the same way (no position information inside a block).
    #[test]
    fn attention_is_equivariant_to_token_order() {
        let block = block(4);
        let x = Tensor::<Flex, 3>::random([1, 3, 12], Distribution::Default, &Default::default());
        let swapped = Tensor::cat(vec![x.clone().narrow(1, 2, 1), x.clone().narrow(1, 0, 2)], 1);
        let y = block.forward(x);
        let y_swapped = block.forward(swapped);
        let expected = Tensor::cat(vec![y.clone().narrow(1, 2, 1), y.narrow(1, 0, 2)], 1);
        y_swapped
            .into_data()
            .assert_approx_eq::<f32>(&expected.into_data(), Tolerance::absolute(1e-5));
    }

    #[test]
    fn declares_timm_keys() {
        let keys: Vec<String> = block(3).param_specs().into_iter().map(|s| s.key).collect();
        assert_eq!(
            keys,
            [
                "norm1.weight",
                "norm1.bias",
                "attn.qkv.weight",
                "attn.qkv.bias",
                "attn.proj.weight",
                "attn.proj.bias",
                "norm2.weight",
                "norm2.bias",
                "mlp.fc1.weight",
                "mlp.fc1.bias",
                "mlp.fc2.weight",
                "mlp.fc2.bias",
            ]
        );
    }
}
