//! The one schema of a run's record: its lifecycle status and everything it produced. The
//! trainer produces a [`RunResult`], the store persists all of it, and render reads it back
//! from the store ([`crate::store::Store::result`]); nothing else describes a run's results.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where a run is in its life, as the store records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Pending,
    Running,
    Done,
    Failed,
    Diverged,
    Interrupted,
}

impl RunStatus {
    pub const ALL: [RunStatus; 6] = [
        RunStatus::Pending,
        RunStatus::Running,
        RunStatus::Done,
        RunStatus::Failed,
        RunStatus::Diverged,
        RunStatus::Interrupted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Pending => "pending",
            RunStatus::Running => "running",
            RunStatus::Done => "done",
            RunStatus::Failed => "failed",
            RunStatus::Diverged => "diverged",
            RunStatus::Interrupted => "interrupted",
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown run status `{0}` (expected one of pending, running, done, failed, diverged, interrupted)")]
pub struct UnknownStatus(pub String);

impl FromStr for RunStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, UnknownStatus> {
        RunStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_string()))
    }
}

/// Final metrics: split → metric name → value (`test` → `top1`, …). Manifests name metrics by
/// these strings, so the store keeps them as named rows.
pub type Metrics = BTreeMap<String, BTreeMap<String, f64>>;

/// Everything a paper table or figure needs from one run: what its trainer returned, or, read
/// back from the store, what it has recorded so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// Why training stopped when it blew up (a NaN loss, say). The paper reports such runs, so
    /// a diverged run is a result, not a failure.
    pub diverged: Option<String>,
    /// The epoch whose model the final metrics come from (count of finished epochs).
    pub reported_epoch: Option<usize>,
    pub metrics: Metrics,
    pub classes: Vec<ClassResult>,
    /// The reliability diagram of the reported test evaluation.
    pub reliability: Vec<Bin>,
    /// The analyses `eval.analyses` asked for, on the final model.
    pub analyses: Analyses,
    pub epochs: Vec<EpochMetrics>,
    pub learned: Vec<LearnedParam>,
    pub artifacts: Vec<Artifact>,
}

impl RunResult {
    pub fn with_metric(mut self, split: &str, name: &str, value: f64) -> Self {
        self.set_metric(split, name, value);
        self
    }

    pub fn set_metric(&mut self, split: &str, name: &str, value: f64) {
        self.metrics
            .entry(split.to_string())
            .or_default()
            .insert(name.to_string(), value);
    }

    pub fn metric(&self, split: &str, name: &str) -> Option<f64> {
        self.metrics.get(split)?.get(name).copied()
    }
}

/// Test results of one class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassResult {
    pub class: u32,
    pub n_train: u64,
    pub n_test: u64,
    pub correct: u64,
}

/// One bin of a reliability diagram: confidences in (lower, upper].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bin {
    pub lower: f64,
    pub upper: f64,
    pub count: usize,
    pub mean_confidence: f64,
    pub accuracy: f64,
}

/// Training-side numbers of one epoch, recorded as the epoch ends.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based count of finished epochs.
    pub epoch: usize,
    pub loss: f64,
    pub lr: Option<f64>,
    /// Image classifiers' training speed.
    pub images_per_s: Option<f64>,
    /// Language models' training speed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_s: Option<f64>,
    /// Test top-1 when the epoch was evaluated (`eval.eval_every`).
    pub test_top1: Option<f64>,
    /// A language model's validation loss when the epoch was evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_loss: Option<f64>,
    /// Wall time of that evaluation.
    pub eval_seconds: Option<f64>,
}

impl EpochMetrics {
    /// `epoch 3/15  loss 1.2345  lr 0.05000  top1 45.67%  1234 img/s  eval 4.2s`: a progress
    /// line (`of` the stage's epochs when known), for terminals, logs and run pages alike.
    pub fn line(&self, of: Option<usize>) -> String {
        let mut line = match of {
            Some(epochs) => format!("epoch {}/{epochs}  loss {:.4}", self.epoch, self.loss),
            None => format!("epoch {}  loss {:.4}", self.epoch, self.loss),
        };
        let parts = [
            self.lr.map(|v| format!("lr {v:.5}")),
            self.test_top1.map(|v| format!("top1 {v:.2}%")),
            self.val_loss.map(|v| format!("val loss {v:.4}")),
            self.images_per_s.map(|v| format!("{v:.0} img/s")),
            self.tokens_per_s.map(|v| format!("{v:.0} tok/s")),
            self.eval_seconds.map(|v| format!("eval {v:.1}s")),
        ];
        for part in parts.into_iter().flatten() {
            line.push_str("  ");
            line.push_str(&part);
        }
        line
    }

    /// Named values as the store keeps them (split `train`).
    pub fn values(&self) -> Vec<(&'static str, f64)> {
        [
            ("loss", Some(self.loss)),
            ("lr", self.lr),
            ("images_per_s", self.images_per_s),
            ("tokens_per_s", self.tokens_per_s),
            ("test_top1", self.test_top1),
            ("val_loss", self.val_loss),
            ("eval_s", self.eval_seconds),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name, value?)))
        .collect()
    }
}

/// A learned κ or λ (or any scalar parameter worth keeping). Per-channel values are named
/// `kappa.<channel>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LearnedParam {
    pub module: String,
    pub name: String,
    pub value: f64,
}

/// What a dependent stage starts from.
pub const CHECKPOINT: &str = "checkpoint";

/// A file the run produced. The trainer names it; the executor adds its digest and size when
/// the run is recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Artifact {
    pub kind: String,
    pub path: PathBuf,
    pub sha256: Option<String>,
    pub bytes: Option<u64>,
}

impl Artifact {
    pub fn new(kind: &str, path: PathBuf) -> Self {
        Self {
            kind: kind.to_string(),
            path,
            sha256: None,
            bytes: None,
        }
    }
}

/// The optional analyses of a trained model (`eval.analyses`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Analyses {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attention: Vec<AttentionStats>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nc1: Option<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ks: Vec<ClassLogitFit>,
}

impl Analyses {
    pub fn is_empty(&self) -> bool {
        self == &Analyses::default()
    }
}

/// Entropy and variance of one attention layer's weights on frequent and rare images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttentionStats {
    pub layer: String,
    pub frequent_entropy: f64,
    pub rare_entropy: f64,
    pub frequent_variance: f64,
    pub rare_variance: f64,
}

/// A location-scale law fitted to a sample, and its KS distance to the sample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Fit {
    pub loc: f64,
    pub scale: f64,
    pub ks: f64,
}

/// The logits of one class (its logit over every test image) against Gumbel and Logistic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassLogitFit {
    pub class: usize,
    /// The sample itself, kept for the head and the tail class only (Figure 1's histograms).
    pub logits: Vec<f32>,
    pub gumbel: Fit,
    pub logistic: Fit,
}

#[cfg(test)]
mod tests {
    use super::EpochMetrics;

    #[test]
    fn an_epoch_line_shows_what_was_measured_and_nothing_else() {
        let mut epoch = EpochMetrics {
            epoch: 3,
            loss: 1.23456,
            lr: None,
            images_per_s: Some(101.6),
            test_top1: None,
            eval_seconds: None,
            ..EpochMetrics::default()
        };
        assert_eq!(epoch.line(Some(15)), "epoch 3/15  loss 1.2346  102 img/s");
        epoch.test_top1 = Some(45.678);
        epoch.eval_seconds = Some(32.44);
        epoch.lr = Some(0.05);
        assert_eq!(
            epoch.line(None),
            "epoch 3  loss 1.2346  lr 0.05000  top1 45.68%  102 img/s  eval 32.4s"
        );
    }
}
