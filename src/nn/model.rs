//! The network a `model:` config describes.

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::activation::{Act, Adaptive};
use super::attention::Attention;
use super::classifier::Head;
use super::fused::FusedBackend;
use super::resnet_cifar::CifarResNet;
use super::resnet_imagenet::{BottleneckLayout, ImageNetResNet};
use crate::config::model::{Arch, ModelConfig};

/// Which architecture family an `arch` belongs to; checkpoint key names differ between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Cifar,
    ImageNet,
}

impl Arch {
    pub fn family(self) -> Family {
        match self {
            Arch::Resnet8
            | Arch::Resnet20
            | Arch::Resnet32
            | Arch::Resnet44
            | Arch::Resnet56
            | Arch::Resnet110 => Family::Cifar,
            Arch::Resnet50 | Arch::Resnet101 | Arch::Resnet152 | Arch::Resnext50_32x4d => Family::ImageNet,
        }
    }

    fn cifar_blocks(self) -> Option<usize> {
        Some(match self {
            Arch::Resnet8 => 1,
            Arch::Resnet20 => 3,
            Arch::Resnet32 => 5,
            Arch::Resnet44 => 7,
            Arch::Resnet56 => 9,
            Arch::Resnet110 => 18,
            _ => return None,
        })
    }

    fn bottleneck_layout(self) -> Option<BottleneckLayout> {
        let plain = |blocks| BottleneckLayout {
            blocks,
            groups: 1,
            width_per_group: 64,
        };
        Some(match self {
            Arch::Resnet50 => plain([3, 4, 6, 3]),
            Arch::Resnet101 => plain([3, 4, 23, 3]),
            Arch::Resnet152 => plain([3, 8, 36, 3]),
            Arch::Resnext50_32x4d => BottleneckLayout {
                blocks: [3, 4, 6, 3],
                groups: 32,
                width_per_group: 4,
            },
            _ => return None,
        })
    }
}

#[derive(Module, Debug)]
pub enum Model<B: Backend> {
    Cifar(CifarResNet<B>),
    ImageNet(ImageNetResNet<B>),
}

/// One learned scalar of an APA/AGLU module, by layer name (paper Figure 6).
#[derive(Debug, Clone, PartialEq)]
pub struct LearnedParam {
    pub module: String,
    /// `kappa` or `lambda`.
    pub name: &'static str,
    /// Channel index for per-channel parameters.
    pub index: usize,
    pub value: f32,
}

impl<B: FusedBackend> Model<B> {
    /// A freshly initialised network; the same `seed` gives the same weights on every backend.
    pub fn seeded(config: &ModelConfig, seed: u64, device: &B::Device) -> Self {
        super::rng::seed(seed);
        Self::new(config, device)
    }

    /// A network initialised from this thread's generator as it stands (see [`super::rng`]).
    pub fn new(config: &ModelConfig, device: &B::Device) -> Self {
        match (config.arch.cifar_blocks(), config.arch.bottleneck_layout()) {
            (Some(blocks), _) => Model::Cifar(CifarResNet::new(config, blocks, device)),
            (_, Some(layout)) => Model::ImageNet(ImageNetResNet::new(config, layout, device)),
            (None, None) => unreachable!("every arch is in one family"),
        }
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
        }
    }

    pub fn head(&self) -> &Head<B> {
        match self {
            Model::Cifar(m) => m.head(),
            Model::ImageNet(m) => m.head(),
        }
    }

    pub fn activations(&self) -> Vec<(String, &Act<B>)> {
        match self {
            Model::Cifar(m) => m.activations(),
            Model::ImageNet(m) => m.activations(),
        }
    }

    pub fn attentions(&self) -> Vec<(String, &Attention<B>)> {
        match self {
            Model::Cifar(m) => m.attentions(),
            Model::ImageNet(m) => m.attentions(),
        }
    }

    /// Every learned κ and λ, named by layer: backbone AGLUs and APA attention gates.
    pub fn learned_params(&self) -> Vec<LearnedParam> {
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
        acts.chain(gates)
            .flat_map(|(module, adaptive)| flatten(module, adaptive))
            .collect()
    }
}

fn flatten<B: Backend>(module: String, adaptive: &Adaptive<B>) -> Vec<LearnedParam> {
    let (kappa, lambda) = adaptive.learned();
    let entries = |name: &'static str, values: Vec<f32>| {
        let module = module.clone();
        values
            .into_iter()
            .enumerate()
            .map(move |(index, value)| LearnedParam {
                module: module.clone(),
                name,
                index,
                value,
            })
    };
    entries("kappa", kappa).chain(entries("lambda", lambda)).collect()
}
