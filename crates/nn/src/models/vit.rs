//! The Vision Transformer (Dosovitskiy et al., 2021) in timm's `VisionTransformer` layout and
//! state-dict keys: patch embedding, class token, learned position embedding, pre-norm blocks,
//! a final LayerNorm and a classifier on the class token. `model.activation` is the MLPs'
//! activation (GELU in timm, AGLU in the paper's Table 10).

use burn::module::{Module, Param};
use burn::nn::conv::Conv2d;
use burn::nn::{LayerNorm, LayerNormConfig};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::ModelConfig;
use crate::init::{conv_with_bias, param};
use crate::layers::transformer::{declare_stack, stack_activations};
use crate::layers::{Act, BlockInit, BlockKeys, Head, TransformerBlock, TransformerBlockConfig};
use crate::ops::conv::conv2d;
use crate::ops::FusedBackend;
use crate::params::{Declarations, Declare, Layout, Place, Role};
use crate::rng;

/// The geometry an `arch` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VitLayout {
    /// Side of the square patches, in pixels.
    pub patch: usize,
    /// Token width D.
    pub width: usize,
    /// Number of transformer blocks.
    pub depth: usize,
    pub heads: usize,
}

/// timm's ViT LayerNorm ε.
const NORM_EPS: f64 = 1e-6;
/// The MLP's hidden width over the token width (ViT-B: 3072 / 768).
const MLP_RATIO: usize = 4;

#[derive(Module, Debug)]
pub struct VisionTransformer<B: Backend> {
    patch_embed: Conv2d<B>,
    /// `[1, 1, D]`.
    cls_token: Param<Tensor<B, 3>>,
    /// `[1, 1 + patches, D]`: the class token's position first.
    pos_embed: Param<Tensor<B, 3>>,
    blocks: Vec<TransformerBlock<B>>,
    norm: LayerNorm<B>,
    head: Head<B>,
}

impl<B: FusedBackend> VisionTransformer<B> {
    /// A ViT for square images of side `image_size` (a multiple of the patch side).
    pub fn new(model: &ModelConfig, layout: VitLayout, image_size: usize, device: &B::Device) -> Self {
        let width = layout.width;
        let tokens = 1 + (image_size / layout.patch).pow(2);
        let block = TransformerBlockConfig {
            width,
            heads: layout.heads,
            mlp_hidden: MLP_RATIO * width,
            act: model.act(MLP_RATIO * width),
            norm_eps: NORM_EPS,
            init: BlockInit::Timm,
            keys: BlockKeys::Timm,
            drop_path: 0.0,
        };
        let depth = layout.depth;
        // timm's initialisation: class token N(0, 1e-6²), position embedding N(0, 0.02²).
        Self {
            patch_embed: conv_with_bias(3, width, layout.patch, layout.patch, device),
            cls_token: param(rng::normal(width, 1e-6), [1, 1, width], device),
            pos_embed: param(rng::normal(tokens * width, 0.02), [1, tokens, width], device),
            blocks: model.block_stack(block, depth, device),
            norm: LayerNormConfig::new(width).with_epsilon(NORM_EPS).init(device),
            head: model.head(width).init(device),
        }
    }

    /// The class token after the final LayerNorm, `[N, D]`, for images `[N, 3, H, W]` of the
    /// side the model was built for.
    pub fn features(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        let patches = conv2d(&self.patch_embed, x);
        let [n, width, rows, cols] = patches.dims();
        let patches = patches.reshape([n, width, rows * cols]).swap_dims(1, 2);
        let cls = self.cls_token.val().expand([n, 1, width]);
        let mut x = Tensor::cat(vec![cls, patches], 1) + self.pos_embed.val();
        for block in &self.blocks {
            x = block.forward(x);
        }
        self.norm.forward(x).narrow(1, 0, 1).reshape([n, width])
    }

    pub fn head(&self) -> &Head<B> {
        &self.head
    }

    pub fn activations(&self) -> Vec<(String, &Act<B>)> {
        stack_activations(&self.blocks, "blocks")
    }
}

impl<B: Backend> Declare for VisionTransformer<B> {
    fn declare(&self, d: &mut Declarations) {
        d.scope("patch_embed", |d| d.conv(&self.patch_embed, "proj"));
        d.param(&self.cls_token, "cls_token", Role::Embedding, Layout::Same);
        d.param(&self.pos_embed, "pos_embed", Role::Embedding, Layout::Same);
        declare_stack(d, &self.blocks, "blocks", ("norm", &self.norm));
        d.at(Place::Head, |d| d.scope("head", |d| self.head.declare(d)));
    }
}
