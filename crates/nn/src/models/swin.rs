//! The Swin Transformer (Liu et al., 2021) in timm's `SwinTransformer` layout and state-dict
//! keys: a normalised patch embedding, stages of pre-norm blocks that attend within windows
//! (every second block's windows shifted by half a window, with the mask that keeps wrapped-around
//! tokens apart, and a learned relative position bias), patch merging between stages, a final
//! LayerNorm, average pooling and a classifier. `model.activation` is the MLPs' activation (GELU
//! in timm, AGLU in the paper's Table 10).

use burn::module::{Module, Param};
use burn::nn::conv::Conv2d;
use burn::nn::{LayerNorm, LayerNormConfig, Linear};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use super::ModelConfig;
use crate::init::{conv_with_bias, linear, param, LinearInit};
use crate::layers::transformer::{tokenwise, SelfAttention};
use crate::layers::{Act, BlockInit, BlockKeys, Head, TransformerBlock, TransformerBlockConfig};
use crate::ops::conv::conv2d;
use crate::ops::FusedBackend;
use crate::params::{Declarations, Declare, Layout, Place, Role};
use crate::rng;

/// The geometry an `arch` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwinLayout {
    /// Side of the square patches, in pixels.
    pub patch: usize,
    /// Token width of the first stage; each later stage doubles it.
    pub width: usize,
    /// Blocks per stage.
    pub depths: &'static [usize],
    /// Attention heads per stage.
    pub heads: &'static [usize],
    /// Side of the square attention windows.
    pub window: usize,
}

impl SwinLayout {
    /// Each stage's token-grid side and window for images of side `image_size`, or why that side
    /// does not fit: every stage's grid must be whole and tiled by whole windows. As timm, a
    /// stage whose grid is no larger than the window attends over the whole grid, unshifted.
    pub fn stages(&self, image_size: usize) -> Result<Vec<(usize, usize)>, String> {
        let halvings = self.depths.len().saturating_sub(1);
        let unit = self.patch << halvings;
        if image_size == 0 || !image_size.is_multiple_of(unit) {
            return Err(format!(
                "must be a positive multiple of {unit} (the {}-pixel patch, halved {halvings} times by patch merging), got {image_size}",
                self.patch
            ));
        }
        let grids = (0..self.depths.len()).map(|i| (image_size / self.patch) >> i);
        grids
            .map(|grid| {
                let window = self.window.min(grid);
                if grid.is_multiple_of(window) {
                    Ok((grid, window))
                } else {
                    Err(format!(
                        "gives a {grid}×{grid} token grid, which {window}×{window} windows do not tile, got {image_size}"
                    ))
                }
            })
            .collect()
    }

    fn stage_width(&self, stage: usize) -> usize {
        self.width << stage
    }
}

/// PyTorch's LayerNorm ε, which timm's Swin keeps.
const NORM_EPS: f64 = 1e-5;
/// The MLP's hidden width over the token width.
const MLP_RATIO: usize = 4;

#[derive(Module, Debug)]
pub struct SwinTransformer<B: Backend> {
    patch_embed: PatchEmbed<B>,
    stages: Vec<SwinStage<B>>,
    norm: LayerNorm<B>,
    head: Head<B>,
}

impl<B: FusedBackend> SwinTransformer<B> {
    /// A Swin Transformer for square images of side `image_size`, which
    /// [`SwinLayout::stages`] accepts (`ModelConfig::check` says so before this is called).
    pub fn new(model: &ModelConfig, layout: SwinLayout, image_size: usize, device: &B::Device) -> Self {
        let stages = layout.stages(image_size).expect("checked by ModelConfig::check");
        let norm = |width| LayerNormConfig::new(width).with_epsilon(NORM_EPS).init(device);
        let last_width = layout.stage_width(stages.len() - 1);
        // Stochastic depth rises over the blocks of all stages together.
        let total: usize = layout.depths.iter().sum();
        Self {
            patch_embed: PatchEmbed {
                proj: conv_with_bias(3, layout.width, layout.patch, layout.patch, device),
                norm: norm(layout.width),
            },
            stages: stages
                .iter()
                .enumerate()
                .map(|(i, &(grid, window))| {
                    let width = layout.stage_width(i);
                    let block = TransformerBlockConfig {
                        width,
                        heads: layout.heads[i],
                        mlp_hidden: MLP_RATIO * width,
                        act: model.act(MLP_RATIO * width),
                        norm_eps: NORM_EPS,
                        init: BlockInit::Timm,
                        keys: BlockKeys::Timm,
                        drop_path: 0.0,
                    };
                    SwinStage {
                        downsample: (i > 0).then(|| PatchMerging {
                            norm: norm(2 * width),
                            reduction: linear(LinearInit::SmallNormal, 2 * width, width, false, device),
                        }),
                        blocks: (0..layout.depths[i])
                            .map(|j| {
                                // Every second block shifts, where the grid has more than one window.
                                let shift = if j % 2 == 1 && grid > window {
                                    window / 2
                                } else {
                                    0
                                };
                                let index = layout.depths[..i].iter().sum::<usize>() + j;
                                let block = TransformerBlockConfig {
                                    drop_path: model.drop_path_at(index, total),
                                    ..block
                                };
                                SwinBlock::new(block, Windows::new(grid, window, shift), device)
                            })
                            .collect(),
                    }
                })
                .collect(),
            norm: norm(last_width),
            head: model.head(last_width).init(device),
        }
    }

    /// The average of the final normalised tokens, `[N, D]`, for images `[N, 3, H, W]` of the
    /// side the model was built for.
    pub fn features(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        let mut x = self.patch_embed.forward(x);
        for stage in &self.stages {
            x = stage.forward(x);
        }
        let [n, _, width] = x.dims();
        self.norm.forward(x).mean_dim(1).reshape([n, width])
    }

    pub fn head(&self) -> &Head<B> {
        &self.head
    }

    pub fn activations(&self) -> Vec<(String, &Act<B>)> {
        let stages = self.stages.iter().enumerate();
        stages
            .flat_map(|(i, stage)| {
                let blocks = stage.blocks.iter().enumerate();
                blocks.map(move |(j, b)| (format!("layers.{i}.blocks.{j}.mlp.act"), b.block.act()))
            })
            .collect()
    }
}

impl<B: Backend> Declare for SwinTransformer<B> {
    fn declare(&self, d: &mut Declarations) {
        d.scope("patch_embed", |d| {
            d.conv(&self.patch_embed.proj, "proj");
            d.layer_norm(&self.patch_embed.norm, "norm");
        });
        let last = self.stages.len() - 1;
        for (i, stage) in self.stages.iter().enumerate() {
            d.at(Place::Stage(i), |d| {
                d.scope(&format!("layers.{i}"), |d| stage.declare(d))
            });
        }
        d.at(Place::Stage(last), |d| d.layer_norm(&self.norm, "norm"));
        d.at(Place::Head, |d| d.scope("head.fc", |d| self.head.declare(d)));
    }
}

/// Patches to normalised tokens: `[N, 3, H, W]` → `[N, (H/p)·(W/p), D]`, row-major.
#[derive(Module, Debug)]
struct PatchEmbed<B: Backend> {
    proj: Conv2d<B>,
    norm: LayerNorm<B>,
}

impl<B: FusedBackend> PatchEmbed<B> {
    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 3> {
        let patches = conv2d(&self.proj, x);
        let [n, width, rows, cols] = patches.dims();
        let tokens = patches.reshape([n, width, rows * cols]).swap_dims(1, 2);
        self.norm.forward(tokens)
    }
}

/// Each 2×2 group of tokens concatenated (timm's order: column offset, then row offset, then
/// channel), normalised and projected to twice the width: `[N, S², C]` → `[N, (S/2)², 2C]`.
#[derive(Module, Debug)]
struct PatchMerging<B: Backend> {
    norm: LayerNorm<B>,
    reduction: Linear<B>,
}

impl<B: Backend> PatchMerging<B> {
    fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let [n, tokens, c] = x.dims();
        let half = side_of(tokens) / 2;
        let merged = x
            .reshape([n, half, 2, half, 2, c])
            .permute([0, 1, 3, 4, 2, 5])
            .reshape([n, half * half, 4 * c]);
        tokenwise(&self.reduction, self.norm.forward(merged))
    }
}

/// The side of a square grid of `tokens` tokens.
fn side_of(tokens: usize) -> usize {
    (tokens as f64).sqrt().round() as usize
}

/// Patch merging (all but the first stage), then the blocks: `[N, S², C]` → `[N, S'², C']`.
#[derive(Module, Debug)]
struct SwinStage<B: Backend> {
    downsample: Option<PatchMerging<B>>,
    blocks: Vec<SwinBlock<B>>,
}

impl<B: FusedBackend> SwinStage<B> {
    fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let mut x = match &self.downsample {
            Some(merge) => merge.forward(x),
            None => x,
        };
        for block in &self.blocks {
            x = block.forward(x);
        }
        x
    }
}

impl<B: Backend> Declare for SwinStage<B> {
    fn declare(&self, d: &mut Declarations) {
        if let Some(merge) = &self.downsample {
            d.scope("downsample", |d| {
                d.layer_norm(&merge.norm, "norm");
                d.linear(&merge.reduction, "reduction");
            });
        }
        for (j, block) in self.blocks.iter().enumerate() {
            d.scope(&format!("blocks.{j}"), |d| block.declare(d));
        }
    }
}

/// A transformer block whose attention stays within (possibly shifted) windows, with a learned
/// bias for each relative position and head: `[N, S², C]` → `[N, S², C]`.
#[derive(Module, Debug)]
struct SwinBlock<B: Backend> {
    block: TransformerBlock<B>,
    /// `[(2w − 1)², heads]`: one bias per relative offset (rows, columns) and head.
    relative_position_bias_table: Param<Tensor<B, 2>>,
    #[module(skip)]
    windows: Windows,
}

impl<B: FusedBackend> SwinBlock<B> {
    fn new(config: TransformerBlockConfig, windows: Windows, device: &B::Device) -> Self {
        let offsets = (2 * windows.window - 1).pow(2);
        // timm: truncated N(0, 0.02²), its bounds (±2) a hundred deviations out.
        let table = rng::normal(offsets * config.heads, 0.02);
        Self {
            block: config.init(device),
            relative_position_bias_table: param(table, [offsets, config.heads], device),
            windows,
        }
    }

    fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        self.block
            .forward_with(x, |attn, tokens| self.attend_in_windows(attn, tokens))
    }

    fn attend_in_windows(&self, attn: &SelfAttention<B>, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let Windows {
            side, window, shift, ..
        } = self.windows;
        let [n, _, c] = x.dims();
        let per_side = side / window;
        let mut grid = x.reshape([n, side, side, c]);
        // Burn's roll moves the other way from torch.roll: this is timm's roll by (−s, −s),
        // which brings the top-left rows and columns to the bottom right.
        let shift = shift as i64;
        if shift > 0 {
            grid = grid.roll(&[shift, shift], &[1, 2]);
        }
        let windows = grid
            .reshape([n, per_side, window, per_side, window, c])
            .permute([0, 1, 3, 2, 4, 5])
            .reshape([n * per_side * per_side, window * window, c]);
        let mixed = attn.forward(windows, Some(self.score_bias()));
        let mut grid = mixed
            .reshape([n, per_side, per_side, window, window, c])
            .permute([0, 1, 3, 2, 4, 5])
            .reshape([n, side, side, c]);
        if shift > 0 {
            grid = grid.roll(&[-shift, -shift], &[1, 2]);
        }
        grid.reshape([n, side * side, c])
    }

    /// `[windows or 1, heads, w², w²]`: the relative position bias, plus the shifted windows'
    /// mask when this block shifts.
    fn score_bias(&self) -> Tensor<B, 4> {
        let device = self.relative_position_bias_table.device();
        let area = self.windows.window.pow(2);
        let index = &self.windows.relative_index;
        let index = Tensor::<B, 1, Int>::from_data(TensorData::new(index.clone(), [index.len()]), &device);
        let table = self.relative_position_bias_table.val();
        let heads = table.dims()[1];
        let bias = table
            .select(0, index)
            .reshape([area, area, heads])
            .permute([2, 0, 1])
            .unsqueeze::<4>();
        match &self.windows.mask {
            Some(mask) => {
                let count = mask.len() / (area * area);
                let mask =
                    Tensor::<B, 4>::from_data(TensorData::new(mask.clone(), [count, 1, area, area]), &device);
                bias + mask
            }
            None => bias,
        }
    }
}

impl<B: Backend> Declare for SwinBlock<B> {
    fn declare(&self, d: &mut Declarations) {
        self.block.declare(d);
        // timm exempts it from weight decay with the embeddings (`no_weight_decay`).
        d.scope("attn", |d| {
            d.param(
                &self.relative_position_bias_table,
                "relative_position_bias_table",
                Role::Embedding,
                Layout::Same,
            )
        });
    }
}

/// Where one block's windows lie, and the constant tables that follow from it.
#[derive(Debug, Clone)]
struct Windows {
    /// Side of the token grid.
    side: usize,
    /// Side of a window.
    window: usize,
    /// How far the grid is rolled (up and left) before windowing: 0 or half a window.
    shift: usize,
    /// For each (query, key) pair of a window, row-major, its row of the bias table.
    relative_index: Vec<i64>,
    /// `[windows, w², w²]`: −100 between tokens that come from different regions of the rolled
    /// grid (timm's constant), 0 elsewhere; `None` unshifted.
    mask: Option<Vec<f32>>,
}

impl Windows {
    fn new(side: usize, window: usize, shift: usize) -> Self {
        let w = window as i64;
        let coords: Vec<(i64, i64)> = (0..w).flat_map(|r| (0..w).map(move |c| (r, c))).collect();
        let relative_index = coords
            .iter()
            .flat_map(|&(r1, c1)| {
                coords
                    .iter()
                    .map(move |&(r2, c2)| (r1 - r2 + w - 1) * (2 * w - 1) + (c1 - c2 + w - 1))
            })
            .collect();
        let mask = (shift > 0).then(|| shifted_window_mask(side, window, shift));
        Self {
            side,
            window,
            shift,
            relative_index,
            mask,
        }
    }
}

/// After rolling a grid of side `side` by `shift`, the last `shift` rows and columns hold tokens
/// from the far edge: label the three bands per axis, and mask every pair of tokens in one window
/// whose labels differ.
fn shifted_window_mask(side: usize, window: usize, shift: usize) -> Vec<f32> {
    let band = |i: usize| {
        if i < side - window {
            0
        } else if i < side - shift {
            1
        } else {
            2
        }
    };
    let per_side = side / window;
    let mut mask = Vec::with_capacity(per_side * per_side * window.pow(4));
    for wr in 0..per_side {
        for wc in 0..per_side {
            let labels: Vec<usize> = (0..window * window)
                .map(|k| 3 * band(wr * window + k / window) + band(wc * window + k % window))
                .collect();
            for &a in &labels {
                mask.extend(labels.iter().map(|&b| if a == b { 0.0 } else { -100.0 }));
            }
        }
    }
    mask
}

#[cfg(test)]
mod tests {
    use super::*;

    /// timm's index for a 2×2 window: offsets (Δrow + 1)·3 + (Δcol + 1).
    #[test]
    fn relative_index_counts_row_then_column_offsets() {
        let windows = Windows::new(4, 2, 0);
        assert_eq!(
            windows.relative_index,
            [4, 3, 1, 0, 5, 4, 2, 1, 7, 6, 4, 3, 8, 7, 5, 4]
        );
        assert!(windows.mask.is_none());
    }

    /// On a 4×4 grid with 2×2 windows shifted by 1, only the top-left window holds tokens of a
    /// single region; the bottom-right one holds four.
    #[test]
    fn the_mask_separates_tokens_from_different_regions() {
        let mask = Windows::new(4, 2, 1).mask.unwrap();
        let window = |i: usize| &mask[i * 16..(i + 1) * 16];
        assert!(window(0).iter().all(|&m| m == 0.0));
        let masked = |i: usize| window(i).iter().filter(|&&m| m != 0.0).count();
        // Two regions of two tokens: 8 of 16 pairs masked; four regions of one: 12.
        assert_eq!([masked(1), masked(2), masked(3)], [8, 8, 12]);
    }

    #[test]
    fn image_sides_must_tile_every_stage() {
        let swin_t = SwinLayout {
            patch: 4,
            width: 96,
            depths: &[2, 2, 6, 2],
            heads: &[3, 6, 12, 24],
            window: 7,
        };
        assert_eq!(swin_t.stages(224).unwrap(), [(56, 7), (28, 7), (14, 7), (7, 7)]);
        // 448 → grids 112, 56, 28, 14.
        assert_eq!(swin_t.stages(448).unwrap(), [(112, 7), (56, 7), (28, 7), (14, 7)]);
        assert!(swin_t.stages(100).unwrap_err().contains("multiple of 32"));
        // 32 → an 8×8 first grid, which 7×7 windows do not tile.
        assert!(swin_t.stages(32).unwrap_err().contains("8×8"));
        assert!(swin_t.stages(256).unwrap_err().contains("64×64"));
    }

    /// Stochastic depth changes training forward passes only: in evaluation the model is the
    /// one built without it, and the rate grows from 0 at the first block to all of it at the last.
    #[test]
    fn stochastic_depth_acts_in_training_only() {
        use burn::backend::{Autodiff, Flex};
        use burn::module::AutodiffModule;
        use burn::tensor::Tolerance;
        let layout = SwinLayout {
            patch: 2,
            width: 8,
            depths: &[2, 2],
            heads: &[2, 4],
            window: 2,
        };
        let config = |drop_path| ModelConfig {
            arch: crate::models::Arch::SwinTest,
            num_classes: 3,
            drop_path,
            ..Default::default()
        };
        let build = |drop_path| -> SwinTransformer<Autodiff<Flex>> {
            crate::rng::seed(4);
            SwinTransformer::new(&config(drop_path), layout, 8, &Default::default())
        };
        let (plain, dropping) = (build(None), build(Some(0.9)));
        let x = Tensor::<Autodiff<Flex>, 4>::random(
            [8, 3, 8, 8],
            burn::tensor::Distribution::Default,
            &Default::default(),
        );
        let eval = |m: &SwinTransformer<Autodiff<Flex>>| m.valid().features(x.clone().inner()).into_data();
        eval(&plain).assert_eq(&eval(&dropping), true);
        let train = |m: &SwinTransformer<Autodiff<Flex>>| m.features(x.clone()).into_data();
        train(&plain).assert_approx_eq::<f32>(&eval(&plain), Tolerance::absolute(1e-6));
        assert_ne!(train(&dropping), eval(&dropping));
        let rates: Vec<f64> = (0..4).map(|i| config(Some(0.3)).drop_path_at(i, 4)).collect();
        assert_eq!(rates, [0.0, 0.3 * 1.0 / 3.0, 0.3 * 2.0 / 3.0, 0.3]);
    }
}
