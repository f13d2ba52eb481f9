//! The pre-norm transformer block of timm's Vision and Swin Transformers and of GPT-2: multi-head
//! self-attention and an MLP, each behind a LayerNorm and a residual connection. The MLP's
//! activation is any backbone [`Act`] (GELU in timm, GELU-tanh in GPT-2; AGLU in the paper's
//! Tables 10 and 15). Tokens are `[N, T, D]` throughout.

use burn::module::Module;
use burn::nn::{LayerNorm, LayerNormConfig, Linear};
use burn::tensor::activation::softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

use crate::init::{linear, param, LinearInit};
use crate::layers::{Act, ActConfig};
use crate::ops::FusedBackend;
use crate::params::{Declarations, Declare, Layout, Place};
use crate::rng;

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
    /// LayerNorm ε (timm's ViT: 1e-6; Swin and GPT-2: PyTorch's 1e-5).
    pub norm_eps: f64,
    /// The initialisation of the linear layers.
    pub init: BlockInit,
    pub keys: BlockKeys,
    /// Stochastic depth: the probability that training skips this block's residual branches
    /// for a sample (0: never).
    pub drop_path: f64,
}

/// How a block's linear layers start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BlockInit {
    /// timm: every weight N(0, 0.02²), zero biases.
    Timm,
    /// GPT-2: the same, but the two projections back onto the residual stream (attention's
    /// and the MLP's output layers) N(0, (0.02 / √(2·depth))²), so that the residual stream's
    /// variance does not grow with depth.
    Gpt2 { depth: usize },
}

/// Whose state-dict names a block's parameters take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKeys {
    /// `norm1`, `attn.qkv`, `attn.proj`, `norm2`, `mlp.fc1`, `mlp.fc2` (timm).
    Timm,
    /// `ln_1`, `attn.c_attn`, `attn.c_proj`, `ln_2`, `mlp.c_fc`, `mlp.c_proj` (Hugging Face's
    /// GPT-2, whose `Conv1D` layers store weights `[in, out]`, as Burn does).
    Gpt2,
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
        let residual = |inputs, outputs| match self.init {
            BlockInit::Timm => dense(inputs, outputs),
            BlockInit::Gpt2 { depth } => {
                let mut layer = dense(inputs, outputs);
                let std = 0.02 / (2.0 * depth as f64).sqrt();
                layer.weight = param(rng::normal(inputs * outputs, std), [inputs, outputs], device);
                layer
            }
        };
        // Creation order is timm's and GPT-2's module order, so a seed draws the same weights.
        let norm1 = norm();
        let qkv = dense(width, 3 * width);
        let proj = residual(width, width);
        let norm2 = norm();
        let fc1 = dense(width, hidden);
        let act = self.act.init(device);
        let fc2 = residual(hidden, width);
        TransformerBlock {
            norm1,
            attn: SelfAttention {
                qkv,
                proj,
                heads: self.heads,
            },
            norm2,
            mlp: Mlp { fc1, act, fc2 },
            drop_path: DropPath { prob: self.drop_path },
            keys: self.keys,
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
    drop_path: DropPath,
    #[module(skip)]
    keys: BlockKeys,
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
        let branch = attend(&self.attn, self.norm1.forward(x.clone()));
        let x = x + self.drop_path.forward(branch);
        let branch = self.mlp.forward(self.norm2.forward(x.clone()));
        x + self.drop_path.forward(branch)
    }

    pub fn act(&self) -> &Act<B> {
        &self.mlp.act
    }
}

impl<B: Backend> Declare for TransformerBlock<B> {
    fn declare(&self, d: &mut Declarations) {
        let (names, layout) = match self.keys {
            BlockKeys::Timm => (
                ["norm1", "qkv", "proj", "norm2", "fc1", "fc2"],
                Layout::Transposed,
            ),
            BlockKeys::Gpt2 => (
                ["ln_1", "c_attn", "c_proj", "ln_2", "c_fc", "c_proj"],
                Layout::Same,
            ),
        };
        let [norm1, qkv, proj, norm2, fc1, fc2] = names;
        d.layer_norm(&self.norm1, norm1);
        d.scope("attn", |d| {
            d.linear_as(&self.attn.qkv, qkv, layout);
            d.linear_as(&self.attn.proj, proj, layout);
        });
        d.layer_norm(&self.norm2, norm2);
        d.scope("mlp", |d| {
            d.linear_as(&self.mlp.fc1, fc1, layout);
            d.scope("act", |d| self.mlp.act.declare(d));
            d.linear_as(&self.mlp.fc2, fc2, layout);
        });
    }
}

/// Stochastic depth (Huang et al., 2016) on a residual branch `[N, T, D]`: in training each
/// sample's branch is dropped with probability `prob` and otherwise scaled by 1/(1 − prob), as
/// timm's `DropPath` and torchvision's `StochasticDepth(mode="row")`; the identity in
/// evaluation. Masks come from [`rng`], so a seeded run draws the same ones.
#[derive(Module, Debug, Clone)]
pub struct DropPath {
    prob: f64,
}

impl DropPath {
    fn forward<B: Backend>(&self, branch: Tensor<B, 3>) -> Tensor<B, 3> {
        if self.prob == 0.0 || !B::ad_enabled(&branch.device()) {
            return branch;
        }
        let n = branch.dims()[0];
        let mask = TensorData::new(rng::dropout_mask(n, self.prob), [n, 1, 1]);
        let mask = Tensor::from_data(mask, &branch.device());
        branch * mask
    }
}

/// A stack of blocks under `prefix.<i>`, each block its own stage (fine-tuning's "last stage" is
/// the last block), and the final LayerNorm `norm` (key `norm_key`) in the last stage.
pub fn declare_stack<B: Backend>(
    d: &mut Declarations,
    blocks: &[TransformerBlock<B>],
    prefix: &str,
    (norm_key, norm): (&str, &LayerNorm<B>),
) {
    for (i, block) in blocks.iter().enumerate() {
        d.at(Place::Stage(i), |d| {
            d.scope(&format!("{prefix}.{i}"), |d| block.declare(d))
        });
    }
    let last = blocks.len().saturating_sub(1);
    d.at(Place::Stage(last), |d| d.layer_norm(norm, norm_key));
}

/// The MLP activations of a stack of blocks, named `prefix.<i>.mlp.act`.
pub fn stack_activations<'a, B: Backend>(
    blocks: &'a [TransformerBlock<B>],
    prefix: &str,
) -> Vec<(String, &'a Act<B>)> {
    let blocks = blocks.iter().enumerate();
    blocks
        .map(|(i, b)| (format!("{prefix}.{i}.mlp.act"), &b.mlp.act))
        .collect()
}

/// The attention-score bias of causal (autoregressive) attention over `t` tokens, `[1, 1, t,
/// t]`: 0 where a token may look (itself and earlier), −∞ where it may not.
pub fn causal_mask<B: Backend>(t: usize, device: &B::Device) -> Tensor<B, 4> {
    let values = (0..t * t)
        .map(|i| if i % t > i / t { f32::NEG_INFINITY } else { 0.0 })
        .collect::<Vec<_>>();
    Tensor::from_data(TensorData::new(values, [1, 1, t, t]), device)
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
        let qkv = tokenwise(&self.qkv, x)
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
        tokenwise(&self.proj, mixed.swap_dims(1, 2).reshape([n, t, width]))
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
        let hidden = activate(&self.act, tokenwise(&self.fc1, x));
        tokenwise(&self.fc2, hidden)
    }
}

/// `act` on tokens `[N, T, C]`, per-channel parameters on C. Activations work on
/// `[N, C, H, W]`, parameters on C, and the fused kernels split their work by (N, C) plane: each
/// token is one plane of its C features when the parameters are shared, and each feature one
/// channel over all tokens when they are per feature (one pixel per plane would make N·T·C
/// one-element tasks, which ran ViT-B/16's AGLU step at half speed).
fn activate<B: FusedBackend>(act: &Act<B>, hidden: Tensor<B, 3>) -> Tensor<B, 3> {
    let [n, t, c] = hidden.dims();
    if act.per_channel() {
        let features_first = hidden
            .reshape([n * t, c])
            .swap_dims(0, 1)
            .reshape([1, c, n * t, 1]);
        let out = act.forward(features_first);
        out.reshape([c, n * t]).swap_dims(0, 1).reshape([n, t, c])
    } else {
        act.forward(hidden.reshape([n * t, 1, c, 1])).reshape([n, t, c])
    }
}

/// A linear layer applied to every token of `[N, T, D]`, as one `[N·T, D]` matrix product:
/// Burn's linear on a 3-D input multiplies each sequence separately, and its weight gradient
/// is then N per-sequence products summed (N copies of the weight's size); a ViT-B/16 training
/// step ran 8% slower that way.
pub fn tokenwise<B: Backend>(layer: &Linear<B>, x: Tensor<B, 3>) -> Tensor<B, 3> {
    let [n, t, d] = x.dims();
    let y = layer.forward(x.reshape([n * t, d]));
    let out = y.dims()[1];
    y.reshape([n, t, out])
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
            init: BlockInit::Timm,
            keys: BlockKeys::Timm,
            drop_path: 0.0,
        }
        .init(&Default::default())
    }

    /// In training a sample's branch is all dropped or all kept and scaled, about half each at
    /// 0.5, so the expectation is kept; in evaluation it passes unchanged.
    #[test]
    fn drop_path_drops_whole_samples_in_training_only() {
        type Train = burn::backend::Autodiff<Flex>;
        crate::rng::seed(2);
        let drop = DropPath { prob: 0.5 };
        let ones = |n| Tensor::<Train, 3>::ones([n, 2, 3], &Default::default());
        let values = drop.forward(ones(200)).into_data().to_vec::<f32>().unwrap();
        let samples: Vec<f32> = values
            .chunks(6)
            .map(|sample| {
                assert!(sample.iter().all(|&v| v == sample[0]), "{sample:?}");
                sample[0]
            })
            .collect();
        assert!(samples.iter().all(|&v| v == 0.0 || v == 2.0));
        let kept = samples.iter().filter(|&&v| v == 2.0).count();
        assert!((70..=130).contains(&kept), "{kept} of 200 kept");
        let x = Tensor::<Flex, 3>::ones([4, 2, 3], &Default::default());
        x.clone()
            .into_data()
            .assert_eq(&drop.forward(x).into_data(), true);
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

    /// Per-feature AGLU parameters meet their own feature, whichever layout the kernel is given.
    #[test]
    fn per_feature_parameters_apply_to_their_feature() {
        crate::rng::seed(5);
        let aglu = AdaptiveConfig {
            kind: AdaptiveKind::Aglu,
            size: 6,
            kappa_init: [0.5, 1.5],
            lambda_init: [0.2, 1.0],
            lambda_grad: LambdaGrad::Exact,
        };
        let act: Act<Flex> = ActConfig {
            kind: Activation::Aglu,
            aglu,
        }
        .init(&Default::default());
        assert!(act.per_channel());
        let x = Tensor::<Flex, 3>::random([2, 3, 6], Distribution::Default, &Default::default());
        // One pixel per (token, feature): the plain [N, C, H, W] meaning of per-channel.
        let expected = act.forward(x.clone().reshape([6, 6, 1, 1])).reshape([2, 3, 6]);
        activate(&act, x)
            .into_data()
            .assert_approx_eq::<f32>(&expected.into_data(), Tolerance::absolute(1e-6));
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
