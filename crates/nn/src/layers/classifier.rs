//! Classification heads: linear, cosine (the reference `CosNorm_Classifier`), and cosine with a
//! learnable scale.

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::init::{linear, param, LinearInit};
use crate::params::{Declarations, Declare, Layout, Role};
use crate::rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Classifier {
    Linear,
    Cosine,
    LearnableCosine,
}

/// How to build a [`Head`] from `features` to `classes`.
#[derive(Debug, Clone, Copy)]
pub struct HeadConfig {
    pub kind: Classifier,
    pub features: usize,
    pub classes: usize,
    /// The fixed scale of the cosine head.
    pub cosine_scale: f64,
    /// The linear head's weight initialisation.
    pub init: LinearInit,
}

impl HeadConfig {
    pub fn init<B: Backend>(&self, device: &B::Device) -> Head<B> {
        match self.kind {
            Classifier::Linear => Head::Linear(linear(self.init, self.features, self.classes, true, device)),
            Classifier::Cosine | Classifier::LearnableCosine => Head::Cosine(CosineHead::new(self, device)),
        }
    }
}

/// Features `[N, features]` → logits `[N, classes]`.
#[derive(Module, Debug)]
pub enum Head<B: Backend> {
    Linear(Linear<B>),
    Cosine(CosineHead<B>),
}

impl<B: Backend> Head<B> {
    pub fn forward(&self, features: Tensor<B, 2>) -> Tensor<B, 2> {
        match self {
            Head::Linear(linear) => linear.forward(features),
            Head::Cosine(cosine) => cosine.forward(features),
        }
    }
}

impl<B: Backend> Declare for Head<B> {
    fn declare(&self, d: &mut Declarations) {
        match self {
            Head::Linear(linear) => d.linear(linear, ""),
            Head::Cosine(cosine) => {
                d.param(&cosine.weight, "weight", Role::Weight, Layout::Same);
                if let Some(scale) = &cosine.scale {
                    d.param(scale, "scale", Role::Weight, Layout::Same);
                }
            }
        }
    }
}
/// `s · (‖x‖/(1+‖x‖)) · x̂ · Ŵᵀ`: features squashed to norm below one, class rows of W
/// normalised, no bias. With a learnable scale the factor is `scale²`, `scale` starting at 5.
#[derive(Module, Debug)]
pub struct CosineHead<B: Backend> {
    /// `[classes, features]`, the reference layout.
    pub weight: Param<Tensor<B, 2>>,
    pub scale: Option<Param<Tensor<B, 1>>>,
    #[module(skip)]
    fixed_scale: f64,
}

impl<B: Backend> CosineHead<B> {
    fn new(config: &HeadConfig, device: &B::Device) -> Self {
        let (features, classes) = (config.features, config.classes);
        let bound = 1.0 / (features as f64).sqrt();
        let weight = param(
            rng::uniform(classes * features, -bound, bound),
            [classes, features],
            device,
        );
        let scale = (config.kind == Classifier::LearnableCosine)
            .then(|| Param::from_tensor(Tensor::full([1], 5.0, device)));
        Self {
            weight,
            scale,
            fixed_scale: config.cosine_scale,
        }
    }

    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let norm = x.clone().square().sum_dim(1).sqrt();
        let squashed = x * (norm.clone() + 1.0).recip();
        let w = self.weight.val();
        let w = w.clone() / w.square().sum_dim(1).sqrt();
        let logits = squashed.matmul(w.transpose());
        match &self.scale {
            Some(scale) => logits * scale.val().square().reshape([1, 1]),
            None => logits * self.fixed_scale,
        }
    }
}
