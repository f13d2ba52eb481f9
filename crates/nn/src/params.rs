//! Each parameter's role, its place in the network and its reference checkpoint key, declared by
//! the module that creates it. The optimiser's weight-decay groups, freezing for cRT and
//! fine-tuning, and checkpoint import/export all read this one declaration, so renaming a struct
//! or a field cannot change how a parameter trains or which checkpoint tensor it loads.

use burn::module::{Module, ModuleVisitor, Param, ParamId, RunningState};
use burn::nn::conv::Conv2d;
use burn::nn::{LayerNorm, Linear};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// What a parameter is, for the optimiser (each role has its own weight decay).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Convolution and linear weights (and PReLU slopes, classifier weights).
    Weight,
    /// Biases of linear layers.
    Bias,
    /// BatchNorm and LayerNorm scales and shifts.
    Norm,
    /// APA/AGLU κ and λ, and learnable gate temperatures.
    Adaptive,
    /// Learned token embeddings: a transformer's class token and position embedding.
    Embedding,
    /// BatchNorm running statistics: stored and loaded, never optimised.
    Statistic,
}

/// Where a parameter sits in the network, for freezing: fine-tuning trains only the head and
/// the last stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Place {
    /// Before the first residual stage.
    Stem,
    /// Inside residual stage `i` (0-based).
    Stage(usize),
    /// The classifier.
    Head,
}

/// How a checkpoint tensor relates to our parameter of the same key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Same,
    /// Burn's Linear stores `[in, out]`, PyTorch `[out, in]`.
    Transposed,
    /// Per-channel κ/λ are stored `[1, C, 1, 1]` by the reference and `[C]` here.
    Flattened,
}

/// One declared parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamSpec {
    pub id: ParamId,
    /// The reference implementation's state-dict key.
    pub key: String,
    pub role: Role,
    pub place: Place,
    pub layout: Layout,
}

/// Collects the declarations of a module tree: a key prefix and a place, set by the enclosing
/// modules as they hand the collector to their children.
#[derive(Debug)]
pub struct Declarations {
    prefix: Vec<String>,
    place: Place,
    specs: Vec<ParamSpec>,
}

impl Default for Declarations {
    fn default() -> Self {
        Self {
            prefix: Vec::new(),
            place: Place::Stem,
            specs: Vec::new(),
        }
    }
}

/// A module that declares its parameters.
pub trait Declare {
    fn declare(&self, d: &mut Declarations);

    /// Every parameter of this module, in declaration order.
    fn param_specs(&self) -> Vec<ParamSpec> {
        let mut d = Declarations::default();
        self.declare(&mut d);
        d.specs
    }
}

impl Declarations {
    /// Declares `f`'s parameters under the key segment `name` (dot-separated segments allowed).
    pub fn scope(&mut self, name: &str, f: impl FnOnce(&mut Self)) {
        self.prefix.push(name.to_string());
        f(self);
        self.prefix.pop();
    }

    /// Declares `f`'s parameters at `place`.
    pub fn at(&mut self, place: Place, f: impl FnOnce(&mut Self)) {
        let outer = std::mem::replace(&mut self.place, place);
        f(self);
        self.place = outer;
    }

    pub fn param<B: Backend, const D: usize>(
        &mut self,
        param: &Param<Tensor<B, D>>,
        name: &str,
        role: Role,
        layout: Layout,
    ) {
        self.push(param.id, name, role, layout);
    }

    fn push(&mut self, id: ParamId, name: &str, role: Role, layout: Layout) {
        // An empty segment is a module that adds no name of its own (a head's single layer).
        let key = self
            .prefix
            .iter()
            .map(String::as_str)
            .chain([name])
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(".");
        self.specs.push(ParamSpec {
            id,
            key,
            role,
            place: self.place,
            layout,
        });
    }

    pub fn conv<B: Backend>(&mut self, conv: &Conv2d<B>, name: &str) {
        self.scope(name, |d| {
            d.param(&conv.weight, "weight", Role::Weight, Layout::Same);
            if let Some(bias) = &conv.bias {
                d.param(bias, "bias", Role::Bias, Layout::Same);
            }
        });
    }

    /// A `torch.nn.Linear`, whose weight PyTorch stores transposed.
    pub fn linear<B: Backend>(&mut self, linear: &Linear<B>, name: &str) {
        self.linear_as(linear, name, Layout::Transposed);
    }

    /// A linear layer whose reference stores its weight with `layout` (Hugging Face's `Conv1D`
    /// keeps Burn's `[in, out]`).
    pub fn linear_as<B: Backend>(&mut self, linear: &Linear<B>, name: &str, layout: Layout) {
        self.scope(name, |d| {
            d.param(&linear.weight, "weight", Role::Weight, layout);
            if let Some(bias) = &linear.bias {
                d.param(bias, "bias", Role::Bias, Layout::Same);
            }
        });
    }

    pub fn layer_norm<B: Backend>(&mut self, norm: &LayerNorm<B>, name: &str) {
        self.scope(name, |d| {
            d.param(&norm.gamma, "weight", Role::Norm, Layout::Same);
            if let Some(beta) = &norm.beta {
                d.param(beta, "bias", Role::Norm, Layout::Same);
            }
        });
    }

    /// A running statistic (no gradient, but part of every checkpoint).
    pub fn running<B: Backend, const D: usize>(&mut self, state: &RunningState<Tensor<B, D>>, name: &str) {
        // RunningState keeps its id private; visiting it hands the id over with the value.
        struct FirstId(Option<ParamId>);
        impl<B: Backend> ModuleVisitor<B> for FirstId {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
                self.0.get_or_insert(param.id);
            }
        }
        let mut id = FirstId(None);
        Module::<B>::visit(state, &mut id);
        if let Some(id) = id.0 {
            self.push(id, name, Role::Statistic, Layout::Same);
        }
    }

    /// Declares every module of `blocks` under `name.<i>`.
    pub fn each<M: Declare>(&mut self, blocks: &[M], name: &str) {
        for (i, block) in blocks.iter().enumerate() {
            self.scope(&format!("{name}.{i}"), |d| block.declare(d));
        }
    }
}
