//! The boundary with the ML half: the executor hands a trainer one run and gets a RunResult.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::config::RunConfig;
use crate::result::{EpochMetrics, RunResult};
pub use crate::train::TrainError;

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

/// Receives per-epoch metrics as they come, so they land in the store incrementally.
pub trait MetricsSink: Send + Sync {
    fn epoch(&self, metrics: &EpochMetrics) -> Result<(), TrainError>;
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
    pub metrics: &'a dyn MetricsSink,
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
