//! Evaluation: metrics on logits, and the summary a run reports.

pub mod analysis;
pub mod metrics;
pub mod report;
