//! The `model:` section of a run config — a contract (see DESIGN.md): `repro verify` fixtures and
//! manifests use exactly these keys.

use serde::{Deserialize, Serialize};

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
}

/// Backbone activation: replaces every ReLU outside the attention blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Relu,
    Prelu,
    Elu,
    Mish,
    Gelu,
    Silu,
    Aglu,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Attention {
    None,
    Se,
    Cbam,
    Spatial,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Classifier {
    Linear,
    Cosine,
    LearnableCosine,
}

/// Whether each APA/AGLU module learns one (κ, λ) pair or one per channel (paper Table 13).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamSharing {
    Shared,
    Channel,
}

/// Which ∂/∂λ AGLU trains with: the true gradient, or the reference code's hand-written backward,
/// which drops the term z·p·ln(1 + λe^{−κz})/λ².
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LambdaGrad {
    Exact,
    Reference,
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    pub arch: Arch,
    pub num_classes: usize,
    pub activation: Activation,
    pub attention: Attention,
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
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            arch: Arch::Resnet32,
            num_classes: 100,
            activation: Activation::Relu,
            attention: Attention::None,
            gate: Gate::Sigmoid,
            attention_layernorm: false,
            attention_dropout: 0.0,
            reduction: 16,
            classifier: Classifier::Linear,
            cosine_scale: 16.0,
            params: ParamSharing::Shared,
            init: InitConfig::default(),
            lambda_grad: LambdaGrad::Exact,
        }
    }
}
