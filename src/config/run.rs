//! A fully resolved run: everything that defines one training run and its evaluation.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{DataConfig, EvalConfig, ModelConfig, TrainConfig};
use crate::config::eval::ReportEpoch;
use crate::nn::Task;

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    pub model: ModelConfig,
    pub data: DataConfig,
    pub train: TrainConfig,
    pub eval: EvalConfig,
    pub seed: u64,
    /// Test-only switch: when present, the executor uses the fake trainer. Skipped when absent so
    /// it never changes the id of a real run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fake: Option<FakeConfig>,
}

/// Top-level sections of a run config; anything else is an unknown key.
pub const SECTIONS: [&str; 6] = ["model", "data", "train", "eval", "seed", "fake"];

/// Behaviour of the fake trainer (tests and the kill -9 checks drive it through manifests).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FakeConfig {
    pub epochs: u32,
    pub sleep_ms: u64,
    /// Fail with this message (on every attempt unless `fail_attempts` limits it).
    pub fail: Option<String>,
    /// Fail only on the first N attempts, so `--retry-failed` can succeed.
    pub fail_attempts: Option<u32>,
    /// Finish as diverged with this reason.
    pub diverge: Option<String>,
}

impl Default for FakeConfig {
    fn default() -> Self {
        Self {
            epochs: 3,
            sleep_ms: 0,
            fail: None,
            fail_attempts: None,
            diverge: None,
        }
    }
}

/// A combination of values that parse but cannot run, named by its key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct InvalidRun {
    pub key: String,
    pub reason: String,
}

impl RunConfig {
    /// Cross-section checks run before any work.
    pub fn validate(&self) -> Result<(), InvalidRun> {
        let err = |key: &str, reason: String| {
            Err(InvalidRun {
                key: key.into(),
                reason,
            })
        };
        self.data.validate().or_else(|reason| err("data", reason))?;
        self.model.check().or_else(|(key, reason)| err(key, reason))?;
        let language = self.model.task() == Task::LanguageModelling;
        if language != self.data.dataset.is_text() {
            let reason = format!(
                "{:?} is {} but data.dataset {:?} is {}",
                self.model.arch,
                self.model.task(),
                self.data.dataset,
                if self.data.dataset.is_text() {
                    "a token corpus"
                } else {
                    "an image dataset"
                }
            );
            return err("model.arch", reason);
        }
        if let Some(context) = self.model.context() {
            let length = self.data.text().sequence_length;
            if length > context {
                let reason = format!(
                    "is {length} but {:?} takes at most {context} tokens",
                    self.model.arch
                );
                return err("data.text.sequence_length", reason);
            }
        }
        if language {
            self.check_language_model()
                .or_else(|(key, reason)| err(key, reason.into()))?;
        }
        let classes = self.data.num_classes();
        if !language && self.model.num_classes != classes {
            return err(
                "model.num_classes",
                format!(
                    "is {} but data.dataset {:?} has {classes} classes",
                    self.model.num_classes, self.data.dataset
                ),
            );
        }
        let side = self.data.resolved_image_size();
        if let Some(model_side) = self.model.input_side().filter(|&s| s != side) {
            let reason = format!("is {model_side} but the data's images are {side}×{side} (data.image_size)");
            return err("model.image_size", reason);
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
        if self.train.accumulate == 0 {
            return err("train.accumulate", "must be at least 1".into());
        }
        if let Err(reason) = self.train.check_optimizer() {
            return err(reason.0, reason.1);
        }
        if self.train.schedule.warmup_steps.is_none() && self.train.schedule.warmup_epochs > self.train.epochs
        {
            return err(
                "train.schedule.warmup_epochs",
                "must not exceed train.epochs".into(),
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

impl RunConfig {
    /// The settings a language model's loop has no use for must stay at their defaults, so a
    /// config never looks like it asks for what does not happen.
    fn check_language_model(&self) -> Result<(), (&'static str, &'static str)> {
        let defaults = (EvalConfig::default(), crate::config::train::LossConfig::default());
        let unused = [
            (
                self.eval.report != ReportEpoch::Last,
                "eval.report",
                "a language model reports its last epoch",
            ),
            (
                self.eval.analyses != defaults.0.analyses,
                "eval.analyses",
                "the analyses are of image classifiers",
            ),
            (
                self.eval.logit_adjustment != defaults.0.logit_adjustment,
                "eval.logit_adjustment",
                "logit adjustment is for class-imbalanced classifiers",
            ),
            (
                self.train.loss != defaults.1,
                "train.loss",
                "a language model trains on next-token cross-entropy",
            ),
            (
                self.train.from_parent != crate::config::train::FromParent::None,
                "train.from_parent",
                "cRT and fine-tuning stages are for image classifiers",
            ),
            (
                self.train.ema.is_some(),
                "train.ema",
                "the weight average is kept and evaluated for image classifiers only",
            ),
        ];
        match unused.into_iter().find(|(set, _, _)| *set) {
            Some((_, key, reason)) => Err((key, reason)),
            None => Ok(()),
        }
    }

    /// Canonical JSON: object keys sorted at every level, no whitespace. Sorted explicitly
    /// because another crate in the build may turn on serde_json's `preserve_order`.
    pub fn canonical_json(&self) -> String {
        let value = serde_json::to_value(self).expect("a RunConfig always serialises");
        sorted(value).to_string()
    }
}

/// Reads a value by dotted path from a serialised config; code that must keep working when
/// sections become typed structs reads config values this way.
pub fn get_path<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(value, |v, key| v.as_object().and_then(|m| m.get(key)))
}

fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

impl RunConfig {
    /// A standalone run config: the file (its line numbers in errors) < `REPRO_*` environment
    /// < `--set` overrides, validated.
    pub fn load(path: &std::path::Path, sets: &[String]) -> Result<Self, super::ConfigError> {
        use super::layers::{deep_merge, resolve_merged};
        use super::{ConfigError, Overrides};
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let from_file: RunConfig =
            serde_yaml::from_str(&text).map_err(|e| super::load::yaml_error(path, &text, &e))?;
        let mut merged =
            serde_json::to_value(&from_file).map_err(|e| ConfigError::in_file(path, None, e.to_string()))?;
        let overrides = Overrides::from_env_and_sets(sets)?;
        for layer in &overrides.layers {
            deep_merge(&mut merged, &layer.value);
        }
        let run =
            resolve_merged(&merged).map_err(|e| ConfigError::Usage(format!("{}{}", e, overrides.hint())))?;
        run.validate()
            .map_err(|e| ConfigError::in_file(path, None, e.to_string()))?;
        Ok(run)
    }
}
