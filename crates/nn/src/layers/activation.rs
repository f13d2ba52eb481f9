//! Backbone activations and attention gates, chosen by the config enums the way timm's
//! `create_act_layer` keeps model code free of activation special cases: a block holds an
//! [`Act`] or a [`GateAct`] and calls `forward`.

use burn::module::{Module, Param};
use burn::nn::{PRelu, PReluConfig};
use burn::tensor::activation::{gelu, gelu_approximate, mish, relu, sigmoid, silu};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use serde::{Deserialize, Serialize};

use crate::init::param;
use crate::ops::adaptive::adaptive;
use crate::ops::{AdaptiveKind, FusedBackend, LambdaGrad};
use crate::params::{Declarations, Declare, Layout, Role};
use crate::rng;

/// Backbone activation: replaces every ReLU outside the attention blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Relu,
    Prelu,
    Elu,
    Mish,
    Gelu,
    /// GELU's tanh approximation, GPT-2's (`gelu_new` in Hugging Face's transformers).
    GeluTanh,
    Silu,
    Aglu,
}

/// Attention gate: maps attention logits to (0, 1] weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gate {
    Sigmoid,
    Apa,
    Gumbel,
    SigmoidTemp,
    GumbelTemp,
}

/// Below this λ the APA exponent 1/λ overflows f32 for moderate inputs; the reference
/// attention gate (`Unified`) clamps at the same value.
pub const LAMBDA_FLOOR: f64 = 1e-4;

/// Learnable (κ, λ) of one APA or AGLU module: one pair, or one per channel.
#[derive(Module, Debug)]
pub struct Adaptive<B: Backend> {
    pub kappa: Param<Tensor<B, 1>>,
    pub lambda: Param<Tensor<B, 1>>,
    #[module(skip)]
    kind: AdaptiveKind,
    #[module(skip)]
    lambda_grad: LambdaGrad,
}

/// How to build an [`Adaptive`] module.
#[derive(Debug, Clone, Copy)]
pub struct AdaptiveConfig {
    pub kind: AdaptiveKind,
    /// Number of (κ, λ) pairs: 1 when shared, the channel count when per channel.
    pub size: usize,
    pub kappa_init: [f64; 2],
    pub lambda_init: [f64; 2],
    pub lambda_grad: LambdaGrad,
}

impl AdaptiveConfig {
    pub fn init<B: Backend>(&self, device: &B::Device) -> Adaptive<B> {
        let uniform = |[low, high]: [f64; 2]| param(rng::uniform(self.size, low, high), [self.size], device);
        Adaptive {
            kappa: uniform(self.kappa_init),
            lambda: uniform(self.lambda_init),
            kind: self.kind,
            lambda_grad: self.lambda_grad,
        }
    }
}

impl<B: FusedBackend> Adaptive<B> {
    /// Applies the function to `[N, C, H, W]`; per-channel parameters broadcast over C.
    pub fn forward(&self, z: Tensor<B, 4>) -> Tensor<B, 4> {
        let shape = [1, self.kappa.dims()[0], 1, 1];
        let kappa = self.kappa.val().reshape(shape);
        let lambda = self.lambda.val().clamp_min(LAMBDA_FLOOR).reshape(shape);
        adaptive(z, kappa, lambda, self.kind, self.lambda_grad)
    }
}

impl<B: Backend> Declare for Adaptive<B> {
    fn declare(&self, d: &mut Declarations) {
        d.param(&self.kappa, "kappa_param", Role::Adaptive, Layout::Flattened);
        d.param(&self.lambda, "lambda_param", Role::Adaptive, Layout::Flattened);
    }
}

impl<B: Backend> Adaptive<B> {
    /// The learned values, `(κ, λ)` per pair, as plain numbers for reports and figures.
    pub fn learned(&self) -> (Vec<f32>, Vec<f32>) {
        let read = |p: &Param<Tensor<B, 1>>| {
            p.val()
                .into_data()
                .convert::<f32>()
                .to_vec::<f32>()
                .unwrap_or_default()
        };
        (read(&self.kappa), read(&self.lambda))
    }
}

/// How to build an [`Act`]: the activation, and the AGLU parameters when it is AGLU.
#[derive(Debug, Clone, Copy)]
pub struct ActConfig {
    pub kind: Activation,
    pub aglu: AdaptiveConfig,
}

impl ActConfig {
    pub fn init<B: Backend>(&self, device: &B::Device) -> Act<B> {
        match self.kind {
            Activation::Prelu => Act::Prelu(PReluConfig::new().init(device)),
            Activation::Aglu => Act::Aglu(self.aglu.init(device)),
            kind => Act::Fixed(FixedAct { kind }),
        }
    }
}

/// A backbone activation (`model.activation`): `[N, C, H, W]` → same shape.
#[derive(Module, Debug)]
pub enum Act<B: Backend> {
    Fixed(FixedAct),
    Prelu(PRelu<B>),
    Aglu(Adaptive<B>),
}

/// An activation without parameters.
#[derive(Module, Debug, Clone)]
pub struct FixedAct {
    #[module(skip)]
    kind: Activation,
}

impl<B: FusedBackend> Act<B> {
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        match self {
            Act::Prelu(prelu) => prelu.forward(x),
            Act::Aglu(adaptive) => adaptive.forward(x),
            Act::Fixed(FixedAct { kind }) => match kind {
                Activation::Elu => elu(x),
                Activation::Mish => mish(x),
                Activation::Gelu => gelu(x),
                Activation::GeluTanh => gelu_approximate(x),
                Activation::Silu => silu(x),
                // PReLU and AGLU are built as their own variants.
                Activation::Relu | Activation::Prelu | Activation::Aglu => relu(x),
            },
        }
    }
}

impl<B: Backend> Act<B> {
    pub fn adaptive(&self) -> Option<&Adaptive<B>> {
        match self {
            Act::Aglu(adaptive) => Some(adaptive),
            _ => None,
        }
    }

    /// Whether its parameters are per channel (C of `[N, C, H, W]`) rather than one shared set.
    pub fn per_channel(&self) -> bool {
        match self {
            Act::Fixed(_) => false,
            Act::Prelu(prelu) => prelu.alpha.dims()[0] > 1,
            Act::Aglu(adaptive) => adaptive.kappa.dims()[0] > 1,
        }
    }

    /// Whether this is ReLU, which a preceding BatchNorm can apply inside its own op.
    pub fn is_relu(&self) -> bool {
        matches!(
            self,
            Act::Fixed(FixedAct {
                kind: Activation::Relu
            })
        )
    }
}

impl<B: Backend> Declare for Act<B> {
    fn declare(&self, d: &mut Declarations) {
        match self {
            Act::Fixed(_) => {}
            Act::Prelu(prelu) => d.param(&prelu.alpha, "weight", Role::Weight, Layout::Same),
            Act::Aglu(adaptive) => adaptive.declare(d),
        }
    }
}

/// ELU with α = 1 (PyTorch's default): `max(0, z) + min(0, e^z − 1)`.
fn elu<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    let negative = x.clone().clamp_max(0.0).exp() - 1.0;
    x.clamp_min(0.0) + negative
}

/// How to build a [`GateAct`]: the gate, and the APA parameters when it is APA.
#[derive(Debug, Clone, Copy)]
pub struct GateConfig {
    pub kind: Gate,
    pub apa: AdaptiveConfig,
}

impl GateConfig {
    pub fn init<B: Backend>(&self, device: &B::Device) -> GateAct<B> {
        let temperature = || Param::from_tensor(Tensor::ones([1], device));
        match self.kind {
            Gate::Apa => GateAct::Apa(self.apa.init(device)),
            Gate::Sigmoid => GateAct::Sigmoid(FixedGate { kind: self.kind }),
            Gate::Gumbel => GateAct::Gumbel(FixedGate { kind: self.kind }),
            Gate::SigmoidTemp => GateAct::SigmoidTemp(Temperature { tau: temperature() }),
            Gate::GumbelTemp => GateAct::GumbelTemp(Temperature { tau: temperature() }),
        }
    }
}

/// An attention gate (`model.gate`): maps attention logits `[N, C, H, W]` to weights in (0, 1].
#[derive(Module, Debug)]
pub enum GateAct<B: Backend> {
    Sigmoid(FixedGate),
    Gumbel(FixedGate),
    Apa(Adaptive<B>),
    SigmoidTemp(Temperature<B>),
    GumbelTemp(Temperature<B>),
}

/// A gate without parameters.
#[derive(Module, Debug, Clone)]
pub struct FixedGate {
    #[module(skip)]
    kind: Gate,
}

/// Learnable temperature τ of `sigmoid_temp` / `gumbel_temp`: the gate sees z/τ.
#[derive(Module, Debug)]
pub struct Temperature<B: Backend> {
    tau: Param<Tensor<B, 1>>,
}

impl<B: Backend> Temperature<B> {
    fn scale(&self, z: Tensor<B, 4>) -> Tensor<B, 4> {
        z / self.tau.val().clamp_min(LAMBDA_FLOOR).reshape([1, 1, 1, 1])
    }
}

impl<B: FusedBackend> GateAct<B> {
    pub fn forward(&self, z: Tensor<B, 4>) -> Tensor<B, 4> {
        match self {
            GateAct::Sigmoid(_) => sigmoid(z),
            GateAct::Gumbel(_) => gumbel(z),
            GateAct::Apa(adaptive) => adaptive.forward(z),
            GateAct::SigmoidTemp(t) => sigmoid(t.scale(z)),
            GateAct::GumbelTemp(t) => gumbel(t.scale(z)),
        }
    }
}

impl<B: Backend> GateAct<B> {
    pub fn adaptive(&self) -> Option<&Adaptive<B>> {
        match self {
            GateAct::Apa(adaptive) => Some(adaptive),
            _ => None,
        }
    }
}

impl<B: Backend> Declare for GateAct<B> {
    fn declare(&self, d: &mut Declarations) {
        match self {
            GateAct::Apa(adaptive) => adaptive.declare(d),
            GateAct::SigmoidTemp(t) | GateAct::GumbelTemp(t) => {
                d.param(&t.tau, "temperature", Role::Adaptive, Layout::Same)
            }
            GateAct::Sigmoid(_) | GateAct::Gumbel(_) => {}
        }
    }
}

/// The Gumbel gate `exp(−exp(−z))`.
pub fn gumbel<B: Backend, const D: usize>(z: Tensor<B, D>) -> Tensor<B, D> {
    z.neg().exp().neg().exp()
}
