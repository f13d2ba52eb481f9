//! What a trainer hands back: the boundary between the ML half and the store.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// How a run that completed without error ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RunOutcome {
    Done,
    /// Training blew up (NaN loss, say); the paper reports some of these, so it is a result.
    Diverged {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassResult {
    pub class: u32,
    pub n_train: u64,
    pub n_test: u64,
    pub correct: u64,
}

/// A learned κ or λ (or any scalar parameter worth keeping).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LearnedParam {
    pub module: String,
    pub name: String,
    pub value: f64,
}

/// A file the run produced (checkpoint, analysis output); the store adds sha256 and size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Artifact {
    pub kind: String,
    pub path: PathBuf,
}

/// Kind of the artifact a dependent stage starts from.
pub const CHECKPOINT: &str = "checkpoint";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    pub outcome: RunOutcome,
    /// Final metrics: split → metric name → value.
    pub metrics: BTreeMap<String, BTreeMap<String, f64>>,
    pub class_results: Vec<ClassResult>,
    pub learned_params: Vec<LearnedParam>,
    pub artifacts: Vec<Artifact>,
}

impl RunResult {
    pub fn done() -> Self {
        Self {
            outcome: RunOutcome::Done,
            metrics: BTreeMap::new(),
            class_results: Vec::new(),
            learned_params: Vec::new(),
            artifacts: Vec::new(),
        }
    }

    pub fn metric(mut self, split: &str, name: &str, value: f64) -> Self {
        self.metrics
            .entry(split.to_string())
            .or_default()
            .insert(name.to_string(), value);
        self
    }
}
