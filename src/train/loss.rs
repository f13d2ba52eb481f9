//! Training losses on logits `[N, C]`: cross-entropy with hard or soft targets, optional
//! per-class weights (deferred re-weighting), and Balanced Softmax.

use burn::tensor::activation::log_softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use crate::config::train::{LossConfig, LossKind};

/// Targets of one batch: class indices, or distributions (mixup, CutMix, label smoothing).
pub enum Targets<B: Backend> {
    Hard(Tensor<B, 1, Int>),
    Soft(Tensor<B, 2>),
}

/// The loss of one run, with what it needs from the training set.
#[derive(Debug, Clone)]
pub struct Loss {
    config: LossConfig,
    /// ln n_c, added to the logits by Balanced Softmax.
    log_prior: Vec<f32>,
    /// Class-balanced weights used from `drw_epoch` on.
    drw_weights: Vec<f32>,
}

impl Loss {
    pub fn new(config: &LossConfig, class_counts: &[usize]) -> Self {
        let log_prior = class_counts.iter().map(|&n| (n.max(1) as f32).ln()).collect();
        Self {
            config: config.clone(),
            log_prior,
            drw_weights: class_balanced_weights(class_counts, config.drw_beta),
        }
    }

    /// Mean loss of a batch at `epoch`.
    pub fn forward<B: Backend>(
        &self,
        logits: Tensor<B, 2>,
        targets: Targets<B>,
        epoch: usize,
    ) -> Tensor<B, 1> {
        let device = logits.device();
        let classes = self.log_prior.len();
        let logits = match self.config.kind {
            LossKind::Ce => logits,
            LossKind::Bsce => logits + row(&self.log_prior, &device),
        };
        let weights = match self.config.drw_epoch {
            Some(start) if epoch >= start => Some(row::<B>(&self.drw_weights, &device)),
            _ => None,
        };
        let log_p = log_softmax(logits, 1);
        match targets {
            Targets::Soft(t) => {
                let t = match weights {
                    Some(w) => t * w,
                    None => t,
                };
                (log_p * t).sum_dim(1).neg().mean()
            }
            Targets::Hard(labels) => {
                let n = labels.dims()[0];
                let picked = log_p.gather(1, labels.clone().reshape([n, 1])).reshape([n]);
                match weights {
                    // PyTorch's weighted mean: Σ w_y·ℓ / Σ w_y.
                    Some(w) => {
                        let w_y = w.reshape([classes]).gather(0, labels);
                        (picked * w_y.clone()).sum().neg() / w_y.sum()
                    }
                    None => picked.mean().neg(),
                }
            }
        }
    }
}

fn row<B: Backend>(values: &[f32], device: &B::Device) -> Tensor<B, 2> {
    Tensor::<B, 1>::from_data(TensorData::new(values.to_vec(), [values.len()]), device)
        .reshape([1, values.len()])
}

/// Cui et al. (2019) effective-number weights (1 − β)/(1 − β^{n_c}), normalised to sum to C,
/// as LDAM-DRW uses them.
pub fn class_balanced_weights(counts: &[usize], beta: f64) -> Vec<f32> {
    let raw: Vec<f64> = counts
        .iter()
        .map(|&n| (1.0 - beta) / (1.0 - beta.powi(n.max(1) as i32)))
        .collect();
    let sum: f64 = raw.iter().sum();
    raw.iter()
        .map(|w| (w / sum * counts.len() as f64) as f32)
        .collect()
}
