//! The real trainer behind the executor's [`Trainer`] boundary: runs [`crate::train::fit`] on
//! the run's device.

use super::trainer::{RunContext, RunSpec, TrainError, Trainer};
use crate::backend::DeviceSpec;
use crate::result::{Artifact, RunResult, CHECKPOINT};
use crate::train::{checkpoint, fit_on, TrainContext};

/// Trains on Burn: `flex` on `cpu`, CUDA on `cuda:N` (feature `cuda`).
#[derive(Debug, Default, Clone, Copy)]
pub struct BurnTrainer;

impl Trainer for BurnTrainer {
    fn run(&self, run: &RunSpec, ctx: &RunContext) -> Result<RunResult, TrainError> {
        let parent_checkpoint = match ctx.parents.as_slice() {
            [] => None,
            [parent] => parent.checkpoint.clone(),
            _ => {
                return Err(TrainError::Failed(format!(
                    "stage '{}' needs several stages; a run starts from one parent's checkpoint",
                    run.stage
                )))
            }
        };
        let device: DeviceSpec = ctx.device.parse()?;
        let train_ctx = TrainContext {
            out_dir: Some(ctx.out_dir.clone()),
            resume: true,
            cancel: Some(ctx.cancel.clone()),
            observer: Some(ctx.observer),
            parent_checkpoint,
        };
        let mut result = fit_on(device, &run.config, &train_ctx)?;
        let checkpoint = checkpoint::latest(&ctx.out_dir);
        if checkpoint.is_file() {
            result.artifacts.push(Artifact::new(CHECKPOINT, checkpoint));
        }
        Ok(result)
    }
}
