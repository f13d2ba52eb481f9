//! Every number a paper table needs from one set of test logits.

use serde::{Deserialize, Serialize};

use super::metrics::{
    adjust_logits, calibration, group_accuracy, nll, per_class, softmax, top_k_hits, ReliabilityBin,
};
use crate::config::EvalConfig;
use crate::data::Group;

/// Test-set results of one evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    pub top1: f64,
    pub top5: f64,
    /// Accuracy over classes with many / medium / few training images (`None`: no such class).
    pub many: Option<f64>,
    pub medium: Option<f64>,
    pub few: Option<f64>,
    pub nll: f64,
    pub ece: f64,
    pub reliability: Vec<Bin>,
    pub per_class: Vec<ClassResult>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bin {
    pub lower: f64,
    pub upper: f64,
    pub count: usize,
    pub mean_confidence: f64,
    pub accuracy: f64,
}

impl From<ReliabilityBin> for Bin {
    fn from(b: ReliabilityBin) -> Self {
        Self {
            lower: b.lower,
            upper: b.upper,
            count: b.count,
            mean_confidence: b.mean_confidence,
            accuracy: b.accuracy,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassResult {
    pub class: usize,
    pub n_train: usize,
    pub n_test: usize,
    pub correct: usize,
}

/// Evaluates raw test logits: applies the configured adjustment, then every metric.
pub fn evaluate(
    mut logits: Vec<f32>,
    labels: &[usize],
    train_counts: &[usize],
    groups: &[Group],
    config: &EvalConfig,
) -> EvalReport {
    let classes = train_counts.len();
    adjust_logits(&mut logits, classes, train_counts, config.logit_adjustment);
    let top1_hits = top_k_hits(&logits, classes, labels, 1);
    let top5_hits = top_k_hits(&logits, classes, labels, 5.min(classes));
    let percent =
        |hits: &[bool]| 100.0 * hits.iter().filter(|h| **h).count() as f64 / hits.len().max(1) as f64;
    let counts = per_class(&top1_hits, labels, classes);
    let probs = softmax(&logits, classes);
    let (ece, bins) = calibration(&probs, classes, labels, config.ece_bins);
    EvalReport {
        top1: percent(&top1_hits),
        top5: percent(&top5_hits),
        many: group_accuracy(&counts, groups, Group::Many),
        medium: group_accuracy(&counts, groups, Group::Medium),
        few: group_accuracy(&counts, groups, Group::Few),
        nll: nll(&probs, classes, labels),
        ece,
        reliability: bins.into_iter().map(Bin::from).collect(),
        per_class: counts
            .iter()
            .enumerate()
            .map(|(class, &(correct, n_test))| ClassResult {
                class,
                n_train: train_counts[class],
                n_test,
                correct,
            })
            .collect(),
    }
}
