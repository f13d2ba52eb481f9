//! Whole networks: the `model:` section of a run config ([`ModelConfig`], a contract: manifests
//! and `repro verify` fixtures use exactly these keys) and the [`Model`] it builds. A new
//! architecture is one file here, its `Arch` names, and one arm in [`Model::new`].

mod gpt2;
mod resnet_cifar;
mod resnet_imagenet;
mod swin;
mod vit;

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

pub use gpt2::{Gpt2, GptLayout, GPT2_VOCAB};
pub use resnet_cifar::{BasicBlock, CifarResNet};
pub use resnet_imagenet::{BottleneckLayout, ImageNetResNet};
pub use swin::{SwinLayout, SwinTransformer};
pub use vit::{VisionTransformer, VitLayout};

use crate::init::{ConvInit, LinearInit};
use crate::layers::BatchNorm;
use crate::layers::{
    Act, ActConfig, Activation, Adaptive, AdaptiveConfig, Attention, AttentionConfig, AttentionKind,
    Classifier, Gate, GateConfig, Head, HeadConfig, KeyStyle, TransformerBlock, TransformerBlockConfig,
};
use crate::ops::{AdaptiveKind, FusedBackend, LambdaGrad};
use crate::params::{Declarations, Declare, Place};
use burn::nn::conv::Conv2d;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    Resnet8,
    Resnet20,
    Resnet32,
    Resnet44,
    Resnet56,
    Resnet110,
    Resnet50,
    Resnet101,
    Resnet152,
    #[serde(rename = "resnext50_32x4d")]
    Resnext50_32x4d,
    /// ViT-B/16: 16-pixel patches, width 768, 12 blocks of 12 heads.
    VitB16,
    /// A two-block ViT (4-pixel patches, width 48, 3 heads) for tests and smoke runs.
    VitTest,
    /// Swin-T: 4-pixel patches, width 96, stages of 2, 2, 6, 2 blocks (3, 6, 12, 24 heads),
    /// 7×7 windows.
    SwinT,
    /// A two-stage Swin (2-pixel patches, width 24, 2 blocks of 2 then 4 heads, 4×4 windows)
    /// for tests and smoke runs.
    SwinTest,
    /// GPT-2 small (124M): width 768, 12 blocks of 12 heads, 1024-token context.
    Gpt2,
    /// A four-block GPT (width 256, 4 heads, 256-token context) that trains on a CPU.
    Gpt2Mini,
    /// A two-block GPT (width 32, 2 heads, 64-token context) for tests and smoke runs.
    Gpt2Test,
}

/// What a network is trained to do, which decides its data, loss and evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// Images to class logits ([`Model`]).
    ImageClassification,
    /// Tokens to next-token logits ([`Gpt2`]).
    LanguageModelling,
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Task::ImageClassification => "an image classifier",
            Task::LanguageModelling => "a language model",
        })
    }
}

/// A network asked of an `arch` that does another task.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("model.arch {arch:?} is {task}, which cannot be used here")]
pub struct WrongTask {
    pub arch: Arch,
    /// What the arch is.
    pub task: Task,
}

/// Whether each APA/AGLU module learns one (κ, λ) pair or one per channel (paper Table 13).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamSharing {
    Shared,
    Channel,
}

/// Uniform initialisation ranges `[low, high]` for the learnable κ and λ.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InitConfig {
    pub aglu_kappa: [f64; 2],
    pub aglu_lambda: [f64; 2],
    pub apa_kappa: [f64; 2],
    pub apa_lambda: [f64; 2],
}

impl Default for InitConfig {
    fn default() -> Self {
        Self {
            aglu_kappa: [0.8, 1.2],
            aglu_lambda: [0.0, 1.0],
            apa_kappa: [-1.0, 0.0],
            apa_lambda: [0.0, 1.0],
        }
    }
}

/// The `model:` section of a run config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    pub arch: Arch,
    pub num_classes: usize,
    pub activation: Activation,
    pub attention: AttentionKind,
    pub gate: Gate,
    /// APA*: LayerNorm on the pooled vector before the attention MLP.
    pub attention_layernorm: bool,
    /// APA*: dropout after the attention MLP (0.1 in the paper).
    pub attention_dropout: f64,
    /// SE/CBAM MLP reduction ratio (4 for the CIFAR models, 16 for the ImageNet family).
    pub reduction: usize,
    pub classifier: Classifier,
    pub cosine_scale: f64,
    pub params: ParamSharing,
    pub init: InitConfig,
    pub lambda_grad: LambdaGrad,
    /// Side of the square images a transformer is built for (default 224): a ViT's position
    /// embedding, a Swin's windows. The ResNets take any size and do not use it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_size: Option<usize>,
    /// A language model's vocabulary (default GPT-2's 50,257; build-nanogpt pads it to 50,304
    /// for speed). Image classifiers do not use it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vocab_size: Option<usize>,
    /// A transformer's stochastic depth: the last block's probability of skipping its residual
    /// branches for a training sample, falling linearly to 0 at the first block (timm's
    /// `drop_path_rate`, torchvision's `stochastic_depth_prob`). Left out: none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drop_path: Option<f64>,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            arch: Arch::Resnet32,
            num_classes: 100,
            activation: Activation::Relu,
            attention: AttentionKind::None,
            gate: Gate::Sigmoid,
            attention_layernorm: false,
            attention_dropout: 0.0,
            reduction: 16,
            classifier: Classifier::Linear,
            cosine_scale: 16.0,
            params: ParamSharing::Shared,
            init: InitConfig::default(),
            lambda_grad: LambdaGrad::Exact,
            image_size: None,
            vocab_size: None,
            drop_path: None,
        }
    }
}

/// A transformer's image side when the config leaves it out: the ImageNet resolution.
pub const DEFAULT_TRANSFORMER_IMAGE_SIZE: usize = 224;

impl ModelConfig {
    /// The side of the square images this model must be given, where it is fixed (a
    /// transformer); `None` where any size works.
    pub fn input_side(&self) -> Option<usize> {
        match self.arch.layout() {
            ArchLayout::Vit(_) | ArchLayout::Swin(_) => {
                Some(self.image_size.unwrap_or(DEFAULT_TRANSFORMER_IMAGE_SIZE))
            }
            ArchLayout::Cifar(_) | ArchLayout::ImageNet(_) | ArchLayout::Gpt(_) => None,
        }
    }

    pub fn task(&self) -> Task {
        match self.arch.layout() {
            ArchLayout::Gpt(_) => Task::LanguageModelling,
            _ => Task::ImageClassification,
        }
    }

    /// The longest sequence a language model takes; `None` for image classifiers.
    pub fn context(&self) -> Option<usize> {
        match self.arch.layout() {
            ArchLayout::Gpt(layout) => Some(layout.context),
            _ => None,
        }
    }

    /// A language model's vocabulary size.
    pub fn vocab(&self) -> usize {
        self.vocab_size.unwrap_or(GPT2_VOCAB)
    }

    /// The stochastic-depth probability of block `i` of a stack of `blocks` (counted across
    /// stages): `drop_path` · i / (blocks − 1).
    pub fn drop_path_at(&self, i: usize, blocks: usize) -> f64 {
        match self.drop_path {
            Some(rate) if blocks > 1 => rate * i as f64 / (blocks - 1) as f64,
            _ => 0.0,
        }
    }

    /// `depth` blocks built from `block`, each with its stochastic depth: a plain stack's (ViT,
    /// GPT-2) blocks.
    fn block_stack<B: FusedBackend>(
        &self,
        block: TransformerBlockConfig,
        depth: usize,
        device: &B::Device,
    ) -> Vec<TransformerBlock<B>> {
        (0..depth)
            .map(|i| {
                let drop_path = self.drop_path_at(i, depth);
                TransformerBlockConfig { drop_path, ..block }.init(device)
            })
            .collect()
    }

    /// What this `model:` section cannot build, as (key, reason).
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let convolutional = matches!(self.arch.layout(), ArchLayout::Cifar(_) | ArchLayout::ImageNet(_));
        match self.drop_path {
            Some(_) if convolutional => {
                return Err((
                    "model.drop_path",
                    "stochastic depth is for the transformers' blocks; leave it out".into(),
                ))
            }
            Some(rate) if !(0.0..1.0).contains(&rate) => {
                return Err(("model.drop_path", format!("must be in [0, 1), got {rate}")))
            }
            _ => {}
        }
        let side = self.input_side().unwrap_or(DEFAULT_TRANSFORMER_IMAGE_SIZE);
        let fits = match self.arch.layout() {
            ArchLayout::Cifar(_) | ArchLayout::ImageNet(_) => return Ok(()),
            ArchLayout::Gpt(_) if self.vocab_size == Some(0) => {
                return Err(("model.vocab_size", "must be at least 1".into()))
            }
            ArchLayout::Gpt(_) if self.image_size.is_some() => {
                return Err((
                    "model.image_size",
                    "a language model takes tokens, not images; leave it out".into(),
                ))
            }
            ArchLayout::Gpt(_) => Ok(()),
            ArchLayout::Vit(layout) if side == 0 || !side.is_multiple_of(layout.patch) => Err(format!(
                "must be a positive multiple of the {}-pixel patch, got {side}",
                layout.patch
            )),
            ArchLayout::Vit(_) => Ok(()),
            ArchLayout::Swin(layout) => layout.stages(side).map(|_| ()),
        };
        fits.map_err(|reason| ("model.image_size", reason))?;
        if self.attention != AttentionKind::None {
            return Err((
                "model.attention",
                "a transformer has no convolutional attention blocks; use none".into(),
            ));
        }
        Ok(())
    }
}

/// The reference implementation an architecture follows: its initialisation and key names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `resnet_cifar.py`.
    Cifar,
    /// `resnet_pytorch.py` (torchvision's layout) with `cbam.py`.
    ImageNet,
    /// timm's transformers.
    Timm,
    /// Hugging Face's GPT-2.
    Gpt2,
}

/// What an `arch` builds: the registry of architectures.
#[derive(Debug, Clone, Copy)]
enum ArchLayout {
    /// A CIFAR ResNet with this many residual blocks per stage (depth = 6·blocks + 2).
    Cifar(usize),
    ImageNet(BottleneckLayout),
    Vit(VitLayout),
    Swin(SwinLayout),
    Gpt(GptLayout),
}

impl Arch {
    fn layout(self) -> ArchLayout {
        let bottleneck = |blocks, groups, width_per_group| {
            ArchLayout::ImageNet(BottleneckLayout {
                blocks,
                groups,
                width_per_group,
            })
        };
        let gpt = |context, width, depth, heads| {
            ArchLayout::Gpt(GptLayout {
                context,
                width,
                depth,
                heads,
            })
        };
        match self {
            Arch::Resnet8 => ArchLayout::Cifar(1),
            Arch::Resnet20 => ArchLayout::Cifar(3),
            Arch::Resnet32 => ArchLayout::Cifar(5),
            Arch::Resnet44 => ArchLayout::Cifar(7),
            Arch::Resnet56 => ArchLayout::Cifar(9),
            Arch::Resnet110 => ArchLayout::Cifar(18),
            Arch::Resnet50 => bottleneck([3, 4, 6, 3], 1, 64),
            Arch::Resnet101 => bottleneck([3, 4, 23, 3], 1, 64),
            Arch::Resnet152 => bottleneck([3, 8, 36, 3], 1, 64),
            Arch::Resnext50_32x4d => bottleneck([3, 4, 6, 3], 32, 4),
            Arch::VitB16 => ArchLayout::Vit(VitLayout {
                patch: 16,
                width: 768,
                depth: 12,
                heads: 12,
            }),
            Arch::VitTest => ArchLayout::Vit(VitLayout {
                patch: 4,
                width: 48,
                depth: 2,
                heads: 3,
            }),
            Arch::SwinT => ArchLayout::Swin(SwinLayout {
                patch: 4,
                width: 96,
                depths: &[2, 2, 6, 2],
                heads: &[3, 6, 12, 24],
                window: 7,
            }),
            Arch::SwinTest => ArchLayout::Swin(SwinLayout {
                patch: 2,
                width: 24,
                depths: &[2, 2],
                heads: &[2, 4],
                window: 4,
            }),
            Arch::Gpt2 => gpt(1024, 768, 12, 12),
            Arch::Gpt2Mini => gpt(256, 256, 4, 4),
            Arch::Gpt2Test => gpt(64, 32, 2, 2),
        }
    }

    pub fn family(self) -> Family {
        match self.layout() {
            ArchLayout::Cifar(_) => Family::Cifar,
            ArchLayout::ImageNet(_) => Family::ImageNet,
            ArchLayout::Vit(_) | ArchLayout::Swin(_) => Family::Timm,
            ArchLayout::Gpt(_) => Family::Gpt2,
        }
    }
}

/// The configs of the building blocks, as a `model:` section asks for them.
impl ModelConfig {
    fn adaptive(&self, kind: AdaptiveKind, channels: usize) -> AdaptiveConfig {
        let init = &self.init;
        let (kappa_init, lambda_init) = match kind {
            AdaptiveKind::Aglu => (init.aglu_kappa, init.aglu_lambda),
            AdaptiveKind::Apa => (init.apa_kappa, init.apa_lambda),
        };
        AdaptiveConfig {
            kind,
            size: match self.params {
                ParamSharing::Shared => 1,
                ParamSharing::Channel => channels,
            },
            kappa_init,
            lambda_init,
            lambda_grad: self.lambda_grad,
        }
    }

    /// The backbone activation over `channels` channels.
    pub fn act(&self, channels: usize) -> ActConfig {
        ActConfig {
            kind: self.activation,
            aglu: self.adaptive(AdaptiveKind::Aglu, channels),
        }
    }

    fn gate_over(&self, channels: usize) -> GateConfig {
        GateConfig {
            kind: self.gate,
            apa: self.adaptive(AdaptiveKind::Apa, channels),
        }
    }

    fn linear_init(&self) -> LinearInit {
        match self.arch.family() {
            Family::Cifar => LinearInit::KaimingNormal,
            Family::ImageNet => LinearInit::TorchDefault,
            Family::Timm | Family::Gpt2 => LinearInit::SmallNormal,
        }
    }

    /// The attention block over `channels` channels.
    pub fn attention(&self, channels: usize) -> AttentionConfig {
        AttentionConfig {
            kind: self.attention,
            channels,
            reduction: self.reduction,
            layernorm: self.attention_layernorm,
            dropout: self.attention_dropout,
            gate: self.gate_over(channels),
            spatial_gate: self.gate_over(1),
            mlp_init: self.linear_init(),
            // `check` keeps attention blocks out of the transformers.
            conv_init: match self.arch.family() {
                Family::Cifar => ConvInit::FanIn,
                Family::ImageNet | Family::Timm | Family::Gpt2 => ConvInit::FanOut,
            },
            keys: match self.arch.family() {
                Family::Cifar => KeyStyle::Cifar,
                Family::ImageNet | Family::Timm | Family::Gpt2 => KeyStyle::ImageNet,
            },
        }
    }

    /// The classifier on `features` pooled features.
    pub fn head(&self, features: usize) -> HeadConfig {
        HeadConfig {
            kind: self.classifier,
            features,
            classes: self.num_classes,
            cosine_scale: self.cosine_scale,
            init: self.linear_init(),
        }
    }
}

#[derive(Module, Debug)]
pub enum Model<B: Backend> {
    Cifar(CifarResNet<B>),
    ImageNet(ImageNetResNet<B>),
    Vit(VisionTransformer<B>),
    Swin(SwinTransformer<B>),
}

impl<B: FusedBackend> Model<B> {
    /// A freshly initialised network; the same `seed` gives the same weights on every backend.
    pub fn seeded(config: &ModelConfig, seed: u64, device: &B::Device) -> Result<Self, WrongTask> {
        crate::rng::seed(seed);
        Self::new(config, device)
    }

    /// A network initialised from this thread's generator as it stands (see [`super::rng`]),
    /// for an image-classifier `arch`.
    pub fn new(config: &ModelConfig, device: &B::Device) -> Result<Self, WrongTask> {
        Ok(match config.arch.layout() {
            ArchLayout::Cifar(blocks) => Model::Cifar(CifarResNet::new(config, blocks, device)),
            ArchLayout::ImageNet(layout) => Model::ImageNet(ImageNetResNet::new(config, layout, device)),
            ArchLayout::Vit(layout) => {
                let side = config.input_side().unwrap_or(DEFAULT_TRANSFORMER_IMAGE_SIZE);
                Model::Vit(VisionTransformer::new(config, layout, side, device))
            }
            ArchLayout::Swin(layout) => {
                let side = config.input_side().unwrap_or(DEFAULT_TRANSFORMER_IMAGE_SIZE);
                Model::Swin(SwinTransformer::new(config, layout, side, device))
            }
            ArchLayout::Gpt(_) => {
                return Err(WrongTask {
                    arch: config.arch,
                    task: Task::LanguageModelling,
                })
            }
        })
    }

    /// Class logits `[N, classes]` for images `[N, 3, H, W]`.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        self.head().forward(self.features(x))
    }

    /// Penultimate (pooled) features.
    pub fn features(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        self.features_traced(x, &mut |_| {})
    }

    /// Features, handing each attention map to `trace` in network order.
    pub fn features_traced(&self, x: Tensor<B, 4>, trace: &mut dyn FnMut(Tensor<B, 4>)) -> Tensor<B, 2> {
        match self {
            Model::Cifar(m) => m.features(x, trace),
            Model::ImageNet(m) => m.features(x, trace),
            Model::Vit(m) => m.features(x),
            Model::Swin(m) => m.features(x),
        }
    }

    pub fn head(&self) -> &Head<B> {
        match self {
            Model::Cifar(m) => m.head(),
            Model::ImageNet(m) => m.head(),
            Model::Vit(m) => m.head(),
            Model::Swin(m) => m.head(),
        }
    }

    pub fn activations(&self) -> Vec<(String, &Act<B>)> {
        match self {
            Model::Cifar(m) => m.activations(),
            Model::ImageNet(m) => m.activations(),
            Model::Vit(m) => m.activations(),
            Model::Swin(m) => m.activations(),
        }
    }

    pub fn attentions(&self) -> Vec<(String, &Attention<B>)> {
        match self {
            Model::Cifar(m) => m.attentions(),
            Model::ImageNet(m) => m.attentions(),
            Model::Vit(_) | Model::Swin(_) => Vec::new(),
        }
    }

    /// Every APA/AGLU module, named by layer: backbone AGLUs, then APA attention gates (paper
    /// Figure 6).
    pub fn adaptive_modules(&self) -> Vec<(String, &Adaptive<B>)> {
        let acts = self
            .activations()
            .into_iter()
            .filter_map(|(name, act)| Some((name, act.adaptive()?)));
        let gates = self.attentions().into_iter().flat_map(|(name, attention)| {
            let gates: Vec<_> = attention.gates().filter_map(|g| g.adaptive()).collect();
            let single = gates.len() == 1;
            gates.into_iter().enumerate().map(move |(i, g)| {
                let label = if single {
                    format!("{name}.gate")
                } else {
                    format!("{name}.gate{i}")
                };
                (label, g)
            })
        });
        acts.chain(gates).collect()
    }
}

/// The stem every ResNet starts with: convolution, BatchNorm, activation (whose reference key
/// differs between the families).
struct Stem<'a, B: Backend> {
    conv: &'a Conv2d<B>,
    bn: &'a BatchNorm<B>,
    act_key: &'static str,
    act: &'a Act<B>,
}

/// The declarations every ResNet shares: its stem, stages `layer1…` at their places, and the
/// classifier under `head_key`.
fn declare_resnet<B: Backend, M: Declare>(
    d: &mut Declarations,
    stem: Stem<'_, B>,
    stages: &[&[M]],
    (head_key, head): (&str, &Head<B>),
) {
    d.conv(stem.conv, "conv1");
    d.scope("bn1", |d| stem.bn.declare(d));
    d.scope(stem.act_key, |d| stem.act.declare(d));
    for (i, stage) in stages.iter().enumerate() {
        d.at(Place::Stage(i), |d| d.each(stage, &format!("layer{}", i + 1)));
    }
    d.at(Place::Head, |d| d.scope(head_key, |d| head.declare(d)));
}

impl<B: Backend> Declare for Model<B> {
    fn declare(&self, d: &mut Declarations) {
        match self {
            Model::Cifar(m) => m.declare(d),
            Model::ImageNet(m) => m.declare(d),
            Model::Vit(m) => m.declare(d),
            Model::Swin(m) => m.declare(d),
        }
    }
}
