//! Executor: runs a plan's graph in dependency order on N workers / device slots, skipping done
//! runs, resuming interrupted ones, blocking dependants of failures, stopping cleanly on cancel.

pub mod burn_trainer;
mod executor;
pub mod fake;
pub mod provenance;
mod report;
pub mod slurm;
pub mod trainer;

pub use burn_trainer::BurnTrainer;
pub use executor::{execute, execute_one, Event, ExecOptions, ExecSummary};
pub use fake::FakeTrainer;
pub use report::{plan_report, PlanReport};
pub use trainer::{Observer, ParentRun, RunContext, RunSpec, TrainError, Trainer};

/// Uses the fake trainer for runs whose config has a `fake:` section, `real` otherwise.
pub struct FakeOr<'a>(pub &'a dyn Trainer);

impl Trainer for FakeOr<'_> {
    fn run(&self, run: &RunSpec, ctx: &RunContext) -> Result<crate::result::RunResult, TrainError> {
        if run.config.fake.is_some() {
            FakeTrainer.run(run, ctx)
        } else {
            self.0.run(run, ctx)
        }
    }
}
