//! A fully resolved run: everything that defines one training run and its evaluation.

use serde::{Deserialize, Serialize};

use super::{DataConfig, EvalConfig, ModelConfig, TrainConfig};
use crate::config::eval::ReportEpoch;

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    pub model: ModelConfig,
    pub data: DataConfig,
    pub train: TrainConfig,
    pub eval: EvalConfig,
    pub seed: u64,
}

/// A combination of values that parse but cannot run, named by its key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct ConfigError {
    pub key: String,
    pub reason: String,
}

impl RunConfig {
    /// Cross-section checks run before any work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |key: &str, reason: String| {
            Err(ConfigError {
                key: key.into(),
                reason,
            })
        };
        self.data.validate().or_else(|reason| err("data", reason))?;
        let classes = self.data.num_classes();
        if self.model.num_classes != classes {
            return err(
                "model.num_classes",
                format!(
                    "is {} but data.dataset {:?} has {classes} classes",
                    self.model.num_classes, self.data.dataset
                ),
            );
        }
        if self.train.epochs == 0 {
            return err("train.epochs", "must be at least 1".into());
        }
        if self.train.batch_size == 0 {
            return err("train.batch_size", "must be at least 1".into());
        }
        if !(self.train.lr > 0.0 && self.train.lr.is_finite()) {
            return err(
                "train.lr",
                format!("must be a positive number, got {}", self.train.lr),
            );
        }
        if self.train.schedule.warmup_epochs >= self.train.epochs {
            return err(
                "train.schedule.warmup_epochs",
                "must be smaller than train.epochs".into(),
            );
        }
        if !(0.0..1.0).contains(&self.model.attention_dropout) {
            return err("model.attention_dropout", "must be in [0, 1)".into());
        }
        if self.eval.report == ReportEpoch::Best && self.eval.eval_every == 0 {
            return err(
                "eval.report",
                "'best' needs eval.eval_every > 0 to have epochs to choose from".into(),
            );
        }
        if self.eval.ece_bins == 0 {
            return err("eval.ece_bins", "must be at least 1".into());
        }
        Ok(())
    }
}
