//! The `train:` section of a run config: optimiser, schedule, loss and checkpointing.
//! Defaults follow the reference training script (SGD, momentum 0.9, 3 warm-up epochs from
//! 1% of the learning rate, cosine annealing stepped once per epoch).
//!
//! Keys added after the first release are left out of the serialised config while they hold
//! their default, so that every run id (a hash of that config) stays what it was.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub epochs: usize,
    /// Images (or sequences) per forward pass; one update sees `batch_size × accumulate`.
    pub batch_size: usize,
    /// Forward/backward passes whose gradients are summed before one update (gradient
    /// accumulation: a batch larger than memory). The loss of each is divided by this count.
    #[serde(skip_serializing_if = "is_one")]
    pub accumulate: usize,
    /// Peak learning rate (after warm-up).
    pub lr: f64,
    #[serde(skip_serializing_if = "is_default")]
    pub optimizer: OptimizerKind,
    /// SGD's momentum.
    pub momentum: f64,
    /// SGD with Nesterov momentum.
    pub nesterov: bool,
    /// AdamW's β₁ and β₂.
    #[serde(skip_serializing_if = "is_default_betas")]
    pub betas: [f64; 2],
    /// AdamW's ε.
    #[serde(skip_serializing_if = "is_default_eps")]
    pub eps: f64,
    /// Scale the gradients down when their global L2 norm exceeds this (PyTorch's
    /// `clip_grad_norm_`); `null`: never.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clip_grad_norm: Option<f64>,
    /// Weight decay of convolution and linear weights.
    pub weight_decay: f64,
    /// Weight decay of normalisation weights and biases (BatchNorm, LayerNorm); `null` = as
    /// `weight_decay`.
    pub norm_weight_decay: Option<f64>,
    /// Weight decay of the other biases (0 in every paper recipe).
    pub bias_weight_decay: f64,
    /// Weight decay of APA/AGLU κ and λ and gate temperatures (the reference exempts them: 0).
    pub adaptive_weight_decay: f64,
    /// Weight decay of a transformer's class token and position embedding; `null` = as
    /// `weight_decay` (the reference's `set_weight_decay` names no embeddings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embedding_weight_decay: Option<f64>,
    pub schedule: ScheduleConfig,
    pub loss: LossConfig,
    /// Save a checkpoint every this many epochs (0: only at the end).
    pub checkpoint_every: usize,
    /// How a dependent stage starts from its parent stage's checkpoint.
    pub from_parent: FromParent,
    /// A moving average of the weights, evaluated beside them (the reference train.py's and
    /// torchvision's `--model-ema`); `null`: none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ema: Option<EmaConfig>,
}

/// The reference train.py's `--model-ema-decay` and `--model-ema-steps`, with its meaning: the
/// average takes in the weights every `steps` optimiser updates (counted from each epoch's first)
/// with the decay rescaled to the run, 1 − min(1, (1 − decay) · images per update · steps /
/// epochs), and only copies them during the warm-up epochs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmaConfig {
    pub decay: f64,
    pub steps: usize,
}

impl Default for EmaConfig {
    fn default() -> Self {
        Self {
            decay: 0.99998,
            steps: 32,
        }
    }
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
            accumulate: 1,
            lr: 0.1,
            optimizer: OptimizerKind::Sgd,
            momentum: 0.9,
            nesterov: false,
            betas: DEFAULT_BETAS,
            eps: DEFAULT_EPS,
            clip_grad_norm: None,
            weight_decay: 5e-4,
            norm_weight_decay: None,
            bias_weight_decay: 0.0,
            adaptive_weight_decay: 0.0,
            embedding_weight_decay: None,
            schedule: ScheduleConfig::default(),
            loss: LossConfig::default(),
            checkpoint_every: 10,
            from_parent: FromParent::None,
            ema: None,
        }
    }
}

impl TrainConfig {
    /// The optimiser's keys, checked against the chosen rule, and the weight average's: the
    /// key at fault and why.
    pub fn check_optimizer(&self) -> Result<(), (&'static str, String)> {
        let unit = |b: f64| (0.0..1.0).contains(&b);
        match self.optimizer {
            OptimizerKind::Sgd if self.betas != DEFAULT_BETAS || self.eps != DEFAULT_EPS => Err((
                "train.optimizer",
                "is sgd, which has no betas or eps: set `optimizer: adamw` or drop them".into(),
            )),
            OptimizerKind::Adamw if self.nesterov => Err((
                "train.nesterov",
                "applies to SGD only (train.optimizer is adamw)".into(),
            )),
            OptimizerKind::Adamw if !(unit(self.betas[0]) && unit(self.betas[1])) => Err((
                "train.betas",
                format!("must both be in [0, 1), got {:?}", self.betas),
            )),
            OptimizerKind::Adamw if self.eps.is_nan() || self.eps <= 0.0 => {
                Err(("train.eps", format!("must be positive, got {}", self.eps)))
            }
            _ => match self.clip_grad_norm {
                Some(max) if !(max > 0.0 && max.is_finite()) => Err((
                    "train.clip_grad_norm",
                    format!("must be a positive number, got {max}"),
                )),
                _ => self.check_ema(),
            },
        }
    }

    fn check_ema(&self) -> Result<(), (&'static str, String)> {
        match self.ema {
            Some(ema) if !(ema.decay > 0.0 && ema.decay < 1.0) => {
                Err(("train.ema.decay", format!("must be in (0, 1), got {}", ema.decay)))
            }
            Some(ema) if ema.steps == 0 => Err(("train.ema.steps", "must be at least 1".into())),
            _ => Ok(()),
        }
    }

    /// The weight of the newest weights in each average of `ema`, as the reference rescales it.
    pub fn ema_alpha(&self, ema: EmaConfig) -> f64 {
        let images_per_update = (self.batch_size * self.accumulate) as f64;
        let adjust = images_per_update * ema.steps as f64 / self.epochs.max(1) as f64;
        ((1.0 - ema.decay) * adjust).min(1.0)
    }
}

/// PyTorch's defaults for AdamW.
const DEFAULT_BETAS: [f64; 2] = [0.9, 0.999];
const DEFAULT_EPS: f64 = 1e-8;

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

fn is_one(value: &usize) -> bool {
    *value == 1
}

fn is_default_betas(value: &[f64; 2]) -> bool {
    *value == DEFAULT_BETAS
}

fn is_default_eps(value: &f64) -> bool {
    *value == DEFAULT_EPS
}

/// The update rule; both group parameters by role for weight decay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    /// SGD with momentum (`momentum`, `nesterov`), L2 weight decay added to the gradient.
    #[default]
    Sgd,
    /// AdamW (`betas`, `eps`), weight decay decoupled from the gradient.
    Adamw,
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
    /// Warm up over this many optimiser updates instead of `warmup_epochs` (build-nanogpt's
    /// 715); with `step: iteration`. Left out of configs that do not set it, so their ids stay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warmup_steps: Option<usize>,
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
            warmup_steps: None,
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
