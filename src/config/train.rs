//! The `train:` section of a run config: optimiser, schedule, loss and checkpointing.
//! Defaults follow the reference training script (SGD, momentum 0.9, 3 warm-up epochs from
//! 1% of the learning rate, cosine annealing stepped once per epoch).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    /// Peak learning rate (after warm-up).
    pub lr: f64,
    pub momentum: f64,
    pub nesterov: bool,
    /// Weight decay of convolution and linear weights.
    pub weight_decay: f64,
    /// Weight decay of normalisation weights and biases (BatchNorm, LayerNorm); `null` = as
    /// `weight_decay`.
    pub norm_weight_decay: Option<f64>,
    /// Weight decay of the other biases (0 in every paper recipe).
    pub bias_weight_decay: f64,
    /// Weight decay of APA/AGLU κ and λ and gate temperatures (the reference exempts them: 0).
    pub adaptive_weight_decay: f64,
    pub schedule: ScheduleConfig,
    pub loss: LossConfig,
    /// Save a checkpoint every this many epochs (0: only at the end).
    pub checkpoint_every: usize,
    /// How a dependent stage starts from its parent stage's checkpoint.
    pub from_parent: FromParent,
}

/// What a stage takes from the stage it `needs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FromParent {
    /// Nothing: train from scratch (a first stage).
    None,
    /// Classifier re-training (Kang et al. 2020): the parent's backbone, frozen and in eval
    /// mode, and a re-initialised classifier, the only part trained (pair it with
    /// `data.sampler: class_balanced`).
    Crt,
    /// Fine-tuning (the Places-LT recipe): the parent's weights; the last backbone stage and
    /// the classifier train, the rest is frozen. A classifier whose class count differs from
    /// the parent's is re-initialised.
    Finetune,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 200,
            batch_size: 128,
            lr: 0.1,
            momentum: 0.9,
            nesterov: false,
            weight_decay: 5e-4,
            norm_weight_decay: None,
            bias_weight_decay: 0.0,
            adaptive_weight_decay: 0.0,
            schedule: ScheduleConfig::default(),
            loss: LossConfig::default(),
            checkpoint_every: 10,
            from_parent: FromParent::None,
        }
    }
}

/// When the learning rate changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepUnit {
    /// Once per epoch, as the reference script (`lr_scheduler.step()` after each epoch).
    Epoch,
    /// Every iteration, with the epoch counted fractionally.
    Iteration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleKind {
    /// Cosine annealing to `min_lr` over the epochs after warm-up.
    Cosine,
    /// Multiply by `gamma` at each milestone epoch.
    Multistep,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScheduleConfig {
    pub kind: ScheduleKind,
    pub warmup_epochs: usize,
    /// Warm-up starts at this fraction of `lr` and rises linearly (PyTorch's LinearLR).
    pub warmup_start_factor: f64,
    pub min_lr: f64,
    pub milestones: Vec<usize>,
    pub gamma: f64,
    pub step: StepUnit,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self {
            kind: ScheduleKind::Cosine,
            warmup_epochs: 3,
            warmup_start_factor: 0.01,
            min_lr: 0.0,
            milestones: Vec::new(),
            gamma: 0.1,
            step: StepUnit::Epoch,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossKind {
    /// Cross-entropy (with the data section's soft targets when mixup/CutMix/smoothing is on).
    Ce,
    /// Balanced Softmax: cross-entropy on logits + log prior (Ren et al. 2020).
    Bsce,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LossConfig {
    pub kind: LossKind,
    /// Deferred re-weighting: from this epoch on, weight classes by the class-balanced
    /// effective-number rule (Cui et al. 2019) with `drw_beta`. `null`: never.
    pub drw_epoch: Option<usize>,
    pub drw_beta: f64,
}

impl Default for LossConfig {
    fn default() -> Self {
        Self {
            kind: LossKind::Ce,
            drw_epoch: None,
            drw_beta: 0.9999,
        }
    }
}
