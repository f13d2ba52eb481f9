//! Every number a paper table needs from one set of test logits.

use super::metrics::{adjust_logits, calibration, group_accuracy, nll, per_class, softmax, top_k_hits};
use crate::config::EvalConfig;
use crate::data::Group;
use crate::result::{Bin, ClassResult, RunResult};

/// Test-set results of one evaluation (the final one, or one of `eval.eval_every`).
#[derive(Debug, Clone, PartialEq)]
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
        reliability: bins,
        per_class: counts
            .iter()
            .enumerate()
            .map(|(class, &(correct, n_test))| ClassResult {
                class: class as u32,
                n_train: train_counts[class] as u64,
                n_test: n_test as u64,
                correct: correct as u64,
            })
            .collect(),
    }
}

impl EvalReport {
    /// Records this evaluation as `result`'s final test metrics, per-class results and
    /// reliability diagram.
    pub fn record(self, result: &mut RunResult) {
        self.record_scores("test", result);
        result.classes = self.per_class;
        result.reliability = self.reliability;
    }

    /// The summary scores alone, as metrics of `split` (the weight average's are `ema`).
    pub fn record_scores(&self, split: &str, result: &mut RunResult) {
        let named = [
            ("top1", Some(self.top1)),
            ("top5", Some(self.top5)),
            ("many", self.many),
            ("medium", self.medium),
            ("few", self.few),
            ("nll", Some(self.nll)),
            ("ece", Some(self.ece)),
        ];
        for (name, value) in named {
            if let Some(value) = value {
                result.set_metric(split, name, value);
            }
        }
    }
}
