//! Executor: runs a plan's graph in dependency order on N workers / device slots, skipping done
//! runs, resuming interrupted ones, blocking dependants of failures, stopping cleanly on cancel.

pub mod burn;
mod executor;
pub mod fake;
pub mod provenance;
pub mod trainer;

pub use burn::BurnTrainer;
pub use executor::{execute, Event, ExecOptions, ExecSummary};
pub use fake::FakeTrainer;
pub use trainer::{MetricsSink, ParentRun, RunContext, RunSpec, TrainError, Trainer};

/// Uses the fake trainer for runs whose config has a `fake:` section, `real` otherwise.
pub struct FakeOr<'a>(pub &'a dyn Trainer);

impl Trainer for FakeOr<'_> {
    fn train(&self, run: &RunSpec, ctx: &RunContext) -> Result<crate::result::RunResult, TrainError> {
        if run.config.fake.is_some() {
            FakeTrainer.train(run, ctx)
        } else {
            self.0.train(run, ctx)
        }
    }
}
