//! GPT-2 (Radford et al., 2019) in Hugging Face's `GPT2LMHeadModel` layout and state-dict keys:
//! token and learned position embeddings, pre-norm blocks with causal self-attention, a final
//! LayerNorm, and next-token logits through the token embedding itself (tied weights).
//! `model.activation` is the MLPs' activation (GELU-tanh in GPT-2, AGLU in the paper's Table 15).

use burn::module::{Module, Param};
use burn::nn::{LayerNorm, LayerNormConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};

use super::{ArchLayout, ModelConfig, Task, WrongTask};
use crate::init::param;
use crate::layers::transformer::{declare_stack, stack_activations};
use crate::layers::{
    causal_mask, Act, Adaptive, BlockInit, BlockKeys, TransformerBlock, TransformerBlockConfig,
};
use crate::ops::FusedBackend;
use crate::params::{Declarations, Declare, Layout, Role};
use crate::rng;

/// The geometry an `arch` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GptLayout {
    /// The longest sequence: rows of the position embedding.
    pub context: usize,
    /// Token width D.
    pub width: usize,
    /// Number of transformer blocks.
    pub depth: usize,
    pub heads: usize,
}

/// GPT-2's vocabulary: its byte-pair encoding's 50,257 tokens (`model.vocab_size` when unset).
pub const GPT2_VOCAB: usize = 50_257;
const NORM_EPS: f64 = 1e-5;
/// The MLP's hidden width over the token width (3072 / 768).
const MLP_RATIO: usize = 4;
/// The standard deviation of every initial weight but the residual projections'.
const INIT_STD: f64 = 0.02;

#[derive(Module, Debug)]
pub struct Gpt2<B: Backend> {
    /// `[V, D]`: the token embedding, and the output layer (its transpose).
    wte: Param<Tensor<B, 2>>,
    /// `[context, D]`.
    wpe: Param<Tensor<B, 2>>,
    blocks: Vec<TransformerBlock<B>>,
    ln_f: LayerNorm<B>,
}

impl<B: FusedBackend> Gpt2<B> {
    /// A freshly initialised GPT for a language-model `arch`, from this thread's generator as it
    /// stands (see [`crate::rng`]).
    pub fn new(model: &ModelConfig, device: &B::Device) -> Result<Self, WrongTask> {
        match model.arch.layout() {
            ArchLayout::Gpt(layout) => Ok(Self::with_layout(model, layout, device)),
            _ => Err(WrongTask {
                arch: model.arch,
                task: Task::ImageClassification,
            }),
        }
    }

    /// The same, with a fixed seed: the same weights on every backend.
    pub fn seeded(model: &ModelConfig, seed: u64, device: &B::Device) -> Result<Self, WrongTask> {
        rng::seed(seed);
        Self::new(model, device)
    }

    fn with_layout(model: &ModelConfig, layout: GptLayout, device: &B::Device) -> Self {
        let (width, depth) = (layout.width, layout.depth);
        let vocab = model.vocab_size.unwrap_or(GPT2_VOCAB);
        let block = TransformerBlockConfig {
            width,
            heads: layout.heads,
            mlp_hidden: MLP_RATIO * width,
            act: model.act(MLP_RATIO * width),
            norm_eps: NORM_EPS,
            init: BlockInit::Gpt2 { depth },
            keys: BlockKeys::Gpt2,
            drop_path: 0.0,
        };
        Self {
            wte: param(rng::normal(vocab * width, INIT_STD), [vocab, width], device),
            wpe: param(
                rng::normal(layout.context * width, INIT_STD),
                [layout.context, width],
                device,
            ),
            blocks: model.block_stack(block, depth, device),
            ln_f: LayerNormConfig::new(width).with_epsilon(NORM_EPS).init(device),
        }
    }

    /// Next-token logits `[N, T, V]` for tokens `[N, T]`, T at most the context length: the
    /// logits at position t depend on tokens 0..=t only.
    pub fn forward(&self, tokens: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        let [n, t] = tokens.dims();
        let [vocab, width] = self.wte.dims();
        let embedded = self
            .wte
            .val()
            .select(0, tokens.reshape([n * t]))
            .reshape([n, t, width]);
        let mut x = embedded + self.wpe.val().narrow(0, 0, t).unsqueeze::<3>();
        let mask = causal_mask::<B>(t, &x.device());
        for block in &self.blocks {
            x = block.forward_with(x, |attn, tokens| attn.forward(tokens, Some(mask.clone())));
        }
        let x = self.ln_f.forward(x).reshape([n * t, width]);
        x.matmul(self.wte.val().transpose()).reshape([n, t, vocab])
    }

    /// The longest sequence the position embedding covers.
    pub fn context(&self) -> usize {
        self.wpe.dims()[0]
    }

    pub fn activations(&self) -> Vec<(String, &Act<B>)> {
        stack_activations(&self.blocks, "h")
    }

    /// Every AGLU module, named by layer (none with GELU-tanh).
    pub fn adaptive_modules(&self) -> Vec<(String, &Adaptive<B>)> {
        let acts = self.activations().into_iter();
        acts.filter_map(|(name, act)| Some((name, act.adaptive()?)))
            .collect()
    }
}

/// The keys of Hugging Face's `GPT2Model` (the Hub's GPT-2 checkpoints); a `GPT2LMHeadModel`
/// state dict has them under `transformer.`, which loading strips.
impl<B: Backend> Declare for Gpt2<B> {
    fn declare(&self, d: &mut Declarations) {
        d.param(&self.wte, "wte.weight", Role::Embedding, Layout::Same);
        d.param(&self.wpe, "wpe.weight", Role::Embedding, Layout::Same);
        declare_stack(d, &self.blocks, "h", ("ln_f", &self.ln_f));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::Arch;
    use burn::backend::Flex;
    use burn::tensor::{TensorData, Tolerance};

    fn tiny() -> Gpt2<Flex> {
        let config = ModelConfig {
            arch: Arch::Gpt2Test,
            vocab_size: Some(11),
            activation: crate::layers::Activation::GeluTanh,
            ..ModelConfig::default()
        };
        crate::rng::seed(3);
        Gpt2::new(&config, &Default::default()).expect("a language model")
    }

    #[test]
    fn gives_logits_per_position() {
        let tokens = Tensor::<Flex, 2, Int>::from_data(
            TensorData::new(vec![1i64, 4, 2, 9, 0, 3], [2, 3]),
            &Default::default(),
        );
        assert_eq!(tiny().forward(tokens).dims(), [2, 3, 11]);
    }

    /// Causality: changing the last token changes no earlier position's logits.
    #[test]
    fn earlier_positions_do_not_see_later_tokens() {
        let model = tiny();
        let device = Default::default();
        let run = |last: i64| {
            model.forward(Tensor::from_data(
                TensorData::new(vec![5i64, 1, 7, last], [1, 4]),
                &device,
            ))
        };
        let (a, b) = (run(2), run(8));
        a.clone()
            .narrow(1, 0, 3)
            .into_data()
            .assert_approx_eq::<f32>(&b.clone().narrow(1, 0, 3).into_data(), Tolerance::absolute(1e-6));
        let last_moved = (a.narrow(1, 3, 1) - b.narrow(1, 3, 1)).abs().max().into_scalar();
        assert!(last_moved > 1e-4, "the last position ignores its own token");
    }

    #[test]
    fn declares_hugging_face_keys() {
        let keys: Vec<String> = tiny().param_specs().into_iter().map(|s| s.key).collect();
        assert_eq!(
            keys[..4],
            ["wte.weight", "wpe.weight", "h.0.ln_1.weight", "h.0.ln_1.bias"]
        );
        assert!(keys.contains(&"h.1.mlp.c_proj.weight".to_string()));
        assert_eq!(keys.last().map(String::as_str), Some("ln_f.bias"));
    }
}
