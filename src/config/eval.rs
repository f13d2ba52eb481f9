//! The `eval:` section of a run config: post-hoc logit adjustment, calibration bins, which
//! epoch's numbers are reported, and which (costly) analyses run.

use serde::{Deserialize, Serialize};

/// Post-hoc logit adjustment applied before the test metrics (paper Table 4c).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogitAdjustment {
    None,
    /// PC-Softmax: subtract the log training prior, i.e. add ln(N/n_c) (the reference's `raw`).
    PcSoftmax,
    /// The reference's `rel` variant: add ln((N − n_c)/n_c).
    PcSoftmaxRel,
}

/// Whose numbers a run reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportEpoch {
    /// The final epoch's model (the paper's protocol).
    Last,
    /// The epoch with the best test top-1 among those evaluated (`eval_every`).
    Best,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    pub logit_adjustment: LogitAdjustment,
    /// Equal-width confidence bins of the expected calibration error.
    pub ece_bins: usize,
    pub report: ReportEpoch,
    /// Evaluate on the test set every this many epochs (0: only after the last).
    pub eval_every: usize,
    pub analyses: AnalysesConfig,
}

/// Analyses of the final model beyond accuracy; off by default because they cost time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnalysesConfig {
    /// Attention entropy (paper Eq. 4) and variance per layer on frequent-only and rare-only
    /// test batches (Figures 2 and 5).
    pub attention: bool,
    /// Neural-collapse NC1 of the penultimate features on the test set (Eq. 12, Table 7).
    pub nc1: bool,
    /// Per-class KS distance of the logits to fitted Gumbel and Logistic laws (Figure 1).
    pub ks: bool,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            logit_adjustment: LogitAdjustment::None,
            ece_bins: 15,
            report: ReportEpoch::Last,
            eval_every: 0,
            analyses: AnalysesConfig::default(),
        }
    }
}
