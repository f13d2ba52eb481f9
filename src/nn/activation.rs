//! Backbone activations and attention gates, chosen by the config enums the way timm's
//! `create_act_layer` keeps model code free of activation special cases: a block holds an
//! [`Act`] or a [`GateAct`] and calls `forward`.

use burn::module::{Module, Param};
use burn::nn::{PRelu, PReluConfig};
use burn::tensor::activation::{gelu, mish, relu, sigmoid, silu};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::adaptive_op::{adaptive, AdaptiveKind};
use super::fused::FusedBackend;
use super::init::param;
use super::rng;
use crate::config::model::{Activation, Gate, InitConfig, LambdaGrad, ModelConfig, ParamSharing};

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
    /// AGLU as a backbone activation over `channels` channels.
    pub fn aglu(model: &ModelConfig, channels: usize) -> Self {
        Self::from_model(model, AdaptiveKind::Aglu, channels, &model.init)
    }

    /// APA as an attention gate over `channels` channels.
    pub fn apa(model: &ModelConfig, channels: usize) -> Self {
        Self::from_model(model, AdaptiveKind::Apa, channels, &model.init)
    }

    fn from_model(model: &ModelConfig, kind: AdaptiveKind, channels: usize, init: &InitConfig) -> Self {
        let size = match model.params {
            ParamSharing::Shared => 1,
            ParamSharing::Channel => channels,
        };
        let (kappa_init, lambda_init) = match kind {
            AdaptiveKind::Aglu => (init.aglu_kappa, init.aglu_lambda),
            AdaptiveKind::Apa => (init.apa_kappa, init.apa_lambda),
        };
        Self {
            kind,
            size,
            kappa_init,
            lambda_init,
            lambda_grad: model.lambda_grad,
        }
    }

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

/// A backbone activation (`model.activation`).
#[derive(Module, Debug)]
pub struct Act<B: Backend> {
    #[module(skip)]
    kind: Activation,
    prelu: Option<PRelu<B>>,
    adaptive: Option<Adaptive<B>>,
}

impl<B: FusedBackend> Act<B> {
    pub fn new(model: &ModelConfig, channels: usize, device: &B::Device) -> Self {
        let kind = model.activation;
        let prelu = (kind == Activation::Prelu).then(|| PReluConfig::new().init(device));
        let adaptive = (kind == Activation::Aglu).then(|| AdaptiveConfig::aglu(model, channels).init(device));
        Self {
            kind,
            prelu,
            adaptive,
        }
    }

    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        match (&self.prelu, &self.adaptive) {
            (Some(prelu), _) => prelu.forward(x),
            (_, Some(adaptive)) => adaptive.forward(x),
            _ => match self.kind {
                Activation::Relu => relu(x),
                Activation::Elu => elu(x),
                Activation::Mish => mish(x),
                Activation::Gelu => gelu(x),
                Activation::Silu => silu(x),
                Activation::Prelu | Activation::Aglu => unreachable!("parametric activations own a module"),
            },
        }
    }

    pub fn adaptive(&self) -> Option<&Adaptive<B>> {
        self.adaptive.as_ref()
    }

    /// Whether this is ReLU, which a preceding BatchNorm can apply inside its own op.
    pub fn is_relu(&self) -> bool {
        self.kind == Activation::Relu
    }
}

/// ELU with α = 1 (PyTorch's default): `max(0, z) + min(0, e^z − 1)`.
fn elu<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    let negative = x.clone().clamp_max(0.0).exp() - 1.0;
    x.clamp_min(0.0) + negative
}

/// An attention gate (`model.gate`): maps attention logits to weights in (0, 1].
#[derive(Module, Debug)]
pub struct GateAct<B: Backend> {
    #[module(skip)]
    kind: Gate,
    adaptive: Option<Adaptive<B>>,
    /// Learnable temperature τ of `sigmoid_temp` / `gumbel_temp`: the gate sees z/τ.
    temperature: Option<Param<Tensor<B, 1>>>,
}

impl<B: FusedBackend> GateAct<B> {
    pub fn new(model: &ModelConfig, channels: usize, device: &B::Device) -> Self {
        let kind = model.gate;
        let adaptive = (kind == Gate::Apa).then(|| AdaptiveConfig::apa(model, channels).init(device));
        let temperature = matches!(kind, Gate::SigmoidTemp | Gate::GumbelTemp)
            .then(|| Param::from_tensor(Tensor::ones([1], device)));
        Self {
            kind,
            adaptive,
            temperature,
        }
    }

    pub fn forward(&self, z: Tensor<B, 4>) -> Tensor<B, 4> {
        if let Some(adaptive) = &self.adaptive {
            return adaptive.forward(z);
        }
        let z = match &self.temperature {
            Some(t) => z / t.val().clamp_min(LAMBDA_FLOOR).reshape([1, 1, 1, 1]),
            None => z,
        };
        match self.kind {
            Gate::Sigmoid | Gate::SigmoidTemp => sigmoid(z),
            Gate::Gumbel | Gate::GumbelTemp => gumbel(z),
            Gate::Apa => unreachable!("APA gates own a module"),
        }
    }

    pub fn adaptive(&self) -> Option<&Adaptive<B>> {
        self.adaptive.as_ref()
    }
}

/// The Gumbel gate `exp(−exp(−z))`.
pub fn gumbel<B: Backend, const D: usize>(z: Tensor<B, D>) -> Tensor<B, D> {
    z.neg().exp().neg().exp()
}
