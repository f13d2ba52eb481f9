//! The boundary with the ML half: the executor hands a trainer one run and gets a RunResult.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::config::RunConfig;
use crate::result::RunResult;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The cancellation flag was seen; the run is marked interrupted and resumes later.
    #[error("cancelled")]
    Cancelled,
    #[error("{0}")]
    Failed(String),
    #[error("recording metrics: {0}")]
    Sink(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

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
    pub stage: String,
    pub out_dir: PathBuf,
    /// Its recorded `checkpoint` artifact, if it recorded one.
    pub checkpoint: Option<PathBuf>,
}

/// Receives per-epoch metrics as they come, so they land in the store incrementally.
pub trait MetricsSink: Send + Sync {
    fn epoch(&self, epoch: u32, split: &str, values: &[(String, f64)]) -> Result<(), TrainError>;
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

    /// For training loops: `ctx.check_cancel()?` between batches or epochs.
    pub fn check_cancel(&self) -> Result<(), TrainError> {
        if self.cancelled() {
            Err(TrainError::Cancelled)
        } else {
            Ok(())
        }
    }
}

pub trait Trainer: Send + Sync {
    fn train(&self, run: &RunSpec, ctx: &RunContext) -> Result<RunResult, TrainError>;
}
