//! Classification heads: linear, cosine (the reference `CosNorm_Classifier`), and cosine with a
//! learnable scale.

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::init::{linear, param};
use super::rng;
use crate::config::model::{Classifier, ModelConfig};

#[derive(Module, Debug)]
pub struct Head<B: Backend> {
    linear: Option<Linear<B>>,
    cosine: Option<CosineHead<B>>,
}

impl<B: Backend> Head<B> {
    pub fn new(model: &ModelConfig, features: usize, device: &B::Device) -> Self {
        let classes = model.num_classes;
        match model.classifier {
            Classifier::Linear => Self {
                linear: Some(linear(model, features, classes, true, device)),
                cosine: None,
            },
            Classifier::Cosine | Classifier::LearnableCosine => Self {
                linear: None,
                cosine: Some(CosineHead::new(model, features, device)),
            },
        }
    }

    pub fn forward(&self, features: Tensor<B, 2>) -> Tensor<B, 2> {
        match (&self.linear, &self.cosine) {
            (Some(linear), _) => linear.forward(features),
            (_, Some(cosine)) => cosine.forward(features),
            (None, None) => unreachable!("a head has a linear or a cosine layer"),
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
    fn new(model: &ModelConfig, features: usize, device: &B::Device) -> Self {
        let bound = 1.0 / (features as f64).sqrt();
        let weight = param(
            rng::uniform(model.num_classes * features, -bound, bound),
            [model.num_classes, features],
            device,
        );
        let scale = (model.classifier == Classifier::LearnableCosine)
            .then(|| Param::from_tensor(Tensor::full([1], 5.0, device)));
        Self {
            weight,
            scale,
            fixed_scale: model.cosine_scale,
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
