//! The boundary with the ML half: the executor hands a trainer one run and gets a RunResult.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::config::RunConfig;
use crate::result::RunResult;
pub use crate::train::{Observer, TrainError};

/// The run to train: its id, stage and resolved config.
#[derive(Debug, Clone)]
pub struct RunSpec {
    pub id: String,
    pub stage: String,
    pub config: RunConfig,
}

/// A finished parent run whose checkpoint a dependent stage starts from.
#[derive(Debug, Clone)]
pub struct ParentRun {
    pub id: String,
    /// Its recorded `checkpoint` artifact, if it recorded one.
    pub checkpoint: Option<PathBuf>,
}

pub struct RunContext<'a> {
    /// The run's own folder (created before `train`): checkpoints go here, and a resumed
    /// attempt finds them here.
    pub out_dir: PathBuf,
    pub parents: Vec<ParentRun>,
    /// 1 for the first attempt; more after interruption or `--retry-failed`.
    pub attempt: u32,
    /// `cpu`, `cuda:0`...
    pub device: String,
    pub cancel: Arc<AtomicBool>,
    /// Told of every batch and epoch: epochs land in the store as they finish.
    pub observer: &'a dyn Observer,
}

impl RunContext<'_> {
    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }

    /// For training loops: `ctx.check_cancel(epochs_done)?` between batches or epochs.
    pub fn check_cancel(&self, epochs_done: usize) -> Result<(), TrainError> {
        if self.cancelled() {
            Err(TrainError::Interrupted { epochs_done })
        } else {
            Ok(())
        }
    }
}

pub trait Trainer: Send + Sync {
    fn run(&self, run: &RunSpec, ctx: &RunContext) -> Result<RunResult, TrainError>;
}
